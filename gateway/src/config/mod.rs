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
//! admin_listen = "127.0.0.1:9901"   # /metrics, /healthz, /readyz
//!
//! [identity]
//! header          = "x-user-id"     # believed only from trusted_proxies
//! trusted_proxies = ["10.0.0.0/8"]  # else the client IP is the identity
//!
//! [store]
//! kind     = "memory"           # memory | redis | redis-cluster
//! timeout  = "50ms"
//! on_error = "fail-open"        # fail-open | fail-closed | local
//! mode     = "exact"            # exact | lease (redis, redis-cluster)
//! lease    = { max = 64, ttl = "1s" }
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
//!
//! The file's words are [`gateway_contract::config`]'s types (the load driver writes
//! routes with them); this module holds what they mean at run time, `validate` the
//! checks between the two, and `error` how a mistake is shown.

mod error;
mod limits;
mod store_mode;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;
use ipnet::IpNet;
use limiter_core::store::StoreMode;
use limiter_core::store::memory::{AtCapacity, Capacity};
use limiter_core::tower::DEFAULT_MAX_IDENTITY;
use limiter_core::{FailurePolicy, Policy};

pub use self::error::ConfigError;
pub use gateway_contract::duration::parse as parse_duration;
/// One limit of a route (gateway-contract's, shared with the lab's workloads).
pub use gateway_contract::limits::LimitConfig;

use crate::routes::Template;

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

/// The `[store]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// Where state lives.
    pub kind: StoreKind,
    /// Per-call timeout of a remote store.
    pub timeout: Duration,
    /// What to answer when the store fails (`fail-open`, `fail-closed`, `local`).
    pub on_error: FailurePolicy,
    /// Prefix of every Redis key.
    pub key_prefix: String,
    /// The most keys one route's in-memory limiter holds (memory store and `local`
    /// fallback).
    pub max_keys: usize,
    /// How often idle in-memory keys are swept.
    pub sweep_interval: Duration,
    /// How gateway instances share a key on Redis (`exact`, `lease`).
    pub mode: StoreMode,
    /// The most bytes one route's in-memory limiter holds, each key counted at its
    /// worst case (memory store and `local` fallback); `None`: keys are the only cap.
    pub max_bytes: Option<usize>,
    /// What a new key gets when a route's in-memory store is full of throttled keys.
    pub at_capacity: AtCapacity,
}

impl StoreConfig {
    /// The bounds of each route's in-memory store (and `local` fallback).
    pub fn capacity(&self) -> Capacity {
        Capacity {
            max_keys: self.max_keys,
            max_bytes: self.max_bytes,
            at_capacity: self.at_capacity,
        }
    }
}

/// The `[server]` table: limits that protect the gateway itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// A client must send its request head within this time of its first byte (a new
    /// connection: of being accepted), or the connection closes.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request; advertised in
    /// `Keep-Alive: timeout=N` so clients retire it first.
    pub keep_alive_timeout: Duration,
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
    /// The longest pause while a request or response body streams; longer ends the
    /// exchange (a request body: `408`; a response body: the client connection closes).
    pub body_idle_timeout: Duration,
    /// The most client connections one address may hold open (`None`: no cap); more are
    /// closed at once.
    pub max_connections_per_ip: Option<usize>,
    /// The most connections open to the backend at once; a request finding none free
    /// waits for one within `upstream_timeout`.
    pub max_backend_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            keep_alive_timeout: Duration::from_secs(60),
            max_header_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
            upstream_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            max_connections: 10_000,
            pool_max_idle: 256,
            body_idle_timeout: Duration::from_secs(30),
            max_connections_per_ip: None,
            max_backend_connections: 1024,
        }
    }
}

/// Which forwarding header a trusted proxy appends the client's address to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientIpHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// The `[identity]` table: whose quota a request spends.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityConfig {
    /// The identity header (lowercase), believed only from `trusted_proxies`.
    pub header: String,
    /// The longest identity accepted, in bytes (longer gets `400`).
    pub max_len: usize,
    /// The API keys file (relative paths already joined to the config's folder).
    pub api_keys: Option<PathBuf>,
    /// The header a client presents its API key in (lowercase).
    pub api_key_header: String,
    /// Whether requests need a valid API key by default (a route may override).
    pub require_api_key: bool,
    /// Peers whose identity header and forwarding headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Which forwarding header names the client behind a trusted proxy.
    pub client_ip_header: ClientIpHeader,
    /// IPv6 clients are grouped by this prefix length (0..=128).
    pub ipv6_prefix: u8,
    /// A limit keyed by client IP that every request passes, whatever its identity.
    pub per_ip: Option<RouteLimits>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            header: gateway_contract::USER_HEADER.to_owned(),
            max_len: DEFAULT_MAX_IDENTITY,
            api_keys: None,
            api_key_header: "x-api-key".to_owned(),
            require_api_key: false,
            trusted_proxies: Vec::new(),
            client_ip_header: ClientIpHeader::default(),
            ipv6_prefix: 64,
            per_ip: None,
        }
    }
}

