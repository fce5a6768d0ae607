//! The drivers: what plays a workload's arrivals against limiters and measures the
//! outcome into `ratelab.results/1`.
//!
//! - [`simulated`]: the virtual-time simulator, playing the arrivals in process against
//!   `limiter-core`'s own steps, deterministically.
//! - [`http`] (feature `http`): real load over HTTP through one or many gateways, by
//!   goose or an open-loop driver, every request recorded and judged against the
//!   backend's ground truth.

#[cfg(feature = "http")]
pub mod http;
pub mod simulated;
