//! Keyed in-memory checks: every algorithm beside `governor`'s keyed limiter.
//!
//! Every benchmark decides one request (cost 1) for a key taken in turn from a
//! shuffled set of 1, 10,000 or 1,000,000 keys, on the limiter's own default clock
//! (ours: [`MonotonicClock`](limiter_core::MonotonicClock); governor's: its quanta
//! clock) — the whole keyed check a caller pays for, clock read included.
//!
//! Dimensions, all in one run so the ratios compare like with like:
//! - keys: `u64`, and strings as the gateway forms them (`user:1000042:/api/orders`;
//!   ours stored as `Box<str>` and checked by `&str`, governor's as `String`);
//! - 1, 10,000 and 1,000,000 distinct keys, all inserted before timing, so the
//!   timed loop measures checks on known keys;
//! - `allowed`: a quota no check exhausts during the run; `denied`: every key already
//!   spent its one request for the hour, so every check is a denial;
//! - 1 thread, and 2 threads sharing the limiter. With 2 threads each thread runs
//!   `iters` checks from its own place in the key set and the time reported is the
//!   wall time of the pair divided by `iters`: the time one check takes while the
//!   other thread hammers the same limiter.
//!
//! Quotas: the bucket algorithms (token bucket, GCRA, governor) allow 1 per 10 s with
//! a burst of 1,000,000,000 (no run comes near it, and every key stays non-idle for
//! 10 s after its last check); the fixed and sliding windows allow 4,000,000,000 per
//! hour; the sliding log keeps one entry per admission, so its window is 250 ms
//! (4,000,000,000 per 250 ms) to keep one hot key's log to tens of MB. `denied` is
//! 1 per hour, burst 1, for everything.
//!
//! For the governor ratio alone, `benches/versus_governor.rs` interleaves the limiters
//! so that one run is enough (docs/benchmarks.md says why).
//!
//! Run: `cargo bench -p limiter-core --bench memory` (about 6 minutes; filter with a
//! regex such as `-- 'u64/10000/.*/1t'`). Summarize with `benches/summarize.py`.

#[path = "common/cells.rs"]
mod cells;

use std::hint::black_box;
use std::time::{Duration, Instant};

use cells::{Scenario, Subject, ours_str, ours_u64, string_keys, u64_keys};
use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use limiter_core::algorithm::{
    BucketedWindow, FixedWindow, Gcra, SlidingLog, SlidingWindow, TokenBucket,
};

const KEY_COUNTS: [usize; 3] = [1, 10_000, 1_000_000];
const THREADS: [usize; 2] = [1, 2];

/// `iters` checks from `*cursor` on, wrapping around the key set.
#[inline(never)]
fn run<K, S: Subject<K>>(subject: &S, keys: &[K], cursor: &mut usize, iters: u64) {
    let mut i = *cursor;
    for _ in 0..iters {
        black_box(subject.check(&keys[i]));
        i += 1;
        if i == keys.len() {
            i = 0;
        }
    }
    *cursor = i;
}

/// Benchmarks `subject` on 1 and 2 threads after inserting every key.
fn bench_subject<K: Sync, S: Subject<K>>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    subject: &S,
    keys: &[K],
) {
    for key in keys {
        black_box(subject.check(key));
    }
    for threads in THREADS {
        // Threads start evenly spread over the key set and carry on across samples.
        let mut cursors: Vec<usize> = (0..threads).map(|t| t * keys.len() / threads).collect();
        group.bench_function(format!("{name}/{threads}t"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                if let [cursor] = cursors.as_mut_slice() {
                    run(subject, keys, cursor, iters);
                } else {
                    std::thread::scope(|s| {
                        for cursor in cursors.iter_mut() {
                            s.spawn(move || run(subject, keys, cursor, iters));
                        }
                    });
                }
                start.elapsed()
            });
        });
    }
}

/// Every limiter on one key set and scenario.
fn bench_u64(c: &mut Criterion, all_keys: &[u64], n: usize, scenario: Scenario) {
    let keys = &all_keys[..n];
    let mut group = c.benchmark_group(format!("keyed/u64/{n}/{}", scenario.name()));
    configure(&mut group);
    bench_subject(
        &mut group,
        "fixed-window",
        &ours_u64::<FixedWindow>(scenario),
        keys,
    );
    bench_subject(
        &mut group,
        "sliding-log",
        &ours_u64::<SlidingLog>(scenario),
        keys,
    );
    bench_subject(
        &mut group,
        "sliding-window",
        &ours_u64::<SlidingWindow>(scenario),
        keys,
    );
    bench_subject(
        &mut group,
        "token-bucket",
        &ours_u64::<TokenBucket>(scenario),
        keys,
    );
    bench_subject(&mut group, "gcra", &ours_u64::<Gcra>(scenario), keys);
    bench_subject(
        &mut group,
        "bucketed-window",
        &ours_u64::<BucketedWindow>(scenario),
        keys,
    );
    bench_subject(
        &mut group,
        "governor",
        &cells::governor::<u64>(scenario),
        keys,
    );
    group.finish();
}

/// Every limiter on one key set and scenario, string keys.
fn bench_str(c: &mut Criterion, all_keys: &[String], n: usize, scenario: Scenario) {
    let keys = &all_keys[..n];
    let mut group = c.benchmark_group(format!("keyed/str/{n}/{}", scenario.name()));
    configure(&mut group);
    bench_subject(
        &mut group,
        "fixed-window",
        &ours_str::<FixedWindow>(scenario),
        keys,
    );
    bench_subject(
        &mut group,
        "sliding-log",
        &ours_str::<SlidingLog>(scenario),
        keys,
    );
    bench_subject(
        &mut group,
        "sliding-window",
        &ours_str::<SlidingWindow>(scenario),
        keys,
    );
    bench_subject(
        &mut group,
        "token-bucket",
        &ours_str::<TokenBucket>(scenario),
        keys,
    );
    bench_subject(&mut group, "gcra", &ours_str::<Gcra>(scenario), keys);
    bench_subject(
        &mut group,
        "bucketed-window",
        &ours_str::<BucketedWindow>(scenario),
        keys,
    );
    bench_subject(
        &mut group,
        "governor",
        &cells::governor::<String>(scenario),
        keys,
    );
    group.finish();
}

/// Short samples: 168 benchmarks must fit in about nine minutes on two cores.
fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500));
}

fn keyed(c: &mut Criterion) {
    let max = KEY_COUNTS.iter().copied().max().unwrap_or(1);
    let u64_keys = u64_keys(max);
    for n in KEY_COUNTS {
        for scenario in Scenario::ALL {
            bench_u64(c, &u64_keys, n, scenario);
        }
    }
    drop(u64_keys);
    let string_keys = string_keys(max);
    for n in KEY_COUNTS {
        for scenario in Scenario::ALL {
            bench_str(c, &string_keys, n, scenario);
        }
    }
}

/// What one clock read costs: ours, governor's, and `std::time::Instant`.
fn clocks(c: &mut Criterion) {
    use governor::clock::Clock as _;
    use limiter_core::Clock as _;
    let mut group = c.benchmark_group("clock");
    configure(&mut group);
    let ours = limiter_core::MonotonicClock::new();
    group.bench_function("monotonic-clock", |b| b.iter(|| ours.now()));
    let theirs = governor::clock::QuantaClock::default();
    group.bench_function("governor-quanta-clock", |b| b.iter(|| theirs.now()));
    group.bench_function("std-instant", |b| b.iter(Instant::now));
    group.finish();
}

criterion_group!(benches, clocks, keyed);
criterion_main!(benches);
