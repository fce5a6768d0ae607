//! Accuracy, defined once (DESIGN.md): how far each limiter strays from its policy.
//!
//! For every key (user × endpoint) and phase, and over the whole run:
//!
//! - **envelope excess**: the most by which admissions in any interval exceed what the
//!   policy permits in that interval, in cost units; 0 is perfect. The envelope is
//!   `burst + rate × length` for the bucket family (token bucket, GCRA, seed-replica) and
//!   `limit` in any window-length interval for the window family (fixed window, sliding
//!   window, sliding log).
//! - **over-/under-admission**: admitted minus what an exact reference limiter admits
//!   on the same arrivals, where positive (and the reverse). The reference is an exact
//!   token bucket (rational arithmetic, no rounding) for the bucket family and an exact
//!   sliding log for the window family, both written here independently of
//!   `limiter-core`, so they check it rather than repeat it.
//! - **burst ratio**: the most admitted in any interval `[s, s + window)`, over `limit`
//!   (a fixed window reaches 2.0 at a boundary).
//! - **fairness**: Jain's index `(Σx)² / (n Σx²)` over users of
//!   `x = admitted / reference-admitted` (users the reference admits something for);
//!   1 means every user gets the same share of what the policy entitles it to.
//!
//! Phases report the worst key's envelope excess and burst ratio and the sum over keys
//! of over- and under-admission; a phase's figures only look at that phase's requests.

use std::collections::VecDeque;

use limiter_core::{Nanos, Quota};
use results::{LatencySummary, PhaseStats, Run, Series, round4};

use crate::arrivals::Arrivals;
use crate::workload::{SECOND, Workload};

/// Which envelope and reference an algorithm is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Token bucket, GCRA and the seed replica: `burst + rate × t`.
    Bucket,
    /// Fixed window, sliding window, sliding log: `limit` per window-length interval.
    Window,
}

impl Family {
    /// The reference limiter's name, as reported.
    pub fn reference(self) -> &'static str {
        match self {
            Family::Bucket => "exact token bucket",
            Family::Window => "exact sliding log",
        }
    }
}

/// A token bucket in exact rational arithmetic: the level is held in units of
/// `1 / period` tokens, so a refill of `(now − last) × limit` is an integer and nothing
/// is ever rounded. Starts full.
#[derive(Debug, Clone)]
pub struct ExactTokenBucket {
    limit: u128,
    period: u128,
    capacity: u128,
}

/// One key's state in an [`ExactTokenBucket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactBucketState {
    level: u128,
    last: Nanos,
}

impl ExactTokenBucket {
    /// The reference for `quota`: `burst` tokens, refilled at `limit / period`.
    pub fn new(quota: &Quota) -> Self {
        let period = quota.period_nanos() as u128;
        Self {
            limit: quota.limit() as u128,
            period,
            capacity: quota.burst() as u128 * period,
        }
    }

    /// A full bucket.
    pub fn state(&self) -> ExactBucketState {
        ExactBucketState {
            level: self.capacity,
            last: 0,
        }
    }

    /// Admits `cost` at `now` if the bucket holds that many tokens.
    #[inline]
    pub fn admit(&self, s: &mut ExactBucketState, now: Nanos, cost: u64) -> bool {
        let now = now.max(s.last);
        let refill = (now - s.last) as u128 * self.limit;
        s.level = (s.level + refill).min(self.capacity);
        s.last = now;
        let want = cost as u128 * self.period;
        if s.level >= want {
            s.level -= want;
            true
        } else {
            false
        }
    }
}

/// A sliding log in its plainest form: admit when the units admitted in
/// `(now − window, now]` plus the cost fit in `limit`.
#[derive(Debug, Clone)]
pub struct ExactSlidingLog {
    window: Nanos,
    limit: u64,
}

/// One key's state in an [`ExactSlidingLog`]: admissions still in the window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExactLogState {
    entries: VecDeque<(Nanos, u64)>,
    used: u64,
}

