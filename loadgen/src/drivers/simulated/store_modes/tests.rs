#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::workload::Workload;

const MS: u64 = 1_000_000;

/// 200 Zipf users on one 10/s endpoint (burst 10) at 4,000 requests/s for 20 s: the
/// heavy users far above their policy, the tail below it.
fn zipf_workload(gateways: u32, rtt: u64) -> Workload {
    let text = r#"
        name = "zipf"
        [users]
        count = 200
        distribution = "zipf"
        [arrivals]
        process = "poisson"
        [[phase]]
        name = "steady"
        duration = "20s"
        rate = 4000
        [[endpoint]]
        path = "GET /"
        limit = 10
        window = "1s"
    "#;
    let mut w = Workload::parse(text, "zipf.toml", "zipf").unwrap();
    w.deployment = Deployment {
        store: StoreModel::Shared,
        gateways,
        rtt,
        ..Deployment::default()
    };
    w
}

fn curve(w: Workload, algorithms: &[SimAlgorithm], options: &CurveOptions) -> Results {
    let sim = Simulation::new(w, 7).unwrap();
    sim.store_curve(algorithms, options, &mut |_| {})
        .unwrap()
        .results
}

fn gcra() -> SimAlgorithm {
    SimAlgorithm::Library(Kind::Gcra)
}

#[test]
fn every_mode_is_a_run_and_a_point_with_its_costs() {
    let options = CurveOptions {
        lease_max: vec![4, 64],
        ..CurveOptions::default()
    };
    let r = curve(zipf_workload(3, MS), &[gcra()], &options);
    let c = r.store_modes.as_ref().unwrap();
    let labels: Vec<String> = c.points.iter().map(StorePoint::label).collect();
    assert_eq!(labels, ["exact", "lease 4/1s", "lease 64/1s", "local"]);
    assert_eq!((c.gateways, c.rtt_us), (3, 1_000.0));
    let by = |label: &str| {
        let p = c.points.iter().find(|p| p.label() == label).unwrap();
        (p, &r.runs[p.run])
    };
    let (exact, exact_run) = by("exact");
    let (lease4, _) = by("lease 4/1s");
    let (lease64, lease_run) = by("lease 64/1s");
    let (local, local_run) = by("local");
    assert_eq!(exact_run.store, "exact");
    assert!(exact_run.deployment.starts_with("exact: 3 gateways"));
    assert!(r.check().is_ok());
    // Exact: a store call per decision unless refused locally; never over the
    // envelope (decided in store order, one constant round trip).
    assert!(exact.store_calls <= exact.decisions && exact.store_calls > 0);
    assert_eq!(exact.local_denied + exact.store_calls, exact.decisions);
    assert_eq!(exact_run.totals.envelope_excess, 0.0);
    // Leases cut the calls, the bigger the fewer; every decision is accounted for.
    assert!(lease64.store_calls < lease4.store_calls);
    assert!(lease4.store_calls < exact.store_calls);
    for p in [lease4, lease64] {
        let asked = p.decisions - p.local_allowed - p.local_denied;
        assert!(p.store_calls <= asked, "{}: {p:?}", p.label());
        assert_eq!(p.excess_bound, Some(3 * p.lease_max.unwrap()));
    }
    // Each gateway alone admits up to 3× the policy; the store is never asked.
    assert_eq!((local.store_calls, local.excess_bound), (0, None));
    assert!(local_run.totals.over_admission > 10 * exact_run.totals.over_admission.max(1));
    assert!(local_run.totals.over_admission > lease_run.totals.over_admission);
}

#[test]
fn latency_is_the_round_trip_for_decisions_that_call_the_store_and_zero_alone() {
    let options = CurveOptions {
        lease_max: vec![64],
        ..CurveOptions::default()
    };
    let r = curve(zipf_workload(3, 5 * MS), &[gcra()], &options);
    let c = r.store_modes.as_ref().unwrap();
    for p in &c.points {
        let lat = r.runs[p.run].totals.latency_us.unwrap();
        match p.mode.as_str() {
            // Most decisions are local refusals of the heavy users: median 0, but the
            // tail calls the store.
            "exact" => assert_eq!(lat.max, 5_000.0, "{lat:?}"),
            // A request waiting for a lease in flight waits at most one round trip.
            "lease" => assert!(lat.p50 == 0.0 && lat.max <= 10_000.0, "{lat:?}"),
            _ => assert_eq!(lat.max, 0.0),
        }
    }
}

#[test]
fn lease_excess_stays_within_its_bound_per_key() {
    let options = CurveOptions {
        modes: vec![ModeName::Lease],
        lease_max: vec![2, 8, 32],
        lease_ttl: vec![Duration::from_millis(50), Duration::from_secs(2)],
    };
    // Zero round trip: admissions happen at the arrival instants the accounting
    // judges, so the stated bound applies as written.
    let algorithms = [gcra(), SimAlgorithm::Library(Kind::TokenBucket)];
    let r = curve(zipf_workload(4, 0), &algorithms, &options);
    let c = r.store_modes.as_ref().unwrap();
    assert_eq!(c.points.len(), 12);
    for p in &c.points {
        let run = &r.runs[p.run];
        let bound = p.excess_bound.unwrap() as f64;
        assert!(
            run.totals.envelope_excess <= bound,
            "{} {}: excess {} over the bound {bound}",
            p.algorithm,
            p.label(),
            run.totals.envelope_excess
        );
    }
}

#[test]
fn windowed_algorithms_get_no_lease_points_and_the_seed_replica_none_at_all() {
    let w = zipf_workload(2, MS);
    let sim = Simulation::new(w, 1).unwrap();
    let sliding = SimAlgorithm::Library(Kind::SlidingWindow);
    let out = sim
        .store_curve(&[sliding], &CurveOptions::default(), &mut |_| {})
        .unwrap();
    let modes: Vec<&str> = out
        .results
        .store_modes
        .as_ref()
        .unwrap()
        .points
        .iter()
        .map(|p| p.mode.as_str())
        .collect();
    assert_eq!(modes, ["exact", "local"]);
    let err = sim
        .store_curve(
            &[SimAlgorithm::SeedReplica],
            &CurveOptions::default(),
            &mut |_| {},
        )
        .unwrap_err();
    assert!(err.to_string().contains("seed-replica"), "{err}");
    let mut memory = zipf_workload(1, 0);
    memory.deployment = Deployment::default();
    let err = Simulation::new(memory, 1)
        .unwrap()
        .store_curve(&[gcra()], &CurveOptions::default(), &mut |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("shared"), "{err}");
    let bad = CurveOptions {
        lease_max: vec![0],
        ..CurveOptions::default()
    };
    assert!(bad.points().is_err());
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let options = CurveOptions::default();
    let a = curve(zipf_workload(3, MS), &[gcra()], &options).to_json();
    let b = curve(zipf_workload(3, MS), &[gcra()], &options).to_json();
    assert_eq!(a, b);
    assert!(a.contains("\"store_modes\""));
}
