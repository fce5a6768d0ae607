//! `ratelab backend`: the mock backend the gateway is measured against.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args as ClapArgs;
use gateway::{Backend, BackendConfig, Latency};

use crate::exit::usage_bail;

/// Run the mock backend.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Listen address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9000")]
    listen: String,
    /// Where `GET /stats` and `POST /stats/reset` are served (never on --listen, where
    /// /stats is an ordinary path); port 0 picks a free one and prints it.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9001")]
    stats_listen: String,
    /// Response latency in ms: `5` (fixed), `uniform:2,8` or `lognormal:MEDIAN,SIGMA`.
    #[arg(long, value_name = "SPEC", default_value = "0")]
    latency: Latency,
    /// Share of requests answered 500, from 0 to 1.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    error_rate: f64,
    /// Seed of the latency and error draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Answer each request with this header set to its `cost` query parameter (a mock
    /// LLM backend reporting the tokens it used, for a gateway's `cost_from_response`).
    #[arg(long, value_name = "HEADER")]
    cost_header: Option<http::HeaderName>,
    /// Worker threads (default: one per CPU).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

/// Serves until SIGINT or SIGTERM, then prints how many requests it counted.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::gateway::init_tracing();
    if !(0.0..=1.0).contains(&args.error_rate) {
        usage_bail!(
            "--error-rate must be between 0 and 1, got {}",
            args.error_rate
        );
    }
    let config = BackendConfig {
        latency: args.latency,
        error_rate: args.error_rate,
        seed: args.seed,
        cost_header: args.cost_header,
    };
    let runtime = super::gateway::runtime(args.threads)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr().context("listener address")?;
        let stats_listener = tokio::net::TcpListener::bind(&args.stats_listen)
            .await
            .with_context(|| format!("cannot listen on {} (--stats-listen)", args.stats_listen))?;
        let stats_addr = stats_listener.local_addr().context("stats address")?;
        tracing::info!(%addr, %stats_addr, latency = %config.latency, error_rate = config.error_rate, "backend listening");
        // Lines on stdout that scripts and tests wait for (the stats one first).
        println!("ratelab backend stats on http://{stats_addr}");
        println!("ratelab backend listening on http://{addr}");
        let backend = Backend::new(config);
        let stats = tokio::spawn(Arc::clone(&backend).serve_stats(stats_listener, std::future::pending()));
        Arc::clone(&backend)
            .serve(listener, gateway::shutdown_signal())
            .await;
        stats.abort();
        // Its count at exit: a harness that restarts the backend (scripts/soak.sh) adds
        // the counts of every process to compare them with what clients saw admitted.
        println!(
            "ratelab backend stopped: {} requests counted",
            backend.stats().total()
        );
        Ok(ExitCode::SUCCESS)
    })
}
