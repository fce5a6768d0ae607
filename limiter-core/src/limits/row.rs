//! A table of rows: several rate limits' states for one key side by side in one entry of
//! one [`MemoryStore`], behind one lock, so a request finds all of them with one lookup
//! and holds all of them with one lock.
//!
//! Which limits share a table is decided once, when a limit is first placed (see
//! [`place_together`](super::limit::place_together)): the limits of one set that no other
//! set placed before. A limit shared between sets (a global one) keeps the table it was
//! placed in; a set whose limits live in several tables locks them in the tables' rank
//! order. A row's slot nobody decides any more (a limit dropped by a reload while
//! others of its table were kept) is only carried: it goes idle, and the row is
//! forgotten once every slot is idle.

use std::sync::{Mutex, OnceLock, PoisonError};

use smallvec::SmallVec;

use crate::algorithm::{self, Algorithm, Kind, registry};
use crate::clock::Nanos;
use crate::decision::Decision;
use crate::error::Result;
use crate::limiter::Policy;
use crate::store::memory::{MemoryStore, PerKey, StoreStats};

/// One key's row: its limits' states in the table's slot order (two inline; more on
/// the heap).
pub(super) type RowState = SmallVec<[RateState; INLINE]>;

/// Slots a row holds inline.
const INLINE: usize = 2;

macro_rules! any_rate {
    ($($variant:ident: $module:ident::$ty:ident,)*) => {
        /// One slot's algorithm, chosen at run time (generated from the registration
        /// list; static dispatch).
        #[derive(Debug, Clone)]
        pub(super) enum Rate {
            $($variant(algorithm::$ty),)*
        }

        /// One slot's plain state, of its slot's algorithm.
        #[derive(Debug, Clone)]
        pub(super) enum RateState {
            $($variant(<algorithm::$ty as Algorithm>::State),)*
        }

        impl Rate {
            pub(super) fn new(policy: &Policy) -> Self {
                match policy.kind {
                    $(Kind::$variant => Self::$variant(algorithm::$ty::from_policy(policy)),)*
                }
            }

            fn fresh(&self) -> RateState {
                match self {
                    $(Self::$variant(a) => RateState::$variant(a.fresh()),)*
                }
            }

            /// Decides one request on `state`, changing it only when admitted.
            #[inline]
            pub(super) fn step(&self, state: &mut RateState, now: Nanos, cost: u64) -> Result<Decision> {
                match (self, state) {
                    $((Self::$variant(a), RateState::$variant(s)) => a.step(s, now, cost),)*
                    _ => unreachable!("a slot's state is built by the slot's own algorithm"),
                }
            }

            /// Settles a reservation on `state` ([`Algorithm::settle`]).
            pub(super) fn settle(&self, state: &mut RateState, now: Nanos, reserved: u64, actual: u64) -> Result<Decision> {
                match (self, state) {
                    $((Self::$variant(a), RateState::$variant(s)) => a.settle(s, now, reserved, actual),)*
                    _ => unreachable!("a slot's state is built by the slot's own algorithm"),
                }
            }

            fn is_idle(&self, state: &RateState, now: Nanos) -> bool {
                match (self, state) {
                    $((Self::$variant(a), RateState::$variant(s)) => a.is_idle(s, now),)*
                    _ => unreachable!("a slot's state is built by the slot's own algorithm"),
                }
            }

            fn is_throttled(&self, state: &RateState, now: Nanos) -> bool {
                match (self, state) {
                    $((Self::$variant(a), RateState::$variant(s)) => a.is_throttled(s, now),)*
                    _ => unreachable!("a slot's state is built by the slot's own algorithm"),
                }
            }

            fn heap_bytes(&self, state: &RateState) -> usize {
                match (self, state) {
                    $((Self::$variant(a), RateState::$variant(s)) => a.heap_bytes(s),)*
                    _ => unreachable!("a slot's state is built by the slot's own algorithm"),
                }
            }

            /// True when a request's cost can be settled after its decision.
            pub(super) fn settles(&self) -> bool {
                match self {
                    $(Self::$variant(_) => <algorithm::$ty as Algorithm>::SETTLES,)*
                }
            }

            fn max_heap_bytes(&self) -> usize {
                match self {
                    $(Self::$variant(a) => a.max_heap_bytes(),)*
                }
            }
        }
    };
}
registry!(any_rate);

