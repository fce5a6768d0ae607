//! The policy every algorithm is configured from: "`limit` per `period`, bursts up to
//! `burst`".
//!
//! One policy configures every algorithm so that they are compared on equal terms: the
//! windowed ones (fixed window, sliding log, sliding window, bucketed window) admit
//! `limit` per window of length `period`; the token bucket and GCRA hold `burst` tokens
//! and refill at `limit / period`.
//!
//! # Limits
//!
//! Every constructor rejects a quota whose arithmetic could overflow or saturate in any
//! algorithm, in memory or on Redis, so that a valid quota means the same thing
//! everywhere:
//!
//! - `limit` and `burst`: 1 to [`MAX_LIMIT`] (2³² − 1; the fixed window packs its count
//!   in 32 bits, the bucketed window counts in `u32`);
//! - `period`: 1 µs (Redis counts in µs) to [`MAX_PERIOD`] (ten years);
//! - the time to refill a full burst, `burst × period / limit`: at most [`MAX_PERIOD`].
//!   GCRA's tolerance (`burst` emission intervals) and the token bucket's deficit are
//!   that long at most, so neither saturates a 64-bit nanosecond instant, and the
//!   `RateLimit-Policy` window (`w`) is at most ten years. (Before this rule,
//!   `Quota::bucket(100_000_000, 0.001)` saturated GCRA's tolerance: an effective burst
//!   of 18,446,743 instead of 99,999,999.)
//!
//! A request's cost is at most the algorithm's capacity (the burst for the buckets, the
//! limit for the windows); a larger one is an error, never a denial. Instants are
//! nanoseconds in a `u64` (up to the year 2554 on the Unix clock).

use std::fmt;
use std::time::Duration;

use crate::clock::{Nanos, nanos};
use crate::error::{Error, Result};

/// "`limit` requests per `period`, with bursts up to `burst`" (burst defaults to `limit`).
///
/// ```
/// use limiter_core::Quota;
/// use std::time::Duration;
///
/// // From a config: fallible, every number checked.
/// let q = Quota::new(100, Duration::from_secs(60))?.with_burst(10)?;
/// assert_eq!((q.limit(), q.period(), q.burst()), (100, Duration::from_secs(60), 10));
/// // A token bucket: 5 tokens, refilled at 0.5 per second (one every 2 s).
/// assert_eq!(Quota::bucket(5, 0.5)?.emission_interval(), 2_000_000_000);
/// assert!(Quota::per_second(0).is_err());
/// # Ok::<(), limiter_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    limit: u64,
    period: Nanos,
    burst: u64,
}

/// The largest limit or burst a quota accepts (about 4.3 billion per period); larger
/// values would not fit the packed 32-bit counters of the fixed window.
pub const MAX_LIMIT: u64 = u32::MAX as u64;

/// The longest period, and the longest time to refill a full burst: ten years (of 365
/// days), in nanoseconds.
pub const MAX_PERIOD: Nanos = 10 * 365 * 24 * 3600 * 1_000_000_000;

impl Quota {
    /// `limit` per `period`, bursts up to `limit`.
    ///
    /// Errors when `limit` is zero or above [`MAX_LIMIT`], or `period` is shorter than
    /// one microsecond or longer than [`MAX_PERIOD`] (see the module's limits).
    pub fn new(limit: u64, period: Duration) -> Result<Self> {
        if let Some(why) = const_check(limit, period.as_nanos(), limit) {
            return Err(Error::invalid_quota(why));
        }
        Ok(Self {
            limit,
            period: nanos(period),
            burst: limit,
        })
    }

    /// `limit` per second.
    pub fn per_second(limit: u64) -> Result<Self> {
        Self::new(limit, Duration::from_secs(1))
    }

    /// `limit` per minute.
    pub fn per_minute(limit: u64) -> Result<Self> {
        Self::new(limit, Duration::from_secs(60))
    }

