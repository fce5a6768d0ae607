//! From decisions to the figures of the results schema: counts, accuracy against the
//! reference, burst, fairness and latency, per phase and over the run.
//!
//! The guarantee: the same [`Accounting`] judges simulated and measured runs, so their
//! figures mean the same thing; a phase's figures only look at that phase's requests.

use limiter_core::Nanos;
use limiter_core::algorithm::reference::ExactSlidingLog;
use limiter_core::algorithm::{Envelope, Reference};
use results::{LatencySummary, PhaseStats, Run, Series, round4};

use super::decisions::Decisions;
use super::figures::{Wronged, burst_ratio, excess, percentiles};
use crate::arrivals::Arrivals;
use crate::workload::{SECOND, Workload};

/// Latency figures that do not depend on the algorithm (a modelled store round trip).
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
    /// The series' bin width ([`super::bin_width`]): phase boundaries on bin edges.
    bin: Nanos,
    /// Number of bins.
    seconds: usize,
    offered: Vec<u64>,
    latency: Option<LatencyFigures>,
}

/// Per user, per phase and over the run: did the user send anything, and was one of
/// its requests refused that the exact reference admits? Accumulated key by key.
struct Fairness {
    phases: Vec<Wronged>,
    total: Wronged,
    /// The current user's (sent, wronged) per phase.
    user_phase: Vec<(bool, bool)>,
}

impl Fairness {
    fn new(phases: usize) -> Self {
        Self {
            phases: vec![Wronged::default(); phases],
            total: Wronged::default(),
            user_phase: vec![(false, false); phases],
        }
    }

