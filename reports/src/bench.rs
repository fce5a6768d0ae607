//! The benchmark report (`bench/README.md`), rendered from the results files that
//! `scripts/bench.sh` leaves behind, and from nothing else:
//!
//! ```text
//! DIR/runs/<workload>/<store>/<algorithm>/results.json   measured (ratelab load)
//! DIR/sim/<workload>/results.json                        simulated, same arrivals
//! DIR/runs/drill/<on_error>/results.json, outage.txt     the Redis failure drill
//! DIR/runs/ceiling/{goose,open}/results.json, wrk.txt    the load generator's ceiling
//! ```
//!
//! For each workload it merges the simulated and measured runs into one
//! `DIR/<workload>/results.json` (simulated runs carry the store `simulated`) and
//! renders it with [`crate::render`], so every plot shows simulated and measured side
//! by side; the drill gets a timeline of admitted, refused, failed and fallback
//! decisions per policy. The guarantee: every figure in the README is read from a
//! results file in `DIR`, so the report can be regenerated from them at any time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::Error;
use crate::format::thousands;
use crate::plots::{err, legend_strip, register_font, time_panel, titled};
use crate::table::{Align, Table};
use results::{Measurement, ResultSource, Results, Run};

const STORES: [&str; 3] = ["memory", "redis", "redis-cluster"];
const ALGORITHMS: [&str; 6] = [
    "fixed-window",
    "sliding-log",
    "sliding-window",
    "token-bucket",
    "gcra",
    "seed-replica",
];

/// What the caller knows that the results do not.
#[derive(Debug, Clone, Default)]
pub struct BenchInfo {
    /// How long the whole benchmark took, seconds.
    pub elapsed_s: Option<u64>,
    /// The commit the binaries were built from.
    pub commit: Option<String>,
}

fn rank(list: &[&str], name: &str) -> usize {
    list.iter().position(|x| *x == name).unwrap_or(list.len())
}

