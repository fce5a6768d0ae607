//! The goose driver: plays a [`LoadPlan`](crate::drivers::http::plan::LoadPlan) over HTTP with goose's users.
//!
//! Goose is closed-loop: each user sends a request, waits for the response, then moves
//! on. To offer the workload's *open* arrival process (as Artillery does), every user
//! pulls the next arrival from one shared schedule, sleeps until it is due and sends
//! it; with enough users in flight the offered rate is the workload's. When every user
//! is busy, arrivals leave late: the driver records each request's lateness, and the
//! results report offered vs achieved rate per phase and say plainly when goose could
//! not hold a phase's rate on this machine.
//!
//! The guarantees:
//! - statuses and latencies are counted in our code, once per real request
//!   ([`super::record`]); goose's own metrics are off unless a goose report is
//!   asked for, and its coordinated-omission mitigation — which adds synthetic
//!   requests to its counts — is refused;
//! - goose's telnet and WebSocket controllers are off, and the options that would
//!   fight the pacing (`--host`, `--run-time`, `--users` ramps, `--iterations`,
//!   `--throttle-requests`...) are refused with a message that says why.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use goose::config::GooseConfiguration;
use goose::prelude::{
    GooseAttack, GooseCoordinatedOmissionMitigation, GooseDefault, GooseDefaultType, GooseMethod,
    GooseRequest, GooseUser, Scenario, Transaction, TransactionFunction,
};

use super::record::{Reply, RunState, Tally};
use crate::drivers::http::plan::USER_HEADER;

/// The goose version this driver is built and tested with (pinned in Cargo.toml).
pub const GOOSE_VERSION: &str = "0.19.0";

/// Why goose could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GooseDriverError {
    /// A goose option that contradicts the workload's pacing.
    #[error("goose option {option}: {why}")]
    Option {
        /// The option, as typed on the command line.
        option: &'static str,
        /// Why `ratelab load` refuses it.
        why: &'static str,
    },
    /// Goose itself failed.
    #[error("goose: {0}")]
    Goose(String),
}

/// How the goose driver runs.
#[derive(Debug, Clone)]
pub struct GooseOptions {
    /// Goose users: how many requests can be in flight at once.
    pub users: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Goose's own configuration (from the command line), checked by
    /// [`check_configuration`].
    pub config: GooseConfiguration,
}

/// Refuses goose options that would break the pacing, or the accuracy of the counts.
pub fn check_configuration(c: &GooseConfiguration) -> Result<(), GooseDriverError> {
    let refuse = |option, why| Err(GooseDriverError::Option { option, why });
    if c.host.is_some() {
        return refuse("--host", "give the gateways with --target");
    }
    if c.run_time.is_some() || c.test_plan_given() {
        return refuse(
            "--run-time/--test-plan",
            "the workload's phases set how long the run lasts",
        );
    }
    if c.iterations.is_some() {
        return refuse(
            "--iterations",
            "each user plays arrivals until the schedule is exhausted",
        );
    }
    if c.increase_rate.is_some()
        || c.increase_time.is_some()
        || c.decrease_rate.is_some()
        || c.decrease_time.is_some()
    {
        return refuse(
            "--increase-*/--decrease-*",
            "users all start at once; the schedule sets the pace",
        );
    }
    if c.throttle_requests.is_some() {
        return refuse(
            "--throttle-requests",
            "the workload's arrival rate sets the pace",
        );
    }
    if c.co_mitigation
        .as_ref()
        .is_some_and(|m| *m != GooseCoordinatedOmissionMitigation::Disabled)
    {
        return refuse(
            "--co-mitigation",
            "it adds synthetic requests to the counts; the driver measures lateness itself",
        );
    }
    if c.websocket
        || c.telnet_host.is_some()
        || c.telnet_port.is_some()
        || c.websocket_host.is_some()
        || c.websocket_port.is_some()
    {
        return refuse(
            "--websocket/--telnet-*",
            "goose's controllers stay off during a ratelab run",
        );
    }
    if c.no_reset_metrics || c.running_metrics.is_some() {
        return refuse(
            "--no-reset-metrics/--running-metrics",
            "goose would print on stdout, where ratelab's results go",
        );
    }
    if c.no_autostart {
        return refuse("--no-autostart", "there is no controller to start the run");
    }
    if c.scenarios.is_some() || c.list || c.scenarios_list || c.version || c.render_report.is_some()
    {
        return refuse(
            "--scenarios/--list/--version/--render-report",
            "ratelab load has one scenario and runs it",
        );
    }
    Ok(())
}

trait TestPlanGiven {
    fn test_plan_given(&self) -> bool;
}

impl TestPlanGiven for GooseConfiguration {
    fn test_plan_given(&self) -> bool {
        // The test plan is not a public field; the serialized configuration names it.
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("test_plan").cloned())
            .is_some_and(|v| !v.is_null())
    }
}

