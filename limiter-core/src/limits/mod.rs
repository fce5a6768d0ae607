//! Several limits on one request, decided all-or-nothing: "10 per second with bursts of
//! 20 *and* 1,000 per hour".
//!
//! The guarantee: a request is admitted only if every limit of its [`LimitSet`] admits
//! it, and then it spends from every one; if any refuses, none is spent. Concurrent
//! requests behave as if decided one after another, so each limit keeps its own
//! algorithm's envelope whatever the others do.
//!
//! - **In memory** each limit keeps its keys in its own store, every key's state behind
//!   a small lock. A request locks its key's state in every limit, in one global order
//!   (each [`Limit`] gets a rank when it is created), decides each limit's step on a
//!   copy, and writes the copies back only if all admitted — two-phase locking, so the
//!   decisions are serialisable. The global order makes it deadlock-free: a request
//!   waiting for a lock of rank `r` holds only locks of lower rank, so no cycle of
//!   waits can form (a request holds at most one key per limit; a limit shared between
//!   sets, such as a global one, has one rank everywhere).
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
mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(feature = "redis")]
mod redis_leases;

use decision::EMPTY;
pub use decision::{Admission, LimitsDecision, LimitsVerdict};
pub use in_flight::{DEFAULT_LEASE_TTL, InFlight, MIN_LEASE_TTL, Permit, RETRY_AFTER};

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::{Clock, MonotonicClock};
use crate::decision::DecidedBy;
use crate::error::{Error, Result};
use crate::limiter::Policy;
use crate::settle::Reservation;
use crate::store::memory::StoreStats;
use in_flight::Slots;
use memory::AnyExclusive;

#[cfg(feature = "redis")]
use crate::store::redis::RedisStore;

/// The most limits one request may carry.
pub const MAX_LIMITS: usize = 8;

/// Ranks limits in creation order: the global order in which a request locks them.
static NEXT_RANK: AtomicU64 = AtomicU64::new(0);

/// One named limit and its in-memory state. Cheap to clone: clones share the state, so
/// one `Limit` in several sets (a global limit in every route's set) counts once.
#[derive(Clone)]
pub struct Limit {
    inner: Arc<LimitInner>,
}

struct LimitInner {
    name: Box<str>,
    id: Box<str>,
    rule: Rule,
    rank: u64,
    memory: Memory,
}

/// What one limit enforces: a rate (an algorithm and its quota) or a number of
/// requests in flight at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A rate limit.
    Rate(Policy),
    /// An in-flight (concurrency) limit.
    InFlight(InFlight),
}

impl Rule {
    /// The most one request may cost: a rate's capacity; any cost for an in-flight
    /// limit (a request holds one slot whatever it costs).
    pub fn capacity(&self) -> u64 {
        match self {
            Rule::Rate(p) => p.capacity(),
            Rule::InFlight(_) => u64::MAX,
        }
    }

    /// The rule's name in reports and metrics: the algorithm's, or `concurrency`.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Rate(p) => p.kind.name(),
            Rule::InFlight(_) => "concurrency",
        }
    }

    /// True when a request's cost can be settled after its decision (a token bucket's
    /// or GCRA's rate; never an in-flight limit, which holds slots, not units).
    pub fn settles(&self) -> bool {
        match self {
            Rule::Rate(p) => p.kind.settles(),
            Rule::InFlight(_) => false,
        }
    }

    /// What a limit that admitted a refused request gives back to its `remaining`: the
    /// cost for a rate, the one slot for an in-flight limit.
    fn unspent(&self, cost: u64) -> u64 {
        match self {
            Rule::Rate(_) => cost,
            Rule::InFlight(_) => 1,
        }
    }
}

/// One limit's in-memory state.
enum Memory {
    Rate(AnyExclusive),
    InFlight(Slots),
}

impl fmt::Debug for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limit")
            .field("name", &self.name())
            .field("id", &self.id())
            .field("policy", &self.policy())
            .finish_non_exhaustive()
    }
}

