//! One key's slot in a shard's table: the key, its state and when it was last used.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::clock::Nanos;

/// One key: its state and when it was last used.
pub(crate) struct Entry<K, S> {
    pub(super) key: K,
    pub(super) state: S,
    /// The [`tick`] of its last check.
    pub(super) used: AtomicU32,
}

impl<K, S> Entry<K, S> {
    pub(super) fn new(key: K, state: S, now: Nanos) -> Self {
        Self {
            key,
            state,
            used: AtomicU32::new(tick(now)),
        }
    }

    /// Marks the key used at `now`: a write only when the tick changed.
    #[inline]
    pub(super) fn touch(&self, now: Nanos) {
        let now_tick = tick(now);
        if self.used.load(Ordering::Relaxed) != now_tick {
            self.used.store(now_tick, Ordering::Relaxed);
        }
    }
}

/// A coarse clock for least-recently-used order: 2^30 ns (about a second) per tick,
/// wrapping after 136 years (ages are taken with wrapping subtraction anyway). Coarse,
/// so a key checked many times a second is written once a second.
#[inline]
pub(super) fn tick(now: Nanos) -> u32 {
    (now >> 30) as u32
}
