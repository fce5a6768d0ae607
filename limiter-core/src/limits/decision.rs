//! One request's answer from a [`LimitSet`]: every limit's decision, the combined one,
//! who decided it, and the in-flight slots an admission holds.

use std::fmt;

#[cfg(feature = "redis")]
use super::Rule;
use super::{LimitSet, MAX_LIMITS, Permit};
use crate::{DecidedBy, Decision, Verdict};

/// Every limit's decision on one request, and whether it was admitted.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LimitsDecision {
    pub(super) decisions: [Decision; MAX_LIMITS],
    len: u8,
    /// Admitted: every limit admitted, and each spent the cost.
    pub allowed: bool,
}

impl fmt::Debug for LimitsDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitsDecision")
            .field("allowed", &self.allowed)
            .field("decisions", &self.decisions())
            .finish()
    }
}

pub(super) const EMPTY: Decision = Decision {
    allowed: false,
    limit: 0,
    remaining: 0,
    reset_after: std::time::Duration::ZERO,
    retry_after: std::time::Duration::ZERO,
};

impl LimitsDecision {
    /// Combines each limit of `set`'s decision (in the set's order): admitted when all
    /// admitted. A limit that admitted a refused request did not spend, so its
    /// remaining is given back the cost (an in-flight limit: its slot).
    #[cfg(feature = "redis")]
    pub(crate) fn new(set: &LimitSet, decisions: &[Decision], cost: u64) -> Self {
        let mut all = Self::empty(decisions.len());
        all.decisions[..decisions.len()].copy_from_slice(decisions);
        all.settle(set, cost);
        all
    }

    /// `len` empty decisions, to be filled in place (the in-memory path writes each
    /// limit's decision straight into its slot: the array is 448 bytes, and building
    /// it once instead of copying it through several values was most of what two
    /// limits cost beyond their steps; callgrind, `scripts/callgrind/run.sh limits`).
    pub(super) fn empty(len: usize) -> Self {
        Self {
            decisions: [EMPTY; MAX_LIMITS],
            len: len.min(MAX_LIMITS) as u8,
            allowed: false,
        }
    }

    /// Settles filled decisions of `set`'s limits: admitted when all admitted; a limit
    /// that admitted a refused request did not spend, so its remaining is given back the
    /// cost (an in-flight limit: its slot).
    pub(super) fn settle(&mut self, set: &LimitSet, cost: u64) {
        let n = usize::from(self.len);
        self.allowed = self.decisions[..n].iter().all(|d| d.allowed);
        if !self.allowed {
            for (d, limit) in self.decisions[..n].iter_mut().zip(set.limits()) {
                if d.allowed {
                    let unspent = limit.rule().unspent(cost);
                    d.remaining = d.remaining.saturating_add(unspent).min(d.limit);
                }
            }
        }
    }

    /// Every limit's decision, in the set's order.
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions[..usize::from(self.len)]
    }

    /// The one decision a single-limit client reads (legacy `X-RateLimit-*`,
    /// `Retry-After`): refused, the refusing limit with the longest wait, retrying after
    /// that wait; admitted, the limit with the least remaining.
    pub fn combined(&self) -> Decision {
        let all = self.decisions();
        let pick = if self.allowed {
            all.iter()
                .min_by_key(|d| (d.remaining, std::cmp::Reverse(d.reset_after)))
        } else {
            all.iter()
                .filter(|d| !d.allowed)
                .max_by_key(|d| (d.retry_after, d.reset_after))
        };
        pick.copied().unwrap_or(EMPTY)
    }

    /// The indices of the limits that refused.
    pub fn refusing(&self) -> impl Iterator<Item = usize> + '_ {
        self.decisions()
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.allowed)
            .map(|(i, _)| i)
    }

    /// Everyone admitted (or everyone refused), as a failure policy answers.
    #[cfg(feature = "redis")]
    pub(super) fn uniform(
        set: &LimitSet,
        allowed: bool,
        retry_after: std::time::Duration,
        cost: u64,
    ) -> Self {
        let ds: Vec<Decision> = set
            .limits()
            .iter()
            .map(|l| {
                let cap = match l.rule() {
                    Rule::Rate(p) => p.capacity(),
                    Rule::InFlight(f) => f.limit(),
                };
                if allowed {
                    Decision::allow(cap, cap - cost.min(cap), std::time::Duration::ZERO)
                } else {
                    Decision::deny(cap, 0, std::time::Duration::ZERO, retry_after)
                }
            })
            .collect();
        Self::new(set, &ds, 0)
    }
}

/// A [`LimitsDecision`] and who made it (the store, or its failure policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsVerdict {
    /// The decision to act on.
    pub decision: LimitsDecision,
    /// The store, or the failure policy standing in for it.
    pub decided_by: DecidedBy,
}

impl LimitsVerdict {
    /// The combined decision as a single [`Verdict`] (for code that reads one).
    pub fn verdict(&self) -> Verdict {
        let mut decision = self.decision.combined();
        decision.allowed = self.decision.allowed;
        Verdict::new(decision, self.decided_by)
    }

    /// True for a refusal because the store failed and the policy fails closed (`503`).
    pub fn is_unavailable(&self) -> bool {
        !self.decision.allowed && self.decided_by == DecidedBy::FailClosed
    }
}

/// One request's decision and, when admitted, the in-flight slots it holds.
#[derive(Debug)]
pub struct Admission {
    /// The decision.
    pub verdict: LimitsVerdict,
    /// The in-flight slots held (empty when refused or the set has no in-flight limit):
    /// keep it while the request runs.
    pub permit: Permit,
}
