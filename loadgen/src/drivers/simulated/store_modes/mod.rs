//! The store-mode curve: one workload played through N gateways sharing one store in
//! each mode — `exact` (a store call per decision, local denials), `lease` (at several
//! `lease.max` and `lease.ttl` values) and `local` (each gateway alone, no sharing: the
//! baseline) — so accuracy (envelope excess, over- and under-admission) reads against
//! what it costs: store calls per decision and decision latency under a modelled round
//! trip.
//!
//! The guarantee: the gateways run `limiter-core`'s own store-mode code — each
//! gateway's [`KeyLease`](limiter_core::store::lease::KeyLease) per key, the store
//! answering with [`lease::answer`](limiter_core::store::lease::answer) on the
//! algorithm's own state — in virtual time, deterministically (same seed, same bytes).
//! Each point is an ordinary run judged by the same accounting as every simulated run;
//! the curve section ([`results::StoreCurve`]) adds what the point cost.

mod engine;

use std::fmt;
use std::time::Duration;

use limiter_core::store::StoreMode;
use limiter_core::store::mode::{LeaseOptions, LeaseSupport, ModeError, excess_bound};
use limiter_core::{Kind, Quota};
use results::{ResultSource, Results, StoreCurve, StorePoint, round4};

use super::{Progress, SimAlgorithm, SimError, SimOutcome, Simulation, Timing};
use crate::judging::Accounting;
use crate::workload::{Deployment, StoreModel};
use engine::Field;

/// A store mode the curve can play, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModeName {
    /// One store call per decision, with local denials.
    Exact,
    /// Leases of real tokens spent locally, with local denials.
    Lease,
    /// Each gateway alone on its own memory store: no sharing, no store call.
    Local,
}

impl ModeName {
    /// Every mode, in the order tables list them.
    pub const ALL: [ModeName; 3] = [ModeName::Exact, ModeName::Lease, ModeName::Local];

    /// The name on the command line and in results.
    pub const fn name(self) -> &'static str {
        match self {
            ModeName::Exact => "exact",
            ModeName::Lease => "lease",
            ModeName::Local => "local",
        }
    }
}

impl fmt::Display for ModeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the gateways of one point share state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Each gateway decides on its own states.
    Local,
    /// One store shared in this mode.
    Store(StoreMode),
}

impl Sharing {
    fn mode_name(self) -> &'static str {
        match self {
            Sharing::Local => ModeName::Local.name(),
            Sharing::Store(m) => m.name(),
        }
    }

    /// Whether `kind` can run this way (only the buckets lease).
    fn admits(self, kind: Kind) -> bool {
        match self {
            Sharing::Store(StoreMode::Lease(_)) => kind.lease_support() != LeaseSupport::None,
            _ => true,
        }
    }
}

/// Which points the curve plays: every mode in `modes`, lease mode once per
/// (`lease_max`, `lease_ttl`) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurveOptions {
    /// The modes.
    pub modes: Vec<ModeName>,
    /// `lease.max` values (lease mode).
    pub lease_max: Vec<u64>,
    /// `lease.ttl` values (lease mode).
    pub lease_ttl: Vec<Duration>,
}

impl Default for CurveOptions {
    fn default() -> Self {
        Self {
            modes: ModeName::ALL.to_vec(),
            lease_max: vec![4, 16, 64, 256],
            lease_ttl: vec![LeaseOptions::default().ttl],
        }
    }
}

impl CurveOptions {
    /// The points, in table order; an out-of-range lease parameter is an error.
    pub fn points(&self) -> Result<Vec<Sharing>, ModeError> {
        let mut points = Vec::new();
        for mode in &self.modes {
            match mode {
                ModeName::Exact => points.push(Sharing::Store(StoreMode::Exact)),
                ModeName::Local => points.push(Sharing::Local),
                ModeName::Lease => {
                    for &max in &self.lease_max {
                        for &ttl in &self.lease_ttl {
                            let lease = LeaseOptions::new(max, ttl)?;
                            points.push(Sharing::Store(StoreMode::Lease(lease)));
                        }
                    }
                }
            }
        }
        points.dedup();
        Ok(points)
    }
}

