//! A shard: one hash table of keys behind a reader-writer lock, on cache lines of its
//! own, and what its fixed parts cost.

use std::sync::atomic::AtomicU64;

use crossbeam_utils::sync::ShardedLock;
use hashbrown::HashTable;

use super::PerKey;
use super::entry::Entry;

/// One shard's keys and what they are charged against the byte budget.
pub(crate) struct Keys<K, S> {
    pub(super) table: HashTable<Entry<K, S>>,
    pub(super) bytes: usize,
}

/// One shard, aligned to its own cache lines so that a write to one shard's table
/// header (on insert) does not disturb readers of its neighbours.
#[repr(align(128))]
pub(super) struct Shard<K, S> {
    pub(super) keys: ShardedLock<Keys<K, S>>,
    /// When idle keys were last swept to spare the table a growth (written under the
    /// write lock).
    pub(super) swept_before_growth: AtomicU64,
}

impl<K, S> Shard<K, S> {
    /// An empty shard.
    pub(super) fn new() -> Self {
        Self {
            keys: ShardedLock::new(Keys {
                table: HashTable::new(),
                bytes: 0,
            }),
            swept_before_growth: AtomicU64::new(0),
        }
    }
}

/// Heap bytes of one `ShardedLock`'s per-thread locks: eight, each padded to 128
/// bytes (crossbeam-utils 0.8 on x86-64 and aarch64).
const LOCK_SLOTS_BYTES: usize = 8 * 128;

/// Bytes of `shards` empty shards: the shard array and each shard's lock slots.
pub(super) const fn fixed_bytes<K, A: PerKey>(shards: usize) -> usize {
    shards * (std::mem::size_of::<Shard<K, A::Shared>>() + LOCK_SLOTS_BYTES)
}
