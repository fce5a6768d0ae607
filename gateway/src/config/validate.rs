//! From the file's words ([`gateway_contract::config`]) to the run-time
//! [`Config`]: every number in range, every name known, every URL parsed — each
//! mistake reported at the parser's span of the value, with its key.

use std::path::Path;
use std::time::Duration;

use gateway_contract::config::{ConfigFile, ServerTable, Spanned, StoreTable};
use gateway_contract::limits;
use limiter_core::store::memory::UnknownAtCapacity;
use limiter_core::store::redis::UnknownFailurePolicy;

use super::{
    Config, ConfigError, RouteConfig, ServerConfig, StoreConfig, StoreKind, parse_backend,
    parse_listen,
};
use crate::routes::Template;

mod identity;
mod log;

/// Validation context: the file and its text, to locate errors.
pub(super) struct Cx<'a> {
    pub(super) file: &'a Path,
    pub(super) src: &'a str,
}

/// A boolean key's value, if set.
fn flag(v: &Option<Spanned<bool>>) -> Option<bool> {
    v.as_ref().map(|b| *b.get_ref())
}

/// Checks a Redis URL with the `redis` crate's own parser (the one the store opens
/// connections with), so whatever passes here, the store can connect to.
pub(crate) fn check_redis_url(s: &str) -> Result<(), String> {
    redis::IntoConnectionInfo::into_connection_info(s)
        .map(|_| ())
        .map_err(|e| format!("{s:?} is not a Redis URL: {e}"))
}

impl<'a> Cx<'a> {
    pub(super) fn new(file: &'a Path, src: &'a str) -> Self {
        Self { file, src }
    }

    pub(super) fn err<T>(&self, at: &Spanned<T>, key: &str, message: impl ToString) -> ConfigError {
        ConfigError::at(self.file, self.src, at.span(), key, &message.to_string())
    }

    pub(super) fn err_at(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: &str,
    ) -> ConfigError {
        ConfigError::at(self.file, self.src, span, key, message)
    }

    pub(super) fn positive(&self, v: &Spanned<i64>, key: &str) -> Result<u64, ConfigError> {
        limits::positive(v, key).map_err(|e| self.limit_err(e))
    }

    pub(super) fn count(&self, v: &Spanned<i64>, key: &str) -> Result<usize, ConfigError> {
        Ok(usize::try_from(self.positive(v, key)?).unwrap_or(usize::MAX))
    }

    pub(super) fn duration(&self, v: &Spanned<String>, key: &str) -> Result<Duration, ConfigError> {
        limits::duration(v, key).map_err(|e| self.limit_err(e))
    }

