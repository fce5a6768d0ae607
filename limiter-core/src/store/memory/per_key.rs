//! What the keyed store needs of what it keeps per key: every [`Algorithm`] is one (its
//! shared state), and so is a row of several limits' states side by side
//! ([`crate::limits`]: one lookup and one lock for all the limits of a request).

use crate::algorithm::{Algorithm, Shared};
use crate::clock::Nanos;

/// What [`MemoryStore`](super::MemoryStore) keeps per key and needs to know of it: a
/// fresh state, whether a state may be forgotten (idle) or must be kept (throttled),
/// and its heap bytes. Deciding requests is the [`Algorithm`]'s (or the row's owner's).
pub trait PerKey: Send + Sync + 'static {
    /// One key's state as threads share it.
    type Shared: Send + Sync + 'static;

    /// The state of a key never seen: full allowance.
    fn fresh_shared(&self) -> Self::Shared;

    /// True when the state carries no information at `now`: the key may be forgotten.
    fn idle(&self, state: &Self::Shared, now: Nanos) -> bool;

    /// True when the key is refused now: a full store does not forget it to make room.
    fn throttled(&self, state: &Self::Shared, now: Nanos) -> bool;

    /// Heap bytes the state owns beyond its inline size.
    fn heap_bytes_of(&self, state: &Self::Shared) -> usize;

    /// The most heap bytes one key's state can own (what a byte budget reserves).
    fn max_heap_bytes_of(&self) -> usize;
}

impl<A: Algorithm> PerKey for A {
    type Shared = A::Shared;

    fn fresh_shared(&self) -> Self::Shared {
        self.new_shared()
    }

    fn idle(&self, state: &Self::Shared, now: Nanos) -> bool {
        state.read(|s| self.is_idle(s, now))
    }

    fn throttled(&self, state: &Self::Shared, now: Nanos) -> bool {
        state.read(|s| self.is_throttled(s, now))
    }

    fn heap_bytes_of(&self, state: &Self::Shared) -> usize {
        state.read(|s| self.heap_bytes(s))
    }

    fn max_heap_bytes_of(&self) -> usize {
        self.max_heap_bytes()
    }
}
