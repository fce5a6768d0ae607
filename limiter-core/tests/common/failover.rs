//! Failover, measured: a steady run of decisions against a Redis Cluster with a replica
//! per master (3 + 3, `testkit`), the master serving the hot keys killed in the middle,
//! and the run's own decisions as ground truth. Shared by the `redis_failover` test
//! (which asserts recovery and the accounting) and the `failover` bench (which writes
//! the Markdown table of docs/redis.md); included by `#[path]`, needs the `redis`
//! feature.
//!
//! The set-up: `INSTANCES` limiters (each its own store and connection, like gateways)
//! decide `HOT` keys served by one master and one `cold` key served by another, each
//! task offering `OFFERED` decisions/s for its key. The policy (GCRA, 20/s, burst 200)
//! is one the offered load (2 × 100/s per key) empties in about a second and keeps
//! empty, and that refills less than its burst during an outage of a few seconds: so
//! every unit the store admits twice because the promoted replica never saw its write
//! (asynchronous replication) shows as admissions above the envelope.
//!
//! What is measured, per key, on the instants of the limiters' shared clock:
//! - **recovery**: from the kill to the first decision that came from the store after
//!   the last one a failure policy made (the client noticed the promotion, the circuit
//!   closed, the scripts are loaded on the new master);
//! - **failure policy**: the decisions it made, allowed and denied;
//! - **over-admission**: admitted beyond the envelope over the run (burst + rate × the
//!   run's span, [`Policy::envelope`]), all decisions and the store's alone; the
//!   store's alone is the writes the promoted replica never saw.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use limiter_core::store::mode::{LeaseOptions, StoreMode};
use limiter_core::store::redis::{
    RedisLimiter, RedisOptions, RedisStore, StoreMetrics, TimeSource,
};
use limiter_core::{Clock, DecidedBy, FailurePolicy, Kind, Nanos, Policy, Quota};
use testkit::{Failover, RedisCluster};

/// Limiter instances (stores, connections), like gateways.
pub const INSTANCES: usize = 2;
/// Keys on the master that is killed.
pub const HOT: usize = 3;
/// Decisions per second each instance offers for each key.
pub const OFFERED: u64 = 100;

/// One run's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// The store mode.
    pub mode: StoreMode,
    /// What answers while the store cannot.
    pub on_error: FailurePolicy,
    /// Steady run before the kill.
    pub before: Duration,
    /// Run after the cluster has promoted the replica.
    pub after: Duration,
    /// Redis's `cluster-require-full-coverage` (its default, `yes`: every master refuses
    /// writes while a slot has no master, from the failure's detection to the
    /// promotion; `no`: the masters that stay up keep serving their slots).
    pub full_coverage: bool,
}

impl Setup {
    /// `mode` and `on_error`, 2 s steady before the kill and 3 s after the promotion.
    pub fn new(mode: StoreMode, on_error: FailurePolicy) -> Self {
        Self {
            mode,
            on_error,
            before: Duration::from_secs(2),
            after: Duration::from_secs(3),
            full_coverage: true,
        }
    }
}

/// Lease mode as measured: up to 16 units a lease, unspent units back after 2 s.
pub fn lease() -> StoreMode {
    StoreMode::Lease(LeaseOptions::new(16, Duration::from_secs(2)).unwrap())
}

/// The policy of every key: 20 per second, burst 200.
pub fn policy() -> Policy {
    Policy::new(
        Kind::Gcra,
        Quota::per_second(20).unwrap().with_burst(200).unwrap(),
    )
}

/// One key's decisions over the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyTally {
    /// Decisions made.
    pub decisions: u64,
    /// Admitted with the store's answer (a call, or a lease in hand).
    pub store_allowed: u64,
    /// Refused with the store's answer (a call, or a local denial it made).
    pub store_denied: u64,
    /// Admitted by the failure policy.
    pub fallback_allowed: u64,
    /// Refused by the failure policy.
    pub fallback_denied: u64,
    /// The most the policy admits over the run's span (first to last decision).
    pub envelope: u64,
    /// Instant of the last decision a failure policy made.
    pub last_fallback: Option<Nanos>,
    /// Instant of the first store decision after `last_fallback`.
    pub back_on_store: Option<Nanos>,
}

impl KeyTally {
    /// Admitted beyond the envelope, all decisions.
    pub fn over(&self) -> u64 {
        (self.store_allowed + self.fallback_allowed).saturating_sub(self.envelope)
    }

