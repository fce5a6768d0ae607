//! The deployment, per arrival: which gateway took it, when the store sees it, and in
//! what order.
//!
//! The guarantee: the plan is a pure function of the deployment, the arrivals and the
//! seed (its own PRNG streams), so every algorithm played on one [`Simulation`]
//! (`super::Simulation`) sees the same gateways, round trips and store order.

use limiter_core::Nanos;

use crate::arrivals::Arrivals;
use crate::rng::Rng;
use crate::workload::{Deployment, StoreModel};

/// PRNG stream of the gateway choices.
const STREAM_GATEWAYS: u64 = 5;
/// PRNG stream of the round trips.
const STREAM_RTT: u64 = 6;

/// Per arrival: the gateway, the round trip and the store order. Empty vectors for the
/// in-memory model.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeploymentPlan {
    /// The gateway that took each arrival.
    pub(crate) gateway: Vec<u16>,
    /// Round trip per arrival, nanoseconds (shared store only).
    pub(crate) rtt: Vec<u32>,
    /// Store arrival order when round trips vary (shared store with jitter).
    pub(crate) order: Option<Vec<u32>>,
    /// Clock offset of each gateway, nanoseconds.
    pub(crate) offsets: Vec<i64>,
}

impl DeploymentPlan {
    /// The plan of deployment `d` for `arrivals`, drawn from `seed`.
    pub(crate) fn new(d: &Deployment, arrivals: &Arrivals, seed: u64) -> Self {
        if d.store == StoreModel::Memory {
            return Self::default();
        }
        let n = d.gateways.max(1) as usize;
        let mut rng = Rng::new(seed, STREAM_GATEWAYS);
        let gateway = arrivals
            .list
            .iter()
            .map(|_| rng.below(n as u64) as u16)
            .collect();
        let (rtt, order) = if d.store == StoreModel::Shared {
            round_trips(d, arrivals, seed)
        } else {
            (Vec::new(), None)
        };
        Self {
            gateway,
            rtt,
            order,
            offsets: offsets(n, d.skew),
        }
    }
}

/// The clock offsets of `n` gateways, spread evenly over `[-skew/2, skew/2]`.
fn offsets(n: usize, skew: u64) -> Vec<i64> {
    (0..n)
        .map(|g| {
            if n == 1 {
                0
            } else {
                let half = (skew / 2) as i128;
                (-half + g as i128 * skew as i128 / (n as i128 - 1)) as i64
            }
        })
        .collect()
}

/// The round trip of every arrival to the shared store, and the order in which they
/// reach it when the round trips vary.
fn round_trips(d: &Deployment, arrivals: &Arrivals, seed: u64) -> (Vec<u32>, Option<Vec<u32>>) {
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
}
