//! The open-loop driver: a pool of HTTP/1.1 connections, each a tokio task that takes
//! the next arrival of its target's schedule, sends it when it is due — whether or not
//! any other request has been answered — and records it; the pool grows whenever an
//! arrival finds every connection busy, so the offered rate does not sag when the
//! target slows down.
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
//! Where the time goes, and why it is built this way (docs/load.md has the measurements):
//! no task, channel or allocation per request — a connection task renders the request
//! into its own buffer from parts prepared once ([`wire::Requests`]), writes it with one
//! system call and reads the response with one; the response head is parsed in place
//! ([`wire::parse_head`]); counters go to the shared live counters in batches
//! ([`Tally`](super::record::Tally)); a request's timeout costs no timer operation unless it is near.

mod conn;
#[cfg(test)]
mod tests;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use self::wire::Requests;
use super::record::RunState;

/// How the open-loop driver runs.
#[derive(Debug, Clone, Copy)]
pub struct OpenLoopOptions {
    /// Most requests outstanding at once: the most connections, over all targets (each
    /// carries one request at a time).
    pub max_in_flight: usize,
    /// Connections opened per target before the schedule starts; `None`: enough for the
    /// workload's peak rate ([`default_connections`]).
    pub connections: Option<usize>,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// Connections to open per target before the start: one per 1,000 requests per second
/// of the peak rate (a request answered within 1 ms frees its connection in time for
/// the next), at least 4, at most 256. The pool grows past this when arrivals find
/// every connection busy.
pub fn default_connections(peak_rate: f64, targets: usize) -> usize {
    ((peak_rate / 1000.0 / targets.max(1) as f64).ceil() as usize).clamp(4, 256)
}

/// What the driver did with its connections, for the run's notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenLoopReport {
    /// Connections opened before the start, over all targets.
    pub initial: usize,
    /// Most connection tasks at once.
    pub most: usize,
    /// Connections opened (first opens and reopens after a close or an error).
    pub opened: u64,
}

impl OpenLoopReport {
    /// The report in words.
    pub fn describe(&self) -> String {
        format!(
            "open-loop driver: {} connections at the start, {} at most, {} opened in all (reopens included)",
            self.initial, self.most, self.opened
        )
    }
}

/// One target's share of the schedule (arrivals `target, target + stride, ...`) and
/// what its connections need.
#[derive(Debug)]
struct Lane {
    target: usize,
    stride: usize,
    next: AtomicUsize,
    /// The target's addresses (empty when its name did not resolve: every request
    /// then records a refused connection).
    addrs: Vec<SocketAddr>,
    requests: Requests,
}

impl Lane {
    /// The next arrival of this lane, or `None` when the lane is exhausted or the run
    /// stopped.
    fn next(&self, shared: &RunState) -> Option<usize> {
        if shared.is_stopped() {
            return None;
        }
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        let i = k.checked_mul(self.stride)?.checked_add(self.target)?;
        (i < shared.plan.len()).then_some(i)
    }
}

/// Lateness past which an arrival is taken as a sign that every connection was busy:
/// the pool grows by one.
const GROW_AFTER: Duration = Duration::from_millis(2);
/// The pool grows by at most one connection per this interval.
const GROW_EVERY_US: u64 = 1_000;

/// The connection tasks and what they share.
#[derive(Debug)]
struct Pool {
    shared: Arc<RunState>,
    cancelled: Arc<AtomicBool>,
    timeout: Duration,
    max: usize,
    created: Instant,
    running: AtomicUsize,
    most: AtomicUsize,
    opened: AtomicU64,
    last_growth_us: AtomicU64,
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
    /// Starts one more connection task on `lane`, unless the pool is full.
    fn spawn(self: &Arc<Self>, lane: &Arc<Lane>) -> bool {
        let admitted = self
            .running
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            });
        let Ok(before) = admitted else {
            return false;
        };
        self.most.fetch_max(before + 1, Ordering::Relaxed);
        let running = Running(Arc::clone(self));
        let lane = Arc::clone(lane);
        tokio::spawn(async move {
            conn::Connection::new(&running.0, lane).drive().await;
            drop(running);
        });
        true
    }

    /// An arrival left `lag` late: when that says every connection was busy, adds one
    /// (at most one per [`GROW_EVERY_US`] over the whole pool).
    fn grow_if_late(self: &Arc<Self>, lane: &Arc<Lane>, lag: Duration) {
        if lag < GROW_AFTER || self.running.load(Ordering::Relaxed) >= self.max {
            return;
        }
        let now = self.created.elapsed().as_micros() as u64 + GROW_EVERY_US;
        let last = self.last_growth_us.load(Ordering::Relaxed);
        if now.saturating_sub(last) < GROW_EVERY_US
            || self
                .last_growth_us
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.spawn(lane);
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
    let max = options.max_in_flight.clamp(1, 1 << 20);
    let per_target = options
        .connections
        .unwrap_or_else(|| default_connections(shared.plan.peak_rate(), targets))
        .max(1);
    let mut lanes = Vec::with_capacity(targets);
    for (target, base) in shared.targets.iter().enumerate() {
        let (authority, addrs) = resolve(base).await;
        lanes.push(Arc::new(Lane {
            target,
            stride: targets,
            next: AtomicUsize::new(0),
            addrs,
            requests: Requests::new(&shared.plan, &authority),
        }));
    }
    let pool = Arc::new(Pool {
        shared,
        cancelled,
        timeout: options.timeout,
        max,
        created: Instant::now(),
        running: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
        opened: AtomicU64::new(0),
        last_growth_us: AtomicU64::new(0),
        finished: Notify::new(),
    });
    let mut initial = 0;
    for _ in 0..per_target {
        for lane in &lanes {
            initial += usize::from(pool.spawn(lane));
        }
    }
    while pool.running.load(Ordering::Acquire) > 0 {
        // `notify_one` keeps a permit when nobody waits yet: no wake-up is lost.
        pool.finished.notified().await;
    }
    OpenLoopReport {
        initial,
        most: pool.most.load(Ordering::Relaxed),
        opened: pool.opened.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod peak_tests {
    use super::*;

    #[test]
    fn connections_follow_the_peak_rate() {
        assert_eq!(default_connections(100.0, 1), 4);
        assert_eq!(default_connections(64_000.0, 1), 64);
        assert_eq!(default_connections(64_000.0, 2), 32);
        assert_eq!(default_connections(1e7, 1), 256);
    }
}
