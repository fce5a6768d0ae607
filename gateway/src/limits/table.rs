//! The route table of one configuration, and what a reload keeps from the table it
//! replaces.
//!
//! The guarantee of a reload: a limit whose definition did not change — same route
//! (or tier, or global name), same limit name, same algorithm and quota — keeps its
//! state object, so every key keeps its allowance exactly; a changed or new limit gets
//! a fresh one in memory. A route's counters carry over by route name.

use std::collections::HashMap;
use std::sync::Arc;

use limiter_core::limits::{Limit, Rule};
use limiter_core::{Policy, RateLimiter};

use super::PER_IP;
use super::route::{Limiting, Route};
use super::stats::RouteStats;
use crate::Error;
use crate::config::{Config, Mode, RouteLimits};
use crate::routes::normalise;
use crate::store::Stores;

/// The routes of one configuration.
#[derive(Debug)]
pub(super) struct Table {
    pub(super) routes: Vec<Arc<Route>>,
    pub(super) default: Option<Arc<Route>>,
    /// `[identity.per_ip]`: passed by every request before its route's limit.
    pub(super) per_ip: Option<Arc<Route>>,
    /// Whether paths no route (and no default) matches need an API key.
    pub(super) unmatched_requires_key: bool,
}

/// What a new table may take over from the one it replaces.
#[derive(Default)]
pub(super) struct Reuse {
    /// One-limit sets by their id (`<route>` or `<route> tier=<tier>`).
    singles: HashMap<String, (Option<String>, Arc<RateLimiter>)>,
    /// Limits of several-limit sets (and global ones) by id.
    limits: HashMap<String, Limit>,
    /// Route counters by route name.
    stats: HashMap<String, Arc<RouteStats>>,
    /// How many limits were kept, and how many started fresh.
    pub(super) kept: std::cell::Cell<usize>,
    pub(super) fresh: std::cell::Cell<usize>,
}

impl Reuse {
    /// Everything `table` holds.
    pub(super) fn from(table: &Table) -> Self {
        let mut reuse = Reuse::default();
        for route in table.all() {
            reuse
                .stats
                .insert(route.name().to_owned(), Arc::clone(&route.stats));
            for (id, limiting) in route.limitings() {
                match limiting {
                    Limiting::One { limiter, name, .. } => {
                        reuse
                            .singles
                            .insert(id.to_owned(), (name.clone(), Arc::clone(limiter)));
                    }
                    Limiting::All { limiter, .. } => {
                        for l in limiter.set().limits() {
                            reuse.limits.insert(l.id().to_owned(), l.clone());
                        }
                    }
                }
            }
        }
        reuse
    }

    /// The one-limit set `id` enforcing `policy` under `name`: the old one if it is
    /// the same, else a fresh one from `stores`.
    pub(super) fn single(
        &self,
        id: &str,
        name: &Option<String>,
        policy: Policy,
        stores: &Stores,
    ) -> Result<Arc<RateLimiter>, Error> {
        match self.singles.get(id) {
            Some((n, old)) if n == name && old.policy() == policy => {
                self.kept.set(self.kept.get() + 1);
                Ok(Arc::clone(old))
            }
            _ => {
                self.fresh.set(self.fresh.get() + 1);
                Ok(Arc::new(stores.limiter(policy)?))
            }
        }
    }

    /// The limit `id` enforcing `rule` under `name`: the old one if it is the same
    /// (an in-flight limit keeps its slots: requests holding them release them there),
    /// else a fresh one.
    pub(super) fn limit(&self, name: &str, id: &str, rule: Rule, max_keys: usize) -> Limit {
        match self.limits.get(id) {
            Some(old) if old.name() == name && old.rule() == rule => {
                self.kept.set(self.kept.get() + 1);
                old.clone()
            }
            _ => {
                self.fresh.set(self.fresh.get() + 1);
                match rule {
                    Rule::Rate(policy) => Limit::new(name, id, policy, max_keys),
                    Rule::InFlight(f) => Limit::in_flight(name, id, f, max_keys),
                }
            }
        }
    }

    /// The counters of the route `name`: the old ones, else new.
    pub(super) fn stats(&self, name: &str) -> Arc<RouteStats> {
        self.stats.get(name).cloned().unwrap_or_default()
    }
}

impl Table {
    /// The routes of `config` on `stores`, taking over what `reuse` holds.
    pub(super) fn build(config: &Config, stores: &Stores, reuse: &Reuse) -> Result<Self, Error> {
        let global_key = config.identity.require_api_key;
        let max_keys = config.store.max_keys;
        let globals: Vec<Limit> = config
            .global
            .iter()
            .filter_map(|g| {
                let name = g.name.as_deref()?;
                Some(reuse.limit(name, &format!("global {name}"), g.rule, max_keys))
            })
            .collect();
        // The global limits' state in rows of their own, apart from every route's.
        limiter_core::limits::place_together(&globals);
        let build = |template, name: &str, limits: &RouteLimits, globals: &[Limit], key| {
            let cx = super::route::Build {
                stores,
                reuse,
                dry_run: config.dry_run,
                requires_key: key,
            };
            Route::new(template, name, limits, globals, &cx).map(Arc::new)
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
                cost_from_response: None,
                cost_from_request: None,
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
        })
    }

    /// The route that limits `path`, if any.
    pub(super) fn route_for(&self, path: &str) -> Option<&Arc<Route>> {
        let segments = normalise(path);
        self.routes
            .iter()
            .find(|r| r.template.as_ref().is_some_and(|t| t.matches(&segments)))
            .or(self.default.as_ref())
    }

    /// Every route, then the default, then the per-IP limit.
    pub(super) fn all(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.routes
            .iter()
            .chain(self.default.iter())
            .chain(self.per_ip.iter())
    }
}
