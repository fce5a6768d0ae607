//! The promise each algorithm makes, checked on a record of admissions.
//!
//! Shared by every store's tests (memory and Redis), so that all of them are held to
//! one definition of "never admits more than the policy allows".

#![allow(dead_code)]

use limiter_core::{Kind, Nanos, Policy};

/// Checks that `admitted` — `(instant, cost)` pairs in time order — keeps the
/// envelope of `policy`, and says where it does not.
///
/// - token bucket, GCRA: every closed interval `[a, b]` holds at most
///   `burst + rate × (b − a)`;
/// - fixed window: every aligned window holds at most `limit`;
/// - sliding log: every half-open interval `(t − period, t]` holds at most `limit`;
/// - sliding window counter: every aligned window at most `limit`, and every
///   interval `(t − period, t]` fewer than `2 × limit`.
pub fn check(policy: &Policy, admitted: &[(Nanos, u64)]) -> Result<(), String> {
    if admitted.windows(2).any(|w| w[0].0 > w[1].0) {
        return Err("admissions are not in time order".into());
    }
    let q = policy.quota;
    let (limit, period, burst) = (
        q.limit() as u128,
        q.period_nanos() as u128,
        q.burst() as u128,
    );
    match policy.kind {
        Kind::TokenBucket | Kind::Gcra => {
            for i in 0..admitted.len() {
                let mut sum = 0u128;
                for j in i..admitted.len() {
                    sum += admitted[j].1 as u128;
                    let len = (admitted[j].0 - admitted[i].0) as u128;
                    // sum ≤ burst + limit × len / period, in integers.
                    if sum * period > burst * period + limit * len {
                        return Err(format!(
                            "{sum} admitted in [{}, {}] ({len} ns) exceeds burst {burst} + rate × length",
                            admitted[i].0, admitted[j].0
                        ));
                    }
                }
            }
        }
        Kind::FixedWindow => aligned(admitted, period, limit)?,
        Kind::SlidingLog => sliding(admitted, period, limit)?,
        Kind::SlidingWindow => {
            aligned(admitted, period, limit)?;
            sliding(admitted, period, 2 * limit - 1)?;
        }
    }
    Ok(())
}

fn aligned(admitted: &[(Nanos, u64)], period: u128, limit: u128) -> Result<(), String> {
    let mut window = None;
    let mut sum = 0u128;
    for &(t, c) in admitted {
        let w = t as u128 / period;
        if window != Some(w) {
            window = Some(w);
            sum = 0;
        }
        sum += c as u128;
        if sum > limit {
            return Err(format!(
                "{sum} admitted in aligned window {w} exceeds limit {limit}"
            ));
        }
    }
    Ok(())
}

fn sliding(admitted: &[(Nanos, u64)], period: u128, limit: u128) -> Result<(), String> {
    let mut start = 0;
    let mut sum = 0u128;
    for (j, &(t, c)) in admitted.iter().enumerate() {
        sum += c as u128;
        while (admitted[start].0 as u128) + period <= t as u128 {
            sum -= admitted[start].1 as u128;
            start += 1;
        }
        if sum > limit {
            return Err(format!(
                "{sum} admitted in ({}, {t}] exceeds {limit}",
                (t as u128).saturating_sub(period)
            ));
        }
        let _ = j;
    }
    Ok(())
}

/// The most a policy may admit, from a full start, in a run lasting `length`
/// nanoseconds that starts at instant `start` — the number concurrency tests compare
/// with.
pub fn most_in(policy: &Policy, start: Nanos, length: Nanos) -> u64 {
    let q = policy.quota;
    match policy.kind {
        Kind::TokenBucket | Kind::Gcra => {
            q.burst() + (length as u128 * q.limit() as u128 / q.period_nanos() as u128) as u64
        }
        Kind::FixedWindow | Kind::SlidingLog | Kind::SlidingWindow => {
            let p = q.period_nanos();
            let windows = (start + length) / p - start / p + 1;
            windows * q.limit()
        }
    }
}
