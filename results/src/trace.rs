//! A replayed access log: what each algorithm and limit would have done to real traffic.
//!
//! `ratelab simulate --trace` writes these beside the usual [`Run`](crate::Run)s (one
//! per algorithm, with the accuracy figures and rejections over time in its `series`):
//! what the log held, who would have been throttled on which route, the false
//! positives against the exact sliding log, and with `--sweep` the share of requests
//! and identities throttled at each grid point. All optional in `results.json`, so
//! readers of synthetic runs are unaffected.

use serde::{Deserialize, Serialize};

/// Everything a trace replay adds to the results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceReplay {
    /// What was read.
    pub input: TraceInput,
    /// The routes the log was replayed against, in match order.
    pub routes: Vec<TraceRoute>,
    /// Per algorithm (in the order of `runs`): throttling by route and identity.
    pub algorithms: Vec<TraceAlgorithm>,
    /// With `--sweep`: one point per algorithm and grid cell.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweep: Vec<SweepPoint>,
}

/// The log as read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceInput {
    /// The file (`-` for standard input).
    pub path: String,
    /// `combined`, `json` or `csv` (and the log format string, when custom).
    pub format: String,
    /// Lines read (blank lines included).
    pub lines: u64,
    /// Requests replayed.
    pub requests: u64,
    /// Lines that could not be read as a request.
    pub malformed: u64,
    /// The first malformed lines: `line N: why`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub malformed_examples: Vec<String>,
    /// Requests older than the reorder window allowed: replayed at the window's
    /// edge, never dropped.
    pub late: u64,
    /// The first late requests: `line N: T s behind`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub late_examples: Vec<String>,
    /// Requests no route (and no default) limits: not replayed, as the gateway would
    /// pass them.
    pub unrouted: u64,
    /// Requests the log itself records as 429.
    pub logged_429: u64,
    /// Distinct identities seen.
    pub identities: u64,
    /// The first request's time (RFC 3339, UTC).
    pub first: String,
    /// The last request's time (RFC 3339, UTC).
    pub last: String,
    /// The reorder window, seconds.
    pub reorder_window_s: f64,
    /// Virtual time starts at this instant (UTC midnight of the first request's day),
    /// so fixed windows align to the wall clock.
    pub origin: String,
}

/// One route as replayed: its template and the policy every algorithm is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRoute {
    /// The template (`/api/orders/{id}`), or `default`.
    pub route: String,
    /// Units admitted per window.
    pub limit: u64,
    /// Window length, seconds.
    pub window_s: f64,
    /// Burst (bucket capacity).
    pub burst: u64,
    /// Units each request costs.
    pub cost: u64,
}

/// One algorithm's throttling of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceAlgorithm {
    /// The algorithm.
    pub algorithm: String,
    /// Per route, in `routes` order.
    pub routes: Vec<RouteThrottle>,
    /// The identities with the most rejected requests, most first.
    pub top_identities: Vec<ThrottledIdentity>,
    /// Identities throttled at least once.
    pub identities_throttled: u64,
    /// Identities this algorithm throttled that the exact sliding log (the policy read
    /// exactly: never more than `limit` in any window) never throttled.
    pub false_positive_identities: u64,
    /// Rejections on keys (identity × route) the exact sliding log never throttled.
    pub false_positive_requests: u64,
}

/// One route under one algorithm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteThrottle {
    /// The route template.
    pub route: String,
    /// Requests.
    pub requests: u64,
    /// Requests rejected.
    pub rejected: u64,
    /// Identities that sent requests.
    pub identities: u64,
    /// Identities with at least one rejection.
    pub identities_throttled: u64,
}

/// One identity's rejections under one algorithm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThrottledIdentity {
    /// The identity (API key holder, header value or client IP / prefix).
    pub identity: String,
    /// Requests it sent.
    pub requests: u64,
    /// Requests rejected.
    pub rejected: u64,
}

/// One algorithm at one grid point of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// The algorithm.
    pub algorithm: String,
    /// Every route's limit at this point.
    pub limit: u64,
    /// Burst as a multiple of the limit.
    pub burst_factor: f64,
    /// Requests.
    pub requests: u64,
    /// Requests rejected.
    pub rejected: u64,
    /// Identities seen.
    pub identities: u64,
    /// Identities with at least one rejection.
    pub identities_throttled: u64,
}

impl SweepPoint {
    /// Share of requests rejected, 0..=1.
    pub fn request_share(&self) -> f64 {
        share(self.rejected, self.requests)
    }

    /// Share of identities throttled at least once, 0..=1.
    pub fn identity_share(&self) -> f64 {
        share(self.identities_throttled, self.identities)
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}
