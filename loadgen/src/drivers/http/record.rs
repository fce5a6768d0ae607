//! What every request did, recorded lock-free by whichever driver task sent it.
//!
//! The guarantee: each arrival of the plan is dispatched at most once (a shared
//! counter hands out indices), and its send instant, latency and reply land in its own
//! slot, so counting happens in our code, once per real request — never from the load
//! tool's own statistics, which may add synthetic requests.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::drivers::http::plan::LoadPlan;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// An HTTP response with this status code.
    Status(u16),
    /// No response within the timeout.
    Timeout,
    /// The connection could not be made (refused, reset before a response).
    Connect,
    /// Anything else (a malformed response, a body that failed mid-way).
    Other,
}

impl Reply {
    fn encode(self) -> u64 {
        match self {
            Reply::Status(s) => u64::from(s.clamp(100, 999)),
            Reply::Timeout => 1,
            Reply::Connect => 2,
            Reply::Other => 3,
        }
    }

    fn decode(code: u64) -> Option<Self> {
        match code {
            0 => None,
            1 => Some(Reply::Timeout),
            2 => Some(Reply::Connect),
            3 => Some(Reply::Other),
            s => Some(Reply::Status(s as u16)),
        }
    }

    /// The key this reply is counted under: the status code, or `timeout`, `connect`,
    /// `other`.
    pub fn label(self) -> String {
        match self {
            Reply::Status(s) => s.to_string(),
            Reply::Timeout => "timeout".to_owned(),
            Reply::Connect => "connect".to_owned(),
            Reply::Other => "other".to_owned(),
        }
    }

    /// What the reply says about the limiter's decision.
    ///
    /// `429` is a rejection. Responses the gateway produces itself when it cannot decide
    /// or forward (`400`, `413`, `431`: a refused request; `502`, `503`, `504`: the store
    /// or the backend failed) are errors, as are requests without a response. Anything
    /// else — 2xx, 3xx, other 4xx, and the backend's own `500` — was answered by the
    /// backend, so the limiter admitted it, and the backend counted it.
    pub fn class(self) -> Class {
        match self {
            Reply::Status(429) => Class::Rejected,
            Reply::Status(400 | 413 | 431 | 502 | 503 | 504) => Class::Error,
            Reply::Status(s) if s < 600 => Class::Admitted,
            _ => Class::Error,
        }
    }
}

/// A reply's meaning for accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Admitted by the limiter and answered by the backend.
    Admitted,
    /// Refused by the limiter (429).
    Rejected,
    /// Neither: the store, the backend, the gateway or the network failed.
    Error,
}

/// One finished request, read back after the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Arrival index in the plan.
    pub index: usize,
    /// When it was sent, nanoseconds after the schedule's start.
    pub sent: u64,
    /// Send to complete response, nanoseconds.
    pub latency: u64,
    /// How it ended.
    pub reply: Reply,
}

/// Live counters for the progress display and the abort rules.
#[derive(Debug, Default)]
pub struct Live {
    /// Requests sent.
    pub sent: AtomicU64,
    /// Requests finished.
    pub done: AtomicU64,
    /// Admitted.
    pub admitted: AtomicU64,
    /// Rejected (429).
    pub rejected: AtomicU64,
    /// Errors.
    pub errors: AtomicU64,
    /// Worst lateness so far, nanoseconds.
    pub max_lag: AtomicU64,
    /// Connection failures in a row (reset by any response).
    pub connect_streak: AtomicU64,
    /// Responses without a `RateLimit-Policy` header (not from a ratelab gateway).
    pub without_policy: AtomicU64,
    /// Responses with one.
    pub with_policy: AtomicU64,
}

