//! From recorded requests to `ratelab.results/1`: the same accuracy figures as the
//! simulator, plus what only a real run has (offered vs achieved, lateness, statuses,
//! the backend's count, the gateways' counters).
//!
//! The guarantees:
//! - accuracy is computed by the simulator's own accounting ([`Accounting`]) on the
//!   requests as actually sent (their send instants, in order), judged against the
//!   same exact reference limiter on those instants — so simulated and measured
//!   figures mean the same thing. The client sees send instants, not the gateway's
//!   decision instants; they differ by at most one round trip;
//! - `admitted` counts responses the backend answered through the gateway
//!   ([`Reply::class`](crate::drivers::http::record::Reply::class)); `rejected` counts 429s
//!   only; everything else is an `error`;
//! - the backend's count is compared key by key with the client's, and both with the
//!   algorithm's envelope over the key's active span (first send to last response)
//!   ([`super::ground_truth`]), so a disagreement or an over-admission is
//!   a number in the results, not a guess.

use limiter_core::Nanos;
use limiter_core::algorithm::Reference;
use results::{GatewayCounters, MeasuredSeries, Measurement, ResultSource, Results, Run};

use super::accounting::Accounting;
use super::decisions::Decisions;
use super::delivery::{self, Responses};
use super::ground_truth::{self, EnvelopeCheck, StoreClock};
use super::windows;
use crate::arrivals::{Arrival, Arrivals};
use crate::drivers::http::client::{BackendStats, GatewaySnapshot};
use crate::drivers::http::plan::{LoadPlan, Scale};
use crate::drivers::http::record::{Class, Record};
use crate::drivers::simulated::SimAlgorithm;

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
    /// The Unix instant (ns) of the schedule's start, so windowed envelopes fall on a
    /// Redis store's epoch-aligned windows.
    pub unix_start: Option<Nanos>,
}

/// The exact reference that judges `algorithm` (the token bucket for names the
/// simulator does not know).
pub fn reference_of(algorithm: &str) -> Reference {
    algorithm
        .parse::<SimAlgorithm>()
        .map_or(Reference::TokenBucket, SimAlgorithm::reference)
}

/// The requests as sent (`records` sorted by send instant), with phases cut at the
/// phase boundaries in time: a late request counts in the phase it was sent in; the
/// tail goes to the last phase.
fn measured_arrivals(plan: &LoadPlan, records: &[Record]) -> Arrivals {
    let planned = &plan.arrivals;
    let list: Vec<Arrival> = records
        .iter()
        .map(|r| {
            let a = planned.list[r.index];
            Arrival { at: r.sent, ..a }
        })
        .collect();
    let mut phase_starts = vec![0];
    for p in &plan.workload.phases[1..] {
        phase_starts.push(list.partition_point(|a| a.at < p.start));
    }
    phase_starts.push(list.len());
    Arrivals {
        list,
        phase_starts,
        users: planned.users,
        endpoints: planned.endpoints,
    }
}

/// Builds the results of one measured run.
pub fn results(plan: &LoadPlan, mut records: Vec<Record>, facts: &RunFacts) -> Results {
    let w = &plan.workload;
    records.sort_by_key(|r| (r.sent, r.index));
    let measured = measured_arrivals(plan, &records);
    let judge = reference_of(&facts.algorithm);
    let mut decisions = Decisions::new(records.len());
    for (i, r) in records.iter().enumerate() {
        if r.reply.class() == Class::Admitted {
            decisions.admit(i);
        }
    }
    let clock = StoreClock::for_store(&facts.store, facts.unix_start);
    let (judge, reference) = windows::reference(w, (&measured, &records), judge, clock);
    let accounting = Accounting::new(w, &measured, None);
    let mut run: Run = accounting.run(&facts.algorithm, judge, &decisions, &reference);
    let responses = delivery::responses(&mut run, &records, (&plan.arrivals, &measured));
    run.store = facts.store.clone();
    run.deployment = format!(
        "measured: {} gateway{} ({}), {}",
        facts.targets.len(),
        if facts.targets.len() == 1 { "" } else { "s" },
        facts.store,
        facts.driver
    );

    let mut notes = Vec::new();
    let phase_loads =
        delivery::phase_loads(w, (&plan.arrivals, &measured), &records, facts, &mut notes);
    let client = ground_truth::client_per_key(&measured, &records, &decisions);
    let check = EnvelopeCheck::new(plan, &client, &facts.algorithm, clock);
    notes.extend(ground_truth::window_note(plan, &facts.algorithm, clock));
    let ground_truth = facts.backend.as_ref().map(|(before, after)| {
        ground_truth::ground_truth(&check, (before, after), decisions.count(), &mut notes)
    });
    if ground_truth.is_none() {
        notes.push(
            "no --backend given: admitted counts are the client's only, without ground truth"
                .to_owned(),
        );
    }
    let seconds = run.series.offered.len().max(1);
    let unsent = run_notes(plan, records.len() as u64, facts, &mut notes);
    let Responses {
        statuses,
        error_series,
    } = responses;
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
        gateway: gateway_counters(facts.gateway.as_ref()),
        series: MeasuredSeries {
            step_s: run.series.step_s,
            errors: error_series,
            fallbacks: fallbacks_per_bin(&facts.fallback_samples, (run.series.step_s, seconds)),
        },
    };
    let mut results = Results::new(ResultSource::Measured, w.info(plan.seed));
    results.runs.push(run);
    results.measurements.push(measurement);
    results
}

