//! `ratelab`: compare rate limiters, and run one in front of your API.

mod cli;
mod cmd;
mod exit;
mod values;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(err) => exit::report(&err),
    }
}
