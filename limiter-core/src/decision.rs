//! What a limiter answers: a [`Decision`] (allowed or not, and how to pace), and a
//! [`Verdict`] — the decision together with who made it ([`DecidedBy`]), which is what
//! a service acts on when the store may fail.

use std::time::Duration;

/// The outcome of one check, with everything a client needs to pace itself
/// (the gateway turns it into `RateLimit` and `Retry-After` headers).
///
/// ```
/// use limiter_core::Decision;
/// use std::time::Duration;
///
/// let d = Decision::deny(10, 0, Duration::from_secs(6), Duration::from_millis(600));
/// assert!(!d.allowed);
/// assert_eq!(d.retry_after, Duration::from_millis(600));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is admitted.
    pub allowed: bool,
    /// The policy's limit: the most requests (cost units) admitted at once.
    pub limit: u64,
    /// Cost units that could still be admitted right now, after this decision.
    pub remaining: u64,
    /// Time until the limiter is back to its full allowance if nothing else arrives.
    pub reset_after: Duration,
    /// For a denial, the shortest wait after which the same request would be admitted if
    /// nothing else arrives; zero when allowed.
    pub retry_after: Duration,
}

impl Decision {
    /// An admitted request.
    pub fn allow(limit: u64, remaining: u64, reset_after: Duration) -> Self {
        Self {
            allowed: true,
            limit,
            remaining,
            reset_after,
            retry_after: Duration::ZERO,
        }
    }

    /// A denied request.
    pub fn deny(limit: u64, remaining: u64, reset_after: Duration, retry_after: Duration) -> Self {
        Self {
            allowed: false,
            limit,
            remaining,
            reset_after,
            retry_after,
        }
    }
}

/// Who made a [`Verdict`]: the store, or the failure policy standing in for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecidedBy {
    /// The limiter's store decided (memory, or Redis across every instance).
    Store,
    /// The store failed; decided by this instance's in-memory limiter of the same policy
    /// (the `local` failure policy).
    Local,
    /// The store failed; admitted by the `fail-open` policy.
    FailOpen,
    /// The store failed; refused by the `fail-closed` policy. A service answers `503`,
    /// not `429`: the client did nothing wrong.
    FailClosed,
}

impl DecidedBy {
    /// True when a failure policy answered because the store could not.
    pub fn is_fallback(self) -> bool {
        self != DecidedBy::Store
    }
}

/// A decision and who made it: what [`RateLimiter::decide`](crate::RateLimiter::decide)
/// answers, and what travels from the store to the HTTP response.
///
/// ```
/// use limiter_core::{DecidedBy, Decision, Verdict};
/// use std::time::Duration;
///
/// let v = Verdict::new(Decision::allow(10, 9, Duration::from_secs(1)), DecidedBy::FailOpen);
/// assert!(v.decision.allowed && v.decided_by.is_fallback());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The decision to act on.
    pub decision: Decision,
    /// The store, or the failure policy standing in for it.
    pub decided_by: DecidedBy,
}

impl Verdict {
    /// `decision`, made by `decided_by`.
    pub fn new(decision: Decision, decided_by: DecidedBy) -> Self {
        Self {
            decision,
            decided_by,
        }
    }

    /// A decision the store made.
    pub fn from_store(decision: Decision) -> Self {
        Self::new(decision, DecidedBy::Store)
    }

    /// True for a refusal because the store failed and the policy fails closed
    /// (`503 Service Unavailable`), rather than a denial by the limit (`429`).
    pub fn is_unavailable(&self) -> bool {
        !self.decision.allowed && self.decided_by == DecidedBy::FailClosed
    }
}