/// Whether a route's refusals are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Refuse what the limits refuse (`429`).
    #[default]
    Enforce,
    /// Decide and count, but let every request through (`outcome="shadow_denied"` in
    /// the metrics): how a team tries a limit on live traffic before enforcing it.
    Shadow,
}

/// What limits the requests of one route (or the default): one or several limits
/// (all must admit; a request then spends from all), the cost of a request, the mode,
/// and per-tier replacements of the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteLimits {
    /// The limits (1 to 8, counting the global ones), in header order.
    pub limits: Vec<LimitConfig>,
    /// Units one request costs, in every limit.
    pub cost: u64,
    /// Enforce or shadow.
    pub mode: Mode,
    /// In shadow mode, still send the rate-limit headers.
    pub shadow_headers: bool,
    /// The limits for identities of a tier, by tier name (unknown tiers: `limits`).
    pub tiers: BTreeMap<String, Vec<LimitConfig>>,
    /// `cost_from_response`: the response header whose value the request is settled at
    /// (every limit of the route and its tiers settles: token bucket or GCRA).
    pub cost_from_response: Option<http::HeaderName>,
    /// `cost_from_request`: the request header whose value is the request's cost, from
    /// API-key identities and trusted proxies only.
    pub cost_from_request: Option<http::HeaderName>,
}

impl RouteLimits {
    /// One limit, enforced, cost 1, no tiers.
    pub fn one(policy: Policy) -> Self {
        Self {
            limits: vec![LimitConfig::rate(policy)],
            cost: 1,
            mode: Mode::Enforce,
            shadow_headers: false,
            tiers: BTreeMap::new(),
            cost_from_response: None,
            cost_from_request: None,
        }
    }
}

/// A `[[route]]`: requests whose path matches `path` are limited by `limit`, per
/// identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// The path template.
    pub path: Template,
    /// Its limits.
    pub limit: RouteLimits,
    /// Whether its requests need a valid API key (`None`: `[identity] require_api_key`).
    pub require_api_key: Option<bool>,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the gateway listens.
    pub listen: SocketAddr,
    /// The backend every request is forwarded to (`http://host:port`).
    pub backend: Uri,
    /// Where `/metrics`, `/healthz` and `/readyz` are served (never on `listen`).
    pub admin_listen: SocketAddr,
    /// Whose quota a request spends.
    pub identity: IdentityConfig,
    /// The store.
    pub store: StoreConfig,
    /// Server limits.
    pub server: ServerConfig,
    /// The routes, matched in order.
    pub routes: Vec<RouteConfig>,
    /// The limit of paths no route matches (`None`: not limited).
    pub default: Option<RouteLimits>,
    /// `require_api_key` of the `[default]` table (`None`: `[identity]`'s).
    pub default_requires_key: Option<bool>,
    /// `[[global]]`: named limits every request also spends from, per identity across
    /// every route (unmatched paths included).
    pub global: Vec<LimitConfig>,
    /// `--dry-run`: every route in shadow mode.
    pub dry_run: bool,
    /// `[log]`: where one JSON line per request goes and how it names people (`None`:
    /// no access log).
    pub access_log: Option<crate::access_log::AccessLogConfig>,
}

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default backend.
pub const DEFAULT_BACKEND: &str = "http://127.0.0.1:9000";

impl Config {
    /// Reads and validates the configuration in `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|err| {
            let message = match err.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_owned(),
                _ => format!("cannot read: {err}"),
            };
            ConfigError::unreadable(path, &message)
        })?;
        Self::parse(path, &text)
    }

    /// Validates `text`, reporting errors against `file`.
    pub fn parse(file: impl AsRef<Path>, text: &str) -> Result<Self, ConfigError> {
        let file = file.as_ref();
        let raw = gateway_contract::config::parse(text)
            .map_err(|e| ConfigError::from_file_error(file, text, e))?;
        validate::Cx::new(file, text).config(raw)
    }

    /// Replaces the listen address (the `--listen` flag).
    pub fn set_listen(&mut self, addr: &str) -> Result<(), String> {
        self.listen = parse_listen(addr)?;
        Ok(())
    }

    /// Replaces the admin listen address (the `--admin-listen` flag).
    pub fn set_admin_listen(&mut self, addr: &str) -> Result<(), String> {
        self.admin_listen = parse_listen(addr)?;
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
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9901)),
            identity: IdentityConfig::default(),
            store: StoreConfig {
                kind: StoreKind::Memory,
                timeout: Duration::from_millis(50),
                on_error: FailurePolicy::FailOpen,
                key_prefix: "ratelab".to_owned(),
                max_keys: 1_000_000,
                sweep_interval: Duration::from_secs(5),
                mode: StoreMode::Exact,
                max_bytes: None,
                at_capacity: AtCapacity::EvictOldest,
            },
            server: ServerConfig::default(),
            routes: Vec::new(),
            default: None,
            default_requires_key: None,
            global: Vec::new(),
            dry_run: false,
            access_log: None,
        }
    }
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

#[cfg(test)]
mod cost_tests;
#[cfg(test)]
mod tests;
