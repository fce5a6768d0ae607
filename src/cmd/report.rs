//! `ratelab report`: plots, `report.md` and `report.html` from a `results.json`, alone.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use reports::terminal::Extras;

use crate::exit::{UsageContext, usage_bail};

/// Options of `ratelab report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory holding results.json (from `ratelab simulate` or `ratelab load`).
    #[arg(long = "in", default_value = "ratelab-out", value_name = "DIR")]
    input: PathBuf,

    /// Where to write the plots and reports (default: the input directory).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
}

/// Renders the report and prints what `simulate` or `load` printed for these results.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.input.is_dir() {
        usage_bail!(
            "{}: no such directory (give --in the --out of `ratelab simulate` or `ratelab load`)",
            args.input.display()
        );
    }
    let path = args.input.join(results::RESULTS_FILE);
    if !path.is_file() {
        usage_bail!(
            "{}: no results.json here (written by `ratelab simulate` or `ratelab load`)",
            args.input.display()
        );
    }
    let results =
        results::read_results(&args.input).usage_context(format!("reading {}", path.display()))?;
    let out = args.out.as_ref().unwrap_or(&args.input);
    let rendered = reports::render(&results, out).context("rendering the report")?;
    if args.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    print!(
        "{}",
        reports::terminal::render(&results, &Extras::default())
    );
    println!(
        "\nreport: {} ({} plots, PNG and SVG)\nhtml:   {}",
        rendered.report.display(),
        rendered.plots.len(),
        rendered.html.display()
    );
    Ok(ExitCode::SUCCESS)
}