    /// Closes the current user's sample.
    fn close_user(&mut self) {
        let mut user_total = (false, false);
        for (p, (sent, wronged)) in self.user_phase.iter_mut().enumerate() {
            self.phases[p].add(*sent, *wronged);
            user_total.0 |= *sent;
            user_total.1 |= *wronged;
            *sent = false;
            *wronged = false;
        }
        self.total.add(user_total.0, user_total.1);
    }
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
        let (key_start, by_key) = index_by_key(arrivals);
        let bin = super::bin_width(workload);
        let seconds = workload.duration().div_ceil(bin).max(1) as usize;
        let mut offered = vec![0u64; seconds];
        for a in &arrivals.list {
            offered[((a.at / bin) as usize).min(seconds - 1)] += 1;
        }
        let latency =
            latencies_ns.map(|lat| latency_figures(workload, arrivals, lat, (bin, seconds)));
        Self {
            workload,
            arrivals,
            key_start,
            by_key,
            bin,
            seconds,
            offered,
            latency,
        }
    }

    /// Keys that saw at least one request.
    pub fn active_keys(&self) -> u64 {
        self.key_start.windows(2).filter(|w| w[1] > w[0]).count() as u64
    }

    /// The figures for one algorithm's `decisions`, judged against the decisions of
    /// the exact reference `judge` (`reference`) and measured against its envelope.
    pub fn run(
        &self,
        algorithm: &str,
        judge: Reference,
        decisions: &Decisions,
        reference: &Decisions,
    ) -> Run {
        let w = self.workload;
        let mut stats: Vec<PhaseStats> = w.phases.iter().map(|p| empty_stats(&p.name)).collect();
        let mut total = empty_stats("total");
        let admitted_series = self.count(decisions, reference, &mut stats);
        let envelopes: Vec<Envelope> = w
            .endpoints
            .iter()
            .map(|e| judge.envelope(&e.quota))
            .collect();
        // The fixed window is judged on its own windows; its boundary burst is counted
        // against the sliding log apart.
        let sliding: Option<Vec<ExactSlidingLog>> = (judge == Reference::FixedWindow).then(|| {
            w.endpoints
                .iter()
                .map(|e| ExactSlidingLog::new(&e.quota))
                .collect()
        });
        if sliding.is_some() {
            for s in stats.iter_mut().chain([&mut total]) {
                s.boundary_burst = Some(0);
            }
        }
        let judged = Judged {
            envelopes: &envelopes,
            sliding: sliding.as_deref(),
        };
        let fairness = self.judge_keys(&judged, decisions, reference, &mut stats, &mut total);
        self.finish(&mut stats, &mut total, &fairness);
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
            reference: judge.name().to_owned(),
            keys: self.active_keys(),
            memory_per_key_bytes: 0,
            phases: stats,
            totals: total,
            series: Series {
                step_s: self.bin as f64 / SECOND as f64,
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

    /// Offered, admitted, rejected and reference-admitted per phase; returns the
    /// admitted count per second.
    fn count(
        &self,
        decisions: &Decisions,
        reference: &Decisions,
        stats: &mut [PhaseStats],
    ) -> Vec<u64> {
        let a = self.arrivals;
        let mut admitted_series = vec![0u64; self.seconds];
        for (p, s) in stats.iter_mut().enumerate() {
            let range = a.phase_starts[p]..a.phase_starts[p + 1];
            s.offered = range.len() as u64;
            for i in range {
                if decisions.admitted(i) {
                    s.admitted += 1;
                    let sec = ((a.list[i].at / self.bin) as usize).min(self.seconds - 1);
                    admitted_series[sec] += 1;
                }
                if reference.admitted(i) {
                    s.reference_admitted += 1;
                }
            }
            s.rejected = s.offered - s.admitted;
        }
        admitted_series
    }

    /// Key by key: over- and under-admission, excess over `envelopes` (one per
    /// endpoint) and burst ratio (worst key), and the users' fairness samples.
    fn judge_keys(
        &self,
        judged: &Judged<'_>,
        decisions: &Decisions,
        reference: &Decisions,
        stats: &mut [PhaseStats],
        total: &mut PhaseStats,
    ) -> Fairness {
        let phases = self.workload.phases.len();
        let endpoints = self.arrivals.endpoints as usize;
        let mut fairness = Fairness::new(phases);
        let mut times: Vec<Nanos> = Vec::new();
        let mut splits: Vec<usize> = Vec::with_capacity(phases + 1);
        for key in 0..self.arrivals.keys() {
            let (adm, refd) = self.split_key(
                key,
                (decisions, reference),
                (&mut times, &mut splits),
                stats,
                &mut fairness,
            );
            total.over_admission += adm.saturating_sub(refd);
            total.under_admission += refd.saturating_sub(adm);
            if !times.is_empty() {
                self.key_figures(key, judged, (&times, &splits), stats, total);
            }
            // The last endpoint of a user: close the user's fairness sample.
            if key % endpoints == endpoints - 1 {
                fairness.close_user();
            }
        }
        fairness
    }

    /// One key's admitted instants (`times`, cut into phases at `splits`), its over-
    /// and under-admission per phase, and its fairness counts. Returns the key's
    /// (admitted, reference-admitted) over the run.
    fn split_key(
        &self,
        key: usize,
        (decisions, reference): (&Decisions, &Decisions),
        (times, splits): (&mut Vec<Nanos>, &mut Vec<usize>),
        stats: &mut [PhaseStats],
        fairness: &mut Fairness,
    ) -> (u64, u64) {
        let a = self.arrivals;
        let idx = &self.by_key[self.key_start[key] as usize..self.key_start[key + 1] as usize];
        times.clear();
        splits.clear();
        let mut pos = 0;
        let (mut key_adm, mut key_ref) = (0u64, 0u64);
        for (p, s) in stats.iter_mut().enumerate() {
            splits.push(times.len());
            let end = pos + idx[pos..].partition_point(|&i| (i as usize) < a.phase_starts[p + 1]);
            let (mut adm, mut refd) = (0u64, 0u64);
            let mut wronged = false;
            for &i in &idx[pos..end] {
                let i = i as usize;
                let (ours, exact) = (decisions.admitted(i), reference.admitted(i));
                if ours {
                    adm += 1;
                    times.push(a.list[i].at);
                }
                if exact {
                    refd += 1;
                }
                wronged |= exact && !ours;
            }
            s.over_admission += adm.saturating_sub(refd);
            s.under_admission += refd.saturating_sub(adm);
            let user = &mut fairness.user_phase[p];
            user.0 |= end > pos;
            user.1 |= wronged;
            key_adm += adm;
            key_ref += refd;
            pos = end;
        }
        splits.push(times.len());
        (key_adm, key_ref)
    }

    /// The worst-key figures: excess over the endpoint's envelope and burst ratio, and
    /// the key's boundary burst when counted, per phase and over the run, from one
    /// key's admitted instants (`times`, cut into phases at `splits`).
    fn key_figures(
        &self,
        key: usize,
        judged: &Judged<'_>,
        (times, splits): (&[Nanos], &[usize]),
        stats: &mut [PhaseStats],
        total: &mut PhaseStats,
    ) {
        let e = key % self.arrivals.endpoints as usize;
        let endpoint = &self.workload.endpoints[e];
        let (quota, cost) = (&endpoint.quota, endpoint.cost);
        let figures = |t: &[Nanos]| {
            (
                excess(&judged.envelopes[e], t, cost),
                burst_ratio(t, cost, quota),
                judged
                    .sliding
                    .map(|logs| beyond_sliding_log(&logs[e], t, cost)),
            )
        };
        let fold = |s: &mut PhaseStats, (e, b, over): (f64, f64, Option<u64>)| {
            s.envelope_excess = s.envelope_excess.max(e);
            s.burst_ratio = s.burst_ratio.max(b);
            if let Some(over) = over {
                *s.boundary_burst.get_or_insert(0) += over;
            }
        };
        for (p, s) in stats.iter_mut().enumerate() {
            fold(s, figures(&times[splits[p]..splits[p + 1]]));
        }
        fold(total, figures(times));
    }

    /// Fairness, rounding and latency per phase, and the totals.
    fn finish(&self, stats: &mut [PhaseStats], total: &mut PhaseStats, fairness: &Fairness) {
        for (p, s) in stats.iter_mut().enumerate() {
            s.wronged_users = fairness.phases[p].share().map(round4);
            s.envelope_excess = round4(s.envelope_excess);
            s.burst_ratio = round4(s.burst_ratio);
            s.latency_us = self.latency.as_ref().and_then(|l| l.phases[p]);
            total.offered += s.offered;
            total.admitted += s.admitted;
            total.rejected += s.rejected;
            total.reference_admitted += s.reference_admitted;
        }
        total.wronged_users = fairness.total.share().map(round4);
        total.envelope_excess = round4(total.envelope_excess);
        total.burst_ratio = round4(total.burst_ratio);
        total.latency_us = self.latency.as_ref().and_then(|l| l.total);
    }
}

/// What a run's keys are measured against besides the reference's decisions.
struct Judged<'a> {
    /// The policy's envelope, per endpoint.
    envelopes: &'a [Envelope],
    /// The exact sliding log per endpoint, when the boundary burst is counted.
    sliding: Option<&'a [ExactSlidingLog]>,
}

