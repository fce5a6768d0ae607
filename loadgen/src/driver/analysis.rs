//! From recorded requests to `ratelab.results/1`: the same accuracy figures as the
//! simulator, plus what only a real run has (offered vs achieved, lateness, statuses,
//! the backend's count, the gateways' counters).
//!
//! The guarantees:
//! - accuracy is computed by the simulator's own accounting ([`crate::accuracy`]) on
//!   the requests as actually sent (their send instants, in order), judged against the
//!   same exact reference limiter on those instants — so simulated and measured
//!   figures mean the same thing. The client sees send instants, not the gateway's
//!   decision instants; they differ by at most one round trip;
//! - `admitted` counts responses the backend answered through the gateway
//!   ([`Reply::class`]); `rejected` counts 429s only; everything else is an `error`;
//! - the backend's count is compared key by key with the client's, and both with the
//!   policy envelope over the key's active span (first send to last response), so a
//!   disagreement or an over-admission is a number in the results, not a guess.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use hdrhistogram::Histogram;
use limiter_core::Nanos;
use results::{
    GatewayCounters, GroundTruth, LatencySummary, MeasuredSeries, Measurement, PhaseLoad,
    ResultSource, Results, Run, round4,
};

use crate::accuracy::{Accounting, Decisions, ExactSlidingLog, ExactTokenBucket, Family};
use crate::arrivals::{Arrival, Arrivals};
use crate::driver::client::{BackendStats, GatewaySnapshot};
use crate::driver::plan::{Plan, Scale, user_index};
use crate::drivers::http::record::{Class, Record};
use crate::sim::SimAlgorithm;
use crate::workload::{Endpoint, SECOND};

/// Everything known about a finished run besides the records.
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// The algorithm the gateways ran (`token-bucket`).
    pub algorithm: String,
    /// The store behind them (`memory`, `redis`, `redis-cluster`).
    pub store: String,
    /// The driver in words.
    pub driver: String,
    /// Target base URLs.
    pub targets: Vec<String>,
    /// The scale the workload was played at.
    pub scale: Scale,
    /// Requests later than this count as late.
    pub late_after: Nanos,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    /// Requests sent that never finished.
    pub unfinished: u64,
    /// Backend counts before and after.
    pub backend: Option<(BackendStats, BackendStats)>,
    /// Gateway counters before and after (summed over targets).
    pub gateway: Option<(GatewaySnapshot, GatewaySnapshot)>,
    /// Cumulative fallbacks seen by the scraper: (seconds since start, count).
    pub fallback_samples: Vec<(f64, u64)>,
    /// Responses without a `RateLimit-Policy` header.
    pub without_policy: u64,
    /// Further notes from the caller.
    pub notes: Vec<String>,
}

/// The envelope family that judges `algorithm` (bucket for unknown names).
pub fn family_of(algorithm: &str) -> Family {
    SimAlgorithm::from_str(algorithm).map_or(Family::Bucket, SimAlgorithm::family)
}

/// How an algorithm bounds what one key is admitted over an interval: the ground-truth
/// check's envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `burst + rate × span`: token bucket, GCRA, the seed's bucket.
    Bucket,
    /// `limit` in any window-length interval: the sliding log.
    Sliding,
    /// `limit` per window aligned to the store's clock: the fixed window and the sliding
    /// window counter. Where the windows fall is the store's business (the gateway's
    /// start in memory, the Unix epoch on Redis), so the bound takes the worst case.
    Aligned,
}

/// The bound that judges `algorithm` (bucket for unknown names).
pub fn bound_of(algorithm: &str) -> Bound {
    match SimAlgorithm::from_str(algorithm) {
        Ok(SimAlgorithm::SlidingLog) => Bound::Sliding,
        Ok(SimAlgorithm::FixedWindow | SimAlgorithm::SlidingWindow) => Bound::Aligned,
        _ => Bound::Bucket,
    }
}

