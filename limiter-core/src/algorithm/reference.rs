//! The exact references the lab judges every algorithm against: what a perfect limiter
//! of the policy would admit on the same arrivals.
//!
//! Written in their plainest form and independently of the algorithms they check (no
//! shared code, no shared rounding), so that they check them rather than repeat them:
//! an exact token bucket in rational arithmetic for the algorithms configured by burst
//! and rate, an exact sliding log for the sliding windowed ones, and an exact fixed
//! window for the fixed window — judged on its own promise (`limit` per aligned
//! window), so "over" means it broke that promise; what its boundary lets through
//! beyond the sliding log is a figure of its own (the lab's boundary burst).

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
    /// [`ExactFixedWindow`]: `limit` in every window aligned to the clock's epoch.
    FixedWindow,
}

impl Reference {
    /// Every reference, in the order reports list them.
    pub const ALL: [Reference; 3] = [
        Reference::SlidingLog,
        Reference::FixedWindow,
        Reference::TokenBucket,
    ];

    /// The reference's name, as reported.
    pub const fn name(self) -> &'static str {
        match self {
            Reference::TokenBucket => "exact token bucket",
            Reference::SlidingLog => "exact sliding log",
            Reference::FixedWindow => "exact fixed window",
        }
    }

    /// Calls `v` with the reference's type (static dispatch, no `dyn`).
    pub fn visit<V: VisitExact>(self, v: V) -> V::Output {
        match self {
            Reference::TokenBucket => v.visit::<ExactTokenBucket>(),
            Reference::SlidingLog => v.visit::<ExactSlidingLog>(),
            Reference::FixedWindow => v.visit::<ExactFixedWindow>(),
        }
    }

    /// What the policy `quota` permits in any interval: the envelope an algorithm's
    /// excess is measured against. Both windowed references read it as `limit` in every
    /// window-length interval, wherever it falls, so a fixed window's boundary burst
    /// shows as excess even though the exact fixed window admits it.
    pub fn envelope(self, quota: &Quota) -> Envelope {
        Envelope::new([match self {
            Reference::TokenBucket => Bound::rate(quota),
            Reference::SlidingLog | Reference::FixedWindow => Bound::Windows {
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

/// A fixed window in its plainest form: admit when the units admitted in the request's
/// window (index `⌊now / window⌋`, aligned to the clock's epoch) plus the cost fit in
/// `limit`.
///
/// For a measured run, where the client knows only that the store decided somewhere
/// between sending and the response, [`admit_within`](Self::admit_within) takes that
/// span and the store's answer: it agrees with the answer whenever one of the windows
/// the span meets justifies it, so a request decided across a boundary is never judged
/// on the wrong window.
#[derive(Debug, Clone)]
pub struct ExactFixedWindow {
    window: Nanos,
    limit: u64,
}

/// One key's state in an [`ExactFixedWindow`]: the units admitted in the latest window
/// seen and in the one before it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExactWindowState {
    /// Index of the latest window seen.
    latest: u64,
    /// Units admitted in window `latest` and in window `latest − 1`.
    used: [u64; 2],
}

impl ExactWindowState {
    /// Units admitted so far in window `index` (0 for windows before the last two).
    fn used(&self, index: u64) -> u64 {
        match self.latest.checked_sub(index) {
            Some(0) => self.used[0],
            Some(1) => self.used[1],
            _ => 0,
        }
    }

    /// Moves the state forward so that `index` is at most the latest window.
    fn reach(&mut self, index: u64) {
        match index.saturating_sub(self.latest) {
            0 => {}
            1 => self.used = [0, self.used[0]],
            _ => self.used = [0, 0],
        }
        self.latest = self.latest.max(index);
    }

    fn charge(&mut self, index: u64, cost: u64) {
        if let Some(slot) = self
            .latest
            .checked_sub(index)
            .and_then(|d| self.used.get_mut(d as usize))
        {
            *slot += cost;
        }
    }
}

impl ExactFixedWindow {
    /// The reference for `quota`: `limit` per aligned window of length `period`.
    pub fn new(quota: &Quota) -> Self {
        Self {
            window: quota.period_nanos().max(1),
            limit: quota.limit(),
        }
    }

    /// A key never seen.
    pub fn state(&self) -> ExactWindowState {
        ExactWindowState::default()
    }

    /// Admits `cost` at `now` if it fits in `now`'s window.
    #[inline]
    pub fn admit(&self, s: &mut ExactWindowState, now: Nanos, cost: u64) -> bool {
        let index = now / self.window;
        s.reach(index);
        if s.used(index) + cost > self.limit {
            return false;
        }
        s.charge(index, cost);
        true
    }

    /// Admits `cost` for a request decided at some instant in `[first, last]` (at most
    /// two windows apart; an earlier `first` is taken as the window before `last`'s).
    /// With the store's answer `observed`, the reference agrees with it when a window
    /// the span meets justifies it: an admission is charged to the earliest window with
    /// room (refused when none has); a refusal stands when some window lacks room, and
    /// is an admission of the earliest window otherwise. Without an answer the span is
    /// an instant's: `first`'s window decides (as [`admit`](Self::admit)).
    pub fn admit_within(
        &self,
        s: &mut ExactWindowState,
        (first, last): (Nanos, Nanos),
        cost: u64,
        observed: Option<bool>,
    ) -> bool {
        let last_index = last.max(first) / self.window;
        let first_index = (first / self.window).max(last_index.saturating_sub(1));
        s.reach(last_index);
        let fits = |s: &ExactWindowState, i: u64| s.used(i) + cost <= self.limit;
        let mut span = first_index..=last_index;
        let admit = match observed {
            None => fits(s, first_index).then_some(first_index),
            Some(true) => span.find(|&i| fits(s, i)),
            Some(false) => span.all(|i| fits(s, i)).then_some(first_index),
        };
        match admit {
            Some(index) => {
                s.charge(index, cost);
                true
            }
            None => false,
        }
    }
}

impl Exact for ExactFixedWindow {
    type State = ExactWindowState;
    const REFERENCE: Reference = Reference::FixedWindow;

    fn new(quota: &Quota) -> Self {
        ExactFixedWindow::new(quota)
    }

    fn fresh(&self) -> ExactWindowState {
        self.state()
    }

    #[inline]
    fn admit(&self, state: &mut ExactWindowState, now: Nanos, cost: u64) -> bool {
        ExactFixedWindow::admit(self, state, now, cost)
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

    #[test]
    fn exact_fixed_window_counts_per_aligned_window() {
        let w = ExactFixedWindow::new(&Quota::per_second(2).unwrap());
        let mut s = w.state();
        assert!(w.admit(&mut s, S - 2, 1));
        assert!(w.admit(&mut s, S - 1, 1));
        assert!(!w.admit(&mut s, S - 1, 1));
        // A new window: 2 more at once, 4 in 2 ns — the fixed window's promise.
        assert!(w.admit(&mut s, S, 2));
        assert!(!w.admit(&mut s, S + 1, 1));
        assert!(w.admit(&mut s, 5 * S, 2));
    }

    #[test]
    fn exact_fixed_window_follows_the_store_across_a_boundary_it_cannot_place() {
        let w = ExactFixedWindow::new(&Quota::per_second(2).unwrap());
        let mut s = w.state();
        assert!(w.admit(&mut s, S - 10, 2));
        // Sent before the boundary, answered after it, admitted: the store decided in
        // the new window, which has room.
        assert!(w.admit_within(&mut s, (S - 5, S + 5), 1, Some(true)));
        // Refused across the same boundary: the old window was full, so it stands.
        assert!(!w.admit_within(&mut s, (S - 4, S + 6), 1, Some(false)));
        // One more in the new window fits; a third does not, whatever the store said.
        assert!(w.admit_within(&mut s, (S + 7, S + 8), 1, Some(true)));
        assert!(!w.admit_within(&mut s, (S + 9, S + 10), 1, Some(true)));
        // A refusal where every window the span meets has room is an under-admission.
        assert!(w.admit_within(&mut s, (2 * S + 1, 2 * S + 2), 1, Some(false)));
        assert_eq!(Reference::FixedWindow.name(), "exact fixed window");
    }
}
