//! The decision loop: one engine per endpoint, one plain state per key, arrivals in
//! order, decisions recorded as bits.
//!
//! The guarantee: the loop hands every engine the same arrivals, in the same order,
//! at the same instants — the arrival instants in one process, or the deployment's
//! store and gateway clocks ([`DeploymentPlan`]) — and reads no clock itself, so its
//! decisions are a pure function of the arrivals, the plan and the engines.

use limiter_core::Nanos;

use super::deployment::DeploymentPlan;
use crate::arrivals::Arrivals;
use crate::judging::Decisions;

/// Arrivals between progress reports.
const CHUNK: usize = 1 << 16;

/// One algorithm's per-key decision step, on plain state the simulator owns (sent to
/// a worker thread whole by the trace replay, hence `Send + 'static`).
pub(crate) trait Engine: Send + 'static {
    /// One key's state.
    type State: Send;
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

/// Where engines are played: the arrivals, each endpoint's cost, and the deployment
/// (`None`: one process deciding at the arrival instants).
pub(crate) struct Stage<'a> {
    /// The arrivals, in time order, with their phase boundaries.
    pub(crate) arrivals: &'a Arrivals,
    /// Each endpoint's cost per request.
    pub(crate) costs: &'a [u64],
    /// The deployment's plan, and with local state the number of gateways (each keeps
    /// its own keys).
    pub(crate) deployed: Option<(&'a DeploymentPlan, Option<usize>)>,
}

/// A refused request: the endpoint index and the limiter's error.
pub(crate) type Refused = (usize, limiter_core::Error);

impl Stage<'_> {
    /// Plays `engines` (one per endpoint) over every arrival. Returns the decisions
    /// and the memory per key (inline bytes plus the worst key's heap bytes, sampled at
    /// phase ends), or the first refused request.
    pub(crate) fn play<E: Engine>(
        &self,
        engines: &[E],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Decisions, u64), Refused> {
        let n = self.arrivals.list.len();
        let keys = self.arrivals.keys();
        let gateways = self.deployed.and_then(|(_, local)| local).unwrap_or(1);
        let endpoints = engines.len();
        let mut states: Vec<E::State> = (0..keys * gateways)
            .map(|s| engines[s % endpoints].state())
            .collect();
        let mut decisions = Decisions::new(n);
        let mut worst_heap = 0usize;
        let starts = &self.arrivals.phase_starts;
        for p in 0..starts.len().saturating_sub(1) {
            let mut pos = starts[p];
            while pos < starts[p + 1] {
                let end = (pos + CHUNK).min(starts[p + 1]);
                match self.deployed {
                    None => self.in_process(engines, &mut states, pos..end, &mut decisions)?,
                    Some((plan, local)) => {
                        let chunk = pos..end;
                        self.deployed(engines, &mut states, plan, local, chunk, &mut decisions)?
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

    /// Arrivals `range`, decided in one process at their own instants.
    fn in_process<E: Engine>(
        &self,
        engines: &[E],
        states: &mut [E::State],
        range: std::ops::Range<usize>,
        decisions: &mut Decisions,
    ) -> Result<(), Refused> {
        let endpoints = engines.len();
        let start = range.start;
        for (i, a) in self.arrivals.list[range].iter().enumerate() {
            let e = a.endpoint as usize;
            let k = a.user as usize * endpoints + e;
            if engines[e]
                .admit(&mut states[k], a.at, a.at, self.costs[e])
                .map_err(|err| (e, err))?
            {
                decisions.admit(start + i);
            }
        }
        Ok(())
    }

    /// Store-order positions `range`, decided as deployed: with a shared store on the
    /// store's clock half a round trip after the request, with `local` state (the number
    /// of gateways) on the taking gateway's own keys and clock.
    fn deployed<E: Engine>(
        &self,
        engines: &[E],
        states: &mut [E::State],
        plan: &DeploymentPlan,
        local: Option<usize>,
        range: std::ops::Range<usize>,
        decisions: &mut Decisions,
    ) -> Result<(), Refused> {
        let endpoints = engines.len();
        let keys = self.arrivals.keys();
        for j in range {
            let i = plan.order.as_ref().map_or(j, |o| o[j] as usize);
            let a = &self.arrivals.list[i];
            let e = a.endpoint as usize;
            let g = plan.gateway[i] as usize;
            let gateway_now = a.at.saturating_add_signed(plan.offsets[g]);
            let (slot, store_now) = match local {
                Some(_) => (g * keys + a.user as usize * endpoints + e, gateway_now),
                None => (
                    a.user as usize * endpoints + e,
                    a.at + plan.rtt[i] as Nanos / 2,
                ),
            };
            if engines[e]
                .admit(&mut states[slot], store_now, gateway_now, self.costs[e])
                .map_err(|err| (e, err))?
            {
                decisions.admit(i);
            }
        }
        Ok(())
    }
}
