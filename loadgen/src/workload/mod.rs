//! Workloads: phases of arrivals over users and endpoints, read from TOML or built in.
//!
//! A workload is validated once, when it is loaded: every number the simulator uses is
//! in range afterwards, and every mistake is reported with the file, the line and the
//! key that holds it (`my.toml:14: phase[1].rate: must be a finite number >= 0`).
//!
//! ```toml
//! name = "checkout"
//! seed = 7                      # optional; `--seed` overrides it
//!
//! [users]
//! count = 1000
//! distribution = "zipf"         # uniform | zipf
//! exponent = 1.0                # zipf only
//!
//! [arrivals]
//! process = "poisson"           # constant | poisson | onoff | boundary
//! # onoff:    on = "2s", off = "18s"   (each user alternates, with its own phase)
//! # boundary: window = "10s", spread = "100ms"
//!
//! [deployment]                  # optional; default: one process, in memory
//! store = "shared"              # memory | shared | local
//! gateways = 3
//! skew = "2s"                   # clock offsets spread evenly over this range
//! rtt = "1ms"                   # round trip to the shared store
//! jitter = "500us"              # uniform +/- on each round trip
//!
//! [[phase]]
//! name = "ramp"
//! duration = "60s"
//! rate = 100                    # arrivals per second, whole workload
//! ramp_to = 500                 # optional: linear ramp to this rate
//!
//! [[endpoint]]
//! path = "POST /api/checkout"
//! weight = 1                    # share of arrivals
//! limit = 10                    # "10 per 60s, bursts of 5"
//! window = "60s"
//! burst = 5                     # optional, default limit
//! cost = 1                      # optional
//! ```
//!
//! The folder follows the data: `model` (users, arrival processes, phases,
//! endpoints, deployment), the file format (`file`: serde types read with spans and
//! written back by [`to_toml`]) and `validate` (file to model, located errors).
//! Durations use the contract's one syntax ([`gateway_contract::duration`]) and the
//! endpoint policy its one cost rule ([`gateway_contract::policy`]).
//!
//! Built in, by name: `seed` (the original project's load test), `boundary` (bursts at
//! window edges), `api-mix` (10,000 Zipf users, five endpoints) and `onoff` (bursty users
//! with idle gaps). Their TOML is in `loadgen/workloads/`, a starting point for your own.

mod file;
mod model;
mod validate;

use std::path::Path;
use std::time::Duration;

use limiter_core::Nanos;

use self::file::RawWorkload;
pub use self::file::to_toml;
pub use self::model::{Deployment, Endpoint, Phase, Process, StoreModel, UserDistribution, Users};
use self::validate::Validator;

/// One second in nanoseconds.
pub const SECOND: Nanos = 1_000_000_000;

/// The most arrivals a workload may ask for (about 1.6 GB of arrival records).
pub const MAX_ARRIVALS: f64 = 100_000_000.0;

/// The most keys (users × endpoints) a workload may have.
pub const MAX_KEYS: u64 = 20_000_000;

/// The built-in workloads, by name, with their TOML.
pub const BUILTINS: [(&str, &str); 4] = [
    ("seed", include_str!("../../workloads/seed.toml")),
    ("boundary", include_str!("../../workloads/boundary.toml")),
    ("api-mix", include_str!("../../workloads/api-mix.toml")),
    ("onoff", include_str!("../../workloads/onoff.toml")),
];

/// Why a workload could not be loaded. Every variant names what is wrong and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadError {
    /// Neither a built-in name nor a readable file.
    #[error(
        "unknown workload {0:?}: not a built-in (seed, boundary, api-mix, onoff) and no such file"
    )]
    Unknown(String),

    /// The file exists but could not be read.
    #[error("cannot read workload file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },

    /// Not valid TOML, an unknown key, or a value of the wrong type.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file (or `<built-in NAME>`).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },

    /// A value that parses but is impossible (a zero limit, a negative rate...).
    #[error("{file}:{line}: {key}: {message}")]
    Invalid {
        /// The file (or `<built-in NAME>`).
        file: String,
        /// 1-based line of the offending key.
        line: usize,
        /// The key, as a path (`endpoint[2].limit`).
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

/// A validated workload, ready to generate arrivals from.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Name, for tables and reports.
    pub name: String,
    /// One line saying what it models.
    pub description: String,
    /// Where it came from: `built-in` or the file's path.
    pub source: String,
    /// The seed to use when none is given on the command line.
    pub seed: u64,
    /// The user population.
    pub users: Users,
    /// The arrival process.
    pub process: Process,
    /// Phases, back to back from time zero.
    pub phases: Vec<Phase>,
    /// Endpoints and their policies.
    pub endpoints: Vec<Endpoint>,
    /// The simulated deployment.
    pub deployment: Deployment,
}

