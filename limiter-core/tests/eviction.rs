//! Bounded memory: a million distinct keys never push a store past its cap, and keys
//! that went idle are what goes first.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use limiter_core::algorithm::{Gcra, SlidingLog, TokenBucket, Visit};
use limiter_core::store::memory::MemoryStore;
use limiter_core::{Algorithm, Kind, Nanos, Quota};

const KEYS: u64 = 1_000_000;

#[test]
fn a_million_active_keys_stay_under_the_cap() {
    // All keys stay active (1 per minute, nothing refills during the run): the cap
    // forces evictions, and the store never holds more than it.
    let store = MemoryStore::<u64, TokenBucket>::with_max_keys(
        TokenBucket::new(Quota::per_minute(1).unwrap()),
        100_000,
    );
    let mut peak = 0;
    for k in 0..KEYS {
        assert!(store.check(&k, k, 1).unwrap().allowed);
        if k % 4_096 == 0 {
            peak = peak.max(store.len());
        }
    }
    let stats = store.stats();
    assert!(stats.keys <= store.max_keys() && peak <= store.max_keys());
    assert!(
        stats.keys > store.max_keys() / 2,
        "cap enforced far too eagerly: {stats:?}"
    );
    // One request throttles a key (1 per minute): every key held is throttled, so the
    // store's default rule (evict-oldest) forgets the least recently used of them.
    assert!(
        stats.evicted_throttled >= KEYS - store.max_keys() as u64,
        "{stats:?}"
    );
    // Memory follows the key count: a table slot (key, state and last-used tick: 24
    // bytes here) plus its share of empty room.
    assert!(stats.bytes_per_key() < 96.0, "{stats:?}");
}

#[test]
fn idle_keys_make_room_before_active_ones() {
    // 1,000 per second with a burst of one: a key is full again 1 ms after its request.
    // One new key per microsecond, so about a thousand keys are active at any time and
    // every other key is idle: nothing active is ever forced out.
    let store = MemoryStore::<String, Gcra>::with_max_keys(
        Gcra::new(Quota::per_second(1_000).unwrap().with_burst(1).unwrap()),
        50_000,
    );
    for k in 0..KEYS {
        let now: Nanos = k * 1_000;
        let key = format!("user:{k}:/api/orders");
        assert!(store.check(key.as_str(), now, 1).unwrap().allowed);
    }
    let stats = store.stats();
    assert_eq!(stats.evicted_forced, 0, "{stats:?}");
    assert!(stats.keys <= store.max_keys());
    assert!(stats.evicted_idle >= KEYS - store.max_keys() as u64);
    store.sweep(KEYS * 1_000 + 1_000_000);
    assert!(store.is_empty());
}

#[test]
fn the_sliding_log_reports_its_entries() {
    let store = MemoryStore::<u64, SlidingLog>::new(SlidingLog::new(
        Quota::new(100, Duration::from_secs(1)).unwrap(),
    ));
    let empty = store.stats().bytes;
    for i in 0..100 {
        assert!(store.check(&1, i, 1).unwrap().allowed);
    }
    let stats = store.stats();
    // 100 entries of 16 bytes each, at least.
    assert!(stats.bytes >= empty + 1_600, "{stats:?}");
}

/// A key at its limit, then a flood of new keys that makes every shard's table grow
/// (and sweep) again and again: the key must still be at its limit afterwards. Only a
/// key back to a full allowance may be forgotten.
struct ExhaustedKeySurvivesGrowth;

impl Visit for ExhaustedKeySurvivesGrowth {
    type Output = ();

    fn visit<A: Algorithm>(self) {
        const SEC: Nanos = 1_000_000_000;
        let store = MemoryStore::<u64, A>::new(A::new(Quota::per_second(2).unwrap()));
        // Mid-window, a second and a half in: windows and buckets alike are in use.
        let t = 3 * SEC / 2;
        assert!(store.check(&0, t, 1).unwrap().allowed);
        assert!(store.check(&0, t, 1).unwrap().allowed);
        assert!(!store.check(&0, t, 1).unwrap().allowed);
        for k in 1..20_000u64 {
            // Spread over the rest of the window, so sweeps run at several instants.
            store.check(&k, t + k * 10_000, 1).unwrap();
        }
        let end = t + 20_000 * 10_000;
        assert!(
            !store.check(&0, end, 1).unwrap().allowed,
            "{} forgot a key at its limit",
            std::any::type_name::<A>()
        );
    }
}

#[test]
fn no_algorithm_forgets_a_key_at_its_limit() {
    for kind in Kind::ALL {
        kind.visit(ExhaustedKeySurvivesGrowth);
    }
}
