//! One limited route: its limits (one, or several decided all-or-nothing with the
//! global ones), per tier, its mode, and its counters.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use http::StatusCode;
use limiter_core::limits::{Admission, Limit, LimitsVerdict, Permit, Rule};
use limiter_core::tower::{
    Check, HeaderList, PolicyHeaders, RequestOutcome, ResponseEnd, ResponseGuard, ResponseHook,
};
use limiter_core::{DecidedBy, Result as LimitResult, Verdict};

use super::cost::{SettleOn, SettleStats};
pub(super) use super::limiting::{Build, Limiting};
use crate::Error;
use crate::access_log::DecisionNote;
use crate::config::{Mode, RouteLimits};
use crate::metrics::{Counter, DECISION_BUCKETS, Histogram};
use crate::routes::Template;

/// Per-route counters.
#[derive(Debug)]
pub struct RouteStats {
    /// Requests admitted by the store.
    pub allowed: Counter,
    /// Requests refused with `429`.
    pub denied: Counter,
    /// Requests the limits refused but a shadow route let through.
    pub shadow_denied: Counter,
    /// Requests refused with `400` (bad identity, cost too high).
    pub rejected: Counter,
    /// Requests refused with `503` (store down, fail-closed).
    pub unavailable: Counter,
    /// Store failures answered by admitting (fail-open).
    pub fallback_open: Counter,
    /// Store failures answered by refusing (fail-closed).
    pub fallback_closed: Counter,
    /// Store failures decided by the in-memory fallback.
    pub fallback_local: Counter,
    /// Time to decide.
    pub decision_latency: Histogram,
    /// Costs settled after the response (`cost_from_response`), by result.
    pub settles: SettleStats,
}

impl Default for RouteStats {
    fn default() -> Self {
        Self {
            allowed: Counter::default(),
            denied: Counter::default(),
            shadow_denied: Counter::default(),
            rejected: Counter::default(),
            unavailable: Counter::default(),
            fallback_open: Counter::default(),
            fallback_closed: Counter::default(),
            fallback_local: Counter::default(),
            decision_latency: Histogram::new(DECISION_BUCKETS),
            settles: SettleStats::default(),
        }
    }
}

/// An admitted request's in-flight slots, counted in its set's gauge until released.
struct Holding {
    _permit: Permit,
    count: Arc<AtomicI64>,
}

impl Holding {
    fn new(permit: Permit, count: &Arc<AtomicI64>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self {
            _permit: permit,
            count: Arc::clone(count),
        }
    }
}

impl ResponseHook for Holding {
    fn on_end(self: Box<Self>, _end: ResponseEnd) {
        self.count.fetch_sub(1, Ordering::Relaxed);
        // The permit drops with `self`: its slots are released.
    }
}

/// The future of a decision a remote store makes.
pub(super) type Pending = std::pin::Pin<Box<dyn Future<Output = RequestOutcome> + Send>>;

/// The id of a route's tier's limits: `<route> tier=<tier>`.
fn tier_id(route: &str, tier: &str) -> String {
    format!("{route} tier={tier}")
}

/// One limited route (or the default, or the per-IP limit).
#[derive(Debug)]
pub struct Route {
    pub(super) template: Option<Template>,
    name: String,
    cost: u64,
    /// Whether its requests need a valid API key.
    pub(super) requires_key: bool,
    shadow: bool,
    shadow_headers: bool,
    pub(super) default: Limiting,
    pub(super) tiers: BTreeMap<String, Limiting>,
    algorithms: String,
    /// `cost_from_response`: the response header its requests are settled at.
    cost_from_response: Option<http::HeaderName>,
    /// `cost_from_request`: the request header trusted identities declare a cost in.
    cost_from_request: Option<http::HeaderName>,
    /// Its counters (carried over by a reload that keeps the route's name).
    pub stats: Arc<RouteStats>,
}

