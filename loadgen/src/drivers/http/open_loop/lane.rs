//! Which arrivals a connection may take: the schedule split by target (arrival `i`
//! goes to target `i % targets`, as with goose) and, within a target, handed to the
//! driver threads in blocks of consecutive arrivals, the next block to whichever thread
//! needs one first.
//!
//! Why blocks: every arrival's send instant and answer go to its own 8-byte slot
//! ([`RunState`]); when neighbouring arrivals are sent from different threads, both
//! threads write the same cache lines for every request. Blocks of [`BLOCK`] keep each
//! line, mostly, to one thread (the slot arrays are not line-aligned, so a block's
//! edges may share one), and the counter the threads share is touched once per block.
//! Why shared: a thread the machine stops for a while (other processes, the target's
//! own threads) holds back at most the block it took; the others take the rest.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::wire::Requests;
use crate::drivers::http::record::RunState;

/// Consecutive arrivals of one target a thread takes at once.
pub(super) const BLOCK: usize = 16;

/// What the connections of one target need, shared by its lanes.
#[derive(Debug)]
pub(super) struct Target {
    /// The target's addresses (empty when its name did not resolve: every request
    /// then records a refused connection).
    pub(super) addrs: Vec<SocketAddr>,
    /// Its requests, in parts prepared once.
    pub(super) requests: Requests,
    /// The next block of this target's arrivals not yet taken by a thread.
    blocks: AtomicUsize,
}

impl Target {
    /// A target at `addrs` with these requests.
    pub(super) fn new(addrs: Vec<SocketAddr>, requests: Requests) -> Self {
        Self {
            addrs,
            requests,
            blocks: AtomicUsize::new(0),
        }
    }
}

/// One thread's share of one target's arrivals: the block it is playing.
#[derive(Debug)]
pub(super) struct Lane {
    pub(super) target: Arc<Target>,
    /// Index of the target (`i % targets`).
    index: usize,
    targets: usize,
    /// Next and end of the block taken, counted in the target's arrivals (only this
    /// thread's connections lock it).
    block: Mutex<(usize, usize)>,
}

impl Lane {
    /// A thread's share of target `index`'s arrivals (of `targets` targets).
    pub(super) fn new(target: Arc<Target>, (index, targets): (usize, usize)) -> Self {
        Self {
            target,
            index,
            targets: targets.max(1),
            block: Mutex::new((0, 0)),
        }
    }

    /// The next arrival of this lane, or `None` when the schedule is exhausted or the
    /// run stopped.
    pub(super) fn next(&self, shared: &RunState) -> Option<usize> {
        if shared.is_stopped() {
            return None;
        }
        let mut block = self.block.lock().unwrap_or_else(PoisonError::into_inner);
        if block.0 == block.1 {
            let b = self.target.blocks.fetch_add(1, Ordering::Relaxed);
            let start = b.checked_mul(BLOCK)?;
            *block = (start, start.checked_add(BLOCK)?);
        }
        let of_target = block.0;
        block.0 += 1;
        of_target
            .checked_mul(self.targets)?
            .checked_add(self.index)
            .filter(|&i| i < shared.plan.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::http::plan::LoadPlan;
    use crate::workload::Workload;

    #[test]
    fn lanes_share_every_arrival_once() {
        let plan = Arc::new(LoadPlan::new(Workload::load("seed").unwrap(), 1).unwrap());
        let shared = RunState::new(Arc::clone(&plan), vec![], std::time::Duration::ZERO);
        let n = plan.len();
        for (targets, threads) in [(1, 1), (1, 2), (3, 2), (2, 5)] {
            let mut seen = vec![0u8; n];
            for index in 0..targets {
                let target = Arc::new(Target::new(Vec::new(), Requests::new(&plan, "x")));
                let lanes: Vec<Lane> = (0..threads)
                    .map(|_| Lane::new(Arc::clone(&target), (index, targets)))
                    .collect();
                let mut last = vec![None; threads];
                // The threads take turns unevenly, as a busy machine runs them.
                let mut live: Vec<usize> = (0..threads).collect();
                let mut turn = 0usize;
                while !live.is_empty() {
                    turn = turn.wrapping_mul(31).wrapping_add(7);
                    let at = turn % live.len();
                    let t = live[at];
                    let Some(i) = lanes[t].next(&shared) else {
                        live.remove(at);
                        continue;
                    };
                    assert_eq!(i % targets, index, "arrival {i} went to its target");
                    assert!(last[t].is_none_or(|l| l < i), "in schedule order");
                    last[t] = Some(i);
                    seen[i] += 1;
                }
            }
            assert!(
                seen.iter().all(|&s| s == 1),
                "{targets} targets × {threads} threads: every arrival once"
            );
        }
    }
}
