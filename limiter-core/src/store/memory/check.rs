//! Deciding a key: the found-key path under a shard's read lock, and a new key's
//! insertion under its write lock (making room first, see [`capacity`](super::capacity)).

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use super::entry::Entry;
use super::shard::Shard;
use super::{GROWTH_SWEEP_INTERVAL, HeapSize, MemoryStore, PerKey};
use crate::algorithm::{Algorithm, Shared};
use crate::clock::Nanos;
use crate::decision::Decision;
use crate::error::{Error, Result};

/// Deciding a request: what only an [`Algorithm`] can do.
impl<K, A> MemoryStore<K, A>
where
    K: Hash + Eq + HeapSize,
    A: Algorithm,
{
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
}

/// A key's shared state, found or inserted, for callers that run their own steps.
impl<K, A> MemoryStore<K, A>
where
    K: Hash + Eq + HeapSize,
    A: PerKey,
{
    #[inline]
    fn shard(&self, hash: u64) -> &Shard<K, A::Shared> {
        // hashbrown indexes with the low bits and tags with the top seven: use others.
        // Shift and mask are kept ready (one shard: mask 0), so this is two
        // instructions, with no branch on the shard count.
        &self.shards[(hash >> self.shard_shift) as usize & self.shard_mask]
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
        let entry = Entry::new(owned, self.algorithm.fresh_shared(), now);
        keys.table
            .insert_unique(hash, entry, |e| hasher.hash_one(&e.key));
        Ok(())
    }
}
