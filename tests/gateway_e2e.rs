//! End-to-end tests of `ratelab gateway` and `ratelab backend` as real processes over
//! real sockets: limits per user and route (memory), one limit shared by three
//! gateways (Redis), Redis failures under fail-open and fail-closed, bad configs, and
//! misbehaving clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "gateway_e2e/support.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Proc, TRUST_LOOPBACK, TempDir, backend, gateway, get, post, raw, stats};

/// Two routes of 10 each (no refill worth mentioning during a test).
const TEN_PER_ROUTE: &str = r#"
[[route]]
path           = "/api/orders/{id}"
algorithm      = "token-bucket"
capacity       = 10
refill_per_sec = 0.001

[[route]]
path      = "/api/search"
algorithm = "fixed-window"
limit     = 10
window    = "1h"
"#;

#[test]
fn a_memory_store_admits_exactly_the_capacity_per_user_and_route() {
    let dir = TempDir::new("a");
    let config = dir.write("gw.toml", &format!("{TEN_PER_ROUTE}{TRUST_LOOPBACK}"));
    let be = backend(&[]);
    let gw = gateway(&config, &be);

    for i in 0..10u64 {
        let res = get(gw.addr, &format!("/api/orders/{i}"), Some("alice"));
        assert_eq!(res.status, 200, "request {i}: {res:?}");
        assert_eq!(
            res.header("ratelimit-policy"),
            Some("\"/api/orders/{id}\";q=10;w=10000")
        );
        assert_eq!(res.header("x-ratelimit-limit"), Some("10"));
        assert_eq!(
            res.header("x-ratelimit-remaining"),
            Some((9 - i).to_string().as_str())
        );
        assert!(
            res.header("ratelimit")
                .unwrap()
                .starts_with(&format!("\"/api/orders/{{id}}\";r={};t=", 9 - i))
        );
        assert!(res.header("x-ratelimit-reset").is_some());
        assert!(res.header("retry-after").is_none());
    }
    for i in 0..5 {
        let res = get(gw.addr, &format!("/api/orders/x{i}"), Some("alice"));
        assert_eq!(res.status, 429, "{res:?}");
        assert_eq!(res.header("x-ratelimit-remaining"), Some("0"));
        assert_eq!(res.header("content-type"), Some("application/json"));
        // One token per 1000 s: a client that waits Retry-After is admitted.
        let retry: u64 = res.header("retry-after").unwrap().parse().unwrap();
        assert!((999..=1000).contains(&retry), "{retry}");
        assert!(res.body.contains("too many requests"), "{}", res.body);
        assert!(res.header("ratelimit").unwrap().contains(";r=0;"));
    }
    // Another user on the same route, and the same user on another route: unaffected.
    let res = get(gw.addr, "/api/orders/1", Some("bob"));
    assert_eq!(
        (res.status, res.header("x-ratelimit-remaining")),
        (200, Some("9"))
    );
    let res = get(gw.addr, "/api/search?q=1", Some("alice"));
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("ratelimit-policy"),
        Some("\"/api/search\";q=10;w=3600")
    );
    // An unmatched path without a default is not limited and carries no headers.
    let res = get(gw.addr, "/elsewhere", Some("alice"));
    assert_eq!(res.status, 200);
    assert!(res.header("ratelimit").is_none());

    // The backend saw exactly the admitted requests, never a 429'd one.
    let s = stats(&be);
    let alice: u64 = s["users"]["alice"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.starts_with("/api/orders/"))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    assert_eq!(alice, 10, "{s}");
    assert_eq!(s["users"]["bob"]["/api/orders/1"], 1);
    assert_eq!(s["total"], 13, "{s}");

    // Metrics count the decisions.
    let m = get(gw.admin(), "/metrics", None);
    assert!(m.body.contains(
        "ratelab_gateway_decisions_total{route=\"/api/orders/{id}\",algorithm=\"token-bucket\",outcome=\"denied\"} 5"
    ), "{}", m.body);
    // The ground truth is on the backend's stats listener; on its data port (and so
    // through the gateway) /stats is an ordinary, counted path.
    let through = get(gw.addr, "/stats", Some("mallory"));
    assert_eq!(through.status, 200);
    assert!(!through.body.contains("alice"), "{}", through.body);
    assert_eq!(stats(&be)["users"]["mallory"]["/stats"], 1);
    assert_eq!(post(gw.addr, "/stats/reset").status, 200);
    assert_ne!(stats(&be)["total"], 0);
    assert_eq!(post(be.admin(), "/stats/reset").status, 200);
    assert_eq!(stats(&be)["total"], 0);
}

