//! In-flight (concurrency) limits in memory: at most N requests of a key hold a slot at
//! once, a permit's drop gives its slot back (no release lost under many threads), and
//! an in-flight limit composes with rate limits all-or-nothing.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use limiter_core::limits::{
    Admission, InFlight, Limit, LimitSet, MultiLimiter, Permit, RETRY_AFTER,
};
use limiter_core::{Kind, ManualClock, Policy, Quota};

fn in_flight(n: u64) -> Limit {
    Limit::in_flight("slots", "slots", InFlight::new(n).unwrap(), 10_000)
}

fn set(limits: Vec<Limit>) -> MultiLimiter<ManualClock> {
    MultiLimiter::memory(LimitSet::new(limits).unwrap(), ManualClock::new())
}

fn acquire(limiter: &MultiLimiter<ManualClock>, key: &str) -> Admission {
    limiter.acquire_now(key, 1).unwrap().unwrap()
}

#[test]
fn n_requests_hold_slots_the_next_is_refused_until_one_ends() {
    let limit = in_flight(3);
    let limiter = set(vec![limit.clone()]);
    let held: Vec<Permit> = (0..3)
        .map(|i| {
            let a = acquire(&limiter, "alice");
            assert!(a.verdict.decision.allowed, "request {i}");
            assert_eq!(a.verdict.decision.decisions()[0].remaining, 2 - i);
            a.permit
        })
        .collect();
    let refused = acquire(&limiter, "alice");
    assert!(!refused.verdict.decision.allowed);
    assert!(refused.permit.is_empty(), "a refusal holds nothing");
    assert_eq!(refused.verdict.decision.combined().retry_after, RETRY_AFTER);
    // Keys are apart.
    assert!(acquire(&limiter, "bob").verdict.decision.allowed);
    assert_eq!(limit.in_flight_now("alice"), 3);
    let mut held = held.into_iter();
    drop(held.next());
    assert_eq!(limit.in_flight_now("alice"), 2);
    let again = acquire(&limiter, "alice");
    assert!(again.verdict.decision.allowed);
    drop(again);
    drop(held);
    assert_eq!(limit.in_flight_now("alice"), 0);
    // `decide_now` admits and gives the slot back at once.
    for _ in 0..10 {
        assert!(
            limiter
                .decide_now("alice", 1)
                .unwrap()
                .unwrap()
                .decision
                .allowed
        );
    }
    assert_eq!(limiter.sweep(), 2, "idle keys are forgotten");
}

#[test]
fn composed_with_a_rate_limit_it_is_all_or_nothing() {
    let slots = in_flight(2);
    let rate = Limit::new(
        "burst",
        "burst",
        Policy::new(Kind::TokenBucket, Quota::bucket(3, 1.0).unwrap()),
        10_000,
    );
    let clock = ManualClock::new();
    let limiter = MultiLimiter::memory(
        LimitSet::new(vec![rate.clone(), slots.clone()]).unwrap(),
        clock.clone(),
    );
    let take = || limiter.acquire_now("k", 1).unwrap().unwrap();
    let a = take();
    let b = take();
    assert!(a.verdict.decision.allowed && b.verdict.decision.allowed);
    // The slots are full: refused, and the bucket keeps its third token.
    let c = take();
    assert!(!c.verdict.decision.allowed);
    assert_eq!(c.verdict.decision.refusing().collect::<Vec<_>>(), [1]);
    assert_eq!(c.verdict.decision.decisions()[0].remaining, 1);
    drop(a);
    let d = take();
    assert!(
        d.verdict.decision.allowed,
        "the third token and the freed slot"
    );
    drop((b, d));
    // The bucket is empty: refused, and no slot is taken.
    let e = take();
    assert!(!e.verdict.decision.allowed);
    assert_eq!(e.verdict.decision.refusing().collect::<Vec<_>>(), [0]);
    assert_eq!(e.verdict.decision.decisions()[1].remaining, 2);
    assert_eq!(slots.in_flight_now("k"), 0);
    assert!(e.verdict.decision.combined().retry_after > Duration::ZERO);
    clock.advance(Duration::from_secs(1));
    assert!(take().verdict.decision.allowed);
}

/// Many threads acquire and release at random: never more than N hold a slot at once,
/// every release lands (the count is back to zero), and each request that was refused
/// saw N others holding.
#[test]
fn no_release_is_lost_under_many_threads() {
    const N: u64 = 4;
    const THREADS: usize = 8;
    const ROUNDS: usize = 20_000;
    let limit = in_flight(N);
    let rate = Limit::new(
        "roomy",
        "roomy",
        Policy::new(Kind::Gcra, Quota::bucket(1_000_000_000, 1e9).unwrap()),
        10_000,
    );
    let limiter = Arc::new(MultiLimiter::memory(
        LimitSet::new(vec![rate, limit.clone()]).unwrap(),
        limiter_core::MonotonicClock::new(),
    ));
    let holding = Arc::new(AtomicU64::new(0));
    let most = Arc::new(AtomicU64::new(0));
    let admitted = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (limiter, holding, most, admitted) = (&limiter, &holding, &most, &admitted);
            s.spawn(move || {
                let mut kept: Vec<Permit> = Vec::new();
                for i in 0..ROUNDS {
                    let a = limiter.acquire_now("hot", 1).unwrap().unwrap();
                    if a.verdict.decision.allowed {
                        let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        admitted.fetch_add(1, Ordering::Relaxed);
                        kept.push(a.permit);
                    }
                    // Release some of what this thread holds, in a pattern that varies.
                    if ((i + t) % 3 == 0 || kept.len() > 1)
                        && let Some(p) = kept.pop()
                    {
                        holding.fetch_sub(1, Ordering::SeqCst);
                        drop(p);
                    }
                }
                for p in kept {
                    holding.fetch_sub(1, Ordering::SeqCst);
                    drop(p);
                }
            });
        }
    });
    // `holding` is bumped after admission and lowered before release, so it never
    // exceeds the slots actually held.
    assert!(most.load(Ordering::SeqCst) <= N, "{most:?}");
    assert!(
        admitted.load(Ordering::Relaxed) > ROUNDS,
        "the slots were used"
    );
    assert_eq!(limit.in_flight_now("hot"), 0, "every release landed");
    for _ in 0..N {
        std::mem::forget(limiter.acquire_now("hot", 1).unwrap().unwrap().permit);
    }
    assert!(
        !limiter
            .decide_now("hot", 1)
            .unwrap()
            .unwrap()
            .decision
            .allowed
    );
}
