//! One policy's limiter on a [`RedisStore`]: builds the `EVALSHA` call, bounds it in
//! time, and answers with the failure policy when Redis cannot.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::{Cmd, ErrorKind, ServerErrorKind, Value};

use super::leases::LeaseTable;
use super::{FailurePolicy, RedisStore, TimeSource, bump, key, script};
use crate::algorithm::mirror::AnyMirror;
use crate::clock::{Clock, MonotonicClock};
use crate::decision::{DecidedBy, Decision, Verdict};
use crate::error::{Error, Result};
use crate::limiter::{Limiter, MemoryLimiter, Policy};
use crate::store::lease::{Ask, Grant, Local, Tally};
use crate::store::memory::StoreStats;
use crate::store::mode::StoreMode;

/// A limiter for one policy whose state lives in Redis. [`Limiter::check`] reports store
/// failures as errors; [`decide`](Self::decide) answers them with the store's
/// [`FailurePolicy`].
pub struct RedisLimiter {
    store: RedisStore,
    policy: Policy,
    /// The algorithm's Redis twin: script arguments and reply decoding.
    mirror: AnyMirror,
    /// Every key's escaped `<prefix>:<algorithm>:{`, worked out once.
    key_head: String,
    /// The most one request may cost, and the limit decisions report.
    capacity: u64,
    /// The in-memory stand-in of the `local` failure policy.
    local: Option<MemoryLimiter<Arc<dyn Clock>>>,
    /// This instance's clock, for leases and local denials.
    clock: Arc<dyn Clock>,
    /// Leases in hand and local denials, per key.
    leases: Box<LeaseTable>,
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// Errors (at configuration time) when the store's mode cannot enforce `policy`.
    pub(super) fn new(store: RedisStore, policy: Policy) -> Result<Self> {
        let capacity = policy.capacity();
        let opts = store.options();
        opts.mode.check(&policy).map_err(Error::mode)?;
        let clock: Arc<dyn Clock> = match &opts.time {
            TimeSource::Caller(clock) => clock.clone(),
            TimeSource::Redis => Arc::new(MonotonicClock::new()),
        };
        // A byte budget too small for this policy was refused when the gateway read its
        // config; a library caller gets the key cap alone then.
        let local = (opts.on_error == FailurePolicy::Local).then(|| {
            MemoryLimiter::with_capacity(policy, Arc::clone(&clock), opts.local)
                .unwrap_or_else(|_| MemoryLimiter::new(policy, clock.clone(), opts.local.max_keys))
        });
        Ok(Self {
            clock,
            leases: Box::new(LeaseTable::new(opts.local.max_keys)),
            mirror: AnyMirror::new(&policy),
            key_head: key::head(&store.options().key_prefix, policy.kind),
            store,
            policy,
            capacity,
            local,
        })
    }

    /// The `local` failure policy's keys, evictions and refusals; `None` without it.
    pub fn local_counters(&self) -> Option<StoreStats> {
        self.local.as_ref().map(MemoryLimiter::counters)
    }

    /// The policy it enforces.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Forgets the idle keys of the `local` failure policy's in-memory limiter; returns
    /// how many went (0 without one).
    pub fn sweep_local(&self) -> usize {
        self.local.as_ref().map_or(0, MemoryLimiter::sweep)
    }

    /// Keys held by the `local` failure policy's in-memory limiter (`None` without one).
    pub fn local_keys(&self) -> Option<usize> {
        self.local.as_ref().map(MemoryLimiter::keys)
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
        self.mirror.push_args(&mut cmd, cost);
        // `now` last, and only on the caller's time: absent means Redis's `TIME`.
        if let TimeSource::Caller(clock) = &self.store.options().time {
            cmd.arg(clock.now() / 1_000);
        }
        cmd
    }

    /// The lease script call taking `ask` of `key` now (store mode `lease`).
    pub fn lease_command(&self, key: &str, ask: Ask) -> Cmd {
        let key = self.redis_key(key);
        let mut cmd = Cmd::with_capacity(9, 128 + key.len());
        cmd.arg("EVALSHA")
            .arg(script::lease_sha(self.policy.kind))
            .arg(1)
            .arg(key);
        self.mirror.push_lease_args(&mut cmd, ask);
        if let TimeSource::Caller(clock) = &self.store.options().time {
            cmd.arg(clock.now() / 1_000);
        }
        cmd
    }

    /// The settle script call for a request of `key` that reserved `reserved` and cost
    /// `actual`, now; `None` when the algorithm does not settle.
    pub fn settle_command(&self, key: &str, reserved: u64, actual: u64) -> Option<Cmd> {
        let kind = self.policy.kind;
        script::settle_lua(kind)?;
        let key = self.redis_key(key);
        let mut cmd = Cmd::with_capacity(6, 112 + key.len());
        cmd.arg("EVALSHA")
            .arg(script::settle_sha(kind))
            .arg(1)
            .arg(key);
        self.mirror.push_settle_args(&mut cmd, reserved, actual);
        if let TimeSource::Caller(clock) = &self.store.options().time {
            cmd.arg(clock.now() / 1_000);
        }
        Some(cmd)
    }

