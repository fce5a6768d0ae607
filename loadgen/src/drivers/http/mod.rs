//! Real load over HTTP (feature `http`): a workload's arrivals played through one or
//! many gateways, by goose ([`goose`]) or by an open-loop driver ([`open_loop`]),
//! measured into the same `ratelab.results/1` as the simulator.
//!
//! The pieces, in the order a run uses them: [`plan`] scales a workload to the machine
//! and turns arrivals into requests; [`client`] checks the targets and reads the
//! backend's and the gateways' counters; the drivers send, recording every request in
//! [`record`]; [`crate::judging::measured`] turns the records into results; [`run`]
//! ties it together, reading the targets before and after and showing progress.
//!
//! The guarantee, whichever driver: every request is counted once, in our code, with
//! its send instant and lateness against the schedule, so the results say how much of
//! the offered load was actually offered — and when the load generator, not the gateway,
//! was the limit.

pub mod client;
pub mod goose;
pub(crate) mod log_bridge;
pub mod open_loop;
pub mod plan;
pub mod record;
pub mod run;
mod targets;
mod watch;

pub use plan::{LoadPlan, PlanError, Scale};
pub use run::{Driver, LoadError, LoadSpec};
