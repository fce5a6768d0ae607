//! Bucketed sliding window: the window split into `k` sub-windows (`buckets`, default
//! 10), a count kept per sub-window; admit when the counts of the last `k` sub-windows
//! plus the cost fit in `limit`.
//!
//! It sits between the sliding window counter (two counts, an even-spread guess) and the
//! sliding log (exact, one entry per admission): `k` counts per key, and a window that
//! slides in steps of one sub-window. Guarantee: at most `limit` units in every window
//! of `k` sub-windows that starts on a sub-window boundary — so at most `limit` in any
//! interval up to `(k − 1)` sub-windows long, and in any window-length interval at most
//! `limit` plus what the oldest sub-window held (under `2 × limit`).
//!
//! Sub-windows are whole microseconds (Redis counts in µs, and the two stores decide
//! alike): `window / k` rounded up, and `k` at most the window's microseconds, so the `k`
//! sub-windows cover at least the policy's window (never a faster policy). They are
//! aligned to the clock's epoch.
//!
//! ```
//! use limiter_core::algorithm::BucketedWindow;
//! use limiter_core::{Algorithm, Quota};
//!
//! // 10 per second in 10 sub-windows of 100 ms.
//! let bw = BucketedWindow::new(Quota::per_second(10).unwrap());
//! let mut key = bw.fresh();
//! let ms = 1_000_000;
//! assert!(bw.step(&mut key, 50 * ms, 10).unwrap().allowed);
//! let denied = bw.step(&mut key, 999 * ms, 1).unwrap();
//! assert!(!denied.allowed);
//! assert_eq!(denied.retry_after.as_millis(), 1); // the first sub-window leaves at 1 s
//! assert!(bw.step(&mut key, 1_000 * ms, 10).unwrap().allowed);
//! ```

use std::sync::Mutex;

use super::{Algorithm, Bound, Envelope, Kind, Param, Reference, dur, ensure_fits};
use crate::clock::Nanos;
use crate::decision::Decision;
use crate::error::Result;
use crate::limiter::Policy;
use crate::quota::Quota;

#[cfg(feature = "redis")]
mod redis;

/// The `buckets` parameter: sub-windows per window.
const BUCKETS: Param = Param {
    name: "buckets",
    default: 10,
    min: 1,
    max: 1_000,
    invalid: "buckets must be between 1 and 1000",
};

/// One key's counts: a ring of `k` sub-window counts, the newest sub-window's index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ring {
    /// Index (`now / sub-window`) of the newest sub-window counted.
    newest: u64,
    /// Counts by sub-window index mod `k`; empty until the first admission.
    counts: Box<[u32]>,
}

/// The sub-window length (whole µs, in ns) and how many make a window, for a policy.
fn grid(policy: &Policy) -> (Nanos, u64) {
    let window_us = policy.quota.period_nanos().div_ceil(1_000).max(1);
    let k = policy
        .param(BUCKETS.name)
        .unwrap_or(BUCKETS.default)
        .clamp(1, window_us);
    (window_us.div_ceil(k) * 1_000, k)
}

/// A bucketed sliding window; each key's ring sits behind a small lock.
#[derive(Debug, Clone)]
pub struct BucketedWindow {
    policy: Policy,
    /// Sub-window length, nanoseconds (a whole number of µs).
    sub: Nanos,
    /// Sub-windows per window.
    k: u64,
    limit: u64,
}

impl BucketedWindow {
    /// The count of sub-window `j` in `ring`.
    #[inline]
    fn count(&self, ring: &Ring, j: u64) -> u64 {
        if ring.counts.is_empty() || j > ring.newest || j + self.k <= ring.newest {
            0
        } else {
            u64::from(ring.counts[(j % self.k) as usize])
        }
    }

    /// Time from `now` until the newest non-empty sub-window up to `c` leaves the
    /// window (0 when all are empty).
    fn reset(&self, ring: &Ring, c: u64, now: Nanos) -> Nanos {
        (c.saturating_sub(self.k - 1)..=c)
            .rev()
            .find(|&j| self.count(ring, j) > 0)
            .map_or(0, |j| (j + self.k) * self.sub - now)
    }
}

impl Algorithm for BucketedWindow {
    type State = Ring;
    type Shared = Mutex<Ring>;
    #[cfg(feature = "redis")]
    type Mirror = redis::Mirror;
    const KIND: Kind = Kind::BucketedWindow;
    const NAME: &'static str = "bucketed-window";
    const REFERENCE: Reference = Reference::SlidingLog;
    const GUARANTEE: &'static str = "`limit` per window of `k` sub-windows, on sub-window boundaries";
    const STATE_PER_KEY: &'static str = "`k` sub-window counts (lock)";
    const PARAMS: &'static [Param] = &[BUCKETS];

    fn from_policy(policy: &Policy) -> Self {
        let (sub, k) = grid(policy);
        Self {
            policy: *policy,
            sub,
            k,
            limit: policy.quota.limit(),
        }
    }

    fn quota(&self) -> &Quota {
        &self.policy.quota
    }

    fn policy(&self) -> Policy {
        self.policy
    }

    fn capacity(&self) -> u64 {
        self.limit
    }

    fn fresh(&self) -> Ring {
        Ring::default()
    }

