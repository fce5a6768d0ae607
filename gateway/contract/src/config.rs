//! The gateway configuration file, as written: its tables and keys, as serde types.
//!
//! The gateway reads a file into [`ConfigFile`] and validates it into its run-time
//! configuration; `ratelab load --emit-routes` builds [`LimitTable`]s and writes them
//! with [`routes_toml`] — one set of words, no TOML written by hand. Every value is
//! [`Spanned`], so the gateway's errors point where the TOML parser saw the value —
//! a `[[route]]` table, an inline table in `route = [...]` or an element of an array
//! alike.
//!
//! Durations are strings in the [`duration`] syntax
//! (`timeout = "50ms"`). Keys of earlier versions are kept only to be refused with the
//! name of their replacement ([`StoreTable::timeout_ms`]).

use std::ops::Range;

use limiter_core::Kind;
use serde::{Deserialize, Serialize};
pub use toml::Spanned;

use crate::duration;
use crate::policy::PolicySpec;

/// The whole file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `listen = "127.0.0.1:8080"`: the proxy's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<Spanned<String>>,
    /// `backend = "http://host:port"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Spanned<String>>,
    /// `[identity]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityTable>,
    /// `[store]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreTable>,
    /// `[server]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerTable>,
    /// `[[route]]`, matched in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<Spanned<LimitTable>>,
    /// `[default]`: the limit of paths no route matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Spanned<LimitTable>>,
    /// `admin_listen = "127.0.0.1:9901"`: the admin listener (`/metrics`, `/healthz`,
    /// `/readyz`), never served on `listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<Spanned<String>>,
    /// `[[global]]`: named limits every request also spends from, per identity across
    /// every route (the `name` and algorithm keys of a limit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub global: Vec<Spanned<LimitTable>>,
    /// `[log]`: the access log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogTable>,
}

/// `[log]`: where the gateway writes one JSON line per request.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogTable {
    /// `access = "access.jsonl"` (relative to the config's folder), or `"-"` for
    /// standard output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Spanned<String>>,
    /// `identity = "plain"` (the default: the quota key as is) or `"hash"` (a keyed
    /// pseudonym of it, and of the client address, so a log can be shared without the
    /// users' ids; a replay still groups by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Spanned<String>>,
    /// `hash_key = "…"`: the secret of `identity = "hash"` (at least 16 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_key: Option<Spanned<String>>,
    /// `hash_key_file = "log.key"`: the same secret read from a file (relative to the
    /// config's folder; surrounding whitespace ignored), so the config holds no secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_key_file: Option<Spanned<String>>,
}

/// `[identity]`: who a request is.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityTable {
    /// `header = "x-user-id"`: the identity header (missing: the client IP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Spanned<String>>,
    /// `max_len = 256`: the longest identity accepted, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_len: Option<Spanned<i64>>,
    /// `api_keys = "keys.toml"`: the keys file ([`KeysFile`]), relative to the config
    /// file; reloaded on SIGHUP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_keys: Option<Spanned<String>>,
    /// `api_key_header = "x-api-key"`: where a client presents its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_header: Option<Spanned<String>>,
    /// `require_api_key = false`: whether a request without a valid key is refused
    /// (`401`); a route's own `require_api_key` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_api_key: Option<Spanned<bool>>,
    /// `trusted_proxies = ["10.0.0.0/8"]`: CIDRs (or single addresses) whose identity
    /// header and forwarding headers are believed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_proxies: Option<Spanned<Vec<Spanned<String>>>>,
    /// `client_ip_header = "x-forwarded-for" | "forwarded"`: which forwarding header a
    /// trusted proxy appends the client's address to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip_header: Option<Spanned<String>>,
    /// `ipv6_prefix = 64`: IPv6 clients are grouped by this prefix length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_prefix: Option<Spanned<i64>>,
    /// `[identity.per_ip]`: a limit keyed by client IP that every request passes,
    /// whatever its identity (a limit table without `path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_ip: Option<Spanned<LimitTable>>,
}

