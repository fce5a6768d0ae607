//! The limits of a route, validated: the one-limit short form or `limits = [...]`, the
//! cost of a request, the mode, `[route.tiers.NAME]` overrides and the `[[global]]`
//! limits — each mistake at the span of the value, with its key.

use std::collections::BTreeMap;

use gateway_contract::config::{LimitTable, Spanned};
use gateway_contract::policy::PolicySpec;
use limiter_core::limits::{InFlight, MAX_LIMITS, Rule};
use limiter_core::{Kind, Policy, Quota};

use super::validate::Cx;
use super::{Config, ConfigError, LimitConfig, Mode, RouteLimits};

/// The `algorithm` of an in-flight (concurrency) limit.
pub const CONCURRENCY: &str = "concurrency";

impl Cx<'_> {
    /// Refuses `v` (when present) at key `key` with `why`.
    fn forbid<T>(&self, v: &Option<Spanned<T>>, key: &str, why: &str) -> Result<(), ConfigError> {
        match v {
            Some(v) => Err(self.err(v, key, why)),
            None => Ok(()),
        }
    }

    /// A `[[route]]`'s or the `[default]`'s limits; `table` names it in errors
    /// (`route[2]`), `globals` is how many `[[global]]` limits every request adds.
    pub(super) fn route_limits(
        &self,
        raw: &LimitTable,
        table: &str,
        globals: usize,
    ) -> Result<RouteLimits, ConfigError> {
        let key = |name: &str| format!("{table}.{name}");
        let limits = self.limit_list(raw, table, globals)?;
        let mode = match &raw.mode {
            None => Mode::Enforce,
            Some(m) => match m.get_ref().as_str() {
                "enforce" => Mode::Enforce,
                "shadow" => Mode::Shadow,
                other => {
                    let message = format!("unknown mode {other:?} (expected enforce or shadow)");
                    return Err(self.err(m, &key("mode"), message));
                }
            },
        };
        let mut tiers = BTreeMap::new();
        for (name, tier) in raw.tiers.iter().flatten() {
            let tier_key = format!("{table}.tiers.{name}");
            tiers.insert(
                name.clone(),
                self.tier(raw, tier.get_ref(), &tier_key, globals)?,
            );
        }
        let cost = match &raw.cost {
            Some(c) => {
                let cost = self.positive(c, &key("cost"))?;
                let rates = limits.iter().chain(tiers.values().flatten());
                for p in rates.filter_map(LimitConfig::policy) {
                    PolicySpec::new(p.quota, cost, &[p.kind])
                        .map_err(|e| self.err(c, &key("cost"), e))?;
                }
                cost
            }
            None => 1,
        };
        let cost_from_response = match &raw.cost_from_response {
            Some(h) => {
                let at = key("cost_from_response");
                let name = self.cost_header(h, &at)?;
                let all = limits.iter().chain(tiers.values().flatten());
                // An in-flight limit holds a slot whatever the cost: it needs no settling.
                let unsettled = |l: &&LimitConfig| l.policy().is_some_and(|p| !p.kind.settles());
                if let Some(l) = all.into_iter().find(unsettled) {
                    let message = format!(
                        "a cost from the response is settled after the decision, which needs a balance that may go negative: token-bucket or gcra (limit {:?} is {})",
                        l.name.as_deref().unwrap_or(table),
                        l.rule.name()
                    );
                    return Err(self.err(h, &at, message));
                }
                Some(name)
            }
            None => None,
        };
        let cost_from_request = match &raw.cost_from_request {
            Some(h) => Some(self.cost_header(h, &key("cost_from_request"))?),
            None => None,
        };
        Ok(RouteLimits {
            limits,
            cost,
            mode,
            shadow_headers: raw.shadow_headers.as_ref().is_some_and(|s| *s.get_ref()),
            tiers,
            cost_from_response,
            cost_from_request,
        })
    }

    /// A cost header's name (`cost_from_response`, `cost_from_request`).
    fn cost_header(&self, h: &Spanned<String>, key: &str) -> Result<http::HeaderName, ConfigError> {
        http::HeaderName::try_from(h.get_ref().as_str())
            .map_err(|_| self.err(h, key, format!("{:?} is not a header name", h.get_ref())))
    }

    /// The short form's one limit, or the entries of `limits = [...]`.
    fn limit_list(
        &self,
        raw: &LimitTable,
        table: &str,
        globals: usize,
    ) -> Result<Vec<LimitConfig>, ConfigError> {
        let key = |name: &str| format!("{table}.{name}");
        let Some(list) = &raw.limits else {
            let rule = self.rule(raw, table)?;
            return Ok(vec![LimitConfig {
                name: raw.name.as_ref().map(|n| n.get_ref().clone()),
                rule,
            }]);
        };
        let why = "with `limits = [...]`, each limit's keys go in its entry";
        self.forbid(&raw.algorithm, &key("algorithm"), why)?;
        self.forbid(&raw.capacity, &key("capacity"), why)?;
        self.forbid(&raw.refill_per_sec, &key("refill_per_sec"), why)?;
        self.forbid(&raw.limit, &key("limit"), why)?;
        self.forbid(&raw.window, &key("window"), why)?;
        self.forbid(&raw.buckets, &key("buckets"), why)?;
        self.forbid(&raw.lease_ttl, &key("lease_ttl"), why)?;
        self.forbid(&raw.name, &key("name"), why)?;
        let entries = list.get_ref();
        if entries.is_empty() || entries.len() + globals > MAX_LIMITS {
            let message = format!(
                "a request carries 1 to {MAX_LIMITS} limits, counting the {globals} [[global]] ones; this lists {}",
                entries.len()
            );
            return Err(self.err(list, &key("limits"), message));
        }
        let mut out: Vec<LimitConfig> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("{table}.limits[{}]", i + 1);
            let name = self.named_limit(entry, &at)?;
            if out.iter().any(|l| l.name.as_deref() == Some(name.as_str())) {
                let message = format!("two limits named {name:?}");
                return Err(self.err(entry, &format!("{at}.name"), message));
            }
            out.push(LimitConfig {
                rule: self.rule(entry.get_ref(), &at)?,
                name: Some(name),
            });
        }
        Ok(out)
    }

    /// An entry of `limits = [...]` or a `[[global]]` limit: its name, having refused the
    /// route-only keys.
    fn named_limit(&self, entry: &Spanned<LimitTable>, at: &str) -> Result<String, ConfigError> {
        let raw = entry.get_ref();
        let key = |name: &str| format!("{at}.{name}");
        let why = "this key belongs to the route, not to one of its limits";
        self.forbid(&raw.path, &key("path"), why)?;
        self.forbid(&raw.cost, &key("cost"), why)?;
        self.forbid(&raw.limits, &key("limits"), why)?;
        self.forbid(&raw.mode, &key("mode"), why)?;
        self.forbid(&raw.shadow_headers, &key("shadow_headers"), why)?;
        self.forbid(&raw.cost_from_response, &key("cost_from_response"), why)?;
        self.forbid(&raw.cost_from_request, &key("cost_from_request"), why)?;
        if let Some(t) = raw.tiers.as_ref().and_then(|t| t.values().next()) {
            return Err(self.err(t, &key("tiers"), why));
        }
        let Some(name) = &raw.name else {
            return Err(self.err(entry, &key("name"), "each limit needs a `name`"));
        };
        let text = name.get_ref();
        if text.is_empty() || !text.chars().all(|c| c.is_ascii_graphic()) {
            let message = "a limit's name is printable ASCII without spaces (it goes in headers)";
            return Err(self.err(name, &key("name"), message));
        }
        Ok(text.clone())
    }

    /// `[route.tiers.NAME]`: `limits = [...]` replaces the route's list; the short
    /// form's keys override the route's one limit field by field (an `algorithm` of its
    /// own takes none of the route's numbers).
    fn tier(
        &self,
        route: &LimitTable,
        tier: &LimitTable,
        at: &str,
        globals: usize,
    ) -> Result<Vec<LimitConfig>, ConfigError> {
        let key = |name: &str| format!("{at}.{name}");
        let why = "a tier changes the route's limits only; this key belongs to the route";
        self.forbid(&tier.path, &key("path"), why)?;
        self.forbid(&tier.cost, &key("cost"), why)?;
        self.forbid(&tier.mode, &key("mode"), why)?;
        self.forbid(&tier.shadow_headers, &key("shadow_headers"), why)?;
        self.forbid(&tier.cost_from_response, &key("cost_from_response"), why)?;
        self.forbid(&tier.cost_from_request, &key("cost_from_request"), why)?;
        self.forbid(&tier.name, &key("name"), why)?;
        if let Some(t) = tier.tiers.as_ref().and_then(|t| t.values().next()) {
            return Err(self.err(t, &key("tiers"), "tiers do not nest"));
        }
        if tier.limits.is_some() {
            return self.limit_list(tier, at, globals);
        }
        if let Some(list) = &route.limits {
            let message = "this route lists `limits`: its tiers give `limits = [...]` too";
            return Err(self.err(list, &key("limits"), message));
        }
        let merged = if tier.algorithm.is_some() {
            tier.clone()
        } else {
            let mut m = route.clone();
            let or = |t: &Option<Spanned<i64>>, r: &Option<Spanned<i64>>| t.clone().or(r.clone());
            m.capacity = or(&tier.capacity, &route.capacity);
            m.limit = or(&tier.limit, &route.limit);
            m.buckets = or(&tier.buckets, &route.buckets);
            m.refill_per_sec = tier.refill_per_sec.clone().or(route.refill_per_sec.clone());
            m.window = tier.window.clone().or(route.window.clone());
            m.lease_ttl = tier.lease_ttl.clone().or(route.lease_ttl.clone());
            m
        };
        Ok(vec![LimitConfig {
            name: route.name.as_ref().map(|n| n.get_ref().clone()),
            rule: self.rule(&merged, at)?,
        }])
    }

    /// The `[[global]]` limits: named, distinct from each other and from every route's
    /// limits, each admitting at once what any route's request costs.
    pub(super) fn globals(
        &self,
        raw: &[Spanned<LimitTable>],
        config: &Config,
    ) -> Result<Vec<LimitConfig>, ConfigError> {
        let mut out: Vec<LimitConfig> = Vec::with_capacity(raw.len());
        let routes = config
            .routes
            .iter()
            .map(|r| &r.limit)
            .chain(&config.default);
        for (i, entry) in raw.iter().enumerate() {
            let at = format!("global[{}]", i + 1);
            let name = self.named_limit(entry, &at)?;
            let rule = self.rule(entry.get_ref(), &at)?;
            let name_key = format!("{at}.name");
            let clash = routes.clone().find_map(|r| {
                let mut all = r.limits.iter().chain(r.tiers.values().flatten());
                if let Some(l) = all.find(|l| l.name.as_deref() == Some(name.as_str())) {
                    return Some(format!("a route already has a limit named {:?}", l.name));
                }
                (r.cost > rule.capacity()).then(|| {
                    format!(
                        "a route's requests cost {}, more than this limit admits at once ({})",
                        r.cost,
                        rule.capacity()
                    )
                })
            });
            let clash = clash.or_else(|| {
                out.iter()
                    .any(|l| l.name.as_deref() == Some(name.as_str()))
                    .then(|| format!("two global limits named {name:?}"))
            });
            if let Some(message) = clash {
                return Err(self.err(entry, &name_key, message));
            }
            out.push(LimitConfig {
                name: Some(name),
                rule,
            });
        }
        Ok(out)
    }

    /// One limit's rule: an in-flight limit (`algorithm = "concurrency"`) or a rate;
    /// `table` names it in errors (`route[2]`).
    fn rule(&self, raw: &LimitTable, table: &str) -> Result<Rule, ConfigError> {
        match &raw.algorithm {
            Some(algo) if algo.get_ref() == CONCURRENCY => self.in_flight(raw, algo, table),
            _ => {
                if let Some(ttl) = &raw.lease_ttl {
                    let message = "`lease_ttl` applies to `algorithm = \"concurrency\"` only";
                    return Err(self.err(ttl, &format!("{table}.lease_ttl"), message));
                }
                self.policy(raw, table).map(Rule::Rate)
            }
        }
    }

    /// An in-flight limit: `limit` requests at once, optional `lease_ttl`.
    fn in_flight(
        &self,
        raw: &LimitTable,
        algo: &Spanned<String>,
        table: &str,
    ) -> Result<Rule, ConfigError> {
        let key = |name: &str| format!("{table}.{name}");
        let why = "`concurrency` takes `limit` (requests at once) and `lease_ttl`";
        self.forbid(&raw.capacity, &key("capacity"), why)?;
        self.forbid(&raw.refill_per_sec, &key("refill_per_sec"), why)?;
        self.forbid(&raw.window, &key("window"), why)?;
        self.forbid(&raw.buckets, &key("buckets"), why)?;
        let Some(lim) = &raw.limit else {
            let message = "concurrency needs `limit` (requests in flight at once per key)";
            return Err(self.err(algo, &key("algorithm"), message));
        };
        let limit = InFlight::new(self.positive(lim, &key("limit"))?)
            .map_err(|e| self.err(lim, &key("limit"), e))?;
        let limit = match &raw.lease_ttl {
            Some(ttl) => {
                let d = self.duration(ttl, &key("lease_ttl"))?;
                limit
                    .with_lease_ttl(d)
                    .map_err(|e| self.err(ttl, &key("lease_ttl"), e))?
            }
            None => limit,
        };
        Ok(Rule::InFlight(limit))
    }

    /// One rate limit's algorithm and quota; `table` names it in errors (`route[2]`).
    fn policy(&self, raw: &LimitTable, table: &str) -> Result<Policy, ConfigError> {
        let key = |name: &str| format!("{table}.{name}");
        let Some(algo) = &raw.algorithm else {
            let span = raw.name.as_ref().map_or(0..0, Spanned::span);
            let message = "a limit needs an `algorithm` (or the route lists `limits = [...]`)";
            return Err(ConfigError::at(
                self.file,
                self.src,
                span,
                &key("algorithm"),
                message,
            ));
        };
        let kind: Kind =
            algo.get_ref()
                .parse()
                .map_err(|e: limiter_core::algorithm::UnknownKind| {
                    // The rate algorithms' list, and the in-flight limit beside them.
                    let mut message = e.to_string();
                    if message.ends_with(')') {
                        message.insert_str(message.len() - 1, &format!(", or {CONCURRENCY}"));
                    }
                    self.err(algo, &key("algorithm"), message)
                })?;
        let forbid = |v: Option<std::ops::Range<usize>>, name: &str, use_: &str| match v {
            Some(span) => Err(ConfigError::at(
                self.file,
                self.src,
                span,
                &key(name),
                &format!("`{name}` does not apply to {kind}; it takes {use_}"),
            )),
            None => Ok(()),
        };
        let need = |name: &str| self.err(algo, &key("algorithm"), format!("{kind} needs `{name}`"));
        let quota = if kind.is_bucket() {
            let takes = "capacity and refill_per_sec";
            forbid(raw.limit.as_ref().map(Spanned::span), "limit", takes)?;
            forbid(raw.window.as_ref().map(Spanned::span), "window", takes)?;
            let cap = raw.capacity.as_ref().ok_or_else(|| need("capacity"))?;
            let rate = raw
                .refill_per_sec
                .as_ref()
                .ok_or_else(|| need("refill_per_sec"))?;
            let capacity = self.positive(cap, &key("capacity"))?;
            let r = *rate.get_ref();
            if !r.is_finite() || r <= 0.0 {
                let message = format!("refill_per_sec must be a positive number, got {r}");
                return Err(self.err(rate, &key("refill_per_sec"), message));
            }
            Quota::bucket(capacity, r).map_err(|e| self.err(rate, &key("refill_per_sec"), e))?
        } else {
            let takes = "limit and window";
            forbid(raw.capacity.as_ref().map(Spanned::span), "capacity", takes)?;
            forbid(
                raw.refill_per_sec.as_ref().map(Spanned::span),
                "refill_per_sec",
                takes,
            )?;
            let lim = raw.limit.as_ref().ok_or_else(|| need("limit"))?;
            let win = raw.window.as_ref().ok_or_else(|| need("window"))?;
            let limit = self.positive(lim, &key("limit"))?;
            let window = self.duration(win, &key("window"))?;
            Quota::new(limit, window).map_err(|e| self.err(lim, &key("limit"), e))?
        };
        let mut policy = Policy::new(kind, quota);
        if let Some(b) = &raw.buckets {
            let key = key("buckets");
            if policy.param("buckets").is_none() {
                return Err(self.err(b, &key, format!("`buckets` does not apply to {kind}")));
            }
            let n = self.positive(b, &key)?;
            policy = policy
                .with_param("buckets", n)
                .map_err(|e| self.err(b, &key, e))?;
        }
        Ok(policy)
    }
}
