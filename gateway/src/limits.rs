//! The gateway's rate limiting: one limiter per route, keyed by identity, plugged into
//! `limiter-core`'s tower layer as a [`RequestLimiter`].
//!
//! The guarantee: a request is counted against exactly one route limit — the first
//! route whose template matches its normalised path, else the default — under the key
//! *identity + route template*, never the raw path; paths no route matches pass
//! unlimited when there is no default. The identity is the server's
//! [`Identity`](crate::identity::Identity) (never a header read here). With
//! `[identity.per_ip]`, every request first passes a limit keyed by its client IP,
//! whatever its identity; a request refused there is not counted on its route. A route
//! (or `[identity]`) with `require_api_key` answers `401` to requests without a
//! verified key, before any limit. The in-memory path decides synchronously (no
//! allocation beyond the key, no future); a remote store's decision is awaited.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, StatusCode};
use limiter_core::tower::{Check, PolicyHeaders, RequestLimiter, RequestOutcome};
use limiter_core::{DecidedBy, RateLimiter, Result as LimitResult, Verdict};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::Error;
use crate::config::{Config, LimitConfig};
use crate::contract::metrics as names;
use crate::identity::{Identity, IdentitySource, IdentityStats};
use crate::metrics::{Counter, DECISION_BUCKETS, DescriptorEncoder, Histogram, encode_family};
use crate::routes::{Template, normalise};
use crate::store::Stores;

/// Per-route counters.
#[derive(Debug)]
pub struct RouteStats {
    /// Requests admitted by the store.
    pub allowed: Counter,
    /// Requests refused with `429`.
    pub denied: Counter,
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
}

impl Default for RouteStats {
    fn default() -> Self {
        Self {
            allowed: Counter::default(),
            denied: Counter::default(),
            rejected: Counter::default(),
            unavailable: Counter::default(),
            fallback_open: Counter::default(),
            fallback_closed: Counter::default(),
            fallback_local: Counter::default(),
            decision_latency: Histogram::new(DECISION_BUCKETS),
        }
    }
}

/// One limited route (or the default, or the per-IP limit).
#[derive(Debug)]
pub struct Route {
    template: Option<Template>,
    name: String,
    limit: LimitConfig,
    /// Whether its requests need a valid API key.
    requires_key: bool,
    headers: Arc<PolicyHeaders>,
    limiter: RateLimiter,
    /// Its counters.
    pub stats: RouteStats,
}

impl Route {
    /// The route's name in headers, keys and metrics: its template, or `*` for the
    /// default.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Records a limiter's answer and maps it to the layer's outcome (the one mapping,
    /// [`RequestOutcome::from_result`]).
    fn record(&self, result: LimitResult<Verdict>, started: Instant) -> RequestOutcome {
        self.stats.decision_latency.observe(started.elapsed());
        if let Ok(verdict) = &result {
            match verdict.decided_by {
                DecidedBy::Store => {}
                DecidedBy::FailOpen => self.stats.fallback_open.inc(),
                DecidedBy::Local => self.stats.fallback_local.inc(),
                DecidedBy::FailClosed => self.stats.fallback_closed.inc(),
            }
        }
        let outcome = RequestOutcome::from_result(result, &self.headers);
        let counter = match outcome.refusal_status() {
            None => &self.stats.allowed,
            Some(StatusCode::TOO_MANY_REQUESTS) => &self.stats.denied,
            Some(StatusCode::SERVICE_UNAVAILABLE) => &self.stats.unavailable,
            Some(_) => &self.stats.rejected,
        };
        counter.inc();
        outcome
    }
}

/// Every route's limiter, the per-IP limit and the stores: the gateway's
/// [`RequestLimiter`]. Requests are keyed by the [`Identity`] the server put in their
/// extensions.
#[derive(Debug)]
pub struct GatewayLimiter {
    routes: Vec<Arc<Route>>,
    default: Option<Arc<Route>>,
    /// `[identity.per_ip]`: passed by every request before its route's limit.
    per_ip: Option<Arc<Route>>,
    /// Whether paths no route (and no default) matches need an API key.
    unmatched_requires_key: bool,
    /// Identity refusals (a route's missing key counted here, the resolver's too).
    identity_stats: Arc<IdentityStats>,
    stores: Stores,
}