impl Simulation {
    /// Plays every algorithm of `algorithms` at every point of `options` that can run
    /// it (lease points: the buckets only) through the workload's gateways and round
    /// trip, and accounts for each point as a run, with the curve section beside.
    /// The deployment must be `shared` (the gateways and round trips of the plan).
    pub fn store_curve(
        &self,
        algorithms: &[SimAlgorithm],
        options: &CurveOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<SimOutcome, SimError> {
        let d = self.workload.deployment;
        let curve_error = |message: String| SimError::StoreCurve { message };
        if d.store != StoreModel::Shared {
            return Err(curve_error(format!(
                "the gateways must share a store (deployment store \"shared\", not {:?})",
                d.store.name()
            )));
        }
        let points = options.points().map_err(|e| curve_error(e.to_string()))?;
        let mut plays: Vec<(Kind, Sharing)> = Vec::new();
        for &algorithm in algorithms {
            let Some(kind) = algorithm.kind() else {
                return Err(curve_error(format!(
                    "{} is not a limiter-core algorithm: it has no store modes",
                    algorithm.name()
                )));
            };
            plays.extend(points.iter().filter(|p| p.admits(kind)).map(|&p| (kind, p)));
        }
        let mut references = Vec::new();
        for &(kind, _) in &plays {
            let r = kind.reference();
            if !references.iter().any(|(x, _)| *x == r) {
                references.push((r, None));
            }
        }
        let steps = references.len() + plays.len();
        let total = self.arrivals.list.len();
        let mut step = 0;
        let mut report = |label: &str, step: usize, done: usize| {
            progress(Progress {
                label,
                step,
                steps,
                done,
                total,
            })
        };
        for (reference, decisions) in &mut references {
            step += 1;
            let label = reference.name();
            *decisions = Some(self.reference(*reference, &mut |done, _| report(label, step, done)));
        }
        let quotas: Vec<Quota> = self.workload.endpoints.iter().map(|e| e.quota).collect();
        let field = Field {
            arrivals: &self.arrivals,
            quotas: &quotas,
            costs: &self.costs,
            plan: &self.plan,
        };
        let mut results = Results::new(ResultSource::Simulated, self.workload.info(self.seed));
        let mut curve = StoreCurve {
            gateways: d.gateways,
            rtt_us: round4(d.rtt as f64 / 1_000.0),
            jitter_us: round4(d.jitter as f64 / 1_000.0),
            points: Vec::new(),
        };
        let mut timings = Vec::new();
        for (kind, sharing) in plays {
            step += 1;
            let started = std::time::Instant::now();
            let label = kind.name();
            let played = engine::play(kind, &field, sharing, &mut |done, _| {
                report(label, step, done)
            })
            .map_err(|(e, source)| SimError::Limiter {
                algorithm: kind.name(),
                endpoint: self.workload.endpoints[e].path.clone(),
                source,
            })?;
            let elapsed = started.elapsed();
            let reference = kind.reference();
            let Some((_, Some(exact))) = references.iter().find(|(r, _)| *r == reference) else {
                continue;
            };
            let accounting =
                Accounting::new(&self.workload, &self.arrivals, Some(&played.latency_ns));
            let mut run = accounting.run(kind.name(), reference, &played.decisions, exact);
            let point = point(kind, sharing, &d, &played, results.runs.len());
            run.store = point.label();
            run.deployment = describe(sharing, &point, &d);
            results.runs.push(run);
            curve.points.push(point);
            timings.push(Timing {
                algorithm: SimAlgorithm::Library(kind),
                decisions: total as u64,
                elapsed,
            });
        }
        results.store_modes = Some(curve);
        Ok(SimOutcome { results, timings })
    }
}

/// What point `sharing` of `kind` cost, as the results say it.
fn point(
    kind: Kind,
    sharing: Sharing,
    d: &Deployment,
    played: &engine::Outcome,
    run: usize,
) -> StorePoint {
    let decisions = played.decisions.len() as u64;
    let lease = match sharing {
        Sharing::Store(m) => m.lease(),
        Sharing::Local => None,
    };
    StorePoint {
        run,
        algorithm: kind.name().to_owned(),
        mode: sharing.mode_name().to_owned(),
        lease_max: lease.map(|l| l.max),
        lease_ttl_s: lease.map(|l| round4(l.ttl.as_secs_f64())),
        excess_bound: match sharing {
            Sharing::Store(m) => Some(excess_bound(&m, u64::from(d.gateways))),
            Sharing::Local => None,
        },
        decisions,
        store_calls: played.calls,
        calls_per_decision: round4(played.calls as f64 / decisions.max(1) as f64),
        local_allowed: played.tally.local_allowed,
        local_denied: played.tally.local_denied,
        stranded: played.tally.stranded,
    }
}

/// The run's deployment in words: `lease 64/1s: 3 gateways, skew 0s, rtt 1ms`.
fn describe(sharing: Sharing, point: &StorePoint, d: &Deployment) -> String {
    let base = match sharing {
        Sharing::Local => Deployment {
            store: StoreModel::Local,
            rtt: 0,
            jitter: 0,
            ..*d
        }
        .describe(),
        Sharing::Store(_) => d.describe(),
    };
    let rest = base.split_once(": ").map_or(base.as_str(), |(_, r)| r);
    format!("{}: {rest}", point.label())
}

#[cfg(test)]
mod tests;
