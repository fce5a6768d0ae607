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

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Algorithm, Bound, Envelope, Kind, Reference, Shared, dur, ensure_fits};
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
    /// `capacity`, `limit` and `period` in 64 bits, when `capacity + limit` fits in a
    /// `u64` (every quota but those with huge bursts of slow tokens): a request of cost
    /// 1 is then decided without 128-bit arithmetic (see [`TokenBucket::decide`]).
    narrow: Option<Narrow>,
}

/// The bucket's numbers in 64 bits (see [`TokenBucket`]'s `narrow`).
#[derive(Debug, Clone, Copy)]
struct Narrow {
    capacity: u64,
    limit: u64,
    period: u64,
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
        if cost == 1
            && let Some(n) = self.narrow
        {
            let mut next = full_at;
            let d = self.step_one(n, &mut next, now);
            return Ok((d, d.allowed.then_some(next)));
        }
        let deficit_time = full_at.saturating_sub(now);
        // Missing tokens, in token-nanoseconds: (full_at − now) × limit.
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

    /// [`Algorithm::step`] through [`decide`](Self::decide), for any cost and bucket.
    #[inline(never)]
    fn step_any(&self, state: &mut u64, now: Nanos, cost: u64) -> Result<Decision> {
        super::keep(state, self.decide(*state, now, cost))
    }

    /// [`decide`](Self::decide) for a cost of 1 on a narrow bucket, in 64-bit
    /// arithmetic, updating `full_at` when admitted: the same decision.
    #[inline]
    fn step_one(&self, n: Narrow, full_at: &mut Nanos, now: Nanos) -> Decision {
        match self.admit_one(*full_at, now) {
            Some(next) => {
                *full_at = next;
                self.allowed_one(n, next - now)
            }
            None => self.denied_one(full_at.saturating_sub(now)),
        }
    }

    /// The new `full_at` when one token fits a bucket full at `full_at`, else `None`.
    ///
    /// One token fits when `deficit × limit + period ≤ capacity`, that is (integers)
    /// when `deficit ≤ ⌊(capacity − period) / limit⌋ = fits_one`: a comparison instead
    /// of the wide path's 128-bit product, with the same answer.
    #[inline]
    fn admit_one(&self, full_at: Nanos, now: Nanos) -> Option<Nanos> {
        (full_at.saturating_sub(now) <= self.fits_one)
            .then(|| full_at.max(now).saturating_add(self.spend_one))
    }

    /// The decision admitting one token that left the bucket `new_deficit` ns from
    /// full. The deficit is at most `fits_one + spend_one`, so `new_deficit × limit ≤
    /// capacity + limit − 1`, which a narrow bucket holds in a `u64`.
    #[inline]
    fn allowed_one(&self, n: Narrow, new_deficit: Nanos) -> Decision {
        let remaining = n.capacity.saturating_sub(new_deficit * n.limit) / n.period;
        Decision::allow(self.quota.burst(), remaining, dur(new_deficit))
    }

    /// The decision refusing one token to a bucket `deficit` ns from full.
    ///
    /// What remains is always 0, so the wide path's product and division are skipped:
    /// one token is refused when `deficit > fits_one = ⌊(capacity − period) / limit⌋`,
    /// so `deficit × limit > capacity − period`, and less than one token's worth
    /// (`period`) is left, `⌊(capacity − min(deficit × limit, capacity)) / period⌋ = 0`
    /// (a test compares it with [`decide`](Self::decide)'s wide arithmetic).
    #[inline]
    fn denied_one(&self, deficit: Nanos) -> Decision {
        let retry = deficit - self.fits_one;
        Decision::deny(self.quota.burst(), 0, dur(deficit), dur(retry))
    }

    /// [`Algorithm::check`] of one token on a narrow bucket: a compare-and-swap loop
    /// over `full_at` alone.
    #[inline(always)]
    fn check_one(&self, n: Narrow, state: &AtomicU64, now: Nanos) -> Decision {
        let mut seen = state.load(Ordering::Acquire);
        loop {
            let Some(next) = self.admit_one(seen, now) else {
                return self.denied_one(seen.saturating_sub(now));
            };
            if next == seen {
                return self.allowed_one(n, next - now);
            }
            match state.compare_exchange_weak(seen, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return self.allowed_one(n, next - now),
                Err(actual) => seen = actual,
            }
        }
    }

