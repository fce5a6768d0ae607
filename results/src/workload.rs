//! The workload as played, copied into the results so they read without the workload
//! file.

use serde::{Deserialize, Serialize};

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
