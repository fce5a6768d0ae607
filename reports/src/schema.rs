//! The results schema, `ratelab.results/1`: what a simulated or measured run produced.
//!
//! Both the virtual-time simulator and the HTTP load driver write these types; the
//! renderers read only these types. Readers accept unknown fields (later minor
//! additions) but refuse another `schema` string. Serialization is deterministic:
//! the same values always give the same bytes (fields in declaration order, numbers
//! rounded by the producer), so a fixed seed gives a byte-identical `results.json`.
//!
//! ```json
//! {"schema": "ratelab.results/1", "source": "simulated", "workload": {...},
//!  "runs": [{"algorithm": "token-bucket", "store": "memory", "phases": [
//!     {"name": "warm-up", "offered": 600, "admitted": 9, "rejected": 591,
//!      "envelope_excess": 0.0, "over_admission": 0, "under_admission": 0,
//!      "burst_ratio": 1.8, "latency_us": null, ...}], "totals": {...},
//!   "series": {"step_s": 1.0, "offered": [...], "admitted": [...], "rejected": [...]}}]}
//! ```

use serde::{Deserialize, Serialize};

/// The schema identifier this crate reads and writes.
pub const SCHEMA: &str = "ratelab.results/1";

/// Everything one `ratelab simulate` or `ratelab load` produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// How the numbers were obtained.
    pub source: Source,
    /// The workload that was played.
    pub workload: WorkloadInfo,
    /// One run per algorithm (and store).
    pub runs: Vec<Run>,
    /// For measured runs: how the load went (offered vs achieved, statuses, ground
    /// truth, gateway counters), one entry per measured run. Absent when simulated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
}

/// How one measured run went: what the load generator offered and achieved, what the
/// backend and the gateways counted, and anything a reader must know before trusting
/// the figures (`notes`). Names its run by `algorithm` and `store`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// The run's algorithm, as in [`Run::algorithm`].
    pub algorithm: String,
    /// The run's store, as in [`Run::store`].
    pub store: String,
    /// The driver that sent the load, with its settings in words.
    pub driver: String,
    /// The gateway URLs requests were spread over.
    pub targets: Vec<String>,
    /// The workload's durations were multiplied by this (rates divided by it).
    pub time_scale: f64,
    /// The workload's rates were multiplied by this (durations kept).
    pub rate_scale: f64,
    /// False when the run stopped early or a target failed: the figures are partial.
    pub complete: bool,
    /// Plain-language warnings: a rate the driver could not hold, a target that is not a
    /// ratelab gateway, a run cut short.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Per phase: planned vs sent, offered vs achieved rate, how late requests left.
    pub phases: Vec<PhaseLoad>,
    /// Responses by status code (`"200"`, `"429"`), and `"timeout"`, `"connect"`,
    /// `"other"` for requests that got no response.
    pub statuses: std::collections::BTreeMap<String, u64>,
    /// What the backend counted, compared with the client's count; `null` when no
    /// backend was given.
    #[serde(default)]
    pub ground_truth: Option<GroundTruth>,
    /// The gateways' own counters over the run (summed over targets); `null` when the
    /// targets expose no ratelab metrics.
    #[serde(default)]
    pub gateway: Option<GatewayCounters>,
    /// Per-interval counts that the run's `series` does not carry.
    pub series: MeasuredSeries,
}

/// Offered vs achieved for one phase of a measured run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseLoad {
    /// Phase name.
    pub name: String,
    /// Requests the workload planned in this phase.
    pub planned: u64,
    /// Requests sent while this phase lasted (late ones from earlier phases included).
    pub sent: u64,
    /// Planned arrivals per second.
    pub offered_rate: f64,
    /// Sent per second.
    pub achieved_rate: f64,
    /// How late requests planned in this phase left, milliseconds: median.
    pub lag_ms_p50: f64,
    /// 99th percentile of the lateness, milliseconds.
    pub lag_ms_p99: f64,
    /// Requests that left more than the driver's tolerance (see `driver`) late.
    pub late: u64,
    /// True when the driver held the phase's rate: achieved at least 95% of offered and
    /// at most 1% of requests late.
    pub held: bool,
}

