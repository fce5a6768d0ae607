//! Live reload through `ratelab gateway` as a real process: SIGHUP (memory) and
//! `--watch` (Redis) replace routes and limits under load without failing a request;
//! a limit whose definition did not change keeps every key's state (no allowance
//! regained), a changed one starts fresh in memory (on Redis, same algorithm: its count
//! carries over), and an invalid file keeps the running configuration, counted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "gateway_e2e/support.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::{Proc, TRUST_LOOPBACK, TempDir, backend, get, raw};

fn config(change_limit: u64) -> String {
    format!(
        r#"
[[route]]
path      = "/keep"
algorithm = "fixed-window"
limit     = 5
window    = "1h"

[[route]]
path      = "/change"
algorithm = "fixed-window"
limit     = {change_limit}
window    = "1h"

[[route]]
path   = "/multi"
limits = [
  {{ name = "burst", algorithm = "gcra", capacity = 3, refill_per_sec = 0.001 }},
  {{ name = "hourly", algorithm = "fixed-window", limit = 100, window = "1h" }},
]
{TRUST_LOOPBACK}"#
    )
}

fn statuses(gw: &Proc, path: &str, user: &str, n: usize) -> Vec<u16> {
    (0..n)
        .map(|_| get(gw.addr, path, Some(user)).status)
        .collect()
}

/// Waits until the admin's metrics contain `needle` (5 s at most).
fn wait_metric(gw: &Proc, needle: &str) {
    let start = Instant::now();
    loop {
        let m = get(gw.admin(), "/metrics", None).body;
        if m.contains(needle) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no {needle} in\n{m}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Background load on `/keep` (another user) and an unlimited path: every answer must
/// be 200 or 429, never an error or a dropped connection.
struct Load {
    stop: Arc<AtomicBool>,
    bad: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(gw: &Proc) -> Load {
        let (stop, bad, sent) = (Arc::default(), Arc::default(), Arc::default());
        let threads = (0..2)
            .map(|i| {
                let (stop, bad, sent): (Arc<AtomicBool>, Arc<AtomicU64>, Arc<AtomicU64>) =
                    (Arc::clone(&stop), Arc::clone(&bad), Arc::clone(&sent));
                let addr = gw.addr;
                std::thread::spawn(move || {
                    let path = if i == 0 { "/keep" } else { "/elsewhere" };
                    let req = format!(
                        "GET {path} HTTP/1.1\r\nhost: x\r\nx-user-id: load{i}\r\nconnection: close\r\n\r\n"
                    );
                    // Bounded: at most 20,000 requests per thread, stopped by the test.
                    for _ in 0..20_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                        match raw(addr, req.as_bytes()) {
                            Ok(res) if res.status == 200 || res.status == 429 => {}
                            _ => {
                                bad.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            bad,
            sent,
            threads,
        }
    }

    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        (
            self.sent.load(Ordering::Relaxed),
            self.bad.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn sighup_reloads_under_load_keeping_unchanged_limits() {
    let dir = TempDir::new("reload");
    let path = dir.write("gw.toml", &config(5));
    let be = backend(&[]);
    let gw = support::gateway(&path, &be);
    assert_eq!(
        statuses(&gw, "/keep", "alice", 6),
        [200, 200, 200, 200, 200, 429]
    );
    assert_eq!(
        statuses(&gw, "/change", "alice", 6),
        [200, 200, 200, 200, 200, 429]
    );
    assert_eq!(statuses(&gw, "/multi", "alice", 4), [200, 200, 200, 429]);

    let load = Load::start(&gw);
    std::thread::sleep(Duration::from_millis(100));
    dir.write("gw.toml", &config(10));
    gw.hangup();
    wait_metric(
        &gw,
        "ratelab_gateway_config_reloads_total{result=\"applied\"} 1",
    );
    // Unchanged limits kept every key's state: alice regained nothing.
    assert_eq!(statuses(&gw, "/keep", "alice", 1), [429]);
    assert_eq!(statuses(&gw, "/multi", "alice", 1), [429]);
    // The changed limit starts fresh, with its new quota.
    let change = statuses(&gw, "/change", "alice", 11);
    assert_eq!(
        change.iter().filter(|&&s| s == 200).count(),
        10,
        "{change:?}"
    );
    let res = get(gw.addr, "/change", Some("alice"));
    assert_eq!(
        res.header("ratelimit-policy"),
        Some("\"/change\";q=10;w=3600")
    );

    // A file that does not validate: refused, counted, the running config stays.
    dir.write(
        "gw.toml",
        "[[route]]\npath = \"/change\"\nalgorithm = \"leaky\"\n",
    );
    gw.hangup();
    wait_metric(
        &gw,
        "ratelab_gateway_config_reloads_total{result=\"refused\"} 1",
    );
    let res = get(gw.addr, "/change", Some("alice"));
    assert_eq!(
        (res.status, res.header("ratelimit-policy")),
        (429, Some("\"/change\";q=10;w=3600"))
    );
    assert_eq!(statuses(&gw, "/keep", "alice", 1), [429]);
    let m = get(gw.admin(), "/metrics", None).body;
    // The route's counters carried over the reload.
    assert!(
        m.contains("route=\"/keep\",algorithm=\"fixed-window\",outcome=\"denied\"}"),
        "{m}"
    );

    let (sent, bad) = load.finish();
    assert!(sent > 50, "the load ran: {sent}");
    assert_eq!(bad, 0, "{bad} of {sent} requests failed during reloads");
}

#[test]
fn watch_reloads_on_file_change_on_redis() {
    let redis = testkit::RedisServer::start().unwrap();
    let store = format!(
        "[store]\nkind = \"redis\"\nurl = \"{}\"\ntimeout = \"2s\"\non_error = \"fail-closed\"\n",
        redis.url()
    );
    let dir = TempDir::new("watch");
    let path = dir.write("gw.toml", &format!("{store}{}", config(5)));
    let be = backend(&[]);
    let gw = Proc::start(&[
        "gateway",
        "--config",
        path.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--backend",
        &be.url(),
        "--threads",
        "1",
        "--watch",
        "100ms",
    ]);
    assert_eq!(
        statuses(&gw, "/keep", "alice", 6),
        [200, 200, 200, 200, 200, 429]
    );
    assert_eq!(
        statuses(&gw, "/change", "alice", 6),
        [200, 200, 200, 200, 200, 429]
    );
    assert_eq!(statuses(&gw, "/multi", "alice", 4), [200, 200, 200, 429]);
    // A modification time the watcher cannot miss.
    std::thread::sleep(Duration::from_millis(1_100));
    dir.write("gw.toml", &format!("{store}{}", config(8)));
    wait_metric(
        &gw,
        "ratelab_gateway_config_reloads_total{result=\"applied\"} 1",
    );
    assert_eq!(statuses(&gw, "/keep", "alice", 1), [429]);
    assert_eq!(statuses(&gw, "/multi", "alice", 1), [429]);
    // Same algorithm on Redis: the count carries over into the new quota (5 of 8 spent).
    assert_eq!(statuses(&gw, "/change", "alice", 4), [200, 200, 200, 429]);
    // A [store] change is refused: the store is kept until a restart.
    std::thread::sleep(Duration::from_millis(1_100));
    dir.write("gw.toml", &config(8));
    wait_metric(
        &gw,
        "ratelab_gateway_config_reloads_total{result=\"refused\"} 1",
    );
    assert_eq!(statuses(&gw, "/keep", "alice", 1), [429]);
}
