//! The store's bounds — keys and bytes — and what it gives up, in which order, when a
//! new key finds them reached.
//!
//! The order: keys back to a full allowance (idle: forgetting them changes no future
//! decision), then keys in use, least recently used first; a key that is throttled now
//! is never forgotten for a newcomer, unless the store is told to
//! ([`AtCapacity::EvictOldest`]) once nothing else is left. Otherwise the newcomer is
//! refused ([`AtCapacity::Deny`]): a flood of fresh identities cannot buy a throttled
//! client a new allowance.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::Ordering;

use hashbrown::HashTable;

use super::PerKey;
use super::{Entry, HeapSize, Keys, MemoryStore, tick};
use crate::algorithm::{Algorithm, Visit};
use crate::clock::Nanos;
use crate::error::{Error, Result};
use crate::limiter::Policy;

/// What a full store does with a new key when every key it holds is throttled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AtCapacity {
    /// Refuse the new key ([`Error::is_at_capacity`]; the gateway answers `503`): the
    /// throttled keys stay throttled.
    Deny,
    /// Forget the least recently used keys, throttled or not: memory stays bounded and
    /// new keys are served, at the price of those keys starting over.
    #[default]
    EvictOldest,
}

impl AtCapacity {
    /// The name used in configs: `deny` or `evict-oldest`.
    pub const fn name(self) -> &'static str {
        match self {
            AtCapacity::Deny => "deny",
            AtCapacity::EvictOldest => "evict-oldest",
        }
    }
}

