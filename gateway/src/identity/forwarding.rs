//! The forwarding headers the backend sees, written by the gateway.
//!
//! The guarantee: from a peer that is not a trusted proxy, client-supplied
//! `X-Forwarded-For`, `Forwarded` and `X-Real-IP` never reach the backend — they are
//! replaced by the peer's address. Behind a trusted proxy the chain is kept and the
//! peer appended, and `X-Real-IP` is the client the gateway resolved.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::header::{FORWARDED, HeaderName, HeaderValue};

use super::Identity;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// One connection's forwarding headers, formatted once for its peer.
#[derive(Debug, Clone)]
pub struct Forwarding {
    trusted: bool,
    /// The peer's address, canonical.
    peer: IpAddr,
    /// The peer's address (`X-Forwarded-For` entry, `X-Real-IP`).
    ip: HeaderValue,
    /// The peer as an RFC 7239 element: `for=192.0.2.1;proto=http`,
    /// `for="[2001:db8::1]";proto=http`.
    element: HeaderValue,
}

impl Forwarding {
    /// The headers for a connection from `peer`, a trusted proxy or not.
    pub fn new(peer: SocketAddr, trusted: bool) -> Self {
        let ip = peer.ip().to_canonical();
        let element = match ip {
            IpAddr::V4(v4) => format!("for={v4};proto=http"),
            IpAddr::V6(v6) => format!("for=\"[{v6}]\";proto=http"),
        };
        let value = |s: String| {
            HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
        };
        Self {
            trusted,
            peer: ip,
            ip: value(ip.to_string()),
            element: value(element),
        }
    }

    /// Rewrites the forwarding headers of a request about to go upstream; `identity` is
    /// the request's resolved identity, if any.
    pub fn apply(&self, headers: &mut HeaderMap, identity: Option<&Identity>) {
        if !self.trusted {
            headers.insert(X_FORWARDED_FOR.clone(), self.ip.clone());
            headers.insert(FORWARDED, self.element.clone());
            headers.insert(X_REAL_IP.clone(), self.ip.clone());
            return;
        }
        append(headers, &X_FORWARDED_FOR, &self.ip);
        append(headers, &FORWARDED, &self.element);
        // Usually the client is the peer itself (nothing forwarded before it): its
        // address is already formatted.
        let real = identity
            .filter(|id| id.client_addr != self.peer)
            .and_then(|id| HeaderValue::from_str(&id.client_addr.to_string()).ok())
            .unwrap_or_else(|| self.ip.clone());
        headers.insert(X_REAL_IP.clone(), real);
    }
}

/// Appends `entry` to the list in `name`, as one line (several lines collapse into one;
/// blank entries go).
fn append(headers: &mut HeaderMap, name: &HeaderName, entry: &HeaderValue) {
    let prev: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if prev.is_empty() {
        headers.insert(name.clone(), entry.clone());
        return;
    }
    let mut v = prev.join(", ").into_bytes();
    v.extend_from_slice(b", ");
    v.extend_from_slice(entry.as_bytes());
    let value = HeaderValue::from_bytes(&v).unwrap_or_else(|_| entry.clone());
    headers.insert(name.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spoofed() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        h.append("x-forwarded-for", HeaderValue::from_static(" "));
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("7.7.7.7, 8.8.8.8"),
        );
        h.insert("forwarded", HeaderValue::from_static("for=6.6.6.6"));
        h.insert("x-real-ip", HeaderValue::from_static("6.6.6.6"));
        h
    }

    #[test]
    fn an_untrusted_peers_headers_are_replaced() {
        let f = Forwarding::new("203.0.113.7:5000".parse().unwrap(), false);
        let mut h = spoofed();
        f.apply(&mut h, None);
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(h["x-forwarded-for"], "203.0.113.7");
        assert_eq!(h["forwarded"], "for=203.0.113.7;proto=http");
        assert_eq!(h["x-real-ip"], "203.0.113.7");
        let f = Forwarding::new("[2001:db8::1]:5000".parse().unwrap(), false);
        f.apply(&mut h, None);
        assert_eq!(h["forwarded"], "for=\"[2001:db8::1]\";proto=http");
    }

    #[test]
    fn a_trusted_proxys_chain_is_kept_and_extended() {
        let f = Forwarding::new("10.0.0.1:5000".parse().unwrap(), true);
        let mut h = spoofed();
        f.apply(&mut h, None);
        assert_eq!(h["x-forwarded-for"], "6.6.6.6, 7.7.7.7, 8.8.8.8, 10.0.0.1");
        assert_eq!(h["forwarded"], "for=6.6.6.6, for=10.0.0.1;proto=http");
        assert_eq!(h["x-real-ip"], "10.0.0.1");
        let mut h = HeaderMap::new();
        f.apply(&mut h, None);
        assert_eq!(h["x-forwarded-for"], "10.0.0.1");
    }
}
