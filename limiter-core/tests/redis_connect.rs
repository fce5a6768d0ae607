//! A store created while Redis is down: it answers by its failure policy at once, and
//! connects by itself when Redis comes — no restart of the caller. The `local`
//! policy's in-memory stand-in holds at most `local.max_keys` keys and is swept.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use limiter_core::store::redis::{FailurePolicy, RedisOptions, RedisStore, TimeSource};
use limiter_core::{DecidedBy, Kind, ManualClock, Policy, Quota, RateLimiter};
use testkit::RedisServer;

fn policy() -> Policy {
    Policy::new(
        Kind::Gcra,
        Quota::per_second(1).unwrap().with_burst(2).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_made_before_redis_serves_by_its_policy_and_connects_when_redis_comes() {
    let redis = RedisServer::start().unwrap();
    redis.kill();
    let opts = RedisOptions {
        timeout: Duration::from_millis(50),
        on_error: FailurePolicy::FailOpen,
        ..RedisOptions::default()
    };
    // `connect` waits for Redis and fails; `connect_lazy` returns at once.
    assert!(
        RedisStore::connect(&redis.url(), opts.clone())
            .await
            .is_err()
    );
    let store = RedisStore::connect_lazy(&redis.url(), opts).unwrap();
    let limiter = RateLimiter::redis(&store, policy()).unwrap();
    let started = Instant::now();
    let v = limiter.decide("k", 1).await.unwrap();
    assert_eq!(v.decided_by, DecidedBy::FailOpen);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(!store.is_connected());
    assert!(store.ping().await.is_err());
    // The first attempt reports why it failed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.connect_error().is_none() {
        assert!(Instant::now() < deadline, "no connection error recorded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    redis.restart().unwrap();
    store.wait_connected(Duration::from_secs(15)).await.unwrap();
    assert!(store.is_connected());
    store.ping().await.unwrap();
    // The breaker may still be open from the failures: Redis decides within its pause.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut decided = Vec::new();
    while decided.len() < 3 {
        let v = limiter.decide("fresh", 1).await.unwrap();
        if v.decided_by == DecidedBy::Store {
            decided.push(v.decision.allowed);
        }
        assert!(Instant::now() < deadline, "Redis never decided");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A burst of 2 at 1/s: the third within the same second is refused, by Redis.
    assert_eq!(decided, [true, true, false]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_stand_in_is_capped_and_swept() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let clock = ManualClock::new();
    let opts = RedisOptions {
        timeout: Duration::from_millis(20),
        on_error: FailurePolicy::Local,
        local: limiter_core::store::memory::Capacity::keys(3),
        time: TimeSource::Caller(Arc::new(clock.clone())),
        ..RedisOptions::default()
    };
    let store = RedisStore::connect_lazy(&format!("redis://{dead}"), opts).unwrap();
    let limiter = RateLimiter::redis(&store, policy()).unwrap();
    for i in 0..10 {
        let v = limiter.decide(&format!("user:{i}"), 1).await.unwrap();
        assert_eq!(v.decided_by, DecidedBy::Local);
        assert!(
            limiter.memory_keys().unwrap() <= 3,
            "{:?}",
            limiter.memory_keys()
        );
    }
    assert!(limiter.memory_keys().unwrap() > 0);
    // Idle past a full refill: the sweep forgets them.
    clock.advance(Duration::from_secs(60));
    assert!(limiter.sweep() > 0);
    assert_eq!(limiter.memory_keys(), Some(0));
}
