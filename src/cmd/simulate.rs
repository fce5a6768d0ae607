//! `ratelab simulate`: every algorithm on the same traffic, in virtual time — a table,
//! `results.json`, plots and a report in seconds.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use loadgen::workload::parse_duration;
use loadgen::{SimAlgorithm, Simulation, StoreModel, Workload};
use reports::table::{self, Align};

/// Options of `ratelab simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workload: built-in `seed`, `boundary`, `api-mix` or `onoff`, or a TOML file.
    #[arg(short, long, default_value = "seed", value_name = "NAME|FILE")]
    workload: String,

    /// `all`, or a comma-separated list of: fixed-window, sliding-log, sliding-window,
    /// token-bucket, gcra, seed-replica.
    #[arg(short, long, default_value = "all", value_name = "all|LIST")]
    algorithms: String,

    /// Seed for the arrivals (default: the workload's own, else 1). Same seed, same
    /// numbers.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,

    /// Directory for results.json, the plots and report.md.
    #[arg(short, long, default_value = "ratelab-out", value_name = "DIR")]
    out: PathBuf,

    /// Print results.json to stdout instead of the table.
    #[arg(long)]
    json: bool,

    /// Write results.json only: no plots, no report.md.
    #[arg(long)]
    no_report: bool,

    /// Where limiter state lives: memory (one process), shared (N gateways, one atomic
    /// store) or local (N gateways, each its own state). Overrides the workload's.
    #[arg(long, value_name = "memory|shared|local")]
    store: Option<String>,

    /// Number of gateways (more than one implies --store shared unless given).
    #[arg(long, value_name = "N")]
    gateways: Option<u32>,

    /// Spread of the gateways' clock offsets, e.g. 2s.
    #[arg(long, value_name = "DURATION")]
    skew: Option<String>,

    /// Round trip to the shared store, e.g. 1ms (implies --store shared unless given).
    #[arg(long, value_name = "DURATION")]
    rtt: Option<String>,

    /// Uniform ± jitter on each round trip, e.g. 500us.
    #[arg(long, value_name = "DURATION")]
    jitter: Option<String>,
}