fn subdirs(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn read(dir: &Path) -> Option<Results> {
    results::read_results(dir).ok()
}

fn ms(us: f64) -> String {
    let v = us / 1000.0;
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// One measured run with its measurement.
struct Measured {
    run: Run,
    m: Measurement,
}

fn measured_of(results: Results) -> Vec<Measured> {
    results
        .runs
        .into_iter()
        .zip(results.measurements)
        .map(|(run, m)| Measured { run, m })
        .collect()
}

/// A workload's runs: simulated by algorithm, measured by (algorithm, store).
struct WorkloadRuns {
    name: String,
    base: Results,
    sim: Vec<Run>,
    measured: Vec<Measured>,
}

fn load_workload(dir: &Path, name: &str) -> Option<WorkloadRuns> {
    let root = dir.join("runs").join(name);
    let mut measured = Vec::new();
    let mut base = None;
    for store in subdirs(&root) {
        for alg in subdirs(&root.join(&store)) {
            if let Some(r) = read(&root.join(&store).join(&alg)) {
                base.get_or_insert_with(|| r.clone());
                measured.extend(measured_of(r));
            }
        }
    }
    let base = base?;
    measured.sort_by_key(|x| {
        (
            rank(&ALGORITHMS, &x.run.algorithm),
            rank(&STORES, &x.run.store),
        )
    });
    let sim = read(&dir.join("sim").join(name))
        .map(|r| r.runs)
        .unwrap_or_default();
    Some(WorkloadRuns {
        name: name.to_owned(),
        base,
        sim,
        measured,
    })
}

impl WorkloadRuns {
    fn sim_of(&self, algorithm: &str) -> Option<&Run> {
        self.sim.iter().find(|r| r.algorithm == algorithm)
    }

    /// Simulated and measured runs in one results: per algorithm, the simulated run
    /// (store `simulated`) then each store's.
    fn merged(&self) -> Results {
        let mut out = Results::new(ResultSource::Measured, self.base.workload.clone());
        let mut algs: Vec<&str> = self
            .measured
            .iter()
            .map(|x| x.run.algorithm.as_str())
            .collect();
        algs.dedup();
        for alg in algs {
            if let Some(s) = self.sim_of(alg) {
                let mut s = s.clone();
                s.store = "simulated".to_owned();
                out.runs.push(s);
            }
            for x in self.measured.iter().filter(|x| x.run.algorithm == alg) {
                out.runs.push(x.run.clone());
                out.measurements.push(x.m.clone());
            }
        }
        out
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "**no**" }
}

fn summary_table(w: &WorkloadRuns) -> Table {
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

fn latency_table(w: &WorkloadRuns) -> Table {
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

fn offered_table(w: &WorkloadRuns) -> Table {
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

fn plot_links(out: &mut String, rel: &str, plots: &[crate::plots::Plot]) {
    for p in plots {
        let _ = writeln!(
            out,
            "\n![{}]({rel}/{}.png)\n\n[SVG]({rel}/{}.svg) · {}\n",
            p.title, p.name, p.name, p.title
        );
    }
}

/// Seconds `[down, up)` Redis was down, relative to the start of the load command.
fn outage(dir: &Path) -> Option<(f64, f64)> {
    let text = std::fs::read_to_string(dir.join("outage.txt")).ok()?;
    let mut it = text
        .split_whitespace()
        .filter_map(|v| v.parse::<f64>().ok());
    Some((it.next()?, it.next()?))
}

struct Drill {
    policy: String,
    run: Run,
    m: Measurement,
    outage: Option<(f64, f64)>,
}

/// The drill's timeline: per policy, admitted, refused, failed and fallback decisions
/// per second, with the outage shaded.
struct DrillChart<'a>(&'a [Drill]);

impl DrillChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let area = titled(
            root,
            "Redis stopped for 5 s mid-phase: what each on_error policy did",
        )?;
        let lines = [
            ("admitted/s", RGBColor(0, 140, 70)),
            ("429/s", RGBColor(200, 40, 40)),
            ("errors (503...)/s", RGBColor(40, 40, 40)),
            ("decided by the failure policy/s", RGBColor(230, 159, 0)),
        ];
        let area = legend_strip(&area, &lines)?;
        let panels = area.split_evenly((self.0.len().max(1), 1));
        let y_max = self
            .0
            .iter()
            .flat_map(|d| d.run.series.offered.iter().copied())
            .max()
            .unwrap_or(1) as f64
            * 1.15;
        for (d, panel) in self.0.iter().zip(panels.iter()) {
            let s = &d.run.series;
            let x_max = s.offered.len() as f64 * s.step_s;
            let caption = format!("on_error = {}", d.policy);
            let range = (x_max.max(1.0), y_max.max(1.0));
            let mut chart = time_panel(panel, &caption, range, 60, "per second")?;
            if let Some((down, up)) = d.outage {
                chart
                    .draw_series([Rectangle::new(
                        [(down, 0.0), (up, y_max)],
                        RGBColor(200, 200, 230).mix(0.5).filled(),
                    )])
                    .map_err(err)?;
            }
            let series: [&[u64]; 4] = [
                &s.admitted,
                &s.rejected,
                &d.m.series.errors,
                &d.m.series.fallbacks,
            ];
            for (values, (_, color)) in series.iter().zip(lines.iter()) {
                let points: Vec<(f64, f64)> = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| ((i as f64 + 0.5) * s.step_s, *v as f64))
                    .collect();
                chart
                    .draw_series(LineSeries::new(points, color.stroke_width(2)))
                    .map_err(err)?;
            }
        }
        Ok(())
    }
}

fn render_drill(dir: &Path, drills: &[Drill]) -> Result<(), Error> {
    register_font();
    let out = dir.join("drill");
    std::fs::create_dir_all(&out).map_err(|source| Error::Io {
        path: out.clone(),
        source,
    })?;
    let size = (1400, 80 + 320 * drills.len().max(1) as u32);
    let fail = |message: String| Error::Plot {
        plot: "drill".to_owned(),
        message,
    };
    let chart = DrillChart(drills);
    let png = out.join("drill.png");
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        chart.draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    let svg = out.join("drill.svg");
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        chart.draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(())
}

fn sum_in(values: &[u64], step: f64, from: f64, to: f64) -> u64 {
    values
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            let mid = (*i as f64 + 0.5) * step;
            mid >= from && mid < to
        })
        .map(|(_, v)| *v)
        .sum()
}

