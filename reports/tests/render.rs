//! Rendering produces every plot, as non-empty PNG and SVG, and a report that links
//! them — from results alone.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use results::{
    EndpointInfo, LatencySummary, PhaseInfo, PhaseStats, ResultSource, Results, Run, Series,
    WorkloadInfo,
};

fn stats(name: &str, offered: u64, admitted: u64, latency: Option<LatencySummary>) -> PhaseStats {
    PhaseStats {
        name: name.to_owned(),
        offered,
        admitted,
        rejected: offered - admitted,
        errors: 0,
        reference_admitted: 4,
        envelope_excess: 1.5,
        over_admission: admitted.saturating_sub(4),
        under_admission: 4u64.saturating_sub(admitted),
        burst_ratio: 1.25,
        fairness: Some(0.97),
        wronged_users: Some(0.25),
        latency_us: latency,
        boundary_burst: None,
    }
}

fn results(with_latency: bool) -> Results {
    let latency = with_latency.then_some(LatencySummary {
        p50: 900.0,
        p99: 1_400.0,
        p999: 1_500.0,
        max: 1_600.0,
    });
    let mut r = Results::new(
        ResultSource::Measured,
        WorkloadInfo {
            name: "unit".into(),
            description: "a test | with a pipe".into(),
            source: "built-in".into(),
            seed: 3,
            duration_s: 4.0,
            users: 2,
            user_distribution: "uniform".into(),
            arrivals: "constant".into(),
            phases: vec![
                PhaseInfo {
                    name: "one".into(),
                    start_s: 0.0,
                    duration_s: 2.0,
                    rate: 3.0,
                    rate_end: 3.0,
                },
                PhaseInfo {
                    name: "two".into(),
                    start_s: 2.0,
                    duration_s: 2.0,
                    rate: 3.0,
                    rate_end: 6.0,
                },
            ],
            endpoints: vec![EndpointInfo {
                path: "GET /a".into(),
                weight: 1.0,
                limit: 2,
                window_s: 1.0,
                burst: 3,
                cost: 1,
            }],
        },
    );
    for (algorithm, admitted) in [("token-bucket", 4), ("fixed-window", 6), ("custom", 3)] {
        r.runs.push(Run {
            algorithm: algorithm.into(),
            store: "redis".into(),
            deployment: String::new(),
            reference: "exact token bucket".into(),
            keys: 2,
            memory_per_key_bytes: 8,
            phases: vec![
                stats("one", 6, admitted / 2, latency),
                stats("two", 9, admitted - admitted / 2, latency),
            ],
            totals: stats("total", 15, admitted, latency),
            series: Series {
                step_s: 1.0,
                offered: vec![3, 3, 4, 5],
                admitted: vec![1, 1, 1, admitted - 3],
                rejected: vec![2, 2, 3, 8 - admitted],
                latency_us: if with_latency {
                    vec![latency, None, latency, latency]
                } else {
                    Vec::new()
                },
            },
        });
    }
    r
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ratelab-reports-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn renders_every_plot_as_png_and_svg() {
    let dir = scratch("all");
    let r = results(true);
    results::write_results(&r, &dir).unwrap();
    let back = results::read_results(&dir).unwrap();
    assert_eq!(back, r);
    let rendered = reports::render(&back, &dir).unwrap();
    let names: Vec<&str> = rendered.plots.iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "throughput",
            "admitted",
            "difference",
            "accuracy",
            "burst",
            "latency",
            "latency-by-store"
        ]
    );
    for plot in &rendered.plots {
        let png = std::fs::read(&plot.png).unwrap();
        assert!(png.len() > 1_000, "{} is too small", plot.png.display());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg = std::fs::read_to_string(&plot.svg).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
        assert!(svg.contains("<text"), "labels are drawn");
        assert!(
            !svg.contains("width=\"-"),
            "{}: a negative width",
            plot.svg.display()
        );
    }
    let md = std::fs::read_to_string(&rendered.report).unwrap();
    assert!(md.starts_with("# ratelab report: workload `unit`"));
    assert!(md.contains("![Offered and admitted requests per second](throughput.png)"));
    let html = std::fs::read_to_string(&rendered.html).unwrap();
    assert!(html.contains("<h1>ratelab report: workload <code>unit</code></h1>"));
    assert_eq!(html.matches("<figure><svg").count(), rendered.plots.len());
    assert!(md.contains("(latency.svg)"));
    assert!(md.contains("| token-bucket (redis) |") || md.contains("| token-bucket |"));
    assert!(md.contains("a test \\| with a pipe") || md.contains("a test | with a pipe"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn no_latency_no_latency_plot() {
    let dir = scratch("nolat");
    let rendered = reports::render(&results(false), &dir).unwrap();
    assert_eq!(rendered.plots.len(), 5);
    assert!(!dir.join("latency.png").exists());
    assert!(!dir.join("latency-by-store.png").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn one_run_draws_whole_bars() {
    let dir = scratch("one");
    let mut r = results(true);
    r.runs.truncate(1);
    let rendered = reports::render(&r, &dir).unwrap();
    for plot in &rendered.plots {
        let svg = std::fs::read_to_string(&plot.svg).unwrap();
        assert!(
            !svg.contains("width=\"-"),
            "{}: a negative width",
            plot.svg.display()
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_results_are_refused() {
    let dir = scratch("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let err = results::read_results(&dir).unwrap_err().to_string();
    assert!(err.contains("results.json"), "{err}");
    std::fs::write(dir.join("results.json"), "{\"schema\": 1}").unwrap();
    let err = results::read_results(&dir).unwrap_err().to_string();
    assert!(err.contains("not valid"), "{err}");
    let mut r = results(false);
    r.runs[0].series.rejected.pop();
    assert!(reports::render(&r, &dir).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A PNG's height, from its header.
fn png_height(path: &std::path::Path) -> u32 {
    let png = std::fs::read(path).unwrap();
    u32::from_be_bytes([png[20], png[21], png[22], png[23]])
}

#[test]
fn many_runs_stand_their_names_upright_with_room_for_them() {
    let dir = scratch("many");
    let few = reports::render(&results(true), &dir).unwrap();
    let burst = |r: &reports::Rendered| {
        r.plots
            .iter()
            .find(|p| p.name == "burst")
            .unwrap()
            .png
            .clone()
    };
    let few_height = png_height(&burst(&few));
    // 3 algorithms × 6 stores: 18 bars named "algorithm (store)" do not fit side by side.
    let mut many = results(true);
    let base = many.runs.clone();
    many.runs.clear();
    for store in [
        "simulated",
        "memory",
        "redis",
        "redis-cluster",
        "redis-a",
        "redis-b",
    ] {
        for run in &base {
            let mut run = run.clone();
            run.store = store.into();
            many.runs.push(run);
        }
    }
    let rendered = reports::render(&many, &dir).unwrap();
    assert!(png_height(&burst(&rendered)) > few_height + 100);
    let svg = std::fs::read_to_string(dir.join("burst.svg")).unwrap();
    assert!(
        svg.contains("fixed-window (redis-cluster)"),
        "every name is drawn whole"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
