//! The in-memory side of several limits: each limit's keys in its own
//! [`MemoryStore`], every key's state behind a lock (whatever form the algorithm uses
//! alone), and the two-phase decision over them.

use std::hash::BuildHasher;
use std::sync::{Mutex, OnceLock, PoisonError};

use super::in_flight::Permit;
use super::{LimitSet, Memory};
use crate::algorithm::{self, Algorithm, Envelope, Kind, Param, Reference, registry};
use crate::clock::Nanos;
use crate::decision::Decision;
use crate::error::Result;
use crate::limiter::Policy;
use crate::quota::Quota;
use crate::store::memory::{MemoryStore, StoreStats};

/// An algorithm whose in-memory state is always behind a lock, so a request can hold
/// several keys' states at once (a compare-and-swap word cannot be held). Everything
/// else is the algorithm's own.
#[derive(Debug, Clone)]
pub(crate) struct Exclusive<A>(A);

impl<A: Algorithm> Algorithm for Exclusive<A> {
    type State = A::State;
    type Shared = Mutex<A::State>;
    #[cfg(feature = "redis")]
    type Mirror = A::Mirror;
    const KIND: Kind = A::KIND;
    const NAME: &'static str = A::NAME;
    const REFERENCE: Reference = A::REFERENCE;
    const PARAMS: &'static [Param] = A::PARAMS;
    const GUARANTEE: &'static str = A::GUARANTEE;
    const STATE_PER_KEY: &'static str = A::STATE_PER_KEY;

    fn from_policy(policy: &Policy) -> Self {
        Exclusive(A::from_policy(policy))
    }

    fn quota(&self) -> &Quota {
        self.0.quota()
    }

    fn policy(&self) -> Policy {
        self.0.policy()
    }

    fn capacity(&self) -> u64 {
        self.0.capacity()
    }

    fn fresh(&self) -> Self::State {
        self.0.fresh()
    }

    #[inline]
    fn step(&self, state: &mut Self::State, now: Nanos, cost: u64) -> Result<Decision> {
        self.0.step(state, now, cost)
    }

    fn is_idle(&self, state: &Self::State, now: Nanos) -> bool {
        self.0.is_idle(state, now)
    }

    fn heap_bytes(&self, state: &Self::State) -> usize {
        self.0.heap_bytes(state)
    }

    fn envelope(&self) -> Envelope {
        self.0.envelope()
    }

    const SETTLES: bool = A::SETTLES;

    fn settle(
        &self,
        state: &mut Self::State,
        now: Nanos,
        reserved: u64,
        actual: u64,
    ) -> Result<Decision> {
        self.0.settle(state, now, reserved, actual)
    }
}

/// The hasher every limit's store shares (random once per process), so a request's
/// key is hashed once for all its limits instead of once per limit.
fn shared_hasher() -> &'static foldhash::fast::RandomState {
    static HASHER: OnceLock<foldhash::fast::RandomState> = OnceLock::new();
    HASHER.get_or_init(foldhash::fast::RandomState::default)
}

/// Decides `key` (hashed `hash` by [`shared_hasher`]) in one store at one level of the
/// lock order: locks its state, decides on a copy into `out`, lets `rest` decide the
/// higher levels (holding this lock; it is told whether this limit admitted), and keeps
/// the copy only if `rest` says every limit admitted. Returns whether all admitted.
#[inline]
fn hold<A: Algorithm<Shared = Mutex<<A as Algorithm>::State>>>(
    store: &MemoryStore<Box<str>, A>,
    (key, hash): (&str, u64),
    now: Nanos,
    cost: u64,
    out: &mut Decision,
    rest: &mut dyn FnMut(bool) -> Result<bool>,
) -> Result<bool> {
    store.with_state_hashed(hash, key, now, |shared| {
        let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
        let mut probe = state.clone();
        *out = store.algorithm().step(&mut probe, now, cost)?;
        let all = rest(out.allowed)?;
        if all {
            *state = probe;
        }
        Ok(all)
    })?
}

