//! One algorithm (or exact reference) playing a replayed log chunk by chunk: the
//! simulator's own engines ([`Engine`]: `limiter-core`'s pure steps via
//! [`Kind::visit`](limiter_core::Kind::visit)), one state per key (identity × route),
//! and the counts and accuracy figures kept as the requests stream by — nothing is
//! kept per request, so memory follows the keys, not the log.

use std::collections::VecDeque;

use limiter_core::algorithm::{Bound, Reference};
use limiter_core::{Kind, Nanos};

use crate::drivers::simulated::engine::Engine;
use crate::drivers::simulated::library::{self, PlayEngines};

use super::routes::Routes;

/// One request as replayed: virtual time, key slot (dense, in order of first use),
/// identity, route and cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Req {
    pub(crate) at: Nanos,
    pub(crate) slot: u32,
    pub(crate) identity: u32,
    pub(crate) route: u32,
    pub(crate) cost: u32,
}

/// What a player learnt, read out at the end.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    /// Per key slot: admitted and rejected requests.
    pub(crate) admitted: Vec<u32>,
    pub(crate) rejected: Vec<u32>,
    /// Worst key's excess over the reference envelope, cost units.
    pub(crate) excess: f64,
    /// Worst key's burst ratio.
    pub(crate) burst: f64,
    /// Per time bin: (admitted, rejected).
    pub(crate) bins: Vec<(u64, u64)>,
    /// Each decision in replay order, when asked for (tests).
    pub(crate) decisions: Option<Vec<bool>>,
}

/// Plays chunks of requests, in order.
pub(crate) trait Player: Send {
    /// Decides every request of `chunk`.
    fn play(&mut self, chunk: &[Req]);
    /// What it learnt.
    fn finish(self: Box<Self>) -> Tally;
}

/// How a player is set up: the routes (their quotas), whether to keep accuracy
/// figures, the time bin, and whether to record each decision.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setup<'a> {
    pub(crate) routes: &'a Routes,
    pub(crate) figures: bool,
    pub(crate) bin: Nanos,
    pub(crate) record: bool,
}

/// The player of algorithm `kind`, judged (when `figures`) against its reference's
/// envelope.
pub(crate) fn algorithm(kind: Kind, setup: Setup<'_>) -> Box<dyn Player> {
    let figures = setup
        .figures
        .then(|| Figures::new(kind.reference(), setup.routes));
    library::with_engines(kind, &setup.routes.quotas(), Build(setup, figures))
}

/// The player of an exact reference (counts only).
pub(crate) fn reference(reference: Reference, setup: Setup<'_>) -> Box<dyn Player> {
    library::with_references(reference, &setup.routes.quotas(), Build(setup, None))
}

struct Build<'a>(Setup<'a>, Option<Figures>);

impl PlayEngines for Build<'_> {
    type Output = Box<dyn Player>;
    fn play<E: Engine>(self, engines: Vec<E>) -> Box<dyn Player> {
        let Build(setup, figures) = self;
        Box::new(Played {
            engines,
            states: Vec::new(),
            tally: Tally {
                decisions: setup.record.then(Vec::new),
                ..Tally::default()
            },
            figures,
            bin: setup.bin.max(1),
        })
    }
}

struct Played<E: Engine> {
    engines: Vec<E>,
    states: Vec<E::State>,
    tally: Tally,
    figures: Option<Figures>,
    bin: Nanos,
}

impl<E: Engine> Player for Played<E> {
    fn play(&mut self, chunk: &[Req]) {
        for r in chunk {
            let (slot, route) = (r.slot as usize, r.route as usize);
            if slot >= self.states.len() {
                // Slots are handed out in replay order: a new one is the next one.
                self.states.push(self.engines[route].state());
                self.tally.admitted.push(0);
                self.tally.rejected.push(0);
            }
            let cost = u64::from(r.cost);
            // A cost the limiter refuses outright (more than it ever admits) is a
            // rejection, as the gateway answers it.
            let admitted = self.engines[route]
                .admit(&mut self.states[slot], r.at, r.at, cost)
                .unwrap_or(false);
            let b = (r.at / self.bin) as usize;
            if b >= self.tally.bins.len() {
                self.tally.bins.resize(b + 1, (0, 0));
            }
            if admitted {
                if let Some(f) = &mut self.figures {
                    f.admit(slot, route, r.at, cost);
                }
                self.tally.admitted[slot] += 1;
                self.tally.bins[b].0 += 1;
            } else {
                self.tally.rejected[slot] += 1;
                self.tally.bins[b].1 += 1;
            }
            if let Some(d) = &mut self.tally.decisions {
                d.push(admitted);
            }
        }
    }

