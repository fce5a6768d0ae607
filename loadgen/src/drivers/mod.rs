//! The drivers: what plays a workload's arrivals against limiters and measures the
//! outcome into `ratelab.results/1`.
//!
//! - [`http`] (feature `http`): real load over HTTP through one or many gateways, by
//!   goose or an open-loop driver, every request recorded and judged against the
//!   backend's ground truth.
//!
//! The virtual-time simulator (`Simulation`) plays the same arrivals in process.

#[cfg(feature = "http")]
pub mod http;
