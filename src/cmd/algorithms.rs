//! `ratelab algorithms`: the algorithms and what each guarantees.

use std::process::ExitCode;

/// Prints each algorithm's name.
pub fn run() -> anyhow::Result<ExitCode> {
    for k in limiter_core::Kind::ALL {
        println!("{k}");
    }
    Ok(ExitCode::SUCCESS)
}
