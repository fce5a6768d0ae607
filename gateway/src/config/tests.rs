//! The configuration's acceptance tests: the design's example, errors located at the
//! parser's spans (in `[[route]]` tables, inline tables and arrays alike), durations and
//! Redis URLs.

use std::time::Duration;

use limiter_core::Kind;

use super::validate::check_redis_url;
use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse("gw.toml", text)
}

#[test]
fn the_design_example_parses() {
    let c = parse(
        r#"
listen  = "127.0.0.1:8080"
backend = "http://127.0.0.1:9000"

[identity]
header = "x-user-id"

[store]
kind       = "redis"
url        = "redis://127.0.0.1:6379"
timeout    = "50ms"
on_error   = "fail-closed"

[[route]]
path      = "/api/orders/{id}"
algorithm = "token-bucket"
capacity  = 20
refill_per_sec = 10

[[route]]
path      = "/api/search"
algorithm = "fixed-window"
limit     = 100
window    = "60s"
cost      = 2

[default]
algorithm = "gcra"
capacity = 5
refill_per_sec = 0.083
"#,
    )
    .unwrap();
    assert_eq!(c.routes.len(), 2);
    assert_eq!(c.routes[1].limit.cost, 2);
    assert_eq!(
        c.routes[1].limit.limits[0].policy().unwrap().quota.limit(),
        100
    );
    assert_eq!(c.store.on_error, FailurePolicy::FailClosed);
    assert_eq!(c.store.timeout, Duration::from_millis(50));
    assert!(matches!(c.store.kind, StoreKind::Redis { .. }));
    assert_eq!(
        c.default.unwrap().limits[0].policy().unwrap().kind,
        Kind::Gcra
    );
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn errors_name_file_line_and_key() {
    let e = err("listen = \"127.0.0.1:1\"\n[[route]]\npath = \"/a\"\nalgorithm = \"leaky\"\n");
    assert!(e.starts_with("gw.toml:4:"), "{e}");
    assert!(e.contains("route[1].algorithm"), "{e}");
    assert!(e.contains("leaky"), "{e}");
    assert!(e.contains("bucketed-window, or concurrency)"), "{e}");

    let e = err(
        "[[route]]\npath = \"/a\"\nalgorithm = \"gcra\"\ncapacity = 1\nrefill_per_sec = 1\n[[route]]\npath = \"/b\"\nalgorithm = \"token-bucket\"\ncapacity = 0\nrefill_per_sec = 1\n",
    );
    assert!(e.starts_with("gw.toml:9:"), "{e}");
    assert!(
        e.contains("route[2].capacity: capacity must be at least 1"),
        "{e}"
    );

    let e = err(
        "[[route]]\npath = \"/a\"\nalgorithm = \"gcra\"\ncapacity = 1\nrefill_per_sec = -2.5\n",
    );
    assert!(e.starts_with("gw.toml:5:"), "{e}");
    assert!(e.contains("route[1].refill_per_sec"), "{e}");

    let e = err("[store]\nkind = \"memory\"\ncolour = 3\n");
    assert!(e.starts_with("gw.toml:3:"), "{e}");
    assert!(e.contains("store.colour"), "{e}");
    assert!(e.contains("unknown field"), "{e}");

    let e = err("backend = \"ftp://x\"\n");
    assert!(e.starts_with("gw.toml:1:"), "{e}");
    assert!(e.contains("backend:"), "{e}");

    let e = err("[store]\nkind = \"redis\"\nurl = \"http://localhost\"\n");
    assert!(
        e.starts_with("gw.toml:3:") && e.contains("store.url"),
        "{e}"
    );

    let e = err(
        "[[route]]\npath = \"/a\"\nalgorithm = \"fixed-window\"\nlimit = 5\nwindow = \"10 parsecs\"\n",
    );
    assert!(e.contains("route[1].window") && e.contains("unit"), "{e}");

    let e = err("[[route]]\npath = \"/a\"\nalgorithm = \"fixed-window\"\nlimit = 5\n");
    assert!(e.contains("needs `window`"), "{e}");

    let e = err(
        "[[route]]\npath = \"/a\"\nalgorithm = \"fixed-window\"\nlimit = 5\nwindow = \"1s\"\ncapacity = 3\n",
    );
    assert!(
        e.contains("route[1].capacity") && e.contains("does not apply"),
        "{e}"
    );

    let e = err("listen = [1,\n");
    assert!(e.starts_with("gw.toml:"), "{e}");
}

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
    assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
    assert!(parse_duration("5").is_err());
    assert!(parse_duration("s").is_err());
    assert!(parse_duration("1e400s").is_err());
    assert!(parse_duration("5 fortnights").is_err());
}

