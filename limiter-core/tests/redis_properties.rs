//! One suite, run over every store: on random policies and arrivals (caller-supplied
//! time), the Redis store — single node and cluster — admits within the same envelope
//! as the in-memory limiters, and decides exactly as they do, field for field.
//!
//! Policies have emission intervals and windows of whole microseconds (the Redis
//! scripts count in µs), arrivals fall on whole microseconds.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

#[path = "common/edges.rs"]
mod edges;
#[path = "common/envelope.rs"]
mod envelope;

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use limiter_core::limiter::MemoryLimiter;
use limiter_core::store::redis::{RedisLimiter, RedisOptions, RedisStore, TimeSource};
use limiter_core::{Decision, Kind, Limiter, ManualClock, Nanos, Policy, Quota};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use testkit::{RedisCluster, RedisServer};
use tokio::runtime::Runtime;

const US: Nanos = 1_000;

/// A random policy whose emission interval is whole microseconds: `limit` per
/// `limit × t` µs, burst 1–30.
fn policy(kind: Kind, limits: RangeInclusive<u64>) -> impl Strategy<Value = Policy> {
    (limits, 1u64..=200_000, 1u64..=30).prop_map(move |(limit, t_us, burst)| {
        let q = Quota::new(limit, Duration::from_micros(limit * t_us))
            .and_then(|q| q.with_burst(burst))
            .expect("valid quota");
        Policy::new(kind, q)
    })
}

/// Arrivals on whole microseconds, from a random start: bursts, gaps up to a few
/// periods, costs from 1 to a little above what the policy admits at once.
fn arrivals(p: Policy) -> impl Strategy<Value = Vec<(Nanos, u64)>> {
    let period = p.quota.period_nanos() / US;
    let per_unit = (period / p.quota.limit()).max(1);
    let max_cost = p.quota.burst().max(p.quota.limit()) + 1;
    let gap = prop_oneof![
        3 => Just(0u64),
        4 => 0..per_unit * 2,
        2 => 0..period * 3,
        1 => Just(per_unit),
    ];
    let cost = prop_oneof![8 => Just(1u64), 2 => 1..=max_cost];
    (0..period * 10, prop::collection::vec((gap, cost), 1..120)).prop_map(|(start, v)| {
        let mut now = start;
        v.into_iter()
            .map(|(g, c)| {
                now += g;
                (now * US, c)
            })
            .collect()
    })
}

/// Plays `arrivals` on `limiter` (any store) with `clock` moved to each instant;
/// returns every answer (`None` for a cost the policy can never admit) and the
/// admissions.
async fn play<L: Limiter>(
    limiter: &L,
    key: &str,
    clock: &ManualClock,
    arrivals: &[(Nanos, u64)],
) -> Result<(Vec<Option<Decision>>, Vec<(Nanos, u64)>), String> {
    let mut answers = Vec::new();
    let mut admitted = Vec::new();
    for &(t, c) in arrivals {
        clock.set(t);
        match limiter.check(key, c).await {
            Ok(d) => {
                if d.allowed {
                    admitted.push((t, c));
                }
                answers.push(Some(d));
            }
            Err(e) if e.is_cost_exceeds_capacity() => answers.push(None),
            Err(e) => return Err(format!("at {t}: {e}")),
        }
    }
    Ok((answers, admitted))
}

/// [`play`] on Redis, checking every denial's retry-after on a copy of the state
/// taken just after it.
async fn play_honest(
    limiter: &RedisLimiter,
    key: &str,
    clock: &ManualClock,
    arrivals: &[(Nanos, u64)],
) -> Result<(Vec<Option<Decision>>, Vec<(Nanos, u64)>), String> {
    let mut answers = Vec::new();
    let mut admitted = Vec::new();
    for &arrival in arrivals {
        let (mut a, b) = play(limiter, key, clock, &[arrival]).await?;
        if let Some(Some(d)) = a.first().filter(|d| d.is_some_and(|d| !d.allowed)) {
            honest_on_redis(limiter, key, clock, arrival, d.retry_after).await?;
        }
        answers.append(&mut a);
        admitted.extend(b);
    }
    Ok((answers, admitted))
}

/// The same answer from memory (`m`) and Redis (`r`). The sliding window's retry-after
/// divides by a count: Redis rounds it up to its whole µs, never earlier than exact.
fn alike(kind: Kind, m: Option<Decision>, r: Option<Decision>) -> Result<(), String> {
    let (Some(m), Some(mut r)) = (m, r) else {
        return if m == r {
            Ok(())
        } else {
            Err(format!("memory {m:?}, redis {r:?}"))
        };
    };
    if kind == Kind::SlidingWindow && r.retry_after >= m.retry_after {
        r.retry_after = m.retry_after;
    }
    if m == r {
        Ok(())
    } else {
        Err(format!("memory {m:?}, redis {r:?}"))
    }
}