    fn step(&self, ring: &mut Ring, now: Nanos, cost: u64) -> Result<Decision> {
        ensure_fits(cost, self.limit)?;
        let (s, k) = (self.sub, self.k);
        // Keep the counts in order even if the clock steps back.
        let now = if ring.counts.is_empty() {
            now
        } else {
            now.max(ring.newest * s)
        };
        let c = now / s;
        let oldest = c.saturating_sub(k - 1);
        let used: u64 = (oldest..=c).map(|j| self.count(ring, j)).sum();
        if used + cost > self.limit {
            // The first sub-window boundary at which enough has left the window.
            let mut freed = 0;
            let mut m = k;
            for i in 1..=k {
                let Some(leaving) = (c + i).checked_sub(k) else {
                    continue;
                };
                freed += self.count(ring, leaving);
                if used - freed + cost <= self.limit {
                    m = i;
                    break;
                }
            }
            let retry = (c + m) * s - now;
            let reset = self.reset(ring, c, now);
            return Ok(Decision::deny(
                self.limit,
                self.limit - used,
                dur(reset),
                dur(retry),
            ));
        }
        if cost == 0 {
            let reset = self.reset(ring, c, now);
            return Ok(Decision::allow(self.limit, self.limit - used, dur(reset)));
        }
        if ring.counts.is_empty() {
            ring.counts = vec![0; k as usize].into_boxed_slice();
        } else {
            // Empty the slots of the sub-windows that left since the newest one.
            for j in (ring.newest + 1..=c).take(k as usize) {
                ring.counts[(j % k) as usize] = 0;
            }
        }
        ring.newest = c;
        let slot = &mut ring.counts[(c % k) as usize];
        // Within `limit`, itself at most u32::MAX.
        *slot = u32::try_from(u64::from(*slot) + cost).unwrap_or(u32::MAX);
        let reset = (c + k) * s - now;
        Ok(Decision::allow(
            self.limit,
            self.limit - used - cost,
            dur(reset),
        ))
    }

    fn is_idle(&self, ring: &Ring, now: Nanos) -> bool {
        ring.counts.is_empty() || ring.newest + self.k <= now / self.sub
    }

    fn heap_bytes(&self, ring: &Ring) -> usize {
        std::mem::size_of_val(&*ring.counts)
    }

    fn max_heap_bytes(&self) -> usize {
        usize::try_from(self.k).map_or(usize::MAX, |k| k * std::mem::size_of::<u32>())
    }

    fn envelope(&self) -> Envelope {
        let (s, k) = (self.sub, self.k);
        Envelope::new([
            // Every window of k sub-windows starting on a sub-window boundary.
            Bound::Windows {
                limit: self.limit,
                length: k * s,
                step: s,
            },
            // So every interval up to k − 1 sub-windows long, wherever it starts.
            Bound::Windows {
                limit: self.limit,
                length: (k - 1) * s + 1,
                step: 1,
            },
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MS: Nanos = 1_000_000;

    fn four_per_second_in(buckets: u64) -> BucketedWindow {
        let p = Policy::new(Kind::BucketedWindow, Quota::per_second(4).unwrap());
        BucketedWindow::from_policy(&p.with_param("buckets", buckets).unwrap())
    }

    #[test]
    fn the_window_slides_one_sub_window_at_a_time() {
        let bw = four_per_second_in(4); // 250 ms sub-windows
        let mut r = bw.fresh();
        assert!(bw.step(&mut r, 100 * MS, 2).unwrap().allowed);
        assert!(bw.step(&mut r, 600 * MS, 2).unwrap().allowed);
        let d = bw.step(&mut r, 900 * MS, 1).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        // The sub-window [0, 250 ms) leaves at 1 s; [500 ms, 750 ms) at 1.5 s.
        assert_eq!(d.retry_after, Duration::from_millis(100));
        assert_eq!(d.reset_after, Duration::from_millis(600));
        assert!(!bw.step(&mut r, 999 * MS, 1).unwrap().allowed);
        let d = bw.step(&mut r, 1_000 * MS, 2).unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        assert!(!bw.is_idle(&r, 1_999 * MS));
        assert!(bw.is_idle(&r, 2_000 * MS));
        assert_eq!(bw.heap_bytes(&r), 16);
    }

    #[test]
    fn sub_windows_are_whole_microseconds_covering_the_window() {
        let p = |q, k| {
            BucketedWindow::from_policy(
                &Policy::new(Kind::BucketedWindow, q)
                    .with_param("buckets", k)
                    .unwrap(),
            )
        };
        let bw = p(Quota::per_second(5).unwrap(), 10);
        assert_eq!((bw.sub, bw.k), (100 * MS, 10));
        let bw = p(Quota::new(3, Duration::from_micros(15)).unwrap(), 10);
        assert_eq!((bw.sub, bw.k), (2_000, 10));
        let bw = p(Quota::new(3, Duration::from_nanos(1_500)).unwrap(), 10);
        assert_eq!((bw.sub, bw.k), (1_000, 2));
        assert!(
            Policy::new(Kind::BucketedWindow, Quota::per_second(1).unwrap())
                .with_param("buckets", 0)
                .is_err()
        );
        let default = Policy::new(Kind::BucketedWindow, Quota::per_second(1).unwrap());
        assert_eq!(default.param("buckets"), Some(10));
    }

    #[test]
    fn cost_above_limit_is_an_error_and_zero_cost_writes_nothing() {
        let bw = four_per_second_in(2);
        let mut r = bw.fresh();
        assert!(bw.step(&mut r, 0, 5).is_err());
        assert!(bw.step(&mut r, 0, 0).unwrap().allowed);
        assert_eq!(r, Ring::default());
    }
}
