//! Results in; tables, plots and a Markdown report out.
//!
//! `reports` renders the results schema (`ratelab.results/1`, defined by the `results`
//! crate) that the simulator and the load drivers write — from the results alone — into
//! PNG and SVG plots ([`plots`]) and a `report.md` that embeds them with the tables
//! ([`markdown`]). It never depends on the crates that produce results.
//!
//! Text in the PNGs is drawn with an embedded font (DejaVu Sans, see
//! `assets/DejaVuSans-LICENSE.txt`), so plots render the same on a fresh machine with
//! no fonts installed.

pub mod bench;
pub mod digest;
pub mod format;
pub mod html;
pub mod markdown;
pub mod measured;
pub mod plots;
pub mod store_modes;
pub mod summary;
pub mod table;
pub mod terminal;
pub mod trace;

use std::path::{Path, PathBuf};

use results::{Results, ResultsError};

/// The Markdown report in an output directory.
pub const REPORT_FILE: &str = "report.md";

/// Why results could not be read or rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The results could not be read or written, or break a rule of the schema.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// A plot could not be drawn.
    #[error("cannot draw {plot}: {message}")]
    Plot {
        /// Which plot.
        plot: String,
        /// What the drawing backend said.
        message: String,
    },
}

/// What [`render`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The plots, PNG and SVG each.
    pub plots: Vec<plots::Plot>,
    /// `report.md`.
    pub report: PathBuf,
    /// `report.html`: the same report, self-contained.
    pub html: PathBuf,
}

/// Renders `results` into `dir`: every plot as PNG and SVG, `report.md` embedding them
/// with the tables (and, for measured runs, their HTTP section), and `report.html`, the
/// same report in one self-contained page.
pub fn render(results: &Results, dir: &Path) -> Result<Rendered, Error> {
    results.check()?;
    let plots = plots::render_all(results, dir)?;
    let report = dir.join(REPORT_FILE);
    // Measured runs add their section (phases, ground truth), so a report re-rendered
    // from results.json alone is the one `ratelab load` wrote.
    let mut text = markdown::report(results, &plots);
    text.push_str(&measured::markdown(results));
    text.push_str(&trace::markdown(results));
    text.push_str(&store_modes::markdown(results));
    std::fs::write(&report, &text).map_err(|source| Error::Io {
        path: report.clone(),
        source,
    })?;
    let title = format!("ratelab report: workload {}", results.workload.name);
    let html = html::write(&text, dir, html::HTML_FILE, &title)?;
    Ok(Rendered {
        plots,
        report,
        html,
    })
}
