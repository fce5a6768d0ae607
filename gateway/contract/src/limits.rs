//! A limit table's words ([`LimitTable`]) turned into limiter-core policies: the
//! one-limit short form, `limits = [...]` and `[NAME.tiers.TIER]` overrides, each
//! mistake at the parser's span of the value with its key.
//!
//! One home for the conversion: the gateway reads a route's limits with it, and the
//! lab reads a workload endpoint's limits and its users' tiers with it, so the same
//! words mean the same limits in both. Errors carry a byte span of the source text;
//! each caller renders it its own way (the gateway underlines the line, the lab names
//! the line and key).

use std::ops::Range;
use std::time::Duration;

use limiter_core::limits::{InFlight, MAX_LIMITS, Rule};
use limiter_core::{Kind, Policy, Quota};

use crate::config::{LimitTable, Spanned};
use crate::duration;

/// A limit-table mistake: where (the byte span of the value in the source text), which
/// key (`route[2].limits[1].capacity`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct LimitError {
    /// Byte range of the offending value (or key) in the source text.
    pub span: Range<usize>,
    /// The key at fault, with its table.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl LimitError {
    /// An error at `at`'s span.
    pub fn at<T>(at: &Spanned<T>, key: &str, message: impl ToString) -> Self {
        Self::spanned(at.span(), key, message)
    }

    /// An error at byte range `span`.
    pub fn spanned(span: Range<usize>, key: &str, message: impl ToString) -> Self {
        Self {
            span,
            key: key.to_owned(),
            message: message.to_string(),
        }
    }
}

/// The `algorithm` of an in-flight (concurrency) limit.
pub const CONCURRENCY: &str = "concurrency";

/// One limit: a rate (an algorithm and its quota) or an in-flight limit
/// (`algorithm = "concurrency"`), and the name its `RateLimit` list member and the
/// lab's tables carry (`None`: the short form's unnamed limit, which takes its route's
/// or endpoint's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitConfig {
    /// The limit's name (`None`: the route's name).
    pub name: Option<String>,
    /// What it enforces.
    pub rule: Rule,
}

impl LimitConfig {
    /// A rate limit enforcing `policy`, under the route's name.
    pub fn rate(policy: Policy) -> Self {
        Self {
            name: None,
            rule: Rule::Rate(policy),
        }
    }

    /// The rate policy it enforces (`None` for an in-flight limit).
    pub fn policy(&self) -> Option<Policy> {
        match self.rule {
            Rule::Rate(p) => Some(p),
            Rule::InFlight(_) => None,
        }
    }
}

/// A positive integer key's value.
pub fn positive(v: &Spanned<i64>, key: &str) -> Result<u64, LimitError> {
    let what = key.rsplit('.').next().unwrap_or(key);
    match u64::try_from(*v.get_ref()) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(LimitError::at(
            v,
            key,
            format!("{what} must be at least 1, got {}", v.get_ref()),
        )),
    }
}

/// A duration key's value (the one duration syntax), longer than zero.
pub fn duration(v: &Spanned<String>, key: &str) -> Result<Duration, LimitError> {
    let d = duration::parse(v.get_ref()).map_err(|e| LimitError::at(v, key, e))?;
    if d.is_zero() {
        return Err(LimitError::at(v, key, "must be longer than zero"));
    }
    Ok(d)
}

/// Refuses `v` (when present) at key `key` with `why`.
pub fn forbid<T>(v: &Option<Spanned<T>>, key: &str, why: &str) -> Result<(), LimitError> {
    match v {
        Some(v) => Err(LimitError::at(v, key, why)),
        None => Ok(()),
    }
}

