//! One load run, end to end: check the targets, read the ground truth, play the plan
//! with the chosen driver while showing progress and scraping the gateways, read the
//! ground truth again, and turn it all into results.
//!
//! The guarantee: a run that starts always ends with results — a run cut short (Ctrl-C,
//! every target down, a schedule the machine cannot hold) keeps what it measured and is
//! marked incomplete with the reason. Only what prevents starting is an error: a target
//! that does not answer, or answers but is not a ratelab gateway, or a backend whose
//! `/stats` cannot be read.

use std::io::{IsTerminal, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use results::Results;

use super::goose::{self as goose_driver, GooseDriverError, GooseOptions};
use super::open_loop::{self, OpenLoopOptions};
use super::record::Shared;
use crate::driver::client::{self, BackendStats, ClientError, GatewaySnapshot};
use crate::driver::plan::{Plan, Scale};
use crate::judging::measured::{self as analysis, RunFacts};

/// Which driver sends the load.
#[derive(Debug, Clone)]
pub enum Driver {
    /// Goose users paced to the schedule (closed loop per user).
    Goose(Box<GooseOptions>),
    /// A tokio dispatcher, one task per request (open loop).
    OpenLoop(OpenLoopOptions),
}

impl Driver {
    /// The driver in words, for results.
    pub fn describe(&self) -> String {
        match self {
            Driver::Goose(o) => format!(
                "goose {} (closed loop: {} users paced to the arrival schedule)",
                goose_driver::GOOSE_VERSION,
                o.config.users.unwrap_or(o.users)
            ),
            Driver::OpenLoop(o) => format!(
                "open loop on tokio + hyper (at most {} requests in flight)",
                o.max_in_flight
            ),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The plan (an already scaled workload and its arrivals).
    pub plan: Arc<Plan>,
    /// The scale it was built with, for the results.
    pub scale: Scale,
    /// Gateway base URLs.
    pub targets: Vec<String>,
    /// The backend's base URL, for ground truth.
    pub backend: Option<String>,
    /// Store label for the results.
    pub store: String,
    /// Algorithm label; default: what the gateways' `/metrics` say.
    pub algorithm: Option<String>,
    /// Refuse targets that are not ratelab gateways.
    pub check_gateway: bool,
    /// The driver.
    pub driver: Driver,
    /// Show a progress line on stderr (only when it is a terminal).
    pub progress: bool,
}

/// Why a run could not start (or goose failed outright).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A target or the backend is unusable.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Goose refused an option or failed.
    #[error(transparent)]
    Goose(#[from] GooseDriverError),
    /// No targets given.
    #[error("no target: give at least one gateway URL with --target")]
    NoTarget,
}

async fn gateway_sum(c: &client::HttpClient, targets: &[String]) -> Option<GatewaySnapshot> {
    let mut sum = GatewaySnapshot::default();
    for t in targets {
        let s = client::gateway_metrics(c, t, Duration::from_secs(2))
            .await
            .ok()?;
        sum.add(&s);
    }
    Some(sum)
}

fn progress_line(shared: &Shared, began: Instant) -> String {
    let live = &shared.live;
    let total = shared.plan.len();
    let duration = shared.plan.workload.duration() as f64 / 1e9;
    let elapsed = shared.started().map_or(0.0, |s| {
        Instant::now().saturating_duration_since(s).as_secs_f64()
    });
    let phase = shared
        .plan
        .workload
        .phases
        .iter()
        .rev()
        .find(|p| p.start as f64 / 1e9 <= elapsed)
        .map_or("starting", |p| p.name.as_str());
    let sent = live.sent.load(Ordering::Relaxed);
    let rate = sent as f64 / began.elapsed().as_secs_f64().max(1e-3);
    format!(
        "\r{phase:>10} {elapsed:6.1}/{duration:.1} s  sent {sent}/{total}  admitted {}  429 {}  errors {}  max lag {:.0} ms  ({rate:.0}/s)   ",
        live.admitted.load(Ordering::Relaxed),
        live.rejected.load(Ordering::Relaxed),
        live.errors.load(Ordering::Relaxed),
        live.max_lag.load(Ordering::Relaxed) as f64 / 1e6,
    )
}

/// Runs `spec` to the end and returns its results (possibly partial: see
/// [`results::Measurement::complete`]).
pub async fn run(spec: LoadSpec) -> Result<Results, LoadError> {
    if spec.targets.is_empty() {
        return Err(LoadError::NoTarget);
    }
    let targets = spec
        .targets
        .iter()
        .map(|t| client::base_url(t))
        .collect::<Result<Vec<_>, _>>()?;
    let backend = spec.backend.as_deref().map(client::base_url).transpose()?;
    if let Driver::Goose(o) = &spec.driver {
        goose_driver::check_configuration(&o.config)?;
    }
    let http = client::client(8);

    // Before: the targets are gateways, the backend answers.
    let mut before_gw = GatewaySnapshot::default();
    let mut is_gateway = true;
    for t in &targets {
        if spec.check_gateway {
            let s = client::probe_gateway(&http, t).await?;
            before_gw.add(&s);
        } else {
            match client::gateway_metrics(&http, t, Duration::from_secs(2)).await {
                Ok(s) => before_gw.add(&s),
                Err(_) => is_gateway = false,
            }
        }
    }
    let before_stats: Option<BackendStats> = match &backend {
        Some(b) => Some(client::backend_stats(&http, b).await?),
        None => None,
    };

    let mut notes = Vec::new();
    if !is_gateway {
        notes.push(
            "the targets expose no ratelab gateway metrics: loaded anyway (--no-gateway-check)"
                .to_owned(),
        );
    }
    let algorithm = spec.algorithm.clone().unwrap_or_else(|| {
        if before_gw.algorithms.is_empty() {
            "unknown".to_owned()
        } else {
            before_gw
                .algorithms
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join("+")
        }
    });

    let lead = Duration::from_millis(300);
    let shared = Arc::new(Shared::new(Arc::clone(&spec.plan), targets.clone(), lead));
    let done = Arc::new(AtomicBool::new(false));

    // The scraper: the gateways' fallback counters once a second (for the failure
    // drill's timeline).
    let scraper = is_gateway.then(|| {
        let shared = Arc::clone(&shared);
        let done = Arc::clone(&done);
        let targets = targets.clone();
        tokio::spawn(async move {
            let http = client::client(targets.len().max(1));
            let mut samples = Vec::new();
            while !done.load(Ordering::Relaxed) {
                if let Some(start) = shared.started() {
                    let t = Instant::now()
                        .saturating_duration_since(start)
                        .as_secs_f64();
                    if let Some(s) = gateway_sum(&http, &targets).await {
                        samples.push((t, s.fallbacks));
                    }
                }
                tokio::time::sleep(Duration::from_millis(1000)).await;
            }
            samples
        })
    });

    let progress = (spec.progress && std::io::stderr().is_terminal()).then(|| {
        let shared = Arc::clone(&shared);
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let began = Instant::now();
            while !done.load(Ordering::Relaxed) {
                let line = progress_line(&shared, began);
                {
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(line.as_bytes());
                    let _ = err.flush();
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{}", progress_line(&shared, began));
        })
    });

    // Say when the schedule starts in wall-clock time (the open loop starts at once,
    // goose once its users run), so a script can time events (a Redis outage) by it.
    if let Driver::OpenLoop(_) = &spec.driver {
        shared.start();
    }
    let announce = {
        let shared = Arc::clone(&shared);
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Some(start) = shared.started() {
                    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                    if let Ok(now) = unix {
                        let at = now + start.saturating_duration_since(Instant::now());
                        eprintln!(
                            "ratelab load: schedule starts at unix {:.3}",
                            at.as_secs_f64()
                        );
                    }
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let driver_result = match &spec.driver {
        Driver::Goose(options) => goose_driver::run(Arc::clone(&shared), (**options).clone()).await,
        Driver::OpenLoop(options) => {
            let cancelled = Arc::new(AtomicBool::new(false));
            let on_signal = {
                let cancelled = Arc::clone(&cancelled);
                tokio::spawn(async move {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        cancelled.store(true, Ordering::Relaxed);
                    }
                })
            };
            open_loop::run(Arc::clone(&shared), *options, cancelled).await;
            on_signal.abort();
            Ok(())
        }
    };
    done.store(true, Ordering::Relaxed);
    announce.abort();
    if let Some(p) = progress {
        let _ = p.await;
    }
    let mut fallback_samples = match scraper {
        Some(s) => s.await.unwrap_or_default(),
        None => Vec::new(),
    };
    if let Err(e) = driver_result {
        // Goose failed while running: keep what was measured, say why.
        shared.stop(e.to_string());
    }

    // After: the backend counts each request before answering it, so this is exact.
    let after_stats = match &backend {
        Some(b) => match client::backend_stats(&http, b).await {
            Ok(s) => Some(s),
            Err(e) => {
                notes.push(format!(
                    "could not read the backend's counts after the run: {e}"
                ));
                None
            }
        },
        None => None,
    };
    let after_gw = if is_gateway {
        gateway_sum(&http, &targets).await
    } else {
        None
    };
    if let (Some(start), Some(after)) = (shared.started(), &after_gw) {
        let t = Instant::now()
            .saturating_duration_since(start)
            .as_secs_f64();
        fallback_samples.push((t, after.fallbacks));
    }
    if is_gateway && after_gw.is_none() {
        notes.push("could not read the gateways' /metrics after the run".to_owned());
    }

    let (records, unfinished) = shared.records();
    let facts = RunFacts {
        algorithm,
        store: spec.store.clone(),
        driver: spec.driver.describe(),
        targets: targets.clone(),
        scale: spec.scale,
        late_after: shared.late_after.as_nanos() as u64,
        stopped: shared.stop_reason(),
        unfinished,
        backend: before_stats.zip(after_stats),
        gateway: if is_gateway {
            after_gw.map(|a| (before_gw, a))
        } else {
            None
        },
        fallback_samples,
        without_policy: shared.live.without_policy.load(Ordering::Relaxed),
        notes,
    };
    Ok(analysis::results(&spec.plan, records, &facts))
}
