//! Who a request counts against: the key extraction seam.
//!
//! A [`KeyExtractor`] turns a request into the key its allowance is counted under. The
//! stock ones: [`ClientIp`] keys by the client's IP address; [`HeaderOrIp`] trusts a
//! header (`x-user-id`, an API key) when present and falls back to the client's IP. Any
//! `Fn(&Request<B>) -> Result<String, KeyRejection>` is an extractor too, so a service
//! can key by JWT subject or tenant without touching the limiter.
//!
//! The client's address is read from the request's extensions, where servers put it:
//! [`PeerAddr`] (the ratelab gateway inserts it), or — with the `axum` feature — axum's
//! `ConnectInfo<SocketAddr>`, present when the app is served with
//! `into_make_service_with_connect_info::<SocketAddr>()`. No middleware of your own is
//! needed.
//!
//! **When the address is missing** (axum served with plain `into_make_service`, a test
//! calling the service directly), the extractors do not guess: by default the request
//! is refused with `500 Internal Server Error` ([`KeyRejection::NoPeerAddress`]), since
//! it is a deployment mistake, not the client's. [`MissingPeer::Shared`] instead counts
//! every such request against one shared key, `no-peer` — a choice you make knowingly,
//! never a silent default.
//!
//! Keys from the header and from the IP live in different namespaces (`h:` and `ip:`),
//! so a client cannot spend another client's IP allowance by sending its address as a
//! header value.

use std::net::SocketAddr;

use http::header::{HeaderName, InvalidHeaderName};
use http::{Extensions, Request, StatusCode};

/// The client's socket address, inserted into request extensions by the server (the
/// ratelab gateway does; a hyper server of your own can too). With the `axum` feature,
/// axum's `ConnectInfo<SocketAddr>` is read as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The client address in `extensions`: [`PeerAddr`], else (feature `axum`) axum's
/// `ConnectInfo<SocketAddr>`.
pub fn peer_addr(extensions: &Extensions) -> Option<SocketAddr> {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(*addr);
    }
    None
}

/// What a client-IP extractor does with a request that carries no client address: axum
/// served with plain `into_make_service` rather than
/// `into_make_service_with_connect_info::<SocketAddr>()`, a hyper server that does not
/// insert [`PeerAddr`], a test calling the service directly. The extractors do not
/// guess, and never silently count everyone against one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingPeer {
    /// Refuse it with `500 Internal Server Error` ([`KeyRejection::NoPeerAddress`]): the
    /// server was not set up to pass the address, which is not the client's fault.
    #[default]
    Refuse,
    /// Count every such request against one shared key, `no-peer`, distinct from every
    /// header and IP key.
    Shared,
}

/// Why a request cannot be keyed: it is answered `400 Bad Request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRejection {
    /// The identity is longer than allowed.
    #[error("identity is longer than {max} bytes")]
    TooLong {
        /// The most bytes allowed.
        max: usize,
    },
    /// The identity is not usable (for example not UTF-8).
    #[error("{0}")]
    Invalid(&'static str),
    /// The key is the client's address and the request carries none: a server set-up
    /// mistake (see [`MissingPeer`]).
    #[error("the client address is not in the request's extensions")]
    NoPeerAddress,
}