    pub(super) fn config(&self, raw: ConfigFile) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        if let Some(l) = &raw.listen {
            config.listen = parse_listen(l.get_ref()).map_err(|e| self.err(l, "listen", e))?;
        }
        if let Some(b) = &raw.backend {
            config.backend = parse_backend(b.get_ref()).map_err(|e| self.err(b, "backend", e))?;
        }
        if let Some(a) = &raw.admin_listen {
            config.admin_listen =
                parse_listen(a.get_ref()).map_err(|e| self.err(a, "admin_listen", e))?;
            if config.admin_listen == config.listen && config.listen.port() != 0 {
                let message =
                    "admin_listen must differ from listen: the proxy port proxies every path";
                return Err(self.err(a, "admin_listen", message));
            }
        }
        if let Some(id) = &raw.identity {
            self.identity(id, &mut config)?;
        }
        if let Some(store) = &raw.store {
            self.store(store, &mut config.store)?;
        }
        if let Some(server) = &raw.server {
            self.server(server, &mut config.server)?;
        }
        for (i, route) in raw.route.iter().enumerate() {
            let key = format!("route[{}]", i + 1);
            let Some(path) = &route.get_ref().path else {
                return Err(self.err(route, &key, "a [[route]] needs a `path`"));
            };
            let path_key = format!("{key}.path");
            let template =
                Template::parse(path.get_ref()).map_err(|e| self.err(path, &path_key, e))?;
            if config.routes.iter().any(|r| r.path == template) {
                let message = format!("route {:?} is defined twice", path.get_ref());
                return Err(self.err(path, &path_key, message));
            }
            let limit = self.route_limits(route.get_ref(), &key, raw.global.len())?;
            self.mode_fits(
                &config.store,
                &limit,
                route.get_ref(),
                &key,
                raw.global.len(),
            )?;
            let template = match &route.get_ref().case_insensitive {
                Some(ci) => template.case_insensitive(*ci.get_ref()),
                None => template,
            };
            config.routes.push(RouteConfig {
                path: template,
                limit,
                require_api_key: flag(&route.get_ref().require_api_key),
            });
        }
        if let Some(default) = &raw.default {
            if let Some(path) = &default.get_ref().path {
                let message = "[default] applies to unmatched paths and takes no `path`";
                return Err(self.err(path, "default.path", message));
            }
            if let Some(ci) = &default.get_ref().case_insensitive {
                let message = "[default] matches every path; `case_insensitive` is for routes";
                return Err(self.err(ci, "default.case_insensitive", message));
            }
            let limit = self.route_limits(default.get_ref(), "default", raw.global.len())?;
            self.mode_fits(
                &config.store,
                &limit,
                default.get_ref(),
                "default",
                raw.global.len(),
            )?;
            config.default = Some(limit);
            config.default_requires_key = flag(&default.get_ref().require_api_key);
        }
        config.global = self.globals(&raw.global, &config)?;
        if let Some(log) = &raw.log {
            config.access_log = self.access_log(log)?;
        }
        self.check_budget(&raw, &config)?;
        Ok(config)
    }

    fn store_kind(&self, raw: &StoreTable) -> Result<StoreKind, ConfigError> {
        let kind = raw.kind.as_ref().map_or("memory", |k| k.get_ref().as_str());
        let refuse = |v: Option<&Spanned<String>>, key: &str, message: &str| match v {
            Some(v) => Err(self.err(v, key, message)),
            None => Ok(()),
        };
        let urls = raw.urls.as_ref();
        match kind {
            "memory" => {
                refuse(
                    raw.url.as_ref(),
                    "store.url",
                    "`url` does not apply to the memory store",
                )?;
                if let Some(u) = urls {
                    return Err(self.err(
                        u,
                        "store.urls",
                        "`urls` does not apply to the memory store",
                    ));
                }
                Ok(StoreKind::Memory)
            }
            "redis" => {
                if let Some(u) = urls {
                    let message = "the redis store takes one `url`; `urls` is for redis-cluster";
                    return Err(self.err(u, "store.urls", message));
                }
                let url = match &raw.url {
                    Some(u) => {
                        check_redis_url(u.get_ref()).map_err(|e| self.err(u, "store.url", e))?;
                        u.get_ref().clone()
                    }
                    None => "redis://127.0.0.1:6379".to_owned(),
                };
                Ok(StoreKind::Redis { url })
            }
            "redis-cluster" => {
                let takes = "the redis-cluster store takes `urls = [...]`";
                refuse(raw.url.as_ref(), "store.url", takes)?;
                let Some(urls) = urls else {
                    let needs = "the redis-cluster store needs `urls = [...]`";
                    return Err(self.located(raw.kind.as_ref(), "store.kind", needs));
                };
                if urls.get_ref().is_empty() {
                    return Err(self.err(urls, "store.urls", "`urls` lists no node"));
                }
                for (i, u) in urls.get_ref().iter().enumerate() {
                    let key = format!("store.urls[{}]", i + 1);
                    check_redis_url(u.get_ref()).map_err(|e| self.err(u, &key, e))?;
                }
                let urls = urls.get_ref().iter().map(|u| u.get_ref().clone()).collect();
                Ok(StoreKind::RedisCluster { urls })
            }
            other => Err(self.located(
                raw.kind.as_ref(),
                "store.kind",
                &format!("unknown store {other:?} (expected memory, redis or redis-cluster)"),
            )),
        }
    }

    /// An error at `at` when there is one, else at the start of the file.
    fn located(&self, at: Option<&Spanned<String>>, key: &str, message: &str) -> ConfigError {
        let span = at.map_or(0..0, Spanned::span);
        ConfigError::at(self.file, self.src, span, key, message)
    }

    fn store(&self, raw: &StoreTable, out: &mut StoreConfig) -> Result<(), ConfigError> {
        out.kind = self.store_kind(raw)?;
        if let Some(old) = &raw.timeout_ms {
            let message = format!(
                "`timeout_ms` was replaced by `timeout`, a duration: write `timeout = \"{}ms\"`",
                old.get_ref()
            );
            return Err(self.err(old, "store.timeout_ms", message));
        }
        if let Some(t) = &raw.timeout {
            out.timeout = self.duration(t, "store.timeout")?;
        }
        if let Some(e) = &raw.on_error {
            out.on_error = e
                .get_ref()
                .parse()
                .map_err(|m: UnknownFailurePolicy| self.err(e, "store.on_error", m.to_string()))?;
        }
        if let Some(p) = &raw.key_prefix {
            if p.get_ref().contains(['{', '}']) || p.get_ref().chars().any(char::is_whitespace) {
                let message = "key_prefix must not contain braces or spaces";
                return Err(self.err(p, "store.key_prefix", message));
            }
            out.key_prefix = p.get_ref().clone();
        }
        if let Some(m) = &raw.max_keys {
            out.max_keys = self.count(m, "store.max_keys")?;
        }
        if let Some(s) = &raw.sweep_interval {
            out.sweep_interval = self.duration(s, "store.sweep_interval")?;
        }
        out.mode = self.store_mode(raw, &out.kind)?;
        if let Some(a) = &raw.at_capacity {
            out.at_capacity = a
                .get_ref()
                .parse()
                .map_err(|m: UnknownAtCapacity| self.err(a, "store.at_capacity", m))?;
        }
        if let Some(b) = &raw.max_bytes {
            out.max_bytes = Some(self.count(b, "store.max_bytes")?);
        }
        Ok(())
    }

    /// Refuses a byte budget that cannot hold one key of some route's policy (a
    /// sliding log keeps 16 bytes per admission, up to its limit).
    fn check_budget(&self, raw: &ConfigFile, config: &Config) -> Result<(), ConfigError> {
        let Some(at) = raw.store.as_ref().and_then(|s| s.max_bytes.as_ref()) else {
            return Ok(());
        };
        let capacity = config.store.capacity();
        let of = |r: &'_ super::RouteLimits| {
            r.limits
                .iter()
                .chain(r.tiers.values().flatten())
                .filter_map(super::LimitConfig::policy)
                .collect::<Vec<_>>()
        };
        let routes = config
            .routes
            .iter()
            .map(|r| (r.path.as_str(), of(&r.limit)));
        let default = config.default.as_ref().map(|l| ("[default]", of(l)));
        let global = (
            "[[global]]",
            config
                .global
                .iter()
                .filter_map(super::LimitConfig::policy)
                .collect(),
        );
        for (name, policies) in routes.chain(default).chain([global]) {
            for policy in policies {
                if let Err(e) = capacity.admits(&policy) {
                    let message = format!("{e}: route {name} ({})", policy.kind);
                    return Err(self.err(at, "store.max_bytes", message));
                }
            }
        }
        Ok(())
    }

    fn server(&self, raw: &ServerTable, out: &mut ServerConfig) -> Result<(), ConfigError> {
        if let Some(d) = &raw.header_read_timeout {
            out.header_read_timeout = self.duration(d, "server.header_read_timeout")?;
        }
        if let Some(d) = &raw.keep_alive_timeout {
            let key = "server.keep_alive_timeout";
            out.keep_alive_timeout = self.duration(d, key)?;
            // Advertised in whole seconds: under one would tell clients `timeout=0`.
            if out.keep_alive_timeout < Duration::from_secs(1) {
                return Err(self.err(d, key, "keep_alive_timeout must be at least 1s"));
            }
        }
        if let Some(n) = &raw.max_header_bytes {
            let key = "server.max_header_bytes";
            let v = self.count(n, key)?;
            if v < 8192 {
                return Err(self.err(n, key, "max_header_bytes must be at least 8192"));
            }
            out.max_header_bytes = v;
        }
        if let Some(n) = &raw.max_body_bytes {
            out.max_body_bytes = u64::try_from(*n.get_ref()).map_err(|_| {
                self.err(
                    n,
                    "server.max_body_bytes",
                    "max_body_bytes must not be negative",
                )
            })?;
        }
        if let Some(d) = &raw.upstream_timeout {
            out.upstream_timeout = self.duration(d, "server.upstream_timeout")?;
        }
        if let Some(d) = &raw.shutdown_grace {
            out.shutdown_grace = self.duration(d, "server.shutdown_grace")?;
        }
        if let Some(n) = &raw.max_connections {
            out.max_connections = self.count(n, "server.max_connections")?;
        }
        if let Some(d) = &raw.body_idle_timeout {
            out.body_idle_timeout = self.duration(d, "server.body_idle_timeout")?;
        }
        if let Some(n) = &raw.max_connections_per_ip {
            out.max_connections_per_ip = Some(self.count(n, "server.max_connections_per_ip")?);
        }
        if let Some(n) = &raw.max_backend_connections {
            out.max_backend_connections = self.count(n, "server.max_backend_connections")?;
        }
        if let Some(n) = &raw.pool_max_idle {
            out.pool_max_idle = usize::try_from(*n.get_ref()).map_err(|_| {
                self.err(
                    n,
                    "server.pool_max_idle",
                    "pool_max_idle must not be negative",
                )
            })?;
        }
        Ok(())
    }
}
