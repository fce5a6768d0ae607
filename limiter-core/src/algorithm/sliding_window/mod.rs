//! Sliding window counter: the current aligned window's count plus the previous
//! window's count weighted by how much of it still overlaps the sliding window
//! (Cloudflare's approximation of a sliding log in two counters).
//!
//! Admits when `prev × (period − elapsed) / period + current + cost ≤ limit`.
//! Guarantee: at most `limit` per aligned window, and fewer than `2 × limit` in any
//! interval of length `period` (the approximation assumes the previous window's
//! admissions were spread evenly; a burst at its very end can be followed by nearly
//! `limit` more just after the boundary).
//!
//! ```
//! use limiter_core::algorithm::SlidingWindow;
//! use limiter_core::{Algorithm, Quota};
//!
//! let sw = SlidingWindow::new(Quota::per_second(10).unwrap());
//! let key = sw.new_shared();
//! let second = 1_000_000_000;
//! assert!(sw.check(&key, 0, 10).unwrap().allowed);
//! // Half-way through the next window, half of the previous one still counts.
//! assert!(sw.check(&key, second + second / 2, 5).unwrap().allowed);
//! assert!(!sw.check(&key, second + second / 2, 1).unwrap().allowed);
//! ```

use std::sync::Mutex;

use super::{Algorithm, Bound, Envelope, Kind, Reference, dur, ensure_fits};
use crate::clock::Nanos;
use crate::decision::Decision;
use crate::error::Result;
use crate::limiter::Policy;
use crate::quota::Quota;

#[cfg(feature = "redis")]
mod redis;

/// One key's counters: the current window's index and the counts of it and the one
/// before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Index of the current window (`now / period`).
    pub window: u64,
    /// Units admitted in the current window.
    pub current: u64,
    /// Units admitted in the window before it.
    pub previous: u64,
}

/// A sliding window counter; each key's counters sit behind a small lock.
#[derive(Debug, Clone)]
pub struct SlidingWindow {
    quota: Quota,
    window: Nanos,
    limit: u64,
}

impl SlidingWindow {
    /// The counters rolled forward to the window holding `now`.
    #[inline]
    fn roll(&self, c: Counters, now: Nanos) -> Counters {
        let window = now / self.window;
        match window.checked_sub(c.window) {
            Some(0) => c,
            Some(1) => Counters {
                window,
                current: 0,
                previous: c.current,
            },
            Some(_) => Counters {
                window,
                current: 0,
                previous: 0,
            },
            // The clock stepped back into an older window: keep the newer counts.
            None => c,
        }
    }

    /// The decision for counters `c` at `now`, and the counters to store if admitted.
    #[inline]
    pub fn decide(
        &self,
        c: Counters,
        now: Nanos,
        cost: u64,
    ) -> Result<(Decision, Option<Counters>)> {
        ensure_fits(cost, self.limit)?;
        let c = self.roll(c, now);
        let w = self.window as u128;
        let elapsed = now
            .saturating_sub(c.window * self.window)
            .min(self.window - 1) as u128;
        let left = w - elapsed;
        // Everything scaled by the window length to stay in integers.
        let used = c.previous as u128 * left + c.current as u128 * w;
        let budget = self.limit as u128 * w;
        let reset = if c.current > 0 {
            2 * w - elapsed
        } else if c.previous > 0 {
            left
        } else {
            0
        } as u64;
        if used + cost as u128 * w > budget {
            let remaining = ((budget.saturating_sub(used)) / w) as u64;
            let retry = self.wait(c, elapsed, cost) as u64;
            return Ok((
                Decision::deny(self.limit, remaining, dur(reset), dur(retry)),
                None,
            ));
        }
        let next = Counters {
            current: c.current + cost,
            ..c
        };
        let used = used + cost as u128 * w;
        let remaining = ((budget - used) / w) as u64;
        let reset = if next.current > 0 {
            2 * w - elapsed
        } else {
            left
        } as u64;
        Ok((
            Decision::allow(self.limit, remaining, dur(reset)),
            Some(next),
        ))
    }