#[test]
fn old_keys_are_refused_with_their_new_name() {
    let e = err("[store]\nkind = \"memory\"\ntimeout_ms = 50\n");
    assert!(
        e.starts_with("gw.toml:3:") && e.contains("store.timeout_ms"),
        "{e}"
    );
    assert!(e.contains("timeout = \"50ms\""), "{e}");
    let c = parse("[store]\ntimeout = \"1m30s\"\nsweep_interval = \"1d\"\n").unwrap();
    assert_eq!(c.store.timeout, Duration::from_secs(90));
    assert_eq!(c.store.sweep_interval, Duration::from_secs(86_400));
}

#[test]
fn inline_tables_and_arrays_point_at_the_right_key() {
    let text = "route = [\n  { path = \"/a\", algorithm = \"gcra\", capacity = 1, refill_per_sec = 1 },\n  { path = \"/b\", algorithm = \"gcra\", capacity = 0, refill_per_sec = 1 },\n]\n";
    let e = parse(text).unwrap_err();
    assert_eq!((e.line, e.key.as_str()), (3, "route[2].capacity"), "{e}");
    let line = text.lines().nth(2).unwrap();
    let value = line.find("capacity = 0").unwrap() + "capacity = ".len();
    assert_eq!(e.column, value + 1, "{e}");

    let text = "[[route]]\npath = \"/a\"\nalgorithm = \"fixed-window\"\nlimit = 1\nwindow = \"1s\"\n[[route]]\npath = \"/b\"\nalgorithm = \"fixed-window\"\nlimit = 1\nwindow = \"1 parsec\"\n";
    let e = parse(text).unwrap_err();
    assert_eq!((e.line, e.key.as_str()), (10, "route[2].window"), "{e}");

    let text = "[store]\nkind = \"redis-cluster\"\nurls = [\"redis://127.0.0.1:7000\",\n        \"redis://h:port\"]\n";
    let e = parse(text).unwrap_err();
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (4, 9, "store.urls[2]"),
        "{e}"
    );

    let text = "[default]\nalgorithm = \"gcra\"\ncapacity = 2\nrefill_per_sec = 1\ncost = 3\n";
    let e = parse(text).unwrap_err();
    assert_eq!((e.line, e.key.as_str()), (5, "default.cost"), "{e}");
}

#[test]
fn redis_urls() {
    assert!(check_redis_url("redis://127.0.0.1:6379").is_ok());
    assert!(check_redis_url("redis://:pw@host:1/0").is_ok());
    assert!(check_redis_url("redis://").is_err());
    assert!(check_redis_url("redis://h:port").is_err());
    assert!(check_redis_url("127.0.0.1:6379").is_err());
    assert!(check_redis_url("http://localhost").is_err());
    assert!(check_redis_url("redis://user:pw@host/2").is_ok());
    // The redis crate is built without TLS: the store could not connect, so refuse now.
    let e = check_redis_url("rediss://host").unwrap_err();
    assert!(e.contains("is not a Redis URL"), "{e}");
}

