//! The keep-alive connection pool to the backend, and the HTTP/1.1 exchange over it:
//! connections reused across requests, each returned to the pool as soon as its
//! response body has been read.
//!
//! The guarantee: a request goes out on an idle connection when one is ready, else on a
//! new one; a connection is reused only after its previous response finished, and is
//! dropped once it fails, the backend closes it, or its response says so. A request
//! that failed on a reused connection before any answer came (the backend closed the
//! idle connection at that moment) is sent again on a fresh connection when that is
//! safe: nothing of it was written, or it is idempotent and has no body
//! (RFC 9110 §9.2.2).
//!
//! Why not hyper's client: this is the gateway's hot path, and hyper's client spends
//! about a quarter of the gateway's user time per request on a general machinery (a
//! dispatch channel, a body channel, a connection task or state machine) that a
//! one-origin proxy does not need. Measured when this client replaced it (paired wrk
//! runs on one pinned core, docs/gateway.md): user time per proxied request fell from
//! 7.2 to 5.6 µs and p99 from 3.1 to 2.4 ms, with the same system calls. Here the
//! request's own future writes the request and parses the response head, and the
//! response body reads straight from the socket; the framing rules are in `codec`, on
//! `httparse`, hyper's parser. `gateway/tests/upstream_differential.rs` holds it to
//! hyper's client on hostile answers: never more lenient. The client side of the
//! gateway (the server) stays hyper's.

mod body;
// Public for the fuzz targets in `fuzz/`, which hold the framing to its round trips.
pub mod codec;
mod conn;
#[cfg(test)]
mod tests;

use std::future::poll_fn;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::Body;
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

pub use body::PooledBody;
pub use codec::ProtocolError;
use codec::{RequestFraming, ResponseHead};
use conn::{Conn, Sending};

