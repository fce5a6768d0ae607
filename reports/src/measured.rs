//! The part of a report only measured runs have: offered vs achieved rate per phase,
//! responses by status, the backend's count against the client's, the gateways' own
//! counters, and the notes a reader must see before trusting the figures.
//!
//! Rendered from [`Results::measurements`] alone; empty for simulated results.

use results::{Measurement, Results};

use crate::format::{rate, thousands};
use crate::table::{Align, Table};

/// Offered vs achieved per phase of one measured run, as a table.
pub fn phases(m: &Measurement) -> Table {
    let mut t = Table::new(&[
        ("phase", Align::Left),
        ("planned", Align::Right),
        ("sent", Align::Right),
        ("offered/s", Align::Right),
        ("achieved/s", Align::Right),
        ("lag p50 ms", Align::Right),
        ("lag p99 ms", Align::Right),
        ("late", Align::Right),
        ("rate held", Align::Left),
    ]);
    for p in &m.phases {
        t.row(vec![
            p.name.clone(),
            thousands(p.planned),
            thousands(p.sent),
            rate(p.offered_rate),
            rate(p.achieved_rate),
            format!("{:.1}", p.lag_ms_p50),
            format!("{:.1}", p.lag_ms_p99),
            thousands(p.late),
            if p.held {
                "yes".into()
            } else {
                "**no**".into()
            },
        ]);
    }
    t
}

/// The Markdown section for every measured run of `results` (empty when there is none).
pub fn markdown(results: &Results) -> String {
    let mut out = String::new();
    if results.measurements.is_empty() {
        return out;
    }
    out.push_str("\n## Measured over HTTP\n");
    for m in &results.measurements {
        out.push_str(&format!(
            "\n### {} on {}{}\n\n",
            m.algorithm,
            m.store,
            if m.complete { "" } else { " (incomplete)" }
        ));
        out.push_str(&format!(
            "Driver: {}. Targets: {}. Time scale ×{}, rate scale ×{}.\n\n",
            m.driver,
            m.targets.join(", "),
            m.time_scale,
            m.rate_scale
        ));
        out.push_str(&phases(m).to_markdown());
        let statuses: Vec<String> = m
            .statuses
            .iter()
            .map(|(k, v)| format!("`{k}` {}", thousands(*v)))
            .collect();
        out.push_str(&format!("\nResponses: {}.\n", statuses.join(", ")));
        if let Some(g) = &m.ground_truth {
            out.push_str(&format!(
                "\nGround truth: the backend counted {} requests; the client saw {} admitted; {} keys differ. Keys over the policy envelope: {} at the client, {} at the backend (worst by {}).\n",
                thousands(g.backend_total),
                thousands(g.client_admitted),
                thousands(g.keys_disagreeing),
                thousands(g.client_keys_over_envelope),
                thousands(g.backend_keys_over_envelope),
                thousands(g.backend_worst_excess)
            ));
        }
        if let Some(g) = &m.gateway {
            out.push_str(&format!(
                "\nGateways: {} allowed, {} denied, {} unavailable (503), {} decided by the failure policy.\n",
                thousands(g.allowed),
                thousands(g.denied),
                thousands(g.unavailable),
                thousands(g.fallbacks)
            ));
        }
        if !m.notes.is_empty() {
            out.push('\n');
            for n in &m.notes {
                out.push_str(&format!("> **Note:** {n}\n>\n"));
            }
        }
    }
    out
}
