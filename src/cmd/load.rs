//! `ratelab load`: a workload played over real HTTP through one or many gateways —
//! goose (or the open-loop driver) at the workload's arrival rates, every response
//! counted, the backend's `/stats` read before and after as ground truth — written as
//! `results.json` in the simulator's schema, with plots and `report.md`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use limiter_core::Kind;
use loadgen::Workload;
use loadgen::drivers::http::goose::{GooseConfiguration, GooseOptions, default_users};
use loadgen::drivers::http::open_loop::OpenLoopOptions;
use loadgen::drivers::http::plan::{self, LoadPlan, Scale};
use loadgen::drivers::http::{Driver, LoadSpec};
use results::Results;

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

    /// Multiply every duration (phases, policy windows) by F and divide every rate by F:
    /// the same requests against the same policies in F times the time.
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    time_scale: f64,

    /// Multiply every arrival rate by F, keeping durations and policies: fewer requests.
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    rate_scale: f64,

    /// Seed for the arrivals (default: the workload's own).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,

    /// Directory for results.json, workload.toml (the workload as played), the plots
    /// and report.md.
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
    #[arg(
        long,
        value_name = "memory|redis|redis-cluster",
        default_value = "memory"
    )]
    store: String,

    /// The algorithm the gateways run, as the results should name it (default: read
    /// from the gateways' /metrics).
    #[arg(long, value_name = "NAME")]
    algorithm: Option<String>,

    /// `goose` (closed loop, users paced to the schedule) or `open` (open loop on
    /// tokio + hyper: one task per request, nothing waits for a response).
    #[arg(long, value_name = "goose|open", default_value = "goose")]
    driver: String,

    /// Open-loop driver: most requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 2048)]
    max_in_flight: usize,

    /// Load targets that are not ratelab gateways (the backend itself, say): no check,
    /// no gateway counters.
    #[arg(long)]
    no_gateway_check: bool,

    /// Print the gateway `[[route]]` tables that enforce the (scaled) workload's
    /// policies with this algorithm, and exit.
    #[arg(long, value_name = "ALGORITHM")]
    emit_routes: Option<String>,

    /// Worker threads of the load generator (default: one per CPU).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,

    /// Goose's own options (`--users`, `--timeout`, `--report-file`...); those that
    /// would fight the workload's pacing are refused.
    #[command(flatten)]
    goose: GooseConfiguration,
}

/// Exit code of a run that ended early or lost requests: results are written, marked
/// incomplete.
const INCOMPLETE: u8 = 3;

/// The algorithm named on the command line.
fn kind(name: &str) -> anyhow::Result<Kind> {
    Kind::ALL
        .into_iter()
        .find(|k| k.name() == name)
        .with_context(|| {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            format!(
                "unknown algorithm {name:?} (expected one of: {})",
                names.join(", ")
            )
        })
}

/// Runs `ratelab load`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::gateway::init_tracing();
    let workload = Workload::load(&args.workload)?;
    let scale = Scale {
        time: args.time_scale,
        rate: args.rate_scale,
    };
    let scaled = plan::scale_workload(&workload, scale)?;
    if let Some(name) = &args.emit_routes {
        print!("{}", plan::gateway_routes(&scaled, kind(name)?)?);
        return Ok(ExitCode::SUCCESS);
    }
    let seed = args.seed.unwrap_or(scaled.seed);
    let plan = Arc::new(LoadPlan::new(scaled, seed)?);
    if plan.is_empty() {
        bail!(
            "workload {:?} has no arrivals at this scale: nothing to send",
            plan.workload.name
        );
    }
    let driver = driver(&args, &plan)?;
    if let Some(name) = &args.algorithm {
        kind(name)?;
    }
    if !args.admin.is_empty() && args.admin.len() != args.target.len() {
        bail!(
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
        store: args.store.clone(),
        algorithm: args.algorithm.clone(),
        check_gateway: !args.no_gateway_check,
        driver,
        progress: true,
    };
    eprintln!(
        "ratelab load: {} ({} requests over {:.1} s, peak {:.0}/s) -> {} with {}",
        plan.workload.name,
        plan.len(),
        plan.workload.duration() as f64 / 1e9,
        plan.peak_rate(),
        args.target.join(", "),
        spec.driver.describe()
    );
    let runtime = super::gateway::runtime(args.threads)?;
    let results = runtime.block_on(loadgen::drivers::http::run::run(spec))?;
    // Goose's users may still be winding down: do not wait for them.
    runtime.shutdown_timeout(Duration::from_secs(1));

    write_out(&args.out, &results, &plan)?;
    print!(
        "{}",
        reports::terminal::render(&results, &Default::default())
    );
    println!("results: {}", args.out.join("results.json").display());
    println!("report:  {}", args.out.join("report.md").display());
    let complete = results.measurements.iter().all(|m| m.complete);
    if !complete {
        eprintln!(
            "ratelab load: the run is incomplete (see the notes above); its results are kept and marked"
        );
        return Ok(ExitCode::from(INCOMPLETE));
    }
    Ok(ExitCode::SUCCESS)
}

/// Goose's `--timeout` (seconds) for either driver; 10 s when not given.
fn timeout(args: &Args) -> anyhow::Result<Duration> {
    let Some(t) = args.goose.timeout.as_deref() else {
        return Ok(Duration::from_secs(10));
    };
    let secs: f64 = t
        .trim()
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 3600.0)
        .with_context(|| format!("--timeout {t:?}: expected seconds between 0 and 3600"))?;
    Ok(Duration::from_secs_f64(secs))
}

/// The driver `--driver` names, with its options.
fn driver(args: &Args, plan: &LoadPlan) -> anyhow::Result<Driver> {
    let timeout = timeout(args)?;
    Ok(match args.driver.as_str() {
        "goose" => Driver::Goose(Box::new(GooseOptions {
            users: default_users(plan.peak_rate()),
            timeout,
            config: args.goose.clone(),
        })),
        "open" => {
            anyhow::ensure!(args.max_in_flight > 0, "--max-in-flight must be at least 1");
            Driver::OpenLoop(OpenLoopOptions {
                max_in_flight: args.max_in_flight,
                timeout,
            })
        }
        other => bail!("unknown driver {other:?} (expected goose or open)"),
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
