//! What runs beside the drivers while the load plays: the progress line, the scraper
//! of the gateways' fallback counters (the failure drill's timeline), and the one line
//! that says when the schedule starts in wall-clock time.
//!
//! Each task stops on its own once `done` is set; none can fail the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;

use super::record::RunState;
use super::targets::gateway_sum;
use crate::drivers::http::client;
use crate::progress::ProgressLine;

/// Seconds since the schedule started, when it has.
fn since_start(shared: &RunState) -> Option<f64> {
    shared
        .started()
        .map(|s| Instant::now().saturating_duration_since(s).as_secs_f64())
}

/// The progress message: phase, time into the schedule, outcomes so far, the worst
/// lateness and the achieved rate.
fn progress_message(shared: &RunState, began: Instant) -> String {
    let live = &shared.live;
    let duration = shared.plan.workload.duration() as f64 / 1e9;
    let elapsed = since_start(shared).unwrap_or(0.0);
    // Past the schedule's end the driver is draining late requests: say so rather
    // than read "8.0/7.5 s".
    let phase = if elapsed > duration {
        "draining"
    } else {
        shared
            .plan
            .workload
            .phases
            .iter()
            .rev()
            .find(|p| p.start as f64 / 1e9 <= elapsed)
            .map_or("starting", |p| p.name.as_str())
    };
    let elapsed = elapsed.min(duration);
    let sent = live.sent.load(Ordering::Relaxed);
    let rate = sent as f64 / began.elapsed().as_secs_f64().max(1e-3);
    format!(
        "{phase} {elapsed:.1}/{duration:.1} s · sent {sent}/{} · admitted {} · 429 {} · errors {} · max lag {:.0} ms · {rate:.0}/s",
        shared.plan.len(),
        live.admitted.load(Ordering::Relaxed),
        live.rejected.load(Ordering::Relaxed),
        live.errors.load(Ordering::Relaxed),
        live.max_lag.load(Ordering::Relaxed) as f64 / 1e6,
    )
}

/// The progress line until `done`; its last state stays on screen as the run's tally.
/// Nothing is drawn unless `enabled` and stderr is a terminal. The one line that says
/// when the schedule starts goes through it too ([`start_message`]), above the bar.
pub(crate) fn progress(
    shared: &Arc<RunState>,
    done: &Arc<AtomicBool>,
    enabled: bool,
) -> JoinHandle<()> {
    let line = ProgressLine::new(shared.plan.len() as u64, enabled);
    let shared = Arc::clone(shared);
    let done = Arc::clone(done);
    tokio::spawn(async move {
        let began = Instant::now();
        let mut last_drawn: Option<Instant> = None;
        let mut announced = false;
        loop {
            if !announced && let Some(start) = shared.started() {
                announced = true;
                if let Some(message) = start_message(start) {
                    line.say(&message);
                }
            }
            let finished = done.load(Ordering::Relaxed);
            if !line.is_hidden()
                && (finished || last_drawn.is_none_or(|t| t.elapsed() >= ProgressLine::REFRESH))
            {
                let sent = shared.live.sent.load(Ordering::Relaxed);
                line.set(sent, progress_message(&shared, began));
                last_drawn = Some(Instant::now());
            }
            if finished {
                break;
            }
            // Poll often until the start is announced (scripts time events by it), then
            // at the display's pace.
            let pause = if announced {
                ProgressLine::REFRESH
            } else {
                Duration::from_millis(5)
            };
            tokio::time::sleep(pause).await;
        }
        line.keep();
    })
}

/// Samples the gateways' fallback counter once a second while the schedule runs:
/// `(seconds since the start, fallbacks so far)`.
pub(crate) fn scraper(
    shared: &Arc<RunState>,
    done: &Arc<AtomicBool>,
    targets: Vec<String>,
) -> JoinHandle<Vec<(f64, u64)>> {
    let shared = Arc::clone(shared);
    let done = Arc::clone(done);
    tokio::spawn(async move {
        let http = client::client(targets.len().max(1));
        let mut samples = Vec::new();
        while !done.load(Ordering::Relaxed) {
            if let Some(t) = since_start(&shared)
                && let Some(s) = gateway_sum(&http, &targets).await
            {
                samples.push((t, s.fallbacks));
            }
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
        samples
    })
}

/// The line that says when the schedule starts, in Unix time (the open loop starts at
/// once, goose once its users run), so a script can time events — a Redis outage — by
/// it.
fn start_message(start: Instant) -> Option<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    let at = now + start.saturating_duration_since(Instant::now());
    Some(format!(
        "ratelab load: schedule starts at unix {:.3}",
        at.as_secs_f64()
    ))
}
