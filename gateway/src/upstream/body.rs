//! The response body as the client takes it: decoded straight from the connection's
//! buffer and socket, and the connection handed back to the pool at its end.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::codec::{BodyDecoder, Decoded};
use super::conn::Conn;
use super::{Pool, UpstreamError};

/// A response body from the backend, read from the connection as the client takes it;
/// returns the connection to the pool when read to the end (and closes it when dropped
/// before).
#[derive(Debug)]
pub struct PooledBody {
    pub(super) decoder: BodyDecoder,
    /// `None` once the body ended (the connection returned or closed) or failed.
    pub(super) conn: Option<(Conn, Arc<Pool>)>,
    pub(super) keep_alive: bool,
    /// The idle timer while the backend pauses mid-body (made at the first pause, then
    /// re-armed), and whether it is armed for the current pause.
    pub(super) stall: Option<(Pin<Box<tokio::time::Sleep>>, bool)>,
}

impl PooledBody {
    /// The body is complete: its connection goes back to the pool if it may carry
    /// another request, else it is closed.
    pub(super) fn release(&mut self) {
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
                Ok(Decoded::NeedMore) => match conn.poll_fill(cx) {
                    Poll::Pending => {
                        // The backend paused mid-body: it has the idle timeout to go on.
                        let idle = this
                            .conn
                            .as_ref()
                            .map_or(Duration::ZERO, |(_, p)| p.timeouts().idle);
                        let (timer, armed) = this
                            .stall
                            .get_or_insert_with(|| (Box::pin(tokio::time::sleep(idle)), true));
                        if !*armed {
                            timer.as_mut().reset(tokio::time::Instant::now() + idle);
                            *armed = true;
                        }
                        std::task::ready!(timer.as_mut().poll(cx));
                        return this.fail(UpstreamError::Timeout(idle));
                    }
                    Poll::Ready(Ok(0)) => {
                        if let Err(e) = this.decoder.closed() {
                            return this.fail(e);
                        }
                        // A body that ran until the close: complete, and so is the connection.
                        this.conn = None;
                        return Poll::Ready(None);
                    }
                    Poll::Ready(Ok(_)) => {
                        if let Some((_, armed)) = &mut this.stall {
                            *armed = false;
                        }
                    }
                    Poll::Ready(Err(e)) => return this.fail(UpstreamError::Io(e)),
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