    /// Shortest wait from `elapsed` into the window until `cost` more fits.
    fn wait(&self, c: Counters, elapsed: u128, cost: u64) -> u128 {
        let w = self.window as u128;
        let limit = self.limit as u128;
        let (prev, cur, cost) = (c.previous as u128, c.current as u128, cost as u128);
        // Later in this window, as the previous window's weight fades.
        if cur + cost <= limit && prev > 0 {
            let max_left = (limit - cur - cost) * w / prev;
            let wait = (w - elapsed).saturating_sub(max_left);
            if wait > 0 && elapsed + wait < w {
                return wait;
            }
        }
        // In the next window, where this window's count becomes the faded one.
        let to_next = w - elapsed;
        if cur == 0 {
            return to_next;
        }
        let max_left = (limit - cost) * w / cur;
        let into_next = w.saturating_sub(max_left);
        if into_next < w {
            // Round so that cur × (w − into_next) ≤ (limit − cost) × w holds.
            to_next + into_next
        } else {
            to_next + w
        }
    }
}

impl Algorithm for SlidingWindow {
    type State = Counters;
    type Shared = Mutex<Counters>;
    #[cfg(feature = "redis")]
    type Mirror = redis::Mirror;
    const KIND: Kind = Kind::SlidingWindow;
    const NAME: &'static str = "sliding-window";
    const REFERENCE: Reference = Reference::SlidingLog;
    const GUARANTEE: &'static str = "`limit` per aligned window; under 2x in any interval (weighted previous window)";
    const STATE_PER_KEY: &'static str = "three counters (lock)";

    fn from_policy(policy: &Policy) -> Self {
        let quota = policy.quota;
        Self {
            quota,
            window: quota.period_nanos(),
            limit: quota.limit(),
        }
    }

    fn quota(&self) -> &Quota {
        &self.quota
    }

    fn capacity(&self) -> u64 {
        self.limit
    }

    fn fresh(&self) -> Counters {
        Counters::default()
    }

    #[inline]
    fn step(&self, state: &mut Counters, now: Nanos, cost: u64) -> Result<Decision> {
        super::keep(state, self.decide(*state, now, cost))
    }

    fn is_idle(&self, &c: &Counters, now: Nanos) -> bool {
        let c = self.roll(c, now);
        c.current == 0 && c.previous == 0
    }

    fn envelope(&self) -> Envelope {
        // Aligned windows exactly; any window-length interval holds fewer than twice the
        // limit (the previous window's count is at most faded to nothing).
        Envelope::new([
            Bound::Windows {
                limit: self.limit,
                length: self.window,
                step: self.window,
            },
            Bound::Windows {
                limit: 2 * self.limit - 1,
                length: self.window,
                step: 1,
            },
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    #[test]
    fn previous_window_fades_linearly() {
        let sw = SlidingWindow::new(Quota::per_second(10).unwrap());
        let s = sw.new_shared();
        assert!(sw.check(&s, S - 1, 10).unwrap().allowed);
        // 10% into the next window, 90% of the previous 10 still count: 1 slot free.
        let t = S + S / 10;
        let d = sw.check(&s, t, 1).unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        let d = sw.check(&s, t, 1).unwrap();
        assert!(!d.allowed);
        // Retry-after is honest: exactly then it passes, a nanosecond before it does not.
        let at = t + d.retry_after.as_nanos() as u64;
        assert!(!sw.check(&s, at - 1, 1).unwrap().allowed);
        assert!(sw.check(&s, at, 1).unwrap().allowed);
    }

    #[test]
    fn idle_after_two_windows() {
        let sw = SlidingWindow::new(Quota::per_second(10).unwrap());
        let mut c = sw.fresh();
        assert!(sw.is_idle(&c, 0));
        sw.step(&mut c, 0, 1).unwrap();
        assert!(!sw.is_idle(&c, S));
        assert!(sw.is_idle(&c, 2 * S));
    }
}
