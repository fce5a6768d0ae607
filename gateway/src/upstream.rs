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
//! Compared with `hyper-util`'s general-purpose client, the pool serves one origin,
//! hands a connection back from the response body itself, and runs no task per
//! connection: the request holding a connection drives it, so a request costs no extra
//! task, lookup or lock beyond one pop and one push.

use std::future::Future;
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

/// A backend connection's state machine, boxed so moving it in and out of the pool
/// moves a pointer.
type Driver<B> = Pin<Box<http1::Connection<TokioIo<TcpStream>, B>>>;

/// One connection to the backend: the handle requests go out on, and the connection
/// itself, which whoever holds it drives (there is no task per connection).
struct Upstream<B: Body + 'static> {
    sender: SendRequest<B>,
    /// `None` once the connection has ended.
    conn: Option<Driver<B>>,
}

impl<B> Upstream<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Does the connection's pending work (writing the request, reading the response
    /// into its body channel); true while it is still open.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(conn) = self.conn.as_mut()
            && let Poll::Ready(result) = conn.as_mut().poll(cx)
        {
            if let Err(err) = result {
                tracing::debug!(error = %err, "backend connection ended with an error");
            }
            // Dropping it answers any request still waiting on it with an error.
            self.conn = None;
        }
        self.conn.is_some()
    }

    /// Ready for a request, driving the connection meanwhile; `false` once it closed.
    async fn ready(&mut self) -> bool {
        std::future::poll_fn(|cx| {
            if !self.drive(cx) {
                return Poll::Ready(false);
            }
            self.sender.poll_ready(cx).map(|r| r.is_ok())
        })
        .await
    }
}

/// A pool of HTTP/1.1 connections to one backend, for request bodies of type `B`.
///
/// Connections are driven by the request that holds them — in the client connection's
/// task — so a proxied request costs no hand-over between tasks: the task woken by the
/// backend's answer is the one that writes it to the client.
pub struct Pool<B: Body + 'static> {
    addr: String,
    max_idle: usize,
    idle: Mutex<Vec<Upstream<B>>>,
}