impl ExactSlidingLog {
    /// The reference for `quota`: `limit` per `period`.
    pub fn new(quota: &Quota) -> Self {
        Self {
            window: quota.period_nanos(),
            limit: quota.limit(),
        }
    }

    /// An empty log.
    pub fn state(&self) -> ExactLogState {
        ExactLogState::default()
    }

    /// Admits `cost` at `now` if it fits in the window ending at `now`.
    #[inline]
    pub fn admit(&self, s: &mut ExactLogState, now: Nanos, cost: u64) -> bool {
        while let Some(&(t, c)) = s.entries.front() {
            if now.saturating_sub(t) < self.window {
                break;
            }
            s.entries.pop_front();
            s.used -= c;
        }
        if s.used + cost > self.limit {
            return false;
        }
        s.entries.push_back((now, cost));
        s.used += cost;
        true
    }
}

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

/// Envelope excess for the window family: the most units in any window-length interval
/// beyond `limit`.
pub fn window_excess(times: &[Nanos], cost: u64, quota: &Quota) -> f64 {
    let most = max_in_window(times, quota.period_nanos()) * cost;
    most.saturating_sub(quota.limit()) as f64
}

/// Envelope excess for the bucket family: the largest
/// `units(t_i..=t_j) − (burst + rate × (t_j − t_i))` over all pairs of admissions, in
/// cost units (fractional: the rate makes the envelope fractional), or 0.
///
/// Exact: computed in integers scaled by the period, with a running maximum, in one
/// pass.
pub fn bucket_excess(times: &[Nanos], cost: u64, quota: &Quota) -> f64 {
    let p = quota.period_nanos() as i128;
    let l = quota.limit() as i128;
    let b = quota.burst() as i128;
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

/// Jain's fairness index of `xs`: `(Σx)² / (n Σx²)`, in `(0, 1]`; 1 when all are
/// equal (including all zero). `None` for no values.
pub fn jain(xs: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut acc = Jain::default();
    for x in xs {
        acc.add(x);
    }
    acc.index()
}

/// A running Jain's index.
#[derive(Debug, Clone, Copy, Default)]
struct Jain {
    n: u64,
    sum: f64,
    squares: f64,
}

impl Jain {
    fn add(&mut self, x: f64) {
        self.n += 1;
        self.sum += x;
        self.squares += x * x;
    }

    fn index(&self) -> Option<f64> {
        if self.n == 0 {
            None
        } else if self.squares == 0.0 {
            Some(1.0)
        } else {
            Some(self.sum * self.sum / (self.n as f64 * self.squares))
        }
    }
}

/// Which requests a limiter admitted: one bit per arrival, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decisions {
    bits: Vec<u64>,
    len: usize,
}