/// The most requests of `endpoint` a key may have admitted over an interval of `span`
/// nanoseconds, in requests of the endpoint's cost:
/// - bucket: `burst + rate × span`;
/// - sliding: `limit × (⌊span / W⌋ + 1)`, the interval cut into window-length pieces;
/// - aligned: `limit × (⌈span / W⌉ + 1)`, the most aligned windows an interval of that
///   length meets — one more than the sliding bound unless `span` is a whole number of
///   windows, which is the fixed window's boundary burst.
pub fn envelope(endpoint: &Endpoint, bound: Bound, span: Nanos) -> u64 {
    let q = &endpoint.quota;
    let (p, l, span) = (q.period_nanos() as u128, q.limit() as u128, span as u128);
    let units = match bound {
        Bound::Bucket => (q.burst() as u128 * p + l * span) / p,
        Bound::Sliding => l * (span / p + 1),
        Bound::Aligned => l * (span.div_ceil(p) + 1),
    };
    (units / endpoint.cost.max(1) as u128) as u64
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 1 hour at 3 significant digits; these bounds are valid, so this is Ok.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| {
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits are valid"))
    })
}

fn latency_of(h: &Histogram<u64>) -> Option<LatencySummary> {
    (!h.is_empty()).then(|| LatencySummary {
        p50: h.value_at_quantile(0.5) as f64,
        p99: h.value_at_quantile(0.99) as f64,
        p999: h.value_at_quantile(0.999) as f64,
        max: h.max() as f64,
    })
}

fn ns_quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The reference decisions on the measured arrivals.
fn reference(plan: &Plan, measured: &Arrivals, family: Family) -> Decisions {
    match family {
        Family::Bucket => replay(
            plan,
            measured,
            |e| ExactTokenBucket::new(&e.quota),
            |l| l.state(),
            |l, s, at, cost| l.admit(s, at, cost),
        ),
        Family::Window => replay(
            plan,
            measured,
            |e| ExactSlidingLog::new(&e.quota),
            |l| l.state(),
            |l, s, at, cost| l.admit(s, at, cost),
        ),
    }
}

/// Plays the measured arrivals through one exact reference limiter per endpoint, with
/// one state per key.
fn replay<L, S>(
    plan: &Plan,
    measured: &Arrivals,
    build: impl Fn(&Endpoint) -> L,
    state: impl Fn(&L) -> S,
    admit: impl Fn(&L, &mut S, Nanos, u64) -> bool,
) -> Decisions {
    let w = &plan.workload;
    let limiters: Vec<L> = w.endpoints.iter().map(build).collect();
    let mut out = Decisions::new(measured.list.len());
    let mut states = HashMap::new();
    for (i, a) in measured.list.iter().enumerate() {
        let e = a.endpoint as usize;
        let s = states
            .entry(measured.key(a))
            .or_insert_with(|| state(&limiters[e]));
        if admit(&limiters[e], s, a.at, w.endpoints[e].cost) {
            out.admit(i);
        }
    }
    out
}

