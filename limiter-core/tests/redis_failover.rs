//! Failover on a Redis Cluster with a replica per master (issue 16 items 6 and 7): the
//! master serving the hot keys is killed in the middle of a steady run; the limiters
//! recover without a restart, the failure policy answers only meanwhile (after the
//! leases in hand are spent), the keys of the masters that stay up are decided by the
//! store throughout, and every decision is accounted for. The figures of docs/redis.md
//! come from the same code (`benches/failover.rs`).

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/failover.rs"]
mod failover;

use std::time::Duration;

use failover::{INSTANCES, KeyTally, Outcome, Setup};
use limiter_core::store::mode::{LeaseOptions, StoreMode};
use limiter_core::{DecidedBy, FailurePolicy, Kind, Policy, Quota, RedisOptions, RedisStore};
use testkit::RedisCluster;

/// From the promotion to decisions from the store again: the client's slot refresh,
/// the breaker's pause (200 ms) and the scripts loaded on the new master.
const CLIENT_LAG: Duration = Duration::from_secs(2);

/// Every decision is one of the four kinds, and the over-admission is what the
/// failure policy admitted plus what the store admitted twice.
fn accounting_adds_up(key: &KeyTally) {
    let sum = key.store_allowed + key.store_denied + key.fallback_allowed + key.fallback_denied;
    assert_eq!(sum, key.decisions, "{key:?}");
    assert!(key.decisions > 0);
    assert!(
        key.over() <= key.fallback_allowed + key.store_over(),
        "{key:?}"
    );
}

fn recovered_in_time(o: &Outcome) {
    let recovery = o
        .recovery
        .unwrap_or_else(|| panic!("never back on the store: {o:#?}"));
    assert!(recovery >= o.promotion, "{o:#?}");
    assert!(recovery <= o.promotion + CLIENT_LAG, "{o:#?}");
    assert!(o.promotion < Duration::from_secs(15), "{o:#?}");
    let table = failover::markdown(std::slice::from_ref(o));
    assert_eq!(table.lines().count(), 3, "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exact_mode_fails_closed_during_a_failover_and_recovers_without_a_restart() {
    let o = failover::run(Setup::new(StoreMode::Exact, FailurePolicy::FailClosed)).await;
    recovered_in_time(&o);
    for key in o.hot_keys.iter().chain([&o.cold]) {
        accounting_adds_up(key);
    }
    // Fail-closed admits nothing itself: any excess is writes the promoted replica
    // never saw, a handful at most on loopback (asynchronous replication).
    assert_eq!(o.hot.fallback_allowed, 0, "{o:#?}");
    assert!(o.hot.fallback_denied > 0, "{o:#?}");
    assert_eq!(o.hot_over, o.hot_store_over, "{o:#?}");
    assert!(o.hot_store_over <= 10, "{o:#?}");
    assert!(o.circuit_opened > 0 && o.short_circuited > 0, "{o:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lease_mode_decides_locally_during_a_failover_and_other_masters_keys_never_notice() {
    let o = failover::run(Setup {
        full_coverage: false,
        ..Setup::new(failover::lease(), FailurePolicy::Local)
    })
    .await;
    recovered_in_time(&o);
    for key in o.hot_keys.iter().chain([&o.cold]) {
        accounting_adds_up(key);
    }
    // The cold key's master stayed up, and serves its slots while another is down
    // (`cluster-require-full-coverage no`); its circuit is its own.
    assert_eq!(
        (o.cold.fallback_allowed, o.cold.fallback_denied),
        (0, 0),
        "{o:#?}"
    );
    // Each instance's in-memory stand-in enforces the policy alone while the store is
    // away: at most its envelope over the outage, per instance.
    let outage = o.recovery.unwrap().as_nanos() as u64 + 1_000_000_000;
    let alone = failover::policy().envelope().most_in(0, outage);
    for key in &o.hot_keys {
        assert!(key.fallback_allowed > 0, "{key:?}");
        assert!(key.fallback_allowed <= INSTANCES as u64 * alone, "{key:?}");
    }
    assert!(
        o.hot_store_over <= 10 * 16,
        "a lost lease write is at most a lease: {o:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_in_hand_is_spent_while_its_master_is_down_then_the_failure_policy_answers() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start_with_replicas)
        .await
        .unwrap()
        .unwrap();
    let opts = RedisOptions {
        timeout: Duration::from_millis(200),
        on_error: FailurePolicy::FailClosed,
        mode: StoreMode::Lease(LeaseOptions::new(8, Duration::from_secs(60)).unwrap()),
        ..RedisOptions::default()
    };
    let store = RedisStore::connect_cluster(&cluster.urls(), opts)
        .await
        .unwrap();
    let limiter = store
        .limiter(Policy::new(Kind::Gcra, Quota::per_second(1_000).unwrap()))
        .unwrap();
    // Leases of 1, 2, 4, then 8: 15 units taken for 8 requests, 7 in hand.
    for _ in 0..8 {
        assert!(limiter.decide("k", 1).await.unwrap().decision.allowed);
    }
    let killed = cluster.kill_master_of(&limiter.redis_key("k")).unwrap();
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

    // The replica takes over; the same limiter, not restarted, is served by it.
    let cluster = std::sync::Arc::new(cluster);
    let failover = {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || {
            cluster.wait_promotion(&killed, Duration::from_secs(30))
        })
        .await
        .unwrap()
        .unwrap()
    };
    let deadline = tokio::time::Instant::now() + CLIENT_LAG;
    let v = loop {
        let v = limiter.decide("k", 1).await.unwrap();
        if v.decided_by == DecidedBy::Store || tokio::time::Instant::now() > deadline {
            break v;
        }
        assert_eq!(v.decided_by, DecidedBy::FailClosed);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        (v.decision.allowed, v.decided_by),
        (true, DecidedBy::Store),
        "{failover:?}"
    );
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}
