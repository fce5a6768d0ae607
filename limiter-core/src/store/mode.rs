//! How many instances share one store: the store modes, what each algorithm supports,
//! and the worst case each mode promises.
//!
//! - [`StoreMode::Exact`]: one atomic store call per decision. N instances admit
//!   together exactly what one limiter would: envelope excess 0.
//! - [`StoreMode::Lease`]: an instance takes up to [`LeaseOptions::max`] units of a key
//!   in one atomic call (a *lease*) and spends them locally, without asking again. The
//!   lease's units are real tokens, taken from the key's bucket as a request of that
//!   cost would take them, so the takes obey the policy's envelope exactly; a unit is
//!   admitted later than it was taken, never twice. Hence, for N instances:
//!   - over the whole run, admissions never exceed what the policy allows over the run
//!     (no over-admission against the envelope of the run's length);
//!   - within any interval, admissions exceed the policy's envelope by at most the units
//!     held when the interval starts: **N × `lease.max`** per key ([`excess_bound`]).
//!     An instance never holds more than `lease.max` units of a key, units in flight
//!     (asked, not yet granted) included.
//!   - units left in a lease when it expires (`lease.ttl`) are dropped: they were taken
//!     from the store and never admitted, so they are under-admission (counted as
//!     *stranded*), at most N × `lease.max` per key per `lease.ttl`.
//!
//! In every mode an instance remembers a store's denial: once the store says a key
//! holds too few units until instant T, the instance refuses that key (for that cost or
//! more) locally until T, with no store call, so a flood on one key costs the store one
//! call per refill instead of one per request. That refusal can only be early in
//! favour of the policy: T is measured from when the reply arrived, so it is late by
//! at most the reply's one-way delay (a refusal lasts that much longer than the store's).
//!
//! Which algorithms lease: those whose state is a pool of tokens, the token bucket and
//! GCRA ([`LeaseSupport::Tokens`]). The windowed algorithms count admissions per window;
//! a lease of a window's count would have to end with its window (and, for the sliding
//! ones, the log or the weighted previous window would have to learn when each unit was
//! really spent), so they do not lease here and a lease mode with one of them is refused
//! when the limiter is configured ([`StoreMode::check`]).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::algorithm::Kind;
use crate::limiter::Policy;

/// The largest `lease.max` accepted.
pub const MAX_LEASE: u64 = 1 << 20;

/// How an instance shares a key's state with the other instances on one store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StoreMode {
    /// One atomic store call per decision (with local denials).
    #[default]
    Exact,
    /// Leases of up to `max` units spent locally (with local denials).
    Lease(LeaseOptions),
}

/// A lease mode's parameters: `lease = { max = 64, ttl = "1s" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseOptions {
    /// The most units one instance takes (and holds) for one key: the envelope excess
    /// of N instances is at most N × `max`.
    pub max: u64,
    /// How long an instance may spend a lease's units; what is left then is dropped.
    pub ttl: Duration,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        Self {
            max: 64,
            ttl: Duration::from_secs(1),
        }
    }
}

impl LeaseOptions {
    /// Checked lease parameters: `max` in 1..=[`MAX_LEASE`], `ttl` at least 1 ms.
    pub fn new(max: u64, ttl: Duration) -> Result<Self, ModeError> {
        if max == 0 || max > MAX_LEASE {
            return Err(ModeError::LeaseMax(max));
        }
        if ttl < Duration::from_millis(1) {
            return Err(ModeError::LeaseTtl(ttl));
        }
        Ok(Self { max, ttl })
    }
}

/// What an algorithm can lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaseSupport {
    /// Nothing: it decides with one store call per request (exact mode only).
    None,
    /// Real tokens of a bucket: a lease of `n` takes `n` tokens as a request of cost `n`
    /// would (token bucket, GCRA).
    Tokens,
}

impl Kind {
    /// What this algorithm can lease (see [`StoreMode`]).
    pub const fn lease_support(self) -> LeaseSupport {
        if self.is_bucket() {
            LeaseSupport::Tokens
        } else {
            LeaseSupport::None
        }
    }
}

/// A store mode that cannot be used as configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModeError {
    /// An unknown mode name.
    #[error("unknown store mode {0:?} (expected one of: exact, lease)")]
    Unknown(String),
    /// `lease.max` out of range.
    #[error("lease.max = {0} is out of range (1..={MAX_LEASE})")]
    LeaseMax(u64),
    /// `lease.ttl` too short.
    #[error("lease.ttl = {0:?} is too short (at least 1ms)")]
    LeaseTtl(Duration),
    /// The algorithm cannot lease.
    #[error(
        "store mode \"lease\" cannot be used with {0}: it counts admissions per window, \
         and only the token bucket and gcra lease real tokens (use mode = \"exact\")"
    )]
    CannotLease(Kind),
    /// The policy's numbers are too large for the lease script's arithmetic.
    #[error(
        "store mode \"lease\" cannot be used with this {0} policy: burst × refill period \
         (µs per reduced refill step) is past 2^53, beyond the lease script's exact arithmetic (use mode = \"exact\")"
    )]
    TooLarge(Kind),
}