impl Route {
    /// The route `name` (its template, `*` for the default) limited by `limits` and
    /// `globals`; `--dry-run` puts it in shadow mode whatever its own mode.
    pub(super) fn new(
        template: Option<Template>,
        name: &str,
        limits: &RouteLimits,
        globals: &[Limit],
        cx: &Build<'_>,
    ) -> Result<Self, Error> {
        let name = name.to_owned();
        let default = Limiting::new(&limits.limits, &name, &name, globals, cx)?;
        let tiers = limits
            .tiers
            .iter()
            .map(|(tier, l)| {
                let id = tier_id(&name, tier);
                Ok((tier.clone(), Limiting::new(l, &name, &id, globals, cx)?))
            })
            .collect::<Result<_, Error>>()?;
        Ok(Self {
            algorithms: default.algorithms(),
            template,
            stats: cx.reuse.stats(&name),
            name,
            requires_key: cx.requires_key,
            cost: limits.cost,
            shadow: cx.dry_run || limits.mode == Mode::Shadow,
            shadow_headers: limits.shadow_headers,
            cost_from_response: limits.cost_from_response.clone(),
            cost_from_request: limits.cost_from_request.clone(),
            default,
            tiers,
        })
    }

    /// Each limit's refusal counter of every several-limit set: (route, tier —
    /// `default` for the route's own —, limit name, counter).
    pub(super) fn refusal_counters(&self) -> Vec<(&str, &str, &str, &Counter)> {
        let sets = std::iter::once(("default", &self.default))
            .chain(self.tiers.iter().map(|(t, l)| (t.as_str(), l)));
        let mut out = Vec::new();
        for (tier, limiting) in sets {
            if let Limiting::All {
                headers, refusals, ..
            } = limiting
            {
                for (name, c) in headers.names().zip(refusals) {
                    out.push((self.name.as_str(), tier, name, c));
                }
            }
        }
        out
    }

    /// Every set of limits with its id: the route's, then each tier's.
    pub(super) fn limitings(&self) -> impl Iterator<Item = (String, &Limiting)> {
        std::iter::once((self.name.clone(), &self.default)).chain(
            self.tiers
                .iter()
                .map(|(tier, l)| (tier_id(&self.name, tier), l)),
        )
    }

    /// The route's name in headers, keys and metrics: its template, or `*` for the
    /// default.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The algorithms of its default limits (`gcra+sliding-window` for several).
    pub fn algorithms(&self) -> &str {
        &self.algorithms
    }

    /// True when its requests are settled at a response header (`cost_from_response`).
    pub fn settles_from_response(&self) -> bool {
        self.cost_from_response.is_some()
    }

    /// `cost_from_request`: the request header a trusted identity declares a cost in.
    pub(super) fn cost_from_request(&self) -> Option<&http::HeaderName> {
        self.cost_from_request.as_ref()
    }

