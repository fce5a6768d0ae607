//! Client connection timeouts: how long a kept-alive connection may sit idle between
//! requests (`keep_alive_timeout`, advertised to clients in `Keep-Alive: timeout=N`),
//! and how long a client has to send a request head once it has started one
//! (`header_read_timeout`).
//!
//! Why two: hyper's own header read timeout starts as soon as the connection waits for
//! the next head, so with it alone an idle keep-alive connection is closed after the
//! (short) header timeout, and a client reusing it at that moment loses its request —
//! written onto a connection the gateway is closing, answered by nothing. Here the
//! short timeout only runs from the first byte of a head, and idle connections get the
//! long, advertised one, which clients (and the load driver) use to retire a connection
//! before the gateway does.
//!
//! The guarantee: a connection with a request in hand (from its head to the end of its
//! response body) is never closed by these timers; one waiting for its next request is
//! closed `keep_alive_timeout` after its last response; one that started a head and has
//! not finished it is closed `header_read_timeout` after its first byte, and a new
//! connection must send its first head within `header_read_timeout` of being accepted.
//! Closing sends nothing (as hyper's own timeout).
//!
//! Per request: two atomic loads and one clock read on the read path; the timer is
//! moved only when it would fire too late (a head started) or has fired early.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Requests of one connection: begun (head read) and finished (response body done or
/// dropped), shared by the connection's reader and its service.
#[derive(Debug, Default)]
pub struct Requests {
    begun: AtomicU64,
    finished: AtomicU64,
}

impl Requests {
    /// A request head was read and handed to the service.
    pub fn begin(self: &Arc<Self>) -> Finish {
        self.begun.fetch_add(1, Ordering::Relaxed);
        Finish(Arc::clone(self))
    }
}

/// Marks its request finished when dropped: held by the response body, so the request
/// counts as in hand until the body is written (or abandoned).
#[derive(Debug)]
pub struct Finish(Arc<Requests>);

impl Drop for Finish {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the connection is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The next request, since this instant.
    Idle(Instant),
    /// The rest of a head whose first byte came at this instant.
    Head(Instant),
    /// Nothing: a request is in hand.
    Busy,
}

/// The two timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Longest wait for the next request on a kept-alive connection.
    pub keep_alive: Duration,
    /// Longest time from a head's first byte to its end.
    pub header_read: Duration,
}

/// A client connection's stream with the keep-alive and header read timeouts: a read
/// that waits past the current deadline fails with `TimedOut`, which hyper takes as the
/// end of the connection.
pub struct Timed<S> {
    inner: S,
    requests: Arc<Requests>,
    timeouts: Timeouts,
    phase: Phase,
    /// `finished` when `phase` was last worked out.
    finished_seen: u64,
    /// Boxed: hyper wants an `Unpin` stream; one allocation per connection.
    timer: Pin<Box<Sleep>>,
}

impl<S> Timed<S> {
    /// `inner`, just accepted: its first head is due within the header read timeout;
    /// `requests` is shared with the service.
    pub fn new(inner: S, requests: Arc<Requests>, timeouts: Timeouts) -> Self {
        let now = Instant::now();
        Self {
            inner,
            requests,
            timeouts,
            phase: Phase::Head(now),
            finished_seen: 0,
            timer: Box::pin(tokio::time::sleep_until(now + timeouts.header_read)),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Timed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        let begun = this.requests.begun.load(Ordering::Relaxed);
        let finished = this.requests.finished.load(Ordering::Relaxed);
        if finished != this.finished_seen {
            // A response ended since: idle from now, unless the next is in hand.
            this.finished_seen = finished;
            this.phase = Phase::Idle(Instant::now());
        }
        if begun != finished {
            this.phase = Phase::Busy;
        } else if this.phase == Phase::Busy {
            this.phase = Phase::Idle(Instant::now());
        }
        if let Poll::Ready(result) = read {
            if let (Phase::Idle(_), true) = (this.phase, buf.filled().len() > before) {
                this.phase = Phase::Head(Instant::now());
            }
            return Poll::Ready(result);
        }
        let deadline = match this.phase {
            Phase::Busy => return Poll::Pending,
            Phase::Idle(since) => since + this.timeouts.keep_alive,
            Phase::Head(since) => since + this.timeouts.header_read,
        };
        // The timer fires at or before the deadline; fired early, it is moved on.
        if this.timer.deadline() > deadline {
            this.timer.as_mut().reset(deadline);
        }
        loop {
            ready!(this.timer.as_mut().poll(cx));
            if Instant::now() >= deadline {
                let what = match this.phase {
                    Phase::Head(_) => "request head not received within header_read_timeout",
                    _ => "connection idle for keep_alive_timeout",
                };
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)));
            }
            this.timer.as_mut().reset(deadline);
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Timed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

pin_project_lite::pin_project! {
    /// A response body that marks its request finished when it is done or dropped.
    pub struct Tracked<B> {
        #[pin]
        body: B,
        finish: Option<Finish>,
    }
}

impl<B> Tracked<B> {
    /// `body`, whose end (or drop) finishes the request `finish` stands for.
    pub fn new(body: B, finish: Option<Finish>) -> Self {
        Self { body, finish }
    }
}

impl<B: hyper::body::Body> hyper::body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.body.poll_frame(cx));
        if frame.is_none() {
            this.finish.take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}