    /// Admitted beyond the envelope by the store alone: units admitted twice because
    /// the promoted replica never saw their write.
    pub fn store_over(&self) -> u64 {
        self.store_allowed.saturating_sub(self.envelope)
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The run's configuration.
    pub setup: Setup,
    /// From the kill until every surviving node agreed on the promoted replica.
    pub promotion: Duration,
    /// From the kill until every hot key's decisions came from the store again
    /// (`None`: some key never did within the run).
    pub recovery: Option<Duration>,
    /// The hot keys' decisions, summed.
    pub hot: KeyTally,
    /// Each hot key's decisions.
    pub hot_keys: Vec<KeyTally>,
    /// The hot keys' over-admission, summed key by key.
    pub hot_over: u64,
    /// The same, store decisions alone (lost writes).
    pub hot_store_over: u64,
    /// The cold key (on a master that stayed up): its decisions.
    pub cold: KeyTally,
    /// The instances' store counters, summed (calls, errors, circuit).
    pub calls: u64,
    /// Calls that failed (errors and timeouts).
    pub errors: u64,
    /// Calls that timed out.
    pub timeouts: u64,
    /// Decisions not asked because the circuit was open.
    pub short_circuited: u64,
    /// Times a circuit opened.
    pub circuit_opened: u64,
    /// Decision latency before the kill, every key: median and 99th percentile.
    pub latency: (Duration, Duration),
}

/// The run's clock: nanoseconds since it started, shared by every instance (the
/// scripts get it as their "now", so the envelope is on the decisions' own instants).
struct Since(Instant);

impl Clock for Since {
    fn now(&self) -> Nanos {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A decision: its instant, answer, source and how long it took (ns).
type Record = (Nanos, bool, DecidedBy, Nanos);

/// Starts a 3 + 3 cluster, runs `setup`, kills the master of the hot keys after
/// `setup.before`, keeps going `setup.after` past the promotion, stops the cluster.
pub async fn run(setup: Setup) -> Outcome {
    let coverage = if setup.full_coverage { "yes" } else { "no" };
    let cluster = Arc::new(
        tokio::task::spawn_blocking(move || {
            let config = ["--cluster-require-full-coverage", coverage];
            RedisCluster::start_with(1, Duration::from_millis(1_500), &config)
        })
        .await
        .unwrap()
        .unwrap(),
    );
    let start = Instant::now();
    let clock: Arc<dyn Clock> = Arc::new(Since(start));
    let opts = RedisOptions {
        timeout: Duration::from_millis(100),
        on_error: setup.on_error,
        mode: setup.mode,
        time: TimeSource::Caller(clock.clone()),
        ..RedisOptions::default()
    };
    let mut limiters = Vec::new();
    for _ in 0..INSTANCES {
        let store = RedisStore::connect_cluster(&cluster.urls(), opts.clone())
            .await
            .unwrap();
        limiters.push(Arc::new(store.limiter(policy()).unwrap()));
    }
    let keys = pick_keys(&cluster, &limiters[0]);
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for limiter in &limiters {
        for (k, key) in keys.iter().enumerate() {
            let (limiter, key) = (limiter.clone(), key.clone());
            let (stop, clock) = (stop.clone(), clock.clone());
            tasks.push(tokio::spawn(async move {
                (k, offer(&limiter, &key, &stop, clock.as_ref()).await)
            }));
        }
    }
    tokio::time::sleep(setup.before).await;
    let hot_key = limiters[0].redis_key(&keys[0]);
    let failover = {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || cluster.fail_over(&hot_key, Duration::from_secs(30)))
            .await
            .unwrap()
            .unwrap()
    };
    tokio::time::sleep(setup.after).await;
    stop.store(true, Ordering::Relaxed);
    let mut per_key: Vec<Vec<Record>> = vec![Vec::new(); keys.len()];
    for t in tasks {
        let (k, records) = t.await.unwrap();
        per_key[k].extend(records);
    }
    let metrics: Vec<StoreMetrics> = limiters.iter().map(|l| l.store().metrics()).collect();
    drop(limiters);
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
    outcome(setup, &failover, start, per_key, &metrics)
}

/// `HOT` identities whose Redis keys one master serves, then one on another master.
fn pick_keys(cluster: &RedisCluster, limiter: &RedisLimiter) -> Vec<String> {
    let master = |key: &str| {
        let slot = cluster.slot(&limiter.redis_key(key)).unwrap();
        cluster.master_of_slot(slot).unwrap()
    };
    let candidates: Vec<String> = (0..1_000).map(|i| format!("user-{i}")).collect();
    let target = master(&candidates[0]);
    let mut keys: Vec<String> = candidates
        .iter()
        .filter(|k| master(k) == target)
        .take(HOT)
        .cloned()
        .collect();
    let cold = candidates.iter().find(|k| master(k) != target).unwrap();
    keys.push(cold.clone());
    keys
}

/// Offers `OFFERED` decisions/s for `key` until `stop`; every decision's instant on
/// the run's clock (read as it starts, as the store's "now" is), answer and source.
async fn offer(
    limiter: &RedisLimiter,
    key: &str,
    stop: &AtomicBool,
    clock: &dyn Clock,
) -> Vec<Record> {
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / OFFERED));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut records = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let at = clock.now();
        let v = limiter.decide(key, 1).await.unwrap();
        let took = clock.now().saturating_sub(at);
        records.push((at, v.decision.allowed, v.decided_by, took));
    }
    records
}

