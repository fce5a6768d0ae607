//! A `tower` layer that rate-limits HTTP requests and answers `429 Too Many Requests`
//! with rate-limit headers (feature `tower`).
//!
//! The guarantee: every request the layer lets through was admitted by the limiter, and
//! every request it refuses is answered with a complete HTTP response — `429` with
//! `Retry-After` for a denial, `503` with `Retry-After` when the store cannot decide and
//! the limiter fails closed, `400` for a request that cannot be keyed, `500` when the
//! key is the client's IP and the server passed none — never with a dropped connection
//! or an error from the service. Unlike tower's own `tower::limit::RateLimit`, nothing
//! waits in `poll_ready`: `poll_ready` delegates to the inner service and the decision
//! is made per request, per key.
//!
//! The pieces:
//! - [`RateLimitLayer`] (thin and `Clone`) builds [`RateLimit`], the service holding the
//!   logic; its [`ResponseFuture`] is an enum, so a rejection costs no allocation.
//! - [`RequestLimiter`] decides a request: [`KeyedLimit`] pairs any [`Limiter`] (a
//!   [`RateLimiter`] in memory or on Redis) with a [`KeyExtractor`] ([`ClientIp`];
//!   [`HeaderOrIp`], a header else the client IP; or a closure); the ratelab gateway
//!   implements it to pick a limiter per route.
//! - [`RefusalResponse`] shapes the refusals' bodies: [`JsonError`] by default,
//!   [`ProblemJson`] for RFC 9457 `application/problem+json`, or a closure.
//! - [`headers`] formats `RateLimit-Policy`, `RateLimit` (draft-ietf-httpapi-ratelimit-
//!   headers), `X-RateLimit-*` and `Retry-After`, for this layer and anyone else.
//!
//! # An axum app, per client IP
//!
//! With the `axum` feature the client's IP is read from axum's `ConnectInfo`, so the
//! layer is all it takes (serve with `into_make_service_with_connect_info`):
//!
//! ```
//! # #[cfg(feature = "axum")] {
//! use std::net::SocketAddr;
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use limiter_core::tower::{ClientIp, RateLimitLayer};
//! use limiter_core::{Kind, MonotonicClock, Policy, Quota, RateLimiter};
//!
//! // Bursts of 5 per client IP, one more every 2 seconds (GCRA).
//! const QUOTA: Quota = Quota::new_const(1, Duration::from_secs(2)).with_burst_const(5);
//! let limiter = RateLimiter::memory(Policy::new(Kind::Gcra, QUOTA), MonotonicClock::new(), 100_000);
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "Hello world" }))
//!     .layer(RateLimitLayer::keyed("root", limiter, ClientIp::new()));
//! # async fn serve(app: Router) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
//! # }
//! # let _ = serve(app);
//! # }
//! ```
//!
//! Side by side with `tower_governor`'s README example, which limits per peer IP with
//! bursts of 5 and one request replenished every two seconds:
//!
//! | | `tower_governor` | this layer |
//! |---|---|---|
//! | the quota | `GovernorConfigBuilder::default().per_second(2).burst_size(5).finish().unwrap()` (`per_second(2)`: one element every 2 s) | `Quota::new_const(1, Duration::from_secs(2)).with_burst_const(5)`: a `const`, checked at compile time; or `Quota::bucket(5, 0.5)?` from a config |
//! | the key | peer IP by default (`PeerIpKeyExtractor`), from `ConnectInfo` | [`ClientIp`] (or [`HeaderOrIp`], or a closure), from `ConnectInfo` or [`PeerAddr`] |
//! | no address | `GovernorError::UnableToExtractKey` (500) | `500` by default, or one shared `no-peer` key ([`MissingPeer`]) |
//! | idle keys | a thread calling `retain_recent()` | [`RateLimiter::sweep`]; keys are capped (`max_keys`) either way |
//! | algorithms | GCRA | fixed window, sliding log, sliding window, token bucket, GCRA — one [`Policy`] |
//! | shared state | this process | this process or Redis ([`RateLimiter::redis`]), with fail-open / fail-closed / local fallback |
//! | headers | `x-ratelimit-after`, `retry-after`; more with `use_headers()` | always `RateLimit-Policy`, `RateLimit` (IETF draft), `X-RateLimit-*`, and `Retry-After` on refusals |
//! | the 429 body | `error_handler(Fn(GovernorError) -> Response)` | [`RateLimitLayer::with_refusal`]: [`ProblemJson`], [`JsonError`] or a closure; the headers stay right |
//!
//! # Any tower service
//!
//! ```
//! use limiter_core::tower::{HeaderOrIp, RateLimitLayer};
//! use limiter_core::{Kind, MonotonicClock, Policy, Quota, RateLimiter};
//! use tower::ServiceBuilder;
//! # use std::convert::Infallible;
//! # use http::{Request, Response};
//! # type Body = http_body_util::Full<bytes::Bytes>;
//!
//! // 10 requests per second per `x-api-key` (else per client IP), bursts of 10.
//! let policy = Policy::new(Kind::Gcra, Quota::per_second(10).unwrap());
//! let limiter = RateLimiter::memory(policy, MonotonicClock::new(), 100_000);
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
//! [`RateLimiter`]: crate::RateLimiter
//! [`RateLimiter::sweep`]: crate::RateLimiter::sweep
//! [`RateLimiter::redis`]: crate::RateLimiter::redis
//! [`Policy`]: crate::Policy

