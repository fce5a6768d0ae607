//! Access logs: `ratelab simulate --trace FILE` replays one through every algorithm
//! with a gateway config's routes and limits; `ratelab trace generate` writes one from
//! a workload, so examples and tests need no downloaded data.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use gateway::contract::policy::PolicySpec;
use limiter_core::Kind;
use loadgen::progress::ProgressLine;
use loadgen::trace::{self, Format, Grid, ReplayOptions, Route, Routes};
use loadgen::workload::parse_duration;
use loadgen::{SimAlgorithm, Workload};
use reports::digest::{self, Files};
use reports::terminal;

use crate::exit::{UsageContext, usage, usage_bail};

/// A log's format on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// nginx/Apache combined, or the `--log-format` given.
    Combined,
    /// JSON lines (the gateway's own access log reads without options).
    Json,
    /// CSV with a header row.
    Csv,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Combined => Format::Combined,
            FormatArg::Json => Format::Json,
            FormatArg::Csv => Format::Csv,
        }
    }
}

/// The options of `ratelab simulate` that replay an access log.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Replay this access log instead of a workload (`-`: standard input; `.gz` and
    /// `.zst` are decompressed). Needs --config (or --workload for its endpoints).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<String>,

    /// The log's format.
    #[arg(long, value_enum, default_value_t = FormatArg::Combined, requires = "trace")]
    pub format: FormatArg,

    /// A custom nginx log_format string, e.g. '$remote_addr [$time_iso8601] "$request"
    /// $status $http_x_api_key' (format combined).
    #[arg(long, value_name = "LOG_FORMAT", requires = "trace")]
    pub log_format: Option<String>,

    /// The gateway configuration whose routes, limits and identity rules apply.
    #[arg(long, value_name = "FILE", requires = "trace")]
    pub config: Option<PathBuf>,

    /// JSON/CSV field names: FIELD=NAME, FIELD one of time, identity, api_key, header,
    /// client, method, path, status, cost (repeatable).
    #[arg(long = "field", value_name = "FIELD=NAME", requires = "trace")]
    pub fields: Vec<String>,

    /// How far out of order lines may be and still be put in order.
    #[arg(
        long,
        default_value = "5s",
        value_name = "DURATION",
        requires = "trace"
    )]
    pub reorder: String,

    /// Rejections over time: one bar per this long.
    #[arg(
        long,
        default_value = "1h",
        value_name = "DURATION",
        requires = "trace"
    )]
    pub bin: String,

    /// Stop at the first malformed line instead of counting it.
    #[arg(long, requires = "trace")]
    pub strict: bool,

    /// How many of the most throttled identities to list.
    #[arg(long, default_value_t = 10, value_name = "N", requires = "trace")]
    pub top: usize,

    /// A grid to sweep: limit=50..500/50 (or limit=10,20,50), burst=1x,2x,4x.
    #[arg(long = "sweep", value_name = "NAME=VALUES", requires = "trace")]
    pub sweep: Vec<String>,

    /// Worker threads (default: one per CPU).
    #[arg(long, value_name = "N", requires = "trace")]
    pub threads: Option<usize>,
}

/// What `simulate` passes on for a replay.
#[derive(Debug)]
pub struct Replay<'a> {
    /// The replay options.
    pub args: &'a ReplayArgs,
    /// The log.
    pub path: &'a str,
    /// `--algorithms`.
    pub algorithms: &'a [SimAlgorithm],
    /// `--workload`, when given: its endpoints are the routes (without --config).
    pub workload: Option<&'a str>,
    /// Where results go.
    pub out: &'a std::path::Path,
    /// Print the JSON digest instead of tables.
    pub json: bool,
    /// Print nothing but errors.
    pub quiet: bool,
    /// results.json only.
    pub no_report: bool,
}

