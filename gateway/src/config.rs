//! The gateway's TOML configuration, validated up front.
//!
//! The guarantee: [`Config::load`] either returns a configuration every part of the
//! gateway can run with, or a [`ConfigError`] naming the file, the line and the key at
//! fault — unknown keys, unknown algorithms, zero or negative numbers, bad durations
//! and bad URLs are all caught here, before a socket is opened.
//!
//! ```toml
//! listen  = "127.0.0.1:8080"
//! backend = "http://127.0.0.1:9000"
//!
//! [identity]
//! header = "x-user-id"          # missing header -> client IP
//!
//! [store]
//! kind       = "memory"         # memory | redis | redis-cluster
//! timeout_ms = 50
//! on_error   = "fail-open"      # fail-open | fail-closed | local
//!
//! [[route]]
//! path           = "/api/orders/{id}"
//! algorithm      = "token-bucket"
//! capacity       = 20
//! refill_per_sec = 10
//!
//! [[route]]
//! path      = "/api/search"
//! algorithm = "fixed-window"
//! limit     = 100
//! window    = "60s"
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use http::Uri;
use limiter_core::tower::DEFAULT_MAX_IDENTITY;
use limiter_core::{Kind, Policy, Quota};
use serde::Deserialize;
use toml::Spanned;

use crate::routes::Template;

/// A configuration error, located: `file:line:column: key: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {key}: {message}", file.display())]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// 1-based line of the offending key (0 when the file could not be read).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The key at fault, with its table (`route[2].capacity`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Which store keeps the limiters' state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// In this process: fast, but each gateway instance counts on its own.
    Memory,
    /// One Redis server shared by every instance.
    Redis {
        /// `redis://host:port[/db]`.
        url: String,
    },
    /// A Redis Cluster shared by every instance.
    RedisCluster {
        /// Seed node URLs.
        urls: Vec<String>,
    },
}

/// What the gateway answers when the store fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Admit the request (availability over protection).
    FailOpen,
    /// Refuse with `503` and `Retry-After` (protection over availability).
    FailClosed,
    /// Decide with an in-memory limiter of the same policy, per instance.
    Local,
}

impl OnError {
    /// The name used in configs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            OnError::FailOpen => "fail-open",
            OnError::FailClosed => "fail-closed",
            OnError::Local => "local",
        }
    }
}

impl FromStr for OnError {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fail-open" => Ok(OnError::FailOpen),
            "fail-closed" => Ok(OnError::FailClosed),
            "local" => Ok(OnError::Local),
            other => Err(format!(
                "unknown failure policy {other:?} (expected fail-open, fail-closed or local)"
            )),
        }
    }
}

/// The `[store]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// Where state lives.
    pub kind: StoreKind,
    /// Per-call timeout of a remote store.
    pub timeout: Duration,
    /// What to answer when the store fails.
    pub on_error: OnError,
    /// Prefix of every Redis key.
    pub key_prefix: String,
    /// The most keys one route's in-memory limiter holds (memory store and `local`
    /// fallback).
    pub max_keys: usize,
    /// How often idle in-memory keys are swept.
    pub sweep_interval: Duration,
}

/// The `[server]` table: limits that protect the gateway itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// A client must send its request head within this time, or the connection closes.
    pub header_read_timeout: Duration,
    /// The largest request head (request line and headers) read; larger gets `431`.
    pub max_header_bytes: usize,
    /// The largest request body forwarded; larger gets `413`.
    pub max_body_bytes: u64,
    /// How long the backend has to answer with response headers; longer gets `504`.
    pub upstream_timeout: Duration,
    /// How long in-flight requests may take to finish after SIGINT/SIGTERM.
    pub shutdown_grace: Duration,
    /// The most client connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// Idle keep-alive connections kept to the backend.
    pub pool_max_idle: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
            upstream_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            max_connections: 10_000,
            pool_max_idle: 256,
        }
    }
}

/// One limit: a policy and the cost of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitConfig {
    /// Algorithm and quota.
    pub policy: Policy,
    /// Units one request costs.
    pub cost: u64,
}