    /// [`Algorithm::check`] of any other request (a cost above 1, or a bucket too wide
    /// for 64-bit arithmetic), out of line so the usual one stays small.
    #[inline(never)]
    fn check_any(&self, state: &AtomicU64, now: Nanos, cost: u64) -> Result<Decision> {
        state.apply(|s| self.step(s, now, cost))
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
        let narrow = u64::try_from(capacity + limit).ok().map(|_| Narrow {
            capacity: capacity as u64,
            limit: limit as u64,
            period: period as u64,
        });
        Self {
            quota,
            limit,
            period,
            capacity,
            spend_one: period.div_ceil(limit) as u64,
            fits_one: ((capacity - period) / limit) as u64,
            narrow,
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

    /// The usual request (cost 1, narrow bucket) inline, the rest out of line: the
    /// store's check then inlines a small step, as GCRA's.
    #[inline]
    fn step(&self, state: &mut u64, now: Nanos, cost: u64) -> Result<Decision> {
        if cost == 1
            && let Some(n) = self.narrow
        {
            return Ok(self.step_one(n, state, now));
        }
        self.step_any(state, now, cost)
    }

    /// The trait's check, with the usual request (cost 1, narrow bucket) in its own
    /// compare-and-swap loop that only moves `full_at`; the decision is built once, from
    /// the value that won. The generic loop keeps a whole decision alive across the
    /// swap and copies it twice. Same semantics: a denial writes nothing.
    ///
    /// Always inlined, with the other requests out of line (`check_any`): as one
    /// function holding both loops it was too big to inline into the store's check, and
    /// the call cost a register save and restore on every check (callgrind,
    /// `scripts/callgrind`: about 20 of the 227 instructions of a keyed denial).
    #[inline(always)]
    fn check(&self, state: &AtomicU64, now: Nanos, cost: u64) -> Result<Decision> {
        match self.narrow {
            Some(n) if cost == 1 => Ok(self.check_one(n, state, now)),
            _ => self.check_any(state, now, cost),
        }
    }

    fn is_idle(&self, &state: &u64, now: Nanos) -> bool {
        state <= now
    }

    fn envelope(&self) -> Envelope {
        let q = &self.quota;
        Envelope::new([Bound::rate(q)])
    }

    const SETTLES: bool = true;

    /// The balance moves by the difference of the two costs' times, each rounded as a
    /// check rounds it (`⌈cost × period / limit⌉`), from `max(full_at, now)`: reserving
    /// `r` then settling `r → a` at one instant leaves the state reserving `a` would,
    /// and a refund (`a = 0`) gives back exactly what the reservation took. `full_at`
    /// may run past `now + burst/rate` (a negative balance): checks refuse until it
    /// refills; it saturates at `u64::MAX` ns (584 years of debt).
    fn settle(&self, full_at: &mut u64, now: Nanos, reserved: u64, actual: u64) -> Result<Decision> {
        let time = |cost: u64| (cost as u128 * self.period).div_ceil(self.limit);
        let debited = (*full_at).max(now) as u128 + time(actual);
        let next = debited.saturating_sub(time(reserved)).max(now as u128);
        *full_at = u64::try_from(next).unwrap_or(u64::MAX);
        Ok(self.balance(*full_at, now))
    }
}

impl TokenBucket {
    /// What a request of cost 1 would be told at `now` by a bucket full at `full_at`,
    /// without spending it (after a settle).
    fn balance(&self, full_at: Nanos, now: Nanos) -> Decision {
        let burst = self.quota.burst();
        let deficit = full_at.saturating_sub(now);
        let missing = (deficit as u128 * self.limit).min(self.capacity);
        let remaining = div(self.capacity - missing, self.period) as u64;
        if deficit <= self.fits_one {
            Decision::allow(burst, remaining, dur(deficit))
        } else {
            Decision::deny(burst, remaining, dur(deficit), dur(deficit - self.fits_one))
        }
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

/// The 64-bit path for a cost of 1 decides exactly as the 128-bit path it shortcuts:
/// on random quotas (up to the largest limits, bursts and periods the constructors
/// accept), random arrivals, clocks that step back, through `decide`, `step` and the
/// shared `check` alike.
#[cfg(test)]
mod narrow_path {
    use proptest::prelude::*;

    use super::*;
    use crate::quota::{MAX_LIMIT, MAX_PERIOD};

    fn quota() -> impl Strategy<Value = Quota> {
        let limit = prop_oneof![1..=20u64, 1..=MAX_LIMIT];
        let period = prop_oneof![1_000..=10_000_000_000u64, 1_000..=MAX_PERIOD];
        let burst = prop_oneof![1..=30u64, 1..=MAX_LIMIT];
        (limit, period, burst).prop_filter_map("quota out of range", |(l, p, b)| {
            Quota::new(l, std::time::Duration::from_nanos(p))
                .and_then(|q| q.with_burst(b))
                .ok()
        })
    }

    proptest! {
        #[test]
        fn the_narrow_path_decides_as_the_wide_one(
            q in quota(),
            arrivals in prop::collection::vec((any::<bool>(), 0..u64::MAX / 4, 1..=3u64), 1..64),
        ) {
            let narrow = TokenBucket::new(q);
            let wide = TokenBucket { narrow: None, ..narrow.clone() };
            let (shared_narrow, shared_wide) = (narrow.new_shared(), wide.new_shared());
            let (mut state_narrow, mut state_wide) = (narrow.fresh(), wide.fresh());
            let mut now = 0u64;
            for (back, step, cost) in arrivals {
                // Mostly forward by a fraction of the emission interval, sometimes back.
                let dt = step % (q.emission_interval().saturating_mul(3)).max(1);
                now = if back { now.saturating_sub(dt) } else { now.saturating_add(dt) };
                let cost = if cost == 3 { q.burst() } else { cost };
                prop_assert_eq!(
                    narrow.decide(state_narrow, now, cost).ok(),
                    wide.decide(state_wide, now, cost).ok()
                );
                prop_assert_eq!(
                    narrow.step(&mut state_narrow, now, cost).ok(),
                    wide.step(&mut state_wide, now, cost).ok()
                );
                prop_assert_eq!(state_narrow, state_wide);
                prop_assert_eq!(
                    narrow.check(&shared_narrow, now, cost).ok(),
                    wide.check(&shared_wide, now, cost).ok()
                );
            }
        }
    }

    #[test]
    fn usual_quotas_are_narrow_and_huge_ones_wide() {
        assert!(TokenBucket::new(Quota::per_minute(5).unwrap()).narrow.is_some());
        // 4.3 billion tokens of 4.3 billion per 10 s: 4.3e19 token-nanoseconds.
        let huge = Quota::new(MAX_LIMIT, std::time::Duration::from_secs(10)).unwrap();
        assert!(TokenBucket::new(huge).narrow.is_none());
    }
}
