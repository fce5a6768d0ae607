//! In-flight (concurrency) limits: at most `limit` requests of one key at once, each
//! holding a slot from its admission until its [`Permit`] is dropped.
//!
//! An in-flight limit is one [`Limit`](super::Limit) of a [`LimitSet`](super::LimitSet),
//! so it composes with rate limits all-or-nothing: a request takes its slot only if
//! every limit admits it, and a refused request takes none.
//!
//! - **In memory** each key's count sits behind a small lock, held through the set's
//!   two-phase decision like a rate limit's state; the permit holds the key's slot
//!   itself (an `Arc`), so a release always reaches the count it took from — even if
//!   the key was swept meanwhile (a key with slots held is never swept).
//! - **On Redis** a key is a sorted set of leases: member = a unique request id, score =
//!   the lease's expiry. Admission (inside the set's one script) trims the expired
//!   leases and admits when fewer than `limit` remain; the permit's task renews its
//!   leases every third of [`InFlight::lease_ttl`] while the request runs and removes
//!   them when it ends. A gateway that crashes renews nothing: its slots come back at
//!   most `lease_ttl` later. Each lease's request is still running when renewed, so a
//!   long response never loses its slot.
//!
//! The decision's `remaining` is the slots left after this request; a refusal's
//! `retry_after` is [`RETRY_AFTER`]: a slot frees whenever any request of the key ends,
//! which no clock predicts, so the client is told the shortest wait a `Retry-After`
//! can say.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::decision::Decision;
use crate::error::{Error, Result};

/// What a refusal by an in-flight limit tells the client to wait.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The lease TTL when none is given: a crashed instance's slots come back within it.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

/// The shortest lease TTL (renewals run every third of it).
pub const MIN_LEASE_TTL: Duration = Duration::from_millis(100);

/// An in-flight limit: at most `limit` requests of one key at once; on Redis each slot
/// is a lease that expires `lease_ttl` after its last renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InFlight {
    limit: u64,
    lease_ttl: Duration,
}

impl InFlight {
    /// At most `limit` (≥ 1) requests at once per key, leases of [`DEFAULT_LEASE_TTL`].
    pub fn new(limit: u64) -> Result<Self> {
        if limit == 0 {
            return Err(Error::invalid_quota(
                "an in-flight limit admits at least one request",
            ));
        }
        Ok(Self {
            limit,
            lease_ttl: DEFAULT_LEASE_TTL,
        })
    }

    /// The same limit with leases of `ttl` (at least [`MIN_LEASE_TTL`]).
    pub fn with_lease_ttl(self, ttl: Duration) -> Result<Self> {
        if ttl < MIN_LEASE_TTL {
            return Err(Error::invalid_quota("lease_ttl is at least 100ms"));
        }
        Ok(Self {
            lease_ttl: ttl,
            ..self
        })
    }

    /// Requests admitted at once per key.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// How long a lease outlives its last renewal on a shared store.
    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl
    }

    /// The decision for a key holding `held` slots (before this request).
    pub(crate) fn decision(&self, held: u64) -> Decision {
        if held < self.limit {
            Decision::allow(self.limit, self.limit - held - 1, Duration::ZERO)
        } else {
            Decision::deny(self.limit, 0, Duration::ZERO, RETRY_AFTER)
        }
    }
}

/// One key's slots in memory: how many requests hold one.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    held: Mutex<u64>,
}

