//! End to end (issue 18.2): `ratelab load` through a gateway whose fixed window lives on
//! Redis, or in memory, judges the run on the store's own windows. Both align them to
//! the Unix epoch (Redis by its `TIME`, memory by a Unix-aligned clock), so a run meets
//! three or four of them depending on when it starts; the exact fixed window and the
//! envelope check lay the key's requests on those windows (never "over" when the store
//! kept its promise, across every boundary the run straddles), the boundary burst
//! stays a figure of its own, and the results say where the boundary fell.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "gateway_e2e/support.rs"]
mod support;

use std::process::{Command, Output};

use support::{TempDir, backend, gateway};

fn ratelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ratelab"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run ratelab")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `seed` at time scale 0.05: 4,200 requests in 7.5 s from one user, 5 per 3 s window.
const SCALE: &str = "0.05";

#[test]
fn a_fixed_window_on_redis_is_judged_on_its_epoch_aligned_windows() {
    let redis = testkit::RedisServer::start().unwrap();
    let store = format!(
        "[store]\nkind = \"redis\"\nurl = \"{}\"\ntimeout = \"500ms\"\n\n",
        redis.url()
    );
    judged_on_the_stores_windows("redis", &store);
}

#[test]
fn a_fixed_window_in_memory_is_judged_on_its_epoch_aligned_windows() {
    judged_on_the_stores_windows("memory", "");
}

/// Plays `seed` through a gateway whose fixed window lives on `store_name` (its
/// `[store]` table: `store`) and checks the run is judged on the store's windows.
fn judged_on_the_stores_windows(store_name: &str, store: &str) {
    let dir = TempDir::new(&format!("load-{store_name}-windows"));
    let routes = ratelab(&[
        "load",
        "--workload",
        "seed",
        "--time-scale",
        SCALE,
        "--emit-routes",
        "fixed-window",
    ]);
    assert!(routes.status.success(), "{}", text(&routes.stderr));
    let config = dir.write(
        "gw.toml",
        &format!("{store}{}{}", text(&routes.stdout), support::TRUST_LOOPBACK),
    );
    let be = backend(&[]);
    let gw = gateway(&config, &be);
    let out = dir.0.join("out");
    let run = ratelab(&[
        "load",
        "--target",
        &gw.url(),
        "--admin",
        &gw.admin_url(),
        "--backend",
        &be.admin_url(),
        "--workload",
        "seed",
        "--time-scale",
        SCALE,
        "--store",
        store_name,
        "--driver",
        "open",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = text(&run.stdout);
    assert!(
        run.status.success(),
        "exit {:?}\n{stdout}\n{}",
        run.status,
        text(&run.stderr)
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let run = &results["runs"][0];
    assert_eq!(run["algorithm"], "fixed-window");
    let admitted = run["totals"]["admitted"].as_u64().unwrap();
    let m = &results["measurements"][0];
    let truth = &m["ground_truth"];
    assert_eq!(truth["backend_total"].as_u64(), Some(admitted), "{stdout}");
    // 7.5 s of one user far above 5 per 3 s meets three or four Unix-aligned windows
    // and fills each: 15 or 20, and within the envelope on those windows either way.
    assert!(admitted == 15 || admitted == 20, "{admitted}\n{m:#}");
    assert_eq!(truth["backend_keys_over_envelope"], 0, "{m:#}");
    assert_eq!(truth["client_keys_over_envelope"], 0, "{m:#}");
    // Judged on its own windows: the limiter kept its promise across every boundary
    // the run straddled, so nothing is over; the boundary burst (admissions beyond
    // `limit` per window length, which the sliding log refuses) is its own figure.
    assert_eq!(run["reference"], "exact fixed window", "{m:#}");
    assert_eq!(run["totals"]["over_admission"], 0, "{run:#}");
    assert_eq!(run["totals"]["under_admission"], 0, "{run:#}");
    assert_eq!(run["totals"]["reference_admitted"].as_u64(), Some(admitted));
    assert!(run["totals"]["boundary_burst"].is_u64(), "{run:#}");
    let notes: Vec<&str> = m["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    let note = notes
        .iter()
        .find(|n| n.contains("Unix-epoch aligned"))
        .unwrap_or_else(|| panic!("no note on the store's windows: {notes:?}"));
    // Where the run started in its first window tells how many it met: the boundary
    // the note gives is the one the store used.
    let into: f64 = note
        .split("started ")
        .nth(1)
        .and_then(|rest| rest.split(" s into").next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("{note}"));
    assert!((0.0..3.0).contains(&into), "{note}");
    // Windows met by sends from `into` to `into + 7.5` s (in window units of 3 s); a
    // boundary within 50 ms of either end may fall either side of the decisions.
    let met = |into: f64| ((into + 7.5) / 3.0).floor() as u64 + 1 - u64::from(into >= 3.0);
    let (low, high) = (met(into + 0.05), met((into - 0.05).max(0.0)));
    assert!(
        admitted == 5 * low || admitted == 5 * high,
        "{admitted} admitted, {low}..={high} windows met: {note}"
    );
}
