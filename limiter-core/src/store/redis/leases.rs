//! One limiter's per-key [`KeyLease`]s in this process (leases in hand, local denials),
//! sharded behind small locks and bounded in size.
//!
//! A key's entry lives while it holds something (units, an ask in flight, a local
//! denial); idle entries are dropped when their shard fills. A key that finds its shard
//! full of busy entries is decided without one: one store call for its own cost, as in
//! exact mode, so the table's size never changes a decision's correctness.

use std::hash::BuildHasher;
use std::sync::Mutex;

use hashbrown::HashMap;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use crate::clock::Nanos;
use crate::decision::Decision;
use crate::store::lease::{self, Ask, Grant, KeyLease, Local, Tally};
use crate::store::mode::StoreMode;

const SHARDS: usize = 64;

type Shard = HashMap<Box<str>, KeyLease, foldhash::fast::RandomState>;

/// The per-key lease states of one limiter.
pub(super) struct LeaseTable {
    shards: Box<[Mutex<Shard>]>,
    /// Per shard: woken when an answer for one of its keys lands (requests waiting for
    /// a lease in flight decide again).
    landed: Box<[Notify]>,
    hasher: foldhash::fast::RandomState,
    per_shard: usize,
}

/// True when `shard` has room for one more entry, after dropping idle ones if full.
fn make_room(shard: &mut Shard, per_shard: usize, now: Nanos) -> bool {
    if shard.len() >= per_shard {
        shard.retain(|_, e| !e.is_idle(now));
    }
    shard.len() < per_shard
}

impl LeaseTable {
    /// A table holding at most about `max_keys` keys.
    pub(super) fn new(max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            landed: (0..SHARDS).map(|_| Notify::new()).collect(),
            hasher: foldhash::fast::RandomState::default(),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    fn index(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) >> 7) as usize % SHARDS
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, Shard> {
        // A panic while holding a shard leaves plain data behind: keep using it.
        self.shards[self.index(key)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// A future that completes when an answer for `key`'s shard lands: made before
    /// [`decide`](Self::decide), so a [`Local::Wait`] never misses its wake-up.
    pub(super) fn landed(&self, key: &str) -> Notified<'_> {
        self.landed[self.index(key)].notified()
    }

    fn wake(&self, key: &str) {
        self.landed[self.index(key)].notify_waiters();
    }

    /// Decides `key` alone if its entry can (see [`KeyLease::decide`]).
    pub(super) fn decide(
        &self,
        mode: &StoreMode,
        key: &str,
        now: Nanos,
        cost: u64,
        capacity: u64,
        tally: &mut Tally,
    ) -> Local {
        let mut shard = self.shard(key);
        if let Some(entry) = shard.get_mut(key) {
            return entry.decide(mode, now, cost, capacity, tally);
        }
        // Exact mode keeps entries only for local denials (made in `granted`).
        if !lease::tracks_new_keys(mode) || !make_room(&mut shard, self.per_shard, now) {
            return Local::Ask(lease::untracked_ask(cost));
        }
        let mut entry = KeyLease::new();
        let local = entry.decide(mode, now, cost, capacity, tally);
        shard.insert(key.into(), entry);
        local
    }

    /// Applies the store's answer to `key`'s ask (see [`KeyLease::granted`]).
    pub(super) fn granted(
        &self,
        mode: &StoreMode,
        key: &str,
        now: Nanos,
        ask: Ask,
        cost: u64,
        grant: Grant,
    ) -> Decision {
        let decision = self.apply(mode, key, now, ask, cost, grant);
        self.wake(key);
        decision
    }

    fn apply(
        &self,
        mode: &StoreMode,
        key: &str,
        now: Nanos,
        ask: Ask,
        cost: u64,
        grant: Grant,
    ) -> Decision {
        let mut shard = self.shard(key);
        if let Some(entry) = shard.get_mut(key) {
            return entry.granted(mode, now, ask, cost, grant);
        }
        // An untracked key asked for its cost alone (an entry with an ask in flight is
        // never idle, so never dropped): keep an entry only to remember a denial.
        if !lease::remembers(&grant) || !make_room(&mut shard, self.per_shard, now) {
            return grant.store;
        }
        let mut entry = KeyLease::new();
        let decision = entry.granted(mode, now, ask, cost, grant);
        shard.insert(key.into(), entry);
        decision
    }

    /// Ends `key`'s local denial (see [`KeyLease::end_denial`]).
    pub(super) fn end_denial(&self, key: &str) {
        if let Some(entry) = self.shard(key).get_mut(key) {
            entry.end_denial();
        }
    }

    /// Forgets `key`'s unanswered ask.
    pub(super) fn failed(&self, key: &str, ask: Ask) {
        if let Some(entry) = self.shard(key).get_mut(key) {
            entry.failed(ask);
        }
        self.wake(key);
    }
}
