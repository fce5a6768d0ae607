//! [`KeyedLimit`]: one [`Limiter`] for every request, keyed by a [`KeyExtractor`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, StatusCode};

use super::headers::PolicyHeaders;
use super::key::KeyExtractor;
use super::{Check, Outcome, RequestLimiter};
use crate::error::Error;
use crate::limiter::Limiter;

/// How long a client is told to wait when the store failed and the layer fails closed.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// Limits every request with one limiter (one policy), counting each against the key
/// its [`KeyExtractor`] picks; each request costs `cost` units (1 by default).
///
/// Store failures (a [`Limiter`] that answers `Err` for them) fail closed with `503`;
/// a cost above what the policy can ever admit is answered `400`, since no wait helps.
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

/// Maps a limiter's answer to an [`Outcome`].
pub(crate) fn outcome(
    result: crate::Result<crate::Decision>,
    policy: &Arc<PolicyHeaders>,
) -> Outcome {
    match result {
        Ok(decision) => Outcome::Decided {
            decision,
            policy: Arc::clone(policy),
        },
        Err(Error::CostExceedsCapacity { .. }) => Outcome::Rejected {
            status: StatusCode::BAD_REQUEST,
            reason: "request costs more than the rate limit ever admits",
        },
        Err(Error::CircuitOpen(wait)) => Outcome::Unavailable {
            retry_after: wait.max(STORE_RETRY),
        },
        Err(_) => Outcome::Unavailable {
            retry_after: STORE_RETRY,
        },
    }
}

impl<B, L, K> RequestLimiter<B> for KeyedLimit<L, K>
where
    L: Limiter + 'static,
    K: KeyExtractor<B>,
{
    type Future = Pin<Box<dyn Future<Output = Outcome> + Send>>;

    fn check(&self, req: &Request<B>) -> Check<Self::Future> {
        let key = match self.extractor.extract(req) {
            Ok(key) => key,
            Err(rejection) => {
                return Check::Ready(Outcome::Rejected {
                    status: StatusCode::BAD_REQUEST,
                    reason: rejection.reason(),
                });
            }
        };
        let limiter = Arc::clone(&self.limiter);
        let headers = Arc::clone(&self.headers);
        let cost = self.cost;
        Check::Pending(Box::pin(async move {
            outcome(limiter.check(&key, cost).await, &headers)
        }))
    }
}
