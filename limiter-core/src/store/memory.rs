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
//! Memory is bounded two ways: keys whose state is back to a full allowance carry no
//! information and are swept (before a shard's table would grow, at most once a
//! second; by [`MemoryStore::sweep`]; at the cap); and a shard never
//! holds more than its share of `max_keys`. When a full shard has nothing idle, it
//! forgets an eighth of its keys (counted as forced evictions): memory stays bounded,
//! at the price of those keys starting over with a full allowance.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};

use crossbeam_utils::sync::ShardedLock;

use hashbrown::HashTable;

use crate::algorithm::{Algorithm, Shared};
use crate::clock::Nanos;
use crate::decision::Decision;
use crate::error::Result;

/// Bytes a value owns on the heap, for memory accounting.
pub trait HeapSize {
    /// Heap bytes owned beyond `size_of::<Self>()`.
    fn heap_bytes(&self) -> usize;
}

macro_rules! no_heap {
    ($($t:ty),*) => { $(impl HeapSize for $t { fn heap_bytes(&self) -> usize { 0 } })* };
}
no_heap!(u8, u16, u32, u64, u128, usize, i32, i64);

impl HeapSize for String {
    fn heap_bytes(&self) -> usize {
        self.capacity()
    }
}

impl HeapSize for Box<str> {
    fn heap_bytes(&self) -> usize {
        self.len()
    }
}

impl HeapSize for Arc<str> {
    fn heap_bytes(&self) -> usize {
        // Two reference counts live beside the text.
        self.len() + 2 * std::mem::size_of::<usize>()
    }
}

impl HeapSize for Vec<u8> {
    fn heap_bytes(&self) -> usize {
        self.capacity()
    }
}

impl<A: HeapSize, B: HeapSize> HeapSize for (A, B) {
    fn heap_bytes(&self) -> usize {
        self.0.heap_bytes() + self.1.heap_bytes()
    }
}

/// A snapshot of a store's size and evictions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Keys held now.
    pub keys: usize,
    /// Bytes held: hash tables plus what keys and states own on the heap.
    pub bytes: usize,
    /// Idle keys forgotten so far.
    pub evicted_idle: u64,
    /// Active keys forgotten so far because a shard was full.
    pub evicted_forced: u64,
}

impl StoreStats {
    /// Average bytes per key held (0 when empty).
    pub fn bytes_per_key(&self) -> f64 {
        if self.keys == 0 {
            0.0
        } else {
            self.bytes as f64 / self.keys as f64
        }
    }
}

/// One shard, aligned to its own cache lines so that a write to one shard's table
/// header (on insert) does not disturb readers of its neighbours.
#[repr(align(128))]
struct Shard<K, S> {
    table: ShardedLock<HashTable<(K, S)>>,
    /// When idle keys were last swept to spare the table a growth (written under the
    /// write lock).
    swept_before_growth: AtomicU64,
}

/// Heap bytes of one `ShardedLock`'s per-thread locks: eight, each padded to 128
/// bytes (crossbeam-utils 0.8 on x86-64 and aarch64).
const LOCK_SLOTS_BYTES: usize = 8 * 128;

/// Per-key state of one algorithm and policy, with a cap on the number of keys.
pub struct MemoryStore<K, A: Algorithm> {
    algorithm: A,
    shards: Box<[Shard<K, A::Shared>]>,
    hasher: foldhash::fast::RandomState,
    shard_bits: u32,
    max_per_shard: usize,
    evicted_idle: AtomicU64,
    evicted_forced: AtomicU64,
}