macro_rules! any_exclusive {
    ($($variant:ident: $module:ident::$ty:ident,)*) => {
        /// One limit's keyed in-memory state, its algorithm chosen at run time
        /// (generated from the registration list; static dispatch).
        pub(super) enum AnyExclusive {
            $($variant(MemoryStore<Box<str>, Exclusive<algorithm::$ty>>),)*
        }

        impl AnyExclusive {
            pub(super) fn new(policy: &Policy, max_keys: usize) -> Self {
                match policy.kind {
                    $(Kind::$variant => Self::$variant(MemoryStore::with_max_keys(
                        Exclusive::from_policy(policy),
                        max_keys,
                    ).with_hasher(shared_hasher().clone())),)*
                }
            }

            fn hold(
                &self,
                key: (&str, u64),
                now: Nanos,
                cost: u64,
                out: &mut Decision,
                rest: &mut dyn FnMut(bool) -> Result<bool>,
            ) -> Result<bool> {
                match self {
                    $(Self::$variant(s) => hold(s, key, now, cost, out, rest),)*
                }
            }

            /// Settles `key`'s reservation (see [`crate::settle`]), under its lock.
            pub(super) fn settle(&self, key: &str, now: Nanos, reserved: u64, actual: u64) -> Result<Decision> {
                match self {
                    $(Self::$variant(s) => s.settle(key, now, reserved, actual),)*
                }
            }

            pub(super) fn sweep(&self, now: Nanos) -> usize {
                match self {
                    $(Self::$variant(s) => s.sweep(now),)*
                }
            }

            pub(super) fn len(&self) -> usize {
                match self {
                    $(Self::$variant(s) => s.len(),)*
                }
            }

            pub(super) fn stats(&self) -> StoreStats {
                match self {
                    $(Self::$variant(s) => s.stats(),)*
                }
            }
        }
    };
}
registry!(any_exclusive);

/// Decides every limit of `set` for `key` at `now`, all-or-nothing, writing each limit's
/// decision into `out` (the set's order) and an admission's in-flight slots into
/// `permit` (`None`: slots taken are given back at once). Locks are taken in rank order and released in reverse, after the last
/// limit decided and every state was written or left. Returns whether every limit
/// admitted.
pub(super) fn decide_all(
    set: &LimitSet,
    key: &str,
    now: Nanos,
    cost: u64,
    out: &mut [Decision],
    permit: Option<&mut Permit>,
) -> Result<bool> {
    let ask = Ask {
        key: (key, shared_hasher().hash_one(key)),
        now,
        cost,
    };
    let all = level(set, 0, true, ask, out, permit)?;
    // Each level wrote into its own slot in lock order (no copy of a decision on the
    // way back); put them in the set's order unless the two are the same (the usual
    // case: a set's limits are created in its order).
    if !set.in_lock_order {
        let mut in_lock_order = [super::EMPTY; super::MAX_LIMITS];
        in_lock_order[..out.len()].copy_from_slice(out);
        for (&index, d) in set.lock_order.iter().zip(in_lock_order) {
            out[index] = d;
        }
    }
    Ok(all)
}

/// What every level decides: the key (and its hash), the instant and the cost.
#[derive(Clone, Copy)]
struct Ask<'a> {
    key: (&'a str, u64),
    now: Nanos,
    cost: u64,
}

/// Level `i` of the lock order, every lower level having admitted if `so_far`: decides
/// into `out[0]` (this level's slot; the rest are the higher levels') and returns whether
/// every limit admitted, which each level needs before it writes; an in-flight limit's
/// slot taken goes into `permit` (`None`: given back at once).
fn level(
    set: &LimitSet,
    i: usize,
    so_far: bool,
    ask: Ask<'_>,
    out: &mut [Decision],
    mut permit: Option<&mut Permit>,
) -> Result<bool> {
    let (Some(&index), Some((slot, higher))) = (set.lock_order.get(i), out.split_first_mut())
    else {
        return Ok(so_far);
    };
    // Every higher level decides even after a refusal: Retry-After is the longest wait
    // among all refusing limits.
    match &set.limits[index].inner.memory {
        Memory::Rate(m) => m.hold(ask.key, ask.now, ask.cost, slot, &mut |admitted| {
            level(
                set,
                i + 1,
                so_far && admitted,
                ask,
                higher,
                permit.as_deref_mut(),
            )
        }),
        Memory::InFlight(slots) => {
            let (decision, all, held) = slots.hold(ask.key.0, &mut |admitted| {
                level(
                    set,
                    i + 1,
                    so_far && admitted,
                    ask,
                    higher,
                    permit.as_deref_mut(),
                )
            })?;
            *slot = decision;
            if let Some(held) = held {
                match permit {
                    Some(permit) => permit.push(held),
                    None => held.release(),
                }
            }
            Ok(all)
        }
    }
}