/// Replays the log, prints what each algorithm would have done, writes the results.
pub fn replay(r: Replay<'_>) -> anyhow::Result<ExitCode> {
    let kinds: Vec<Kind> = r.algorithms.iter().filter_map(|a| a.kind()).collect();
    if kinds.is_empty() {
        usage_bail!(
            "--algorithms: a trace replays limiter-core's algorithms (seed-replica is not one)"
        );
    }
    let (routes, mut options) = setup(&r, &kinds).map_err(usage)?;
    options.algorithms = kinds;
    let input = trace::input::open(r.path).usage_context(format_args!("opening {}", r.path))?;
    let line = match input.size {
        Some(size) => ProgressLine::new(size, size > 16 << 20 && !r.quiet && !r.json),
        None => ProgressLine::new(0, false),
    };
    let read = std::sync::Arc::clone(&input.read);
    let outcome = trace::replay(input.reader, r.path, &routes, &options, &mut |i| {
        line.set(
            read.load(std::sync::atomic::Ordering::Relaxed),
            format!("{} lines, {} requests", i.lines, i.requests),
        )
    })?;
    line.clear();
    let results = &outcome.results;
    let results_path = results::write_results(results, r.out)?;
    let rendered = if r.no_report {
        None
    } else {
        Some(reports::render(results, r.out).context("rendering the report")?)
    };
    let mut stdout = std::io::stdout().lock();
    if r.json {
        let files = Files {
            results: results_path,
            report: rendered.as_ref().map(|r| r.report.clone()),
            html: rendered.as_ref().map(|r| r.html.clone()),
        };
        let _ = stdout.write_all(digest::digest(results, files, &[]).to_json().as_bytes());
        return Ok(ExitCode::SUCCESS);
    }
    if r.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = terminal::render(results, &terminal::Extras::default());
    let lines = results.trace.as_ref().map_or(0, |t| t.input.lines);
    let secs = outcome.elapsed.as_secs_f64().max(1e-9);
    out.push_str(&format!(
        "\nreplayed {lines} lines in {:.2} s ({:.0} lines/s)\nresults: {}\n",
        secs,
        lines as f64 / secs,
        results_path.display()
    ));
    if let Some(rendered) = rendered {
        out.push_str(&format!("report:  {}\n", rendered.report.display()));
        out.push_str(&format!("html:    {}\n", rendered.html.display()));
    }
    let _ = stdout.write_all(out.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// The routes (from --config, else --workload) and the replay options.
fn setup(r: &Replay<'_>, kinds: &[Kind]) -> anyhow::Result<(Routes, ReplayOptions)> {
    let a = r.args;
    let mut options = ReplayOptions::default();
    let routes = match (&a.config, r.workload) {
        (Some(path), _) => {
            let config = gateway::Config::load(path)
                .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
            let id = &config.identity;
            options.format.identity_header = id.header.clone();
            options.format.api_key_header = id.api_key_header.clone();
            options.identity.ipv6_prefix = id.ipv6_prefix;
            if let Some(file) = &id.api_keys {
                let table = gateway::identity::KeyTable::load(file)
                    .map_err(|e| anyhow::anyhow!("invalid keys file: {e}"))?;
                options.identity.keys = Some(std::sync::Arc::new(move |presented: &str| {
                    table
                        .lookup(presented.as_bytes())
                        .map(|k| std::sync::Arc::clone(&k.key))
                }));
            }
            // Replay judges one limit per route: a route's first (policy's several limits
            // and tiers are not replayed here).
            let list = config
                .routes
                .iter()
                .filter_map(|route| {
                    Some(Route {
                        template: Some(route.path.clone()),
                        spec: PolicySpec {
                            quota: route.limit.limits.iter().find_map(|l| l.policy())?.quota,
                            cost: route.limit.cost,
                        },
                    })
                })
                .collect();
            let default = config.default.as_ref().and_then(|d| {
                Some(PolicySpec {
                    quota: d.limits.iter().find_map(|l| l.policy())?.quota,
                    cost: d.cost,
                })
            });
            Routes::new(list, default, kinds)
        }
        (None, Some(name)) => Routes::from_workload(&Workload::load(name)?, kinds),
        (None, None) => {
            anyhow::bail!("--trace needs --config gateway.toml (or --workload for its endpoints)")
        }
    }
    .map_err(anyhow::Error::msg)?;
    options.format.format = a.format.into();
    options.format.log_format = a.log_format.clone();
    anyhow::ensure!(
        a.log_format.is_none() || a.format == FormatArg::Combined,
        "--log-format applies to --format combined"
    );
    for f in &a.fields {
        options
            .format
            .names
            .set(f)
            .map_err(|e| anyhow::anyhow!("--field {e}"))?;
    }
    let duration =
        |flag: &str, v: &str| parse_duration(v).map_err(|m| anyhow::anyhow!("--{flag}: {m}"));
    options.reorder = duration("reorder", &a.reorder)?;
    options.bin = duration("bin", &a.bin)?;
    anyhow::ensure!(options.bin > 0, "--bin must be longer than zero");
    options.strict = a.strict;
    options.top = a.top;
    if let Some(t) = a.threads {
        options.threads = t.max(1);
    }
    if !a.sweep.is_empty() {
        options.sweep = Some(Grid::parse(&a.sweep).map_err(|e| anyhow::anyhow!("--sweep: {e}"))?);
    }
    Ok((routes, options))
}

/// `ratelab trace …`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write a workload's arrivals as an access log (deterministic: same workload and
    /// seed, same bytes).
    Generate(GenerateArgs),
}

/// Options of `ratelab trace generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Workload: built-in `seed`, `boundary`, `api-mix` or `onoff`, or a TOML file.
    #[arg(short, long, default_value = "api-mix", value_name = "NAME|FILE")]
    workload: String,
    /// The log's format.
    #[arg(long, value_enum, default_value_t = FormatArg::Combined)]
    format: FormatArg,
    /// Seed for the arrivals (default: the workload's own).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Write here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs `ratelab trace …`.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Generate(args) => generate(args),
    }
}

fn generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let workload = Workload::load(&args.workload).usage()?;
    let seed = args.seed.unwrap_or(workload.seed);
    let lines = match &args.out {
        Some(path) => {
            let mut file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            trace::generate::generate(&workload, seed, args.format.into(), &mut file)
        }
        None => trace::generate::generate(
            &workload,
            seed,
            args.format.into(),
            &mut std::io::stdout().lock(),
        ),
    };
    match lines {
        Ok(n) => {
            if let Some(path) = &args.out {
                eprintln!("wrote {n} lines to {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        // `| head` closes the pipe: not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("writing the log"),
    }
}