impl<B: Body + 'static> std::fmt::Debug for Pool<B> {
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
        self: Arc<Self>,
        mut req: Request<B>,
    ) -> Result<Response<PooledBody<B>>, UpstreamError> {
        loop {
            let (mut upstream, reused) = match self.take_idle().await {
                Some(upstream) => (upstream, true),
                // Boxed: rare, and its state would otherwise grow every request's future.
                None => (Box::pin(self.connect()).await?, false),
            };
            // The request goes into the connection's queue now; only the response
            // (and the request, should it come back unsent) is waited for.
            let mut response = std::pin::pin!(upstream.sender.try_send_request(req));
            let response = std::future::poll_fn(|cx| {
                // The connection first: it is what completes the response.
                upstream.drive(cx);
                response.as_mut().poll(cx)
            })
            .await;
            match response {
                Ok(res) => {
                    let (parts, body) = res.into_parts();
                    let mut body = PooledBody {
                        body,
                        conn: Some((upstream, Arc::clone(&self))),
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
    async fn take_idle(&self) -> Option<Upstream<B>> {
        loop {
            let mut upstream = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()?;
            if upstream.ready().await {
                return Some(upstream);
            }
        }
    }

    async fn connect(&self) -> Result<Upstream<B>, UpstreamError> {
        let stream = TcpStream::connect(&self.addr)
            .await
            .map_err(UpstreamError::Connect)?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
        let mut upstream = Upstream {
            sender,
            conn: Some(Box::pin(conn)),
        };
        if upstream.ready().await {
            Ok(upstream)
        } else {
            Err(UpstreamError::Connect(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "the backend closed the connection at once",
            )))
        }
    }

    fn put_back(&self, upstream: Upstream<B>) {
        if upstream.conn.is_none() || upstream.sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(upstream);
        }
    }
}

/// A response body from the backend that returns its connection to the pool when read
/// to the end (and closes it when dropped before). Reading it drives the connection.
pub struct PooledBody<B: Body + 'static> {
    body: Incoming,
    conn: Option<(Upstream<B>, Arc<Pool<B>>)>,
}

impl<B: Body + 'static> std::fmt::Debug for PooledBody<B> {
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
        if let Some((upstream, pool)) = self.conn.take() {
            pool.put_back(upstream);
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
        let frame = match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => frame,
            // Nothing buffered: let the connection read more, then look again.
            Poll::Pending => match this.conn.as_mut() {
                Some((upstream, _)) => {
                    upstream.drive(cx);
                    std::task::ready!(Pin::new(&mut this.body).poll_frame(cx))
                }
                None => return Poll::Pending,
            },
        };
        match &frame {
            None => this.release(),
            Some(Ok(_)) if this.body.is_end_stream() => this.release(),
            // An error: the connection is broken; dropping it closes it.
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Empty};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    type Pool0 = Pool<Empty<Bytes>>;

    /// A raw HTTP/1.1 backend: answers each request head on a connection with
    /// `respond(path)`, and closes the connection after `per_conn` requests (without
    /// saying so, as an idle timeout would). Counts the connections it accepts.
    async fn backend(per_conn: usize, respond: fn(&str) -> Vec<u8>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    for _ in 0..per_conn {
                        let head = loop {
                            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                                buf.drain(..end + 4);
                                break head;
                            }
                            let mut chunk = [0u8; 4096];
                            match s.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                        if s.write_all(&respond(&path)).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    fn get(path: &str) -> Request<Empty<Bytes>> {
        Request::builder()
            .uri(path)
            .header("host", "backend")
            .body(Empty::new())
            .unwrap()
    }

    fn ok(path: &str) -> Vec<u8> {
        match path {
            "/chunked" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".to_vec(),
            "/big" => {
                let mut r = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", 1 << 20).into_bytes();
                r.extend(std::iter::repeat_n(b'x', 1 << 20));
                r
            }
            _ => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
        }
    }

    async fn body_of(pool: &Arc<Pool0>, path: &str) -> Bytes {
        let res = Arc::clone(pool).send(get(path)).await.unwrap();
        assert_eq!(res.status(), 200);
        res.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn sequential_requests_share_one_connection() {
        let (addr, accepted) = backend(usize::MAX, ok).await;
        let pool = Pool0::new(addr, 8);
        for path in ["/a", "/chunked", "/big", "/b"] {
            let body = body_of(&pool, path).await;
            match path {
                "/chunked" => assert_eq!(body, "hello world"),
                "/big" => assert_eq!(body.len(), 1 << 20),
                _ => assert_eq!(body, "ok"),
            }
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_is_replaced() {
        // The backend closes every connection after one answer, as an idle timeout
        // would: the next request finds its pooled connection gone and opens another.
        let (addr, accepted) = backend(1, ok).await;
        let pool = Pool0::new(addr, 8);
        for _ in 0..3 {
            assert_eq!(body_of(&pool, "/a").await, "ok");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_connection_closed_without_delay_is_replaced() {
        // No pause between requests: the close may not have arrived when the next
        // request takes the connection. Either way every request is answered.
        let (addr, _) = backend(1, ok).await;
        let pool = Pool0::new(addr, 8);
        for _ in 0..20 {
            assert_eq!(body_of(&pool, "/a").await, "ok");
        }
    }

    #[tokio::test]
    async fn a_body_dropped_unread_does_not_return_its_connection() {
        let (addr, accepted) = backend(usize::MAX, ok).await;
        let pool = Pool0::new(addr, 8);
        let mut res = Arc::clone(&pool).send(get("/big")).await.unwrap();
        let first = res.body_mut().frame().await.unwrap().unwrap();
        assert!(first.data_ref().is_some_and(|d| d.len() < 1 << 20));
        drop(res);
        assert!(pool.idle.lock().unwrap().is_empty());
        assert_eq!(body_of(&pool, "/a").await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_requests_open_connections_and_keep_them() {
        let (addr, accepted) = backend(usize::MAX, ok).await;
        let pool = Pool0::new(addr, 4);
        let round = || async {
            let all = (0..8).map(|_| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move { body_of(&pool, "/chunked").await })
            });
            for t in all.collect::<Vec<_>>() {
                assert_eq!(t.await.unwrap(), "hello world");
            }
        };
        round().await;
        let opened = accepted.load(Ordering::SeqCst);
        assert!((1..=8).contains(&opened), "{opened}");
        // At most `max_idle` are kept; the second round reuses them.
        assert!(pool.idle.lock().unwrap().len() <= 4);
        round().await;
        assert!(accepted.load(Ordering::SeqCst) <= opened + 8);
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let pool = Pool0::new(addr, 4);
        assert!(matches!(
            Arc::clone(&pool).send(get("/a")).await,
            Err(UpstreamError::Connect(_))
        ));
    }

    /// A request body whose frames arrive from a channel, as a client's upload would.
    struct ChanBody(tokio::sync::mpsc::Receiver<Bytes>);

    impl Body for ChanBody {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
        }
    }

    /// One connection: reads a request whose chunked body ends the usual way, answers
    /// with what it read, in chunks that arrive 30 ms apart.
    async fn slow_backend() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            while !seen.ends_with(b"0\r\n\r\n") {
                let mut chunk = [0u8; 4096];
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&chunk[..n]),
                }
            }
            let seen = String::from_utf8_lossy(&seen);
            let parts = ["hello", "big", "world"].map(|w| seen.contains(w));
            let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
            s.write_all(head).await.unwrap();
            for (word, present) in ["hello ", "big ", "world"].iter().zip(parts) {
                tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                let word = if present { *word } else { "missing " };
                let chunk = format!("{:x}\r\n{word}\r\n", word.len());
                s.write_all(chunk.as_bytes()).await.unwrap();
            }
            s.write_all(b"0\r\n\r\n").await.unwrap();
            // Keep the connection open, as a keep-alive backend would.
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        });
        addr
    }

    #[tokio::test]
    async fn slow_uploads_and_slow_answers_stream_through() {
        // Nothing but the request's own task drives the connection: every wait here
        // (a request frame to send, a response chunk to read) must wake it.
        let pool = Pool::<ChanBody>::new(slow_backend().await, 4);
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let upload = tokio::spawn(async move {
            for word in ["hello ", "big ", "world"] {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                tx.send(Bytes::from(word)).await.unwrap();
            }
        });
        let req = Request::builder()
            .method("POST")
            .uri("/upload")
            .header("host", "backend")
            .body(ChanBody(rx))
            .unwrap();
        let started = std::time::Instant::now();
        let res = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            let res = Arc::clone(&pool).send(req).await.unwrap();
            res.into_body().collect().await.unwrap().to_bytes()
        })
        .await
        .expect("the exchange finished");
        upload.await.unwrap();
        assert_eq!(res, "hello big world");
        assert!(started.elapsed() >= std::time::Duration::from_millis(90));
        // Read to the end: the connection went back to the pool.
        assert_eq!(pool.idle.lock().unwrap().len(), 1);
    }
}
