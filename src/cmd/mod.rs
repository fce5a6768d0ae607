//! One module per `ratelab` subcommand.

pub mod algorithms;
pub mod backend;
pub mod gateway;
pub mod load;
pub mod report;
pub mod simulate;