impl fmt::Display for AtCapacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An `at_capacity` name that is neither `deny` nor `evict-oldest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown at_capacity rule {0:?} (expected deny or evict-oldest)")]
pub struct UnknownAtCapacity(pub String);

impl FromStr for AtCapacity {
    type Err = UnknownAtCapacity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "deny" => Ok(AtCapacity::Deny),
            "evict-oldest" => Ok(AtCapacity::EvictOldest),
            _ => Err(UnknownAtCapacity(s.to_owned())),
        }
    }
}

/// A memory store's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// The most keys held at once.
    pub max_keys: usize,
    /// The most bytes held at once: the shards' fixed parts (about 1 KB each) and, for
    /// each key, its table slot, its key's heap text and the most its state can ever
    /// own (a sliding log's full log); `None` for no byte budget.
    pub max_bytes: Option<usize>,
    /// What a new key gets when the store is full of throttled keys.
    pub at_capacity: AtCapacity,
}

impl Default for Capacity {
    fn default() -> Self {
        Self::keys(super::DEFAULT_MAX_KEYS)
    }
}

impl Capacity {
    /// At most `max_keys` keys, no byte budget, [`AtCapacity::EvictOldest`].
    pub const fn keys(max_keys: usize) -> Self {
        Self {
            max_keys,
            max_bytes: None,
            at_capacity: AtCapacity::EvictOldest,
        }
    }
}

impl Capacity {
    /// Checks that the byte budget holds one key of `policy` (keyed by text, as
    /// [`RateLimiter`](crate::RateLimiter) keys are): a config check, before any store is
    /// built. The error says how many bytes one key needs.
    pub fn admits(&self, policy: &Policy) -> Result<()> {
        struct OneKey<'a>(&'a Policy, &'a Capacity);
        impl Visit for OneKey<'_> {
            type Output = Result<()>;
            fn visit<A: Algorithm>(self) -> Result<()> {
                MemoryStore::<Box<str>, A>::validate(&A::from_policy(self.0), self.1)
            }
        }
        policy.kind.visit(OneKey(policy, self))
    }
}

/// The most bytes one key of `algorithm` can hold apart from its key's own heap text:
/// its table slot (with the hash table's spare room) and the largest state it can grow
/// to. A byte budget below this cannot hold a single key.
pub fn bytes_per_key<K, A: PerKey>(algorithm: &A) -> usize {
    slot_bytes::<K, A>() + algorithm.max_heap_bytes_of()
}

/// A table slot's bytes: the entry and its control byte, times 16/7 — a table just
/// grown holds at most 7/16 of its slots (it doubles when 7/8 full).
const fn slot_bytes<K, A: PerKey>() -> usize {
    (std::mem::size_of::<Entry<K, A::Shared>>() + 1) * 16 / 7 + 1
}

impl<K, A> MemoryStore<K, A>
where
    K: std::hash::Hash + Eq + HeapSize,
    A: PerKey,
{
    /// Checks `capacity` against what one key of `algorithm` needs.
    pub(super) fn validate(algorithm: &A, capacity: &Capacity) -> Result<()> {
        if let Some(max) = capacity.max_bytes {
            let one = bytes_per_key::<K, A>(algorithm) + super::fixed_bytes::<K, A>(1);
            if one > max {
                return Err(Error::invalid_capacity(one, max));
            }
        }
        Ok(())
    }

    /// What `entry` is charged against the byte budget.
    pub(super) fn charge(&self, key: &K) -> usize {
        self.key_bytes + key.heap_bytes()
    }

    /// True when a key charged `charge` fits in `keys`.
    fn fits(&self, keys: &Keys<K, A::Shared>, charge: usize) -> bool {
        keys.table.len() < self.max_per_shard && keys.bytes + charge <= self.bytes_per_shard
    }

    /// Makes room for a key charged `charge` in a shard, in the module's order; false
    /// when the key must be refused ([`AtCapacity::Deny`] and nothing may go).
    pub(super) fn make_room(
        &self,
        keys: &mut Keys<K, A::Shared>,
        now: Nanos,
        charge: usize,
    ) -> bool {
        if self.fits(keys, charge) {
            return true;
        }
        self.forget_idle(keys, now);
        while !self.fits(keys, charge) {
            // An eighth of the shard at a time, so a full shard pays this walk once per
            // many inserts, not at each.
            let batch = (keys.table.len() / 8).max(1);
            let forced = self.forget_least_recent(keys, now, batch, false);
            if forced > 0 {
                self.evicted_forced
                    .fetch_add(forced as u64, Ordering::Relaxed);
                continue;
            }
            if self.capacity.at_capacity == AtCapacity::Deny || keys.table.is_empty() {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            let gone = self.forget_least_recent(keys, now, batch, true);
            self.evicted_throttled
                .fetch_add(gone as u64, Ordering::Relaxed);
        }
        true
    }

    /// Forgets the keys of a shard that are idle at `at`; how many.
    pub(super) fn forget_idle(&self, keys: &mut Keys<K, A::Shared>, at: Nanos) -> usize {
        let before = keys.table.len();
        let mut freed = 0;
        keys.table.retain(|e| {
            let idle = self.algorithm.idle(&e.state, at);
            if idle {
                freed += self.charge(&e.key);
            }
            !idle
        });
        keys.bytes -= freed;
        let idle = before - keys.table.len();
        self.evicted_idle.fetch_add(idle as u64, Ordering::Relaxed);
        idle
    }

    /// Forgets up to `n` of the least recently used keys (throttled ones too when
    /// `throttled_too`); how many went.
    fn forget_least_recent(
        &self,
        keys: &mut Keys<K, A::Shared>,
        now: Nanos,
        n: usize,
        throttled_too: bool,
    ) -> usize {
        let now_tick = tick(now);
        let age = |e: &Entry<K, A::Shared>| now_tick.wrapping_sub(e.used.load(Ordering::Relaxed));
        let may_go =
            |e: &Entry<K, A::Shared>| throttled_too || !self.algorithm.throttled(&e.state, now);
        let mut ages: Vec<u32> = keys.table.iter().filter(|e| may_go(e)).map(age).collect();
        if ages.is_empty() {
            return 0;
        }
        let n = n.min(ages.len());
        let cut = ages.len() - n;
        let (_, &mut threshold, _) = ages.select_nth_unstable(cut);
        let (mut left, mut freed) = (n, 0);
        keys.table.retain(|e| {
            let go = left > 0 && age(e) >= threshold && may_go(e);
            if go {
                left -= 1;
                freed += self.charge(&e.key);
            }
            !go
        });
        keys.bytes -= freed;
        n - left
    }
}

/// Rebuilds a table's hashes after shrinking (the hasher is the store's).
pub(super) fn shrink<K, S>(table: &mut HashTable<Entry<K, S>>, hash: impl Fn(&K) -> u64) {
    if table.len() < table.capacity() / 4 {
        table.shrink_to_fit(|e| hash(&e.key));
    }
}
