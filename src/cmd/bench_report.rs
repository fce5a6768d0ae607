//! `ratelab bench-report`: renders `DIR/README.md` — the benchmark report with its
//! tables and plots — from the results `scripts/bench.sh` leaves in `DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use reports::bench::{BenchInfo, render_bench};

use crate::exit::usage_bail;

/// Options of `ratelab bench-report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The benchmark directory (with `runs/` and `sim/`).
    #[arg(long, default_value = "bench", value_name = "DIR")]
    dir: PathBuf,

    /// How long the benchmark took, seconds (stated in the report).
    #[arg(long, value_name = "SECONDS")]
    elapsed: Option<u64>,

    /// The commit the benchmark was built from (stated in the report).
    #[arg(long, value_name = "REV")]
    commit: Option<String>,
}

/// Runs `ratelab bench-report`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.dir.join("runs").is_dir() {
        usage_bail!(
            "{} has no runs/ directory: run scripts/bench.sh first",
            args.dir.display()
        );
    }
    let info = BenchInfo {
        elapsed_s: args.elapsed,
        commit: args.commit,
    };
    let path = render_bench(&args.dir, &info)?;
    println!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}
