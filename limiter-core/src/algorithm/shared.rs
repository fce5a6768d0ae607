//! The two forms in which the in-memory store shares one key's state between threads:
//! one `AtomicU64` updated in a compare-and-swap loop, or a small lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::decision::Decision;
use crate::error::Result;

/// A state `S` shared between threads, updated atomically by a pure step.
pub trait Shared<S>: Send + Sync + 'static {
    /// Shares `state`.
    fn new(state: S) -> Self;

    /// Runs `step` on the state as if alone: concurrent calls behave as if they ran one
    /// after another. `step` may run more than once (on the value another thread wrote
    /// meanwhile); what it leaves in the state on its last run is kept.
    fn apply(&self, step: impl FnMut(&mut S) -> Result<Decision>) -> Result<Decision>;

    /// Reads the state (for idleness and memory accounting).
    fn read<R>(&self, f: impl FnOnce(&S) -> R) -> R;
}

/// One word, in a compare-and-swap loop: the step decides on the value observed and is
/// re-run if another thread changed it first. A step that leaves the word unchanged (a
/// denial) writes nothing.
impl Shared<u64> for AtomicU64 {
    fn new(state: u64) -> Self {
        AtomicU64::new(state)
    }

    #[inline]
    fn apply(&self, mut step: impl FnMut(&mut u64) -> Result<Decision>) -> Result<Decision> {
        let mut seen = self.load(Ordering::Acquire);
        loop {
            let mut next = seen;
            let decision = step(&mut next)?;
            if next == seen {
                return Ok(decision);
            }
            match self.compare_exchange_weak(seen, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(decision),
                Err(actual) => seen = actual,
            }
        }
    }

    #[inline]
    fn read<R>(&self, f: impl FnOnce(&u64) -> R) -> R {
        f(&self.load(Ordering::Acquire))
    }
}

/// Any state, behind a lock held for one step. A panic in another holder does not
/// poison it: the step never leaves a state half-written.
impl<S: Send + 'static> Shared<S> for Mutex<S> {
    fn new(state: S) -> Self {
        Mutex::new(state)
    }

    #[inline]
    fn apply(&self, mut step: impl FnMut(&mut S) -> Result<Decision>) -> Result<Decision> {
        let mut guard = self.lock().unwrap_or_else(PoisonError::into_inner);
        step(&mut guard)
    }

    #[inline]
    fn read<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&self.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
