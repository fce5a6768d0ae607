//! Who a request is: whose quota it spends, from what a client cannot forge.
//!
//! The guarantee: a client never picks whose quota it spends. In order:
//! 1. a verified API key (`[identity] api_keys`, presented in `api_key_header`): its
//!    identity and tier from the keys file; a key that is not listed is refused with
//!    `401` (a typo is told, never silently downgraded to the client IP) after the
//!    per-IP limit, so guessing keys from one address is throttled;
//! 2. the identity header (`header`), believed **only** from a peer in
//!    `trusted_proxies` — from anyone else it is ignored;
//! 3. the client IP: the socket peer, or behind a trusted proxy the rightmost
//!    untrusted hop of `X-Forwarded-For` / `Forwarded`; IPv6 grouped by `ipv6_prefix`.
//!
//! Keys are namespaced (`key:…`, `h:…`, `ip:…`) so no source can name another's key.
//! Every request also carries its client IP key for the optional per-IP limit, which
//! applies whatever the identity (so rotating identities from one address is bounded).
//!
//! The server resolves each request once ([`Resolver::resolve`]) and puts the
//! [`Identity`] in the request's extensions; the limiter, the access log and the proxy
//! read it there. Work that depends only on the connection's peer is done once per
//! connection ([`Resolver::peer`]). The keys file is reloaded with
//! [`Resolver::reload_keys`] (SIGHUP).

mod client_ip;
mod forwarding;
mod keys;
mod refusal;
mod stats;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::header::HeaderName;
use http::{HeaderMap, StatusCode};

pub use forwarding::Forwarding;
pub use keys::{KeyIdentity, KeyTable};
pub use refusal::{GatewayRefusal, refusal};
pub use stats::IdentityStats;

use crate::config::{ClientIpHeader, ConfigError, IdentityConfig};
use client_ip::TrustedProxies;

/// Where an [`Identity`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentitySource {
    /// A key listed in the keys file.
    ApiKey,
    /// The identity header, sent by a trusted proxy.
    Header,
    /// The client's IP address (grouped by the IPv6 prefix).
    ClientIp,
}

impl IdentitySource {
    /// `api-key`, `header` or `client-ip`.
    pub fn name(self) -> &'static str {
        match self {
            IdentitySource::ApiKey => "api-key",
            IdentitySource::Header => "header",
            IdentitySource::ClientIp => "client-ip",
        }
    }
}

/// Who a request is, resolved once per request (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Whose quota it spends, namespaced: `key:<identity>`, `h:<header value>`,
    /// `ip:<address>` or `ip:<ipv6 network>/<prefix>`.
    pub key: Arc<str>,
    /// The tier of its API key, if any.
    pub tier: Option<Arc<str>>,
    /// The client's address, grouped (IPv6 masked to the configured prefix).
    pub client_ip: IpAddr,
    /// The client's exact address (for `X-Real-IP` and logs).
    pub client_addr: IpAddr,
    /// The per-IP key of `client_ip` (`ip:…`); equal to `key` for
    /// [`IdentitySource::ClientIp`].
    pub ip_key: Arc<str>,
    /// Where `key` came from.
    pub source: IdentitySource,
    /// The request presented an API key the keys file does not list. It is keyed by
    /// its client IP and answered `401` after the per-IP limit (so guessing keys from
    /// one address is throttled), never by its route.
    pub unknown_api_key: bool,
}

/// Why a request has no usable identity (an unknown API key is not one of these: see
/// [`Identity::unknown_api_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The identity header is longer than allowed: `400`.
    #[error("identity too long (at most {max} bytes)")]
    TooLong {
        /// The most bytes allowed.
        max: usize,
    },
    /// The identity header is not UTF-8: `400`.
    #[error("identity header is not UTF-8")]
    NotUtf8,
    /// The identity or API key header appears more than once: `400` (a proxy that
    /// appends instead of replacing would otherwise let the client's copy win).
    #[error("{0} header sent more than once")]
    Repeated(&'static str),
}