#[test]
fn the_bucketed_window_takes_buckets() {
    let route =
        "[[route]]\npath = \"/a\"\nalgorithm = \"bucketed-window\"\nlimit = 100\nwindow = \"1m\"\n";
    let c = parse(route).unwrap();
    assert_eq!(
        c.routes[0].limit.limits[0]
            .policy()
            .unwrap()
            .param("buckets"),
        Some(10)
    );
    let c = parse(&format!("{route}buckets = 6\n")).unwrap();
    assert_eq!(
        c.routes[0].limit.limits[0].policy().unwrap().kind,
        Kind::BucketedWindow
    );
    assert_eq!(
        c.routes[0].limit.limits[0]
            .policy()
            .unwrap()
            .param("buckets"),
        Some(6)
    );
    let e = err(&format!("{route}buckets = 0\n"));
    assert!(
        e.starts_with("gw.toml:6:") && e.contains("route[1].buckets"),
        "{e}"
    );
    let e = err(&format!("{route}buckets = 100000\n"));
    assert!(
        e.starts_with("gw.toml:6:") && e.contains("route[1].buckets"),
        "{e}"
    );
    let fixed = route.replace("bucketed-window", "fixed-window");
    let e = err(&format!("{fixed}buckets = 6\n"));
    assert!(
        e.contains("route[1].buckets: `buckets` does not apply to fixed-window"),
        "{e}"
    );
}

#[test]
fn several_limits_tiers_modes_and_global_limits_parse() {
    let c = parse(
        r#"
[[route]]
path   = "/api/search"
cost   = 2
mode   = "shadow"
shadow_headers = true
limits = [
  { name = "burst",  algorithm = "gcra", capacity = 20, refill_per_sec = 10 },
  { name = "hourly", algorithm = "sliding-window", limit = 1000, window = "1h" },
]
[route.tiers.pro]
limits = [{ name = "burst", algorithm = "gcra", capacity = 200, refill_per_sec = 100 }]

[[route]]
path = "/api/orders/{id}"
algorithm = "token-bucket"
capacity = 20
refill_per_sec = 10
[route.tiers.pro]
capacity = 200
[route.tiers.free]
algorithm = "fixed-window"
limit = 5
window = "1m"

[[global]]
name = "daily"
algorithm = "fixed-window"
limit = 10000
window = "1d"
"#,
    )
    .unwrap();
    let search = &c.routes[0].limit;
    assert_eq!(search.limits.len(), 2);
    assert_eq!(search.limits[1].name.as_deref(), Some("hourly"));
    assert_eq!(
        (search.cost, search.mode, search.shadow_headers),
        (2, Mode::Shadow, true)
    );
    assert_eq!(search.tiers["pro"][0].policy().unwrap().capacity(), 200);
    let orders = &c.routes[1].limit;
    assert_eq!(orders.mode, Mode::Enforce);
    // The tier's capacity over the route's refill rate.
    let pro = orders.tiers["pro"][0].policy().unwrap();
    assert_eq!(pro.kind, Kind::TokenBucket);
    assert_eq!(pro.quota, limiter_core::Quota::bucket(200, 10.0).unwrap());
    assert_eq!(
        orders.tiers["free"][0].policy().unwrap().kind,
        Kind::FixedWindow
    );
    assert_eq!(c.global[0].name.as_deref(), Some("daily"));
}

