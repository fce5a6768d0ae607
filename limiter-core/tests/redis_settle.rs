//! Cost after the decision on Redis and Redis Cluster: on random timelines of reserves,
//! settles and refunds (caller-supplied time), one settle script call answers exactly
//! as the in-memory settle does (tests/settle.rs proves that one against checks);
//! concurrent settles from many tasks add up; on Redis's own clock a debt refuses the
//! key until it refills; a settle keeps the key's hash tag (the same Redis key as the
//! check's, so the same Cluster slot).

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use limiter_core::store::redis::{RedisOptions, RedisStore, TimeSource};
use limiter_core::{Kind, ManualClock, Policy, Quota, RateLimiter};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use testkit::{RedisCluster, RedisServer};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Caller time, and every request asks the store (local denials answer a refused key
/// with the store's last refusal, which the in-memory store does not remember).
fn caller_time(clock: &ManualClock) -> RedisOptions {
    RedisOptions {
        time: TimeSource::Caller(Arc::new(clock.clone())),
        timeout: Duration::from_secs(2),
        local_denials: false,
        ..RedisOptions::default()
    }
}

/// One step of a timeline: wait `gap` µs, then reserve `reserved` and, if admitted,
/// settle it at `actual` (0: a refund).
#[derive(Debug, Clone, Copy)]
struct Step {
    gap_us: u64,
    reserved: u64,
    actual: u64,
}

/// A policy whose interval per unit is a whole number of ms (so memory's nanoseconds
/// and Redis's microseconds round alike), and its timeline.
fn case() -> impl Strategy<Value = (Policy, Vec<Step>)> {
    let policy = (any::<bool>(), 1u64..=500, 1u64..=10, 1u64..=20).prop_map(
        |(gcra, interval_ms, limit, burst)| {
            let kind = if gcra { Kind::Gcra } else { Kind::TokenBucket };
            let quota = Quota::new(limit, Duration::from_millis(interval_ms * limit))
                .and_then(|q| q.with_burst(burst))
                .unwrap();
            Policy::new(kind, quota)
        },
    );
    policy.prop_flat_map(|p| {
        let interval_us = p.quota.period_nanos() / p.quota.limit() / 1_000;
        let burst = p.quota.burst();
        let step = (
            prop_oneof![Just(0u64), 0..interval_us * 3, 0..interval_us * 40],
            1..=burst,
            prop_oneof![0..=burst, 0..=burst * 4],
        )
            .prop_map(|(gap_us, reserved, actual)| Step {
                gap_us,
                reserved,
                actual,
            });
        (Just(p), prop::collection::vec(step, 1..60))
    })
}

fn suite(rt: &Runtime, store: &RedisStore, clock: &ManualClock, cases: u32) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let n = std::sync::atomic::AtomicU64::new(0);
    let result = runner.run(&case(), |(policy, steps)| {
        let key = format!(
            "user:{}",
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let memory = RateLimiter::memory(policy, clock.clone(), 100);
        let redis = RateLimiter::redis(store, policy).unwrap();
        for (i, s) in steps.iter().enumerate() {
            clock.advance(Duration::from_micros(s.gap_us));
            let m = memory.reserve_now(&key, s.reserved).unwrap().unwrap();
            let r = rt.block_on(redis.reserve(&key, s.reserved)).unwrap();
            prop_assert_eq!(m, r, "reserve, step {}", i);
            let ms = memory.settle_now(&key, &m, s.actual).unwrap().unwrap();
            let rs = rt.block_on(redis.settle(&key, &r, s.actual)).unwrap();
            prop_assert_eq!(ms, rs, "settle, step {}: {:?}", i, s);
        }
        Ok::<(), TestCaseError>(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn settles_on_redis_answer_as_in_memory() {
    let redis = RedisServer::start().unwrap();
    let clock = ManualClock::new();
    clock.set(1_000_000_000_000);
    let rt = runtime();
    let store = rt
        .block_on(RedisStore::connect(&redis.url(), caller_time(&clock)))
        .unwrap();
    suite(&rt, &store, &clock, 96);
}

#[test]
fn settles_on_a_cluster_answer_as_in_memory() {
    let cluster = RedisCluster::start().unwrap();
    let clock = ManualClock::new();
    clock.set(1_000_000_000_000);
    let rt = runtime();
    let store = rt
        .block_on(RedisStore::connect_cluster(
            &cluster.urls(),
            caller_time(&clock),
        ))
        .unwrap();
    suite(&rt, &store, &clock, 16);
}

/// 64 tasks reserve and settle one key at one instant through one store: the debt
/// left is exactly the sum of their costs (each settle one atomic script call).
#[test]
fn concurrent_settles_on_redis_add_up() {
    let redis = RedisServer::start().unwrap();
    let clock = ManualClock::new();
    clock.set(5_000_000_000);
    let rt = runtime();
    let store = rt
        .block_on(RedisStore::connect(&redis.url(), caller_time(&clock)))
        .unwrap();
    for kind in [Kind::TokenBucket, Kind::Gcra] {
        let quota = Quota::new(1_000, Duration::from_secs(1))
            .and_then(|q| q.with_burst(100_000))
            .unwrap();
        let limiter = Arc::new(RateLimiter::redis(&store, Policy::new(kind, quota)).unwrap());
        let total: u64 = rt.block_on(async {
            let tasks: Vec<_> = (0..64u64)
                .map(|t| {
                    let limiter = Arc::clone(&limiter);
                    tokio::spawn(async move {
                        let mut sum = 0;
                        for i in 0..20u64 {
                            let actual = (t * 5 + i * 3) % 6;
                            let r = limiter.reserve("k", 1).await.unwrap();
                            assert!(r.verdict.decision.allowed);
                            limiter.settle("k", &r, actual).await.unwrap().unwrap();
                            sum += actual;
                        }
                        sum
                    })
                })
                .collect();
            let mut total = 0;
            for t in tasks {
                total += t.await.unwrap();
            }
            total
        });
        let probe = rt.block_on(limiter.decide("k", 1)).unwrap().decision;
        assert_eq!(
            probe.reset_after,
            Duration::from_millis(total + 1),
            "{kind}"
        );
    }
}

/// On Redis's own clock: a debt refuses the key, for about as long as its refill takes.
#[test]
fn a_debt_on_redis_time_refuses_until_refilled() {
    let redis = RedisServer::start().unwrap();
    let rt = runtime();
    let store = rt
        .block_on(RedisStore::connect(&redis.url(), RedisOptions::default()))
        .unwrap();
    // 10 a second, burst 5: a cost of 14 after reserving 1 leaves −9, 1 s to one unit.
    let quota = Quota::per_second(10).and_then(|q| q.with_burst(5)).unwrap();
    let limiter = RateLimiter::redis(&store, Policy::new(Kind::TokenBucket, quota)).unwrap();
    let r = rt.block_on(limiter.reserve("k", 1)).unwrap();
    assert!(r.verdict.decision.allowed);
    let balance = rt.block_on(limiter.settle("k", &r, 14)).unwrap().unwrap();
    assert!(!balance.allowed);
    assert!(
        balance.retry_after > Duration::from_millis(900)
            && balance.retry_after <= Duration::from_millis(1_000),
        "{balance:?}"
    );
    let refused = rt.block_on(limiter.decide("k", 1)).unwrap().decision;
    assert!(!refused.allowed && refused.retry_after > Duration::from_millis(800));
    // A refund of a refused request changes nothing.
    let none = rt.block_on(limiter.reserve("k", 1)).unwrap();
    assert_eq!(rt.block_on(limiter.refund("k", &none)).unwrap(), None);
    // The same key the check writes (one hash slot on a cluster).
    let redis_key = "ratelab:token-bucket:{k}";
    let keys = redis.cmd(&["KEYS", "*"]).unwrap();
    assert!(keys.contains(redis_key), "{keys}");
}

/// A key refused locally (local denials, the default) is asked about again after a
/// refund: the refund made room the remembered denial does not know of.
#[test]
fn a_refund_ends_a_local_denial() {
    let redis = RedisServer::start().unwrap();
    let rt = runtime();
    let store = rt
        .block_on(RedisStore::connect(&redis.url(), RedisOptions::default()))
        .unwrap();
    let quota = Quota::per_minute(5).unwrap();
    let limiter = RateLimiter::redis(&store, Policy::new(Kind::Gcra, quota)).unwrap();
    let all = rt.block_on(limiter.reserve("k", 5)).unwrap();
    assert!(all.verdict.decision.allowed);
    assert!(
        !rt.block_on(limiter.decide("k", 1))
            .unwrap()
            .decision
            .allowed
    );
    let balance = rt.block_on(limiter.refund("k", &all)).unwrap().unwrap();
    assert!(balance.allowed && balance.remaining == 5, "{balance:?}");
    assert!(
        rt.block_on(limiter.decide("k", 1))
            .unwrap()
            .decision
            .allowed
    );
}

/// The algorithms that cannot owe refuse to reserve on Redis too.
#[test]
fn redis_refuses_to_reserve_on_windows() {
    let redis = RedisServer::start().unwrap();
    let rt = runtime();
    let store = rt
        .block_on(RedisStore::connect(&redis.url(), RedisOptions::default()))
        .unwrap();
    let quota = Quota::per_second(5).unwrap();
    for kind in Kind::ALL.into_iter().filter(|k| !k.settles()) {
        let limiter = RateLimiter::redis(&store, Policy::new(kind, quota)).unwrap();
        let err = rt.block_on(limiter.reserve("k", 1)).unwrap_err();
        assert!(err.is_settle_unsupported(), "{kind}: {err}");
    }
}

/// Several limits on Redis and Cluster: the settle moves the bucket's key (with the
/// request's hash tag) and leaves the window, exactly as in memory.
#[test]
fn a_set_on_redis_settles_as_in_memory() {
    use limiter_core::Reservation;
    use limiter_core::limits::{Limit, LimitSet, MultiLimiter};
    let redis = RedisServer::start().unwrap();
    let cluster = RedisCluster::start().unwrap();
    let clock = ManualClock::new();
    clock.set(1_000_000_000_000);
    let rt = runtime();
    let single = rt
        .block_on(RedisStore::connect(&redis.url(), caller_time(&clock)))
        .unwrap();
    let clustered = rt
        .block_on(RedisStore::connect_cluster(
            &cluster.urls(),
            caller_time(&clock),
        ))
        .unwrap();
    let set = || {
        let gcra = Policy::new(Kind::Gcra, Quota::bucket(10, 1.0).unwrap());
        let hourly = Policy::new(
            Kind::SlidingWindow,
            Quota::new(100, Duration::from_secs(3600)).unwrap(),
        );
        LimitSet::new(vec![
            Limit::new("tokens", "/llm tokens", gcra, 100),
            Limit::new("hourly", "/llm hourly", hourly, 100),
        ])
        .unwrap()
    };
    for store in [&single, &clustered] {
        let memory = MultiLimiter::memory(set(), clock.clone());
        let on_redis = MultiLimiter::redis(store, set(), clock.clone());
        let m = memory.decide_now("acme", 1).unwrap().unwrap();
        let r = rt.block_on(on_redis.decide("acme", 1)).unwrap();
        assert_eq!(m.decision.decisions(), r.decision.decisions());
        let (mr, rr) = (
            Reservation::new(m.verdict(), 1),
            Reservation::new(r.verdict(), 1),
        );
        assert_eq!(memory.settle_now("acme", &mr, 12).unwrap().unwrap(), 1);
        assert_eq!(rt.block_on(on_redis.settle("acme", &rr, 12)).unwrap(), 1);
        // 12 of 10: 2 in debt, 3 units of refill to one unit (3 s at 1 a second).
        let m = memory.decide_now("acme", 1).unwrap().unwrap().decision;
        let r = rt.block_on(on_redis.decide("acme", 1)).unwrap().decision;
        assert!(!m.allowed);
        assert_eq!(m.decisions(), r.decisions());
        assert_eq!(m.combined().retry_after, Duration::from_secs(3));
        clock.advance(Duration::from_secs(3));
        let m = memory.decide_now("acme", 1).unwrap().unwrap();
        let r = rt.block_on(on_redis.decide("acme", 1)).unwrap();
        assert!(m.decision.allowed && r.decision.allowed);
        assert_eq!(m.decision.decisions(), r.decision.decisions());
        clock.advance(Duration::from_secs(3_600));
    }
}
