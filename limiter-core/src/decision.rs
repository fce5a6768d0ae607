//! What a limiter answers.

use std::time::Duration;

/// The outcome of one check, with everything a client needs to pace itself
/// (the gateway turns it into `RateLimit` and `Retry-After` headers).
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
