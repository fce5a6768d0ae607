//! Keyed in-memory state with bounded memory and no global lock on the hot path.
//!
//! Keys are spread over shards, each a hash table behind a reader-writer lock. A check
//! on a known key takes only a read lock and updates the key's state atomically
//! (compare-and-swap or a per-key lock, as the algorithm chooses), so checks on
//! different keys — and on the same key — run in parallel. Only a new key takes a
//! write lock.
//!
//! The read lock writes to no memory another thread reads: each shard's lock is a
//! crossbeam `ShardedLock`, one small lock per thread slot on its own cache line
//! (a writer takes them all). With a plain `RwLock`, every read lock and unlock writes
//! the lock's one word, so two cores checking keys of the same shard pass that cache
//! line back and forth on every check; here a denial writes nothing shared at all, and
//! an admission writes only its key's state.
//!
//! Memory is bounded: keys whose state is back to a full allowance carry no information
//! and are swept (before a shard's table would grow, at most once a second; by
//! [`MemoryStore::sweep`]; at the cap), and a shard never holds more than its share of
//! the [`Capacity`] — `max_keys`, and `max_bytes` counted at each key's worst case. When
//! a full shard has nothing idle, it forgets keys in use, least recently used first,
//! never one that is throttled now; when every key is throttled, [`AtCapacity`] says
//! whether the newcomer is refused or the oldest keys go anyway (see [`capacity`]).
//!
//! "Recently used" is a 32-bit tick (2^30 ns, about a second) stored beside each key: a
//! check writes it only when the tick changed, so a key checked many times a second is
//! written once a second, and a denial within that second writes nothing shared at all.

use std::hash::{BuildHasher, Hash};
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::Nanos;
use crate::error::Result;

pub mod capacity;
mod check;
mod entry;
mod heap;
mod per_key;
mod shard;

pub(crate) use entry::Entry;
use entry::tick;
use shard::{Keys, Shard, fixed_bytes};

pub use capacity::{AtCapacity, Capacity, UnknownAtCapacity, bytes_per_key};
pub use heap::{HeapSize, StoreStats};
pub use per_key::PerKey;

/// Per-key state of one algorithm and policy, with a cap on the number of keys.
pub struct MemoryStore<K, A: PerKey> {
    algorithm: A,
    shards: Box<[Shard<K, A::Shared>]>,
    hasher: foldhash::fast::RandomState,
    /// A key's shard is `(hash >> shard_shift) & shard_mask`: bits below hashbrown's
    /// seven-bit tag (the top bits) and above the bits it indexes with (the low ones).
    shard_shift: u32,
    shard_mask: usize,
    capacity: Capacity,
    max_per_shard: usize,
    bytes_per_shard: usize,
    /// What each key is charged beyond its key's heap text ([`bytes_per_key`]).
    key_bytes: usize,
    evicted_idle: AtomicU64,
    evicted_forced: AtomicU64,
    evicted_throttled: AtomicU64,
    refused: AtomicU64,
}