impl Decisions {
    /// All rejected, for `len` arrivals.
    pub fn new(len: usize) -> Self {
        Self {
            bits: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// Marks arrival `i` admitted.
    #[inline]
    pub fn admit(&mut self, i: usize) {
        self.bits[i / 64] |= 1 << (i % 64);
    }

    /// Whether arrival `i` was admitted.
    #[inline]
    pub fn admitted(&self, i: usize) -> bool {
        self.bits[i / 64] >> (i % 64) & 1 == 1
    }

    /// Admitted among all arrivals.
    pub fn count(&self) -> u64 {
        self.bits.iter().map(|w| w.count_ones() as u64).sum()
    }

    /// Number of arrivals.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no arrivals.
    pub fn is_empty(&self) -> bool {
        self.len == 0
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

/// LatencySummary figures that do not depend on the algorithm (a modelled store round trip).
#[derive(Debug, Clone, Default)]
struct LatencyFigures {
    phases: Vec<Option<LatencySummary>>,
    total: Option<LatencySummary>,
    series: Vec<Option<LatencySummary>>,
}

/// Turns decisions into the figures of the results schema for one workload's arrivals.
/// Built once per simulation (it indexes arrivals by key), used once per algorithm.
#[derive(Debug)]
pub struct Accounting<'a> {
    workload: &'a Workload,
    arrivals: &'a Arrivals,
    /// Arrival indices grouped by key (CSR): key `k` owns
    /// `by_key[key_start[k]..key_start[k + 1]]`, in time order.
    key_start: Vec<u32>,
    by_key: Vec<u32>,
    seconds: usize,
    offered: Vec<u64>,
    latency: Option<LatencyFigures>,
}

impl<'a> Accounting<'a> {
    /// Indexes `arrivals` of `workload`. `latencies_ns`, one per arrival, are the
    /// modelled decision latencies, when there are any.
    ///
    /// # Panics
    ///
    /// When `arrivals` do not belong to `workload` (users, endpoints or phases out of
    /// range, or fewer latencies than arrivals): arrivals from
    /// [`generate`](crate::arrivals::generate) always do.
    pub fn new(
        workload: &'a Workload,
        arrivals: &'a Arrivals,
        latencies_ns: Option<&[u32]>,
    ) -> Self {
        let keys = arrivals.keys();
        let mut key_start = vec![0u32; keys + 1];
        for a in &arrivals.list {
            key_start[arrivals.key(a) + 1] += 1;
        }
        for k in 0..keys {
            key_start[k + 1] += key_start[k];
        }
        let mut fill = key_start.clone();
        let mut by_key = vec![0u32; arrivals.list.len()];
        for (i, a) in arrivals.list.iter().enumerate() {
            let k = arrivals.key(a);
            by_key[fill[k] as usize] = i as u32;
            fill[k] += 1;
        }
        let seconds = workload.duration().div_ceil(SECOND).max(1) as usize;
        let mut offered = vec![0u64; seconds];
        for a in &arrivals.list {
            offered[((a.at / SECOND) as usize).min(seconds - 1)] += 1;
        }
        let latency = latencies_ns.map(|lat| {
            let phases = (0..workload.phases.len())
                .map(|p| {
                    let r = arrivals.phase_starts[p]..arrivals.phase_starts[p + 1];
                    percentiles(&mut lat[r].to_vec())
                })
                .collect();
            let total = percentiles(&mut lat.to_vec());
            let mut per_second: Vec<Vec<u32>> = vec![Vec::new(); seconds];
            for (a, l) in arrivals.list.iter().zip(lat) {
                per_second[((a.at / SECOND) as usize).min(seconds - 1)].push(*l);
            }
            let series = per_second.iter_mut().map(|v| percentiles(v)).collect();
            LatencyFigures {
                phases,
                total,
                series,
            }
        });
        Self {
            workload,
            arrivals,
            key_start,
            by_key,
            seconds,
            offered,
            latency,
        }
    }

    /// Keys that saw at least one request.
    pub fn active_keys(&self) -> u64 {
        self.key_start.windows(2).filter(|w| w[1] > w[0]).count() as u64
    }

    /// The figures for one algorithm's `decisions`, judged against `reference`
    /// decisions by `family`'s envelope.
    pub fn run(
        &self,
        algorithm: &str,
        family: Family,
        decisions: &Decisions,
        reference: &Decisions,
    ) -> Run {
        let w = self.workload;
        let a = self.arrivals;
        let phases = w.phases.len();
        let endpoints = a.endpoints as usize;
        let mut stats: Vec<PhaseStats> = w.phases.iter().map(|p| empty_stats(&p.name)).collect();
        let mut total = empty_stats("total");
        let mut fair: Vec<Jain> = vec![Jain::default(); phases];
        let mut fair_total = Jain::default();

        // Counts per phase and per second.
        let mut admitted_series = vec![0u64; self.seconds];
        for (p, s) in stats.iter_mut().enumerate() {
            let range = a.phase_starts[p]..a.phase_starts[p + 1];
            s.offered = range.len() as u64;
            for i in range {
                if decisions.admitted(i) {
                    s.admitted += 1;
                    let sec = ((a.list[i].at / SECOND) as usize).min(self.seconds - 1);
                    admitted_series[sec] += 1;
                }
                if reference.admitted(i) {
                    s.reference_admitted += 1;
                }
            }
            s.rejected = s.offered - s.admitted;
        }

        // Per key: accuracy figures; per user: fairness.
        let mut times: Vec<Nanos> = Vec::new();
        let mut splits: Vec<usize> = Vec::with_capacity(phases + 1);
        let mut user_phase = vec![(0u64, 0u64); phases];
        let mut user_total = (0u64, 0u64);
        for key in 0..a.keys() {
            let idx = &self.by_key[self.key_start[key] as usize..self.key_start[key + 1] as usize];
            let endpoint = &w.endpoints[key % endpoints];
            let (quota, cost) = (&endpoint.quota, endpoint.cost);
            times.clear();
            splits.clear();
            let mut pos = 0;
            let (mut key_adm, mut key_ref) = (0u64, 0u64);
            for p in 0..phases {
                splits.push(times.len());
                let end =
                    pos + idx[pos..].partition_point(|&i| (i as usize) < a.phase_starts[p + 1]);
                let (mut adm, mut refd) = (0u64, 0u64);
                for &i in &idx[pos..end] {
                    let i = i as usize;
                    if decisions.admitted(i) {
                        adm += 1;
                        times.push(a.list[i].at);
                    }
                    if reference.admitted(i) {
                        refd += 1;
                    }
                }
                let s = &mut stats[p];
                s.over_admission += adm.saturating_sub(refd);
                s.under_admission += refd.saturating_sub(adm);
                user_phase[p].0 += adm;
                user_phase[p].1 += refd;
                key_adm += adm;
                key_ref += refd;
                pos = end;
            }
            splits.push(times.len());
            total.over_admission += key_adm.saturating_sub(key_ref);
            total.under_admission += key_ref.saturating_sub(key_adm);
            user_total.0 += key_adm;
            user_total.1 += key_ref;
            if !times.is_empty() {
                let figures = |t: &[Nanos]| {
                    let excess = match family {
                        Family::Bucket => bucket_excess(t, cost, quota),
                        Family::Window => window_excess(t, cost, quota),
                    };
                    (excess, burst_ratio(t, cost, quota))
                };
                for p in 0..phases {
                    let (e, b) = figures(&times[splits[p]..splits[p + 1]]);
                    let s = &mut stats[p];
                    s.envelope_excess = s.envelope_excess.max(e);
                    s.burst_ratio = s.burst_ratio.max(b);
                }
                let (e, b) = figures(&times);
                total.envelope_excess = total.envelope_excess.max(e);
                total.burst_ratio = total.burst_ratio.max(b);
            }
            // The last endpoint of a user: close the user's fairness sample.
            if key % endpoints == endpoints - 1 {
                for p in 0..phases {
                    let (adm, refd) = user_phase[p];
                    if refd > 0 {
                        fair[p].add(adm as f64 / refd as f64);
                    }
                    user_phase[p] = (0, 0);
                }
                if user_total.1 > 0 {
                    fair_total.add(user_total.0 as f64 / user_total.1 as f64);
                }
                user_total = (0, 0);
            }
        }

        for (p, s) in stats.iter_mut().enumerate() {
            s.fairness = fair[p].index().map(round4);
            s.envelope_excess = round4(s.envelope_excess);
            s.burst_ratio = round4(s.burst_ratio);
            s.latency_us = self.latency.as_ref().and_then(|l| l.phases[p]);
            total.offered += s.offered;
            total.admitted += s.admitted;
            total.rejected += s.rejected;
            total.reference_admitted += s.reference_admitted;
        }
        total.fairness = fair_total.index().map(round4);
        total.envelope_excess = round4(total.envelope_excess);
        total.burst_ratio = round4(total.burst_ratio);
        total.latency_us = self.latency.as_ref().and_then(|l| l.total);

        let rejected = self
            .offered
            .iter()
            .zip(&admitted_series)
            .map(|(o, a)| o - a)
            .collect();
        Run {
            algorithm: algorithm.to_owned(),
            store: w.deployment.store.name().to_owned(),
            deployment: w.deployment.describe(),
            reference: family.reference().to_owned(),
            keys: self.active_keys(),
            memory_per_key_bytes: 0,
            phases: stats,
            totals: total,
            series: Series {
                step_s: 1.0,
                offered: self.offered.clone(),
                admitted: admitted_series,
                rejected,
                latency_us: self
                    .latency
                    .as_ref()
                    .map(|l| l.series.clone())
                    .unwrap_or_default(),
            },
        }
    }
}

fn empty_stats(name: &str) -> PhaseStats {
    PhaseStats {
        name: name.to_owned(),
        offered: 0,
        admitted: 0,
        rejected: 0,
        errors: 0,
        reference_admitted: 0,
        envelope_excess: 0.0,
        over_admission: 0,
        under_admission: 0,
        burst_ratio: 0.0,
        fairness: None,
        latency_us: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: Nanos = SECOND;

    fn quota(limit: u64, secs: u64, burst: u64) -> Quota {
        Quota::new(limit, Duration::from_secs(secs))
            .unwrap()
            .with_burst(burst)
            .unwrap()
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
    fn jain_by_hand() {
        assert_eq!(jain([1.0, 1.0, 1.0]), Some(1.0));
        // (1 + 0)² / (2 × 1) = 0.5: one user gets everything.
        assert_eq!(jain([1.0, 0.0]), Some(0.5));
        // (1 + 2 + 3)² / (3 × 14) = 36 / 42.
        assert_eq!(jain([1.0, 2.0, 3.0]), Some(36.0 / 42.0));
        assert_eq!(jain([0.0, 0.0]), Some(1.0));
        assert_eq!(jain([]), None);
    }

    #[test]
    fn exact_token_bucket_by_hand() {
        let q = quota(5, 60, 5);
        let b = ExactTokenBucket::new(&q);
        let mut s = b.state();
        // Starts full.
        for _ in 0..5 {
            assert!(b.admit(&mut s, 100 * S, 1));
        }
        assert!(!b.admit(&mut s, 100 * S, 1));
        assert!(!b.admit(&mut s, 112 * S - 1, 1));
        assert!(b.admit(&mut s, 112 * S, 1));
        // Never more than the burst after a long idle.
        let admitted = (0..10).filter(|_| b.admit(&mut s, 10_000 * S, 1)).count();
        assert_eq!(admitted, 5);
        // Thirds are exact: 3 per second, burst 2, requests every 1/3 s (rounded up to
        // the nanosecond, which the second token of burst absorbs).
        let q = quota(3, 1, 2);
        let b = ExactTokenBucket::new(&q);
        let mut s = b.state();
        let admitted = (0..3_000u64)
            .filter(|i| b.admit(&mut s, (i * S).div_ceil(3), 1))
            .count();
        assert_eq!(admitted, 3_000);
    }

    #[test]
    fn exact_sliding_log_by_hand() {
        let q = quota(2, 10, 2);
        let l = ExactSlidingLog::new(&q);
        let mut s = l.state();
        assert!(l.admit(&mut s, 0, 1));
        assert!(l.admit(&mut s, 5 * S, 1));
        assert!(!l.admit(&mut s, 10 * S - 1, 1));
        assert!(l.admit(&mut s, 10 * S, 1)); // the entry at 0 left
        assert!(!l.admit(&mut s, 14 * S, 1));
        assert!(l.admit(&mut s, 15 * S, 1));
    }

    #[test]
    fn percentiles_nearest_rank() {
        let mut v: Vec<u32> = (1..=1000).map(|i| i * 1000).collect();
        let l = percentiles(&mut v).unwrap();
        assert_eq!((l.p50, l.p99, l.p999, l.max), (500.0, 990.0, 999.0, 1000.0));
        assert_eq!(percentiles(&mut []), None);
    }

    #[test]
    fn decisions_bits() {
        let mut d = Decisions::new(130);
        d.admit(0);
        d.admit(129);
        assert!(d.admitted(0) && d.admitted(129) && !d.admitted(64));
        assert_eq!(d.count(), 2);
        assert_eq!(d.len(), 130);
    }
}
