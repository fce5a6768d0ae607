//! The one policy vocabulary: "`limit` per `window`, bursts of `burst`, each request
//! costing `cost`" — a `limiter_core::Quota` and a cost, checked by one rule wherever
//! it is written (a workload endpoint, a gateway route).
//!
//! The cost rule: a request may cost at most what the algorithm ever admits at once —
//! the burst (capacity) for the bucket algorithms, the limit for the windowed ones. A
//! gateway route runs one algorithm; a workload endpoint is played against every
//! algorithm, so it takes the smallest of them.

use limiter_core::{Kind, Policy, Quota};

/// A cost that no request could ever pay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cost must be between 1 and {most} (what {who} admits at once), got {cost}")]
pub struct CostError {
    /// The cost given.
    pub cost: u64,
    /// The largest cost allowed.
    pub most: u64,
    /// Which algorithms bound it, in words.
    pub who: String,
}

/// A policy and the cost of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicySpec {
    /// `limit` per `window`, bursts of `burst`.
    pub quota: Quota,
    /// Units one request costs (at least 1).
    pub cost: u64,
}

impl PolicySpec {
    /// The most units `kind` ever admits at once under `quota`: limiter-core's own
    /// `Policy::capacity` (the burst for the buckets, the limit for the windows).
    pub fn most_at_once(quota: &Quota, kind: Kind) -> u64 {
        Policy::new(kind, *quota).capacity()
    }

    /// `quota` with requests of `cost`, for every algorithm in `kinds` (a gateway route:
    /// its one algorithm; a workload: `Kind::ALL`).
    pub fn new(quota: Quota, cost: u64, kinds: &[Kind]) -> Result<Self, CostError> {
        let most = kinds
            .iter()
            .map(|k| Self::most_at_once(&quota, *k))
            .min()
            .unwrap_or(quota.limit().min(quota.burst()));
        if cost == 0 || cost > most {
            let who = match kinds {
                [one] => one.name().to_owned(),
                _ => "every algorithm".to_owned(),
            };
            return Err(CostError { cost, most, who });
        }
        Ok(Self { quota, cost })
    }

    /// The refill rate per second of the bucket algorithms: `limit / window`.
    pub fn refill_per_sec(&self) -> f64 {
        self.quota.limit() as f64 * 1e9 / self.quota.period_nanos() as f64
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn one_cost_rule() {
        let q = Quota::new(10, Duration::from_secs(1))
            .unwrap()
            .with_burst(4)
            .unwrap();
        assert!(PolicySpec::new(q, 10, &[Kind::FixedWindow]).is_ok());
        assert!(PolicySpec::new(q, 5, &[Kind::TokenBucket]).is_err());
        assert!(PolicySpec::new(q, 4, &[Kind::Gcra]).is_ok());
        let e = PolicySpec::new(q, 5, &Kind::ALL).unwrap_err();
        assert_eq!(e.most, 4);
        assert!(e.to_string().contains("every algorithm"), "{e}");
        assert!(PolicySpec::new(q, 0, &[Kind::FixedWindow]).is_err());
        let b = Quota::bucket(5, 0.5).unwrap();
        let p = PolicySpec::new(b, 5, &[Kind::TokenBucket]).unwrap();
        assert!((p.refill_per_sec() - 0.5).abs() < 1e-9);
    }
}
