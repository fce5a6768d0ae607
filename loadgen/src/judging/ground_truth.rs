//! Ground truth for a measured run: the backend's count per key against the client's,
//! and both against the envelope the algorithm promises over the key's active span.
//!
//! The guarantee: a disagreement between client and backend, or a key admitted beyond
//! the algorithm's own envelope, is a number in the results (and a note), not a guess.

use std::collections::HashMap;

use limiter_core::Nanos;
use limiter_core::algorithm::{Envelope, Reference};
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
}

impl<'a> EnvelopeCheck<'a> {
    /// The check for `algorithm` over the client's keys.
    pub(crate) fn new(plan: &'a LoadPlan, client: &'a ClientKeys, algorithm: &str) -> Self {
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
        let most = most_requests(&self.envelopes[e], endpoint, last.saturating_sub(first));
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
