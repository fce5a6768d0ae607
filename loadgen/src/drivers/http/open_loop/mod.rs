//! The open-loop driver: a fixed pool of HTTP/1.1 connections, each a tokio task that
//! takes the next arrival of its target's schedule, sends it when it is due — whether
//! or not any other request has been answered — and records it. The pool is sized from
//! the workload's peak rate before the start (as wrk2's connections are fixed) and does
//! not grow: an arrival that finds every connection busy waits for the first one free,
//! and its lateness counts in its latency.
//!
//! It exists beside goose to measure what a closed-loop tool cannot: the gateway under
//! a rate that keeps arriving regardless of its latency, and the load generator's own
//! ceiling on this machine. The guarantees: each arrival is sent at most once, at most
//! 1 ms before it is due (tokio's timer granularity) and never deliberately after; at
//! most `max_in_flight` connections (one request in flight each) exist at once; an
//! arrival that finds them all busy waits, and its lateness is recorded, never hidden —
//! latency is judged from the instant it was due (coordinated omission corrected, as
//! wrk2 does: see [`crate::judging`]).
//!
//! Why the pool does not grow: a target that cannot keep up answers later, so more
//! arrivals find every connection busy; opening connections then only adds work to a
//! machine that is already the limit (an earlier version grew to 2,048 connections at
//! the ceiling and held 0.57× of wrk's rate). Lateness is what coordinated-omission
//! correction is for: the requests that waited are counted from when they were due.
//!
//! Where the time goes, and why it is built this way (docs/load.md has the measurements):
//! no task, channel or allocation per request — a connection task renders the request
//! into its own buffer from parts prepared once ([`wire::Requests`]), writes it with one
//! system call and reads the response with one; the response head is parsed in place
//! ([`wire::parse_head`]); counters go to the shared live counters in batches
//! ([`Tally`](super::record::Tally)); a request's timeout costs no timer operation unless it is near.

mod conn;
mod lane;
#[cfg(test)]
mod tests;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use self::lane::{Lane, Target};
use self::wire::Requests;
use super::record::RunState;

/// How the open-loop driver runs.
#[derive(Debug, Clone, Copy)]
pub struct OpenLoopOptions {
    /// Most requests outstanding at once: the most connections, over all targets (each
    /// carries one request at a time); caps `connections`.
    pub max_in_flight: usize,
    /// Connections per target, opened before the schedule starts and kept for the run;
    /// `None`: enough for the workload's peak rate ([`default_connections`]).
    pub connections: Option<usize>,
    /// Threads the connections are spread over, each with its own single-threaded
    /// runtime; `None`: one per CPU. At most the connections per target.
    pub threads: Option<usize>,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// Connections per target: by Little's law, the peak rate times the time a request
/// holds its connection. The budget is 1 ms per request (a loopback gateway answers in
/// a fraction of that; wrk reaches this machine's ceiling with 64 connections at about
/// 0.6 ms each), at least 16 — so that a busy machine's stalls of a few milliseconds at
/// low rates do not make every arrival late — and at most 256.
pub fn default_connections(peak_rate: f64, targets: usize) -> usize {
    ((peak_rate / 1000.0 / targets.max(1) as f64).ceil() as usize).clamp(16, 256)
}

/// What the driver did with its connections, for the run's notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenLoopReport {
    /// Connection tasks, over all targets (fixed for the run).
    pub connections: usize,
    /// Connections opened (first opens and reopens after a close or an error).
    pub opened: u64,
}

impl OpenLoopReport {
    /// The report in words.
    pub fn describe(&self) -> String {
        format!(
            "open-loop driver: {} connections, {} opened in all (reopens included)",
            self.connections, self.opened
        )
    }
}

/// The connection tasks and what they share.
#[derive(Debug)]
struct Pool {
    shared: Arc<RunState>,
    cancelled: Arc<AtomicBool>,
    timeout: Duration,
    running: AtomicUsize,
    opened: AtomicU64,
    finished: Notify,
}

/// Counts a connection task out when it ends, however it ends.
struct Running(Arc<Pool>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.finished.notify_one();
        }
    }
}

impl Pool {
    /// Starts one connection task of `lane` on the runtime `on`.
    fn spawn(self: &Arc<Self>, lane: &Arc<Lane>, on: &Handle) -> JoinHandle<()> {
        self.running.fetch_add(1, Ordering::AcqRel);
        let running = Running(Arc::clone(self));
        let lane = Arc::clone(lane);
        on.spawn(async move {
            conn::Connection::new(&running.0, lane).drive().await;
            drop(running);
        })
    }
}

