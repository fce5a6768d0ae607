//! The response body of [`RateLimit`](super::RateLimit): the inner service's body, or
//! the small JSON body of a refusal; an admitted request's [`ResponseGuard`] rides in it
//! and ends when the body does (or is dropped).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::guard::{ResponseEnd, ResponseGuard};

pin_project! {
    /// Either the inner service's response body, streamed untouched, or the body of a
    /// response the layer answered itself (`429`, `503`, `400`). Carries the request's
    /// [`ResponseGuard`]: ended [`Complete`](ResponseEnd::Complete) with the last frame,
    /// [`Aborted`](ResponseEnd::Aborted) on an error or when dropped before its end.
    #[derive(Debug)]
    pub struct RateLimitBody<B> {
        #[pin]
        kind: Kind<B>,
        guard: ResponseGuard,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner {
            #[pin]
            body: B,
        },
        Refusal {
            body: Option<Bytes>,
        },
    }
}

impl<B> RateLimitBody<B> {
    /// Wraps the inner service's body.
    pub fn inner(body: B) -> Self {
        Self::guarded(body, ResponseGuard::default())
    }

    /// Wraps the inner service's body, ending `guard` when the body ends or is dropped.
    pub fn guarded(body: B, guard: ResponseGuard) -> Self {
        Self {
            kind: Kind::Inner { body },
            guard,
        }
    }

    /// A complete body written by the layer.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self {
            kind: Kind::Refusal {
                body: Some(bytes.into()),
            },
            guard: ResponseGuard::default(),
        }
    }
}

impl<B> Body for RateLimitBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        match this.kind.project() {
            KindProj::Inner { mut body } if !this.guard.is_empty() => {
                let frame = std::task::ready!(body.as_mut().poll_frame(cx));
                match &frame {
                    None => this.guard.end(ResponseEnd::Complete),
                    Some(Err(_)) => this.guard.end(ResponseEnd::Aborted),
                    // A server stops polling once the body says it has ended: the last
                    // frame is the end.
                    Some(Ok(_)) if body.is_end_stream() => this.guard.end(ResponseEnd::Complete),
                    Some(Ok(_)) => {}
                }
                Poll::Ready(frame)
            }
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Refusal { body } => Poll::Ready(
                body.take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Refusal { body } => body.as_ref().is_none_or(Bytes::is_empty),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Refusal { body } => {
                SizeHint::with_exact(body.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
