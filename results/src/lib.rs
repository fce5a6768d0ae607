//! The results schema, `ratelab.results/1`: what a simulated or measured run produced,
//! as plain data.
//!
//! The virtual-time simulator and the HTTP load drivers write these types; `reports`
//! reads only these types. This crate draws nothing and depends on nothing that does,
//! so the simulator builds without a plotting stack. Readers accept unknown fields
//! (later minor additions) but refuse another `schema` string. Serialization is
//! deterministic: the same values always give the same bytes (fields in declaration
//! order, numbers rounded by the producer), so a fixed seed gives a byte-identical
//! `results.json`.
//!
//! ```json
//! {"schema": "ratelab.results/1", "source": "simulated", "workload": {...},
//!  "runs": [{"algorithm": "token-bucket", "store": "memory", "phases": [
//!     {"name": "warm-up", "offered": 600, "admitted": 9, "rejected": 591,
//!      "envelope_excess": 0.0, "over_admission": 0, "under_admission": 0,
//!      "burst_ratio": 1.8, "latency_us": null, ...}], "totals": {...},
//!   "series": {"step_s": 1.0, "offered": [...], "admitted": [...], "rejected": [...]}}]}
//! ```

mod measured;
mod run;
mod store_modes;
mod trace;
mod workload;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use measured::{GatewayCounters, GroundTruth, MeasuredSeries, Measurement, PhaseLoad};
pub use run::{LatencySummary, PhaseStats, Run, Series};
pub use store_modes::{StoreCurve, StorePoint};
pub use trace::{
    RouteThrottle, SweepPoint, ThrottledIdentity, TraceAlgorithm, TraceInput, TraceReplay,
    TraceRoute,
};
pub use workload::{EndpointInfo, PhaseInfo, WorkloadInfo};

/// The schema identifier this crate reads and writes.
pub const SCHEMA: &str = "ratelab.results/1";

/// The results file in an output directory.
pub const RESULTS_FILE: &str = "results.json";

/// Why results could not be read, written or trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResultsError {
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
}

/// Everything one `ratelab simulate` or `ratelab load` produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// How the numbers were obtained.
    pub source: ResultSource,
    /// The workload that was played.
    pub workload: WorkloadInfo,
    /// One run per algorithm (and store).
    pub runs: Vec<Run>,
    /// For measured runs: how the load went (offered vs achieved, statuses, ground
    /// truth, gateway counters), one entry per measured run. Absent when simulated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
    /// For a replayed access log (`simulate --trace`): what the log held and who each
    /// algorithm would have throttled. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceReplay>,
    /// For `simulate --store-mode`: what each store-mode point cost (its accuracy is
    /// its run's). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_modes: Option<StoreCurve>,
}

/// How a result was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultSource {
    /// Virtual time, in process: exact and deterministic, no latency unless modelled.
    Simulated,
    /// Real HTTP requests through a gateway.
    Measured,
}

impl ResultSource {
    /// `simulated` or `measured`.
    pub fn name(self) -> &'static str {
        match self {
            ResultSource::Simulated => "simulated",
            ResultSource::Measured => "measured",
        }
    }
}

/// Rounds to 4 decimals, so results stay readable and stable as JSON.
pub fn round4(x: f64) -> f64 {
    if x.is_finite() {
        (x * 10_000.0).round() / 10_000.0
    } else {
        0.0
    }
}

impl Results {
    /// Empty results for a workload.
    pub fn new(source: ResultSource, workload: WorkloadInfo) -> Self {
        Self {
            schema: SCHEMA.to_owned(),
            source,
            workload,
            runs: Vec::new(),
            measurements: Vec::new(),
            trace: None,
            store_modes: None,
        }
    }

    /// Parses and checks results JSON.
    pub fn from_json(text: &str) -> Result<Self, ResultsError> {
        let r: Results = serde_json::from_str(text).map_err(ResultsError::Json)?;
        r.check()?;
        Ok(r)
    }

