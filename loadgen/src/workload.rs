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
//! Built in, by name: `seed` (the original project's load test), `boundary` (bursts at
//! window edges), `api-mix` (10,000 Zipf users, five endpoints) and `onoff` (bursty users
//! with idle gaps). Their TOML is in `loadgen/workloads/`, a starting point for your own.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use limiter_core::quota::MAX_LIMIT;
use limiter_core::{Nanos, Quota};
use serde::Deserialize;
use toml::Spanned;

/// One second in nanoseconds.
pub const SECOND: Nanos = 1_000_000_000;

/// The most arrivals a workload may ask for (about 1.6 GB of arrival records).
pub const MAX_ARRIVALS: f64 = 100_000_000.0;

/// The most keys (users × endpoints) a workload may have.
pub const MAX_KEYS: u64 = 20_000_000;

/// The built-in workloads, by name, with their TOML.
pub const BUILTINS: [(&str, &str); 4] = [
    ("seed", include_str!("../workloads/seed.toml")),
    ("boundary", include_str!("../workloads/boundary.toml")),
    ("api-mix", include_str!("../workloads/api-mix.toml")),
    ("onoff", include_str!("../workloads/onoff.toml")),
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

/// How users are drawn for each arrival.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UserDistribution {
    /// Every user equally likely.
    Uniform,
    /// User of rank `k` (1-based) drawn with weight `1 / k^exponent`.
    Zipf {
        /// The Zipf exponent `s` (> 0).
        exponent: f64,
    },
}

/// The user population.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Users {
    /// Number of distinct users.
    pub count: u32,
    /// How each arrival picks its user.
    pub distribution: UserDistribution,
}

/// How arrivals are placed in time within a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// Evenly spaced at the phase's rate; the first at the phase's start.
    Constant,
    /// A Poisson process at the phase's rate (exponential gaps).
    Poisson,
    /// Each user alternates `on` and `off` periods with its own random phase; the
    /// workload's rate is kept as the average, so the rate while on is
    /// `rate × (on + off) / on`. Arrivals within "on" are Poisson.
    OnOff {
        /// Length of an active period.
        on: Nanos,
        /// Length of an idle period.
        off: Nanos,
    },
    /// The window-boundary adversary: at every other multiple of `window` it sends a
    /// burst spread over `spread` just before the edge and another just after, and is
    /// idle otherwise. Each edge carries `rate × 2 × window` requests, so the average
    /// rate is the phase's rate.
    Boundary {
        /// The window length to attack (usually the endpoint policy's window).
        window: Nanos,
        /// How long each half-burst lasts.
        spread: Nanos,
    },
}

impl Process {
    /// The name used in workload files.
    pub fn name(&self) -> &'static str {
        match self {
            Process::Constant => "constant",
            Process::Poisson => "poisson",
            Process::OnOff { .. } => "onoff",
            Process::Boundary { .. } => "boundary",
        }
    }
}

/// One phase of a workload: a name, a length and an arrival rate (or a linear ramp).
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// Name, for tables and plots (`warm-up`).
    pub name: String,
    /// When it starts, from the start of the workload.
    pub start: Nanos,
    /// How long it lasts.
    pub duration: Nanos,
    /// Arrivals per second at its start.
    pub rate: f64,
    /// Arrivals per second at its end (equal to `rate` unless ramping).
    pub rate_end: f64,
}

impl Phase {
    /// When it ends.
    pub fn end(&self) -> Nanos {
        self.start + self.duration
    }

    /// Arrivals expected in it.
    pub fn expected_arrivals(&self) -> f64 {
        (self.rate + self.rate_end) / 2.0 * self.duration as f64 / SECOND as f64
    }
}

/// An endpoint: a share of the traffic and the policy that guards it.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Route, for humans (`GET /api/orders/{id}`).
    pub path: String,
    /// Share of arrivals (relative to the other endpoints).
    pub weight: f64,
    /// The policy: `limit` per `window`, bursts of `burst`.
    pub quota: Quota,
    /// Units each request costs.
    pub cost: u64,
}

/// Where the limiter's state lives in the simulated deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreModel {
    /// One process, in memory: decisions at the arrival instant.
    Memory,
    /// `gateways` gateways sharing one atomic store (Redis, say). Correct algorithms use
    /// the store's clock; each decision happens half a round trip after the request.
    Shared,
    /// `gateways` gateways, each with its own in-memory state and its own skewed clock
    /// (what a `local` failure policy degrades to).
    Local,
}

