//! Property tests: on random arrivals and costs, no algorithm ever admits more than
//! its envelope, and every retry-after is honest (retrying exactly then succeeds,
//! a nanosecond earlier does not).

#![allow(clippy::unwrap_used)]

mod common;

use common::envelope;
use limiter_core::algorithm::{FixedWindow, Gcra, SlidingLog, SlidingWindow, TokenBucket};
use limiter_core::{Algorithm, Error, Kind, Nanos, Policy, Quota};
use proptest::prelude::*;
use std::time::Duration;

/// A random policy: 1–20 per 1 µs–10 s, burst 1–30.
fn policy(kind: Kind) -> impl Strategy<Value = Policy> {
    (1u64..=20, 1u64..=10_000_000, 1u64..=30).prop_map(move |(limit, period_us, burst)| {
        let q = Quota::new(limit, Duration::from_micros(period_us))
            .and_then(|q| q.with_burst(burst))
            .expect("valid quota");
        Policy::new(kind, q)
    })
}

/// Random arrivals for a policy: gaps from zero (bursts) to a few periods, costs from
/// 1 to a little above what the policy admits at once.
fn arrivals(p: Policy) -> impl Strategy<Value = Vec<(Nanos, u64)>> {
    let period = p.quota.period_nanos();
    let per_unit = (period / p.quota.limit()).max(1);
    let max_cost = p.quota.burst().max(p.quota.limit()) + 1;
    let gap = prop_oneof![
        3 => Just(0u64),
        4 => 0..per_unit * 2,
        2 => 0..period * 3,
        1 => Just(per_unit),
    ];
    let cost = prop_oneof![8 => Just(1u64), 2 => 1..=max_cost];
    prop::collection::vec((gap, cost), 1..300).prop_map(|v| {
        let mut now = 0;
        v.into_iter()
            .map(|(g, c)| {
                now += g;
                (now, c)
            })
            .collect()
    })
}