#[test]
fn mistakes_in_limits_name_their_key() {
    let route = |body: &str| format!("[[route]]\npath = \"/a\"\n{body}\n");
    let one = "{ name = \"x\", algorithm = \"gcra\", capacity = 2, refill_per_sec = 1 }";
    for (body, key, says) in [
        (
            "limits = [{ algorithm = \"gcra\", capacity = 2, refill_per_sec = 1 }]".to_string(),
            "route[1].limits[1].name",
            "needs a `name`",
        ),
        (
            format!("limits = [{one}, {one}]"),
            "route[1].limits[2].name",
            "two limits named",
        ),
        (
            format!("algorithm = \"gcra\"\nlimits = [{one}]"),
            "route[1].algorithm",
            "each limit's keys go in its entry",
        ),
        ("limits = []".to_string(), "route[1].limits", "1 to 8 limits"),
        (
            format!("mode = \"loud\"\nlimits = [{one}]"),
            "route[1].mode",
            "unknown mode",
        ),
        (
            format!("cost = 3\nlimits = [{one}]"),
            "route[1].cost",
            "cost must be between 1 and 2",
        ),
        (
            "limits = [{ name = \"x\", cost = 2, algorithm = \"gcra\", capacity = 2, refill_per_sec = 1 }]".to_string(),
            "route[1].limits[1].cost",
            "belongs to the route",
        ),
        (
            format!("limits = [{one}]\n[route.tiers.pro]\ncapacity = 5"),
            "route[1].tiers.pro.limits",
            "its tiers give `limits",
        ),
        (
            "algorithm = \"gcra\"\ncapacity = 2\nrefill_per_sec = 1\n[route.tiers.pro]\nlimit = 5".to_string(),
            "route[1].tiers.pro.limit",
            "does not apply to gcra",
        ),
    ] {
        let e = err(&route(&body));
        assert!(e.contains(key) && e.contains(says), "{body}\n=> {e}");
    }
    let e = err(&format!(
        "{}[[global]]\nname = \"x\"\nalgorithm = \"gcra\"\ncapacity = 2\nrefill_per_sec = 1\n",
        route(&format!("limits = [{one}]"))
    ));
    assert!(
        e.contains("global[1].name") && e.contains("already has a limit named"),
        "{e}"
    );
    let e = err("[[global]]\nalgorithm = \"gcra\"\ncapacity = 2\nrefill_per_sec = 1\n");
    assert!(
        e.contains("global[1].name") && e.contains("needs a `name`"),
        "{e}"
    );
}

#[test]
fn store_modes_parse_and_refuse_what_they_cannot_enforce() {
    use limiter_core::store::mode::{LeaseOptions, StoreMode};
    let redis = "[store]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\n";
    let bucket =
        "[[route]]\npath = \"/a\"\nalgorithm = \"gcra\"\ncapacity = 5\nrefill_per_sec = 1\n";
    let c = parse(&format!(
        "{redis}mode = \"lease\"\nlease = {{ max = 16, ttl = \"250ms\" }}\n{bucket}"
    ))
    .unwrap();
    let want = LeaseOptions::new(16, Duration::from_millis(250)).unwrap();
    assert_eq!(c.store.mode, StoreMode::Lease(want));
    let c = parse(&format!("{redis}mode = \"lease\"\n{bucket}")).unwrap();
    assert_eq!(c.store.mode, StoreMode::Lease(LeaseOptions::default()));
    assert_eq!(parse(redis).unwrap().store.mode, StoreMode::Exact);

    let e = err(&format!(
        "{redis}mode = \"lease\"\n[[route]]\npath = \"/w\"\nalgorithm = \"fixed-window\"\nlimit = 5\nwindow = \"1m\"\n"
    ));
    assert!(e.starts_with("gw.toml:7:"), "{e}");
    assert!(
        e.contains("route[1].algorithm") && e.contains("fixed-window"),
        "{e}"
    );
    let e = err(&format!("{redis}mode = \"sync\"\n"));
    assert!(
        e.starts_with("gw.toml:4:") && e.contains("store.mode"),
        "{e}"
    );
    let e = err(&format!("{redis}mode = \"lease\"\nlease = {{ max = 0 }}\n"));
    assert!(e.contains("store.lease.max"), "{e}");
    let e = err(&format!(
        "{redis}mode = \"lease\"\nlease = {{ max = 4, size = 2 }}\n"
    ));
    assert!(e.contains("unknown field"), "{e}");
    let e = err(&format!("{redis}lease = {{ max = 4 }}\n"));
    assert!(
        e.contains("store.lease: `lease` applies to mode = \"lease\""),
        "{e}"
    );
    let e = err("[store]\nkind = \"memory\"\nmode = \"lease\"\n");
    assert!(e.contains("store.mode") && e.contains("redis"), "{e}");
}

