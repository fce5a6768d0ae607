//! A set's limits in one table of rows (one lookup, one lock per request), and what
//! that layout must not change: a limit shared between sets (a global one) counts
//! once whichever rows hold it; a reload that keeps a limit keeps every key's state
//! while a changed limit beside it starts fresh; decisions across several tables stay
//! all-or-nothing under concurrency.

#![allow(clippy::unwrap_used)]

use std::sync::Barrier;
use std::time::Duration;

use limiter_core::limits::{self, Limit, LimitSet, MultiLimiter};
use limiter_core::{Kind, ManualClock, Policy, Quota};

const HOUR: Duration = Duration::from_secs(3600);

fn fixed(n: u64) -> Policy {
    Policy::new(Kind::FixedWindow, Quota::new(n, HOUR).unwrap())
}

fn gcra(burst: u64) -> Policy {
    Policy::new(Kind::Gcra, Quota::bucket(burst, 0.001).unwrap())
}

fn allowed(m: &MultiLimiter<ManualClock>, key: &str) -> bool {
    m.decide_now(key, 1).unwrap().unwrap().decision.allowed
}

/// What each limit of `m` has left for `key` (a request of cost 0 spends nothing).
fn left(m: &MultiLimiter<ManualClock>, key: &str) -> Vec<u64> {
    let d = m.decide_now(key, 0).unwrap().unwrap().decision;
    d.decisions().iter().map(|d| d.remaining).collect()
}

#[test]
fn a_sets_own_limits_share_one_lookup_and_a_placed_global_limit_its_own() {
    let clock = ManualClock::new();
    let global = Limit::new("global", "global", fixed(4), 100);
    limits::place_together(std::slice::from_ref(&global));
    let burst_a = Limit::new("burst", "/a burst", gcra(10), 100);
    let hourly_a = Limit::new("hourly", "/a hourly", fixed(10), 100);
    let own_b = Limit::new("own", "/b own", fixed(10), 100);
    let a = LimitSet::new(vec![burst_a.clone(), hourly_a.clone(), global.clone()]).unwrap();
    let b = LimitSet::new(vec![global.clone(), own_b.clone()]).unwrap();
    assert_eq!((a.lookups(), b.lookups()), (2, 2));
    assert!(burst_a.shares_rows_with(&hourly_a));
    assert!(!burst_a.shares_rows_with(&global) && !own_b.shares_rows_with(&global));
    let a = MultiLimiter::memory(a, clock.clone());
    let b = MultiLimiter::memory(b, clock.clone());
    // The global limit counts both routes' requests once each.
    assert!(allowed(&a, "u") && allowed(&b, "u") && allowed(&a, "u") && allowed(&b, "u"));
    assert!(!allowed(&a, "u") && !allowed(&b, "u"));
    // The refusals spent nothing of the routes' own limits.
    assert_eq!(left(&a, "u"), [8, 8, 0]);
    assert_eq!(left(&b, "u"), [0, 8]);
    // Another identity has its own rows everywhere.
    assert!(allowed(&b, "v"));
    assert_eq!(left(&a, "v"), [10, 10, 3]);
    // Keys counted once per table: a's rows and the global's.
    assert_eq!(limits::memory_keys(a.set().limits()), 2 + 2);
}

#[test]
fn a_global_limit_left_in_the_first_sets_rows_still_counts_once() {
    let clock = ManualClock::new();
    let global = Limit::new("global", "global", fixed(3), 100);
    let own_a = Limit::new("own", "/a own", fixed(10), 100);
    let own_b = Limit::new("own", "/b own", fixed(10), 100);
    // Not placed first: it lands in a's rows, and b finds it there.
    let a = LimitSet::new(vec![own_a.clone(), global.clone()]).unwrap();
    let b = LimitSet::new(vec![own_b, global.clone()]).unwrap();
    assert!(own_a.shares_rows_with(&global));
    assert_eq!((a.lookups(), b.lookups()), (1, 2));
    let a = MultiLimiter::memory(a, clock.clone());
    let b = MultiLimiter::memory(b, clock.clone());
    assert!(allowed(&b, "u") && allowed(&b, "u") && allowed(&a, "u"));
    assert!(!allowed(&a, "u") && !allowed(&b, "u"));
    // b's requests went through a's rows without spending a's own limit.
    assert_eq!(left(&a, "u"), [9, 0]);
    assert_eq!(left(&b, "u"), [8, 0]);
}

