//! Accuracy under concurrency: 4 independent clients × 64 concurrent tasks hammer one
//! key for about 2 s; the token bucket and GCRA admit no more than the envelope over
//! the run and no fewer than the envelope minus one, on a single node and on a
//! 3-master cluster. The run's length on Redis is bracketed by the client's clock
//! (see [`hammer`]), so a busy machine widens the bracket instead of failing the test.

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

/// One run at a time: the two tests would otherwise share two cores.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// When a task sent its first and last requests and got their answers.
#[derive(Debug, Clone, Copy)]
struct Span {
    first_sent: Instant,
    first_answered: Instant,
    last_sent: Instant,
    last_answered: Instant,
}

/// Hammers `key` from `CLIENTS` stores × `TASKS` tasks for `RUN`; returns the units
/// admitted, and the shortest and the longest the run can have lasted on Redis (in ns):
/// Redis decided the first request before the first answer came back and the last one
/// after the last request left, so its span lies between `last sent − first answered`
/// and `last answered − first sent`.
async fn hammer(stores: &[RedisStore], policy: Policy, key: &str) -> (u64, u64, u64) {
    let admitted = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(CLIENTS * TASKS));
    let mut tasks = Vec::new();
    for store in stores {
        let limiter = Arc::new(store.limiter(policy).unwrap());
        for _ in 0..TASKS {
            let (limiter, admitted, start) = (limiter.clone(), admitted.clone(), start.clone());
            let key = key.to_owned();
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                let end = Instant::now() + RUN;
                let mut span: Option<Span> = None;
                while Instant::now() < end {
                    let sent = Instant::now();
                    if limiter.check(&key, 1).await.unwrap().allowed {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                    let answered = Instant::now();
                    let s = span.get_or_insert(Span {
                        first_sent: sent,
                        first_answered: answered,
                        last_sent: sent,
                        last_answered: answered,
                    });
                    (s.last_sent, s.last_answered) = (sent, answered);
                    // A local denial answers at once: let the tasks waiting on Redis run.
                    tokio::task::yield_now().await;
                }
                span.unwrap()
            }));
        }
    }
    let mut spans = Vec::new();
    for t in tasks {
        spans.push(t.await.unwrap());
    }
    let first_sent = spans.iter().map(|s| s.first_sent).min().unwrap();
    let first_answered = spans.iter().map(|s| s.first_answered).min().unwrap();
    let last_sent = spans.iter().map(|s| s.last_sent).max().unwrap();
    let last_answered = spans.iter().map(|s| s.last_answered).max().unwrap();
    let ns = |d: Duration| d.as_nanos() as u64;
    (
        admitted.load(Ordering::Relaxed),
        ns(last_sent - first_answered),
        ns(last_answered - first_sent),
    )
}

async fn envelope_holds(stores: Vec<RedisStore>) {
    for kind in [Kind::TokenBucket, Kind::Gcra] {
        // 40 per second (one every 25 ms), bursts of 10: about 90 in 2 s.
        let p = Policy::new(kind, Quota::per_second(40).unwrap().with_burst(10).unwrap());
        let key = format!("hammered:{kind}");
        let (admitted, shortest, longest) = hammer(&stores, p, &key).await;
        let (least, most) = (
            envelope::most_in(&p, 0, shortest),
            envelope::most_in(&p, 0, longest),
        );
        // Decisions: asked of Redis, or refused locally after a denial of Redis's.
        let calls: u64 = stores
            .iter()
            .map(|s| s.metrics().calls + s.metrics().local_denied)
            .sum();
        eprintln!("{kind}: admitted {admitted} of {calls} decisions, envelope {least}..={most}");
        assert!(
            calls > 10 * most,
            "{kind}: only {calls} decisions: the key was not saturated"
        );
        assert!(
            admitted <= most && admitted + 1 >= least,
            "{kind}: admitted {admitted}, envelope between {least} and {most}"
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
    envelope_holds(stores).await;
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
    envelope_holds(stores).await;
}
