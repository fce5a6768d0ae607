//! `ratelab completions SHELL`: a completion script generated from the command line's
//! own definition (clap_complete), so it never lags behind a new flag or value.

use std::process::ExitCode;

use clap_complete::Shell;

/// Options of `ratelab completions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Prints the completion script for `args.shell` on stdout.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut command = crate::cli::command();
    clap_complete::generate(args.shell, &mut command, "ratelab", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
