//! The event loop of one store-mode point: N gateways in virtual time, each with its
//! own book per key (`limiter-core`'s [`KeyLease`]: leases in hand, local denials,
//! adaptive size), sharing one store (the algorithm's plain state per key, answered by
//! [`lease::answer`], the in-memory twin of the exact and lease scripts), or — for
//! `local` — each gateway deciding on its own states.
//!
//! A request that must ask the store reaches it half its round trip later (the store
//! decides then, on its own clock, in the order asks arrive) and is answered a whole
//! round trip after it was taken; one that waits for a lease in flight decides again
//! when that lease lands, as the Redis store wakes it. Latency per decision is from the
//! arrival to its answer: 0 when the gateway decides alone. Gateways decide on their
//! own clocks (offsets from the deployment's skew).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use limiter_core::algorithm::Visit;
use limiter_core::store::lease::{self, Ask, Grant, KeyLease, Local, Tally};
use limiter_core::{Algorithm, Kind, Nanos, Policy, Quota};

use super::super::deployment::DeploymentPlan;
use super::super::engine::Refused;
use super::Sharing;
use crate::arrivals::Arrivals;
use crate::judging::Decisions;

/// Arrivals between progress reports.
const CHUNK: usize = 1 << 16;

/// What the gateways decided and what it cost.
#[derive(Debug)]
pub(super) struct Outcome {
    /// Admitted or not, per arrival.
    pub(super) decisions: Decisions,
    /// Per arrival: nanoseconds from the arrival to its answer.
    pub(super) latency_ns: Vec<u32>,
    /// Calls to the shared store.
    pub(super) calls: u64,
    /// Decided without the store, and units stranded in expired leases.
    pub(super) tally: Tally,
}

/// Where a point is played: the arrivals, each endpoint's policy and cost, and the
/// deployment plan (gateway, round trip and clock offset per arrival).
pub(super) struct Field<'a> {
    pub(super) arrivals: &'a Arrivals,
    pub(super) quotas: &'a [Quota],
    pub(super) costs: &'a [u64],
    pub(super) plan: &'a DeploymentPlan,
}

