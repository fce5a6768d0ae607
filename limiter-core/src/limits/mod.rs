//! Several limits on one request, decided all-or-nothing: "10 per second with bursts of
//! 20 *and* 1,000 per hour".
//!
//! The guarantee: a request is admitted only if every limit of its [`LimitSet`] admits
//! it, and then it spends from every one; if any refuses, none is spent. Concurrent
//! requests behave as if decided one after another, so each limit keeps its own
//! algorithm's envelope whatever the others do.
//!
//! - **In memory** a set's rate limits keep their state side by side: one table of
//!   rows ([`place_together`]), each key's row — every limit's state for that key —
//!   behind one small lock, so a request finds all of them with one lookup and holds
//!   them with one lock. A request locks each table of its set (and each in-flight
//!   limit's key) in one global order (each table and in-flight limit gets a rank when
//!   it is created), decides each limit's step, and keeps the new states only if all
//!   admitted — two-phase locking, so the decisions are serialisable. The global order
//!   makes it deadlock-free: a request waiting for a lock of rank `r` holds only locks
//!   of lower rank, so no cycle of waits can form. A limit shared between sets (a
//!   global one) lives in one table, whichever sets use it: call [`place_together`]
//!   on the shared limits before building the sets, so they get rows of their own.
//! - **On Redis and Redis Cluster** it is one script call: a script generated from every
//!   algorithm's own Lua step ([`redis`](self) module), which runs each limit's step,
//!   snapshots a key before its first write, and restores the snapshots when any limit
//!   refused. The keys of one request share a hash tag (its `tag`, the identity), so
//!   on a cluster they live in one slot.
//!
//! The answer ([`LimitsDecision`]) holds every limit's decision and the combined one:
//! `Retry-After` is the longest wait among the refusing limits; on an admission the
//! limit with the least remaining speaks for the legacy single-limit headers. A limit
//! that would have admitted a refused request reports what it has left, unspent.
//!
//! A route with one limit needs none of this: [`RateLimiter`](crate::RateLimiter) keeps
//! its compare-and-swap fast path.
//!
//! ```
//! use limiter_core::limits::{Limit, LimitSet, MultiLimiter};
//! use limiter_core::{Kind, ManualClock, Policy, Quota};
//! use std::time::Duration;
//!
//! # fn main() -> limiter_core::Result<()> {
//! let burst = Limit::new("burst", "/api burst", Policy::new(Kind::Gcra, Quota::bucket(2, 1.0)?), 1_000);
//! let hourly = Limit::new("hourly", "/api hourly",
//!     Policy::new(Kind::FixedWindow, Quota::new(3, Duration::from_secs(3600))?), 1_000);
//! let clock = ManualClock::new();
//! let limiter = MultiLimiter::memory(LimitSet::new(vec![burst, hourly])?, clock.clone());
//! let decide = |cost| limiter.decide_now("user:1", cost).expect("in memory").map(|v| v.decision);
//! assert!(decide(1)?.allowed && decide(1)?.allowed);
//! let refused = decide(1)?; // the burst is spent: refused, and the hour is not charged
//! assert!(!refused.allowed);
//! assert_eq!(refused.decisions()[1].remaining, 1);
//! clock.advance(Duration::from_secs(1));
//! assert!(decide(1)?.allowed); // the third of the hour
//! clock.advance(Duration::from_secs(10));
//! let hour = decide(1)?;
//! assert!(!hour.allowed && hour.combined().retry_after > Duration::from_secs(3000));
//! # Ok(()) }
//! ```

mod decision;
mod in_flight;
mod limit;
mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(feature = "redis")]
mod redis_leases;
mod row;
mod set;

pub use decision::{Admission, LimitsDecision, LimitsVerdict};
pub use in_flight::{DEFAULT_LEASE_TTL, InFlight, MIN_LEASE_TTL, Permit, RETRY_AFTER};
pub use limit::{Limit, Rule, memory_keys, place_together};
pub use set::LimitSet;