/// Checks on a copy of `key`'s state that a request denied at `t` with `retry_after`
/// is admitted exactly then, and denied one microsecond before.
async fn honest_on_redis(
    limiter: &RedisLimiter,
    key: &str,
    clock: &ManualClock,
    (t, cost): (Nanos, u64),
    retry_after: Duration,
) -> Result<(), String> {
    let mut conn = limiter.store().connection();
    let err = |e: redis::RedisError| e.to_string();
    let state: Option<Vec<u8>> = redis::cmd("DUMP")
        .arg(limiter.redis_key(key))
        .query_async(&mut conn)
        .await
        .map_err(err)?;
    let probe = format!("{key}#probe");
    let retry = retry_after.as_nanos() as Nanos;
    for (at, admitted) in [(t + retry - US, false), (t + retry, true)] {
        let mut restore = redis::cmd("RESTORE");
        restore
            .arg(limiter.redis_key(&probe))
            .arg(0)
            .arg(&state)
            .arg("REPLACE");
        let () = restore.query_async(&mut conn).await.map_err(err)?;
        clock.set(at);
        let d = limiter
            .check(&probe, cost)
            .await
            .map_err(|e| e.to_string())?;
        if d.allowed != admitted {
            return Err(format!(
                "denied at {t} cost {cost}, retry after {retry_after:?}: at {at} allowed = {}",
                d.allowed
            ));
        }
    }
    clock.set(t);
    Ok(())
}

