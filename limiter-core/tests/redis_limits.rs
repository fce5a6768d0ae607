//! Several limits on one request, on Redis and Redis Cluster: on random sets and
//! timelines (caller-supplied time) one script call per request decides exactly as the
//! in-memory set does — which decides as its limits alone would, all-or-nothing
//! (tests/limits.rs) — and each limit keeps its envelope; one round trip per request
//! whatever the number of limits (`INFO commandstats`); refused requests spend nothing
//! on Redis's own clock either.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

#[path = "common/envelope.rs"]
mod envelope;
#[path = "common/limits.rs"]
mod limits;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use limiter_core::limits::{Limit, LimitSet, LimitsDecision, MultiLimiter};
use limiter_core::store::redis::{RedisOptions, RedisStore, TimeSource};
use limiter_core::{DecidedBy, Kind, ManualClock, MonotonicClock, Policy, Quota};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use testkit::{RedisCluster, RedisServer};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn caller_time(clock: &ManualClock) -> RedisOptions {
    RedisOptions {
        time: TimeSource::Caller(Arc::new(clock.clone())),
        timeout: Duration::from_secs(2),
        ..RedisOptions::default()
    }
}

/// The same answer from memory and Redis; the sliding window's retry-after divides by a
/// count, and Redis rounds it up to whole µs (never earlier than exact).
fn alike(policies: &[Policy], m: &LimitsDecision, r: &LimitsDecision) -> Result<(), String> {
    if m.allowed != r.allowed {
        return Err(format!("memory {m:?}, redis {r:?}"));
    }
    for ((p, m), r) in policies.iter().zip(m.decisions()).zip(r.decisions()) {
        let mut r = *r;
        if p.kind == Kind::SlidingWindow && r.retry_after >= m.retry_after {
            r.retry_after = m.retry_after;
        }
        if *m != r {
            return Err(format!("{}: memory {m:?}, redis {r:?}", p.kind));
        }
    }
    Ok(())
}

