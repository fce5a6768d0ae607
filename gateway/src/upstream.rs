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
//! one-origin proxy does not need. Here the request's own future writes the request and
//! parses the response head, and the response body reads straight from the socket; the
//! framing rules are in [`codec`], on `httparse`, hyper's parser. The client side of
//! the gateway (the server) stays hyper's.

mod codec;

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;

pub use codec::ProtocolError;
use codec::{BodyDecoder, Decoded, RequestFraming, ResponseHead};

/// Bytes asked of the socket per read, at least.
const READ_SIZE: usize = 16 * 1024;

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

/// One HTTP/1.1 connection to the backend, with what it has read but not yet consumed.
#[derive(Debug)]
struct Conn {
    io: TcpStream,
    /// Read from the socket, not yet consumed: the start of a response.
    buf: BytesMut,
    /// Request bytes to write (kept, so its allocation serves every request).
    out: Vec<u8>,
}

impl Conn {
    fn new(io: TcpStream) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            out: Vec::with_capacity(1024),
        }
    }

    /// Whether the idle connection can take a request: nothing unread, and no close or
    /// error from the backend. Costs no system call unless the socket turned readable.
    fn is_usable(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        match self.io.poll_read_ready(cx) {
            // Nothing to read: the usual state of an idle connection.
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Readable: a close (or bytes nobody asked for), unless the readiness is stale.
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Reads more into `buf`; `Ok(0)` when the backend closed the connection.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < READ_SIZE / 4 {
            self.buf.reserve(READ_SIZE);
        }
        // A read shorter than the space offered tells tokio the socket is drained, so
        // the next readiness check costs no system call.
        std::pin::pin!(self.io.read_buf(&mut self.buf)).poll(cx)
    }

    /// Writes `out[*written..]`.
    fn poll_write_out(
        &mut self,
        cx: &mut Context<'_>,
        written: &mut usize,
    ) -> Poll<io::Result<()>> {
        while *written < self.out.len() {
            match std::task::ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[*written..])) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => *written += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// How far a request has gone out, and whether any answer came back.
#[derive(Debug)]
struct Sending {
    framing: RequestFraming,
    /// Bytes of `Conn::out` written so far.
    written: usize,
    /// Whether any byte of the request reached the socket.
    sent_any: bool,
    /// Whether any byte of an answer arrived.
    got_any: bool,
    /// Body bytes still owed under `content-length`.
    owed: u64,
    /// The body has been read to its end (its last bytes may still be in `out`).
    body_done: bool,
}

impl Sending {
    fn new(framing: RequestFraming) -> Self {
        Self {
            framing,
            written: 0,
            sent_any: false,
            got_any: false,
            owed: match framing {
                RequestFraming::Length(n) => n,
                _ => 0,
            },
            body_done: framing == RequestFraming::Empty,
        }
    }

    /// Everything, body included, has been written.
    fn is_sent(&self, conn: &Conn) -> bool {
        self.body_done && self.written == conn.out.len()
    }
}

impl Conn {
    /// Sends the request whose head is in `out` and whose body is `body`, and reads the
    /// response head. An answer that comes while the body is still going out (an early
    /// `413`, say) ends the sending: the rest of the body is dropped, and so, later, is
    /// the connection.
    fn poll_exchange<B>(
        &mut self,
        cx: &mut Context<'_>,
        st: &mut Sending,
        body: &mut B,
        method: &Method,
    ) -> Poll<Result<ResponseHead, UpstreamError>>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        // Send what can be sent now.
        loop {
            let before = st.written;
            let wrote = self.poll_write_out(cx, &mut st.written);
            // Counted before any error: a request cut off mid-write was still sent.
            st.sent_any |= st.written > before;
            match wrote {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(UpstreamError::Io(e))),
                Poll::Pending => break,
            }
            if st.body_done {
                break;
            }
            st.written = 0;
            self.out.clear();
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers of the client's are not forwarded.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if let Err(e) = self.encode(st, &data) {
                        return Poll::Ready(Err(e));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err(UpstreamError::RequestBody(e.into())));
                }
                Poll::Ready(None) => {
                    match st.framing {
                        RequestFraming::Length(_) if st.owed > 0 => {
                            return Poll::Ready(Err(UpstreamError::RequestBody(
                                "request body shorter than its content-length".into(),
                            )));
                        }
                        RequestFraming::Chunked => self.out.extend_from_slice(codec::LAST_CHUNK),
                        _ => {}
                    }
                    st.body_done = true;
                }
                Poll::Pending => break,
            }
        }
        // Read the answer, which may come before the request is all out.
        loop {
            if !self.buf.is_empty()
                && let Some(mut head) = codec::parse_response_head(&mut self.buf, method)?
            {
                head.keep_alive &= st.is_sent(self);
                return Poll::Ready(Ok(head));
            }
            match std::task::ready!(self.poll_fill(cx)) {
                Ok(0) if st.got_any => return Poll::Ready(Err(ProtocolError::Incomplete.into())),
                Ok(0) => return Poll::Ready(Err(UpstreamError::Closed)),
                Ok(_) => st.got_any = true,
                Err(e) => return Poll::Ready(Err(UpstreamError::Io(e))),
            }
        }
    }

    /// Appends a piece of request body to `out`, framed.
    fn encode(&mut self, st: &mut Sending, data: &[u8]) -> Result<(), UpstreamError> {
        match st.framing {
            RequestFraming::Chunked => codec::write_chunk(&mut self.out, data),
            RequestFraming::Length(_) => {
                let len = data.len() as u64;
                if len > st.owed {
                    return Err(UpstreamError::RequestBody(
                        "request body longer than its content-length".into(),
                    ));
                }
                st.owed -= len;
                self.out.extend_from_slice(data);
            }
            RequestFraming::Empty if data.is_empty() => {}
            RequestFraming::Empty => {
                return Err(UpstreamError::RequestBody(
                    "request body where none was announced".into(),
                ));
            }
        }
        Ok(())
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

/// A response body from the backend, read from the connection as the client takes it;
/// returns the connection to the pool when read to the end (and closes it when dropped
/// before).
#[derive(Debug)]
pub struct PooledBody {
    decoder: BodyDecoder,
    /// `None` once the body ended (the connection returned or closed) or failed.
    conn: Option<(Conn, Arc<Pool>)>,
    keep_alive: bool,
}

impl PooledBody {
    /// The body is complete: its connection goes back to the pool if it may carry
    /// another request, else it is closed.
    fn release(&mut self) {
        if let Some((conn, pool)) = self.conn.take()
            && self.keep_alive
            && conn.buf.is_empty()
        {
            pool.put_back(conn);
        }
    }

    fn fail(
        &mut self,
        e: impl Into<UpstreamError>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamError>>> {
        self.conn = None;
        Poll::Ready(Some(Err(e.into())))
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = UpstreamError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamError>>> {
        let this = &mut *self;
        loop {
            let Some((conn, _)) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match this.decoder.decode(&mut conn.buf) {
                Ok(Decoded::Data(data)) => {
                    if this.decoder.is_done() {
                        this.release();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Decoded::End) => {
                    this.release();
                    return Poll::Ready(None);
                }
                Ok(Decoded::NeedMore) => match std::task::ready!(conn.poll_fill(cx)) {
                    Ok(0) => {
                        if let Err(e) = this.decoder.closed() {
                            return this.fail(e);
                        }
                        // A body that ran until the close: complete, and so is the connection.
                        this.conn = None;
                        return Poll::Ready(None);
                    }
                    Ok(_) => {}
                    Err(e) => return this.fail(UpstreamError::Io(e)),
                },
                Err(e) => return this.fail(e),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Empty};
    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Accepts connections on a loopback port, counting them, and serves each with
    /// `serve` in a task of its own.
    async fn listen<F, Fut>(serve: F) -> (String, Arc<AtomicUsize>)
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(s));
            }
        });
        (addr, accepted)
    }

    /// Reads from `s` into `buf` until it holds `want(buf)` bytes or more; false when
    /// the connection ended first.
    async fn read_until(
        s: &mut TcpStream,
        buf: &mut Vec<u8>,
        want: impl Fn(&[u8]) -> Option<usize>,
    ) -> bool {
        while want(buf).is_none_or(|n| buf.len() < n) {
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        true
    }

    /// The length of the request head at the front of `buf`, once it is all there.
    fn head_len(buf: &[u8]) -> Option<usize> {
        buf.windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|end| end + 4)
    }

    /// A raw HTTP/1.1 backend: answers each request head on a connection with
    /// `respond(path)`, and closes the connection after `per_conn` requests (without
    /// saying so, as an idle timeout would). Counts the connections it accepts.
    async fn backend(per_conn: usize, respond: fn(&str) -> Vec<u8>) -> (String, Arc<AtomicUsize>) {
        listen(move |mut s| async move {
            let mut buf = Vec::new();
            for _ in 0..per_conn {
                if !read_until(&mut s, &mut buf, head_len).await {
                    return;
                }
                let end = head_len(&buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                buf.drain(..end);
                let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                if s.write_all(&respond(&path)).await.is_err() {
                    return;
                }
            }
        })
        .await
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

    async fn body_of(pool: &Arc<Pool>, path: &str) -> Bytes {
        let res = Arc::clone(pool).send(get(path)).await.unwrap();
        assert_eq!(res.status(), 200);
        res.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn sequential_requests_share_one_connection() {
        let (addr, accepted) = backend(usize::MAX, ok).await;
        let pool = Pool::new(addr, 8);
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
        let pool = Pool::new(addr, 8);
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
        let pool = Pool::new(addr, 8);
        for _ in 0..20 {
            assert_eq!(body_of(&pool, "/a").await, "ok");
        }
    }

    #[tokio::test]
    async fn a_body_dropped_unread_does_not_return_its_connection() {
        let (addr, accepted) = backend(usize::MAX, ok).await;
        let pool = Pool::new(addr, 8);
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
        let pool = Pool::new(addr, 4);
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
        let pool = Pool::new(addr, 4);
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
            if !read_until(&mut s, &mut seen, |b| {
                b.ends_with(b"0\r\n\r\n").then_some(0)
            })
            .await
            {
                return;
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
        let pool = Pool::new(slow_backend().await, 4);
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

    /// A backend that answers every request head on a connection with `answer(head)`,
    /// after reading the body its `content-length` announces (and no body otherwise),
    /// and closes the connection when the answer says `connection: close` or has no
    /// framing. `None` reads nothing more and holds the connection open unanswered.
    async fn scripted(answer: fn(&str, &[u8]) -> Option<Vec<u8>>) -> (String, Arc<AtomicUsize>) {
        listen(move |mut s| async move {
            let mut buf = Vec::new();
            loop {
                if !read_until(&mut s, &mut buf, head_len).await {
                    return;
                }
                let end = head_len(&buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |n| n.trim().parse::<usize>().unwrap());
                let Some(reply) = answer(&head, &buf[end..(end + len).min(buf.len())]) else {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    return;
                };
                if !read_until(&mut s, &mut buf, |_| Some(end + len)).await {
                    return;
                }
                let body: Vec<u8> = buf.drain(..end + len).skip(end).collect();
                let reply = answer(&head, &body).unwrap_or(reply);
                if s.write_all(&reply).await.is_err() {
                    return;
                }
                let text = String::from_utf8_lossy(&reply).to_lowercase();
                if text.contains("connection: close") || !text.contains("content-length") {
                    return;
                }
            }
        })
        .await
    }

    fn request(
        method: &str,
        path: &str,
        body: &'static str,
    ) -> Request<http_body_util::Full<Bytes>> {
        Request::builder()
            .method(method)
            .uri(path)
            .header("host", "backend")
            .body(http_body_util::Full::new(Bytes::from_static(
                body.as_bytes(),
            )))
            .unwrap()
    }

    async fn collect(res: Response<PooledBody>) -> Result<Bytes, UpstreamError> {
        Ok(res.into_body().collect().await?.to_bytes())
    }

    #[tokio::test]
    async fn bodies_go_out_framed_by_their_length() {
        // The backend echoes what it read: the head's framing and the body.
        let (addr, accepted) = scripted(|head, body| {
            let framing = head
                .lines()
                .find(|l| l.starts_with("content-length"))
                .unwrap_or("none");
            let text = format!("{framing}|{}", String::from_utf8_lossy(body));
            Some(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{text}",
                    text.len()
                )
                .into_bytes(),
            )
        })
        .await;
        let pool = Pool::new(addr, 4);
        let echo = |m, b| {
            let pool = Arc::clone(&pool);
            async move {
                collect(pool.send(request(m, "/e", b)).await.unwrap())
                    .await
                    .unwrap()
            }
        };
        assert_eq!(echo("POST", "hello").await, "content-length: 5|hello");
        assert_eq!(echo("POST", "").await, "content-length: 0|");
        assert_eq!(echo("GET", "").await, "none|");
        // A body larger than any socket buffer goes out whole, then the next request
        // reuses the connection.
        let big = Bytes::from(vec![b'x'; 1 << 20]);
        let req = Request::builder()
            .method("PUT")
            .uri("/e")
            .header("host", "backend")
            .body(http_body_util::Full::new(big))
            .unwrap();
        let res = collect(Arc::clone(&pool).send(req).await.unwrap())
            .await
            .unwrap();
        assert_eq!(res.len(), "content-length: 1048576|".len() + (1 << 20));
        assert_eq!(echo("POST", "again").await, "content-length: 5|again");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn head_and_interim_answers_keep_the_connection() {
        let (addr, accepted) = scripted(|head, _| {
            Some(match head.split(' ').next() {
                Some("head") => b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n".to_vec(),
                _ => b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                    .to_vec(),
            })
        })
        .await;
        let pool = Pool::new(addr, 4);
        for _ in 0..2 {
            let res = Arc::clone(&pool)
                .send(request("HEAD", "/h", ""))
                .await
                .unwrap();
            assert_eq!(res.headers()["content-length"], "50");
            assert!(res.body().is_end_stream());
            assert_eq!(collect(res).await.unwrap(), "");
            assert_eq!(body_of(&pool, "/after-interim").await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn answers_that_end_their_connection_are_read_and_not_reused() {
        let (addr, accepted) = scripted(|head, _| {
            Some(match head.split(' ').nth(1) {
                // More bytes than the answer: the connection is out of step.
                Some("/surplus") => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokJUNK".to_vec(),
                Some("/until-close") => b"HTTP/1.1 200 OK\r\n\r\nall until the close".to_vec(),
                Some("/close") => b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok".to_vec(),
                _ => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 9\r\n\r\n2\r\nok\r\n0\r\n\r\n".to_vec(),
            })
        })
        .await;
        let pool = Pool::new(addr, 4);
        assert_eq!(body_of(&pool, "/surplus").await, "ok");
        assert_eq!(body_of(&pool, "/until-close").await, "all until the close");
        assert_eq!(body_of(&pool, "/close").await, "ok");
        assert_eq!(body_of(&pool, "/both-lengths").await, "ok");
        assert!(pool.idle.lock().unwrap().is_empty());
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn malformed_answers_are_errors_not_guesses() {
        let (addr, _) = scripted(|head, _| {
            Some(match head.split(' ').nth(1) {
                Some("/lengths") => b"HTTP/1.1 200 OK\r\ncontent-length: 1, 2\r\n\r\nok".to_vec(),
                Some("/chunks") => {
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n".to_vec()
                }
                Some("/short") => {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\nok".to_vec()
                }
                _ => b"HTTP/1.1 200 OK\r\ncontent-len".to_vec(),
            })
        })
        .await;
        let pool = Pool::new(addr, 4);
        let send = |path| Arc::clone(&pool).send(get(path));
        assert!(matches!(
            send("/lengths").await,
            Err(UpstreamError::Protocol(ProtocolError::ContentLength))
        ));
        // A head cut off by the close.
        assert!(matches!(
            send("/cut").await,
            Err(UpstreamError::Protocol(ProtocolError::Incomplete))
        ));
        // Bodies that break off fail the body, after what was good.
        let chunks = collect(send("/chunks").await.unwrap()).await;
        assert!(
            matches!(
                chunks,
                Err(UpstreamError::Protocol(ProtocolError::Chunked(_)))
            ),
            "{chunks:?}"
        );
        let mut body = send("/short").await.unwrap().into_body();
        assert_eq!(
            body.frame().await.unwrap().unwrap().into_data().unwrap(),
            "ok"
        );
        assert!(matches!(
            body.frame().await,
            Some(Err(UpstreamError::Protocol(ProtocolError::Incomplete)))
        ));
        assert!(pool.idle.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_early_answer_ends_the_upload_and_its_connection() {
        // The backend refuses the upload from its head alone and never reads the body.
        let (addr, _) = scripted(|head, body| {
            (head.starts_with("post") && body.is_empty())
                .then(|| b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n".to_vec())
        })
        .await;
        let pool = Pool::new(addr, 4);
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let req = Request::builder()
            .method("POST")
            .uri("/upload")
            .header("host", "backend")
            .body(ChanBody(rx))
            .unwrap();
        // The upload never ends: only the early answer can end the exchange.
        let res = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            Arc::clone(&pool).send(req),
        )
        .await
        .expect("the early answer ended the exchange")
        .unwrap();
        assert_eq!(res.status(), 413);
        assert_eq!(collect(res).await.unwrap(), "");
        assert!(
            pool.idle.lock().unwrap().is_empty(),
            "half a body went out: not reusable"
        );
        drop(tx);
    }
}
