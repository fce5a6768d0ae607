//! The gateway's rate limiting: the limits of each route, keyed by identity, plugged
//! into `limiter-core`'s tower layer as a [`RequestLimiter`].
//!
//! The guarantee: a request is counted against exactly one route — the first route
//! whose template matches its normalised path, else the default — under the key
//! *identity + route template*, never the raw path, and against every `[[global]]`
//! limit under its identity alone. A route with several limits (or any global one)
//! admits a request only if every limit admits it, all-or-nothing
//! (`limiter_core::limits`); a route with one limit keeps the single-limit fast path.
//! The identity's tier picks the route's limits for that tier (`[route.tiers.NAME]`).
//! A shadow route (or a `--dry-run` gateway) decides and counts but never refuses.
//! Paths no route matches pass unlimited when there is no default and no global limit. The identity is the server's
//! [`Identity`](crate::identity::Identity) (never a header read here). With
//! `[identity.per_ip]`, every request first passes a limit keyed by its client IP,
//! whatever its identity; a request refused there is not counted on its route. A route
//! (or `[identity]`) with `require_api_key` answers `401` to requests without a
//! verified key, before any limit. The in-memory path decides synchronously (no
//! allocation beyond the key, no future); a remote store's decision is awaited.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, StatusCode};
use limiter_core::limits::Limit;
use limiter_core::tower::{Check, RequestLimiter, RequestOutcome};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::Error;
use crate::config::{Config, Mode, RouteLimits};
use crate::contract::metrics as names;
use crate::identity::{Identity, IdentitySource, IdentityStats};
use crate::metrics::{DescriptorEncoder, encode_family};
use crate::routes::normalise;
use crate::store::Stores;

mod route;

use route::Pending;
pub use route::{Route, RouteStats};

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
        let globals: Vec<Limit> = config
            .global
            .iter()
            .filter_map(|g| {
                let name = g.name.as_deref()?;
                let id = format!("global {name}");
                Some(Limit::new(name, &id, g.policy, config.store.max_keys))
            })
            .collect();
        let build = |template, name: &str, limits: &RouteLimits, globals: &[Limit], key| {
            Route::new(
                template,
                name,
                limits,
                globals,
                &stores,
                config.dry_run,
                key,
            )
            .map(Arc::new)
        };
        let mut routes = Vec::with_capacity(config.routes.len());
        for r in &config.routes {
            let key = r.require_api_key.unwrap_or(global_key);
            let path = Some(r.path.clone());
            routes.push(build(path, r.path.as_str(), &r.limit, &globals, key)?);
        }
        // Paths no route matches: the default's limits, else the global ones alone.
        let default = match (&config.default, globals.is_empty()) {
            (Some(limits), _) => Some(limits.clone()),
            (None, false) => Some(RouteLimits {
                limits: Vec::new(),
                cost: 1,
                mode: Mode::Enforce,
                shadow_headers: false,
                tiers: Default::default(),
            }),
            (None, true) => None,
        };
        let default_key = config.default_requires_key.unwrap_or(global_key);
        let default = default
            .map(|l| build(None, "*", &l, &globals, default_key))
            .transpose()?;
        // The per-IP limit stands alone: the global limits count identities, not IPs.
        let per_ip = config
            .identity
            .per_ip
            .as_ref()
            .map(|l| build(None, PER_IP, l, &[], false))
            .transpose()?;
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
        self.routes().map(|r| r.sweep()).sum()
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
                (names::LABEL_ROUTE, r.name()),
                (names::LABEL_ALGORITHM, r.algorithms()),
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
            "Rate-limit decisions, by route, algorithm and outcome (allowed, denied = 429, shadow_denied = refused by a shadow route and let through, rejected = 400 or 401, unavailable = 503).",
            MetricType::Counter,
            self.routes().flat_map(|r| {
                [
                    (names::OUTCOME_ALLOWED, &r.stats.allowed),
                    (names::OUTCOME_DENIED, &r.stats.denied),
                    (names::OUTCOME_SHADOW_DENIED, &r.stats.shadow_denied),
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
            .filter_map(|r| Some((labels(r), ConstGauge::new(r.memory_keys()? as i64))))
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
        // Refused for its key: an unknown one (guessing keys), or none where required.
        let key_refusal = if identity.unknown_api_key {
            Some(UNKNOWN_KEY)
        } else if requires_key && identity.source != IdentitySource::ApiKey {
            Some(KEY_REQUIRED)
        } else {
            None
        };
        let next = Next {
            key_refusal,
            route: route.cloned(),
            key: Arc::clone(&identity.key),
            tier: identity.tier.clone(),
            stats: Arc::clone(&self.identity_stats),
        };
        let Some(per_ip) = &self.per_ip else {
            return next.check();
        };
        // The per-IP limit first, for every request — also one refused for its key, so
        // guessing keys from one address is throttled too: a refusal there ends it.
        match per_ip.check(&identity.ip_key, None) {
            Check::Ready(outcome) if outcome.refusal_status().is_some() => Check::Ready(outcome),
            Check::Ready(_) => next.check(),
            Check::Pending(by_ip) => Check::Pending(Box::pin(async move {
                let outcome = by_ip.await;
                if outcome.refusal_status().is_some() {
                    return outcome;
                }
                match next.check() {
                    Check::Ready(outcome) => outcome,
                    Check::Pending(by_route) => by_route.await,
                }
            })),
        }
    }
}

const UNKNOWN_KEY: &str = "unknown API key";
const KEY_REQUIRED: &str = "API key required";

/// What follows the per-IP limit: the `401` of a request refused for its key, else its
/// route's limits (owned, so it can run after a remote per-IP decision).
struct Next {
    key_refusal: Option<&'static str>,
    route: Option<Arc<Route>>,
    key: Arc<str>,
    tier: Option<Arc<str>>,
    stats: Arc<IdentityStats>,
}

impl Next {
    fn check(self) -> Check<Pending> {
        if let Some(reason) = self.key_refusal {
            if reason == KEY_REQUIRED {
                self.stats.api_key_required.inc();
            }
            if let Some(r) = &self.route {
                r.stats.rejected.inc();
            }
            return Check::Ready(RequestOutcome::Rejected {
                status: StatusCode::UNAUTHORIZED,
                reason,
            });
        }
        match &self.route {
            Some(route) => route.check(&self.key, self.tier.as_deref()),
            None => Check::Ready(RequestOutcome::Unlimited),
        }
    }
}
