//! The limits of a route, validated: the cost of a request, the mode, the cost headers
//! and the `[[global]]` limits here; the limits themselves (the one-limit short form,
//! `limits = [...]`, `[route.tiers.NAME]` overrides, in-flight limits) by
//! gateway-contract's [`limits`] conversion, which the lab's workloads share — each
//! mistake at the span of the value, with its key.

use std::collections::BTreeMap;

use gateway_contract::config::{LimitTable, Spanned};
use gateway_contract::limits::{self, LimitError};
use gateway_contract::policy::PolicySpec;

use super::validate::Cx;
use super::{Config, ConfigError, LimitConfig, Mode, RouteLimits};

impl Cx<'_> {
    /// A limit-table mistake from gateway-contract's conversion, located in this file.
    pub(super) fn limit_err(&self, e: LimitError) -> ConfigError {
        ConfigError::at(self.file, self.src, e.span, &e.key, &e.message)
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
        let limits = limits::limit_list(raw, table, globals).map_err(|e| self.limit_err(e))?;
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
                limits::tier(raw, tier.get_ref(), &tier_key, globals)
                    .map_err(|e| self.limit_err(e))?,
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
            let name = limits::named_limit(entry, &at).map_err(|e| self.limit_err(e))?;
            let rule = limits::rule(entry.get_ref(), &at).map_err(|e| self.limit_err(e))?;
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
}