/// The hasher every table shares (random once per process), so a request's key is
/// hashed once for all its tables.
pub(super) fn shared_hasher() -> &'static foldhash::fast::RandomState {
    static HASHER: OnceLock<foldhash::fast::RandomState> = OnceLock::new();
    HASHER.get_or_init(foldhash::fast::RandomState::default)
}

/// The algorithms of a table's slots: what the store keeps per key is a row of their
/// states behind one lock.
#[derive(Debug)]
pub(super) struct Row {
    pub(super) rates: Box<[Rate]>,
}

impl Row {
    fn fresh(&self) -> RowState {
        self.rates.iter().map(Rate::fresh).collect()
    }

    /// Heap bytes of a row too long to sit inline (all its states move to the heap).
    fn spilled_bytes(&self) -> usize {
        if self.rates.len() > INLINE {
            self.rates.len() * std::mem::size_of::<RateState>()
        } else {
            0
        }
    }
}

impl PerKey for Row {
    type Shared = Mutex<RowState>;

    fn fresh_shared(&self) -> Self::Shared {
        Mutex::new(self.fresh())
    }

    fn idle(&self, state: &Self::Shared, now: Nanos) -> bool {
        let row = state.lock().unwrap_or_else(PoisonError::into_inner);
        self.rates
            .iter()
            .zip(row.iter())
            .all(|(r, s)| r.is_idle(s, now))
    }

    fn throttled(&self, state: &Self::Shared, now: Nanos) -> bool {
        let row = state.lock().unwrap_or_else(PoisonError::into_inner);
        self.rates
            .iter()
            .zip(row.iter())
            .any(|(r, s)| r.is_throttled(s, now))
    }

    fn heap_bytes_of(&self, state: &Self::Shared) -> usize {
        let row = state.lock().unwrap_or_else(PoisonError::into_inner);
        let slots: usize = self
            .rates
            .iter()
            .zip(row.iter())
            .map(|(r, s)| r.heap_bytes(s))
            .sum();
        slots + self.spilled_bytes()
    }

    fn max_heap_bytes_of(&self) -> usize {
        self.rates.iter().map(Rate::max_heap_bytes).sum::<usize>() + self.spilled_bytes()
    }
}

/// Rows of several limits' states by key, and the table's place in the lock order.
#[derive(Debug)]
pub(super) struct Table {
    pub(super) store: MemoryStore<Box<str>, Row>,
    /// Where the table comes in the global lock order (shared with in-flight limits).
    pub(super) rank: u64,
}

impl Table {
    /// A table of `policies`' states (slot `i` is `policies[i]`'s), at most `max_keys`
    /// keys, hashed by the [`shared_hasher`], `rank` in the lock order.
    pub(super) fn new(policies: &[Policy], max_keys: usize, rank: u64) -> Self {
        let row = Row {
            rates: policies.iter().map(Rate::new).collect(),
        };
        Self {
            store: MemoryStore::with_max_keys(row, max_keys).with_hasher(shared_hasher().clone()),
            rank,
        }
    }

    /// The algorithms of the slots.
    pub(super) fn rates(&self) -> &[Rate] {
        &self.store.algorithm().rates
    }

    /// Forgets the rows idle at `now` (every slot back to full); how many.
    pub(super) fn sweep(&self, now: Nanos) -> usize {
        self.store.sweep(now)
    }

    /// Keys held now.
    pub(super) fn len(&self) -> usize {
        self.store.len()
    }

    /// Size and evictions (walks every key).
    pub(super) fn stats(&self) -> StoreStats {
        self.store.stats()
    }
}
