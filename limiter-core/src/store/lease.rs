//! One instance's view of one key in a [`StoreMode`]: the lease in hand, the local
//! denial, and the adaptive lease size — pure (handed `now`, no I/O), so the Redis
//! store and the simulator's N instances run the same code.
//!
//! A decision goes: refused locally while a store denial lasts ([`Local::Denied`]); else
//! spent from the lease in hand ([`Local::Allowed`]); else, unless a lease is already on
//! its way ([`Local::Wait`]: decide again when it lands), the store is asked for a new
//! lease ([`Local::Ask`]), and its answer ([`Grant`]) is applied with
//! [`KeyLease::granted`]. The store side of a lease is the algorithm's own step: a lease
//! of `n` takes what a request of cost `n` takes ([`grant`] in memory, the algorithm's
//! lease script on Redis).
//!
//! Lease size, per key and instance: the next lease asks for `size` units (1 at first,
//! at most `lease.max`, never more than the policy's capacity). It doubles each time the
//! lease in hand ran out before its `ttl` ended while the last grant left the store as
//! much again (demand of more than `size` per `ttl`, far from the limit); it halves
//! each time a lease expires with units left (the instance was hoarding). A key asked
//! for less often than once per `ttl` keeps leases of one unit — the asking request's
//! own — and strands nothing. Near the limit a grant is cut to what the store holds; the key is then
//! *saturated* and the instance waits — refusing locally — until three quarters of a
//! lease of `size` are available instead of asking for each unit as it refills; a
//! saturated key whose instance refused half a lease or more while waiting doubles its
//! size (its demand outruns the store): a key offered far above its limit then costs the
//! store one call per lease, not one per admission. The waiting changes when units are admitted, not how many: units that
//! refill meanwhile stay in the store (up to the burst) for whoever asks first.

use std::time::Duration;

use super::mode::StoreMode;
use crate::algorithm::{Algorithm, dur};
use crate::clock::{Nanos, nanos};
use crate::decision::Decision;
use crate::error::Result;

/// What an instance may decide alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// Admitted from the lease in hand: no store call.
    Allowed(Decision),
    /// Refused: the store said the key is empty until later. No store call.
    Denied(Decision),
    /// The store must be asked for this lease.
    Ask(Ask),
    /// A lease for this key is on its way: decide again once it lands (one store call
    /// per lease, however many requests arrive during its round trip).
    Wait,
}

/// A request to the store: take up to `take` units if at least `need` are there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    /// The most units to take.
    pub take: u64,
    /// The fewest units worth taking; with fewer, the store answers when `need` will
    /// be there.
    pub need: u64,
}

/// The store's answer to an [`Ask`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Units taken: 0 for a denial, else `need..=take`.
    pub taken: u64,
    /// The store's decision for what it took (allowed: `remaining` is what it still
    /// holds) or for `need` (denied: `retry_after` is when `need` will be there).
    pub store: Decision,
}

/// Counts of what an instance decided without the store, for metrics and the
/// simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    /// Admitted from a lease in hand.
    pub local_allowed: u64,
    /// Refused by a local denial.
    pub local_denied: u64,
    /// Units dropped from leases that expired unspent (under-admission).
    pub stranded: u64,
}

/// One instance's state for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLease {
    /// Units in hand.
    units: u64,
    /// When the units in hand expire.
    expires: Nanos,
    /// Units asked of the store and not yet answered.
    in_flight: u64,
    /// Units the next lease asks for.
    size: u64,
    /// Whether the last answer showed the store short of a whole lease.
    saturated: bool,
    /// Requests refused locally since the last ask: while saturated, more than a whole
    /// lease of them means this instance alone wants more than a lease per wait.
    refused: u64,
    /// After a grant that left the store short of another lease: until when the store
    /// cannot hold one (its refill is linear), so asking sooner is refused locally.
    short_until: Nanos,
    /// Until when requests of `denied_cost` or more are refused locally.
    denied_until: Nanos,
    denied_cost: u64,
    /// The last denial's wait: what a request refused while a probe is in flight is
    /// told.
    last_retry: Duration,
    /// The store's reset instant and remaining units at its last answer (for headers).
    reset_at: Nanos,
    store_remaining: u64,
}

impl Default for KeyLease {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyLease {
    /// A key this instance has not asked about: nothing in hand, lease size 1.
    pub const fn new() -> Self {
        Self {
            units: 0,
            expires: 0,
            in_flight: 0,
            size: 1,
            saturated: false,
            refused: 0,
            short_until: 0,
            denied_until: 0,
            denied_cost: u64::MAX,
            last_retry: Duration::ZERO,
            reset_at: 0,
            store_remaining: 0,
        }
    }

    /// Units in hand now (expired ones excluded).
    pub fn units(&self, now: Nanos) -> u64 {
        if now < self.expires { self.units } else { 0 }
    }