    /// Pretty JSON with a trailing newline; the same results always give the same bytes.
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialization cannot fail.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Checks what the renderers rely on: the schema string, and consistent series.
    pub fn check(&self) -> Result<(), ResultsError> {
        if self.schema != SCHEMA {
            return Err(ResultsError::Schema(format!(
                "schema is {:?}; this version reads {SCHEMA:?}",
                self.schema
            )));
        }
        for run in &self.runs {
            let s = &run.series;
            let n = s.offered.len();
            if s.admitted.len() != n
                || s.rejected.len() != n
                || !(s.latency_us.is_empty() || s.latency_us.len() == n)
            {
                return Err(ResultsError::Schema(format!(
                    "run {:?}: series vectors differ in length",
                    run.algorithm
                )));
            }
            if !(s.step_s.is_finite() && s.step_s > 0.0) {
                return Err(ResultsError::Schema(format!(
                    "run {:?}: series.step_s must be positive",
                    run.algorithm
                )));
            }
        }
        if let Some(curve) = &self.store_modes
            && let Some(p) = curve.points.iter().find(|p| p.run >= self.runs.len())
        {
            return Err(ResultsError::Schema(format!(
                "store-mode point {:?} of {:?} names run {}, beyond the {} runs",
                p.label(),
                p.algorithm,
                p.run,
                self.runs.len()
            )));
        }
        Ok(())
    }

    /// True when any run carries latency figures (measured, or a modelled store).
    pub fn has_latency(&self) -> bool {
        self.runs
            .iter()
            .any(|r| r.totals.latency_us.is_some() || !r.series.latency_us.is_empty())
    }
}

/// Reads `DIR/results.json`.
pub fn read_results(dir: &Path) -> Result<Results, ResultsError> {
    let path = dir.join(RESULTS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| ResultsError::Io {
        path: path.clone(),
        source,
    })?;
    Results::from_json(&text)
}

/// Writes `DIR/results.json` (creating `DIR`), and returns its path.
pub fn write_results(results: &Results, dir: &Path) -> Result<PathBuf, ResultsError> {
    std::fs::create_dir_all(dir).map_err(|source| ResultsError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let path = dir.join(RESULTS_FILE);
    std::fs::write(&path, results.to_json()).map_err(|source| ResultsError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Results {
        let stats = |name: &str| PhaseStats {
            name: name.to_owned(),
            offered: 10,
            admitted: 6,
            rejected: 4,
            errors: 0,
            reference_admitted: 5,
            envelope_excess: 1.0,
            over_admission: 1,
            under_admission: 0,
            burst_ratio: 1.2,
            fairness: Some(1.0),
            wronged_users: Some(0.25),
            latency_us: None,
            boundary_burst: None,
        };
        let mut r = Results::new(
            ResultSource::Simulated,
            WorkloadInfo {
                name: "w".into(),
                description: String::new(),
                source: "built-in".into(),
                seed: 1,
                duration_s: 2.0,
                users: 1,
                user_distribution: "uniform".into(),
                arrivals: "constant".into(),
                phases: vec![PhaseInfo {
                    name: "p".into(),
                    start_s: 0.0,
                    duration_s: 2.0,
                    rate: 5.0,
                    rate_end: 5.0,
                }],
                endpoints: vec![EndpointInfo {
                    path: "/".into(),
                    weight: 1.0,
                    limit: 5,
                    window_s: 1.0,
                    burst: 5,
                    cost: 1,
                }],
            },
        );
        r.runs.push(Run {
            algorithm: "fixed-window".into(),
            store: "memory".into(),
            deployment: "memory: one process".into(),
            reference: "exact sliding log".into(),
            keys: 1,
            memory_per_key_bytes: 8,
            phases: vec![stats("p")],
            totals: stats("total"),
            series: Series {
                step_s: 1.0,
                offered: vec![5, 5],
                admitted: vec![3, 3],
                rejected: vec![2, 2],
                latency_us: vec![],
            },
        });
        r
    }

    #[test]
    fn round_trips_and_checks() {
        let r = sample();
        let json = r.to_json();
        assert_eq!(Results::from_json(&json).unwrap(), r);
        assert!(json.contains("\"schema\": \"ratelab.results/1\""));
        assert!(
            !json.contains("latency_us\": ["),
            "empty series latency is omitted"
        );
        let other = json.replace("ratelab.results/1", "ratelab.results/2");
        assert!(
            Results::from_json(&other)
                .unwrap_err()
                .to_string()
                .contains("results/2")
        );
        let mut bad = r.clone();
        bad.runs[0].series.admitted.pop();
        assert!(bad.check().is_err());
    }

    #[test]
    fn rounding() {
        assert_eq!(round4(1.23456), 1.2346);
        assert_eq!(round4(f64::NAN), 0.0);
    }
}