/// Runs the simulation, prints the comparison, writes results and the report.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut workload = Workload::load(&args.workload)?;
    let algorithms = SimAlgorithm::parse_list(&args.algorithms)?;
    apply_deployment(&args, &mut workload)?;
    let seed = args.seed.unwrap_or(workload.seed);

    let sim = Simulation::new(workload, seed)?;
    let mut bar = ProgressBar::new(
        std::io::stderr().is_terminal()
            && sim.arrivals().list.len() * (algorithms.len() + 2) > 2_000_000,
    );
    let outcome = sim.run(&algorithms, &mut |p| bar.update(&p))?;
    bar.finish();
    let results = &outcome.results;

    let results_path = results::write_results(results, &args.out)?;
    let rendered = if args.no_report {
        None
    } else {
        Some(reports::render(results, &args.out).context("rendering the report")?)
    };

    if args.json {
        print!("{}", results.to_json());
        return Ok(ExitCode::SUCCESS);
    }

    let w = sim.workload();
    let mut out = String::new();
    out.push_str(&format!("ratelab simulate: workload {}", w.name));
    if !w.description.is_empty() {
        out.push_str(&format!(" — {}", w.description));
    }
    out.push('\n');
    out.push_str(&format!(
        "{} requests over {} · {} user{} ({}) · {} arrivals · seed {} · {}\n",
        table::thousands(sim.arrivals().list.len() as u64),
        table::seconds(results.workload.duration_s),
        table::thousands(w.users.count as u64),
        if w.users.count == 1 { "" } else { "s" },
        results.workload.user_distribution,
        w.process.name(),
        seed,
        w.deployment.describe(),
    ));
    let weights: f64 = w.endpoints.iter().map(|e| e.weight).sum();
    for e in &results.workload.endpoints {
        out.push_str(&format!(
            "  {}: {} per {}, bursts of {}",
            e.path,
            table::thousands(e.limit),
            table::seconds(e.window_s),
            table::thousands(e.burst)
        ));
        if e.cost != 1 {
            out.push_str(&format!(", cost {}", e.cost));
        }
        if w.endpoints.len() > 1 {
            out.push_str(&format!(
                " ({:.0}% of requests)",
                e.weight * 100.0 / weights
            ));
        }
        out.push('\n');
    }
    out.push('\n');

    let mut summary = table::summary(results);
    summary.push_column(
        "ns/decision",
        Align::Right,
        outcome
            .timings
            .iter()
            .map(|t| format!("{:.1}", t.ns_per_decision()))
            .collect(),
    );
    out.push_str(&summary.to_text());
    out.push('\n');
    out.push_str(&table::admitted_by_phase(results).to_text());
    out.push('\n');

    let decisions: u64 = outcome.timings.iter().map(|t| t.decisions).sum();
    let busy: Duration = outcome.timings.iter().map(|t| t.elapsed).sum();
    out.push_str(&format!(
        "{} simulated decisions in {:.1} ms ({:.1} million/s on one core); whole run {:.2} s\n",
        table::thousands(decisions),
        busy.as_secs_f64() * 1e3,
        if busy.is_zero() {
            0.0
        } else {
            decisions as f64 / busy.as_secs_f64() / 1e6
        },
        started.elapsed().as_secs_f64(),
    ));
    out.push_str(&format!("results: {}\n", results_path.display()));
    if let Some(r) = rendered {
        out.push_str(&format!(
            "report:  {} ({} plots, PNG and SVG)\n",
            r.report.display(),
            r.plots.len()
        ));
    }
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = stdout.write_all(out.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// Applies the command line's deployment options over the workload's own.
fn apply_deployment(args: &Args, workload: &mut Workload) -> anyhow::Result<()> {
    let d = &mut workload.deployment;
    let duration = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<u64>> {
        v.as_deref()
            .map(|s| parse_duration(s).map_err(|m| anyhow::anyhow!("--{flag}: {m}")))
            .transpose()
    };
    match &args.store {
        Some(s) => {
            d.store = s
                .parse::<StoreModel>()
                .map_err(|m| anyhow::anyhow!("--store: {m}"))?
        }
        None => {
            let wants_many = args.gateways.is_some_and(|g| g > 1) || args.rtt.is_some();
            if wants_many && d.store == StoreModel::Memory {
                d.store = StoreModel::Shared;
            }
        }
    }
    if let Some(g) = args.gateways {
        d.gateways = g;
    }
    if let Some(v) = duration("skew", &args.skew)? {
        d.skew = v;
    }
    if let Some(v) = duration("rtt", &args.rtt)? {
        d.rtt = v;
    }
    if let Some(v) = duration("jitter", &args.jitter)? {
        d.jitter = v;
    }
    d.validate()
        .map_err(|(key, message)| anyhow::anyhow!("--{key}: {message}"))
}

/// A one-line progress bar on stderr, drawn only when enabled (stderr is a terminal
/// and the run is long enough to need one).
struct ProgressBar {
    enabled: bool,
    last: Option<Instant>,
}

impl ProgressBar {
    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            last: None,
        }
    }

    fn update(&mut self, p: &loadgen::Progress<'_>) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(80))
            && p.done < p.total
        {
            return;
        }
        self.last = Some(now);
        let steps = p.steps.max(1) as f64;
        let within = if p.total == 0 {
            1.0
        } else {
            p.done as f64 / p.total as f64
        };
        let fraction = ((p.step.saturating_sub(1)) as f64 + within) / steps;
        let width = 30;
        let filled = ((fraction * width as f64) as usize).min(width);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K[{}{}] {:>3.0}%  {} ({}/{})",
            "#".repeat(filled),
            "-".repeat(width - filled),
            fraction * 100.0,
            p.label,
            p.step,
            p.steps
        );
        let _ = err.flush();
    }

    fn finish(&mut self) {
        if self.enabled && self.last.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}
