//! One limited route: its limits (one, or several decided all-or-nothing with the
//! global ones), per tier, its mode; how it checks a request (`record.rs`
//! maps the answer, `stats.rs` counts it).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use limiter_core::limits::{Limit, Rule};
use limiter_core::tower::{Check, RequestOutcome};

use super::cost::SettleOn;
pub(super) use super::limiting::{Build, Limiting};
use super::stats::RouteStats;
use crate::Error;
use crate::access_log::DecisionNote;
use crate::config::{Mode, RouteLimits};
use crate::metrics::Counter;
use crate::routes::Template;

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
    pub(super) name: String,
    cost: u64,
    /// Whether its requests need a valid API key.
    pub(super) requires_key: bool,
    pub(super) shadow: bool,
    pub(super) shadow_headers: bool,
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
}
