//! Workloads, the virtual-time simulator, and accuracy accounting for ratelab.
//!
//! A [`Workload`] (phases of arrivals over users and endpoints, each endpoint with its
//! policy) is turned into a deterministic arrival sequence ([`arrivals`]) and played
//! by the [`Simulation`] ([`drivers::simulated`]) against any set of algorithms — every
//! one `limiter-core` registers and the original project's flawed
//! [`seed_replica`](drivers::simulated::seed_replica) — in virtual time, or sent over
//! HTTP by the drivers of feature `http`. [`judging`] judges every algorithm against an
//! exact reference on the same arrivals, and the outcome is a `results::Results`
//! (schema `ratelab.results/1`) that `reports` renders.
//!
//! The folders follow the data: workload → drivers → judging.
//!
//! ```
//! use limiter_core::Kind;
//! use loadgen::{SimAlgorithm, Simulation, Workload};
//!
//! let workload = Workload::load("seed").unwrap();
//! let sim = Simulation::new(workload, 1).unwrap();
//! let algorithms = [SimAlgorithm::Library(Kind::TokenBucket), SimAlgorithm::SeedReplica];
//! let outcome = sim.run(&algorithms, &mut |_| {}).unwrap();
//! let admitted: Vec<u64> = outcome.results.runs.iter().map(|r| r.totals.admitted).collect();
//! // The policy (burst 5, 5 per minute, 150 s) allows 17; the original admitted 25.
//! assert_eq!(admitted, [17, 25]);
//! ```

pub mod arrivals;
pub mod drivers;
pub mod judging;
pub mod progress;
pub mod rng;
#[cfg(feature = "trace")]
pub mod trace;
pub mod workload;

pub use drivers::simulated::{
    CurveOptions, ModeName, Progress, Sharing, SimAlgorithm, SimError, SimOutcome, Simulation,
    Timing, UnknownAlgorithm,
};
pub use workload::{Deployment, StoreModel, Workload, WorkloadError};