/// The short form's one limit, or the entries of `limits = [...]`; `table` names the
/// table in errors (`route[2]`), `extra` is how many limits every request adds on top
/// (the gateway's `[[global]]` ones), counted against limiter-core's `MAX_LIMITS`.
pub fn limit_list(
    raw: &LimitTable,
    table: &str,
    extra: usize,
) -> Result<Vec<LimitConfig>, LimitError> {
    let key = |name: &str| format!("{table}.{name}");
    let Some(list) = &raw.limits else {
        return Ok(vec![LimitConfig {
            name: raw.name.as_ref().map(|n| n.get_ref().clone()),
            rule: rule(raw, table)?,
        }]);
    };
    let why = "with `limits = [...]`, each limit's keys go in its entry";
    forbid(&raw.algorithm, &key("algorithm"), why)?;
    forbid(&raw.capacity, &key("capacity"), why)?;
    forbid(&raw.refill_per_sec, &key("refill_per_sec"), why)?;
    forbid(&raw.limit, &key("limit"), why)?;
    forbid(&raw.window, &key("window"), why)?;
    forbid(&raw.buckets, &key("buckets"), why)?;
    forbid(&raw.lease_ttl, &key("lease_ttl"), why)?;
    forbid(&raw.name, &key("name"), why)?;
    let entries = list.get_ref();
    if entries.is_empty() || entries.len() + extra > MAX_LIMITS {
        let message = format!(
            "a request carries 1 to {MAX_LIMITS} limits, counting the {extra} [[global]] ones; this lists {}",
            entries.len()
        );
        return Err(LimitError::at(list, &key("limits"), message));
    }
    let mut out: Vec<LimitConfig> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("{table}.limits[{}]", i + 1);
        let name = named_limit(entry, &at)?;
        if out.iter().any(|l| l.name.as_deref() == Some(name.as_str())) {
            let message = format!("two limits named {name:?}");
            return Err(LimitError::at(entry, &format!("{at}.name"), message));
        }
        out.push(LimitConfig {
            rule: rule(entry.get_ref(), &at)?,
            name: Some(name),
        });
    }
    Ok(out)
}

/// An entry of `limits = [...]` or a `[[global]]` limit: its name, having refused the
/// route-only keys.
pub fn named_limit(entry: &Spanned<LimitTable>, at: &str) -> Result<String, LimitError> {
    let raw = entry.get_ref();
    let key = |name: &str| format!("{at}.{name}");
    let why = "this key belongs to the route, not to one of its limits";
    forbid(&raw.path, &key("path"), why)?;
    forbid(&raw.cost, &key("cost"), why)?;
    forbid(&raw.limits, &key("limits"), why)?;
    forbid(&raw.mode, &key("mode"), why)?;
    forbid(&raw.shadow_headers, &key("shadow_headers"), why)?;
    forbid(&raw.cost_from_response, &key("cost_from_response"), why)?;
    forbid(&raw.cost_from_request, &key("cost_from_request"), why)?;
    if let Some(t) = raw.tiers.as_ref().and_then(|t| t.values().next()) {
        return Err(LimitError::at(t, &key("tiers"), why));
    }
    let Some(name) = &raw.name else {
        return Err(LimitError::at(
            entry,
            &key("name"),
            "each limit needs a `name`",
        ));
    };
    let text = name.get_ref();
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_graphic()) {
        let message = "a limit's name is printable ASCII without spaces (it goes in headers)";
        return Err(LimitError::at(name, &key("name"), message));
    }
    Ok(text.clone())
}

/// `[NAME.tiers.TIER]` of `route`: `limits = [...]` replaces the route's list; the
/// short form's keys override the route's one limit field by field (an `algorithm` of
/// its own takes none of the route's numbers). `at` names the tier in errors.
pub fn tier(
    route: &LimitTable,
    tier: &LimitTable,
    at: &str,
    extra: usize,
) -> Result<Vec<LimitConfig>, LimitError> {
    let key = |name: &str| format!("{at}.{name}");
    let why = "a tier changes the route's limits only; this key belongs to the route";
    forbid(&tier.path, &key("path"), why)?;
    forbid(&tier.cost, &key("cost"), why)?;
    forbid(&tier.mode, &key("mode"), why)?;
    forbid(&tier.shadow_headers, &key("shadow_headers"), why)?;
    forbid(&tier.cost_from_response, &key("cost_from_response"), why)?;
    forbid(&tier.cost_from_request, &key("cost_from_request"), why)?;
    forbid(&tier.name, &key("name"), why)?;
    if let Some(t) = tier.tiers.as_ref().and_then(|t| t.values().next()) {
        return Err(LimitError::at(t, &key("tiers"), "tiers do not nest"));
    }
    if tier.limits.is_some() {
        return limit_list(tier, at, extra);
    }
    if let Some(list) = &route.limits {
        let message = "this route lists `limits`: its tiers give `limits = [...]` too";
        return Err(LimitError::at(list, &key("limits"), message));
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
        rule: rule(&merged, at)?,
    }])
}