/// The name of the per-IP limit in headers, keys and metrics.
pub const PER_IP: &str = "per-ip";

impl GatewayLimiter {
    /// Builds the limiters of `config` on its store (Redis is connected in the
    /// background: see [`Stores::open`]).
    pub fn new(config: &Config) -> Result<Self, Error> {
        let stores = Stores::open(&config.store)?;
        let global_key = config.identity.require_api_key;
        let build =
            |template: Option<Template>, name: String, limit: LimitConfig, key: Option<bool>| {
                Arc::new(Route {
                    headers: Arc::new(PolicyHeaders::new(&name, &limit.policy)),
                    limiter: stores.limiter(limit.policy),
                    template,
                    name,
                    limit,
                    requires_key: key.unwrap_or(global_key),
                    stats: RouteStats::default(),
                })
            };
        let routes = config
            .routes
            .iter()
            .map(|r| {
                let name = r.path.as_str().to_owned();
                build(Some(r.path.clone()), name, r.limit, r.require_api_key)
            })
            .collect();
        let default = config
            .default
            .map(|limit| build(None, "*".to_owned(), limit, config.default_requires_key));
        let per_ip = config
            .identity
            .per_ip
            .map(|limit| build(None, PER_IP.to_owned(), limit, Some(false)));
        Ok(Self {
            routes,
            default,
            per_ip,
            unmatched_requires_key: global_key,
            identity_stats: Arc::default(),
            stores,
        })
    }

    /// Where identity refusals are counted (give it to the resolver too).
    pub fn identity_stats(&self) -> &Arc<IdentityStats> {
        &self.identity_stats
    }

    /// The stores, for readiness.
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// The route that limits `path`, if any.
    pub fn route_for(&self, path: &str) -> Option<&Arc<Route>> {
        let segments = normalise(path);
        self.routes
            .iter()
            .find(|r| r.template.as_ref().is_some_and(|t| t.matches(&segments)))
            .or(self.default.as_ref())
    }

    /// Every route, then the default, then the per-IP limit.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.routes
            .iter()
            .chain(self.default.iter())
            .chain(self.per_ip.iter())
    }

    /// True when no request is ever limited.
    pub fn is_unlimited(&self) -> bool {
        self.routes.is_empty() && self.default.is_none() && self.per_ip.is_none()
    }

    /// Forgets idle in-memory keys; returns how many went.
    pub fn sweep(&self) -> usize {
        self.routes().map(|r| r.limiter.sweep()).sum()
    }

    /// Keeps sweeping every `every` until the returned task is aborted.
    pub fn spawn_sweeper(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let gone = this.sweep();
                if gone > 0 {
                    tracing::debug!(keys = gone, "swept idle rate-limit keys");
                }
            }
        })
    }

    /// Writes the per-route families, then the store's.
    pub fn encode_metrics(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        fn labels(r: &Route) -> [(&'static str, &str); 2] {
            [
                (names::LABEL_ROUTE, r.name.as_str()),
                (names::LABEL_ALGORITHM, r.limit.policy.kind.name()),
            ]
        }
        fn with<'r>(
            r: &'r Route,
            key: &'static str,
            value: &'r str,
        ) -> [(&'static str, &'r str); 3] {
            let [route, algorithm] = labels(r);
            [route, algorithm, (key, value)]
        }
        encode_family(
            encoder,
            names::DECISIONS.name,
            "Rate-limit decisions, by route, algorithm and outcome (allowed, denied = 429, rejected = 400 or 401, unavailable = 503).",
            MetricType::Counter,
            self.routes().flat_map(|r| {
                [
                    (names::OUTCOME_ALLOWED, &r.stats.allowed),
                    (names::OUTCOME_DENIED, &r.stats.denied),
                    (names::OUTCOME_REJECTED, &r.stats.rejected),
                    (names::OUTCOME_UNAVAILABLE, &r.stats.unavailable),
                ]
                .map(|(outcome, c)| (with(r, names::LABEL_OUTCOME, outcome), c))
            }),
        )?;
        encode_family(
            encoder,
            names::STORE_FALLBACKS.name,
            "Decisions made by the failure policy because the store failed, by route and policy.",
            MetricType::Counter,
            self.routes().flat_map(|r| {
                [
                    ("fail-open", &r.stats.fallback_open),
                    ("fail-closed", &r.stats.fallback_closed),
                    ("local", &r.stats.fallback_local),
                ]
                .map(|(policy, c)| (with(r, names::LABEL_POLICY, policy), c))
            }),
        )?;
        encode_family(
            encoder,
            names::DECISION_SECONDS.name,
            "Time to decide one request (memory: the check; Redis: the round trip).",
            MetricType::Histogram,
            self.routes()
                .map(|r| (labels(r), &r.stats.decision_latency)),
        )?;
        // Each route's key count, read from its store's shards (not by walking its keys).
        let keys: Vec<_> = self
            .routes()
            .filter_map(|r| Some((labels(r), ConstGauge::new(r.limiter.memory_keys()? as i64))))
            .collect();
        encode_family(
            encoder,
            names::LIMITER_KEYS.name,
            "Keys held by each route's in-memory limiter.",
            MetricType::Gauge,
            keys.iter().map(|(l, g)| (*l, g)),
        )?;
        self.identity_stats.encode(encoder)?;
        self.stores.encode_metrics(encoder)
    }
}

