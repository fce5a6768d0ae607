#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The store modes' stated bounds, checked on random timelines: N simulated instances
//! (each its own `KeyLease` book, the code the Redis store runs) on one store (the
//! algorithm's plain state, leased by `lease::grant`, the in-memory twin of the lease
//! script), with a fixed round-trip time between them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use limiter_core::algorithm::{Bound, Envelope, Gcra, TokenBucket};
use limiter_core::store::lease::{self, Ask, Grant, KeyLease, Local, Tally};
use limiter_core::store::mode::{LeaseOptions, StoreMode, excess_bound};
use limiter_core::{Algorithm, Kind, Nanos, Policy, Quota};
use proptest::prelude::*;

const MS: Nanos = 1_000_000;

/// One request: when, which instance, what it costs.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    at: Nanos,
    instance: usize,
    cost: u64,
}

/// What a run admitted and what it cost the store.
#[derive(Debug, Default)]
struct Run {
    /// `(instant, cost)` admissions, in time order.
    admitted: Vec<(Nanos, u64)>,
    store_calls: u64,
    taken: u64,
    tally: Tally,
    in_hand_at_end: u64,
    denied: u64,
}

enum Event {
    Arrive(Arrival),
    Reply {
        instance: usize,
        ask: Ask,
        cost: u64,
        grant: Grant,
    },
}

/// Plays `arrivals` (in time order) through `n` instances in `mode` on one store, each
/// store answer arriving `rtt` after its ask (the store applies it at the ask).
fn play<A: Algorithm>(alg: &A, mode: StoreMode, n: usize, rtt: Nanos, arrivals: &[Arrival]) -> Run {
    let mut books = vec![KeyLease::new(); n];
    let mut state = alg.fresh();
    let mut run = Run::default();
    let mut queue = BinaryHeap::new();
    for (seq, a) in arrivals.iter().enumerate() {
        queue.push(Reverse((a.at, seq, 0usize)));
    }
    let mut replies: Vec<Option<Event>> = Vec::new();
    let capacity = alg.capacity();
    while let Some(Reverse((now, seq, reply))) = queue.pop() {
        let event = if reply == 0 {
            Event::Arrive(arrivals[seq])
        } else {
            replies[reply - 1].take().expect("each reply once")
        };
        match event {
            Event::Arrive(a) => {
                match books[a.instance].decide(&mode, now, a.cost, capacity, &mut run.tally) {
                    Local::Allowed(_) => run.admitted.push((now, a.cost)),
                    Local::Denied(_) => run.denied += 1,
                    // A lease is on its way: the request decides again once it landed.
                    Local::Wait => queue.push(Reverse((now + rtt.max(1), seq, 0))),
                    Local::Ask(ask) => {
                        run.store_calls += 1;
                        let grant = lease::answer(alg, &mode, &mut state, now, ask).unwrap();
                        run.taken += grant.taken;
                        replies.push(Some(Event::Reply {
                            instance: a.instance,
                            ask,
                            cost: a.cost,
                            grant,
                        }));
                        queue.push(Reverse((now + rtt, seq, replies.len())));
                    }
                }
            }
            Event::Reply {
                instance,
                ask,
                cost,
                grant,
            } => {
                let d = books[instance].granted(&mode, now, ask, cost, grant);
                if d.allowed {
                    run.admitted.push((now, cost));
                } else {
                    run.denied += 1;
                }
            }
        }
    }
    let end = arrivals.last().map_or(0, |a| a.at) + rtt;
    for book in &mut books {
        book.drop_expired(end, &mut run.tally);
    }
    run.in_hand_at_end = books.iter().map(|b| b.units(end)).sum();
    run
}

/// `envelope` with `extra` more units allowed in every interval.
fn widened(envelope: &Envelope, extra: u64) -> Envelope {
    Envelope::new(envelope.bounds().iter().map(|b| match *b {
        Bound::Rate {
            burst,
            limit,
            period,
        } => Bound::Rate {
            burst: burst + extra,
            limit,
            period,
        },
        Bound::Windows {
            limit,
            length,
            step,
        } => Bound::Windows {
            limit: limit + extra,
            length,
            step,
        },
    }))
}

