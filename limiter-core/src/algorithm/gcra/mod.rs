//! GCRA, the generic cell rate algorithm (ATM Forum TM 4.0; "leaky bucket as a meter").
//!
//! Each key holds one number, its theoretical arrival time (TAT): when the key would
//! be back to a full allowance. A request of cost `c` is admitted when, after adding
//! `c` emission intervals `T = period / limit`, the TAT stays within `burst × T` of
//! now. Guarantee: in any interval of length `t`, at most `burst + t / T` cost units
//! are admitted.
//!
//! ```
//! use limiter_core::algorithm::Gcra;
//! use limiter_core::{Algorithm, Quota};
//!
//! let gcra = Gcra::new(Quota::per_second(10).unwrap().with_burst(2).unwrap());
//! let key = gcra.new_shared();
//! assert!(gcra.check(&key, 0, 1).unwrap().allowed);
//! assert!(gcra.check(&key, 0, 1).unwrap().allowed);
//! let denied = gcra.check(&key, 0, 1).unwrap();
//! assert!(!denied.allowed);
//! assert_eq!(denied.retry_after.as_millis(), 100); // one emission interval
//! ```

use std::sync::atomic::AtomicU64;

use super::{Algorithm, Bound, Envelope, Kind, Reference, dur, ensure_fits};
use crate::clock::Nanos;
use crate::decision::Decision;
use crate::error::Result;
use crate::limiter::Policy;
use crate::quota::Quota;

#[cfg(feature = "redis")]
mod redis;

/// GCRA over one `AtomicU64` per key, updated in a compare-and-swap loop.
#[derive(Debug, Clone)]
pub struct Gcra {
    quota: Quota,
    /// Emission interval: nanoseconds per cost unit.
    t: Nanos,
    /// Tolerance: how far ahead of now the TAT may run (`burst × T`).
    tau: Nanos,
}

impl Gcra {
    /// The decision for a key whose TAT is `tat`, and the TAT to store if admitted.
    #[inline]
    pub fn decide(&self, tat: Nanos, now: Nanos, cost: u64) -> Result<(Decision, Option<Nanos>)> {
        let burst = self.quota.burst();
        ensure_fits(cost, burst)?;
        let base = tat.max(now);
        let new_tat = base.saturating_add(cost * self.t);
        let horizon = now.saturating_add(self.tau);
        if new_tat > horizon {
            // One unit refused leaves less than one emission interval before the
            // horizon (`base + t > horizon`), so nothing remains: the usual request
            // skips the division (`refused_single_units_leave_nothing` checks it).
            let remaining = if cost == 1 {
                0
            } else {
                horizon.saturating_sub(base) / self.t
            };
            let d = Decision::deny(burst, remaining, dur(base - now), dur(new_tat - horizon));
            return Ok((d, None));
        }
        let remaining = (horizon - new_tat) / self.t;
        Ok((
            Decision::allow(burst, remaining, dur(new_tat - now)),
            Some(new_tat),
        ))
    }
}

impl Gcra {
    /// What a request of cost 1 would be told at `now` by a key whose TAT is `tat`,
    /// without spending it (after a settle).
    fn balance(&self, tat: Nanos, now: Nanos) -> Decision {
        let burst = self.quota.burst();
        let base = tat.max(now);
        let horizon = now.saturating_add(self.tau);
        let remaining = horizon.saturating_sub(base) / self.t;
        let next = base.saturating_add(self.t);
        if next <= horizon {
            Decision::allow(burst, remaining, dur(base - now))
        } else {
            Decision::deny(burst, remaining, dur(base - now), dur(next - horizon))
        }
    }
}

impl Algorithm for Gcra {
    type State = u64;
    type Shared = AtomicU64;
    #[cfg(feature = "redis")]
    type Mirror = redis::Mirror;
    const KIND: Kind = Kind::Gcra;
    const NAME: &'static str = "gcra";
    const REFERENCE: Reference = Reference::TokenBucket;
    const GUARANTEE: &'static str = "`burst + rate × t` in every interval of length `t`";
    const STATE_PER_KEY: &'static str = "one u64, the theoretical arrival time (compare-and-swap)";