impl<K, A: Algorithm + std::fmt::Debug> std::fmt::Debug for MemoryStore<K, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("algorithm", &self.algorithm)
            .field("shards", &self.shards.len())
            .field("max_keys", &(self.max_per_shard * self.shards.len()))
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
    A: Algorithm,
{
    /// A store for `algorithm` holding at most [`DEFAULT_MAX_KEYS`] keys.
    pub fn new(algorithm: A) -> Self {
        Self::with_max_keys(algorithm, DEFAULT_MAX_KEYS)
    }

    /// A store for `algorithm` holding at most `max_keys` keys (at least one per shard).
    pub fn with_max_keys(algorithm: A, max_keys: usize) -> Self {
        let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
        // Shards only keep writers (new keys, resizes) apart: readers never meet, each
        // has its own lock slot. Four per core, as dashmap does, with room for 64 keys
        // in each; every shard costs about 1 KB of lock slots.
        let wanted = (cpus * 4).next_power_of_two().clamp(4, 128);
        let by_size = (max_keys / 64).max(1).next_power_of_two();
        let shards = wanted.min(by_size);
        let shard_bits = shards.trailing_zeros();
        let max_per_shard = (max_keys / shards).max(1);
        Self {
            algorithm,
            shards: (0..shards)
                .map(|_| Shard {
                    table: ShardedLock::new(HashTable::new()),
                    swept_before_growth: AtomicU64::new(0),
                })
                .collect(),
            hasher: foldhash::fast::RandomState::default(),
            shard_bits,
            max_per_shard,
            evicted_idle: AtomicU64::new(0),
            evicted_forced: AtomicU64::new(0),
        }
    }

    /// The algorithm (and so the policy) this store enforces.
    pub fn algorithm(&self) -> &A {
        &self.algorithm
    }

    /// The most keys this store holds at once.
    pub fn max_keys(&self) -> usize {
        self.max_per_shard * self.shards.len()
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Shard<K, A::Shared> {
        // hashbrown indexes with the low bits and tags with the top seven: use others.
        let i = if self.shard_bits == 0 {
            0
        } else {
            (hash >> (57 - self.shard_bits)) as usize & (self.shards.len() - 1)
        };
        &self.shards[i]
    }

    /// Decides one request of `cost` units for `key` at `now`.
    #[inline]
    pub fn check<Q>(&self, key: &Q, now: Nanos, cost: u64) -> Result<Decision>
    where
        K: Borrow<Q> + From<Q::Owned>,
        Q: Hash + Eq + ToOwned + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash);
        {
            let table = shard.table.read().unwrap_or_else(PoisonError::into_inner);
            if let Some((_, state)) = table.find(hash, |(k, _)| k.borrow() == key) {
                return self.algorithm.check(state, now, cost);
            }
        }
        // A key not seen (or forgotten): decide on a fresh state, keep it if it changed.
        let state = self.algorithm.new_shared();
        let decision = self.algorithm.check(&state, now, cost)?;
        if !decision.allowed || cost == 0 {
            return Ok(decision);
        }
        let mut table = shard.table.write().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, existing)) = table.find(hash, |(k, _)| k.borrow() == key) {
            // Another thread inserted it meanwhile: decide against its state instead.
            return self.algorithm.check(existing, now, cost);
        }
        if table.len() >= self.max_per_shard {
            self.make_room(&mut table, now);
        } else if table.len() == table.capacity()
            && now.saturating_sub(shard.swept_before_growth.load(Ordering::Relaxed))
                >= GROWTH_SWEEP_INTERVAL
        {
            // About to grow: forget idle keys first, but not again within the interval.
            // Keys back to full a moment after each request (a generous limit, a steady
            // client) are idle at almost any instant while still in use; sweeping them
            // at every growth kept the table from ever growing, and sent each of their
            // requests down this insert path.
            shard.swept_before_growth.store(now, Ordering::Relaxed);
            self.forget_idle(&mut table, now);
        }
        let hasher = &self.hasher;
        table.insert_unique(hash, (K::from(key.to_owned()), state), |(k, _)| {
            hasher.hash_one(k)
        });
        Ok(decision)
    }

    /// Runs `f` on `key`'s shared state under its shard's read lock, inserting a fresh
    /// state first if the key is not held (counted against the cap like any other key,
    /// and swept once idle). For callers that decide several keys together: the
    /// multi-limit module locks each key's state in a fixed order and runs the steps
    /// itself ([`crate::limits`]).
    pub fn with_state<Q, R>(&self, key: &Q, now: Nanos, f: impl FnOnce(&A::Shared) -> R) -> R
    where
        K: Borrow<Q> + From<Q::Owned>,
        Q: Hash + Eq + ToOwned + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash);
        loop {
            {
                let table = shard.table.read().unwrap_or_else(PoisonError::into_inner);
                if let Some((_, state)) = table.find(hash, |(k, _)| k.borrow() == key) {
                    return f(state);
                }
            }
            let mut table = shard.table.write().unwrap_or_else(PoisonError::into_inner);
            if table.find(hash, |(k, _)| k.borrow() == key).is_none() {
                if table.len() >= self.max_per_shard {
                    self.make_room(&mut table, now);
                }
                let hasher = &self.hasher;
                let fresh = (K::from(key.to_owned()), self.algorithm.new_shared());
                table.insert_unique(hash, fresh, |(k, _)| hasher.hash_one(k));
            }
            // Back to the read lock: `f` may hold the state while it locks other keys,
            // and must not keep this shard's writers out meanwhile. A sweep between
            // the two locks (the fresh state is idle) just sends us round again.
        }
    }

    /// Forgets the keys of `table` that were idle at `at`; how many.
    fn forget_idle(&self, table: &mut HashTable<(K, A::Shared)>, at: Nanos) -> usize {
        let before = table.len();
        table.retain(|(_, s)| !s.read(|s| self.algorithm.is_idle(s, at)));
        let idle = before - table.len();
        self.evicted_idle.fetch_add(idle as u64, Ordering::Relaxed);
        idle
    }

    /// Frees room in a shard that is at its share of the cap.
    fn make_room(&self, table: &mut HashTable<(K, A::Shared)>, now: Nanos) {
        self.forget_idle(table, now);
        if table.len() >= self.max_per_shard {
            // Nothing idle enough: forget every eighth key, in table order.
            let mut n = 0usize;
            let before = table.len();
            table.retain(|_| {
                n += 1;
                !n.is_multiple_of(8)
            });
            let forced = before - table.len();
            self.evicted_forced
                .fetch_add(forced as u64, Ordering::Relaxed);
            if table.len() >= self.max_per_shard {
                // A tiny shard (max < 8): drop one.
                let mut dropped = false;
                table.retain(|_| std::mem::replace(&mut dropped, true));
                self.evicted_forced.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Forgets every key that is idle at `now` and returns how many were forgotten.
    /// Run it periodically where keys come and go (the gateway does, every few seconds).
    pub fn sweep(&self, now: Nanos) -> usize {
        let mut total = 0;
        for shard in self.shards.iter() {
            let mut table = shard.table.write().unwrap_or_else(PoisonError::into_inner);
            total += self.forget_idle(&mut table, now);
            if table.len() < table.capacity() / 4 {
                table.shrink_to_fit(|(k, _)| self.hasher.hash_one(k));
            }
        }
        total
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.table.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size and evictions so far. Walks every key: for reports, not the hot path.
    pub fn stats(&self) -> StoreStats {
        let mut keys = 0;
        let mut bytes = std::mem::size_of_val(&*self.shards) + self.shards.len() * LOCK_SLOTS_BYTES;
        for shard in self.shards.iter() {
            let table = shard.table.read().unwrap_or_else(PoisonError::into_inner);
            keys += table.len();
            bytes += table.allocation_size();
            bytes += table
                .iter()
                .map(|(k, s)| k.heap_bytes() + s.read(|s| self.algorithm.heap_bytes(s)))
                .sum::<usize>();
        }
        StoreStats {
            keys,
            bytes,
            evicted_idle: self.evicted_idle.load(Ordering::Relaxed),
            evicted_forced: self.evicted_forced.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quota;
    use crate::algorithm::{Gcra, SlidingLog};

    #[test]
    fn keys_are_independent() {
        let store = MemoryStore::<String, Gcra>::new(Gcra::new(Quota::per_second(1).unwrap()));
        assert!(store.check("a", 0, 1).unwrap().allowed);
        assert!(!store.check("a", 0, 1).unwrap().allowed);
        assert!(store.check("b", 0, 1).unwrap().allowed);
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn idle_keys_are_swept_and_the_cap_holds() {
        let store = MemoryStore::<u64, Gcra>::with_max_keys(
            Gcra::new(Quota::per_second(1).unwrap()),
            1_000,
        );
        for k in 0..10_000u64 {
            assert!(store.check(&k, 0, 1).unwrap().allowed);
            assert!(store.len() <= store.max_keys());
        }
        assert!(store.stats().evicted_forced > 0);
        // One second later every key is full again and may go.
        store.sweep(1_000_000_000);
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn keys_in_use_are_not_swept_at_every_growth() {
        // A generous limit: each key is back to full a microsecond after its request, so
        // idle at almost any instant while in use. Requests cycle over 1,000 keys for
        // three seconds: the tables must grow to hold them, not sweep them at every
        // growth (which made almost every request an insert: ~30,000 evictions here).
        let store = MemoryStore::<u64, Gcra>::new(Gcra::new(Quota::per_second(1_000_000).unwrap()));
        for i in 0..30_000u64 {
            assert!(store.check(&(i % 1_000), i * 100_000, 1).unwrap().allowed);
        }
        assert!(store.stats().evicted_idle < 2_000, "{:?}", store.stats());
        assert_eq!(store.len(), 1_000);
        // Later, idle keys still make room before a table grows.
        let later = 30_000 * 100_000 + 1_000_000_000;
        for k in 1_000..3_000u64 {
            assert!(store.check(&k, later, 1).unwrap().allowed);
        }
        assert!(store.len() < 3_000);
    }

    #[test]
    fn denials_of_new_keys_store_nothing() {
        let store =
            MemoryStore::<u64, SlidingLog>::new(SlidingLog::new(Quota::per_second(1).unwrap()));
        assert!(store.check(&1, 0, 2).is_err());
        assert!(store.check(&1, 0, 0).unwrap().allowed);
        assert!(store.is_empty());
    }
}
