//! Trace replay end to end: a generated log replays to the synthetic run's decisions
//! and figures exactly; every format, compression and the reorder window agree.

#![cfg(feature = "trace")]
#![allow(clippy::unwrap_used)]

use limiter_core::Kind;
use loadgen::trace::{Format, FormatSpec, Grid, ReplayOptions, Routes, generate, replay};
use loadgen::{SimAlgorithm, Simulation, Workload};

/// Zipf users, a templated route, a short window and a long one, bursts, two phases.
const WORKLOAD: &str = r#"
name = "trace-test"
[users]
count = 40
distribution = "zipf"
exponent = 1.0
[arrivals]
process = "poisson"
[[phase]]
name = "steady"
duration = "40s"
rate = 150
[[phase]]
name = "spike"
duration = "10s"
rate = 600
[[endpoint]]
path = "GET /api/orders/{id}"
weight = 5
limit = 20
window = "10s"
burst = 8
[[endpoint]]
path = "POST /api/login"
weight = 1
limit = 3
window = "30s"
[[endpoint]]
path = "GET /api/catalog"
weight = 2
limit = 50
window = "1s"
burst = 60
"#;

fn workload() -> Workload {
    Workload::parse(WORKLOAD, "trace-test.toml", "trace-test").unwrap()
}

fn log(format: Format) -> Vec<u8> {
    let mut out = Vec::new();
    generate::generate(&workload(), 7, format, &mut out).unwrap();
    out
}

fn options(format: Format) -> ReplayOptions {
    let mut o = ReplayOptions::default();
    o.format = FormatSpec { format, ..o.format };
    o.record = true;
    o.threads = 2;
    o
}

#[test]
fn replaying_a_generated_log_reproduces_the_synthetic_run_exactly() {
    let w = workload();
    let routes = Routes::from_workload(&w, &Kind::ALL).unwrap();
    let sim = Simulation::new(w, 7).unwrap();
    let algorithms: Vec<SimAlgorithm> = Kind::ALL.into_iter().map(SimAlgorithm::Library).collect();
    let synthetic = sim.run(&algorithms, &mut |_| {}).unwrap().results;
    for format in [Format::Json, Format::Csv] {
        let text = log(format);
        let out = replay(&text[..], "gen", &routes, &options(format), &mut |_| {}).unwrap();
        let trace = out.results.trace.as_ref().unwrap();
        assert_eq!(trace.input.requests, sim.arrivals().list.len() as u64);
        assert_eq!(
            (
                trace.input.malformed,
                trace.input.late,
                trace.input.unrouted
            ),
            (0, 0, 0)
        );
        assert_eq!(out.decisions.len(), Kind::ALL.len());
        for (kind, decisions) in &out.decisions {
            let played = sim
                .play(SimAlgorithm::Library(*kind), &mut |_, _| {})
                .unwrap();
            assert_eq!(decisions.len(), played.decisions.len(), "{kind}");
            let differ = (0..decisions.len())
                .filter(|&i| decisions[i] != played.decisions.admitted(i))
                .count();
            assert_eq!(
                differ, 0,
                "{kind} ({format}): decisions differ from the synthetic run"
            );
            let s = synthetic
                .runs
                .iter()
                .find(|r| r.algorithm == kind.name())
                .unwrap();
            let r = out
                .results
                .runs
                .iter()
                .find(|r| r.algorithm == kind.name())
                .unwrap();
            let (a, b) = (&s.totals, &r.totals);
            assert_eq!(
                (a.offered, a.admitted, a.rejected, a.reference_admitted),
                (b.offered, b.admitted, b.rejected, b.reference_admitted),
                "{kind}"
            );
            assert_eq!(
                (a.over_admission, a.under_admission),
                (b.over_admission, b.under_admission),
                "{kind}"
            );
            assert_eq!(a.envelope_excess, b.envelope_excess, "{kind}");
            assert_eq!(a.burst_ratio, b.burst_ratio, "{kind}");
            // Replay judges users from counts per key: a lower bound of the simulator's
            // per-request "refused while the reference admits".
            let (sim, replay) = (a.wronged_users.unwrap(), b.wronged_users.unwrap());
            assert!(
                replay <= sim + 1e-4,
                "{kind}: wronged users {replay} (replay) vs {sim} (simulator)"
            );
            assert_eq!(s.keys, r.keys, "{kind}");
        }
        // Something was throttled, and the routes add up.
        let fixed = trace
            .algorithms
            .iter()
            .find(|a| a.algorithm == "fixed-window")
            .unwrap();
        let rejected: u64 = fixed.routes.iter().map(|r| r.rejected).sum();
        assert!(rejected > 0 && fixed.identities_throttled > 0);
        assert!(fixed.top_identities[0].rejected >= fixed.top_identities.last().unwrap().rejected);
        let log_alg = trace
            .algorithms
            .iter()
            .find(|a| a.algorithm == "sliding-log")
            .unwrap();
        assert_eq!(
            log_alg.false_positive_requests, 0,
            "the exact log is its own judge"
        );
    }
}