    fn from_policy(policy: &Policy) -> Self {
        let quota = policy.quota;
        let t = quota.emission_interval();
        Self {
            quota,
            t,
            tau: t.saturating_mul(quota.burst()),
        }
    }

    fn quota(&self) -> &Quota {
        &self.quota
    }

    fn capacity(&self) -> u64 {
        self.quota.burst()
    }

    fn fresh(&self) -> u64 {
        0
    }

    #[inline]
    fn step(&self, state: &mut u64, now: Nanos, cost: u64) -> Result<Decision> {
        super::keep(state, self.decide(*state, now, cost))
    }

    fn is_idle(&self, &state: &u64, now: Nanos) -> bool {
        state <= now
    }

    fn envelope(&self) -> Envelope {
        let q = &self.quota;
        Envelope::new([Bound::rate(q)])
    }

    const SETTLES: bool = true;

    /// The TAT moves by `(actual − reserved) × T` from `max(tat, now)`, never below
    /// `now` (a full allowance): reserving `r` then settling `r → a` at one instant
    /// leaves the TAT reserving `a` would, and a refund gives back exactly what the
    /// reservation took. The TAT may run past `now + tau` (a negative balance): checks
    /// refuse until it is back within reach; it saturates at `u64::MAX` ns.
    fn settle(&self, tat: &mut u64, now: Nanos, reserved: u64, actual: u64) -> Result<Decision> {
        let time = |cost: u64| cost as u128 * self.t as u128;
        let debited = (*tat).max(now) as u128 + time(actual);
        let next = debited.saturating_sub(time(reserved)).max(now as u128);
        *tat = u64::try_from(next).unwrap_or(u64::MAX);
        Ok(self.balance(*tat, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MS: Nanos = 1_000_000;

    #[test]
    fn full_burst_then_one_per_interval() {
        let g = Gcra::new(Quota::per_second(10).unwrap().with_burst(5).unwrap());
        let s = g.new_shared();
        for i in 0..5 {
            let d = g.check(&s, 0, 1).unwrap();
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 4 - i);
        }
        let d = g.check(&s, 0, 1).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Duration::from_millis(100));
        assert_eq!(d.reset_after, Duration::from_millis(500));
        assert!(!g.check(&s, 99 * MS, 1).unwrap().allowed);
        assert!(g.check(&s, 100 * MS, 1).unwrap().allowed);
        assert!(!g.check(&s, 100 * MS, 1).unwrap().allowed);
    }

    proptest::proptest! {
        #[test]
        fn refused_single_units_leave_nothing(
            limit in 1..=1_000u64,
            period_ms in 1..=100_000u64,
            burst in 1..=50u64,
            tat in 0..u64::MAX,
            now in 0..u64::MAX,
        ) {
            let q = Quota::new(limit, Duration::from_millis(period_ms))
                .and_then(|q| q.with_burst(burst))
                .unwrap();
            let g = Gcra::new(q);
            let (d, _) = g.decide(tat, now, 1).unwrap();
            if !d.allowed {
                let horizon = now.saturating_add(g.tau);
                proptest::prop_assert_eq!(d.remaining, horizon.saturating_sub(tat.max(now)) / g.t);
            }
        }
    }

    #[test]
    fn cost_above_burst_is_an_error_and_costs_count() {
        let g = Gcra::new(Quota::per_second(10).unwrap().with_burst(5).unwrap());
        let s = g.new_shared();
        let err = g.check(&s, 0, 6).unwrap_err();
        assert_eq!(err.cost_and_capacity(), Some((6, 5)));
        assert!(g.check(&s, 0, 5).unwrap().allowed);
        let d = g.check(&s, 0, 2).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Duration::from_millis(200));
        let s = s.into_inner();
        assert!(g.is_idle(&s, 500 * MS));
        assert!(!g.is_idle(&s, 499 * MS));
    }
}
