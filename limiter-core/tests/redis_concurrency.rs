//! Accuracy under concurrency: 4 independent clients × 64 concurrent tasks hammer one
//! key for about 2 s; the token bucket and GCRA admit no more than the envelope over
//! the run (measured on Redis's own clock) and no fewer than the envelope minus one,
//! on a single node and on a 3-master cluster.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

#[path = "common/envelope.rs"]
mod envelope;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use limiter_core::store::redis::{RedisOptions, RedisStore};
use limiter_core::{Kind, Limiter, Policy, Quota};
use testkit::{RedisCluster, RedisServer};
use tokio::sync::{Barrier, Mutex};

const CLIENTS: usize = 4;
const TASKS: usize = 64;
const RUN: Duration = Duration::from_secs(2);

/// One run at a time: the two tests would otherwise share two cores and stretch
/// each other's gaps between Redis's clock and the first and last requests.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// Redis's clock in µs, from `TIME` on `node`.
fn redis_time(node: &RedisServer) -> u64 {
    let t = node.cmd(&["TIME"]).unwrap();
    let (s, us) = t.split_once('\n').unwrap();
    s.parse::<u64>().unwrap() * 1_000_000 + us.parse::<u64>().unwrap()
}

/// Hammers `key` from `CLIENTS` stores × `TASKS` tasks for `RUN`; returns the units
/// admitted and the run's length on Redis's clock (from before the first request to
/// after the last answer), in ns.
async fn hammer(
    stores: &[RedisStore],
    policy: Policy,
    key: &str,
    clock: &RedisServer,
) -> (u64, u64) {
    let admitted = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(CLIENTS * TASKS + 1));
    let mut tasks = Vec::new();
    for store in stores {
        let limiter = Arc::new(store.limiter(policy));
        for _ in 0..TASKS {
            let (limiter, admitted, start) = (limiter.clone(), admitted.clone(), start.clone());
            let key = key.to_owned();
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                let end = Instant::now() + RUN;
                while Instant::now() < end {
                    if limiter.check(&key, 1).await.unwrap().allowed {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
    }
    let t0 = redis_time(clock);
    start.wait().await;
    for t in tasks {
        t.await.unwrap();
    }
    let t1 = redis_time(clock);
    (admitted.load(Ordering::Relaxed), (t1 - t0) * 1_000)
}

async fn envelope_holds(stores: Vec<RedisStore>, clock: &RedisServer) {
    for kind in [Kind::TokenBucket, Kind::Gcra] {
        // 40 per second (one every 25 ms), bursts of 10: about 90 in 2 s.
        let p = Policy::new(kind, Quota::per_second(40).unwrap().with_burst(10).unwrap());
        let key = format!("hammered:{kind}");
        let (admitted, length) = hammer(&stores, p, &key, clock).await;
        let most = envelope::most_in(&p, 0, length);
        let calls: u64 = stores.iter().map(|s| s.metrics().calls).sum();
        eprintln!("{kind}: admitted {admitted} of {calls} calls, envelope {most} over {length} ns");
        assert!(
            calls > 10 * most,
            "{kind}: only {calls} calls: the key was not saturated"
        );
        assert!(
            admitted <= most && admitted + 1 >= most,
            "{kind}: admitted {admitted}, envelope {most} over {length} ns"
        );
    }
    for s in &stores {
        assert_eq!(s.metrics().errors, 0);
    }
}

fn options() -> RedisOptions {
    // Accuracy, not latency, is under test: 256 tasks on two cores may queue.
    RedisOptions {
        timeout: Duration::from_secs(5),
        ..RedisOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_clients_on_one_node_admit_the_envelope() {
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start().unwrap();
    let mut stores = Vec::new();
    for _ in 0..CLIENTS {
        stores.push(RedisStore::connect(&redis.url(), options()).await.unwrap());
    }
    envelope_holds(stores, &redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_clients_on_a_cluster_admit_the_envelope() {
    let cluster = RedisCluster::start().unwrap();
    let _serial = SERIAL.lock().await;
    let mut stores = Vec::new();
    for _ in 0..CLIENTS {
        stores.push(
            RedisStore::connect_cluster(&cluster.urls(), options())
                .await
                .unwrap(),
        );
    }
    envelope_holds(stores, &cluster.nodes()[0]).await;
}