    /// A token-bucket style quota: `capacity` tokens, refilled at `refill_per_sec`
    /// (which may be fractional, like the original project's 0.083/s). The refill rate
    /// is kept exact to the nanosecond by expressing it as `limit` per `period`.
    pub fn bucket(capacity: u64, refill_per_sec: f64) -> Result<Self> {
        if !refill_per_sec.is_finite() || refill_per_sec <= 0.0 {
            return Err(Error::invalid_quota(
                "refill rate must be a positive number",
            ));
        }
        // One token every 1/rate seconds, to the nanosecond.
        let interval = 1e9 / refill_per_sec;
        if !(1.0..=3.15e17).contains(&interval) {
            return Err(Error::invalid_quota(
                "refill rate must be between 1 per 10 years and 1e9 per second",
            ));
        }
        let q = if interval < 1_000.0 {
            // Faster than one per µs (the shortest period): whole tokens per second, not
            // one per a period clamped to 1 µs (which silently capped the rate at 1e6/s).
            Self::new(refill_per_sec.round() as u64, Duration::from_secs(1))?
        } else {
            Self::new(1, Duration::from_nanos(interval.round() as u64))?
        };
        q.with_burst(capacity)
    }

    /// Sets the burst (token bucket and GCRA capacity); windowed algorithms ignore it.
    ///
    /// Errors when `burst` is zero or above [`MAX_LIMIT`], or refilling it takes longer
    /// than [`MAX_PERIOD`] (`burst × period / limit`).
    pub fn with_burst(mut self, burst: u64) -> Result<Self> {
        if let Some(why) = const_check(self.limit, self.period as u128, burst) {
            return Err(Error::invalid_quota(why));
        }
        self.burst = burst;
        Ok(self)
    }

    /// Requests (cost units) admitted per period.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The period (window length).
    pub fn period(&self) -> Duration {
        Duration::from_nanos(self.period)
    }

    /// The period in nanoseconds.
    pub fn period_nanos(&self) -> Nanos {
        self.period
    }

    /// The most admitted at once by the token bucket and GCRA.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// Time for one unit of refill (`period / limit`), in nanoseconds, rounded up so
    /// that the refill never runs faster than the policy.
    pub fn emission_interval(&self) -> Nanos {
        self.period.div_ceil(self.limit)
    }
}

/// Quotas from literal values, usable in `const` and `static` items. Each panics on what
/// its fallible twin rejects; in a `const` that panic is a compile error, so a constant
/// quota is checked once, by the compiler:
///
/// ```
/// use limiter_core::Quota;
/// use std::time::Duration;
///
/// const SEARCH: Quota = Quota::per_minute_const(100).with_burst_const(10);
/// static LOGIN: Quota = Quota::new_const(5, Duration::from_secs(15 * 60));
/// assert_eq!(SEARCH, Quota::per_minute(100)?.with_burst(10)?);
/// assert_eq!(LOGIN.limit(), 5);
/// # Ok::<(), limiter_core::Error>(())
/// ```
///
/// ```compile_fail
/// // A zero limit does not compile.
/// const NONE: limiter_core::Quota = limiter_core::Quota::per_second_const(0);
/// ```
impl Quota {
    /// [`Quota::new`] for literals: `limit` per `period`, bursts up to `limit`.
    ///
    /// # Panics
    /// When [`Quota::new`] would error (at compile time in a `const`).
    pub const fn new_const(limit: u64, period: Duration) -> Self {
        let period = period.as_nanos();
        if let Some(why) = const_check(limit, period, limit) {
            panic!("{}", why);
        }
        Self {
            limit,
            period: period as Nanos,
            burst: limit,
        }
    }

    /// [`Quota::per_second`] for literals.
    ///
    /// # Panics
    /// When `limit` is zero or above [`MAX_LIMIT`] (at compile time in a `const`).
    pub const fn per_second_const(limit: u64) -> Self {
        Self::new_const(limit, Duration::from_secs(1))
    }

    /// [`Quota::per_minute`] for literals.
    ///
    /// # Panics
    /// When `limit` is zero or above [`MAX_LIMIT`] (at compile time in a `const`).
    pub const fn per_minute_const(limit: u64) -> Self {
        Self::new_const(limit, Duration::from_secs(60))
    }