impl KeyRejection {
    /// A short reason for the response body.
    pub fn reason(&self) -> &'static str {
        match self {
            KeyRejection::TooLong { .. } => "identity too long",
            KeyRejection::Invalid(reason) => reason,
            KeyRejection::NoPeerAddress => "client address unavailable",
        }
    }

    /// The status to answer: `400 Bad Request` for the client's identity, `500 Internal
    /// Server Error` for a missing client address (the server's mistake).
    pub fn status(&self) -> StatusCode {
        match self {
            KeyRejection::NoPeerAddress => StatusCode::INTERNAL_SERVER_ERROR,
            KeyRejection::TooLong { .. } | KeyRejection::Invalid(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// Picks the key a request is counted under.
pub trait KeyExtractor<B>: Send + Sync + 'static {
    /// The key for `req`, or why it has none.
    fn extract(&self, req: &Request<B>) -> Result<String, KeyRejection>;
}

impl<B, F> KeyExtractor<B> for F
where
    F: Fn(&Request<B>) -> Result<String, KeyRejection> + Send + Sync + 'static,
{
    fn extract(&self, req: &Request<B>) -> Result<String, KeyRejection> {
        self(req)
    }
}

/// The default longest identity accepted, in bytes.
pub const DEFAULT_MAX_IDENTITY: usize = 256;

/// Keys a request by the client's IP address (`ip:<addr>`), read by [`peer_addr`]; a
/// request without one is handled as its [`MissingPeer`] says.
///
/// ```
/// use limiter_core::tower::{ClientIp, KeyExtractor, KeyRejection, PeerAddr};
///
/// let mut req = http::Request::new(());
/// assert_eq!(ClientIp::new().extract(&req), Err(KeyRejection::NoPeerAddress));
/// req.extensions_mut().insert(PeerAddr("10.0.0.7:5123".parse().unwrap()));
/// assert_eq!(ClientIp::new().extract(&req).unwrap(), "ip:10.0.0.7");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientIp {
    missing: MissingPeer,
}

impl ClientIp {
    /// Keys by client IP, refusing requests without an address (`500`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets what happens to a request without a client address.
    pub fn with_missing_peer(mut self, missing: MissingPeer) -> Self {
        self.missing = missing;
        self
    }
}

impl<B> KeyExtractor<B> for ClientIp {
    fn extract(&self, req: &Request<B>) -> Result<String, KeyRejection> {
        let mut key = String::new();
        peer_identity(req.extensions(), self.missing)?.write_key(&mut key);
        Ok(key)
    }
}

/// The identity of a request keyed by its client address.
fn peer_identity<'r>(
    extensions: &Extensions,
    missing: MissingPeer,
) -> Result<Identity<'r>, KeyRejection> {
    match (peer_addr(extensions), missing) {
        (Some(addr), _) => Ok(Identity::Ip(addr)),
        (None, MissingPeer::Shared) => Ok(Identity::NoPeer),
        (None, MissingPeer::Refuse) => Err(KeyRejection::NoPeerAddress),
    }
}

/// Keys a request by a header (`h:<value>`), else by the client IP (`ip:<addr>`); with
/// neither, as its [`MissingPeer`] says (refused with `500` by default).
///
/// An empty header counts as missing. A value longer than the maximum (256 bytes by
/// default) or not UTF-8 is rejected rather than truncated, so two clients can never
/// share a key by accident.
#[derive(Debug, Clone)]
pub struct HeaderOrIp {
    header: HeaderName,
    max_len: usize,
    missing: MissingPeer,
}

impl HeaderOrIp {
    /// Keys by `header`, falling back to the client IP.
    pub fn new(header: &str) -> Result<Self, InvalidHeaderName> {
        Ok(Self {
            header: HeaderName::try_from(header)?,
            max_len: DEFAULT_MAX_IDENTITY,
            missing: MissingPeer::default(),
        })
    }

    /// Sets what happens to a request with neither the header nor a client address.
    pub fn with_missing_peer(mut self, missing: MissingPeer) -> Self {
        self.missing = missing;
        self
    }

    /// Sets the longest identity accepted, in bytes.
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// The header read.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// True when `req`'s identity would be its client IP (the header is missing or
    /// empty): only then does it need the [`PeerAddr`] extension, which a server can
    /// spare itself the allocations of otherwise.
    pub fn needs_peer<B>(&self, req: &Request<B>) -> bool {
        req.headers().get(&self.header).is_none_or(|v| v.is_empty())
    }

    /// The identity of `req`, without the namespace prefix: the header value or the
    /// client IP.
    pub fn identity<'r, B>(&self, req: &'r Request<B>) -> Result<Identity<'r>, KeyRejection> {
        match req.headers().get(&self.header) {
            Some(v) if !v.is_empty() => {
                if v.len() > self.max_len {
                    return Err(KeyRejection::TooLong { max: self.max_len });
                }
                std::str::from_utf8(v.as_bytes())
                    .map(Identity::Header)
                    .map_err(|_| KeyRejection::Invalid("identity header is not UTF-8"))
            }
            _ => peer_identity(req.extensions(), self.missing),
        }
    }
}

/// Where an identity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity<'r> {
    /// The configured header's value.
    Header(&'r str),
    /// The client's address (only its IP is used).
    Ip(SocketAddr),
    /// Neither was available, and [`MissingPeer::Shared`] allows it: the key `no-peer`.
    NoPeer,
}

