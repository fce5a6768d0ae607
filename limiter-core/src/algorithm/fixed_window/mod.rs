//! Fixed window: count admissions per aligned window of length `period`; the count
//! starts again at each window boundary.
//!
//! Guarantee: at most `limit` units per aligned window — and so up to `2 × limit` in
//! an interval that straddles a boundary (the flaw the lab measures). Windows are
//! aligned to the clock's epoch.
//!
//! ```
//! use limiter_core::algorithm::FixedWindow;
//! use limiter_core::{Algorithm, Quota};
//!
//! let fw = FixedWindow::new(Quota::per_second(2).unwrap());
//! let key = fw.new_shared();
//! let second = 1_000_000_000;
//! assert!(fw.check(&key, second - 1, 2).unwrap().allowed); // end of window 0
//! assert!(fw.check(&key, second, 2).unwrap().allowed);     // start of window 1: 4 in 1 ns
//! assert!(!fw.check(&key, second, 1).unwrap().allowed);
//! ```

use std::sync::atomic::AtomicU64;

use super::{Algorithm, Bound, Envelope, Kind, Reference, dur, ensure_fits};
use crate::clock::Nanos;
use crate::decision::Decision;
use crate::error::Result;
use crate::limiter::Policy;
use crate::quota::Quota;

#[cfg(feature = "redis")]
mod redis;

/// A fixed window over one `AtomicU64` per key: the window's index (low 32 bits of it)
/// and the count admitted in it, packed, updated in a compare-and-swap loop.
///
/// The index wraps after 2³² windows; a key idle for exactly a multiple of that many
/// windows (136 years of 1 s windows) would see its old count. Idle keys are evicted
/// long before.
#[derive(Debug, Clone)]
pub struct FixedWindow {
    quota: Quota,
    window: Nanos,
    limit: u64,
}

#[inline]
fn pack(window: u64, count: u64) -> u64 {
    (window << 32) | count
}

impl FixedWindow {
    /// The decision for a key whose packed state is `state`, and the state to store if
    /// admitted.
    #[inline]
    pub fn decide(&self, state: u64, now: Nanos, cost: u64) -> Result<(Decision, Option<u64>)> {
        ensure_fits(cost, self.limit)?;
        let index = now / self.window;
        let tag = index & 0xFFFF_FFFF;
        let count = if state >> 32 == tag {
            state & 0xFFFF_FFFF
        } else {
            0
        };
        let reset = dur((index + 1) * self.window - now);
        if count + cost > self.limit {
            let d = Decision::deny(self.limit, self.limit - count, reset, reset);
            return Ok((d, None));
        }
        let count = count + cost;
        let d = Decision::allow(self.limit, self.limit - count, reset);
        Ok((d, Some(pack(tag, count))))
    }
}

impl Algorithm for FixedWindow {
    type State = u64;
    type Shared = AtomicU64;
    #[cfg(feature = "redis")]
    type Mirror = redis::Mirror;
    const KIND: Kind = Kind::FixedWindow;
    const NAME: &'static str = "fixed-window";
    const REFERENCE: Reference = Reference::FixedWindow;
    const GUARANTEE: &'static str = "`limit` per aligned window; up to 2x across a boundary";
    const STATE_PER_KEY: &'static str = "one u64 (compare-and-swap)";

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

    fn fresh(&self) -> u64 {
        0
    }

    #[inline]
    fn step(&self, state: &mut u64, now: Nanos, cost: u64) -> Result<Decision> {
        super::keep(state, self.decide(*state, now, cost))
    }

    fn is_idle(&self, &s: &u64, now: Nanos) -> bool {
        s & 0xFFFF_FFFF == 0 || s >> 32 != (now / self.window) & 0xFFFF_FFFF
    }

    fn envelope(&self) -> Envelope {
        Envelope::new([Bound::Windows {
            limit: self.limit,
            length: self.window,
            step: self.window,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: Nanos = 1_000_000_000;

    #[test]
    fn counts_per_window_and_resets_at_the_boundary() {
        let fw = FixedWindow::new(Quota::per_minute(5).unwrap());
        let s = fw.new_shared();
        for i in 0..5 {
            let d = fw.check(&s, 10 * S, 1).unwrap();
            assert!(d.allowed);
            assert_eq!(d.remaining, 4 - i);
        }
        let d = fw.check(&s, 10 * S, 1).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Duration::from_secs(50));
        assert!(!fw.is_idle(&s.load(std::sync::atomic::Ordering::Relaxed), 59 * S));
        assert!(fw.is_idle(&s.load(std::sync::atomic::Ordering::Relaxed), 60 * S));
        assert!(fw.check(&s, 60 * S, 5).unwrap().allowed);
        assert!(fw.check(&s, 60 * S, 1).is_ok_and(|d| !d.allowed));
        assert!(fw.check(&s, 60 * S, 6).is_err());
    }

    #[test]
    fn a_key_unused_for_many_windows_starts_fresh() {
        let fw = FixedWindow::new(Quota::per_second(1).unwrap());
        let s = fw.new_shared();
        assert!(fw.check(&s, 0, 1).unwrap().allowed);
        assert!(fw.check(&s, 1000 * S, 1).unwrap().allowed);
    }
}
