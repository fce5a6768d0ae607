//! The exact reference limiters the lab judges every algorithm against: what a perfect
//! limiter for the policy admits on the same arrivals.
//!
//! The guarantee: both are written in their plainest form (rational arithmetic, a full
//! log), independently of `limiter-core`'s algorithms, so they check them rather than
//! repeat them.

use std::collections::VecDeque;

use limiter_core::{Kind, Nanos, Quota};

/// Which envelope and reference an algorithm is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Token bucket, GCRA and the seed replica: `burst + rate × t`.
    Bucket,
    /// Fixed window, sliding window, sliding log: `limit` per window-length interval.
    Window,
}

impl Family {
    /// The reference limiter's name, as reported.
    pub fn reference(self) -> &'static str {
        match self {
            Family::Bucket => "exact token bucket",
            Family::Window => "exact sliding log",
        }
    }
}

impl Family {
    /// The family that judges `kind`: the bucket family for the algorithms configured
    /// by capacity and refill rate.
    pub fn of(kind: Kind) -> Family {
        if kind.is_bucket() {
            Family::Bucket
        } else {
            Family::Window
        }
    }
}

/// A token bucket in exact rational arithmetic: the level is held in units of
/// `1 / period` tokens, so a refill of `(now − last) × limit` is an integer and nothing
/// is ever rounded. Starts full.
#[derive(Debug, Clone)]
pub struct ExactTokenBucket {
    limit: u128,
    period: u128,
    capacity: u128,
}

/// One key's state in an [`ExactTokenBucket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactBucketState {
    level: u128,
    last: Nanos,
}

impl ExactTokenBucket {
    /// The reference for `quota`: `burst` tokens, refilled at `limit / period`.
    pub fn new(quota: &Quota) -> Self {
        let period = quota.period_nanos() as u128;
        Self {
            limit: quota.limit() as u128,
            period,
            capacity: quota.burst() as u128 * period,
        }
    }

    /// A full bucket.
    pub fn state(&self) -> ExactBucketState {
        ExactBucketState {
            level: self.capacity,
            last: 0,
        }
    }

    /// Admits `cost` at `now` if the bucket holds that many tokens.
    #[inline]
    pub fn admit(&self, s: &mut ExactBucketState, now: Nanos, cost: u64) -> bool {
        let now = now.max(s.last);
        let refill = (now - s.last) as u128 * self.limit;
        s.level = (s.level + refill).min(self.capacity);
        s.last = now;
        let want = cost as u128 * self.period;
        if s.level >= want {
            s.level -= want;
            true
        } else {
            false
        }
    }
}

/// A sliding log in its plainest form: admit when the units admitted in
/// `(now − window, now]` plus the cost fit in `limit`.
#[derive(Debug, Clone)]
pub struct ExactSlidingLog {
    window: Nanos,
    limit: u64,
}

/// One key's state in an [`ExactSlidingLog`]: admissions still in the window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExactLogState {
    entries: VecDeque<(Nanos, u64)>,
    used: u64,
}

impl ExactSlidingLog {
    /// The reference for `quota`: `limit` per `period`.
    pub fn new(quota: &Quota) -> Self {
        Self {
            window: quota.period_nanos(),
            limit: quota.limit(),
        }
    }

    /// An empty log.
    pub fn state(&self) -> ExactLogState {
        ExactLogState::default()
    }

    /// Admits `cost` at `now` if it fits in the window ending at `now`.
    #[inline]
    pub fn admit(&self, s: &mut ExactLogState, now: Nanos, cost: u64) -> bool {
        while let Some(&(t, c)) = s.entries.front() {
            if now.saturating_sub(t) < self.window {
                break;
            }
            s.entries.pop_front();
            s.used -= c;
        }
        if s.used + cost > self.limit {
            return false;
        }
        s.entries.push_back((now, cost));
        s.used += cost;
        true
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::workload::SECOND;

    const S: Nanos = SECOND;

    fn quota(limit: u64, secs: u64, burst: u64) -> Quota {
        Quota::new(limit, Duration::from_secs(secs))
            .unwrap()
            .with_burst(burst)
            .unwrap()
    }

    #[test]
    fn exact_token_bucket_by_hand() {
        let q = quota(5, 60, 5);
        let b = ExactTokenBucket::new(&q);
        let mut s = b.state();
        // Starts full.
        for _ in 0..5 {
            assert!(b.admit(&mut s, 100 * S, 1));
        }
        assert!(!b.admit(&mut s, 100 * S, 1));
        assert!(!b.admit(&mut s, 112 * S - 1, 1));
        assert!(b.admit(&mut s, 112 * S, 1));
        // Never more than the burst after a long idle.
        let admitted = (0..10).filter(|_| b.admit(&mut s, 10_000 * S, 1)).count();
        assert_eq!(admitted, 5);
        // Thirds are exact: 3 per second, burst 2, requests every 1/3 s (rounded up to
        // the nanosecond, which the second token of burst absorbs).
        let q = quota(3, 1, 2);
        let b = ExactTokenBucket::new(&q);
        let mut s = b.state();
        let admitted = (0..3_000u64)
            .filter(|i| b.admit(&mut s, (i * S).div_ceil(3), 1))
            .count();
        assert_eq!(admitted, 3_000);
    }

    #[test]
    fn exact_sliding_log_by_hand() {
        let q = quota(2, 10, 2);
        let l = ExactSlidingLog::new(&q);
        let mut s = l.state();
        assert!(l.admit(&mut s, 0, 1));
        assert!(l.admit(&mut s, 5 * S, 1));
        assert!(!l.admit(&mut s, 10 * S - 1, 1));
        assert!(l.admit(&mut s, 10 * S, 1)); // the entry at 0 left
        assert!(!l.admit(&mut s, 14 * S, 1));
        assert!(l.admit(&mut s, 15 * S, 1));
    }
}
