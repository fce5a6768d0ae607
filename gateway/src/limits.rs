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

use arc_swap::ArcSwap;
use http::{Request, StatusCode};
use limiter_core::tower::{Check, RequestLimiter, RequestOutcome};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::Error;
use crate::access_log::DecisionNote;
use crate::config::{Config, StoreConfig};
use crate::contract::metrics as names;
use crate::identity::{Identity, IdentitySource, IdentityStats};
use crate::metrics::{Counter, DescriptorEncoder, encode_family};
use crate::store::Stores;

mod cost;
mod limiting;
mod record;
mod reload;
mod route;
mod stats;
mod table;

pub use cost::SettleStats;
pub use reload::spawn_reloader;
use route::Pending;
pub use route::Route;
pub use stats::RouteStats;
use table::{Reuse, Table};

/// Every route's limiter, the per-IP limit and the stores: the gateway's
/// [`RequestLimiter`]. Requests are keyed by the [`Identity`] the server put in their
/// extensions. The route table is swapped whole by [`reload`](Self::reload).
#[derive(Debug)]
pub struct GatewayLimiter {
    table: ArcSwap<Table>,
    /// Identity refusals (a route's missing key counted here, the resolver's too).
    identity_stats: Arc<IdentityStats>,
    stores: Stores,
    /// The store the limits were built on: a reload may not change it.
    store_config: StoreConfig,
    reloads: Reloads,
}

/// Reloads of the configuration so far.
#[derive(Debug, Default)]
struct Reloads {
    applied: Counter,
    refused: Counter,
}

/// What a reload kept and what it started afresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Limits whose definition did not change: every key keeps its state.
    pub kept: usize,
    /// Limits new or changed: every key starts with a full allowance (in memory).
    pub fresh: usize,
}

/// The name of the per-IP limit in headers, keys and metrics.
pub const PER_IP: &str = "per-ip";

impl GatewayLimiter {
    /// Builds the limiters of `config` on its store (Redis is connected in the
    /// background: see [`Stores::open`]).
    pub fn new(config: &Config) -> Result<Self, Error> {
        let stores = Stores::open(&config.store)?;
        let table = Table::build(config, &stores, &Reuse::default())?;
        Ok(Self {
            table: ArcSwap::from_pointee(table),
            identity_stats: Arc::default(),
            stores,
            store_config: config.store.clone(),
            reloads: Reloads::default(),
        })
    }

    /// Replaces the routes, limits, tiers and global limits with `config`'s, keeping the
    /// state of every limit whose definition did not change (see [`table`] for the
    /// rule); requests in flight finish on the table they started with. Refused, and
    /// counted, when `config` changes `[store]` (that needs a restart) or its limits
    /// cannot be built; the running table stays.
    pub fn reload(&self, config: &Config) -> Result<ReloadSummary, Error> {
        let result = self.try_reload(config);
        match &result {
            Ok(_) => self.reloads.applied.inc(),
            Err(_) => self.reloads.refused.inc(),
        }
        result
    }