    /// Ends the local denial: the store's state moved outside a decision (a settle or
    /// refund, [`crate::settle`]), so the next request asks the store again.
    pub fn end_denial(&mut self) {
        self.denied_until = 0;
        self.denied_cost = u64::MAX;
    }

    /// Units the next lease asks for.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// True when forgetting this key changes nothing: no units in hand, none in flight,
    /// no local denial running.
    pub fn is_idle(&self, now: Nanos) -> bool {
        self.units(now) == 0 && self.in_flight == 0 && now >= self.denied_until
    }

    /// Decides a request of `cost` at `now` alone if it can; else says what to ask the
    /// store. `capacity` is the policy's: the most one request (and one lease) may take.
    pub fn decide(
        &mut self,
        mode: &StoreMode,
        now: Nanos,
        cost: u64,
        capacity: u64,
        tally: &mut Tally,
    ) -> Local {
        if now < self.denied_until && cost >= self.denied_cost {
            tally.local_denied += 1;
            self.refused = self.refused.saturating_add(1);
            let retry = dur(self.denied_until - now);
            let reset = dur(self.reset_at.saturating_sub(now));
            let remaining = self.store_remaining;
            return Local::Denied(Decision::deny(capacity, remaining, reset, retry));
        }
        let StoreMode::Lease(opts) = mode else {
            if let Some(denied) = self.probing(now, capacity, tally) {
                return denied;
            }
            self.in_flight += cost;
            return Local::Ask(Ask {
                take: cost,
                need: cost,
            });
        };
        let dropped = self.drop_expired(now, tally);
        if self.units >= cost {
            self.units -= cost;
            tally.local_allowed += 1;
            let reset = dur(self.reset_at.saturating_sub(now));
            let remaining = self.units.saturating_add(self.store_remaining);
            return Local::Allowed(Decision::allow(capacity, remaining, reset));
        }
        if let Some(denied) = self.probing(now, capacity, tally) {
            return denied;
        }
        if self.in_flight > 0 {
            return Local::Wait;
        }
        // The last grant left the store short of another lease, and it cannot have
        // refilled yet: refuse locally instead of asking (one call per lease, not two).
        if self.saturated && now < self.short_until {
            tally.local_denied += 1;
            self.refused = self.refused.saturating_add(1);
            let reset = dur(self.reset_at.saturating_sub(now));
            let retry = dur(self.short_until - now);
            return Local::Denied(Decision::deny(capacity, 0, reset, retry));
        }
        // The lease in hand ran out before it expired, the store holding as much again:
        // this instance spends more than `size` per ttl, so the next lease doubles.
        if !dropped && now < self.expires && !self.saturated {
            self.size = (self.size * 2).min(opts.max).min(capacity);
        }
        // Short of the store, and this instance alone refused half a lease's worth while
        // it waited: its own demand outruns the store's supply, so a lease twice as large
        // is spent soon after it lands (not stranded) and the waits, each ending in a
        // call, halve (model of the store_modes bench: 0.087 -> 0.057 calls per decision,
        // under-admission 4.5% -> 3.1%, with `worth_asking`).
        if self.saturated && self.refused * 2 >= self.size {
            self.size = (self.size * 2).min(opts.max).min(capacity);
        }
        self.refused = 0;
        // Never hold more than `max` (in hand and in flight): the excess bound.
        let room = opts.max.saturating_sub(self.units + self.in_flight);
        let take = self.size.min(room).min(capacity).max(cost);
        let need = if self.saturated {
            worth_asking(take).max(cost)
        } else {
            cost
        };
        self.in_flight += take;
        Local::Ask(Ask { take, need })
    }

    /// Applies the store's answer to `ask` (made for a request of `cost` at `now`) and
    /// answers that request.
    pub fn granted(
        &mut self,
        mode: &StoreMode,
        now: Nanos,
        ask: Ask,
        cost: u64,
        grant: Grant,
    ) -> Decision {
        self.in_flight = self.in_flight.saturating_sub(ask.take);
        self.reset_at = now.saturating_add(nanos(grant.store.reset_after));
        self.store_remaining = grant.store.remaining;
        if grant.taken < cost.max(1) || !grant.store.allowed {
            self.denied_until = now.saturating_add(nanos(grant.store.retry_after));
            self.denied_cost = cost;
            self.last_retry = grant.store.retry_after;
            self.saturated = true;
            return grant.store;
        }
        self.denied_until = 0;
        self.denied_cost = u64::MAX;
        let StoreMode::Lease(opts) = mode else {
            self.saturated = false;
            return grant.store;
        };
        // Short of a whole lease, or of as much again: near the limit (no growth; the
        // next ask waits for a whole lease).
        self.saturated = grant.taken < ask.take || grant.store.remaining < ask.take;
        self.short_until = if self.saturated {
            // `reset_after` refills `capacity - remaining` units; once
            // `worth_asking(take) - remaining` of them are there, the next ask is worth it.
            let left = grant.store.remaining;
            let missing = u128::from(worth_asking(ask.take).saturating_sub(left));
            let span = u128::from(grant.store.limit.saturating_sub(left).max(1));
            let wait = nanos(grant.store.reset_after) as u128 * missing / span;
            now.saturating_add(wait.min(u128::from(u64::MAX)) as u64)
        } else {
            0
        };
        self.units = self.units.saturating_add(grant.taken - cost);
        self.expires = now.saturating_add(nanos(opts.ttl));
        let remaining = self.units.saturating_add(self.store_remaining);
        Decision::allow(grant.store.limit, remaining, grant.store.reset_after)
    }

