//! The Lua-argument encoding (`limiter-core/src/algorithm/*/redis.rs`): for any policy
//! the quota constructors accept (emission interval and window of whole microseconds,
//! as the Redis scripts count in µs) and any arrivals on whole microseconds, the Redis
//! store — the arguments each algorithm's mirror pushes, its script, and the mirror's
//! decoding of the reply — answers exactly what the in-memory limiter answers, field
//! for field (the sliding window's retry-after may round up to Redis's whole µs, never
//! earlier). The coverage-guided search reaches the edges a property test samples
//! rarely: the largest limits, bursts and costs, the longest periods.
//!
//! Needs a Redis server: `RATELAB_FUZZ_REDIS=redis://127.0.0.1:PORT/` (scripts/fuzz.sh
//! starts one and stops it).
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use limiter_core::limiter::MemoryLimiter;
use limiter_core::quota::{MAX_LIMIT, MAX_PERIOD};
use limiter_core::store::redis::{RedisLimiter, RedisOptions, RedisStore, TimeSource};
use limiter_core::{Decision, Kind, Limiter, ManualClock, Policy, Quota};
use tokio::runtime::Runtime;

const US: u64 = 1_000;

#[derive(Debug, Arbitrary)]
struct Input {
    kind: u8,
    limit: u32,
    /// Emission interval in µs: the period is `limit × interval_us`.
    interval_us: u64,
    burst: u32,
    buckets: u16,
    start_us: u32,
    /// (gap in µs since the previous arrival, cost)
    arrivals: Vec<(u32, u32)>,
}

struct Harness {
    rt: Runtime,
    clock: ManualClock,
    store: RedisStore,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let url = std::env::var("RATELAB_FUZZ_REDIS")
            .expect("set RATELAB_FUZZ_REDIS=redis://127.0.0.1:PORT/ (scripts/fuzz.sh does)");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let clock = ManualClock::new();
        let opts = RedisOptions {
            time: TimeSource::Caller(Arc::new(clock.clone())),
            timeout: Duration::from_secs(5),
            ..RedisOptions::default()
        };
        let store = rt
            .block_on(RedisStore::connect(&url, opts))
            .expect("the fuzzing Redis answers");
        Harness { rt, clock, store }
    })
}

/// The policy `input` names, if the constructors accept it.
fn policy(input: &Input) -> Option<Policy> {
    let kind = Kind::ALL[usize::from(input.kind) % Kind::ALL.len()];
    let limit = u64::from(input.limit).clamp(1, MAX_LIMIT);
    let interval = input.interval_us.max(1);
    let period_us = limit.checked_mul(interval)?;
    if period_us.checked_mul(US)? > MAX_PERIOD {
        return None;
    }
    let quota = Quota::new(limit, Duration::from_micros(period_us))
        .and_then(|q| q.with_burst(u64::from(input.burst)))
        .ok()?;
    let policy = Policy::new(kind, quota);
    match kind.params().first() {
        Some(p) => policy.with_param(p.name, u64::from(input.buckets)).ok(),
        None => Some(policy),
    }
}

/// The same answer from memory (`m`) and Redis (`r`).
fn alike(kind: Kind, m: &Option<Decision>, r: &Option<Decision>) -> bool {
    match (m, r) {
        (Some(m), Some(r)) if kind == Kind::SlidingWindow && r.retry_after >= m.retry_after => {
            Decision {
                retry_after: m.retry_after,
                ..*r
            } == *m
        }
        _ => m == r,
    }
}

fuzz_target!(|input: Input| {
    let Some(policy) = policy(&input) else {
        return;
    };
    static KEY: AtomicU64 = AtomicU64::new(0);
    let h = harness();
    let key = format!("fuzz-{}", KEY.fetch_add(1, Ordering::Relaxed));
    let memory = MemoryLimiter::new(policy, h.clock.clone(), 16);
    let redis: RedisLimiter = h
        .store
        .limiter(policy)
        .unwrap_or_else(|e| panic!("the exact store refuses {policy:?}: {e}"));
    let mut now = u64::from(input.start_us) * US;
    for (i, &(gap, cost)) in input.arrivals.iter().take(64).enumerate() {
        now += u64::from(gap) * US;
        h.clock.set(now);
        let cost = u64::from(cost).max(1);
        let m = match memory.check(&key, cost) {
            Ok(d) => Some(d),
            Err(e) if e.is_cost_exceeds_capacity() => None,
            Err(e) => panic!("memory: {e}"),
        };
        let r = match h.rt.block_on(redis.check(&key, cost)) {
            Ok(d) => Some(d),
            Err(e) if e.is_cost_exceeds_capacity() => None,
            Err(e) => panic!("redis, arrival {i} at {now} cost {cost} of {policy:?}: {e}"),
        };
        assert!(
            alike(policy.kind, &m, &r),
            "arrival {i} at {now} ns cost {cost} of {policy:?}: memory {m:?}, redis {r:?}"
        );
    }
});
