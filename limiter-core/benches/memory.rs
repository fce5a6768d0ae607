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
//! Run: `cargo bench -p limiter-core --bench memory` (about 6 minutes; filter with a
//! regex such as `-- 'u64/10000/.*/1t'`). Summarize with `benches/summarize.py`.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use governor::{DefaultKeyedRateLimiter, Quota as GovQuota};
use limiter_core::algorithm::{
    BucketedWindow, FixedWindow, Gcra, SlidingLog, SlidingWindow, TokenBucket,
};
use limiter_core::{Algorithm, KeyedLimiter, Kind, Quota};

const KEY_COUNTS: [usize; 3] = [1, 10_000, 1_000_000];
const THREADS: [usize; 2] = [1, 2];
const ROUTES: [&str; 4] = ["/api/orders", "/api/users", "/api/search", "/api/cart"];

/// Whether the timed checks are admitted or denied.
#[derive(Debug, Clone, Copy)]
enum Scenario {
    Allowed,
    Denied,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Allowed => "allowed",
            Scenario::Denied => "denied",
        }
    }

    /// Our quota for algorithm `A` in this scenario.
    fn quota<A: Algorithm>(self) -> Quota {
        let hour = Duration::from_secs(3600);
        let q = match self {
            Scenario::Denied => Quota::new(1, hour),
            // A billion tokens refilled at 10 a second: 3.2 years to refill, within the
            // quota's ten-year limit (1 per 10 s took 317 years, now refused).
            Scenario::Allowed if A::KIND.is_bucket() => {
                Quota::new(10, Duration::from_secs(1)).and_then(|q| q.with_burst(1_000_000_000))
            }
            Scenario::Allowed if A::KIND == Kind::SlidingLog => {
                Quota::new(4_000_000_000, Duration::from_millis(250))
            }
            Scenario::Allowed => Quota::new(4_000_000_000, hour),
        };
        q.unwrap_or_else(|e| panic!("bench quota: {e}"))
    }

    /// Governor's quota in this scenario (the bucket quota above).
    fn governor_quota(self) -> GovQuota {
        match self {
            Scenario::Denied => GovQuota::with_period(Duration::from_secs(3600))
                .unwrap_or_else(|| panic!("bench quota"))
                .allow_burst(NonZeroU32::MIN),
            Scenario::Allowed => GovQuota::with_period(Duration::from_millis(100))
                .unwrap_or_else(|| panic!("bench quota"))
                .allow_burst(NonZeroU32::new(1_000_000_000).unwrap_or(NonZeroU32::MAX)),
        }
    }
}

/// Something that decides one request for a key of type `K`.
trait Subject<K>: Sync {
    fn check(&self, key: &K) -> bool;
}

impl<A: Algorithm> Subject<u64> for KeyedLimiter<u64, A> {
    #[inline]
    fn check(&self, key: &u64) -> bool {
        matches!(KeyedLimiter::check(self, key, 1), Ok(d) if d.allowed)
    }
}

impl<A: Algorithm> Subject<String> for KeyedLimiter<Box<str>, A> {
    #[inline]
    fn check(&self, key: &String) -> bool {
        matches!(KeyedLimiter::check(self, key.as_str(), 1), Ok(d) if d.allowed)
    }
}

impl<K> Subject<K> for DefaultKeyedRateLimiter<K>
where
    K: Clone + Eq + std::hash::Hash + Send + Sync,
{
    #[inline]
    fn check(&self, key: &K) -> bool {
        self.check_key(key).is_ok()
    }
}

/// SplitMix64: a bijection on `u64`, so distinct inputs give distinct keys.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Fisher–Yates with a fixed seed, so every run visits keys in the same order.
fn shuffle<T>(v: &mut [T]) {
    let mut state = 42u64;
    for i in (1..v.len()).rev() {
        state = splitmix(state);
        let j = (state % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

fn u64_keys(n: usize) -> Vec<u64> {
    (0..n as u64).map(splitmix).collect()
}

/// Keys as the gateway forms them: client, then route. Visited in a shuffled order, but
/// each string is allocated in visiting order, so reading the caller's key is as cheap
/// as in the gateway, which forms the key just before the check: what is timed is the
/// limiter's work, including its random walk over its own table.
fn string_keys(n: usize) -> Vec<String> {
    let mut ids: Vec<usize> = (0..n).collect();
    shuffle(&mut ids);
    ids.into_iter()
        .map(|i| {
            format!(
                "user:{}:{}",
                1_000_000 + i / ROUTES.len(),
                ROUTES[i % ROUTES.len()]
            )
        })
        .collect()
}

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
    let governor: DefaultKeyedRateLimiter<u64> =
        DefaultKeyedRateLimiter::keyed(scenario.governor_quota());
    bench_subject(&mut group, "governor", &governor, keys);
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
    let governor: DefaultKeyedRateLimiter<String> =
        DefaultKeyedRateLimiter::keyed(scenario.governor_quota());
    bench_subject(&mut group, "governor", &governor, keys);
    group.finish();
}

/// Short samples: 168 benchmarks must fit in about nine minutes on two cores.
fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500));
}

/// Our limiter for algorithm `A` over `u64` keys.
fn ours_u64<A: Algorithm>(scenario: Scenario) -> KeyedLimiter<u64, A> {
    KeyedLimiter::new(scenario.quota::<A>())
}

/// Our limiter for algorithm `A` over string keys, as `MemoryLimiter` stores them.
fn ours_str<A: Algorithm>(scenario: Scenario) -> KeyedLimiter<Box<str>, A> {
    KeyedLimiter::new(scenario.quota::<A>())
}

fn keyed(c: &mut Criterion) {
    let max = KEY_COUNTS.iter().copied().max().unwrap_or(1);
    let u64_keys = u64_keys(max);
    for n in KEY_COUNTS {
        for scenario in [Scenario::Allowed, Scenario::Denied] {
            bench_u64(c, &u64_keys, n, scenario);
        }
    }
    drop(u64_keys);
    let string_keys = string_keys(max);
    for n in KEY_COUNTS {
        for scenario in [Scenario::Allowed, Scenario::Denied] {
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
