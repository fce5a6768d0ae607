//! Every registered algorithm through the gateway, in memory and on Redis: a route
//! written in the algorithm's own config words (by the contract, as `ratelab load
//! --emit-routes` writes them) admits its allowance, then answers 429 with the
//! rate-limit headers, and the backend sees exactly what was admitted. An algorithm
//! added to limiter-core's registry is covered here with no edit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use gateway::BackendConfig;
use gateway::contract::config::{LimitTable, routes_toml};
use gateway::contract::policy::PolicySpec;
use limiter_core::{Kind, Quota};
use support::{backend, gateway, get};

/// 3 per hour, bursts of 3: nothing refills during the test.
fn routes(path: &str, kind: Kind) -> String {
    let quota = Quota::new(3, Duration::from_secs(3600))
        .unwrap()
        .with_burst(3)
        .unwrap();
    let spec = PolicySpec::new(quota, 1, &[kind]).unwrap();
    routes_toml(vec![LimitTable::route(path, kind, &spec)]).unwrap()
}

async fn admits_three_then_refuses(store: &str) {
    for kind in Kind::ALL {
        let (be, backend_state) = backend(BackendConfig::default()).await;
        let path = format!("/{kind}");
        let config = format!("{store}\n{}", routes(&path, kind));
        let gw = gateway(&config, &format!("http://{}", be.addr)).await;
        let mut statuses = Vec::new();
        for _ in 0..5 {
            let res = get(gw.addr, &path, "alice").await;
            if res.status == 429 {
                assert!(res.header("retry-after").is_some(), "{kind}: {res:?}");
                let rl = res.header("ratelimit").unwrap_or_default();
                assert!(rl.contains("r=0"), "{kind}: RateLimit {rl:?}");
            }
            statuses.push(res.status);
        }
        assert_eq!(statuses, [200, 200, 200, 429, 429], "{kind} ({store:?})");
        assert_eq!(
            backend_state.stats().count("alice", &path),
            3,
            "{kind}: the backend counts what was admitted"
        );
        let metrics = get(gw.admin, "/metrics", "alice").await.body;
        let needle = format!("algorithm=\"{kind}\",outcome=\"denied\"}} 2");
        assert!(
            metrics.contains(&needle),
            "{kind}: missing {needle}\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_limits_in_memory() {
    admits_three_then_refuses("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_limits_on_redis() {
    let redis = testkit::RedisServer::start().unwrap();
    let store = format!(
        "[store]\nkind = \"redis\"\nurl = \"{}\"\ntimeout = \"2s\"\non_error = \"fail-closed\"\n",
        redis.url()
    );
    admits_three_then_refuses(&store).await;
}
