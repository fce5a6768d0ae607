//! The figures accuracy is made of, each computed on one key's admission instants:
//! the most admitted in any window, the excess over an envelope, the burst ratio, the share of users wronged, latency percentiles.
//!
//! The guarantee: every figure is exact (integers, or integers scaled by the period)
//! and computed in one pass over sorted instants.

use limiter_core::algorithm::{Bound, Envelope};
use limiter_core::{Nanos, Quota};
use results::{LatencySummary, round4};

/// The most admissions (`times`, sorted) in any half-open interval `[s, s + window)`.
pub fn max_in_window(times: &[Nanos], window: Nanos) -> u64 {
    let mut best = 0;
    let mut start = 0;
    for (end, &t) in times.iter().enumerate() {
        while t - times[start] >= window {
            start += 1;
        }
        best = best.max(end + 1 - start);
    }
    best as u64
}

/// Burst ratio: the most cost units admitted in any window-length interval, over the
/// limit.
pub fn burst_ratio(times: &[Nanos], cost: u64, quota: &Quota) -> f64 {
    let most = max_in_window(times, quota.period_nanos()) * cost;
    most as f64 / quota.limit() as f64
}

/// Envelope excess: the most by which admissions (`times`, sorted, `cost` units each)
/// exceed what `envelope` permits in any interval (the worst of its bounds), in cost
/// units, or 0. The envelope is `limiter-core`'s; this only measures against it.
pub fn excess(envelope: &Envelope, times: &[Nanos], cost: u64) -> f64 {
    envelope
        .bounds()
        .iter()
        .map(|bound| match *bound {
            Bound::Rate {
                burst,
                limit,
                period,
            } => rate_excess(times, cost, (burst, limit, period)),
            Bound::Windows {
                limit,
                length,
                step,
            } => {
                let most = most_in_windows(times, length, step) * cost;
                most.saturating_sub(limit) as f64
            }
        })
        .fold(0.0, f64::max)
}

/// The most admissions (`times`, sorted) in any window `[j × step, j × step + length)`:
/// with `step` 1, any half-open interval of that length ([`max_in_window`]).
pub fn most_in_windows(times: &[Nanos], length: Nanos, step: Nanos) -> u64 {
    if step <= 1 {
        return max_in_window(times, length);
    }
    // The fullest window holds, from its first admission on, no more than the window
    // starting on the grid point at or before that admission: try those.
    let mut best = 0;
    let mut end = 0;
    for (i, &t) in times.iter().enumerate() {
        let start = u128::from(t - t % step);
        end = end.max(i);
        while end < times.len() && u128::from(times[end]) < start + u128::from(length) {
            end += 1;
        }
        best = best.max(end - i);
    }
    best as u64
}

/// Excess over a rate bound (`burst + limit × t / period` in every closed interval of
/// length `t`): the largest `units(t_i..=t_j) − (burst + rate × (t_j − t_i))` over all
/// pairs of admissions, in cost units (fractional: the rate makes the bound
/// fractional), or 0.
///
/// Exact: computed in integers scaled by the period, with a running maximum, in one
/// pass.
fn rate_excess(times: &[Nanos], cost: u64, (burst, limit, period): (u64, u64, Nanos)) -> f64 {
    let p = period as i128;
    let l = limit as i128;
    let b = burst as i128;
    let c = cost as i128;
    // value(i, j) = (j − i + 1)·c·p − b·p − l·(t_j − t_i), for i ≤ j (0-based)
    //            = [(j + 1)·c·p − l·t_j] + [l·t_i − i·c·p] − b·p
    let mut best_left = i128::MIN;
    let mut best = 0i128;
    for (j, &t) in times.iter().enumerate() {
        let (j, t) = (j as i128, t as i128);
        best_left = best_left.max(l * t - j * c * p);
        let value = (j + 1) * c * p - l * t + best_left - b * p;
        best = best.max(value);
    }
    best as f64 / p as f64
}

/// Users throttled while within their policy: of the users who sent something, how
/// many had a request refused that the exact reference admits (so they were under
/// their fair share when refused). Unlike an index over users' admitted shares, this
/// tells users apart: 0 when no one is wronged, 1 when everyone is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wronged {
    /// Users with a request refused that the reference admits.
    pub wronged: u64,
    /// Users who sent at least one request.
    pub users: u64,
}

impl Wronged {
    /// Counts one user: whether it sent anything, and whether it was wronged.
    pub fn add(&mut self, sent: bool, wronged: bool) {
        if sent {
            self.users += 1;
            self.wronged += u64::from(wronged);
        }
    }

    /// The share wronged, in `[0, 1]`; `None` when no user sent anything.
    pub fn share(&self) -> Option<f64> {
        (self.users > 0).then(|| self.wronged as f64 / self.users as f64)
    }
}

