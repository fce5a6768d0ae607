//! Failover, measured (issue 16 item 7): for each store mode (exact, lease) and failure
//! policy (fail-closed, fail-open, local), a fresh Redis Cluster of 3 masters + 3
//! replicas (`testkit`, `cluster-node-timeout` 1.5 s), two limiter instances deciding
//! three hot keys on one master and a cold key on another, 2 s steady, the hot keys'
//! master killed, 3 s more after the promotion. Then `exact`/fail-closed and
//! `lease`/local again with `cluster-require-full-coverage no`.
//!
//! Prints the Markdown table of docs/redis.md ("Failover, measured") and writes it to
//! `$OUT` when set: `cargo bench -p limiter-core --features redis --bench failover`
//! (about two minutes; `BEFORE_SECS` and `AFTER_SECS` change the steady spans). The
//! accounting is the run's own decisions (see `tests/common/failover.rs`); the test
//! `redis_failover` asserts it on shorter runs of the same code.

// A benchmark: any failure should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/failover.rs"]
mod failover;

use std::time::Duration;

use failover::Setup;
use limiter_core::FailurePolicy;
use limiter_core::store::mode::StoreMode;

fn secs(name: &str, default: u64) -> Duration {
    let value = std::env::var(name).ok().and_then(|v| v.parse().ok());
    Duration::from_secs(value.unwrap_or(default))
}

fn main() {
    // `cargo bench -- --test` (and `cargo test --benches`) only checks it builds and starts.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let (before, after) = (secs("BEFORE_SECS", 2), secs("AFTER_SECS", 3));
    let mut setups = Vec::new();
    for mode in [StoreMode::Exact, failover::lease()] {
        for on_error in [
            FailurePolicy::FailClosed,
            FailurePolicy::FailOpen,
            FailurePolicy::Local,
        ] {
            setups.push(Setup {
                before,
                after,
                ..Setup::new(mode, on_error)
            });
        }
    }
    for (mode, on_error) in [
        (StoreMode::Exact, FailurePolicy::FailClosed),
        (failover::lease(), FailurePolicy::Local),
    ] {
        setups.push(Setup {
            before,
            after,
            full_coverage: false,
            ..Setup::new(mode, on_error)
        });
    }
    let runs = setups.len();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let mut outcomes = Vec::new();
    for (i, setup) in setups.into_iter().enumerate() {
        eprintln!("run {}/{runs}: {} / {}", i + 1, setup.mode, setup.on_error);
        outcomes.push(runtime.block_on(failover::run(setup)));
    }
    let table = failover::markdown(&outcomes);
    print!("{table}");
    if let Some(out) = std::env::var_os("OUT") {
        std::fs::write(&out, &table).unwrap();
    }
}