/// One limit's rule: an in-flight limit (`algorithm = "concurrency"`) or a rate;
/// `table` names it in errors (`route[2]`).
pub fn rule(raw: &LimitTable, table: &str) -> Result<Rule, LimitError> {
    match &raw.algorithm {
        Some(algo) if algo.get_ref() == CONCURRENCY => in_flight(raw, algo, table),
        _ => {
            if let Some(ttl) = &raw.lease_ttl {
                let message = "`lease_ttl` applies to `algorithm = \"concurrency\"` only";
                return Err(LimitError::at(ttl, &format!("{table}.lease_ttl"), message));
            }
            policy(raw, table).map(Rule::Rate)
        }
    }
}

/// An in-flight limit: `limit` requests at once, optional `lease_ttl`.
fn in_flight(raw: &LimitTable, algo: &Spanned<String>, table: &str) -> Result<Rule, LimitError> {
    let key = |name: &str| format!("{table}.{name}");
    let why = "`concurrency` takes `limit` (requests at once) and `lease_ttl`";
    forbid(&raw.capacity, &key("capacity"), why)?;
    forbid(&raw.refill_per_sec, &key("refill_per_sec"), why)?;
    forbid(&raw.window, &key("window"), why)?;
    forbid(&raw.buckets, &key("buckets"), why)?;
    let Some(lim) = &raw.limit else {
        let message = "concurrency needs `limit` (requests in flight at once per key)";
        return Err(LimitError::at(algo, &key("algorithm"), message));
    };
    let limit = InFlight::new(positive(lim, &key("limit"))?)
        .map_err(|e| LimitError::at(lim, &key("limit"), e))?;
    let limit = match &raw.lease_ttl {
        Some(ttl) => {
            let d = duration(ttl, &key("lease_ttl"))?;
            limit
                .with_lease_ttl(d)
                .map_err(|e| LimitError::at(ttl, &key("lease_ttl"), e))?
        }
        None => limit,
    };
    Ok(Rule::InFlight(limit))
}

