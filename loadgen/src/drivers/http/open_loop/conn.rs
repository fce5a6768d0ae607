//! One connection of the open-loop driver: takes its lane's next arrival, waits until
//! it is due, sends it, reads the answer, records it; reconnects when the server closes
//! or a request fails.
//!
//! Per request: one `write`, usually one `read`, a timer only when the arrival is not
//! yet due, no allocation. The per-request timeout is checked lazily: one sleep per
//! connection whose deadline is moved only when it fires before the request's own.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::wire::{self, Head, WireError};
use super::{Lane, Pool};
use crate::drivers::http::record::{EARLY, Reply, RunState, Tally};

/// Longest nap while waiting, so that a stop is noticed.
const NAP: Duration = Duration::from_millis(100);
/// Counts are added to the live counters after this many requests...
const FLUSH_EVERY: u64 = 64;
/// ... or before a wait longer than this.
const FLUSH_BEFORE_WAIT: Duration = Duration::from_millis(5);

/// How an exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The server closed or reset the connection before any byte of an answer.
    Closed,
    /// The server closed or reset it mid-answer.
    Broken,
    /// No complete answer within the timeout.
    Timeout,
    /// An answer that breaks HTTP/1.1's framing.
    Wire(WireError),
}

/// One connection task's state.
pub(super) struct Connection {
    pool: Arc<Pool>,
    lane: Arc<Lane>,
    stream: Option<TcpStream>,
    /// Whether the open connection has already carried a request (a server may close
    /// a kept-alive connection just as a request goes out: an idempotent one is
    /// retried once).
    reused: bool,
    /// When the open connection is to be retired unused: shortly before the server's
    /// advertised `Keep-Alive: timeout` runs out after its last answer.
    retire_at: Option<Instant>,
    out: Vec<u8>,
    inbox: BytesMut,
    tally: Tally,
    wake: Pin<Box<Sleep>>,
    deadline: Pin<Box<Sleep>>,
}

impl Connection {
    /// A connection of `lane` (not yet open).
    pub(super) fn new(pool: &Arc<Pool>, lane: Arc<Lane>) -> Self {
        let now = tokio::time::Instant::now();
        Self {
            pool: Arc::clone(pool),
            lane,
            stream: None,
            reused: false,
            retire_at: None,
            out: Vec::with_capacity(512),
            inbox: BytesMut::with_capacity(16 * 1024),
            tally: Tally::default(),
            wake: Box::pin(tokio::time::sleep_until(now)),
            deadline: Box::pin(tokio::time::sleep_until(now + pool.timeout)),
        }
    }

    fn shared(&self) -> &RunState {
        &self.pool.shared
    }

    /// Opens the connection (before the start, so that connecting is not on the
    /// measured path), then plays arrivals until the lane is exhausted or the run
    /// stops.
    pub(super) async fn drive(mut self) {
        let _ = self.connect().await;
        while let Some(i) = self.lane.next(self.shared()) {
            if !self.wait_until_due(i).await {
                break;
            }
            self.send(i).await;
            if self.tally.pending() >= FLUSH_EVERY {
                self.tally.flush(&self.pool.shared.live);
            }
        }
        self.tally.flush(&self.pool.shared.live);
    }

    /// Sleeps until arrival `i` is due (at most [`EARLY`] before), waking at least every
    /// [`NAP`] to notice a stop. Returns false when the run stopped meanwhile.
    async fn wait_until_due(&mut self, i: usize) -> bool {
        let due = self.shared().due(i);
        let leave = due.checked_sub(EARLY).unwrap_or(due);
        loop {
            if self.shared().is_stopped() {
                return false;
            }
            if self.pool.cancelled.load(Ordering::Relaxed) {
                self.shared().stop("interrupted");
                return false;
            }
            let now = Instant::now();
            if now >= leave {
                return true;
            }
            if leave - now > FLUSH_BEFORE_WAIT && self.tally.pending() > 0 {
                self.tally.flush(&self.pool.shared.live);
            }
            let nap = leave.min(now + NAP);
            self.wake.as_mut().reset(nap.into());
            self.wake.as_mut().await;
        }
    }

    /// Sends arrival `i` and records its answer.
    async fn send(&mut self, i: usize) {
        let sent = Instant::now();
        let lag = self.pool.shared.note_sent(i, sent);
        self.tally.sent(lag);
        let (reply, has_policy) = self.exchange(i, sent).await;
        let latency = sent.elapsed();
        let shared = &self.pool.shared;
        shared.note_finished(i, latency, reply, has_policy, &mut self.tally);
    }

