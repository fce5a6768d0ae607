//! The limits of one request, and the order in which a request locks their state.

use std::sync::Arc;

use smallvec::SmallVec;

use super::MAX_LIMITS;
use super::limit::{Limit, Memory, Rule, place_together};
use super::row::Table;
use crate::error::{Error, Result};

/// The limits of one request: 1 to [`MAX_LIMITS`], distinct names, each limit once.
#[derive(Debug, Clone)]
pub struct LimitSet {
    limits: Vec<Limit>,
    /// Where their in-memory state lives, in lock order: a table of rows (one lookup
    /// and one lock for every limit of the set in it) or an in-flight limit.
    levels: Vec<Level>,
    /// The most one request may cost: the least of the limits' capacities.
    capacity: u64,
}

/// One step of the lock order.
#[derive(Debug, Clone)]
pub(super) enum Level {
    /// The set's limits whose state lives in `table`'s rows.
    Rows {
        table: Arc<Table>,
        uses: SmallVec<[Use; 2]>,
    },
    /// The in-flight limit `index` of the set.
    InFlight { index: usize, rank: u64 },
}

/// One limit of a set in a table: its slot in the rows, its index in the set.
#[derive(Debug, Clone, Copy)]
pub(super) struct Use {
    pub(super) slot: usize,
    pub(super) index: usize,
}

impl Level {
    fn rank(&self) -> u64 {
        match self {
            Level::Rows { table, .. } => table.rank,
            Level::InFlight { rank, .. } => *rank,
        }
    }
}

impl LimitSet {
    /// The set of `limits`, reported in this order. Its rate limits not yet placed
    /// share one table of rows ([`place_together`](super::place_together)).
    ///
    /// Errors when it is empty, longer than [`MAX_LIMITS`], names two limits alike or
    /// holds one limit twice.
    pub fn new(limits: Vec<Limit>) -> Result<Self> {
        if limits.is_empty() || limits.len() > MAX_LIMITS {
            return Err(Error::invalid_quota(
                "a request carries between 1 and 8 limits",
            ));
        }
        for (i, a) in limits.iter().enumerate() {
            for b in &limits[..i] {
                if a.name() == b.name() || a.same(b) || a.id() == b.id() {
                    return Err(Error::invalid_quota(
                        "the limits of one request need distinct names and ids",
                    ));
                }
            }
        }
        place_together(&limits);
        let mut levels: Vec<Level> = Vec::with_capacity(limits.len());
        for (index, limit) in limits.iter().enumerate() {
            if let Memory::InFlight { rank, .. } = &limit.inner.memory {
                levels.push(Level::InFlight { index, rank: *rank });
                continue;
            }
            let Some(place) = limit.placed() else {
                continue;
            };
            let one = Use {
                slot: place.slot,
                index,
            };
            let same_table = levels.iter_mut().find_map(|l| match l {
                Level::Rows { table, uses } if Arc::ptr_eq(table, &place.table) => Some(uses),
                _ => None,
            });
            match same_table {
                Some(uses) => uses.push(one),
                None => levels.push(Level::Rows {
                    table: Arc::clone(&place.table),
                    uses: SmallVec::from_elem(one, 1),
                }),
            }
        }
        levels.sort_by_key(Level::rank);
        let capacity = limits
            .iter()
            .map(|l| l.rule().capacity())
            .min()
            .unwrap_or(0);
        Ok(Self {
            limits,
            levels,
            capacity,
        })
    }

    /// The limits, in the order they were given (and are reported).
    pub fn limits(&self) -> &[Limit] {
        &self.limits
    }

    /// Where their state lives, in lock order.
    pub(super) fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// How many lookups (and locks) an in-memory decision takes: one per table of rows
    /// holding some of its limits, one per in-flight limit.
    pub fn lookups(&self) -> usize {
        self.levels.len()
    }

    /// The most one request may cost: what every limit can admit at once.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// True when some limit is an in-flight limit (admissions hold a [`Permit`](super::Permit)).
    pub fn has_in_flight(&self) -> bool {
        self.limits
            .iter()
            .any(|l| matches!(l.rule(), Rule::InFlight(_)))
    }

    /// Refuses a cost some limit can never admit.
    pub(super) fn ensure_fits(&self, cost: u64) -> Result<()> {
        if cost > self.capacity {
            return Err(Error::cost_exceeds_capacity(cost, self.capacity));
        }
        Ok(())
    }
}
