//! The store-mode curve's table (the `store_modes` section of the results): per
//! algorithm and mode, what sharing one store cost — store calls per decision, decision
//! latency — beside what it bought: envelope excess, over- and under-admission against
//! the exact reference. As text for the terminal and as Markdown for the report (the
//! plot is `plots::store_modes`).

use results::{Results, StorePoint};

use crate::format::{deviation, excess, ms, thousands};
use crate::table::{Align, Table};

/// One row per point, in the order played; `None` without a curve.
pub fn table(results: &Results) -> Option<Table> {
    let curve = results.store_modes.as_ref()?;
    let mut table = Table::new(&[
        ("algorithm", Align::Left),
        ("mode", Align::Left),
        ("stated bound", Align::Right),
        ("store calls/decision", Align::Right),
        ("p50 ms", Align::Right),
        ("p99 ms", Align::Right),
        ("envelope excess", Align::Right),
        ("over", Align::Right),
        ("under", Align::Right),
        ("local allowed", Align::Right),
        ("local denied", Align::Right),
        ("stranded", Align::Right),
    ]);
    for p in &curve.points {
        let Some(run) = results.runs.get(p.run) else {
            continue;
        };
        let t = &run.totals;
        let latency = |f: fn(&results::LatencySummary) -> f64| {
            t.latency_us.as_ref().map_or("–".to_owned(), |l| ms(f(l)))
        };
        table.row(vec![
            p.algorithm.clone(),
            p.label(),
            p.excess_bound
                .map_or("none".to_owned(), |b| format!("+{b}")),
            format!("{:.4}", p.calls_per_decision),
            latency(|l| l.p50),
            latency(|l| l.p99),
            excess(t.envelope_excess),
            deviation(t.over_admission, t.reference_admitted, '+'),
            deviation(t.under_admission, t.reference_admitted, '−'),
            thousands(p.local_allowed),
            thousands(p.local_denied),
            thousands(p.stranded),
        ]);
    }
    Some(table)
}

/// What the curve played, in one line.
fn played(results: &Results) -> Option<String> {
    let c = results.store_modes.as_ref()?;
    Some(format!(
        "{} gateways, store round trip {} ms ± {} ms, {} points",
        c.gateways,
        ms(c.rtt_us),
        ms(c.jitter_us),
        c.points.len()
    ))
}

/// The section for the terminal; empty without a curve.
pub fn terminal(results: &Results) -> String {
    let (Some(table), Some(played)) = (table(results), played(results)) else {
        return String::new();
    };
    format!("\nstore modes: {played}\n{}", table.to_text())
}

/// The section for `report.md`; empty without a curve.
pub fn markdown(results: &Results) -> String {
    let (Some(table), Some(played)) = (table(results), played(results)) else {
        return String::new();
    };
    let mut out = format!("\n## Store modes: accuracy against cost\n\n{played}.\n\n");
    out.push_str(READING);
    out.push('\n');
    out.push_str(&table.to_markdown());
    out
}

const READING: &str = "Each gateway keeps, per key, the library's own lease book \
(`limiter_core::store::lease::KeyLease`) and asks one shared store (the algorithm's \
state, answered as the Redis scripts answer) in virtual time. `exact`: a store call \
per decision that is not refused locally; `lease MAX/TTL`: leases of up to `MAX` \
units spent locally, dropped (stranded) after `TTL`; `local`: each gateway alone on \
its own memory store, no call, no sharing. *Stated bound*: the mode's worst case over \
the envelope per key in any interval (N × `lease.max`). Latency counts from the \
arrival to the answer: one round trip for a store call, up to two for a request that \
waited for a lease in flight, 0 for a decision made locally. Accuracy is judged at \
the arrival instants against the exact reference, as for every run.\n";

/// Rows for a plot: each point with its run's figures.
pub(crate) fn points(results: &Results) -> Vec<(&StorePoint, &results::Run)> {
    let Some(c) = &results.store_modes else {
        return Vec::new();
    };
    c.points
        .iter()
        .filter_map(|p| results.runs.get(p.run).map(|r| (p, r)))
        .collect()
}
