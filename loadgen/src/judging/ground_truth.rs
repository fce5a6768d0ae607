//! Ground truth for a measured run: the backend's count per key against the client's,
//! and both against the envelope the algorithm promises over the key's active span.
//!
//! Windowed envelopes (a fixed window's `limit` per aligned window, a bucketed window's
//! windows on its sub-window grid) are laid on the windows the store used: the gateway
//! aligns them to the Unix epoch on every store (Redis's scripts by its `TIME`, memory
//! by a Unix-aligned clock; window index = ⌊unix time / window⌋), so the check places
//! the key's span at its Unix instants ([`StoreClock::Unix`]). Where the store's
//! alignment is not known (no recorded start, a store the lab does not know), the check
//! takes the worst alignment ([`StoreClock::Unknown`]): never a false "over", but a
//! looser bound.
//!
//! The guarantee: a disagreement between client and backend, or a key admitted beyond
//! the algorithm's own envelope, is a number in the results (and a note), not a guess.

use std::collections::HashMap;

use limiter_core::Nanos;
use limiter_core::algorithm::{Bound, Envelope, Reference};
use results::GroundTruth;

use super::decisions::Decisions;
use crate::arrivals::Arrivals;
use crate::drivers::http::client::BackendStats;
use crate::drivers::http::plan::{LoadPlan, user_index};
use crate::drivers::http::record::Record;
use crate::drivers::simulated::SimAlgorithm;
use crate::workload::Endpoint;

/// The envelope `algorithm` (a simulator name) promises under `endpoint`'s policy:
/// `limiter-core`'s own for its algorithms, the exact token bucket's for the seed
/// replica and for names it does not know.
pub fn envelope_of(algorithm: &str, endpoint: &Endpoint) -> Envelope {
    algorithm
        .parse::<SimAlgorithm>()
        .map_or(Reference::TokenBucket.envelope(&endpoint.quota), |a| {
            a.envelope(&endpoint.quota)
        })
}

/// The most requests of `endpoint` a key may have admitted over an interval of `span`
/// nanoseconds under `envelope`, wherever the interval falls, in requests of the
/// endpoint's cost.
pub fn most_requests(envelope: &Envelope, endpoint: &Endpoint, span: Nanos) -> u64 {
    envelope.most_in_any(span) / endpoint.cost.max(1)
}

/// Where the store's clock was when the schedule started, so windowed envelopes fall
/// on the store's own windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreClock {
    /// The store's windows are aligned to the Unix epoch (Redis's `TIME`) and the
    /// schedule started at this Unix instant, in nanoseconds.
    Unix(Nanos),
    /// Not known: windows may fall anywhere (the worst alignment is assumed).
    #[default]
    Unknown,
}

impl StoreClock {
    /// The store's alignment for a store named `store` (`memory`, `redis`,
    /// `redis-cluster`: Unix time) whose schedule started at Unix instant `unix_start`.
    pub fn for_store(store: &str, unix_start: Option<Nanos>) -> Self {
        match unix_start {
            Some(start) if store == "memory" || store.starts_with("redis") => {
                StoreClock::Unix(start)
            }
            _ => StoreClock::Unknown,
        }
    }
}

/// The most requests of `endpoint` a key may have admitted from `first` to `last`
/// (nanoseconds after the schedule's start) under `envelope`, on the store's windows
/// (`clock`), in requests of the endpoint's cost.
pub fn most_requests_between(
    envelope: &Envelope,
    endpoint: &Endpoint,
    (first, last): (Nanos, Nanos),
    clock: StoreClock,
) -> u64 {
    let span = last.saturating_sub(first);
    let most = match clock {
        StoreClock::Unix(start) => envelope.most_in(start.saturating_add(first), span),
        StoreClock::Unknown => envelope.most_in_any(span),
    };
    most / endpoint.cost.max(1)
}

/// For an algorithm whose envelope has windows on a grid (fixed window, bucketed
/// window), a note saying where the store's windows fell against the run: so a
/// reader can tell a boundary effect (admissions the algorithm's own windows allow,
/// beyond the exact sliding log's) from an over-admission.
pub(crate) fn window_note(plan: &LoadPlan, algorithm: &str, clock: StoreClock) -> Option<String> {
    let grid = plan.workload.endpoints.iter().find_map(|e| {
        envelope_of(algorithm, e)
            .bounds()
            .iter()
            .find_map(|b| match *b {
                Bound::Windows { length, step, .. } if step > 1 => Some((length, step)),
                _ => None,
            })
    })?;
    let (length, step) = grid;
    let secs = |n: Nanos| n as f64 / 1e9;
    Some(match clock {
        StoreClock::Unix(start) => format!(
            "{algorithm} on the store's windows (Unix-epoch aligned, {:.3} s each, starting every {:.3} s): the schedule started {:.3} s into one; the envelope check and the exact fixed window use them",
            secs(length),
            secs(step),
            secs(start % step),
        ),
        StoreClock::Unknown => format!(
            "{algorithm}: where the store's {:.3} s windows fell is not known (no recorded start, or a store the lab does not know); the envelope check assumes the worst alignment, and a fixed window is judged against the exact sliding log",
            secs(length)
        ),
    })
}

