//! Property tests: on random arrivals and costs, no algorithm ever admits more than
//! its envelope, and every retry-after is honest (retrying exactly then succeeds,
//! a nanosecond earlier does not). Every case runs every algorithm of [`Kind::ALL`].

#![allow(clippy::unwrap_used)]

mod common;

use common::edges::{edge_arrivals, edge_quotas};
use common::envelope;
use limiter_core::algorithm::Visit;
use limiter_core::{Algorithm, Kind, Nanos, Policy, Quota};
use proptest::prelude::*;
use std::time::Duration;

/// A random quota: 1–20 per 1 µs–10 s, burst 1–30.
fn quota() -> impl Strategy<Value = Quota> {
    (1u64..=20, 1u64..=10_000_000, 1u64..=30).prop_map(|(limit, period_us, burst)| {
        Quota::new(limit, Duration::from_micros(period_us))
            .and_then(|q| q.with_burst(burst))
            .expect("valid quota")
    })
}

/// Random arrivals for a quota: gaps from zero (bursts) to a few periods, costs from
/// 1 to a little above what the policy admits at once.
fn arrivals(q: Quota) -> impl Strategy<Value = Vec<(Nanos, u64)>> {
    let period = q.period_nanos();
    let per_unit = (period / q.limit()).max(1);
    let max_cost = q.burst().max(q.limit()) + 1;
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

fn case() -> impl Strategy<Value = (Quota, Vec<(Nanos, u64)>)> {
    quota().prop_flat_map(|q| (Just(q), arrivals(q)))
}

/// Plays `arrivals` against a fresh state of `p`'s algorithm; returns what was admitted.
struct Play<'a>(&'a Policy, &'a [(Nanos, u64)]);

impl Visit for Play<'_> {
    type Output = Result<Vec<(Nanos, u64)>, String>;

    fn visit<A: Algorithm>(self) -> Self::Output {
        let Play(p, arrivals) = self;
        let alg = A::from_policy(p);
        let mut state = alg.fresh();
        let capacity = p.capacity();
        let mut admitted = Vec::new();
        for &(t, c) in arrivals {
            match alg.step(&mut state, t, c) {
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
                Err(e) => match e.cost_and_capacity() {
                    Some((cost, cap)) => {
                        if cost <= cap || cap != capacity {
                            return Err(format!("cost {cost} refused with capacity {cap}"));
                        }
                    }
                    None => return Err(e.to_string()),
                },
            }
        }
        Ok(admitted)
    }
}

fn play(p: &Policy, arrivals: &[(Nanos, u64)]) -> Result<Vec<(Nanos, u64)>, String> {
    p.kind.visit(Play(p, arrivals))
}

/// Plays `arrivals` on a plain state; at every denial, checks on a copy of the state
/// that the same request is admitted exactly `retry_after` later and denied one
/// nanosecond before.
struct Honest<'a>(&'a Policy, &'a [(Nanos, u64)]);

impl Visit for Honest<'_> {
    type Output = Result<(), String>;

    fn visit<A: Algorithm>(self) -> Self::Output {
        let Honest(p, arrivals) = self;
        let alg = A::from_policy(p);
        let mut state = alg.fresh();
        let decide = |s: &A::State, t, c| {
            let mut copy = s.clone();
            alg.step(&mut copy, t, c)
                .map(|d| (d, copy))
                .map_err(|e| e.to_string())
        };
        for &(t, c) in arrivals {
            let Ok((d, next)) = decide(&state, t, c) else {
                continue;
            };
            if d.allowed {
                state = next;
                continue;
            }
            let wait = d.retry_after.as_nanos() as Nanos;
            if wait == 0 {
                return Err(format!("denied at {t} with no wait"));
            }
            if !decide(&state, t + wait, c)?.0.allowed {
                return Err(format!(
                    "denied at {t} cost {c}: retry after {wait} ns still denied"
                ));
            }
            if decide(&state, t + wait - 1, c)?.0.allowed {
                return Err(format!(
                    "denied at {t} cost {c}: admitted 1 ns before retry-after {wait} ns"
                ));
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_algorithm_keeps_its_envelope((q, a) in case()) {
        for kind in Kind::ALL {
            let p = Policy::new(kind, q);
            let admitted = play(&p, &a).map_err(|e| TestCaseError::fail(format!("{p:?}: {e}")))?;
            envelope::check(&p, &admitted).map_err(|e| TestCaseError::fail(format!("{p:?}: {e}")))?;
        }
    }

    /// Token bucket and GCRA are two views of one algorithm: on the same arrivals, with
    /// an emission interval that is a whole number of nanoseconds, they decide alike.
    #[test]
    fn token_bucket_and_gcra_agree((q, a) in case()) {
        prop_assume!(q.period_nanos() % q.limit() == 0);
        let tb = play(&Policy::new(Kind::TokenBucket, q), &a).map_err(TestCaseError::fail)?;
        let gcra = play(&Policy::new(Kind::Gcra, q), &a).map_err(TestCaseError::fail)?;
        prop_assert_eq!(tb, gcra);
    }

    #[test]
    fn every_retry_after_is_honest((q, a) in case()) {
        for kind in Kind::ALL {
            let p = Policy::new(kind, q);
            p.kind.visit(Honest(&p, &a)).map_err(|e| TestCaseError::fail(format!("{p:?}: {e}")))?;
        }
    }
}

/// Every algorithm at the edges of the quotas: no arithmetic overflows (tests run with
/// overflow checks), the full capacity is admitted at once from a fresh key, the
/// envelope holds and every retry-after is exact.
#[test]
fn every_algorithm_at_the_edges_of_the_quota() {
    for q in edge_quotas() {
        for kind in Kind::ALL {
            let p = Policy::new(kind, q);
            let arrivals = edge_arrivals(&q, p.capacity());
            let admitted = play(&p, &arrivals).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            assert_eq!(admitted.first(), Some(&arrivals[0]), "{p:?}");
            envelope::check(&p, &admitted).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            p.kind
                .visit(Honest(&p, &arrivals))
                .unwrap_or_else(|e| panic!("{p:?}: {e}"));
        }
    }
}
