//! The HTTP load run's planning and client (feature `http`), on their way to
//! `drivers::http` (plan, client); the drivers themselves live
//! in [`crate::drivers::http`].

pub mod client;
pub mod plan;

pub use plan::{LoadPlan, PlanError, Scale};
