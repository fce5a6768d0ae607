//! The limiter trait every store implements, and the in-memory keyed limiter.

use std::borrow::Borrow;
use std::future::Future;
use std::hash::Hash;

use crate::algorithm::{self, Algorithm, Kind, Params, registry};
use crate::clock::{Clock, MonotonicClock};
use crate::decision::{Decision, Verdict};
use crate::error::{Error, Result};
use crate::quota::Quota;
use crate::store::memory::{Capacity, DEFAULT_MAX_KEYS, HeapSize, MemoryStore, StoreStats};

/// An algorithm, its quota and its parameters: everything needed to build a limiter on
/// any store.
///
/// ```
/// use limiter_core::{Kind, Policy, Quota};
///
/// let p = Policy::new(Kind::FixedWindow, Quota::per_minute(100).unwrap());
/// assert_eq!(p.capacity(), 100);
/// assert!(p.with_param("buckets", 4).is_err()); // a fixed window takes no parameter
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Which algorithm enforces the quota.
    pub kind: Kind,
    /// The quota it enforces.
    pub quota: Quota,
    /// The algorithm's parameters ([`Kind::params`]), defaults unless set with
    /// [`with_param`](Self::with_param).
    pub params: Params,
}

impl Policy {
    /// A policy of `kind` enforcing `quota`, with the algorithm's default parameters.
    pub fn new(kind: Kind, quota: Quota) -> Self {
        Self {
            kind,
            quota,
            params: Params::defaults(kind.params()),
        }
    }

    /// Sets the algorithm's parameter `name` (such as the bucketed window's `buckets`).
    ///
    /// Errors when the algorithm takes no such parameter or `value` is out of its range.
    pub fn with_param(mut self, name: &str, value: u64) -> Result<Self> {
        let params = self.kind.params();
        let Some(i) = params.iter().position(|p| p.name == name) else {
            return Err(Error::invalid_quota(
                "the algorithm takes no such parameter (see Kind::params)",
            ));
        };
        let p = &params[i];
        if !(p.min..=p.max).contains(&value) {
            return Err(Error::invalid_quota(p.invalid));
        }
        self.params.set(i, value);
        Ok(self)
    }

    /// The value of the algorithm's parameter `name`, or `None` if it takes none by
    /// that name.
    pub fn param(&self, name: &str) -> Option<u64> {
        let i = self.kind.params().iter().position(|p| p.name == name)?;
        Some(self.params.get(i))
    }

    /// The most one request may cost, and the limit decisions report: what the
    /// algorithm can ever admit at once (the burst for the buckets, the limit per window
    /// for the windowed algorithms).
    pub fn capacity(&self) -> u64 {
        self.kind.capacity(self)
    }

    /// What the algorithm promises about admissions in any interval.
    pub fn envelope(&self) -> algorithm::Envelope {
        self.kind.envelope(self)
    }
}

/// A rate limiter over string keys, wherever its state lives (memory, Redis, Redis
/// Cluster). Async because remote stores are; in-memory limiters answer at once and
/// also offer a synchronous `check`.
pub trait Limiter: Send + Sync {
    /// The policy it enforces.
    fn policy(&self) -> Policy;

    /// Decides one request of `cost` units for `key`. A denial is `Ok`; errors are for
    /// impossible costs and failed stores.
    fn check(&self, key: &str, cost: u64) -> impl Future<Output = Result<Decision>> + Send;

    /// Decides one request and says who decided ([`Verdict`]). Limiters with a failure
    /// policy answer store failures with it; by default a store failure is refused
    /// fail-closed (a service answers `503`), retrying after the store's suggested wait
    /// or one second. Errors only for requests that can never succeed.
    fn decide(&self, key: &str, cost: u64) -> impl Future<Output = Result<Verdict>> + Send {
        let limit = self.policy().capacity();
        let check = self.check(key, cost);
        async move {
            match check.await {
                Ok(decision) => Ok(Verdict::from_store(decision)),
                Err(e) if e.is_store_failure() => Ok(crate::runtime::fail_closed(
                    limit,
                    e.retry_after().unwrap_or(STORE_RETRY).max(STORE_RETRY),
                )),
                Err(e) => Err(e),
            }
        }
    }

