//! End-to-end tests of running `ratelab gateway` as an operator would: validating a
//! config with `--check`, the admin listener, starting before Redis is up, and
//! reloading API keys on SIGHUP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "gateway_e2e/support.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{TRUST_LOOPBACK, TempDir, backend, gateway, get, raw};

fn check(config: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ratelab"))
        .args(["gateway", "--check", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ROUTE: &str = "[[route]]\npath = \"/api/orders/{id}\"\nalgorithm = \"gcra\"\ncapacity = 3\nrefill_per_sec = 0.001\n";

#[test]
fn check_validates_the_config_and_its_keys_file_and_exits() {
    let dir = TempDir::new("check");
    let keys = dir.write(
        "keys.toml",
        "[[key]]\nsha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\nidentity = \"acme\"\n",
    );
    let ok = dir.write(
        "ok.toml",
        &format!("{ROUTE}\n[identity]\napi_keys = \"keys.toml\"\ntrusted_proxies = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n\n[identity.per_ip]\nalgorithm = \"fixed-window\"\nlimit = 100\nwindow = \"1m\"\n"),
    );
    let (code, stdout, stderr) = check(&ok);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("configuration ok (1 routes, a per-IP limit)"),
        "{stdout}"
    );
    // The shipped example (and its keys file) is valid.
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gateway.toml");
    let (code, stdout, stderr) = check(&example);
    assert_eq!(code, 0, "{stdout}{stderr}");

    let bad = dir.write(
        "bad.toml",
        &format!("{ROUTE}\n[identity]\ntrusted_proxies = [\"10.0.0.1/8\"]\n"),
    );
    let (code, _, stderr) = check(&bad);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("bad.toml:8:") && stderr.contains("identity.trusted_proxies[1]"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean 10.0.0.0/8"), "{stderr}");

    // A broken keys file is named with its own line and key.
    std::fs::write(&keys, "[[key]]\nsha256 = \"test\"\nidentity = \"acme\"\n").unwrap();
    let (code, _, stderr) = check(&ok);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("keys.toml:2:") && stderr.contains("key[1].sha256"),
        "{stderr}"
    );
    assert!(stderr.contains("64 hex digits"), "{stderr}");
}

#[test]
fn admin_endpoints_live_on_admin_listen_and_the_proxy_port_proxies_everything() {
    let dir = TempDir::new("admin");
    let config = dir.write("gw.toml", &format!("{ROUTE}{TRUST_LOOPBACK}"));
    let be = backend(&[]);
    let gw = gateway(&config, &be);
    assert_eq!(get(gw.admin(), "/healthz", None).body, "ok\n");
    let ready = get(gw.admin(), "/readyz", None);
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, "ready: store: memory\n")
    );
    let m = get(gw.admin(), "/metrics", None);
    assert!(m.body.contains("ratelab_build_info"), "{}", m.body);
    // On the proxy port they are the backend's paths: counted there, not answered here.
    for path in ["/metrics", "/healthz", "/readyz"] {
        let res = get(gw.addr, path, Some("ops"));
        assert_eq!(res.status, 200, "{path}");
        assert!(!res.body.contains("ratelab_"), "{path}: {}", res.body);
    }
    let stats = support::stats(&be);
    assert_eq!(stats["users"]["ops"]["/metrics"], 1, "{stats}");
    assert_eq!(stats["users"]["ops"]["/healthz"], 1, "{stats}");
    // Nothing but the admin paths on the admin port.
    assert_eq!(get(gw.admin(), "/api/orders/1", None).status, 404);
}

/// Redis is down when the gateway starts: under fail-open and local it starts, serves
/// by its policy, says so on /readyz, and takes Redis up by itself when it comes.
#[test]
fn the_gateway_starts_before_redis_and_connects_when_it_comes() {
    let redis = testkit::RedisServer::start().unwrap();
    redis.kill();
    let dir = TempDir::new("before-redis");
    let be = backend(&[]);
    let config = |policy: &str| {
        dir.write(
            &format!("{policy}.toml"),
            &format!(
                "[store]\nkind = \"redis\"\nurl = \"{}\"\ntimeout = \"100ms\"\non_error = \"{policy}\"\n\n{ROUTE}{TRUST_LOOPBACK}",
                redis.url()
            ),
        )
    };
    let open = gateway(&config("fail-open"), &be);
    let local = gateway(&config("local"), &be);

    // fail-open: admitted, no invented rate-limit state.
    for i in 0..5 {
        let res = get(open.addr, &format!("/api/orders/{i}"), Some("early"));
        assert_eq!(res.status, 200, "{res:?}");
        assert!(res.header("ratelimit").is_none(), "{res:?}");
    }
    // local: this instance enforces the policy alone meanwhile.
    let statuses: Vec<u16> = (0..4)
        .map(|i| get(local.addr, &format!("/api/orders/{i}"), Some("early")).status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429]);
    for gw in [&open, &local] {
        let ready = get(gw.admin(), "/readyz", None);
        assert_eq!(ready.status, 200, "{ready:?}");
        assert!(ready.body.contains("redis unreachable"), "{}", ready.body);
    }

    redis.restart().unwrap();
    for gw in [&open, &local] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = get(gw.admin(), "/readyz", None);
            if ready.body == "ready: store: redis reachable\n" {
                break;
            }
            assert!(Instant::now() < deadline, "never reconnected: {ready:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Redis decides now, for both gateways together: 3 for a fresh user, then 429.
    let statuses: Vec<u16> = (0..5)
        .map(|i| {
            let gw = if i % 2 == 0 { &open } else { &local };
            get(gw.addr, &format!("/api/orders/{i}"), Some("late")).status
        })
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let res = get(open.addr, "/api/orders/9", Some("late"));
    assert!(
        res.header("ratelimit").unwrap().contains(";r=0;"),
        "{res:?}"
    );
}

fn sha256_hex(key: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn sighup_reloads_the_api_keys() {
    let dir = TempDir::new("sighup");
    let entry = |key: &str, who: &str| {
        format!(
            "[[key]]\nsha256 = \"{}\"\nidentity = \"{who}\"\n",
            sha256_hex(key)
        )
    };
    let keys = dir.write("keys.toml", &entry("first-key", "acme"));
    let config = dir.write(
        "gw.toml",
        &format!("{ROUTE}require_api_key = true\n\n[identity]\napi_keys = \"keys.toml\"\n"),
    );
    let be = backend(&[]);
    let gw = gateway(&config, &be);
    let with_key = |key: &str| {
        let req = format!(
            "GET /api/orders/1 HTTP/1.1\r\nhost: x\r\nx-api-key: {key}\r\nconnection: close\r\n\r\n"
        );
        raw(gw.addr, req.as_bytes()).unwrap()
    };
    assert_eq!(with_key("first-key").status, 200);
    assert_eq!(with_key("second-key").status, 401);
    assert_eq!(get(gw.addr, "/api/orders/1", None).status, 401);

    std::fs::write(
        &keys,
        format!(
            "{}\n{}",
            entry("first-key", "acme"),
            entry("second-key", "beta")
        ),
    )
    .unwrap();
    gw.hangup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while with_key("second-key").status != 200 {
        assert!(Instant::now() < deadline, "the new key was never accepted");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A broken file on the next reload: the keys in use stay.
    std::fs::write(&keys, "[[key]]\nsha256 = \"broken\"\n").unwrap();
    gw.hangup();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(with_key("first-key").status, 200);
    assert_eq!(with_key("second-key").status, 200);
}