mod body;
pub mod guard;
mod header_list;
pub mod headers;
mod key;
mod keyed;
mod layer;
mod refusal;
mod service;

use std::future::Future;
use std::sync::Arc;

use http::{Request, StatusCode};

pub use body::RateLimitBody;
pub use guard::{ResponseEnd, ResponseGuard, ResponseHook};
pub use header_list::HeaderList;
pub use headers::PolicyHeaders;
pub use key::{
    ClientIp, DEFAULT_MAX_IDENTITY, HeaderOrIp, Identity, KeyExtractor, KeyRejection, MissingPeer,
    PeerAddr, peer_addr,
};
pub use keyed::KeyedLimit;
pub use layer::RateLimitLayer;
pub use refusal::{JsonError, ProblemJson, Refusal, RefusalResponse};
pub use service::{RateLimit, ResponseFuture};

use crate::decision::Verdict;
use crate::error::Result;
use crate::limits::LimitsVerdict;

/// What a [`RequestLimiter`] decided about one request.
#[derive(Debug)]
pub enum RequestOutcome {
    /// No limit applies: the request passes through and its response is left untouched.
    Unlimited,
    /// A limiter decided. Allowed: the request goes on and its response gets the
    /// rate-limit headers (none when `fail-open` admitted it because the store failed:
    /// no limiter decided, so the headers would invent a state). Denied: `429 Too Many Requests` with the same headers and
    /// `Retry-After` — or, when the store failed and the limiter fails closed
    /// ([`Verdict::is_unavailable`]), `503 Service Unavailable` with `Retry-After`.
    Decided {
        /// The decision and who made it.
        verdict: Verdict,
        /// The policy's headers (precomputed once per policy).
        policy: Arc<PolicyHeaders>,
    },
    /// A set of limits decided all-or-nothing ([`crate::limits`]): as
    /// [`Decided`](Self::Decided), with every limit a member of the rate-limit headers
    /// and `Retry-After` the longest wait among the refusing limits.
    DecidedAll {
        /// Every limit's decision and who made it (boxed: it holds up to eight
        /// decisions, and the single-limit outcomes stay small).
        verdict: Box<LimitsVerdict>,
        /// The set's headers (precomputed once per set).
        headers: Arc<HeaderList>,
    },
    /// The request can never be admitted as sent (its identity is unusable, it costs
    /// more than the limit, the server passed no client address): answered with
    /// `status` and `reason`.
    Rejected {
        /// The status to answer: a 4xx, or `500` for a server set-up mistake.
        status: StatusCode,
        /// A short, human-readable reason for the body.
        reason: &'static str,
    },
    /// `outcome`, with work tied to the response ([`ResponseGuard`]: a concurrency
    /// slot released when the body ends, a cost settled from the response head). The
    /// layer treats it as `outcome` and carries the guard into the response body; a
    /// refusal drops it at once.
    Guarded {
        /// What was decided.
        outcome: Box<RequestOutcome>,
        /// What to run at the response's head and end.
        guard: ResponseGuard,
    },
}

