//! End-to-end tests of `ratelab gateway` policies as real processes over real sockets:
//! several limits on one route plus a global limit, decided all-or-nothing (memory and
//! Redis), with every limit in the rate-limit headers; tiers from the API keys file
//! (memory and Redis); shadow mode per route and `--dry-run` for the whole gateway.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "gateway_e2e/support.rs"]
mod support;

use support::{Proc, TRUST_LOOPBACK, TempDir, backend, get, raw, stats};

/// `/api/search`: bursts of 3 (one token per 1000 s) and 5 an hour; every route: 7 a
/// day per identity (`[[global]]`); `/api/other` has no limit of its own.
const SEVERAL: &str = r#"
[[route]]
path   = "/api/search"
limits = [
  { name = "burst",  algorithm = "gcra", capacity = 3, refill_per_sec = 0.001 },
  { name = "hourly", algorithm = "sliding-window", limit = 5, window = "1h" },
]

[[global]]
name      = "daily"
algorithm = "fixed-window"
limit     = 7
window    = "1d"
"#;

fn users_count(be: &Proc, user: &str) -> u64 {
    let s = stats(be);
    s["users"][user]
        .as_object()
        .map_or(0, |m| m.values().map(|n| n.as_u64().unwrap()).sum())
}

fn several_limits_all_or_nothing(store: &str) {
    let dir = TempDir::new("several");
    let config = dir.write("gw.toml", &format!("{store}\n{SEVERAL}{TRUST_LOOPBACK}"));
    let be = backend(&[]);
    let gw = support::gateway(&config, &be);

    for i in 0..3 {
        let res = get(gw.addr, "/api/search", Some("alice"));
        assert_eq!(res.status, 200, "request {i}: {res:?}");
        assert_eq!(
            res.header("ratelimit-policy"),
            Some("\"burst\";q=3;w=3000, \"hourly\";q=5;w=3600, \"daily\";q=7;w=86400")
        );
        let rl = res.header("ratelimit").unwrap();
        assert!(rl.starts_with(&format!("\"burst\";r={};t=", 2 - i)), "{rl}");
        assert!(rl.contains(&format!("\"hourly\";r={};", 4 - i)), "{rl}");
        assert!(rl.contains(&format!("\"daily\";r={};", 6 - i)), "{rl}");
    }
    // The burst is spent: refused, and neither the hour nor the day is charged.
    for _ in 0..3 {
        let res = get(gw.addr, "/api/search", Some("alice"));
        assert_eq!(res.status, 429, "{res:?}");
        let retry: u64 = res.header("retry-after").unwrap().parse().unwrap();
        assert!((999..=1000).contains(&retry), "the burst's wait: {retry}");
        let rl = res.header("ratelimit").unwrap();
        assert!(rl.contains("\"burst\";r=0;"), "{rl}");
        assert!(rl.contains("\"hourly\";r=2;"), "{rl}");
        assert!(rl.contains("\"daily\";r=4;"), "{rl}");
    }
    // Another route spends only from the day: 4 left of 7.
    for i in 0..4 {
        let res = get(gw.addr, "/api/other", Some("alice"));
        assert_eq!(res.status, 200, "request {i}: {res:?}");
        assert_eq!(
            res.header("ratelimit-policy"),
            Some("\"daily\";q=7;w=86400")
        );
    }
    let res = get(gw.addr, "/api/other", Some("alice"));
    assert_eq!(res.status, 429, "{res:?}");
    let retry: u64 = res.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "{retry}");
    // Now the day refuses /api/search too, whatever its own limits say.
    let res = get(gw.addr, "/api/search", Some("alice"));
    assert_eq!(res.status, 429, "{res:?}");
    // Bob is untouched.
    assert_eq!(get(gw.addr, "/api/search", Some("bob")).status, 200);
    // The backend saw exactly what was admitted.
    assert_eq!(users_count(&be, "alice"), 7);
    let m = get(gw.admin(), "/metrics", None).body;
    assert!(
        m.contains("route=\"/api/search\",algorithm=\"gcra+sliding-window+fixed-window\",outcome=\"denied\"} 4"),
        "{m}"
    );
    // Which limit refused: the burst every time, the day once on each route.
    for needle in [
        "ratelab_gateway_limit_refusals_total{route=\"/api/search\",tier=\"default\",limit=\"burst\"} 4",
        "ratelab_gateway_limit_refusals_total{route=\"/api/search\",tier=\"default\",limit=\"hourly\"} 0",
        "ratelab_gateway_limit_refusals_total{route=\"/api/search\",tier=\"default\",limit=\"daily\"} 1",
        "ratelab_gateway_limit_refusals_total{route=\"*\",tier=\"default\",limit=\"daily\"} 1",
    ] {
        assert!(m.contains(needle), "{needle}\n{m}");
    }
}

