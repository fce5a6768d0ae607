//! Store modes on a real Redis (and Redis Cluster): three instances (three stores, three
//! connections) share keys in lease mode within the stated bound; a one-key flood
//! costs Redis at most 0.01 calls per refusal in every mode (counted by Redis's own
//! `INFO commandstats`); a lease in hand is spent while Redis is down, then the
//! failure policy answers.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use limiter_core::store::mode::{LeaseOptions, StoreMode};
use limiter_core::store::redis::RedisLimiter;
use limiter_core::{
    DecidedBy, FailurePolicy, Kind, Policy, Quota, RateLimiter, RedisOptions, RedisStore,
};
use testkit::{RedisCluster, RedisServer};

fn lease(max: u64) -> StoreMode {
    StoreMode::Lease(LeaseOptions::new(max, Duration::from_secs(2)).unwrap())
}

fn options(mode: StoreMode) -> RedisOptions {
    RedisOptions {
        timeout: Duration::from_secs(2),
        mode,
        ..RedisOptions::default()
    }
}

/// `EVALSHA` calls Redis has served so far (its own count).
fn evalsha_calls(server: &RedisServer) -> u64 {
    let info = server.cmd(&["INFO", "commandstats"]).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

async fn instances(
    urls: &[String],
    cluster: bool,
    mode: StoreMode,
    p: Policy,
) -> Vec<Arc<RedisLimiter>> {
    let mut out = Vec::new();
    for _ in 0..3 {
        let store = if cluster {
            RedisStore::connect_cluster(urls, options(mode)).await
        } else {
            RedisStore::connect(&urls[0], options(mode)).await
        };
        out.push(Arc::new(store.unwrap().limiter(p).unwrap()));
    }
    out
}

/// Every instance asks `per_instance` times for each of `keys`, concurrently; the
/// admissions per key.
async fn hammer(
    limiters: &[Arc<RedisLimiter>],
    keys: &[&'static str],
    per_instance: usize,
) -> Vec<u64> {
    let mut tasks = Vec::new();
    for l in limiters {
        for &key in keys {
            let l = l.clone();
            tasks.push(tokio::spawn(async move {
                let mut admitted = 0u64;
                for _ in 0..per_instance {
                    let v = l.decide(key, 1).await.unwrap();
                    assert_eq!(v.decided_by, DecidedBy::Store);
                    admitted += u64::from(v.decision.allowed);
                }
                (key, admitted)
            }));
        }
    }
    let mut per_key = vec![0; keys.len()];
    for t in tasks {
        let (key, n) = t.await.unwrap();
        per_key[keys.iter().position(|k| *k == key).unwrap()] += n;
    }
    per_key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_lease_instances_admit_no_more_than_the_policy_over_the_run() {
    let server = RedisServer::start().unwrap();
    // 50 at once, 1 per 10 s afterwards: the run is far shorter than one refill.
    let p = Policy::new(
        Kind::Gcra,
        Quota::new(1, Duration::from_secs(10))
            .unwrap()
            .with_burst(50)
            .unwrap(),
    );
    for (mode, key) in [(lease(8), "lease"), (StoreMode::Exact, "exact")] {
        let limiters = instances(&[server.url()], false, mode, p).await;
        let admitted = hammer(&limiters, &[key], 200).await;
        // Over the run: never more than the envelope (50, maybe one refill), in any mode.
        assert!((50..=51).contains(&admitted[0]), "{mode}: {admitted:?}");
        let m = limiters[0].store().metrics();
        if matches!(mode, StoreMode::Lease(_)) {
            // Which instance's lease gets spent depends on scheduling: an instance whose
            // first ask finds the burst taken by the others refuses locally from then on.
            let spent_locally: u64 = limiters
                .iter()
                .map(|l| l.store().metrics().local_allowed)
                .sum();
            assert!(spent_locally > 0, "leases were spent locally: {m:?}");
        }
        assert!(m.local_denied > 0, "{mode}: denials were remembered: {m:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_key_flood_costs_redis_at_most_a_call_per_hundred_refusals_in_every_mode() {
    let server = RedisServer::start().unwrap();
    // 5 at once, then 1 per 10 s: a flood far above the limit for the whole run.
    let p = Policy::new(
        Kind::TokenBucket,
        Quota::new(1, Duration::from_secs(10))
            .unwrap()
            .with_burst(5)
            .unwrap(),
    );
    for (mode, key) in [
        (StoreMode::Exact, "flood-exact"),
        (lease(16), "flood-lease"),
    ] {
        let before = evalsha_calls(&server);
        let limiters = instances(&[server.url()], false, mode, p).await;
        let admitted = hammer(&limiters, &[key], 4_000).await[0];
        let calls = evalsha_calls(&server) - before;
        let denied = 12_000 - admitted;
        let per_denied = calls as f64 / denied as f64;
        assert!(
            per_denied <= 0.01,
            "{mode}: {calls} calls for {denied} refusals"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leases_work_on_a_cluster_and_windows_are_refused() {
    let cluster = RedisCluster::start().unwrap();
    let p = Policy::new(
        Kind::TokenBucket,
        Quota::new(1, Duration::from_secs(10))
            .unwrap()
            .with_burst(30)
            .unwrap(),
    );
    let limiters = instances(&cluster.urls(), true, lease(4), p).await;
    let admitted = hammer(&limiters, &["a", "b", "c"], 60).await;
    for n in &admitted {
        assert!((30..=31).contains(n), "{admitted:?}");
    }
    let store = RedisStore::connect_cluster(&cluster.urls(), options(lease(4)))
        .await
        .unwrap();
    for kind in [
        Kind::FixedWindow,
        Kind::SlidingWindow,
        Kind::SlidingLog,
        Kind::BucketedWindow,
    ] {
        let err = RateLimiter::redis(&store, Policy::new(kind, Quota::per_second(5).unwrap()))
            .unwrap_err();
        assert!(err.is_invalid_mode(), "{kind}: {err}");
        assert!(err.to_string().contains(kind.name()), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_in_hand_is_spent_while_redis_is_down_then_the_failure_policy_answers() {
    let server = RedisServer::start().unwrap();
    let opts = RedisOptions {
        timeout: Duration::from_millis(200),
        on_error: FailurePolicy::FailClosed,
        mode: StoreMode::Lease(LeaseOptions::new(8, Duration::from_secs(60)).unwrap()),
        ..RedisOptions::default()
    };
    let store = RedisStore::connect(&server.url(), opts).await.unwrap();
    let p = Policy::new(Kind::Gcra, Quota::per_second(1_000).unwrap());
    let limiter = store.limiter(p).unwrap();
    // Leases of 1, 2, 4, then 8: 15 units taken for 8 requests, 7 in hand.
    for _ in 0..8 {
        assert!(limiter.decide("k", 1).await.unwrap().decision.allowed);
    }
    server.kill();
    for _ in 0..7 {
        let v = limiter.decide("k", 1).await.unwrap();
        assert_eq!((v.decision.allowed, v.decided_by), (true, DecidedBy::Store));
    }
    let v = limiter.decide("k", 1).await.unwrap();
    assert_eq!(
        (v.decision.allowed, v.decided_by),
        (false, DecidedBy::FailClosed)
    );
    assert_eq!(store.metrics().local_allowed, 7 + 4);
}