#[test]
fn combined_logs_count_the_same_traffic_at_whole_seconds() {
    let w = workload();
    let routes = Routes::from_workload(&w, &Kind::ALL).unwrap();
    let sim = Simulation::new(w, 7).unwrap();
    let text = log(Format::Combined);
    let out = replay(
        &text[..],
        "gen.log",
        &routes,
        &options(Format::Combined),
        &mut |_| {},
    )
    .unwrap();
    let trace = out.results.trace.unwrap();
    let n = sim.arrivals().list.len() as u64;
    assert_eq!(
        (
            trace.input.lines,
            trace.input.requests,
            trace.input.malformed
        ),
        (n, n, 0)
    );
    let users: std::collections::HashSet<u32> =
        sim.arrivals().list.iter().map(|a| a.user).collect();
    assert_eq!(trace.input.identities, users.len() as u64);
    assert_eq!(trace.input.first, "2026-12-01T00:00:00.000000000Z");
    for (e, route) in trace.algorithms[0].routes.iter().enumerate() {
        let offered = sim
            .arrivals()
            .list
            .iter()
            .filter(|a| a.endpoint as usize == e)
            .count();
        assert_eq!(route.requests, offered as u64, "{}", route.route);
    }
}

#[test]
fn reorder_window_malformed_lines_and_strict() {
    let w = workload();
    let routes = Routes::from_workload(&w, &Kind::ALL).unwrap();
    let line = |t: &str, user: &str| {
        format!(r#"{{"time":"2026-12-01T00:00:{t}Z","identity":"{user}","path":"/api/login"}}"#)
    };
    // Out of order by 2 s (within the 5 s window) and by 5 s beyond what the window
    // already released, and a broken line.
    let text = [
        line("10", "a"),
        line("08", "a"),
        line("30", "b"),
        "{broken".to_owned(),
        line("05", "c"),
        line("31", "a"),
    ]
    .join("\n");
    let mut o = options(Format::Json);
    o.algorithms = vec![Kind::SlidingLog];
    let out = replay(text.as_bytes(), "x", &routes, &o, &mut |_| {}).unwrap();
    let input = &out.results.trace.as_ref().unwrap().input;
    assert_eq!((input.requests, input.malformed, input.late), (5, 1, 1));
    assert!(
        input.malformed_examples[0].starts_with("line 4: not a JSON object"),
        "{:?}",
        input.malformed_examples
    );
    assert!(
        input.late_examples[0].starts_with("line 5: 5.000 s behind"),
        "{:?}",
        input.late_examples
    );
    // a: 08, 10 admitted (limit 3 per 30 s), 31 admitted; c at the window's edge.
    assert_eq!(out.decisions[0].1, [true, true, true, true, true]);
    o.strict = true;
    let err = replay(text.as_bytes(), "x", &routes, &o, &mut |_| {}).unwrap_err();
    assert!(
        err.to_string().starts_with("line 4: not a JSON object"),
        "{err}"
    );
}

#[test]
fn a_sweep_throttles_less_as_the_limit_grows() {
    let w = workload();
    let routes = Routes::from_workload(&w, &Kind::ALL).unwrap();
    let text = log(Format::Json);
    let mut o = options(Format::Json);
    o.sweep = Some(Grid::parse(&["limit=2..40/2", "burst=1x,2x"]).unwrap());
    let out = replay(&text[..], "gen", &routes, &o, &mut |_| {}).unwrap();
    let sweep = out.results.trace.unwrap().sweep;
    assert_eq!(sweep.len(), 20 * 2 * Kind::ALL.len());
    for kind in Kind::ALL {
        let shares: Vec<f64> = sweep
            .iter()
            .filter(|p| p.algorithm == kind.name() && p.burst_factor == 1.0)
            .map(|p| p.request_share())
            .collect();
        assert_eq!(shares.len(), 20);
        assert!(shares[0] > shares[19], "{kind}: {shares:?}");
        assert!(
            shares.windows(2).all(|w| w[1] <= w[0] + 0.02),
            "{kind}: {shares:?}"
        );
    }
}
