//! One policy's limiter on a [`RedisStore`]: builds the `EVALSHA` call, bounds it in
//! time, and answers with the failure policy when Redis cannot.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::{Cmd, ErrorKind, ServerErrorKind, Value};

use super::{FailurePolicy, RedisStore, TimeSource, bump, key, script};
use crate::algorithm::Kind;
use crate::clock::{Clock, MonotonicClock};
use crate::decision::{DecidedBy, Decision, Verdict};
use crate::error::{Error, Result};
use crate::limiter::{Limiter, MemoryLimiter, Policy};
use crate::store::memory::DEFAULT_MAX_KEYS;

/// A limiter for one policy whose state lives in Redis. [`Limiter::check`] reports store
/// failures as errors; [`decide`](Self::decide) answers them with the store's
/// [`FailurePolicy`].
pub struct RedisLimiter {
    store: RedisStore,
    policy: Policy,
    /// The script's policy numbers (after `now` and the cost).
    args: Vec<u64>,
    /// Every key's escaped `<prefix>:<algorithm>:{`, worked out once.
    key_head: String,
    /// The most one request may cost, and the limit decisions report.
    capacity: u64,
    /// The in-memory stand-in of the `local` failure policy.
    local: Option<MemoryLimiter<Arc<dyn Clock>>>,
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("policy", &self.policy)
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

/// `n` nanoseconds in whole microseconds, rounded up (never a faster policy), at least 1.
fn micros_up(n: u64) -> u64 {
    n.div_ceil(1_000).max(1)
}

/// `x` as a script argument (the policies' numbers stay far inside `i64`).
fn int(x: i128) -> i64 {
    x.clamp(i64::MIN.into(), i64::MAX.into()) as i64
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The policy's numbers for `kind`'s script (the buckets' scripts get them folded with
/// the cost, see [`RedisLimiter::command`]), and for decoding its replies.
///
/// Lua computes in doubles, exact for integers below 2^53: the token bucket's refill
/// ratio is reduced so that its products stay small, and windowed algorithms stay exact
/// while `limit × window in µs` is below 2^53 (a million per day is not).
fn script_args(policy: &Policy) -> Vec<u64> {
    let q = policy.quota;
    let window = micros_up(q.period_nanos());
    match policy.kind {
        Kind::FixedWindow | Kind::SlidingLog | Kind::SlidingWindow => vec![window, q.limit()],
        Kind::TokenBucket => {
            let g = gcd(q.limit(), window);
            vec![q.limit() / g, window / g, q.burst()]
        }
        Kind::Gcra => {
            let t = micros_up(q.emission_interval());
            vec![t, t.saturating_mul(q.burst())]
        }
    }
}

impl RedisLimiter {
    pub(super) fn new(store: RedisStore, policy: Policy) -> Self {
        let capacity = if policy.kind.is_bucket() {
            policy.quota.burst()
        } else {
            policy.quota.limit()
        };
        let opts = store.options();
        let local = (opts.on_error == FailurePolicy::Local).then(|| {
            let clock: Arc<dyn Clock> = match &opts.time {
                TimeSource::Caller(clock) => clock.clone(),
                TimeSource::Redis => Arc::new(MonotonicClock::new()),
            };
            MemoryLimiter::new(policy, clock, DEFAULT_MAX_KEYS)
        });
        Self {
            args: script_args(&policy),
            key_head: key::head(&store.options().key_prefix, policy.kind),
            store,
            policy,
            capacity,
            local,
        }
    }

    /// The policy it enforces.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The store it runs on.
    pub fn store(&self) -> &RedisStore {
        &self.store
    }

    /// The Redis key holding `key`'s state.
    pub fn redis_key(&self, key: &str) -> String {
        key::with_head(&self.key_head, key)
    }

    /// The exact `EVALSHA` call a check of `key` for `cost` sends now (for benchmarks
    /// and tests that talk to Redis directly).
    pub fn command(&self, key: &str, cost: u64) -> Cmd {
        let key = self.redis_key(key);
        // Sized once for the name, the SHA, the key and three numbers.
        let mut cmd = Cmd::with_capacity(7, 112 + key.len());
        cmd.arg("EVALSHA")
            .arg(script::sha(self.policy.kind))
            .arg(1)
            .arg(key);
        // Every argument costs Redis CPU: the buckets get the policy and the cost folded
        // into two numbers (exactly, in integers, here rather than in Lua's doubles).
        match self.policy.kind {
            Kind::TokenBucket | Kind::Gcra => {
                let (step, bound) = self.bucket_numbers(cost);
                cmd.arg(int(step)).arg(int(bound))
            }
            Kind::FixedWindow | Kind::SlidingLog | Kind::SlidingWindow => {
                cmd.arg(cost).arg(&self.args[..])
            }
        };
        // `now` last, and only on the caller's time: absent means Redis's `TIME`.
        if let TimeSource::Caller(clock) = &self.store.options().time {
            cmd.arg(clock.now() / 1_000);
        }
        cmd
    }

    /// The bucket script's two numbers for `cost` (see `bucket.lua`): how far the TAT
    /// moves, and the latest TAT − now that still admits the cost (negative when it
    /// never fits). Exact, in integers; a denial's retry-after is its deficit past the
    /// bound.
    fn bucket_numbers(&self, cost: u64) -> (i128, i128) {
        let a = &self.args;
        let cost = i128::from(cost);
        if self.policy.kind == Kind::TokenBucket {
            // L tokens per P µs, burst B: step ⌈cost × P / L⌉, bound ⌊(B − cost) × P / L⌋.
            let (l, p, burst) = (i128::from(a[0]), i128::from(a[1]), i128::from(a[2]));
            ((cost * p + l - 1) / l, ((burst - cost) * p).div_euclid(l))
        } else {
            // GCRA, emission interval T and tolerance tau: step cost × T, bound tau − step.
            let (t, tau) = (i128::from(a[0]), i128::from(a[1]));
            (cost * t, tau - cost * t)
        }
    }

    /// Decides one request of `cost` units for `key`. Store failures (errors, timeouts,
    /// an open circuit) are answered by the failure policy, never returned: the only
    /// error is a cost above what the policy can ever admit.
    pub async fn decide(&self, key: &str, cost: u64) -> Result<Verdict> {
        let err = match self.check(key, cost).await {
            Ok(decision) => {
                return Ok(Verdict::from_store(decision));
            }
            Err(e) if !e.is_store_failure() => return Err(e),
            Err(e) => e,
        };
        let counters = &self.store.inner.counters;
        let (decision, source) = match (&self.local, self.store.options().on_error) {
            (Some(local), _) => {
                bump(&counters.fallback_local);
                (local.check(key, cost)?, DecidedBy::Local)
            }
            (None, FailurePolicy::FailClosed) => {
                bump(&counters.fallback_closed);
                let retry = match err {
                    Error::CircuitOpen(d) => d,
                    _ => self.store.options().breaker.open_for,
                };
                (
                    Decision::deny(self.capacity, 0, Duration::ZERO, retry),
                    DecidedBy::FailClosed,
                )
            }
            (None, _) => {
                bump(&counters.fallback_open);
                let remaining = self.capacity - cost;
                (
                    Decision::allow(self.capacity, remaining, Duration::ZERO),
                    DecidedBy::FailOpen,
                )
            }
        };
        Ok(Verdict::new(decision, source))
    }

    async fn call(&self, cmd: &Cmd, cost: u64) -> Result<Decision> {
        let mut conn = self.store.connection();
        let reply = match cmd.query_async::<Value>(&mut conn).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                // Redis restarted or flushed its scripts: load ours again, once.
                redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(script::lua(self.policy.kind))
                    .query_async::<Value>(&mut conn)
                    .await
                    .map_err(super::store_error)?;
                cmd.query_async::<Value>(&mut conn).await
            }
            r => r,
        }
        .map_err(super::store_error)?;
        self.decode(&reply, cost)
            .ok_or_else(|| Error::BadReply(format!("{reply:?}")))
    }

    /// The decision a script's reply stands for (see the reply formats in `store/lua/`).
    /// The token bucket, GCRA and fixed window answer one integer, the sliding window
    /// one when it admits and three when it denies, the sliding log four; what they
    /// leave out follows from the policy, in exact integer arithmetic here.
    fn decode(&self, reply: &Value, cost: u64) -> Option<Decision> {
        let us = Duration::from_micros;
        let cap = self.capacity;
        // At most four integers: an array of them, or one.
        let mut buf = [0i64; 4];
        let ints: &[i64] = match reply {
            Value::Int(x) => {
                buf[0] = *x;
                &buf[..1]
            }
            Value::Array(items) if items.len() <= buf.len() => {
                for (slot, v) in buf.iter_mut().zip(items) {
                    let Value::Int(x) = v else { return None };
                    *slot = *x;
                }
                &buf[..items.len()]
            }
            _ => return None,
        };
        let a = &self.args;
        Some(match (self.policy.kind, ints) {
            (Kind::Gcra, &[x]) => {
                let (t, tau) = (a[0], a[1]);
                if x >= 0 {
                    let ttl = x as u64;
                    Decision::allow(cap, tau.saturating_sub(ttl) / t, us(ttl))
                } else {
                    let reset = x.checked_neg()?.checked_sub(1)? as u64;
                    let retry =
                        u64::try_from(i128::from(reset) - self.bucket_numbers(cost).1).ok()?;
                    Decision::deny(cap, tau.saturating_sub(reset) / t, us(reset), us(retry))
                }
            }
            (Kind::TokenBucket, &[x]) => {
                let (l, p, burst) = (a[0] as u128, a[1] as u128, a[2] as u128);
                let capacity = burst * p;
                if x >= 0 {
                    let ttl = x as u64;
                    let remaining = capacity.saturating_sub(ttl as u128 * l) / p;
                    Decision::allow(cap, remaining as u64, us(ttl))
                } else {
                    let deficit = x.checked_neg()?.checked_sub(1)? as u64;
                    let missing = (deficit as u128 * l).min(capacity);
                    let retry =
                        u64::try_from(i128::from(deficit) - self.bucket_numbers(cost).1).ok()?;
                    let remaining = ((capacity - missing) / p) as u64;
                    Decision::deny(cap, remaining, us(deficit), us(retry))
                }
            }
            (Kind::FixedWindow, &[x]) => {
                // reset × (limit + 1) + remaining, negated − 1 for a denial.
                let (allowed, y) = if x >= 0 { (true, x) } else { (false, -(x + 1)) };
                let (y, base) = (y as u64, cap + 1);
                let (reset, remaining) = (us(y / base), y % base);
                if allowed {
                    Decision::allow(cap, remaining, reset)
                } else {
                    Decision::deny(cap, remaining, reset, reset)
                }
            }
            (Kind::FixedWindow, &[x, reset]) => {
                let reset = us(u64::try_from(reset).ok()?);
                if x >= 0 {
                    Decision::allow(cap, x as u64, reset)
                } else {
                    Decision::deny(cap, x.checked_neg()?.checked_sub(1)? as u64, reset, reset)
                }
            }
            (Kind::SlidingWindow, &[x]) => {
                // Admitted: reset × (limit + 1) + remaining.
                let (x, base) = (u64::try_from(x).ok()?, cap + 1);
                Decision::allow(cap, x % base, us(x / base))
            }
            (Kind::SlidingWindow, &[x, reset, retry]) => {
                let (reset, retry) = (
                    us(u64::try_from(reset).ok()?),
                    us(u64::try_from(retry).ok()?),
                );
                if x >= 0 {
                    Decision::allow(cap, x as u64, reset)
                } else {
                    Decision::deny(cap, x.checked_neg()?.checked_sub(1)? as u64, reset, retry)
                }
            }
            (Kind::SlidingLog, &[allowed, remaining, reset, retry]) => {
                let (remaining, reset, retry) = (
                    u64::try_from(remaining).ok()?,
                    us(u64::try_from(reset).ok()?),
                    us(u64::try_from(retry).ok()?),
                );
                match allowed {
                    1 => Decision::allow(cap, remaining, reset),
                    _ => Decision::deny(cap, remaining, reset, retry),
                }
            }
            _ => return None,
        })
    }

    async fn check_store(&self, key: &str, cost: u64) -> Result<Decision> {
        if cost > self.capacity {
            return Err(Error::CostExceedsCapacity {
                cost,
                capacity: self.capacity,
            });
        }
        let inner = &self.store.inner;
        let permit = match inner.breaker.admit() {
            Ok(p) => p,
            Err(wait) => {
                bump(&inner.counters.short_circuited);
                return Err(Error::CircuitOpen(wait));
            }
        };
        bump(&inner.counters.calls);
        let cmd = self.command(key, cost);
        let timeout = inner.opts.timeout;
        let result = match tokio::time::timeout(timeout, self.call(&cmd, cost)).await {
            Ok(r) => r,
            Err(_) => {
                bump(&inner.counters.timeouts);
                Err(Error::Timeout(timeout))
            }
        };
        match &result {
            Ok(_) => inner.breaker.success(permit),
            Err(e) => {
                bump(&inner.counters.errors);
                inner.breaker.failure(permit, e);
            }
        }
        result
    }
}

impl Limiter for RedisLimiter {
    fn policy(&self) -> Policy {
        self.policy
    }

    /// Decides in Redis; store failures are errors (see [`RedisLimiter::decide`] for the
    /// failure policy).
    fn check(&self, key: &str, cost: u64) -> impl Future<Output = Result<Decision>> + Send {
        self.check_store(key, cost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::Quota;

    #[test]
    fn script_numbers_are_whole_microseconds_never_faster() {
        let p = |kind, q| script_args(&Policy::new(kind, q));
        let q = Quota::per_minute(5).unwrap();
        assert_eq!(p(Kind::TokenBucket, q), vec![1, 12_000_000, 5]);
        assert_eq!(p(Kind::Gcra, q), vec![12_000_000, 60_000_000]);
        assert_eq!(p(Kind::FixedWindow, q), vec![60_000_000, 5]);
        let q = Quota::per_second(3).unwrap();
        assert_eq!(p(Kind::TokenBucket, q), vec![3, 1_000_000, 3]);
        assert_eq!(p(Kind::Gcra, q), vec![333_334, 1_000_002]);
        let q = Quota::new(2, Duration::from_nanos(1_500)).unwrap();
        assert_eq!(p(Kind::SlidingLog, q), vec![2, 2]);
    }
}