/// Runs `lanes` (each with its number of connections) on a thread of their own, on a
/// single-threaded runtime: a connection's wake-ups, timers and I/O never leave its
/// thread (no work-stealing, no cross-thread wake-up), as wrk's threads each run their
/// own event loop. When the thread or its runtime cannot be started, the connections
/// run on `outer` instead.
fn start_thread(
    pool: &Arc<Pool>,
    lanes: Vec<(Arc<Lane>, usize)>,
    thread: usize,
    outer: &Handle,
) -> Option<std::thread::JoinHandle<()>> {
    let on_outer = |lanes: &[(Arc<Lane>, usize)]| {
        for (lane, n) in lanes {
            for _ in 0..*n {
                pool.spawn(lane, outer);
            }
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::warn!(error = %e, "open-loop driver: no runtime of its own; sharing the main one");
            on_outer(&lanes);
            return None;
        }
    };
    let for_thread = Arc::clone(pool);
    let lanes_of_thread = lanes.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("ratelab-open-{thread}"))
        .spawn(move || {
            let handle = runtime.handle().clone();
            runtime.block_on(async move {
                let mut tasks = Vec::new();
                for (lane, n) in &lanes_of_thread {
                    for _ in 0..*n {
                        tasks.push(for_thread.spawn(lane, &handle));
                    }
                }
                for task in tasks {
                    let _ = task.await;
                }
            });
        });
    match spawned {
        Ok(thread) => Some(thread),
        Err(e) => {
            tracing::warn!(error = %e, "open-loop driver: no thread of its own; sharing the main runtime");
            on_outer(&lanes);
            None
        }
    }
}

/// The socket addresses of a base URL's authority (`http://host:port`).
async fn resolve(base: &str) -> (String, Vec<SocketAddr>) {
    let authority = base
        .strip_prefix("http://")
        .unwrap_or(base)
        .trim_end_matches('/')
        .to_owned();
    let with_port = if authority.rsplit(':').next().is_some_and(|p| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']')
    }) {
        authority.clone()
    } else {
        format!("{authority}:80")
    };
    let addrs = match tokio::net::lookup_host(with_port.as_str()).await {
        Ok(addrs) => addrs.collect(),
        Err(e) => {
            tracing::warn!(target = %base, error = %e, "cannot resolve the target");
            Vec::new()
        }
    };
    (authority, addrs)
}

/// Plays the schedule until it is exhausted, the run stops, or `cancelled` is set;
/// returns when every request sent has finished (or timed out).
pub async fn run(
    shared: Arc<RunState>,
    options: OpenLoopOptions,
    cancelled: Arc<AtomicBool>,
) -> OpenLoopReport {
    let targets = shared.targets.len().max(1);
    let per_target = options
        .connections
        .unwrap_or_else(|| default_connections(shared.plan.peak_rate(), targets))
        .min(options.max_in_flight / targets)
        .max(1);
    // Every lane needs a connection: no more threads than connections per target.
    let threads = options
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .clamp(1, per_target);
    let mut by_thread: Vec<Vec<(Arc<Lane>, usize)>> = vec![Vec::new(); threads];
    for (index, base) in shared.targets.iter().enumerate() {
        let (authority, addrs) = resolve(base).await;
        let target = Arc::new(Target::new(addrs, Requests::new(&shared.plan, &authority)));
        for (thread, lanes) in by_thread.iter_mut().enumerate() {
            let lane = Lane::new(Arc::clone(&target), (index, targets));
            // The target's connections, spread as evenly as they go.
            let n = per_target / threads + usize::from(thread < per_target % threads);
            lanes.push((Arc::new(lane), n));
        }
    }
    let pool = Arc::new(Pool {
        shared,
        cancelled,
        timeout: options.timeout,
        running: AtomicUsize::new(0),
        opened: AtomicU64::new(0),
        finished: Notify::new(),
    });
    let outer = Handle::current();
    let started: Vec<_> = by_thread
        .into_iter()
        .enumerate()
        .filter_map(|(thread, lanes)| start_thread(&pool, lanes, thread, &outer))
        .collect();
    while pool.running.load(Ordering::Acquire) > 0 {
        // `notify_one` keeps a permit when nobody waits yet: no wake-up is lost.
        pool.finished.notified().await;
    }
    // The threads end once their last connection has: wait for them off the runtime.
    let _ = tokio::task::spawn_blocking(move || {
        for thread in started {
            let _ = thread.join();
        }
    })
    .await;
    OpenLoopReport {
        connections: per_target * targets,
        opened: pool.opened.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod peak_tests {
    use super::*;

    #[test]
    fn connections_follow_the_peak_rate() {
        assert_eq!(default_connections(100.0, 1), 16);
        assert_eq!(default_connections(64_000.0, 1), 64);
        assert_eq!(default_connections(64_000.0, 2), 32);
        assert_eq!(default_connections(1e7, 1), 256);
    }
}