/// What the client saw per key: admitted, first send, last response.
pub(crate) type ClientKeys = HashMap<usize, (u64, Nanos, Nanos)>;

/// Per key of the `measured` arrivals (one record each, in the same order): admitted,
/// first send and last response.
pub(crate) fn client_per_key(
    measured: &Arrivals,
    records: &[Record],
    decisions: &Decisions,
) -> ClientKeys {
    let mut out: ClientKeys = HashMap::new();
    for (i, a) in measured.list.iter().enumerate() {
        let r = &records[i];
        let e = out.entry(measured.key(a)).or_insert((0, Nanos::MAX, 0));
        e.0 += u64::from(decisions.admitted(i));
        e.1 = e.1.min(r.sent);
        e.2 = e.2.max(r.sent + r.latency);
    }
    out
}

/// The envelope check of one run: each key's count against what `algorithm` may
/// admit over the key's active span.
pub(crate) struct EnvelopeCheck<'a> {
    plan: &'a LoadPlan,
    client: &'a ClientKeys,
    /// The algorithm's envelope, per endpoint.
    envelopes: Vec<Envelope>,
    /// Where the store's windows fall.
    clock: StoreClock,
}

impl<'a> EnvelopeCheck<'a> {
    /// The check for `algorithm` over the client's keys, on the store's windows.
    pub(crate) fn new(
        plan: &'a LoadPlan,
        client: &'a ClientKeys,
        algorithm: &str,
        clock: StoreClock,
    ) -> Self {
        let envelopes = plan
            .workload
            .endpoints
            .iter()
            .map(|e| envelope_of(algorithm, e))
            .collect();
        Self {
            plan,
            client,
            envelopes,
            clock,
        }
    }

    /// By how many requests `count` admissions for `key` exceed the envelope over the
    /// key's active span (0 for keys the client never sent).
    pub(crate) fn over(&self, key: usize, count: u64) -> u64 {
        let Some(&(_, first, last)) = self.client.get(&key) else {
            return 0;
        };
        let e = key % self.envelopes.len().max(1);
        let endpoint = &self.plan.workload.endpoints[e];
        let most = most_requests_between(&self.envelopes[e], endpoint, (first, last), self.clock);
        count.saturating_sub(most)
    }

    /// Keys the client saw admitted beyond the envelope.
    pub(crate) fn client_keys_over(&self) -> u64 {
        self.client
            .iter()
            .filter(|(k, v)| self.over(**k, v.0) > 0)
            .count() as u64
    }
}

/// The backend's count per key over the run (`after` minus `before`), for the users
/// and paths the plan knows.
fn backend_per_key(
    plan: &LoadPlan,
    (before, after): (&BackendStats, &BackendStats),
) -> HashMap<usize, u64> {
    let users = plan.arrivals.users;
    let endpoints = plan.arrivals.endpoints as usize;
    let mut out: HashMap<usize, u64> = HashMap::new();
    for (user, paths) in &after.users {
        let Some(u) = user_index(user) else { continue };
        if u >= users {
            continue;
        }
        for (path, &n) in paths {
            let Some(e) = plan.endpoint_of(path) else {
                continue;
            };
            let delta = n.saturating_sub(before.count(user, path));
            if delta > 0 {
                *out.entry(u as usize * endpoints + e).or_default() += delta;
            }
        }
    }
    out
}

