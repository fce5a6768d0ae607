//! How a measured run's load was delivered and answered: statuses, latency and errors
//! per phase and per second, and offered vs achieved load with lateness per phase.
//!
//! The guarantee: every record is counted once, in the phase it was sent in (by time),
//! while lateness is judged against the phase it was planned in; a phase the driver
//! could not hold gets a note that says by how much, unless the run was stopped.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use limiter_core::Nanos;
use results::{LatencySummary, PhaseLoad, Run, round4};

use super::measured::RunFacts;
use crate::arrivals::Arrivals;
use crate::drivers::http::record::{Class, Record};
use crate::workload::{SECOND, Workload};

/// A latency histogram in microseconds: 1 µs to 1 hour at 3 significant digits.
fn histogram() -> Histogram<u64> {
    // These bounds are valid, so this is Ok.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| {
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits are valid"))
    })
}

/// Percentiles of a histogram, `None` when it is empty.
fn latency_of(h: &Histogram<u64>) -> Option<LatencySummary> {
    (!h.is_empty()).then(|| LatencySummary {
        p50: h.value_at_quantile(0.5) as f64,
        p99: h.value_at_quantile(0.99) as f64,
        p999: h.value_at_quantile(0.999) as f64,
        max: h.max() as f64,
    })
}

/// Nearest-rank quantile `q` of sorted values; 0 when there are none.
fn ns_quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What the responses say beyond the run's own figures.
pub(crate) struct Responses {
    /// Responses by status label (`"200"`, `"429"`, `"timeout"`).
    pub(crate) statuses: BTreeMap<String, u64>,
    /// Errors per second.
    pub(crate) error_series: Vec<u64>,
}

/// Microseconds from the instant a request was due (`planned`) to its complete
/// response: its service time plus how late it left — coordinated omission corrected,
/// as wrk2 does, so a stall that held requests back in the load generator shows in the
/// latency instead of hiding as fewer, faster requests. A request that left early
/// (at most one timer tick) counts from when it left.
fn latency_from_due(r: &Record, planned: &Arrivals) -> u64 {
    let due = planned.list[r.index].at;
    ((r.latency + r.sent.saturating_sub(due)) / 1_000).max(1)
}

/// Fills `run` with what the responses say: rejected (429s) and errors per phase and
/// per second, latency (from each request's due instant) per phase, per second and in
/// total. `records` are in the order of the `measured` arrivals.
pub(crate) fn responses(
    run: &mut Run,
    records: &[Record],
    (planned, measured): (&Arrivals, &Arrivals),
) -> Responses {
    let phases = run.phases.len();
    let seconds = run.series.offered.len().max(1);
    // The run's bins (phase-aligned, `step_s` wide), not whole seconds.
    let bin = ((run.series.step_s * SECOND as f64).round() as Nanos).max(1);
    let second_of = |at: Nanos| ((at / bin) as usize).min(seconds - 1);
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
            let us = latency_from_due(r, planned);
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
    Responses {
        statuses,
        error_series,
    }
}

/// Offered vs achieved and lateness per phase (lateness by the phase each request was
/// planned in); notes each phase the driver could not hold.
pub(crate) fn phase_loads(
    w: &Workload,
    (planned, measured): (&Arrivals, &Arrivals),
    records: &[Record],
    facts: &RunFacts,
    notes: &mut Vec<String>,
) -> Vec<PhaseLoad> {
    let phases = w.phases.len();
    let mut lags: Vec<Vec<u64>> = vec![Vec::new(); phases];
    let mut service: Vec<Histogram<u64>> = (0..phases).map(|_| histogram()).collect();
    for r in records {
        let due = planned.list[r.index].at;
        let p = planned.phase_starts[1..]
            .partition_point(|&s| s <= r.index)
            .min(phases - 1);
        lags[p].push(r.sent.saturating_sub(due));
        let _ = service[p].record((r.latency / 1_000).max(1));
    }
    let mut out = Vec::with_capacity(phases);
    for (p, phase) in w.phases.iter().enumerate() {
        let secs = phase.duration as f64 / SECOND as f64;
        let planned_n = (planned.phase_starts[p + 1] - planned.phase_starts[p]) as u64;
        let sent = (measured.phase_starts[p + 1] - measured.phase_starts[p]) as u64;
        let lag = &mut lags[p];
        lag.sort_unstable();
        let late = lag.iter().filter(|&&l| l > facts.late_after).count() as u64;
        let offered_rate = planned_n as f64 / secs;
        let achieved_rate = sent as f64 / secs;
        let unsent = planned_n - lag.len() as u64;
        // A phase held its rate only if every request it planned went out: a run stopped
        // mid-phase sends its backlog late, by send time inside this phase, which would
        // otherwise read as a high achieved rate with no late request of its own.
        let held = unsent == 0
            && achieved_rate >= 0.95 * offered_rate
            && late as f64 <= 0.01 * planned_n as f64;
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
            service_latency_us: latency_of(&service[p]),
        };
        // A phase the run never finished because it was stopped is explained by the
        // stop note, not by the driver.
        let cut_short = facts.stopped.is_some() && unsent > 0;
        if !held && planned_n > 0 && !cut_short {
            notes.push(not_held(
                &load,
                (offered_rate, achieved_rate),
                unsent,
                facts,
            ));
        }
        out.push(load);
    }
    out
}

/// The note for a phase the driver could not hold.
fn not_held(
    load: &PhaseLoad,
    (offered_rate, achieved_rate): (f64, f64),
    unsent: u64,
    facts: &RunFacts,
) -> String {
    let unsent = if unsent > 0 {
        format!(", {unsent} never sent")
    } else {
        String::new()
    };
    format!(
        "the driver could not hold phase {:?}: {:.0}/s achieved of {:.0}/s offered, {} of {} requests more than {} ms late (p99 {:.1} ms){unsent}: the offered load sagged, so this phase's figures understate it (more goose users, --driver open, or a lower rate)",
        load.name,
        achieved_rate,
        offered_rate,
        load.late,
        load.planned,
        facts.late_after / 1_000_000,
        load.lag_ms_p99
    )
}
