//! The quotas at the edges of what `Quota` accepts, and arrivals that push them, shared
//! by the memory and Redis suites.

#![allow(dead_code)]

use std::time::Duration;

use limiter_core::{Nanos, Quota};

/// The quotas at the edges of what [`Quota`] accepts: the largest capacity over the
/// longest window its emission interval allows in whole microseconds, the slowest rate
/// (one per ten years), the largest capacity refilled one unit per µs, the largest burst
/// at the slowest refill allowed, and one per microsecond. Emission intervals are whole
/// microseconds, so the Redis suite can expect memory's answers exactly.
pub fn edge_quotas() -> Vec<Quota> {
    use limiter_core::quota::{MAX_LIMIT, MAX_PERIOD};
    let us = Duration::from_micros;
    // The slowest refill a full largest burst allows: 73,425 µs a unit.
    let slowest = MAX_PERIOD / MAX_LIMIT / 1_000;
    vec![
        Quota::new(MAX_LIMIT, us(MAX_LIMIT * slowest)).and_then(|q| q.with_burst(MAX_LIMIT)),
        Quota::new(1, Duration::from_nanos(MAX_PERIOD)),
        Quota::new(MAX_LIMIT, us(MAX_LIMIT)).and_then(|q| q.with_burst(MAX_LIMIT)),
        Quota::new(1, us(slowest)).and_then(|q| q.with_burst(MAX_LIMIT)),
        Quota::new(1, us(1)),
    ]
    .into_iter()
    .collect::<Result<_, _>>()
    .expect("edge quotas are valid")
}

/// Arrivals at the edges, from a Unix-clock instant in 2027: the largest cost, a cost
/// one above it, one unit, spread over a couple of periods.
pub fn edge_arrivals(q: &Quota, capacity: u64) -> Vec<(Nanos, u64)> {
    let t0: Nanos = 1_800_000_000_000_000_000;
    let p = q.period_nanos();
    let mut arrivals = vec![
        (t0, capacity),
        (t0, 1),
        (t0, capacity + 1),
        (t0 + 1_000, 1),
        (t0 + p / 2 / 1_000 * 1_000, capacity),
        (t0 + p, 1),
        (t0 + p, capacity),
        (t0 + 2 * p + 1_000, capacity),
        (t0 + 2 * p + 1_000, 1),
    ];
    arrivals.sort_by_key(|&(t, _)| t);
    arrivals
}
