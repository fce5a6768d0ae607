//! In-flight limits on Redis: slots are leases in a sorted set per key, taken inside the
//! set's one script (all-or-nothing with rate limits), renewed while the request runs,
//! removed when its permit is released — and expired when the instance holding them
//! crashed, so a dead gateway cannot keep slots forever.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use limiter_core::limits::{InFlight, Limit, LimitSet, MultiLimiter};
use limiter_core::store::redis::{RedisOptions, RedisStore, in_flight_key};
use limiter_core::{Kind, MonotonicClock, Policy, Quota};
use testkit::RedisServer;
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn options(prefix: &str) -> RedisOptions {
    RedisOptions {
        key_prefix: prefix.to_owned(),
        timeout: Duration::from_secs(2),
        ..RedisOptions::default()
    }
}

fn slots(n: u64, ttl: Duration) -> Limit {
    let limit = InFlight::new(n).unwrap().with_lease_ttl(ttl).unwrap();
    Limit::in_flight("slots", "/upload slots", limit, 1_000)
}

fn limiter(store: &RedisStore, limits: Vec<Limit>) -> MultiLimiter {
    MultiLimiter::redis(store, LimitSet::new(limits).unwrap(), MonotonicClock::new())
}

fn leases(server: &RedisServer, prefix: &str, tag: &str) -> u64 {
    let key = in_flight_key(prefix, tag, "/upload slots");
    server
        .cmd(&["ZCARD", &key])
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn slots_are_leases_taken_and_given_back_through_the_store() {
    let server = RedisServer::start().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let store = RedisStore::connect(&server.url(), options("a"))
            .await
            .unwrap();
        let one = limiter(&store, vec![slots(2, Duration::from_secs(30))]);
        // Another instance on the same store shares the slots.
        let other_store = RedisStore::connect(&server.url(), options("a"))
            .await
            .unwrap();
        let other = limiter(&other_store, vec![slots(2, Duration::from_secs(30))]);
        let a = one.acquire("alice", 1).await.unwrap();
        let b = other.acquire("alice", 1).await.unwrap();
        assert!(a.verdict.decision.allowed && b.verdict.decision.allowed);
        assert_eq!(b.verdict.decision.decisions()[0].remaining, 0);
        let c = one.acquire("alice", 1).await.unwrap();
        assert!(!c.verdict.decision.allowed && c.permit.is_empty());
        assert_eq!(leases(&server, "a", "alice"), 2);
        a.permit.release().await;
        assert_eq!(leases(&server, "a", "alice"), 1);
        let d = one.acquire("alice", 1).await.unwrap();
        assert!(d.verdict.decision.allowed);
        // A dropped permit releases too (its task removes the lease).
        drop(d);
        drop(b);
        for _ in 0..100 {
            if leases(&server, "a", "alice") == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(leases(&server, "a", "alice"), 0);
    });
}

#[test]
fn a_crashed_instances_slots_expire_and_a_live_ones_are_renewed() {
    let server = RedisServer::start().unwrap();
    let ttl = Duration::from_millis(400);
    // The "crashed" instance: its runtime (and the task renewing its leases) dies with
    // its permit never released.
    let crashed = runtime();
    crashed.block_on(async {
        let store = RedisStore::connect(&server.url(), options("c"))
            .await
            .unwrap();
        let limiter = limiter(&store, vec![slots(1, ttl)]);
        let held = limiter.acquire("bob", 1).await.unwrap();
        assert!(held.verdict.decision.allowed);
        std::mem::forget(held.permit);
    });
    drop(crashed);
    let rt = runtime();
    rt.block_on(async {
        let store = RedisStore::connect(&server.url(), options("c"))
            .await
            .unwrap();
        let limiter = limiter(&store, vec![slots(1, ttl)]);
        let now = limiter.acquire("bob", 1).await.unwrap();
        assert!(
            !now.verdict.decision.allowed,
            "the crashed lease still holds"
        );
        tokio::time::sleep(ttl + Duration::from_millis(100)).await;
        let later = limiter.acquire("bob", 1).await.unwrap();
        assert!(later.verdict.decision.allowed, "the crashed lease expired");
        // This live request outlives its lease TTL three times over: renewed, it keeps
        // its slot.
        tokio::time::sleep(ttl * 3).await;
        let during = limiter.acquire("bob", 1).await.unwrap();
        assert!(
            !during.verdict.decision.allowed,
            "the live lease was renewed"
        );
        later.permit.release().await;
        assert!(
            limiter
                .acquire("bob", 1)
                .await
                .unwrap()
                .verdict
                .decision
                .allowed
        );
    });
}

#[test]
fn with_a_rate_limit_one_script_call_decides_both_all_or_nothing() {
    let server = RedisServer::start().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let store = RedisStore::connect(&server.url(), options("r"))
            .await
            .unwrap();
        let rate = Limit::new(
            "burst",
            "/upload burst",
            Policy::new(
                Kind::FixedWindow,
                Quota::new(3, Duration::from_secs(3600)).unwrap(),
            ),
            1_000,
        );
        let limiter = limiter(&store, vec![rate, slots(2, Duration::from_secs(30))]);
        // Load the script first (the first call answers NOSCRIPT and is retried).
        limiter
            .acquire("warm", 1)
            .await
            .unwrap()
            .permit
            .release()
            .await;
        server.cmd(&["CONFIG", "RESETSTAT"]).unwrap();
        let a = limiter.acquire("k", 1).await.unwrap();
        let b = limiter.acquire("k", 1).await.unwrap();
        // Slots full: refused, and the window keeps its third request.
        let c = limiter.acquire("k", 1).await.unwrap();
        assert!(!c.verdict.decision.allowed);
        assert_eq!(c.verdict.decision.refusing().collect::<Vec<_>>(), [1]);
        assert_eq!(c.verdict.decision.decisions()[0].remaining, 1);
        let stats = server.cmd(&["INFO", "commandstats"]).unwrap();
        let evalsha = stats
            .lines()
            .find(|l| l.starts_with("cmdstat_evalsha:"))
            .unwrap();
        assert!(
            evalsha.contains("calls=3,"),
            "one call per request: {evalsha}"
        );
        a.permit.release().await;
        let d = limiter.acquire("k", 1).await.unwrap();
        assert!(d.verdict.decision.allowed);
        b.permit.release().await;
        // The window is spent: refused, and no lease is taken.
        let e = limiter.acquire("k", 1).await.unwrap();
        assert!(!e.verdict.decision.allowed);
        assert_eq!(e.verdict.decision.refusing().collect::<Vec<_>>(), [0]);
        assert_eq!(leases(&server, "r", "k"), 1);
        d.permit.release().await;
        assert_eq!(leases(&server, "r", "k"), 0);
    });
}
