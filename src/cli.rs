//! Command-line interface: a thin clap dispatch onto the library crates. Each command
//! lives in its own file under `src/cmd/`.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::cmd;
use crate::exit;

/// A lab for rate-limit algorithms, and a gateway you can deploy.
#[derive(Debug, Parser)]
#[command(name = "ratelab", version, about, propagate_version = true, after_help = exit::HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the algorithms ratelab implements, with what each guarantees and the state
    /// it keeps per key.
    #[command(after_help = exit::HELP)]
    Algorithms(cmd::algorithms::Args),
    /// Compare algorithms on the same traffic in virtual time: a table, results.json,
    /// plots and a report (default: the original project's load test, every algorithm).
    #[command(after_help = exit::HELP)]
    Simulate(Box<cmd::simulate::Args>),
    /// Render plots, report.md and report.html from a results.json.
    #[command(after_help = exit::HELP)]
    Report(cmd::report::Args),
    /// Run the rate-limiting gateway in front of a backend.
    #[command(after_help = exit::HELP)]
    Gateway(cmd::gateway::Args),
    /// Run the mock backend (latency, errors, per-user counts at /stats).
    #[command(after_help = exit::HELP)]
    Backend(cmd::backend::Args),
    /// Play a workload over real HTTP through one or many gateways, measure latency and
    /// accuracy, and write results.json, plots and a report.
    #[command(after_help = exit::HELP)]
    Load(Box<cmd::load::Args>),
    /// Access logs: `ratelab trace generate` writes one from a workload (replay one with
    /// `ratelab simulate --trace`).
    #[command(after_help = exit::HELP)]
    Trace {
        /// What to do.
        #[command(subcommand)]
        command: cmd::trace::Command,
    },
    /// Render the benchmark report (README.md and plots) from scripts/bench.sh's results.
    #[command(after_help = exit::HELP)]
    BenchReport(cmd::bench_report::Args),
    /// Print a shell completion script (e.g. `ratelab completions bash >
    /// /etc/bash_completion.d/ratelab`).
    #[command(after_help = exit::HELP)]
    Completions(cmd::completions::Args),
    /// Print the man page (ratelab.1), or write one per command into a directory.
    #[command(after_help = exit::HELP)]
    Man(cmd::man::Args),
}

/// The clap command, for completions and the man page.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Parses the command line and runs the chosen command.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Algorithms(args) => cmd::algorithms::run(args),
        Command::Simulate(args) => cmd::simulate::run(*args),
        Command::Report(args) => cmd::report::run(args),
        Command::Gateway(args) => cmd::gateway::run(args),
        Command::Backend(args) => cmd::backend::run(args),
        Command::Load(args) => cmd::load::run(*args),
        Command::BenchReport(args) => cmd::bench_report::run(args),
        Command::Trace { command } => cmd::trace::run(command),
        Command::Completions(args) => cmd::completions::run(args),
        Command::Man(args) => cmd::man::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
