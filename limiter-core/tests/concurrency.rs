//! Concurrency: many threads hammering one key admit exactly what one thread would —
//! no lost updates, no double spending — for every algorithm.

#![allow(clippy::unwrap_used)]

use std::sync::Barrier;
use std::time::Duration;

use limiter_core::algorithm::{Gcra, TokenBucket, Visit};
use limiter_core::store::memory::MemoryStore;
use limiter_core::{Algorithm, Kind, Nanos, Quota};

const THREADS: usize = 4;
const ATTEMPTS: usize = 2_000;
const MS: Nanos = 1_000_000;

fn quota() -> Quota {
    Quota::new(100, Duration::from_millis(100))
        .and_then(|q| q.with_burst(150))
        .unwrap()
}

/// Counts admissions of `attempts` requests at `now`, spread over `threads` threads.
fn hammer<A: Algorithm>(
    store: &MemoryStore<String, A>,
    key: &str,
    now: Nanos,
    threads: usize,
) -> usize {
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    (0..ATTEMPTS / threads)
                        .filter(|_| store.check(key, now, 1).unwrap().allowed)
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

/// At each instant of a timeline, `THREADS` threads must admit exactly what one thread
/// admits on a twin store.
struct ExactUnderContention;

impl Visit for ExactUnderContention {
    type Output = ();

    fn visit<A: Algorithm>(self) {
        let concurrent = MemoryStore::<String, A>::new(A::new(quota()));
        let sequential = MemoryStore::<String, A>::new(A::new(quota()));
        let mut total = 0;
        for now in [
            0,
            30 * MS,
            99 * MS,
            100 * MS,
            150 * MS,
            260 * MS,
            1_000 * MS,
        ] {
            let got = hammer(&concurrent, "user:1:/api/orders", now, THREADS);
            let want = hammer(&sequential, "user:1:/api/orders", now, 1);
            assert_eq!(got, want, "{:?} at {now} ns", A::KIND);
            total += got;
        }
        assert!(total > 0);
    }
}

#[test]
fn every_algorithm_is_exact_under_contention() {
    for kind in Kind::ALL {
        kind.visit(ExactUnderContention);
    }
}

#[test]
fn first_touch_races_insert_each_key_once() {
    // Every thread touches the same new keys at once: each key admits exactly its limit.
    let store = MemoryStore::<u64, Gcra>::new(Gcra::new(Quota::per_second(3).unwrap()));
    let barrier = Barrier::new(THREADS);
    let admitted: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let mut n = 0;
                    for key in 0..2_000u64 {
                        for _ in 0..2 {
                            n += usize::from(store.check(&key, 0, 1).unwrap().allowed);
                        }
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(admitted, 2_000 * 3);
    assert_eq!(store.len(), 2_000);
}

#[test]
fn real_clock_never_exceeds_the_envelope() {
    // On the system clock: admitted ≤ burst + rate × elapsed, for the whole run.
    use limiter_core::KeyedLimiter;
    let limiter: KeyedLimiter<String, TokenBucket> = KeyedLimiter::new(quota());
    let start = std::time::Instant::now();
    let admitted = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while start.elapsed() < Duration::from_millis(300) {
                        n += u64::from(limiter.check("k", 1).unwrap().allowed);
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    let elapsed = start.elapsed();
    let envelope = 150 + (elapsed.as_nanos() * 100 / 100_000_000) as u64;
    assert!(admitted <= envelope, "{admitted} > {envelope}");
    // And the limiter is not starving the key either: at least the burst went through.
    assert!(admitted >= 150);
}
