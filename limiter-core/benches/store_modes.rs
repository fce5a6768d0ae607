//! Store modes at scale, in process: three limiters (three stores, three connections)
//! share one `redis-server` started for the run, on 10,000 keys drawn from a Zipf
//! distribution (s = 1), offered at twice the policy in aggregate, once in `exact` mode
//! and once in `lease` mode (`cargo bench -p limiter-core --features redis --bench
//! store_modes`). Environment: `BENCH_SECS` each mode's wall-clock run (default 2),
//! `WARMUP_SECS` the part of it left out of the steady-state figure (default a quarter),
//! `LEASE_MAX` (default 64; the policy's burst of 10 caps a lease at 10),
//! `LEASE_TTL` seconds (default 10).
//!
//! Time is the arrivals' own: each decision advances a shared virtual clock by the
//! interval that makes the offered load exactly 2× the 10,000 keys' policy (10/s each),
//! so the accuracy figures do not depend on how fast this machine runs; decisions/s is
//! wall-clock. Printed per mode: decisions/s, Redis calls per decision (the stores' own
//! count) over the whole run and in the steady state (after the warm-up: every key's
//! first lease, and the lease sizes' growth, are behind), the over-admission against
//! the envelope over the run (per key, admissions beyond burst + rate × virtual run
//! length, summed, as a share of the admissions within it), and the units stranded in
//! expired leases.
//!
//! Why the steady state and a 10 s ttl: an instance pays at least one call per key it
//! sees per lease, and a lease lives `lease.ttl`. With 3 instances and this Zipf, most
//! keys are seen by an instance about once a second or less, so with `ttl = 1s` they
//! cost a call per request whatever the mode (about 0.14 calls per decision in the
//! simulator's run of this workload, `ratelab simulate --store-mode`); a 10 s ttl lets
//! their leases grow to several units. The first lease of each of the 30,000
//! (key, instance) pairs is a one-off cost a short run cannot amortise.

// A benchmark: any failure should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use limiter_core::store::mode::{LeaseOptions, StoreMode};
use limiter_core::store::redis::{RedisOptions, RedisStore, TimeSource};
use limiter_core::{Clock, Kind, Limiter, Nanos, Policy, Quota};
use testkit::RedisServer;

const KEYS: usize = 10_000;
const RATE: u64 = 10;
const INSTANCES: usize = 3;
const TASKS_PER_INSTANCE: usize = 32;

/// Virtual time: `ticks × step` nanoseconds, one tick per decision offered.
struct Arrivals {
    ticks: AtomicU64,
    step: Nanos,
}

impl Clock for Arrivals {
    fn now(&self) -> Nanos {
        self.ticks.load(Ordering::Relaxed) * self.step
    }
}

