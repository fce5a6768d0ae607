//! The store-mode curve: N simulated gateways sharing one store in each mode
//! (`exact`, `lease` at several parameter values, `local` = each gateway alone), what
//! each point cost the store and the client, beside its accuracy.
//!
//! `ratelab simulate --store-mode ...` writes one [`Run`](crate::Run) per point (its
//! accuracy and latency figures, per phase and over the run, judged as every run is)
//! and this section, which says what the point was and what it cost: store calls per
//! decision and the decisions made without the store. Optional in `results.json`, so
//! readers of other runs are unaffected.

use serde::{Deserialize, Serialize};

/// Every point of one store-mode curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreCurve {
    /// Gateways sharing the store.
    pub gateways: u32,
    /// Modelled round trip from a gateway to the store, microseconds.
    pub rtt_us: f64,
    /// Uniform ± jitter on each round trip, microseconds.
    pub jitter_us: f64,
    /// One point per algorithm and mode (and lease parameters), in `runs` order.
    pub points: Vec<StorePoint>,
}

/// One algorithm in one store mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorePoint {
    /// Index of this point's run in `runs` (accuracy and latency figures).
    pub run: usize,
    /// The algorithm.
    pub algorithm: String,
    /// `exact`, `lease` or `local`.
    pub mode: String,
    /// `lease.max` (lease mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_max: Option<u64>,
    /// `lease.ttl`, seconds (lease mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ttl_s: Option<f64>,
    /// The mode's stated worst case, cost units over the envelope per key in any
    /// interval: 0 exact, N × `lease.max` lease; `null` for `local` (no bound: N ×
    /// the policy).
    pub excess_bound: Option<u64>,
    /// Decisions made.
    pub decisions: u64,
    /// Calls to the shared store (0 for `local`).
    pub store_calls: u64,
    /// `store_calls / decisions`.
    pub calls_per_decision: f64,
    /// Admitted from a lease in hand, without a store call.
    pub local_allowed: u64,
    /// Refused by a local denial, without a store call.
    pub local_denied: u64,
    /// Units taken by leases that expired unspent (under-admission).
    pub stranded: u64,
}

impl StorePoint {
    /// The point's name in tables and legends: `exact`, `local`, `lease 64/1s`.
    pub fn label(&self) -> String {
        match (self.lease_max, self.lease_ttl_s) {
            (Some(max), Some(ttl)) => format!("{} {max}/{}", self.mode, seconds(ttl)),
            _ => self.mode.clone(),
        }
    }
}

/// `1s`, `250ms`, `1.5s`: short, for labels.
fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{}ms", (s * 1_000.0).round())
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_the_lease_parameters() {
        let mut p = StorePoint {
            run: 0,
            algorithm: "gcra".into(),
            mode: "lease".into(),
            lease_max: Some(64),
            lease_ttl_s: Some(0.25),
            excess_bound: Some(192),
            decisions: 10,
            store_calls: 1,
            calls_per_decision: 0.1,
            local_allowed: 9,
            local_denied: 0,
            stranded: 0,
        };
        assert_eq!(p.label(), "lease 64/250ms");
        p.lease_ttl_s = Some(1.0);
        assert_eq!(p.label(), "lease 64/1s");
        p.mode = "exact".into();
        (p.lease_max, p.lease_ttl_s) = (None, None);
        assert_eq!(p.label(), "exact");
    }
}