    /// The key of `key` (an identity's) on a shared store for the one-limit path:
    /// `<route> <identity>` (a route name holds no space before its end, so the pair is
    /// unambiguous).
    pub(super) fn shared_key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.name.len() + 1 + key.len());
        full.push_str(&self.name);
        full.push(' ');
        full.push_str(key);
        full
    }

    /// True when it decides and counts but never refuses.
    pub fn is_shadow(&self) -> bool {
        self.shadow
    }

    /// The limits an identity of `tier` spends from (an unknown or absent tier: the
    /// route's own).
    pub(super) fn limiting(&self, tier: Option<&str>) -> &Limiting {
        tier.and_then(|t| self.tiers.get(t))
            .unwrap_or(&self.default)
    }

    /// Decides one request of `key` (an identity's key) whose identity has `tier`.
    ///
    /// One limit: key = identity + route. Each route has its own in-memory limiter, so
    /// the identity alone keys it (no allocation); a shared store gets `<route>
    /// <identity>` (a route name holds no space before its end, so the pair is
    /// unambiguous). Several limits: the identity is the key of each in memory (each
    /// limit its own store) and the hash tag of each on Redis (each limit its own id).
    ///
    /// `note` (the access log's, when it is on) hears the verdict. `declared` is the
    /// cost a trusted identity declared (`cost_from_request`), else the route's applies;
    /// on a `cost_from_response` route it is the reservation settled at the response.
    pub(super) fn check(
        self: &Arc<Self>,
        key: &Arc<str>,
        tier: Option<&str>,
        note: Option<DecisionNote>,
        declared: Option<u64>,
    ) -> Check<Pending> {
        let started = Instant::now();
        let cost = declared.unwrap_or(self.cost);
        let settle = |route: &Arc<Self>| {
            let header = route.cost_from_response.clone()?;
            Some(SettleOn {
                route: Arc::clone(route),
                key: Arc::clone(key),
                tier: tier.map(Arc::from),
                header,
            })
        };
        let limiting = self.limiting(tier);
        match limiting {
            Limiting::One {
                limiter, headers, ..
            } => {
                if let Some(result) = limiter.decide_now(key, cost) {
                    let settle = settle(self);
                    return Check::Ready(self.record(
                        result,
                        headers,
                        started,
                        note.as_ref(),
                        |o| self.settled(o, settle, cost),
                    ));
                }
            }
            Limiting::All { limiter, .. } => {
                if let Some(result) = limiter.acquire_now(key, cost) {
                    let settle = settle(self);
                    return Check::Ready(self.record_held(
                        result,
                        limiting,
                        started,
                        note.as_ref(),
                        |o| self.settled(o, settle, cost),
                    ));
                }
            }
        }
        let settle = settle(self);
        let route = Arc::clone(self);
        let (key, tier) = (Arc::clone(key), tier.map(Arc::<str>::from));
        Check::Pending(Box::pin(async move {
            match route.limiting(tier.as_deref()) {
                Limiting::One {
                    limiter, headers, ..
                } => {
                    let result = limiter.decide(&route.shared_key(&key), cost).await;
                    route.record(result, headers, started, note.as_ref(), |o| {
                        route.settled(o, settle, cost)
                    })
                }
                limiting @ Limiting::All { limiter, .. } => {
                    let result = limiter.acquire(&key, cost).await;
                    route.record_held(result, limiting, started, note.as_ref(), |o| {
                        route.settled(o, settle, cost)
                    })
                }
            }
        }))
    }

    /// Every set of limits: the route's, then each tier's.
    fn all(&self) -> impl Iterator<Item = &Limiting> {
        std::iter::once(&self.default).chain(self.tiers.values())
    }

    /// Forgets idle in-memory keys; how many.
    pub(super) fn sweep(&self) -> usize {
        self.all().map(Limiting::sweep).sum()
    }

    /// Keys held in memory by the route's own limits (`None` on Redis).
    pub(super) fn memory_keys(&self) -> Option<usize> {
        self.all().map(Limiting::memory_keys).sum()
    }

    /// Evictions and refusals so far, summed over the route's one-limit stores (`None`
    /// when it has none in memory).
    pub(super) fn memory_counters(&self) -> Option<limiter_core::store::StoreStats> {
        self.all()
            .filter_map(Limiting::memory_counters)
            .reduce(|a, b| limiter_core::store::StoreStats {
                keys: a.keys + b.keys,
                bytes: a.bytes + b.bytes,
                evicted_idle: a.evicted_idle + b.evicted_idle,
                evicted_forced: a.evicted_forced + b.evicted_forced,
                evicted_throttled: a.evicted_throttled + b.evicted_throttled,
                refused: a.refused + b.refused,
            })
    }

    fn count_fallback(&self, by: DecidedBy) {
        match by {
            DecidedBy::Store => {}
            DecidedBy::FailOpen => self.stats.fallback_open.inc(),
            DecidedBy::Local => self.stats.fallback_local.inc(),
            DecidedBy::FailClosed => self.stats.fallback_closed.inc(),
        }
    }

    /// Records one limiter's answer and maps it to the layer's outcome (the one mapping,
    /// [`RequestOutcome::from_result`]), shadow mode applied.
    /// `attach` adds what the response must run (the settle of `cost_from_response`)
    /// before shadow mode lets a refusal through.
    pub(super) fn record(
        &self,
        result: LimitResult<Verdict>,
        headers: &Arc<PolicyHeaders>,
        started: Instant,
        note: Option<&DecisionNote>,
        attach: impl FnOnce(RequestOutcome) -> RequestOutcome,
    ) -> RequestOutcome {
        self.stats.decision_latency.observe(started.elapsed());
        if let Ok(verdict) = &result {
            self.count_fallback(verdict.decided_by);
            if let Some(note) = note {
                note.note(&self.name, verdict, self.shadow);
            }
        }
        self.finish(attach(RequestOutcome::from_result(result, headers)))
    }

    /// [`record_all`](Self::record_all) for an admission of the set `limiting` that may
    /// hold in-flight slots: the permit rides with the response (released when its body
    /// ends or the client goes away), counted in the set's `holding` gauge meanwhile.
    pub(super) fn record_held(
        &self,
        result: LimitResult<Admission>,
        limiting: &Limiting,
        started: Instant,
        note: Option<&DecisionNote>,
        attach: impl FnOnce(RequestOutcome) -> RequestOutcome,
    ) -> RequestOutcome {
        let Limiting::All {
            headers,
            refusals,
            holding,
            ..
        } = limiting
        else {
            // Only a set of limits acquires; answered rather than panicking.
            return RequestOutcome::Unlimited;
        };
        let (result, permit) = match result {
            Ok(Admission { verdict, permit }) => (Ok(verdict), permit),
            Err(e) => (Err(e), Permit::default()),
        };
        let outcome = self.record_all(result, headers, refusals, started, note, attach);
        if permit.is_empty() {
            return outcome;
        }
        outcome.with_guard(ResponseGuard::new(Holding::new(permit, holding)))
    }

    /// Each in-flight limit's slots held by this gateway's requests now, per set:
    /// (route, tier, limit name, requests holding).
    pub(super) fn holding(&self) -> Vec<(&str, &str, &str, i64)> {
        let sets = std::iter::once(("default", &self.default))
            .chain(self.tiers.iter().map(|(t, l)| (t.as_str(), l)));
        let mut out = Vec::new();
        for (tier, limiting) in sets {
            if let Limiting::All {
                limiter,
                headers,
                holding,
                ..
            } = limiting
            {
                let now = holding.load(Ordering::Relaxed);
                let limits = limiter.set().limits().iter().zip(headers.names());
                for (_, name) in limits.filter(|(l, _)| matches!(l.rule(), Rule::InFlight(_))) {
                    out.push((self.name.as_str(), tier, name, now));
                }
            }
        }
        out
    }

    /// [`record`](Self::record) for several limits.
    pub(super) fn record_all(
        &self,
        result: LimitResult<LimitsVerdict>,
        headers: &Arc<HeaderList>,
        refusals: &[Counter],
        started: Instant,
        note: Option<&DecisionNote>,
        attach: impl FnOnce(RequestOutcome) -> RequestOutcome,
    ) -> RequestOutcome {
        self.stats.decision_latency.observe(started.elapsed());
        if let Ok(verdict) = &result {
            self.count_fallback(verdict.decided_by);
            if let Some(note) = note {
                note.note(&self.name, &verdict.verdict(), self.shadow);
            }
            if !verdict.decision.allowed && !verdict.is_unavailable() {
                for i in verdict.decision.refusing() {
                    if let Some(c) = refusals.get(i) {
                        c.inc();
                    }
                }
            }
        }
        self.finish(attach(RequestOutcome::from_limits(result, headers)))
    }

    /// `outcome` with the settle of its reservation of `cost` attached, on a
    /// `cost_from_response` route (`settle` is `None` elsewhere: unchanged).
    fn settled(
        &self,
        outcome: RequestOutcome,
        settle: Option<SettleOn>,
        cost: u64,
    ) -> RequestOutcome {
        match settle {
            Some(settle) => settle.attach(outcome, cost),
            None => outcome,
        }
    }

    /// Counts the outcome; a shadow route lets a refusal by its limits through (with
    /// the headers of the decision when `shadow_headers`, else none).
    fn finish(&self, outcome: RequestOutcome) -> RequestOutcome {
        let counter = match outcome.refusal_status() {
            None => &self.stats.allowed,
            Some(StatusCode::TOO_MANY_REQUESTS) if self.shadow => {
                self.stats.shadow_denied.inc();
                return self.let_through(outcome);
            }
            Some(StatusCode::TOO_MANY_REQUESTS) => &self.stats.denied,
            Some(StatusCode::SERVICE_UNAVAILABLE) => &self.stats.unavailable,
            Some(_) => &self.stats.rejected,
        };
        counter.inc();
        outcome
    }

    /// A refused outcome turned into one that passes: the decision's headers (without
    /// `Retry-After`) when the route sends them in shadow mode, else none.
    fn let_through(&self, outcome: RequestOutcome) -> RequestOutcome {
        // Whatever the response must still run (a response-lifetime guard) stays.
        let (outcome, guard) = outcome.into_parts();
        if !self.shadow_headers {
            return RequestOutcome::Unlimited.with_guard(guard);
        }
        let passed = match outcome {
            RequestOutcome::Decided {
                mut verdict,
                policy,
            } => {
                verdict.decision.allowed = true;
                RequestOutcome::Decided { verdict, policy }
            }
            RequestOutcome::DecidedAll {
                mut verdict,
                headers,
            } => {
                verdict.decision.allowed = true;
                RequestOutcome::DecidedAll { verdict, headers }
            }
            _ => RequestOutcome::Unlimited,
        };
        passed.with_guard(guard)
    }
}