/// Inverse CDF of Zipf(s = 1) over `KEYS` keys.
fn zipf_cdf() -> Vec<f64> {
    let weights: Vec<f64> = (1..=KEYS).map(|k| 1.0 / k as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect()
}

fn env(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

struct Figures {
    decisions: u64,
    per_sec: f64,
    calls_per_decision: f64,
    steady_calls_per_decision: f64,
    over_admission: f64,
    stranded: u64,
}

/// Decisions offered and Redis calls made so far.
fn counts(clock: &Arrivals, stores: &[RedisStore]) -> (u64, u64) {
    let calls = stores.iter().map(|s| s.metrics().calls).sum();
    (clock.ticks.load(Ordering::Relaxed), calls)
}

async fn run(
    url: &str,
    mode: StoreMode,
    (run_for, warmup): (Duration, Duration),
    tag: &str,
) -> Figures {
    // 2× the aggregate policy: one arrival every 1 / (2 × KEYS × RATE) s.
    let clock = Arc::new(Arrivals {
        ticks: AtomicU64::new(0),
        step: 1_000_000_000 / (2 * KEYS as u64 * RATE),
    });
    let policy = Policy::new(Kind::Gcra, Quota::per_second(RATE).unwrap());
    let cdf = Arc::new(zipf_cdf());
    let names: Arc<Vec<String>> = Arc::new((0..KEYS).map(|k| format!("user:{k}")).collect());
    let admitted: Arc<Vec<AtomicU64>> = Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let mut stores = Vec::new();
    let mut tasks = Vec::new();
    let started = Instant::now();
    for instance in 0..INSTANCES {
        let opts = RedisOptions {
            timeout: Duration::from_secs(5),
            time: TimeSource::Caller(clock.clone()),
            key_prefix: format!("bench-{tag}"),
            mode,
            ..RedisOptions::default()
        };
        let store = RedisStore::connect(url, opts).await.unwrap();
        let limiter = Arc::new(store.limiter(policy).unwrap());
        stores.push(store);
        for task in 0..TASKS_PER_INSTANCE {
            let (limiter, clock, cdf, admitted, names) = (
                limiter.clone(),
                clock.clone(),
                cdf.clone(),
                admitted.clone(),
                names.clone(),
            );
            let mut seed =
                ((instance * 1_000 + task + 1) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            tasks.push(tokio::spawn(async move {
                while started.elapsed() < run_for {
                    // xorshift64*: uniform in [0, 1).
                    seed ^= seed >> 12;
                    seed ^= seed << 25;
                    seed ^= seed >> 27;
                    let u = (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64
                        / (1u64 << 53) as f64;
                    let key = cdf.partition_point(|&c| c < u).min(KEYS - 1);
                    clock.ticks.fetch_add(1, Ordering::Relaxed);
                    if limiter.check(&names[key], 1).await.unwrap().allowed {
                        admitted[key].fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::task::yield_now().await;
                }
            }));
        }
    }
    tokio::time::sleep(warmup).await;
    let (warm_ticks, warm_calls) = counts(&clock, &stores);
    for t in tasks {
        t.await.unwrap();
    }
    let (ticks, calls) = counts(&clock, &stores);
    let wall = started.elapsed().as_secs_f64();
    let decisions = ticks;
    let span = clock.now();
    let envelope = policy.envelope().most_in(0, span);
    let (mut over, mut within) = (0u64, 0u64);
    for a in admitted.iter() {
        let a = a.load(Ordering::Relaxed);
        over += a.saturating_sub(envelope);
        within += a.min(envelope);
    }
    Figures {
        decisions,
        per_sec: decisions as f64 / wall,
        calls_per_decision: calls as f64 / decisions as f64,
        steady_calls_per_decision: (calls - warm_calls) as f64
            / ticks.saturating_sub(warm_ticks).max(1) as f64,
        over_admission: over as f64 / within.max(1) as f64,
        stranded: stores.iter().map(|s| s.metrics().stranded).sum(),
    }
}

fn main() {
    let secs = env("BENCH_SECS", 2.0);
    let run_for = Duration::from_secs_f64(secs);
    let warmup = Duration::from_secs_f64(env("WARMUP_SECS", secs / 4.0).min(secs));
    let max = env("LEASE_MAX", 64.0) as u64;
    let ttl = Duration::from_secs_f64(env("LEASE_TTL", 10.0));
    let server = RedisServer::start().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let lease = StoreMode::Lease(LeaseOptions::new(max, ttl).unwrap());
    println!(
        "| mode | decisions | decisions/s | Redis calls/decision (run) | (steady, after {warmup:?}) | over-admission (of envelope) | stranded units |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (mode, tag) in [(StoreMode::Exact, "exact"), (lease, "lease")] {
        let f = rt.block_on(run(&server.url(), mode, (run_for, warmup), tag));
        println!(
            "| {mode} | {} | {:.0} | {:.4} | {:.4} | {:.3}% | {} |",
            f.decisions,
            f.per_sec,
            f.calls_per_decision,
            f.steady_calls_per_decision,
            100.0 * f.over_admission,
            f.stranded
        );
    }
}
