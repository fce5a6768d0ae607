//! What a measured run adds: how the load went, what the backend and the gateways
//! counted. Only `ratelab load` writes these; a simulated run has none.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How one measured run went: what the load generator offered and achieved, what the
/// backend and the gateways counted, and anything a reader must know before trusting
/// the figures (`notes`). Names its run by `algorithm` and `store`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// The run's algorithm, as in [`crate::Run::algorithm`].
    pub algorithm: String,
    /// The run's store, as in [`crate::Run::store`].
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
    pub statuses: BTreeMap<String, u64>,
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
    /// Service time of the requests planned in this phase, microseconds: from the
    /// instant each actually left to its complete response, lateness excluded (the
    /// run's `latency_us` counts from the instant each was due). `null` in results
    /// written before it was recorded, or when no request got an answer.
    #[serde(default)]
    pub service_latency_us: Option<crate::LatencySummary>,
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

/// Per-interval counts of a measured run, aligned with [`crate::Run::series`].
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