impl RequestOutcome {
    /// This outcome with `guard` attached (itself when `guard` is empty; guards of an
    /// already guarded outcome are joined, its own first).
    pub fn with_guard(self, guard: ResponseGuard) -> Self {
        if guard.is_empty() {
            return self;
        }
        match self {
            RequestOutcome::Guarded {
                outcome,
                guard: mut own,
            } => {
                own.append(guard);
                RequestOutcome::Guarded {
                    outcome,
                    guard: own,
                }
            }
            outcome => RequestOutcome::Guarded {
                outcome: Box::new(outcome),
                guard,
            },
        }
    }

    /// The outcome without its guard, and the guard (empty when it had none).
    pub fn into_parts(self) -> (RequestOutcome, ResponseGuard) {
        match self {
            RequestOutcome::Guarded { outcome, guard } => {
                let (outcome, mut inner) = outcome.into_parts();
                inner.append(guard);
                (outcome, inner)
            }
            outcome => (outcome, ResponseGuard::default()),
        }
    }

    /// The one mapping from a limiter's answer to an outcome: a verdict is
    /// [`Decided`](Self::Decided); a new key refused by a full in-memory store
    /// ([`Error::is_at_capacity`](crate::Error::is_at_capacity)) is `503` (the server is
    /// out of room, not the client out of quota); any other error is a request that can
    /// never succeed (it costs more than the policy ever admits: `400`).
    pub fn from_result(result: Result<Verdict>, policy: &Arc<PolicyHeaders>) -> Self {
        match result {
            Ok(verdict) => RequestOutcome::Decided {
                verdict,
                policy: Arc::clone(policy),
            },
            Err(e) if e.is_at_capacity() => RequestOutcome::Rejected {
                status: StatusCode::SERVICE_UNAVAILABLE,
                reason: "the rate limiter is full of throttled clients: new clients are refused for now",
            },
            Err(_) => RequestOutcome::Rejected {
                status: StatusCode::BAD_REQUEST,
                reason: "request costs more than the rate limit ever admits",
            },
        }
    }

    /// [`from_result`](Self::from_result) for a set of limits.
    pub fn from_limits(result: Result<LimitsVerdict>, headers: &Arc<HeaderList>) -> Self {
        match result {
            Ok(verdict) => RequestOutcome::DecidedAll {
                verdict: Box::new(verdict),
                headers: Arc::clone(headers),
            },
            Err(_) => RequestOutcome::Rejected {
                status: StatusCode::BAD_REQUEST,
                reason: "request costs more than the rate limit ever admits",
            },
        }
    }

    /// A request whose key could not be extracted.
    pub fn rejected(rejection: &KeyRejection) -> Self {
        RequestOutcome::Rejected {
            status: rejection.status(),
            reason: rejection.reason(),
        }
    }

    /// The status the layer answers itself, or `None` when the request goes on to the
    /// inner service.
    pub fn refusal_status(&self) -> Option<StatusCode> {
        match self {
            RequestOutcome::Unlimited => None,
            RequestOutcome::Decided { verdict, .. } if verdict.decision.allowed => None,
            RequestOutcome::Decided { verdict, .. } if verdict.is_unavailable() => {
                Some(StatusCode::SERVICE_UNAVAILABLE)
            }
            RequestOutcome::Decided { .. } => Some(StatusCode::TOO_MANY_REQUESTS),
            RequestOutcome::DecidedAll { verdict, .. } if verdict.decision.allowed => None,
            RequestOutcome::DecidedAll { verdict, .. } if verdict.is_unavailable() => {
                Some(StatusCode::SERVICE_UNAVAILABLE)
            }
            RequestOutcome::DecidedAll { .. } => Some(StatusCode::TOO_MANY_REQUESTS),
            RequestOutcome::Rejected { status, .. } => Some(*status),
            RequestOutcome::Guarded { outcome, .. } => outcome.refusal_status(),
        }
    }
}

/// A decision that is either known now (an in-memory limiter) or still to come (a
/// remote store).
#[derive(Debug)]
pub enum Check<F> {
    /// Decided synchronously: no future, no allocation.
    Ready(RequestOutcome),
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
    type Future: Future<Output = RequestOutcome> + Send + 'static;

    /// Decides `req`.
    fn check(&self, req: &Request<B>) -> Check<Self::Future>;
}

impl<B, R: RequestLimiter<B> + ?Sized> RequestLimiter<B> for Arc<R> {
    type Future = R::Future;

    fn check(&self, req: &Request<B>) -> Check<Self::Future> {
        (**self).check(req)
    }
}
