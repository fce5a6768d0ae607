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

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crossbeam_utils::sync::ShardedLock;

use hashbrown::HashTable;

use crate::algorithm::{Algorithm, Shared};
use crate::clock::Nanos;
use crate::decision::Decision;
use crate::error::{Error, Result};

pub mod capacity;
mod heap;

pub use capacity::{AtCapacity, Capacity, UnknownAtCapacity, bytes_per_key};
pub use heap::{HeapSize, StoreStats};

/// One key: its state and when it was last used.
pub(crate) struct Entry<K, S> {
    key: K,
    state: S,
    /// The [`tick`] of its last check.
    used: AtomicU32,
}

impl<K, S> Entry<K, S> {
    fn new(key: K, state: S, now: Nanos) -> Self {
        Self {
            key,
            state,
            used: AtomicU32::new(tick(now)),
        }
    }

    /// Marks the key used at `now`: a write only when the tick changed.
    #[inline]
    fn touch(&self, now: Nanos) {
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
fn tick(now: Nanos) -> u32 {
    (now >> 30) as u32
}

/// One shard's keys and what they are charged against the byte budget.
pub(crate) struct Keys<K, S> {
    table: HashTable<Entry<K, S>>,
    bytes: usize,
}

/// One shard, aligned to its own cache lines so that a write to one shard's table
/// header (on insert) does not disturb readers of its neighbours.
#[repr(align(128))]
struct Shard<K, S> {
    keys: ShardedLock<Keys<K, S>>,
    /// When idle keys were last swept to spare the table a growth (written under the
    /// write lock).
    swept_before_growth: AtomicU64,
}

/// Heap bytes of one `ShardedLock`'s per-thread locks: eight, each padded to 128
/// bytes (crossbeam-utils 0.8 on x86-64 and aarch64).
const LOCK_SLOTS_BYTES: usize = 8 * 128;

/// Bytes of `shards` empty shards: the shard array and each shard's lock slots.
const fn fixed_bytes<K, A: Algorithm>(shards: usize) -> usize {
    shards * (std::mem::size_of::<Shard<K, A::Shared>>() + LOCK_SLOTS_BYTES)
}

/// Per-key state of one algorithm and policy, with a cap on the number of keys.
pub struct MemoryStore<K, A: Algorithm> {
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

impl<K, A: Algorithm + std::fmt::Debug> std::fmt::Debug for MemoryStore<K, A> {
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
    A: Algorithm,
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
            shards: (0..shards)
                .map(|_| Shard {
                    keys: ShardedLock::new(Keys {
                        table: HashTable::new(),
                        bytes: 0,
                    }),
                    swept_before_growth: AtomicU64::new(0),
                })
                .collect(),
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

    #[inline]
    fn shard(&self, hash: u64) -> &Shard<K, A::Shared> {
        // hashbrown indexes with the low bits and tags with the top seven: use others.
        // Shift and mask are kept ready (one shard: mask 0), so this is two
        // instructions, with no branch on the shard count.
        &self.shards[(hash >> self.shard_shift) as usize & self.shard_mask]
    }

    /// Decides one request of `cost` units for `key` at `now`.
    ///
    /// Always inlined (the new-key path is out of line): left to the optimiser, it was
    /// inlined or not from one build to the next as unrelated code changed, and a
    /// string-keyed GCRA check then paid two calls (callgrind: 296 → 319 instructions).
    #[inline(always)]
    pub fn check<Q>(&self, key: &Q, now: Nanos, cost: u64) -> Result<Decision>
    where
        K: Borrow<Q> + From<Q::Owned>,
        Q: Hash + Eq + ToOwned + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash);
        {
            let keys = shard.keys.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = keys.table.find(hash, |e| e.key.borrow() == key) {
                entry.touch(now);
                return self.algorithm.check(&entry.state, now, cost);
            }
        }
        self.check_new(shard, hash, key, now, cost)
    }

    /// Settles a request of `key` admitted having reserved `reserved` units whose cost
    /// turned out `actual` ([`Algorithm::settle`]), atomically with every concurrent
    /// check and settle of the key. A key forgotten meanwhile (it was idle: full) is
    /// settled from a full allowance. Errors for an algorithm that cannot settle, and
    /// when a full store refuses the key ([`AtCapacity::Deny`]).
    pub fn settle<Q>(&self, key: &Q, now: Nanos, reserved: u64, actual: u64) -> Result<Decision>
    where
        K: Borrow<Q> + From<Q::Owned>,
        Q: Hash + Eq + ToOwned + ?Sized,
    {
        if !A::SETTLES {
            return Err(Error::settle_unsupported(A::NAME));
        }
        let algorithm = &self.algorithm;
        self.with_state(key, now, |state| {
            state.apply(|s| algorithm.settle(s, now, reserved, actual))
        })?
    }

    /// Runs `f` on `key`'s shared state under its shard's read lock, inserting a fresh
    /// state first if the key is not held (counted against the capacity like any other
    /// key, and swept once idle). For callers that decide several keys together: the
    /// multi-limit module locks each key's state in a fixed order and runs the steps
    /// itself ([`crate::limits`]). Errors only when a new key is refused by a full store
    /// ([`AtCapacity::Deny`]).
    pub fn with_state<Q, R>(
        &self,
        key: &Q,
        now: Nanos,
        f: impl FnOnce(&A::Shared) -> R,
    ) -> Result<R>
    where
        K: Borrow<Q> + From<Q::Owned>,
        Q: Hash + Eq + ToOwned + ?Sized,
    {
        self.with_state_hashed(self.hasher.hash_one(key), key, now, f)
    }

    /// [`with_state`](Self::with_state) for a `key` whose `hash` the caller computed
    /// with this store's hasher (see [`with_hasher`](Self::with_hasher)).
    #[inline]
    pub(crate) fn with_state_hashed<Q, R>(
        &self,
        hash: u64,
        key: &Q,
        now: Nanos,
        f: impl FnOnce(&A::Shared) -> R,
    ) -> Result<R>
    where
        K: Borrow<Q> + From<Q::Owned>,
        Q: Hash + Eq + ToOwned + ?Sized,
    {
        debug_assert_eq!(hash, self.hasher.hash_one(key), "hashed by another hasher");
        let shard = self.shard(hash);
        loop {
            {
                let keys = shard.keys.read().unwrap_or_else(PoisonError::into_inner);
                if let Some(entry) = keys.table.find(hash, |e| e.key.borrow() == key) {
                    entry.touch(now);
                    return Ok(f(&entry.state));
                }
            }
            self.insert_fresh(shard, hash, key, now)?;
            // Back to the read lock: `f` may hold the state while it locks other keys,
            // and must not keep this shard's writers out meanwhile. A sweep between
            // the two locks (the fresh state is idle) just sends us round again.
        }
    }

    /// Inserts a fresh state for `key` (hashed `hash`) unless another thread did,
    /// making room first; errors when a full store refuses it. Out of line: the
    /// found-key path of [`with_state_hashed`](Self::with_state_hashed) stays small.
    #[inline(never)]
    fn insert_fresh<Q>(
        &self,
        shard: &Shard<K, A::Shared>,
        hash: u64,
        key: &Q,
        now: Nanos,
    ) -> Result<()>
    where
        K: Borrow<Q> + From<Q::Owned>,
        Q: Hash + Eq + ToOwned + ?Sized,
    {
        let mut keys = shard.keys.write().unwrap_or_else(PoisonError::into_inner);
        if keys.table.find(hash, |e| e.key.borrow() == key).is_some() {
            return Ok(());
        }
        let owned = K::from(key.to_owned());
        let charge = self.charge(&owned);
        if !self.make_room(&mut keys, now, charge) {
            return Err(Error::at_capacity(self.max_keys()));
        }
        keys.bytes += charge;
        let hasher = &self.hasher;
        let entry = Entry::new(owned, self.algorithm.new_shared(), now);
        keys.table
            .insert_unique(hash, entry, |e| hasher.hash_one(&e.key));
        Ok(())
    }

    /// [`check`](Self::check) for a key not held (never seen, or forgotten): decides on
    /// a fresh state and keeps it if it changed, making room first.
    fn check_new<Q>(
        &self,
        shard: &Shard<K, A::Shared>,
        hash: u64,
        key: &Q,
        now: Nanos,
        cost: u64,
    ) -> Result<Decision>
    where
        K: Borrow<Q> + From<Q::Owned>,
        Q: Hash + Eq + ToOwned + ?Sized,
    {
        let state = self.algorithm.new_shared();
        let decision = self.algorithm.check(&state, now, cost)?;
        if !decision.allowed || cost == 0 {
            return Ok(decision);
        }
        let mut keys = shard.keys.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = keys.table.find(hash, |e| e.key.borrow() == key) {
            // Another thread inserted it meanwhile: decide against its state instead.
            return self.algorithm.check(&existing.state, now, cost);
        }
        let key = K::from(key.to_owned());
        let charge = self.charge(&key);
        if keys.table.len() == keys.table.capacity()
            && keys.table.len() < self.max_per_shard
            && now.saturating_sub(shard.swept_before_growth.load(Ordering::Relaxed))
                >= GROWTH_SWEEP_INTERVAL
        {
            // About to grow: forget idle keys first, but not again within the interval.
            // Keys back to full a moment after each request (a generous limit, a steady
            // client) are idle at almost any instant while still in use; sweeping them
            // at every growth kept the table from ever growing, and sent each of their
            // requests down this insert path.
            shard.swept_before_growth.store(now, Ordering::Relaxed);
            self.forget_idle(&mut keys, now);
        }
        if !self.make_room(&mut keys, now, charge) {
            return Err(Error::at_capacity(self.max_keys()));
        }
        keys.bytes += charge;
        let hasher = &self.hasher;
        let entry = Entry::new(key, state, now);
        keys.table
            .insert_unique(hash, entry, |e| hasher.hash_one(&e.key));
        Ok(decision)
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
                .map(|e| e.key.heap_bytes() + e.state.read(|s| self.algorithm.heap_bytes(s)))
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
