//! Limiter state in Redis or Redis Cluster, shared by every gateway instance, so that
//! many instances together admit exactly what one limiter would.
//!
//! Each algorithm is one atomic Lua script (`algorithm/<name>/<name>.lua`, beside the
//! Rust it mirrors step for step in integer microseconds, with the arguments and reply
//! decoding in `algorithm/<name>/redis.rs`; the token bucket and GCRA share
//! `token_bucket/bucket.lua`, as on Redis they are one algorithm),
//! loaded once and run with `EVALSHA` (reloaded on `NOSCRIPT`). One limiter key is one
//! compact Redis key: one number (token bucket, GCRA; fixed window and sliding window
//! counter, their counts packed with a window tag), a sorted set of admissions (sliding
//! log) or a short text of sub-window counts (bucketed window). Every write leaves the key's TTL at exactly the time its state needs to
//! return to a full allowance (the windowed scripts set it at a window's first write and
//! keep it after), so abandoned keys vanish and live ones never reset early.
//!
//! Time comes from Redis itself (`TIME` inside the script) unless the caller supplies a
//! clock ([`TimeSource`]), so gateways with skewed clocks agree.
//!
//! Calls never hang: each is bounded by [`RedisOptions::timeout`]; a circuit breaker
//! stops asking a Redis that keeps failing and probes it again after a pause (on a
//! cluster, one breaker per group of hash slots, so a dead master does not stop the
//! others' keys being decided); and a
//! [`FailurePolicy`] answers meanwhile (admit, deny, or decide in memory). Connections
//! are multiplexed and reconnect by themselves.
//!
//! ```no_run
//! # async fn demo() -> limiter_core::Result<()> {
//! use limiter_core::{DecidedBy, Kind, Policy, Quota, RateLimiter};
//! use limiter_core::store::redis::{RedisOptions, RedisStore};
//!
//! let store = RedisStore::connect("redis://127.0.0.1:6379/", RedisOptions::default()).await?;
//! let policy = Policy::new(Kind::Gcra, Quota::per_second(10)?.with_burst(20)?);
//! let orders = RateLimiter::redis(&store, policy)?;
//! let verdict = orders.decide("user:42:/api/orders/{id}", 1).await?;
//! if verdict.decided_by == DecidedBy::Store && !verdict.decision.allowed { /* 429 */ }
//! # Ok(()) }
//! ```

mod breaker;
mod connect;
mod key;
mod leases;
mod limiter;
pub(crate) mod script;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, RedisFuture, Value};

pub use breaker::{BreakerOptions, CircuitState};
pub use connect::StoreConnection;
pub use key::{in_flight_key, redis_key, tagged_key};
pub use limiter::RedisLimiter;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::limiter::Policy;
use crate::store::lease::Tally;
use crate::store::mode::StoreMode;
use breaker::Breakers;

/// How a [`RedisStore`] names keys, bounds calls and answers when Redis fails.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Prefix of every key (default `"ratelab"`).
    pub key_prefix: String,
    /// Longest wait for one decision, connecting and reloading a script included
    /// (default 50 ms).
    pub timeout: Duration,
    /// What [`RedisLimiter::decide`] answers when Redis fails or times out.
    pub on_error: FailurePolicy,
    /// Where "now" comes from (default: Redis's own `TIME`).
    pub time: TimeSource,
    /// When to stop asking a failing Redis, and when to ask again.
    pub breaker: BreakerOptions,
    /// The bounds of the `local` failure policy's in-memory stand-in (default: ten
    /// million keys, evict-oldest); it is swept with [`RateLimiter::sweep`](crate::RateLimiter::sweep).
    pub local: crate::store::memory::Capacity,
    /// How this instance shares keys with the others (default: exact, one call per
    /// decision; in every mode a denial is remembered until its retry instant).
    pub mode: StoreMode,
    /// In exact mode, refuse a key locally until the store's retry instant once the
    /// store refused it (default `true`). Off, every decision asks the store, and a
    /// refusal's `remaining` and times are the store's own at that instant (a local
    /// refusal reports the store's last `remaining`). Lease mode always refuses
    /// locally while it waits for a whole lease.
    pub local_denials: bool,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            key_prefix: "ratelab".into(),
            timeout: Duration::from_millis(50),
            on_error: FailurePolicy::FailOpen,
            time: TimeSource::Redis,
            breaker: BreakerOptions::default(),
            local: crate::store::memory::Capacity::default(),
            mode: StoreMode::Exact,
            local_denials: true,
        }
    }
}

/// What to answer when the store cannot decide (error, timeout, open circuit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FailurePolicy {
    /// Admit the request: availability over enforcement.
    #[default]
    FailOpen,
    /// Deny the request (the gateway answers 503): enforcement over availability.
    FailClosed,
    /// Decide with an in-memory limiter of the same policy, per gateway instance: each
    /// instance enforces the policy alone, so N instances admit up to N times it.
    Local,
}

impl FailurePolicy {
    /// The name used in configs: `fail-open`, `fail-closed` or `local`.
    pub const fn name(self) -> &'static str {
        match self {
            FailurePolicy::FailOpen => "fail-open",
            FailurePolicy::FailClosed => "fail-closed",
            FailurePolicy::Local => "local",
        }
    }
}

impl fmt::Display for FailurePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown failure policy name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown failure policy {0:?} (expected one of: fail-open, fail-closed, local)")]
pub struct UnknownFailurePolicy(pub String);

impl FromStr for FailurePolicy {
    type Err = UnknownFailurePolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::FailOpen, Self::FailClosed, Self::Local]
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownFailurePolicy(s.to_owned()))
    }
}