/// How many goose users to start for a peak rate: enough to keep `peak × 50 ms` in
/// flight (a closed-loop user sends one request at a time, so a phase holds its rate
/// while responses take under 50 ms), at least 4, at most 1024.
pub fn default_users(peak_rate: f64) -> usize {
    ((peak_rate * 0.05).ceil() as usize).clamp(4, 1024)
}

fn method(m: &http::Method) -> GooseMethod {
    match *m {
        http::Method::POST => GooseMethod::Post,
        http::Method::PUT => GooseMethod::Put,
        http::Method::PATCH => GooseMethod::Patch,
        http::Method::DELETE => GooseMethod::Delete,
        http::Method::HEAD => GooseMethod::Head,
        _ => GooseMethod::Get,
    }
}

/// Goose starts its users one by one; the schedule starts once they all run (or after
/// this long), so the first arrivals do not wait for users still being launched.
const LAUNCH_LIMIT: Duration = Duration::from_secs(10);

/// Why the driver stops goose itself, once every arrival has been handed out (goose
/// then lets every user finish the request in flight and return).
const PLAYED: &str = "ratelab: the schedule has been played";

/// Ends the attack once the schedule is exhausted or the run stopped: goose's
/// killswitch, with a reason that says it was ours. (Goose's own end, `--iterations`,
/// prints "N users launched." on stdout, which is ratelab's: see `attack`.)
fn end_attack(played: &AtomicBool) {
    played.store(true, Ordering::Release);
    goose::trigger_killswitch(PLAYED);
}

/// One goose user: waits until every user runs, then pulls arrivals from the shared
/// schedule until it is exhausted, then ends the attack. Goose calls it again until
/// the end reaches the user: a call that finds nothing left to play pauses briefly
/// rather than spin.
async fn play(shared: &RunState, played: &AtomicBool, user: &mut GooseUser, users: usize) {
    if played.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        return;
    }
    // A killswitch that is not ours: Ctrl-C (`wait_until_due` then stops the run).
    let cancelled = || goose::is_killswitch_triggered() && !played.load(Ordering::Acquire);
    if shared.worker_ready() >= users {
        shared.start_at(Instant::now() + Duration::from_millis(50));
    } else {
        let deadline = Instant::now() + LAUNCH_LIMIT;
        while shared.started().is_none() && !shared.is_stopped() && !cancelled() {
            if Instant::now() >= deadline {
                shared.start();
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut tally = Tally::default();
    let mut flushed = Instant::now();
    while let Some(i) = shared.next() {
        if tally.pending() >= 32 || flushed.elapsed() >= FLUSH_EVERY {
            tally.flush(&shared.live);
            flushed = Instant::now();
        }
        if !shared.wait_until_due(i, cancelled).await {
            break;
        }
        let spec = shared.plan.request(i);
        let url = shared.url(i, &spec.path);
        let builder = match user.get_request_builder(&method(spec.method), &url) {
            Ok(b) => b.header(USER_HEADER, spec.user.as_str()),
            Err(_) => {
                tally.sent(shared.note_sent(i, Instant::now()));
                shared.note_finished(i, Duration::ZERO, Reply::Other, false, &mut tally);
                continue;
            }
        };
        let builder = if spec.body {
            builder
                .header(http::header::CONTENT_TYPE.as_str(), "application/json")
                .body("{}")
        } else {
            builder
        };
        let request = GooseRequest::builder().set_request_builder(builder).build();
        let sent = Instant::now();
        tally.sent(shared.note_sent(i, sent));
        let (reply, has_policy) = match user.request(request).await {
            Ok(goose) => match goose.response {
                Ok(res) => {
                    let status = res.status().as_u16();
                    let has_policy = res.headers().contains_key("ratelimit-policy");
                    // Read the body, so the connection is reused and latency covers it.
                    match res.bytes().await {
                        Ok(_) => (Reply::Status(status), has_policy),
                        Err(e) if e.is_timeout() => (Reply::Timeout, false),
                        Err(_) => (Reply::Other, false),
                    }
                }
                Err(e) if e.is_timeout() => (Reply::Timeout, false),
                Err(e) if e.is_connect() => (Reply::Connect, false),
                Err(_) => (Reply::Other, false),
            },
            Err(_) => (Reply::Other, false),
        };
        shared.note_finished(i, sent.elapsed(), reply, has_policy, &mut tally);
    }
    tally.flush(&shared.live);
    end_attack(played);
}

/// A user adds its counts to the live counters at least this often.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Runs goose until the shared schedule is exhausted or the run stops (Ctrl-C, a
/// target that refuses every connection, a schedule hopelessly behind).
pub async fn run(shared: Arc<RunState>, options: GooseOptions) -> Result<(), GooseDriverError> {
    check_configuration(&options.config)?;
    super::log_bridge::install();
    let played = Arc::new(AtomicBool::new(false));
    let attack = attack(&shared, &played, options)?;
    // Goose clears its killswitch when a run starts; a Ctrl-C (goose's handler pulls
    // the killswitch) must stop our run too, the end we pull ourselves must not.
    let watcher = {
        let shared = Arc::clone(&shared);
        let played = Arc::clone(&played);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if goose::is_killswitch_triggered() && !played.load(Ordering::Acquire) {
                    shared.stop("interrupted");
                }
            }
        })
    };
    let result = attack.execute().await;
    watcher.abort();
    result.map(|_| ()).map_err(goose_err)
}

