//! Workloads, the virtual-time simulator, and accuracy accounting for ratelab.
//!
//! A [`Workload`] (phases of arrivals over users and endpoints, each endpoint with its
//! policy) is turned into a deterministic arrival sequence ([`arrivals`]) and played
//! by the [`Simulation`] against any set of algorithms — `limiter-core`'s five and the
//! original project's flawed [`seed_replica`] — in virtual time. [`accuracy`] judges
//! every algorithm against an exact reference on the same arrivals, and the outcome is
//! a `results::Results` (schema `ratelab.results/1`) that `reports` renders.
//!
//! ```
//! use loadgen::{SimAlgorithm, Simulation, Workload};
//!
//! let workload = Workload::load("seed").unwrap();
//! let sim = Simulation::new(workload, 1).unwrap();
//! let outcome = sim
//!     .run(&[SimAlgorithm::TokenBucket, SimAlgorithm::SeedReplica], &mut |_| {})
//!     .unwrap();
//! let admitted: Vec<u64> = outcome.results.runs.iter().map(|r| r.totals.admitted).collect();
//! // The policy (burst 5, 5 per minute, 150 s) allows 17; the original admitted 25.
//! assert_eq!(admitted, [17, 25]);
//! ```

pub mod accuracy;
pub mod arrivals;
#[cfg(feature = "http")]
pub mod driver;
pub mod drivers;
pub mod rng;
pub mod seed_replica;
pub mod sim;
pub mod workload;

pub use accuracy::Family;
pub use sim::{Outcome, Progress, SimAlgorithm, SimError, Simulation, Timing, UnknownAlgorithm};
pub use workload::{Deployment, StoreModel, Workload, WorkloadError};