    /// Settles `reservation` of `key` at its true cost `actual` (see [`crate::settle`])
    /// in the state that admitted it: Redis (one script call, in every store mode: a
    /// lease in hand is not touched), or the `local` failure policy's stand-in. A store
    /// failure is an error (the settle is lost); the failure policy does not apply.
    pub async fn settle(
        &self,
        key: &str,
        reservation: &crate::settle::Reservation,
        actual: u64,
    ) -> Result<Decision> {
        let reserved = reservation.reserved;
        if reservation.verdict.decided_by == DecidedBy::Local
            && let Some(local) = &self.local
        {
            return local.settle(key, reserved, actual);
        }
        let kind = self.policy.kind;
        let (Some(cmd), Some(lua)) = (
            self.settle_command(key, reserved, actual),
            script::settle_lua(kind),
        ) else {
            return Err(Error::settle_unsupported(kind.name()));
        };
        let reply = self.store.guarded_call(&cmd, lua).await?;
        // A denial remembered before the settle may now be too long (a refund) or too
        // short (a debit, which the store's next answer extends): ask the store again.
        self.leases.end_denial(key);
        self.mirror
            .decode_settle_value(&reply)
            .ok_or_else(|| Error::bad_reply(format!("{reply:?}")))
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
                let retry = err
                    .retry_after()
                    .unwrap_or(self.store.options().breaker.open_for);
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

    /// Decides alone when the key's lease or local denial can, else asks the store.
    async fn check_store(&self, key: &str, cost: u64) -> Result<Decision> {
        if cost > self.capacity {
            return Err(Error::cost_exceeds_capacity(cost, self.capacity));
        }
        let opts = self.store.options();
        let mode = &opts.mode;
        if *mode == StoreMode::Exact && !opts.local_denials {
            let ask = Ask {
                take: cost,
                need: cost,
            };
            return self.ask(key, ask).await.map(|grant| grant.store);
        }
        let ask = loop {
            let landed = self.leases.landed(key);
            let mut tally = Tally::default();
            let now = self.clock.now();
            let local = self
                .leases
                .decide(mode, key, now, cost, self.capacity, &mut tally);
            self.store.count_local(&tally);
            match local {
                Local::Allowed(d) | Local::Denied(d) => return Ok(d),
                Local::Ask(ask) => break ask,
                // The lease in flight ends within the store timeout, answered or not.
                Local::Wait => {
                    let _ = tokio::time::timeout(opts.timeout, landed).await;
                }
            }
        };
        match self.ask(key, ask).await {
            Ok(grant) => {
                let now = self.clock.now();
                Ok(self.leases.granted(mode, key, now, ask, cost, grant))
            }
            Err(e) => {
                self.leases.failed(key, ask);
                Err(e)
            }
        }
    }

    /// What the store answers to `ask`: one exact call for its cost (exact mode), or a
    /// lease (lease mode), decoded by the algorithm's mirror.
    async fn ask(&self, key: &str, ask: Ask) -> Result<Grant> {
        let kind = self.policy.kind;
        let lease = matches!(self.store.options().mode, StoreMode::Lease(_));
        let (cmd, lua) = match (lease, script::lease_lua(kind)) {
            (true, Some(lua)) => (self.lease_command(key, ask), lua),
            _ => (self.command(key, ask.take), script::lua(kind)),
        };
        let reply = self.store.guarded_call(&cmd, lua).await?;
        let grant = if lease {
            self.mirror.decode_lease_value(&reply, ask)
        } else {
            self.mirror
                .decode_value(&reply, ask.take)
                .map(|store| Grant {
                    taken: if store.allowed { ask.take } else { 0 },
                    store,
                })
        };
        grant.ok_or_else(|| Error::bad_reply(format!("{reply:?}")))
    }
}

impl RedisStore {
    /// Runs one script call `cmd` (an `EVALSHA` of the script `lua`) the way every
    /// decision runs: not at all while the circuit of its key's slots is open, bounded by the timeout,
    /// reloading the script once on `NOSCRIPT`, counted, and its failure reported to
    /// the breaker.
    pub(crate) async fn guarded_call(&self, cmd: &Cmd, lua: &str) -> Result<Value> {
        let inner = &self.inner;
        let breaker = inner.breakers.for_call(cmd);
        let permit = match breaker.admit() {
            Ok(p) => p,
            Err(wait) => {
                bump(&inner.counters.short_circuited);
                return Err(Error::circuit_open(wait));
            }
        };
        bump(&inner.counters.calls);
        let timeout = inner.opts.timeout;
        let result = match tokio::time::timeout(timeout, self.call(cmd, lua)).await {
            Ok(r) => r,
            Err(_) => {
                bump(&inner.counters.timeouts);
                Err(Error::timeout(timeout))
            }
        };
        match &result {
            Ok(_) => breaker.success(permit),
            Err(e) => {
                bump(&inner.counters.errors);
                breaker.failure(permit, e);
            }
        }
        result
    }

    /// Counts a decision a failure policy made because the store could not.
    pub(crate) fn count_fallback(&self, by: DecidedBy) {
        let c = &self.inner.counters;
        match by {
            DecidedBy::Store => {}
            DecidedBy::Local => bump(&c.fallback_local),
            DecidedBy::FailOpen => bump(&c.fallback_open),
            DecidedBy::FailClosed => bump(&c.fallback_closed),
        }
    }

    async fn call(&self, cmd: &Cmd, lua: &str) -> Result<Value> {
        let mut conn = self.connection();
        match cmd.query_async::<Value>(&mut conn).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                // Redis restarted or flushed its scripts: load ours again, once.
                redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(lua)
                    .query_async::<Value>(&mut conn)
                    .await
                    .map_err(super::store_error)?;
                cmd.query_async::<Value>(&mut conn).await
            }
            r => r,
        }
        .map_err(super::store_error)
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