/// Builds the results of one measured run.
pub fn results(plan: &Plan, mut records: Vec<Record>, facts: &RunFacts) -> Results {
    let w = &plan.workload;
    records.sort_by_key(|r| (r.sent, r.index));
    let planned = &plan.arrivals;
    let phases = w.phases.len();

    // The requests as sent, with phases cut at the phase boundaries in time (a late
    // request counts in the phase it was sent in; the tail goes to the last phase).
    let list: Vec<Arrival> = records
        .iter()
        .map(|r| {
            let a = planned.list[r.index];
            Arrival { at: r.sent, ..a }
        })
        .collect();
    let mut phase_starts = vec![0];
    for p in &w.phases[1..] {
        phase_starts.push(list.partition_point(|a| a.at < p.start));
    }
    phase_starts.push(list.len());
    let measured = Arrivals {
        list,
        phase_starts,
        users: planned.users,
        endpoints: planned.endpoints,
    };

    let family = family_of(&facts.algorithm);
    let mut decisions = Decisions::new(records.len());
    for (i, r) in records.iter().enumerate() {
        if r.reply.class() == Class::Admitted {
            decisions.admit(i);
        }
    }
    let reference = reference(plan, &measured, family);
    let accounting = Accounting::new(w, &measured, None);
    let mut run: Run = accounting.run(&facts.algorithm, family, &decisions, &reference);

    // Statuses, latency and errors per phase and per second.
    let seconds = run.series.offered.len().max(1);
    let second_of = |at: Nanos| ((at / SECOND) as usize).min(seconds - 1);
    let mut phase_hist: Vec<Histogram<u64>> = (0..phases).map(|_| histogram()).collect();
    let mut second_hist: Vec<Histogram<u64>> = (0..seconds).map(|_| histogram()).collect();
    let mut total_hist = histogram();
    let mut rejected = vec![0u64; phases];
    let mut errors = vec![0u64; phases];
    let mut rejected_series = vec![0u64; seconds];
    let mut error_series = vec![0u64; seconds];
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for p in 0..phases {
        for r in &records[measured.phase_starts[p]..measured.phase_starts[p + 1]] {
            let us = (r.latency / 1_000).max(1);
            let _ = phase_hist[p].record(us);
            let _ = second_hist[second_of(r.sent)].record(us);
            let _ = total_hist.record(us);
            *statuses.entry(r.reply.label()).or_default() += 1;
            match r.reply.class() {
                Class::Admitted => {}
                Class::Rejected => {
                    rejected[p] += 1;
                    rejected_series[second_of(r.sent)] += 1;
                }
                Class::Error => {
                    errors[p] += 1;
                    error_series[second_of(r.sent)] += 1;
                }
            }
        }
    }
    for (p, s) in run.phases.iter_mut().enumerate() {
        s.rejected = rejected[p];
        s.errors = errors[p];
        s.latency_us = latency_of(&phase_hist[p]);
    }
    run.totals.rejected = rejected.iter().sum();
    run.totals.errors = errors.iter().sum();
    run.totals.latency_us = latency_of(&total_hist);
    run.series.rejected = rejected_series;
    run.series.latency_us = second_hist.iter().map(latency_of).collect();
    run.store = facts.store.clone();
    run.deployment = format!(
        "measured: {} gateway{} ({}), {}",
        facts.targets.len(),
        if facts.targets.len() == 1 { "" } else { "s" },
        facts.store,
        facts.driver
    );

    // Offered vs achieved, and lateness, per phase (lateness by the planned phase).
    let mut notes = Vec::new();
    let mut phase_loads = Vec::with_capacity(phases);
    let mut lags: Vec<Vec<u64>> = vec![Vec::new(); phases];
    for r in &records {
        let due = planned.list[r.index].at;
        let p = planned.phase_starts[1..]
            .partition_point(|&s| s <= r.index)
            .min(phases - 1);
        lags[p].push(r.sent.saturating_sub(due));
    }
    for (p, phase) in w.phases.iter().enumerate() {
        let secs = phase.duration as f64 / SECOND as f64;
        let planned_n = (planned.phase_starts[p + 1] - planned.phase_starts[p]) as u64;
        let sent = (measured.phase_starts[p + 1] - measured.phase_starts[p]) as u64;
        let lag = &mut lags[p];
        lag.sort_unstable();
        let late = lag.iter().filter(|&&l| l > facts.late_after).count() as u64;
        let offered_rate = planned_n as f64 / secs;
        let achieved_rate = sent as f64 / secs;
        let held = achieved_rate >= 0.95 * offered_rate && late as f64 <= 0.01 * planned_n as f64;
        let load = PhaseLoad {
            name: phase.name.clone(),
            planned: planned_n,
            sent,
            offered_rate: round4(offered_rate),
            achieved_rate: round4(achieved_rate),
            lag_ms_p50: round4(ns_quantile(lag, 0.5) as f64 / 1e6),
            lag_ms_p99: round4(ns_quantile(lag, 0.99) as f64 / 1e6),
            late,
            held,
        };
        let unsent = planned_n - lag.len() as u64;
        // A phase the run never finished because it was stopped is explained by the
        // stop note, not by the driver.
        let cut_short = facts.stopped.is_some() && unsent > 0;
        if !held && planned_n > 0 && !cut_short {
            let unsent = if unsent > 0 {
                format!(", {unsent} never sent")
            } else {
                String::new()
            };
            notes.push(format!(
                "the driver could not hold phase {:?}: {:.0}/s achieved of {:.0}/s offered, {} of {} requests more than {} ms late (p99 {:.1} ms){unsent}: the offered load sagged, so this phase's figures understate it (more goose users, --driver open, or a lower rate)",
                phase.name,
                achieved_rate,
                offered_rate,
                late,
                planned_n,
                facts.late_after / 1_000_000,
                load.lag_ms_p99
            ));
        }
        phase_loads.push(load);
    }

    // Ground truth: the backend's count per key against the client's, and both against
    // the envelope over the key's active span.
    let keys = measured.keys();
    let mut client_per_key: HashMap<usize, (u64, Nanos, Nanos)> = HashMap::new();
    for (i, a) in measured.list.iter().enumerate() {
        let r = &records[i];
        let e = client_per_key
            .entry(measured.key(a))
            .or_insert((0, Nanos::MAX, 0));
        e.0 += u64::from(decisions.admitted(i));
        e.1 = e.1.min(r.sent);
        e.2 = e.2.max(r.sent + r.latency);
    }
    let endpoints = measured.endpoints as usize;
    let bound = bound_of(&facts.algorithm);
    let over = |key: usize, count: u64| -> u64 {
        let Some(&(_, first, last)) = client_per_key.get(&key) else {
            return 0;
        };
        let e = &w.endpoints[key % endpoints];
        count.saturating_sub(envelope(e, bound, last.saturating_sub(first)))
    };
    let client_keys_over = client_per_key
        .iter()
        .filter(|(k, v)| over(**k, v.0) > 0)
        .count() as u64;
    let ground_truth = facts.backend.as_ref().map(|(before, after)| {
        let mut backend_per_key: HashMap<usize, u64> = HashMap::new();
        for (user, paths) in &after.users {
            let Some(u) = user_index(user) else { continue };
            if u >= measured.users {
                continue;
            }
            for (path, &n) in paths {
                let Some(e) = plan.endpoint_of(path) else { continue };
                let delta = n.saturating_sub(before.count(user, path));
                if delta > 0 {
                    *backend_per_key.entry(u as usize * endpoints + e).or_default() += delta;
                }
            }
        }
        let mut disagree = 0;
        let mut backend_over = 0;
        let mut worst = 0;
        let mut all: Vec<usize> = client_per_key.keys().chain(backend_per_key.keys()).copied().collect();
        all.sort_unstable();
        all.dedup();
        for k in all.into_iter().filter(|&k| k < keys) {
            let c = client_per_key.get(&k).map_or(0, |v| v.0);
            let b = backend_per_key.get(&k).copied().unwrap_or(0);
            disagree += u64::from(c != b);
            let x = over(k, b);
            backend_over += u64::from(x > 0);
            worst = worst.max(x);
        }
        let truth = GroundTruth {
            backend_total: after.total.saturating_sub(before.total),
            client_admitted: decisions.count(),
            keys_disagreeing: disagree,
            client_keys_over_envelope: client_keys_over,
            backend_keys_over_envelope: backend_over,
            backend_worst_excess: worst,
        };
        if truth.backend_total != truth.client_admitted || disagree > 0 {
            notes.push(format!(
                "client and backend disagree: the client saw {} admitted, the backend counted {} ({} keys differ) — another client, retries, or responses lost after the backend answered",
                truth.client_admitted, truth.backend_total, disagree
            ));
        }
        if after.untracked > before.untracked {
            notes.push(format!(
                "the backend stopped tracking new user+path pairs ({} untracked): per-key ground truth is incomplete",
                after.untracked - before.untracked
            ));
        }
        truth
    });
    if ground_truth.is_none() {
        notes.push(
            "no --backend given: admitted counts are the client's only, without ground truth"
                .to_owned(),
        );
    }

    let gateway = facts.gateway.as_ref().map(|(before, after)| {
        let d = after.since(before);
        GatewayCounters {
            allowed: d.allowed,
            denied: d.denied,
            unavailable: d.unavailable,
            fallbacks: d.fallbacks,
        }
    });

    // Fallbacks per second from the scraper's cumulative samples.
    let mut fallbacks = Vec::new();
    if !facts.fallback_samples.is_empty() {
        fallbacks = vec![0u64; seconds];
        let mut prev = facts.fallback_samples[0].1;
        for &(t, v) in &facts.fallback_samples[1..] {
            let s = if t <= 0.0 {
                0
            } else {
                (t as usize).min(seconds - 1)
            };
            fallbacks[s] += v.saturating_sub(prev);
            prev = prev.max(v);
        }
    }

    if facts.without_policy > 0 {
        notes.push(format!(
            "{} responses carried no RateLimit-Policy header: the target does not look like a ratelab gateway",
            facts.without_policy
        ));
    }
    let sent_total = records.len() as u64 + facts.unfinished;
    let unsent = plan.len() as u64 - sent_total.min(plan.len() as u64);
    if let Some(reason) = &facts.stopped {
        notes.push(format!(
            "stopped early: {reason}; the figures cover the {} of {} planned requests that were sent",
            sent_total,
            plan.len()
        ));
    } else if unsent > 0 {
        notes.push(format!("{unsent} planned requests were never sent"));
    }
    if facts.unfinished > 0 {
        notes.push(format!(
            "{} requests were still in flight when the run ended and are not counted",
            facts.unfinished
        ));
    }
    notes.extend(facts.notes.iter().cloned());

    let measurement = Measurement {
        algorithm: facts.algorithm.clone(),
        store: facts.store.clone(),
        driver: facts.driver.clone(),
        targets: facts.targets.clone(),
        time_scale: facts.scale.time,
        rate_scale: facts.scale.rate,
        complete: facts.stopped.is_none() && unsent == 0 && facts.unfinished == 0,
        notes,
        phases: phase_loads,
        statuses,
        ground_truth,
        gateway,
        series: MeasuredSeries {
            step_s: 1.0,
            errors: error_series,
            fallbacks,
        },
    };

    let mut results = Results::new(ResultSource::Measured, w.info(plan.seed));
    results.runs.push(run);
    results.measurements.push(measurement);
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::http::record::Reply;
    use crate::workload::Workload;

    fn facts(algorithm: &str) -> RunFacts {
        RunFacts {
            algorithm: algorithm.into(),
            store: "memory".into(),
            driver: "test".into(),
            targets: vec!["http://127.0.0.1:1".into()],
            scale: Scale::default(),
            late_after: 10_000_000,
            stopped: None,
            unfinished: 0,
            backend: None,
            gateway: None,
            fallback_samples: vec![],
            without_policy: 0,
            notes: vec![],
        }
    }

    /// The seed workload, sent on time, with a perfect token bucket's decisions.
    fn perfect_seed() -> (Plan, Vec<Record>) {
        let w = Workload::load("seed").unwrap();
        let plan = Plan::new(w, 1).unwrap();
        let bucket = ExactTokenBucket::new(&plan.workload.endpoints[0].quota);
        let mut state = bucket.state();
        let records = plan
            .arrivals
            .list
            .iter()
            .enumerate()
            .map(|(index, a)| Record {
                index,
                sent: a.at,
                latency: 2_000_000,
                reply: if bucket.admit(&mut state, a.at, 1) {
                    Reply::Status(200)
                } else {
                    Reply::Status(429)
                },
            })
            .collect();
        (plan, records)
    }

    #[test]
    fn a_perfect_run_is_judged_perfect() {
        let (plan, records) = perfect_seed();
        let mut f = facts("token-bucket");
        let mut before = BackendStats::default();
        before
            .users
            .insert("user-0".into(), HashMap::from([("/api/orders".into(), 3)]));
        before.total = 3;
        let mut after = before.clone();
        after.total += 17;
        after
            .users
            .insert("user-0".into(), HashMap::from([("/api/orders".into(), 20)]));
        f.backend = Some((before, after));
        let r = results(&plan, records, &f);
        r.check().unwrap();
        let run = &r.runs[0];
        assert_eq!(run.totals.offered, 4200);
        assert_eq!(run.totals.admitted, 17);
        assert_eq!(run.totals.rejected, 4183);
        assert_eq!(run.totals.errors, 0);
        assert_eq!(run.totals.over_admission, 0);
        assert_eq!(run.totals.under_admission, 0);
        assert_eq!(run.totals.envelope_excess, 0.0);
        assert_eq!(run.totals.latency_us.unwrap().p50, 2000.0);
        assert_eq!(run.series.latency_us.len(), 150);
        let m = &r.measurements[0];
        assert!(m.complete, "{:?}", m.notes);
        assert!(m.phases.iter().all(|p| p.held));
        assert_eq!(m.phases[2].planned, 1800);
        assert_eq!(m.phases[2].offered_rate, 60.0);
        let g = m.ground_truth.as_ref().unwrap();
        assert_eq!(
            (g.backend_total, g.client_admitted, g.keys_disagreeing),
            (17, 17, 0)
        );
        assert_eq!(
            (g.client_keys_over_envelope, g.backend_keys_over_envelope),
            (0, 0)
        );
        assert_eq!(m.statuses.get("429"), Some(&4183));
    }

    #[test]
    fn late_partial_and_overadmitting_runs_are_marked() {
        let (plan, mut records) = perfect_seed();
        // Every request of the steady phase 50 ms late, the last 100 never sent (the run
        // was interrupted), and the backend counting 30 when the client saw more than 17.
        for r in &mut records[600..2400] {
            r.sent += 50_000_000;
        }
        records.truncate(4100);
        for r in &mut records[600..605] {
            r.reply = Reply::Status(200);
        }
        let admitted = records
            .iter()
            .filter(|r| r.reply == Reply::Status(200))
            .count() as u64;
        assert!(admitted > 17);
        let mut f = facts("token-bucket");
        f.stopped = Some("interrupted".into());
        let mut after = BackendStats {
            total: 30,
            ..BackendStats::default()
        };
        after
            .users
            .insert("user-0".into(), HashMap::from([("/api/orders".into(), 30)]));
        f.backend = Some((BackendStats::default(), after));
        let r = results(&plan, records, &f);
        let m = &r.measurements[0];
        assert!(!m.complete);
        assert!(!m.phases[1].held);
        assert!(m.phases[0].held);
        let text = m.notes.join("\n");
        assert!(text.contains("could not hold phase \"steady\""), "{text}");
        assert!(
            !text.contains("could not hold phase \"spike\""),
            "cut short by the stop: {text}"
        );
        assert!(text.contains("stopped early: interrupted"), "{text}");
        assert!(text.contains("disagree"), "{text}");
        let g = m.ground_truth.as_ref().unwrap();
        assert_eq!(g.client_admitted, admitted);
        assert_eq!(g.keys_disagreeing, 1);
        assert!(g.backend_keys_over_envelope == 1 && g.backend_worst_excess > 0);
        assert!(r.runs[0].totals.over_admission >= 4);
    }

    #[test]
    fn envelopes() {
        let w = Workload::load("seed").unwrap();
        let e = &w.endpoints[0];
        assert_eq!(envelope(e, Bound::Bucket, 0), 5);
        assert_eq!(envelope(e, Bound::Bucket, 150 * SECOND), 17);
        // 5 per 60 s. A sliding log admits 5 in any 60 s, so 5 over 59 s and 10 over
        // 60 s (both ends included).
        assert_eq!(envelope(e, Bound::Sliding, 0), 5);
        assert_eq!(envelope(e, Bound::Sliding, 59 * SECOND), 5);
        assert_eq!(envelope(e, Bound::Sliding, 60 * SECOND), 10);
        // Aligned windows: 59 s can straddle a boundary (5 at its end, 5 after it);
        // 61 s can meet three windows; an instant meets one.
        assert_eq!(envelope(e, Bound::Aligned, 0), 5);
        assert_eq!(envelope(e, Bound::Aligned, 59 * SECOND), 10);
        assert_eq!(envelope(e, Bound::Aligned, 60 * SECOND), 10);
        assert_eq!(envelope(e, Bound::Aligned, 61 * SECOND), 15);
        assert_eq!(bound_of("sliding-log"), Bound::Sliding);
        assert_eq!(bound_of("sliding-window"), Bound::Aligned);
        assert_eq!(bound_of("fixed-window"), Bound::Aligned);
        assert_eq!(bound_of("gcra"), Bound::Bucket);
        assert_eq!(family_of("fixed-window"), Family::Window);
        assert_eq!(family_of("gcra"), Family::Bucket);
    }
}
