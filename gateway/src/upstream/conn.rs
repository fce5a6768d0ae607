//! One HTTP/1.1 connection to the backend and one exchange over it: the request written
//! (head, then body frames as the client sends them), the response head read — driven
//! by the request's own future, with no task or channel between them.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::Method;
use http_body::Body;
use tokio::io::{AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use super::UpstreamError;
use super::codec::{self, ProtocolError, RequestFraming, ResponseHead};

/// Bytes asked of the socket per read, at least.
const READ_SIZE: usize = 16 * 1024;

/// One HTTP/1.1 connection to the backend, with what it has read but not yet consumed.
#[derive(Debug)]
pub(super) struct Conn {
    io: TcpStream,
    /// Read from the socket, not yet consumed: the start of a response.
    pub(super) buf: BytesMut,
    /// Request bytes to write (kept, so its allocation serves every request).
    pub(super) out: Vec<u8>,
    /// Its place under the pool's connection cap, given back when it closes.
    _permit: OwnedSemaphorePermit,
}

impl Conn {
    pub(super) fn new(io: TcpStream, permit: OwnedSemaphorePermit) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            out: Vec::with_capacity(1024),
            _permit: permit,
        }
    }

    /// Whether the idle connection can take a request: nothing unread, and no close or
    /// error from the backend. Costs no system call unless the socket turned readable.
    pub(super) fn is_usable(&mut self, cx: &mut Context<'_>) -> bool {
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
    pub(super) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
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
pub(super) struct Sending {
    framing: RequestFraming,
    /// Bytes of `Conn::out` written so far.
    written: usize,
    /// Whether any byte of the request reached the socket.
    pub(super) sent_any: bool,
    /// Whether any byte of an answer arrived.
    pub(super) got_any: bool,
    /// Body bytes still owed under `content-length`.
    owed: u64,
    /// The body has been read to its end (its last bytes may still be in `out`).
    body_done: bool,
    /// Bytes written plus body frames taken so far: progress, for the idle timeout.
    pub(super) moved: u64,
    /// The last wait was for the client's body (else for the backend to read).
    pub(super) waiting_for_client: bool,
}

impl Sending {
    pub(super) fn new(framing: RequestFraming) -> Self {
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
            moved: 0,
            waiting_for_client: false,
        }
    }

    /// Everything, body included, has been written.
    pub(super) fn is_sent(&self, conn: &Conn) -> bool {
        self.body_done && self.written == conn.out.len()
    }
}

impl Conn {
    /// Sends the request whose head is in `out` and whose body is `body`, and reads the
    /// response head. An answer that comes while the body is still going out (an early
    /// `413`, say) ends the sending: the rest of the body is dropped, and so, later, is
    /// the connection.
    pub(super) fn poll_exchange<B>(
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
        self.send_ready(cx, st, body)?;
        self.poll_head(cx, st, method)
    }

    /// Writes what can be written now: the head, then body frames as the client's body
    /// yields them. Returns once the socket or the body would block, or all is out.
    fn send_ready<B>(
        &mut self,
        cx: &mut Context<'_>,
        st: &mut Sending,
        body: &mut B,
    ) -> Result<(), UpstreamError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        loop {
            let before = st.written;
            let wrote = self.poll_write_out(cx, &mut st.written);
            // Counted before any error: a request cut off mid-write was still sent.
            st.sent_any |= st.written > before;
            st.moved += (st.written - before) as u64;
            match wrote {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(UpstreamError::Io(e)),
                Poll::Pending => {
                    st.waiting_for_client = false;
                    return Ok(());
                }
            }
            if st.body_done {
                return Ok(());
            }
            st.written = 0;
            self.out.clear();
            let frame = Pin::new(&mut *body).poll_frame(cx);
            st.moved += u64::from(frame.is_ready());
            match frame {
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers of the client's are not forwarded.
                    if let Ok(data) = frame.into_data() {
                        self.encode(st, &data)?;
                    }
                }
                Poll::Ready(Some(Err(e))) => return Err(UpstreamError::RequestBody(e.into())),
                Poll::Ready(None) => self.end_body(st)?,
                Poll::Pending => {
                    st.waiting_for_client = true;
                    return Ok(());
                }
            }
        }
    }

    /// The client's body ended: frames its end, or fails when it fell short.
    fn end_body(&mut self, st: &mut Sending) -> Result<(), UpstreamError> {
        match st.framing {
            RequestFraming::Length(_) if st.owed > 0 => {
                return Err(UpstreamError::RequestBody(
                    "request body shorter than its content-length".into(),
                ));
            }
            RequestFraming::Chunked => self.out.extend_from_slice(codec::LAST_CHUNK),
            _ => {}
        }
        st.body_done = true;
        Ok(())
    }

    /// Reads the answer's head, which may come before the request is all out.
    fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
        st: &mut Sending,
        method: &Method,
    ) -> Poll<Result<ResponseHead, UpstreamError>> {
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
