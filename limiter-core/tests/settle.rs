//! Cost after the decision (reserve, then settle or refund), in memory: on random
//! states and costs, for the token bucket and GCRA,
//! - a settle debits exactly: reserving `r` then settling `r → a` at one instant
//!   answers every later request as a check of cost `a` would have;
//! - a refund returns exactly: reserving then refunding answers every later request as
//!   if nothing had happened;
//! - a negative balance delays admission by the right time: the debt past zero, refilled
//!   at the policy's rate, and the settle's `retry_after` says exactly when;
//! - concurrent settles are atomic: many threads reserving and settling one key leave
//!   the sum of their costs;
//! - the other algorithms refuse to reserve, with an error that says why.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use limiter_core::algorithm::{Gcra, TokenBucket};
use limiter_core::{Algorithm, Kind, ManualClock, Nanos, Policy, Quota, RateLimiter};
use proptest::prelude::*;

const MS: Nanos = 1_000_000;

/// A random quota: 1–20 per 1 µs–10 s, burst 1–30.
fn quota() -> impl Strategy<Value = Quota> {
    (1u64..=20, 1u64..=10_000_000, 1u64..=30).prop_map(|(limit, period_us, burst)| {
        Quota::new(limit, Duration::from_micros(period_us))
            .and_then(|q| q.with_burst(burst))
            .unwrap()
    })
}

/// A random earlier history: checks of cost 1 at instants up to `now`, leaving the key
/// anywhere from full to empty.
fn history() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(0u64..1_000, 0..40)
}

/// Runs `history` (offsets in thousandths of the period) on a fresh state and returns
/// it with the instant it ends.
fn replay<A: Algorithm<State = u64>>(alg: &A, q: Quota, history: &[u64]) -> (u64, Nanos) {
    let mut state = alg.fresh();
    let mut now = 0;
    for &step in history {
        now += q.period_nanos() * step / 1_000;
        let _ = alg.step(&mut state, now, 1);
    }
    (state, now)
}

/// True when two states answer alike: every cost from 1 to the burst, now and at a
/// few later instants.
fn answer_alike<A: Algorithm<State = u64>>(alg: &A, q: Quota, a: u64, b: u64, now: Nanos) -> bool {
    let later = [
        0,
        1,
        q.period_nanos() / 3,
        q.period_nanos(),
        5 * q.period_nanos(),
    ];
    later.iter().all(|&dt| {
        (1..=q.burst()).all(|cost| {
            let (mut x, mut y) = (a, b);
            alg.step(&mut x, now + dt, cost).ok() == alg.step(&mut y, now + dt, cost).ok()
        })
    })
}

macro_rules! for_buckets {
    ($q:expr, |$alg:ident| $body:block) => {{
        {
            let $alg = TokenBucket::new($q);
            $body
        }
        {
            let $alg = Gcra::new($q);
            $body
        }
    }};
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_settle_debits_exactly(q in quota(), h in history(), r in 1u64..=30, a in 0u64..=30) {
        let (r, a) = (r.min(q.burst()), a.min(q.burst()));
        for_buckets!(q, |alg| {
            let (start, now) = replay(&alg, q, &h);
            let (mut settled, mut direct) = (start, start);
            let reserved = alg.step(&mut settled, now, r).unwrap();
            let checked = alg.step(&mut direct, now, a).unwrap();
            if reserved.allowed && (checked.allowed || a == 0) {
                alg.settle(&mut settled, now, r, a).unwrap();
                if a == 0 {
                    direct = start;
                }
                prop_assert!(answer_alike(&alg, q, settled, direct, now), "{}", name(&alg));
            }
        });
    }

    #[test]
    fn a_refund_returns_exactly(q in quota(), h in history(), r in 1u64..=30) {
        let r = r.min(q.burst());
        for_buckets!(q, |alg| {
            let (start, now) = replay(&alg, q, &h);
            let mut state = start;
            if alg.step(&mut state, now, r).unwrap().allowed {
                let balance = alg.settle(&mut state, now, r, 0).unwrap();
                prop_assert!(answer_alike(&alg, q, state, start, now));
                // The balance a settle reports is a check of cost 1 that spends nothing.
                let mut probe = start;
                let d = alg.step(&mut probe, now, 1).unwrap();
                prop_assert_eq!(balance.allowed, d.allowed);
                if !d.allowed {
                    prop_assert_eq!(balance, d);
                }
            }
        });
    }

    /// From a full key, reserve 1 and settle a cost `a` past the burst: the balance is
    /// `burst − a < 0`, and one unit fits again once `a − burst + 1` units refilled —
    /// at the instant the settle's `retry_after` names, not a nanosecond earlier.
    #[test]
    fn a_negative_balance_delays_admission_by_the_refill_of_the_debt(
        q in quota(), over in 0u64..200, now in 0u64..1_000_000_000_000,
    ) {
        for_buckets!(q, |alg| {
            let a = q.burst() + over;
            let mut state = alg.fresh();
            prop_assert!(alg.step(&mut state, now, 1).unwrap().allowed);
            let balance = alg.settle(&mut state, now, 1, a).unwrap();
            // One unit back means `over + 1` units refilled, at limit per period.
            let exact = ((over + 1) as u128 * q.period_nanos() as u128) as f64 / q.limit() as f64;
            let wait = balance.retry_after.as_nanos() as f64;
            prop_assert!(!balance.allowed);
            prop_assert_eq!(balance.remaining, 0);
            // GCRA's interval per unit is rounded up to the nanosecond: up to 1 ns a unit.
            let slack = (a + 2) as f64;
            prop_assert!(wait >= exact - 2.0 && wait <= exact + slack, "wait {} exact {}", wait, exact);
            let retry = balance.retry_after.as_nanos() as u64;
            let mut early = state;
            prop_assert!(!alg.step(&mut early, now + retry - 1, 1).unwrap().allowed);
            let mut on_time = state;
            prop_assert!(alg.step(&mut on_time, now + retry, 1).unwrap().allowed);
        });
    }
}

