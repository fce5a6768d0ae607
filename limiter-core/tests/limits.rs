//! Several limits on one request, in memory: on random sets and timelines the set
//! decides exactly as its limits alone would on what it admitted (all-or-nothing: a
//! refused request spends nothing), and each limit keeps its envelope; under
//! concurrency, no request spends from one limit without the others, and two sets
//! sharing a limit (a global one) lock in one order without deadlock.

#![allow(clippy::unwrap_used)]

#[path = "common/envelope.rs"]
mod envelope;
#[path = "common/limits.rs"]
mod limits;

use std::sync::Barrier;
use std::time::Duration;

use limiter_core::limits::{Limit, LimitSet, MultiLimiter};
use limiter_core::{Kind, ManualClock, Policy, Quota};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_set_decides_all_or_nothing_like_its_limits_alone((policies, arrivals) in limits::case()) {
        let clock = ManualClock::new();
        let multi = MultiLimiter::memory(limits::set(&policies, "/r"), clock.clone());
        let expected = limits::model(&policies, &arrivals);
        let mut admitted = Vec::new();
        for (i, (&(t, cost), want)) in arrivals.iter().zip(&expected).enumerate() {
            clock.set(t);
            let got = multi.decide_now("user", cost).unwrap();
            match (got, want) {
                (Err(e), None) => prop_assert!(e.is_cost_exceeds_capacity()),
                (Ok(v), Some(want)) => {
                    limits::matches_model(&v.decision, want, cost)
                        .map_err(|e| TestCaseError::fail(format!("arrival {i} {:?}: {e}", arrivals[i])))?;
                    if v.decision.allowed {
                        admitted.push((t, cost));
                    }
                }
                (got, want) => prop_assert!(false, "arrival {i}: {got:?} vs {want:?}"),
            }
        }
        for p in &policies {
            envelope::check(p, &admitted).map_err(TestCaseError::fail)?;
        }
    }
}

#[test]
fn retry_after_is_the_longest_wait_among_the_refusing_limits() {
    let clock = ManualClock::new();
    let sec = Duration::from_secs(1);
    let fast = Limit::new(
        "fast",
        "a",
        Policy::new(Kind::Gcra, Quota::per_second(1).unwrap()),
        10,
    );
    let slow = Limit::new(
        "slow",
        "b",
        Policy::new(Kind::FixedWindow, Quota::new(1, 60 * sec).unwrap()),
        10,
    );
    let roomy = Limit::new(
        "roomy",
        "c",
        Policy::new(Kind::SlidingLog, Quota::per_second(100).unwrap()),
        10,
    );
    let multi = MultiLimiter::memory(LimitSet::new(vec![fast, slow, roomy]).unwrap(), clock);
    assert!(multi.decide_now("k", 1).unwrap().unwrap().decision.allowed);
    let refused = multi.decide_now("k", 1).unwrap().unwrap().decision;
    assert!(!refused.allowed);
    assert_eq!(refused.refusing().collect::<Vec<_>>(), [0, 1]);
    assert_eq!(refused.decisions()[0].retry_after, sec);
    assert_eq!(refused.decisions()[1].retry_after, 60 * sec);
    assert_eq!(refused.combined().retry_after, 60 * sec);
    assert_eq!(refused.combined().limit, 1);
    // The roomy limit would have admitted: it reports 99 left, not 98.
    assert!(refused.decisions()[2].allowed);
    assert_eq!(refused.decisions()[2].remaining, 99);
}

