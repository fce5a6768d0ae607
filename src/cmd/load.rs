//! `ratelab load`: a workload played over real HTTP through one or many gateways —
//! goose (or the open-loop driver) at the workload's arrival rates, every response
//! counted, the backend's `/stats` read before and after as ground truth — written as
//! `results.json` in the simulator's schema, with plots and `report.md`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use loadgen::Workload;
use loadgen::drivers::http::client;
use loadgen::drivers::http::goose::{
    GooseConfiguration, GooseOptions, check_configuration, default_users,
};
use loadgen::drivers::http::open_loop::OpenLoopOptions;
use loadgen::drivers::http::plan::{self, LoadPlan, Scale};
use loadgen::drivers::http::{Driver, LoadSpec};
use reports::digest::{self, Files};
use results::Results;

use crate::exit::{INCOMPLETE, UsageContext, usage, usage_bail};
use crate::values::{DriverKind, GatewayStore, KindArg};

/// Options of `ratelab load`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Gateway base URLs, comma-separated; requests are spread over them in turn.
    #[arg(
        long,
        value_name = "URL[,URL...]",
        value_delimiter = ',',
        required_unless_present = "emit_routes"
    )]
    target: Vec<String>,

    /// Workload: built-in `seed`, `boundary`, `api-mix` or `onoff`, or a TOML file.
    #[arg(short, long, default_value = "seed", value_name = "NAME|FILE")]
    workload: String,

    /// Multiply every duration (phases, windows) by F and divide every rate by F.
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    time_scale: f64,

    /// Multiply every arrival rate by F, keeping durations and policies.
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    rate_scale: f64,

    /// Seed for the arrivals (default: the workload's own).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,

    /// Directory for results.json, workload.toml (as played), plots and reports.
    #[arg(short, long, default_value = "ratelab-load", value_name = "DIR")]
    out: PathBuf,

    /// The gateways' admin base URLs (their `admin_listen`), comma-separated, one per
    /// --target in the same order: where their /metrics is read.
    #[arg(long, value_name = "URL[,URL...]", value_delimiter = ',')]
    admin: Vec<String>,

    /// The mock backend's base URL: its /stats before and after is the ground truth.
    #[arg(long, value_name = "URL")]
    backend: Option<String>,

    /// The store behind the gateways, as the results should name it.
    #[arg(long, value_enum, default_value = "memory")]
    store: GatewayStore,

    /// The algorithm the gateways run, as results name it [default: from /metrics].
    #[arg(long, value_enum, value_name = "ALGORITHM")]
    algorithm: Option<KindArg>,

    /// goose: closed-loop users paced to the schedule; open: connections that send
    /// each request when due (latency from the due instant either way).
    #[arg(long, value_enum, default_value = "goose")]
    driver: DriverKind,

    /// Per-request timeout, seconds (both drivers).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,

    /// goose: users, i.e. requests in flight at once [default: peak rate × 50 ms].
    #[arg(long, value_name = "N")]
    users: Option<usize>,

    /// goose: also write goose's own HTML report to FILE.
    #[arg(long, value_name = "FILE")]
    goose_report: Option<PathBuf>,

    /// goose: pass one more of goose's own options, e.g. `--goose-arg=-v` (repeatable).
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    goose_arg: Vec<String>,

    /// open: most requests in flight at once (connections, one request each).
    #[arg(long, value_name = "N", default_value_t = 2048)]
    max_in_flight: usize,

    /// open: connections per target, opened before the start and kept [default: peak
    /// rate / 1000, 16 to 256].
    #[arg(long, value_name = "N")]
    connections: Option<usize>,

    /// The targets are not ratelab gateways (the backend itself, say): no check.
    #[arg(long)]
    no_gateway_check: bool,

    /// Print the gateway `[[route]]` tables that enforce the (scaled) workload with
    /// ALGORITHM, and exit.
    #[arg(long, value_enum, value_name = "ALGORITHM")]
    emit_routes: Option<KindArg>,

    /// Worker threads of the load generator (default: one per CPU).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,

    /// Print a JSON digest (ratelab.digest/1) on stdout instead of the table.
    #[arg(long, conflicts_with = "quiet")]
    json: bool,

    /// Print nothing but errors and warnings; no progress line.
    #[arg(short, long)]
    quiet: bool,
}

