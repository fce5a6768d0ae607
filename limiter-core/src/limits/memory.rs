//! The in-memory side of several limits: the two-phase decision over a set's levels
//! (its tables of rows and its in-flight limits, in lock order), settling, sweeping.

use std::hash::BuildHasher;
use std::sync::PoisonError;

use super::in_flight::Permit;
use super::limit::Memory;
use smallvec::SmallVec;

use super::row::{RateState, shared_hasher};
use super::set::{Level, LimitSet};
use crate::clock::Nanos;
use crate::decision::Decision;
use crate::error::Result;

/// Decides every limit of `set` for `key` at `now`, all-or-nothing, writing each limit's
/// decision into `out` (the set's order) and an admission's in-flight slots into
/// `permit` (`None`: slots taken are given back at once). Each level's lock is taken in
/// rank order and released in reverse, after the last limit decided and every state
/// was written or left. Returns whether every limit admitted.
#[inline]
pub(super) fn decide_all(
    set: &LimitSet,
    key: &str,
    now: Nanos,
    cost: u64,
    out: &mut [Decision],
    permit: Option<&mut Permit>,
) -> Result<bool> {
    let ask = Ask {
        key,
        hash: shared_hasher().hash_one(key),
        now,
        cost,
    };
    level(set, set.levels(), true, ask, out, permit)
}

/// What every level decides: the key (and its hash), the instant and the cost.
#[derive(Clone, Copy)]
struct Ask<'a> {
    key: &'a str,
    hash: u64,
    now: Nanos,
    cost: u64,
}

/// The first of `levels`, every lower level having admitted if `so_far`: locks its
/// state, decides each of its limits on a copy into `out`, lets the higher levels
/// decide while it holds the lock, and keeps the copy only if every limit admitted
/// (returned). Every higher level decides even after a refusal: Retry-After is the
/// longest wait among all refusing limits.
fn level(
    set: &LimitSet,
    levels: &[Level],
    so_far: bool,
    ask: Ask<'_>,
    out: &mut [Decision],
    mut permit: Option<&mut Permit>,
) -> Result<bool> {
    let Some((first, higher)) = levels.split_first() else {
        return Ok(so_far);
    };
    match first {
        Level::Rows { table, uses } => {
            table
                .store
                .with_state_hashed(ask.hash, ask.key, ask.now, |shared| {
                    let mut row = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    // Each slot steps in place; what it was is kept until every limit
                    // decided, and put back unless all admitted. (Recursing per slot
                    // or copying the whole row cost more than the steps.)
                    let mut before: SmallVec<[(usize, RateState); 2]> = SmallVec::new();
                    let rates = table.rates();
                    let mut admitted = Ok(true);
                    for u in uses {
                        let state = &mut row[u.slot];
                        before.push((u.slot, state.clone()));
                        match rates[u.slot].step(state, ask.now, ask.cost) {
                            Ok(d) => {
                                admitted = admitted.map(|a| a && d.allowed);
                                out[u.index] = d;
                            }
                            Err(e) => {
                                admitted = Err(e);
                                break;
                            }
                        }
                    }
                    let all = admitted.and_then(|admitted| {
                        level(set, higher, so_far && admitted, ask, out, permit)
                    });
                    if !matches!(all, Ok(true)) {
                        for (slot, state) in before {
                            row[slot] = state;
                        }
                    }
                    all
                })?
        }
        Level::InFlight { index, .. } => {
            let Memory::InFlight { slots, .. } = &set.limits()[*index].inner.memory else {
                return level(set, higher, so_far, ask, out, permit);
            };
            let (decision, all, held) = slots.hold(ask.key, &mut |admitted| {
                level(
                    set,
                    higher,
                    so_far && admitted,
                    ask,
                    out,
                    permit.as_deref_mut(),
                )
            })?;
            out[*index] = decision;
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

/// Settles `key`'s reservation of `reserved` units at `actual` in every rate limit of
/// `set` that settles, each table's row under its one lock; how many limits.
pub(super) fn settle_all(
    set: &LimitSet,
    key: &str,
    now: Nanos,
    reserved: u64,
    actual: u64,
) -> Result<usize> {
    let hash = shared_hasher().hash_one(key);
    let mut settled = 0;
    for level in set.levels() {
        let Level::Rows { table, uses } = level else {
            continue; // in-flight limits hold slots, not units: nothing to settle
        };
        let rates = table.rates();
        if !uses.iter().any(|u| rates[u.slot].settles()) {
            continue;
        }
        settled += table.store.with_state_hashed(hash, key, now, |shared| {
            let mut row = shared.lock().unwrap_or_else(PoisonError::into_inner);
            let mut n = 0;
            for u in uses.iter().filter(|u| rates[u.slot].settles()) {
                rates[u.slot].settle(&mut row[u.slot], now, reserved, actual)?;
                n += 1;
            }
            Ok::<_, crate::Error>(n)
        })??;
    }
    Ok(settled)
}

/// Forgets the idle keys of every table and in-flight limit of `set`; how many.
pub(super) fn sweep(set: &LimitSet, now: Nanos) -> usize {
    set.levels()
        .iter()
        .map(|level| match level {
            Level::Rows { table, .. } => table.sweep(now),
            Level::InFlight { index, .. } => match &set.limits()[*index].inner.memory {
                Memory::InFlight { slots, .. } => slots.sweep(),
                Memory::Rate(_) => 0,
            },
        })
        .sum()
}
