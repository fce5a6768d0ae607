//! One named limit: what it enforces ([`Rule`]) and where its in-memory state lives.
//!
//! A rate limit's state lives in a slot of a table of rows ([`row`](super::row)): the
//! first set a limit joins places it, beside the other limits of that set not placed
//! before, so a request finds a set's own limits with one lookup and one lock. A limit
//! shared between sets keeps the slot it was placed in (its state counts once), and a
//! clone is the same limit.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::in_flight::{InFlight, Slots};
use super::row::Table;
use crate::clock::Clock;
use crate::limiter::Policy;
use crate::store::memory::StoreStats;

/// Ranks tables and in-flight limits in creation order: the global order in which a
/// request locks them.
static NEXT_RANK: AtomicU64 = AtomicU64::new(0);

pub(super) fn next_rank() -> u64 {
    NEXT_RANK.fetch_add(1, Ordering::Relaxed)
}

/// One named limit and its in-memory state. Cheap to clone: clones share the state, so
/// one `Limit` in several sets (a global limit in every route's set) counts once.
#[derive(Clone)]
pub struct Limit {
    pub(super) inner: Arc<LimitInner>,
}

pub(super) struct LimitInner {
    name: Box<str>,
    id: Box<str>,
    rule: Rule,
    max_keys: usize,
    pub(super) memory: Memory,
}

/// What one limit enforces: a rate (an algorithm and its quota) or a number of
/// requests in flight at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A rate limit.
    Rate(Policy),
    /// An in-flight (concurrency) limit.
    InFlight(InFlight),
}

impl Rule {
    /// The most one request may cost: a rate's capacity; any cost for an in-flight
    /// limit (a request holds one slot whatever it costs).
    pub fn capacity(&self) -> u64 {
        match self {
            Rule::Rate(p) => p.capacity(),
            Rule::InFlight(_) => u64::MAX,
        }
    }

    /// The rule's name in reports and metrics: the algorithm's, or `concurrency`.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Rate(p) => p.kind.name(),
            Rule::InFlight(_) => "concurrency",
        }
    }

    /// True when a request's cost can be settled after its decision (a token bucket's
    /// or GCRA's rate; never an in-flight limit, which holds slots, not units).
    pub fn settles(&self) -> bool {
        match self {
            Rule::Rate(p) => p.kind.settles(),
            Rule::InFlight(_) => false,
        }
    }

    /// What a limit that admitted a refused request gives back to its `remaining`: the
    /// cost for a rate, the one slot for an in-flight limit.
    pub(super) fn unspent(&self, cost: u64) -> u64 {
        match self {
            Rule::Rate(_) => cost,
            Rule::InFlight(_) => 1,
        }
    }
}

/// One limit's in-memory state: a rate limit's slot in a table (once placed), or an
/// in-flight limit's own keys and rank.
pub(super) enum Memory {
    Rate(OnceLock<Place>),
    InFlight { slots: Slots, rank: u64 },
}

/// Where a rate limit's state lives: slot `slot` of every row of `table`.
pub(super) struct Place {
    pub(super) table: Arc<Table>,
    pub(super) slot: usize,
}

impl fmt::Debug for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limit")
            .field("name", &self.name())
            .field("id", &self.id())
            .field("policy", &self.policy())
            .finish_non_exhaustive()
    }
}

impl Limit {
    /// A limit enforcing `policy`, advertised as `name` (the `RateLimit` headers' list
    /// member), its state kept under `id` — unique among every limit on one store (on
    /// Redis it names the key after the request's tag, e.g. `"/api/search burst"`) —
    /// and at most `max_keys` keys in memory.
    pub fn new(name: &str, id: &str, policy: Policy, max_keys: usize) -> Self {
        Self::with(
            name,
            id,
            Rule::Rate(policy),
            max_keys,
            Memory::Rate(OnceLock::new()),
        )
    }

    /// An in-flight limit: at most `limit.limit()` requests of one key at once (see
    /// [`InFlight`]), named and kept as [`new`](Self::new)'s, at most `max_keys` keys in
    /// memory. A request holds its slot until its [`Permit`](super::Permit) is dropped.
    ///
    /// ```
    /// use limiter_core::limits::{InFlight, Limit, LimitSet, MultiLimiter};
    /// use limiter_core::{Kind, ManualClock, Policy, Quota};
    ///
    /// # fn main() -> limiter_core::Result<()> {
    /// let rate = Limit::new("burst", "burst", Policy::new(Kind::Gcra, Quota::bucket(10, 1.0)?), 10_000);
    /// let slots = Limit::in_flight("slots", "slots", InFlight::new(2)?, 10_000);
    /// let limiter = MultiLimiter::memory(LimitSet::new(vec![rate, slots])?, ManualClock::new());
    /// let first = limiter.acquire_now("alice", 1).expect("in memory")?;
    /// let second = limiter.acquire_now("alice", 1).expect("in memory")?;
    /// let third = limiter.acquire_now("alice", 1).expect("in memory")?;
    /// assert!(!third.verdict.decision.allowed); // two in flight: refused, no token spent
    /// drop(first.permit); // the request ended: its slot is back
    /// assert!(limiter.acquire_now("alice", 1).expect("in memory")?.verdict.decision.allowed);
    /// # drop(second); Ok(()) }
    /// ```
    pub fn in_flight(name: &str, id: &str, limit: InFlight, max_keys: usize) -> Self {
        let memory = Memory::InFlight {
            slots: Slots::new(limit, max_keys),
            rank: next_rank(),
        };
        Self::with(name, id, Rule::InFlight(limit), max_keys, memory)
    }

