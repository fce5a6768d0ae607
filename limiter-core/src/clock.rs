//! Time, as the limiters see it.
//!
//! Every algorithm is handed `now` as [`Nanos`] and never reads a clock itself, so the
//! same code runs on the system clock in production and on a [`ManualClock`] in tests
//! and in the simulator, where every run is instant and exact.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Nanoseconds since a clock's epoch. Plain `u64` keeps the hot path free of conversions.
pub type Nanos = u64;

/// Converts a [`Duration`] to [`Nanos`], saturating at `u64::MAX` (584 years).
pub fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A source of monotonic time for the limiters.
pub trait Clock: Send + Sync {
    /// The current instant, in nanoseconds since this clock's epoch. Never goes backwards.
    fn now(&self) -> Nanos;
}

/// The system's monotonic clock, counted from when the clock was created.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    start: Instant,
}

impl MonotonicClock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> Nanos {
        nanos(self.start.elapsed())
    }
}

/// Wall-clock time since the Unix epoch. Use it where several processes must agree on
/// window boundaries without a shared store to ask (the Redis stores ask Redis instead).
/// It can step backwards when the system clock is adjusted; the limiters tolerate that
/// by treating an earlier `now` as "no time has passed".
#[derive(Debug, Clone, Copy, Default)]
pub struct UnixClock;

impl Clock for UnixClock {
    fn now(&self) -> Nanos {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(nanos)
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to: for tests, doctests and the simulator.
/// Clones share one time, so a test can advance the clock a limiter holds.
///
/// ```
/// use limiter_core::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_millis(1500));
/// assert_eq!(clock.now(), 1_500_000_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at instant zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock at the given instant.
    pub fn at(now: Nanos) -> Self {
        Self {
            now: Arc::new(AtomicU64::new(now)),
        }
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(nanos(by), Ordering::AcqRel);
    }

    /// Sets the time. Moving it backwards is allowed (to test clock steps).
    pub fn set(&self, now: Nanos) {
        self.now.store(now, Ordering::Release);
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now(&self) -> Nanos {
        self.now.load(Ordering::Acquire)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    #[inline]
    fn now(&self) -> Nanos {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    #[inline]
    fn now(&self) -> Nanos {
        (**self).now()
    }
}