/// The backend's count against the client's, and both against the policy envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// Requests the backend counted during the run.
    pub backend_total: u64,
    /// Requests the client saw admitted (answered by the backend through the gateway).
    pub client_admitted: u64,
    /// Keys (user × endpoint) whose client and backend counts differ.
    pub keys_disagreeing: u64,
    /// Keys whose admitted count exceeds the policy envelope over the key's active
    /// span, counted at the client.
    pub client_keys_over_envelope: u64,
    /// The same, counted at the backend.
    pub backend_keys_over_envelope: u64,
    /// The most any key's backend count exceeds its envelope (requests; 0 is perfect).
    pub backend_worst_excess: u64,
}

/// Counters read from the gateways' `/metrics` before and after the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayCounters {
    /// Decisions that admitted.
    pub allowed: u64,
    /// Decisions that refused (429).
    pub denied: u64,
    /// Requests refused because the store failed (503, `fail-closed`).
    pub unavailable: u64,
    /// Decisions made by the failure policy because the store failed.
    pub fallbacks: u64,
}

/// Per-interval counts of a measured run, aligned with [`Run::series`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredSeries {
    /// Interval length, seconds.
    pub step_s: f64,
    /// Requests that failed otherwise (no response, 5xx) per interval.
    pub errors: Vec<u64>,
    /// Gateway decisions made by the failure policy per interval (empty when the
    /// gateways were not scraped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<u64>,
}

/// How a result was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Virtual time, in process: exact and deterministic, no latency unless modelled.
    Simulated,
    /// Real HTTP requests through a gateway.
    Measured,
}

impl Source {
    /// `simulated` or `measured`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Simulated => "simulated",
            Source::Measured => "measured",
        }
    }
}

/// The workload as played: enough to read the results without the workload file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadInfo {
    /// Its name (`seed`, `api-mix`, a file's stem).
    pub name: String,
    /// One line saying what it models.
    #[serde(default)]
    pub description: String,
    /// `built-in` or the file it was read from.
    #[serde(default)]
    pub source: String,
    /// The seed its arrivals were drawn with.
    pub seed: u64,
    /// Total length, seconds.
    pub duration_s: f64,
    /// Number of users.
    pub users: u64,
    /// How users were drawn: `uniform`, `zipf(s=1)`.
    #[serde(default)]
    pub user_distribution: String,
    /// The arrival process: `constant`, `poisson`, `onoff`, `boundary`.
    pub arrivals: String,
    /// The phases, in order.
    pub phases: Vec<PhaseInfo>,
    /// The endpoints and their policies.
    pub endpoints: Vec<EndpointInfo>,
}

/// One phase of the workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseInfo {
    /// Name (`warm-up`).
    pub name: String,
    /// Start, seconds from the beginning.
    pub start_s: f64,
    /// Length, seconds.
    pub duration_s: f64,
    /// Offered arrivals per second at its start.
    pub rate: f64,
    /// Offered arrivals per second at its end (differs from `rate` for a ramp).
    pub rate_end: f64,
}

/// One endpoint and the policy guarding it: `limit` per `window_s`, bursts of `burst`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointInfo {
    /// Route (`GET /api/orders/{id}`).
    pub path: String,
    /// Share of the traffic (relative weight).
    pub weight: f64,
    /// Units admitted per window.
    pub limit: u64,
    /// Window length, seconds.
    pub window_s: f64,
    /// Token bucket and GCRA capacity.
    pub burst: u64,
    /// Units each request costs.
    pub cost: u64,
}

