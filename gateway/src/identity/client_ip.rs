//! The client's address: the socket peer, or — only when the peer is a trusted proxy —
//! the rightmost untrusted hop of the forwarding header that proxy appends to.
//!
//! The guarantee: a client that is not a trusted proxy cannot choose the address it is
//! counted under. Entries of `X-Forwarded-For` / `Forwarded` are read from the right:
//! each was appended by the proxy to its right, so they are believed only while that
//! proxy is trusted, and the first untrusted address is the client. Everything to its
//! left is the client's own say and is ignored.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use http::HeaderMap;
use http::header::{FORWARDED, HeaderName};
use ipnet::IpNet;

use crate::config::ClientIpHeader;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The proxies whose word is believed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub(crate) fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    /// True when `ip` is one of them.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// `ip` with IPv4-mapped IPv6 (`::ffff:1.2.3.4`) read as the IPv4 address it is.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The client behind the trusted proxy `peer`, from `which` header of `headers`.
pub(crate) fn behind_proxy(
    headers: &HeaderMap,
    peer: IpAddr,
    trusted: &TrustedProxies,
    which: ClientIpHeader,
) -> IpAddr {
    let (name, parse): (&HeaderName, fn(&str) -> Vec<&str>) = match which {
        ClientIpHeader::XForwardedFor => (&X_FORWARDED_FOR, split_xff),
        ClientIpHeader::Forwarded => (&FORWARDED, forwarded_fors),
    };
    let mut hops: Vec<&str> = Vec::new();
    for line in headers.get_all(name) {
        match line.to_str() {
            Ok(v) => hops.extend(parse(v)),
            // An unreadable line: nothing left of it can be trusted either.
            Err(_) => hops.clear(),
        }
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // Garbage where a trusted proxy should have written an address: the
            // closest address known is the answer.
            return client;
        };
        client = ip;
        if !trusted.contains(ip) {
            return ip;
        }
    }
    client
}

fn split_xff(v: &str) -> Vec<&str> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The `for=` value of each element of an RFC 7239 `Forwarded` value (an element
/// without one yields an empty hop, which parses as no address).
fn forwarded_fors(v: &str) -> Vec<&str> {
    v.split(',')
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                .map_or("", |(_, v)| v.trim().trim_matches('"'))
        })
        .collect()
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = hop.parse::<SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<Ipv6Addr>().ok())
        .map(|ip| canonical(IpAddr::V6(ip)))
}

/// The address a client is counted under: IPv4 as is, IPv6 masked to `prefix` bits
/// (one customer usually holds a whole /64).
pub(crate) fn group(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u32::from(ipv6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// The namespaced key of a grouped address: `ip:1.2.3.4`, `ip:2001:db8:1:2::/64`.
pub(crate) fn ip_key(grouped: IpAddr, ipv6_prefix: u8) -> String {
    match grouped {
        IpAddr::V6(v6) if ipv6_prefix < 128 => format!("ip:{v6}/{ipv6_prefix}"),
        ip => format!("ip:{ip}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = trusted(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        let xff = ClientIpHeader::XForwardedFor;
        let peer = ip("10.0.0.1");
        // The client lies on the left; the proxy appended the real peer.
        let h = headers("x-forwarded-for", &["6.6.6.6, 203.0.113.7"]);
        assert_eq!(behind_proxy(&h, peer, &t, xff), ip("203.0.113.7"));
        // Two trusted proxies in a row, over two header lines.
        let h = headers("x-forwarded-for", &["6.6.6.6, 198.51.100.2", "10.1.1.1"]);
        assert_eq!(behind_proxy(&h, peer, &t, xff), ip("198.51.100.2"));
        // Every hop trusted: the leftmost.
        let h = headers("x-forwarded-for", &["10.9.9.9, 10.1.1.1"]);
        assert_eq!(behind_proxy(&h, peer, &t, xff), ip("10.9.9.9"));
        // No header: the peer. Garbage: the closest trusted address.
        assert_eq!(behind_proxy(&HeaderMap::new(), peer, &t, xff), peer);
        let h = headers("x-forwarded-for", &["1.1.1.1, nonsense, 10.2.2.2"]);
        assert_eq!(behind_proxy(&h, peer, &t, xff), ip("10.2.2.2"));
        // Ports and brackets, IPv4-mapped IPv6.
        let h = headers(
            "x-forwarded-for",
            &["[2001:db8::5]:443, [::ffff:192.0.2.9]:80"],
        );
        assert_eq!(behind_proxy(&h, peer, &t, xff), ip("192.0.2.9"));
    }

    #[test]
    fn forwarded_is_read_the_same_way() {
        let t = trusted(&["10.0.0.0/8"]);
        let fwd = ClientIpHeader::Forwarded;
        let h = headers(
            "forwarded",
            &["for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https, For=10.3.3.3;by=x"],
        );
        assert_eq!(
            behind_proxy(&h, ip("10.0.0.1"), &t, fwd),
            ip("2001:db8:cafe::17")
        );
        // The other header is not read.
        let h = headers("x-forwarded-for", &["6.6.6.6"]);
        assert_eq!(behind_proxy(&h, ip("10.0.0.1"), &t, fwd), ip("10.0.0.1"));
        // An obfuscated or unknown hop stops the walk at the last trusted one.
        let h = headers("forwarded", &["for=unknown, for=10.4.4.4"]);
        assert_eq!(behind_proxy(&h, ip("10.0.0.1"), &t, fwd), ip("10.4.4.4"));
    }

    #[test]
    fn ipv6_clients_are_grouped_by_prefix() {
        let a = group(ip("2001:db8:1:2:aaaa::1"), 64);
        let b = group(ip("2001:db8:1:2:bbbb::9"), 64);
        assert_eq!(a, b);
        assert_ne!(a, group(ip("2001:db8:1:3::1"), 64));
        assert_eq!(ip_key(a, 64), "ip:2001:db8:1:2::/64");
        assert_eq!(ip_key(group(ip("2001:db8::1"), 128), 128), "ip:2001:db8::1");
        assert_eq!(group(ip("2001:db8::1"), 0), ip("::"));
        assert_eq!(ip_key(group(ip("192.0.2.1"), 64), 64), "ip:192.0.2.1");
        assert!(!trusted(&[]).contains(ip("127.0.0.1")));
    }
}
