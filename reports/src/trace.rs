//! A replayed access log's own tables (the `trace` section of the results): what was
//! read, who each algorithm would have throttled on which route, the false positives
//! against the exact sliding log, the most throttled identities, rejections over time
//! and the sweep — as text for the terminal and as Markdown for the report.

use results::{Results, TraceReplay};

use crate::format::{seconds, thousands};
use crate::table::{Align, Table};

/// Rejections over time are tabulated up to this many bins (the plot shows all).
const MAX_BIN_ROWS: usize = 48;

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// What the log held, in one paragraph of lines.
pub fn input_lines(t: &TraceReplay) -> Vec<String> {
    let i = &t.input;
    let mut out = vec![
        format!(
            "log {} ({}): {} lines, {} requests replayed, {} identities, {} → {}",
            i.path,
            i.format,
            thousands(i.lines),
            thousands(i.requests),
            thousands(i.identities),
            i.first,
            i.last
        ),
        format!(
            "{} malformed · {} late (beyond the {} reorder window, replayed at its edge) · {} on no route · {} logged as 429",
            thousands(i.malformed),
            thousands(i.late),
            seconds(i.reorder_window_s),
            thousands(i.unrouted),
            thousands(i.logged_429)
        ),
    ];
    out.extend(
        i.malformed_examples
            .iter()
            .map(|e| format!("  malformed {e}")),
    );
    out.extend(i.late_examples.iter().map(|e| format!("  late {e}")));
    out
}

/// Requests and identities throttled, per algorithm and route.
pub fn by_route(t: &TraceReplay) -> Table {
    let mut table = Table::new(&[
        ("algorithm", Align::Left),
        ("route", Align::Left),
        ("requests", Align::Right),
        ("rejected", Align::Right),
        ("share", Align::Right),
        ("identities", Align::Right),
        ("throttled", Align::Right),
        ("share ", Align::Right),
    ]);
    for a in &t.algorithms {
        for r in &a.routes {
            table.row(vec![
                a.algorithm.clone(),
                r.route.clone(),
                thousands(r.requests),
                thousands(r.rejected),
                percent(r.rejected, r.requests),
                thousands(r.identities),
                thousands(r.identities_throttled),
                percent(r.identities_throttled, r.identities),
            ]);
        }
    }
    table
}

/// Identities throttled and the false positives against the exact sliding log.
pub fn false_positives(t: &TraceReplay) -> Table {
    let mut table = Table::new(&[
        ("algorithm", Align::Left),
        ("identities throttled", Align::Right),
        ("never over the policy", Align::Right),
        ("their rejections", Align::Right),
        ("most throttled", Align::Left),
    ]);
    for a in &t.algorithms {
        let top = a
            .top_identities
            .iter()
            .take(3)
            .map(|i| {
                format!(
                    "{} ({}/{})",
                    i.identity,
                    thousands(i.rejected),
                    thousands(i.requests)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        table.row(vec![
            a.algorithm.clone(),
            thousands(a.identities_throttled),
            thousands(a.false_positive_identities),
            thousands(a.false_positive_requests),
            top,
        ]);
    }
    table
}

/// Rejections per bin and algorithm (`None` when there are too many bins to list).
pub fn over_time(results: &Results) -> Option<Table> {
    let first = results.runs.first()?;
    let bins = first.series.rejected.len();
    if bins > MAX_BIN_ROWS || bins == 0 {
        return None;
    }
    let mut columns = vec![("from start", Align::Right), ("requests", Align::Right)];
    columns.extend(
        results
            .runs
            .iter()
            .map(|r| (r.algorithm.as_str(), Align::Right)),
    );
    let mut table = Table::new(&columns);
    let step = first.series.step_s;
    for b in 0..bins {
        let mut row = vec![seconds(b as f64 * step), thousands(first.series.offered[b])];
        row.extend(
            results
                .runs
                .iter()
                .map(|r| thousands(r.series.rejected.get(b).copied().unwrap_or(0))),
        );
        table.row(row);
    }
    Some(table)
}

/// The sweep: share of requests and identities throttled per algorithm and cell.
pub fn sweep(t: &TraceReplay) -> Table {
    let mut table = Table::new(&[
        ("algorithm", Align::Left),
        ("limit", Align::Right),
        ("burst", Align::Right),
        ("requests rejected", Align::Right),
        ("identities throttled", Align::Right),
    ]);
    for p in &t.sweep {
        table.row(vec![
            p.algorithm.clone(),
            thousands(p.limit),
            format!("{}x", p.burst_factor),
            percent(p.rejected, p.requests),
            percent(p.identities_throttled, p.identities),
        ]);
    }
    table
}

/// The terminal view of the trace section (empty for a synthetic run).
pub fn terminal(results: &Results) -> String {
    let Some(t) = &results.trace else {
        return String::new();
    };
    let mut out = String::from("\n");
    for line in input_lines(t) {
        out.push_str(&line);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&by_route(t).to_text());
    out.push('\n');
    out.push_str(&false_positives(t).to_text());
    if let Some(table) = over_time(results) {
        out.push_str("\nrejections over time\n");
        out.push_str(&table.to_text());
    }
    if !t.sweep.is_empty() {
        out.push('\n');
        out.push_str(&sweep(t).to_text());
    }
    out
}

/// The Markdown section of the trace (empty for a synthetic run).
pub fn markdown(results: &Results) -> String {
    let Some(t) = &results.trace else {
        return String::new();
    };
    let mut out = String::from("\n## The access log\n\n");
    for line in input_lines(t) {
        out.push_str(&format!("{line}  \n"));
    }
    out.push_str("\n### Throttled by route\n\n");
    out.push_str(&by_route(t).to_markdown());
    out.push_str(
        "\n### Throttled identities and false positives\n\n\
         An identity \"never over the policy\" is one the exact sliding log (never more than \
         `limit` in any window) never throttles; its rejections are false positives.\n\n",
    );
    out.push_str(&false_positives(t).to_markdown());
    if let Some(table) = over_time(results) {
        out.push_str("\n### Rejections over time\n\n");
        out.push_str(&table.to_markdown());
    }
    if !t.sweep.is_empty() {
        out.push_str("\n### Sweep\n\n");
        out.push_str(&sweep(t).to_markdown());
    }
    out
}
