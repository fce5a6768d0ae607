//! Time, as the limiters see it.
//!
//! Every algorithm is handed `now` as [`Nanos`] and never reads a clock itself, so the
//! same code runs on the system clock in production and on a [`ManualClock`] in tests
//! and in the simulator, where every run is instant and exact.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// The process-wide time source behind [`MonotonicClock`], calibrated once.
static SOURCE: OnceLock<quanta::Clock> = OnceLock::new();

/// The system's monotonic clock, counted from when the clock was created.
///
/// It reads the CPU's time-stamp counter through the `quanta` crate (the clock
/// `governor` uses by default) where the counter is invariant — it ticks at a constant
/// rate through frequency changes and sleep states, which `quanta` checks with `cpuid` —
/// and scales it to nanoseconds with a calibration made once per process against the
/// operating system's monotonic clock (this takes up to 200 ms, on the first
/// [`MonotonicClock::new`]). Elsewhere it falls back to the operating system's
/// monotonic clock. Why: reading the counter costs a few nanoseconds where
/// `std::time::Instant::now` costs 20–25 (a `clock_gettime` call), and the clock is
/// read on every check, so it was the largest single cost of an in-memory check.
///
/// Time never goes backwards on one thread. Across cores, invariant counters agree to
/// well under a microsecond; a check that sees an instant slightly earlier than
/// another thread's treats it as "no time has passed", as every algorithm here does.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    source: &'static quanta::Clock,
    /// The source's raw reading when the clock was created.
    start: u64,
    /// The clock's reading at creation: 0, or Unix time for
    /// [`unix_aligned`](Self::unix_aligned).
    offset: Nanos,
}

impl MonotonicClock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        let source = SOURCE.get_or_init(quanta::Clock::new);
        Self {
            source,
            start: source.raw(),
            offset: 0,
        }
    }
}

impl MonotonicClock {
    /// A clock whose epoch is the Unix epoch, as the system clock reads it now, and
    /// which is monotonic from then on (later system-clock steps do not move it).
    ///
    /// Why: windowed algorithms align their windows to the clock's epoch, so on this
    /// clock an in-memory fixed window's windows fall where a Redis store's do (Redis
    /// aligns them to the Unix epoch): several gateways share boundaries, and a client
    /// that knows Unix time knows where every window starts.
    pub fn unix_aligned() -> Self {
        Self {
            offset: UnixClock.now(),
            ..Self::new()
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
        self.offset + self.source.delta_as_nanos(self.start, self.source.raw())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_unix_aligned_clock_reads_unix_time_and_never_goes_back() {
        let before = UnixClock.now();
        let clock = MonotonicClock::unix_aligned();
        let first = clock.now();
        let after = UnixClock.now();
        // Within the calibration's error of the system clock (well under a second).
        assert!(first + 1_000_000_000 > before && first < after + 1_000_000_000);
        assert!(clock.now() >= first);
    }

    #[test]
    fn monotonic_clock_starts_at_zero_and_never_goes_back() {
        let clock = MonotonicClock::new();
        let mut last = clock.now();
        assert!(last < 1_000_000_000, "epoch is creation, not boot: {last}");
        for _ in 0..100_000 {
            let now = clock.now();
            assert!(now >= last, "{now} < {last}");
            last = now;
        }
    }

    #[test]
    fn monotonic_clock_keeps_pace_with_the_system_clock() {
        let clock = MonotonicClock::new();
        let copy = clock;
        // Bracket each reading between two system readings, so that being preempted
        // anywhere only widens the interval the answer must fall in.
        let s0 = Instant::now();
        let before = clock.now();
        let s1 = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        let s2 = Instant::now();
        let after = copy.now();
        let s3 = Instant::now();
        let ours = after - before;
        let shortest = nanos(s2 - s1);
        let longest = nanos(s3 - s0);
        // Calibration against the system clock is good to far better than 1%.
        let slack = longest / 100 + 10_000;
        assert!(
            ours + slack >= shortest,
            "{ours} ns, system saw {shortest}..{longest}"
        );
        assert!(
            ours <= longest + slack,
            "{ours} ns, system saw {shortest}..{longest}"
        );
    }

    #[test]
    fn manual_clock_clones_share_time() {
        let clock = ManualClock::at(5);
        let other = clock.clone();
        other.advance(Duration::from_nanos(10));
        assert_eq!(clock.now(), 15);
        clock.set(3);
        assert_eq!(other.now(), 3);
    }
}