    fn try_reload(&self, config: &Config) -> Result<ReloadSummary, Error> {
        if config.store != self.store_config {
            return Err(Error::Invalid(
                "[store] changed: the store is kept until a restart".to_owned(),
            ));
        }
        let reuse = Reuse::from(&self.table.load());
        let table = Table::build(config, &self.stores, &reuse)?;
        self.table.store(Arc::new(table));
        Ok(ReloadSummary {
            kept: reuse.kept.get(),
            fresh: reuse.fresh.get(),
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
    pub fn route_for(&self, path: &str) -> Option<Arc<Route>> {
        self.table.load().route_for(path).cloned()
    }

    /// Every route, then the default, then the per-IP limit (of the table now).
    pub fn routes(&self) -> Vec<Arc<Route>> {
        self.table.load().all().cloned().collect()
    }

    /// True when no request is ever limited.
    pub fn is_unlimited(&self) -> bool {
        let t = self.table.load();
        t.routes.is_empty() && t.default.is_none() && t.per_ip.is_none()
    }

    /// Forgets idle in-memory keys; returns how many went.
    pub fn sweep(&self) -> usize {
        self.table.load().all().map(|r| r.sweep()).sum()
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
        let table = self.table.load();
        let routes = || table.all().map(|r| &**r);
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
            routes().flat_map(|r| {
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
            routes().flat_map(|r| {
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
            routes().map(|r| (labels(r), &r.stats.decision_latency)),
        )?;
        // Each route's key count, read from its store's shards (not by walking its keys).
        let keys: Vec<_> = routes()
            .filter_map(|r| Some((labels(r), ConstGauge::new(r.memory_keys()? as i64))))
            .collect();
        encode_family(
            encoder,
            names::LIMITER_KEYS.name,
            "Keys held by each route's in-memory limiter.",
            MetricType::Gauge,
            keys.iter().map(|(l, g)| (*l, g)),
        )?;
        encode_family(
            encoder,
            names::COST_SETTLES.name,
            "Costs settled after the response (cost_from_response routes), by route and result (debited, credited, unchanged, refunded = the backend failed or never answered, failed = the store failed and the reservation stands).",
            MetricType::Counter,
            routes()
                .filter(|r| r.settles_from_response())
                .flat_map(|r| {
                    r.stats
                        .settles
                        .by_result()
                        .map(|(result, c)| (with(r, names::LABEL_RESULT, result), c))
                }),
        )?;
        let refusals: Vec<_> = routes().flat_map(|r| r.refusal_counters()).collect();
        encode_family(
            encoder,
            names::LIMIT_REFUSALS.name,
            "Requests each limit of a several-limit route refused, by route, tier and limit.",
            MetricType::Counter,
            refusals.iter().map(|(route, tier, limit, c)| {
                (
                    [
                        (names::LABEL_ROUTE, *route),
                        (names::LABEL_TIER, *tier),
                        (names::LABEL_LIMIT, *limit),
                    ],
                    *c,
                )
            }),
        )?;
        let holding: Vec<_> = routes()
            .flat_map(|r| {
                r.holding().into_iter().map(|(route, tier, limit, n)| {
                    (
                        route.to_owned(),
                        tier.to_owned(),
                        limit.to_owned(),
                        ConstGauge::new(n),
                    )
                })
            })
            .collect();
        encode_family(
            encoder,
            names::IN_FLIGHT_HELD.name,
            "Requests holding slots of each in-flight (concurrency) limit now, on this gateway, by route, tier and limit.",
            MetricType::Gauge,
            holding.iter().map(|(route, tier, limit, g)| {
                (
                    [
                        (names::LABEL_ROUTE, route.as_str()),
                        (names::LABEL_TIER, tier.as_str()),
                        (names::LABEL_LIMIT, limit.as_str()),
                    ],
                    g,
                )
            }),
        )?;
        encode_family(
            encoder,
            names::CONFIG_RELOADS.name,
            "Configuration reloads (SIGHUP or --watch), by result (applied, refused: the running configuration stays).",
            MetricType::Counter,
            [
                ([(names::LABEL_RESULT, "applied")], &self.reloads.applied),
                ([(names::LABEL_RESULT, "refused")], &self.reloads.refused),
            ],
        )?;
        self.identity_stats.encode(encoder)?;
        let counters: Vec<_> = routes()
            .filter_map(|r| Some((labels(r), r.memory_counters()?)))
            .collect();
        crate::metrics::encode_store_counters(encoder, &counters)?;
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
        let table = self.table.load();
        let route = table.route_for(req.uri().path());
        let requires_key = route.map_or(table.unmatched_requires_key, |r| r.requires_key);
        // Refused for its key: an unknown one (guessing keys), or none where required.
        let key_refusal = if identity.unknown_api_key {
            Some(UNKNOWN_KEY)
        } else if requires_key && identity.source != IdentitySource::ApiKey {
            Some(KEY_REQUIRED)
        } else {
            None
        };
        // A cost declared in the request header, from a trusted identity only.
        let declared = route
            .and_then(|r| r.cost_from_request())
            .and_then(|header| cost::declared(header, req.headers(), identity));
        let next = Next {
            key_refusal,
            declared,
            route: route.cloned(),
            key: Arc::clone(&identity.key),
            tier: identity.tier.clone(),
            stats: Arc::clone(&self.identity_stats),
            note: req.extensions().get::<DecisionNote>().cloned(),
        };
        let Some(per_ip) = &table.per_ip else {
            return next.check();
        };
        // The per-IP limit first, for every request — also one refused for its key, so
        // guessing keys from one address is throttled too: a refusal there ends it.
        // An admission's guard (a per-IP in-flight slot) goes on with the route's outcome.
        match per_ip.check(&identity.ip_key, None, next.note.clone(), None) {
            Check::Ready(outcome) if outcome.refusal_status().is_some() => Check::Ready(outcome),
            Check::Ready(outcome) => match (next.check(), outcome.into_parts().1) {
                (Check::Ready(by_route), guard) => Check::Ready(by_route.with_guard(guard)),
                (Check::Pending(by_route), guard) => {
                    Check::Pending(Box::pin(async move { by_route.await.with_guard(guard) }))
                }
            },
            Check::Pending(by_ip) => Check::Pending(Box::pin(async move {
                let outcome = by_ip.await;
                if outcome.refusal_status().is_some() {
                    return outcome;
                }
                let (_, guard) = outcome.into_parts();
                let by_route = match next.check() {
                    Check::Ready(outcome) => outcome,
                    Check::Pending(by_route) => by_route.await,
                };
                by_route.with_guard(guard)
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
    /// The cost a trusted identity declared (`cost_from_request`).
    declared: Option<u64>,
    route: Option<Arc<Route>>,
    key: Arc<str>,
    tier: Option<Arc<str>>,
    stats: Arc<IdentityStats>,
    /// The access log's note, when it is on.
    note: Option<DecisionNote>,
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
            Some(route) => route.check(&self.key, self.tier.as_deref(), self.note, self.declared),
            None => Check::Ready(RequestOutcome::Unlimited),
        }
    }
}
