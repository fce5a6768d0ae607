//! The one error type of `limiter-core`.
//!
//! A denial is not an error: it is an `Ok(Decision)` with `allowed == false`.
//! Errors are for requests that can never succeed and for stores that failed.
//!
//! [`Error`] is opaque, in hyper's shape: a private kind, `is_*` queries for what a
//! caller acts on, and the cause — the Redis client's own error — kept as
//! [`source()`](std::error::Error::source), not flattened into a string.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// The cause of an error: another crate's error (Redis's, for a failed store call).
type Cause = Box<dyn StdError + Send + Sync>;

/// Why a limiter could not decide.
///
/// ```
/// use limiter_core::algorithm::Gcra;
/// use limiter_core::{KeyedLimiter, Quota};
///
/// let limiter: KeyedLimiter<String, Gcra> = KeyedLimiter::new(Quota::per_second(5).unwrap());
/// let err = limiter.check("k", 6).unwrap_err();
/// assert!(err.is_cost_exceeds_capacity() && !err.is_store_failure());
/// assert_eq!(err.cost_and_capacity(), Some((6, 5)));
/// assert_eq!(err.to_string(), "request cost 6 exceeds the limiter's capacity 5");
/// ```
pub struct Error {
    /// Boxed, as hyper does: an `Error` is one pointer, so `Result<Decision>` is not
    /// widened by the kind and cause, and the in-memory check's hot path does not
    /// compute denied-decision fields only to share registers with the error's drop
    /// (callgrind, GCRA at 10,000 `u64` keys: 210 instructions per denied check with
    /// the kind inline, 176 boxed).
    inner: Box<Inner>,
}

/// What an [`Error`] holds.
struct Inner {
    kind: Kind,
    cause: Option<Cause>,
}