#[test]
fn hardening_words_parse_and_a_budget_too_small_for_one_key_is_refused() {
    let c = parse(
        "[store]\nmax_keys = 1000\nmax_bytes = 1048576\nat_capacity = \"deny\"\n[server]\nbody_idle_timeout = \"2s\"\nmax_connections_per_ip = 8\nmax_backend_connections = 64\n[[route]]\npath = \"/API/x\"\ncase_insensitive = true\nalgorithm = \"gcra\"\ncapacity = 1\nrefill_per_sec = 1\n",
    )
    .unwrap();
    let cap = c.store.capacity();
    assert_eq!(
        (cap.max_keys, cap.max_bytes, cap.at_capacity),
        (1000, Some(1 << 20), AtCapacity::Deny)
    );
    assert_eq!(c.server.body_idle_timeout, Duration::from_secs(2));
    assert_eq!(c.server.max_connections_per_ip, Some(8));
    assert_eq!(c.server.max_backend_connections, 64);
    assert!(c.routes[0].path.is_case_insensitive());

    // A sliding log of 100,000 keeps up to 16 bytes per admission: 2 MB for one key.
    let e = err(
        "[store]\nmax_bytes = 1048576\n[[route]]\npath = \"/a\"\nalgorithm = \"sliding-log\"\nlimit = 100000\nwindow = \"1h\"\n",
    );
    assert!(e.starts_with("gw.toml:2:"), "{e}");
    assert!(
        e.contains("store.max_bytes") && e.contains("route /a"),
        "{e}"
    );
    assert!(e.contains("cannot hold one key"), "{e}");

    let e = err("[store]\nat_capacity = \"lru\"\n");
    assert!(
        e.starts_with("gw.toml:2:") && e.contains("store.at_capacity"),
        "{e}"
    );
    let e = err(
        "[default]\nalgorithm = \"gcra\"\ncapacity = 1\nrefill_per_sec = 1\ncase_insensitive = true\n",
    );
    assert!(e.contains("default.case_insensitive"), "{e}");
}

#[test]
fn concurrency_limits_take_limit_and_lease_ttl() {
    use limiter_core::limits::{InFlight, Rule};
    let c = parse(
        r#"
[[route]]
path = "/upload"
limits = [
  { name = "burst", algorithm = "gcra", capacity = 5, refill_per_sec = 1 },
  { name = "slots", algorithm = "concurrency", limit = 2, lease_ttl = "10s" },
]
[[route]]
path = "/stream"
algorithm = "concurrency"
limit = 4
"#,
    )
    .unwrap();
    let upload = &c.routes[0].limit.limits;
    let ten = InFlight::new(2)
        .unwrap()
        .with_lease_ttl(Duration::from_secs(10))
        .unwrap();
    assert_eq!(upload[1].rule, Rule::InFlight(ten));
    assert!(upload[1].policy().is_none() && upload[0].policy().is_some());
    assert_eq!(
        c.routes[1].limit.limits[0].rule,
        Rule::InFlight(InFlight::new(4).unwrap())
    );

    let e = err("[[route]]\npath = \"/a\"\nalgorithm = \"concurrency\"\nwindow = \"1s\"\n");
    assert!(e.contains("route[1].window"), "{e}");
    let e = err("[[route]]\npath = \"/a\"\nalgorithm = \"concurrency\"\n");
    assert!(e.contains("concurrency needs `limit`"), "{e}");
    let e = err("[[route]]\npath = \"/a\"\nalgorithm = \"concurrency\"\nlimit = 0\n");
    assert!(
        e.starts_with("gw.toml:4:") && e.contains("route[1].limit"),
        "{e}"
    );
    let e = err(
        "[[route]]\npath = \"/a\"\nalgorithm = \"concurrency\"\nlimit = 1\nlease_ttl = \"1ms\"\n",
    );
    assert!(
        e.contains("route[1].lease_ttl") && e.contains("lease_ttl is at least 100ms"),
        "{e}"
    );
    let e = err(
        "[[route]]\npath = \"/a\"\nalgorithm = \"gcra\"\ncapacity = 1\nrefill_per_sec = 1\nlease_ttl = \"1s\"\n",
    );
    assert!(
        e.contains("applies to `algorithm = \"concurrency\"` only"),
        "{e}"
    );
}
