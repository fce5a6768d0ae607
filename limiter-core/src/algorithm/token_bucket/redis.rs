//! The token bucket on Redis: `bucket.lua` (shared with GCRA: on Redis the two are one
//! algorithm), its two numbers and its one-integer reply.

use std::time::Duration;

use redis::Cmd;

use crate::algorithm::mirror::{self, denied, int, micros_up};
use crate::decision::Decision;
use crate::limiter::Policy;
use crate::store::lease::{Ask, Grant};

/// Composes one of the bucket's scripts: the shared state fragment (`bucket_state.lua`:
/// the clock, reading the state and writing it with its TTL, in one home) followed by
/// the script's own body.
macro_rules! bucket_script {
    ($body:literal) => {
        concat!(include_str!("bucket_state.lua"), include_str!($body))
    };
}

/// The script the token bucket and GCRA share.
pub(crate) const BUCKET_LUA: &str = bucket_script!("bucket.lua");

/// Their lease script (store mode `lease`).
pub(crate) const BUCKET_LEASE_LUA: &str = bucket_script!("bucket_lease.lua");

/// Their settle script (cost after the decision).
pub(crate) const BUCKET_SETTLE_LUA: &str = bucket_script!("bucket_settle.lua");

/// The most µs one settle moves the state: 2^52, 142 years, so the script's doubles
/// stay exact (a larger debt saturates there).
const MAX_SETTLE_STEP: i128 = 1 << 52;

/// The token bucket's script: a refill of `l` tokens per `p` µs (the ratio reduced so
/// that Lua's doubles stay exact), `burst` tokens.
pub struct Mirror {
    l: u64,
    p: u64,
    burst: u64,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Mirror {
    /// The script's two numbers for `cost` (see `bucket.lua`): how far the full-at
    /// instant moves, ⌈cost × P / L⌉, and the latest full-at − now that still admits the
    /// cost, ⌊(B − cost) × P / L⌋ (negative when it never fits). Exact, in integers.
    fn numbers(&self, cost: u64) -> (i128, i128) {
        let (l, p, burst, cost) = (
            i128::from(self.l),
            i128::from(self.p),
            i128::from(self.burst),
            i128::from(cost),
        );
        ((cost * p + l - 1) / l, ((burst - cost) * p).div_euclid(l))
    }
}

impl mirror::Mirror for Mirror {
    const LUA: &'static str = BUCKET_LUA;

    fn new(policy: &Policy) -> Self {
        let q = policy.quota;
        let window = micros_up(q.period_nanos());
        let g = gcd(q.limit(), window);
        Self {
            l: q.limit() / g,
            p: window / g,
            burst: q.burst(),
        }
    }

    fn push_args(&self, cmd: &mut Cmd, cost: u64) {
        // Every argument costs Redis CPU: the policy and the cost folded into two.
        let (step, bound) = self.numbers(cost);
        cmd.arg(int(step)).arg(int(bound));
    }

    fn decode(&self, reply: &[i64], cost: u64) -> Option<Decision> {
        let us = Duration::from_micros;
        let &[x] = reply else { return None };
        let (l, p, burst) = (
            u128::from(self.l),
            u128::from(self.p),
            u128::from(self.burst),
        );
        let capacity = burst * p;
        Some(if x >= 0 {
            let ttl = x as u64;
            let remaining = capacity.saturating_sub(u128::from(ttl) * l) / p;
            Decision::allow(self.burst, remaining as u64, us(ttl))
        } else {
            let deficit = denied(x)?;
            let missing = (u128::from(deficit) * l).min(capacity);
            let retry = u64::try_from(i128::from(deficit) - self.numbers(cost).1).ok()?;
            let remaining = ((capacity - missing) / p) as u64;
            Decision::deny(self.burst, remaining, us(deficit), us(retry))
        })
    }

    const SETTLE_LUA: Option<&'static str> = Some(BUCKET_SETTLE_LUA);

    fn push_settle_args(&self, cmd: &mut Cmd, reserved: u64, actual: u64) {
        let step = self.numbers(actual).0 - self.numbers(reserved).0;
        cmd.arg(int(step.clamp(-MAX_SETTLE_STEP, MAX_SETTLE_STEP)));
    }

    /// The script's reply is how far the bucket is from full (µs), past the burst when
    /// the balance is negative: a cost-1 request's answer, as `decode` gives it.
    fn decode_settle(&self, reply: &[i64]) -> Option<Decision> {
        let &[deficit] = reply else { return None };
        let deficit = u64::try_from(deficit).ok()?;
        let fits_one = self.numbers(1).1;
        Some(if i128::from(deficit) <= fits_one {
            let (l, p) = (u128::from(self.l), u128::from(self.p));
            let capacity = u128::from(self.burst) * p;
            let remaining = capacity.saturating_sub(u128::from(deficit) * l) / p;
            Decision::allow(
                self.burst,
                remaining as u64,
                Duration::from_micros(deficit),
            )
        } else {
            // As bucket.lua's denial of cost 1 would encode it.
            self.decode(&[-i64::try_from(deficit).ok()? - 1], 1)?
        })
    }

    const LEASE_LUA: Option<&'static str> = Some(BUCKET_LEASE_LUA);

    fn push_lease_args(&self, cmd: &mut Cmd, ask: Ask) {
        cmd.arg(self.l)
            .arg(self.p)
            .arg(self.burst)
            .arg(ask.take)
            .arg(ask.need);
    }

    fn decode_lease(&self, reply: &[i64], ask: Ask) -> Option<Grant> {
        match *reply {
            // Taken: the reset is what a request of that cost would have seen.
            [taken, reset] if taken > 0 && reset >= 0 => {
                let taken = u64::try_from(taken).ok().filter(|&t| t <= ask.take)?;
                let store = self.decode(&[reset], taken)?;
                Some(Grant { taken, store })
            }
            // Not enough: bucket.lua's denial, for a request of cost `need`.
            [deficit] if deficit < 0 => Some(Grant {
                taken: 0,
                store: self.decode(&[deficit], ask.need)?,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::Kind;
    use crate::quota::Quota;

    #[test]
    fn refill_ratio_is_reduced_whole_microseconds() {
        let m = |q| <Mirror as mirror::Mirror>::new(&Policy::new(Kind::TokenBucket, q));
        let tb = m(Quota::per_minute(5).unwrap());
        assert_eq!((tb.l, tb.p, tb.burst), (1, 12_000_000, 5));
        let tb = m(Quota::per_second(3).unwrap());
        assert_eq!((tb.l, tb.p, tb.burst), (3, 1_000_000, 3));
    }

    #[test]
    fn the_clock_and_the_state_have_one_home_in_the_three_scripts() {
        let state = include_str!("bucket_state.lua");
        for script in [BUCKET_LUA, BUCKET_LEASE_LUA, BUCKET_SETTLE_LUA] {
            // The fragment first, once; the body reads the clock, the state and writes
            // it only through the fragment's functions.
            let body = script.strip_prefix(state).expect("composed from bucket_state.lua");
            assert_eq!(script.matches(state).count(), 1);
            for own in ["redis.call('TIME')", "redis.call('GET'", "redis.call('SET'", "PXAT"] {
                assert!(!body.contains(own), "{own} outside bucket_state.lua");
            }
            assert!(body.contains("bucket_clock(ARGV["), "{body}");
            assert!(body.contains("bucket_read(KEYS[1], now)"), "{body}");
        }
    }
}