fn drill_section(dir: &Path, out: &mut String) -> Result<(), Error> {
    let root = dir.join("runs").join("drill");
    let mut drills = Vec::new();
    for policy in subdirs(&root) {
        let Some(r) = read(&root.join(&policy)) else {
            continue;
        };
        for x in measured_of(r) {
            drills.push(Drill {
                policy: policy.clone(),
                run: x.run,
                m: x.m,
                outage: outage(&root.join(&policy)),
            });
        }
    }
    if drills.is_empty() {
        return Ok(());
    }
    drills.sort_by_key(|d| rank(&["fail-open", "fail-closed", "local"], &d.policy));
    render_drill(dir, &drills)?;
    out.push_str("\n## The Redis failure drill\n\n");
    out.push_str(
        "One gateway with a token bucket on Redis (`timeout_ms = 50`), 20 users at a steady 300 requests/s (each allowed 10/s, bursts of 10). \
         The script stops `redis-server` 8 s into the load's schedule and restarts it at 13 s (shaded: from the moment it was stopped to the moment it listened again). \
         `429` is the limiter refusing; errors are `503` (fail-closed) or anything else that was not an answer from the backend.\n\n",
    );
    let mut t = Table::new(&[
        ("on_error", Align::Left),
        ("sent", Align::Right),
        ("admitted", Align::Right),
        ("429", Align::Right),
        ("errors", Align::Right),
        ("fallback decisions", Align::Right),
        ("during the outage: admitted / 429 / errors", Align::Right),
        ("backend = client", Align::Left),
        ("p99 ms", Align::Right),
        ("max ms", Align::Right),
    ]);
    for d in &drills {
        let s = &d.run.series;
        let during = d.outage.map_or("-".to_owned(), |(a, b)| {
            format!(
                "{} / {} / {}",
                thousands(sum_in(&s.admitted, s.step_s, a, b)),
                thousands(sum_in(&s.rejected, s.step_s, a, b)),
                thousands(sum_in(&d.m.series.errors, s.step_s, a, b))
            )
        });
        let agree = d.m.ground_truth.as_ref().map_or("-".to_owned(), |g| {
            yes_no(g.backend_total == g.client_admitted && g.keys_disagreeing == 0).to_owned()
        });
        let lat = d.run.totals.latency_us;
        t.row(vec![
            d.policy.clone(),
            thousands(d.run.totals.offered),
            thousands(d.run.totals.admitted),
            thousands(d.run.totals.rejected),
            thousands(d.run.totals.errors),
            d.m.gateway
                .as_ref()
                .map_or("-".into(), |g| thousands(g.fallbacks)),
            during,
            agree,
            lat.map_or("-".into(), |l| ms(l.p99)),
            lat.map_or("-".into(), |l| ms(l.max)),
        ]);
    }
    out.push_str(&t.to_markdown());
    out.push_str("\n![Redis failure drill](drill/drill.png)\n\n[SVG](drill/drill.svg)\n");
    Ok(())
}

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

