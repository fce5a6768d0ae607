//! One module per `ratelab` subcommand.

pub mod algorithms;
