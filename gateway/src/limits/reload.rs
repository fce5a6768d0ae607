//! Live reload of the routes, limits, tiers and global limits: on SIGHUP, and with
//! `ratelab gateway --watch` when the file changes. A file that does not validate (or
//! changes `[store]`) is logged with the reason and the running configuration stays;
//! every attempt is counted (`ratelab_gateway_config_reloads_total{result}`). The API
//! keys file reloads on the same SIGHUP (the identity resolver's own task).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::GatewayLimiter;
use crate::config::Config;

/// Reads `path` again and applies it to `limiter`; `dry_run` is the command line's
/// `--dry-run`, which a reload keeps.
fn reload(limiter: &GatewayLimiter, path: &Path, dry_run: bool) {
    let mut config = match Config::load(path) {
        Ok(config) => config,
        Err(err) => {
            limiter.reloads.refused.inc();
            tracing::error!(error = %err, "configuration reload refused; keeping the running one");
            return;
        }
    };
    config.dry_run |= dry_run;
    match limiter.reload(&config) {
        Ok(s) => tracing::info!(
            kept = s.kept,
            fresh = s.fresh,
            "configuration reloaded: unchanged limits kept their state"
        ),
        Err(err) => {
            tracing::error!(error = %err, "configuration reload refused; keeping the running one");
        }
    }
}

/// The file's modification time, if it can be read.
fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reloads `path` into `limiter` on every SIGHUP and, with `watch`, whenever the file's
/// modification time changes (checked every `watch`), until the task is aborted.
pub fn spawn_reloader(
    limiter: Arc<GatewayLimiter>,
    path: PathBuf,
    watch: Option<Duration>,
    dry_run: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(s) => Some(s),
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGHUP: the configuration reloads only with --watch");
                None
            }
        };
        let mut seen = modified(&path);
        let mut tick = tokio::time::interval(watch.unwrap_or(Duration::from_secs(3600)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            #[cfg(unix)]
            let signalled = async {
                match hangup.as_mut() {
                    Some(h) => h.recv().await.is_some(),
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let signalled = std::future::pending::<bool>();
            tokio::select! {
                got = signalled => {
                    if !got {
                        return;
                    }
                    seen = modified(&path);
                    reload(&limiter, &path, dry_run);
                }
                _ = tick.tick(), if watch.is_some() => {
                    let now = modified(&path);
                    if now != seen {
                        seen = now;
                        reload(&limiter, &path, dry_run);
                    }
                }
            }
        }
    })
}