impl Limit {
    /// A limit enforcing `policy`, advertised as `name` (the `RateLimit` headers' list
    /// member), its state kept under `id` — unique among every limit on one store (on
    /// Redis it names the key after the request's tag, e.g. `"/api/search burst"`) —
    /// and at most `max_keys` keys in memory.
    pub fn new(name: &str, id: &str, policy: Policy, max_keys: usize) -> Self {
        Self {
            inner: Arc::new(LimitInner {
                name: name.into(),
                id: id.into(),
                rule: Rule::Rate(policy),
                rank: NEXT_RANK.fetch_add(1, Ordering::Relaxed),
                memory: Memory::Rate(AnyExclusive::new(&policy, max_keys)),
            }),
        }
    }

    /// An in-flight limit: at most `limit.limit()` requests of one key at once (see
    /// [`InFlight`]), named and kept as [`new`](Self::new)'s, at most `max_keys` keys in
    /// memory. A request holds its slot until its [`Permit`] is dropped.
    ///
    /// ```
    /// use limiter_core::limits::{InFlight, Limit, LimitSet, MultiLimiter};
    /// use limiter_core::{Kind, ManualClock, Policy, Quota};
    ///
    /// # fn main() -> limiter_core::Result<()> {
    /// let rate = Limit::new("burst", "burst", Policy::new(Kind::Gcra, Quota::bucket(10, 1.0)?), 10_000);
    /// let slots = Limit::in_flight("slots", "slots", InFlight::new(2)?, 10_000);
    /// let limiter = MultiLimiter::memory(LimitSet::new(vec![rate, slots])?, ManualClock::new());
    /// let first = limiter.acquire_now("alice", 1).expect("in memory")?;
    /// let second = limiter.acquire_now("alice", 1).expect("in memory")?;
    /// let third = limiter.acquire_now("alice", 1).expect("in memory")?;
    /// assert!(!third.verdict.decision.allowed); // two in flight: refused, no token spent
    /// drop(first.permit); // the request ended: its slot is back
    /// assert!(limiter.acquire_now("alice", 1).expect("in memory")?.verdict.decision.allowed);
    /// # drop(second); Ok(()) }
    /// ```
    pub fn in_flight(name: &str, id: &str, limit: InFlight, max_keys: usize) -> Self {
        Self {
            inner: Arc::new(LimitInner {
                name: name.into(),
                id: id.into(),
                rule: Rule::InFlight(limit),
                rank: NEXT_RANK.fetch_add(1, Ordering::Relaxed),
                memory: Memory::InFlight(Slots::new(limit, max_keys)),
            }),
        }
    }

    /// Its name in headers and metrics.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Where its state lives on a shared store.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// What it enforces.
    pub fn rule(&self) -> Rule {
        self.inner.rule
    }

    /// The rate policy it enforces (`None` for an in-flight limit).
    pub fn policy(&self) -> Option<Policy> {
        match self.inner.rule {
            Rule::Rate(p) => Some(p),
            Rule::InFlight(_) => None,
        }
    }

    /// Slots `key` holds now in memory (0 for a rate limit or an unknown key).
    pub fn in_flight_now(&self, key: &str) -> u64 {
        match &self.inner.memory {
            Memory::InFlight(slots) => slots.held(key),
            Memory::Rate(_) => 0,
        }
    }

    /// True when `other` is this very limit (shares its state), not just an equal one.
    pub fn same(&self, other: &Limit) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Forgets the in-memory keys idle at `now` (by `clock`); returns how many.
    pub fn sweep(&self, clock: &impl Clock) -> usize {
        match &self.inner.memory {
            Memory::Rate(m) => m.sweep(clock.now()),
            Memory::InFlight(slots) => slots.sweep(),
        }
    }

    /// Keys held in memory now (an in-flight limit's: a short walk of its shards).
    pub fn memory_keys(&self) -> usize {
        match &self.inner.memory {
            Memory::Rate(m) => m.len(),
            Memory::InFlight(slots) => slots.len(),
        }
    }

    /// Size and evictions of its in-memory state (walks every key: for reports).
    pub fn stats(&self) -> StoreStats {
        match &self.inner.memory {
            Memory::Rate(m) => m.stats(),
            Memory::InFlight(slots) => StoreStats {
                keys: slots.len(),
                ..StoreStats::default()
            },
        }
    }
}

