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

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::Body;
use tokio::net::TcpStream;

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
    /// The client's request body failed (it broke off, or went over the size limit).
    #[error("request body: {0}")]
    RequestBody(#[source] Box<dyn std::error::Error + Send + Sync>),
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
}

impl Pool {
    /// A pool to `addr` (`host:port`) keeping at most `max_idle` idle connections.
    pub fn new(addr: String, max_idle: usize) -> Arc<Self> {
        Arc::new(Self {
            addr,
            max_idle,
            idle: Mutex::new(Vec::new()),
        })
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
                None => (Box::pin(self.connect()).await?, false),
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
            let head =
                poll_fn(|cx| conn.poll_exchange(cx, &mut st, &mut body, &parts.method)).await;
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

    async fn connect(&self) -> Result<Conn, UpstreamError> {
        let stream = TcpStream::connect(&self.addr)
            .await
            .map_err(UpstreamError::Connect)?;
        let _ = stream.set_nodelay(true);
        Ok(Conn::new(stream))
    }

    fn put_back(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }
}