#[derive(Debug)]
enum Kind {
    InvalidQuota(&'static str),
    CostExceedsCapacity { cost: u64, capacity: u64 },
    UnknownPolicy(usize),
    Timeout(Duration),
    Store,
    BadReply(String),
    CircuitOpen(Duration),
    Mode(crate::store::mode::ModeError),
    AtCapacity(usize),
    InvalidCapacity { one_key: usize, max_bytes: usize },
    SettleUnsupported(&'static str),
}

impl Error {
    fn new(kind: Kind) -> Self {
        Self {
            inner: Box::new(Inner { kind, cause: None }),
        }
    }

    /// A quota built from impossible numbers.
    pub(crate) fn invalid_quota(why: &'static str) -> Self {
        Self::new(Kind::InvalidQuota(why))
    }

    /// A request costing more than the limiter can ever admit at once.
    pub(crate) fn cost_exceeds_capacity(cost: u64, capacity: u64) -> Self {
        Self::new(Kind::CostExceedsCapacity { cost, capacity })
    }

    /// A policy id used with a set that did not issue it.
    pub(crate) fn unknown_policy(id: usize) -> Self {
        Self::new(Kind::UnknownPolicy(id))
    }

    /// The store did not answer within `after`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn timeout(after: Duration) -> Self {
        Self::new(Kind::Timeout(after))
    }

    /// The store is unreachable or answered an error: `cause`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn store(cause: impl Into<Cause>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind: Kind::Store,
                cause: Some(cause.into()),
            }),
        }
    }

    /// The store answered `reply`, which the limiter cannot interpret.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn bad_reply(reply: String) -> Self {
        Self::new(Kind::BadReply(reply))
    }

    /// The circuit breaker is open; the store is asked again in `retry_in`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn circuit_open(retry_in: Duration) -> Self {
        Self::new(Kind::CircuitOpen(retry_in))
    }

    /// A store mode that cannot enforce the policy it was given.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn mode(e: crate::store::mode::ModeError) -> Self {
        Self::new(Kind::Mode(e))
    }

    /// True when a store mode cannot enforce the policy it was given (a configuration
    /// mistake: see [`StoreMode::check`](crate::store::mode::StoreMode::check)).
    pub fn is_invalid_mode(&self) -> bool {
        matches!(self.inner.kind, Kind::Mode(_))
    }

    /// A new key refused: the memory store is full of throttled keys and its rule is
    /// `deny`.
    pub(crate) fn at_capacity(max_keys: usize) -> Self {
        Self::new(Kind::AtCapacity(max_keys))
    }

    /// A byte budget too small for one key.
    pub(crate) fn invalid_capacity(one_key: usize, max_bytes: usize) -> Self {
        Self::new(Kind::InvalidCapacity { one_key, max_bytes })
    }

    /// True when a new key was refused because the in-memory store is full of keys that
    /// are throttled now ([`AtCapacity::Deny`](crate::store::memory::AtCapacity::Deny)):
    /// the server is out of room, not the client out of quota (a gateway answers `503`).
    pub fn is_at_capacity(&self) -> bool {
        matches!(self.inner.kind, Kind::AtCapacity(_))
    }

    /// A settle (cost after the decision) asked of an algorithm whose balance cannot go
    /// negative.
    pub(crate) fn settle_unsupported(algorithm: &'static str) -> Self {
        Self::new(Kind::SettleUnsupported(algorithm))
    }

    /// True when a reserve or settle was asked of an algorithm that cannot settle
    /// ([`Kind::settles`](crate::Kind::settles)): a configuration mistake.
    pub fn is_settle_unsupported(&self) -> bool {
        matches!(self.inner.kind, Kind::SettleUnsupported(_))
    }

    /// True when a memory store's byte budget cannot hold even one key.
    pub fn is_invalid_capacity(&self) -> bool {
        matches!(self.inner.kind, Kind::InvalidCapacity { .. })
    }

    /// True when a quota was built from impossible numbers.
    pub fn is_invalid_quota(&self) -> bool {
        matches!(self.inner.kind, Kind::InvalidQuota(_))
    }

    /// True when the request costs more than the limiter can ever admit at once:
    /// waiting will not help (a service answers `400`, not `429`).
    pub fn is_cost_exceeds_capacity(&self) -> bool {
        matches!(self.inner.kind, Kind::CostExceedsCapacity { .. })
    }

    /// For a cost above the capacity, the cost and the capacity.
    pub fn cost_and_capacity(&self) -> Option<(u64, u64)> {
        match self.inner.kind {
            Kind::CostExceedsCapacity { cost, capacity } => Some((cost, capacity)),
            _ => None,
        }
    }

    /// True when a policy id was used with a set that did not issue it.
    pub fn is_unknown_policy(&self) -> bool {
        matches!(self.inner.kind, Kind::UnknownPolicy(_))
    }

    /// True when the store did not answer within its timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, Kind::Timeout(_))
    }

    /// True when the circuit breaker is open (the store failed recently and is not
    /// being asked); see [`retry_after`](Self::retry_after).
    pub fn is_circuit_open(&self) -> bool {
        matches!(self.inner.kind, Kind::CircuitOpen(_))
    }

    /// True for store failures (timeouts, connection errors, bad replies, open circuit),
    /// which a failure policy may answer; false for requests that can never succeed.
    pub fn is_store_failure(&self) -> bool {
        !matches!(
            self.inner.kind,
            Kind::InvalidQuota(_)
                | Kind::CostExceedsCapacity { .. }
                | Kind::UnknownPolicy(_)
                | Kind::AtCapacity(_)
                | Kind::InvalidCapacity { .. }
                | Kind::SettleUnsupported(_)
        )
    }

    /// For an open circuit, how long until the store is asked again: a useful
    /// `Retry-After`. `None` for every other error.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.inner.kind {
            Kind::CircuitOpen(wait) => Some(wait),
            _ => None,
        }
    }

    /// This error and its causes, `: `-separated, for a log line.
    pub fn report(&self) -> impl fmt::Display + '_ {
        Report(self)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("limiter_core::Error");
        d.field("kind", &self.inner.kind);
        if let Some(cause) = &self.inner.cause {
            d.field("cause", cause);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.kind {
            Kind::InvalidQuota(why) => write!(f, "invalid quota: {why}"),
            Kind::Mode(e) => write!(f, "{e}"),
            Kind::CostExceedsCapacity { cost, capacity } => write!(
                f,
                "request cost {cost} exceeds the limiter's capacity {capacity}"
            ),
            Kind::UnknownPolicy(id) => write!(
                f,
                "unknown policy #{id}: ids are only valid in the set that issued them"
            ),
            Kind::Timeout(after) => write!(f, "rate-limit store timed out after {after:?}"),
            Kind::Store => f.write_str("rate-limit store failed"),
            Kind::BadReply(reply) => {
                write!(f, "rate-limit store sent an unexpected reply: {reply}")
            }
            Kind::CircuitOpen(wait) => write!(
                f,
                "rate-limit store circuit is open (failing recently); retrying in {wait:?}"
            ),
            Kind::AtCapacity(max) => write!(
                f,
                "rate-limit store is full ({max} keys, every one throttled now): new key refused"
            ),
            Kind::InvalidCapacity { one_key, max_bytes } => write!(
                f,
                "max_bytes = {max_bytes} cannot hold one key of this policy (up to {one_key} bytes each)"
            ),
            Kind::SettleUnsupported(algorithm) => write!(
                f,
                "{algorithm} cannot settle a cost after the decision (its balance cannot go negative); \
                 use token-bucket or gcra"
            ),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .cause
            .as_deref()
            .map(|c| c as &(dyn StdError + 'static))
    }
}

/// An error and its chain of causes.
struct Report<'a>(&'a Error);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = StdError::source(self.0);
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_stays_a_source_and_reports_in_logs() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::store(io);
        assert!(e.is_store_failure() && !e.is_timeout());
        assert_eq!(e.to_string(), "rate-limit store failed");
        let source = StdError::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("refused"));
        assert_eq!(e.report().to_string(), "rate-limit store failed: refused");
        let open = Error::circuit_open(Duration::from_millis(200));
        assert_eq!(open.retry_after(), Some(Duration::from_millis(200)));
        assert!(open.is_circuit_open() && open.is_store_failure());
        assert!(!Error::invalid_quota("x").is_store_failure());
    }
}
