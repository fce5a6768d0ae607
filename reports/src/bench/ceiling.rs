//! The load generator's own ceiling in the benchmark report: the highest rate each
//! driver held against the bare backend, beside wrk's closed-loop throughput.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::workload::{Measured, measured_of};
use super::{read, yes_no};
use crate::format::{ms_compact as ms, thousands};
use crate::table::{Align, Table};

/// `Requests/sec:` and the latency percentiles of a wrk report.
fn wrk_figures(text: &str) -> (Option<f64>, BTreeMap<String, String>) {
    let mut rps = None;
    let mut lat = BTreeMap::new();
    for line in text.lines() {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            rps = v.trim().parse().ok();
        }
        for q in ["50%", "99%"] {
            if let Some(v) = l.strip_prefix(q) {
                lat.insert(q.to_owned(), v.trim().to_owned());
            }
        }
    }
    (rps, lat)
}

/// Adds one row per step of a ceiling run to `t`, and says in words the highest rate
/// the driver held.
fn driver_steps(t: &mut Table, driver: &str, x: &Measured) -> String {
    let mut best_held = 0.0f64;
    for (p, s) in x.m.phases.iter().zip(&x.run.phases) {
        // The first step only opens connections and starts users.
        if p.held && p.name != "start" {
            best_held = best_held.max(p.achieved_rate);
        }
        t.row(vec![
            driver.to_owned(),
            p.name.clone(),
            thousands(p.offered_rate.round() as u64),
            thousands(p.achieved_rate.round() as u64),
            format!("{:.1}", p.lag_ms_p99),
            yes_no(p.held).to_owned(),
            s.latency_us.map_or("-".into(), |l| ms(l.p50)),
            s.latency_us.map_or("-".into(), |l| ms(l.p99)),
        ]);
    }
    let name = if driver == "goose" {
        "goose"
    } else {
        "the open-loop driver"
    };
    let best = thousands(best_held.round() as u64);
    if x.m.phases.last().is_some_and(|p| p.held) {
        format!("{name} held every step, up to {best}/s (its own limit is higher)")
    } else {
        format!("{name} held {best}/s (not the next step)")
    }
}

/// The load generator's ceiling: highest held phase and most achieved, per driver.
pub(super) fn section(dir: &Path, out: &mut String) -> Option<String> {
    let root = dir.join("runs").join("ceiling");
    let mut t = Table::new(&[
        ("driver", Align::Left),
        ("step", Align::Left),
        ("offered/s", Align::Right),
        ("achieved/s", Align::Right),
        ("lag p99 ms", Align::Right),
        ("held", Align::Left),
        ("p50 ms", Align::Right),
        ("p99 ms", Align::Right),
    ]);
    let mut headline = Vec::new();
    for driver in ["goose", "open"] {
        let Some(r) = read(&root.join(driver)) else {
            continue;
        };
        for x in measured_of(r) {
            headline.push(driver_steps(&mut t, driver, &x));
        }
    }
    if t.is_empty() {
        return None;
    }
    let wrk = std::fs::read_to_string(root.join("wrk.txt")).ok();
    let (rps, lat) = wrk.as_deref().map(wrk_figures).unwrap_or_default();
    if let Some(rps) = rps {
        headline.push(format!(
            "wrk (2 threads, 64 connections, closed loop) {}/s",
            thousands(rps.round() as u64)
        ));
    }
    out.push_str("\n## The load generator's own ceiling\n\n");
    out.push_str(
        "Against the mock backend directly (no gateway), so the load generator is what runs out. \
         The ceiling workload steps the offered rate up, 2 s per step; a step is *held* when at least 95% of it was sent and at most 1% left more than 10 ms late. \
         wrk runs against the same backend for 5 s with 2 threads and 64 connections (it sends as fast as responses come back, so it measures throughput, not a paced rate).\n\n",
    );
    out.push_str(&t.to_markdown());
    if let Some(rps) = rps {
        let _ = writeln!(
            out,
            "\nwrk: **{}** requests/s (latency p50 {}, p99 {}).",
            thousands(rps.round() as u64),
            lat.get("50%").map_or("-", String::as_str),
            lat.get("99%").map_or("-", String::as_str)
        );
    }
    let line = headline.join("; ");
    let _ = writeln!(
        out,
        "\nOn this machine (2 cores shared by the load generator and the server): {line}. \
         Rates above what a driver held are the load generator's limit, not the gateway's: the runs above say so per phase."
    );
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let text = "Running 5s test @ http://127.0.0.1:1/api/orders\n  Latency Distribution\n     50%  410.00us\n     99%    2.10ms\n  100 requests in 5.00s\nRequests/sec:  20345.67\nTransfer/sec: 2.1MB\n";
        let (rps, lat) = wrk_figures(text);
        assert_eq!(rps, Some(20345.67));
        assert_eq!(lat.get("99%").map(String::as_str), Some("2.10ms"));
    }
}
