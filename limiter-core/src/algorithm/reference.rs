//! The exact references the lab judges every algorithm against: what a perfect limiter
//! of the policy would admit on the same arrivals.
//!
//! Written in their plainest form and independently of the algorithms they check (no
//! shared code, no shared rounding), so that they check them rather than repeat them:
//! an exact token bucket in rational arithmetic for the algorithms configured by burst
//! and rate, an exact sliding log for the windowed ones.

use std::collections::VecDeque;

use crate::algorithm::{Bound, Envelope};
use crate::clock::Nanos;
use crate::quota::Quota;

/// Which exact reference judges an algorithm, and so which envelope of the policy its
/// excess is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reference {
    /// [`ExactTokenBucket`]: `burst + rate × t` in every interval of length `t`.
    TokenBucket,
    /// [`ExactSlidingLog`]: `limit` in every window-length interval.
    SlidingLog,
}

impl Reference {
    /// Both references, in the order reports list them.
    pub const ALL: [Reference; 2] = [Reference::SlidingLog, Reference::TokenBucket];

    /// The reference's name, as reported.
    pub const fn name(self) -> &'static str {
        match self {
            Reference::TokenBucket => "exact token bucket",
            Reference::SlidingLog => "exact sliding log",
        }
    }

    /// Calls `v` with the reference's type (static dispatch, no `dyn`).
    pub fn visit<V: VisitExact>(self, v: V) -> V::Output {
        match self {
            Reference::TokenBucket => v.visit::<ExactTokenBucket>(),
            Reference::SlidingLog => v.visit::<ExactSlidingLog>(),
        }
    }

    /// What the policy `quota` permits, by this reference's reading of it: the envelope
    /// an algorithm's excess is measured against.
    pub fn envelope(self, quota: &Quota) -> Envelope {
        Envelope::new([match self {
            Reference::TokenBucket => Bound::rate(quota),
            Reference::SlidingLog => Bound::Windows {
                limit: quota.limit(),
                length: quota.period_nanos(),
                step: 1,
            },
        }])
    }
}

/// An exact reference limiter: a pure step on plain state, like an
/// [`Algorithm`](super::Algorithm) but with no cost limit and nothing to report beyond
/// admitted or not.
pub trait Exact: Sized + Send + Sync + 'static {
    /// One key's plain state.
    type State: Clone + Send + 'static;

    /// Which reference this is.
    const REFERENCE: Reference;

    /// The reference for `quota`.
    fn new(quota: &Quota) -> Self;

    /// The state of a key never seen: full allowance.
    fn fresh(&self) -> Self::State;

    /// Admits `cost` at `now` if a perfect limiter would, updating the state.
    fn admit(&self, state: &mut Self::State, now: Nanos, cost: u64) -> bool;

    /// Heap bytes the state owns beyond its inline size.
    fn heap_bytes(&self, _state: &Self::State) -> usize {
        0
    }
}

/// A computation generic over the reference, run by [`Reference::visit`].
pub trait VisitExact {
    /// What it computes.
    type Output;
    /// Runs with reference `R`.
    fn visit<R: Exact>(self) -> Self::Output;
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

impl ExactLogState {
    /// Heap bytes the log owns.
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(Nanos, u64)>()
    }
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

impl Exact for ExactTokenBucket {
    type State = ExactBucketState;
    const REFERENCE: Reference = Reference::TokenBucket;

    fn new(quota: &Quota) -> Self {
        ExactTokenBucket::new(quota)
    }

    fn fresh(&self) -> ExactBucketState {
        self.state()
    }

    #[inline]
    fn admit(&self, state: &mut ExactBucketState, now: Nanos, cost: u64) -> bool {
        ExactTokenBucket::admit(self, state, now, cost)
    }
}

impl Exact for ExactSlidingLog {
    type State = ExactLogState;
    const REFERENCE: Reference = Reference::SlidingLog;

    fn new(quota: &Quota) -> Self {
        ExactSlidingLog::new(quota)
    }

    fn fresh(&self) -> ExactLogState {
        self.state()
    }

    #[inline]
    fn admit(&self, state: &mut ExactLogState, now: Nanos, cost: u64) -> bool {
        ExactSlidingLog::admit(self, state, now, cost)
    }

    fn heap_bytes(&self, state: &ExactLogState) -> usize {
        state.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    #[test]
    fn exact_token_bucket_refills_fractionally() {
        // 2 tokens, 1 per 3 s: thirds of tokens are held exactly.
        let b = ExactTokenBucket::new(&Quota::bucket(2, 1.0 / 3.0).unwrap());
        let mut s = b.state();
        assert!(b.admit(&mut s, 0, 2));
        assert!(!b.admit(&mut s, S, 1));
        assert!(!b.admit(&mut s, 3 * S - 1, 1));
        assert!(b.admit(&mut s, 3 * S, 1));
    }

    #[test]
    fn exact_sliding_log_forgets_after_a_window() {
        let l = ExactSlidingLog::new(&Quota::per_second(2).unwrap());
        let mut s = l.state();
        assert!(l.admit(&mut s, 0, 2));
        assert!(!l.admit(&mut s, S - 1, 1));
        assert!(l.admit(&mut s, S, 2));
        assert!(s.heap_bytes() > 0);
    }
}