/// Plays `arrivals` against a fresh state; returns what was admitted.
fn play<A: Algorithm>(p: &Policy, arrivals: &[(Nanos, u64)]) -> Result<Vec<(Nanos, u64)>, String> {
    let alg = A::new(p.quota);
    let state = alg.new_state();
    let capacity = match p.kind {
        Kind::TokenBucket | Kind::Gcra => p.quota.burst(),
        _ => p.quota.limit(),
    };
    let mut admitted = Vec::new();
    for &(t, c) in arrivals {
        match alg.check(&state, t, c) {
            Ok(d) => {
                if d.allowed {
                    admitted.push((t, c));
                }
                if d.remaining > capacity {
                    return Err(format!(
                        "remaining {} above capacity {capacity}",
                        d.remaining
                    ));
                }
            }
            Err(Error::CostExceedsCapacity {
                cost,
                capacity: cap,
            }) => {
                if cost <= cap || cap != capacity {
                    return Err(format!("cost {cost} refused with capacity {cap}"));
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(admitted)
}

fn within_envelope<A: Algorithm>(
    p: Policy,
    arrivals: Vec<(Nanos, u64)>,
) -> Result<(), TestCaseError> {
    let admitted = play::<A>(&p, &arrivals).map_err(TestCaseError::fail)?;
    envelope::check(&p, &admitted).map_err(|e| TestCaseError::fail(format!("{p:?}: {e}")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn token_bucket_keeps_its_envelope((p, a) in policy(Kind::TokenBucket).prop_flat_map(|p| (Just(p), arrivals(p)))) {
        within_envelope::<TokenBucket>(p, a)?;
    }

    #[test]
    fn gcra_keeps_its_envelope((p, a) in policy(Kind::Gcra).prop_flat_map(|p| (Just(p), arrivals(p)))) {
        within_envelope::<Gcra>(p, a)?;
    }

    #[test]
    fn fixed_window_keeps_its_envelope((p, a) in policy(Kind::FixedWindow).prop_flat_map(|p| (Just(p), arrivals(p)))) {
        within_envelope::<FixedWindow>(p, a)?;
    }

    #[test]
    fn sliding_log_keeps_its_envelope((p, a) in policy(Kind::SlidingLog).prop_flat_map(|p| (Just(p), arrivals(p)))) {
        within_envelope::<SlidingLog>(p, a)?;
    }

    #[test]
    fn sliding_window_keeps_its_envelope((p, a) in policy(Kind::SlidingWindow).prop_flat_map(|p| (Just(p), arrivals(p)))) {
        within_envelope::<SlidingWindow>(p, a)?;
    }

    /// Token bucket and GCRA are two views of one algorithm: on the same arrivals, with
    /// an emission interval that is a whole number of nanoseconds, they decide alike.
    #[test]
    fn token_bucket_and_gcra_agree((p, a) in policy(Kind::Gcra).prop_flat_map(|p| (Just(p), arrivals(p)))) {
        prop_assume!(p.quota.period_nanos() % p.quota.limit() == 0);
        let tb = play::<TokenBucket>(&p, &a).map_err(TestCaseError::fail)?;
        let gcra = play::<Gcra>(&p, &a).map_err(TestCaseError::fail)?;
        prop_assert_eq!(tb, gcra);
    }

    #[test]
    fn retry_after_is_honest_token_bucket((p, a) in policy(Kind::TokenBucket).prop_flat_map(|p| (Just(p), arrivals(p)))) {
        let alg = TokenBucket::new(p.quota);
        honest(&a, 0u64, |s, t, c| alg.decide(*s, t, c))?;
    }

    #[test]
    fn retry_after_is_honest_gcra((p, a) in policy(Kind::Gcra).prop_flat_map(|p| (Just(p), arrivals(p)))) {
        let alg = Gcra::new(p.quota);
        honest(&a, 0u64, |s, t, c| alg.decide(*s, t, c))?;
    }

    #[test]
    fn retry_after_is_honest_fixed_window((p, a) in policy(Kind::FixedWindow).prop_flat_map(|p| (Just(p), arrivals(p)))) {
        let alg = FixedWindow::new(p.quota);
        honest(&a, 0u64, |s, t, c| alg.decide(*s, t, c))?;
    }

    #[test]
    fn retry_after_is_honest_sliding_window((p, a) in policy(Kind::SlidingWindow).prop_flat_map(|p| (Just(p), arrivals(p)))) {
        let alg = SlidingWindow::new(p.quota);
        honest(&a, Default::default(), |s, t, c| alg.decide(*s, t, c))?;
    }

    #[test]
    fn retry_after_is_honest_sliding_log((p, a) in policy(Kind::SlidingLog).prop_flat_map(|p| (Just(p), arrivals(p)))) {
        let alg = SlidingLog::new(p.quota);
        honest(&a, Default::default(), |s: &limiter_core::algorithm::Log, t, c| {
            let mut next = s.clone();
            let d = alg.decide(&mut next, t, c)?;
            Ok((d, d.allowed.then_some(next)))
        })?;
    }
}

/// Plays `arrivals` on a copyable state; at every denial, checks that the same request
/// is admitted exactly `retry_after` later and denied one nanosecond before.
fn honest<S: Clone>(
    arrivals: &[(Nanos, u64)],
    mut state: S,
    decide: impl Fn(&S, Nanos, u64) -> limiter_core::Result<(limiter_core::Decision, Option<S>)>,
) -> Result<(), TestCaseError> {
    for &(t, c) in arrivals {
        let Ok((d, next)) = decide(&state, t, c) else {
            continue;
        };
        if let Some(next) = next {
            state = next;
            continue;
        }
        let wait = d.retry_after.as_nanos() as Nanos;
        prop_assert!(wait > 0, "denied at {t} with no wait");
        let (later, _) =
            decide(&state, t + wait, c).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(
            later.allowed,
            "denied at {t} cost {c}: retry after {wait} ns still denied"
        );
        let (early, _) =
            decide(&state, t + wait - 1, c).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(
            !early.allowed,
            "denied at {t} cost {c}: admitted 1 ns before retry-after {wait} ns"
        );
    }
    Ok(())
}
