//! The virtual-time simulator: plays one workload's arrivals against any set of
//! algorithms, deterministically, millions of decisions per second.
//!
//! Guarantees:
//!
//! - **Same seed, same numbers.** Arrivals, gateway choices and round trips come from
//!   an explicit PRNG; decisions are pure functions of them; the results serialize to
//!   the same bytes (wall-clock timings are reported beside the results, never in them).
//! - **Same code as production.** The five algorithms are `limiter-core`'s own pure
//!   `decide` steps, handed virtual `now`; no clock is read, no time is slept.
//! - **Equal terms.** Every algorithm sees the same arrival sequence, configured from
//!   the same per-endpoint policy, and is judged against an exact reference on the same
//!   arrivals ([`crate::accuracy`]).
//!
//! Per-key state lives in a `Vec` indexed by `user × endpoints + endpoint` (no hashing
//! on the hot path). The deployment model ([`Deployment`]) adds gateways with skewed
//! clocks and a store round trip: with a **shared** store, correct algorithms decide on
//! the store's clock half a round trip after the request (in the order requests reach
//! the store), and `seed-replica` on its gateway's floored clock; with **local** state,
//! each gateway keeps its own keys on its own clock.

use std::fmt;
use std::str::FromStr;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use limiter_core::{
    Algorithm, FixedWindow, Gcra, Kind, Nanos, SlidingLog, SlidingWindow, TokenBucket,
};
use results::{ResultSource, Results};

use crate::accuracy::{
    Accounting, Decisions, ExactBucketState, ExactLogState, ExactSlidingLog, ExactTokenBucket,
    Family,
};
use crate::arrivals::{self, Arrivals};
use crate::rng::Rng;
use crate::seed_replica::{ReplicaState, SeedReplica};
use crate::workload::{Deployment, MAX_KEYS, StoreModel, Workload};

const STREAM_GATEWAYS: u64 = 5;
const STREAM_RTT: u64 = 6;
/// Arrivals between progress reports.
const CHUNK: usize = 1 << 16;

/// An algorithm the simulator can play: `limiter-core`'s five, and the original
/// project's flawed token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SimAlgorithm {
    /// `limiter-core`'s fixed window.
    FixedWindow,
    /// `limiter-core`'s sliding log.
    SlidingLog,
    /// `limiter-core`'s sliding window counter.
    SlidingWindow,
    /// `limiter-core`'s token bucket.
    TokenBucket,
    /// `limiter-core`'s GCRA.
    Gcra,
    /// The original project's Redis token bucket, flaws included ([`crate::seed_replica`]).
    SeedReplica,
}

/// An algorithm name the simulator does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown algorithm {0:?} (expected all, or a comma-separated list of: fixed-window, sliding-log, sliding-window, token-bucket, gcra, seed-replica)"
)]
pub struct UnknownAlgorithm(pub String);

impl SimAlgorithm {
    /// All six, in the order tables list them.
    pub const ALL: [SimAlgorithm; 6] = [
        SimAlgorithm::FixedWindow,
        SimAlgorithm::SlidingLog,
        SimAlgorithm::SlidingWindow,
        SimAlgorithm::TokenBucket,
        SimAlgorithm::Gcra,
        SimAlgorithm::SeedReplica,
    ];

    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self.kind() {
            Some(k) => k.name(),
            None => "seed-replica",
        }
    }

    /// The `limiter-core` algorithm, or `None` for the seed replica.
    pub fn kind(self) -> Option<Kind> {
        match self {
            SimAlgorithm::FixedWindow => Some(Kind::FixedWindow),
            SimAlgorithm::SlidingLog => Some(Kind::SlidingLog),
            SimAlgorithm::SlidingWindow => Some(Kind::SlidingWindow),
            SimAlgorithm::TokenBucket => Some(Kind::TokenBucket),
            SimAlgorithm::Gcra => Some(Kind::Gcra),
            SimAlgorithm::SeedReplica => None,
        }
    }

    /// Which envelope and reference judge it.
    pub fn family(self) -> Family {
        match self {
            SimAlgorithm::FixedWindow | SimAlgorithm::SlidingLog | SimAlgorithm::SlidingWindow => {
                Family::Window
            }
            SimAlgorithm::TokenBucket | SimAlgorithm::Gcra | SimAlgorithm::SeedReplica => {
                Family::Bucket
            }
        }
    }

    /// Parses `all` or a comma-separated list of names (duplicates dropped, order kept).
    pub fn parse_list(s: &str) -> Result<Vec<SimAlgorithm>, UnknownAlgorithm> {
        if s.trim() == "all" {
            return Ok(Self::ALL.to_vec());
        }
        let mut out = Vec::new();
        for name in s.split(',').map(str::trim) {
            let alg: SimAlgorithm = name.parse()?;
            if !out.contains(&alg) {
                out.push(alg);
            }
        }
        Ok(out)
    }
}