    /// The verdict now, without a future, when the limiter can decide synchronously (its
    /// state is in this process); `None` otherwise (use [`decide`](Self::decide)). The
    /// tower layer uses it so an in-memory decision allocates no future.
    fn decide_now(&self, key: &str, cost: u64) -> Option<Result<Verdict>> {
        let _ = (key, cost);
        None
    }
}

/// How long a client is told to wait when a store without a failure policy failed.
const STORE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// An in-memory keyed limiter: one algorithm and policy, a [`MemoryStore`] of per-key
/// state, and a clock.
///
/// ```
/// use limiter_core::algorithm::TokenBucket;
/// use limiter_core::{KeyedLimiter, ManualClock, Quota};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let limiter: KeyedLimiter<String, TokenBucket, _> =
///     KeyedLimiter::with_clock(Quota::per_second(1).unwrap(), clock.clone());
/// assert!(limiter.check("user:1:/api", 1).unwrap().allowed);
/// assert!(!limiter.check("user:1:/api", 1).unwrap().allowed);
/// clock.advance(Duration::from_secs(1));
/// assert!(limiter.check("user:1:/api", 1).unwrap().allowed);
/// ```
#[derive(Debug)]
pub struct KeyedLimiter<K, A: Algorithm, C = MonotonicClock> {
    store: MemoryStore<K, A>,
    clock: C,
}

impl<K, A> KeyedLimiter<K, A, MonotonicClock>
where
    K: Hash + Eq + HeapSize,
    A: Algorithm,
{
    /// A limiter for `quota` on the system's monotonic clock.
    pub fn new(quota: Quota) -> Self {
        Self::with_clock(quota, MonotonicClock::new())
    }
}

