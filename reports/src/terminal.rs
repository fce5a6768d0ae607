//! What `ratelab simulate`, `ratelab load` and `ratelab report` print: one rendering of
//! a results file for the terminal, so the three commands show the same tables for the
//! same results. `report` on a measured run prints what `load` printed.

use std::time::Duration;

use results::{Measurement, ResultSource, Results, Run};

use crate::format::{excess, ms, rate, seconds, thousands};
use crate::summary;
use crate::table::{Align, Table};

/// Figures a command knows beyond the results file, shown beside them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extras {
    /// The simulator's cost per decision, nanoseconds, one per run in order (empty:
    /// no column).
    pub ns_per_decision: Vec<f64>,
}

/// The whole terminal view of `results`: the workload, the comparison of every run,
/// admissions by phase and, for measured runs, how the load went.
pub fn render(results: &Results, extras: &Extras) -> String {
    let mut out = header(results);
    out.push('\n');
    let mut comparison = summary::summary(results);
    if !extras.ns_per_decision.is_empty() {
        let cells = extras
            .ns_per_decision
            .iter()
            .map(|ns| format!("{ns:.1}"))
            .collect();
        comparison.push_column("ns/decision", Align::Right, cells);
    }
    out.push_str(&comparison.to_text());
    out.push('\n');
    out.push_str(&summary::admitted_by_phase(results).to_text());
    for (run, m) in results.runs.iter().zip(&results.measurements) {
        out.push_str(&measured(run, m));
    }
    out.push_str(&crate::trace::terminal(results));
    out.push_str(&crate::store_modes::terminal(results));
    out
}

/// What was played: the workload, its traffic, its deployment and its policies.
pub fn header(results: &Results) -> String {
    let w = &results.workload;
    let mut out = format!("workload {}", w.name);
    if !w.description.is_empty() {
        out.push_str(&format!(" — {}", w.description));
    }
    out.push('\n');
    let how = match results.source {
        ResultSource::Simulated => "simulated",
        ResultSource::Measured => "measured",
    };
    let requests = results.runs.first().map_or(0, |r| r.totals.offered);
    out.push_str(&format!(
        "{how} · {} requests over {} · {} user{} ({}) · {} arrivals · seed {}",
        thousands(requests),
        seconds(w.duration_s),
        thousands(w.users),
        if w.users == 1 { "" } else { "s" },
        w.user_distribution,
        w.arrivals,
        w.seed,
    ));
    if let Some(run) = results.runs.first().filter(|r| !r.deployment.is_empty()) {
        out.push_str(&format!(" · {}", run.deployment));
    }
    out.push('\n');
    let weights: f64 = w.endpoints.iter().map(|e| e.weight).sum();
    for e in &w.endpoints {
        out.push_str(&format!(
            "  {}: {} per {}, bursts of {}",
            e.path,
            thousands(e.limit),
            seconds(e.window_s),
            thousands(e.burst)
        ));
        if e.cost != 1 {
            out.push_str(&format!(", cost {}", e.cost));
        }
        if w.endpoints.len() > 1 && weights > 0.0 {
            out.push_str(&format!(
                " ({:.0}% of requests)",
                e.weight * 100.0 / weights
            ));
        }
        out.push('\n');
    }
    out
}

/// One measured run: offered vs achieved and latency per phase, then accuracy, ground
/// truth, the gateways' counters and the notes.
pub fn measured(run: &Run, m: &Measurement) -> String {
    let mut out = format!("\n{} on {} — {}\n", run.algorithm, run.store, m.driver);
    out.push_str(&load_by_phase(run, m).to_text());
    out.push_str(&format!(
        "accuracy: envelope excess {} · over-admission {} · under-admission {} (vs {})\n",
        excess(run.totals.envelope_excess),
        thousands(run.totals.over_admission),
        thousands(run.totals.under_admission),
        run.reference
    ));
    if let Some(b) = run.totals.boundary_burst {
        out.push_str(&format!(
            "boundary burst: {} admitted beyond `limit` per window length (refused by the exact sliding log)\n",
            thousands(b)
        ));
    }
    if let Some(g) = &m.ground_truth {
        out.push_str(&format!(
            "ground truth: backend counted {}, client saw {} admitted ({} keys differ); keys over the envelope: client {}, backend {}\n",
            thousands(g.backend_total),
            thousands(g.client_admitted),
            thousands(g.keys_disagreeing),
            thousands(g.client_keys_over_envelope),
            thousands(g.backend_keys_over_envelope)
        ));
    }
    if let Some(g) = &m.gateway {
        out.push_str(&format!(
            "gateways: {} allowed, {} denied, {} unavailable, {} store fallbacks\n",
            thousands(g.allowed),
            thousands(g.denied),
            thousands(g.unavailable),
            thousands(g.fallbacks)
        ));
    }
    for n in &m.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

/// Per phase and in total: offered vs achieved rate, lateness, outcomes, latency (ms).
/// A rate the driver did not hold is marked `!`.
fn load_by_phase(run: &Run, m: &Measurement) -> Table {
    let mut t = Table::new(&[
        ("phase", Align::Left),
        ("offered/s", Align::Right),
        ("achieved/s", Align::Right),
        ("lag p99 ms", Align::Right),
        ("sent", Align::Right),
        ("admitted", Align::Right),
        ("429", Align::Right),
        ("errors", Align::Right),
        ("p50 ms", Align::Right),
        ("p99 ms", Align::Right),
        ("p99.9 ms", Align::Right),
    ]);
    let loads = m.phases.iter().map(Some).chain([None]);
    for (s, p) in run.phases.iter().chain([&run.totals]).zip(loads) {
        let lat = s.latency_us;
        t.row(vec![
            s.name.clone(),
            p.map_or(String::new(), |p| rate(p.offered_rate)),
            p.map_or(String::new(), |p| {
                format!(
                    "{}{}",
                    rate(p.achieved_rate),
                    if p.held { "" } else { " !" }
                )
            }),
            p.map_or(String::new(), |p| format!("{:.1}", p.lag_ms_p99)),
            thousands(s.offered),
            thousands(s.admitted),
            thousands(s.rejected),
            thousands(s.errors),
            lat.map_or("-".into(), |l| ms(l.p50)),
            lat.map_or("-".into(), |l| ms(l.p99)),
            lat.map_or("-".into(), |l| ms(l.p999)),
        ]);
    }
    t
}

/// The simulator's own speed: decisions, time in the decision loops, the whole run.
pub fn decisions_line(decisions: u64, busy: Duration, whole: Duration) -> String {
    let per_second = if busy.is_zero() {
        0.0
    } else {
        decisions as f64 / busy.as_secs_f64() / 1e6
    };
    format!(
        "{} simulated decisions in {:.1} ms ({per_second:.1} million/s on one core); whole run {:.2} s\n",
        thousands(decisions),
        busy.as_secs_f64() * 1e3,
        whole.as_secs_f64(),
    )
}
