//! The resolver's rules: keys first, the header only from trusted proxies, else the IP.

use std::io::Write as _;

use super::*;

const TEST_DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, v.parse().unwrap());
    }
    h
}

fn resolver(keys: bool) -> (Resolver, Option<tempfile_like::File>) {
    let mut config = IdentityConfig {
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        ..IdentityConfig::default()
    };
    let file = keys.then(|| {
        let f = tempfile_like::File::new(&format!(
            "[[key]]\nsha256 = \"{TEST_DIGEST}\"\nidentity = \"acme\"\ntier = \"pro\"\n"
        ));
        config.api_keys = Some(f.path.clone());
        f
    });
    (Resolver::new(&config).unwrap(), file)
}

/// A file removed on drop (the tests need no crate for it).
mod tempfile_like {
    pub struct File {
        pub path: std::path::PathBuf,
    }

    impl File {
        pub fn new(text: &str) -> Self {
            use std::sync::atomic::{AtomicU64, Ordering};
            static N: AtomicU64 = AtomicU64::new(0);
            let path = std::env::temp_dir().join(format!(
                "ratelab-keys-{}-{}.toml",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, text).unwrap();
            Self { path }
        }
    }

    impl Drop for File {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[test]
fn the_header_counts_only_from_trusted_proxies() {
    let (r, _) = resolver(false);
    let stranger = r.peer("203.0.113.7:4000".parse().unwrap());
    let proxy = r.peer("10.0.0.1:4000".parse().unwrap());
    assert!(!stranger.is_trusted() && proxy.is_trusted());
    let spoof = headers(&[("x-user-id", "alice"), ("x-forwarded-for", "6.6.6.6")]);
    let id = r.resolve(&stranger, &spoof).unwrap();
    assert_eq!(
        (&*id.key, id.source),
        ("ip:203.0.113.7", IdentitySource::ClientIp)
    );
    assert_eq!(id.ip_key, id.key);
    let id = r.resolve(&proxy, &spoof).unwrap();
    assert_eq!((&*id.key, id.source), ("h:alice", IdentitySource::Header));
    assert_eq!(&*id.ip_key, "ip:6.6.6.6");
    assert_eq!(id.client_addr, "6.6.6.6".parse::<IpAddr>().unwrap());
    // Behind the proxy without the header: the forwarded client's IP.
    let id = r
        .resolve(&proxy, &headers(&[("x-forwarded-for", "198.51.100.4")]))
        .unwrap();
    assert_eq!(&*id.key, "ip:198.51.100.4");
    // An empty header is no header; two are refused; a long one is refused.
    let id = r.resolve(&proxy, &headers(&[("x-user-id", "")])).unwrap();
    assert_eq!(id.source, IdentitySource::ClientIp);
    let two = headers(&[("x-user-id", "victim"), ("x-user-id", "alice")]);
    assert_eq!(
        r.resolve(&proxy, &two),
        Err(Rejection::Repeated("identity"))
    );
    let long = "a".repeat(257);
    let e = r.resolve(&proxy, &headers(&[("x-user-id", &long)]));
    assert_eq!(e, Err(Rejection::TooLong { max: 256 }));
    // From a stranger the same headers are simply ignored.
    assert!(r.resolve(&stranger, &two).is_ok());
}

#[test]
fn a_proxy_forwarding_nothing_is_its_own_client_and_long_identities_are_whole() {
    let (r, _) = resolver(false);
    let proxy = r.peer("10.0.0.1:4000".parse().unwrap());
    // No forwarding header: the client is the proxy (its key as formatted for the peer).
    let id = r
        .resolve(&proxy, &headers(&[("x-user-id", "bob")]))
        .unwrap();
    assert_eq!(&*id.ip_key, "ip:10.0.0.1");
    assert_eq!(id.client_addr, "10.0.0.1".parse::<IpAddr>().unwrap());
    // The identity key is the prefix and the value, whatever their length.
    for value in ["b".repeat(126), "c".repeat(127), "d".repeat(256)] {
        let id = r
            .resolve(&proxy, &headers(&[("x-user-id", &value)]))
            .unwrap();
        assert_eq!(&*id.key, format!("h:{value}"));
    }
    assert_eq!(&*prefixed("h:", "é"), "h:é");
}

#[test]
fn ipv6_peers_share_their_prefix() {
    let (r, _) = resolver(false);
    let a = r.peer("[2001:db8:1:2::1]:1".parse().unwrap());
    let b = r.peer("[2001:db8:1:2:ffff::9]:1".parse().unwrap());
    let ka = r.resolve(&a, &HeaderMap::new()).unwrap().key;
    assert_eq!(&*ka, "ip:2001:db8:1:2::/64");
    assert_eq!(ka, r.resolve(&b, &HeaderMap::new()).unwrap().key);
    // IPv4-mapped IPv6 is the IPv4 client.
    let m = r.peer("[::ffff:192.0.2.1]:1".parse().unwrap());
    assert_eq!(
        &*r.resolve(&m, &HeaderMap::new()).unwrap().key,
        "ip:192.0.2.1"
    );
}

#[test]
fn api_keys_come_first_and_unknown_ones_are_refused() {
    let (r, file) = resolver(true);
    let stranger = r.peer("203.0.113.7:4000".parse().unwrap());
    let id = r
        .resolve(
            &stranger,
            &headers(&[("x-api-key", "test"), ("x-user-id", "bob")]),
        )
        .unwrap();
    assert_eq!((&*id.key, id.source), ("key:acme", IdentitySource::ApiKey));
    assert_eq!(id.tier.as_deref(), Some("pro"));
    assert_eq!(&*id.ip_key, "ip:203.0.113.7");
    // An unknown key: keyed by the client IP, marked for a 401 after the per-IP limit.
    let guess = r
        .resolve(&stranger, &headers(&[("x-api-key", "guess")]))
        .unwrap();
    assert!(guess.unknown_api_key);
    assert_eq!(
        (&*guess.key, guess.source),
        ("ip:203.0.113.7", IdentitySource::ClientIp)
    );
    assert_eq!(Rejection::NotUtf8.status(), StatusCode::BAD_REQUEST);
    // No key: the other rules.
    let id = r.resolve(&stranger, &HeaderMap::new()).unwrap();
    assert_eq!(id.source, IdentitySource::ClientIp);

    // Reload: a new key appears; a broken file leaves the keys in use.
    let file = file.unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file.path)
        .unwrap();
    // SHA-256("secret").
    writeln!(
        f,
        "[[key]]\nsha256 = \"2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\"\nidentity = \"beta\""
    )
    .unwrap();
    assert_eq!(r.reload_keys().unwrap(), Some(2));
    let id = r
        .resolve(&stranger, &headers(&[("x-api-key", "secret")]))
        .unwrap();
    assert_eq!(&*id.key, "key:beta");
    std::fs::write(&file.path, "[[key]]\nsha256 = \"nope\"\nidentity = \"x\"\n").unwrap();
    let e = r.reload_keys().unwrap_err();
    assert_eq!(e.key, "key[1].sha256");
    assert!(
        r.resolve(&stranger, &headers(&[("x-api-key", "secret")]))
            .is_ok()
    );
}