/// The gateways' counters over the run, when they were read.
fn gateway_counters(
    gateway: Option<&(GatewaySnapshot, GatewaySnapshot)>,
) -> Option<GatewayCounters> {
    gateway.map(|(before, after)| {
        let d = after.since(before);
        GatewayCounters {
            allowed: d.allowed,
            denied: d.denied,
            unavailable: d.unavailable,
            fallbacks: d.fallbacks,
        }
    })
}

/// Fallbacks per bin (`step_s` wide, `seconds` of them: the run's series) from the
/// scraper's cumulative `(seconds since start, count)` samples; empty when there are
/// none.
fn fallbacks_per_bin(samples: &[(f64, u64)], (step_s, seconds): (f64, usize)) -> Vec<u64> {
    let Some(&(_, first)) = samples.first() else {
        return Vec::new();
    };
    let mut fallbacks = vec![0u64; seconds];
    let mut prev = first;
    for &(t, v) in &samples[1..] {
        let s = if t <= 0.0 {
            0
        } else {
            ((t / step_s) as usize).min(seconds - 1)
        };
        fallbacks[s] += v.saturating_sub(prev);
        prev = prev.max(v);
    }
    fallbacks
}

/// Notes on what the run did not cover (foreign targets, a stop, requests never sent
/// or never finished, the caller's own); returns the number of planned requests never
/// sent.
fn run_notes(plan: &LoadPlan, recorded: u64, facts: &RunFacts, notes: &mut Vec<String>) -> u64 {
    if facts.without_policy > 0 {
        notes.push(format!(
            "{} responses carried no RateLimit-Policy header: the target does not look like a ratelab gateway",
            facts.without_policy
        ));
    }
    let sent_total = recorded + facts.unfinished;
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
    unsent
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::drivers::http::record::Reply;
    use crate::workload::Workload;
    use limiter_core::algorithm::reference::ExactTokenBucket;

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
            unix_start: None,
        }
    }

    /// The seed workload, sent on time, with a perfect token bucket's decisions.
    fn perfect_seed() -> (LoadPlan, Vec<Record>) {
        let w = Workload::load("seed").unwrap();
        let plan = LoadPlan::new(w, 1).unwrap();
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
        // Phase-aligned bins: 30 s, 60 s and 60 s phases in 1.5 s bins.
        assert_eq!(run.series.step_s, 1.5);
        assert_eq!(run.series.latency_us.len(), 100);
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
        assert!(
            !m.phases[2].held,
            "a phase cut short by the stop is never held"
        );
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
        // Coordinated omission corrected: the steady phase's requests took 2 ms once
        // sent, but left 50 ms late, so their latency from the due instant is 52 ms;
        // the service time and the lag say which part was which.
        let steady = &m.phases[1];
        assert_eq!(steady.service_latency_us.map(|l| l.p50), Some(2000.0));
        assert_eq!(steady.lag_ms_p50, 50.0);
        let from_due = r.runs[0].phases[1].latency_us.unwrap();
        assert!(
            (51_900.0..=52_100.0).contains(&from_due.p50),
            "{from_due:?}"
        );
        assert_eq!(m.phases[0].service_latency_us.map(|l| l.p50), Some(2000.0));
        assert_eq!(r.runs[0].phases[0].latency_us.map(|l| l.p50), Some(2000.0));
    }

    #[test]
    fn references() {
        assert_eq!(reference_of("fixed-window"), Reference::FixedWindow);
        assert_eq!(reference_of("gcra"), Reference::TokenBucket);
        assert_eq!(reference_of("seed-replica"), Reference::TokenBucket);
        assert_eq!(reference_of("no-such-thing"), Reference::TokenBucket);
        // Every registered algorithm is judged as limiter-core says, with no list here.
        for k in limiter_core::Kind::ALL {
            assert_eq!(reference_of(k.name()), k.reference(), "{k}");
        }
    }
}
