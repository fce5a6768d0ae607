//! The comparison tables of one results file — every run side by side, admissions by
//! phase, every figure by phase, the policies — for the terminal and for `report.md`.

use results::{PhaseStats, Results, Run};

use crate::format::{deviation, excess, ratio, seconds, thousands, wronged};
use crate::table::{Align, Table};

/// A run's name in a table: its algorithm, and its store when the runs differ in store.
pub fn run_label(results: &Results, run: &Run) -> String {
    if results.runs.iter().any(|r| r.store != run.store) {
        format!("{} ({})", run.algorithm, run.store)
    } else {
        run.algorithm.clone()
    }
}

fn stats_cells(s: &PhaseStats) -> Vec<String> {
    vec![
        thousands(s.admitted),
        thousands(s.rejected),
        thousands(s.reference_admitted),
        deviation(s.over_admission, s.reference_admitted, '+'),
        deviation(s.under_admission, s.reference_admitted, '−'),
        excess(s.envelope_excess),
        ratio(s.burst_ratio),
    ]
}

/// The comparison of every run over the whole workload: one row per run.
pub fn summary(results: &Results) -> Table {
    let latency = results.has_latency();
    let mut columns = vec![
        ("algorithm", Align::Left),
        ("admitted", Align::Right),
        ("rejected", Align::Right),
        ("exact", Align::Right),
        ("over", Align::Right),
        ("under", Align::Right),
        ("excess", Align::Right),
        ("burst", Align::Right),
        ("wronged", Align::Right),
        ("bytes/key", Align::Right),
    ];
    if latency {
        columns.push(("p99 µs", Align::Right));
    }
    let mut t = Table::new(&columns);
    for run in &results.runs {
        let mut cells = vec![run_label(results, run)];
        cells.extend(stats_cells(&run.totals));
        cells.push(wronged(run.totals.wronged_users));
        cells.push(thousands(run.memory_per_key_bytes));
        if latency {
            cells.push(
                run.totals
                    .latency_us
                    .map_or_else(|| "–".to_owned(), |l| format!("{:.0}", l.p99)),
            );
        }
        t.row(cells);
    }
    t
}

/// Admitted per phase, one row per run and one column per phase: the shape of each
/// algorithm's answer over time, at a glance.
pub fn admitted_by_phase(results: &Results) -> Table {
    let mut columns: Vec<(String, Align)> = vec![("admitted by phase".to_owned(), Align::Left)];
    for p in &results.workload.phases {
        columns.push((p.name.clone(), Align::Right));
    }
    let refs: Vec<(&str, Align)> = columns.iter().map(|(h, a)| (h.as_str(), *a)).collect();
    let mut t = Table::new(&refs);
    let offered: Option<&Run> = results.runs.first();
    if let Some(run) = offered {
        let mut cells = vec!["offered".to_owned()];
        cells.extend(run.phases.iter().map(|s| thousands(s.offered)));
        t.row(cells);
    }
    let mut seen: Vec<&str> = Vec::new();
    for run in &results.runs {
        if run.reference.is_empty() || seen.contains(&run.reference.as_str()) {
            continue;
        }
        seen.push(&run.reference);
        let mut cells = vec![run.reference.clone()];
        cells.extend(run.phases.iter().map(|s| thousands(s.reference_admitted)));
        t.row(cells);
    }
    for run in &results.runs {
        let mut cells = vec![run_label(results, run)];
        cells.extend(run.phases.iter().map(|s| thousands(s.admitted)));
        t.row(cells);
    }
    t
}

/// Every figure per phase and run.
pub fn by_phase(results: &Results) -> Table {
    let latency = results.has_latency();
    let mut columns = vec![
        ("phase", Align::Left),
        ("algorithm", Align::Left),
        ("offered", Align::Right),
        ("admitted", Align::Right),
        ("rejected", Align::Right),
        ("exact", Align::Right),
        ("over", Align::Right),
        ("under", Align::Right),
        ("excess", Align::Right),
        ("burst", Align::Right),
        ("wronged", Align::Right),
    ];
    if latency {
        columns.push(("p50 µs", Align::Right));
        columns.push(("p99 µs", Align::Right));
        columns.push(("p99.9 µs", Align::Right));
    }
    let mut t = Table::new(&columns);
    let phases = results.workload.phases.len();
    for p in 0..phases {
        for run in &results.runs {
            let Some(s) = run.phases.get(p) else {
                continue;
            };
            let mut cells = vec![
                s.name.clone(),
                run_label(results, run),
                thousands(s.offered),
            ];
            cells.extend(stats_cells(s));
            cells.push(wronged(s.wronged_users));
            if latency {
                match s.latency_us {
                    Some(l) => cells.extend([
                        format!("{:.0}", l.p50),
                        format!("{:.0}", l.p99),
                        format!("{:.0}", l.p999),
                    ]),
                    None => cells.extend(["–", "–", "–"].map(String::from)),
                }
            }
            t.row(cells);
        }
    }
    t
}

/// The endpoints and their policies.
pub fn policies(results: &Results) -> Table {
    let mut t = Table::new(&[
        ("endpoint", Align::Left),
        ("share", Align::Right),
        ("policy", Align::Left),
        ("cost", Align::Right),
    ]);
    let total: f64 = results.workload.endpoints.iter().map(|e| e.weight).sum();
    for e in &results.workload.endpoints {
        t.row(vec![
            e.path.clone(),
            format!(
                "{:.0}%",
                if total > 0.0 {
                    e.weight * 100.0 / total
                } else {
                    0.0
                }
            ),
            format!(
                "{} per {}, bursts of {}",
                thousands(e.limit),
                seconds(e.window_s),
                thousands(e.burst)
            ),
            e.cost.to_string(),
        ]);
    }
    t
}
