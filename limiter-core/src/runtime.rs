//! [`RateLimiter`]: one limiter type whose state lives in memory or in Redis, chosen at
//! run time (from a config file), answering a [`Verdict`] either way.
//!
//! The guarantee: the same call answers the same kind of value whatever the store —
//! a decision and who made it ([`DecidedBy`]). Store failures never surface as errors:
//! the Redis store's [`FailurePolicy`](crate::FailurePolicy) answers them (admit, refuse
//! with `503`, or decide in memory). The only error is a request that can never be
//! admitted (it costs more than the policy's capacity), which no wait fixes.
//!
//! An enum over the two stores keeps static dispatch: the in-memory path decides
//! synchronously ([`RateLimiter::decide_now`]) with no future and no allocation.

use std::future::Future;

use crate::clock::{Clock, MonotonicClock};
use crate::decision::{DecidedBy, Decision, Verdict};
use crate::error::Result;
use crate::limiter::{Limiter, MemoryLimiter, Policy};
use crate::settle::Reservation;
use crate::store::memory::{Capacity, StoreStats};
#[cfg(feature = "redis")]
use crate::store::redis::{RedisLimiter, RedisStore};

/// A limiter for one [`Policy`] in memory or in Redis, chosen at run time.
///
/// ```
/// use limiter_core::{DecidedBy, Kind, ManualClock, Policy, Quota, RateLimiter};
///
/// # fn main() -> limiter_core::Result<()> {
/// let policy = Policy::new(Kind::TokenBucket, Quota::per_second(2)?);
/// // From a config: `memory` here, `RateLimiter::redis(&store, policy)?` with Redis.
/// let limiter = RateLimiter::memory(policy, ManualClock::new(), 10_000);
/// let verdict = limiter.decide_now("user:1", 1).expect("in memory: decided at once")?;
/// assert!(verdict.decision.allowed);
/// assert_eq!(verdict.decided_by, DecidedBy::Store);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RateLimiter<C = MonotonicClock> {
    store: Store<C>,
}

#[derive(Debug)]
enum Store<C> {
    Memory(MemoryLimiter<C>),
    #[cfg(feature = "redis")]
    Redis(RedisLimiter),
}

#[cfg(feature = "redis")]
impl RateLimiter {
    /// A limiter for `policy` in Redis (or Redis Cluster), shared by every instance on
    /// `store` in the store's mode, answering failures with the store's failure policy.
    ///
    /// Errors when the store's mode cannot enforce `policy` (see
    /// [`StoreMode::check`](crate::store::StoreMode::check)).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(store: &RedisStore, policy: Policy) -> Result<Self> {
        Ok(Self {
            store: Store::Redis(store.limiter(policy)?),
        })
    }
}

impl<C: Clock> RateLimiter<C> {
    /// A limiter for `policy` in this process's memory, on `clock`, holding at most
    /// `max_keys` keys.
    pub fn memory(policy: Policy, clock: C, max_keys: usize) -> Self {
        Self {
            store: Store::Memory(MemoryLimiter::new(policy, clock, max_keys)),
        }
    }

    /// A limiter for `policy` in this process's memory, on `clock`, within `capacity`
    /// (keys, bytes, and what a full store does with a new key). Errors when the byte
    /// budget cannot hold one key of this policy.
    pub fn memory_within(policy: Policy, clock: C, capacity: Capacity) -> Result<Self> {
        Ok(Self {
            store: Store::Memory(MemoryLimiter::with_capacity(policy, clock, capacity)?),
        })
    }

    /// The policy it enforces.
    pub fn policy(&self) -> Policy {
        match &self.store {
            Store::Memory(l) => l.policy(),
            #[cfg(feature = "redis")]
            Store::Redis(l) => l.policy(),
        }
    }

    /// True when the state lives in this process (decisions are synchronous).
    pub fn is_memory(&self) -> bool {
        matches!(self.store, Store::Memory(_))
    }

    /// Decides one request of `cost` units for `key` now if the state is in memory;
    /// `None` for a remote store (use [`decide`](Self::decide)).
    ///
    /// Errors only when `cost` exceeds what the policy can ever admit at once.
    #[inline]
    pub fn decide_now(&self, key: &str, cost: u64) -> Option<Result<Verdict>> {
        match &self.store {
            Store::Memory(l) => Some(l.check(key, cost).map(Verdict::from_store)),
            #[cfg(feature = "redis")]
            Store::Redis(_) => None,
        }
    }

    /// Decides one request of `cost` units for `key`, wherever the state lives. Store
    /// failures are answered by the failure policy (see [`DecidedBy`]).
    ///
    /// Errors only when `cost` exceeds what the policy can ever admit at once.
    pub async fn decide(&self, key: &str, cost: u64) -> Result<Verdict> {
        match &self.store {
            Store::Memory(l) => l.check(key, cost).map(Verdict::from_store),
            #[cfg(feature = "redis")]
            Store::Redis(l) => l.decide(key, cost).await,
        }
    }

    /// Decides one request of `key` reserving `cost` units (see [`crate::settle`]) now,
    /// if the state is in memory; `None` for a remote store (use
    /// [`reserve`](Self::reserve)).
    ///
    /// Errors when the algorithm cannot settle, or `cost` exceeds the capacity.
    pub fn reserve_now(&self, key: &str, cost: u64) -> Option<Result<Reservation>> {
        if let Err(e) = self.ensure_settles() {
            return Some(Err(e));
        }
        let verdict = self.decide_now(key, cost)?;
        Some(verdict.map(|v| Reservation::new(v, cost)))
    }

