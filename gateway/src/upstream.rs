//! The keep-alive connection pool to the backend: HTTP/1.1 connections reused across
//! requests, each returned to the pool as soon as its response body has been read.
//!
//! The guarantee: a request goes out on an idle connection when one is ready, else on a
//! new one; a connection is reused only after its previous response finished, and is
//! dropped once it fails or the backend closes it. A request that failed on a reused
//! connection before any of it was written (the backend closed the idle connection at
//! that moment) is retried once on a fresh connection — never one that may have reached
//! the backend.
//!
//! Compared with `hyper-util`'s general-purpose client, the pool serves one origin and
//! hands a connection back from the response body itself, so a request costs no extra
//! task, lookup or lock beyond one pop and one push.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why a request got no response from the backend.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be opened.
    #[error("cannot connect to the backend: {0}")]
    Connect(std::io::Error),
    /// The HTTP exchange failed (connection reset, malformed response, body error).
    #[error("backend exchange failed: {0}")]
    Http(#[from] hyper::Error),
}

/// A pool of HTTP/1.1 connections to one backend, for request bodies of type `B`.
pub struct Pool<B> {
    addr: String,
    max_idle: usize,
    idle: Mutex<Vec<SendRequest<B>>>,
}

impl<B> std::fmt::Debug for Pool<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("addr", &self.addr)
            .field("max_idle", &self.max_idle)
            .finish_non_exhaustive()
    }
}

impl<B> Pool<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
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
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<B>,
    ) -> Result<Response<PooledBody<B>>, UpstreamError> {
        loop {
            let (mut sender, reused) = match self.take_idle().await {
                Some(sender) => (sender, true),
                None => (self.connect().await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(res) => {
                    let (parts, body) = res.into_parts();
                    let mut body = PooledBody {
                        body,
                        conn: Some((sender, Arc::clone(self))),
                    };
                    // No body to read (204, HEAD, length 0): free the connection now.
                    if body.body.is_end_stream() {
                        body.release();
                    }
                    return Ok(Response::from_parts(parts, body));
                }
                Err(mut err) => match err.take_message() {
                    // Never written: safe to send again, on a fresh connection.
                    Some(back) if reused => req = back,
                    _ => return Err(UpstreamError::Http(err.into_error())),
                },
            }
        }
    }

    /// An idle connection that is ready for a request, if any.
    async fn take_idle(&self) -> Option<SendRequest<B>> {
        loop {
            let mut sender = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()?;
            if sender.is_closed() {
                continue;
            }
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    async fn connect(&self) -> Result<SendRequest<B>, UpstreamError> {
        let stream = TcpStream::connect(&self.addr)
            .await
            .map_err(UpstreamError::Connect)?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                tracing::debug!(error = %err, "backend connection ended with an error");
            }
        });
        sender.ready().await?;
        Ok(sender)
    }

    fn put_back(&self, sender: SendRequest<B>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(sender);
        }
    }
}

/// A response body from the backend that returns its connection to the pool when read
/// to the end (and closes it when dropped before).
pub struct PooledBody<B> {
    body: Incoming,
    conn: Option<(SendRequest<B>, Arc<Pool<B>>)>,
}

impl<B> std::fmt::Debug for PooledBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBody")
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

impl<B> PooledBody<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn release(&mut self) {
        if let Some((sender, pool)) = self.conn.take() {
            pool.put_back(sender);
        }
    }
}

impl<B> Body for PooledBody<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let frame = std::task::ready!(Pin::new(&mut this.body).poll_frame(cx));
        match &frame {
            None => this.release(),
            Some(Ok(_)) if this.body.is_end_stream() => this.release(),
            // An error: the connection is broken; dropping the sender closes it.
            Some(Err(_)) => this.conn = None,
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