/// The algorithm's name, for messages.
fn name<A: Algorithm>(_: &A) -> &'static str {
    A::NAME
}

/// Eight threads reserve and settle one key at one instant, each settle its own cost
/// 0–5 (0 a refund): the debt left is exactly the sum of the costs (every settle
/// applied once, none lost to a race), whatever the interleaving.
#[test]
fn concurrent_settles_on_one_key_add_up() {
    for kind in [Kind::TokenBucket, Kind::Gcra] {
        // 1 ms per unit, room for every request at once.
        let quota = Quota::new(1_000, Duration::from_secs(1))
            .and_then(|q| q.with_burst(100_000))
            .unwrap();
        let clock = ManualClock::new();
        clock.set(7 * MS);
        let limiter = Arc::new(RateLimiter::memory(Policy::new(kind, quota), clock, 1_000));
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let limiter = Arc::clone(&limiter);
                std::thread::spawn(move || {
                    let mut sum = 0;
                    for i in 0..500u64 {
                        let actual = (t * 7 + i * 3) % 6;
                        let r = limiter.reserve_now("k", 1).unwrap().unwrap();
                        assert!(r.verdict.decision.allowed);
                        limiter.settle_now("k", &r, actual).unwrap().unwrap();
                        sum += actual;
                    }
                    sum
                })
            })
            .collect();
        let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let probe = limiter.decide_now("k", 1).unwrap().unwrap().decision;
        // The probe spent one more unit: the key is `total + 1` ms from full.
        assert_eq!(
            probe.reset_after,
            Duration::from_millis(total + 1),
            "{kind}"
        );
    }
}

#[test]
fn settle_refuses_the_algorithms_that_cannot_owe() {
    let quota = Quota::per_second(5).unwrap();
    for kind in Kind::ALL {
        let limiter = RateLimiter::memory(Policy::new(kind, quota), ManualClock::new(), 10);
        let reserved = limiter.reserve_now("k", 1).unwrap();
        assert_eq!(reserved.is_ok(), kind.settles(), "{kind}");
        if let Err(e) = reserved {
            assert!(e.is_settle_unsupported() && !e.is_store_failure());
            assert!(e.to_string().contains(kind.name()), "{e}");
            assert!(e.to_string().contains("token-bucket or gcra"), "{e}");
        }
    }
    assert_eq!(
        Kind::ALL
            .into_iter()
            .filter(|k| k.settles())
            .collect::<Vec<_>>(),
        [Kind::TokenBucket, Kind::Gcra]
    );
}

/// A refusal spent nothing, so there is nothing to settle; a refund of an admitted
/// reservation gives the unit back.
#[test]
fn only_admitted_reservations_settle() {
    let quota = Quota::per_second(1).unwrap();
    let clock = ManualClock::new();
    let limiter = RateLimiter::memory(Policy::new(Kind::Gcra, quota), clock, 10);
    let admitted = limiter.reserve_now("k", 1).unwrap().unwrap();
    let refused = limiter.reserve_now("k", 1).unwrap().unwrap();
    assert!(admitted.is_settleable() && !refused.is_settleable());
    assert_eq!(
        limiter.settle_now("k", &refused, 50).unwrap().unwrap(),
        None
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let balance = rt
        .block_on(limiter.refund("k", &admitted))
        .unwrap()
        .unwrap();
    assert!(balance.allowed && balance.remaining == 1);
    assert!(
        limiter
            .reserve_now("k", 1)
            .unwrap()
            .unwrap()
            .verdict
            .decision
            .allowed
    );
}

/// Several limits: a settle moves every limit that settles (the bucket) and leaves the
/// window counter at the reserved cost (it counts requests).
#[test]
fn a_set_settles_its_buckets_and_keeps_its_windows() {
    use limiter_core::Reservation;
    use limiter_core::limits::{Limit, LimitSet, MultiLimiter};
    let bucket = Policy::new(Kind::TokenBucket, Quota::bucket(10, 1.0).unwrap());
    let hourly = Policy::new(
        Kind::FixedWindow,
        Quota::new(100, Duration::from_secs(3600)).unwrap(),
    );
    let set = LimitSet::new(vec![
        Limit::new("tokens", "/llm tokens", bucket, 100),
        Limit::new("hourly", "/llm hourly", hourly, 100),
    ])
    .unwrap();
    let limiter = MultiLimiter::memory(set, ManualClock::new());
    let verdict = limiter.decide_now("acme", 1).unwrap().unwrap();
    let reservation = Reservation::new(verdict.verdict(), 1);
    assert_eq!(
        limiter
            .settle_now("acme", &reservation, 8)
            .unwrap()
            .unwrap(),
        1
    );
    let next = limiter.decide_now("acme", 1).unwrap().unwrap().decision;
    assert!(next.allowed);
    assert_eq!(next.decisions()[0].remaining, 1, "10 − 8 − 1");
    assert_eq!(
        next.decisions()[1].remaining,
        98,
        "two requests of the hour"
    );
    assert!(
        !limiter
            .decide_now("acme", 2)
            .unwrap()
            .unwrap()
            .decision
            .allowed
    );
}