#[test]
fn several_limits_and_a_global_one_in_memory() {
    several_limits_all_or_nothing("");
}

#[test]
fn several_limits_and_a_global_one_on_redis() {
    let redis = testkit::RedisServer::start().unwrap();
    let store = format!(
        "[store]\nkind = \"redis\"\nurl = \"{}\"\ntimeout = \"2s\"\non_error = \"fail-closed\"\n",
        redis.url()
    );
    several_limits_all_or_nothing(&store);
}

/// Two per hour on each route; `/shadow` is in shadow mode with headers.
const SHADOW: &str = r#"
[[route]]
path           = "/shadow"
mode           = "shadow"
shadow_headers = true
algorithm      = "fixed-window"
limit          = 2
window         = "1h"

[[route]]
path      = "/enforced"
algorithm = "fixed-window"
limit     = 2
window    = "1h"
"#;

#[test]
fn shadow_routes_decide_and_count_but_never_refuse() {
    let dir = TempDir::new("shadow");
    let config = dir.write("gw.toml", &format!("{SHADOW}{TRUST_LOOPBACK}"));
    let be = backend(&[]);
    let gw = support::gateway(&config, &be);
    for i in 0..5 {
        let res = get(gw.addr, "/shadow", Some("alice"));
        assert_eq!(res.status, 200, "{i}: {res:?}");
        assert!(res.header("retry-after").is_none());
        let r = if i < 2 { 1 - i } else { 0 };
        assert!(
            res.header("ratelimit")
                .unwrap()
                .contains(&format!(";r={r};"))
        );
    }
    let enforced: Vec<u16> = (0..3)
        .map(|_| get(gw.addr, "/enforced", Some("alice")).status)
        .collect();
    assert_eq!(enforced, [200, 200, 429]);
    assert_eq!(users_count(&be, "alice"), 7);
    let m = get(gw.admin(), "/metrics", None).body;
    assert!(
        m.contains("route=\"/shadow\",algorithm=\"fixed-window\",outcome=\"shadow_denied\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("route=\"/shadow\",algorithm=\"fixed-window\",outcome=\"allowed\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("route=\"/enforced\",algorithm=\"fixed-window\",outcome=\"denied\"} 1"),
        "{m}"
    );
}

#[test]
fn dry_run_puts_every_route_in_shadow_mode_without_headers_by_default() {
    let dir = TempDir::new("dry");
    let config = dir.write("gw.toml", &format!("{SHADOW}{TRUST_LOOPBACK}"));
    let be = backend(&[]);
    let gw = Proc::start(&[
        "gateway",
        "--config",
        config.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--backend",
        &be.url(),
        "--threads",
        "1",
        "--admin-listen",
        "127.0.0.1:0",
        "--dry-run",
    ]);
    for i in 0..4 {
        let res = get(gw.addr, "/enforced", Some("alice"));
        assert_eq!(res.status, 200, "{i}: {res:?}");
        // `/enforced` sends no headers when shadow-refused (no `shadow_headers`).
        assert_eq!(res.header("ratelimit").is_some(), i < 2, "{i}: {res:?}");
    }
    assert_eq!(users_count(&be, "alice"), 4);
    let m = get(gw.admin(), "/metrics", None).body;
    assert!(
        m.contains("route=\"/enforced\",algorithm=\"fixed-window\",outcome=\"shadow_denied\"} 2"),
        "{m}"
    );
}

