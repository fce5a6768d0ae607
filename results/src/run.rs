//! One algorithm on one store: its figures per phase and in total, and its counts per
//! interval for plots over time.

use serde::{Deserialize, Serialize};

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
    pub phases: Vec<PhaseStats>,
    /// Over the whole run (named `total`).
    pub totals: PhaseStats,
    /// Per-interval counts (and latencies when measured) for plots over time.
    pub series: Series,
}

/// Figures for one phase (or the whole run). Accuracy figures follow DESIGN.md's
/// "Accuracy, defined once".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseStats {
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
    /// Superseded by `wronged_users` (it read 1.000 in every run): Jain's index over
    /// users of admitted / reference-admitted. Read from older files, no longer written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness: Option<f64>,
    /// Share of the users who sent something that had a request refused which the
    /// exact reference admits — throttled while within their policy; 0 is perfect.
    /// `null` when no user sent anything (or in files written before it existed).
    #[serde(default)]
    pub wronged_users: Option<f64>,
    /// Decision latency, microseconds: modelled store round trips (simulated) or
    /// response times (measured: from the instant each request was due to its complete
    /// response, so a request the load generator sent late counts its lateness —
    /// coordinated omission corrected, as wrk2 does); `null` when not modelled.
    #[serde(default)]
    pub latency_us: Option<LatencySummary>,
    /// The fixed window's boundary burst, summed over keys: admitted beyond what the
    /// exact sliding log admits on the same arrivals (`limit` in any window-length
    /// interval) — what a window boundary lets through that the policy's sliding
    /// reading refuses. Written only for algorithms judged on their own aligned windows
    /// (the fixed window, whose over-admission is against the exact fixed window), so
    /// its known weakness stays a figure of its own; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary_burst: Option<u64>,
}

/// Latency percentiles, microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
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
    pub latency_us: Vec<Option<LatencySummary>>,
}