impl fmt::Display for SimAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SimAlgorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownAlgorithm(s.to_owned()))
    }
}

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
pub struct Outcome {
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

/// The deployment, per arrival: which gateway took it, when the store sees it, and in
/// what order. Empty vectors for the in-memory model.
#[derive(Debug, Clone, Default)]
struct Plan {
    gateway: Vec<u16>,
    /// Round trip per arrival, nanoseconds (shared store only).
    rtt: Vec<u32>,
    /// Store arrival order when round trips vary (shared store with jitter).
    order: Option<Vec<u32>>,
    /// Clock offset of each gateway, nanoseconds.
    offsets: Vec<i64>,
}

impl Plan {
    fn new(d: &Deployment, arrivals: &Arrivals, seed: u64) -> Self {
        if d.store == StoreModel::Memory {
            return Self::default();
        }
        let n = d.gateways.max(1) as usize;
        let offsets = (0..n)
            .map(|g| {
                if n == 1 {
                    0
                } else {
                    let half = (d.skew / 2) as i128;
                    (-half + g as i128 * d.skew as i128 / (n as i128 - 1)) as i64
                }
            })
            .collect();
        let mut rng = Rng::new(seed, STREAM_GATEWAYS);
        let gateway = arrivals
            .list
            .iter()
            .map(|_| rng.below(n as u64) as u16)
            .collect();
        let (rtt, order) = if d.store == StoreModel::Shared {
            let mut rng = Rng::new(seed, STREAM_RTT);
            let rtt: Vec<u32> = arrivals
                .list
                .iter()
                .map(|_| {
                    let low = d.rtt - d.jitter;
                    (low + rng.below(2 * d.jitter + 1)) as u32
                })
                .collect();
            let order = (d.jitter > 0).then(|| {
                let mut order: Vec<u32> = (0..arrivals.list.len() as u32).collect();
                // Stable: requests reaching the store at the same instant keep their order.
                order.sort_by_key(|&i| arrivals.list[i as usize].at + rtt[i as usize] as Nanos / 2);
                order
            });
            (rtt, order)
        } else {
            (Vec::new(), None)
        };
        Self {
            gateway,
            rtt,
            order,
            offsets,
        }
    }
}

/// One algorithm's per-key decision step, on plain state the simulator owns.
trait Engine {
    /// One key's state.
    type State;
    /// True when states own heap memory worth sampling.
    const HAS_HEAP: bool = false;
    /// A fresh key.
    fn state(&self) -> Self::State;
    /// Decides one request; `store_now` is the deciding store's clock, `gateway_now`
    /// the clock of the gateway that took the request.
    fn admit(
        &self,
        s: &mut Self::State,
        store_now: Nanos,
        gateway_now: Nanos,
        cost: u64,
    ) -> Result<bool, limiter_core::Error>;
    /// Bytes of one state as `limiter-core`'s store holds it.
    fn inline_bytes(&self) -> usize;
    /// Heap bytes a state owns.
    fn heap_bytes(&self, _s: &Self::State) -> usize {
        0
    }
}

/// A `limiter-core` algorithm as an [`Engine`].
struct Core<A>(A);

macro_rules! word_engine {
    ($($t:ty),*) => {$(
        impl Engine for Core<$t> {
            type State = u64;

            fn state(&self) -> u64 {
                self.0.new_state().into_inner()
            }

            #[inline]
            fn admit(&self, s: &mut u64, now: Nanos, _: Nanos, cost: u64) -> Result<bool, limiter_core::Error> {
                let (decision, next) = self.0.decide(*s, now, cost)?;
                if let Some(next) = next {
                    *s = next;
                }
                Ok(decision.allowed)
            }

            fn inline_bytes(&self) -> usize {
                std::mem::size_of::<<$t as Algorithm>::State>()
            }
        }
    )*};
}

word_engine!(FixedWindow, TokenBucket, Gcra);

impl Engine for Core<SlidingWindow> {
    type State = <SlidingWindow as Algorithm>::State;

