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

pub mod schema;

use std::path::PathBuf;

pub use schema::Results;

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
