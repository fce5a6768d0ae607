//! Command-line interface: a thin clap dispatch onto the library crates. Each command
//! lives in its own file under `src/cmd/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd;

/// A lab for rate-limit algorithms, and a gateway you can deploy.
#[derive(Debug, Parser)]
#[command(name = "ratelab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the algorithms ratelab implements.
    Algorithms,
    /// Compare algorithms on the same traffic in virtual time: a table, results.json,
    /// plots and a report (default: the original project's load test, every algorithm).
    Simulate(cmd::simulate::Args),
    /// Render plots and report.md from a results.json.
    Report(cmd::report::Args),
    /// Run the rate-limiting gateway in front of a backend.
    Gateway(cmd::gateway::Args),
    /// Run the mock backend (latency, errors, per-user counts at /stats).
    Backend(cmd::backend::Args),
    /// Play a workload over real HTTP through one or many gateways (goose), measure
    /// latency and accuracy, and write results.json, plots and a report.
    Load(Box<cmd::load::Args>),
    /// Render the benchmark report (README.md and plots) from scripts/bench.sh's results.
    BenchReport(cmd::bench_report::Args),
}

/// Parses the command line and runs the chosen command.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Algorithms => cmd::algorithms::run(),
        Command::Simulate(args) => cmd::simulate::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::Gateway(args) => cmd::gateway::run(args),
        Command::Backend(args) => cmd::backend::run(args),
        Command::Load(args) => cmd::load::run(*args),
        Command::BenchReport(args) => cmd::bench_report::run(args),
    }
}