/// Nearest-rank percentiles of latencies in nanoseconds (sorted in place), as
/// microseconds.
pub fn percentiles(ns: &mut [u32]) -> Option<LatencySummary> {
    if ns.is_empty() {
        return None;
    }
    ns.sort_unstable();
    let at = |q: f64| {
        let rank = (q * ns.len() as f64).ceil() as usize;
        let v = ns[rank.clamp(1, ns.len()) - 1];
        round4(v as f64 / 1_000.0)
    };
    Some(LatencySummary {
        p50: at(0.5),
        p99: at(0.99),
        p999: at(0.999),
        max: at(1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use limiter_core::algorithm::Reference;

    use crate::workload::SECOND;

    const S: Nanos = SECOND;

    fn quota(limit: u64, secs: u64, burst: u64) -> Quota {
        Quota::new(limit, Duration::from_secs(secs))
            .unwrap()
            .with_burst(burst)
            .unwrap()
    }

    /// Excess over the exact token bucket's reading of `q`.
    fn bucket_excess(t: &[Nanos], cost: u64, q: &Quota) -> f64 {
        excess(&Reference::TokenBucket.envelope(q), t, cost)
    }

    /// Excess over the exact sliding log's reading of `q`.
    fn window_excess(t: &[Nanos], cost: u64, q: &Quota) -> f64 {
        excess(&Reference::SlidingLog.envelope(q), t, cost)
    }

    #[test]
    fn windows_on_a_grid() {
        // Aligned 10 s windows: 9.9 s and 10 s fall in different windows, 10 s and
        // 19.9 s in the same one.
        let t = [9_900_000_000, 10 * S, 19_900_000_000];
        assert_eq!(most_in_windows(&t, 10 * S, 10 * S), 2);
        assert_eq!(most_in_windows(&t, 10 * S, 1), 2);
        assert_eq!(most_in_windows(&t[..2], 10 * S, 10 * S), 1);
        assert_eq!(most_in_windows(&t[..2], 10 * S, 1), 2);
        assert_eq!(most_in_windows(&[], 10 * S, 10 * S), 0);
        // The most by which any window's count exceeds the limit, over several bounds.
        let both = Envelope::new([
            Bound::Windows {
                limit: 1,
                length: 10 * S,
                step: 10 * S,
            },
            Bound::Windows {
                limit: 1,
                length: 10 * S,
                step: 1,
            },
        ]);
        assert_eq!(excess(&both, &t[..2], 1), 1.0);
    }

    #[test]
    fn max_in_window_is_half_open() {
        // 0, 5, 10 with a 10 s window: [0, 10) holds two, [5, 15) holds two.
        assert_eq!(max_in_window(&[0, 5 * S, 10 * S], 10 * S), 2);
        assert_eq!(max_in_window(&[0, 5 * S, 10 * S - 1], 10 * S), 3);
        assert_eq!(max_in_window(&[], 10 * S), 0);
        assert_eq!(max_in_window(&[7, 7, 7], 1), 3);
    }

    #[test]
    fn burst_ratio_of_a_fixed_window_at_a_boundary() {
        // Limit 10 per 10 s: 10 admitted in [9.9 s, 10 s) and 10 in [10 s, 10.1 s).
        let q = quota(10, 10, 10);
        let mut t: Vec<Nanos> = (0..10).map(|i| 9_900_000_000 + i * 10_000_000).collect();
        t.extend((0..10).map(|i| 10 * S + i * 10_000_000));
        assert_eq!(burst_ratio(&t, 1, &q), 2.0);
        assert_eq!(window_excess(&t, 1, &q), 10.0);
        // Cost 2 doubles the units.
        assert_eq!(burst_ratio(&t[..5], 2, &q), 1.0);
    }

    #[test]
    fn bucket_excess_by_hand() {
        // Burst 5, 5 per 60 s (one token per 12 s).
        let q = quota(5, 60, 5);
        // 5 at once: exactly the burst, no excess.
        assert_eq!(bucket_excess(&[0; 5], 1, &q), 0.0);
        // 6 at once: one too many.
        assert_eq!(bucket_excess(&[0; 6], 1, &q), 1.0);
        // 5 at 0, then 1 at 6 s: envelope over [0, 6] is 5 + 0.5 = 5.5, 6 admitted.
        assert_eq!(bucket_excess(&[0, 0, 0, 0, 0, 6 * S], 1, &q), 0.5);
        // 5 at 0, 1 at 12 s: exactly on the envelope.
        assert_eq!(bucket_excess(&[0, 0, 0, 0, 0, 12 * S], 1, &q), 0.0);
        // The worst interval need not start at the first admission: 1 at 0, then
        // 7 at 100 s.
        let mut t = vec![0];
        t.extend([100 * S; 7]);
        assert_eq!(bucket_excess(&t, 1, &q), 2.0);
        // Cost counts: 3 requests of cost 2 at once against burst 5.
        assert_eq!(bucket_excess(&[0; 3], 2, &q), 1.0);
        assert_eq!(bucket_excess(&[], 1, &q), 0.0);
    }

    #[test]
    fn wronged_counts_users_who_sent_something() {
        let mut w = Wronged::default();
        assert_eq!(w.share(), None);
        w.add(true, true);
        w.add(true, false);
        w.add(false, false);
        w.add(true, false);
        assert_eq!((w.wronged, w.users), (1, 3));
        assert_eq!(w.share(), Some(1.0 / 3.0));
    }

    #[test]
    fn percentiles_nearest_rank() {
        let mut v: Vec<u32> = (1..=1000).map(|i| i * 1000).collect();
        let l = percentiles(&mut v).unwrap();
        assert_eq!((l.p50, l.p99, l.p999, l.max), (500.0, 990.0, 999.0, 1000.0));
        assert_eq!(percentiles(&mut []), None);
    }
}