fn arrivals(n: usize, max_cost: u64) -> impl Strategy<Value = Vec<Arrival>> {
    prop::collection::vec((0..40 * MS, 0..n, 1..=max_cost), 1..400).prop_map(|steps| {
        let mut at = 0;
        steps
            .into_iter()
            .map(|(gap, instance, cost)| {
                // Mostly dense, sometimes idle: bursts and pauses past a lease's ttl.
                at += if gap < 30 * MS { gap / 20 } else { gap * 10 };
                Arrival { at, instance, cost }
            })
            .collect()
    })
}

fn check<A: Algorithm>(alg: &A, mode: StoreMode, n: usize, rtt: Nanos, arrivals: &[Arrival]) {
    let run = play(alg, mode, n, rtt, arrivals);
    let envelope = alg.envelope();
    let bound = excess_bound(&mode, n as u64);
    // Within any interval: at most N × lease.max over the envelope.
    if let Err(breach) = widened(&envelope, bound).check(&run.admitted) {
        panic!("{mode} N={n}: {breach} (bound +{bound})");
    }
    // Over the whole run: never more than the envelope of the run's length.
    let first = arrivals[0].at;
    let span = arrivals.last().unwrap().at + rtt - first;
    let total: u64 = run.admitted.iter().map(|a| a.1).sum();
    assert!(
        total <= envelope.most_in(first, span),
        "{mode}: {total} over the run"
    );
    // Every unit taken is admitted, stranded (expired unspent) or still in hand.
    assert_eq!(
        run.taken,
        total + run.tally.stranded + run.in_hand_at_end,
        "{mode}: units lost or made up"
    );
}

fn lease_mode() -> impl Strategy<Value = StoreMode> {
    (1..=16u64, 5..=2_000u64).prop_map(|(max, ttl)| {
        StoreMode::Lease(LeaseOptions::new(max, Duration::from_millis(ttl)).unwrap())
    })
}