/// The future of a decision a remote store makes.
type Pending = std::pin::Pin<Box<dyn Future<Output = RequestOutcome> + Send>>;

impl Route {
    /// Decides one request of `key` (an identity's key) on this route. Key = identity +
    /// route: each route has its own in-memory limiter, so the identity alone keys it
    /// (no allocation); a shared store gets `<route> <identity>` (a route name holds no
    /// space before its end, so the pair is unambiguous).
    fn check(self: &Arc<Self>, key: &Arc<str>) -> Check<Pending> {
        let started = Instant::now();
        let cost = self.limit.cost;
        if let Some(result) = self.limiter.decide_now(key, cost) {
            return Check::Ready(self.record(result, started));
        }
        let mut full = String::with_capacity(self.name.len() + 1 + key.len());
        full.push_str(&self.name);
        full.push(' ');
        full.push_str(key);
        let route = Arc::clone(self);
        Check::Pending(Box::pin(async move {
            let result = route.limiter.decide(&full, cost).await;
            route.record(result, started)
        }))
    }
}

impl<B> RequestLimiter<B> for GatewayLimiter {
    type Future = Pending;

    fn check(&self, req: &Request<B>) -> Check<Self::Future> {
        let Some(identity) = req.extensions().get::<Identity>() else {
            // The server resolves every request; a caller that did not is refused
            // rather than counted against someone.
            return Check::Ready(RequestOutcome::Rejected {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                reason: "request identity not resolved",
            });
        };
        let route = self.route_for(req.uri().path());
        let requires_key = route.map_or(self.unmatched_requires_key, |r| r.requires_key);
        if requires_key && identity.source != IdentitySource::ApiKey {
            self.identity_stats.api_key_required.inc();
            if let Some(r) = route {
                r.stats.rejected.inc();
            }
            return Check::Ready(RequestOutcome::Rejected {
                status: StatusCode::UNAUTHORIZED,
                reason: "API key required",
            });
        }
        let Some(per_ip) = &self.per_ip else {
            return match route {
                Some(route) => route.check(&identity.key),
                None => Check::Ready(RequestOutcome::Unlimited),
            };
        };
        // The per-IP limit first: a refusal there ends it, whatever the identity.
        let Some(route) = route else {
            return per_ip.check(&identity.ip_key);
        };
        match per_ip.check(&identity.ip_key) {
            Check::Ready(outcome) if outcome.refusal_status().is_some() => Check::Ready(outcome),
            Check::Ready(_) => route.check(&identity.key),
            Check::Pending(by_ip) => {
                let (route, key) = (Arc::clone(route), Arc::clone(&identity.key));
                Check::Pending(Box::pin(async move {
                    let outcome = by_ip.await;
                    if outcome.refusal_status().is_some() {
                        return outcome;
                    }
                    match route.check(&key) {
                        Check::Ready(outcome) => outcome,
                        Check::Pending(by_route) => by_route.await,
                    }
                }))
            }
        }
    }
}
