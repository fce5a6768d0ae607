//! `ratelab report`: plots and `report.md` from a `results.json`, alone.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use reports::terminal::Extras;

/// Options of `ratelab report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory holding results.json (from `ratelab simulate` or `ratelab load`).
    #[arg(long = "in", default_value = "ratelab-out", value_name = "DIR")]
    input: PathBuf,

    /// Where to write the plots and report.md (default: the input directory).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Renders the report and prints what `simulate` or `load` printed for these results.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let results = results::read_results(&args.input)
        .with_context(|| format!("reading results from {}", args.input.display()))?;
    let out = args.out.as_ref().unwrap_or(&args.input);
    let rendered = reports::render(&results, out)?;
    print!(
        "{}",
        reports::terminal::render(&results, &Extras::default())
    );
    println!(
        "\nreport: {} ({} plots, PNG and SVG)",
        rendered.report.display(),
        rendered.plots.len()
    );
    Ok(ExitCode::SUCCESS)
}