/// One algorithm on one store, over the whole workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Algorithm name (`token-bucket`, `seed-replica`).
    pub algorithm: String,
    /// Store kind: `memory`, `shared`, `local` (simulated); `memory`, `redis`,
    /// `redis-cluster` (measured).
    pub store: String,
    /// The deployment in words (`shared: 3 gateways, skew 2s, rtt 1ms`).
    #[serde(default)]
    pub deployment: String,
    /// The exact limiter over- and under-admission are counted against.
    #[serde(default)]
    pub reference: String,
    /// Keys (user × endpoint) that saw at least one request.
    #[serde(default)]
    pub keys: u64,
    /// Bytes of limiter state for the worst key: the state's inline size plus what it
    /// holds on the heap (a sliding log's entries).
    #[serde(default)]
    pub memory_per_key_bytes: u64,
    /// Per phase, in workload order.
    pub phases: Vec<Stats>,
    /// Over the whole run (named `total`).
    pub totals: Stats,
    /// Per-interval counts (and latencies when measured) for plots over time.
    pub series: Series,
}

/// Figures for one phase (or the whole run). Accuracy figures follow DESIGN.md's
/// "Accuracy, defined once".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Phase name, or `total`.
    pub name: String,
    /// Requests sent.
    pub offered: u64,
    /// Requests admitted.
    pub admitted: u64,
    /// Requests rejected (429).
    pub rejected: u64,
    /// Requests that failed otherwise (timeouts, 5xx, store errors); measured runs only.
    #[serde(default)]
    pub errors: u64,
    /// Requests the exact reference limiter admits on the same arrivals.
    #[serde(default)]
    pub reference_admitted: u64,
    /// Worst key: the most by which admissions in any interval exceed the policy's
    /// envelope for that interval (cost units; 0 is perfect).
    pub envelope_excess: f64,
    /// Summed over keys: admitted minus the reference's admissions, where positive.
    pub over_admission: u64,
    /// Summed over keys: the reference's admissions minus admitted, where positive.
    pub under_admission: u64,
    /// Worst key: the most admitted in any window-length interval, over the limit
    /// (a fixed window reaches 2.0 at a boundary).
    pub burst_ratio: f64,
    /// Jain's fairness index over users of admitted / reference-admitted (1 = every
    /// user gets the same share of what the policy entitles it to); `null` when no user
    /// was entitled to anything.
    #[serde(default)]
    pub fairness: Option<f64>,
    /// Decision latency, microseconds: modelled store round trips (simulated) or
    /// end-to-end response times (measured); `null` when not modelled.
    #[serde(default)]
    pub latency_us: Option<Latency>,
}

/// Latency percentiles, microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

/// Values per interval of `step_s` seconds from the start of the run, for plots over
/// time. All vectors have the same length (latency: empty, or the same length).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Interval length, seconds.
    pub step_s: f64,
    /// Requests sent per interval.
    pub offered: Vec<u64>,
    /// Requests admitted per interval.
    pub admitted: Vec<u64>,
    /// Requests rejected per interval.
    pub rejected: Vec<u64>,
    /// Latency percentiles per interval (`null` for an interval without requests);
    /// empty when latency is not modelled or measured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency_us: Vec<Option<Latency>>,
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
    pub fn new(source: Source, workload: WorkloadInfo) -> Self {
        Self {
            schema: SCHEMA.to_owned(),
            source,
            workload,
            runs: Vec::new(),
            measurements: Vec::new(),
        }
    }

    /// Parses and checks results JSON.
    pub fn from_json(text: &str) -> Result<Self, crate::Error> {
        let r: Results = serde_json::from_str(text).map_err(crate::Error::Json)?;
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
    pub fn check(&self) -> Result<(), crate::Error> {
        if self.schema != SCHEMA {
            return Err(crate::Error::Schema(format!(
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
                return Err(crate::Error::Schema(format!(
                    "run {:?}: series vectors differ in length",
                    run.algorithm
                )));
            }
            if !(s.step_s.is_finite() && s.step_s > 0.0) {
                return Err(crate::Error::Schema(format!(
                    "run {:?}: series.step_s must be positive",
                    run.algorithm
                )));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Results {
        let stats = |name: &str| Stats {
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
            latency_us: None,
        };
        let mut r = Results::new(
            Source::Simulated,
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
