//! `seed-replica`: the original project's Redis token bucket, flaws included, so that
//! its over-admission shows beside the correct limiters. Deliberately wrong; it lives
//! in the simulator only and must never be used to limit anything.
//!
//! The original's Lua script, given `now` by the gateway:
//!
//! - a missing key is created with `capacity − 1` tokens and `lastRefill = now`, gets
//!   `EXPIRE ttl`, and the request is admitted;
//! - otherwise `tokens = min(capacity, tokens + (now − lastRefill) × rate)`; fewer
//!   than one token denies *without writing*; else one token is taken and both fields
//!   are written back.
//!
//! Its two flaws, reproduced:
//!
//! 1. `now` is the *gateway's* clock floored to whole seconds: timing is only accurate
//!    to a second, and gateways with skewed clocks move `lastRefill` back and forth,
//!    each step forward refilling tokens again.
//! 2. `EXPIRE` is set once, at creation, and never renewed: `ttl` after the first
//!    request the key vanishes mid-use and the bucket comes back full. On the original
//!    load test that is 25 admissions where the policy allows 17.
//!
//! Its settings are replicated too: the original wrote "5 per minute" as a refill of
//! 0.083 tokens/s (three decimals, rounded down: 0.4% slow), with capacity 5 and a
//! 60 s TTL. Here capacity is the policy's burst, the rate `limit / window` rounded
//! down to three decimals the same way (kept exact if that would make it zero), and
//! the TTL one window. On the original's load test the replica admits 25 requests,
//! exactly what the original recorded, where the policy allows 17.

use limiter_core::{Nanos, Quota};

use super::engine::Engine;
use crate::workload::SECOND;

/// What the replica promises: nothing — it breaks the token bucket's envelope, which is
/// why it is in the lab.
pub const GUARANTEE: &str =
    "none: the original's flawed Redis token bucket (whole-second clock, TTL never renewed)";

/// One key's state in the replicated store.
pub const STATE_PER_KEY: &str = "two Redis hash fields and a TTL (simulator only)";

/// The flawed token bucket, configured from a policy.
#[derive(Debug, Clone)]
pub struct SeedReplica {
    capacity: f64,
    rate_per_sec: f64,
    ttl: Nanos,
}

/// One key's fields in the replicated store, and its expiry.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReplicaState {
    tokens: f64,
    /// `lastRefill`, in whole seconds of some gateway's clock.
    last: i64,
    /// When the key vanishes, on the store's clock.
    expires_at: Nanos,
    exists: bool,
}

impl SeedReplica {
    /// The replica for `quota`: capacity `burst`, `limit / period` tokens per second,
    /// keys living one period.
    pub fn new(quota: &Quota) -> Self {
        Self {
            capacity: quota.burst() as f64,
            rate_per_sec: configured_rate(quota),
            ttl: quota.period_nanos(),
        }
    }

    /// A key that does not exist yet.
    pub fn state(&self) -> ReplicaState {
        ReplicaState::default()
    }

    /// One request of `cost` at store time `store_now`, with the gateway's clock
    /// reading `gateway_now`.
    #[inline]
    pub fn admit(
        &self,
        s: &mut ReplicaState,
        store_now: Nanos,
        gateway_now: Nanos,
        cost: u64,
    ) -> bool {
        // Flaw 1: the gateway's clock, floored to whole seconds.
        let now = (gateway_now / SECOND) as i64;
        let cost = cost as f64;
        // Redis expires a key once its time is strictly past.
        if !s.exists || store_now > s.expires_at {
            // Flaw 2: the TTL is set here, once, and never again.
            *s = ReplicaState {
                tokens: self.capacity - cost,
                last: now,
                expires_at: store_now.saturating_add(self.ttl),
                exists: true,
            };
            return true;
        }
        let tokens = (s.tokens + (now - s.last) as f64 * self.rate_per_sec).min(self.capacity);
        if tokens < cost {
            return false;
        }
        s.tokens = tokens - cost;
        s.last = now;
        true
    }
}

impl Engine for SeedReplica {
    type State = ReplicaState;

    fn state(&self) -> ReplicaState {
        SeedReplica::state(self)
    }

    #[inline]
    fn admit(
        &self,
        s: &mut ReplicaState,
        store_now: Nanos,
        gateway_now: Nanos,
        cost: u64,
    ) -> Result<bool, limiter_core::Error> {
        Ok(SeedReplica::admit(self, s, store_now, gateway_now, cost))
    }

    fn inline_bytes(&self) -> usize {
        std::mem::size_of::<ReplicaState>()
    }
}

/// The refill rate as the original's configuration wrote it: tokens per second,
/// rounded down to three decimals (5 per minute became 0.083).
fn configured_rate(quota: &Quota) -> f64 {
    let exact = quota.limit() as f64 / (quota.period_nanos() as f64 / SECOND as f64);
    let written = (exact * 1000.0).floor() / 1000.0;
    if written > 0.0 { written } else { exact }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: Nanos = SECOND;

    /// 60 per minute (one token a second, exact in floating point), burst 5, TTL 60 s.
    fn replica() -> SeedReplica {
        SeedReplica::new(
            &Quota::new(60, Duration::from_secs(60))
                .unwrap()
                .with_burst(5)
                .unwrap(),
        )
    }

    #[test]
    fn key_expiry_refills_the_bucket() {
        let r = replica();
        let mut s = r.state();
        for i in 0..5 {
            assert!(r.admit(&mut s, i, i, 1));
        }
        assert!(!r.admit(&mut s, S / 2, S / 2, 1));
        // 60 s after creation the key is still there, a nanosecond later it is gone.
        assert!(r.admit(&mut s, 60 * S, 60 * S, 1)); // refilled to the 5 of capacity
        let mut count = 0;
        while r.admit(&mut s, 60 * S, 60 * S, 1) {
            count += 1;
        }
        assert_eq!(count, 4);
        assert!(r.admit(&mut s, 60 * S + 1, 60 * S + 1, 1)); // new key, full again
    }

    #[test]
    fn rate_is_written_to_three_decimals() {
        let q = |l, s| Quota::new(l, Duration::from_secs(s)).unwrap();
        assert_eq!(configured_rate(&q(5, 60)), 0.083);
        assert_eq!(configured_rate(&q(60, 60)), 1.0);
        assert_eq!(configured_rate(&q(1, 3600)), 1.0 / 3600.0);
    }

    #[test]
    fn flooring_refills_early() {
        // The key is created at 0.9 s.
        let r = replica();
        let mut s = r.state();
        let t = 900_000_000;
        for _ in 0..5 {
            assert!(r.admit(&mut s, t, t, 1));
        }
        assert!(!r.admit(&mut s, S - 1, S - 1, 1));
        // 0.1 s later the floored clock says a whole second passed: a token.
        assert!(r.admit(&mut s, S, S, 1));
    }

    #[test]
    fn skewed_gateways_disagree() {
        let r = replica();
        let mut s = r.state();
        for _ in 0..5 {
            assert!(r.admit(&mut s, 0, 0, 1));
        }
        assert!(!r.admit(&mut s, S / 2, S / 2, 1));
        // A gateway 10 s ahead sees 10 s of refill that never happened: a full bucket.
        for _ in 0..5 {
            assert!(r.admit(&mut s, S / 2, 10 * S + S / 2, 1));
        }
        // Back on the first gateway, time runs backwards and it refuses.
        assert!(!r.admit(&mut s, S, S, 1));
    }
}
