//! `ratelab gateway`: the rate-limiting reverse proxy.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args as ClapArgs;
use gateway::{Config, Gateway};

use crate::exit::{UsageContext as _, usage_bail};

/// Run the gateway.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The TOML configuration (see examples/gateway.toml).
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Listen here instead of the config's `listen`.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Forward to this backend instead of the config's `backend` (http://host:port).
    #[arg(long, value_name = "URL")]
    backend: Option<String>,
    /// Serve /metrics, /healthz and /readyz here instead of the config's
    /// `admin_listen` (port 0: any free port).
    #[arg(long, value_name = "ADDR")]
    admin_listen: Option<String>,
    /// Validate the configuration (and its API keys file), print the verdict and exit:
    /// 0 when valid, 2 when not (like `nginx -t`).
    #[arg(long)]
    check: bool,
    /// Worker threads (default: one per CPU).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Shadow mode for every route: decide and count (`outcome="shadow_denied"`), never
    /// refuse — to try limits on live traffic before enforcing them.
    #[arg(long)]
    dry_run: bool,
    /// Reload routes, limits, tiers and global limits when the file changes (checked
    /// at this interval, e.g. `1s`), as SIGHUP does; unchanged limits keep their state.
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "1s", value_parser = parse_interval)]
    watch: Option<std::time::Duration>,
}

fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let d = gateway::config::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("the interval must be longer than zero".to_owned());
    }
    Ok(d)
}

/// Loads the configuration and serves until SIGINT or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_tracing();
    let mut config = Config::load(&args.config).usage_context("invalid configuration")?;
    if args.check {
        println!(
            "{}: configuration ok ({} routes{}{})",
            args.config.display(),
            config.routes.len(),
            if config.default.is_some() {
                ", a default limit"
            } else {
                ""
            },
            if config.identity.per_ip.is_some() {
                ", a per-IP limit"
            } else {
                ""
            },
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(admin) = &args.admin_listen {
        config
            .set_admin_listen(admin)
            .map_err(anyhow::Error::msg)
            .usage_context("--admin-listen")?;
    }
    if let Some(listen) = &args.listen {
        config
            .set_listen(listen)
            .map_err(anyhow::Error::msg)
            .usage_context("--listen")?;
    }
    config.dry_run |= args.dry_run;
    if let Some(backend) = &args.backend {
        config
            .set_backend(backend)
            .map_err(anyhow::Error::msg)
            .usage_context("--backend")?;
    }
    let runtime = runtime(args.threads)?;
    let (path, watch, dry_run) = (args.config.clone(), args.watch, args.dry_run);
    runtime.block_on(async move {
        let gateway = Gateway::new(config).await?;
        // SIGHUP (and --watch) reload the routes, limits, tiers and global limits.
        let reloader = gateway::limits::spawn_reloader(
            std::sync::Arc::clone(gateway.limiter()),
            path,
            watch,
            dry_run,
        );
        // Give Redis a moment so a normal start is warm; a Redis that is down does not
        // stop the gateway: it serves by `on_error` and connects when Redis comes.
        if let Err(err) = gateway
            .limiter()
            .stores()
            .wait_connected(Duration::from_secs(2))
            .await
        {
            tracing::warn!(
                error = %err,
                on_error = %gateway.config().store.on_error,
                "redis unreachable at start-up: serving by the failure policy, connecting in the background"
            );
        }
        let listeners = gateway.bind().await?;
        let addr = listeners.proxy.local_addr().context("listener address")?;
        let admin = listeners.admin.local_addr().context("admin address")?;
        let cfg = gateway.config();
        tracing::info!(
            %addr,
            %admin,
            backend = %cfg.backend,
            routes = cfg.routes.len(),
            default = cfg.default.is_some(),
            store = ?cfg.store.kind,
            "gateway listening"
        );
        // Lines on stdout that scripts and tests wait for (the admin one first).
        println!("ratelab gateway admin on http://{admin}");
        println!("ratelab gateway listening on http://{addr}");
        gateway.serve(listeners, gateway::shutdown_signal()).await?;
        reloader.abort();
        tracing::info!("gateway stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// A tokio runtime with `threads` workers (default: one per CPU). One worker runs on
/// the current thread, which spares the work-stealing machinery (wake-ups stay local).
pub(crate) fn runtime(threads: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = match threads {
        Some(0) => usage_bail!("--threads must be at least 1"),
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all();
    builder.build().context("starting the async runtime")
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
