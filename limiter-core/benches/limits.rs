//! Several limits on one request in memory against one limit, in one run (issue 15.8:
//! two limits at most 2.5× one limit's time).
//!
//! Every benchmark decides one admitted request (cost 1) for a string key taken in
//! turn from 10,000 keys (`user:<n>`, inserted before timing), on a monotonic clock:
//! - `one/gcra`: one GCRA limit through [`RateLimiter::decide_now`], the single-limit
//!   fast path a route with one limit keeps (compare-and-swap, no lock);
//! - `set1/gcra`: the same limit as a one-limit [`MultiLimiter`] (a lock per key);
//! - `set2/gcra+sliding-window`: GCRA and a sliding window counter, all-or-nothing;
//! - `set2/token-bucket+fixed-window`, `set3/gcra+sliding-window+fixed-window`.
//!
//! The ratio the issue asks for is `set2/gcra+sliding-window` over `one/gcra`.
//!
//! Run: `cargo bench -p limiter-core --bench limits` (about a minute).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use limiter_core::limits::{Limit, LimitSet, MultiLimiter};
use limiter_core::{Kind, MonotonicClock, Policy, Quota, RateLimiter};

const KEYS: usize = 10_000;

/// A policy of `kind` no run exhausts.
fn roomy(kind: Kind) -> Policy {
    let q = if kind.is_bucket() {
        Quota::new(10, Duration::from_secs(1)).and_then(|q| q.with_burst(1_000_000_000))
    } else {
        Quota::new(4_000_000_000, Duration::from_secs(3600))
    };
    Policy::new(kind, q.unwrap_or_else(|e| panic!("bench quota: {e}")))
}

fn set(kinds: &[Kind]) -> MultiLimiter {
    let limits = kinds
        .iter()
        .map(|&k| Limit::new(k.name(), k.name(), roomy(k), 1_000_000))
        .collect();
    let set = LimitSet::new(limits).unwrap_or_else(|e| panic!("bench set: {e}"));
    MultiLimiter::memory(set, MonotonicClock::new())
}

fn bench(c: &mut Criterion) {
    let keys: Vec<String> = (0..KEYS)
        .map(|i| format!("user:{}", 1_000_000 + i))
        .collect();
    let mut group = c.benchmark_group("limits/10000");
    group.throughput(criterion::Throughput::Elements(1));

    let one = RateLimiter::memory(roomy(Kind::Gcra), MonotonicClock::new(), 1_000_000);
    for k in &keys {
        let _ = one.decide_now(k, 1);
    }
    let mut i = 0;
    group.bench_function("one/gcra", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(one.decide_now(&keys[i], 1))
        })
    });

    let sets: [&[Kind]; 4] = [
        &[Kind::Gcra],
        &[Kind::Gcra, Kind::SlidingWindow],
        &[Kind::TokenBucket, Kind::FixedWindow],
        &[Kind::Gcra, Kind::SlidingWindow, Kind::FixedWindow],
    ];
    for kinds in sets {
        let multi = set(kinds);
        for k in &keys {
            let _ = multi.decide_now(k, 1);
        }
        let name = kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join("+");
        group.bench_function(format!("set{}/{name}", kinds.len()), |b| {
            b.iter(|| {
                i = (i + 1) % KEYS;
                black_box(multi.decide_now(&keys[i], 1))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
