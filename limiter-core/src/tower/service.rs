//! [`RateLimit`]: the service that decides each request and answers refusals itself.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderValue, RETRY_AFTER};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::Service;

use super::body::RateLimitBody;
use super::guard::{ResponseEnd, ResponseGuard};
use super::header_list::HeaderList;
use super::headers::{PolicyHeaders, retry_after_secs};
use super::refusal::{JsonError, Refusal, RefusalResponse};
use super::{Check, RequestLimiter, RequestOutcome};
use crate::decision::{DecidedBy, Decision};
use crate::limits::LimitsDecision;

/// Rate-limits requests to `S` with a [`RequestLimiter`]; built by
/// [`RateLimitLayer`](super::RateLimitLayer).
///
/// `poll_ready` delegates to the inner service. `call` decides the request: admitted
/// requests go to the inner service and their responses get the rate-limit headers;
/// refused ones are answered here (`429`, `503`, `400` or `500`, shaped by its
/// [`RefusalResponse`]) and never reach it.
pub struct RateLimit<S, R> {
    inner: S,
    limiter: Arc<R>,
    refusal: Arc<dyn RefusalResponse>,
}

impl<S: Clone, R> Clone for RateLimit<S, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            limiter: Arc::clone(&self.limiter),
            refusal: Arc::clone(&self.refusal),
        }
    }
}

impl<S: fmt::Debug, R: fmt::Debug> fmt::Debug for RateLimit<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl<S, R> RateLimit<S, R> {
    /// Limits `inner` with `limiter`, answering refusals with [`JsonError`] bodies.
    pub fn new(inner: S, limiter: Arc<R>) -> Self {
        Self {
            inner,
            limiter,
            refusal: Arc::new(JsonError),
        }
    }

    /// Shapes refusals with `refusal` (see [`RateLimitLayer::with_refusal`](super::RateLimitLayer::with_refusal)).
    pub fn with_refusal(self, refusal: impl RefusalResponse) -> Self {
        self.with_shared_refusal(Arc::new(refusal))
    }