/// Why a request got no response from the backend, or its body broke off.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be opened.
    #[error("cannot connect to the backend: {0}")]
    Connect(#[source] io::Error),
    /// Reading or writing the connection failed (reset, broken pipe).
    #[error("backend connection failed: {0}")]
    Io(#[source] io::Error),
    /// The backend closed the connection before any of its answer arrived.
    #[error("the backend closed the connection without answering")]
    Closed,
    /// The backend's answer broke HTTP/1.1's framing rules.
    #[error("invalid response from the backend: {0}")]
    Protocol(#[from] ProtocolError),
    /// The client's request body failed (malformed, broke off, or went over the size
    /// limit): the client's fault.
    #[error("request body: {0}")]
    RequestBody(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The client paused its request body longer than the body idle timeout.
    #[error("the client paused its request body longer than {0:?}")]
    ClientIdle(Duration),
    /// Every backend connection (`max_backend_connections`) stayed busy for the upstream
    /// timeout.
    #[error("no backend connection came free within {0:?}")]
    Busy(Duration),
    /// The backend sent no response head within the upstream timeout of the request's
    /// end, took longer to connect, or stopped reading the body for the idle timeout.
    #[error("the backend did not answer within {0:?}")]
    Timeout(Duration),
}

impl UpstreamError {
    /// Whether the connection was lost rather than anything said on it being wrong:
    /// the one kind of failure that another connection may not repeat.
    fn is_connection_lost(&self) -> bool {
        matches!(self, Self::Io(_) | Self::Closed)
    }
}

/// Methods a request of which may be sent twice with the effect of once (RFC 9110
/// §9.2.2).
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// How long each side may keep an exchange waiting.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From the end of the request (its body written) to the response head; also the
    /// longest connect.
    pub head: Duration,
    /// The longest pause while a body streams: the client's request body (its fault),
    /// the backend not reading it, or the backend's response body.
    pub idle: Duration,
}

/// A pool of HTTP/1.1 connections to one backend.
///
/// Connections are driven by the request that holds them — in the client connection's
/// task — so a proxied request costs no hand-over between tasks: the task woken by the
/// backend's answer is the one that writes it to the client.
#[derive(Debug)]
pub struct Pool {
    addr: String,
    max_idle: usize,
    idle: Mutex<Vec<Conn>>,
    timeouts: Timeouts,
    /// One permit per connection that may be open; each connection holds one.
    permits: Arc<Semaphore>,
    /// Woken when a connection goes back to the idle list (for requests waiting at the
    /// connection cap).
    freed: Notify,
}

impl Pool {
    /// A pool to `addr` (`host:port`) keeping at most `max_idle` idle connections,
    /// each exchange bounded by `timeouts`.
    pub fn new(addr: String, max_idle: usize, timeouts: Timeouts) -> Arc<Self> {
        Self::with_limit(addr, max_idle, Semaphore::MAX_PERMITS, timeouts)
    }

    /// [`new`](Self::new), with at most `max_connections` connections open at once: a
    /// request finding none idle and none to open waits for one within `timeouts.head`
    /// ([`UpstreamError::Busy`]).
    pub fn with_limit(
        addr: String,
        max_idle: usize,
        max_connections: usize,
        timeouts: Timeouts,
    ) -> Arc<Self> {
        Arc::new(Self {
            addr,
            max_idle,
            idle: Mutex::new(Vec::new()),
            timeouts,
            permits: Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS))),
            freed: Notify::new(),
        })
    }

    /// The timeouts each exchange runs under.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Sends `req` (origin-form URI, `Host` set) and returns the response; its body hands
    /// the connection back to the pool once read to the end.
    pub async fn send<B>(
        self: Arc<Self>,
        req: Request<B>,
    ) -> Result<Response<PooledBody>, UpstreamError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, mut body) = req.into_parts();
        let framing = RequestFraming::of(body.is_end_stream(), body.size_hint().exact());
        let resendable = framing == RequestFraming::Empty && is_idempotent(&parts.method);
        loop {
            let (mut conn, reused) = match poll_fn(|cx| Poll::Ready(self.take_idle(cx))).await {
                Some(conn) => (conn, true),
                // Boxed: rare, and its state would otherwise grow every request's future.
                None => Box::pin(self.open()).await?,
            };
            conn.out.clear();
            codec::write_request_head(
                &mut conn.out,
                &parts.method,
                &parts.uri,
                &parts.headers,
                framing,
            );
            let mut st = Sending::new(framing);
            let head = self
                .exchange(&mut conn, &mut st, &mut body, &parts.method)
                .await;
            match head {
                Ok(ResponseHead {
                    parts,
                    body,
                    keep_alive,
                }) => {
                    let mut body = PooledBody {
                        decoder: body,
                        conn: Some((conn, Arc::clone(&self))),
                        keep_alive,
                        stall: None,
                    };
                    // No body to read (204, HEAD, length 0): free the connection now.
                    if body.decoder.is_done() {
                        body.release();
                    }
                    return Ok(Response::from_parts(parts, body));
                }
                Err(e)
                    if reused
                        && !st.got_any
                        && (!st.sent_any || resendable)
                        && e.is_connection_lost() =>
                {
                    tracing::debug!(error = %e, "reused backend connection was closed; sending again");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends the request and reads the response head on `conn`, under the timeouts:
    /// while the body goes out, each pause may last `idle` (the client's pause is
    /// [`UpstreamError::ClientIdle`]); once it is all out, the head must come within
    /// `head`. One timer per exchange, re-armed only while a body streams.
    async fn exchange<B>(
        &self,
        conn: &mut Conn,
        st: &mut Sending,
        body: &mut B,
        method: &Method,
    ) -> Result<ResponseHead, UpstreamError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Timeouts { head, idle } = self.timeouts;
        let started = Instant::now();
        let mut timer = std::pin::pin!(tokio::time::sleep_until(started + idle));
        let (mut waiting_for_head, mut first) = (false, true);
        poll_fn(|cx| {
            let moved = st.moved;
            if let Poll::Ready(r) = conn.poll_exchange(cx, st, body, method) {
                return Poll::Ready(r);
            }
            if !waiting_for_head && st.is_sent(conn) {
                // The request is all out: the backend's turn, `head` from now (a request
                // sent at the first try, the usual one, reads the clock once).
                waiting_for_head = true;
                let now = if first { started } else { Instant::now() };
                timer.as_mut().reset(now + head);
            } else if !waiting_for_head && st.moved != moved {
                timer.as_mut().reset(Instant::now() + idle);
            }
            first = false;
            std::task::ready!(timer.as_mut().poll(cx));
            Poll::Ready(Err(if !waiting_for_head && st.waiting_for_client {
                UpstreamError::ClientIdle(idle)
            } else if waiting_for_head {
                UpstreamError::Timeout(head)
            } else {
                UpstreamError::Timeout(idle)
            }))
        })
        .await
    }

    /// An idle connection that is ready for a request, if any.
    fn take_idle(&self, cx: &mut Context<'_>) -> Option<Conn> {
        loop {
            let mut conn = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()?;
            if conn.is_usable(cx) {
                return Some(conn);
            }
        }
    }

    /// A new connection, once the cap allows one — or an idle one that came back
    /// meanwhile (then `true`).
    async fn open(&self) -> Result<(Conn, bool), UpstreamError> {
        let head = self.timeouts.head;
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let deadline = Instant::now() + head;
                loop {
                    let freed = self.freed.notified();
                    let mut freed = std::pin::pin!(freed);
                    freed.as_mut().enable();
                    if let Some(conn) = poll_fn(|cx| Poll::Ready(self.take_idle(cx))).await {
                        return Ok((conn, true));
                    }
                    tokio::select! {
                        permit = Arc::clone(&self.permits).acquire_owned() => {
                            break permit.map_err(|_| UpstreamError::Busy(head))?;
                        }
                        () = &mut freed => {}
                        () = tokio::time::sleep_until(deadline) => return Err(UpstreamError::Busy(head)),
                    }
                }
            }
        };
        Ok((self.connect(permit).await?, false))
    }

    async fn connect(&self, permit: OwnedSemaphorePermit) -> Result<Conn, UpstreamError> {
        let head = self.timeouts.head;
        let stream = tokio::time::timeout(head, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| UpstreamError::Timeout(head))?
            .map_err(UpstreamError::Connect)?;
        let _ = stream.set_nodelay(true);
        Ok(Conn::new(stream, permit))
    }

    fn put_back(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(conn);
            drop(idle);
            self.freed.notify_one();
        }
    }
}
