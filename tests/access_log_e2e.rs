//! The gateway writes its own access log (`[log] access`), and `ratelab simulate
//! --trace --format json` replays it without options: real processes, real sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "gateway_e2e/support.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{TRUST_LOOPBACK, TempDir, backend, gateway, get};

const CONFIG: &str = r#"
[[route]]
path      = "/api/search"
algorithm = "fixed-window"
limit     = 3
window    = "1h"
"#;

#[test]
fn the_gateway_logs_every_request_and_the_log_replays_without_options() {
    let dir = TempDir::new("access-log");
    let config = dir.write(
        "gw.toml",
        &format!("{CONFIG}{TRUST_LOOPBACK}\n[log]\naccess = \"access.jsonl\"\n"),
    );
    let be = backend(&[]);
    let gw = gateway(&config, &be);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(get(gw.addr, "/api/search?q=1", Some("alice")).status);
    }
    statuses.push(get(gw.addr, "/api/search", Some("bob")).status);
    statuses.push(get(gw.addr, "/not/limited", Some("bob")).status);
    assert_eq!(statuses, [200, 200, 200, 429, 429, 200, 200]);

    // The writer flushes within a fraction of a second of the last line.
    let log = dir.0.join("access.jsonl");
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= 7 || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7, "{text}");
    let decisions: Vec<&str> = lines
        .iter()
        .map(|l| l["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        decisions,
        [
            "allowed",
            "allowed",
            "allowed",
            "denied",
            "denied",
            "allowed",
            "unlimited"
        ]
    );
    let denied = &lines[3];
    assert_eq!(denied["identity"], "h:alice");
    assert_eq!(denied["source"], "header");
    assert_eq!(denied["client"], "127.0.0.1");
    assert_eq!(denied["method"], "GET");
    assert_eq!(denied["path"], "/api/search");
    assert_eq!(denied["route"], "/api/search");
    assert_eq!(denied["status"], 429);
    assert_eq!(denied["remaining"], 0);
    assert_eq!(denied["limits"][0]["limit"], 3);
    assert_eq!(denied["limits"][0]["decided_by"], "store");
    assert!(denied["time"].as_str().unwrap().ends_with('Z'));
    assert!(denied["latency_us"].as_u64().is_some());
    assert_eq!(lines[6]["route"], serde_json::Value::Null);

    // Replayed with the same config: the same two refusals, no options.
    let out = Command::new(env!("CARGO_BIN_EXE_ratelab"))
        .args([
            "simulate",
            "--trace",
            "access.jsonl",
            "--format",
            "json",
            "--config",
            "gw.toml",
        ])
        .args([
            "-a",
            "fixed-window,sliding-log",
            "--no-report",
            "--quiet",
            "-o",
            "out",
        ])
        .current_dir(&dir.0)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("out/results.json")).unwrap()).unwrap();
    let trace = &results["trace"];
    assert_eq!(trace["input"]["requests"], 6);
    assert_eq!(trace["input"]["unrouted"], 1);
    assert_eq!(trace["input"]["logged_429"], 2);
    assert_eq!(trace["input"]["malformed"], 0);
    for a in trace["algorithms"].as_array().unwrap() {
        assert_eq!(a["routes"][0]["rejected"], 2, "{a}");
        assert_eq!(a["top_identities"][0]["identity"], "h:alice", "{a}");
    }
}

#[test]
fn hashed_identities_replay_as_identities_and_paths_are_canonical() {
    let dir = TempDir::new("access-log-hash");
    let secret = "a secret of more than sixteen bytes";
    dir.write("log.key", &format!("{secret}\n"));
    let config = dir.write(
        "gw.toml",
        &format!(
            "{CONFIG}{TRUST_LOOPBACK}\n[log]\naccess = \"access.jsonl\"\nidentity = \"hash\"\nhash_key_file = \"log.key\"\n"
        ),
    );
    let be = backend(&[]);
    let gw = gateway(&config, &be);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        // An escaped 's': the gateway matches (and logs) the canonical /api/search.
        statuses.push(get(gw.addr, "/api/%73earch", Some("alice")).status);
    }
    statuses.push(get(gw.addr, "/api/search", Some("bob")).status);
    assert_eq!(statuses, [200, 200, 200, 429, 200]);

    let log = dir.0.join("access.jsonl");
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= 5 || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        !text.contains("alice") && !text.contains("bob") && !text.contains("127.0.0.1"),
        "{text}"
    );
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{text}");
    let key = gateway::access_log::HashKey::new(secret.as_bytes()).unwrap();
    let alice = key.pseudonym("h:alice");
    for l in &lines[..4] {
        assert_eq!(l["identity"], alice.as_str());
        assert_eq!(l["path"], "/api/search", "the canonical path");
        assert_eq!(l["client"], key.pseudonym("ip:127.0.0.1").as_str());
    }
    assert_eq!(lines[4]["identity"], key.pseudonym("h:bob").as_str());
    assert_eq!(lines[3]["decision"], "denied");

    // The replay groups by pseudonym: alice's fourth request is the one refused.
    let out = Command::new(env!("CARGO_BIN_EXE_ratelab"))
        .args(["simulate", "--trace", "access.jsonl", "--format", "json"])
        .args(["--config", "gw.toml", "-a", "fixed-window", "--no-report"])
        .args(["--quiet", "-o", "out"])
        .current_dir(&dir.0)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("out/results.json")).unwrap()).unwrap();
    let trace = &results["trace"];
    assert_eq!(trace["input"]["requests"], 5);
    assert_eq!(trace["input"]["identities"], 2);
    let a = &trace["algorithms"][0];
    assert_eq!(a["routes"][0]["rejected"], 1, "{a}");
    assert_eq!(a["top_identities"][0]["identity"], alice.as_str(), "{a}");
}