/// Every example configuration, and the keys file it names, passes `ratelab gateway
/// --check`.
#[test]
fn the_example_configs_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files = vec![dir.join("gateway.toml")];
    for entry in std::fs::read_dir(dir.join("policies")).unwrap() {
        let entry = entry.unwrap();
        if entry
            .path()
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("keys"))
        {
            continue;
        }
        files.push(entry.path());
    }
    assert!(files.len() >= 3);
    for f in files {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ratelab"))
            .args(["gateway", "--check", "--config"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn sha256_hex(key: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `GET path` with an API key.
fn get_with_key(gw: &Proc, path: &str, key: &str) -> support::Res {
    let req =
        format!("GET {path} HTTP/1.1\r\nhost: x\r\nx-api-key: {key}\r\nconnection: close\r\n\r\n");
    raw(gw.addr, req.as_bytes()).unwrap()
}

/// Three an hour by default; a `pro` key gets ten; a tier the route does not name
/// (`free`) gets the default; each identity its own quota.
fn tiers_select_their_limits(store: &str) {
    let dir = TempDir::new("tiers");
    dir.write(
        "keys.toml",
        &format!(
            "[[key]]\nsha256 = \"{}\"\nidentity = \"acme\"\ntier = \"pro\"\n\n\
             [[key]]\nsha256 = \"{}\"\nidentity = \"corner-shop\"\ntier = \"free\"\n",
            sha256_hex("pro-key"),
            sha256_hex("free-key")
        ),
    );
    let config = dir.write(
        "gw.toml",
        &format!(
            "{store}\n[identity]\napi_keys = \"keys.toml\"\n\n\
             [[route]]\npath = \"/api/reports\"\nalgorithm = \"fixed-window\"\nlimit = 3\nwindow = \"1h\"\n\
             [route.tiers.pro]\nlimit = 10\n"
        ),
    );
    let be = backend(&[]);
    let gw = support::gateway(&config, &be);
    let statuses = |key: &str, n: usize| -> Vec<u16> {
        (0..n)
            .map(|_| get_with_key(&gw, "/api/reports", key).status)
            .collect()
    };
    let pro = statuses("pro-key", 11);
    assert_eq!(pro.iter().filter(|&&s| s == 200).count(), 10, "{pro:?}");
    assert_eq!(pro[10], 429);
    let res = get_with_key(&gw, "/api/reports", "pro-key");
    assert_eq!(
        res.header("ratelimit-policy"),
        Some("\"/api/reports\";q=10;w=3600")
    );
    let free = statuses("free-key", 4);
    assert_eq!(free, [200, 200, 200, 429]);
    let res = get_with_key(&gw, "/api/reports", "free-key");
    assert_eq!(
        res.header("ratelimit-policy"),
        Some("\"/api/reports\";q=3;w=3600")
    );
    // No key at all: the client IP, the default quota.
    let anonymous: Vec<u16> = (0..4)
        .map(|_| get(gw.addr, "/api/reports", None).status)
        .collect();
    assert_eq!(anonymous, [200, 200, 200, 429]);
    let s = stats(&be);
    assert_eq!(s["total"], 16, "{s}");
}

#[test]
fn tiers_select_their_limits_in_memory() {
    tiers_select_their_limits("");
}

#[test]
fn tiers_select_their_limits_on_redis() {
    let redis = testkit::RedisServer::start().unwrap();
    let store = format!(
        "[store]\nkind = \"redis\"\nurl = \"{}\"\ntimeout = \"2s\"\non_error = \"fail-closed\"\n",
        redis.url()
    );
    tiers_select_their_limits(&store);
}
