//! End-to-end tests of `ratelab simulate` and `ratelab report`, run as the real binary.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh directory under the system's temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ratelab-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ratelab(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ratelab"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn default_simulate_compares_every_algorithm_on_the_seed_workload() {
    let dir = Scratch::new("default");
    let out = ratelab(&["simulate"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("workload seed"), "{stdout}");
    for name in [
        "fixed-window",
        "sliding-log",
        "sliding-window",
        "token-bucket",
        "gcra",
        "seed-replica",
    ] {
        assert!(stdout.contains(name), "{name} missing:\n{stdout}");
    }
    // The original's numbers: the policy allows 17; the replica admits 25.
    let replica = stdout
        .lines()
        .find(|l| l.starts_with("seed-replica"))
        .unwrap();
    assert!(
        replica.contains(" 25 ") && replica.contains("+8 (47.1%)"),
        "{replica}"
    );
    // Piped: no progress bar on stderr.
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let out_dir = dir.path().join("ratelab-out");
    for f in ["results.json", "report.md", "report.html"] {
        assert!(out_dir.join(f).is_file(), "{f}");
    }
    // The HTML report is the Markdown one, self-contained: plots inline as SVG.
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(
        html.contains("<h1>ratelab report: workload <code>seed</code></h1>"),
        "{}",
        &html[..html.len().min(2000)]
    );
    assert!(html.matches("<figure><svg").count() >= 4, "plots inline");
    assert!(
        !html.contains("src=\"http") && !html.contains("admitted.png"),
        "nothing fetched"
    );
    for plot in ["throughput", "admitted", "accuracy", "burst"] {
        for ext in ["png", "svg"] {
            let p = out_dir.join(format!("{plot}.{ext}"));
            assert!(
                std::fs::metadata(&p).unwrap().len() > 1000,
                "{}",
                p.display()
            );
        }
    }
    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(report.contains("![Cumulative admissions over time](admitted.png)"));

    // `report` renders again from results.json alone, elsewhere.
    let again = dir.path().join("again");
    let out = ratelab(
        &[
            "report",
            "--in",
            out_dir.to_str().unwrap(),
            "--out",
            again.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("seed-replica"));
    assert_eq!(
        std::fs::read_to_string(again.join("report.md")).unwrap(),
        report
    );
    assert_eq!(
        std::fs::read_to_string(again.join("report.html")).unwrap(),
        html,
        "the HTML report renders from results.json alone too"
    );
}

#[test]
fn json_is_a_digest_of_the_results_and_the_same_seed_gives_the_same_bytes() {
    let dir = Scratch::new("json");
    let args = |out: &str| {
        [
            "simulate",
            "--workload",
            "boundary",
            "--algorithms",
            "fixed-window,token-bucket",
            "--seed",
            "42",
            "--out",
            out,
            "--json",
            "--no-report",
        ]
        .map(String::from)
    };
    let a = ratelab(&args("a").each_ref().map(String::as_str), dir.path());
    assert!(a.status.success(), "{}", text(&a.stderr));
    let b = ratelab(&args("b").each_ref().map(String::as_str), dir.path());
    assert!(b.status.success(), "{}", text(&b.stderr));
    let digest: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(digest["schema"], "ratelab.digest/1");
    assert_eq!(digest["seed"], 42);
    assert_eq!(digest["complete"], true);
    assert!(
        digest["files"]["results"]
            .as_str()
            .unwrap()
            .ends_with("results.json")
    );
    assert!(digest["files"].get("report").is_none(), "--no-report");

    let file_a = std::fs::read(dir.path().join("a/results.json")).unwrap();
    let file_b = std::fs::read(dir.path().join("b/results.json")).unwrap();
    assert_eq!(file_a, file_b, "same seed, same bytes");
    let json: serde_json::Value = serde_json::from_slice(&file_a).unwrap();
    assert_eq!(json["schema"], "ratelab.results/1");
    assert_eq!(json["workload"]["seed"], 42);
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["algorithm"], "fixed-window");
    assert_eq!(runs[0]["totals"]["burst_ratio"], 2.0);
    assert_eq!(runs[1]["totals"]["envelope_excess"], 0.0);
    // The digest's totals are the results' totals, run for run.
    let digest_runs = digest["runs"].as_array().unwrap();
    assert_eq!(digest_runs.len(), 2);
    for (d, r) in digest_runs.iter().zip(runs) {
        assert_eq!(d["algorithm"], r["algorithm"]);
        assert_eq!(d["totals"], r["totals"]);
        assert!(d["ns_per_decision"].as_f64().is_some());
    }
    for field in [
        "name",
        "offered",
        "admitted",
        "rejected",
        "envelope_excess",
        "over_admission",
        "under_admission",
        "burst_ratio",
        "latency_us",
    ] {
        assert!(runs[0]["phases"][0].get(field).is_some(), "{field}");
    }
    assert!(!dir.path().join("a/report.md").exists(), "--no-report");
}