/// The load generator's ceiling: highest held phase and most achieved, per driver.
fn ceiling_section(dir: &Path, out: &mut String) -> Option<String> {
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
            let top = x.m.phases.last().is_some_and(|p| p.held);
            headline.push(if top {
                format!(
                    "{name} held every step, up to {}/s (its own limit is higher)",
                    thousands(best_held.round() as u64)
                )
            } else {
                format!(
                    "{name} held {}/s (not the next step)",
                    thousands(best_held.round() as u64)
                )
            });
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

fn workload_section(dir: &Path, w: &WorkloadRuns, out: &mut String) -> Result<(), Error> {
    let merged = w.merged();
    let rel = w.name.clone();
    let target = dir.join(&rel);
    results::write_results(&merged, &target)?;
    // Every run side by side where a bar per run reads well (accuracy, burst)...
    let plots = keep(
        crate::render(&merged, &target)?.plots,
        &["accuracy", "burst"],
    );
    // ...and one algorithm, simulated and on every store, over time (a panel per run:
    // all of them would make images of megabytes).
    let alg = ["token-bucket", "gcra", "sliding-log"]
        .into_iter()
        .find(|a| w.measured.iter().any(|x| x.run.algorithm == *a))
        .or_else(|| w.measured.first().map(|x| x.run.algorithm.as_str()))
        .unwrap_or_default();
    let mut over_time = merged.clone();
    let keep_runs: Vec<bool> = over_time.runs.iter().map(|r| r.algorithm == alg).collect();
    let mut flags = keep_runs.iter();
    over_time
        .runs
        .retain(|_| flags.next().copied().unwrap_or(false));
    over_time.measurements.retain(|m| m.algorithm == alg);
    let over_rel = format!("{rel}/{alg}");
    let over_dir = dir.join(&over_rel);
    let over = keep(
        crate::render(&over_time, &over_dir)?.plots,
        &["throughput", "admitted", "latency"],
    );
    // The README is the report: the renderer's own report.md would link pruned plots.
    let _ = std::fs::remove_file(target.join(crate::REPORT_FILE));
    let _ = std::fs::remove_file(over_dir.join(crate::REPORT_FILE));
    let info = &w.base.workload;
    let m0 = &w.measured[0].m;
    let _ = writeln!(out, "\n## Workload `{}`\n", w.name);
    let description = info.description.trim_end_matches('.');
    let _ = writeln!(
        out,
        "{description}. Played at time scale ×{} and rate scale ×{}: {} requests over {:.1} s from {} user(s) ({}), {} arrivals. \
         The simulated column replays exactly these arrivals (`runs/{}/*/*/workload.toml`) in virtual time.\n",
        m0.time_scale,
        m0.rate_scale,
        thousands(w.measured[0].run.totals.offered),
        info.duration_s,
        thousands(info.users),
        info.user_distribution,
        info.arrivals,
        w.name
    );
    out.push_str(&crate::summary::policies(&merged).to_markdown());
    out.push_str("\n### Accuracy, measured and simulated\n\n");
    out.push_str(
        "*admitted* is what the client saw answered by the backend; *simulated* is the simulator on the same arrivals; *exact* is the exact reference limiter on the arrivals as sent; \
         *over*/*under* are summed over keys against it; *excess* is the worst key's envelope excess; *backend = client* compares the backend's own count with the client's; \
         *keys over envelope* counts keys whose backend count exceeds the policy over their active span; \
         *store fallbacks* counts decisions the gateways' failure policy (`fail-open`, Redis timeout 200 ms) made because Redis did not answer in time.\n\n",
    );
    out.push_str(&summary_table(w).to_markdown());
    out.push_str("\n### Latency per phase (ms, end to end at the client)\n\n");
    out.push_str(&latency_table(w).to_markdown());
    out.push_str("\n### Offered vs achieved\n\n");
    out.push_str(&offered_table(w).to_markdown());
    let notes: Vec<String> = w
        .measured
        .iter()
        .flat_map(|x| {
            x.m.notes
                .iter()
                .filter(|n| !n.starts_with("the driver could not hold"))
                .map(move |n| format!("- {} on {}: {n}", x.run.algorithm, x.run.store))
        })
        .collect();
    if !notes.is_empty() {
        out.push_str("\nNotes from the runs:\n\n");
        for n in notes {
            let _ = writeln!(out, "{n}");
        }
    }
    out.push_str("\n### Plots\n\nEvery algorithm, simulated and on each store:\n");
    plot_links(out, &rel, &plots);
    let _ = writeln!(out, "\n`{alg}` over time, simulated and on each store:");
    plot_links(out, &over_rel, &over);
    Ok(())
}

/// Keeps the plots named in `names`, deleting the files of the others.
fn keep(plots: Vec<crate::plots::Plot>, names: &[&str]) -> Vec<crate::plots::Plot> {
    plots
        .into_iter()
        .filter(|p| {
            let keep = names.contains(&p.name);
            if !keep {
                let _ = std::fs::remove_file(&p.png);
                let _ = std::fs::remove_file(&p.svg);
            }
            keep
        })
        .collect()
}

fn headlines(workloads: &[WorkloadRuns]) -> Vec<String> {
    let mut out = Vec::new();
    for w in workloads {
        let runs = w.measured.len();
        let agree = w
            .measured
            .iter()
            .filter(|x| {
                x.m.ground_truth.as_ref().is_some_and(|g| {
                    g.backend_total == g.client_admitted && g.keys_disagreeing == 0
                })
            })
            .count();
        let over = w
            .measured
            .iter()
            .filter(|x| {
                x.m.ground_truth
                    .as_ref()
                    .is_some_and(|g| g.backend_keys_over_envelope > 0)
            })
            .map(|x| format!("{} on {}", x.run.algorithm, x.run.store))
            .collect::<Vec<_>>();
        let mut line = format!(
            "`{}`: in {agree} of {runs} runs the backend counted exactly what the client saw admitted",
            w.name
        );
        if over.is_empty() {
            line.push_str("; no key of any run exceeded its policy envelope at the backend");
        } else {
            let _ = write!(
                line,
                "; keys over the envelope at the backend in: {}",
                over.join(", ")
            );
        }
        for store in STORES {
            let p99: Vec<f64> = w
                .measured
                .iter()
                .filter(|x| x.run.store == store)
                .filter_map(|x| x.run.totals.latency_us.map(|l| l.p99))
                .collect();
            if !p99.is_empty() {
                let mut sorted = p99.clone();
                sorted.sort_by(f64::total_cmp);
                let _ = write!(line, "; p99 {} ms on {store}", ms(sorted[sorted.len() / 2]));
            }
        }
        line.push_str(" (median over algorithms)");
        out.push(line);
        if let Some(tb) = w
            .measured
            .iter()
            .find(|x| x.run.algorithm == "token-bucket" && x.run.store == "memory")
        {
            let sim = w
                .sim_of("seed-replica")
                .filter(|_| w.name == "seed")
                .map(|s| format!(", where the original's flawed script (`seed-replica`, simulated) admits {}", thousands(s.totals.admitted)))
                .unwrap_or_default();
            out.push(format!(
                "`{}`: the token bucket on memory admitted {} of {} (exact reference {}){sim}",
                w.name,
                thousands(tb.run.totals.admitted),
                thousands(tb.run.totals.offered),
                thousands(tb.run.totals.reference_admitted)
            ));
        }
    }
    out
}

/// Renders `DIR/README.md` (and the merged results and plots it embeds) from the results
/// under `DIR`; returns the README's path.
pub fn render_bench(dir: &Path, info: &BenchInfo) -> Result<PathBuf, Error> {
    let mut names = subdirs(&dir.join("runs"));
    names.retain(|n| n != "drill" && n != "ceiling");
    names.sort_by_key(|n| (rank(&["seed", "api-mix"], n), n.clone()));
    let workloads: Vec<WorkloadRuns> = names.iter().filter_map(|n| load_workload(dir, n)).collect();

    let mut body = String::new();
    for w in &workloads {
        workload_section(dir, w, &mut body)?;
    }
    drill_section(dir, &mut body)?;
    let ceiling = ceiling_section(dir, &mut body);

    let mut out = String::new();
    out.push_str("# ratelab benchmark report\n\n");
    out.push_str(
        "Generated by `scripts/bench.sh` from real HTTP load on 127.0.0.1: the mock backend, one `redis-server`, a 3-master Redis Cluster, \
         and 1 (memory) or 3 (Redis, Redis Cluster) gateway processes, loaded by `ratelab load` (goose, users paced to each workload's arrival schedule). \
         **The machine has 2 cores, shared by the load generator, the gateways, Redis and the backend**: latencies and rates are this machine's, \
         and every run says where the load generator could not hold the offered rate. Each number below is read from the `results.json` files in this directory.\n\n",
    );
    let mut facts = Vec::new();
    if let Some(s) = info.elapsed_s {
        facts.push(format!("the whole benchmark took {s} s"));
    }
    if let Some(c) = &info.commit {
        facts.push(format!("built from commit `{c}`"));
    }
    if !facts.is_empty() {
        let _ = writeln!(out, "This run: {}.\n", facts.join(", "));
    }
    out.push_str("## Headline figures\n\n");
    for h in headlines(&workloads) {
        let _ = writeln!(out, "- {h}.");
    }
    if let Some(c) = &ceiling {
        let _ = writeln!(out, "- Load generator ceiling: {c}.");
    }
    out.push_str(
        "\nRegenerate: `scripts/bench.sh` (about 7 minutes; it installs `redis-server`, `redis-tools` and `wrk` from Debian's packages if missing). \
         Per-run results are in `runs/<workload>/<store>/<algorithm>/results.json` with the workload exactly as played beside them; \
         `ratelab report --in DIR` renders any of them.\n",
    );
    out.push_str(&body);
    let path = dir.join("README.md");
    std::fs::write(&path, out).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
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
        assert_eq!(sum_in(&[1, 2, 3, 4], 1.0, 1.0, 3.0), 5);
        assert_eq!(ms(1234.0), "1.23");
        assert_eq!(ms(123_456.0), "123");
    }

    #[test]
    fn an_empty_directory_renders_an_empty_report() {
        let dir = std::env::temp_dir().join(format!("ratelab-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = render_bench(&dir, &BenchInfo::default()).unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.starts_with("# ratelab benchmark report"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
