//! Issue 14's attacks on the limit, through the real gateway over real sockets: a flood
//! of fresh identities does not free a throttled client (item 4), a store full of
//! throttled keys refuses newcomers with `503` when told to, and path spellings do not
//! dodge a route's limit (item 5).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use gateway::BackendConfig;
use support::{backend, gateway, get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `GET path` as each of `users` on one keep-alive connection (pipelined, read
/// while writing) and returns the status of each response, in order.
async fn pipelined(addr: SocketAddr, path: &str, users: &[String]) -> Vec<u16> {
    let mut batch = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let close = if i + 1 == users.len() {
            "connection: close\r\n"
        } else {
            ""
        };
        let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\nx-user-id: {user}\r\n{close}\r\n");
        batch.extend_from_slice(req.as_bytes());
    }
    let (mut rd, mut wr) = TcpStream::connect(addr).await.unwrap().into_split();
    let writer = tokio::spawn(async move {
        wr.write_all(&batch).await.unwrap();
        wr
    });
    let mut out = Vec::new();
    rd.read_to_end(&mut out).await.unwrap();
    drop(writer.await.unwrap());
    let text = String::from_utf8_lossy(&out);
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

fn config(store: &str, route: &str) -> String {
    format!(
        "[store]\n{store}\n[[route]]\npath = \"/api/orders/{{id}}\"\n{route}\nalgorithm = \"token-bucket\"\ncapacity = 5\nrefill_per_sec = 0.001\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_client_stays_throttled_after_ten_thousand_fresh_identities() {
    for rule in ["deny", "evict-oldest"] {
        let (be, _) = backend(BackendConfig::default()).await;
        let store = format!("max_keys = 1000\nat_capacity = \"{rule}\"");
        let gw = gateway(&config(&store, ""), &format!("http://{}", be.addr)).await;
        let alice = vec!["alice".to_owned(); 6];
        let statuses = pipelined(gw.addr, "/api/orders/1", &alice).await;
        assert_eq!(statuses, [200, 200, 200, 200, 200, 429], "{rule}");
        let fresh: Vec<String> = (0..10_000).map(|i| format!("rot-{i}")).collect();
        let statuses = pipelined(gw.addr, "/api/orders/1", &fresh).await;
        assert_eq!(statuses.len(), 10_000, "{rule}");
        assert!(statuses.iter().all(|s| *s == 200), "{rule}");
        let res = get(gw.addr, "/api/orders/1", "alice").await;
        assert_eq!(res.status, 429, "{rule}: alice was forgotten: {res:?}");
        let metrics = get(gw.admin, "/metrics", "m").await.body;
        let in_use = metrics
            .lines()
            .find(|l| {
                l.starts_with("ratelab_gateway_limiter_evictions_total")
                    && l.contains("reason=\"in_use\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0);
        assert!(in_use >= 9_000, "{rule}: {metrics}");
        assert!(
            metrics.contains("reason=\"throttled\"} 0"),
            "{rule}: {metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_full_of_throttled_clients_refuses_newcomers_with_503() {
    let (be, backend_state) = backend(BackendConfig::default()).await;
    // One request each throttles a key: after 64 clients every key is throttled.
    let toml = "[store]\nmax_keys = 64\nat_capacity = \"deny\"\n[[route]]\npath = \"/api/orders/{id}\"\nalgorithm = \"gcra\"\ncapacity = 1\nrefill_per_sec = 0.001\n";
    let gw = gateway(toml, &format!("http://{}", be.addr)).await;
    let users: Vec<String> = (0..200).map(|i| format!("u{i}")).collect();
    let statuses = pipelined(gw.addr, "/api/orders/1", &users).await;
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!(admitted + refused, 200, "{statuses:?}");
    assert!((32..=64).contains(&admitted), "{admitted} admitted");
    // The held keys are still throttled.
    assert_eq!(get(gw.addr, "/api/orders/1", "u0").await.status, 429);
    let res = get(gw.addr, "/api/orders/1", "newcomer").await;
    assert_eq!(res.status, 503, "{res:?}");
    assert_eq!(res.header("retry-after").as_deref(), Some("1"), "{res:?}");
    let metrics = get(gw.admin, "/metrics", "m").await.body;
    let needle = format!(
        "ratelab_gateway_limiter_refused_total{{route=\"/api/orders/{{id}}\",algorithm=\"gcra\"}} {}",
        refused + 1
    );
    assert!(metrics.contains(&needle), "missing {needle}\n{metrics}");
    let total: u64 = (0..200)
        .map(|i| {
            backend_state
                .stats()
                .count(&format!("u{i}"), "/api/orders/1")
        })
        .sum();
    assert_eq!(total, admitted as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_spellings_do_not_dodge_an_exhausted_route() {
    let (be, backend_state) = backend(BackendConfig::default()).await;
    let gw = gateway(
        &config("", "case_insensitive = true"),
        &format!("http://{}", be.addr),
    )
    .await;
    for _ in 0..5 {
        assert_eq!(get(gw.addr, "/api/orders/1", "alice").await.status, 200);
    }
    for (path, status) in [
        ("/api/orders/1", 429),
        ("/API/orders/1", 429),
        ("/api//orders/1", 429),
        ("/api/orders/%31", 429),
        ("/api/orders%2F1", 400),
        ("/api/orders%2f1", 400),
        ("/api/orders/%2e%2e", 400),
        ("/api/orders/../orders/1", 400),
        ("/api/x/..%2forders/1", 400),
    ] {
        let res = get(gw.addr, path, "alice").await;
        assert_eq!(res.status, status, "{path}: {res:?}");
    }
    assert_eq!(backend_state.stats().count("alice", "/api/orders/1"), 5);
    // What is forwarded is the path that was matched: the canonical one.
    assert_eq!(get(gw.addr, "/other//a%62c/", "bob").await.status, 200);
    assert_eq!(backend_state.stats().count("bob", "/other/abc/"), 1);
    let metrics = get(gw.admin, "/metrics", "m").await.body;
    assert!(
        metrics.contains("ratelab_gateway_upstream_errors_total{kind=\"bad_request\"} 5"),
        "{metrics}"
    );
}
