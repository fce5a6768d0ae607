//! A rate-limiting API gateway on hyper 1.x, and the mock backend it is measured
//! against.
//!
//! The gateway puts a limiter from `limiter-core` — in memory, on Redis or on Redis
//! Cluster — in front of one backend, per user and per route:
//!
//! - [`config`]: the TOML configuration, validated with file:line:key errors;
//! - [`contract`]: the wire contract shared with the load driver — [`routes`] (path
//!   templates matched on normalised paths), the identity header, metric names, the
//!   `/stats` document and the config file's words;
//! - [`identity`]: whose quota a request spends — a verified API key, a header believed
//!   only from trusted proxies, else the client IP (IPv6 by prefix);
//! - [`limits`]: one limiter per route (and an optional per-IP limit), keyed by
//!   identity, as `limiter-core`'s tower [`RequestLimiter`](limiter_core::tower::RequestLimiter);
//! - [`store`]: memory or Redis, with fail-open, fail-closed or local fallback;
//! - [`proxy`]: the streaming reverse proxy (502, 504, 413) over [`upstream`], its
//!   keep-alive connection pool and HTTP/1.1 client to the backend;
//! - [`server`]: hyper, hardening (header timeout and size, body size) and graceful
//!   shutdown; [`admin`]: `/metrics` ([`metrics`]), `/healthz` and `/readyz` on their
//!   own listener;
//! - [`backend`]: the mock backend with latency, errors and `/stats`.
//!
//! The rate-limit layer the gateway runs is `limiter_core::tower::RateLimitLayer`,
//! the same one any tower or axum service can reuse.

pub mod access_log;
pub mod admin;
pub mod backend;
pub mod config;
pub mod conn_limit;
mod connection;
pub mod identity;
pub mod keep_alive;
pub mod limits;
pub mod metrics;
pub mod proxy;
pub mod server;
pub mod store;
pub mod upstream;

/// The wire contract (route templates, identity header, metric names, `/stats`, the
/// config file's words), in a light crate of its own so the load driver shares it.
pub use gateway_contract as contract;
/// Route templates: [`contract::routes`].
pub use gateway_contract::routes;

pub use backend::{Backend, BackendConfig, Latency};
pub use config::{Config, ConfigError};
pub use server::{Gateway, Listeners, shutdown_signal};

/// Why the gateway could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A configuration value that only fails when used.
    #[error("configuration: {0}")]
    Invalid(String),
    /// The store could not be opened.
    #[error("rate-limit store: {0}")]
    Store(String),
    /// A socket could not be opened.
    #[error("{0}")]
    Io(String),
}
