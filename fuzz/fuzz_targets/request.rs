//! A request head as the gateway reads it: its identity and its route.
//!
//! Identity (`gateway::identity`), from any headers and any peer:
//! - from a peer that is not a trusted proxy, the identity is the peer's address
//!   (grouped by the IPv6 prefix): no identity header, `X-Forwarded-For` or `Forwarded`
//!   changes it, and the forwarding headers the backend gets name the peer only;
//! - behind a trusted proxy, an identity header is believed (`h:` + its value) and the
//!   client is the peer or an address the forwarding chain names;
//! - keys are namespaced (`ip:`, `h:`), so no source names another's key, and grouping
//!   an address twice changes nothing.
//!
//! Paths as routes see them (`gateway_contract::routes`):
//! - `normalise` never yields an empty, `.` or `..` segment, and is idempotent: the
//!   normalised path written back (segments joined by `/`, each percent-encoded so that
//!   it decodes to itself) normalises to the same segments, and so does it written
//!   plainly when no segment holds `/` or `%` (nothing left to decode);
//! - a template that parses matches every path it fills in (`fill`, the load driver's
//!   requests), whatever the parameter values (single plain segments), and a literal
//!   template matches its own text;
//! - `matches` agrees with a direct segment-by-segment reading of the template.
#![no_main]

use std::borrow::Cow;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use arbitrary::Arbitrary;
use gateway::config::{ClientIpHeader, IdentityConfig};
use gateway::identity::{IdentitySource, Resolver};
use gateway_contract::routes::{Template, normalise};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    path: String,
    template: String,
    values: Vec<String>,
    peer: Peer,
    /// Trusted proxy networks: (address, prefix length).
    trusted: Vec<(Peer, u8)>,
    forwarded_header: bool,
    ipv6_prefix: u8,
    headers: Vec<(Header, Vec<u8>)>,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Peer {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Peer {
    fn ip(self) -> IpAddr {
        match self {
            Peer::V4(b) => IpAddr::V4(Ipv4Addr::from(b)),
            Peer::V6(b) => IpAddr::V6(Ipv6Addr::from(b)),
        }
    }
}

/// The headers identity reads, and any other.
#[derive(Debug, Arbitrary)]
enum Header {
    Identity,
    XForwardedFor,
    Forwarded,
    XRealIp,
    Other(String),
}

impl Header {
    fn name(&self) -> Option<HeaderName> {
        match self {
            Header::Identity => Some(HeaderName::from_static("x-user-id")),
            Header::XForwardedFor => Some(HeaderName::from_static("x-forwarded-for")),
            Header::Forwarded => Some(HeaderName::from_static("forwarded")),
            Header::XRealIp => Some(HeaderName::from_static("x-real-ip")),
            Header::Other(n) => HeaderName::from_bytes(n.as_bytes()).ok(),
        }
    }
}

fn identity(input: &Input) {
    let trusted: Vec<ipnet::IpNet> = input
        .trusted
        .iter()
        .filter_map(|(p, len)| ipnet::IpNet::new(p.ip(), *len).ok())
        .map(|n| n.trunc())
        .collect();
    let ipv6_prefix = input.ipv6_prefix % 129;
    let config = IdentityConfig {
        trusted_proxies: trusted.clone(),
        client_ip_header: if input.forwarded_header {
            ClientIpHeader::Forwarded
        } else {
            ClientIpHeader::XForwardedFor
        },
        ipv6_prefix,
        ..IdentityConfig::default()
    };
    let resolver = Resolver::new(&config).expect("no keys file to read");
    let mut headers = HeaderMap::new();
    for (name, value) in &input.headers {
        if let (Some(name), Ok(value)) = (name.name(), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }
    let addr = SocketAddr::new(input.peer.ip(), 40_000);
    let peer = resolver.peer(addr);
    let canonical = input.peer.ip().to_canonical();
    assert_eq!(
        peer.is_trusted(),
        trusted.iter().any(|n| n.contains(&canonical))
    );

    let Ok(id) = resolver.resolve(&peer, &headers) else {
        return; // a repeated, too long or non-UTF-8 identity header: 400
    };
    assert!(
        id.key.starts_with("ip:") || id.key.starts_with("h:"),
        "{id:?}"
    );
    assert!(id.ip_key.starts_with("ip:"), "{id:?}");
    // Grouping is idempotent: the grouped address, as a peer, groups to itself.
    let regrouped = resolver.peer(SocketAddr::new(id.client_ip, 1));
    let again = resolver.resolve(&regrouped, &HeaderMap::new());
    if !regrouped.is_trusted() {
        assert_eq!(again.map(|i| i.ip_key), Ok(id.ip_key.clone()), "{id:?}");
    }
    if !peer.is_trusted() {
        assert_eq!(id.source, IdentitySource::ClientIp, "{id:?}");
        assert_eq!(id.key, id.ip_key);
        assert_eq!(id.client_addr, canonical);
    } else if id.source == IdentitySource::Header {
        let value = headers.get("x-user-id").map(|v| v.as_bytes().to_vec());
        assert_eq!(Some(id.key.as_bytes()[2..].to_vec()), value, "{id:?}");
    }

    // What the backend is told.
    let mut upstream = headers.clone();
    peer.forwarding(addr.port()).apply(&mut upstream, Some(&id));
    let real = upstream.get_all("x-real-ip").iter().collect::<Vec<_>>();
    assert_eq!(real.len(), 1);
    assert_eq!(
        real[0].to_str().ok(),
        Some(id.client_addr.to_string().as_str())
    );
    for name in ["x-forwarded-for", "forwarded"] {
        let lines = upstream.get_all(name).iter().collect::<Vec<_>>();
        assert_eq!(lines.len(), 1, "{name}: {lines:?}");
        if !peer.is_trusted() {
            let text = lines[0].to_str().unwrap_or("");
            assert!(
                text.contains(&canonical.to_string()) && !text.contains(','),
                "{name}: {text}"
            );
        }
    }
}

/// `segment` percent-encoded so that decoding gives it back: `%`, `/` and anything
/// outside printable ASCII escaped.
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b == b'%' || b == b'/' || !(0x21..0x7f).contains(&b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

fn join<'a>(segments: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("/");
    out.push_str(&segments.into_iter().collect::<Vec<_>>().join("/"));
    out
}

fn normalised(path: &str) {
    let segs = normalise(path);
    for s in &segs {
        assert!(
            !matches!(s.as_ref(), "" | "." | ".."),
            "{path:?} -> {segs:?}"
        );
    }
    let encoded = join(
        segs.iter()
            .map(|s| encode(s))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str),
    );
    assert_eq!(normalise(&encoded), segs, "{path:?} -> {encoded:?}");
    if segs.iter().all(|s| !s.contains(['/', '%'])) {
        let plain = join(segs.iter().map(|s| s.as_ref()));
        assert_eq!(normalise(&plain), segs, "{path:?} -> {plain:?}");
    }
}

/// A parameter value the load driver could send: one plain, non-dot segment.
fn plain_value(v: &str) -> String {
    let v: String = v
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '~'))
        .collect();
    if v.is_empty() { "x".to_owned() } else { v }
}

