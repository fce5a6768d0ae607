//! The virtual-time simulator: plays one workload's arrivals against any set of
//! algorithms, deterministically, millions of decisions per second.
//!
//! Guarantees:
//!
//! - **Same seed, same numbers.** Arrivals, gateway choices and round trips come from
//!   an explicit PRNG; decisions are pure functions of them; the results serialize to
//!   the same bytes (wall-clock timings are reported beside the results, never in them).
//! - **Same code as production.** Every algorithm `limiter-core` registers is played
//!   through its own pure step, handed virtual `now`; no clock is read, no time is
//!   slept.
//! - **Equal terms.** Every algorithm sees the same arrival sequence, configured from
//!   the same per-endpoint policy, and is judged against an exact reference on the same
//!   arrivals ([`crate::judging`]).
//!
//! The pieces: [`SimAlgorithm`] (what can be played), `deployment` (which gateway,
//! which round trip), `engine` (the decision loop), [`seed_replica`] (the original's
//! flawed bucket). Per-key state lives in a `Vec` indexed by `user × endpoints +
//! endpoint` (no hashing on the hot path). The deployment model
//! ([`Deployment`](crate::workload::Deployment)) adds gateways with skewed
//! clocks and a store round trip: with a **shared** store, correct algorithms decide on
//! the store's clock half a round trip after the request (in the order requests reach
//! the store), and `seed-replica` on its gateway's floored clock; with **local** state,
//! each gateway keeps its own keys on its own clock.

mod algorithms;
mod deployment;
pub(crate) mod engine;
pub(crate) mod library;
pub mod seed_replica;
mod store_modes;

use std::time::{Duration, Instant};

use limiter_core::Quota;
use limiter_core::algorithm::Reference;
use results::{ResultSource, Results};

pub use algorithms::{SimAlgorithm, UnknownAlgorithm};
use deployment::DeploymentPlan;
use engine::{Engine, Refused, Stage};
use library::PlayEngines;
use seed_replica::SeedReplica;
pub use store_modes::{CurveOptions, ModeName, Sharing};

use crate::arrivals::{self, Arrivals};
use crate::judging::{Accounting, Decisions};
use crate::workload::{MAX_KEYS, StoreModel, Workload};

/// Why a simulation could not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A limiter refused a request outright (a cost it can never admit). Workload
    /// validation rules this out; kept so that no input can panic the simulator.
    #[error("{algorithm} on endpoint {endpoint:?}: {source}")]
    Limiter {
        /// The algorithm.
        algorithm: &'static str,
        /// The endpoint's path.
        endpoint: String,
        /// What it said.
        source: limiter_core::Error,
    },
    /// The deployment settings are impossible.
    #[error("deployment.{key}: {message}")]
    Deployment {
        /// The setting.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The store-mode curve cannot be played as asked.
    #[error("store modes: {message}")]
    StoreCurve {
        /// What is wrong.
        message: String,
    },
}

/// Where the simulator is: `done` of `total` arrivals of step `step` (1-based) of
/// `steps`, playing `label`.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// What is being played (an algorithm or a reference).
    pub label: &'a str,
    /// 1-based step.
    pub step: usize,
    /// Number of steps.
    pub steps: usize,
    /// Arrivals decided in this step.
    pub done: usize,
    /// Arrivals in this step.
    pub total: usize,
}

/// One algorithm's decisions, with what they cost.
#[derive(Debug, Clone)]
pub struct Played {
    /// The algorithm.
    pub algorithm: SimAlgorithm,
    /// Admitted or not, per arrival.
    pub decisions: Decisions,
    /// Wall-clock time of the decision loop (not part of the results: it varies).
    pub elapsed: Duration,
    /// Inline state size plus the worst key's heap bytes, sampled at phase ends.
    pub memory_per_key: u64,
}

impl Played {
    /// Mean wall-clock nanoseconds per decision.
    pub fn ns_per_decision(&self) -> f64 {
        if self.decisions.is_empty() {
            0.0
        } else {
            self.elapsed.as_nanos() as f64 / self.decisions.len() as f64
        }
    }
}

/// What a simulation produced: the deterministic results, and the timings beside them.
#[derive(Debug, Clone)]
pub struct SimOutcome {
    /// The results (`ratelab.results/1`), byte-identical for the same seed.
    pub results: Results,
    /// Per algorithm, in the order of `results.runs`: decisions and wall-clock time.
    pub timings: Vec<Timing>,
}

/// Wall-clock cost of one algorithm's decision loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// The algorithm.
    pub algorithm: SimAlgorithm,
    /// Decisions made.
    pub decisions: u64,
    /// Time taken.
    pub elapsed: Duration,
}

impl Timing {
    /// Mean nanoseconds per decision.
    pub fn ns_per_decision(&self) -> f64 {
        if self.decisions == 0 {
            0.0
        } else {
            self.elapsed.as_nanos() as f64 / self.decisions as f64
        }
    }
}

/// A workload, its arrivals for one seed, and its deployment plan, ready to be played
/// against algorithms. Build it once and play as many algorithms as you like.
#[derive(Debug)]
pub struct Simulation {
    workload: Workload,
    seed: u64,
    arrivals: Arrivals,
    plan: DeploymentPlan,
    /// Each endpoint's cost per request.
    costs: Vec<u64>,
}

