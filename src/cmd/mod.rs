//! One module per `ratelab` subcommand.

pub mod algorithms;
pub mod backend;
pub mod bench_report;
pub mod completions;
pub mod gateway;
pub mod load;
pub mod man;
pub mod report;
pub mod simulate;
pub mod trace;