impl<K, A: PerKey + std::fmt::Debug> std::fmt::Debug for MemoryStore<K, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("algorithm", &self.algorithm)
            .field("shards", &self.shards.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// The default cap on keys: ten million (a few hundred MB at most for the
/// single-word algorithms).
pub const DEFAULT_MAX_KEYS: usize = 10_000_000;

/// The least time between two sweeps of one shard's idle keys before its table grows
/// (sweeps at the cap and by [`MemoryStore::sweep`] are not limited).
const GROWTH_SWEEP_INTERVAL: Nanos = 1_000_000_000;

impl<K, A> MemoryStore<K, A>
where
    K: Hash + Eq + HeapSize,
    A: PerKey,
{
    /// A store for `algorithm` holding at most [`DEFAULT_MAX_KEYS`] keys.
    pub fn new(algorithm: A) -> Self {
        Self::with_max_keys(algorithm, DEFAULT_MAX_KEYS)
    }

    /// A store for `algorithm` holding at most `max_keys` keys (at least one per shard),
    /// with no byte budget, evicting the oldest keys when all are throttled.
    pub fn with_max_keys(algorithm: A, max_keys: usize) -> Self {
        Self::build(algorithm, Capacity::keys(max_keys))
    }

    /// A store for `algorithm` within `capacity`. Errors when `capacity.max_bytes`
    /// cannot hold even one key ([`bytes_per_key`]).
    pub fn with_capacity(algorithm: A, capacity: Capacity) -> Result<Self> {
        Self::validate(&algorithm, &capacity)?;
        Ok(Self::build(algorithm, capacity))
    }

    fn build(algorithm: A, capacity: Capacity) -> Self {
        let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
        let key_bytes = bytes_per_key::<K, A>(&algorithm);
        // Shards only keep writers (new keys, resizes) apart: readers never meet, each
        // has its own lock slot. Four per core, as dashmap does, with room for 64 keys
        // in each (by count and by bytes); every shard costs about 1 KB of lock slots.
        let wanted = (cpus * 4).next_power_of_two().clamp(4, 128);
        let by_bytes = capacity
            .max_bytes
            .map_or(usize::MAX, |b| b / key_bytes.max(1));
        let by_size = (capacity.max_keys.min(by_bytes) / 64)
            .max(1)
            .next_power_of_two();
        let mut shards = wanted.min(by_size);
        // The budget pays for the shards' fixed parts too; each shard must hold a key.
        let for_keys = |shards: usize| {
            capacity.max_bytes.map_or(usize::MAX, |b| {
                b.saturating_sub(fixed_bytes::<K, A>(shards)) / shards
            })
        };
        while shards > 1 && for_keys(shards) < key_bytes {
            shards /= 2;
        }
        let shard_bits = shards.trailing_zeros();
        Self {
            algorithm,
            shards: (0..shards).map(|_| Shard::new()).collect(),
            hasher: foldhash::fast::RandomState::default(),
            shard_shift: 57 - shard_bits,
            shard_mask: shards - 1,
            max_per_shard: (capacity.max_keys / shards).max(1),
            bytes_per_shard: for_keys(shards),
            key_bytes,
            capacity,
            evicted_idle: AtomicU64::new(0),
            evicted_forced: AtomicU64::new(0),
            evicted_throttled: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// The same store hashing keys with `hasher` (before any key is held): stores that
    /// share one can be handed a hash computed once ([`with_state_hashed`]), as the
    /// several limits of one request are.
    ///
    /// [`with_state_hashed`]: Self::with_state_hashed
    pub(crate) fn with_hasher(mut self, hasher: foldhash::fast::RandomState) -> Self {
        debug_assert!(
            self.is_empty(),
            "a store's hasher changes only while it is empty"
        );
        self.hasher = hasher;
        self
    }

    /// The algorithm (and so the policy) this store enforces.
    pub fn algorithm(&self) -> &A {
        &self.algorithm
    }

    /// The most keys this store holds at once.
    pub fn max_keys(&self) -> usize {
        self.max_per_shard * self.shards.len()
    }

    /// The bounds it was built with.
    pub fn capacity(&self) -> &Capacity {
        &self.capacity
    }

    /// Forgets every key that is idle at `now` and returns how many were forgotten.
    /// Run it periodically where keys come and go (the gateway does, every few seconds).
    pub fn sweep(&self, now: Nanos) -> usize {
        let mut total = 0;
        for shard in self.shards.iter() {
            let mut keys = shard.keys.write().unwrap_or_else(PoisonError::into_inner);
            total += self.forget_idle(&mut keys, now);
            capacity::shrink(&mut keys.table, |k| self.hasher.hash_one(k));
        }
        total
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.keys
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .table
                    .len()
            })
            .sum()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes charged against the byte budget now (each key at its worst case; see
    /// [`Capacity::max_bytes`]), without walking the keys.
    pub fn charged_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.keys.read().unwrap_or_else(PoisonError::into_inner).bytes)
            .sum()
    }

    /// Size and evictions so far. Walks every key: for reports, not the hot path.
    pub fn stats(&self) -> StoreStats {
        let mut keys = 0;
        let mut bytes = fixed_bytes::<K, A>(self.shards.len());
        for shard in self.shards.iter() {
            let shard = shard.keys.read().unwrap_or_else(PoisonError::into_inner);
            keys += shard.table.len();
            bytes += shard.table.allocation_size();
            bytes += shard
                .table
                .iter()
                .map(|e| e.key.heap_bytes() + self.algorithm.heap_bytes_of(&e.state))
                .sum::<usize>();
        }
        StoreStats {
            keys,
            bytes,
            evicted_idle: self.evicted_idle.load(Ordering::Relaxed),
            evicted_forced: self.evicted_forced.load(Ordering::Relaxed),
            evicted_throttled: self.evicted_throttled.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    /// Keys, evictions and refusals so far without walking the keys (for metrics);
    /// `bytes` is what the byte budget charges (each key at its worst case), not the
    /// bytes held now.
    pub fn counters(&self) -> StoreStats {
        StoreStats {
            keys: self.len(),
            bytes: fixed_bytes::<K, A>(self.shards.len()) + self.charged_bytes(),
            evicted_idle: self.evicted_idle.load(Ordering::Relaxed),
            evicted_forced: self.evicted_forced.load(Ordering::Relaxed),
            evicted_throttled: self.evicted_throttled.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests;