/// A `[[route]]`: requests whose path matches `path` are limited by `limit`, per
/// identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// The path template.
    pub path: Template,
    /// The limit.
    pub limit: LimitConfig,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the gateway listens.
    pub listen: SocketAddr,
    /// The backend every request is forwarded to (`http://host:port`).
    pub backend: Uri,
    /// The header that identifies a user (else the client IP is used).
    pub identity_header: String,
    /// The longest identity accepted, in bytes (longer gets `400`).
    pub identity_max_len: usize,
    /// The store.
    pub store: StoreConfig,
    /// Server limits.
    pub server: ServerConfig,
    /// The routes, matched in order.
    pub routes: Vec<RouteConfig>,
    /// The limit of paths no route matches (`None`: not limited).
    pub default: Option<LimitConfig>,
}

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default backend.
pub const DEFAULT_BACKEND: &str = "http://127.0.0.1:9000";

// ---------------------------------------------------------------------------------
// Raw, as written.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<Spanned<String>>,
    backend: Option<Spanned<String>>,
    identity: Option<RawIdentity>,
    store: Option<RawStore>,
    server: Option<RawServer>,
    #[serde(default)]
    route: Vec<Spanned<RawLimit>>,
    default: Option<Spanned<RawLimit>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    header: Option<Spanned<String>>,
    max_len: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    kind: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    urls: Option<Spanned<Vec<Spanned<String>>>>,
    timeout_ms: Option<Spanned<i64>>,
    on_error: Option<Spanned<String>>,
    key_prefix: Option<Spanned<String>>,
    max_keys: Option<Spanned<i64>>,
    sweep_interval: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    header_read_timeout: Option<Spanned<String>>,
    max_header_bytes: Option<Spanned<i64>>,
    max_body_bytes: Option<Spanned<i64>>,
    upstream_timeout: Option<Spanned<String>>,
    shutdown_grace: Option<Spanned<String>>,
    max_connections: Option<Spanned<i64>>,
    pool_max_idle: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    path: Option<Spanned<String>>,
    algorithm: Spanned<String>,
    capacity: Option<Spanned<i64>>,
    refill_per_sec: Option<Spanned<f64>>,
    limit: Option<Spanned<i64>>,
    window: Option<Spanned<String>>,
    cost: Option<Spanned<i64>>,
}

// ---------------------------------------------------------------------------------

impl Config {
    /// Reads and validates the configuration in `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
            file: path.to_owned(),
            line: 0,
            column: 0,
            key: "(file)".to_owned(),
            message: format!("cannot read: {err}"),
        })?;
        Self::parse(path, &text)
    }

    /// Validates `text`, reporting errors against `file`.
    pub fn parse(file: impl AsRef<Path>, text: &str) -> Result<Self, ConfigError> {
        let cx = Cx {
            file: file.as_ref(),
            src: text,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|err| {
            let start = err.span().map_or(0, |s| s.start);
            let message = err.message().trim().to_owned();
            // "unknown field `x`" points at the key itself; name it.
            cx.error_at(start, &message)
        })?;
        cx.validate(raw)
    }

    /// Replaces the listen address (the `--listen` flag).
    pub fn set_listen(&mut self, addr: &str) -> Result<(), String> {
        self.listen = parse_listen(addr)?;
        Ok(())
    }

    /// Replaces the backend (the `--backend` flag).
    pub fn set_backend(&mut self, url: &str) -> Result<(), String> {
        self.backend = parse_backend(url)?;
        Ok(())
    }
}

impl Default for Config {
    /// No limits, memory store, default addresses: a plain proxy.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            backend: Uri::from_static(DEFAULT_BACKEND),
            identity_header: "x-user-id".to_owned(),
            identity_max_len: DEFAULT_MAX_IDENTITY,
            store: StoreConfig {
                kind: StoreKind::Memory,
                timeout: Duration::from_millis(50),
                on_error: OnError::FailOpen,
                key_prefix: "ratelab".to_owned(),
                max_keys: 1_000_000,
                sweep_interval: Duration::from_secs(5),
            },
            server: ServerConfig::default(),
            routes: Vec::new(),
            default: None,
        }
    }
}

/// Parses a duration: a number and a unit, `us`, `ms`, `s`, `m` or `h` (`"500ms"`,
/// `"60s"`, `"1h"`, `"1.5s"`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("duration {s:?} needs a unit (us, ms, s, m or h)"))?;
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("duration {s:?} does not start with a number"))?;
    let unit_secs = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (expected us, ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(value * unit_secs)
        .map_err(|_| format!("duration {s:?} is out of range"))
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not a socket address like 127.0.0.1:8080"))
}