impl<K, A, C> KeyedLimiter<K, A, C>
where
    K: Hash + Eq + HeapSize,
    A: Algorithm,
    C: Clock,
{
    /// A limiter for `quota` on `clock`, holding at most ten million keys.
    pub fn with_clock(quota: Quota, clock: C) -> Self {
        Self::with_store(
            MemoryStore::with_max_keys(A::new(quota), DEFAULT_MAX_KEYS),
            clock,
        )
    }

    /// A limiter over a store built by the caller (to set the key cap).
    pub fn with_store(store: MemoryStore<K, A>, clock: C) -> Self {
        Self { store, clock }
    }

    /// Decides one request of `cost` units for `key`, now.
    #[inline]
    pub fn check<Q>(&self, key: &Q, cost: u64) -> Result<Decision>
    where
        K: Borrow<Q> + From<Q::Owned>,
        Q: Hash + Eq + ToOwned + ?Sized,
    {
        self.store.check(key, self.clock.now(), cost)
    }

    /// Settles a request of `key` admitted having reserved `reserved` units whose cost
    /// turned out `actual`, now (see [`MemoryStore::settle`] and [`crate::settle`]).
    pub fn settle<Q>(&self, key: &Q, reserved: u64, actual: u64) -> Result<Decision>
    where
        K: Borrow<Q> + From<Q::Owned>,
        Q: Hash + Eq + ToOwned + ?Sized,
    {
        self.store.settle(key, self.clock.now(), reserved, actual)
    }

    /// The store, for sweeping and statistics.
    pub fn store(&self) -> &MemoryStore<K, A> {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Forgets idle keys now; see [`MemoryStore::sweep`].
    pub fn sweep(&self) -> usize {
        self.store.sweep(self.clock.now())
    }

    /// Size and evictions so far.
    pub fn stats(&self) -> StoreStats {
        self.store.stats()
    }
}

impl<K, A, C> Limiter for KeyedLimiter<K, A, C>
where
    K: Hash + Eq + HeapSize + Borrow<str> + From<String> + Send + Sync,
    A: Algorithm,
    C: Clock,
{
    fn policy(&self) -> Policy {
        self.store.algorithm().policy()
    }

    fn check(&self, key: &str, cost: u64) -> impl Future<Output = Result<Decision>> + Send {
        std::future::ready(KeyedLimiter::check(self, key, cost))
    }

    fn decide_now(&self, key: &str, cost: u64) -> Option<Result<Verdict>> {
        Some(KeyedLimiter::check(self, key, cost).map(Verdict::from_store))
    }
}

/// Names one quota inside a [`PolicySet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyId(usize);

/// One keyed limiter serving several quotas of one algorithm — a route table where
/// `/api/search` allows 100 per minute and `/api/orders/{id}` 10 per second.
///
/// Each quota keeps its keys in a store of its own, so a key's state is only ever read
/// with the quota that wrote it, and idle eviction knows which window a key counts in.
///
/// ```
/// use limiter_core::algorithm::Gcra;
/// use limiter_core::limiter::PolicySet;
/// use limiter_core::{ManualClock, Quota};
///
/// let mut routes: PolicySet<String, Gcra, _> = PolicySet::with_clock(ManualClock::new());
/// let search = routes.add(Quota::per_minute(100).unwrap(), 10_000);
/// let orders = routes.add(Quota::per_second(1).unwrap(), 10_000);
/// assert!(routes.check(orders, "user:1", 1).unwrap().allowed);
/// assert!(!routes.check(orders, "user:1", 1).unwrap().allowed);
/// assert_eq!(routes.check(search, "user:1", 1).unwrap().remaining, 99);
/// ```
#[derive(Debug)]
pub struct PolicySet<K, A: Algorithm, C = MonotonicClock> {
    stores: Vec<MemoryStore<K, A>>,
    clock: C,
}

impl<K, A, C> PolicySet<K, A, C>
where
    K: Hash + Eq + HeapSize,
    A: Algorithm,
    C: Clock,
{
    /// An empty set on `clock`.
    pub fn with_clock(clock: C) -> Self {
        Self {
            stores: Vec::new(),
            clock,
        }
    }

    /// Adds a quota whose keys are capped at `max_keys`; returns its id.
    pub fn add(&mut self, quota: Quota, max_keys: usize) -> PolicyId {
        self.stores
            .push(MemoryStore::with_max_keys(A::new(quota), max_keys));
        PolicyId(self.stores.len() - 1)
    }

    /// Decides one request of `cost` units for `key` under the quota `policy`, now.
    ///
    /// Errors ([`Error::is_unknown_policy`](crate::Error::is_unknown_policy)) for an id
    /// from another set.
    #[inline]
    pub fn check<Q>(&self, policy: PolicyId, key: &Q, cost: u64) -> Result<Decision>
    where
        K: Borrow<Q> + From<Q::Owned>,
        Q: Hash + Eq + ToOwned + ?Sized,
    {
        let store = self
            .stores
            .get(policy.0)
            .ok_or(crate::Error::unknown_policy(policy.0))?;
        store.check(key, self.clock.now(), cost)
    }

    /// The store of one quota, for statistics.
    pub fn store(&self, policy: PolicyId) -> Option<&MemoryStore<K, A>> {
        self.stores.get(policy.0)
    }

    /// Forgets idle keys of every quota; returns how many.
    pub fn sweep(&self) -> usize {
        let now = self.clock.now();
        self.stores.iter().map(|s| s.sweep(now)).sum()
    }
}

macro_rules! memory_limiter {
    ($($variant:ident: $module:ident::$ty:ident,)*) => {
        /// An in-memory limiter whose algorithm is chosen at run time (from a config
        /// file), dispatched statically (variants generated from the algorithms'
        /// registration list).
        #[derive(Debug)]
        pub enum MemoryLimiter<C = MonotonicClock> {
            $(
                #[doc = concat!("[`", stringify!($ty), "`](algorithm::", stringify!($ty), ").")]
                $variant(KeyedLimiter<Box<str>, algorithm::$ty, C>),
            )*
        }

        impl<C: Clock> MemoryLimiter<C> {
            /// A limiter for `policy` on `clock`, holding at most `max_keys` keys.
            pub fn new(policy: Policy, clock: C, max_keys: usize) -> Self {
                fn build<A: Algorithm, C: Clock>(
                    p: &Policy,
                    clock: C,
                    max_keys: usize,
                ) -> KeyedLimiter<Box<str>, A, C> {
                    KeyedLimiter::with_store(
                        MemoryStore::with_max_keys(A::from_policy(p), max_keys),
                        clock,
                    )
                }
                match policy.kind {
                    $(Kind::$variant => Self::$variant(build(&policy, clock, max_keys)),)*
                }
            }

            /// A limiter for `policy` on `clock` within `capacity` (keys, bytes, and
            /// what a full store does). Errors when the byte budget cannot hold one key.
            pub fn with_capacity(policy: Policy, clock: C, capacity: Capacity) -> Result<Self> {
                fn build<A: Algorithm, C: Clock>(
                    p: &Policy,
                    clock: C,
                    capacity: Capacity,
                ) -> Result<KeyedLimiter<Box<str>, A, C>> {
                    let store = MemoryStore::with_capacity(A::from_policy(p), capacity)?;
                    Ok(KeyedLimiter::with_store(store, clock))
                }
                Ok(match policy.kind {
                    $(Kind::$variant => Self::$variant(build(&policy, clock, capacity)?),)*
                })
            }

            /// Keys, evictions and refusals so far, without walking the keys.
            pub fn counters(&self) -> StoreStats {
                match self {
                    $(Self::$variant(l) => l.store().counters(),)*
                }
            }

            /// Decides one request of `cost` units for `key`, now.
            #[inline]
            pub fn check(&self, key: &str, cost: u64) -> Result<Decision> {
                match self {
                    $(Self::$variant(l) => l.check(key, cost),)*
                }
            }

            /// Settles a request of `key` admitted having reserved `reserved` units
            /// whose cost turned out `actual`, now (see [`crate::settle`]).
            pub fn settle(&self, key: &str, reserved: u64, actual: u64) -> Result<Decision> {
                match self {
                    $(Self::$variant(l) => l.settle(key, reserved, actual),)*
                }
            }

            /// The policy it enforces.
            pub fn policy(&self) -> Policy {
                match self {
                    $(Self::$variant(l) => Limiter::policy(l),)*
                }
            }

            /// Forgets idle keys now.
            pub fn sweep(&self) -> usize {
                match self {
                    $(Self::$variant(l) => l.sweep(),)*
                }
            }

            /// Size and evictions so far (walks every key: for reports).
            pub fn stats(&self) -> StoreStats {
                match self {
                    $(Self::$variant(l) => l.stats(),)*
                }
            }

            /// Keys held now, without walking them.
            pub fn keys(&self) -> usize {
                match self {
                    $(Self::$variant(l) => l.store().len(),)*
                }
            }
        }
    };
}
registry!(memory_limiter);

impl<C: Clock> Limiter for MemoryLimiter<C> {
    fn policy(&self) -> Policy {
        MemoryLimiter::policy(self)
    }

    fn check(&self, key: &str, cost: u64) -> impl Future<Output = Result<Decision>> + Send {
        std::future::ready(MemoryLimiter::check(self, key, cost))
    }

    fn decide_now(&self, key: &str, cost: u64) -> Option<Result<Verdict>> {
        Some(MemoryLimiter::check(self, key, cost).map(Verdict::from_store))
    }
}