fn suite(rt: &Runtime, store: &RedisStore, clock: &ManualClock, cases: u32) {
    static CASE: AtomicU64 = AtomicU64::new(0);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&limits::case(), |(policies, arrivals)| {
        let scope = format!("/case{}", CASE.fetch_add(1, Ordering::Relaxed));
        let memory = MultiLimiter::memory(limits::set(&policies, &scope), clock.clone());
        let redis = MultiLimiter::redis(store, limits::set(&policies, &scope), clock.clone());
        let mut admitted = Vec::new();
        for (i, &(t, cost)) in arrivals.iter().enumerate() {
            clock.set(t);
            let m = memory.decide_now("user", cost).unwrap();
            let r = rt.block_on(redis.decide("user", cost));
            match (m, r) {
                (Err(m), Err(r)) => {
                    assert!(m.is_cost_exceeds_capacity() && r.is_cost_exceeds_capacity())
                }
                (Ok(m), Ok(r)) => {
                    if r.decided_by != DecidedBy::Store {
                        return Err(TestCaseError::fail(format!("{:?}", r.decided_by)));
                    }
                    alike(&policies, &m.decision, &r.decision).map_err(|e| {
                        TestCaseError::fail(format!("arrival {i} {:?}: {e}", arrivals[i]))
                    })?;
                    if r.decision.allowed {
                        admitted.push((t, cost));
                    }
                }
                (m, r) => return Err(TestCaseError::fail(format!("{m:?} vs {r:?}"))),
            }
        }
        for p in &policies {
            envelope::check(p, &admitted).map_err(TestCaseError::fail)?;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn a_set_on_redis_decides_like_the_set_in_memory() {
    let redis = RedisServer::start().unwrap();
    let clock = ManualClock::new();
    let rt = runtime();
    let store = rt
        .block_on(RedisStore::connect(&redis.url(), caller_time(&clock)))
        .unwrap();
    suite(&rt, &store, &clock, 64);
}

#[test]
fn a_set_on_a_cluster_decides_like_the_set_in_memory() {
    let cluster = RedisCluster::start().unwrap();
    let clock = ManualClock::new();
    let rt = runtime();
    let store = rt
        .block_on(RedisStore::connect_cluster(
            &cluster.urls(),
            caller_time(&clock),
        ))
        .unwrap();
    suite(&rt, &store, &clock, 16);
}

/// `cmdstat_evalsha`'s call count, from `INFO commandstats`.
fn evalsha_calls(redis: &RedisServer) -> u64 {
    let info = redis.cmd(&["INFO", "commandstats"]).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// Starts counting the commands clients send: every command goes to the slow log.
/// (`INFO commandstats` also counts the commands a script runs, so it cannot tell a
/// second round trip from the script's own work; the slow log can: it names the
/// client of a command a script ran `?:0`.)
fn count_round_trips(redis: &RedisServer) {
    redis
        .cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"])
        .unwrap();
    redis
        .cmd(&["CONFIG", "SET", "slowlog-max-len", "100000"])
        .unwrap();
    redis.cmd(&["SLOWLOG", "RESET"]).unwrap();
}

/// Commands clients sent since [`count_round_trips`] (not counting its `SLOWLOG
/// RESET`), and how many of them were `EVALSHA`.
fn round_trips(redis: &RedisServer) -> (usize, usize) {
    let log = redis.cmd(&["SLOWLOG", "GET", "100000"]).unwrap();
    // Each entry ends with its client's address and name; a client of a test is
    // 127.0.0.1:PORT, a script's is ?:0.
    let from_clients = log
        .lines()
        .filter(|l| {
            l.strip_prefix("127.0.0.1:")
                .is_some_and(|port| port.parse::<u16>().is_ok())
        })
        .count();
    let evalsha = log
        .lines()
        .filter(|l| l.eq_ignore_ascii_case("evalsha"))
        .count();
    (from_clients - 1, evalsha)
}

/// One round trip per request for every set size from 1 to `MAX_LIMITS` limits (every
/// algorithm in turn): one `EVALSHA` per request (`INFO commandstats`) and no other
/// command from the client (the slow log).
#[test]
fn one_round_trip_per_request_for_every_number_of_limits() {
    let redis = RedisServer::start().unwrap();
    let rt = runtime();
    let store = rt
        .block_on(RedisStore::connect(&redis.url(), RedisOptions::default()))
        .unwrap();
    for n in 1..=limiter_core::limits::MAX_LIMITS {
        let limits: Vec<Limit> = (0..n)
            .map(|i| {
                let kind = Kind::ALL[i % Kind::ALL.len()];
                let q = Quota::new(1_000, Duration::from_secs(3600)).unwrap();
                Limit::new(
                    &format!("l{i}"),
                    &format!("/n{n} l{i}"),
                    Policy::new(kind, q),
                    100,
                )
            })
            .collect();
        let multi = MultiLimiter::redis(
            &store,
            LimitSet::new(limits).unwrap(),
            MonotonicClock::new(),
        );
        // Warm the script cache (a NOSCRIPT reply and a load on first use).
        rt.block_on(multi.decide("warm", 1)).unwrap();
        let evalsha = evalsha_calls(&redis);
        count_round_trips(&redis);
        for _ in 0..3 {
            assert!(rt.block_on(multi.decide("u", 1)).unwrap().decision.allowed);
        }
        assert_eq!(
            round_trips(&redis),
            (3, 3),
            "{n} limits: one command per request, the EVALSHA"
        );
        assert_eq!(
            evalsha_calls(&redis) - evalsha,
            3,
            "{n} limits: one EVALSHA each"
        );
    }
}

/// One `EVALSHA` per request whatever the number of limits, and on Redis's own clock a
/// refused request spends from none of them.
#[test]
fn one_round_trip_per_request_and_refusals_spend_nothing() {
    let redis = RedisServer::start().unwrap();
    let rt = runtime();
    let opts = RedisOptions {
        timeout: Duration::from_secs(2),
        ..RedisOptions::default()
    };
    let store = rt
        .block_on(RedisStore::connect(&redis.url(), opts))
        .unwrap();
    let hour = Duration::from_secs(3600);
    let limits: Vec<Limit> = Kind::ALL
        .iter()
        .enumerate()
        .map(|(i, &kind)| {
            // The third limit (the sliding window) is the tightest: 3 per hour.
            let n = if i == 2 { 3 } else { 50 };
            let q = if kind.is_bucket() {
                Quota::new(n, hour * 10).unwrap()
            } else {
                Quota::new(n, hour).unwrap()
            };
            Limit::new(
                kind.name(),
                &format!("/x {}", kind.name()),
                Policy::new(kind, q),
                100,
            )
        })
        .collect();
    let multi = MultiLimiter::redis(
        &store,
        LimitSet::new(limits).unwrap(),
        MonotonicClock::new(),
    );
    // Warm the script cache (a NOSCRIPT reply and a load on first use).
    assert!(
        rt.block_on(multi.decide("warm", 1))
            .unwrap()
            .decision
            .allowed
    );
    let before = evalsha_calls(&redis);
    let answers: Vec<_> = (0..5)
        .map(|_| rt.block_on(multi.decide("u", 1)).unwrap())
        .collect();
    assert_eq!(evalsha_calls(&redis) - before, 5);
    let allowed: Vec<bool> = answers.iter().map(|v| v.decision.allowed).collect();
    assert_eq!(allowed, [true, true, true, false, false]);
    let refused = answers[4].decision;
    assert_eq!(refused.refusing().collect::<Vec<_>>(), [2]);
    // The sliding window's wait depends on where the hour falls: only it refuses, so
    // it speaks for the request.
    assert!(refused.combined().retry_after > Duration::ZERO);
    assert_eq!(refused.combined(), refused.decisions()[2]);
    // The other limits were charged three times, not five.
    for (i, d) in refused.decisions().iter().enumerate() {
        if i != 2 {
            assert_eq!(d.remaining, 47, "{}: {d:?}", Kind::ALL[i]);
        }
    }
    assert_eq!(store.metrics().calls, 6);
}