    fn state(&self) -> Self::State {
        self.0.new_state()
    }

    #[inline]
    fn admit(
        &self,
        s: &mut Self::State,
        now: Nanos,
        _: Nanos,
        cost: u64,
    ) -> Result<bool, limiter_core::Error> {
        // Exclusive access: no locking, just the counters inside.
        let counters = s.get_mut().unwrap_or_else(PoisonError::into_inner);
        let (decision, next) = self.0.decide(*counters, now, cost)?;
        if let Some(next) = next {
            *counters = next;
        }
        Ok(decision.allowed)
    }

    fn inline_bytes(&self) -> usize {
        std::mem::size_of::<Self::State>()
    }
}

impl Engine for Core<SlidingLog> {
    type State = <SlidingLog as Algorithm>::State;
    const HAS_HEAP: bool = true;

    fn state(&self) -> Self::State {
        self.0.new_state()
    }

    #[inline]
    fn admit(
        &self,
        s: &mut Self::State,
        now: Nanos,
        _: Nanos,
        cost: u64,
    ) -> Result<bool, limiter_core::Error> {
        let log = s.get_mut().unwrap_or_else(PoisonError::into_inner);
        Ok(self.0.decide(log, now, cost)?.allowed)
    }

    fn inline_bytes(&self) -> usize {
        std::mem::size_of::<Self::State>()
    }

    fn heap_bytes(&self, s: &Self::State) -> usize {
        self.0.heap_bytes(s)
    }
}

impl Engine for SeedReplica {
    type State = ReplicaState;

    fn state(&self) -> ReplicaState {
        SeedReplica::state(self)
    }

    #[inline]
    fn admit(
        &self,
        s: &mut ReplicaState,
        store_now: Nanos,
        gateway_now: Nanos,
        cost: u64,
    ) -> Result<bool, limiter_core::Error> {
        Ok(SeedReplica::admit(self, s, store_now, gateway_now, cost))
    }

    fn inline_bytes(&self) -> usize {
        std::mem::size_of::<ReplicaState>()
    }
}

impl Engine for ExactTokenBucket {
    type State = ExactBucketState;

    fn state(&self) -> ExactBucketState {
        ExactTokenBucket::state(self)
    }

    #[inline]
    fn admit(
        &self,
        s: &mut ExactBucketState,
        now: Nanos,
        _: Nanos,
        cost: u64,
    ) -> Result<bool, limiter_core::Error> {
        Ok(ExactTokenBucket::admit(self, s, now, cost))
    }

    fn inline_bytes(&self) -> usize {
        std::mem::size_of::<ExactBucketState>()
    }
}

impl Engine for ExactSlidingLog {
    type State = ExactLogState;
    const HAS_HEAP: bool = true;

