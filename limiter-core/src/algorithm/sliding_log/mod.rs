//! Sliding log: remember every admission of the last `period`; admit when the units
//! in the window `(now − period, now]` plus the cost fit in `limit`.
//!
//! Guarantee: at most `limit` units in every interval of length `period` — exact, at
//! the price of one entry (16 bytes) per admission held for a whole window.
//!
//! ```
//! use limiter_core::algorithm::SlidingLog;
//! use limiter_core::{Algorithm, Quota};
//!
//! let log = SlidingLog::new(Quota::per_second(2).unwrap());
//! let key = log.new_shared();
//! let ms = 1_000_000;
//! assert!(log.check(&key, 0, 1).unwrap().allowed);
//! assert!(log.check(&key, 600 * ms, 1).unwrap().allowed);
//! let denied = log.check(&key, 900 * ms, 1).unwrap();
//! assert_eq!(denied.retry_after.as_millis(), 100); // when the first entry leaves
//! ```

use std::collections::VecDeque;
use std::sync::Mutex;

use super::{Algorithm, Bound, Envelope, Kind, Reference, dur, ensure_fits};
use crate::clock::Nanos;
use crate::decision::Decision;
use crate::error::Result;
use crate::limiter::Policy;
use crate::quota::Quota;

#[cfg(feature = "redis")]
mod redis;

/// One key's log: admissions in time order and the units they hold.
#[derive(Debug, Clone, Default)]
pub struct Log {
    entries: VecDeque<(Nanos, u64)>,
    used: u64,
}

impl Log {
    /// Admissions still remembered, oldest first, as `(instant, cost)`.
    pub fn entries(&self) -> impl Iterator<Item = (Nanos, u64)> + '_ {
        self.entries.iter().copied()
    }
}

/// A sliding log; each key's log sits behind a small lock.
#[derive(Debug, Clone)]
pub struct SlidingLog {
    quota: Quota,
    window: Nanos,
    limit: u64,
}

impl SlidingLog {
    /// Drops entries that left the window ending at `now`.
    #[inline]
    fn expire(&self, log: &mut Log, now: Nanos) {
        while let Some(&(t, c)) = log.entries.front() {
            if t.saturating_add(self.window) > now {
                break;
            }
            log.entries.pop_front();
            log.used -= c;
        }
    }

    /// Decides one request against `log` at `now`, recording it when admitted.
    pub fn decide(&self, log: &mut Log, now: Nanos, cost: u64) -> Result<Decision> {
        ensure_fits(cost, self.limit)?;
        // Keep the log in order even if the clock steps back.
        let now = log.entries.back().map_or(now, |&(t, _)| now.max(t));
        self.expire(log, now);
        if log.used + cost > self.limit {
            let mut freed = 0;
            let mut retry = 0;
            for &(t, c) in &log.entries {
                freed += c;
                if log.used - freed + cost <= self.limit {
                    retry = t + self.window - now;
                    break;
                }
            }
            let reset = log
                .entries
                .back()
                .map_or(0, |&(t, _)| t + self.window - now);
            return Ok(Decision::deny(
                self.limit,
                self.limit - log.used,
                dur(reset),
                dur(retry),
            ));
        }
        if cost > 0 {
            log.entries.push_back((now, cost));
            log.used += cost;
        }
        let reset = log
            .entries
            .back()
            .map_or(0, |&(t, _)| t + self.window - now);
        Ok(Decision::allow(
            self.limit,
            self.limit - log.used,
            dur(reset),
        ))
    }
}

impl Algorithm for SlidingLog {
    type State = Log;
    type Shared = Mutex<Log>;
    #[cfg(feature = "redis")]
    type Mirror = redis::Mirror;
    const KIND: Kind = Kind::SlidingLog;
    const NAME: &'static str = "sliding-log";
    const REFERENCE: Reference = Reference::SlidingLog;
    const GUARANTEE: &'static str = "`limit` in every window-length interval, exactly";
    const STATE_PER_KEY: &'static str = "a log of admissions, up to `limit` entries (lock)";

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

    fn fresh(&self) -> Log {
        Log::default()
    }

    #[inline]
    fn step(&self, log: &mut Log, now: Nanos, cost: u64) -> Result<Decision> {
        self.decide(log, now, cost)
    }

    fn is_idle(&self, log: &Log, now: Nanos) -> bool {
        log.entries
            .back()
            .is_none_or(|&(t, _)| t.saturating_add(self.window) <= now)
    }

    fn heap_bytes(&self, log: &Log) -> usize {
        log.entries.capacity() * std::mem::size_of::<(Nanos, u64)>()
    }

    /// One entry per admission, at most `limit`, in a buffer that grows by doubling
    /// (from 4): up to 16 bytes × `limit` rounded up to a power of two.
    fn max_heap_bytes(&self) -> usize {
        usize::try_from(self.limit)
            .ok()
            .and_then(|l| l.max(4).checked_next_power_of_two())
            .and_then(|slots| slots.checked_mul(std::mem::size_of::<(Nanos, u64)>()))
            .unwrap_or(usize::MAX)
    }

    fn envelope(&self) -> Envelope {
        Envelope::new([Bound::Windows {
            limit: self.limit,
            length: self.window,
            step: 1,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MS: Nanos = 1_000_000;

    #[test]
    fn exact_in_every_window() {
        let log = SlidingLog::new(Quota::new(3, Duration::from_millis(100)).unwrap());
        let s = log.new_shared();
        for t in [0, 10, 20] {
            assert!(log.check(&s, t * MS, 1).unwrap().allowed);
        }
        let d = log.check(&s, 99 * MS, 1).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Duration::from_millis(1));
        assert_eq!(d.reset_after, Duration::from_millis(21));
        assert!(log.check(&s, 100 * MS, 1).unwrap().allowed);
        assert!(!log.check(&s, 109 * MS, 1).unwrap().allowed);
        assert!(log.check(&s, 110 * MS, 1).unwrap().allowed);
        let s = s.into_inner().unwrap();
        assert!(log.is_idle(&s, 210 * MS));
        assert!(!log.is_idle(&s, 209 * MS));
    }

    #[test]
    fn weighted_entries_free_together() {
        let log = SlidingLog::new(Quota::new(5, Duration::from_millis(100)).unwrap());
        let s = log.new_shared();
        assert!(log.check(&s, 0, 3).unwrap().allowed);
        assert!(log.check(&s, 50 * MS, 2).unwrap().allowed);
        let d = log.check(&s, 60 * MS, 4).unwrap();
        assert!(!d.allowed);
        // Needs both entries gone: the second leaves at 150 ms.
        assert_eq!(d.retry_after, Duration::from_millis(90));
    }
}