impl Slot {
    /// Gives one slot back.
    pub(crate) fn release(&self) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        *held = held.saturating_sub(1);
    }

    /// Slots held now.
    pub(crate) fn held(&self) -> u64 {
        *self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

const SHARDS: usize = 16;

type Shard = Mutex<HashMap<Box<str>, Arc<Slot>, foldhash::fast::RandomState>>;

/// An in-flight limit's keys in memory, sharded; at most `max_keys` keys.
#[derive(Debug)]
pub(crate) struct Slots {
    limit: InFlight,
    shards: Box<[Shard]>,
    hasher: foldhash::fast::RandomState,
    per_shard: usize,
    max_keys: usize,
}

impl Slots {
    pub(crate) fn new(limit: InFlight, max_keys: usize) -> Self {
        Self {
            limit,
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            hasher: foldhash::fast::RandomState::default(),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
            max_keys,
        }
    }

    fn shard(&self, key: &str) -> &Shard {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// The slot of `key`, inserted if new; a full shard first forgets its idle keys,
    /// then refuses a new key ([`Error::is_at_capacity`]).
    fn slot(&self, key: &str) -> Result<Arc<Slot>> {
        let mut shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = shard.get(key) {
            return Ok(Arc::clone(slot));
        }
        if shard.len() >= self.per_shard {
            shard.retain(|_, s| !is_idle(s));
            if shard.len() >= self.per_shard {
                return Err(Error::at_capacity(self.max_keys));
            }
        }
        let slot = Arc::new(Slot::default());
        shard.insert(key.into(), Arc::clone(&slot));
        Ok(slot)
    }

    /// Decides `key` at one level of the set's lock order (see `memory::hold`): locks
    /// its count, lets `rest` decide the higher levels, and takes a slot only if every
    /// limit admitted; returns the decision, whether all admitted, and the slot taken.
    pub(crate) fn hold(
        &self,
        key: &str,
        rest: &mut dyn FnMut(bool) -> Result<bool>,
    ) -> Result<(Decision, bool, Option<Arc<Slot>>)> {
        let slot = self.slot(key)?;
        let mut held = slot.held.lock().unwrap_or_else(PoisonError::into_inner);
        let decision = self.limit.decision(*held);
        let all = rest(decision.allowed)?;
        if !all {
            return Ok((decision, false, None));
        }
        *held += 1;
        drop(held);
        Ok((decision, true, Some(slot)))
    }

    /// Forgets keys no request holds a slot of; returns how many.
    pub(crate) fn sweep(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let mut shard = s.lock().unwrap_or_else(PoisonError::into_inner);
                let before = shard.len();
                shard.retain(|_, slot| !is_idle(slot));
                before - shard.len()
            })
            .sum()
    }

    /// Keys held now.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Slots held now by `key` (0 for an unknown key).
    pub(crate) fn held(&self, key: &str) -> u64 {
        let shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        shard.get(key).map_or(0, |s| s.held())
    }
}

/// Idle: no request holds a slot, and no permit or decision holds the `Arc` (checked
/// under the shard's lock, where every new holder clones it).
fn is_idle(slot: &Arc<Slot>) -> bool {
    Arc::strong_count(slot) == 1 && slot.held() == 0
}

/// The slots one admitted request holds in its in-flight limits, released when it is
/// dropped (empty for a set without in-flight limits, or a refused request).
///
/// Keep it for as long as the request runs — in an HTTP server, until the response
/// body ends or the client goes away (the tower layer's
/// [`ResponseGuard`](crate::tower::ResponseGuard) does this for the ratelab gateway).
#[must_use = "dropping the permit releases its slots at once"]
#[derive(Debug, Default)]
pub struct Permit {
    memory: Vec<Arc<Slot>>,
    #[cfg(feature = "redis")]
    redis: Option<super::redis_leases::Leases>,
}

impl Permit {
    /// True when it holds no slot.
    pub fn is_empty(&self) -> bool {
        #[cfg(feature = "redis")]
        if self.redis.is_some() {
            return false;
        }
        self.memory.is_empty()
    }

    pub(crate) fn push(&mut self, slot: Arc<Slot>) {
        self.memory.push(slot);
    }

    #[cfg(feature = "redis")]
    pub(crate) fn with_leases(leases: super::redis_leases::Leases) -> Self {
        Self {
            memory: Vec::new(),
            redis: Some(leases),
        }
    }

    /// Releases its slots now and, on Redis, waits until the store has removed its
    /// leases (dropping the permit releases too, without waiting).
    pub async fn release(mut self) {
        for slot in self.memory.drain(..) {
            slot.release();
        }
        #[cfg(feature = "redis")]
        if let Some(leases) = self.redis.take() {
            leases.release().await;
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        for slot in self.memory.drain(..) {
            slot.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_in_flight_limit_needs_a_slot_and_a_real_ttl() {
        assert!(InFlight::new(0).is_err());
        let one = InFlight::new(1).unwrap();
        assert_eq!(one.lease_ttl(), DEFAULT_LEASE_TTL);
        assert!(one.with_lease_ttl(Duration::from_millis(10)).is_err());
        assert!(one.decision(0).allowed && !one.decision(1).allowed);
        assert_eq!(one.decision(1).retry_after, RETRY_AFTER);
    }

    #[test]
    fn a_full_store_forgets_idle_keys_before_refusing_a_new_one() {
        let slots = Slots::new(InFlight::new(2).unwrap(), SHARDS);
        let mut kept = Vec::new();
        let mut refused = 0;
        for i in 0..200 {
            match slots.hold(&format!("k{i}"), &mut |ok| Ok(ok)) {
                Ok((_, true, Some(slot))) => kept.push(slot),
                Err(e) if e.is_at_capacity() => refused += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(refused > 0, "a shard holds one busy key");
        assert!(slots.len() <= SHARDS);
        for slot in kept.drain(..) {
            slot.release();
        }
        // Every key idle again: a new key evicts them.
        assert!(slots.hold("new", &mut |ok| Ok(ok)).is_ok());
    }
}