/// The API keys file (`[identity] api_keys`): keys stored as SHA-256 digests, never in
/// plain text.
///
/// ```toml
/// [[key]]
/// sha256   = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
/// identity = "acme"
/// tier     = "pro"
/// ```
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysFile {
    /// `[[key]]`, one per key.
    #[serde(default)]
    pub key: Vec<Spanned<KeyEntry>>,
}

/// One `[[key]]` of a [`KeysFile`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// `sha256 = "<64 hex digits>"`: the SHA-256 of the key as the client sends it.
    pub sha256: Spanned<String>,
    /// `identity = "acme"`: whose quota the key spends.
    pub identity: Spanned<String>,
    /// `tier = "pro"`: the tier whose limits apply (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Spanned<String>>,
}

/// Parses a keys file, keeping the parser's span and key path of the first error.
pub fn parse_keys(text: &str) -> Result<KeysFile, FileError> {
    parse_with(text)
}

/// `[store]`: where the limiters' state lives.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreTable {
    /// `kind = "memory" | "redis" | "redis-cluster"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Spanned<String>>,
    /// `url = "redis://host:port"` (redis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Spanned<String>>,
    /// `urls = [...]` (redis-cluster seed nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Spanned<Vec<Spanned<String>>>>,
    /// `timeout = "50ms"`: per store call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Spanned<String>>,
    /// Retired: `timeout_ms = 50` is refused with a message naming `timeout`.
    #[serde(default, skip_serializing)]
    pub timeout_ms: Option<Spanned<toml::Value>>,
    /// `on_error = "fail-open" | "fail-closed" | "local"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<Spanned<String>>,
    /// `key_prefix = "ratelab"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<Spanned<String>>,
    /// `max_keys = 1000000`: per route, in memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_keys: Option<Spanned<i64>>,
    /// `sweep_interval = "5s"`: how often idle in-memory keys are swept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_interval: Option<Spanned<String>>,
    /// `mode = "exact" | "lease"`: how gateway instances share a key on Redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Spanned<String>>,
    /// `lease = { max = 64, ttl = "1s" }`: the lease mode's parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Spanned<LeaseTable>>,
    /// `at_capacity = "deny" | "evict-oldest"`: what a new key gets when a route's
    /// in-memory store is full of throttled keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_capacity: Option<Spanned<String>>,
    /// `max_bytes = 268435456`: per route, in memory, each key counted at its worst case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<Spanned<i64>>,
}

/// `[store] lease = { max = 64, ttl = "1s" }`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseTable {
    /// `max = 64`: the most units one instance takes and holds for one key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Spanned<i64>>,
    /// `ttl = "1s"`: how long a lease's units may be spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Spanned<String>>,
}

/// `[server]`: limits that protect the gateway itself.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTable {
    /// `header_read_timeout = "5s"`: from a request head's first byte to its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_read_timeout: Option<Spanned<String>>,
    /// `keep_alive_timeout = "60s"`: how long an idle kept-alive connection stays open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive_timeout: Option<Spanned<String>>,
    /// `max_header_bytes = 16384`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_header_bytes: Option<Spanned<i64>>,
    /// `max_body_bytes = 1048576`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<Spanned<i64>>,
    /// `upstream_timeout = "10s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_timeout: Option<Spanned<String>>,
    /// `shutdown_grace = "10s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_grace: Option<Spanned<String>>,
    /// `max_connections = 10000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<Spanned<i64>>,
    /// `pool_max_idle = 256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_max_idle: Option<Spanned<i64>>,
    /// `body_idle_timeout = "30s"`: the longest pause while either body streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_idle_timeout: Option<Spanned<String>>,
    /// `max_connections_per_ip = 256`: client connections one address may hold open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections_per_ip: Option<Spanned<i64>>,
    /// `max_backend_connections = 1024`: connections to the backend open at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backend_connections: Option<Spanned<i64>>,
}