/// Where the scripts' "now" comes from.
#[derive(Clone, Default)]
pub enum TimeSource {
    /// Redis's `TIME`, read inside the script: one clock for every gateway instance.
    #[default]
    Redis,
    /// The caller's clock (the simulator's virtual time, tests), sent with each call in
    /// microseconds. Its epoch aligns fixed windows. TTLs still run on Redis's clock,
    /// which may run faster than the caller's (a test stepping a manual clock), so they
    /// are at least a minute: a key must never vanish before its state is back to a
    /// full allowance, and one kept longer changes no decision (every state carries
    /// its own instants).
    Caller(Arc<dyn Clock>),
}

impl fmt::Debug for TimeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeSource::Redis => f.write_str("Redis"),
            TimeSource::Caller(_) => f.write_str("Caller(..)"),
        }
    }
}

/// Counters of a store's calls since it connected, and its circuit's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreMetrics {
    /// Decisions asked of Redis.
    pub calls: u64,
    /// Calls that failed: errors and timeouts.
    pub errors: u64,
    /// Calls that timed out (also counted in `errors`).
    pub timeouts: u64,
    /// Decisions not asked of Redis because the circuit was open.
    pub short_circuited: u64,
    /// Failures answered "allowed" by the fail-open policy.
    pub fallback_open: u64,
    /// Failures answered "denied" by the fail-closed policy.
    pub fallback_closed: u64,
    /// Failures decided by the in-memory fallback limiter.
    pub fallback_local: u64,
    /// Times the circuit opened (on a cluster: any slot group's circuit).
    pub circuit_opened: u64,
    /// The circuit now (on a cluster, the worst of the slot groups': open while any is).
    pub circuit: CircuitState,
    /// Decisions admitted from a lease in hand, without a call (lease mode).
    pub local_allowed: u64,
    /// Decisions refused by a local denial, without a call (every mode).
    pub local_denied: u64,
    /// Units dropped from leases that expired unspent (lease mode's under-admission).
    pub stranded: u64,
}

impl StoreMetrics {
    /// All fallbacks, whatever the policy.
    pub fn fallbacks(&self) -> u64 {
        self.fallback_open + self.fallback_closed + self.fallback_local
    }
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    short_circuited: AtomicU64,
    fallback_open: AtomicU64,
    fallback_closed: AtomicU64,
    fallback_local: AtomicU64,
    local_allowed: AtomicU64,
    local_denied: AtomicU64,
    stranded: AtomicU64,
}

impl Counters {
    /// Adds what a decision settled locally (most add nothing: no atomic write then).
    pub(super) fn add(&self, tally: &Tally) {
        for (counter, n) in [
            (&self.local_allowed, tally.local_allowed),
            (&self.local_denied, tally.local_denied),
            (&self.stranded, tally.stranded),
        ] {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A connection to Redis or Redis Cluster: multiplexed (one socket per node, shared by
/// every task) and reconnecting by itself. Cheap to clone.
#[derive(Clone)]
pub(crate) enum Connection {
    /// One Redis server.
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Connection::Single(_) => "Connection::Single",
            Connection::Cluster(_) => "Connection::Cluster",
        })
    }
}

impl redis::aio::ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// A connection to Redis (one server or a cluster) that hands out limiters. Cheap to
/// clone: clones share the connection, the circuit breaker and the counters.
#[derive(Clone, Debug)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The connection, once the background task has opened it.
    link: connect::Link,
    opts: RedisOptions,
    /// One breaker for a server; one per group of hash slots for a cluster.
    breakers: Breakers,
    counters: Counters,
}

impl RedisStore {
    /// A limiter enforcing `policy` on this store's connection, in the store's mode.
    ///
    /// Errors when the mode cannot enforce the policy (a lease mode with an algorithm
    /// that does not lease: see [`StoreMode::check`]).
    pub fn limiter(&self, policy: Policy) -> Result<RedisLimiter> {
        RedisLimiter::new(self.clone(), policy)
    }

    /// Counters of calls, errors, timeouts and fallbacks so far, and the circuit's state.
    pub fn metrics(&self) -> StoreMetrics {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StoreMetrics {
            calls: get(&c.calls),
            errors: get(&c.errors),
            timeouts: get(&c.timeouts),
            short_circuited: get(&c.short_circuited),
            fallback_open: get(&c.fallback_open),
            fallback_closed: get(&c.fallback_closed),
            fallback_local: get(&c.fallback_local),
            circuit_opened: self.inner.breakers.opened(),
            circuit: self.inner.breakers.state(),
            local_allowed: get(&c.local_allowed),
            local_denied: get(&c.local_denied),
            stranded: get(&c.stranded),
        }
    }

    /// Counts what decisions settled without a call (leases, local denials).
    pub(crate) fn count_local(&self, tally: &Tally) {
        self.inner.counters.add(tally);
    }

    /// The options it was connected with.
    pub fn options(&self) -> &RedisOptions {
        &self.inner.opts
    }

    /// The underlying connection, for commands of your own (benchmarks compare the
    /// limiter with raw `EVALSHA` and `PING` over it; tests read keys). No timeout or
    /// breaker applies. Multiplexed and reconnecting; cheap to clone. Before the store
    /// has connected, its commands fail at once.
    pub fn connection(&self) -> impl redis::aio::ConnectionLike + Clone + Send + Sync + 'static {
        self.inner.link.handle()
    }
}

fn store_error(e: redis::RedisError) -> Error {
    Error::store(e)
}
