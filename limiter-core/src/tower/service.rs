//! [`RateLimit`]: the service that decides each request and answers refusals itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::Service;

use super::body::RateLimitBody;
use super::headers::{PolicyHeaders, retry_after_secs};
use super::{Check, Outcome, RequestLimiter};
use crate::decision::Decision;

/// Rate-limits requests to `S` with a [`RequestLimiter`]; built by
/// [`RateLimitLayer`](super::RateLimitLayer).
///
/// `poll_ready` delegates to the inner service. `call` decides the request: admitted
/// requests go to the inner service and their responses get the rate-limit headers;
/// refused ones are answered here (`429`, `503` or `400`) and never reach it.
#[derive(Debug)]
pub struct RateLimit<S, R> {
    inner: S,
    limiter: Arc<R>,
}

impl<S: Clone, R> Clone for RateLimit<S, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            limiter: Arc::clone(&self.limiter),
        }
    }
}

impl<S, R> RateLimit<S, R> {
    /// Limits `inner` with `limiter`.
    pub fn new(inner: S, limiter: Arc<R>) -> Self {
        Self { inner, limiter }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The limiter.
    pub fn limiter(&self) -> &Arc<R> {
        &self.limiter
    }
}

impl<S, R, B, RB> Service<Request<B>> for RateLimit<S, R>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone,
    R: RequestLimiter<B>,
{
    type Response = Response<RateLimitBody<RB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, R::Future, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        match self.limiter.check(&req) {
            Check::Ready(outcome) => ResponseFuture::decided(outcome, &mut self.inner, req),
            Check::Pending(check) => {
                // The decision comes later: keep the service that was polled ready for it
                // and leave a fresh clone in its place (tower's usual hand-over).
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                ResponseFuture {
                    state: State::Checking {
                        check,
                        pending: Some((ready, req)),
                    },
                }
            }
        }
    }
}

pin_project! {
    /// The response future of [`RateLimit`]: waiting for a decision, waiting for the
    /// inner service, or holding a refusal. An enum, so refusals allocate nothing
    /// beyond their body.
    pub struct ResponseFuture<S, F, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, F, B>
    where
        S: Service<Request<B>>,
    {
        Checking {
            #[pin]
            check: F,
            pending: Option<(S, Request<B>)>,
        },
        Calling {
            #[pin]
            call: S::Future,
            headers: Option<(Decision, Arc<PolicyHeaders>)>,
        },
        Refused {
            refusal: Option<Refusal>,
        },
    }
}

impl<S, F, B> std::fmt::Debug for ResponseFuture<S, F, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, F, B> ResponseFuture<S, F, B>
where
    S: Service<Request<B>>,
{
    fn decided(outcome: Outcome, inner: &mut S, req: Request<B>) -> Self {
        let state = match outcome {
            Outcome::Unlimited => State::Calling {
                call: inner.call(req),
                headers: None,
            },
            Outcome::Decided { decision, policy } if decision.allowed => State::Calling {
                call: inner.call(req),
                headers: Some((decision, policy)),
            },
            refused => State::Refused {
                refusal: Some(Refusal::from(refused)),
            },
        };
        Self { state }
    }
}

impl<S, F, B, RB> Future for ResponseFuture<S, F, B>
where
    S: Service<Request<B>, Response = Response<RB>>,
    F: Future<Output = Outcome>,
{
    type Output = Result<Response<RateLimitBody<RB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Checking { check, pending } => {
                    let outcome = std::task::ready!(check.poll(cx));
                    let Some((mut svc, req)) = pending.take() else {
                        // Polled again after completion: nothing sensible left to do.
                        return Poll::Pending;
                    };
                    let next = ResponseFuture::decided(outcome, &mut svc, req).state;
                    state.set(next);
                }
                StateProj::Calling { call, headers } => {
                    let mut response = std::task::ready!(call.poll(cx))?;
                    if let Some((decision, policy)) = headers.take() {
                        policy.apply(response.headers_mut(), &decision);
                    }
                    return Poll::Ready(Ok(response.map(RateLimitBody::inner)));
                }
                StateProj::Refused { refusal } => {
                    let refusal = refusal
                        .take()
                        .unwrap_or_else(|| Refusal::from(Outcome::Unlimited));
                    return Poll::Ready(Ok(refusal.into_response()));
                }
            }
        }
    }
}

/// A response the layer answers itself.
#[derive(Debug)]
struct Refusal(Outcome);

impl From<Outcome> for Refusal {
    fn from(outcome: Outcome) -> Self {
        Refusal(outcome)
    }
}

impl Refusal {
    fn into_response<RB>(self) -> Response<RateLimitBody<RB>> {
        let (status, body) = match &self.0 {
            Outcome::Decided { decision, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "{{\"error\":\"too many requests\",\"retry_after\":{}}}\n",
                    retry_after_secs(decision.retry_after)
                ),
            ),
            Outcome::Unavailable { retry_after } => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{{\"error\":\"rate limiter unavailable\",\"retry_after\":{}}}\n",
                    retry_after_secs(*retry_after)
                ),
            ),
            Outcome::Rejected { status, reason } => {
                (*status, format!("{{\"error\":\"{reason}\"}}\n"))
            }
            // Never refused; answered defensively rather than panicking.
            Outcome::Unlimited => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "{\"error\":\"internal error\"}\n".to_owned(),
            ),
        };
        let mut response = Response::new(RateLimitBody::full(Bytes::from(body)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match self.0 {
            Outcome::Decided { decision, policy } => policy.apply(headers, &decision),
            Outcome::Unavailable { retry_after } => {
                headers.insert(
                    RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(retry_after)),
                );
            }
            Outcome::Rejected { .. } | Outcome::Unlimited => {}
        }
        response
    }
}
