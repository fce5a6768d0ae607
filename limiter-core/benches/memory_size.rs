//! Bytes per key: the five in-memory stores beside `governor`'s keyed limiter.
//!
//! Both sides are measured the same way: a counting global allocator records the heap
//! bytes the limiter holds after one admitted request for each of N distinct keys
//! (requested sizes, as the program asks for them; the allocator's own rounding and
//! headers are not counted for either). The key set itself is built before counting
//! starts, so only what the limiter copies and allocates is charged to it. Beside it,
//! our store's own estimate ([`MemoryStore::stats`](limiter_core::store::memory::MemoryStore::stats)),
//! which the gateway reports at run time.
//!
//! Run: `cargo bench -p limiter-core --bench memory_size` (a few seconds; prints a
//! markdown table).

use std::hash::Hash;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota as GovQuota};
use limiter_core::algorithm::{
    BucketedWindow, FixedWindow, Gcra, SlidingLog, SlidingWindow, TokenBucket,
};
use limiter_core::store::memory::HeapSize;
use limiter_core::{Algorithm, KeyedLimiter, Kind, Quota};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

const KEY_COUNTS: [usize; 2] = [10_000, 1_000_000];
const ROUTES: [&str; 4] = ["/api/orders", "/api/users", "/api/search", "/api/cart"];

/// Heap bytes live now that were not live when `region` started.
fn live_since(region: &Region<'_, std::alloc::System>) -> isize {
    let d = region.change();
    d.bytes_allocated as isize - d.bytes_deallocated as isize + d.bytes_reallocated
}

/// A quota under which one request per key is admitted and no key is idle (and so
/// evictable) for five minutes: the store holds every key. (A million tokens at one per
/// 300 s refill in 9.5 years, within the quota's ten-year limit.)
fn quota(kind: Kind) -> Quota {
    let q = if kind.is_bucket() {
        Quota::new(1, Duration::from_secs(300)).and_then(|q| q.with_burst(1_000_000))
    } else {
        Quota::new(1_000_000_000, Duration::from_secs(3600))
    };
    q.unwrap_or_else(|e| panic!("bench quota: {e}"))
}

fn governor_quota() -> GovQuota {
    GovQuota::with_period(Duration::from_secs(300))
        .unwrap_or_else(|| panic!("bench quota"))
        .allow_burst(NonZeroU32::new(1_000_000).unwrap_or(NonZeroU32::MAX))
}

/// One row: allocator-counted bytes per key, and the store's own estimate.
struct Row {
    name: &'static str,
    counted: f64,
    estimated: Option<f64>,
}

/// Our store for `A`, measured over `keys` checked as `Q`.
fn ours<K, Q, A>(keys: &[&Q]) -> Row
where
    K: Hash + Eq + HeapSize + std::borrow::Borrow<Q> + From<Q::Owned>,
    Q: Hash + Eq + ToOwned + ?Sized,
    A: Algorithm,
{
    let region = Region::new(GLOBAL);
    let limiter: KeyedLimiter<K, A> = KeyedLimiter::new(quota(A::KIND));
    for key in keys {
        let admitted = matches!(limiter.check(*key, 1), Ok(d) if d.allowed);
        assert!(admitted, "every first request is admitted");
    }
    let counted = live_since(&region) as f64 / keys.len() as f64;
    let stats = limiter.stats();
    assert_eq!(stats.keys, keys.len(), "the store holds every key");
    drop(limiter);
    Row {
        name: A::KIND.name(),
        counted,
        estimated: Some(stats.bytes_per_key()),
    }
}

fn governor<K: Clone + Hash + Eq>(keys: &[K]) -> Row {
    let region = Region::new(GLOBAL);
    let limiter: DefaultKeyedRateLimiter<K> = DefaultKeyedRateLimiter::keyed(governor_quota());
    for key in keys {
        assert!(
            limiter.check_key(key).is_ok(),
            "every first request is admitted"
        );
    }
    let counted = live_since(&region) as f64 / keys.len() as f64;
    assert_eq!(limiter.len(), keys.len(), "governor holds every key");
    drop(limiter);
    Row {
        name: "governor",
        counted,
        estimated: None,
    }
}

fn rows_u64(n: usize) -> Vec<Row> {
    let owned: Vec<u64> = (0..n as u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    let keys: Vec<&u64> = owned.iter().collect();
    vec![
        ours::<u64, u64, FixedWindow>(&keys),
        ours::<u64, u64, SlidingLog>(&keys),
        ours::<u64, u64, SlidingWindow>(&keys),
        ours::<u64, u64, TokenBucket>(&keys),
        ours::<u64, u64, Gcra>(&keys),
        ours::<u64, u64, BucketedWindow>(&keys),
        governor(&owned),
    ]
}

fn rows_str(n: usize) -> Vec<Row> {
    let owned: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "user:{}:{}",
                1_000_000 + i / ROUTES.len(),
                ROUTES[i % ROUTES.len()]
            )
        })
        .collect();
    let keys: Vec<&str> = owned.iter().map(String::as_str).collect();
    vec![
        ours::<Box<str>, str, FixedWindow>(&keys),
        ours::<Box<str>, str, SlidingLog>(&keys),
        ours::<Box<str>, str, SlidingWindow>(&keys),
        ours::<Box<str>, str, TokenBucket>(&keys),
        ours::<Box<str>, str, Gcra>(&keys),
        ours::<Box<str>, str, BucketedWindow>(&keys),
        governor(&owned),
    ]
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is accepted and ignored.
    println!("| keys | key type | limiter | bytes/key (allocator) | bytes/key (stats()) |");
    println!("|---:|---|---|---:|---:|");
    for n in KEY_COUNTS {
        for (kind, rows) in [("u64", rows_u64(n)), ("string", rows_str(n))] {
            for row in rows {
                let estimated = row.estimated.map_or("—".to_owned(), |e| format!("{e:.1}"));
                println!(
                    "| {n} | {kind} | {} | {:.1} | {estimated} |",
                    row.name, row.counted
                );
            }
        }
    }
}
