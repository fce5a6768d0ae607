//! Results in, plots and a Markdown report out.
//!
//! `reports` owns the results schema ([`schema`], `ratelab.results/1`) that the
//! simulator and the load driver write, and renders it — from the results alone — into
//! PNG and SVG plots ([`plots`]) and a `report.md` that embeds them with the tables
//! ([`markdown`]). It never depends on the crates that produce results.
//!
//! Text in the PNGs is drawn with an embedded font (DejaVu Sans, see
//! `assets/DejaVuSans-LICENSE.txt`), so plots render the same on a fresh machine with
//! no fonts installed.

pub mod bench;
pub mod markdown;
pub mod measured;
pub mod plots;
pub mod schema;
pub mod table;

use std::path::{Path, PathBuf};

pub use schema::Results;

/// The results file in an output directory.
pub const RESULTS_FILE: &str = "results.json";

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
    /// The results are not valid JSON for the schema.
    #[error("results are not valid ratelab.results/1 JSON: {0}")]
    Json(serde_json::Error),
    /// The results parse but break a rule of the schema.
    #[error("results do not follow the schema: {0}")]
    Schema(String),
    /// A plot could not be drawn.
    #[error("cannot draw {plot}: {message}")]
    Plot {
        /// Which plot.
        plot: String,
        /// What the drawing backend said.
        message: String,
    },
}

/// Reads `DIR/results.json`.
pub fn read_results(dir: &Path) -> Result<Results, Error> {
    let path = dir.join(RESULTS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    Results::from_json(&text)
}

/// Writes `DIR/results.json` (creating `DIR`), and returns its path.
pub fn write_results(results: &Results, dir: &Path) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_owned(),
        source,
    })?;
    let path = dir.join(RESULTS_FILE);
    std::fs::write(&path, results.to_json()).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// What [`render`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The plots, PNG and SVG each.
    pub plots: Vec<plots::Plot>,
    /// `report.md`.
    pub report: PathBuf,
}

/// Renders `results` into `dir`: every plot as PNG and SVG, and `report.md` embedding
/// them with the tables (and, for measured runs, their HTTP section).
pub fn render(results: &Results, dir: &Path) -> Result<Rendered, Error> {
    results.check()?;
    let plots = plots::render_all(results, dir)?;
    let report = dir.join(REPORT_FILE);
    // Measured runs add their section (phases, ground truth), so a report re-rendered
    // from results.json alone is the one `ratelab load` wrote.
    let mut text = markdown::report(results, &plots);
    text.push_str(&measured::markdown(results));
    std::fs::write(&report, text).map_err(|source| Error::Io {
        path: report.clone(),
        source,
    })?;
    Ok(Rendered { plots, report })
}
