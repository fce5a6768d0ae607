//! Faults: Redis killed during a run, then restarted. Every call returns within the
//! timeout plus a small margin with the failure policy's answer, and enforcement by
//! Redis resumes by itself within a second of the restart.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use limiter_core::store::redis::{
    BreakerOptions, CircuitState, FailurePolicy, RedisOptions, RedisStore,
};
use limiter_core::{DecidedBy, Kind, Policy, Quota};
use testkit::RedisServer;

const TIMEOUT: Duration = Duration::from_millis(50);
/// Scheduling slack on a loaded two-core machine running the suite in parallel.
const MARGIN: Duration = Duration::from_millis(50);

/// One call: when it started (since the run began), how long it took, what it said.
#[derive(Debug, Clone, Copy)]
struct Call {
    at: Duration,
    took: Duration,
    source: DecidedBy,
    allowed: bool,
}

async fn kill_and_restart(on_error: FailurePolicy) {
    let redis = Arc::new(RedisServer::start().unwrap());
    let opts = RedisOptions {
        timeout: TIMEOUT,
        on_error,
        breaker: BreakerOptions::default(),
        ..RedisOptions::default()
    };
    let store = RedisStore::connect(&redis.url(), opts).await.unwrap();
    let p = Policy::new(
        Kind::Gcra,
        Quota::per_second(50).unwrap().with_burst(5).unwrap(),
    );
    let limiter = Arc::new(store.limiter(p).unwrap());
    let calls = Arc::new(Mutex::new(Vec::new()));
    let run = Instant::now();

    let mut tasks = Vec::new();
    for i in 0..8 {
        let (limiter, calls) = (limiter.clone(), calls.clone());
        tasks.push(tokio::spawn(async move {
            while run.elapsed() < Duration::from_millis(2_600) {
                let at = run.elapsed();
                let v = limiter.decide(&format!("user:{}", i % 2), 1).await.unwrap();
                let call = Call {
                    at,
                    took: run.elapsed() - at,
                    source: v.decided_by,
                    allowed: v.decision.allowed,
                };
                calls.lock().unwrap().push(call);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(400)).await;
    let killed = run.elapsed();
    redis.kill();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let r = redis.clone();
    tokio::task::spawn_blocking(move || r.restart().unwrap())
        .await
        .unwrap();
    let restarted = run.elapsed();
    for t in tasks {
        t.await.unwrap();
    }

    let calls = calls.lock().unwrap().clone();
    let m = store.metrics();
    let slowest = calls.iter().map(|c| c.took).max().unwrap();
    assert!(
        slowest <= TIMEOUT + MARGIN,
        "{on_error}: a call took {slowest:?}"
    );

    // Before the kill, Redis decided; while it was down, only the policy answered.
    assert!(
        calls
            .iter()
            .filter(|c| c.at + c.took < killed)
            .all(|c| c.source == DecidedBy::Store)
    );
    // A refusal Redis made before the kill is still applied locally until its retry
    // instant (20 ms here), and a key found empty is refused locally while one probe is
    // on its way (up to the timeout): after that, only the policy answers.
    let settled = killed + 2 * TIMEOUT + Duration::from_millis(20);
    let down: Vec<&Call> = calls
        .iter()
        .filter(|c| c.at > settled && c.at < restarted)
        .collect();
    assert!(
        down.len() > 50,
        "{on_error}: {} calls while down",
        down.len()
    );
    let expected = match on_error {
        FailurePolicy::FailOpen => DecidedBy::FailOpen,
        FailurePolicy::FailClosed => DecidedBy::FailClosed,
        FailurePolicy::Local => DecidedBy::Local,
    };
    for c in &down {
        assert_eq!(c.source, expected, "{on_error}: {c:?}");
        match on_error {
            FailurePolicy::FailOpen => assert!(c.allowed),
            FailurePolicy::FailClosed => assert!(!c.allowed),
            // The local limiter enforces the policy per instance: denials too.
            FailurePolicy::Local => {}
        }
    }
    if on_error == FailurePolicy::Local {
        assert!(down.iter().any(|c| c.allowed) && down.iter().any(|c| !c.allowed));
    }

    // Back within a second of the restart, and enforcing (denials come from Redis).
    let back = calls
        .iter()
        .find(|c| c.at > restarted && c.source == DecidedBy::Store)
        .unwrap_or_else(|| panic!("{on_error}: Redis never decided again"));
    assert!(
        back.at - restarted < Duration::from_secs(1),
        "{on_error}: back after {:?}",
        back.at - restarted
    );
    // (While that probe was in flight, the others still failed fast.)
    let after: Vec<&Call> = calls
        .iter()
        .filter(|c| c.at > back.at + back.took)
        .collect();
    // Redis decides from then on (a call may still time out on a loaded machine: the
    // suite runs beside other builds, and the timeout is only 50 ms).
    let by_store = after
        .iter()
        .filter(|c| c.source == DecidedBy::Store)
        .count();
    assert!(
        by_store * 100 >= after.len() * 95,
        "{on_error}: only {by_store} of {} calls after the restart decided by Redis",
        after.len()
    );
    assert!(
        after.iter().any(|c| !c.allowed),
        "{on_error}: no enforcement after the restart"
    );

    assert!(
        m.errors > 0 && m.circuit_opened >= 1 && m.short_circuited > 0,
        "{m:?}"
    );
    assert_eq!(m.circuit, CircuitState::Closed);
    let fallbacks = match on_error {
        FailurePolicy::FailOpen => m.fallback_open,
        FailurePolicy::FailClosed => m.fallback_closed,
        FailurePolicy::Local => m.fallback_local,
    };
    assert_eq!(fallbacks, m.fallbacks());
    assert!(fallbacks >= down.len() as u64, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_open_admits_while_redis_is_down_and_resumes() {
    kill_and_restart(FailurePolicy::FailOpen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_denies_while_redis_is_down_and_resumes() {
    kill_and_restart(FailurePolicy::FailClosed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_enforces_in_memory_while_redis_is_down_and_resumes() {
    kill_and_restart(FailurePolicy::Local).await;
}

#[tokio::test]
async fn connecting_to_nothing_fails_fast() {
    let port = testkit::free_port();
    let started = Instant::now();
    let r = RedisStore::connect(
        &format!("redis://127.0.0.1:{port}/"),
        RedisOptions::default(),
    )
    .await;
    assert!(r.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn failure_policies_parse_from_config_names() {
    for p in [
        FailurePolicy::FailOpen,
        FailurePolicy::FailClosed,
        FailurePolicy::Local,
    ] {
        assert_eq!(p.to_string().parse::<FailurePolicy>().unwrap(), p);
    }
    let e = "fail-safe".parse::<FailurePolicy>().unwrap_err();
    assert!(e.to_string().contains("fail-open, fail-closed, local"));
}