fn bucket() -> impl Strategy<Value = Quota> {
    (1..=20u64, 1..=5u64, 1..=30u64).prop_map(|(limit, secs, burst)| {
        Quota::new(limit, Duration::from_secs(secs))
            .unwrap()
            .with_burst(burst)
            .unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn leases_of_tokens_keep_n_times_the_lease_over_the_envelope(
        quota in bucket(),
        mode in lease_mode(),
        n in 1..=4usize,
        rtt in 0..=5 * MS,
        arrivals in arrivals(4, 3),
    ) {
        let arrivals: Vec<_> = arrivals
            .into_iter()
            .map(|a| Arrival { instance: a.instance % n, cost: a.cost.min(quota.burst()), ..a })
            .collect();
        check(&TokenBucket::new(quota), mode, n, rtt, &arrivals);
        check(&Gcra::new(quota), mode, n, rtt, &arrivals);
    }

    #[test]
    fn exact_mode_with_local_denials_keeps_the_envelope(
        quota in bucket(),
        n in 1..=4usize,
        rtt in 0..=5 * MS,
        arrivals in arrivals(4, 3),
    ) {
        let arrivals: Vec<_> = arrivals
            .into_iter()
            .map(|a| Arrival { instance: a.instance % n, cost: a.cost.min(quota.burst()), ..a })
            .collect();
        check(&TokenBucket::new(quota), StoreMode::Exact, n, rtt, &arrivals);
        check(&Gcra::new(quota), StoreMode::Exact, n, rtt, &arrivals);
    }
}

#[test]
fn a_one_key_flood_costs_the_store_one_call_per_refill_in_every_mode() {
    // 10 per second; 3 instances each offered 10,000 per second for 10 s.
    let quota = Quota::per_second(10).unwrap();
    let flood: Vec<Arrival> = (0..300_000u64)
        .map(|i| Arrival {
            at: i * 33_333,
            instance: (i % 3) as usize,
            cost: 1,
        })
        .collect();
    let lease = StoreMode::Lease(LeaseOptions::new(16, Duration::from_secs(1)).unwrap());
    for mode in [StoreMode::Exact, lease] {
        let run = play(&Gcra::new(quota), mode, 3, MS, &flood);
        let per_denied = run.store_calls as f64 / run.denied as f64;
        assert!(per_denied <= 0.01, "{mode}: {per_denied} calls per denial");
        let admitted: u64 = run.admitted.iter().map(|a| a.1).sum();
        // 10 at once, then 10 per second: 110 over 10 s, less what waits in the store.
        assert!(
            (90..=110).contains(&admitted),
            "{mode}: admitted {admitted}"
        );
    }
}

/// What one instance's request did on a store it alone uses, answered at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// It asked the store (and was answered `allowed` or not).
    Asked { allowed: bool },
    /// Admitted from the lease in hand.
    FromLease,
    /// Refused locally, told to retry after this long.
    DeniedLocally(Duration),
}

/// Decides one request of cost 1 at `now` on `book`, asking `state` when it must.
fn step<A: Algorithm>(
    alg: &A,
    mode: &StoreMode,
    (book, state): (&mut KeyLease, &mut A::State),
    now: Nanos,
    tally: &mut Tally,
) -> Step {
    match book.decide(mode, now, 1, alg.capacity(), tally) {
        Local::Ask(ask) => {
            let grant = lease::answer(alg, mode, state, now, ask).unwrap();
            let allowed = book.granted(mode, now, ask, 1, grant).allowed;
            Step::Asked { allowed }
        }
        Local::Allowed(_) => Step::FromLease,
        Local::Denied(d) => Step::DeniedLocally(d.retry_after),
        Local::Wait => panic!("answered at once: no ask is ever in flight"),
    }
}

#[test]
fn a_lease_grows_far_from_the_limit_and_waits_for_a_whole_lease_near_it() {
    let quota = Quota::per_second(1_000).unwrap();
    let alg = TokenBucket::new(quota);
    let mode = StoreMode::Lease(LeaseOptions::new(32, Duration::from_secs(1)).unwrap());
    let mut state = alg.fresh();
    let mut book = KeyLease::new();
    let mut tally = Tally::default();
    let mut calls = 0;
    for i in 0..200u64 {
        match step(
            &alg,
            &mode,
            (&mut book, &mut state),
            i * MS / 10,
            &mut tally,
        ) {
            Step::Asked { allowed } => {
                calls += 1;
                assert!(allowed, "refused far from the limit");
            }
            Step::FromLease => {}
            Step::DeniedLocally(d) => panic!("denied far from the limit: {d:?}"),
        }
    }
    // 1, 2, 4, 8, 16, then 32 at a time: 200 requests in 11 calls.
    assert_eq!(book.size(), 32);
    assert!(calls <= 11, "{calls} calls");
    // Drain the bucket: the lease is cut to what is left, then the instance waits
    // for most of a lease (three quarters), refusing locally.
    let mut denied_locally = 0;
    for _ in 0..2_000 {
        if let Step::DeniedLocally(retry) =
            step(&alg, &mode, (&mut book, &mut state), 20 * MS, &mut tally)
        {
            denied_locally += 1;
            assert!(retry > Duration::ZERO);
        }
    }
    assert!(denied_locally > 1_000);
    let Local::Ask(ask) = book.decide(&mode, 60 * MS, 1, alg.capacity(), &mut tally) else {
        panic!("a local denial outlived the store's");
    };
    assert_eq!(
        ask.need,
        ask.take - ask.take / 4,
        "near the limit it waits for three quarters of a lease"
    );
    assert!(ask.need > 1, "{ask:?}");
}

#[test]
fn an_expired_lease_is_stranded_and_shrinks_the_next() {
    let quota = Quota::per_second(100).unwrap();
    let alg = Gcra::new(quota);
    let mode = StoreMode::Lease(LeaseOptions::new(8, Duration::from_millis(10)).unwrap());
    let mut state = alg.fresh();
    let mut book = KeyLease::new();
    let mut tally = Tally::default();
    let mut now = 0;
    for _ in 0..20 {
        step(&alg, &mode, (&mut book, &mut state), now, &mut tally);
        now += MS / 100;
    }
    let size = book.size();
    let held = book.units(now);
    assert!(held > 0 && size > 1);
    now += 20 * MS;
    assert!(matches!(
        book.decide(&mode, now, 1, alg.capacity(), &mut tally),
        Local::Ask(_)
    ));
    assert_eq!(tally.stranded, held);
    assert_eq!(book.size(), size / 2);
}

#[test]
fn a_key_asked_less_often_than_its_ttl_keeps_leases_of_one_and_strands_nothing() {
    let quota = Quota::per_second(10).unwrap();
    let alg = Gcra::new(quota);
    let mode = StoreMode::Lease(LeaseOptions::new(64, Duration::from_secs(1)).unwrap());
    let mut state = alg.fresh();
    let mut book = KeyLease::new();
    let mut tally = Tally::default();
    // One request every 1.5 s: each asks for its own unit, none waits in a lease.
    for i in 0..50u64 {
        let got = step(
            &alg,
            &mode,
            (&mut book, &mut state),
            i * 1_500 * MS,
            &mut tally,
        );
        assert_eq!(got, Step::Asked { allowed: true });
        assert_eq!(book.size(), 1);
    }
    assert_eq!(tally.stranded, 0);
    // Then one every 100 ms: the lease runs out within its ttl, so it grows.
    let start = 75_000 * MS;
    for i in 0..50u64 {
        step(
            &alg,
            &mode,
            (&mut book, &mut state),
            start + i * 100 * MS,
            &mut tally,
        );
    }
    assert!(book.size() > 1, "size {}", book.size());
}

#[test]
fn a_key_far_above_its_limit_asks_once_per_lease() {
    // 10 per second, bursts of 10; one instance offered 1,000 per second for 60 s.
    let quota = Quota::per_second(10).unwrap();
    let alg = Gcra::new(quota);
    let mode = StoreMode::Lease(LeaseOptions::new(64, Duration::from_secs(10)).unwrap());
    let mut state = alg.fresh();
    let mut book = KeyLease::new();
    let mut tally = Tally::default();
    let (mut calls, mut refused_by_store, mut admitted) = (0u64, 0u64, 0u64);
    for i in 0..60_000u64 {
        match step(&alg, &mode, (&mut book, &mut state), i * MS, &mut tally) {
            Step::Asked { allowed } => {
                calls += 1;
                admitted += u64::from(allowed);
                refused_by_store += u64::from(!allowed);
            }
            Step::FromLease => admitted += 1,
            Step::DeniedLocally(_) => {}
        }
    }
    // This instance alone refuses far more than a lease while it waits, so its lease
    // grows to the burst (spent at once, never stranded); it knows when the store will
    // hold three quarters of another and never asks a store it knows is short.
    assert_eq!(book.size(), 10, "size {}", book.size());
    assert!((600..=610).contains(&admitted), "admitted {admitted}");
    // The store refuses only when a lease just grew: the wait was timed for the smaller
    // one (at most one refusal per doubling, 1 -> 10 is four).
    assert!(
        refused_by_store <= 4,
        "{refused_by_store} refused of {calls} calls"
    );
    // One call per lease of at least three quarters of the burst (7 of 10 units).
    assert!(calls * 7 <= admitted + 10, "{calls} calls for {admitted}");
}

#[test]
fn only_the_buckets_lease() {
    let lease = StoreMode::Lease(LeaseOptions::default());
    let q = Quota::per_second(5).unwrap();
    let leasing: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|&k| lease.check(&Policy::new(k, q)).is_ok())
        .collect();
    assert_eq!(leasing, [Kind::TokenBucket, Kind::Gcra]);
}