/// One rate limit's algorithm and quota; `table` names it in errors (`route[2]`).
pub fn policy(raw: &LimitTable, table: &str) -> Result<Policy, LimitError> {
    let key = |name: &str| format!("{table}.{name}");
    let Some(algo) = &raw.algorithm else {
        let span = raw.name.as_ref().map_or(0..0, Spanned::span);
        let message = "a limit needs an `algorithm` (or the route lists `limits = [...]`)";
        return Err(LimitError::spanned(span, &key("algorithm"), message));
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
                LimitError::at(algo, &key("algorithm"), message)
            })?;
    let forbid = |v: Option<Range<usize>>, name: &str, use_: &str| match v {
        Some(span) => Err(LimitError::spanned(
            span,
            &key(name),
            format!("`{name}` does not apply to {kind}; it takes {use_}"),
        )),
        None => Ok(()),
    };
    let need =
        |name: &str| LimitError::at(algo, &key("algorithm"), format!("{kind} needs `{name}`"));
    let quota = if kind.is_bucket() {
        let takes = "capacity and refill_per_sec";
        forbid(raw.limit.as_ref().map(Spanned::span), "limit", takes)?;
        forbid(raw.window.as_ref().map(Spanned::span), "window", takes)?;
        let cap = raw.capacity.as_ref().ok_or_else(|| need("capacity"))?;
        let rate = raw
            .refill_per_sec
            .as_ref()
            .ok_or_else(|| need("refill_per_sec"))?;
        let capacity = positive(cap, &key("capacity"))?;
        let r = *rate.get_ref();
        if !r.is_finite() || r <= 0.0 {
            let message = format!("refill_per_sec must be a positive number, got {r}");
            return Err(LimitError::at(rate, &key("refill_per_sec"), message));
        }
        Quota::bucket(capacity, r).map_err(|e| LimitError::at(rate, &key("refill_per_sec"), e))?
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
        let limit = positive(lim, &key("limit"))?;
        let window = duration(win, &key("window"))?;
        Quota::new(limit, window).map_err(|e| LimitError::at(lim, &key("limit"), e))?
    };
    let mut policy = Policy::new(kind, quota);
    if let Some(b) = &raw.buckets {
        let key = key("buckets");
        if policy.param("buckets").is_none() {
            return Err(LimitError::at(
                b,
                &key,
                format!("`buckets` does not apply to {kind}"),
            ));
        }
        let n = positive(b, &key)?;
        policy = policy
            .with_param("buckets", n)
            .map_err(|e| LimitError::at(b, &key, e))?;
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pol(l: &LimitConfig) -> Policy {
        match l.policy() {
            Some(p) => p,
            None => panic!("{l:?} is not a rate"),
        }
    }

    fn table(src: &str) -> LimitTable {
        match toml::from_str(src) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_list_becomes_named_policies_in_order() {
        let src = r#"limits = [
            { name = "burst", algorithm = "token-bucket", capacity = 20, refill_per_sec = 10 },
            { name = "hourly", algorithm = "sliding-window", limit = 1000, window = "1h" },
        ]"#;
        let list = limit_list(&table(src), "endpoint[1]", 0).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].name.as_deref(), Some("burst"));
        assert_eq!(pol(&list[0]).kind, Kind::TokenBucket);
        assert_eq!(pol(&list[0]).capacity(), 20);
        assert_eq!(list[1].name.as_deref(), Some("hourly"));
        assert_eq!(pol(&list[1]).kind, Kind::SlidingWindow);
        assert_eq!(pol(&list[1]).quota.limit(), 1000);
        assert_eq!(pol(&list[1]).quota.period_nanos(), 3_600_000_000_000);
    }

    #[test]
    fn mistakes_point_at_the_value_with_their_key() {
        let src =
            "limits = [{ name = \"b\", algorithm = \"fixed-window\", limit = 0, window = \"1s\" }]";
        let e = limit_list(&table(src), "route[1]", 0).unwrap_err();
        assert_eq!(e.key, "route[1].limits[1].limit");
        assert_eq!(&src[e.span.clone()], "0", "{e}");
        assert!(e.message.contains("at least 1"), "{e}");

        let src = "algorithm = \"token-bucket\"\ncapacity = 5\nrefill_per_sec = 1\nwindow = \"1s\"";
        let e = policy(&table(src), "endpoint[2]").unwrap_err();
        assert_eq!(e.key, "endpoint[2].window");
        assert_eq!(&src[e.span.clone()], "\"1s\"");

        let src = "limits = [{ algorithm = \"fixed-window\", limit = 1, window = \"1s\" }]";
        let e = limit_list(&table(src), "route[1]", 0).unwrap_err();
        assert_eq!(e.key, "route[1].limits[1].name");

        let src =
            "limits = [{ name = \"a\", algorithm = \"fixed-window\", limit = 1, window = \"1s\" }]";
        let e = limit_list(&table(src), "route[1]", MAX_LIMITS).unwrap_err();
        assert_eq!(e.key, "route[1].limits");
    }

    #[test]
    fn a_tier_overrides_the_short_form_field_by_field() {
        let route = table("algorithm = \"fixed-window\"\nlimit = 10\nwindow = \"1s\"");
        let pro = table("limit = 100");
        let list = tier(&route, &pro, "route[1].tiers.pro", 0).unwrap();
        assert_eq!(pol(&list[0]).kind, Kind::FixedWindow);
        assert_eq!(pol(&list[0]).quota.limit(), 100);
        assert_eq!(pol(&list[0]).quota.period_nanos(), 1_000_000_000);
        let nested = table("[tiers.x]\nlimit = 1");
        let e = tier(&route, &nested, "route[1].tiers.pro", 0).unwrap_err();
        assert_eq!(e.message, "tiers do not nest");
    }
}
