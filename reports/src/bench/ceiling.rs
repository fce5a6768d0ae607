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
/// the driver held, as a ratio to wrk's (`wrk`: its mean requests/s, when it ran).
fn driver_steps(t: &mut Table, driver: &str, x: &Measured, wrk: Option<f64>) -> String {
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
    let best_text = thousands(best_held.round() as u64);
    let ratio = wrk.map_or(String::new(), |w| format!(", {:.2}× wrk", best_held / w));
    let machine = wrk.is_some_and(|w| best_held >= 0.9 * w);
    let why = if machine {
        ": the machine's limit (the backend beside the load generator serves about wrk's rate)"
    } else {
        ""
    };
    if x.m.phases.last().is_some_and(|p| p.held) {
        format!("{name} held every step, up to {best_text}/s{ratio} (its own limit is higher)")
    } else {
        format!("{name} held {best_text}/s{ratio}, not the next step{why}")
    }
}

/// wrk's requests/s and latency percentiles, from each of its reports in `root` (run
/// before and after the drivers; `wrk.txt` in older reports).
fn wrk_runs(root: &Path) -> Vec<(f64, BTreeMap<String, String>)> {
    ["wrk-before.txt", "wrk-after.txt", "wrk.txt"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(root.join(f)).ok())
        .filter_map(|text| {
            let (rps, lat) = wrk_figures(&text);
            rps.map(|r| (r, lat))
        })
        .collect()
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
    let wrk = wrk_runs(&root);
    let wrk_mean =
        (!wrk.is_empty()).then(|| wrk.iter().map(|(r, _)| r).sum::<f64>() / wrk.len() as f64);
    let mut headline = Vec::new();
    for driver in ["open", "goose"] {
        let Some(r) = read(&root.join(driver)) else {
            continue;
        };
        for x in measured_of(r) {
            headline.push(driver_steps(&mut t, driver, &x, wrk_mean));
        }
    }
    if t.is_empty() {
        return None;
    }
    if let Some(mean) = wrk_mean {
        headline.push(format!(
            "wrk (2 threads, 64 connections, closed loop) {}/s",
            thousands(mean.round() as u64)
        ));
    }
    out.push_str("\n## The load generator's own ceiling\n\n");
    out.push_str(
        "Against the mock backend directly (no gateway), so the load generator is what runs out. \
         The ceiling workload steps the offered rate up, 2 s per step; a step is *held* when at least 95% of it was sent and at most 1% left more than 10 ms late. \
         Latency counts from each request's due instant (coordinated omission corrected); lag is how late requests left. \
         wrk runs against the same backend for 5 s with 2 threads and 64 connections, before and after the drivers (it sends as fast as responses come back, so it measures throughput, not a paced rate).\n\n",
    );
    out.push_str(&t.to_markdown());
    for (rps, lat) in &wrk {
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
         wrk's rate is what the backend serves on this machine with a load generator beside it, so no driver holds much more here: \
         a driver that holds about wrk's rate has reached the machine's limit; one that stops well below it has reached its own. \
         Either way, rates above what a driver held are the load generator's limit, not the gateway's: the runs above say so per phase."
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
