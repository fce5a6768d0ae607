//! The five algorithms, each a pure decision over one key's state.
//!
//! An [`Algorithm`] holds a policy's precomputed numbers and decides one request
//! against one key's state at a given `now`, updating the state atomically in place.
//! It does no I/O and reads no clock: stores and the simulator hand it `now`.
//!
//! | algorithm | state per key | guarantee |
//! |---|---|---|
//! | [`FixedWindow`] | one `u64` (CAS) | `limit` per aligned window; up to 2x across a boundary |
//! | [`SlidingLog`] | a log of admissions (lock) | `limit` in every window-length interval, exactly |
//! | [`SlidingWindow`] | three counters (lock) | `limit` per aligned window; under 2x in any interval |
//! | [`TokenBucket`] | one `u64` (CAS) | `burst + rate × t` in every interval of length `t` |
//! | [`Gcra`] | one `u64` (CAS) | `burst + rate × t` in every interval of length `t` |

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::Nanos;
use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::quota::Quota;

mod fixed_window;
mod gcra;
mod sliding_log;
mod sliding_window;
mod token_bucket;

pub use fixed_window::FixedWindow;
pub use gcra::Gcra;
pub use sliding_log::{Log, SlidingLog};
pub use sliding_window::{Counters, SlidingWindow};
pub use token_bucket::TokenBucket;

/// A rate-limit algorithm configured with one policy.
///
/// `check` must be atomic on `state`: concurrent calls on the same state behave as if
/// they ran one after another. A denial never changes the state.
pub trait Algorithm: Send + Sync + 'static {
    /// One key's state, updated in place (an atomic word or a small lock).
    type State: Send + Sync;

    /// Which algorithm this is.
    const KIND: Kind;

    /// Builds the algorithm for a policy.
    fn new(quota: Quota) -> Self
    where
        Self: Sized;

    /// The policy it enforces.
    fn quota(&self) -> &Quota;

    /// The state of a key never seen: full allowance.
    fn new_state(&self) -> Self::State;

    /// Decides one request of `cost` units at `now`, updating `state` when admitted.
    ///
    /// Errors only when `cost` exceeds what the policy can ever admit at once.
    fn check(&self, state: &Self::State, now: Nanos, cost: u64) -> Result<Decision>;

    /// True when the state carries no information at `now` (back to full allowance), so
    /// the key may be forgotten without changing any future decision.
    fn is_idle(&self, state: &Self::State, now: Nanos) -> bool;

    /// Heap bytes the state owns beyond its inline size (the sliding log's entries).
    fn heap_bytes(&self, _state: &Self::State) -> usize {
        0
    }
}

/// The algorithms by name, for configuration and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Counts per aligned window.
    FixedWindow,
    /// Remembers every admission in the last window.
    SlidingLog,
    /// Weighs the previous window's count into the current one.
    SlidingWindow,
    /// Tokens refilled at a steady rate, spent per request.
    TokenBucket,
    /// Generic cell rate algorithm: a theoretical arrival time per key.
    Gcra,
}

impl Kind {
    /// Every algorithm, in a stable order.
    pub const ALL: [Kind; 5] = [
        Kind::FixedWindow,
        Kind::SlidingLog,
        Kind::SlidingWindow,
        Kind::TokenBucket,
        Kind::Gcra,
    ];

    /// The name used in configs, on the command line and in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::FixedWindow => "fixed-window",
            Kind::SlidingLog => "sliding-log",
            Kind::SlidingWindow => "sliding-window",
            Kind::TokenBucket => "token-bucket",
            Kind::Gcra => "gcra",
        }
    }

    /// True for the algorithms configured by capacity and refill rate rather than by a
    /// limit per window.
    pub const fn is_bucket(self) -> bool {
        matches!(self, Kind::TokenBucket | Kind::Gcra)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown algorithm name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown algorithm {0:?} (expected one of: fixed-window, sliding-log, sliding-window, token-bucket, gcra)"
)]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// Runs a pure decision on a one-word state in a compare-and-swap loop: the decision
/// is made on the value observed and re-made if another thread changed it first, so
/// concurrent checks behave as if they ran one after another. A denial never writes.
#[inline]
pub(crate) fn decide_in_place(
    state: &AtomicU64,
    mut decide: impl FnMut(u64) -> Result<(Decision, Option<u64>)>,
) -> Result<Decision> {
    let mut seen = state.load(Ordering::Acquire);
    loop {
        let (decision, next) = decide(seen)?;
        match next {
            Some(next) if next != seen => {
                match state.compare_exchange_weak(seen, next, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return Ok(decision),
                    Err(actual) => seen = actual,
                }
            }
            _ => return Ok(decision),
        }
    }
}

/// Refuses a cost the policy can never admit at once.
#[inline]
pub(crate) fn ensure_fits(cost: u64, capacity: u64) -> Result<()> {
    if cost > capacity {
        return Err(Error::CostExceedsCapacity { cost, capacity });
    }
    Ok(())
}

/// Nanoseconds as a `Duration`.
#[inline]
pub(crate) fn dur(n: Nanos) -> std::time::Duration {
    std::time::Duration::from_nanos(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in Kind::ALL {
            assert_eq!(k.name().parse::<Kind>(), Ok(k));
        }
        let err = "leaky".parse::<Kind>().unwrap_err();
        assert!(err.to_string().contains("\"leaky\""));
    }
}
