//! The one error type of `limiter-core`.
//!
//! A denial is not an error: it is an `Ok(Decision)` with `allowed == false`.
//! Errors are for requests that can never succeed and for stores that failed.

use std::time::Duration;

/// Why a limiter could not decide.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A quota was built from impossible numbers.
    #[error("invalid quota: {0}")]
    InvalidQuota(&'static str),

    /// The request costs more than the limiter can ever admit at once; waiting will not help.
    #[error("request cost {cost} exceeds the limiter's capacity {capacity}")]
    CostExceedsCapacity {
        /// The request's cost.
        cost: u64,
        /// The most the limiter admits at once.
        capacity: u64,
    },

    /// A policy id that does not belong to the limiter it was used with.
    #[error("unknown policy #{0}: ids are only valid in the set that issued them")]
    UnknownPolicy(usize),

    /// The store did not answer within its timeout.
    #[error("rate-limit store timed out after {0:?}")]
    Timeout(Duration),

    /// The store is unreachable or answered with an error.
    #[error("rate-limit store failed: {0}")]
    Store(String),

    /// The store answered something the limiter cannot interpret.
    #[error("rate-limit store sent an unexpected reply: {0}")]
    BadReply(String),

    /// The circuit breaker is open: the store failed recently and is not being asked.
    #[error("rate-limit store circuit is open (failing recently); retrying in {0:?}")]
    CircuitOpen(Duration),
}

impl Error {
    /// True for store failures (timeouts, connection errors, bad replies, open circuit),
    /// which a failure policy may answer; false for requests that can never succeed.
    pub fn is_store_failure(&self) -> bool {
        !matches!(
            self,
            Error::InvalidQuota(_) | Error::CostExceedsCapacity { .. } | Error::UnknownPolicy(_)
        )
    }

    /// For an open circuit, how long until the store is asked again: a useful
    /// `Retry-After`. `None` for every other error.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::CircuitOpen(wait) => Some(*wait),
            _ => None,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