    pub(super) fn with_shared_refusal(mut self, refusal: Arc<dyn RefusalResponse>) -> Self {
        self.refusal = refusal;
        self
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
    RB: http_body::Body,
{
    type Response = Response<RateLimitBody<RB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, R::Future, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        match self.limiter.check(&req) {
            Check::Ready(outcome) => {
                ResponseFuture::decided(outcome, &mut self.inner, req, &*self.refusal)
            }
            Check::Pending(check) => {
                // The decision comes later: keep the service that was polled ready for it
                // and leave a fresh clone in its place (tower's usual hand-over).
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                ResponseFuture {
                    state: State::Checking {
                        check,
                        pending: Some((ready, req, Arc::clone(&self.refusal))),
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
            pending: Option<(S, Request<B>, Arc<dyn RefusalResponse>)>,
        },
        Calling {
            #[pin]
            call: S::Future,
            headers: Option<Stamp>,
            guard: ResponseGuard,
        },
        Refused {
            response: Option<http::Response<bytes::Bytes>>,
        },
    }
}

impl<S, F, B> fmt::Debug for ResponseFuture<S, F, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, F, B> ResponseFuture<S, F, B>
where
    S: Service<Request<B>>,
{
    fn decided(
        outcome: RequestOutcome,
        inner: &mut S,
        req: Request<B>,
        refusal: &dyn RefusalResponse,
    ) -> Self {
        // The guard goes with an admitted request into its response; a refusal drops it.
        let (outcome, guard) = outcome.into_parts();
        let state = match outcome {
            RequestOutcome::Unlimited => State::Calling {
                call: inner.call(req),
                headers: None,
                guard,
            },
            RequestOutcome::Decided { verdict, policy } if verdict.decision.allowed => {
                // Admitted by `fail-open` because the store failed: no limiter decided,
                // so no rate-limit state is claimed.
                let decided = verdict.decided_by != DecidedBy::FailOpen;
                State::Calling {
                    call: inner.call(req),
                    headers: decided.then_some(Stamp::One(verdict.decision, policy)),
                    guard,
                }
            }
            RequestOutcome::DecidedAll { verdict, headers } if verdict.decision.allowed => {
                // The same for a set of limits: fail-open decided none of them.
                let decided = verdict.decided_by != DecidedBy::FailOpen;
                State::Calling {
                    call: inner.call(req),
                    headers: decided.then(|| Stamp::All(Box::new(verdict.decision), headers)),
                    guard,
                }
            }
            refused => State::Refused {
                response: Some(refuse(&refused, refusal)),
            },
        };
        Self { state }
    }
}

impl<S, F, B, RB> Future for ResponseFuture<S, F, B>
where
    S: Service<Request<B>, Response = Response<RB>>,
    RB: http_body::Body,
    F: Future<Output = RequestOutcome>,
{
    type Output = Result<Response<RateLimitBody<RB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Checking { check, pending } => {
                    let outcome = std::task::ready!(check.poll(cx));
                    let Some((mut svc, req, refusal)) = pending.take() else {
                        // Polled again after completion: nothing sensible left to do.
                        return Poll::Pending;
                    };
                    let next = ResponseFuture::decided(outcome, &mut svc, req, &*refusal).state;
                    state.set(next);
                }
                StateProj::Calling {
                    call,
                    headers,
                    guard,
                } => {
                    // An error drops the guard with the state: `NoResponse`.
                    let mut response = std::task::ready!(call.poll(cx))?;
                    match headers.take() {
                        Some(Stamp::One(decision, policy)) => {
                            policy.apply(response.headers_mut(), &decision);
                        }
                        Some(Stamp::All(decision, list)) => {
                            list.apply(response.headers_mut(), &decision);
                        }
                        None => {}
                    }
                    let mut guard = std::mem::take(guard);
                    if guard.is_empty() {
                        return Poll::Ready(Ok(response.map(RateLimitBody::inner)));
                    }
                    let status = response.status();
                    guard.head(status, response.headers_mut());
                    // A body that is over before it starts is never polled.
                    if response.body().is_end_stream() {
                        guard.end(ResponseEnd::Complete);
                    }
                    return Poll::Ready(Ok(response.map(|b| RateLimitBody::guarded(b, guard))));
                }
                StateProj::Refused { response } => {
                    let response = response.take().unwrap_or_else(|| {
                        // Polled again after completion: answer, never panic.
                        refuse(&RequestOutcome::Unlimited, &JsonError)
                    });
                    return Poll::Ready(Ok(response.map(RateLimitBody::full)));
                }
            }
        }
    }
}

/// The headers an admitted response gets: one policy's, or a set of limits'.
enum Stamp {
    One(Decision, Arc<PolicyHeaders>),
    All(Box<LimitsDecision>, Arc<HeaderList>),
}

/// The response to a refused request: shaped by `shape`, then the rate-limit headers and
/// `Retry-After` set here, so no shape can drop or misstate them.
fn refuse(outcome: &RequestOutcome, shape: &dyn RefusalResponse) -> Response<bytes::Bytes> {
    let status = outcome
        .refusal_status()
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let (reason, retry_after, policy, verdict) = match outcome {
        RequestOutcome::Decided { verdict, policy } => {
            let reason = if verdict.is_unavailable() {
                "rate limiter unavailable"
            } else {
                "too many requests"
            };
            let retry = retry_after_secs(verdict.decision.retry_after);
            (reason, Some(retry), Some(policy.name()), Some(*verdict))
        }
        RequestOutcome::DecidedAll { verdict, headers } => {
            let reason = if verdict.is_unavailable() {
                "rate limiter unavailable"
            } else {
                "too many requests"
            };
            let one = verdict.verdict();
            let retry = retry_after_secs(one.decision.retry_after);
            // The refusal names the limit that speaks for the request.
            let speaker = verdict
                .decision
                .refusing()
                .max_by_key(|&i| verdict.decision.decisions()[i].retry_after)
                .and_then(|i| headers.names().nth(i));
            (reason, Some(retry), speaker, Some(one))
        }
        // A full store's refusal passes in a moment: say when to come back.
        RequestOutcome::Rejected { reason, status }
            if *status == http::StatusCode::SERVICE_UNAVAILABLE =>
        {
            (*reason, Some(1), None, None)
        }
        RequestOutcome::Rejected { reason, .. } => (*reason, None, None, None),
        // Never refused; answered defensively rather than panicking.
        RequestOutcome::Unlimited | RequestOutcome::Guarded { .. } => {
            ("internal error", None, None, None)
        }
    };
    let mut response = shape.respond(&Refusal {
        status,
        reason,
        retry_after,
        policy,
        verdict: verdict.as_ref(),
    });
    let headers = response.headers_mut();
    match (outcome, retry_after) {
        (RequestOutcome::Decided { verdict, policy }, _) if !verdict.is_unavailable() => {
            policy.apply(headers, &verdict.decision);
        }
        (
            RequestOutcome::DecidedAll {
                verdict,
                headers: list,
            },
            _,
        ) if !verdict.is_unavailable() => {
            list.apply(headers, &verdict.decision);
        }
        (_, Some(secs)) => {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        _ => {}
    }
    response
}