/// Counts a driver task keeps to itself and adds to [`Live`] now and then, so that
/// tasks on different threads do not write the same cache lines for every request.
#[derive(Debug, Default)]
pub struct Tally {
    /// Requests sent.
    pub sent: u64,
    /// Requests finished.
    pub done: u64,
    /// Admitted.
    pub admitted: u64,
    /// Rejected (429).
    pub rejected: u64,
    /// Errors.
    pub errors: u64,
    /// Worst lateness, nanoseconds.
    pub max_lag: u64,
    /// Responses with a `RateLimit-Policy` header.
    pub with_policy: u64,
    /// Responses without one.
    pub without_policy: u64,
}

impl Tally {
    /// Counts one request sent `lag` late.
    pub fn sent(&mut self, lag: Duration) {
        self.sent += 1;
        self.max_lag = self.max_lag.max(lag.as_nanos() as u64);
    }

    /// Requests counted since the last flush (sent or finished).
    pub fn pending(&self) -> u64 {
        self.sent + self.done
    }

    /// Adds the counts to `live` and starts again from zero.
    pub fn flush(&mut self, live: &Live) {
        let add = |counter: &AtomicU64, n: u64| {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        };
        add(&live.sent, self.sent);
        add(&live.done, self.done);
        add(&live.admitted, self.admitted);
        add(&live.rejected, self.rejected);
        add(&live.errors, self.errors);
        add(&live.with_policy, self.with_policy);
        add(&live.without_policy, self.without_policy);
        if self.max_lag > 0 {
            live.max_lag.fetch_max(self.max_lag, Ordering::Relaxed);
        }
        *self = Tally::default();
    }
}

/// A request may leave this long before it is due: tokio's timer fires on millisecond
/// ticks, so a driver that wakes at the tick at or before the due instant adds no
/// lateness of its own (latency is judged from the due instant, or from the send
/// instant when that came first).
pub const EARLY: Duration = Duration::from_millis(1);

/// Connection failures in a row after which the run stops: every target is down.
pub const CONNECT_STREAK_LIMIT: u64 = 200;