/// The backend's counts against the client's, key by key, and both against the
/// envelope; notes what a reader must know before trusting them.
pub(crate) fn ground_truth(
    check: &EnvelopeCheck<'_>,
    backend: (&BackendStats, &BackendStats),
    client_admitted: u64,
    notes: &mut Vec<String>,
) -> GroundTruth {
    let (before, after) = backend;
    let keys = check.plan.arrivals.keys();
    let backend_keys = backend_per_key(check.plan, backend);
    let (mut disagree, mut backend_over, mut worst) = (0, 0, 0);
    let mut all: Vec<usize> = check
        .client
        .keys()
        .chain(backend_keys.keys())
        .copied()
        .collect();
    all.sort_unstable();
    all.dedup();
    for k in all.into_iter().filter(|&k| k < keys) {
        let c = check.client.get(&k).map_or(0, |v| v.0);
        let b = backend_keys.get(&k).copied().unwrap_or(0);
        disagree += u64::from(c != b);
        let x = check.over(k, b);
        backend_over += u64::from(x > 0);
        worst = worst.max(x);
    }
    let truth = GroundTruth {
        backend_total: after.total.saturating_sub(before.total),
        client_admitted,
        keys_disagreeing: disagree,
        client_keys_over_envelope: check.client_keys_over(),
        backend_keys_over_envelope: backend_over,
        backend_worst_excess: worst,
    };
    if truth.backend_total != truth.client_admitted || disagree > 0 {
        notes.push(format!(
            "client and backend disagree: the client saw {} admitted, the backend counted {} ({} keys differ) — another client, retries, or responses lost after the backend answered",
            truth.client_admitted, truth.backend_total, disagree
        ));
    }
    if after.untracked > before.untracked {
        notes.push(format!(
            "the backend stopped tracking new user+path pairs ({} untracked): per-key ground truth is incomplete",
            after.untracked - before.untracked
        ));
    }
    truth
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{SECOND, Workload};

    #[test]
    fn windowed_envelopes_fall_on_the_stores_windows() {
        // Fixed window, 5 per 60 s; a key active from 0 to 50 s after the start.
        let w = Workload::load("seed").unwrap();
        let e = &w.endpoints[0];
        let fixed = envelope_of("fixed-window", e);
        let most = |clock| most_requests_between(&fixed, e, (0, 50 * SECOND), clock);
        // Unix windows: the schedule started 30 s into one (Unix 1,800,000,030 s), so
        // the span straddles a boundary at 30 s: two windows, 10.
        let straddling = StoreClock::Unix(1_800_000_030 * SECOND);
        assert_eq!(most(straddling), 10);
        // Started 5 s into one: [0, 50] lies inside it, 5 at most; 8 admitted is 3 over,
        // which the worst alignment (10) would have hidden.
        let inside = StoreClock::Unix(1_800_000_005 * SECOND);
        assert_eq!(most(inside), 5);
        assert_eq!(most(StoreClock::Unknown), 10);
        // A token bucket's envelope does not depend on where the span falls.
        let bucket = envelope_of("token-bucket", e);
        for clock in [straddling, inside, StoreClock::Unknown] {
            assert_eq!(
                most_requests_between(&bucket, e, (0, 50 * SECOND), clock),
                9
            );
        }
        assert_eq!(
            StoreClock::for_store("redis-cluster", Some(7)),
            StoreClock::Unix(7)
        );
        assert_eq!(
            StoreClock::for_store("memory", Some(7)),
            StoreClock::Unix(7)
        );
        assert_eq!(StoreClock::for_store("none", Some(7)), StoreClock::Unknown);
        assert_eq!(StoreClock::for_store("redis", None), StoreClock::Unknown);

        let plan = LoadPlan::new(w.clone(), 1).unwrap();
        let note = window_note(&plan, "fixed-window", straddling).unwrap();
        assert!(note.contains("started 30.000 s into one"), "{note}");
        let note = window_note(&plan, "fixed-window", StoreClock::Unknown).unwrap();
        assert!(note.contains("worst alignment"), "{note}");
        assert_eq!(window_note(&plan, "gcra", straddling), None);
    }

    #[test]
    fn envelopes() {
        let w = Workload::load("seed").unwrap();
        let e = &w.endpoints[0];
        let most = |algorithm: &str, span| most_requests(&envelope_of(algorithm, e), e, span);
        // Burst 5, 5 per 60 s.
        for bucket in ["token-bucket", "gcra", "seed-replica", "no-such-thing"] {
            assert_eq!(most(bucket, 0), 5, "{bucket}");
            assert_eq!(most(bucket, 150 * SECOND), 17, "{bucket}");
        }
        // A sliding log admits 5 in any 60 s, so 5 over 59 s and 10 over 60 s (both ends
        // included).
        assert_eq!(most("sliding-log", 0), 5);
        assert_eq!(most("sliding-log", 59 * SECOND), 5);
        assert_eq!(most("sliding-log", 60 * SECOND), 10);
        // Aligned windows: 59 s can straddle a boundary (5 at its end, 5 after it);
        // 61 s can meet three windows; an instant meets one.
        assert_eq!(most("fixed-window", 0), 5);
        assert_eq!(most("fixed-window", 59 * SECOND), 10);
        assert_eq!(most("fixed-window", 60 * SECOND), 10);
        assert_eq!(most("fixed-window", 61 * SECOND), 15);
        // The sliding window counter also promises fewer than twice the limit in any
        // window-length interval.
        assert_eq!(most("sliding-window", 0), 5);
        assert_eq!(most("sliding-window", 59 * SECOND), 9);
        // Every registered algorithm is bounded by its own envelope, with no list here.
        for k in limiter_core::Kind::ALL {
            let own = limiter_core::Policy::new(k, e.quota).envelope();
            assert_eq!(envelope_of(k.name(), e), own, "{k}");
        }
    }
}