/// A `[[route]]` (with `path`), the `[default]` limit (without), an entry of a route's
/// `limits = [...]`, a `[[global]]` limit or a `[route.tiers.NAME]` override: one
/// algorithm and its words — `capacity` and `refill_per_sec` for the bucket algorithms,
/// `limit` and `window` for the windowed ones — and, on routes, the cost of a request,
/// several limits, the mode and the tiers. Which keys apply where is the gateway's
/// validation's business (it names the key it refuses).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitTable {
    /// `path = "/api/orders/{id}"` (routes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<Spanned<String>>,
    /// `algorithm = "token-bucket"`: a `limiter_core::Kind` name (absent on a route that
    /// lists `limits`, and on a tier that only changes numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<Spanned<String>>,
    /// `capacity = 20` (bucket algorithms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Spanned<i64>>,
    /// `refill_per_sec = 10` (bucket algorithms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refill_per_sec: Option<Spanned<f64>>,
    /// `limit = 100` (windowed algorithms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Spanned<i64>>,
    /// `window = "60s"` (windowed algorithms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Spanned<String>>,
    /// `buckets = 10`: sub-windows of the bucketed sliding window (`bucketed-window`
    /// only; a `limiter_core::Policy` parameter, its range checked by limiter-core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Spanned<i64>>,
    /// `cost = 1`: units one request costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Spanned<i64>>,
    /// `require_api_key = true`: this route's requests need a valid API key (`401`
    /// otherwise); overrides `[identity] require_api_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_api_key: Option<Spanned<bool>>,
    /// `name = "burst"`: the limit's name in the `RateLimit` headers' list (entries of
    /// `limits`, `[[global]]`; optional in the one-limit short form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Spanned<String>>,
    /// `limits = [{ name = "burst", algorithm = "gcra", ... }, ...]`: several limits, all
    /// of which must admit a request, and all of which it then spends from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Spanned<Vec<Spanned<LimitTable>>>>,
    /// `mode = "enforce" | "shadow"`: shadow decides and counts but never refuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Spanned<String>>,
    /// `shadow_headers = true`: in shadow mode, still send the rate-limit headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_headers: Option<Spanned<bool>>,
    /// `[route.tiers.pro]`: the limits for identities of tier `pro` (the short form's
    /// keys override the route's one limit; `limits = [...]` replaces the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<std::collections::BTreeMap<String, Spanned<LimitTable>>>,
    /// `case_insensitive = true`: the route's literal segments match in any case
    /// (routes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_insensitive: Option<Spanned<bool>>,
    /// `cost_from_response = "x-ratelimit-cost"`: the backend's response header saying
    /// what the request really cost (tokens an LLM used), settled against the route's
    /// limits when the response head arrives (routes and `[default]`; bucket algorithms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_from_response: Option<Spanned<String>>,
    /// `cost_from_request = "x-request-cost"`: a request header giving the request's
    /// cost, believed only from API-key identities and trusted proxies (routes and
    /// `[default]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_from_request: Option<Spanned<String>>,
    /// `lease_ttl = "30s"` (`algorithm = "concurrency"` only): on Redis, how long an
    /// in-flight request's slot outlives its gateway's last renewal — the most a crashed
    /// gateway can keep slots taken (default 30s, at least 100ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ttl: Option<Spanned<String>>,
}

fn unspanned<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}

fn int(n: u64) -> Spanned<i64> {
    unspanned(i64::try_from(n).unwrap_or(i64::MAX))
}

impl LimitTable {
    /// The route `path` enforcing `policy` with `kind`, in the words `kind` takes:
    /// buckets get `capacity` = burst and `refill_per_sec` = limit / window, windowed
    /// algorithms `limit` per `window`; `cost` only when it is not 1.
    pub fn route(path: &str, kind: Kind, policy: &PolicySpec) -> Self {
        let q = &policy.quota;
        let bucket = kind.is_bucket();
        Self {
            path: Some(unspanned(path.to_owned())),
            algorithm: Some(unspanned(kind.name().to_owned())),
            capacity: bucket.then(|| int(q.burst())),
            refill_per_sec: bucket.then(|| unspanned(policy.refill_per_sec())),
            limit: (!bucket).then(|| int(q.limit())),
            window: (!bucket).then(|| unspanned(duration::format(q.period()))),
            buckets: None,
            cost: (policy.cost != 1).then(|| int(policy.cost)),
            require_api_key: None,
            name: None,
            limits: None,
            mode: None,
            shadow_headers: None,
            tiers: None,
            case_insensitive: None,
            cost_from_response: None,
            cost_from_request: None,
            lease_ttl: None,
        }
    }
}

