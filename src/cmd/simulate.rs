//! `ratelab simulate`: every algorithm on the same traffic, in virtual time — a table,
//! `results.json`, plots and a report in seconds.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use loadgen::progress::ProgressLine;
use loadgen::workload::parse_duration;
use loadgen::{SimAlgorithm, Simulation, StoreModel, Workload};
use reports::terminal::{self, Extras};

/// Options of `ratelab simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workload: built-in `seed`, `boundary`, `api-mix` or `onoff`, or a TOML file.
    #[arg(short, long, default_value = "seed", value_name = "NAME|FILE")]
    workload: String,

    /// `all`, or a comma-separated list of algorithm names (`ratelab algorithms` lists
    /// them), and `seed-replica`, the original project's flawed Redis token bucket.
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
    let line = ProgressLine::for_simulation(sim.arrivals().list.len() * (algorithms.len() + 2));
    let outcome = sim.run(&algorithms, &mut |p| line.simulation(&p))?;
    line.clear();
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

    let extras = Extras {
        ns_per_decision: outcome
            .timings
            .iter()
            .map(|t| t.ns_per_decision())
            .collect(),
    };
    let mut out = terminal::render(results, &extras);
    out.push('\n');
    out.push_str(&terminal::decisions_line(
        outcome.timings.iter().map(|t| t.decisions).sum(),
        outcome.timings.iter().map(|t| t.elapsed).sum(),
        started.elapsed(),
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