fn template(t: &str, values: &[String]) {
    let Ok(template) = Template::parse(t) else {
        return;
    };
    assert_eq!(template.as_str(), t);
    let mut values = values.iter().map(|v| plain_value(v)).cycle();
    let filled = template.fill(|| values.next().unwrap_or_else(|| "x".to_owned()));
    assert!(
        template.matches(&normalise(&filled)),
        "{t:?} does not match its own filling {filled:?}"
    );
    if template.is_literal() {
        assert_eq!(filled, t);
    }
    // One more segment never matches a template without a final `{*rest}`.
    let longer = format!("{filled}/extra");
    if !t.contains("{*") {
        assert!(
            !template.matches(&normalise(&longer)),
            "{t:?} matches {longer:?}"
        );
    }
}

fn matches_by_hand(t: &str, path: &str) {
    let Ok(template) = Template::parse(t) else {
        return;
    };
    let segs = normalise(path);
    let parts: Vec<&str> = t.split('/').filter(|p| !p.is_empty()).collect();
    let expected = match parts.last() {
        Some(last) if last.starts_with("{*") => {
            segs.len() >= parts.len() && literal_prefix(&parts[..parts.len() - 1], &segs)
        }
        _ => segs.len() == parts.len() && literal_prefix(&parts, &segs),
    };
    assert_eq!(
        template.matches(&segs),
        expected,
        "{t:?} vs {path:?} ({segs:?})"
    );
}

/// Whether every literal part equals its segment, decoded as the template decodes it.
fn literal_prefix(parts: &[&str], segs: &[Cow<'_, str>]) -> bool {
    parts.iter().zip(segs).all(|(p, s)| {
        p.starts_with('{') || normalise(&format!("/{p}")).first().is_some_and(|d| d == s)
    })
}

fuzz_target!(|input: Input| {
    identity(&input);
    normalised(&input.path);
    template(&input.template, &input.values);
    matches_by_hand(&input.template, &input.path);
});
