//! Workload loading: built-ins, defaults, located errors, durations, deployments.

use super::*;

#[test]
fn builtins_parse() {
    for (name, _) in BUILTINS {
        let w = Workload::load(name).unwrap();
        assert_eq!(w.name, name);
        assert!(!w.description.is_empty());
        assert!(w.expected_arrivals() > 0.0);
    }
}

#[test]
fn seed_is_the_original_load_test() {
    let w = Workload::load("seed").unwrap();
    let phases: Vec<_> = w
        .phases
        .iter()
        .map(|p| (p.name.as_str(), p.duration / SECOND, p.rate))
        .collect();
    assert_eq!(
        phases,
        [
            ("warm-up", 60, 10.0),
            ("steady", 60, 30.0),
            ("spike", 30, 60.0)
        ]
    );
    assert_eq!(w.users.count, 1);
    assert_eq!(w.endpoints.len(), 1);
    let q = w.endpoints[0].quota;
    assert_eq!(
        (q.limit(), q.period_nanos(), q.burst()),
        (5, 60 * SECOND, 5)
    );
    assert_eq!(w.expected_arrivals(), 4200.0);
}

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms"), Ok(500_000_000));
    assert_eq!(parse_duration("1s500ms"), Ok(1_500_000_000));
    assert_eq!(parse_duration("1m30s"), Ok(90 * SECOND));
    assert_eq!(parse_duration("1d"), Ok(86_400 * SECOND));
    assert_eq!(parse_duration("2m"), Ok(120 * SECOND));
    assert_eq!(parse_duration("1h"), Ok(3600 * SECOND));
    assert_eq!(parse_duration("250us"), Ok(250_000));
    assert_eq!(parse_duration("0s"), Ok(0));
    assert!(parse_duration("10").is_err());
    assert!(parse_duration("s").is_err());
    assert!(parse_duration("-1s").is_err());
    assert!(parse_duration("1e30h").is_err());
    assert!(parse_duration("11years").is_err());
    assert_eq!(format_duration(60 * SECOND), "60s");
    assert_eq!(format_duration(1_500_000_000), "1.5s");
    assert_eq!(format_duration(500_000), "500µs");
    assert_eq!(format_duration(3600 * SECOND), "1h");
}

fn parse(text: &str) -> Result<Workload, WorkloadError> {
    Workload::parse(text, "w.toml", "w")
}

const OK: &str = r#"
[[phase]]
name = "p"
duration = "10s"
rate = 5

[[endpoint]]
path = "/a"
limit = 5
window = "1s"
"#;

#[test]
fn minimal_file_takes_defaults() {
    let w = parse(OK).unwrap();
    assert_eq!(w.name, "w");
    assert_eq!(w.seed, 1);
    assert_eq!(w.process, Process::Constant);
    assert_eq!(w.deployment, Deployment::default());
    assert_eq!(w.endpoints[0].quota.burst(), 5);
    assert_eq!(w.endpoints[0].cost, 1);
}

#[test]
fn errors_name_file_line_and_key() {
    let bad = OK.replace("limit = 5", "limit = 0");
    let e = parse(&bad).unwrap_err().to_string();
    assert_eq!(
        e,
        "w.toml:9: endpoint[0].limit: must be between 1 and 4294967295"
    );

    let bad = OK.replace("rate = 5", "rate = -5");
    let e = parse(&bad).unwrap_err().to_string();
    assert!(e.starts_with("w.toml:5: phase[0].rate: must be"), "{e}");

    let bad = OK.replace("window = \"1s\"", "window = \"1 fortnight\"");
    let e = parse(&bad).unwrap_err().to_string();
    assert!(
        e.starts_with("w.toml:10: endpoint[0].window: \"1 fortnight\" is not a duration"),
        "{e}"
    );

    let bad = OK.replace("rate = 5", "rate = 5\nrat = 6");
    let e = parse(&bad).unwrap_err().to_string();
    assert!(e.starts_with("w.toml:6:1: unknown field `rat`"), "{e}");

    let bad = format!("{OK}\n[users]\ncount = 10\ndistribution = \"pareto\"\n");
    let e = parse(&bad).unwrap_err().to_string();
    assert!(
        e.contains("users.distribution: unknown distribution \"pareto\""),
        "{e}"
    );

    let bad = format!("{OK}\n[arrivals]\nprocess = \"onoff\"\non = \"1s\"\n");
    let e = parse(&bad).unwrap_err().to_string();
    assert!(e.contains("arrivals.off: is required"), "{e}");

    let bad = OK.replace("window = \"1s\"", "window = \"1s\"\ncost = 6");
    let e = parse(&bad).unwrap_err().to_string();
    assert!(e.starts_with("w.toml:11: endpoint[0].cost:"), "{e}");

    let bad = format!("{OK}\n[deployment]\ngateways = 3\n");
    let e = parse(&bad).unwrap_err().to_string();
    assert!(
        e.contains("deployment.gateways: store \"memory\" is one process"),
        "{e}"
    );

    let e = parse("[[phase]]\nname = \"p\"\n").unwrap_err().to_string();
    assert!(e.starts_with("w.toml:1:1: missing field `duration`"), "{e}");

    let e = parse("this is = not toml").unwrap_err().to_string();
    assert!(e.starts_with("w.toml:1:"), "{e}");
}

#[test]
fn unknown_workload_names_itself() {
    let e = Workload::load("no-such-workload").unwrap_err().to_string();
    assert!(e.contains("\"no-such-workload\""), "{e}");
    assert!(e.contains("seed, boundary, api-mix, onoff"), "{e}");
}

#[test]
fn deployments_validate() {
    let d = Deployment {
        store: StoreModel::Shared,
        gateways: 3,
        skew: 2 * SECOND,
        rtt: 1_000_000,
        jitter: 500_000,
    };
    assert!(d.validate().is_ok());
    assert_eq!(d.describe(), "shared: 3 gateways, skew 2s, rtt 1ms ± 500µs");
    assert!(
        Deployment {
            jitter: 2_000_000,
            ..d
        }
        .validate()
        .is_err()
    );
    assert!(Deployment { gateways: 0, ..d }.validate().is_err());
    assert!(
        Deployment {
            store: StoreModel::Local,
            ..d
        }
        .validate()
        .is_err()
    );
}
