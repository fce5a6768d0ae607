//! A `tower` layer that rate-limits HTTP requests and answers `429 Too Many Requests`
//! with rate-limit headers (feature `tower`).
//!
//! The guarantee: every request the layer lets through was admitted by the limiter, and
//! every request it refuses is answered with a complete HTTP response — `429` with
//! `Retry-After` for a denial, `503` with `Retry-After` when the store cannot decide and
//! the limiter fails closed, `400` for a request that cannot be keyed — never with a
//! dropped connection or an error from the service. Unlike tower's own
//! `tower::limit::RateLimit`, nothing waits in `poll_ready`: `poll_ready` delegates to
//! the inner service and the decision is made per request, per key.
//!
//! The pieces:
//! - [`RateLimitLayer`] (thin and `Clone`) builds [`RateLimit`], the service holding the
//!   logic; its [`ResponseFuture`] is an enum, so a rejection costs no allocation.
//! - [`RequestLimiter`] decides a request: [`KeyedLimit`] pairs any [`Limiter`] with a
//!   [`KeyExtractor`] (a header, else the client IP, with [`HeaderOrIp`]; or a closure);
//!   the ratelab gateway implements it to pick a limiter per route.
//! - [`headers`] formats `RateLimit-Policy`, `RateLimit` (draft-ietf-httpapi-ratelimit-
//!   headers), `X-RateLimit-*` and `Retry-After`, for this layer and anyone else.
//!
//! ```
//! use limiter_core::tower::{HeaderOrIp, RateLimitLayer};
//! use limiter_core::{Kind, MemoryLimiter, MonotonicClock, Policy, Quota};
//! use tower::ServiceBuilder;
//! # use std::convert::Infallible;
//! # use http::{Request, Response};
//! # type Body = http_body_util::Full<bytes::Bytes>;
//!
//! // 10 requests per second per `x-api-key` (else per client IP), bursts of 10.
//! let policy = Policy::new(Kind::Gcra, Quota::per_second(10).unwrap());
//! let limiter = MemoryLimiter::new(policy, MonotonicClock::new(), 100_000);
//! let layer = RateLimitLayer::keyed("api", limiter, HeaderOrIp::new("x-api-key").unwrap());
//! let service = ServiceBuilder::new()
//!     .layer(layer)
//!     .service_fn(|_req: Request<Body>| async {
//!         Ok::<_, Infallible>(Response::new(Body::from("hello")))
//!     });
//! # let _ = service;
//! ```
//!
//! [`Limiter`]: crate::Limiter

mod body;
pub mod headers;
mod key;
mod keyed;
mod layer;
mod service;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, StatusCode};

pub use body::RateLimitBody;
pub use headers::PolicyHeaders;
pub use key::{DEFAULT_MAX_IDENTITY, HeaderOrIp, Identity, KeyExtractor, KeyRejection, PeerAddr};
pub use keyed::KeyedLimit;
pub use layer::RateLimitLayer;
pub use service::{RateLimit, ResponseFuture};

use crate::decision::Decision;

/// What a [`RequestLimiter`] decided about one request.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// No limit applies: the request passes through and its response is left untouched.
    Unlimited,
    /// A limiter decided. Allowed: the request goes on and its response gets the
    /// rate-limit headers. Denied: `429 Too Many Requests` with the same headers and
    /// `Retry-After`.
    Decided {
        /// The decision.
        decision: Decision,
        /// The policy's headers (precomputed once per policy).
        policy: Arc<PolicyHeaders>,
    },
    /// The limiter could not decide and fails closed: `503 Service Unavailable` with
    /// `Retry-After`.
    Unavailable {
        /// How long the client should wait (rounded up to whole seconds, at least one).
        retry_after: Duration,
    },
    /// The request can never be admitted as sent (its identity is too long, or it
    /// costs more than the limit): answered with `status` and `reason`.
    Rejected {
        /// The status to answer, a 4xx.
        status: StatusCode,
        /// A short, human-readable reason for the JSON body.
        reason: &'static str,
    },
}

/// A decision that is either known now (an in-memory limiter) or still to come (a
/// remote store).
#[derive(Debug)]
pub enum Check<F> {
    /// Decided synchronously: no future, no allocation.
    Ready(Outcome),
    /// Decided when the future completes.
    Pending(F),
}

/// Decides whether one HTTP request may pass: picks the key (and, for a gateway, the
/// limiter) from the request and asks the limiter.
///
/// `check` sees the request by reference and must return a future that owns what it
/// needs, because the request then moves on to the inner service.
pub trait RequestLimiter<B>: Send + Sync + 'static {
    /// The future of a decision that is not known at once.
    type Future: Future<Output = Outcome> + Send + 'static;

    /// Decides `req`.
    fn check(&self, req: &Request<B>) -> Check<Self::Future>;
}

impl<B, R: RequestLimiter<B> + ?Sized> RequestLimiter<B> for Arc<R> {
    type Future = R::Future;

    fn check(&self, req: &Request<B>) -> Check<Self::Future> {
        (**self).check(req)
    }
}