/// Plays algorithm `kind` (one per endpoint policy) over every arrival of `field` with
/// the gateways sharing state as `sharing` says.
pub(super) fn play(
    kind: Kind,
    field: &Field<'_>,
    sharing: Sharing,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Outcome, Refused> {
    struct Build<'a, 'p>(
        Kind,
        &'a Field<'a>,
        Sharing,
        &'p mut dyn FnMut(usize, usize),
    );
    impl Visit for Build<'_, '_> {
        type Output = Result<Outcome, Refused>;
        fn visit<A: Algorithm>(self) -> Self::Output {
            let Build(kind, field, sharing, progress) = self;
            let algs: Vec<A> = field
                .quotas
                .iter()
                .map(|q| A::from_policy(&Policy::new(kind, *q)))
                .collect();
            Gateways::new(algs, field, sharing).run(progress)
        }
    }
    kind.visit(Build(kind, field, sharing, progress))
}

/// Something due at an instant, after everything queued before it for that instant.
struct Event {
    at: Nanos,
    seq: u64,
    arrival: u32,
    what: What,
}

enum What {
    /// The request (again, after waiting for a lease in flight) decides.
    Decide,
    /// Its ask reaches the store.
    Store(Ask),
    /// The store's answer reaches its gateway.
    Reply(Ask, Grant),
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// N gateways and their store, mid-run.
struct Gateways<'a, A: Algorithm> {
    algs: Vec<A>,
    field: &'a Field<'a>,
    sharing: Sharing,
    keys: usize,
    /// Per gateway × key: the gateway's book (shared store only).
    books: Vec<Option<KeyLease>>,
    /// Per book: when its lease in flight lands (a waiting request decides then).
    landing: Vec<Nanos>,
    /// The store: per key (shared), or per gateway × key (`local`).
    states: Vec<A::State>,
    queue: BinaryHeap<Reverse<Event>>,
    seq: u64,
    /// The latest instant handled.
    latest: Nanos,
    out: Outcome,
}

impl<'a, A: Algorithm> Gateways<'a, A> {
    fn new(algs: Vec<A>, field: &'a Field<'a>, sharing: Sharing) -> Self {
        let arrivals = field.arrivals;
        let keys = arrivals.keys();
        let gateways = field.plan.offsets.len().max(1);
        let endpoints = algs.len();
        let (books, states) = match sharing {
            Sharing::Local => (0, gateways * keys),
            Sharing::Store(_) => (gateways * keys, keys),
        };
        let n = arrivals.list.len();
        Self {
            states: (0..states).map(|s| algs[s % endpoints].fresh()).collect(),
            books: vec![None; books],
            landing: vec![0; books],
            algs,
            field,
            sharing,
            keys,
            queue: BinaryHeap::new(),
            seq: 0,
            latest: 0,
            out: Outcome {
                decisions: Decisions::new(n),
                latency_ns: vec![0; n],
                calls: 0,
                tally: Tally::default(),
            },
        }
    }

    /// Every arrival in time order, interleaved with the store's work in flight.
    fn run(mut self, progress: &mut dyn FnMut(usize, usize)) -> Result<Outcome, Refused> {
        let list = &self.field.arrivals.list;
        let mut next = 0;
        loop {
            let due = self.queue.peek().map(|Reverse(e)| e.at);
            match (list.get(next), due) {
                (Some(a), Some(at)) if at <= a.at => self.pop()?,
                (Some(a), _) => {
                    self.decide(next, a.at)?;
                    next += 1;
                    if next % CHUNK == 0 {
                        progress(next, list.len());
                    }
                }
                (None, Some(_)) => self.pop()?,
                (None, None) => break,
            }
        }
        progress(list.len(), list.len());
        // Leases that expired unspent before the run ended are stranded.
        let end = self.latest;
        for book in self.books.iter_mut().flatten() {
            book.drop_expired(end, &mut self.out.tally);
        }
        Ok(self.out)
    }

    fn push(&mut self, at: Nanos, arrival: usize, what: What) {
        self.seq += 1;
        self.queue.push(Reverse(Event {
            at,
            seq: self.seq,
            arrival: arrival as u32,
            what,
        }));
    }

    fn pop(&mut self) -> Result<(), Refused> {
        let Some(Reverse(e)) = self.queue.pop() else {
            return Ok(());
        };
        let i = e.arrival as usize;
        self.latest = self.latest.max(e.at);
        match e.what {
            What::Decide => self.decide(i, e.at),
            What::Store(ask) => self.at_store(i, e.at, ask),
            What::Reply(ask, grant) => {
                self.reply(i, e.at, ask, grant);
                Ok(())
            }
        }
    }

    /// Arrival `i`'s endpoint, cost, key, gateway and that gateway's clock at `now`.
    fn locate(&self, i: usize, now: Nanos) -> (usize, u64, usize, usize, Nanos) {
        let a = &self.field.arrivals.list[i];
        let e = a.endpoint as usize;
        let g = self.field.plan.gateway[i] as usize;
        let gateway_now = now.saturating_add_signed(self.field.plan.offsets[g]);
        let key = self.field.arrivals.key(a);
        (e, self.field.costs[e], key, g, gateway_now)
    }

    fn decide(&mut self, i: usize, now: Nanos) -> Result<(), Refused> {
        self.latest = self.latest.max(now);
        let (e, cost, key, g, gateway_now) = self.locate(i, now);
        let slot = g * self.keys + key;
        let mode = match self.sharing {
            Sharing::Local => {
                let d = self.algs[e].step(&mut self.states[slot], gateway_now, cost);
                self.answer(i, now, d.map_err(|err| (e, err))?.allowed);
                return Ok(());
            }
            Sharing::Store(mode) => mode,
        };
        let capacity = self.algs[e].capacity();
        let tally = &mut self.out.tally;
        let local = match &mut self.books[slot] {
            Some(book) => book.decide(&mode, gateway_now, cost, capacity, tally),
            None if !lease::tracks_new_keys(&mode) => Local::Ask(lease::untracked_ask(cost)),
            None => self.books[slot].insert(KeyLease::new()).decide(
                &mode,
                gateway_now,
                cost,
                capacity,
                tally,
            ),
        };
        match local {
            Local::Allowed(_) => self.answer(i, now, true),
            Local::Denied(_) => self.answer(i, now, false),
            Local::Wait => self.push(self.landing[slot].max(now), i, What::Decide),
            Local::Ask(ask) => {
                self.out.calls += 1;
                let rtt = Nanos::from(self.field.plan.rtt[i]);
                self.landing[slot] = now + rtt;
                self.push(now + rtt / 2, i, What::Store(ask));
            }
        }
        Ok(())
    }

    /// The store answers arrival `i`'s ask at `now` (its own clock).
    fn at_store(&mut self, i: usize, now: Nanos, ask: Ask) -> Result<(), Refused> {
        let Sharing::Store(mode) = self.sharing else {
            return Ok(());
        };
        let (e, _, key, _, _) = self.locate(i, now);
        let grant = lease::answer(&self.algs[e], &mode, &mut self.states[key], now, ask)
            .map_err(|err| (e, err))?;
        let rtt = Nanos::from(self.field.plan.rtt[i]);
        self.push(now + (rtt - rtt / 2), i, What::Reply(ask, grant));
        Ok(())
    }

    /// The store's answer to arrival `i`'s ask lands at its gateway.
    fn reply(&mut self, i: usize, now: Nanos, ask: Ask, grant: Grant) {
        let Sharing::Store(mode) = self.sharing else {
            return;
        };
        let (_, cost, key, g, gateway_now) = self.locate(i, now);
        let slot = g * self.keys + key;
        let decision =
            match &mut self.books[slot] {
                Some(book) => book.granted(&mode, gateway_now, ask, cost, grant),
                None if lease::remembers(&grant) => self.books[slot]
                    .insert(KeyLease::new())
                    .granted(&mode, gateway_now, ask, cost, grant),
                None => grant.store,
            };
        self.answer(i, now, decision.allowed);
    }

    /// Records arrival `i`'s answer, given at `now`.
    fn answer(&mut self, i: usize, now: Nanos, allowed: bool) {
        if allowed {
            self.out.decisions.admit(i);
        }
        let waited = now - self.field.arrivals.list[i].at;
        self.out.latency_ns[i] = u32::try_from(waited).unwrap_or(u32::MAX);
    }
}
