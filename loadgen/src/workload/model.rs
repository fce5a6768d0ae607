//! The workload model: users, arrival processes, phases, endpoints and the simulated
//! deployment — plain, validated values the arrival generator and the simulator read.

use std::fmt;

use limiter_core::{Nanos, Quota};

use super::{SECOND, format_duration};

/// How users are drawn for each arrival.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UserDistribution {
    /// Every user equally likely.
    Uniform,
    /// User of rank `k` (1-based) drawn with weight `1 / k^exponent`.
    Zipf {
        /// The Zipf exponent `s` (> 0).
        exponent: f64,
    },
}

/// The user population.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Users {
    /// Number of distinct users.
    pub count: u32,
    /// How each arrival picks its user.
    pub distribution: UserDistribution,
}

/// How arrivals are placed in time within a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// Evenly spaced at the phase's rate; the first at the phase's start.
    Constant,
    /// A Poisson process at the phase's rate (exponential gaps).
    Poisson,
    /// Each user alternates `on` and `off` periods with its own random phase; the
    /// workload's rate is kept as the average, so the rate while on is
    /// `rate × (on + off) / on`. Arrivals within "on" are Poisson.
    OnOff {
        /// Length of an active period.
        on: Nanos,
        /// Length of an idle period.
        off: Nanos,
    },
    /// The window-boundary adversary: at every other multiple of `window` it sends a
    /// burst spread over `spread` just before the edge and another just after, and is
    /// idle otherwise. Each edge carries `rate × 2 × window` requests, so the average
    /// rate is the phase's rate.
    Boundary {
        /// The window length to attack (usually the endpoint policy's window).
        window: Nanos,
        /// How long each half-burst lasts.
        spread: Nanos,
    },
}

impl Process {
    /// The name used in workload files.
    pub fn name(&self) -> &'static str {
        match self {
            Process::Constant => "constant",
            Process::Poisson => "poisson",
            Process::OnOff { .. } => "onoff",
            Process::Boundary { .. } => "boundary",
        }
    }
}

/// One phase of a workload: a name, a length and an arrival rate (or a linear ramp).
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// Name, for tables and plots (`warm-up`).
    pub name: String,
    /// When it starts, from the start of the workload.
    pub start: Nanos,
    /// How long it lasts.
    pub duration: Nanos,
    /// Arrivals per second at its start.
    pub rate: f64,
    /// Arrivals per second at its end (equal to `rate` unless ramping).
    pub rate_end: f64,
}

impl Phase {
    /// When it ends.
    pub fn end(&self) -> Nanos {
        self.start + self.duration
    }

    /// Arrivals expected in it.
    pub fn expected_arrivals(&self) -> f64 {
        (self.rate + self.rate_end) / 2.0 * self.duration as f64 / SECOND as f64
    }
}

/// An endpoint: a share of the traffic and the policy that guards it.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Route, for humans (`GET /api/orders/{id}`).
    pub path: String,
    /// Share of arrivals (relative to the other endpoints).
    pub weight: f64,
    /// The policy: `limit` per `window`, bursts of `burst`.
    pub quota: Quota,
    /// Units each request costs.
    pub cost: u64,
}

/// Where the limiter's state lives in the simulated deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreModel {
    /// One process, in memory: decisions at the arrival instant.
    Memory,
    /// `gateways` gateways sharing one atomic store (Redis, say). Correct algorithms use
    /// the store's clock; each decision happens half a round trip after the request.
    Shared,
    /// `gateways` gateways, each with its own in-memory state and its own skewed clock
    /// (what a `local` failure policy degrades to).
    Local,
}

impl StoreModel {
    /// Every store model, in the order help lists them.
    pub const ALL: [StoreModel; 3] = [StoreModel::Memory, StoreModel::Shared, StoreModel::Local];

    /// The name used in workload files, on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            StoreModel::Memory => "memory",
            StoreModel::Shared => "shared",
            StoreModel::Local => "local",
        }
    }
}

impl fmt::Display for StoreModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for StoreModel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "memory" => Ok(StoreModel::Memory),
            "shared" => Ok(StoreModel::Shared),
            "local" => Ok(StoreModel::Local),
            other => Err(format!(
                "unknown store {other:?} (expected one of: memory, shared, local)"
            )),
        }
    }
}

/// The simulated deployment: how many gateways, their clocks, and the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    /// Where state lives.
    pub store: StoreModel,
    /// Number of gateways; requests are spread over them at random.
    pub gateways: u32,
    /// Clock offsets of the gateways are spread evenly over `[-skew/2, +skew/2]`.
    pub skew: Nanos,
    /// Round trip from a gateway to the shared store.
    pub rtt: Nanos,
    /// Each round trip is `rtt` plus a uniform draw from `[-jitter, +jitter]`.
    pub jitter: Nanos,
}

impl Default for Deployment {
    fn default() -> Self {
        Self {
            store: StoreModel::Memory,
            gateways: 1,
            skew: 0,
            rtt: 0,
            jitter: 0,
        }
    }
}

impl Deployment {
    /// Checks the combination; the message names the offending setting.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.gateways == 0 || self.gateways > 1024 {
            return Err(("gateways", "must be between 1 and 1024".into()));
        }
        if self.store == StoreModel::Memory && self.gateways > 1 {
            return Err((
                "gateways",
                "store \"memory\" is one process; use store \"shared\" or \"local\" for several gateways"
                    .into(),
            ));
        }
        if self.skew > 3600 * SECOND {
            return Err(("skew", "must be at most 1h".into()));
        }
        if self.rtt > SECOND {
            return Err(("rtt", "must be at most 1s".into()));
        }
        if self.jitter > self.rtt {
            return Err(("jitter", "must be at most rtt".into()));
        }
        if self.store != StoreModel::Shared && (self.rtt > 0 || self.jitter > 0) {
            return Err((
                "rtt",
                "only a shared store has a round trip; use store \"shared\"".into(),
            ));
        }
        Ok(())
    }

    /// One line for tables and results: `shared: 3 gateways, skew 2s, rtt 1ms ± 500µs`.
    pub fn describe(&self) -> String {
        match self.store {
            StoreModel::Memory => "memory: one process".to_owned(),
            StoreModel::Local | StoreModel::Shared => {
                let mut s = format!(
                    "{}: {} gateway{}, skew {}",
                    self.store,
                    self.gateways,
                    if self.gateways == 1 { "" } else { "s" },
                    format_duration(self.skew)
                );
                if self.store == StoreModel::Shared {
                    s.push_str(&format!(", rtt {}", format_duration(self.rtt)));
                    if self.jitter > 0 {
                        s.push_str(&format!(" ± {}", format_duration(self.jitter)));
                    }
                }
                s
            }
        }
    }
}
