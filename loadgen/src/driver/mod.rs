//! The HTTP load run's planning, client and analysis (feature `http`), on their way to
//! `drivers::http` (plan, client) and `judging` (analysis); the drivers themselves live
//! in [`crate::drivers::http`].

pub mod analysis;
pub mod client;
pub mod plan;

pub use plan::{Plan, PlanError, Scale};