impl StoreMode {
    /// The name used in configs: `exact` or `lease`.
    pub const fn name(&self) -> &'static str {
        match self {
            StoreMode::Exact => "exact",
            StoreMode::Lease(_) => "lease",
        }
    }

    /// The lease parameters, in lease mode.
    pub fn lease(&self) -> Option<LeaseOptions> {
        match self {
            StoreMode::Lease(l) => Some(*l),
            StoreMode::Exact => None,
        }
    }

    /// Refuses a policy this mode cannot enforce (a windowed algorithm in lease mode, or
    /// a bucket whose numbers the lease script cannot handle exactly).
    pub fn check(&self, policy: &Policy) -> Result<(), ModeError> {
        if matches!(self, StoreMode::Exact) {
            return Ok(());
        }
        if policy.kind.lease_support() == LeaseSupport::None {
            return Err(ModeError::CannotLease(policy.kind));
        }
        // The script's refill ratio: `limit` per period in µs, reduced.
        let q = policy.quota;
        let period_us = q.period_nanos().div_ceil(1_000).max(1);
        let reduced = u128::from(period_us / gcd(q.limit(), period_us));
        if u128::from(q.burst()) * reduced >= 1 << 53 {
            return Err(ModeError::TooLarge(policy.kind));
        }
        Ok(())
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

impl fmt::Display for StoreMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreMode::Exact => f.write_str("exact"),
            StoreMode::Lease(l) => write!(f, "lease(max={}, ttl={:?})", l.max, l.ttl),
        }
    }
}

impl FromStr for StoreMode {
    type Err = ModeError;

    /// `exact`, or `lease` with the default [`LeaseOptions`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "exact" => Ok(StoreMode::Exact),
            "lease" => Ok(StoreMode::Lease(LeaseOptions::default())),
            _ => Err(ModeError::Unknown(s.to_owned())),
        }
    }
}

/// The most units N instances in `mode` may admit for one key, in any interval, beyond
/// the policy's envelope for that interval: 0 exact, `N × lease.max` in lease mode.
pub fn excess_bound(mode: &StoreMode, instances: u64) -> u64 {
    match mode {
        StoreMode::Exact => 0,
        StoreMode::Lease(l) => instances.saturating_mul(l.max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::Quota;

    #[test]
    fn windowed_algorithms_are_refused_in_lease_mode_with_their_name() {
        let lease = StoreMode::Lease(LeaseOptions::default());
        let q = Quota::per_second(10).unwrap();
        for kind in Kind::ALL {
            let got = lease.check(&Policy::new(kind, q));
            if kind.is_bucket() {
                assert_eq!(got, Ok(()), "{kind}");
            } else {
                let err = got.unwrap_err();
                assert_eq!(err, ModeError::CannotLease(kind));
                assert!(err.to_string().contains(kind.name()));
            }
            assert_eq!(StoreMode::Exact.check(&Policy::new(kind, q)), Ok(()));
        }
    }

    #[test]
    fn lease_parameters_are_checked_and_bounds_stated() {
        assert_eq!(
            LeaseOptions::new(0, Duration::from_secs(1)),
            Err(ModeError::LeaseMax(0))
        );
        assert!(LeaseOptions::new(MAX_LEASE + 1, Duration::from_secs(1)).is_err());
        assert!(LeaseOptions::new(8, Duration::ZERO).is_err());
        let l = LeaseOptions::new(8, Duration::from_millis(200)).unwrap();
        assert_eq!(excess_bound(&StoreMode::Lease(l), 3), 24);
        assert_eq!(excess_bound(&StoreMode::Exact, 3), 0);
        assert_eq!("lease".parse::<StoreMode>().unwrap().name(), "lease");
        assert!("sync".parse::<StoreMode>().is_err());
    }

    #[test]
    fn a_bucket_past_exact_lua_arithmetic_is_refused() {
        let lease = StoreMode::Lease(LeaseOptions::default());
        // 999,983 (prime) per day, a burst of 10^9: 8.64e10 µs × 1e9 > 2^53.
        let q = Quota::new(999_983, Duration::from_secs(86_400))
            .unwrap()
            .with_burst(1_000_000_000)
            .unwrap();
        let small = Quota::new(1_000, Duration::from_secs(86_400)).unwrap();
        assert_eq!(lease.check(&Policy::new(Kind::Gcra, small)), Ok(()));
        assert_eq!(
            lease.check(&Policy::new(Kind::Gcra, q)),
            Err(ModeError::TooLarge(Kind::Gcra))
        );
    }
}
