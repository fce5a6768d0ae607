//! `[store] mode` through `ratelab gateway`, as real processes: three gateways in lease
//! mode on one Redis (and on a Redis Cluster) admit no more than the policy over the run, the backend counts
//! exactly what clients saw admitted, and units left in leases are bounded by
//! N × `lease.max`; a lease mode with a windowed algorithm is refused at start-up with
//! the file, line and key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "gateway_e2e/support.rs"]
mod support;

use std::process::Command;
use std::time::Instant;

use support::{Proc, TempDir, backend, gateway, get, stats};

/// `kind = "redis"` and its `url`.
fn one_redis(url: &str) -> String {
    format!("kind     = \"redis\"\nurl      = \"{url}\"")
}

fn lease_config(store_lines: &str, algorithm_lines: &str) -> String {
    format!(
        r#"
[store]
{store_lines}
timeout  = "2s"
on_error = "fail-closed"
mode     = "lease"
lease    = {{ max = 4, ttl = "30s" }}

[[route]]
path = "/api/orders/{{id}}"
{algorithm_lines}
"#
    )
}

#[test]
fn three_lease_mode_gateways_on_one_redis_stay_within_the_policy() {
    let redis = testkit::RedisServer::start().unwrap();
    three_lease_mode_gateways_stay_within_the_policy(&one_redis(&redis.url()));
}

#[test]
fn three_lease_mode_gateways_on_a_redis_cluster_stay_within_the_policy() {
    let cluster = testkit::RedisCluster::start().unwrap();
    let urls: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let store = format!(
        "kind     = \"redis-cluster\"\nurls     = [{}]",
        urls.join(", ")
    );
    three_lease_mode_gateways_stay_within_the_policy(&store);
}

fn three_lease_mode_gateways_stay_within_the_policy(store_lines: &str) {
    let dir = TempDir::new("lease");
    let bucket = "algorithm = \"gcra\"\ncapacity = 60\nrefill_per_sec = 0.001";
    let config = dir.write("gw.toml", &lease_config(store_lines, bucket));
    let be = backend(&[]);
    let gws: Vec<Proc> = (0..3).map(|_| gateway(&config, &be)).collect();
    let started = Instant::now();
    let addrs: Vec<_> = gws.iter().map(|g| g.addr).collect();
    // 20 client threads per gateway, 10 requests each, one user and route.
    let threads: Vec<_> = (0..60)
        .map(|t| {
            let addr = addrs[t % 3];
            std::thread::spawn(move || {
                (0..10)
                    .map(|i| get(addr, &format!("/api/orders/{t}-{i}"), Some("dave")).status)
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let statuses: Vec<u16> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    let admitted = statuses.iter().filter(|s| **s == 200).count() as u64;
    let refused = statuses.iter().filter(|s| **s == 429).count() as u64;
    assert_eq!(admitted + refused, 600, "{statuses:?}");
    // Over the run: at most the envelope (burst + refill), as in exact mode; at least
    // that less what may be left in three gateways' leases (3 × lease.max).
    let envelope = 60 + (0.001 * elapsed).floor() as u64;
    assert!(
        admitted <= envelope && admitted + 3 * 4 >= envelope,
        "admitted {admitted}, envelope {envelope}"
    );
    let s = stats(&be);
    let at_backend: u64 = s["users"]["dave"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(at_backend, admitted, "{s}");
    // The gateways count what they decided without Redis.
    let local_allowed: u64 = gws
        .iter()
        .map(|g| {
            let metrics = get(g.admin(), "/metrics", None).body;
            metrics
                .lines()
                .find_map(|l| l.strip_prefix("ratelab_gateway_store_local_allowed_total "))
                .unwrap_or_else(|| panic!("no local_allowed counter: {metrics}"))
                .trim()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert!(
        local_allowed > 0 && local_allowed < admitted,
        "{local_allowed}"
    );
}

#[test]
fn a_lease_mode_with_a_windowed_algorithm_is_refused_at_its_algorithm() {
    let dir = TempDir::new("lease-window");
    let window = "algorithm = \"sliding-window\"\nlimit = 10\nwindow = \"1m\"";
    let config = dir.write(
        "gw.toml",
        &lease_config(&one_redis("redis://127.0.0.1:1/"), window),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ratelab"))
        .args(["gateway", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("route[1].algorithm"), "{err}");
    assert!(err.contains("sliding-window"), "{err}");
    assert!(err.contains("gw.toml:"), "{err}");
}
