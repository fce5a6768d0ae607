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
/// its [`KeyExtractor`] picks; each request costs `cost` units (1 by default). An
/// in-memory limiter decides at once ([`Limiter::decide_now`]): no future is allocated.
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
        // In memory: decided now, no future.
        if let Some(result) = self.limiter.decide_now(&key, self.cost) {
            return Check::Ready(RequestOutcome::from_result(result, &self.headers));
        }
        let limiter = Arc::clone(&self.limiter);
        let headers = Arc::clone(&self.headers);
        let cost = self.cost;
        Check::Pending(Box::pin(async move {
            RequestOutcome::from_result(limiter.decide(&key, cost).await, &headers)
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::future::Future;
    use std::time::Duration;

    use http::StatusCode;

    use super::*;
    use crate::tower::PeerAddr;
    use crate::{Decision, Error, Kind, ManualClock, Policy, Quota, RateLimiter, Result};

    fn req() -> Request<()> {
        let mut r = Request::new(());
        r.extensions_mut()
            .insert(PeerAddr("10.0.0.1:1".parse().unwrap()));
        r
    }

    fn policy() -> Policy {
        Policy::new(Kind::FixedWindow, Quota::per_second_const(1))
    }

    #[test]
    fn in_memory_decisions_are_ready_without_a_future() {
        let limit = KeyedLimit::new(
            "p",
            RateLimiter::memory(policy(), ManualClock::new(), 10),
            super::super::ClientIp::new(),
        );
        let statuses: Vec<_> = (0..2)
            .map(|_| match RequestLimiter::<()>::check(&limit, &req()) {
                Check::Ready(outcome) => outcome.refusal_status(),
                Check::Pending(_) => panic!("an in-memory limiter decides at once"),
            })
            .collect();
        assert_eq!(statuses, [None, Some(StatusCode::TOO_MANY_REQUESTS)]);
    }

    /// A store that always fails, without a failure policy of its own.
    struct Down;

    impl Limiter for Down {
        fn policy(&self) -> Policy {
            policy()
        }

        fn check(&self, _: &str, _: u64) -> impl Future<Output = Result<Decision>> + Send {
            std::future::ready(Err(Error::timeout(Duration::from_millis(50))))
        }
    }

    #[tokio::test]
    async fn a_failing_store_without_a_policy_fails_closed_with_503() {
        let limit = KeyedLimit::new("p", Down, super::super::ClientIp::new());
        let Check::Pending(fut) = RequestLimiter::<()>::check(&limit, &req()) else {
            panic!("a remote store is awaited");
        };
        let outcome = fut.await;
        assert_eq!(
            outcome.refusal_status(),
            Some(StatusCode::SERVICE_UNAVAILABLE)
        );
        let RequestOutcome::Decided { verdict, .. } = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(verdict.decided_by, crate::DecidedBy::FailClosed);
        assert_eq!(verdict.decision.retry_after, Duration::from_secs(1));
    }
}