fn parse_backend(s: &str) -> Result<Uri, String> {
    let uri: Uri = s.parse().map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("{s:?}: the backend must be an http:// URL"));
    }
    if uri.authority().is_none_or(|a| a.host().is_empty()) {
        return Err(format!("{s:?}: the backend URL has no host"));
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return Err(format!(
            "{s:?}: the backend URL must not have a path or query"
        ));
    }
    Ok(uri)
}

fn check_redis_url(s: &str) -> Result<(), String> {
    let rest = s
        .strip_prefix("redis://")
        .or_else(|| s.strip_prefix("rediss://"))
        .ok_or_else(|| format!("{s:?} is not a redis:// URL"))?;
    let host = rest.rsplit('@').next().unwrap_or_default();
    let host = host.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{s:?}: the Redis URL has no host"));
    }
    if let Some((_, port)) = host.rsplit_once(':')
        && !host.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(format!("{s:?}: bad port {port:?}"));
    }
    Ok(())
}

/// Validation context: the file and its text, to turn byte offsets into lines.
struct Cx<'a> {
    file: &'a Path,
    src: &'a str,
}

impl Cx<'_> {
    /// An error at byte `offset`, naming the key found there.
    fn error_at(&self, offset: usize, message: &str) -> ConfigError {
        let offset = offset.min(self.src.len());
        let before = &self.src[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        ConfigError {
            file: self.file.to_owned(),
            line,
            column,
            key: self.key_at(line_start),
            message: message.to_owned(),
        }
    }

    fn err<T>(&self, spanned: &Spanned<T>, message: impl fmt::Display) -> ConfigError {
        self.error_at(spanned.span().start, &message.to_string())
    }

    /// The key on the line starting at `line_start`, qualified by its table:
    /// `route[2].capacity`, `store.kind`, `listen`.
    fn key_at(&self, line_start: usize) -> String {
        let line = self.src[line_start..]
            .lines()
            .next()
            .unwrap_or_default()
            .trim();
        let table = self.table_at(line_start);
        if line.starts_with('[') {
            return table.unwrap_or_default();
        }
        let key = line
            .split('=')
            .next()
            .unwrap_or_default()
            .trim()
            .trim_matches('"')
            .to_owned();
        match table {
            Some(t) if !key.is_empty() => format!("{t}.{key}"),
            Some(t) => t,
            None => key,
        }
    }

    /// The table header governing the line starting at `line_start` (inclusive): `store`,
    /// `route[2]` (1-based), or `None` at top level.
    fn table_at(&self, line_start: usize) -> Option<String> {
        let end = self.src[line_start..]
            .find('\n')
            .map_or(self.src.len(), |i| line_start + i);
        let mut current = None;
        let mut counts: Vec<(String, usize)> = Vec::new();
        for line in self.src[..end].lines() {
            let t = line.trim();
            if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
                let name = name.trim().to_owned();
                let n = match counts.iter_mut().find(|(k, _)| *k == name) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        counts.push((name.clone(), 1));
                        1
                    }
                };
                current = Some(format!("{name}[{n}]"));
            } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
                current = Some(name.trim().to_owned());
            }
        }
        current
    }

    fn positive(&self, v: &Spanned<i64>, what: &str) -> Result<u64, ConfigError> {
        match u64::try_from(*v.get_ref()) {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(self.err(v, format!("{what} must be at least 1, got {}", v.get_ref()))),
        }
    }

    fn duration(&self, v: &Spanned<String>) -> Result<Duration, ConfigError> {
        let d = parse_duration(v.get_ref()).map_err(|e| self.err(v, e))?;
        if d.is_zero() {
            return Err(self.err(v, "must be longer than zero"));
        }
        Ok(d)
    }

    fn validate(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        if let Some(l) = &raw.listen {
            config.listen = parse_listen(l.get_ref()).map_err(|e| self.err(l, e))?;
        }
        if let Some(b) = &raw.backend {
            config.backend = parse_backend(b.get_ref()).map_err(|e| self.err(b, e))?;
        }
        if let Some(id) = &raw.identity {
            if let Some(h) = &id.header {
                http::HeaderName::try_from(h.get_ref().as_str())
                    .map_err(|_| self.err(h, format!("{:?} is not a header name", h.get_ref())))?;
                config.identity_header = h.get_ref().to_ascii_lowercase();
            }
            if let Some(m) = &id.max_len {
                config.identity_max_len = self.positive(m, "max_len")? as usize;
            }
        }
        if let Some(store) = &raw.store {
            self.store(store, &mut config.store)?;
        }
        if let Some(server) = &raw.server {
            self.server(server, &mut config.server)?;
        }
        for route in &raw.route {
            let Some(path) = &route.get_ref().path else {
                return Err(self.err(route, "a [[route]] needs a `path`"));
            };
            let template = Template::parse(path.get_ref()).map_err(|e| self.err(path, e))?;
            if config
                .routes
                .iter()
                .any(|r: &RouteConfig| r.path == template)
            {
                return Err(self.err(path, format!("route {:?} is defined twice", path.get_ref())));
            }
            let limit = self.limit(route.get_ref())?;
            config.routes.push(RouteConfig {
                path: template,
                limit,
            });
        }
        if let Some(default) = &raw.default {
            if let Some(path) = &default.get_ref().path {
                return Err(self.err(
                    path,
                    "[default] applies to unmatched paths and takes no `path`",
                ));
            }
            config.default = Some(self.limit(default.get_ref())?);
        }
        Ok(config)
    }

    fn store(&self, raw: &RawStore, out: &mut StoreConfig) -> Result<(), ConfigError> {
        let kind = raw.kind.as_ref().map_or("memory", |k| k.get_ref().as_str());
        let no_url = |what: &str| -> Result<(), ConfigError> {
            if let Some(u) = &raw.url {
                return Err(self.err(u, format!("`url` does not apply to the {what} store")));
            }
            if let Some(u) = &raw.urls {
                return Err(self.err(u, format!("`urls` does not apply to the {what} store")));
            }
            Ok(())
        };
        out.kind = match kind {
            "memory" => {
                no_url("memory")?;
                StoreKind::Memory
            }
            "redis" => {
                if let Some(u) = &raw.urls {
                    return Err(self.err(
                        u,
                        "the redis store takes one `url`; `urls` is for redis-cluster",
                    ));
                }
                let url =
                    raw.url
                        .as_ref()
                        .map_or(Ok("redis://127.0.0.1:6379".to_owned()), |u| {
                            check_redis_url(u.get_ref()).map_err(|e| self.err(u, e))?;
                            Ok(u.get_ref().clone())
                        })?;
                StoreKind::Redis { url }
            }
            "redis-cluster" => {
                if let Some(u) = &raw.url {
                    return Err(self.err(u, "the redis-cluster store takes `urls = [...]`"));
                }
                let Some(urls) = &raw.urls else {
                    let at = raw.kind.as_ref().map_or(0, |k| k.span().start);
                    return Err(self.error_at(at, "the redis-cluster store needs `urls = [...]`"));
                };
                if urls.get_ref().is_empty() {
                    return Err(self.err(urls, "`urls` lists no node"));
                }
                for u in urls.get_ref() {
                    check_redis_url(u.get_ref()).map_err(|e| self.err(u, e))?;
                }
                StoreKind::RedisCluster {
                    urls: urls.get_ref().iter().map(|u| u.get_ref().clone()).collect(),
                }
            }
            other => {
                let k = raw.kind.as_ref().map_or(0, |k| k.span().start);
                return Err(self.error_at(
                    k,
                    &format!("unknown store {other:?} (expected memory, redis or redis-cluster)"),
                ));
            }
        };
        if let Some(t) = &raw.timeout_ms {
            out.timeout = Duration::from_millis(self.positive(t, "timeout_ms")?);
        }
        if let Some(e) = &raw.on_error {
            out.on_error = e.get_ref().parse().map_err(|m: String| self.err(e, m))?;
        }
        if let Some(p) = &raw.key_prefix {
            if p.get_ref().contains(['{', '}']) || p.get_ref().chars().any(char::is_whitespace) {
                return Err(self.err(p, "key_prefix must not contain braces or spaces"));
            }
            out.key_prefix = p.get_ref().clone();
        }
        if let Some(m) = &raw.max_keys {
            out.max_keys = usize::try_from(self.positive(m, "max_keys")?).unwrap_or(usize::MAX);
        }
        if let Some(s) = &raw.sweep_interval {
            out.sweep_interval = self.duration(s)?;
        }
        Ok(())
    }

    fn server(&self, raw: &RawServer, out: &mut ServerConfig) -> Result<(), ConfigError> {
        if let Some(d) = &raw.header_read_timeout {
            out.header_read_timeout = self.duration(d)?;
        }
        if let Some(n) = &raw.max_header_bytes {
            let n = self.positive(n, "max_header_bytes").and_then(|v| {
                if v < 8192 {
                    Err(self.err(n, "max_header_bytes must be at least 8192"))
                } else {
                    Ok(v)
                }
            })?;
            out.max_header_bytes = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = &raw.max_body_bytes {
            out.max_body_bytes = u64::try_from(*n.get_ref())
                .map_err(|_| self.err(n, "max_body_bytes must not be negative"))?;
        }
        if let Some(d) = &raw.upstream_timeout {
            out.upstream_timeout = self.duration(d)?;
        }
        if let Some(d) = &raw.shutdown_grace {
            out.shutdown_grace = self.duration(d)?;
        }
        if let Some(n) = &raw.max_connections {
            out.max_connections =
                usize::try_from(self.positive(n, "max_connections")?).unwrap_or(usize::MAX);
        }
        if let Some(n) = &raw.pool_max_idle {
            out.pool_max_idle = usize::try_from(*n.get_ref())
                .map_err(|_| self.err(n, "pool_max_idle must not be negative"))?;
        }
        Ok(())
    }

    fn limit(&self, raw: &RawLimit) -> Result<LimitConfig, ConfigError> {
        let algo = &raw.algorithm;
        let kind: Kind = algo.get_ref().parse().map_err(|e| self.err(algo, e))?;
        let forbid = |at: Option<usize>, name: &str, use_: &str| match at {
            Some(at) => Err(self.error_at(
                at,
                &format!("`{name}` does not apply to {kind}; it takes {use_}"),
            )),
            None => Ok(()),
        };
        let need = |name: &str| self.err(algo, format!("{kind} needs `{name}`"));
        let (quota, most) = if kind.is_bucket() {
            forbid(
                raw.limit.as_ref().map(|f| f.span().start),
                "limit",
                "capacity and refill_per_sec",
            )?;
            forbid(
                raw.window.as_ref().map(|f| f.span().start),
                "window",
                "capacity and refill_per_sec",
            )?;
            let cap = raw.capacity.as_ref().ok_or_else(|| need("capacity"))?;
            let rate = raw
                .refill_per_sec
                .as_ref()
                .ok_or_else(|| need("refill_per_sec"))?;
            let capacity = self.positive(cap, "capacity")?;
            let r = *rate.get_ref();
            if !r.is_finite() || r <= 0.0 {
                return Err(self.err(
                    rate,
                    format!("refill_per_sec must be a positive number, got {r}"),
                ));
            }
            let q = Quota::bucket(capacity, r).map_err(|e| self.err(rate, e))?;
            (q, capacity)
        } else {
            forbid(
                raw.capacity.as_ref().map(|f| f.span().start),
                "capacity",
                "limit and window",
            )?;
            forbid(
                raw.refill_per_sec.as_ref().map(|f| f.span().start),
                "refill_per_sec",
                "limit and window",
            )?;
            let lim = raw.limit.as_ref().ok_or_else(|| need("limit"))?;
            let win = raw.window.as_ref().ok_or_else(|| need("window"))?;
            let limit = self.positive(lim, "limit")?;
            let window = self.duration(win)?;
            let q = Quota::new(limit, window).map_err(|e| self.err(lim, e))?;
            (q, limit)
        };
        let cost = match &raw.cost {
            Some(c) => {
                let cost = self.positive(c, "cost")?;
                if cost > most {
                    return Err(self.err(
                        c,
                        format!("cost {cost} exceeds what the limit ever admits ({most})"),
                    ));
                }
                cost
            }
            None => 1,
        };
        Ok(LimitConfig {
            policy: Policy::new(kind, quota),
            cost,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse("gw.toml", text)
    }

    #[test]
    fn the_design_example_parses() {
        let c = parse(
            r#"
listen  = "127.0.0.1:8080"
backend = "http://127.0.0.1:9000"

[identity]
header = "x-user-id"

[store]
kind       = "redis"
url        = "redis://127.0.0.1:6379"
timeout_ms = 50
on_error   = "fail-closed"

[[route]]
path      = "/api/orders/{id}"
algorithm = "token-bucket"
capacity  = 20
refill_per_sec = 10

[[route]]
path      = "/api/search"
algorithm = "fixed-window"
limit     = 100
window    = "60s"
cost      = 2

[default]
algorithm = "gcra"
capacity = 5
refill_per_sec = 0.083
"#,
        )
        .unwrap();
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.routes[1].limit.cost, 2);
        assert_eq!(c.routes[1].limit.policy.quota.limit(), 100);
        assert_eq!(c.store.on_error, OnError::FailClosed);
        assert_eq!(c.store.timeout, Duration::from_millis(50));
        assert!(matches!(c.store.kind, StoreKind::Redis { .. }));
        assert_eq!(c.default.unwrap().policy.kind, Kind::Gcra);
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = err("listen = \"127.0.0.1:1\"\n[[route]]\npath = \"/a\"\nalgorithm = \"leaky\"\n");
        assert!(e.starts_with("gw.toml:4:"), "{e}");
        assert!(e.contains("route[1].algorithm"), "{e}");
        assert!(e.contains("leaky"), "{e}");

        let e = err(
            "[[route]]\npath = \"/a\"\nalgorithm = \"gcra\"\ncapacity = 1\nrefill_per_sec = 1\n[[route]]\npath = \"/b\"\nalgorithm = \"token-bucket\"\ncapacity = 0\nrefill_per_sec = 1\n",
        );
        assert!(e.starts_with("gw.toml:9:"), "{e}");
        assert!(
            e.contains("route[2].capacity: capacity must be at least 1"),
            "{e}"
        );

        let e = err(
            "[[route]]\npath = \"/a\"\nalgorithm = \"gcra\"\ncapacity = 1\nrefill_per_sec = -2.5\n",
        );
        assert!(e.starts_with("gw.toml:5:"), "{e}");
        assert!(e.contains("route[1].refill_per_sec"), "{e}");

        let e = err("[store]\nkind = \"memory\"\ncolour = 3\n");
        assert!(e.starts_with("gw.toml:3:"), "{e}");
        assert!(e.contains("store.colour"), "{e}");
        assert!(e.contains("unknown field"), "{e}");

        let e = err("backend = \"ftp://x\"\n");
        assert!(e.starts_with("gw.toml:1:"), "{e}");
        assert!(e.contains("backend:"), "{e}");

        let e = err("[store]\nkind = \"redis\"\nurl = \"http://localhost\"\n");
        assert!(
            e.starts_with("gw.toml:3:") && e.contains("store.url"),
            "{e}"
        );

        let e = err(
            "[[route]]\npath = \"/a\"\nalgorithm = \"fixed-window\"\nlimit = 5\nwindow = \"10 parsecs\"\n",
        );
        assert!(e.contains("route[1].window") && e.contains("unit"), "{e}");

        let e = err("[[route]]\npath = \"/a\"\nalgorithm = \"fixed-window\"\nlimit = 5\n");
        assert!(e.contains("needs `window`"), "{e}");

        let e = err(
            "[[route]]\npath = \"/a\"\nalgorithm = \"fixed-window\"\nlimit = 5\nwindow = \"1s\"\ncapacity = 3\n",
        );
        assert!(
            e.contains("route[1].capacity") && e.contains("does not apply"),
            "{e}"
        );

        let e = err("listen = [1,\n");
        assert!(e.starts_with("gw.toml:"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1e400s").is_err());
        assert!(parse_duration("5 fortnights").is_err());
    }

    #[test]
    fn redis_urls() {
        assert!(check_redis_url("redis://127.0.0.1:6379").is_ok());
        assert!(check_redis_url("redis://:pw@host:1/0").is_ok());
        assert!(check_redis_url("redis://").is_err());
        assert!(check_redis_url("redis://h:port").is_err());
        assert!(check_redis_url("127.0.0.1:6379").is_err());
    }
}
