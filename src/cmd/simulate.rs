//! `ratelab simulate`: every algorithm on the same traffic, in virtual time — a table,
//! `results.json`, plots and a report in seconds.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use loadgen::progress::ProgressLine;
use loadgen::workload::parse_duration;
use loadgen::{CurveOptions, Simulation, StoreModel, Workload};
use reports::digest::{self, Files};
use reports::terminal::{self, Extras};

use crate::exit::{UsageContext, usage};
use crate::values::{self, AlgorithmChoice, ModeArg, StoreModelArg};

/// Options of `ratelab simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workload: built-in `seed`, `boundary`, `api-mix` or `onoff`, or a TOML file
    /// (default: seed).
    #[arg(short, long, value_name = "NAME|FILE")]
    workload: Option<String>,

    /// `all`, or a comma-separated list of algorithms (`ratelab algorithms` says what
    /// each guarantees); `seed-replica` is the original project's flawed Redis bucket.
    #[arg(
        short,
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "all",
        value_name = "all|LIST"
    )]
    algorithms: Vec<AlgorithmChoice>,

    /// Seed for the arrivals (default: the workload's own, else 1). Same seed, same
    /// numbers.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,

    /// Directory for results.json, the plots and report.md.
    #[arg(short, long, default_value = "ratelab-out", value_name = "DIR")]
    out: PathBuf,

    /// Print a JSON digest (ratelab.digest/1: totals per run, files written) on stdout
    /// instead of the table.
    #[arg(long, conflicts_with = "quiet")]
    json: bool,

    /// Print nothing but errors (results and the report are still written).
    #[arg(short, long)]
    quiet: bool,

    /// Write results.json only: no plots, no report.md.
    #[arg(long)]
    no_report: bool,

    /// Where limiter state lives: memory (one process), shared (N gateways, one atomic
    /// store) or local (N gateways, each its own state). Overrides the workload's.
    #[arg(long, value_enum)]
    store: Option<StoreModelArg>,

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

    /// Store modes to compare, comma-separated (exact, lease, local): the workload
    /// goes through --gateways gateways sharing one store in each mode — lease at every
    /// --lease-max × --lease-ttl, local = each gateway alone — and the report draws
    /// accuracy against store calls per decision and p99 decision latency. Implies
    /// --store shared; give the gateways and the round trip, e.g. --gateways 3 --rtt 1ms.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        conflicts_with_all = ["store", "trace"],
        value_name = "LIST"
    )]
    store_mode: Vec<ModeArg>,

    /// `lease.max` of the lease points, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "4,16,64,256",
        value_name = "LIST"
    )]
    lease_max: Vec<u64>,

    /// `lease.ttl` of the lease points, comma-separated, e.g. 250ms,1s.
    #[arg(long, value_delimiter = ',', default_value = "1s", value_name = "LIST")]
    lease_ttl: Vec<String>,

    /// Replaying an access log instead of a workload.
    #[command(flatten)]
    replay: super::trace::ReplayArgs,
}

/// Runs the simulation, prints the comparison, writes results and the report.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let algorithms = values::algorithms(&args.algorithms);
    if let Some(path) = &args.replay.trace {
        return super::trace::replay(super::trace::Replay {
            args: &args.replay,
            path,
            algorithms: &algorithms,
            workload: args.workload.as_deref(),
            out: &args.out,
            json: args.json,
            quiet: args.quiet,
            no_report: args.no_report,
        });
    }
    let started = Instant::now();
    let workload_name = args.workload.as_deref().unwrap_or("seed");
    let mut workload = Workload::load(workload_name).usage()?;
    apply_deployment(&args, &mut workload).map_err(usage)?;
    let seed = args.seed.unwrap_or(workload.seed);

    let curve = curve_options(&args).map_err(usage)?;
    let algorithms = match &curve {
        // The seed replica has no store modes: `all` means limiter-core's algorithms.
        Some(_) if args.algorithms.contains(&AlgorithmChoice::All) => algorithms
            .into_iter()
            .filter(|a| a.kind().is_some())
            .collect(),
        _ => algorithms,
    };

    let sim = Simulation::new(workload, seed).usage_context("workload")?;
    let points = curve
        .as_ref()
        .map_or(1, |c| c.points().map_or(1, |p| p.len()));
    let plays = algorithms.len() * points;
    let decisions = sim.arrivals().list.len() * (plays + 2);
    let line = if args.quiet || args.json {
        ProgressLine::new(0, false)
    } else {
        ProgressLine::for_simulation(decisions)
    };
    let outcome = match &curve {
        None => sim.run(&algorithms, &mut |p| line.simulation(&p))?,
        Some(options) => sim
            .store_curve(&algorithms, options, &mut |p| line.simulation(&p))
            .usage_context("--store-mode")?,
    };
    line.clear();
    let results = &outcome.results;

    let results_path = results::write_results(results, &args.out)?;
    let rendered = if args.no_report {
        None
    } else {
        Some(reports::render(results, &args.out).context("rendering the report")?)
    };
    let extras = Extras {
        ns_per_decision: outcome
            .timings
            .iter()
            .map(|t| t.ns_per_decision())
            .collect(),
    };
    if args.json {
        let files = Files {
            results: results_path,
            report: rendered.as_ref().map(|r| r.report.clone()),
            html: rendered.as_ref().map(|r| r.html.clone()),
        };
        let json = digest::digest(results, files, &extras.ns_per_decision).to_json();
        let _ = std::io::stdout().lock().write_all(json.as_bytes());
        return Ok(ExitCode::SUCCESS);
    }
    if args.quiet {
        return Ok(ExitCode::SUCCESS);
    }
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
        out.push_str(&format!("html:    {}\n", r.html.display()));
    }
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = stdout.write_all(out.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// The store-mode curve the command line asks for (`--store-mode`), if any.
fn curve_options(args: &Args) -> anyhow::Result<Option<CurveOptions>> {
    if args.store_mode.is_empty() {
        return Ok(None);
    }
    let mut lease_ttl = Vec::new();
    for ttl in &args.lease_ttl {
        let nanos = parse_duration(ttl).map_err(|m| anyhow::anyhow!("--lease-ttl: {m}"))?;
        lease_ttl.push(std::time::Duration::from_nanos(nanos));
    }
    let options = CurveOptions {
        modes: args.store_mode.iter().map(|m| m.0).collect(),
        lease_max: args.lease_max.clone(),
        lease_ttl,
    };
    options
        .points()
        .map_err(|e| anyhow::anyhow!("--lease-max/--lease-ttl: {e}"))?;
    Ok(Some(options))
}

/// Applies the command line's deployment options over the workload's own.
fn apply_deployment(args: &Args, workload: &mut Workload) -> anyhow::Result<()> {
    let d = &mut workload.deployment;
    let duration = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<u64>> {
        v.as_deref()
            .map(|s| parse_duration(s).map_err(|m| anyhow::anyhow!("--{flag}: {m}")))
            .transpose()
    };
    match args.store {
        Some(StoreModelArg(s)) => d.store = s,
        // The store-mode curve plays N gateways on one shared store.
        None if !args.store_mode.is_empty() => d.store = StoreModel::Shared,
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
