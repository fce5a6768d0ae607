//! The gateway in process, over real sockets: proxy errors (502, 504, 413), headers
//! forwarded, admin endpoints, graceful drain, and the stores (local fallback, Redis
//! Cluster).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use gateway::{BackendConfig, Latency};
use support::{backend, gateway, get, raw};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_down_is_502_and_slow_is_504() {
    // A port nothing listens on: bind, note, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = gateway("", &format!("http://{dead}")).await;
    let res = get(gw.addr, "/x", "u").await;
    assert_eq!(res.status, 502, "{res:?}");
    assert!(res.body.contains("backend unreachable"), "{}", res.body);

    let (be, _) = backend(BackendConfig {
        latency: Latency::Fixed(2000.0),
        ..Default::default()
    })
    .await;
    let gw = gateway(
        "[server]\nupstream_timeout = \"200ms\"\n",
        &format!("http://{}", be.addr),
    )
    .await;
    let t = Instant::now();
    let res = get(gw.addr, "/slow", "u").await;
    assert_eq!(res.status, 504, "{res:?}");
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    let metrics = get(gw.admin, "/metrics", "u").await.body;
    assert!(
        metrics.contains("ratelab_gateway_upstream_errors_total{kind=\"timeout\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_are_413_declared_or_streamed() {
    let (be, backend) = backend(BackendConfig::default()).await;
    let gw = gateway(
        "[server]\nmax_body_bytes = 1000\n",
        &format!("http://{}", be.addr),
    )
    .await;
    let body = "x".repeat(800);
    let ok = format!(
        "POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: 800\r\nconnection: close\r\n\r\n{body}"
    );
    assert_eq!(raw(gw.addr, ok.as_bytes()).await.unwrap().status, 200);
    let declared = format!(
        "POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: 1001\r\nconnection: close\r\n\r\n{body}"
    );
    assert_eq!(raw(gw.addr, declared.as_bytes()).await.unwrap().status, 413);
    // The declared one never left the gateway.
    assert_eq!(backend.stats().count("-", "/up"), 1);
    // Chunked, no length declared: cut off once it passes the limit.
    let chunk = "y".repeat(600);
    let chunked = format!(
        "POST /up HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    let res = raw(gw.addr, chunked.as_bytes()).await.unwrap();
    assert_eq!(res.status, 413, "{res:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_are_forwarded_and_hop_by_hop_ones_dropped() {
    // A backend that echoes the headers it got.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let n = s.read(&mut buf).await.unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
        let body = head.replace("\r\n", "|");
        let res = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\nkeep-alive: timeout=5\r\nx-backend: 1\r\n\r\n{body}",
            body.len()
        );
        s.write_all(res.as_bytes()).await.unwrap();
    });
    let gw = gateway("", &format!("http://{echo}")).await;
    let req = "GET /h?q=1 HTTP/1.1\r\nhost: api.example\r\nx-user-id: u1\r\nx-forwarded-for: 10.1.1.1\r\nconnection: close, x-secret\r\nx-secret: s\r\nproxy-authorization: p\r\n\r\n";
    let res = raw(gw.addr, req.as_bytes()).await.unwrap();
    assert_eq!(res.status, 200);
    let seen = res.body.clone();
    assert!(seen.starts_with("get /h?q=1 http/1.1|"), "{seen}");
    assert!(
        seen.contains("x-forwarded-for: 10.1.1.1, 127.0.0.1|"),
        "{seen}"
    );
    assert!(seen.contains("host: api.example|"), "{seen}");
    assert!(seen.contains("x-user-id: u1|"), "{seen}");
    assert!(!seen.contains("x-secret"), "{seen}");
    assert!(!seen.contains("proxy-authorization"), "{seen}");
    assert_eq!(res.header("x-backend").as_deref(), Some("1"));
    // The backend's hop-by-hop Keep-Alive is dropped; the gateway states its own.
    assert_eq!(res.header("keep-alive").as_deref(), Some("timeout=60"));
}

/// `/metrics`, `/healthz` and `/readyz` answer on the admin listener only; on the proxy
/// port they — and the backend's `/stats` — are ordinary paths, proxied to the backend
/// (which counts them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_answer_only_on_admin_listen() {
    let (be, backend) = backend(BackendConfig::default()).await;
    let gw = gateway(
        "[[route]]\npath = \"/a/{id}\"\nalgorithm = \"sliding-log\"\nlimit = 1\nwindow = \"1h\"\n",
        &format!("http://{}", be.addr),
    )
    .await;
    assert_eq!(get(gw.admin, "/healthz", "u").await.body, "ok\n");
    let ready = get(gw.admin, "/readyz", "u").await;
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, "ready: store: memory\n")
    );
    assert_eq!(get(gw.admin, "/a/1", "u").await.status, 404);
    for path in ["/metrics", "/healthz", "/readyz", "/stats"] {
        let res = get(gw.addr, path, "u").await;
        assert_eq!(res.status, 200, "{path}: {res:?}");
        assert!(
            !res.body.contains("ratelab_gateway"),
            "{path}: {}",
            res.body
        );
        assert_eq!(
            backend.stats().count("u", path),
            1,
            "{path} reached the backend"
        );
    }
    assert_eq!(get(gw.addr, "/a/1", "u").await.status, 200);
    assert_eq!(get(gw.addr, "/a/2", "u").await.status, 429);
    let res = get(gw.admin, "/metrics", "u").await;
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let m = res.body;
    for needle in [
        "ratelab_gateway_decisions_total{route=\"/a/{id}\",algorithm=\"sliding-log\",outcome=\"allowed\"} 1",
        "ratelab_gateway_decisions_total{route=\"/a/{id}\",algorithm=\"sliding-log\",outcome=\"denied\"} 1",
        "ratelab_gateway_decision_seconds_count{route=\"/a/{id}\",algorithm=\"sliding-log\"} 2",
        "ratelab_gateway_limiter_keys{route=\"/a/{id}\",algorithm=\"sliding-log\"} 1",
        "ratelab_gateway_upstream_seconds_count 5",
        "ratelab_gateway_responses_total{class=\"4xx\"} 1",
        "# TYPE ratelab_gateway_decision_seconds histogram",
        "# TYPE process_resident_memory_bytes gauge",
        "ratelab_build_info{version=",
    ] {
        assert!(m.contains(needle), "missing {needle}\n{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_requests() {
    let (be, _) = backend(BackendConfig {
        latency: Latency::Fixed(500.0),
        ..Default::default()
    })
    .await;
    let mut gw = gateway("", &format!("http://{}", be.addr)).await;
    let addr = gw.addr;
    let inflight = tokio::spawn(async move { get(addr, "/slow", "u").await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let stopped = gw.trigger_stop();
    let res = inflight.await.unwrap();
    assert_eq!(res.status, 200);
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_fallback_enforces_the_policy_per_instance() {
    let redis = testkit::RedisServer::start().unwrap();
    let (be, _) = backend(BackendConfig::default()).await;
    let cfg = format!(
        "[store]\nkind = \"redis\"\nurl = \"{}\"\ntimeout = \"100ms\"\non_error = \"local\"\n\n[[route]]\npath = \"/l\"\nalgorithm = \"gcra\"\ncapacity = 2\nrefill_per_sec = 0.001\n",
        redis.url()
    );
    let gw = gateway(&cfg, &format!("http://{}", be.addr)).await;
    assert_eq!(get(gw.addr, "/l", "u").await.status, 200);
    redis.kill();
    // Redis is gone: the in-memory stand-in admits its own burst of 2, then refuses.
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(get(gw.addr, "/l", "u").await.status);
        }
        v
    };
    assert_eq!(statuses, [200, 200, 429]);
    let m = get(gw.admin, "/metrics", "u").await.body;
    assert!(m.contains("policy=\"local\"} 3"), "{m}");
    assert!(m.contains("ratelab_gateway_store_errors_total"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_a_redis_cluster_share_one_limit() {
    let cluster = testkit::RedisCluster::start().unwrap();
    let urls = cluster
        .urls()
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let (be, backend) = backend(BackendConfig::default()).await;
    let cfg = format!(
        "[store]\nkind = \"redis-cluster\"\nurls = [{urls}]\ntimeout = \"500ms\"\non_error = \"fail-closed\"\n\n[[route]]\npath = \"/c/{{id}}\"\nalgorithm = \"sliding-window\"\nlimit = 20\nwindow = \"1h\"\n"
    );
    let a = gateway(&cfg, &format!("http://{}", be.addr)).await;
    let b = gateway(&cfg, &format!("http://{}", be.addr)).await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let addr = if i % 2 == 0 { a.addr } else { b.addr };
        tasks.push(tokio::spawn(async move {
            get(addr, &format!("/c/{i}"), "zed").await.status
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        let status = t.await.unwrap();
        assert!(status == 200 || status == 429, "{status}");
        admitted += u64::from(status == 200);
    }
    // A sliding window admits at most `limit` per window; a fresh key, well inside one
    // hour, admits exactly that.
    assert_eq!(admitted, 20);
    assert_eq!(backend.stats().total(), 20);
}

/// Without the identity header a client is keyed by its IP: one loopback address
/// spending its allowance leaves another's untouched, and an empty header counts as
/// none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_identity_are_keyed_by_ip() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (be, _) = backend(BackendConfig::default()).await;
    let limit =
        "[[route]]\npath = \"/ip\"\nalgorithm = \"fixed-window\"\nlimit = 1\nwindow = \"1h\"\n";
    let gw = gateway(limit, &format!("http://{}", be.addr)).await;
    let from = |source: [u8; 4], header: &'static str| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((source, 0).into()).unwrap();
        let mut s = socket.connect(gw.addr).await.unwrap();
        let req = format!("GET /ip HTTP/1.1\r\nhost: x\r\n{header}connection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[9..12]).into_owned()
    };
    assert_eq!(from([127, 0, 0, 1], "").await, "200");
    assert_eq!(from([127, 0, 0, 1], "").await, "429");
    assert_eq!(from([127, 0, 0, 1], "x-user-id: \r\n").await, "429");
    assert_eq!(from([127, 0, 0, 2], "").await, "200");
    assert_eq!(from([127, 0, 0, 2], "").await, "429");
    // A named user is keyed by name, wherever it comes from.
    assert_eq!(from([127, 0, 0, 1], "x-user-id: u1\r\n").await, "200");
}
