//! The tables of a workload's section in the benchmark report: accuracy (measured
//! beside simulated, with the ground truth), latency per phase, offered vs achieved.

use super::workload::WorkloadRuns;
use crate::format::{ms_compact as ms, thousands};
use crate::table::{Align, Table};

/// Accuracy per run, measured beside simulated, with the ground truth.
pub(super) fn summary_table(w: &WorkloadRuns) -> Table {
    let mut t = Table::new(&[
        ("algorithm", Align::Left),
        ("store", Align::Left),
        ("gateways", Align::Right),
        ("sent", Align::Right),
        ("admitted", Align::Right),
        ("simulated", Align::Right),
        ("exact", Align::Right),
        ("over", Align::Right),
        ("under", Align::Right),
        ("excess", Align::Right),
        ("burst", Align::Right),
        ("backend = client", Align::Left),
        ("keys over envelope", Align::Right),
        ("store fallbacks", Align::Right),
        ("rate held", Align::Left),
    ]);
    for x in &w.measured {
        let (run, m) = (&x.run, &x.m);
        let sim = w
            .sim_of(&run.algorithm)
            .map_or("-".to_owned(), |s| thousands(s.totals.admitted));
        let truth = m.ground_truth.as_ref();
        let agree = truth.map_or("-".to_owned(), |g| {
            if g.backend_total == g.client_admitted && g.keys_disagreeing == 0 {
                format!("yes ({})", thousands(g.backend_total))
            } else {
                format!(
                    "**no** ({} vs {})",
                    thousands(g.backend_total),
                    thousands(g.client_admitted)
                )
            }
        });
        let over = truth.map_or("-".to_owned(), |g| g.backend_keys_over_envelope.to_string());
        let unheld: Vec<&str> = m
            .phases
            .iter()
            .filter(|p| !p.held)
            .map(|p| p.name.as_str())
            .collect();
        let held = if unheld.is_empty() {
            "yes".to_owned()
        } else {
            format!("**no**: {}", unheld.join(", "))
        };
        t.row(vec![
            run.algorithm.clone(),
            run.store.clone(),
            m.targets.len().to_string(),
            thousands(run.totals.offered),
            thousands(run.totals.admitted),
            sim,
            thousands(run.totals.reference_admitted),
            thousands(run.totals.over_admission),
            thousands(run.totals.under_admission),
            format!("{}", run.totals.envelope_excess),
            format!("{:.2}", run.totals.burst_ratio),
            agree,
            over,
            m.gateway
                .as_ref()
                .map_or("-".into(), |g| thousands(g.fallbacks)),
            held,
        ]);
    }
    t
}

/// Client latency per phase and run.
pub(super) fn latency_table(w: &WorkloadRuns) -> Table {
    let mut cols: Vec<(String, Align)> = vec![
        ("algorithm".into(), Align::Left),
        ("store".into(), Align::Left),
    ];
    for p in &w.base.workload.phases {
        cols.push((format!("{} p50 / p99 / p99.9", p.name), Align::Right));
    }
    cols.push(("total p50 / p99 / p99.9".into(), Align::Right));
    let cols: Vec<(&str, Align)> = cols.iter().map(|(n, a)| (n.as_str(), *a)).collect();
    let mut t = Table::new(&cols);
    for x in &w.measured {
        let mut row = vec![x.run.algorithm.clone(), x.run.store.clone()];
        for s in x.run.phases.iter().chain([&x.run.totals]) {
            row.push(s.latency_us.map_or("-".into(), |l| {
                format!("{} / {} / {}", ms(l.p50), ms(l.p99), ms(l.p999))
            }));
        }
        t.row(row);
    }
    t
}

/// Offered vs achieved rate per phase and run.
pub(super) fn offered_table(w: &WorkloadRuns) -> Table {
    let mut cols: Vec<(String, Align)> = vec![
        ("algorithm".into(), Align::Left),
        ("store".into(), Align::Left),
    ];
    for p in &w.base.workload.phases {
        cols.push((
            format!("{} achieved/offered per s (lag p99 ms)", p.name),
            Align::Right,
        ));
    }
    let cols: Vec<(&str, Align)> = cols.iter().map(|(n, a)| (n.as_str(), *a)).collect();
    let mut t = Table::new(&cols);
    for x in &w.measured {
        let mut row = vec![x.run.algorithm.clone(), x.run.store.clone()];
        for p in &x.m.phases {
            row.push(
                format!(
                    "{}{} / {} ({:.1})",
                    if p.held { "" } else { "**" },
                    thousands(p.achieved_rate.round() as u64),
                    thousands(p.offered_rate.round() as u64),
                    p.lag_ms_p99
                ) + if p.held { "" } else { "**" },
            );
        }
        t.row(row);
    }
    t
}
