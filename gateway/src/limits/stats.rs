//! A route's counters: decisions by outcome, store fallbacks, decision time and
//! settles; carried over by a reload that keeps the route's name.

use super::cost::SettleStats;
use crate::metrics::{Counter, DECISION_BUCKETS, Histogram};

/// Per-route counters.
#[derive(Debug)]
pub struct RouteStats {
    /// Requests admitted by the store.
    pub allowed: Counter,
    /// Requests refused with `429`.
    pub denied: Counter,
    /// Requests the limits refused but a shadow route let through.
    pub shadow_denied: Counter,
    /// Requests refused with `400` (bad identity, cost too high).
    pub rejected: Counter,
    /// Requests refused with `503` (store down, fail-closed).
    pub unavailable: Counter,
    /// Store failures answered by admitting (fail-open).
    pub fallback_open: Counter,
    /// Store failures answered by refusing (fail-closed).
    pub fallback_closed: Counter,
    /// Store failures decided by the in-memory fallback.
    pub fallback_local: Counter,
    /// Time to decide.
    pub decision_latency: Histogram,
    /// Costs settled after the response (`cost_from_response`), by result.
    pub settles: SettleStats,
}

impl Default for RouteStats {
    fn default() -> Self {
        Self {
            allowed: Counter::default(),
            denied: Counter::default(),
            shadow_denied: Counter::default(),
            rejected: Counter::default(),
            unavailable: Counter::default(),
            fallback_open: Counter::default(),
            fallback_closed: Counter::default(),
            fallback_local: Counter::default(),
            decision_latency: Histogram::new(DECISION_BUCKETS),
            settles: SettleStats::default(),
        }
    }
}
