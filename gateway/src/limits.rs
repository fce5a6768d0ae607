//! The gateway's rate limiting: one limiter per route, keyed by identity, plugged into
//! `limiter-core`'s tower layer as a [`RequestLimiter`].
//!
//! The guarantee: a request is counted against exactly one limit — the first route
//! whose template matches its normalised path, else the default — under the key
//! *identity + route template*, never the raw path; paths no route matches pass
//! unlimited when there is no default. The in-memory path decides synchronously (no
//! allocation beyond the key, no future); a remote store's decision is awaited.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, StatusCode};
use limiter_core::tower::{Check, HeaderOrIp, PolicyHeaders, RequestLimiter, RequestOutcome};
use limiter_core::{DecidedBy, RateLimiter, Result as LimitResult, Verdict};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::Error;
use crate::config::{Config, LimitConfig};
use crate::contract::metrics as names;
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

/// One limited route (or the default).
#[derive(Debug)]
pub struct Route {
    template: Option<Template>,
    name: String,
    limit: LimitConfig,
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

/// Every route's limiter, the identity extractor and the stores: the gateway's
/// [`RequestLimiter`].
#[derive(Debug)]
pub struct GatewayLimiter {
    routes: Vec<Arc<Route>>,
    default: Option<Arc<Route>>,
    identity: HeaderOrIp,
    stores: Stores,
}

impl GatewayLimiter {
    /// Builds the limiters of `config`, connecting to Redis when configured.
    pub async fn new(config: &Config) -> Result<Self, Error> {
        let identity = HeaderOrIp::new(&config.identity_header)
            .map_err(|e| Error::Invalid(format!("identity header: {e}")))?
            .with_max_len(config.identity_max_len);
        let stores = Stores::connect(&config.store).await?;
        let build = |template: Option<Template>, limit: LimitConfig| {
            let name = template
                .as_ref()
                .map_or_else(|| "*".to_owned(), |t| t.as_str().to_owned());
            Arc::new(Route {
                headers: Arc::new(PolicyHeaders::new(&name, &limit.policy)),
                limiter: stores.limiter(limit.policy),
                template,
                name,
                limit,
                stats: RouteStats::default(),
            })
        };
        let routes = config
            .routes
            .iter()
            .map(|r| build(Some(r.path.clone()), r.limit))
            .collect();
        let default = config.default.map(|limit| build(None, limit));
        Ok(Self {
            routes,
            default,
            identity,
            stores,
        })
    }

    /// The route that limits `path`, if any.
    pub fn route_for(&self, path: &str) -> Option<&Arc<Route>> {
        let segments = normalise(path);
        self.routes
            .iter()
            .find(|r| r.template.as_ref().is_some_and(|t| t.matches(&segments)))
            .or(self.default.as_ref())
    }

    /// Every route, then the default.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.routes.iter().chain(self.default.iter())
    }

    /// True when `req` would be keyed by the client's IP (no identity header), so the
    /// limiter needs the [`PeerAddr`](limiter_core::tower::PeerAddr) extension.
    pub fn identifies_by_ip<B>(&self, req: &Request<B>) -> bool {
        self.identity.needs_peer(req)
    }

    /// True when no request is ever limited.
    pub fn is_unlimited(&self) -> bool {
        self.routes.is_empty() && self.default.is_none()
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
            "Rate-limit decisions, by route, algorithm and outcome (allowed, denied = 429, rejected = 400, unavailable = 503).",
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
        self.stores.encode_metrics(encoder)
    }
}

impl<B> RequestLimiter<B> for GatewayLimiter {
    type Future = std::pin::Pin<Box<dyn Future<Output = RequestOutcome> + Send>>;

    fn check(&self, req: &Request<B>) -> Check<Self::Future> {
        let Some(route) = self.route_for(req.uri().path()) else {
            return Check::Ready(RequestOutcome::Unlimited);
        };
        let identity = match self.identity.identity(req) {
            Ok(identity) => identity,
            Err(rejection) => {
                route.stats.rejected.inc();
                return Check::Ready(RequestOutcome::rejected(&rejection));
            }
        };
        let started = Instant::now();
        let cost = route.limit.cost;
        // Key = identity + route. Each route has its own in-memory limiter, so the
        // identity alone keys it (on the stack, no allocation); a shared store gets
        // `<route> <identity>` (a template holds no space, so the pair is unambiguous).
        if route.limiter.is_memory()
            && let Some(result) = identity.with_key(|key| route.limiter.decide_now(key, cost))
        {
            return Check::Ready(route.record(result, started));
        }
        let mut key = String::with_capacity(route.name.len() + 48);
        key.push_str(&route.name);
        key.push(' ');
        identity.write_key(&mut key);
        let route = Arc::clone(route);
        Check::Pending(Box::pin(async move {
            let result = route.limiter.decide(&key, cost).await;
            route.record(result, started)
        }))
    }
}
