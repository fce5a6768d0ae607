//! Several limits on one request, shared by the memory and Redis suites: random sets of
//! limits, random timelines, and the model a set must decide exactly like — each limit
//! alone, deciding on what the set admitted so far, all-or-nothing.

#![allow(dead_code)]

use std::time::Duration;

use limiter_core::limiter::MemoryLimiter;
use limiter_core::limits::{Limit, LimitSet, LimitsDecision};
use limiter_core::{Kind, ManualClock, Nanos, Policy, Quota};
use proptest::prelude::*;

/// One random policy of any algorithm, with an emission interval and window of whole
/// microseconds (the Redis scripts count in µs): `limit` per `limit × t` µs, burst 1–12.
pub fn policy() -> impl Strategy<Value = Policy> {
    (0..Kind::ALL.len(), 1u64..=12, 1u64..=200_000, 1u64..=12).prop_map(
        |(k, limit, t_us, burst)| {
            let q = Quota::new(limit, Duration::from_micros(limit * t_us))
                .and_then(|q| q.with_burst(burst))
                .expect("valid quota");
            Policy::new(Kind::ALL[k], q)
        },
    )
}

/// Two or three random policies and a timeline on whole microseconds: bursts, gaps up
/// to a few of the slowest policy's periods, costs 1 to a little above what the
/// smallest limit admits at once.
pub fn case() -> impl Strategy<Value = (Vec<Policy>, Vec<(Nanos, u64)>)> {
    prop::collection::vec(policy(), 2..=3).prop_flat_map(|ps| {
        let period = ps.iter().map(|p| p.quota.period_nanos()).max().unwrap_or(1) / 1_000;
        let unit = ps
            .iter()
            .map(|p| p.quota.period_nanos() / 1_000 / p.quota.limit())
            .min()
            .unwrap_or(1)
            .max(1);
        let most = ps.iter().map(|p| p.capacity()).min().unwrap_or(1) + 1;
        let gap = prop_oneof![3 => Just(0u64), 4 => 0..unit * 2, 2 => 0..period * 2];
        let cost = prop_oneof![8 => Just(1u64), 2 => 1..=most];
        let arrivals =
            (0..period * 5, prop::collection::vec((gap, cost), 1..80)).prop_map(|(start, v)| {
                let mut now = start;
                v.into_iter()
                    .map(|(g, c)| {
                        now += g;
                        (now * 1_000, c)
                    })
                    .collect::<Vec<_>>()
            });
        (Just(ps), arrivals)
    })
}

/// The limits of `policies` as a set named `l0`, `l1`, … under `scope`.
pub fn set(policies: &[Policy], scope: &str) -> LimitSet {
    let limits = policies
        .iter()
        .enumerate()
        .map(|(i, p)| Limit::new(&format!("l{i}"), &format!("{scope} l{i}"), *p, 1_000))
        .collect();
    LimitSet::new(limits).expect("a valid set")
}

/// What the set must answer at each arrival (`None`: a cost some limit never admits):
/// each limit alone, replaying what the set admitted before, then this request; the
/// request admitted when every limit admits it. Returns the answers and, per arrival,
/// whether it was admitted.
pub fn model(
    policies: &[Policy],
    arrivals: &[(Nanos, u64)],
) -> Vec<Option<(bool, Vec<limiter_core::Decision>)>> {
    let mut admitted: Vec<(Nanos, u64)> = Vec::new();
    let mut out = Vec::new();
    let most = policies.iter().map(|p| p.capacity()).min().unwrap_or(0);
    for &(t, cost) in arrivals {
        if cost > most {
            out.push(None);
            continue;
        }
        let decisions: Vec<_> = policies
            .iter()
            .map(|p| {
                let clock = ManualClock::new();
                let alone = MemoryLimiter::new(*p, clock.clone(), 10);
                for &(at, c) in &admitted {
                    clock.set(at);
                    assert!(alone.check("k", c).expect("fits").allowed, "replay admits");
                }
                clock.set(t);
                alone.check("k", cost).expect("fits")
            })
            .collect();
        let all = decisions.iter().all(|d| d.allowed);
        if all {
            admitted.push((t, cost));
        }
        out.push(Some((all, decisions)));
    }
    out
}

/// Checks a set's answer against the model's, field for field (a limit that admitted a
/// refused request reports its remaining before the request).
pub fn matches_model(
    got: &LimitsDecision,
    (all, alone): &(bool, Vec<limiter_core::Decision>),
    cost: u64,
) -> Result<(), String> {
    if got.allowed != *all {
        return Err(format!("set allowed = {}, model {all}", got.allowed));
    }
    for (i, (g, m)) in got.decisions().iter().zip(alone).enumerate() {
        let mut m = *m;
        if !all && m.allowed {
            m.remaining = (m.remaining + cost).min(m.limit);
        }
        if *g != m {
            return Err(format!("limit {i}: set {g:?}, alone {m:?}"));
        }
    }
    Ok(())
}