impl Workload {
    /// A built-in workload by name, or a workload file by path.
    pub fn load(name_or_path: &str) -> Result<Self, WorkloadError> {
        if let Some(w) = Self::builtin(name_or_path) {
            return w;
        }
        let path = Path::new(name_or_path);
        if !path.is_file() {
            return Err(WorkloadError::Unknown(name_or_path.to_owned()));
        }
        Self::from_file(path)
    }

    /// A built-in workload, or `None` for an unknown name.
    pub fn builtin(name: &str) -> Option<Result<Self, WorkloadError>> {
        BUILTINS.iter().find(|(n, _)| *n == name).map(|(n, text)| {
            let mut w = Self::parse(text, &format!("<built-in {n}>"), n)?;
            w.source = "built-in".to_owned();
            Ok(w)
        })
    }

    /// Reads and validates a workload file.
    pub fn from_file(path: &Path) -> Result<Self, WorkloadError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| WorkloadError::Read {
            path: shown.clone(),
            source,
        })?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("workload")
            .to_owned();
        Self::parse(&text, &shown, &stem)
    }

    /// Parses and validates workload TOML. `file` names it in errors; `default_name` is
    /// used when the text has no `name`.
    pub fn parse(text: &str, file: &str, default_name: &str) -> Result<Self, WorkloadError> {
        let raw: RawWorkload = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            WorkloadError::Syntax {
                file: file.to_owned(),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;
        Validator { text, file }.workload(raw, default_name)
    }

    /// Total length of all phases.
    pub fn duration(&self) -> Nanos {
        self.phases.last().map_or(0, Phase::end)
    }

    /// Arrivals expected over all phases.
    pub fn expected_arrivals(&self) -> f64 {
        self.phases.iter().map(Phase::expected_arrivals).sum()
    }

    /// Number of keys (user × endpoint pairs).
    pub fn keys(&self) -> u64 {
        self.users.count as u64 * self.endpoints.len() as u64
    }

    /// The workload as the results schema describes it.
    pub fn info(&self, seed: u64) -> results::WorkloadInfo {
        use results::{EndpointInfo, PhaseInfo, WorkloadInfo};
        let secs = |n: Nanos| n as f64 / SECOND as f64;
        WorkloadInfo {
            name: self.name.clone(),
            description: self.description.clone(),
            source: self.source.clone(),
            seed,
            duration_s: secs(self.duration()),
            users: self.users.count as u64,
            user_distribution: match self.users.distribution {
                UserDistribution::Uniform => "uniform".to_owned(),
                UserDistribution::Zipf { exponent } => format!("zipf(s={exponent})"),
            },
            arrivals: self.process.name().to_owned(),
            phases: self
                .phases
                .iter()
                .map(|p| PhaseInfo {
                    name: p.name.clone(),
                    start_s: secs(p.start),
                    duration_s: secs(p.duration),
                    rate: p.rate,
                    rate_end: p.rate_end,
                })
                .collect(),
            endpoints: self
                .endpoints
                .iter()
                .map(|e| EndpointInfo {
                    path: e.path.clone(),
                    weight: e.weight,
                    limit: e.quota.limit(),
                    window_s: secs(e.quota.period_nanos()),
                    burst: e.quota.burst(),
                    cost: e.cost,
                })
                .collect(),
        }
    }
}

/// The longest duration a workload takes anywhere (ten years).
const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Parses a duration in the contract's one syntax ([`gateway_contract::duration`]:
/// `"500ms"`, `"1m30s"`, `"2m"`, `"1d"`), into nanoseconds, at most ten years.
pub fn parse_duration(s: &str) -> Result<Nanos, String> {
    gateway_contract::duration::parse_nanos(s, MAX_DURATION).map_err(|e| e.to_string())
}

/// Formats nanoseconds compactly for tables and results (`60s`, `1.5s`, `500µs`) —
/// for people; files are written with [`gateway_contract::duration::format`], which
/// reads back exactly.
pub fn format_duration(n: Nanos) -> String {
    let (value, unit) = if n == 0 {
        return "0s".to_owned();
    } else if n.is_multiple_of(3600 * SECOND) {
        (n as f64 / 3600e9, "h")
    } else if n >= SECOND {
        (n as f64 / 1e9, "s")
    } else if n >= 1_000_000 {
        (n as f64 / 1e6, "ms")
    } else if n >= 1_000 {
        (n as f64 / 1e3, "µs")
    } else {
        (n as f64, "ns")
    };
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{unit}")
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests;