/// Writes `routes` as `[[route]]` tables, ready to append to a config file.
pub fn routes_toml(routes: Vec<LimitTable>) -> Result<String, toml::ser::Error> {
    let file = ConfigFile {
        route: routes.into_iter().map(unspanned).collect(),
        ..ConfigFile::default()
    };
    toml::to_string(&file)
}

/// Why a file is not a [`ConfigFile`]: the parser's own message, span and key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// Byte range the parser blamed, if any.
    pub span: Option<Range<usize>>,
    /// The key at fault (`store.colour`, `route[2].capacity`), routes counted from 1;
    /// empty for a syntax error outside any key.
    pub key: String,
    /// What the parser said.
    pub message: String,
}

/// Parses `text` into a [`ConfigFile`], keeping the parser's span and the key path of
/// the first error.
pub fn parse(text: &str) -> Result<ConfigFile, FileError> {
    parse_with(text)
}

/// Parses `text` into any of the file types, keeping span and key path of an error.
fn parse_with<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, FileError> {
    let de = toml::Deserializer::parse(text).map_err(|e| FileError {
        span: e.span(),
        key: String::new(),
        message: e.message().trim().to_owned(),
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = key_path(e.path(), 1);
        let inner = e.into_inner();
        FileError {
            span: inner.span(),
            key,
            message: inner.message().trim().to_owned(),
        }
    })
}

/// A serde path as a config key: `route[2].capacity` with array indices counted from
/// `base`, without serde's private `Spanned` fields.
pub fn key_path(path: &serde_path_to_error::Path, base: usize) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{}]", index + base)),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if key.starts_with("$__serde_spanned") {
                    continue;
                }
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use limiter_core::Quota;

    use super::*;

    #[test]
    fn errors_carry_the_key_and_the_parsers_span() {
        let text = "[store]\nkind = \"memory\"\ncolour = 3\n";
        let e = parse(text).unwrap_err();
        assert_eq!(e.key, "store.colour");
        assert!(e.message.contains("unknown field"), "{e:?}");
        assert_eq!(&text[e.span.unwrap()], "colour");

        let text = "route = [\n  { path = \"/a\", algorithm = \"gcra\" },\n  { path = \"/b\", algorithm = 7 },\n]\n";
        let e = parse(text).unwrap_err();
        assert_eq!(e.key, "route[2].algorithm");
        assert_eq!(&text[e.span.unwrap()], "7");

        let text = "[store]\nurls = [\"redis://a\", 3]\n";
        let e = parse(text).unwrap_err();
        assert_eq!(e.key, "store.urls[2]");
        assert_eq!(&text[e.span.unwrap()], "3");

        let e = parse("listen = [1,\n").unwrap_err();
        assert!(e.span.is_some() && e.key.is_empty(), "{e:?}");
    }

    #[test]
    fn emitted_routes_read_back() {
        let q = Quota::new(5, Duration::from_millis(1500)).unwrap();
        let p = PolicySpec::new(q, 2, &[Kind::FixedWindow]).unwrap();
        let b = Quota::new(5, Duration::from_secs(6)).unwrap();
        let pb = PolicySpec::new(b, 1, &[Kind::TokenBucket]).unwrap();
        let text = routes_toml(vec![
            LimitTable::route("/a/{id}", Kind::FixedWindow, &p),
            LimitTable::route("/b", Kind::TokenBucket, &pb),
        ])
        .unwrap();
        assert!(
            text.contains("limit = 5\nwindow = \"1s 500ms\"\ncost = 2\n"),
            "{text}"
        );
        assert!(
            text.contains("capacity = 5\nrefill_per_sec = 0.8333333333333334\n"),
            "{text}"
        );
        let back = parse(&text).unwrap();
        assert_eq!(back.route.len(), 2);
        assert_eq!(
            back.route[0].get_ref().path.as_ref().unwrap().get_ref(),
            "/a/{id}"
        );
    }
}
