//! The run in a few numbers, as JSON: what `ratelab simulate --json` and `ratelab load
//! --json` print on stdout for scripts, beside the full `results.json` they write.
//!
//! The guarantee: every figure is read from the results (the same totals the tables
//! show), so a script that reads the digest and a person who reads the report see the
//! same numbers; the shape is versioned (`ratelab.digest/1`) and only grows.

use std::path::PathBuf;

use results::{PhaseStats, Results};
use serde::Serialize;

/// The digest's schema name.
pub const SCHEMA: &str = "ratelab.digest/1";

/// One run's totals, named.
#[derive(Debug, Clone, Serialize)]
pub struct RunDigest<'a> {
    /// The algorithm.
    pub algorithm: &'a str,
    /// The store.
    pub store: &'a str,
    /// The run's totals over every phase.
    pub totals: &'a PhaseStats,
    /// Nanoseconds of CPU per decision (simulations only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ns_per_decision: Option<f64>,
}

/// The files a command wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Files {
    /// `results.json`.
    pub results: PathBuf,
    /// `report.md`, when written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<PathBuf>,
    /// `report.html`, when written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<PathBuf>,
}

/// A run's digest.
#[derive(Debug, Clone, Serialize)]
pub struct Digest<'a> {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// `simulated` or `measured`.
    pub source: &'static str,
    /// The workload's name.
    pub workload: &'a str,
    /// The seed the arrivals were drawn with.
    pub seed: u64,
    /// False when a measured run ended early or lost requests.
    pub complete: bool,
    /// What was written.
    pub files: Files,
    /// One entry per run, in the results' order.
    pub runs: Vec<RunDigest<'a>>,
}

/// The digest of `results`; `ns_per_decision` is per run, in order (empty when unknown).
pub fn digest<'a>(results: &'a Results, files: Files, ns_per_decision: &[f64]) -> Digest<'a> {
    Digest {
        schema: SCHEMA,
        source: results.source.name(),
        workload: &results.workload.name,
        seed: results.workload.seed,
        complete: results.measurements.iter().all(|m| m.complete),
        files,
        runs: results
            .runs
            .iter()
            .enumerate()
            .map(|(i, r)| RunDigest {
                algorithm: &r.algorithm,
                store: &r.store,
                totals: &r.totals,
                ns_per_decision: ns_per_decision.get(i).copied(),
            })
            .collect(),
    }
}

impl Digest<'_> {
    /// The digest as one JSON document and a newline.
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialization cannot fail.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}
