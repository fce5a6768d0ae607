//! End-to-end tests of a cost known only after the response (`cost_from_response`) and
//! of a cost declared in the request (`cost_from_request`), through `ratelab gateway`
//! and `ratelab backend --cost-header` (a mock LLM backend reporting the tokens each
//! request used), in memory and on Redis:
//! - the backend answers `x-ratelimit-cost: 7` → the key's balance is debited 7 (1
//!   reserved at admission, 6 settled at the response head);
//! - a negative balance → `429` until the refill pays the debt back, then admitted;
//! - a missing or invalid cost header → the reserved cost stands;
//! - the backend unreachable → every reservation refunded (none ever refused);
//! - a declared request cost is believed from a trusted identity only;
//! - on a route with several limits and a global one, every bucket limit settles and
//!   the global request window keeps the reserved cost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "gateway_e2e/support.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::{Proc, TRUST_LOOPBACK, TempDir, backend, get, raw};

/// 10 tokens, one a second; the response's `x-ratelimit-cost` settles each request,
/// `x-request-cost` declares its reservation.
const LLM: &str = r#"
[[route]]
path               = "/llm"
algorithm          = "token-bucket"
capacity           = 10
refill_per_sec     = 1
cost_from_response = "x-ratelimit-cost"
cost_from_request  = "x-request-cost"
"#;