impl StoreModel {
    /// The name used in workload files, on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            StoreModel::Memory => "memory",
            StoreModel::Shared => "shared",
            StoreModel::Local => "local",
        }
    }
}

impl fmt::Display for StoreModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for StoreModel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "memory" => Ok(StoreModel::Memory),
            "shared" => Ok(StoreModel::Shared),
            "local" => Ok(StoreModel::Local),
            other => Err(format!(
                "unknown store {other:?} (expected one of: memory, shared, local)"
            )),
        }
    }
}

/// The simulated deployment: how many gateways, their clocks, and the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    /// Where state lives.
    pub store: StoreModel,
    /// Number of gateways; requests are spread over them at random.
    pub gateways: u32,
    /// Clock offsets of the gateways are spread evenly over `[-skew/2, +skew/2]`.
    pub skew: Nanos,
    /// Round trip from a gateway to the shared store.
    pub rtt: Nanos,
    /// Each round trip is `rtt` plus a uniform draw from `[-jitter, +jitter]`.
    pub jitter: Nanos,
}

impl Default for Deployment {
    fn default() -> Self {
        Self {
            store: StoreModel::Memory,
            gateways: 1,
            skew: 0,
            rtt: 0,
            jitter: 0,
        }
    }
}

impl Deployment {
    /// Checks the combination; the message names the offending setting.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.gateways == 0 || self.gateways > 1024 {
            return Err(("gateways", "must be between 1 and 1024".into()));
        }
        if self.store == StoreModel::Memory && self.gateways > 1 {
            return Err((
                "gateways",
                "store \"memory\" is one process; use store \"shared\" or \"local\" for several gateways"
                    .into(),
            ));
        }
        if self.skew > 3600 * SECOND {
            return Err(("skew", "must be at most 1h".into()));
        }
        if self.rtt > SECOND {
            return Err(("rtt", "must be at most 1s".into()));
        }
        if self.jitter > self.rtt {
            return Err(("jitter", "must be at most rtt".into()));
        }
        if self.store != StoreModel::Shared && (self.rtt > 0 || self.jitter > 0) {
            return Err((
                "rtt",
                "only a shared store has a round trip; use store \"shared\"".into(),
            ));
        }
        Ok(())
    }

    /// One line for tables and results: `shared: 3 gateways, skew 2s, rtt 1ms ± 500µs`.
    pub fn describe(&self) -> String {
        match self.store {
            StoreModel::Memory => "memory: one process".to_owned(),
            StoreModel::Local | StoreModel::Shared => {
                let mut s = format!(
                    "{}: {} gateway{}, skew {}",
                    self.store,
                    self.gateways,
                    if self.gateways == 1 { "" } else { "s" },
                    format_duration(self.skew)
                );
                if self.store == StoreModel::Shared {
                    s.push_str(&format!(", rtt {}", format_duration(self.rtt)));
                    if self.jitter > 0 {
                        s.push_str(&format!(" ± {}", format_duration(self.jitter)));
                    }
                }
                s
            }
        }
    }
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    name: Option<Spanned<String>>,
    description: Option<String>,
    seed: Option<u64>,
    users: Option<Spanned<RawUsers>>,
    arrivals: Option<Spanned<RawArrivals>>,
    deployment: Option<Spanned<RawDeployment>>,
    #[serde(default)]
    phase: Vec<Spanned<RawPhase>>,
    #[serde(default)]
    endpoint: Vec<Spanned<RawEndpoint>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUsers {
    count: Spanned<u64>,
    distribution: Option<Spanned<String>>,
    exponent: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArrivals {
    process: Spanned<String>,
    on: Option<Spanned<String>>,
    off: Option<Spanned<String>>,
    window: Option<Spanned<String>>,
    spread: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeployment {
    store: Option<Spanned<String>>,
    gateways: Option<Spanned<u64>>,
    skew: Option<Spanned<String>>,
    rtt: Option<Spanned<String>>,
    jitter: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhase {
    name: Spanned<String>,
    duration: Spanned<String>,
    rate: Spanned<f64>,
    ramp_to: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    path: Spanned<String>,
    weight: Option<Spanned<f64>>,
    limit: Spanned<u64>,
    window: Spanned<String>,
    burst: Option<Spanned<u64>>,
    cost: Option<Spanned<u64>>,
}

/// Turns raw TOML values into a [`Workload`], naming file, line and key on error.
struct Validator<'a> {
    text: &'a str,
    file: &'a str,
}

impl Validator<'_> {
    fn err(
        &self,
        offset: usize,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> WorkloadError {
        WorkloadError::Invalid {
            file: self.file.to_owned(),
            line: line_col(self.text, offset).0,
            key: key.into(),
            message: message.into(),
        }
    }

    fn duration(&self, v: &Spanned<String>, key: &str) -> Result<Nanos, WorkloadError> {
        parse_duration(v.get_ref()).map_err(|m| self.err(v.span().start, key, m))
    }

    fn rate(&self, v: &Spanned<f64>, key: &str) -> Result<f64, WorkloadError> {
        let r = *v.get_ref();
        if !(0.0..=1e9).contains(&r) {
            return Err(self.err(
                v.span().start,
                key,
                format!("must be a number of arrivals per second between 0 and 1e9, not {r}"),
            ));
        }
        Ok(r)
    }

    fn workload(&self, raw: RawWorkload, default_name: &str) -> Result<Workload, WorkloadError> {
        let name = match &raw.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                return Err(self.err(n.span().start, "name", "must not be empty"));
            }
            Some(n) => n.get_ref().trim().to_owned(),
            None => default_name.to_owned(),
        };
        let users = self.users(raw.users.as_ref())?;
        let process = self.arrivals(raw.arrivals.as_ref())?;
        let deployment = self.deployment(raw.deployment.as_ref())?;
        if raw.phase.is_empty() {
            return Err(self.err(0, "phase", "a workload needs at least one [[phase]]"));
        }
        let mut phases = Vec::with_capacity(raw.phase.len());
        let mut start: Nanos = 0;
        for (i, p) in raw.phase.iter().enumerate() {
            let p = p.get_ref();
            let key = |k: &str| format!("phase[{i}].{k}");
            let pname = p.name.get_ref().trim();
            if pname.is_empty() {
                return Err(self.err(p.name.span().start, key("name"), "must not be empty"));
            }
            let duration = self.duration(&p.duration, &key("duration"))?;
            if duration == 0 {
                return Err(self.err(p.duration.span().start, key("duration"), "must be positive"));
            }
            let rate = self.rate(&p.rate, &key("rate"))?;
            let rate_end = match &p.ramp_to {
                Some(r) => self.rate(r, &key("ramp_to"))?,
                None => rate,
            };
            if start.saturating_add(duration) > 30 * 24 * 3600 * SECOND {
                return Err(self.err(
                    p.duration.span().start,
                    key("duration"),
                    "the phases add up to more than 30 days",
                ));
            }
            phases.push(Phase {
                name: pname.to_owned(),
                start,
                duration,
                rate,
                rate_end,
            });
            start += duration;
        }
        let expected: f64 = phases.iter().map(Phase::expected_arrivals).sum();
        if expected > MAX_ARRIVALS {
            let first = raw.phase[0].get_ref();
            return Err(self.err(
                first.rate.span().start,
                "phase[*].rate",
                format!(
                    "the phases ask for about {expected:.0} arrivals; the simulator takes at most {MAX_ARRIVALS:.0}"
                ),
            ));
        }
        if raw.endpoint.is_empty() {
            return Err(self.err(0, "endpoint", "a workload needs at least one [[endpoint]]"));
        }
        if raw.endpoint.len() > 256 {
            return Err(self.err(
                raw.endpoint[256].span().start,
                "endpoint",
                "at most 256 endpoints",
            ));
        }
        let mut endpoints = Vec::with_capacity(raw.endpoint.len());
        for (i, e) in raw.endpoint.iter().enumerate() {
            endpoints.push(self.endpoint(i, e.get_ref())?);
        }
        let keys = users.count as u64 * endpoints.len() as u64;
        if keys > MAX_KEYS {
            return Err(self.err(
                raw.users.as_ref().map_or(0, |u| u.span().start),
                "users.count",
                format!("users × endpoints is {keys} keys; the simulator takes at most {MAX_KEYS}"),
            ));
        }
        if let Process::Boundary { window, .. } = process
            && expected > 0.0
            && window > start
        {
            let at = raw.arrivals.as_ref().map_or(0, |a| a.span().start);
            return Err(self.err(
                at,
                "arrivals.window",
                "is longer than the whole workload: no window edge to attack",
            ));
        }
        Ok(Workload {
            name,
            description: raw.description.unwrap_or_default().trim().to_owned(),
            source: self.file.to_owned(),
            seed: raw.seed.unwrap_or(1),
            users,
            process,
            phases,
            endpoints,
            deployment,
        })
    }

    fn users(&self, raw: Option<&Spanned<RawUsers>>) -> Result<Users, WorkloadError> {
        let Some(raw) = raw else {
            return Ok(Users {
                count: 1,
                distribution: UserDistribution::Uniform,
            });
        };
        let u = raw.get_ref();
        let count = *u.count.get_ref();
        if count == 0 || count > u32::MAX as u64 {
            return Err(self.err(
                u.count.span().start,
                "users.count",
                "must be between 1 and 4294967295",
            ));
        }
        let kind = u
            .distribution
            .as_ref()
            .map_or("uniform", |d| d.get_ref().as_str());
        let distribution = match kind {
            "uniform" => {
                if let Some(e) = &u.exponent {
                    return Err(self.err(
                        e.span().start,
                        "users.exponent",
                        "only a zipf distribution has an exponent",
                    ));
                }
                UserDistribution::Uniform
            }
            "zipf" => {
                let exponent = u.exponent.as_ref().map_or(1.0, |e| *e.get_ref());
                if !(exponent.is_finite() && exponent > 0.0 && exponent <= 10.0) {
                    let at = u
                        .exponent
                        .as_ref()
                        .map_or(raw.span().start, |e| e.span().start);
                    return Err(self.err(at, "users.exponent", "must be a number in (0, 10]"));
                }
                UserDistribution::Zipf { exponent }
            }
            other => {
                let at = u
                    .distribution
                    .as_ref()
                    .map_or(raw.span().start, |d| d.span().start);
                return Err(self.err(
                    at,
                    "users.distribution",
                    format!("unknown distribution {other:?} (expected one of: uniform, zipf)"),
                ));
            }
        };
        Ok(Users {
            count: count as u32,
            distribution,
        })
    }

    fn arrivals(&self, raw: Option<&Spanned<RawArrivals>>) -> Result<Process, WorkloadError> {
        let Some(raw) = raw else {
            return Ok(Process::Constant);
        };
        let a = raw.get_ref();
        let extra = |v: &Option<Spanned<String>>, k: &str, p: &str| match v {
            Some(v) => Err(self.err(
                v.span().start,
                format!("arrivals.{k}"),
                format!("does not apply to process {p:?}"),
            )),
            None => Ok(()),
        };
        let need = |v: &Option<Spanned<String>>, k: &str| -> Result<Nanos, WorkloadError> {
            match v {
                Some(v) => {
                    let d = self.duration(v, &format!("arrivals.{k}"))?;
                    if d == 0 {
                        return Err(self.err(
                            v.span().start,
                            format!("arrivals.{k}"),
                            "must be positive",
                        ));
                    }
                    Ok(d)
                }
                None => Err(self.err(
                    raw.span().start,
                    format!("arrivals.{k}"),
                    "is required for this process",
                )),
            }
        };
        let name = a.process.get_ref().as_str();
        match name {
            "constant" | "poisson" => {
                extra(&a.on, "on", name)?;
                extra(&a.off, "off", name)?;
                extra(&a.window, "window", name)?;
                extra(&a.spread, "spread", name)?;
                Ok(if name == "constant" {
                    Process::Constant
                } else {
                    Process::Poisson
                })
            }
            "onoff" => {
                extra(&a.window, "window", name)?;
                extra(&a.spread, "spread", name)?;
                Ok(Process::OnOff {
                    on: need(&a.on, "on")?,
                    off: need(&a.off, "off")?,
                })
            }
            "boundary" => {
                extra(&a.on, "on", name)?;
                extra(&a.off, "off", name)?;
                let window = need(&a.window, "window")?;
                let spread = match &a.spread {
                    Some(_) => need(&a.spread, "spread")?,
                    None => (window / 100).max(1),
                };
                if spread > window / 2 {
                    let at = a.spread.as_ref().map_or(raw.span().start, |s| s.span().start);
                    return Err(self.err(at, "arrivals.spread", "must be at most half the window"));
                }
                Ok(Process::Boundary { window, spread })
            }
            other => Err(self.err(
                a.process.span().start,
                "arrivals.process",
                format!(
                    "unknown arrival process {other:?} (expected one of: constant, poisson, onoff, boundary)"
                ),
            )),
        }
    }

    fn deployment(
        &self,
        raw: Option<&Spanned<RawDeployment>>,
    ) -> Result<Deployment, WorkloadError> {
        let Some(raw) = raw else {
            return Ok(Deployment::default());
        };
        let d = raw.get_ref();
        let mut out = Deployment::default();
        let at = |k: &str| -> usize {
            let s = match k {
                "store" => d.store.as_ref().map(|v| v.span().start),
                "gateways" => d.gateways.as_ref().map(|v| v.span().start),
                "skew" => d.skew.as_ref().map(|v| v.span().start),
                "rtt" => d.rtt.as_ref().map(|v| v.span().start),
                "jitter" => d.jitter.as_ref().map(|v| v.span().start),
                _ => None,
            };
            s.unwrap_or(raw.span().start)
        };
        if let Some(s) = &d.store {
            out.store = s
                .get_ref()
                .parse()
                .map_err(|m: String| self.err(s.span().start, "deployment.store", m))?;
        }
        if let Some(g) = &d.gateways {
            out.gateways = u32::try_from(*g.get_ref()).unwrap_or(u32::MAX);
        }
        if let Some(v) = &d.skew {
            out.skew = self.duration(v, "deployment.skew")?;
        }
        if let Some(v) = &d.rtt {
            out.rtt = self.duration(v, "deployment.rtt")?;
        }
        if let Some(v) = &d.jitter {
            out.jitter = self.duration(v, "deployment.jitter")?;
        }
        out.validate()
            .map_err(|(k, m)| self.err(at(k), format!("deployment.{k}"), m))?;
        Ok(out)
    }

    fn endpoint(&self, i: usize, e: &RawEndpoint) -> Result<Endpoint, WorkloadError> {
        let key = |k: &str| format!("endpoint[{i}].{k}");
        let path = e.path.get_ref().trim();
        if path.is_empty() {
            return Err(self.err(e.path.span().start, key("path"), "must not be empty"));
        }
        let weight = e.weight.as_ref().map_or(1.0, |w| *w.get_ref());
        if !(weight.is_finite() && weight > 0.0) {
            let at = e
                .weight
                .as_ref()
                .map_or(e.path.span().start, |w| w.span().start);
            return Err(self.err(at, key("weight"), "must be a positive number"));
        }
        let limit = *e.limit.get_ref();
        if limit == 0 || limit > MAX_LIMIT {
            return Err(self.err(
                e.limit.span().start,
                key("limit"),
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let window = self.duration(&e.window, &key("window"))?;
        let quota = Quota::new(limit, Duration::from_nanos(window))
            .map_err(|err| self.err(e.window.span().start, key("window"), err.to_string()))?;
        let quota = match &e.burst {
            Some(b) => quota
                .with_burst(*b.get_ref())
                .map_err(|err| self.err(b.span().start, key("burst"), err.to_string()))?,
            None => quota,
        };
        let cost = e.cost.as_ref().map_or(1, |c| *c.get_ref());
        let most = quota.limit().min(quota.burst());
        if cost == 0 || cost > most {
            let at = e
                .cost
                .as_ref()
                .map_or(e.limit.span().start, |c| c.span().start);
            return Err(self.err(
                at,
                key("cost"),
                format!("must be between 1 and the smaller of limit and burst ({most})"),
            ));
        }
        Ok(Endpoint {
            path: path.to_owned(),
            weight,
            quota,
            cost,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse() {
        for (name, _) in BUILTINS {
            let w = Workload::load(name).unwrap();
            assert_eq!(w.name, name);
            assert!(!w.description.is_empty());
            assert!(w.expected_arrivals() > 0.0);
        }
    }

    #[test]
    fn seed_is_the_original_load_test() {
        let w = Workload::load("seed").unwrap();
        let phases: Vec<_> = w
            .phases
            .iter()
            .map(|p| (p.name.as_str(), p.duration / SECOND, p.rate))
            .collect();
        assert_eq!(
            phases,
            [
                ("warm-up", 60, 10.0),
                ("steady", 60, 30.0),
                ("spike", 30, 60.0)
            ]
        );
        assert_eq!(w.users.count, 1);
        assert_eq!(w.endpoints.len(), 1);
        let q = w.endpoints[0].quota;
        assert_eq!(
            (q.limit(), q.period_nanos(), q.burst()),
            (5, 60 * SECOND, 5)
        );
        assert_eq!(w.expected_arrivals(), 4200.0);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration("1s500ms"), Ok(1_500_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90 * SECOND));
        assert_eq!(parse_duration("1d"), Ok(86_400 * SECOND));
        assert_eq!(parse_duration("2m"), Ok(120 * SECOND));
        assert_eq!(parse_duration("1h"), Ok(3600 * SECOND));
        assert_eq!(parse_duration("250us"), Ok(250_000));
        assert_eq!(parse_duration("0s"), Ok(0));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1e30h").is_err());
        assert!(parse_duration("11years").is_err());
        assert_eq!(format_duration(60 * SECOND), "60s");
        assert_eq!(format_duration(1_500_000_000), "1.5s");
        assert_eq!(format_duration(500_000), "500µs");
        assert_eq!(format_duration(3600 * SECOND), "1h");
    }

    fn parse(text: &str) -> Result<Workload, WorkloadError> {
        Workload::parse(text, "w.toml", "w")
    }

    const OK: &str = r#"
[[phase]]
name = "p"
duration = "10s"
rate = 5

[[endpoint]]
path = "/a"
limit = 5
window = "1s"
"#;

    #[test]
    fn minimal_file_takes_defaults() {
        let w = parse(OK).unwrap();
        assert_eq!(w.name, "w");
        assert_eq!(w.seed, 1);
        assert_eq!(w.process, Process::Constant);
        assert_eq!(w.deployment, Deployment::default());
        assert_eq!(w.endpoints[0].quota.burst(), 5);
        assert_eq!(w.endpoints[0].cost, 1);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let bad = OK.replace("limit = 5", "limit = 0");
        let e = parse(&bad).unwrap_err().to_string();
        assert_eq!(
            e,
            "w.toml:9: endpoint[0].limit: must be between 1 and 4294967295"
        );

        let bad = OK.replace("rate = 5", "rate = -5");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.starts_with("w.toml:5: phase[0].rate: must be"), "{e}");

        let bad = OK.replace("window = \"1s\"", "window = \"1 fortnight\"");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(
            e.starts_with("w.toml:10: endpoint[0].window: \"1 fortnight\" is not a duration"),
            "{e}"
        );

        let bad = OK.replace("rate = 5", "rate = 5\nrat = 6");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.starts_with("w.toml:6:1: unknown field `rat`"), "{e}");

        let bad = format!("{OK}\n[users]\ncount = 10\ndistribution = \"pareto\"\n");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(
            e.contains("users.distribution: unknown distribution \"pareto\""),
            "{e}"
        );

        let bad = format!("{OK}\n[arrivals]\nprocess = \"onoff\"\non = \"1s\"\n");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.contains("arrivals.off: is required"), "{e}");

        let bad = OK.replace("window = \"1s\"", "window = \"1s\"\ncost = 6");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.starts_with("w.toml:11: endpoint[0].cost:"), "{e}");

        let bad = format!("{OK}\n[deployment]\ngateways = 3\n");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(
            e.contains("deployment.gateways: store \"memory\" is one process"),
            "{e}"
        );

        let e = parse("[[phase]]\nname = \"p\"\n").unwrap_err().to_string();
        assert!(e.starts_with("w.toml:1:1: missing field `duration`"), "{e}");

        let e = parse("this is = not toml").unwrap_err().to_string();
        assert!(e.starts_with("w.toml:1:"), "{e}");
    }

    #[test]
    fn unknown_workload_names_itself() {
        let e = Workload::load("no-such-workload").unwrap_err().to_string();
        assert!(e.contains("\"no-such-workload\""), "{e}");
        assert!(e.contains("seed, boundary, api-mix, onoff"), "{e}");
    }

    #[test]
    fn deployments_validate() {
        let d = Deployment {
            store: StoreModel::Shared,
            gateways: 3,
            skew: 2 * SECOND,
            rtt: 1_000_000,
            jitter: 500_000,
        };
        assert!(d.validate().is_ok());
        assert_eq!(d.describe(), "shared: 3 gateways, skew 2s, rtt 1ms ± 500µs");
        assert!(
            Deployment {
                jitter: 2_000_000,
                ..d
            }
            .validate()
            .is_err()
        );
        assert!(Deployment { gateways: 0, ..d }.validate().is_err());
        assert!(
            Deployment {
                store: StoreModel::Local,
                ..d
            }
            .validate()
            .is_err()
        );
    }
}