/// Runs `ratelab load`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::gateway::init_tracing();
    let workload = Workload::load(&args.workload).usage()?;
    let scale = Scale {
        time: args.time_scale,
        rate: args.rate_scale,
    };
    let scaled = plan::scale_workload(&workload, scale).usage()?;
    if let Some(KindArg(kind)) = args.emit_routes {
        print!("{}", plan::gateway_routes(&scaled, kind).usage()?);
        return Ok(ExitCode::SUCCESS);
    }
    let seed = args.seed.unwrap_or(scaled.seed);
    let plan = Arc::new(LoadPlan::new(scaled, seed).usage()?);
    if plan.is_empty() {
        usage_bail!(
            "workload {:?} has no arrivals at this scale: nothing to send",
            plan.workload.name
        );
    }
    let driver = driver(&args, &plan)?;
    // A URL that can never work is the user's mistake (exit 2), not a failed run.
    for url in args.target.iter().chain(&args.backend) {
        client::base_url(url).usage_context(if args.backend.as_ref() == Some(url) {
            "--backend"
        } else {
            "--target"
        })?;
    }
    if !args.admin.is_empty() && args.admin.len() != args.target.len() {
        usage_bail!(
            "--admin lists {} URL(s) for {} target(s): give one per --target, in the same order",
            args.admin.len(),
            args.target.len()
        );
    }
    let spec = LoadSpec {
        plan: Arc::clone(&plan),
        scale,
        targets: args.target.clone(),
        admin: args.admin.clone(),
        backend: args.backend.clone(),
        store: args.store.name().to_owned(),
        algorithm: args.algorithm.map(|KindArg(k)| k.name().to_owned()),
        check_gateway: !args.no_gateway_check,
        driver,
        progress: !args.quiet && !args.json,
    };
    if !args.quiet {
        eprintln!(
            "ratelab load: {} ({} requests over {:.1} s, peak {:.0}/s) -> {} with {}",
            plan.workload.name,
            plan.len(),
            plan.workload.duration() as f64 / 1e9,
            plan.peak_rate(),
            args.target.join(", "),
            spec.driver.describe()
        );
    }
    let runtime = super::gateway::runtime(args.threads)?;
    let results = runtime.block_on(loadgen::drivers::http::run::run(spec))?;
    // Goose's users may still be winding down: do not wait for them.
    runtime.shutdown_timeout(Duration::from_secs(1));

    write_out(&args.out, &results, &plan)?;
    print_outcome(&args, &results);
    if !results.measurements.iter().all(|m| m.complete) {
        eprintln!(
            "ratelab load: the run is incomplete (see the notes above); its results are kept and marked"
        );
        return Ok(ExitCode::from(INCOMPLETE));
    }
    Ok(ExitCode::SUCCESS)
}

/// The table and the files written (or the JSON digest, or nothing with `--quiet`).
fn print_outcome(args: &Args, results: &Results) {
    let files = Files {
        results: args.out.join(results::RESULTS_FILE),
        report: Some(args.out.join(reports::REPORT_FILE)),
        html: Some(args.out.join(reports::html::HTML_FILE)),
    };
    let text = if args.json {
        digest::digest(results, files, &[]).to_json()
    } else if args.quiet {
        return;
    } else {
        let mut out = reports::terminal::render(results, &Default::default());
        out.push_str(&format!("results: {}\n", files.results.display()));
        for (label, path) in [("report: ", &files.report), ("html:   ", &files.html)] {
            if let Some(path) = path {
                out.push_str(&format!("{label} {}\n", path.display()));
            }
        }
        out
    };
    use std::io::Write as _;
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// `--timeout` as a duration: positive, at most an hour.
fn timeout(args: &Args) -> anyhow::Result<Duration> {
    let secs = args.timeout;
    if !(secs.is_finite() && secs > 0.0 && secs <= 3600.0) {
        usage_bail!("--timeout {secs}: expected seconds between 0 and 3600");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Goose's configuration: `--goose-report` and every `--goose-arg`, parsed by goose and
/// checked against the pacing before anything runs.
fn goose_configuration(args: &Args) -> anyhow::Result<GooseConfiguration> {
    let mut goose_args: Vec<String> = Vec::new();
    if let Some(path) = &args.goose_report {
        goose_args.push("--report-file".to_owned());
        goose_args.push(path.display().to_string());
    }
    goose_args.extend(args.goose_arg.iter().cloned());
    let config = GooseConfiguration::parse_args_default(&goose_args)
        .map_err(|e| usage(anyhow::anyhow!("--goose-arg: {e}")))?;
    check_configuration(&config).usage()?;
    Ok(config)
}

/// The driver `--driver` names, with its options.
fn driver(args: &Args, plan: &LoadPlan) -> anyhow::Result<Driver> {
    let timeout = timeout(args)?;
    Ok(match args.driver {
        DriverKind::Goose => {
            if args.users == Some(0) {
                usage_bail!("--users must be at least 1");
            }
            if args.connections.is_some() {
                usage_bail!("--connections is the open-loop driver's (--driver open)");
            }
            Driver::Goose(Box::new(GooseOptions {
                users: args
                    .users
                    .unwrap_or_else(|| default_users(plan.peak_rate())),
                timeout,
                config: goose_configuration(args)?,
            }))
        }
        DriverKind::Open => {
            if args.users.is_some() || args.goose_report.is_some() || !args.goose_arg.is_empty() {
                usage_bail!("--users, --goose-report and --goose-arg are goose's (--driver goose)");
            }
            if args.max_in_flight == 0 || args.connections == Some(0) {
                usage_bail!("--max-in-flight and --connections must be at least 1");
            }
            Driver::OpenLoop(OpenLoopOptions {
                max_in_flight: args.max_in_flight,
                connections: args.connections,
                threads: args.threads,
                timeout,
            })
        }
    })
}

/// Writes results.json, the workload as played and the report into `dir`.
fn write_out(dir: &Path, results: &Results, plan: &LoadPlan) -> anyhow::Result<()> {
    results::write_results(results, dir)?;
    let workload = dir.join("workload.toml");
    std::fs::write(&workload, plan::to_toml(&plan.workload, plan.seed)?)
        .with_context(|| format!("writing {}", workload.display()))?;
    reports::render(results, dir)?;
    Ok(())
}
