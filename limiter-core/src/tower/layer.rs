//! [`RateLimitLayer`]: the thin, cloneable configuration that builds [`RateLimit`].

use std::fmt;
use std::sync::Arc;

use tower::Layer;

use super::keyed::KeyedLimit;
use super::refusal::{JsonError, RefusalResponse};
use super::service::RateLimit;
use crate::limiter::Limiter;

/// Wraps a service in [`RateLimit`], sharing one [`RequestLimiter`](super::RequestLimiter)
/// (and so one set of counters) between every service it builds.
///
/// ```
/// use limiter_core::tower::{ClientIp, ProblemJson, RateLimitLayer};
/// use limiter_core::{Kind, MonotonicClock, Policy, Quota, RateLimiter};
/// use tower::{Layer, service_fn};
/// # use std::convert::Infallible;
/// # use http::{Request, Response};
///
/// let policy = Policy::new(Kind::SlidingWindow, Quota::per_minute_const(60));
/// let layer = RateLimitLayer::keyed(
///     "api",
///     RateLimiter::memory(policy, MonotonicClock::new(), 100_000),
///     ClientIp::new(),
/// )
/// .with_refusal(ProblemJson::new());
/// let service = layer.layer(service_fn(|_: Request<String>| async {
///     Ok::<_, Infallible>(Response::new(String::from("hello")))
/// }));
/// # let _ = service;
/// ```
pub struct RateLimitLayer<R> {
    limiter: Arc<R>,
    refusal: Arc<dyn RefusalResponse>,
}

impl<R> Clone for RateLimitLayer<R> {
    fn clone(&self) -> Self {
        Self {
            limiter: Arc::clone(&self.limiter),
            refusal: Arc::clone(&self.refusal),
        }
    }
}

impl<R: fmt::Debug> fmt::Debug for RateLimitLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl<R> RateLimitLayer<R> {
    /// A layer deciding with `limiter`.
    pub fn new(limiter: R) -> Self {
        Self::shared(Arc::new(limiter))
    }

    /// A layer deciding with a limiter shared with the caller (to read its statistics).
    pub fn shared(limiter: Arc<R>) -> Self {
        Self {
            limiter,
            refusal: Arc::new(JsonError),
        }
    }

    /// Shapes the responses the layer answers itself (`429`, `503`, `400`, `500`) with
    /// `refusal`, for example [`ProblemJson`](super::ProblemJson). The rate-limit
    /// headers and `Retry-After` are set by the layer either way.
    pub fn with_refusal(mut self, refusal: impl RefusalResponse) -> Self {
        self.refusal = Arc::new(refusal);
        self
    }

    /// The limiter.
    pub fn limiter(&self) -> &Arc<R> {
        &self.limiter
    }
}

impl<L, K> RateLimitLayer<KeyedLimit<L, K>>
where
    L: Limiter + 'static,
{
    /// A layer that limits every request with `limiter`, keyed by `extractor`, and
    /// advertises the policy under `name`.
    pub fn keyed(name: &str, limiter: L, extractor: K) -> Self {
        Self::new(KeyedLimit::new(name, limiter, extractor))
    }
}

impl<S, R> Layer<S> for RateLimitLayer<R> {
    type Service = RateLimit<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, Arc::clone(&self.limiter))
            .with_shared_refusal(Arc::clone(&self.refusal))
    }
}