    /// Decides one request of `key` reserving `cost` units, wherever the state lives;
    /// settle it with [`settle`](Self::settle) once its cost is known. Store failures
    /// are answered by the failure policy, as [`decide`](Self::decide) answers them.
    ///
    /// Errors when the algorithm cannot settle, or `cost` exceeds the capacity.
    pub async fn reserve(&self, key: &str, cost: u64) -> Result<Reservation> {
        self.ensure_settles()?;
        let verdict = self.decide(key, cost).await?;
        Ok(Reservation::new(verdict, cost))
    }

    /// Settles `reservation` of `key` at its true cost `actual` now, if the state is in
    /// memory; `None` for a remote store (use [`settle`](Self::settle)). Answers what a
    /// request of cost 1 would be told now, or `None` inside when there was nothing to
    /// settle ([`Reservation::is_settleable`]).
    pub fn settle_now(
        &self,
        key: &str,
        reservation: &Reservation,
        actual: u64,
    ) -> Option<Result<Option<Decision>>> {
        match &self.store {
            Store::Memory(l) => Some(
                reservation
                    .is_settleable()
                    .then(|| l.settle(key, reservation.reserved, actual))
                    .transpose(),
            ),
            #[cfg(feature = "redis")]
            Store::Redis(_) => None,
        }
    }

    /// Settles `reservation` of `key` at its true cost `actual`: moves the key's
    /// balance by `actual − reserved` (see [`crate::settle`]), in the state that
    /// admitted it (the store, or the `local` stand-in). Answers what a request of
    /// cost 1 would be told now; `None` when there was nothing to settle (a refusal,
    /// or `fail-open`). A store failure is an error: the settle is lost, and the caller
    /// counts it.
    pub async fn settle(
        &self,
        key: &str,
        reservation: &Reservation,
        actual: u64,
    ) -> Result<Option<Decision>> {
        if !reservation.is_settleable() {
            return Ok(None);
        }
        match &self.store {
            Store::Memory(l) => l.settle(key, reservation.reserved, actual).map(Some),
            #[cfg(feature = "redis")]
            Store::Redis(l) => l.settle(key, reservation, actual).await.map(Some),
        }
    }

    /// Gives `reservation` back in full: [`settle`](Self::settle) at cost 0.
    pub async fn refund(&self, key: &str, reservation: &Reservation) -> Result<Option<Decision>> {
        self.settle(key, reservation, 0).await
    }

    fn ensure_settles(&self) -> Result<()> {
        let kind = self.policy().kind;
        if kind.settles() {
            Ok(())
        } else {
            Err(crate::error::Error::settle_unsupported(kind.name()))
        }
    }

    /// Forgets idle in-memory keys now — the memory store's, or on Redis those of the
    /// `local` failure policy's stand-in (Redis's own keys expire by their TTL); returns
    /// how many went.
    pub fn sweep(&self) -> usize {
        match &self.store {
            Store::Memory(l) => l.sweep(),
            #[cfg(feature = "redis")]
            Store::Redis(l) => l.sweep_local(),
        }
    }

    /// The in-memory keys' count, evictions and refusals (the `local` failure policy's
    /// on Redis), without walking the keys; `None` on Redis without `local`.
    pub fn memory_counters(&self) -> Option<StoreStats> {
        match &self.store {
            Store::Memory(l) => Some(l.counters()),
            #[cfg(feature = "redis")]
            Store::Redis(l) => l.local_counters(),
        }
    }

    /// Keys held in this process's memory (a maintained count, no walk over the keys,
    /// so a metrics scrape may ask often): the memory store's, or on Redis those of the
    /// `local` failure policy's stand-in; `None` on Redis without one.
    pub fn memory_keys(&self) -> Option<usize> {
        match &self.store {
            Store::Memory(l) => Some(l.keys()),
            #[cfg(feature = "redis")]
            Store::Redis(l) => l.local_keys(),
        }
    }
}

impl<C: Clock> Limiter for RateLimiter<C> {
    fn policy(&self) -> Policy {
        RateLimiter::policy(self)
    }

    /// The decision alone; a failure policy's answer counts as a decision (see
    /// [`Limiter::decide`] for who made it).
    async fn check(&self, key: &str, cost: u64) -> Result<Decision> {
        RateLimiter::decide(self, key, cost)
            .await
            .map(|v| v.decision)
    }

    fn decide(&self, key: &str, cost: u64) -> impl Future<Output = Result<Verdict>> + Send {
        RateLimiter::decide(self, key, cost)
    }

    fn decide_now(&self, key: &str, cost: u64) -> Option<Result<Verdict>> {
        RateLimiter::decide_now(self, key, cost)
    }
}

/// The verdict for a store failure under a limiter that has no failure policy of its
/// own: refused, fail-closed, retry after `retry_after`.
pub(crate) fn fail_closed(limit: u64, retry_after: std::time::Duration) -> Verdict {
    Verdict::new(
        Decision::deny(limit, 0, std::time::Duration::ZERO, retry_after),
        DecidedBy::FailClosed,
    )
}
