//! [`KeyedLimit`]: one [`Limiter`] for every request, keyed by a [`KeyExtractor`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::Request;

use super::headers::PolicyHeaders;
use super::key::KeyExtractor;
use super::{Check, RequestLimiter, RequestOutcome};
use crate::limiter::Limiter;

/// Limits every request with one limiter (one policy), counting each against the key
/// its [`KeyExtractor`] picks; each request costs `cost` units (1 by default).
///
/// The limiter's [`Limiter::decide`] says who decided: a [`RateLimiter`] on Redis
/// answers store failures with its failure policy (a fail-closed refusal is a `503`);
/// any other limiter's store failures are refused fail-closed. A cost above what the
/// policy can ever admit is answered `400`, since no wait helps.
///
/// [`RateLimiter`]: crate::RateLimiter
#[derive(Debug)]
pub struct KeyedLimit<L, K> {
    limiter: Arc<L>,
    extractor: K,
    headers: Arc<PolicyHeaders>,
    cost: u64,
}

impl<L: Limiter, K> KeyedLimit<L, K> {
    /// Limits with `limiter`, keyed by `extractor`, advertised under `name`.
    pub fn new(name: &str, limiter: L, extractor: K) -> Self {
        let headers = Arc::new(PolicyHeaders::new(name, &limiter.policy()));
        Self {
            limiter: Arc::new(limiter),
            extractor,
            headers,
            cost: 1,
        }
    }

    /// Sets the cost of one request.
    pub fn with_cost(mut self, cost: u64) -> Self {
        self.cost = cost;
        self
    }

    /// The limiter.
    pub fn limiter(&self) -> &Arc<L> {
        &self.limiter
    }
}

impl<B, L, K> RequestLimiter<B> for KeyedLimit<L, K>
where
    L: Limiter + 'static,
    K: KeyExtractor<B>,
{
    type Future = Pin<Box<dyn Future<Output = RequestOutcome> + Send>>;

    fn check(&self, req: &Request<B>) -> Check<Self::Future> {
        let key = match self.extractor.extract(req) {
            Ok(key) => key,
            Err(rejection) => return Check::Ready(RequestOutcome::rejected(&rejection)),
        };
        let limiter = Arc::clone(&self.limiter);
        let headers = Arc::clone(&self.headers);
        let cost = self.cost;
        Check::Pending(Box::pin(async move {
            RequestOutcome::from_result(limiter.decide(&key, cost).await, &headers)
        }))
    }
}