    /// Opens the connection if it is not open (or is about to be closed by the server
    /// for idling: then it is replaced, so that no request races the server's close).
    async fn connect(&mut self) -> Result<(), ()> {
        if self.stream.is_some() && self.retire_at.is_some_and(|at| Instant::now() >= at) {
            self.stream = None;
        }
        if self.stream.is_some() {
            return Ok(());
        }
        let addrs = &self.lane.target.addrs[..];
        let connecting = TcpStream::connect(addrs);
        let stream = match tokio::time::timeout(self.pool.timeout, connecting).await {
            Ok(Ok(stream)) => stream,
            _ => return Err(()),
        };
        let _ = stream.set_nodelay(true);
        self.pool.opened.fetch_add(1, Ordering::Relaxed);
        self.stream = Some(stream);
        self.reused = false;
        self.retire_at = None;
        self.inbox.clear();
        Ok(())
    }

    /// Writes arrival `i`'s request (leaving at `sent`) and reads the answer; the reply
    /// to record.
    async fn exchange(&mut self, i: usize, sent: Instant) -> (Reply, bool) {
        self.out.clear();
        let to_head = self
            .lane
            .target
            .requests
            .write(&self.pool.shared.plan, i, &mut self.out);
        let timeout_at = sent + self.pool.timeout;
        let idempotent = self
            .lane
            .target
            .requests
            .idempotent(&self.pool.shared.plan, i);
        for attempt in 0..2 {
            if self.connect().await.is_err() {
                return (Reply::Connect, false);
            }
            let reused = self.reused;
            let outcome = self.round_trip(to_head, timeout_at).await;
            self.reused = true;
            match outcome {
                Ok(head) => {
                    if head.close {
                        self.stream = None;
                    }
                    self.retire_at = head.keep_alive.map(|secs| retire_at(secs, Instant::now()));
                    return (Reply::Status(head.status), head.has_policy);
                }
                Err(failure) => {
                    self.stream = None;
                    match failure {
                        // Closed before any byte of an answer on a reused connection: the
                        // server may have closed it as the request went out (unseen by
                        // it), so an idempotent request is sent once more, as hyper's
                        // client does; a POST may have been acted on, and is not.
                        Failure::Closed if reused && idempotent && attempt == 0 => {}
                        Failure::Closed => return (Reply::Connect, false),
                        Failure::Timeout => return (Reply::Timeout, false),
                        Failure::Broken | Failure::Wire(_) => return (Reply::Other, false),
                    }
                }
            }
        }
        (Reply::Connect, false)
    }

    /// One request out, one complete answer in.
    async fn round_trip(&mut self, to_head: bool, timeout_at: Instant) -> Result<Head, Failure> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(Failure::Closed);
        };
        if stream.write_all(&self.out).await.is_err() {
            return Err(Failure::Closed);
        }
        let mut head = loop {
            if let Some(head) = wire::parse_head(&mut self.inbox, to_head).map_err(Failure::Wire)? {
                break head;
            }
            let empty = self.inbox.is_empty();
            match read_more(stream, &mut self.inbox, self.deadline.as_mut(), timeout_at).await {
                Ok(0) | Err(Failure::Broken) if empty => return Err(Failure::Closed),
                Ok(0) => return Err(Failure::Broken),
                Ok(_) => {}
                Err(failure) => return Err(failure),
            }
        };
        while !head.body.consume(&mut self.inbox).map_err(Failure::Wire)? {
            if read_more(stream, &mut self.inbox, self.deadline.as_mut(), timeout_at).await? == 0 {
                if head.body.closed() {
                    head.close = true;
                    break;
                }
                return Err(Failure::Broken);
            }
        }
        if !self.inbox.is_empty() && !head.close {
            // The server answered more than it was asked: keep this answer, drop the
            // connection.
            tracing::debug!(error = %WireError::Unsolicited, "closing the connection");
            head.close = true;
        }
        Ok(head)
    }
}

/// Reads more of the answer into `inbox`; `Ok(0)` when the server closed,
/// [`Failure::Broken`] when the connection failed. The timeout
/// sleep is only moved when it fires before `timeout_at`, so a request answered in
/// time costs no timer operation.
async fn read_more(
    stream: &mut TcpStream,
    inbox: &mut BytesMut,
    mut deadline: Pin<&mut Sleep>,
    timeout_at: Instant,
) -> Result<usize, Failure> {
    if inbox.capacity() - inbox.len() < 4096 {
        inbox.reserve(16 * 1024);
    }
    loop {
        tokio::select! {
            biased;
            read = stream.read_buf(inbox) => {
                return read.map_err(|_| Failure::Broken);
            }
            () = deadline.as_mut() => {
                if Instant::now() >= timeout_at {
                    return Err(Failure::Timeout);
                }
                deadline.as_mut().reset(timeout_at.into());
            }
        }
    }
}

/// When to retire a connection the server keeps idle for `secs` seconds after an
/// answer at `now`: a second early (or at half of it when it is shorter), leaving room
/// for the request on its way and for the clocks' granularity.
fn retire_at(secs: u32, now: Instant) -> Instant {
    let idle = Duration::from_secs(u64::from(secs));
    now + idle.saturating_sub(Duration::from_secs(1)).max(idle / 2)
}
