//! One load run, end to end: check the targets, read the ground truth, play the plan
//! with the chosen driver while showing progress and scraping the gateways, read the
//! ground truth again, and turn it all into results.
//!
//! The guarantee: a run that starts always ends with results — a run cut short (Ctrl-C,
//! every target down, a schedule the machine cannot hold) keeps what it measured and is
//! marked incomplete with the reason. Only what prevents starting is an error: a target
//! that does not answer, or answers but is not a ratelab gateway, or a backend whose
//! `/stats` cannot be read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use results::Results;

use super::goose::{self as goose_driver, GooseDriverError, GooseOptions};
use super::open_loop::{self, OpenLoopOptions, OpenLoopReport};
use super::record::RunState;
use super::targets::{self, After, Before};
use super::watch;
use crate::drivers::http::client::{self, ClientError};
use crate::drivers::http::plan::{LoadPlan, Scale};
use crate::judging::measured::{self as analysis, RunFacts};

/// Which driver sends the load.
#[derive(Debug, Clone)]
pub enum Driver {
    /// Goose users paced to the schedule (closed loop per user).
    Goose(Box<GooseOptions>),
    /// A pool of connection tasks sending each arrival when it is due (open loop).
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
            Driver::OpenLoop(_) => "open loop on tokio (a fixed pool of HTTP/1.1 connections, one request in flight each, on a single-threaded runtime per thread; latency from each request's due instant)".to_owned(),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The plan (an already scaled workload and its arrivals).
    pub plan: Arc<LoadPlan>,
    /// The scale it was built with, for the results.
    pub scale: Scale,
    /// Gateway base URLs.
    pub targets: Vec<String>,
    /// The gateways' admin base URLs (`admin_listen`, where `/metrics` is served), one
    /// per target in the same order; empty: `/metrics` is read from the targets.
    pub admin: Vec<String>,
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

/// Runs `spec` to the end and returns its results (possibly partial: see
/// [`results::Measurement::complete`]).
pub async fn run(spec: LoadSpec) -> Result<Results, LoadError> {
    if spec.targets.is_empty() {
        return Err(LoadError::NoTarget);
    }
    if let Driver::Goose(o) = &spec.driver {
        goose_driver::check_configuration(&o.config)?;
    }
    let http = client::client(8);
    let before = targets::before(
        &http,
        &spec.targets,
        &spec.admin,
        spec.backend.as_deref(),
        spec.check_gateway,
    )
    .await?;
    let mut notes = Vec::new();
    if !before.is_gateway {
        notes.push(
            "the targets expose no ratelab gateway metrics: loaded anyway (--no-gateway-check)"
                .to_owned(),
        );
    }

    let lead = Duration::from_millis(300);
    let shared = Arc::new(RunState::new(
        Arc::clone(&spec.plan),
        before.targets.clone(),
        lead,
    ));
    let done = Arc::new(AtomicBool::new(false));
    let scraper = before
        .is_gateway
        .then(|| watch::scraper(&shared, &done, before.metrics.clone()));
    let progress = watch::progress(&shared, &done, spec.progress);
    if let Driver::OpenLoop(_) = &spec.driver {
        shared.start();
    }
    let driven = drive(&spec.driver, &shared).await;
    done.store(true, Ordering::Relaxed);
    if let Ok(Some(report)) = &driven {
        notes.push(report.describe());
    }
    let _ = progress.await;
    let mut fallback_samples = match scraper {
        Some(s) => s.await.unwrap_or_default(),
        None => Vec::new(),
    };
    if let Err(e) = driven {
        // Goose failed while running: keep what was measured, say why.
        shared.stop(e.to_string());
    }

    let after = targets::after(&http, &before, &mut notes).await;
    if let (Some(start), Some(gw)) = (shared.started(), &after.gateways) {
        let t = Instant::now()
            .saturating_duration_since(start)
            .as_secs_f64();
        fallback_samples.push((t, gw.fallbacks));
    }
    let (records, unfinished) = shared.records();
    let facts = RunFacts {
        unfinished,
        fallback_samples,
        notes,
        ..facts(&spec, &shared, before, after)
    };
    Ok(analysis::results(&spec.plan, records, &facts))
}

/// Plays the plan with the chosen driver until it ends or is cancelled (Ctrl-C); the
/// open-loop driver's report on its connections.
async fn drive(
    driver: &Driver,
    shared: &Arc<RunState>,
) -> Result<Option<OpenLoopReport>, GooseDriverError> {
    match driver {
        Driver::Goose(options) => goose_driver::run(Arc::clone(shared), (**options).clone())
            .await
            .map(|()| None),
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
            let report = open_loop::run(Arc::clone(shared), *options, cancelled).await;
            on_signal.abort();
            Ok(Some(report))
        }
    }
}

/// `at` in Unix nanoseconds (by the system clock now), for windows aligned to the epoch.
fn unix_instant(at: Instant) -> Option<u64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let elapsed = Instant::now().saturating_duration_since(at);
    u64::try_from(now.checked_sub(elapsed)?.as_nanos()).ok()
}

/// What the analysis needs besides the records, as read before and after the load
/// (the caller adds the unfinished count, the fallback samples and the notes).
fn facts(spec: &LoadSpec, shared: &RunState, before: Before, after: After) -> RunFacts {
    RunFacts {
        algorithm: before.algorithm(spec.algorithm.as_deref()),
        store: spec.store.clone(),
        driver: spec.driver.describe(),
        targets: before.targets,
        scale: spec.scale,
        late_after: shared.late_after.as_nanos() as u64,
        stopped: shared.stop_reason(),
        unfinished: 0,
        backend: before.backend_stats.zip(after.backend_stats),
        gateway: if before.is_gateway {
            after.gateways.map(|a| (before.gateways, a))
        } else {
            None
        },
        fallback_samples: Vec::new(),
        without_policy: shared.live.without_policy.load(Ordering::Relaxed),
        notes: Vec::new(),
        unix_start: shared.started().and_then(unix_instant),
    }
}