/// A reload keeps the limits whose definition did not change (the same `Limit`) and
/// builds the changed one anew: the kept one's every key keeps its state although the
/// set's limits now live in two tables, the new one starts full, and a refusal by
/// either spends from neither.
#[test]
fn a_reload_that_changes_one_limit_keeps_every_key_of_the_others() {
    let clock = ManualClock::new();
    let burst = Limit::new("burst", "/r burst", gcra(2), 100);
    let hourly = Limit::new("hourly", "/r hourly", fixed(100), 100);
    let before = MultiLimiter::memory(
        LimitSet::new(vec![burst.clone(), hourly.clone()]).unwrap(),
        clock.clone(),
    );
    for key in ["k1", "k2"] {
        assert!(allowed(&before, key) && allowed(&before, key));
        assert!(!allowed(&before, key), "{key}: the burst is spent");
    }
    assert!(allowed(&before, "k3"));
    // The reload: same burst, a new hourly limit of 2.
    let hourly2 = Limit::new("hourly", "/r hourly", fixed(2), 100);
    let after = LimitSet::new(vec![burst.clone(), hourly2.clone()]).unwrap();
    assert_eq!(after.lookups(), 2);
    assert!(!burst.shares_rows_with(&hourly2));
    let after = MultiLimiter::memory(after, clock.clone());
    for key in ["k1", "k2"] {
        assert!(!allowed(&after, key), "{key} kept its spent burst");
        assert_eq!(
            left(&after, key),
            [0, 2],
            "{key}: nothing spent by the refusal"
        );
    }
    // k3 kept its one spent unit: one left in the burst, the new hourly full.
    assert_eq!(left(&after, "k3"), [1, 2]);
    assert!(allowed(&after, "k3") && !allowed(&after, "k3"));
    assert_eq!(left(&after, "k3"), [0, 1]);
    // A key the new hourly limit refuses spends nothing from the kept burst.
    assert!(allowed(&after, "k4") && allowed(&after, "k4"));
    clock.advance(Duration::from_secs(3_000)); // the burst refills (1 per 1,000 s)
    assert_eq!(left(&after, "k4"), [2, 0]);
    assert!(!allowed(&after, "k4"));
    assert_eq!(left(&after, "k4"), [2, 0]);
    // The old rows still carry the dropped limit's slot; once every slot of a row is
    // idle the row goes.
    clock.advance(HOUR * 2);
    assert!(after.sweep() > 0);
    assert_eq!(limits::memory_keys(after.set().limits()), 0);
}

/// Two sets with a limit of their own and a shared one, each in rows of its own, with
/// ranks that make the sets lock the shared rows second (a) and first (b): many threads
/// on both at one instant, and each limit's spent allowance is exactly what its sets
/// admitted (no request spent from one table without the other, no deadlock).
#[test]
fn concurrent_requests_across_tables_spend_all_or_nothing() {
    let clock = ManualClock::new();
    let own_a = Limit::new("own", "/a own", gcra(700), 100);
    limits::place_together(std::slice::from_ref(&own_a));
    let global = Limit::new("global", "global", fixed(1_000), 100);
    limits::place_together(std::slice::from_ref(&global));
    let own_b = Limit::new(
        "own",
        "/b own",
        Policy::new(Kind::SlidingLog, Quota::new(600, HOUR).unwrap()),
        100,
    );
    let a = LimitSet::new(vec![own_a, global.clone()]).unwrap();
    let b = LimitSet::new(vec![global, own_b]).unwrap();
    assert_eq!((a.lookups(), b.lookups()), (2, 2));
    let a = MultiLimiter::memory(a, clock.clone());
    let b = MultiLimiter::memory(b, clock.clone());
    let threads = 4;
    let barrier = Barrier::new(threads);
    let (sum_a, sum_b) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (a, b, barrier) = (&a, &b, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let (mut got_a, mut got_b) = (0u64, 0u64);
                    for j in 0..1_500u64 {
                        let cost = 1 + (i as u64 + j) % 3;
                        let (set, got) = if (i + j as usize).is_multiple_of(2) {
                            (a, &mut got_a)
                        } else {
                            (b, &mut got_b)
                        };
                        let d = set.decide_now("user", cost).unwrap().unwrap();
                        if d.decision.allowed {
                            *got += cost;
                        }
                    }
                    (got_a, got_b)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0), |(x, y), (a, b)| (x + a, y + b))
    });
    let (left_a, left_b) = (left(&a, "user"), left(&b, "user"));
    assert_eq!(700 - left_a[0], sum_a);
    assert_eq!(1_000 - left_a[1], sum_a + sum_b);
    assert_eq!(1_000 - left_b[0], sum_a + sum_b);
    assert_eq!(600 - left_b[1], sum_b);
    assert!(
        sum_a + sum_b > 900,
        "contention was real: {sum_a} + {sum_b}"
    );
}