    fn finish(self: Box<Self>) -> Tally {
        let mut tally = self.tally;
        if let Some(f) = self.figures {
            tally.excess = f.excess;
            tally.burst = f.burst;
        }
        tally
    }
}

/// A route's reading of the policy: the reference's envelope bounds, the burst
/// ratio's window and limit, and how long admissions must be remembered.
#[derive(Debug, Clone)]
struct RouteBounds {
    /// `(burst, limit, period)` of a rate bound.
    rate: Option<(i128, i128, i128)>,
    /// `(limit, length, step)` of each window bound.
    windows: Vec<(u64, Nanos, Nanos)>,
    period: Nanos,
    limit: u64,
    keep: Nanos,
}

/// One key's running figures.
#[derive(Debug, Clone, Default)]
struct KeyFigures {
    /// Admission instants within the longest window that matters.
    recent: VecDeque<Nanos>,
    /// Units admitted so far.
    units: i128,
    /// The rate bound's running maximum of `limit × t_i − units_before_i × period`.
    left: Option<i128>,
}

/// Accuracy figures as `judging::figures` defines them, kept incrementally: the
/// excess over the reference's envelope and the burst ratio, worst key.
#[derive(Debug, Clone)]
struct Figures {
    routes: Vec<RouteBounds>,
    keys: Vec<KeyFigures>,
    excess: f64,
    burst: f64,
}

impl Figures {
    fn new(judge: Reference, routes: &Routes) -> Self {
        let routes = routes
            .quotas()
            .iter()
            .map(|q| {
                let mut b = RouteBounds {
                    rate: None,
                    windows: Vec::new(),
                    period: q.period_nanos(),
                    limit: q.limit(),
                    keep: q.period_nanos(),
                };
                for bound in judge.envelope(q).bounds() {
                    match *bound {
                        Bound::Rate {
                            burst,
                            limit,
                            period,
                        } => b.rate = Some((burst.into(), limit.into(), period.into())),
                        Bound::Windows {
                            limit,
                            length,
                            step,
                        } => {
                            b.keep = b.keep.max(length);
                            b.windows.push((limit, length, step));
                        }
                    }
                }
                b
            })
            .collect();
        Self {
            routes,
            keys: Vec::new(),
            excess: 0.0,
            burst: 0.0,
        }
    }

    /// Key `slot` admits `cost` units at `t`.
    fn admit(&mut self, slot: usize, route: usize, t: Nanos, cost: u64) {
        if slot >= self.keys.len() {
            self.keys.resize_with(slot + 1, KeyFigures::default);
        }
        let b = &self.routes[route];
        let k = &mut self.keys[slot];
        if let Some((burst, limit, period)) = b.rate {
            // value(i, j) = units(i..=j)·p − b·p − l·(t_j − t_i), maximised over i ≤ j
            // in one pass (see `judging::figures`).
            let t = i128::from(t);
            let left = k.left.map_or(limit * t - k.units * period, |l| {
                l.max(limit * t - k.units * period)
            });
            k.left = Some(left);
            k.units += i128::from(cost);
            let value = k.units * period - limit * t + left - burst * period;
            self.excess = self.excess.max(value.max(0) as f64 / period as f64);
        } else {
            k.units += i128::from(cost);
        }
        while k.recent.front().is_some_and(|&f| f + b.keep <= t) {
            k.recent.pop_front();
        }
        k.recent.push_back(t);
        let count_from =
            |from: Nanos| (k.recent.len() - k.recent.partition_point(|&x| x < from)) as u64;
        for &(limit, length, step) in &b.windows {
            // The fullest grid window `[g, g + length)` holding `t` is the earliest one.
            let earliest = (t + 1).saturating_sub(length);
            let from = if step <= 1 {
                earliest
            } else {
                earliest.div_ceil(step) * step
            };
            let most = count_from(from) * cost;
            self.excess = self.excess.max(most.saturating_sub(limit) as f64);
        }
        let most = count_from((t + 1).saturating_sub(b.period)) * cost;
        self.burst = self.burst.max(most as f64 / b.limit as f64);
    }
}