fn outcome(
    setup: Setup,
    failover: &Failover,
    start: Instant,
    per_key: Vec<Vec<Record>>,
    metrics: &[StoreMetrics],
) -> Outcome {
    let sum = |f: fn(&StoreMetrics) -> u64| metrics.iter().map(f).sum();
    let killed = u64::try_from((failover.killed_at - start).as_nanos()).unwrap();
    let mut per_key = per_key;
    for records in &mut per_key {
        records.sort_by_key(|r| r.0);
    }
    let mut tallies: Vec<KeyTally> = per_key.iter().map(|r| tally(r, killed)).collect();
    let latency = steady_latency(&per_key, killed);
    let cold = tallies.pop().unwrap();
    let recovery = tallies
        .iter()
        .map(|t| match (t.last_fallback, t.back_on_store) {
            (None, _) => Some(0),
            (Some(_), back) => back.map(|b| b.saturating_sub(killed)),
        })
        .try_fold(0, |acc, r| r.map(|r| acc.max(r)))
        .map(Duration::from_nanos);
    let hot = tallies.iter().fold(KeyTally::default(), |acc, t| KeyTally {
        decisions: acc.decisions + t.decisions,
        store_allowed: acc.store_allowed + t.store_allowed,
        store_denied: acc.store_denied + t.store_denied,
        fallback_allowed: acc.fallback_allowed + t.fallback_allowed,
        fallback_denied: acc.fallback_denied + t.fallback_denied,
        envelope: acc.envelope + t.envelope,
        last_fallback: acc.last_fallback.max(t.last_fallback),
        back_on_store: acc.back_on_store.max(t.back_on_store),
    });
    Outcome {
        setup,
        promotion: failover.promotion_time(),
        recovery,
        hot_over: tallies.iter().map(KeyTally::over).sum(),
        hot_store_over: tallies.iter().map(KeyTally::store_over).sum(),
        hot,
        hot_keys: tallies,
        cold,
        calls: sum(|m| m.calls),
        errors: sum(|m| m.errors),
        timeouts: sum(|m| m.timeouts),
        short_circuited: sum(|m| m.short_circuited),
        circuit_opened: sum(|m| m.circuit_opened),
        latency,
    }
}

/// The median and 99th percentile of the decisions' durations before `killed`.
fn steady_latency(per_key: &[Vec<Record>], killed: Nanos) -> (Duration, Duration) {
    let mut took: Vec<Nanos> = per_key
        .iter()
        .flatten()
        .filter(|r| r.0 < killed)
        .map(|r| r.3)
        .collect();
    took.sort_unstable();
    let at = |q: f64| {
        let i = ((took.len() as f64 - 1.0) * q).round() as usize;
        Duration::from_nanos(took.get(i).copied().unwrap_or(0))
    };
    (at(0.5), at(0.99))
}

/// One key's records (in time order) summed; `killed` is the kill's instant.
fn tally(records: &[Record], killed: Nanos) -> KeyTally {
    let mut t = KeyTally::default();
    for &(at, allowed, by, _) in records {
        t.decisions += 1;
        match (by, allowed) {
            (DecidedBy::Store, true) => t.store_allowed += 1,
            (DecidedBy::Store, false) => t.store_denied += 1,
            (_, true) => t.fallback_allowed += 1,
            (_, false) => t.fallback_denied += 1,
        }
        if by.is_fallback() {
            t.last_fallback = Some(at);
            t.back_on_store = None;
        } else if t.back_on_store.is_none() && t.last_fallback.is_some() && at >= killed {
            t.back_on_store = Some(at);
        }
    }
    if let (Some(first), Some(last)) = (records.first(), records.last()) {
        t.envelope = policy().envelope().most_in(first.0, last.0 - first.0);
    }
    t
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e3)
}

/// The Markdown table of `outcomes`, one row per run.
pub fn markdown(outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "| mode | failure policy | full coverage | decision p50 / p99 before the kill (µs) | promotion (ms) | back on the store (ms) | \
         failure policy allowed / denied | admitted / envelope (hot keys) | \
         over-admission | of which lost writes | cold key: failure-policy decisions |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for o in outcomes {
        let h = &o.hot;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} / {} | {} | {} | {} / {} | {} / {} | {} | {} | {} of {} |",
            o.setup.mode,
            o.setup.on_error,
            if o.setup.full_coverage { "yes" } else { "no" },
            o.latency.0.as_micros(),
            o.latency.1.as_micros(),
            ms(o.promotion),
            o.recovery.map_or_else(|| "not within the run".into(), ms),
            h.fallback_allowed,
            h.fallback_denied,
            h.store_allowed + h.fallback_allowed,
            h.envelope,
            o.hot_over,
            o.hot_store_over,
            o.cold.fallback_allowed + o.cold.fallback_denied,
            o.cold.decisions,
        );
    }
    out
}