/// A Redis-backed gateway config; `timeout` bounds each Redis call.
fn redis_config(url: &str, timeout: &str, on_error: &str, capacity: u64) -> String {
    format!(
        r#"
[store]
kind       = "redis"
url        = "{url}"
timeout    = "{timeout}"
on_error   = "{on_error}"

[[route]]
path           = "/api/orders/{{id}}"
algorithm      = "token-bucket"
capacity       = {capacity}
refill_per_sec = 0.001
{TRUST_LOOPBACK}"#
    )
}

#[test]
fn b_three_gateways_on_one_redis_admit_one_envelope() {
    let redis = testkit::RedisServer::start().unwrap();
    let dir = TempDir::new("b");
    // What is tested is one envelope across gateways, not the store timeout: 300
    // concurrent calls on a loaded 2-core machine can take longer than 100 ms, and a
    // fail-closed 503 is not a decision of the limiter.
    let config = dir.write(
        "gw.toml",
        &redis_config(&redis.url(), "2s", "fail-closed", 50),
    );
    let be = backend(&[]);
    let gws: Vec<Proc> = (0..3).map(|_| gateway(&config, &be)).collect();
    let started = Instant::now();

    // 300 concurrent requests for one user and route, spread over the three gateways.
    let addrs: Vec<_> = gws.iter().map(|g| g.addr).collect();
    let threads: Vec<_> = (0..300)
        .map(|i| {
            let addr = addrs[i % 3];
            std::thread::spawn(move || get(addr, &format!("/api/orders/{i}"), Some("carol")).status)
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let elapsed = started.elapsed().as_secs_f64();

    let admitted = statuses.iter().filter(|s| **s == 200).count() as u64;
    let refused = statuses.iter().filter(|s| **s == 429).count() as u64;
    assert_eq!(admitted + refused, 300, "{statuses:?}");
    // The envelope: the burst plus what refilled meanwhile (0.001/s).
    let envelope = 50 + (0.001 * elapsed).floor() as u64;
    assert_eq!(admitted, envelope);
    let s = stats(&be);
    let at_backend: u64 = s["users"]["carol"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(at_backend, admitted, "{s}");
}

#[test]
fn c_redis_down_fails_open_or_closed_and_recovers() {
    let redis = testkit::RedisServer::start().unwrap();
    let dir = TempDir::new("c");
    let open_cfg = dir.write(
        "open.toml",
        &redis_config(&redis.url(), "100ms", "fail-open", 3),
    );
    let closed_cfg = dir.write(
        "closed.toml",
        &redis_config(&redis.url(), "100ms", "fail-closed", 3),
    );
    let be = backend(&[]);
    let open = gateway(&open_cfg, &be);
    let closed = gateway(&closed_cfg, &be);

    // Both gateways share the user's bucket in Redis: 3 admitted, then 429 on both.
    let statuses: Vec<u16> = (0..4)
        .map(|i| {
            get(
                if i % 2 == 0 { open.addr } else { closed.addr },
                "/api/orders/1",
                Some("dave"),
            )
            .status
        })
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(get(open.addr, "/api/orders/1", Some("dave")).status, 429);

    redis.kill();
    // Timeout 100 ms: answers come within it plus a generous margin for a loaded machine.
    // A user Redis never refused (dave's refusal is still known locally until its retry
    // instant, store mode docs: local denials).
    let margin = Duration::from_millis(100 + 1500);
    for _ in 0..5 {
        let t = Instant::now();
        let res = get(open.addr, "/api/orders/1", Some("frank"));
        assert_eq!(res.status, 200, "fail-open: {res:?}");
        assert!(t.elapsed() < margin, "fail-open took {:?}", t.elapsed());

        let t = Instant::now();
        let res = get(closed.addr, "/api/orders/1", Some("frank"));
        assert_eq!(res.status, 503, "fail-closed: {res:?}");
        assert!(res.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
        assert!(res.body.contains("unavailable"), "{}", res.body);
        assert!(t.elapsed() < margin, "fail-closed took {:?}", t.elapsed());
    }
    let m = get(closed.admin(), "/metrics", None).body;
    assert!(m.contains("policy=\"fail-closed\"} 5"), "{m}");

    // Redis back (empty): the limit is enforced again — within a few seconds, 429s return
    // on both gateways.
    redis.restart().unwrap();
    for gw in [&closed, &open] {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let status = get(gw.addr, "/api/orders/1", Some("erin")).status;
            if status == 429 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no 429 after Redis came back (last {status})"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn d_a_malformed_config_fails_with_file_line_and_key() {
    let dir = TempDir::new("d");
    let cases = [
        (
            "algo.toml",
            "[[route]]\npath = \"/a\"\nalgorithm = \"leaky-bucket\"\nlimit = 1\nwindow = \"1s\"\n",
            3,
            "route[1].algorithm",
        ),
        (
            "zero.toml",
            "listen = \"127.0.0.1:0\"\n\n[[route]]\npath = \"/a\"\nalgorithm = \"gcra\"\ncapacity = 0\nrefill_per_sec = 1\n",
            6,
            "route[1].capacity",
        ),
        (
            "rate.toml",
            "[[route]]\npath = \"/a\"\nalgorithm = \"token-bucket\"\ncapacity = 5\nrefill_per_sec = -1\n",
            5,
            "route[1].refill_per_sec",
        ),
        (
            "key.toml",
            "[store]\nkind = \"memory\"\ntimeout = 5\n",
            3,
            "store.timeout",
        ),
        (
            "url.toml",
            "[store]\nkind = \"redis\"\nurl = \"localhost:6379\"\n",
            3,
            "store.url",
        ),
        (
            "backend.toml",
            "\nbackend = \"htp:/nowhere\"\n",
            2,
            "backend",
        ),
    ];
    for (name, text, line, key) in cases {
        let path = dir.write(name, text);
        let out = Command::new(env!("CARGO_BIN_EXE_ratelab"))
            .args(["gateway", "--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} started");
        let located = format!("{}:{line}:", path.display());
        assert!(stderr.contains(&located), "{name}: {stderr}");
        assert!(stderr.contains(key), "{name}: {stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ratelab"))
        .args(["gateway", "--config", "/nonexistent/gw.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/gw.toml"));
}

#[test]
fn e_slow_and_oversized_clients_are_refused_without_hurting_others() {
    let dir = TempDir::new("e");
    let config = dir.write(
        "gw.toml",
        "[server]\nheader_read_timeout = \"3s\"\nmax_header_bytes = 8192\nmax_body_bytes = 1000\n\n\
         [default]\nalgorithm = \"fixed-window\"\nlimit = 100000\nwindow = \"1s\"\n\
         [identity]\ntrusted_proxies = [\"127.0.0.1\"]\n",
    );
    let be = backend(&[]);
    let gw = gateway(&config, &be);

    // Slow clients: half a request head each, then silence.
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(gw.addr).unwrap();
            s.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nx-user-id: slo")
                .unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    // Others are served meanwhile: every request completes while the slow clients are
    // still connected (their timeout is 3 s).
    for _ in 0..5 {
        assert_eq!(get(gw.addr, "/ok", Some("u")).status, 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The slow clients are cut off after the header read timeout.
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        assert!(
            buf.is_empty() || String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 408"),
            "{buf:?}"
        );
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(2900) && waited < Duration::from_secs(10),
        "{waited:?}"
    );

    // An oversized head: 431 (or a closed connection), never a crash.
    let huge = format!(
        "GET /big HTTP/1.1\r\nhost: x\r\nx-filler: {}\r\nconnection: close\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    if let Ok(res) = raw(gw.addr, huge.as_bytes()) {
        assert_eq!(res.status, 431, "{res:?}");
    }
    // An over-long identity: 400.
    let res = get(gw.addr, "/ok", Some(&"i".repeat(300)));
    assert_eq!(res.status, 400, "{res:?}");
    assert!(res.body.contains("identity too long"), "{}", res.body);
    // An oversized body: 413.
    let body = "b".repeat(5000);
    let req = format!(
        "POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(raw(gw.addr, req.as_bytes()).unwrap().status, 413);
    // Garbage: a 400, and the gateway lives on.
    if let Ok(res) = raw(gw.addr, b"\x16\x03\x01garbage\r\n\r\n") {
        assert_eq!(res.status, 400);
    }
    assert_eq!(get(gw.addr, "/ok", Some("u")).status, 200);
    assert_eq!(get(gw.admin(), "/healthz", None).status, 200);
}

#[test]
fn f_sigterm_drains_in_flight_requests() {
    let dir = TempDir::new("f");
    let config = dir.write("gw.toml", "");
    let be = backend(&["--latency", "700"]);
    let mut gw = gateway(&config, &be);
    let addr = gw.addr;
    let inflight = std::thread::spawn(move || get(addr, "/slow", Some("u")));
    std::thread::sleep(Duration::from_millis(200));
    gw.terminate();
    let res = inflight.join().unwrap();
    assert_eq!(res.status, 200, "the in-flight request finished");
    assert!(gw.wait_exit(Duration::from_secs(5)).success());
    assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
}
