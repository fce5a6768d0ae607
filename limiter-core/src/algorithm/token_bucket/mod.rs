//! Token bucket: `burst` tokens, refilled continuously at `limit / period`, one token
//! spent per unit of cost.
//!
//! The classic pair (tokens, last refill) is folded into one number, the instant the
//! bucket will be full again (`full_at`): `tokens(now) = burst − (full_at − now) × rate`.
//! That makes the refill lazy and exact (rational arithmetic on integers, no float
//! that can drift past the capacity), and lets one `AtomicU64` hold the whole state.
//! Guarantee: in any interval of length `t`, at most `burst + rate × t` units are
//! admitted. It makes the same decisions as [`Gcra`](super::Gcra) up to rounding of a
//! nanosecond: GCRA is a token bucket seen from the other side.
//!
//! ```
//! use limiter_core::algorithm::TokenBucket;
//! use limiter_core::{Algorithm, Quota};
//!
//! // The original project's bucket: 5 tokens, 5 per minute.
//! let bucket = TokenBucket::new(Quota::per_minute(5).unwrap());
//! let key = bucket.new_shared();
//! for _ in 0..5 {
//!     assert!(bucket.check(&key, 0, 1).unwrap().allowed);
//! }
//! let denied = bucket.check(&key, 0, 1).unwrap();
//! assert_eq!(denied.retry_after.as_secs(), 12); // one token every 12 s
//! ```

use std::sync::atomic::AtomicU64;

use super::{Algorithm, Bound, Envelope, Kind, Reference, dur, ensure_fits};
use crate::clock::Nanos;
use crate::decision::Decision;
use crate::error::Result;
use crate::limiter::Policy;
use crate::quota::Quota;

#[cfg(feature = "redis")]
pub(crate) mod redis;

/// A token bucket over one `AtomicU64` per key, updated in a compare-and-swap loop.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    quota: Quota,
    /// Refill rate as tokens `limit` per `period` nanoseconds.
    limit: u128,
    period: u128,
    /// `burst × period`: the capacity in token-nanoseconds.
    capacity: u128,
    /// Nanoseconds one token costs, rounded up: `ceil(period / limit)` (cost 1, the
    /// usual request, skips a 128-bit division).
    spend_one: u64,
    /// The largest deficit (ns) at which one token still fits:
    /// `floor((capacity − period) / limit)`.
    fits_one: u64,
}

/// `n / d`, on the CPU's 64-bit divide when both fit (the usual case) instead of a
/// 128-bit division.
#[inline]
fn div(n: u128, d: u128) -> u128 {
    if (n | d) >> 64 == 0 {
        ((n as u64) / (d as u64)) as u128
    } else {
        n / d
    }
}

impl TokenBucket {
    /// The decision for a key whose bucket is full at `full_at`, and the new `full_at`
    /// to store if admitted.
    #[inline]
    pub fn decide(
        &self,
        full_at: Nanos,
        now: Nanos,
        cost: u64,
    ) -> Result<(Decision, Option<Nanos>)> {
        let burst = self.quota.burst();
        ensure_fits(cost, burst)?;
        // Missing tokens, in token-nanoseconds: (full_at − now) × limit.
        let deficit_time = full_at.saturating_sub(now);
        let missing = deficit_time as u128 * self.limit;
        let wanted = cost as u128 * self.period;
        if missing + wanted > self.capacity {
            let remaining = div(self.capacity - missing.min(self.capacity), self.period) as u64;
            // Wait until the deficit shrinks to (burst − cost) tokens' worth of time.
            let allowed_deficit = if cost == 1 {
                self.fits_one as u128
            } else {
                div(self.capacity - wanted, self.limit)
            };
            let retry = deficit_time - allowed_deficit as u64;
            let d = Decision::deny(burst, remaining, dur(deficit_time), dur(retry));
            return Ok((d, None));
        }
        let spend = if cost == 1 {
            self.spend_one
        } else {
            wanted.div_ceil(self.limit) as u64
        };
        let new_full_at = full_at.max(now).saturating_add(spend);
        let new_deficit = (new_full_at - now) as u128;
        let remaining = div(
            self.capacity.saturating_sub(new_deficit * self.limit),
            self.period,
        ) as u64;
        let d = Decision::allow(burst, remaining, dur(new_full_at - now));
        Ok((d, Some(new_full_at)))
    }
}

impl Algorithm for TokenBucket {
    type State = u64;
    type Shared = AtomicU64;
    #[cfg(feature = "redis")]
    type Mirror = redis::Mirror;
    const KIND: Kind = Kind::TokenBucket;
    const NAME: &'static str = "token-bucket";
    const REFERENCE: Reference = Reference::TokenBucket;
    const GUARANTEE: &'static str = "`burst + rate × t` in every interval of length `t`";
    const STATE_PER_KEY: &'static str = "one u64 (compare-and-swap)";

    fn from_policy(policy: &Policy) -> Self {
        let quota = policy.quota;
        let period = quota.period_nanos() as u128;
        let limit = quota.limit() as u128;
        let capacity = quota.burst() as u128 * period;
        Self {
            quota,
            limit,
            period,
            capacity,
            spend_one: period.div_ceil(limit) as u64,
            fits_one: ((capacity - period) / limit) as u64,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: Nanos = 1_000_000_000;

    #[test]
    fn burst_then_refill() {
        let b = TokenBucket::new(Quota::per_second(2).unwrap().with_burst(4).unwrap());
        let s = b.new_shared();
        for i in 0..4 {
            let d = b.check(&s, 0, 1).unwrap();
            assert!(d.allowed);
            assert_eq!(d.remaining, 3 - i);
        }
        let d = b.check(&s, 0, 1).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Duration::from_millis(500));
        assert_eq!(d.reset_after, Duration::from_secs(2));
        // Half a second refills exactly one token.
        assert!(b.check(&s, S / 2, 1).unwrap().allowed);
        assert!(!b.check(&s, S / 2, 1).unwrap().allowed);
        // Long idle never overfills.
        let d = b.check(&s, 100 * S, 1).unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 3);
    }

    #[test]
    fn thirds_do_not_drift() {
        // 3 per second: 333,333,333.3 ns per token, stored rounded up to the next
        // nanosecond, so the bucket never refills faster than the policy. 3,000 requests
        // spaced 1/3 s apart must all pass (the rounding costs at most 1 ns a request,
        // far less than the second token of burst), and not one more.
        let b = TokenBucket::new(Quota::per_second(3).unwrap().with_burst(2).unwrap());
        let s = b.new_shared();
        let mut admitted = 0;
        for i in 0..3_000u64 {
            let now = (i * S).div_ceil(3);
            if b.check(&s, now, 1).unwrap().allowed {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 3_000);
        assert!(b.check(&s, 1000 * S - 1, 1).unwrap().allowed);
        assert!(!b.check(&s, 1000 * S - 1, 1).unwrap().allowed);
    }

    #[test]
    fn cost_larger_than_burst_is_an_error() {
        let b = TokenBucket::new(Quota::per_second(2).unwrap().with_burst(4).unwrap());
        let s = b.new_shared();
        assert!(b.check(&s, 0, 5).is_err());
        assert!(b.check(&s, 0, 4).unwrap().allowed);
        let d = b.check(&s, 0, 3).unwrap();
        assert_eq!(d.retry_after, Duration::from_millis(1500));
    }
}