/// Of one key's admitted instants `times` (each of `cost`), how many the exact sliding
/// `log` refuses when played on them alone: the fewest admissions whose removal leaves
/// at most `limit` in every window-length interval (a fixed window's boundary burst).
fn beyond_sliding_log(log: &ExactSlidingLog, times: &[Nanos], cost: u64) -> u64 {
    let mut state = log.state();
    times
        .iter()
        .filter(|&&t| !log.admit(&mut state, t, cost))
        .count() as u64
}

/// Arrival indices grouped by key (CSR), each key's in time order: key `k` owns
/// `by_key[key_start[k]..key_start[k + 1]]`.
fn index_by_key(arrivals: &Arrivals) -> (Vec<u32>, Vec<u32>) {
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
    (key_start, by_key)
}

/// Latency percentiles per phase, over the run and per second, of one latency per
/// arrival.
fn latency_figures(
    workload: &Workload,
    arrivals: &Arrivals,
    lat: &[u32],
    (bin, seconds): (Nanos, usize),
) -> LatencyFigures {
    let phases = (0..workload.phases.len())
        .map(|p| {
            let r = arrivals.phase_starts[p]..arrivals.phase_starts[p + 1];
            percentiles(&mut lat[r].to_vec())
        })
        .collect();
    let total = percentiles(&mut lat.to_vec());
    let mut per_second: Vec<Vec<u32>> = vec![Vec::new(); seconds];
    for (a, l) in arrivals.list.iter().zip(lat) {
        per_second[((a.at / bin) as usize).min(seconds - 1)].push(*l);
    }
    let series = per_second.iter_mut().map(|v| percentiles(v)).collect();
    LatencyFigures {
        phases,
        total,
        series,
    }
}

/// A phase's figures before anything is counted.
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
        wronged_users: None,
        latency_us: None,
        boundary_burst: None,
    }
}
