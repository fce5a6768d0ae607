//! Ground truth for a measured run: the backend's count per key against the client's,
//! and both against the envelope the algorithm promises over the key's active span.
//!
//! The guarantee: a disagreement between client and backend, or a key admitted beyond
//! the algorithm's own envelope, is a number in the results (and a note), not a guess.

use std::collections::HashMap;
use std::str::FromStr;

use limiter_core::Nanos;
use results::GroundTruth;

use super::decisions::Decisions;
use crate::arrivals::Arrivals;
use crate::driver::client::BackendStats;
use crate::driver::plan::{Plan, user_index};
use crate::drivers::http::record::Record;
use crate::drivers::simulated::SimAlgorithm;
use crate::workload::Endpoint;

/// How an algorithm bounds what one key is admitted over an interval: the ground-truth
/// check's envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `burst + rate × span`: token bucket, GCRA, the seed's bucket.
    Bucket,
    /// `limit` in any window-length interval: the sliding log.
    Sliding,
    /// `limit` per window aligned to the store's clock: the fixed window and the sliding
    /// window counter. Where the windows fall is the store's business (the gateway's
    /// start in memory, the Unix epoch on Redis), so the bound takes the worst case.
    Aligned,
}

/// The bound that judges `algorithm` (bucket for unknown names).
pub fn bound_of(algorithm: &str) -> Bound {
    use limiter_core::Kind;
    match SimAlgorithm::from_str(algorithm)
        .ok()
        .and_then(SimAlgorithm::kind)
    {
        Some(Kind::SlidingLog) => Bound::Sliding,
        Some(Kind::FixedWindow | Kind::SlidingWindow) => Bound::Aligned,
        _ => Bound::Bucket,
    }
}

/// The most requests of `endpoint` a key may have admitted over an interval of `span`
/// nanoseconds, in requests of the endpoint's cost:
/// - bucket: `burst + rate × span`;
/// - sliding: `limit × (⌊span / W⌋ + 1)`, the interval cut into window-length pieces;
/// - aligned: `limit × (⌈span / W⌉ + 1)`, the most aligned windows an interval of that
///   length meets — one more than the sliding bound unless `span` is a whole number of
///   windows, which is the fixed window's boundary burst.
pub fn envelope(endpoint: &Endpoint, bound: Bound, span: Nanos) -> u64 {
    let q = &endpoint.quota;
    let (p, l, span) = (q.period_nanos() as u128, q.limit() as u128, span as u128);
    let units = match bound {
        Bound::Bucket => (q.burst() as u128 * p + l * span) / p,
        Bound::Sliding => l * (span / p + 1),
        Bound::Aligned => l * (span.div_ceil(p) + 1),
    };
    (units / endpoint.cost.max(1) as u128) as u64
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
    plan: &'a Plan,
    client: &'a ClientKeys,
    endpoints: usize,
    bound: Bound,
}

impl<'a> EnvelopeCheck<'a> {
    /// The check for `algorithm` over the client's keys.
    pub(crate) fn new(plan: &'a Plan, client: &'a ClientKeys, algorithm: &str) -> Self {
        Self {
            plan,
            client,
            endpoints: plan.arrivals.endpoints as usize,
            bound: bound_of(algorithm),
        }
    }

    /// By how many requests `count` admissions for `key` exceed the envelope over the
    /// key's active span (0 for keys the client never sent).
    pub(crate) fn over(&self, key: usize, count: u64) -> u64 {
        let Some(&(_, first, last)) = self.client.get(&key) else {
            return 0;
        };
        let e = &self.plan.workload.endpoints[key % self.endpoints];
        count.saturating_sub(envelope(e, self.bound, last.saturating_sub(first)))
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
    plan: &Plan,
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
    fn envelopes() {
        let w = Workload::load("seed").unwrap();
        let e = &w.endpoints[0];
        assert_eq!(envelope(e, Bound::Bucket, 0), 5);
        assert_eq!(envelope(e, Bound::Bucket, 150 * SECOND), 17);
        // 5 per 60 s. A sliding log admits 5 in any 60 s, so 5 over 59 s and 10 over
        // 60 s (both ends included).
        assert_eq!(envelope(e, Bound::Sliding, 0), 5);
        assert_eq!(envelope(e, Bound::Sliding, 59 * SECOND), 5);
        assert_eq!(envelope(e, Bound::Sliding, 60 * SECOND), 10);
        // Aligned windows: 59 s can straddle a boundary (5 at its end, 5 after it);
        // 61 s can meet three windows; an instant meets one.
        assert_eq!(envelope(e, Bound::Aligned, 0), 5);
        assert_eq!(envelope(e, Bound::Aligned, 59 * SECOND), 10);
        assert_eq!(envelope(e, Bound::Aligned, 60 * SECOND), 10);
        assert_eq!(envelope(e, Bound::Aligned, 61 * SECOND), 15);
        assert_eq!(bound_of("sliding-log"), Bound::Sliding);
        assert_eq!(bound_of("sliding-window"), Bound::Aligned);
        assert_eq!(bound_of("fixed-window"), Bound::Aligned);
        assert_eq!(bound_of("gcra"), Bound::Bucket);
    }
}