/// The value of `ratelab_gateway_cost_settles_total` for `result` on `/llm`.
fn settles(gw: &Proc, result: &str) -> u64 {
    let metrics = get(gw.admin(), "/metrics", None).body;
    let needle = format!(
        "ratelab_gateway_cost_settles_total{{route=\"/llm\",algorithm=\"token-bucket\",result=\"{result}\"}} "
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(needle.as_str()))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Waits until `result` was counted `n` times (a settle on Redis runs in its own task,
/// after the response is on its way).
fn wait_settles(gw: &Proc, result: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while settles(gw, result) < n {
        assert!(Instant::now() < deadline, "{result} never reached {n}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `r=` of the response's `RateLimit` header.
fn remaining(res: &support::Res) -> u64 {
    let rl = res.header("ratelimit").expect("a RateLimit header");
    let r = rl
        .split(";r=")
        .nth(1)
        .expect("r=")
        .split(';')
        .next()
        .unwrap();
    r.parse().unwrap()
}

/// `GET /llm` as `user` (believed from loopback) or as the client's address, with a
/// declared cost.
fn declare(addr: SocketAddr, user: Option<&str>, cost: &str) -> support::Res {
    let mut req = format!(
        "GET /llm HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\nx-request-cost: {cost}\r\n"
    );
    if let Some(u) = user {
        req.push_str(&format!("x-user-id: {u}\r\n"));
    }
    req.push_str("\r\n");
    raw(addr, req.as_bytes()).unwrap()
}

fn cost_after_the_response(store: &str) {
    let dir = TempDir::new("cost");
    let config = dir.write("gw.toml", &format!("{store}\n{LLM}{TRUST_LOOPBACK}"));
    let be = backend(&["--cost-header", "x-ratelimit-cost"]);
    let gw = support::gateway(&config, &be);

    // 10 → reserve 1 (9 left, as the headers say) → settled at 7: 3 left.
    let res = get(gw.addr, "/llm?cost=7", Some("alice"));
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.header("x-ratelimit-cost"), Some("7"));
    assert_eq!(remaining(&res), 9);
    wait_settles(&gw, "debited", 1);
    // 3 → reserve 1 (2 left, give or take a token of refill) → settled at 4: −1.
    let res = get(gw.addr, "/llm?cost=4", Some("alice"));
    assert_eq!(res.status, 200, "{res:?}");
    assert!((2..=3).contains(&remaining(&res)), "{res:?}");
    wait_settles(&gw, "debited", 2);
    // In debt: refused until two tokens refilled (−1 → +1), then admitted again.
    let refused_at = Instant::now();
    let res = get(gw.addr, "/llm", Some("alice"));
    assert_eq!(res.status, 429, "{res:?}");
    assert_eq!(remaining(&res), 0);
    let retry: u64 = res.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
    let admitted_after = loop {
        let res = get(gw.addr, "/llm", Some("alice"));
        if res.status == 200 {
            break refused_at.elapsed();
        }
        assert_eq!(res.status, 429, "{res:?}");
        assert!(
            refused_at.elapsed() < Duration::from_secs(10),
            "never refilled"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        admitted_after >= Duration::from_millis(900),
        "admitted {admitted_after:?} after a debt of one token"
    );

    // No header, or one that is not a whole number: the reservation stands (1 each).
    let unchanged = settles(&gw, "unchanged");
    let res = get(gw.addr, "/llm?cost=seven", Some("bob"));
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(remaining(&res), 9);
    let res = get(gw.addr, "/llm", Some("bob"));
    assert_eq!((res.status, remaining(&res)), (200, 8), "{res:?}");
    assert_eq!(settles(&gw, "unchanged"), unchanged + 2);

    // A declared cost: believed from a trusted identity (x-user-id through the trusted
    // proxy), ignored from the client's own address; a cost above the burst is a 400.
    let res = declare(gw.addr, Some("carol"), "4");
    assert_eq!((res.status, remaining(&res)), (200, 6), "{res:?}");
    let res = declare(gw.addr, None, "4");
    assert_eq!((res.status, remaining(&res)), (200, 9), "{res:?}");
    let res = declare(gw.addr, Some("carol"), "11");
    assert_eq!(res.status, 400, "{res:?}");
    let res = declare(gw.addr, Some("carol"), "lots");
    assert_eq!((res.status, remaining(&res)), (200, 5), "{res:?}");

    // The backend gone: every request answered 502 is refunded, so dave is never
    // refused however often he tries (12 reservations of a bucket of 10).
    be.terminate();
    let refunded = settles(&gw, "refunded");
    for i in 0..12 {
        let res = get(gw.addr, "/llm?cost=7", Some("dave"));
        assert_eq!(res.status, 502, "request {i}: {res:?}");
        wait_settles(&gw, "refunded", refunded + i + 1);
    }
    assert_eq!(settles(&gw, "failed"), 0);
}

#[test]
fn cost_from_the_response_in_memory() {
    cost_after_the_response("");
}

#[test]
fn cost_from_the_response_on_redis() {
    let redis = testkit::RedisServer::start().unwrap();
    let store = format!(
        "[store]\nkind = \"redis\"\nurl = \"{}\"\ntimeout = \"2s\"\non_error = \"fail-closed\"\n",
        redis.url()
    );
    cost_after_the_response(&store);
}

/// The shipped example is a valid configuration.
#[test]
fn the_cost_example_checks() {
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies/cost.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ratelab"))
        .args(["gateway", "--check", "--config", example.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("configuration ok"), "{text}");
}

/// Several limits and a global one: `/llm` has a per-minute GCRA and a daily token
/// bucket, both in tokens, and every route a `[[global]]` count of requests. The
/// response's cost settles both buckets; the global window keeps counting requests.
const SEVERAL: &str = r#"
[[route]]
path               = "/llm"
cost_from_response = "x-ratelimit-cost"
limits = [
  { name = "minute", algorithm = "gcra",         capacity = 20,  refill_per_sec = 0.001 },
  { name = "day",    algorithm = "token-bucket", capacity = 100, refill_per_sec = 0.001 },
]

[[global]]
name      = "requests"
algorithm = "fixed-window"
limit     = 50
window    = "1d"
"#;

/// `r=` of the list member `name` in the `RateLimit` header.
fn member(res: &support::Res, name: &str) -> u64 {
    let rl = res.header("ratelimit").expect("a RateLimit header");
    let at = rl.find(&format!("\"{name}\";r=")).expect("the member") + name.len() + 5;
    rl[at..].split(';').next().unwrap().parse().unwrap()
}

fn several_limits_settle(store: &str) {
    let dir = TempDir::new("cost-several");
    let config = dir.write("gw.toml", &format!("{store}\n{SEVERAL}{TRUST_LOOPBACK}"));
    let be = backend(&["--cost-header", "x-ratelimit-cost"]);
    let gw = support::gateway(&config, &be);
    let settled = |n| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let m = get(gw.admin(), "/metrics", None).body;
            let needle = "ratelab_gateway_cost_settles_total{route=\"/llm\",algorithm=\"gcra+token-bucket+fixed-window\",result=\"debited\"} ";
            let got = m
                .lines()
                .find_map(|l| l.strip_prefix(needle))
                .map_or(0, |v| v.trim().parse::<u64>().unwrap());
            if got >= n {
                break;
            }
            assert!(Instant::now() < deadline, "{m}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let res = get(gw.addr, "/llm?cost=15", Some("erin"));
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(
        (
            member(&res, "minute"),
            member(&res, "day"),
            member(&res, "requests")
        ),
        (19, 99, 49)
    );
    settled(1);
    // Both buckets paid 15, the request window 1.
    let res = get(gw.addr, "/llm?cost=10", Some("erin"));
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(
        (
            member(&res, "minute"),
            member(&res, "day"),
            member(&res, "requests")
        ),
        (4, 84, 48)
    );
    settled(2);
    // The minute owes 5 (20 − 25): refused, and the refusal names it.
    let res = get(gw.addr, "/llm", Some("erin"));
    assert_eq!(res.status, 429, "{res:?}");
    assert_eq!(member(&res, "minute"), 0);
    assert_eq!(member(&res, "day"), 75);
    assert_eq!(member(&res, "requests"), 48);
}

#[test]
fn several_limits_settle_in_memory() {
    several_limits_settle("");
}

#[test]
fn several_limits_settle_on_redis() {
    let redis = testkit::RedisServer::start().unwrap();
    let store = format!(
        "[store]\nkind = \"redis\"\nurl = \"{}\"\ntimeout = \"2s\"\non_error = \"fail-closed\"\n",
        redis.url()
    );
    several_limits_settle(&store);
}