    /// [`Quota::with_burst`] for literals.
    ///
    /// # Panics
    /// When [`Quota::with_burst`] would error (at compile time in a `const`).
    pub const fn with_burst_const(self, burst: u64) -> Self {
        if let Some(why) = const_check(self.limit, self.period as u128, burst) {
            panic!("{}", why);
        }
        Self { burst, ..self }
    }
}

/// The checks of every constructor (see the module's limits), in a `const fn`: the one
/// home of the rules.
const fn const_check(limit: u64, period_nanos: u128, burst: u64) -> Option<&'static str> {
    if limit == 0 {
        Some("limit must be at least 1")
    } else if limit > MAX_LIMIT {
        Some("limit must be at most 4294967295")
    } else if period_nanos < 1_000 {
        Some("period must be at least 1µs")
    } else if period_nanos > MAX_PERIOD as u128 {
        Some("period must be at most 10 years")
    } else if burst == 0 {
        Some("burst must be at least 1")
    } else if burst > MAX_LIMIT {
        Some("burst must be at most 4294967295")
    } else if burst as u128 * period_nanos > MAX_PERIOD as u128 * limit as u128 {
        Some("refilling the whole burst (burst × period / limit) must take at most 10 years")
    } else {
        None
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} per {:?}", self.limit, self.period())?;
        if self.burst != self.limit {
            write!(f, " (burst {})", self.burst)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_impossible_values() {
        assert!(Quota::new(0, Duration::from_secs(1)).is_err());
        assert!(Quota::new(1, Duration::ZERO).is_err());
        assert!(Quota::per_second(MAX_LIMIT + 1).is_err());
        assert!(Quota::bucket(5, 0.0).is_err());
        assert!(Quota::bucket(5, -1.0).is_err());
        assert!(Quota::bucket(5, f64::NAN).is_err());
        assert!(Quota::bucket(0, 1.0).is_err());
    }

    #[test]
    fn fractional_refill_is_exact_to_the_nanosecond() {
        // The original project: 5 tokens, 0.083 per second (about 5 per minute).
        let q = Quota::bucket(5, 0.083).unwrap();
        assert_eq!(q.burst(), 5);
        assert_eq!(q.emission_interval(), 12_048_192_771);
        let q = Quota::per_minute(5).unwrap();
        assert_eq!(q.emission_interval(), 12_000_000_000);
    }

    #[test]
    fn refilling_a_burst_takes_at_most_ten_years() {
        // 10^8 tokens at one per 1,000 s: 3,170 years to refill. It used to saturate
        // GCRA's tolerance (an effective burst of 18,446,743) and advertise
        // w=18446744074.
        let e = Quota::bucket(100_000_000, 0.001).unwrap_err();
        assert!(e.to_string().contains("10 years"), "{e}");
        assert!(Quota::bucket(315_360, 0.001).is_ok());
        assert!(Quota::bucket(315_361, 0.001).is_err());
        let year = Duration::from_secs(365 * 24 * 3600);
        let q = Quota::new(1, 10 * year).unwrap();
        assert!(q.with_burst(2).is_err());
        assert!(
            Quota::new(MAX_LIMIT, 10 * year)
                .unwrap()
                .with_burst(MAX_LIMIT)
                .is_ok()
        );
        assert!(Quota::new(10, 10 * year + Duration::from_nanos(1)).is_err());
    }

    #[test]
    fn fast_refills_are_not_capped_at_one_per_microsecond() {
        let q = Quota::bucket(10, 5e6).unwrap();
        assert_eq!(
            (q.limit(), q.period_nanos(), q.burst()),
            (5_000_000, 1_000_000_000, 10)
        );
        let q = Quota::bucket(10, 1e9).unwrap();
        assert_eq!(q.emission_interval(), 1);
        assert!(Quota::bucket(10, 2e9).is_err());
    }

    #[test]
    fn emission_interval_rounds_up() {
        let q = Quota::new(3, Duration::from_secs(1)).unwrap();
        assert_eq!(q.emission_interval(), 333_333_334);
    }
}