    fn state(&self) -> ExactLogState {
        ExactSlidingLog::state(self)
    }

    #[inline]
    fn admit(
        &self,
        s: &mut ExactLogState,
        now: Nanos,
        _: Nanos,
        cost: u64,
    ) -> Result<bool, limiter_core::Error> {
        Ok(ExactSlidingLog::admit(self, s, now, cost))
    }

    fn inline_bytes(&self) -> usize {
        std::mem::size_of::<ExactLogState>()
    }
}

/// A workload, its arrivals for one seed, and its deployment plan, ready to be played
/// against algorithms. Build it once and play as many algorithms as you like.
#[derive(Debug)]
pub struct Simulation {
    workload: Workload,
    seed: u64,
    arrivals: Arrivals,
    plan: Plan,
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
        let plan = Plan::new(&workload.deployment, &arrivals, seed);
        Ok(Self {
            workload,
            seed,
            arrivals,
            plan,
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
        let (decisions, memory_per_key) = match algorithm {
            SimAlgorithm::FixedWindow => self.deployed(|q| Core(FixedWindow::new(*q)), progress),
            SimAlgorithm::SlidingLog => self.deployed(|q| Core(SlidingLog::new(*q)), progress),
            SimAlgorithm::SlidingWindow => {
                self.deployed(|q| Core(SlidingWindow::new(*q)), progress)
            }
            SimAlgorithm::TokenBucket => self.deployed(|q| Core(TokenBucket::new(*q)), progress),
            SimAlgorithm::Gcra => self.deployed(|q| Core(Gcra::new(*q)), progress),
            SimAlgorithm::SeedReplica => self.deployed(SeedReplica::new, progress),
        }
        .map_err(|(e, source)| fail(e, source))?;
        Ok(Played {
            algorithm,
            decisions,
            elapsed: start.elapsed(),
            memory_per_key,
        })
    }

    /// Plays the exact reference for `family`, in one process at the arrival instants:
    /// what a perfect limiter would admit.
    pub fn reference(&self, family: Family, progress: &mut dyn FnMut(usize, usize)) -> Decisions {
        let played = match family {
            Family::Bucket => {
                self.run_engine(&self.engines(ExactTokenBucket::new), false, progress)
            }
            Family::Window => self.run_engine(&self.engines(ExactSlidingLog::new), false, progress),
        };
        // The references never fail: they have no cost limit to refuse.
        played
            .map(|(d, _)| d)
            .unwrap_or_else(|_| Decisions::new(self.arrivals.list.len()))
    }

    /// Plays every algorithm and its reference, and accounts for the results.
    pub fn run(
        &self,
        algorithms: &[SimAlgorithm],
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Outcome, SimError> {
        let families: Vec<Family> = [Family::Window, Family::Bucket]
            .into_iter()
            .filter(|f| algorithms.iter().any(|a| a.family() == *f))
            .collect();
        let steps = families.len() + algorithms.len();
        let total = self.arrivals.list.len();
        let mut step = 0;
        let mut references = Vec::new();
        for family in families {
            step += 1;
            let label = family.reference();
            let d = self.reference(family, &mut |done, total| {
                progress(Progress {
                    label,
                    step,
                    steps,
                    done,
                    total,
                })
            });
            references.push((family, d));
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
            let Some((family, reference)) =
                references.iter().find(|(f, _)| *f == algorithm.family())
            else {
                continue;
            };
            let mut run = accounting.run(algorithm.name(), *family, &played.decisions, reference);
            run.memory_per_key_bytes = played.memory_per_key;
            results.runs.push(run);
            timings.push(Timing {
                algorithm,
                decisions: total as u64,
                elapsed: played.elapsed,
            });
        }
        Ok(Outcome { results, timings })
    }

    /// Plays the engines `build` makes, one per endpoint, in the workload's deployment.
    fn deployed<E: Engine>(
        &self,
        build: impl Fn(&limiter_core::Quota) -> E,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Decisions, u64), (usize, limiter_core::Error)> {
        self.run_engine(&self.engines(build), true, progress)
    }

    fn engines<E>(&self, build: impl Fn(&limiter_core::Quota) -> E) -> Vec<E> {
        self.workload
            .endpoints
            .iter()
            .map(|e| build(&e.quota))
            .collect()
    }

    /// The decision loop. `deployed` plays the workload's deployment; otherwise one
    /// process at the arrival instants. Returns the decisions and the memory per key,
    /// or the endpoint index and error of a refused request.
    fn run_engine<E: Engine>(
        &self,
        engines: &[E],
        deployed: bool,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Decisions, u64), (usize, limiter_core::Error)> {
        let list = &self.arrivals.list;
        let n = list.len();
        let endpoints = engines.len();
        let keys = self.arrivals.keys();
        let d = &self.workload.deployment;
        let local = deployed && d.store == StoreModel::Local;
        let slots = if local {
            keys * d.gateways as usize
        } else {
            keys
        };
        let mut states: Vec<E::State> =
            (0..slots).map(|s| engines[s % endpoints].state()).collect();
        let costs: Vec<u64> = self.workload.endpoints.iter().map(|e| e.cost).collect();
        let mut decisions = Decisions::new(n);
        let mut worst_heap = 0usize;
        let plan = (deployed && d.store != StoreModel::Memory).then_some(&self.plan);
        let starts = &self.arrivals.phase_starts;

        for p in 0..starts.len().saturating_sub(1) {
            let mut pos = starts[p];
            while pos < starts[p + 1] {
                let end = (pos + CHUNK).min(starts[p + 1]);
                match plan {
                    None => {
                        for (i, a) in list[pos..end].iter().enumerate() {
                            let e = a.endpoint as usize;
                            let k = a.user as usize * endpoints + e;
                            if engines[e]
                                .admit(&mut states[k], a.at, a.at, costs[e])
                                .map_err(|err| (e, err))?
                            {
                                decisions.admit(pos + i);
                            }
                        }
                    }
                    Some(plan) => {
                        for j in pos..end {
                            let i = plan.order.as_ref().map_or(j, |o| o[j] as usize);
                            let a = &list[i];
                            let e = a.endpoint as usize;
                            let g = plan.gateway[i] as usize;
                            let gateway_now = a.at.saturating_add_signed(plan.offsets[g]);
                            let (slot, store_now) = if local {
                                (g * keys + a.user as usize * endpoints + e, gateway_now)
                            } else {
                                (
                                    a.user as usize * endpoints + e,
                                    a.at + plan.rtt[i] as Nanos / 2,
                                )
                            };
                            if engines[e]
                                .admit(&mut states[slot], store_now, gateway_now, costs[e])
                                .map_err(|err| (e, err))?
                            {
                                decisions.admit(i);
                            }
                        }
                    }
                }
                progress(end, n);
                pos = end;
            }
            if E::HAS_HEAP {
                for (s, state) in states.iter().enumerate() {
                    worst_heap = worst_heap.max(engines[s % endpoints].heap_bytes(state));
                }
            }
        }
        let inline = engines.first().map_or(0, Engine::inline_bytes);
        Ok((decisions, (inline + worst_heap) as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in SimAlgorithm::ALL {
            assert_eq!(a.name().parse::<SimAlgorithm>(), Ok(a));
        }
        assert_eq!(SimAlgorithm::parse_list("all").unwrap().len(), 6);
        assert_eq!(
            SimAlgorithm::parse_list("gcra, token-bucket,gcra").unwrap(),
            vec![SimAlgorithm::Gcra, SimAlgorithm::TokenBucket]
        );
        let e = SimAlgorithm::parse_list("gcra,leaky-bucket").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unknown algorithm \"leaky-bucket\"")
        );
    }
}