#[test]
fn a_distributed_deployment_reports_latency() {
    let dir = Scratch::new("dist");
    let out = ratelab(
        &[
            "simulate",
            "--algorithms",
            "gcra,seed-replica",
            "--gateways",
            "3",
            "--skew",
            "2s",
            "--rtt",
            "1ms",
            "--no-report",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("shared: 3 gateways, skew 2s, rtt 1ms"),
        "{stdout}"
    );
    assert!(stdout.contains("p99 µs"), "{stdout}");
}

#[test]
fn store_modes_draw_the_curve_in_the_report() {
    let dir = Scratch::new("modes");
    let out_dir = dir.path().join("out");
    let out = ratelab(
        &[
            "simulate",
            "--store-mode",
            "exact,lease,local",
            "--gateways",
            "3",
            "--rtt",
            "1ms",
            "--lease-max",
            "4,64",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    // `all` means the library's algorithms here: lease points for the buckets only.
    assert!(stdout.contains("store modes: 3 gateways"), "{stdout}");
    assert!(stdout.contains("gcra (lease 64/1s)"), "{stdout}");
    assert!(stdout.contains("fixed-window (local)"), "{stdout}");
    assert!(!stdout.contains("fixed-window (lease"), "{stdout}");
    assert!(!stdout.contains("seed-replica"), "{stdout}");
    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(
        report.contains("## Store modes: accuracy against cost"),
        "{report}"
    );
    assert!(report.contains("| gcra | lease 4/1s | +12 |"), "{report}");
    assert!(report.contains("store-modes.png"), "{report}");
    assert!(out_dir.join("store-modes.svg").exists());
    let json = std::fs::read_to_string(out_dir.join("results.json")).unwrap();
    assert!(json.contains("\"calls_per_decision\""), "{json}");
    // The same results re-render the same report.
    let again = ratelab(
        &["report", "--in", out_dir.to_str().unwrap(), "-q"],
        dir.path(),
    );
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("report.md")).unwrap(),
        report
    );
}

#[test]
fn store_mode_mistakes_are_usage_errors() {
    let dir = Scratch::new("modes-bad");
    let d = dir.path();
    for (args, needle) in [
        (
            &["simulate", "--store-mode", "lease", "--store", "local"][..],
            "cannot be used with",
        ),
        (
            &["simulate", "--store-mode", "lease", "--lease-max", "0"][..],
            "lease.max = 0",
        ),
        (
            &["simulate", "--store-mode", "lease", "--lease-ttl", "0s"][..],
            "lease.ttl",
        ),
        (
            &["simulate", "--store-mode", "exact", "-a", "seed-replica"][..],
            "no store modes",
        ),
    ] {
        let out = ratelab(args, d);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(needle),
            "{args:?}: {needle:?} not in {stderr}"
        );
    }
}

fn fails_with(args: &[&str], cwd: &Path, needles: &[&str]) {
    let out = ratelab(args, cwd);
    assert!(!out.status.success(), "{args:?} succeeded");
    let stderr = text(&out.stderr);
    for n in needles {
        assert!(stderr.contains(n), "{args:?}: {n:?} not in {stderr}");
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = Scratch::new("bad");
    let d = dir.path();
    fails_with(
        &["simulate", "--workload", "nope"],
        d,
        &[
            "unknown workload \"nope\"",
            "seed, boundary, api-mix, onoff",
        ],
    );
    fails_with(
        &["simulate", "--algorithms", "gcra,leaky-bucket"],
        d,
        &[
            "invalid value 'leaky-bucket' for '--algorithms",
            "seed-replica",
        ],
    );
    std::fs::write(
        d.join("w.toml"),
        "[[phase]]\nname = \"p\"\nduration = \"10s\"\nrate = 5\n\n[[endpoint]]\npath = \"/a\"\nlimit = 0\nwindow = \"1s\"\n",
    )
    .unwrap();
    fails_with(
        &["simulate", "--workload", "w.toml"],
        d,
        &["w.toml:8: endpoint[0].limit: must be between 1"],
    );
    std::fs::write(d.join("syntax.toml"), "[[phase]\nname = 1\n").unwrap();
    fails_with(
        &["simulate", "--workload", "syntax.toml"],
        d,
        &["syntax.toml:1:"],
    );
    fails_with(
        &["simulate", "--store", "memory", "--gateways", "2"],
        d,
        &["--gateways", "one process"],
    );
    fails_with(
        &["simulate", "--skew", "soon"],
        d,
        &["--skew", "\"soon\" is not a duration"],
    );
    fails_with(
        &["report", "--in", "missing-dir"],
        d,
        &["missing-dir: no such directory"],
    );
    std::fs::create_dir_all(d.join("empty-dir")).unwrap();
    fails_with(
        &["report", "--in", "empty-dir"],
        d,
        &["empty-dir: no results.json here"],
    );
}