impl Identity<'_> {
    /// Appends the namespaced key (`h:<value>`, `ip:<addr>` or `no-peer`) to `out`.
    pub fn write_key(&self, out: &mut String) {
        // Writing to a String cannot fail.
        let _ = self.write_to(out);
    }

    /// Calls `f` with the namespaced key of [`write_key`](Self::write_key), built on the
    /// stack when it fits (any identity the default 256-byte cap admits), so a lookup in
    /// an in-memory store costs no allocation.
    pub fn with_key<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let mut buf = StackKey {
            bytes: [0; STACK_KEY],
            len: 0,
        };
        match (
            self.write_to(&mut buf),
            std::str::from_utf8(&buf.bytes[..buf.len]),
        ) {
            (Ok(()), Ok(key)) => f(key),
            _ => {
                let mut key = String::new();
                self.write_key(&mut key);
                f(&key)
            }
        }
    }

    /// The namespaced key, written once for both of the above.
    fn write_to(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        match self {
            Identity::Header(v) => {
                out.write_str("h:")?;
                out.write_str(v)
            }
            Identity::Ip(addr) => write!(out, "ip:{}", addr.ip()),
            Identity::NoPeer => out.write_str("no-peer"),
        }
    }
}

/// Room for `h:` and a 256-byte identity, with a margin.
const STACK_KEY: usize = 272;

/// A key formatted on the stack; writing past its end fails instead of growing.
struct StackKey {
    bytes: [u8; STACK_KEY],
    len: usize,
}

impl StackKey {
    fn push(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl std::fmt::Write for StackKey {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push(s)
    }
}

impl<B> KeyExtractor<B> for HeaderOrIp {
    fn extract(&self, req: &Request<B>) -> Result<String, KeyRejection> {
        let mut key = String::new();
        self.identity(req)?.write_key(&mut key);
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(header: Option<&[u8]>, peer: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(h) = header {
            r.headers_mut()
                .insert("x-user-id", http::HeaderValue::from_bytes(h).unwrap());
        }
        if let Some(p) = peer {
            r.extensions_mut().insert(PeerAddr(p.parse().unwrap()));
        }
        r
    }

    #[test]
    fn header_then_ip_then_refused_or_shared() {
        let k = HeaderOrIp::new("x-user-id").unwrap();
        assert_eq!(
            k.extract(&req(Some(b"alice"), Some("10.0.0.1:5"))).unwrap(),
            "h:alice"
        );
        assert_eq!(
            k.extract(&req(Some(b""), Some("10.0.0.1:5"))).unwrap(),
            "ip:10.0.0.1"
        );
        assert_eq!(k.extract(&req(None, Some("[::1]:5"))).unwrap(), "ip:::1");
        // No address: refused with 500 by default, never silently shared.
        let rejection = k.extract(&req(None, None)).unwrap_err();
        assert_eq!(rejection, KeyRejection::NoPeerAddress);
        assert_eq!(rejection.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let shared = k.clone().with_missing_peer(MissingPeer::Shared);
        assert_eq!(shared.extract(&req(None, None)).unwrap(), "no-peer");
        assert_eq!(
            ClientIp::new().extract(&req(Some(b"alice"), Some("10.0.0.1:5"))),
            Ok("ip:10.0.0.1".to_owned())
        );
        assert!(!k.needs_peer(&req(Some(b"alice"), None)));
        assert!(k.needs_peer(&req(Some(b""), None)));
        assert!(k.needs_peer(&req(None, None)));
    }

    #[test]
    fn long_or_binary_identities_are_rejected() {
        let k = HeaderOrIp::new("x-user-id").unwrap();
        let long = vec![b'a'; 257];
        assert_eq!(
            k.extract(&req(Some(&long), None)),
            Err(KeyRejection::TooLong { max: 256 })
        );
        assert!(k.extract(&req(Some(&long[..256]), None)).is_ok());
        assert!(k.extract(&req(Some(b"\xff\xfe"), None)).is_err());
    }

    #[test]
    fn stack_keys_equal_written_keys() {
        let long = "é".repeat(400);
        let ids = [
            Identity::Header("alice"),
            Identity::Header(&long[..256]),
            // Longer than the stack buffer: formatted on the heap instead.
            Identity::Header(&long),
            Identity::Ip("10.1.2.3:80".parse().unwrap()),
            Identity::Ip(
                "[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:443"
                    .parse()
                    .unwrap(),
            ),
            Identity::NoPeer,
        ];
        for id in ids {
            let mut written = String::new();
            id.write_key(&mut written);
            assert_eq!(id.with_key(str::to_owned), written);
        }
    }
}
