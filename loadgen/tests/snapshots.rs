//! `ratelab simulate --algorithms all` on every built-in workload, compared byte for
//! byte with the committed `results.json` in `tests/snapshots/<workload>.json`.
//!
//! The guarantee: a refactoring that changes any simulated figure of any algorithm
//! fails here, naming the workload, the algorithm and the first line that differs.
//!
//! The comparison is per algorithm: an algorithm that the snapshot does not hold yet (a
//! newly registered one) is left out of the bytes compared and reported as an
//! addition, so adding an algorithm to `all` never fails this test while the existing
//! algorithms' entries must stay byte-identical. An algorithm the snapshot holds but
//! the run no longer produces is a failure.
//!
//! To record the snapshots on purpose (a deliberate change of figures, or to add a new
//! algorithm's entry), run with `UPDATE_SNAPSHOTS=1`:
//!
//! ```text
//! UPDATE_SNAPSHOTS=1 cargo test -p loadgen --test snapshots
//! ```
//!
//! and say in the commit message why the numbers moved.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use loadgen::workload::BUILTINS;
use loadgen::{SimAlgorithm, Simulation, Workload};
use results::Results;

/// Where the snapshot of `workload` lives.
fn snapshot_path(workload: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{workload}.json"))
}

/// What `ratelab simulate --workload NAME --algorithms all` computes, with no
/// deployment flags (the workload's own deployment and seed), before it is written.
fn simulate_all(workload: &str) -> Results {
    let w = Workload::load(workload).unwrap();
    let seed = w.seed;
    let algorithms = SimAlgorithm::parse_list("all").unwrap();
    let sim = Simulation::new(w, seed).unwrap();
    sim.run(&algorithms, &mut |_| {}).unwrap().results
}

/// The algorithm names of a snapshot's runs, in order.
fn snapshot_algorithms(json: &str, path: &std::path::Path) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    v["runs"]
        .as_array()
        .unwrap_or_else(|| panic!("{} has no runs array", path.display()))
        .iter()
        .map(|r| r["algorithm"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Which run (by algorithm) a 1-based line of a results.json falls in, if any: runs
/// are pretty-printed in order, each opening with its `"algorithm"` field.
fn algorithm_at_line(json: &str, line: usize) -> Option<String> {
    json.lines()
        .take(line)
        .filter_map(|l| l.trim().strip_prefix("\"algorithm\": \""))
        .last()
        .map(|rest| rest.trim_end_matches([',', '"']).to_owned())
}

/// A readable account of the first difference between `expected` and `actual`.
fn first_difference(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let line = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    let from = line.saturating_sub(3);
    let mut out = format!(
        "first difference at line {} (in the run of {}):\n",
        line + 1,
        algorithm_at_line(expected, line + 1).map_or_else(
            || "no algorithm: the header".to_owned(),
            |a| format!("{a:?}")
        )
    );
    for (i, l) in e.iter().enumerate().skip(from).take(line - from) {
        out.push_str(&format!("   {:>6}   {l}\n", i + 1));
    }
    for l in e.iter().skip(line).take(4) {
        out.push_str(&format!("   snapshot - {l}\n"));
    }
    for l in a.iter().skip(line).take(4) {
        out.push_str(&format!("   now      + {l}\n"));
    }
    if e.len() != a.len() {
        out.push_str(&format!(
            "   ({} lines in the snapshot, {} now)\n",
            e.len(),
            a.len()
        ));
    }
    out
}

/// Simulates `workload` and compares with (or, under `UPDATE_SNAPSHOTS=1`, records)
/// its snapshot.
fn check(workload: &str) {
    let results = simulate_all(workload);
    let path = snapshot_path(workload);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, results.to_json()).unwrap();
        eprintln!("recorded {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "no snapshot for workload {workload:?} at {} ({e}): record it with UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    let known = snapshot_algorithms(&expected, &path);
    let produced: Vec<String> = results.runs.iter().map(|r| r.algorithm.clone()).collect();
    let missing: Vec<&String> = known.iter().filter(|a| !produced.contains(a)).collect();
    assert!(
        missing.is_empty(),
        "workload {workload:?}: the snapshot has runs of {missing:?} that `--algorithms all` no longer produces (now: {produced:?})"
    );
    // New algorithms are additions: compare the bytes of the ones the snapshot knows.
    let added: Vec<&String> = produced.iter().filter(|a| !known.contains(a)).collect();
    let mut compared = results.clone();
    compared.runs.retain(|r| known.contains(&r.algorithm));
    let actual = compared.to_json();
    if actual != expected {
        panic!(
            "workload {workload:?}: results.json differs from {} — the simulated figures changed.\n{}\nIf the change is intended, record it with UPDATE_SNAPSHOTS=1 and say why in the commit.",
            path.display(),
            first_difference(&expected, &actual)
        );
    }
    if !added.is_empty() {
        eprintln!(
            "workload {workload:?}: {added:?} not in the snapshot yet (an addition, not compared); record with UPDATE_SNAPSHOTS=1"
        );
    }
}

#[test]
fn seed_is_unchanged() {
    check("seed");
}

#[test]
fn boundary_is_unchanged() {
    check("boundary");
}

#[test]
fn onoff_is_unchanged() {
    check("onoff");
}

#[test]
fn api_mix_is_unchanged() {
    // The largest built-in: 1.3 million arrivals over 10,000 users and five endpoints.
    check("api-mix");
}

#[test]
fn every_builtin_has_a_test_and_a_snapshot() {
    let tested = ["seed", "boundary", "onoff", "api-mix"];
    for (name, _) in BUILTINS {
        assert!(
            tested.contains(&name),
            "built-in workload {name:?} has no snapshot test: add one above"
        );
        assert!(
            snapshot_path(name).is_file()
                || std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1"),
            "built-in workload {name:?} has no snapshot: record it with UPDATE_SNAPSHOTS=1"
        );
    }
    let dir = snapshot_path("x").parent().unwrap().to_owned();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries {
            let file = entry.unwrap().file_name().to_string_lossy().into_owned();
            let stem = file.trim_end_matches(".json");
            assert!(
                BUILTINS.iter().any(|(n, _)| *n == stem),
                "{}: a snapshot of no built-in workload",
                dir.join(&file).display()
            );
        }
    }
}
