//! The attacks of issue 14 against identity, through the gateway over real sockets
//! from several loopback addresses (127.0.0.1 is the trusted proxy where one is
//! configured; 127.0.0.2.. are clients that are not): rotating or borrowing
//! `x-user-id`, forged forwarding headers, the per-IP limit, API keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use gateway::BackendConfig;
use support::{backend, gateway, gateway_cold, get_from};

const PROXY: [u8; 4] = [127, 0, 0, 1];
const MALLORY: [u8; 4] = [127, 0, 0, 2];
const CAROL: [u8; 4] = [127, 0, 0, 3];

/// Five per identity per hour on the orders route; 127.0.0.1 is a trusted proxy.
const FIVE: &str = "[[route]]\npath = \"/api/orders/{id}\"\nalgorithm = \"fixed-window\"\nlimit = 5\nwindow = \"1h\"\n\n[identity]\ntrusted_proxies = [\"127.0.0.1\"]\n";

async fn statuses(
    from: [u8; 4],
    addr: SocketAddr,
    n: usize,
    headers: impl Fn(usize) -> String,
) -> Vec<u16> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(
            get_from(from, addr, &format!("/api/orders/{i}"), &headers(i))
                .await
                .status,
        );
    }
    out
}

fn admitted(statuses: &[u16]) -> usize {
    statuses.iter().filter(|s| **s == 200).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_identities_from_an_untrusted_peer_are_bounded_by_its_ip() {
    let (be, backend) = backend(BackendConfig::default()).await;
    let gw = gateway(FIVE, &format!("http://{}", be.addr)).await;
    // 50 requests, each a new x-user-id and a new forged client address.
    let s = statuses(MALLORY, gw.addr, 50, |i| {
        format!(
            "x-user-id: rot-{i}\r\nx-forwarded-for: 10.9.{i}.1\r\nforwarded: for=10.8.{i}.1\r\n"
        )
    })
    .await;
    assert_eq!(admitted(&s), 5, "{s:?}");
    assert!(s[5..].iter().all(|s| *s == 429), "{s:?}");
    assert_eq!(backend.stats().total(), 5);
    let m = get_from(PROXY, gw.admin, "/metrics", "").await.body;
    assert!(
        m.contains(
            "ratelab_gateway_limiter_keys{route=\"/api/orders/{id}\",algorithm=\"fixed-window\"} 1"
        ),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_someone_elses_identity_does_not_lock_them_out() {
    let (be, _) = backend(BackendConfig::default()).await;
    let gw = gateway(FIVE, &format!("http://{}", be.addr)).await;
    // Mallory spends "alice" five times and more: it is Mallory's own IP that pays.
    let s = statuses(MALLORY, gw.addr, 7, |_| "x-user-id: alice\r\n".to_owned()).await;
    assert_eq!(s, [200, 200, 200, 200, 200, 429, 429]);
    // The real alice, through the trusted proxy, has her whole allowance.
    let res = get_from(PROXY, gw.addr, "/api/orders/1", "x-user-id: alice\r\n").await;
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.header("x-ratelimit-remaining").as_deref(), Some("4"));
    // And a spoofed header counts against the peer: Mallory without it is throttled too.
    let res = get_from(MALLORY, gw.addr, "/api/orders/2", "").await;
    assert_eq!(res.status, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_an_identity_after_being_throttled_by_ip_does_not_help() {
    let (be, _) = backend(BackendConfig::default()).await;
    let gw = gateway(FIVE, &format!("http://{}", be.addr)).await;
    let s = statuses(CAROL, gw.addr, 6, |_| String::new()).await;
    assert_eq!(s, [200, 200, 200, 200, 200, 429]);
    for extra in [
        "x-user-id: fresh\r\n",
        "x-forwarded-for: 192.0.2.1\r\n",
        "x-real-ip: 192.0.2.1\r\n",
        "x-user-id: fresh\r\nx-forwarded-for: 192.0.2.1\r\n",
    ] {
        let res = get_from(CAROL, gw.addr, "/api/orders/9", extra).await;
        assert_eq!(res.status, 429, "{extra:?}: {res:?}");
    }
}

/// With `[identity.per_ip]`, identities the gateway believes (a trusted proxy's
/// header) still share their client address's limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_ip_limit_bounds_every_identity_of_an_address() {
    let (be, backend) = backend(BackendConfig::default()).await;
    let config = format!(
        "{FIVE}\n[identity.per_ip]\nalgorithm = \"fixed-window\"\nlimit = 8\nwindow = \"1h\"\n"
    );
    let gw = gateway(&config, &format!("http://{}", be.addr)).await;
    // One client behind the proxy rotating believed identities: 8, not 5 × 20.
    let behind = |i: usize| format!("x-user-id: u{i}\r\nx-forwarded-for: 198.51.100.7\r\n");
    let s = statuses(PROXY, gw.addr, 20, behind).await;
    assert_eq!(admitted(&s), 8, "{s:?}");
    let res = get_from(PROXY, gw.addr, "/api/orders/1", &behind(99)).await;
    assert_eq!(res.status, 429);
    assert!(
        res.header("ratelimit")
            .unwrap()
            .starts_with("\"per-ip\";r=0;"),
        "{res:?}"
    );
    // Another client behind the same proxy has its own address's allowance.
    let res = get_from(
        PROXY,
        gw.addr,
        "/api/orders/1",
        "x-user-id: u1\r\nx-forwarded-for: 198.51.100.8\r\n",
    )
    .await;
    assert_eq!(res.status, 200, "{res:?}");
    // Paths no route matches pass the per-IP limit too.
    let res = get_from(PROXY, gw.addr, "/elsewhere", &behind(100)).await;
    assert_eq!(res.status, 429);
    assert_eq!(backend.stats().total(), 9);
    let m = get_from(PROXY, gw.admin, "/metrics", "").await.body;
    assert!(m.contains("ratelab_gateway_decisions_total{route=\"per-ip\",algorithm=\"fixed-window\",outcome=\"denied\"} 14"), "{m}");
}

/// A backend that answers each request with the request head it got, one connection
/// at a time.
async fn echo_backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 8192];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let body = String::from_utf8_lossy(&buf[..n])
                .to_lowercase()
                .replace("\r\n", "|");
            let res = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(res.as_bytes()).await;
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_forwarding_headers_never_reach_the_backend() {
    let echo = echo_backend().await;
    let gw = gateway(FIVE, &format!("http://{echo}")).await;
    let forged = "x-forwarded-for: 6.6.6.6\r\nforwarded: for=6.6.6.6\r\nx-real-ip: 6.6.6.6\r\n";
    let seen = get_from(MALLORY, gw.addr, "/h", forged).await.body;
    assert!(seen.contains("|x-forwarded-for: 127.0.0.2|"), "{seen}");
    assert!(
        seen.contains("|forwarded: for=127.0.0.2;proto=http|"),
        "{seen}"
    );
    assert!(seen.contains("|x-real-ip: 127.0.0.2|"), "{seen}");
    assert!(!seen.contains("6.6.6.6"), "{seen}");
    // Through the trusted proxy the chain is kept, and X-Real-IP is the client.
    let chain = "x-forwarded-for: 6.6.6.6, 203.0.113.9\r\n";
    let seen = get_from(PROXY, gw.addr, "/h", chain).await.body;
    assert!(
        seen.contains("|x-forwarded-for: 6.6.6.6, 203.0.113.9, 127.0.0.1|"),
        "{seen}"
    );
    assert!(seen.contains("|x-real-ip: 203.0.113.9|"), "{seen}");
}

fn sha256_hex(key: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A keys file: two keys of `acme` (tier `pro`) and one of `beta`, stored as digests.
fn keys_file(tag: &str) -> std::path::PathBuf {
    let text = format!(
        "[[key]]\nsha256 = \"{}\"\nidentity = \"acme\"\ntier = \"pro\"\n\n[[key]]\nsha256 = \"{}\"\nidentity = \"acme\"\n\n[[key]]\nsha256 = \"{}\"\nidentity = \"beta\"\n",
        sha256_hex("acme-key-1"),
        sha256_hex("acme-key-2"),
        sha256_hex("beta-key"),
    );
    let path = std::env::temp_dir().join(format!("ratelab-keys-{tag}-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_name_the_identity_and_a_missing_or_unknown_key_is_401() {
    let (be, backend) = backend(BackendConfig::default()).await;
    let keys = keys_file("401");
    let config = format!(
        "[[route]]\npath = \"/api/orders/{{id}}\"\nalgorithm = \"fixed-window\"\nlimit = 3\nwindow = \"1h\"\nrequire_api_key = true\n\n\
         [[route]]\npath = \"/public\"\nalgorithm = \"fixed-window\"\nlimit = 100\nwindow = \"1h\"\n\n\
         [identity]\napi_keys = {:?}\n",
        keys.display().to_string()
    );
    let gw = gateway(&config, &format!("http://{}", be.addr)).await;
    // No key where one is required: 401, problem details, a challenge; nothing upstream.
    let res = get_from(CAROL, gw.addr, "/api/orders/1", "").await;
    assert_eq!(res.status, 401, "{res:?}");
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(
        res.header("www-authenticate").as_deref(),
        Some("ApiKey header=\"x-api-key\"")
    );
    let problem: serde_json::Value = serde_json::from_str(&res.body).unwrap();
    assert_eq!(
        (problem["status"].as_u64(), problem["detail"].as_str()),
        (Some(401), Some("API key required"))
    );
    // An identity header is not a key.
    let res = get_from(CAROL, gw.addr, "/api/orders/1", "x-user-id: acme\r\n").await;
    assert_eq!(res.status, 401);
    // An unknown key: 401 wherever it is sent, also where no key is required.
    for path in ["/api/orders/1", "/public"] {
        let res = get_from(CAROL, gw.addr, path, "x-api-key: acme-key-3\r\n").await;
        assert_eq!(res.status, 401, "{path}: {res:?}");
        let problem: serde_json::Value = serde_json::from_str(&res.body).unwrap();
        assert_eq!(problem["detail"], "unknown API key");
    }
    // Two keys of one identity share its quota; another identity has its own.
    let mut s = Vec::new();
    for i in 0..5 {
        let key = if i % 2 == 0 {
            "acme-key-1"
        } else {
            "acme-key-2"
        };
        let from = if i % 2 == 0 { CAROL } else { MALLORY };
        let res = get_from(
            from,
            gw.addr,
            "/api/orders/1",
            &format!("x-api-key: {key}\r\n"),
        )
        .await;
        s.push(res.status);
    }
    assert_eq!(s, [200, 200, 200, 429, 429]);
    let res = get_from(CAROL, gw.addr, "/api/orders/1", "x-api-key: beta-key\r\n").await;
    assert_eq!(res.status, 200);
    // Where no key is required, none is needed.
    assert_eq!(get_from(CAROL, gw.addr, "/public", "").await.status, 200);
    assert_eq!(backend.stats().total(), 5);
    let m = get_from(CAROL, gw.admin, "/metrics", "").await.body;
    for needle in [
        "ratelab_gateway_identity_rejections_total{reason=\"unknown_api_key\"} 2",
        "ratelab_gateway_identity_rejections_total{reason=\"api_key_required\"} 2",
        "ratelab_gateway_identity_rejections_total{reason=\"bad_identity_header\"} 0",
    ] {
        assert!(m.contains(needle), "missing {needle}\n{m}");
    }
    let _ = std::fs::remove_file(keys);
}

/// Every algorithm's headers agree with themselves: on a 429 `t` equals `Retry-After`,
/// and no admission advertises a reset beyond the policy's window `w`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_headers_are_honest_for_every_algorithm() {
    let (be, _) = backend(BackendConfig::default()).await;
    for kind in limiter_core::Kind::ALL {
        let limit = if kind.is_bucket() {
            "capacity = 3\nrefill_per_sec = 0.5\n".to_owned()
        } else {
            "limit = 3\nwindow = \"60s\"\n".to_owned()
        };
        let config =
            format!("[[route]]\npath = \"/r\"\nalgorithm = \"{kind}\"\n{limit}\n[identity]\n");
        let gw = gateway(&config, &format!("http://{}", be.addr)).await;
        let mut refused = 0;
        for _ in 0..6 {
            let res = get_from(CAROL, gw.addr, "/r", "").await;
            let policy = res.header("ratelimit-policy").unwrap();
            let w: u64 = policy.rsplit("w=").next().unwrap().parse().unwrap();
            let state = res.header("ratelimit").unwrap();
            let t: u64 = state.rsplit("t=").next().unwrap().parse().unwrap();
            if res.status == 429 {
                refused += 1;
                let retry: u64 = res.header("retry-after").unwrap().parse().unwrap();
                assert_eq!(t, retry, "{kind}: {res:?}");
            } else {
                assert!(t <= w, "{kind}: t={t} beyond w={w}: {res:?}");
            }
        }
        assert_eq!(refused, 3, "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_fail_open_claims_no_rate_limit_state_and_readyz_says_so() {
    let (be, _) = backend(BackendConfig::default()).await;
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let route =
        "[[route]]\npath = \"/r\"\nalgorithm = \"gcra\"\ncapacity = 2\nrefill_per_sec = 0.001\n";
    let store = |policy: &str| {
        format!(
            "[store]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:{dead}\"\ntimeout = \"50ms\"\non_error = \"{policy}\"\n{route}"
        )
    };
    let open = gateway_cold(&store("fail-open"), &format!("http://{}", be.addr)).await;
    for _ in 0..4 {
        let res = get_from(CAROL, open.addr, "/r", "").await;
        assert_eq!(res.status, 200, "{res:?}");
        for h in [
            "ratelimit",
            "ratelimit-policy",
            "x-ratelimit-remaining",
            "retry-after",
        ] {
            assert!(res.header(h).is_none(), "{h} invented: {res:?}");
        }
    }
    let m = get_from(CAROL, open.admin, "/metrics", "").await.body;
    assert!(m.contains("ratelab_gateway_store_fallbacks_total{route=\"/r\",algorithm=\"gcra\",policy=\"fail-open\"} 4"), "{m}");
    let ready = get_from(CAROL, open.admin, "/readyz", "").await;
    assert_eq!(ready.status, 200, "{ready:?}");
    assert!(
        ready.body.starts_with("ready: store: redis unreachable"),
        "{}",
        ready.body
    );
    assert!(
        ready.body.contains("on_error = fail-open"),
        "{}",
        ready.body
    );
    assert_eq!(
        get_from(CAROL, open.admin, "/healthz", "").await.status,
        200
    );

    let closed = gateway_cold(&store("fail-closed"), &format!("http://{}", be.addr)).await;
    assert_eq!(get_from(CAROL, closed.addr, "/r", "").await.status, 503);
    let ready = get_from(CAROL, closed.admin, "/readyz", "").await;
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(
        ready
            .body
            .starts_with("not ready: store: redis unreachable"),
        "{}",
        ready.body
    );
}

/// The sliding window's state drains over two windows, but the reset it advertises on
/// an admission stays within the window it advertises (`t=115` on `w=60` before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sliding_window_never_advertises_a_reset_beyond_its_window() {
    let (be, _) = backend(BackendConfig::default()).await;
    let config = "[[route]]\npath = \"/s\"\nalgorithm = \"sliding-window\"\nlimit = 10\nwindow = \"2s\"\n\n[identity]\n";
    let gw = gateway(config, &format!("http://{}", be.addr)).await;
    let t_of = |res: &support::Res| -> u64 {
        let state = res.header("ratelimit").unwrap();
        state.rsplit("t=").next().unwrap().parse().unwrap()
    };
    for _ in 0..6 {
        let res = get_from(CAROL, gw.addr, "/s", "").await;
        assert_eq!(res.status, 200);
        assert!(t_of(&res) <= 2, "{res:?}");
    }
    // Into the next window: the previous one still weighs, and its state needs more
    // than a window to drain; what is advertised stays at most w.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    for _ in 0..3 {
        let res = get_from(CAROL, gw.addr, "/s", "").await;
        assert_eq!(res.status, 200, "{res:?}");
        assert_eq!(
            res.header("ratelimit-policy").as_deref(),
            Some("\"/s\";q=10;w=2")
        );
        assert!(t_of(&res) <= 2, "{res:?}");
    }
}

/// Guessing API keys from one address is throttled: an unknown key is answered `401`
/// only after the per-IP limit admitted the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_api_keys_from_one_address_is_throttled_by_the_per_ip_limit() {
    let (be, backend) = backend(BackendConfig::default()).await;
    let keys = keys_file("guess");
    let config = format!(
        "[[route]]\npath = \"/api/orders/{{id}}\"\nalgorithm = \"fixed-window\"\nlimit = 100\nwindow = \"1h\"\nrequire_api_key = true\n\n\
         [identity]\napi_keys = {:?}\n\n[identity.per_ip]\nalgorithm = \"fixed-window\"\nlimit = 3\nwindow = \"1h\"\n",
        keys.display().to_string()
    );
    let gw = gateway(&config, &format!("http://{}", be.addr)).await;
    let mut s = Vec::new();
    for i in 0..6 {
        let res = get_from(
            CAROL,
            gw.addr,
            "/api/orders/1",
            &format!("x-api-key: guess-{i}\r\n"),
        )
        .await;
        s.push(res.status);
    }
    assert_eq!(s, [401, 401, 401, 429, 429, 429]);
    // Another address with a real key is unaffected.
    let res = get_from(MALLORY, gw.addr, "/api/orders/1", "x-api-key: beta-key\r\n").await;
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(backend.stats().total(), 1);
    let m = get_from(CAROL, gw.admin, "/metrics", "").await.body;
    assert!(
        m.contains("ratelab_gateway_identity_rejections_total{reason=\"unknown_api_key\"} 6"),
        "{m}"
    );
    let _ = std::fs::remove_file(keys);
}