fn goose_err(e: goose::GooseError) -> GooseDriverError {
    GooseDriverError::Goose(e.to_string())
}

/// The goose attack: one scenario whose users play the plan's arrivals, goose's
/// defaults set so that only our records count (no metrics unless a goose report or
/// log was asked for, no coordinated-omission mitigation). Users run until the
/// schedule is played ([`end_attack`]): goose's `Iterations` would end the run too,
/// but makes goose print "N users launched." on stdout, where `--json` goes.
fn attack(
    shared: &Arc<RunState>,
    played: &Arc<AtomicBool>,
    options: GooseOptions,
) -> Result<Box<GooseAttack>, GooseDriverError> {
    let wants_metrics = !options.config.report_file.is_empty()
        || options.config.request_log.is_some()
        || options.config.error_log.is_some()
        || options.config.transaction_log.is_some()
        || options.config.scenario_log.is_some();
    let quiet = options.config.verbose == 0;
    let users = options.config.users.unwrap_or(options.users).max(1);
    let host = shared.targets.first().cloned().unwrap_or_default();
    let timeout = format!("{}", options.timeout.as_secs_f64().max(0.001));
    // Start every user within about a quarter of a second; the schedule waits for them.
    let rate = format!("{}", (users * 4).max(1));

    let for_users = (Arc::clone(shared), Arc::clone(played));
    let transaction: TransactionFunction = Arc::new(move |user| {
        let (shared, played) = (Arc::clone(&for_users.0), Arc::clone(&for_users.1));
        Box::pin(async move {
            play(&shared, &played, user, users).await;
            Ok(())
        })
    });
    let scenario = Scenario::new("ratelab")
        .register_transaction(Transaction::new(transaction).set_name("arrivals"));
    let attack = GooseAttack::initialize_with_config(options.config)
        .map_err(goose_err)?
        .register_scenario(scenario)
        .set_default(GooseDefault::Host, host.as_str())
        .and_then(|a| a.set_default(GooseDefault::Users, users))
        .and_then(|a| a.set_default(GooseDefault::IncreaseRate, rate.as_str()))
        .and_then(|a| a.set_default(GooseDefault::NoTelnet, true))
        .and_then(|a| a.set_default(GooseDefault::NoMetrics, !wants_metrics))
        .and_then(|a| a.set_default(GooseDefault::NoPrintMetrics, true))
        .and_then(|a| a.set_default(GooseDefault::NoErrorSummary, true))
        .and_then(|a| a.set_default(GooseDefault::NoGzip, true))
        .and_then(|a| {
            a.set_default(
                GooseDefault::CoordinatedOmissionMitigation,
                GooseCoordinatedOmissionMitigation::Disabled,
            )
        })
        .and_then(|a| a.set_default(GooseDefault::Timeout, timeout.as_str()))
        .map_err(goose_err)?;
    if quiet {
        attack
            .set_default(GooseDefault::Quiet, 1)
            .map_err(goose_err)
    } else {
        Ok(attack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> GooseConfiguration {
        GooseConfiguration::parse_args_default(args).unwrap()
    }

    #[test]
    fn pacing_options_are_refused() {
        assert!(check_configuration(&parse(&[])).is_ok());
        assert!(check_configuration(&parse(&["--users", "8", "--timeout", "5"])).is_ok());
        for args in [
            &["--host", "http://x"][..],
            &["--run-time", "10s"],
            &["--iterations", "3"],
            &["--increase-rate", "5"],
            &["--throttle-requests", "100"],
            &["--co-mitigation", "average"],
            &["--websocket"],
            &["--test-plan", "10,1s"],
            &["--no-reset-metrics"],
            &["--running-metrics", "5"],
        ] {
            let e = check_configuration(&parse(args)).unwrap_err().to_string();
            assert!(e.starts_with("goose option --"), "{args:?}: {e}");
        }
    }

    #[test]
    fn users_follow_the_peak_rate() {
        assert_eq!(default_users(10.0), 4);
        assert_eq!(default_users(600.0), 30);
        assert_eq!(default_users(1e6), 1024);
    }
}