impl Rejection {
    /// The status to answer: `400 Bad Request`.
    pub fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

/// The API keys and where they were read from.
#[derive(Debug)]
struct Keys {
    file: PathBuf,
    header: HeaderName,
    table: ArcSwap<KeyTable>,
}

/// Resolves requests to identities by the `[identity]` configuration.
#[derive(Debug)]
pub struct Resolver {
    header: HeaderName,
    max_len: usize,
    keys: Option<Keys>,
    trusted: TrustedProxies,
    client_ip_header: ClientIpHeader,
    ipv6_prefix: u8,
    stats: Arc<IdentityStats>,
}

/// What one connection's peer contributes to every request on it, worked out once.
#[derive(Debug, Clone)]
pub struct Peer {
    addr: IpAddr,
    trusted: bool,
    grouped: IpAddr,
    ip_key: Arc<str>,
}

impl Peer {
    /// The peer's address (the access log's client when no identity resolves).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// True when the peer is a trusted proxy.
    pub fn is_trusted(&self) -> bool {
        self.trusted
    }

    /// The headers the backend gets about this peer.
    pub fn forwarding(&self, port: u16) -> Forwarding {
        Forwarding::new(SocketAddr::new(self.addr, port), self.trusted)
    }
}

impl Resolver {
    /// The resolver of `config`, reading its keys file.
    pub fn new(config: &IdentityConfig) -> Result<Self, ConfigError> {
        let keys = match &config.api_keys {
            Some(file) => Some(Keys {
                table: ArcSwap::from_pointee(KeyTable::load(file)?),
                header: header_name(&config.api_key_header),
                file: file.clone(),
            }),
            None => None,
        };
        Ok(Self {
            header: header_name(&config.header),
            max_len: config.max_len,
            keys,
            trusted: TrustedProxies::new(config.trusted_proxies.clone()),
            client_ip_header: config.client_ip_header,
            ipv6_prefix: config.ipv6_prefix,
            stats: Arc::default(),
        })
    }

    /// Counts its refusals in `stats` (shared with the limiter, which counts a
    /// route's missing key there).
    pub fn with_stats(mut self, stats: Arc<IdentityStats>) -> Self {
        self.stats = stats;
        self
    }

    /// Reads the keys file again and swaps it in; on an error the keys in use stay.
    /// Returns how many keys are now in use (`None` without a keys file).
    pub fn reload_keys(&self) -> Result<Option<usize>, ConfigError> {
        let Some(keys) = &self.keys else {
            return Ok(None);
        };
        let table = KeyTable::load(&keys.file)?;
        let n = table.len();
        keys.table.store(Arc::new(table));
        Ok(Some(n))
    }

    /// The part of every identity that depends only on the connection's peer.
    pub fn peer(&self, peer: SocketAddr) -> Peer {
        let addr = client_ip::canonical(peer.ip());
        let grouped = client_ip::group(addr, self.ipv6_prefix);
        Peer {
            addr,
            trusted: self.trusted.contains(addr),
            grouped,
            ip_key: Arc::from(client_ip::ip_key(grouped, self.ipv6_prefix)),
        }
    }

    /// The identity of a request with `headers` from `peer`; a refusal is counted.
    pub fn resolve(&self, peer: &Peer, headers: &HeaderMap) -> Result<Identity, Rejection> {
        self.resolve_uncounted(peer, headers)
            .inspect_err(|r| self.stats.rejected(r))
    }