impl Simulation {
    /// Generates the arrivals of `workload` for `seed`, and the deployment plan of its
    /// `deployment`.
    pub fn new(workload: Workload, seed: u64) -> Result<Self, SimError> {
        let d = &workload.deployment;
        d.validate()
            .map_err(|(key, message)| SimError::Deployment { key, message })?;
        if d.store == StoreModel::Local
            && workload.keys().saturating_mul(d.gateways as u64) > MAX_KEYS
        {
            return Err(SimError::Deployment {
                key: "gateways",
                message: format!(
                    "{} keys on each of {} gateways with local state is more than the {MAX_KEYS} key states the simulator holds",
                    workload.keys(),
                    d.gateways
                ),
            });
        }
        let arrivals = arrivals::generate(&workload, seed);
        let plan = DeploymentPlan::new(&workload.deployment, &arrivals, seed);
        let costs = workload.endpoints.iter().map(|e| e.cost).collect();
        Ok(Self {
            workload,
            seed,
            arrivals,
            plan,
            costs,
        })
    }

    /// The workload.
    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// The arrivals every algorithm sees.
    pub fn arrivals(&self) -> &Arrivals {
        &self.arrivals
    }

    /// Plays one algorithm in the workload's deployment.
    pub fn play(
        &self,
        algorithm: SimAlgorithm,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Played, SimError> {
        let eps = &self.workload.endpoints;
        let fail = |e: usize, source| SimError::Limiter {
            algorithm: algorithm.name(),
            endpoint: eps[e].path.clone(),
            source,
        };
        let start = Instant::now();
        let stage = self.stage(true);
        let quotas: Vec<Quota> = eps.iter().map(|e| e.quota).collect();
        let (decisions, memory_per_key) = match algorithm {
            SimAlgorithm::Library(kind) => {
                library::with_engines(kind, &quotas, OnStage(&stage, progress))
            }
            SimAlgorithm::SeedReplica => {
                let engines: Vec<SeedReplica> = quotas.iter().map(SeedReplica::new).collect();
                stage.play(&engines, progress)
            }
        }
        .map_err(|(e, source)| fail(e, source))?;
        Ok(Played {
            algorithm,
            decisions,
            elapsed: start.elapsed(),
            memory_per_key,
        })
    }

    /// Plays the exact `reference`, in one process at the arrival instants: what a
    /// perfect limiter would admit.
    pub fn reference(
        &self,
        reference: Reference,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Decisions {
        play_reference(&self.workload, &self.arrivals, reference, progress)
    }

    /// Plays every algorithm and its reference, and accounts for the results.
    pub fn run(
        &self,
        algorithms: &[SimAlgorithm],
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<SimOutcome, SimError> {
        let needed: Vec<Reference> = Reference::ALL
            .into_iter()
            .filter(|r| algorithms.iter().any(|a| a.reference() == *r))
            .collect();
        let steps = needed.len() + algorithms.len();
        let total = self.arrivals.list.len();
        let mut step = 0;
        let mut references = Vec::new();
        for reference in needed {
            step += 1;
            let label = reference.name();
            let d = self.reference(reference, &mut |done, total| {
                progress(Progress {
                    label,
                    step,
                    steps,
                    done,
                    total,
                })
            });
            references.push((reference, d));
        }
        let latencies = (!self.plan.rtt.is_empty()).then_some(self.plan.rtt.as_slice());
        let accounting = Accounting::new(&self.workload, &self.arrivals, latencies);
        let mut results = Results::new(ResultSource::Simulated, self.workload.info(self.seed));
        let mut timings = Vec::with_capacity(algorithms.len());
        for &algorithm in algorithms {
            step += 1;
            let label = algorithm.name();
            let played = self.play(algorithm, &mut |done, total| {
                progress(Progress {
                    label,
                    step,
                    steps,
                    done,
                    total,
                })
            })?;
            let Some((reference, decisions)) =
                references.iter().find(|(r, _)| *r == algorithm.reference())
            else {
                continue;
            };
            let mut run =
                accounting.run(algorithm.name(), *reference, &played.decisions, decisions);
            run.memory_per_key_bytes = played.memory_per_key;
            results.runs.push(run);
            timings.push(Timing {
                algorithm,
                decisions: total as u64,
                elapsed: played.elapsed,
            });
        }
        Ok(SimOutcome { results, timings })
    }

    /// Where engines play: the workload's deployment when `deployed`, else one process
    /// at the arrival instants.
    fn stage(&self, deployed: bool) -> Stage<'_> {
        let d = &self.workload.deployment;
        Stage {
            arrivals: &self.arrivals,
            costs: &self.costs,
            deployed: (deployed && d.store != StoreModel::Memory).then(|| {
                let local = (d.store == StoreModel::Local).then_some(d.gateways as usize);
                (&self.plan, local)
            }),
        }
    }
}

/// Plays the exact `reference` over `arrivals` of `workload`, in one process at the
/// arrival instants, one state per key: what a perfect limiter would admit.
pub(crate) fn play_reference(
    workload: &Workload,
    arrivals: &Arrivals,
    reference: Reference,
    progress: &mut dyn FnMut(usize, usize),
) -> Decisions {
    let costs: Vec<u64> = workload.endpoints.iter().map(|e| e.cost).collect();
    let stage = Stage {
        arrivals,
        costs: &costs,
        deployed: None,
    };
    let quotas: Vec<Quota> = workload.endpoints.iter().map(|e| e.quota).collect();
    let played = library::with_references(reference, &quotas, OnStage(&stage, progress));
    // The references never fail: they have no cost limit to refuse.
    played
        .map(|(d, _)| d)
        .unwrap_or_else(|_| Decisions::new(arrivals.list.len()))
}

/// Plays the engines [`library`] builds on a stage, reporting progress.
struct OnStage<'a, 'p>(&'a Stage<'a>, &'p mut dyn FnMut(usize, usize));

impl PlayEngines for OnStage<'_, '_> {
    type Output = Result<(Decisions, u64), Refused>;
    fn play<E: Engine>(self, engines: Vec<E>) -> Self::Output {
        self.0.play(&engines, self.1)
    }
}
