//! `ratelab algorithms`: the algorithms, what each guarantees, the state it keeps per
//! key and the exact reference the lab judges it against — read from each algorithm's
//! own unit (`limiter-core`, and the simulator's seed replica), never restated here.

use std::io::Write as _;
use std::process::ExitCode;

use loadgen::SimAlgorithm;
use reports::table::{Align, Table};

/// Options of `ratelab algorithms`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the names only, one per line (for scripts).
    #[arg(long)]
    names: bool,
}

/// Prints the table (or the names).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = if args.names {
        SimAlgorithm::all()
            .iter()
            .map(|a| format!("{a}\n"))
            .collect()
    } else {
        table()
    };
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// The algorithms as a terminal table.
fn table() -> String {
    let mut t = Table::new(&[
        ("algorithm", Align::Left),
        ("guarantee", Align::Left),
        ("state per key", Align::Left),
        ("judged against", Align::Left),
    ]);
    for a in SimAlgorithm::all() {
        t.row(vec![
            a.name().to_owned(),
            a.guarantee().to_owned(),
            a.state_per_key().to_owned(),
            a.reference().name().to_owned(),
        ]);
    }
    let mut out = t.to_text();
    out.push_str(
        "\nseed-replica runs in the simulator only: it reproduces the original project's \
         flaws so its over-admission shows beside the correct limiters.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_is_listed_with_its_guarantee_and_state() {
        let text = table();
        for a in SimAlgorithm::all() {
            let line = text
                .lines()
                .find(|l| l.starts_with(a.name()))
                .unwrap_or_else(|| panic!("{a} missing:\n{text}"));
            assert!(line.contains(a.guarantee()), "{line}");
            assert!(line.contains(a.state_per_key()), "{line}");
        }
    }
}