/// The state every driver task shares: the plan, the slots, the clock.
#[derive(Debug)]
pub struct RunState {
    /// What is played.
    pub plan: Arc<LoadPlan>,
    /// Base URLs (`http://127.0.0.1:8080`, no trailing slash); arrival `i` goes to
    /// `targets[i % len]`.
    pub targets: Vec<String>,
    /// Counters.
    pub live: Live,
    /// A request more than this late counts as late.
    pub late_after: Duration,
    /// The run stops when the schedule is this far behind (a tenth of the workload,
    /// at least 5 s, at most 30 s).
    pub give_up_after: Duration,
    next: AtomicUsize,
    ready: AtomicUsize,
    start: OnceLock<Instant>,
    lead: Duration,
    sent: Vec<AtomicU64>,
    result: Vec<AtomicU64>,
    stopped: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl RunState {
    /// State for playing `plan` over `targets`; the schedule starts `lead` after the
    /// first call to [`RunState::start`].
    pub fn new(plan: Arc<LoadPlan>, targets: Vec<String>, lead: Duration) -> Self {
        let n = plan.len();
        let duration = Duration::from_nanos(plan.workload.duration());
        Self {
            plan,
            targets,
            live: Live::default(),
            late_after: Duration::from_millis(10),
            give_up_after: (duration / 10).clamp(Duration::from_secs(5), Duration::from_secs(30)),
            next: AtomicUsize::new(0),
            ready: AtomicUsize::new(0),
            start: OnceLock::new(),
            lead,
            sent: (0..n).map(|_| AtomicU64::new(0)).collect(),
            result: (0..n).map(|_| AtomicU64::new(0)).collect(),
            stopped: AtomicBool::new(false),
            reason: Mutex::new(None),
        }
    }

    /// The schedule's time zero (fixed by the first caller: now plus the lead).
    pub fn start(&self) -> Instant {
        self.start_at(Instant::now() + self.lead)
    }

    /// Fixes the schedule's time zero at `at` unless it is fixed already; returns it.
    pub fn start_at(&self, at: Instant) -> Instant {
        *self.start.get_or_init(|| at)
    }

    /// Counts one more driver worker ready to send; returns how many are.
    pub fn worker_ready(&self) -> usize {
        self.ready.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The schedule's time zero, if it has been fixed.
    pub fn started(&self) -> Option<Instant> {
        self.start.get().copied()
    }

    /// The next arrival to send, or `None` when the plan is exhausted or the run stopped.
    pub fn next(&self) -> Option<usize> {
        if self.is_stopped() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.plan.len()).then_some(i)
    }

    /// When arrival `i` is due.
    pub fn due(&self, i: usize) -> Instant {
        self.start() + Duration::from_nanos(self.plan.arrivals.list[i].at)
    }

    /// The full URL and request of arrival `i`.
    pub fn url(&self, i: usize, path: &str) -> String {
        let base = &self.targets[i % self.targets.len().max(1)];
        format!("{base}{path}")
    }

    /// Marks arrival `i` sent at `at`; stops the run when the schedule is hopelessly
    /// behind.
    pub fn mark_sent(&self, i: usize, at: Instant) {
        let lag = self.note_sent(i, at);
        self.live.sent.fetch_add(1, Ordering::Relaxed);
        self.live
            .max_lag
            .fetch_max(lag.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Stores arrival `i`'s send instant (without the live counters: the caller counts
    /// it, or batches it in a [`Tally`]) and returns how late it left; stops the run
    /// when the schedule is hopelessly behind.
    pub fn note_sent(&self, i: usize, at: Instant) -> Duration {
        let start = self.start();
        let since = at.saturating_duration_since(start).as_nanos() as u64;
        self.sent[i].store(since + 1, Ordering::Relaxed);
        let lag = at.saturating_duration_since(self.due(i));
        if lag > self.give_up_after {
            self.stop(format!(
                "the load generator fell {:.1} s behind the schedule (at request {} of {}): this machine cannot offer the workload's rate with this driver",
                lag.as_secs_f64(),
                i + 1,
                self.plan.len()
            ));
        }
        lag
    }

    /// Records arrival `i`'s outcome: `latency` from send to complete response.
    pub fn finish(&self, i: usize, latency: Duration, reply: Reply, has_policy: bool) {
        let mut tally = Tally::default();
        self.note_finished(i, latency, reply, has_policy, &mut tally);
        tally.flush(&self.live);
    }

    /// Stores arrival `i`'s outcome and counts it in `tally` (flushed into the live
    /// counters by the caller); a refused connection counts towards the stop rule at
    /// once.
    pub fn note_finished(
        &self,
        i: usize,
        latency: Duration,
        reply: Reply,
        has_policy: bool,
        tally: &mut Tally,
    ) {
        let ns = (latency.as_nanos() as u64).min((1 << 48) - 1);
        self.result[i].store(ns << 16 | reply.encode(), Ordering::Relaxed);
        tally.done += 1;
        match reply.class() {
            Class::Admitted => tally.admitted += 1,
            Class::Rejected => tally.rejected += 1,
            Class::Error => tally.errors += 1,
        }
        let live = &self.live;
        if let Reply::Status(_) = reply {
            // A load first: the shared line is only written when a streak ends.
            if live.connect_streak.load(Ordering::Relaxed) != 0 {
                live.connect_streak.store(0, Ordering::Relaxed);
            }
            if has_policy {
                tally.with_policy += 1;
            } else {
                tally.without_policy += 1;
            }
        } else if reply == Reply::Connect {
            let streak = live.connect_streak.fetch_add(1, Ordering::Relaxed) + 1;
            if streak >= CONNECT_STREAK_LIMIT {
                self.stop(format!(
                    "{streak} connections in a row were refused: every target is down or unreachable"
                ));
            }
        }
    }

    /// Stops the run: no further arrival is handed out. The first reason is kept.
    pub fn stop(&self, reason: impl Into<String>) {
        let mut r = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if r.is_none() {
            *r = Some(reason.into());
        }
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// True once [`RunState::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Why the run stopped early, if it did.
    pub fn stop_reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every request that got an outcome, in plan order; and how many were sent
    /// without one (still in flight when the run ended).
    pub fn records(&self) -> (Vec<Record>, u64) {
        let mut out = Vec::with_capacity(self.plan.len());
        let mut unfinished = 0;
        for (i, (s, r)) in self.sent.iter().zip(&self.result).enumerate() {
            let sent = s.load(Ordering::Relaxed);
            if sent == 0 {
                continue;
            }
            let r = r.load(Ordering::Relaxed);
            match Reply::decode(r & 0xffff) {
                Some(reply) => out.push(Record {
                    index: i,
                    sent: sent - 1,
                    latency: r >> 16,
                    reply,
                }),
                None => unfinished += 1,
            }
        }
        (out, unfinished)
    }

    /// Sleeps until arrival `i` is due (at most [`EARLY`] before), waking at least every
    /// 100 ms to notice a stop. Returns false when the run stopped meanwhile.
    pub async fn wait_until_due(&self, i: usize, cancelled: impl Fn() -> bool) -> bool {
        let due = self.due(i);
        let due = due.checked_sub(EARLY).unwrap_or(due);
        loop {
            if self.is_stopped() {
                return false;
            }
            if cancelled() {
                self.stop("interrupted");
                return false;
            }
            let now = Instant::now();
            if now >= due {
                return true;
            }
            let nap = (due - now).min(Duration::from_millis(100));
            tokio::time::sleep(nap).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Workload;

    #[test]
    fn classes() {
        assert_eq!(Reply::Status(200).class(), Class::Admitted);
        assert_eq!(Reply::Status(500).class(), Class::Admitted);
        assert_eq!(Reply::Status(404).class(), Class::Admitted);
        assert_eq!(Reply::Status(429).class(), Class::Rejected);
        assert_eq!(Reply::Status(503).class(), Class::Error);
        assert_eq!(Reply::Status(502).class(), Class::Error);
        assert_eq!(Reply::Timeout.class(), Class::Error);
        for r in [
            Reply::Status(200),
            Reply::Status(999),
            Reply::Timeout,
            Reply::Connect,
            Reply::Other,
        ] {
            assert_eq!(Reply::decode(r.encode()), Some(r));
        }
        assert_eq!(Reply::decode(0), None);
    }

    #[test]
    fn slots_record_once() {
        let plan = Arc::new(LoadPlan::new(Workload::load("seed").unwrap(), 1).unwrap());
        let s = RunState::new(plan, vec!["http://x".into()], Duration::ZERO);
        let i = s.next().unwrap();
        let j = s.next().unwrap();
        assert_eq!((i, j), (0, 1));
        s.mark_sent(i, s.start() + Duration::from_millis(3));
        s.finish(i, Duration::from_micros(1500), Reply::Status(429), true);
        s.mark_sent(j, s.start());
        let (records, unfinished) = s.records();
        assert_eq!(unfinished, 1);
        assert_eq!(
            records,
            [Record {
                index: 0,
                sent: 3_000_000,
                latency: 1_500_000,
                reply: Reply::Status(429)
            }]
        );
        assert_eq!(s.url(1, "/a"), "http://x/a");
        s.stop("first");
        s.stop("second");
        assert_eq!(s.stop_reason().as_deref(), Some("first"));
        assert_eq!(s.next(), None);
    }

    #[test]
    fn refused_connections_stop_the_run() {
        let plan = Arc::new(LoadPlan::new(Workload::load("seed").unwrap(), 1).unwrap());
        let s = RunState::new(plan, vec!["http://x".into()], Duration::ZERO);
        for i in 0..CONNECT_STREAK_LIMIT as usize {
            s.mark_sent(i, s.start());
            s.finish(i, Duration::ZERO, Reply::Connect, false);
        }
        assert!(s.is_stopped());
        assert!(s.stop_reason().unwrap().contains("refused"));
    }
}