    fn with(name: &str, id: &str, rule: Rule, max_keys: usize, memory: Memory) -> Self {
        Self {
            inner: Arc::new(LimitInner {
                name: name.into(),
                id: id.into(),
                rule,
                max_keys,
                memory,
            }),
        }
    }

    /// Its name in headers and metrics.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Where its state lives on a shared store.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// What it enforces.
    pub fn rule(&self) -> Rule {
        self.inner.rule
    }

    /// The rate policy it enforces (`None` for an in-flight limit).
    pub fn policy(&self) -> Option<Policy> {
        match self.inner.rule {
            Rule::Rate(p) => Some(p),
            Rule::InFlight(_) => None,
        }
    }

    /// Slots `key` holds now in memory (0 for a rate limit or an unknown key).
    pub fn in_flight_now(&self, key: &str) -> u64 {
        match &self.inner.memory {
            Memory::InFlight { slots, .. } => slots.held(key),
            Memory::Rate(_) => 0,
        }
    }

    /// True when `other` is this very limit (shares its state), not just an equal one.
    pub fn same(&self, other: &Limit) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// True when `other`'s in-memory state lives in the same rows as this one's (one
    /// lookup and one lock decide both).
    pub fn shares_rows_with(&self, other: &Limit) -> bool {
        match (self.place(), other.place()) {
            (Some(a), Some(b)) => Arc::ptr_eq(&a.table, &b.table),
            _ => false,
        }
    }

    /// Forgets the in-memory keys idle at `now` (by `clock`); returns how many. For a
    /// rate limit: the rows of its table whose every slot is idle (the table may hold
    /// other limits' states beside its own: see [`shares_rows_with`](Self::shares_rows_with)).
    pub fn sweep(&self, clock: &impl Clock) -> usize {
        match &self.inner.memory {
            Memory::Rate(_) => self.place().map_or(0, |p| p.table.sweep(clock.now())),
            Memory::InFlight { slots, .. } => slots.sweep(),
        }
    }

    /// Keys held in memory now: a rate limit's table's rows (an in-flight limit's: a
    /// short walk of its shards). [`memory_keys`] counts a set of limits without
    /// counting a table twice.
    pub fn memory_keys(&self) -> usize {
        match &self.inner.memory {
            Memory::Rate(_) => self.place().map_or(0, |p| p.table.len()),
            Memory::InFlight { slots, .. } => slots.len(),
        }
    }

    /// Size and evictions of its in-memory state (walks every key: for reports); for a
    /// rate limit, its table's (shared with the limits beside it).
    pub fn stats(&self) -> StoreStats {
        match &self.inner.memory {
            Memory::Rate(_) => self.place().map(|p| p.table.stats()).unwrap_or_default(),
            Memory::InFlight { slots, .. } => StoreStats {
                keys: slots.len(),
                ..StoreStats::default()
            },
        }
    }

    /// Its slot, once placed.
    pub(super) fn place(&self) -> Option<&Place> {
        match &self.inner.memory {
            Memory::Rate(place) => place.get(),
            Memory::InFlight { .. } => None,
        }
    }

    /// A rate limit's slot, placed alone in a new table if no set placed it yet
    /// (`None` for an in-flight limit).
    pub(super) fn placed(&self) -> Option<&Place> {
        match (&self.inner.memory, self.inner.rule) {
            (Memory::Rate(place), Rule::Rate(policy)) => Some(place.get_or_init(|| Place {
                table: Arc::new(Table::new(&[policy], self.inner.max_keys, next_rank())),
                slot: 0,
            })),
            _ => None,
        }
    }
}

/// Keys held in memory by `limits`, each table and in-flight limit counted once.
pub fn memory_keys(limits: &[Limit]) -> usize {
    let mut seen: Vec<&Limit> = Vec::with_capacity(limits.len());
    let mut keys = 0;
    for l in limits {
        if !seen.iter().any(|s| s.same(l) || s.shares_rows_with(l)) {
            keys += l.memory_keys();
            seen.push(l);
        }
    }
    keys
}

/// Places the rate limits of `limits` no set placed yet side by side in new tables of
/// rows, one table per `max_keys` (a table keeps one key cap): a request then finds
/// and locks all of them at once. [`LimitSet::new`](super::LimitSet::new) does this for
/// its limits; call it first for limits several sets share (global ones), so that they
/// sit together in their own rows and each set's own limits in another, instead of the
/// shared limits living in the rows of whichever set was built first.
///
/// A limit already placed keeps its place (its state is kept: a reload that keeps a
/// limit keeps every key's state). Limits placed concurrently by another call keep the
/// place that call gave them (the slot this call made for them is only carried).
pub fn place_together(limits: &[Limit]) {
    let mut waiting: Vec<(&Limit, Policy)> = Vec::new();
    for l in limits {
        if let (Memory::Rate(place), Rule::Rate(policy)) = (&l.inner.memory, l.inner.rule)
            && place.get().is_none()
            && !waiting.iter().any(|(w, _)| w.same(l))
        {
            waiting.push((l, policy));
        }
    }
    while let Some(&(first, _)) = waiting.first() {
        let max_keys = first.inner.max_keys;
        let (group, rest): (Vec<_>, Vec<_>) = waiting
            .into_iter()
            .partition(|(l, _)| l.inner.max_keys == max_keys);
        let policies: Vec<Policy> = group.iter().map(|&(_, p)| p).collect();
        let table = Arc::new(Table::new(&policies, max_keys, next_rank()));
        for (slot, (l, _)) in group.into_iter().enumerate() {
            if let Memory::Rate(place) = &l.inner.memory {
                // Already set only if another call placed it meanwhile: it keeps that.
                let _ = place.set(Place {
                    table: Arc::clone(&table),
                    slot,
                });
            }
        }
        waiting = rest;
    }
}
