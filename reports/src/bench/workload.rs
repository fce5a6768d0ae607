//! A workload's part of the benchmark report: its measured runs on every store and
//! its simulated runs merged into one results file, the accuracy, latency and offered
//! vs achieved tables, the plots, and the headline figures.

use std::fmt::Write as _;
use std::path::Path;

use results::{Measurement, ResultSource, Results, Run};

use super::tables::{latency_table, offered_table, summary_table};
use super::{ALGORITHMS, STORES, keep, plot_links, rank, read, subdirs};
use crate::Error;
use crate::format::{ms_compact as ms, thousands};
use crate::plots::Plot;

/// One measured run with its measurement.
pub(super) struct Measured {
    /// The run.
    pub run: Run,
    /// How its load went.
    pub m: Measurement,
}

pub(super) fn measured_of(results: Results) -> Vec<Measured> {
    results
        .runs
        .into_iter()
        .zip(results.measurements)
        .map(|(run, m)| Measured { run, m })
        .collect()
}

/// A workload's runs: simulated by algorithm, measured by (algorithm, store).
pub(super) struct WorkloadRuns {
    /// The workload's name (`seed`).
    pub name: String,
    /// The first measured results read, for the workload as played.
    pub base: Results,
    /// The simulated runs on the same arrivals.
    pub sim: Vec<Run>,
    /// The measured runs, by algorithm then store.
    pub measured: Vec<Measured>,
}

pub(super) fn load(dir: &Path, name: &str) -> Option<WorkloadRuns> {
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
    /// The simulated run of `algorithm`.
    pub fn sim_of(&self, algorithm: &str) -> Option<&Run> {
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

/// The plots a workload's section links, rendered into `DIR/<workload>/`.
struct SectionPlots {
    /// Every run side by side (accuracy, burst), under `DIR/<workload>/`.
    all: Vec<Plot>,
    /// The algorithm shown over time.
    algorithm: String,
    /// It over time, simulated and on each store, under `DIR/<workload>/<algorithm>/`.
    over_time: Vec<Plot>,
}

/// Writes the merged results of `w` and renders the plots its section shows: every
/// run side by side where a bar per run reads well (accuracy, burst), and one
/// algorithm over time (a panel per run: all of them would make images of megabytes).
fn section_plots(dir: &Path, w: &WorkloadRuns, merged: &Results) -> Result<SectionPlots, Error> {
    let target = dir.join(&w.name);
    results::write_results(merged, &target)?;
    let all = keep(
        crate::render(merged, &target)?.plots,
        &["accuracy", "burst"],
    );
    let algorithm = ["token-bucket", "gcra", "sliding-log"]
        .into_iter()
        .find(|a| w.measured.iter().any(|x| x.run.algorithm == *a))
        .or_else(|| w.measured.first().map(|x| x.run.algorithm.as_str()))
        .unwrap_or_default()
        .to_owned();
    let mut over_time = merged.clone();
    over_time.runs.retain(|r| r.algorithm == algorithm);
    over_time.measurements.retain(|m| m.algorithm == algorithm);
    let over_dir = target.join(&algorithm);
    let over = keep(
        crate::render(&over_time, &over_dir)?.plots,
        &["throughput", "admitted", "latency"],
    );
    // The README is the report: the renderer's own report.md would link pruned plots.
    let _ = std::fs::remove_file(target.join(crate::REPORT_FILE));
    let _ = std::fs::remove_file(over_dir.join(crate::REPORT_FILE));
    Ok(SectionPlots {
        all,
        algorithm,
        over_time: over,
    })
}

/// Appends the section of workload `w` to `out`, rendering its merged results and
/// plots under `DIR/<workload>/`.
pub(super) fn section(dir: &Path, w: &WorkloadRuns, out: &mut String) -> Result<(), Error> {
    let merged = w.merged();
    let plots = section_plots(dir, w, &merged)?;
    let rel = &w.name;
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
    plot_links(out, rel, &plots.all);
    let alg = &plots.algorithm;
    let _ = writeln!(out, "\n`{alg}` over time, simulated and on each store:");
    plot_links(out, &format!("{rel}/{alg}"), &plots.over_time);
    Ok(())
}

pub(super) fn headlines(workloads: &[WorkloadRuns]) -> Vec<String> {
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