    fn resolve_uncounted(&self, peer: &Peer, headers: &HeaderMap) -> Result<Identity, Rejection> {
        let behind = if peer.trusted {
            client_ip::behind_proxy(headers, peer.addr, &self.trusted, self.client_ip_header)
        } else {
            peer.addr
        };
        // The usual case — no forwarding header, or an untrusted peer — is the peer,
        // whose key was formatted once for the connection.
        let (client_addr, client_ip, ip_key) = if behind == peer.addr {
            (peer.addr, peer.grouped, Arc::clone(&peer.ip_key))
        } else {
            let grouped = client_ip::group(behind, self.ipv6_prefix);
            let key = Arc::from(client_ip::ip_key(grouped, self.ipv6_prefix));
            (behind, grouped, key)
        };
        let identity = |key: Arc<str>, tier, source| Identity {
            key,
            tier,
            client_ip,
            client_addr,
            ip_key: Arc::clone(&ip_key),
            source,
            unknown_api_key: false,
        };
        if let Some(keys) = &self.keys
            && let Some(presented) = single(headers, &keys.header, "API key")?
        {
            let table = keys.table.load();
            let Some(found) = table.lookup(presented) else {
                self.stats.unknown_api_key.inc();
                return Ok(Identity {
                    unknown_api_key: true,
                    ..identity(Arc::clone(&ip_key), None, IdentitySource::ClientIp)
                });
            };
            return Ok(identity(
                Arc::clone(&found.key),
                found.tier.clone(),
                IdentitySource::ApiKey,
            ));
        }
        if peer.trusted
            && let Some(value) = single(headers, &self.header, "identity")?
        {
            if value.len() > self.max_len {
                return Err(Rejection::TooLong { max: self.max_len });
            }
            let value = std::str::from_utf8(value).map_err(|_| Rejection::NotUtf8)?;
            return Ok(identity(
                prefixed("h:", value),
                None,
                IdentitySource::Header,
            ));
        }
        Ok(identity(
            Arc::clone(&ip_key),
            None,
            IdentitySource::ClientIp,
        ))
    }

    /// True when a keys file is configured.
    pub fn has_keys(&self) -> bool {
        self.keys.is_some()
    }

    /// The header API keys are presented in, when a keys file is configured.
    pub fn api_key_header(&self) -> Option<&HeaderName> {
        self.keys.as_ref().map(|k| &k.header)
    }
}

/// Reloads the API keys file on every SIGHUP (Unix, with a keys file); a file that does
/// not validate is logged and the keys in use stay.
pub fn spawn_key_reloader(resolver: Arc<Resolver>) -> Option<tokio::task::JoinHandle<()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if !resolver.has_keys() {
            return None;
        }
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGHUP: API keys will not reload");
                return None;
            }
        };
        Some(tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                match resolver.reload_keys() {
                    Ok(n) => tracing::info!(keys = n, "API keys reloaded"),
                    Err(err) => {
                        tracing::error!(error = %err, "API keys file invalid; keeping the keys in use");
                    }
                }
            }
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = resolver;
        None
    }
}

/// The one non-empty value of `name`, if any; several lines are refused.
fn single<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    what: &'static str,
) -> Result<Option<&'h [u8]>, Rejection> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Rejection::Repeated(what));
    }
    Ok(Some(first.as_bytes()).filter(|v| !v.is_empty()))
}

/// `prefix` + `value` as one shared string, with one allocation when it is short (the
/// usual identity) instead of a `String` and then the `Arc`'s copy of it.
fn prefixed(prefix: &str, value: &str) -> Arc<str> {
    const SHORT: usize = 128;
    let len = prefix.len() + value.len();
    if len > SHORT {
        return Arc::from([prefix, value].concat());
    }
    let mut buf = [0u8; SHORT];
    buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
    buf[prefix.len()..len].copy_from_slice(value.as_bytes());
    // Two UTF-8 strings end to end are UTF-8; the fallback is never taken.
    match std::str::from_utf8(&buf[..len]) {
        Ok(joined) => Arc::from(joined),
        Err(_) => Arc::from([prefix, value].concat()),
    }
}

/// A header name validated by the configuration (a fallback keeps this infallible).
fn header_name(name: &str) -> HeaderName {
    HeaderName::try_from(name).unwrap_or_else(|_| HeaderName::from_static("x-user-id"))
}

#[cfg(test)]
mod tests;