use crate::clock::{Clock, MonotonicClock};
use crate::decision::DecidedBy;
use crate::error::Result;
use crate::settle::Reservation;

#[cfg(feature = "redis")]
use crate::store::redis::RedisStore;

/// The most limits one request may carry.
pub const MAX_LIMITS: usize = 8;

/// A set of limits decided all-or-nothing, in memory or on Redis, chosen at run time.
#[derive(Debug)]
pub struct MultiLimiter<C = MonotonicClock> {
    set: LimitSet,
    clock: C,
    #[cfg(feature = "redis")]
    redis: Option<redis::RedisLimits>,
}

impl<C: Clock> MultiLimiter<C> {
    /// The limits of `set`, kept in this process's memory (each limit's own store), on
    /// `clock`.
    pub fn memory(set: LimitSet, clock: C) -> Self {
        Self {
            set,
            clock,
            #[cfg(feature = "redis")]
            redis: None,
        }
    }

    /// The limits of `set` on Redis (or Redis Cluster), one script call per request,
    /// answering store failures with the store's failure policy (`local`: the limits'
    /// in-memory state on `clock`).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(store: &RedisStore, set: LimitSet, clock: C) -> Self {
        Self {
            redis: Some(redis::RedisLimits::new(store.clone(), &set)),
            set,
            clock,
        }
    }

    /// The limits it decides.
    pub fn set(&self) -> &LimitSet {
        &self.set
    }

    /// True when the state lives in this process (decisions are synchronous).
    pub fn is_memory(&self) -> bool {
        #[cfg(feature = "redis")]
        if self.redis.is_some() {
            return false;
        }
        true
    }

    /// Decides one request of `cost` units for `tag` (the identity: in memory each
    /// limit's key, on Redis the hash tag every limit's key shares) now, if the state is
    /// in memory; `None` on Redis (use [`decide`](Self::decide)).
    ///
    /// An admission's in-flight slots are released at once: a request that runs for a
    /// while takes them with [`acquire_now`](Self::acquire_now).
    ///
    /// Errors only when `cost` exceeds what some limit can ever admit at once.
    #[inline]
    pub fn decide_now(&self, tag: &str, cost: u64) -> Option<Result<LimitsVerdict>> {
        // Built where the caller receives it, on every path (see `fill`).
        let mut answer = self.is_memory().then(|| self.unfilled());
        if let Some(answer) = &mut answer {
            // No permit: slots taken are given back at once.
            self.fill(answer, tag, cost, None);
        }
        answer
    }

    /// Decides one request of `cost` units for `tag`, wherever the state lives. Store
    /// failures are answered by the failure policy. As [`decide_now`](Self::decide_now),
    /// in-flight slots are released at once (see [`acquire`](Self::acquire)).
    ///
    /// Errors only when `cost` exceeds what some limit can ever admit at once.
    pub async fn decide(&self, tag: &str, cost: u64) -> Result<LimitsVerdict> {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            self.set.ensure_fits(cost)?;
            let admission = redis.decide(self, tag, cost).await?;
            admission.permit.release().await;
            return Ok(admission.verdict);
        }
        self.decide_memory(tag, cost, None)
    }

    /// [`decide_now`](Self::decide_now), keeping an admitted request's in-flight slots
    /// in the [`Admission`]'s permit until it is dropped.
    pub fn acquire_now(&self, tag: &str, cost: u64) -> Option<Result<Admission>> {
        if !self.is_memory() {
            return None;
        }
        Some(self.admit_memory(tag, cost))
    }

    /// [`decide`](Self::decide), keeping an admitted request's in-flight slots in the
    /// [`Admission`]'s permit until it is dropped (on Redis: leases renewed by a task
    /// while it is held, removed when it is dropped; must run on a tokio runtime).
    pub async fn acquire(&self, tag: &str, cost: u64) -> Result<Admission> {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            self.set.ensure_fits(cost)?;
            return redis.decide(self, tag, cost).await;
        }
        self.admit_memory(tag, cost)
    }

    /// The in-memory decision, its in-flight slots held in the admission's permit.
    fn admit_memory(&self, tag: &str, cost: u64) -> Result<Admission> {
        let mut permit = Permit::default();
        let verdict = self.decide_memory(tag, cost, Some(&mut permit))?;
        Ok(Admission { verdict, permit })
    }

    /// The in-memory decision (see [`fill`](Self::fill)).
    #[inline]
    fn decide_memory(
        &self,
        tag: &str,
        cost: u64,
        permit: Option<&mut Permit>,
    ) -> Result<LimitsVerdict> {
        let mut answer = self.unfilled();
        self.fill(&mut answer, tag, cost, permit);
        answer
    }

    /// An answer with a slot for every limit's decision, to be filled in place.
    #[inline]
    fn unfilled(&self) -> Result<LimitsVerdict> {
        Ok(LimitsVerdict {
            decision: LimitsDecision::empty(self.set.limits().len()),
            decided_by: DecidedBy::Store,
        })
    }

    /// Fills `answer` with the in-memory decision: every level of the set locked in
    /// rank order, each decision written in place, the in-flight slots taken into
    /// `permit`. The answer is made by the caller and filled where it lies, so it is
    /// built where the caller receives it (a `LimitsVerdict` is about 460 bytes: a
    /// copy on the way out was a `memcpy` of ~76 instructions, callgrind).
    #[inline]
    fn fill(
        &self,
        answer: &mut Result<LimitsVerdict>,
        tag: &str,
        cost: u64,
        permit: Option<&mut Permit>,
    ) {
        let Ok(verdict) = answer else {
            return;
        };
        let n = self.set.limits().len();
        let decided = &mut verdict.decision;
        let all = self.set.ensure_fits(cost).and_then(|()| {
            let now = self.clock.now();
            let out = &mut decided.decisions[..n];
            memory::decide_all(&self.set, tag, now, cost, out, permit)
        });
        match all {
            Ok(_) => decided.settle(&self.set, cost),
            Err(e) => *answer = Err(e),
        }
    }

    /// Settles a request of `tag` admitted having reserved `reservation.reserved` units
    /// whose cost turned out `actual` (see [`crate::settle`]), in every limit of the set
    /// that settles (the token bucket and GCRA; the window counters keep the reserved
    /// cost: they count requests), each limit's key in one atomic step — in memory, on
    /// Redis one settle script call per such limit (the keys keep the request's hash
    /// tag), or in the `local` stand-in when that admitted. Returns how many limits were
    /// settled: 0 for a reservation with nothing to settle (refused, or `fail-open`).
    /// A store failure is an error (the settles not yet made are lost).
    pub async fn settle(&self, tag: &str, reservation: &Reservation, actual: u64) -> Result<usize> {
        if !reservation.is_settleable() {
            return Ok(0);
        }
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis
            && reservation.verdict.decided_by == DecidedBy::Store
        {
            return redis.settle(tag, reservation.reserved, actual).await;
        }
        self.settle_memory(tag, reservation.reserved, actual)
    }

    /// [`settle`](Self::settle) now, if the state is in memory; `None` on Redis.
    pub fn settle_now(
        &self,
        tag: &str,
        reservation: &Reservation,
        actual: u64,
    ) -> Option<Result<usize>> {
        if !self.is_memory() {
            return None;
        }
        if !reservation.is_settleable() {
            return Some(Ok(0));
        }
        Some(self.settle_memory(tag, reservation.reserved, actual))
    }

    fn settle_memory(&self, tag: &str, reserved: u64, actual: u64) -> Result<usize> {
        memory::settle_all(&self.set, tag, self.clock.now(), reserved, actual)
    }

    /// Forgets idle in-memory keys of every limit (each table of rows once); returns
    /// how many. (A table shared by several limiters is swept by each: harmless, and
    /// cheap when nothing is idle.)
    pub fn sweep(&self) -> usize {
        memory::sweep(&self.set, self.clock.now())
    }
}
