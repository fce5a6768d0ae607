//! The memory store's own tests; its bounds under attack are in `tests/eviction.rs`.

use super::*;
use crate::Quota;
use crate::algorithm::{Algorithm, Gcra, SlidingLog};
use std::time::Duration;

const SECOND: Nanos = 1_000_000_000;

#[test]
fn keys_are_independent() {
    let store = MemoryStore::<String, Gcra>::new(Gcra::new(Quota::per_second(1).unwrap()));
    assert!(store.check("a", 0, 1).unwrap().allowed);
    assert!(!store.check("a", 0, 1).unwrap().allowed);
    assert!(store.check("b", 0, 1).unwrap().allowed);
    assert_eq!(store.len(), 2);
}

#[test]
fn idle_keys_are_swept_and_the_cap_holds() {
    let store =
        MemoryStore::<u64, Gcra>::with_max_keys(Gcra::new(Quota::per_second(1).unwrap()), 1_000);
    for k in 0..10_000u64 {
        assert!(store.check(&k, 0, 1).unwrap().allowed);
        assert!(store.len() <= store.max_keys());
    }
    // Each key spent its one request: all throttled, so the oldest went (evict-oldest).
    let stats = store.stats();
    assert!(
        stats.evicted_throttled > 0 && stats.evicted_forced == 0,
        "{stats:?}"
    );
    // One second later every key is full again and may go.
    store.sweep(1_000_000_000);
    assert_eq!(store.len(), 0);
}

#[test]
fn keys_in_use_are_not_swept_at_every_growth() {
    // A generous limit: each key is back to full a microsecond after its request, so
    // idle at almost any instant while in use. Requests cycle over 1,000 keys for
    // three seconds: the tables must grow to hold them, not sweep them at every
    // growth (which made almost every request an insert: ~30,000 evictions here).
    let store = MemoryStore::<u64, Gcra>::new(Gcra::new(Quota::per_second(1_000_000).unwrap()));
    for i in 0..30_000u64 {
        assert!(store.check(&(i % 1_000), i * 100_000, 1).unwrap().allowed);
    }
    assert!(store.stats().evicted_idle < 2_000, "{:?}", store.stats());
    assert_eq!(store.len(), 1_000);
    // Later, idle keys still make room before a table grows.
    let later = 30_000 * 100_000 + 1_000_000_000;
    for k in 1_000..3_000u64 {
        assert!(store.check(&k, later, 1).unwrap().allowed);
    }
    assert!(store.len() < 3_000);
}

#[test]
fn denials_of_new_keys_store_nothing() {
    let store = MemoryStore::<u64, SlidingLog>::new(SlidingLog::new(Quota::per_second(1).unwrap()));
    assert!(store.check(&1, 0, 2).is_err());
    assert!(store.check(&1, 0, 0).unwrap().allowed);
    assert!(store.is_empty());
}

#[test]
fn a_throttled_key_outlives_a_flood_of_new_ones() {
    for at_capacity in [AtCapacity::Deny, AtCapacity::EvictOldest] {
        let capacity = Capacity {
            at_capacity,
            ..Capacity::keys(1_000)
        };
        let quota = Quota::new(5, Duration::from_secs(60)).unwrap();
        let store = MemoryStore::<u64, Gcra>::with_capacity(Gcra::new(quota), capacity).unwrap();
        let attacker = u64::MAX;
        for _ in 0..5 {
            assert!(store.check(&attacker, 0, 1).unwrap().allowed);
        }
        assert!(!store.check(&attacker, 0, 1).unwrap().allowed);
        // Ten thousand fresh identities, each one request (not idle, not throttled).
        for k in 0..10_000u64 {
            assert!(store.check(&k, k * 1_000, 1).unwrap().allowed);
            assert!(store.len() <= store.max_keys());
        }
        assert!(!store.check(&attacker, 10 * SECOND, 1).unwrap().allowed);
        let stats = store.stats();
        assert!(stats.evicted_forced >= 9_000, "{stats:?}");
        assert_eq!((stats.evicted_throttled, stats.refused), (0, 0));
    }
}

#[test]
fn deny_refuses_new_keys_while_every_key_is_throttled() {
    let capacity = Capacity {
        at_capacity: AtCapacity::Deny,
        ..Capacity::keys(64)
    };
    let store =
        MemoryStore::<u64, Gcra>::with_capacity(Gcra::new(Quota::per_second(1).unwrap()), capacity)
            .unwrap();
    let mut refused = 0;
    for k in 0..200u64 {
        match store.check(&k, 0, 1) {
            Ok(d) => assert!(d.allowed),
            Err(e) => {
                assert!(e.is_at_capacity() && !e.is_store_failure(), "{e}");
                refused += 1;
            }
        }
    }
    assert_eq!(store.len(), store.max_keys());
    assert_eq!(refused, 200 - store.max_keys() as u64);
    assert_eq!(store.stats().refused, refused);
    // Every key held is still throttled; a second later they are idle and make room.
    assert!(!store.check(&0, 0, 1).unwrap().allowed);
    assert!(store.check(&1_000, SECOND, 1).unwrap().allowed);
}

#[test]
fn keys_in_use_go_least_recently_used_first() {
    // One shard of 64 keys, ten requests a minute each: after one request a key is
    // neither idle nor throttled.
    let quota = Quota::new(10, Duration::from_secs(60)).unwrap();
    let store = MemoryStore::<u64, Gcra>::with_max_keys(Gcra::new(quota), 64);
    for k in 0..64u64 {
        assert!(store.check(&k, 0, 1).unwrap().allowed);
    }
    // Keys 0..32 are used again two seconds later; then a newcomer needs room.
    for k in 0..32u64 {
        assert_eq!(store.check(&k, 2 * SECOND, 1).unwrap().remaining, 8);
    }
    assert!(store.check(&1_000, 3 * SECOND, 1).unwrap().allowed);
    assert!(store.len() <= 64);
    assert!(store.stats().evicted_forced > 0);
    // The recently used kept their state (a third request leaves 7).
    for k in 0..32u64 {
        assert_eq!(
            store.check(&k, 3 * SECOND, 1).unwrap().remaining,
            7,
            "key {k}"
        );
    }
}

#[test]
fn the_byte_budget_bounds_a_sliding_logs_memory() {
    let quota = Quota::new(1_000, Duration::from_secs(60)).unwrap();
    let log = SlidingLog::new(quota);
    let one = bytes_per_key::<u64, SlidingLog>(&log);
    assert!(one >= 16 * 1_000, "{one}");
    let too_small = Capacity {
        max_bytes: Some(one - 1),
        ..Capacity::keys(1_000)
    };
    let err = MemoryStore::<u64, SlidingLog>::with_capacity(log.clone(), too_small).unwrap_err();
    assert!(err.to_string().contains("cannot hold one key"), "{err}");
    assert!(err.is_invalid_capacity(), "{err}");
    let budget = 20 * one;
    let capacity = Capacity {
        max_bytes: Some(budget),
        ..Capacity::keys(1_000)
    };
    let store = MemoryStore::<u64, SlidingLog>::with_capacity(log, capacity).unwrap();
    // Fill every key's log to the limit, over many keys.
    for k in 0..100u64 {
        for i in 0..1_000 {
            let _ = store.check(&k, k * SECOND + i, 1);
        }
        assert!(store.charged_bytes() <= budget);
        assert!(store.stats().bytes <= budget, "{:?}", store.stats());
    }
    assert!(store.len() <= 20);
}