/// The limits of one request: 1 to [`MAX_LIMITS`], distinct names, each limit once.
#[derive(Debug, Clone)]
pub struct LimitSet {
    limits: Vec<Limit>,
    /// Indices into `limits` by rank: the order in which a request locks them.
    lock_order: Vec<usize>,
    /// True when `lock_order` is `0, 1, 2, …` (decisions need no reordering).
    in_lock_order: bool,
    /// The most one request may cost: the least of the limits' capacities.
    capacity: u64,
}

impl LimitSet {
    /// The set of `limits`, reported in this order.
    ///
    /// Errors when it is empty, longer than [`MAX_LIMITS`], names two limits alike or
    /// holds one limit twice.
    pub fn new(limits: Vec<Limit>) -> Result<Self> {
        if limits.is_empty() || limits.len() > MAX_LIMITS {
            return Err(Error::invalid_quota(
                "a request carries between 1 and 8 limits",
            ));
        }
        for (i, a) in limits.iter().enumerate() {
            for b in &limits[..i] {
                if a.name() == b.name() || a.same(b) || a.id() == b.id() {
                    return Err(Error::invalid_quota(
                        "the limits of one request need distinct names and ids",
                    ));
                }
            }
        }
        let mut lock_order: Vec<usize> = (0..limits.len()).collect();
        lock_order.sort_by_key(|&i| limits[i].inner.rank);
        let in_lock_order = lock_order.iter().enumerate().all(|(i, &l)| i == l);
        let capacity = limits
            .iter()
            .map(|l| l.rule().capacity())
            .min()
            .unwrap_or(0);
        Ok(Self {
            limits,
            lock_order,
            in_lock_order,
            capacity,
        })
    }

    /// The limits, in the order they were given (and are reported).
    pub fn limits(&self) -> &[Limit] {
        &self.limits
    }

    /// The most one request may cost: what every limit can admit at once.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// True when some limit is an in-flight limit (admissions hold a [`Permit`]).
    pub fn has_in_flight(&self) -> bool {
        self.limits
            .iter()
            .any(|l| matches!(l.rule(), Rule::InFlight(_)))
    }

    /// Refuses a cost some limit can never admit.
    fn ensure_fits(&self, cost: u64) -> Result<()> {
        if cost > self.capacity {
            return Err(Error::cost_exceeds_capacity(cost, self.capacity));
        }
        Ok(())
    }
}

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
        if !self.is_memory() {
            return None;
        }
        // No permit: slots taken are given back at once.
        Some(self.decide_memory(tag, cost, None))
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

    /// The in-memory decision: every limit's key locked in rank order, each decision
    /// written in place into the verdict returned, the in-flight slots taken into
    /// `permit`. The verdict is built first and returned on every path, so it is built
    /// where the caller receives it (a `LimitsVerdict` is about 460 bytes: each copy on
    /// the way out was a `memcpy`).
    #[inline]
    fn decide_memory(
        &self,
        tag: &str,
        cost: u64,
        permit: Option<&mut Permit>,
    ) -> Result<LimitsVerdict> {
        let n = self.set.limits.len();
        let mut answer = Ok(LimitsVerdict {
            decision: LimitsDecision::empty(n),
            decided_by: DecidedBy::Store,
        });
        if let Ok(verdict) = &mut answer {
            let decided = &mut verdict.decision;
            let all = self.set.ensure_fits(cost).and_then(|()| {
                let now = self.clock.now();
                let out = &mut decided.decisions[..n];
                memory::decide_all(&self.set, tag, now, cost, out, permit)
            });
            match all {
                Ok(_) => decided.settle(&self.set, cost),
                Err(e) => answer = Err(e),
            }
        }
        answer
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
        let now = self.clock.now();
        let mut settled = 0;
        for limit in &self.set.limits {
            // In-flight limits hold slots, not units: nothing to settle.
            let Memory::Rate(memory) = &limit.inner.memory else {
                continue;
            };
            if !limit.inner.rule.settles() {
                continue;
            }
            memory.settle(tag, now, reserved, actual)?;
            settled += 1;
        }
        Ok(settled)
    }

    /// Forgets idle in-memory keys of every limit; returns how many. (A limit shared by
    /// several limiters is swept by each: harmless, and cheap when nothing is idle.)
    pub fn sweep(&self) -> usize {
        self.set.limits().iter().map(|l| l.sweep(&self.clock)).sum()
    }
}