/// The shared suite: for random policies of `kind`, every Redis store keeps the
/// envelope and answers exactly what the in-memory limiter answers.
fn suite(
    rt: &Runtime,
    kind: Kind,
    limits: RangeInclusive<u64>,
    cases: u32,
    stores: &[RedisStore],
    clock: &ManualClock,
) {
    static KEY: AtomicU64 = AtomicU64::new(0);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = policy(kind, limits).prop_flat_map(|p| (Just(p), arrivals(p)));
    let result = runner.run(&strategy, |(p, arrivals)| {
        rt.block_on(async {
            let memory = MemoryLimiter::new(p, clock.clone(), 1_000);
            let (expected, admitted) = play(&memory, "k", clock, &arrivals)
                .await
                .map_err(TestCaseError::fail)?;
            envelope::check(&p, &admitted)
                .map_err(|e| TestCaseError::fail(format!("memory: {e}")))?;
            for store in stores {
                let key = format!("case-{}", KEY.fetch_add(1, Ordering::Relaxed));
                let redis = store.limiter(p).unwrap();
                let (answers, admitted) = play_honest(&redis, &key, clock, &arrivals)
                    .await
                    .map_err(TestCaseError::fail)?;
                envelope::check(&p, &admitted)
                    .map_err(|e| TestCaseError::fail(format!("redis: {e}")))?;
                for (i, (m, r)) in expected.iter().zip(&answers).enumerate() {
                    alike(kind, *m, *r).map_err(|e| {
                        TestCaseError::fail(format!("arrival {i} {:?} of {p:?}: {e}", arrivals[i]))
                    })?;
                }
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{kind}: {e}");
    }
}

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
        // The scripts' own answers are under test, field by field: a local denial
        // reports a refusal's remaining units as the store last said.
        local_denials: false,
        ..RedisOptions::default()
    }
}

fn single_node(kind: Kind, limits: RangeInclusive<u64>, cases: u32) {
    let redis = RedisServer::start().unwrap();
    let clock = ManualClock::new();
    let rt = runtime();
    let store = rt
        .block_on(RedisStore::connect(&redis.url(), caller_time(&clock)))
        .unwrap();
    suite(&rt, kind, limits, cases, &[store], &clock);
}

#[test]
fn every_algorithm_on_redis_decides_like_memory() {
    let redis = RedisServer::start().unwrap();
    let clock = ManualClock::new();
    let rt = runtime();
    let store = rt
        .block_on(RedisStore::connect(&redis.url(), caller_time(&clock)))
        .unwrap();
    for kind in Kind::ALL {
        suite(&rt, kind, 1..=20, 48, std::slice::from_ref(&store), &clock);
    }
}

#[test]
fn every_algorithm_on_a_cluster_decides_like_memory() {
    let cluster = RedisCluster::start().unwrap();
    let clock = ManualClock::new();
    let rt = runtime();
    let store = rt
        .block_on(RedisStore::connect_cluster(
            &cluster.urls(),
            caller_time(&clock),
        ))
        .unwrap();
    for kind in Kind::ALL {
        suite(&rt, kind, 1..=20, 8, std::slice::from_ref(&store), &clock);
    }
}

/// Limits above 92681 keep the sliding window's counters as text, not one number.
#[test]
fn sliding_window_with_large_limits_on_redis_decides_like_memory() {
    single_node(Kind::SlidingWindow, 92_000..=200_000, 16);
}

/// A clock that steps back (into an older window, before the last admission) gets the
/// same answers from Redis as from memory.
#[test]
fn a_clock_stepping_back_gets_the_same_answers() {
    let redis = RedisServer::start().unwrap();
    let clock = ManualClock::new();
    let rt = runtime();
    let store = rt
        .block_on(RedisStore::connect(&redis.url(), caller_time(&clock)))
        .unwrap();
    let s = 1_000_000 * US;
    let arrivals: Vec<(Nanos, u64)> = [50, 50, 52, 31, 31, 12, 55, 62, 61, 75, 40, 130, 130]
        .iter()
        .map(|&t| (t * s / 10, 1))
        .collect();
    for kind in Kind::ALL {
        for limit in [4, 100_000] {
            let q = Quota::per_second(limit).unwrap().with_burst(3).unwrap();
            let p = Policy::new(kind, q);
            let memory = MemoryLimiter::new(p, clock.clone(), 10);
            let redis = store.limiter(p).unwrap();
            let key = format!("back:{kind}:{limit}");
            let (m, _) = rt.block_on(play(&memory, "k", &clock, &arrivals)).unwrap();
            let (r, _) = rt.block_on(play(&redis, &key, &clock, &arrivals)).unwrap();
            for (m, r) in m.iter().zip(&r) {
                alike(kind, *m, *r).unwrap_or_else(|e| panic!("{kind}, limit {limit}: {e}"));
            }
        }
    }
}

/// The same answer from memory (`m`) and Redis (`r`), but for Redis's times counted in
/// whole microseconds: rounded up, never earlier (some edge quotas refill in a
/// fraction of a microsecond).
fn within_a_microsecond(m: Option<Decision>, r: Option<Decision>) -> Result<(), String> {
    let close = |m: Duration, r: Duration| r >= m && r - m < Duration::from_micros(1);
    let same = match (m, r) {
        (Some(m), Some(r)) => {
            (m.allowed, m.limit, m.remaining) == (r.allowed, r.limit, r.remaining)
                && close(m.reset_after, r.reset_after)
                && close(m.retry_after, r.retry_after)
        }
        (m, r) => m == r,
    };
    if same {
        Ok(())
    } else {
        Err(format!("memory {m:?}, redis {r:?}"))
    }
}

/// Every algorithm at the edges of the quotas (largest capacity and cost, slowest rate,
/// longest window) decides on Redis exactly as in memory, with nothing overflowing on
/// either side.
#[test]
fn every_algorithm_at_the_edges_of_the_quota_on_redis_decides_like_memory() {
    let redis = RedisServer::start().unwrap();
    let clock = ManualClock::new();
    let rt = runtime();
    let store = rt
        .block_on(RedisStore::connect(&redis.url(), caller_time(&clock)))
        .unwrap();
    for (i, q) in edges::edge_quotas().into_iter().enumerate() {
        for kind in Kind::ALL {
            let p = Policy::new(kind, q);
            let arrivals = edges::edge_arrivals(&q, p.capacity());
            let memory = MemoryLimiter::new(p, clock.clone(), 10);
            let redis = store.limiter(p).unwrap();
            let key = format!("edge:{kind}:{i}");
            let (m, admitted) = rt.block_on(play(&memory, "k", &clock, &arrivals)).unwrap();
            envelope::check(&p, &admitted).unwrap_or_else(|e| panic!("memory {p:?}: {e}"));
            let (r, admitted) = rt.block_on(play(&redis, &key, &clock, &arrivals)).unwrap();
            envelope::check(&p, &admitted).unwrap_or_else(|e| panic!("redis {p:?}: {e}"));
            for (j, (m, r)) in m.iter().zip(&r).enumerate() {
                within_a_microsecond(*m, *r)
                    .unwrap_or_else(|e| panic!("{p:?}, arrival {:?}: {e}", arrivals[j]));
            }
        }
    }
}