    /// A refusal while the key was found empty and this instance's probe is on its
    /// way: one probe per refill, not one store call per request arriving during its
    /// round trip (they are told the last denial's wait).
    fn probing(&mut self, now: Nanos, capacity: u64, tally: &mut Tally) -> Option<Local> {
        if !(self.saturated && self.in_flight > 0) {
            return None;
        }
        tally.local_denied += 1;
        self.refused = self.refused.saturating_add(1);
        let reset = dur(self.reset_at.saturating_sub(now));
        Some(Local::Denied(Decision::deny(
            capacity,
            0,
            reset,
            self.last_retry,
        )))
    }

    /// Forgets an ask the store never answered (an error or timeout): the failure
    /// policy decides that request, and the next ones until the store answers.
    pub fn failed(&mut self, ask: Ask) {
        self.in_flight = self.in_flight.saturating_sub(ask.take);
        // No more probing while the store fails: each request goes to the store, and
        // so to the failure policy, as in exact mode.
        self.saturated = false;
    }

    /// Drops the units of an expired lease (counted as stranded) and halves the lease
    /// size: the instance took more than it used. True when it dropped some.
    pub fn drop_expired(&mut self, now: Nanos, tally: &mut Tally) -> bool {
        if self.units > 0 && now >= self.expires {
            tally.stranded += self.units;
            self.units = 0;
            self.size = (self.size / 2).max(1);
            return true;
        }
        false
    }
}

/// The fewest units a saturated key's ask of `take` waits for: three quarters of it, so
/// the ask reaches the store before the bucket is full again (a full bucket drops its
/// refill: under-admission) and still takes up to `take` if they are there by then.
const fn worth_asking(take: u64) -> u64 {
    take - take / 4
}

/// Whether an instance keeps a [`KeyLease`] for a key it holds nothing for, before
/// deciding: always in lease mode; in exact mode only once the store refused the key
/// ([`remembers`]), so a key that is never refused costs no entry. Without one, the
/// request asks the store for its own cost ([`untracked_ask`]).
pub const fn tracks_new_keys(mode: &StoreMode) -> bool {
    matches!(mode, StoreMode::Lease(_))
}

/// The ask of a request of `cost` for a key without a [`KeyLease`] (exact mode).
pub const fn untracked_ask(cost: u64) -> Ask {
    Ask {
        take: cost,
        need: cost,
    }
}

/// Whether an answer for a key without a [`KeyLease`] is worth one: a refusal (it
/// becomes a local denial); an admission leaves nothing to remember.
pub const fn remembers(grant: &Grant) -> bool {
    !grant.store.allowed
}

/// What the store answers to `ask` in `mode`, on an algorithm's plain state: one step
/// for the request's own cost in exact mode (what the algorithm's decision script
/// does), a lease ([`grant`]) in lease mode (what its lease script does).
pub fn answer<A: Algorithm>(
    alg: &A,
    mode: &StoreMode,
    state: &mut A::State,
    now: Nanos,
    ask: Ask,
) -> Result<Grant> {
    if let StoreMode::Lease(_) = mode {
        return grant(alg, state, now, ask);
    }
    let store = alg.step(state, now, ask.take)?;
    Ok(Grant {
        taken: if store.allowed { ask.take } else { 0 },
        store,
    })
}

/// The store side of a lease, on an algorithm's plain state (in memory: the simulator,
/// the property tests): takes `ask.take` units as one request of that cost would, or as
/// many as there are if at least `ask.need`; else takes nothing and answers when `need`
/// will be there. Leasing algorithms only (`Kind::lease_support`).
pub fn grant<A: Algorithm>(alg: &A, state: &mut A::State, now: Nanos, ask: Ask) -> Result<Grant> {
    let whole = alg.step(state, now, ask.take)?;
    if whole.allowed {
        return Ok(Grant {
            taken: ask.take,
            store: whole,
        });
    }
    // A denial changes nothing and reports what is there now.
    if whole.remaining >= ask.need {
        let part = alg.step(state, now, whole.remaining.min(ask.take))?;
        if part.allowed {
            return Ok(Grant {
                taken: whole.remaining.min(ask.take),
                store: part,
            });
        }
    }
    Ok(Grant {
        taken: 0,
        store: alg.step(state, now, ask.need)?,
    })
}