#[test]
fn sets_refuse_what_they_cannot_hold() {
    let p = Policy::new(Kind::Gcra, Quota::per_second(5).unwrap());
    let a = Limit::new("a", "x a", p, 10);
    assert!(LimitSet::new(vec![]).is_err());
    assert!(LimitSet::new(vec![a.clone(), a.clone()]).is_err());
    assert!(LimitSet::new(vec![a.clone(), Limit::new("a", "x b", p, 10)]).is_err());
    let set = LimitSet::new(vec![
        a,
        Limit::new(
            "b",
            "x b",
            Policy::new(Kind::FixedWindow, Quota::per_second(3).unwrap()),
            10,
        ),
    ])
    .unwrap();
    assert_eq!(set.capacity(), 3);
    let multi = MultiLimiter::memory(set, ManualClock::new());
    assert!(
        multi
            .decide_now("k", 4)
            .unwrap()
            .unwrap_err()
            .is_cost_exceeds_capacity()
    );
}

/// A set whose limits are listed against their lock order (the second was created
/// first, as a global limit usually is) answers each limit's decision in the set's
/// order, not the order the locks were taken in.
#[test]
fn decisions_come_back_in_the_sets_order_whatever_the_lock_order() {
    let hour = Duration::from_secs(3600);
    let early = Limit::new(
        "burst",
        "early burst",
        Policy::new(Kind::Gcra, Quota::bucket(2, 1.0).unwrap()),
        10,
    );
    let late = Limit::new(
        "hourly",
        "late hourly",
        Policy::new(Kind::FixedWindow, Quota::new(5, hour).unwrap()),
        10,
    );
    let multi = MultiLimiter::memory(
        LimitSet::new(vec![late, early]).unwrap(),
        ManualClock::new(),
    );
    let decide = || multi.decide_now("k", 1).unwrap().unwrap().decision;
    let first = decide();
    assert!(first.allowed);
    let [hourly, burst] = first.decisions() else {
        panic!("two decisions");
    };
    assert_eq!((hourly.limit, hourly.remaining), (5, 4));
    assert_eq!((burst.limit, burst.remaining), (2, 1));
    assert!(decide().allowed);
    // The burst refuses the third; the hourly limit would have admitted it, unspent.
    let third = decide();
    assert!(!third.allowed);
    assert_eq!(third.refusing().collect::<Vec<_>>(), vec![1]);
    assert_eq!(third.decisions()[0].remaining, 3);
    assert!(third.decisions()[0].allowed && !third.decisions()[1].allowed);
}

/// Two sets share a global limit, each with a limit of its own; the global limit was
/// created between them, so their lock orders interleave. Many threads on both sets at
/// one instant: each limit's spent allowance equals exactly what its sets admitted.
#[test]
fn concurrent_requests_never_spend_from_one_limit_alone() {
    let hour = Duration::from_secs(3600);
    let clock = ManualClock::new();
    let own_a = Limit::new(
        "own",
        "/a own",
        Policy::new(Kind::TokenBucket, Quota::bucket(700, 0.001).unwrap()),
        100,
    );
    let global = Limit::new(
        "global",
        "global",
        Policy::new(Kind::FixedWindow, Quota::new(1_000, hour).unwrap()),
        100,
    );
    let own_b = Limit::new(
        "own",
        "/b own",
        Policy::new(Kind::SlidingLog, Quota::new(600, hour).unwrap()),
        100,
    );
    let a = MultiLimiter::memory(
        LimitSet::new(vec![own_a, global.clone()]).unwrap(),
        clock.clone(),
    );
    let b = MultiLimiter::memory(LimitSet::new(vec![global, own_b]).unwrap(), clock.clone());
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
                        if set
                            .decide_now("user", cost)
                            .unwrap()
                            .unwrap()
                            .decision
                            .allowed
                        {
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
    // What each limit has left (a request of cost 0 reads without spending).
    let left_a = a.decide_now("user", 0).unwrap().unwrap().decision;
    let left_b = b.decide_now("user", 0).unwrap().unwrap().decision;
    assert_eq!(700 - left_a.decisions()[0].remaining, sum_a);
    assert_eq!(1_000 - left_a.decisions()[1].remaining, sum_a + sum_b);
    assert_eq!(600 - left_b.decisions()[1].remaining, sum_b);
    // The shared limit ran out: contention was real.
    assert!(sum_a + sum_b > 900, "{sum_a} + {sum_b}");
}
