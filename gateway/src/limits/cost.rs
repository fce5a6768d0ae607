//! What a request costs when the route does not fix it: from a request header
//! (`cost_from_request`, believed only from trusted identities), and after the response
//! (`cost_from_response`, settled when the backend's head arrives).
//!
//! The guarantee for `cost_from_response`: an admitted request reserves the route's
//! cost (or the declared one) — admission needs that much balance — and its key is
//! settled exactly once, through limiter-core's `settle` (token bucket and GCRA, whose
//! balance may go negative, so a key that spent more than it had is refused until the
//! refill pays the debt back):
//!
//! | the response | settled at |
//! |---|---|
//! | a head whose header is a whole number `n` (any status) | `n` |
//! | a head without the header, or with one that is not a whole number, status < 500 | the reserved cost (nothing moves) |
//! | the same with status ≥ 500 (the backend failed; the gateway's own 502/504 too) | 0: refunded |
//! | no head at all (the backend unreachable, the client gone first) | 0: refunded |
//!
//! The settle runs on the connection's task in memory (one atomic step), and in a
//! spawned task on Redis (one script call), so the response is never held up by the
//! store. Each settle is counted by result (`ratelab_gateway_cost_settles_total`):
//! `debited`, `credited`, `unchanged`, `refunded`, `failed` (the store failed: the
//! reservation stands).

use std::sync::Arc;

use http::{HeaderMap, HeaderName, StatusCode};
use limiter_core::Reservation;
use limiter_core::tower::{RequestOutcome, ResponseEnd, ResponseGuard, ResponseHook};

use super::route::{Limiting, Route};
use crate::identity::{Identity, IdentitySource};
use crate::metrics::Counter;

/// Settles, by result (see the module docs).
#[derive(Debug, Default)]
pub struct SettleStats {
    /// Settled above the reservation: the key paid more.
    pub debited: Counter,
    /// Settled below it (not zero): the key got some back.
    pub credited: Counter,
    /// Settled at the reservation (no header, or the same number): no store call.
    pub unchanged: Counter,
    /// Refunded: the backend failed or never answered.
    pub refunded: Counter,
    /// The store failed to settle: the reservation stands.
    pub failed: Counter,
}

impl SettleStats {
    /// Every counter with its `result` label.
    pub fn by_result(&self) -> [(&'static str, &Counter); 5] {
        [
            ("debited", &self.debited),
            ("credited", &self.credited),
            ("unchanged", &self.unchanged),
            ("refunded", &self.refunded),
            ("failed", &self.failed),
        ]
    }
}

/// A cost header's value: a whole number, ASCII digits around optional whitespace.
pub(super) fn parse_cost(value: Option<&http::HeaderValue>) -> Option<u64> {
    value?.to_str().ok()?.trim().parse().ok()
}

/// The cost `identity` declares in the request header `header`: believed only from an
/// API-key identity or through a trusted proxy (an identity from the client's own
/// address could pick any cost), and only when it is at least 1. `None`: the route's
/// cost.
pub(super) fn declared(
    header: &HeaderName,
    headers: &HeaderMap,
    identity: &Identity,
) -> Option<u64> {
    if !matches!(
        identity.source,
        IdentitySource::ApiKey | IdentitySource::Header
    ) {
        return None;
    }
    parse_cost(headers.get(header)).filter(|&c| c > 0)
}

/// A request of a `cost_from_response` route on its way to a decision: its route (the
/// limits that decide it, kept alive across a reload), key, tier and response header.
pub(super) struct SettleOn {
    pub(super) route: Arc<Route>,
    pub(super) key: Arc<str>,
    pub(super) tier: Option<Arc<str>>,
    pub(super) header: HeaderName,
}

impl SettleOn {
    /// `outcome` with the guard settling its reservation of `reserved` units attached
    /// (unchanged when it admitted nothing to settle).
    pub(super) fn attach(self, outcome: RequestOutcome, reserved: u64) -> RequestOutcome {
        let verdict = match &outcome {
            RequestOutcome::Decided { verdict, .. } => *verdict,
            RequestOutcome::DecidedAll { verdict, .. } => verdict.verdict(),
            _ => return outcome,
        };
        let settle = Settle {
            on: self,
            reservation: Reservation::new(verdict, reserved),
        };
        outcome.with_guard(settle.guard())
    }
}

/// One reservation to settle.
struct Settle {
    on: SettleOn,
    reservation: Reservation,
}

impl Settle {
    /// The guard settling this reservation at the response head (or refunding it when
    /// none comes); an empty guard when there is nothing to settle.
    fn guard(self) -> ResponseGuard {
        if !self.reservation.is_settleable() {
            return ResponseGuard::default();
        }
        ResponseGuard::new(OnHead { settle: Some(self) })
    }

    /// Settles at `actual`, counted: in memory now, on a remote store in a spawned task.
    fn run(self, actual: u64) {
        if actual == self.reservation.reserved {
            self.on.route.stats.settles.unchanged.inc();
            return;
        }
        if let Some(result) = self.settle_now(actual) {
            return self.count(actual, result);
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    let result = self.settle_remote(actual).await;
                    self.count(actual, result);
                });
            }
            Err(_) => self.on.route.stats.settles.failed.inc(),
        }
    }

    /// Counts a settle at `actual` by its result.
    fn count(&self, actual: u64, result: limiter_core::Result<()>) {
        let stats = &self.on.route.stats.settles;
        let counter = match result {
            Err(e) => {
                tracing::warn!(route = self.on.route.name(), error = %e.report(), "settle failed: the reservation stands");
                &stats.failed
            }
            Ok(()) if actual == 0 => &stats.refunded,
            Ok(()) if actual > self.reservation.reserved => &stats.debited,
            Ok(()) => &stats.credited,
        };
        counter.inc();
    }

    /// The settle in memory, now; `None` for a remote store.
    fn settle_now(&self, actual: u64) -> Option<limiter_core::Result<()>> {
        let key = &*self.on.key;
        match self.on.route.limiting(self.on.tier.as_deref()) {
            Limiting::One { limiter, .. } => limiter
                .settle_now(key, &self.reservation, actual)
                .map(|r| r.map(drop)),
            Limiting::All { limiter, .. } => limiter
                .settle_now(key, &self.reservation, actual)
                .map(|r| r.map(drop)),
        }
    }

    /// The settle on the remote store, under the key the decision used.
    async fn settle_remote(&self, actual: u64) -> limiter_core::Result<()> {
        match self.on.route.limiting(self.on.tier.as_deref()) {
            Limiting::One { limiter, .. } => {
                let key = self.on.route.shared_key(&self.on.key);
                limiter
                    .settle(&key, &self.reservation, actual)
                    .await
                    .map(drop)
            }
            Limiting::All { limiter, .. } => limiter
                .settle(&self.on.key, &self.reservation, actual)
                .await
                .map(drop),
        }
    }
}

/// The response hook: settles at the head, refunds when no head came.
struct OnHead {
    settle: Option<Settle>,
}

impl ResponseHook for OnHead {
    fn on_head(&mut self, status: StatusCode, headers: &mut HeaderMap) {
        let Some(settle) = self.settle.take() else {
            return;
        };
        let actual = match parse_cost(headers.get(&settle.on.header)) {
            Some(cost) => cost,
            None if status.is_server_error() => 0,
            None => settle.reservation.reserved,
        };
        settle.run(actual);
    }

    fn on_end(mut self: Box<Self>, _end: ResponseEnd) {
        // Still here: no head came (the backend failed or the client left first).
        if let Some(settle) = self.settle.take() {
            settle.run(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn a_cost_header_is_a_whole_number_or_nothing() {
        let v = |s: &'static str| Some(HeaderValue::from_static(s));
        assert_eq!(parse_cost(v("7").as_ref()), Some(7));
        assert_eq!(parse_cost(v(" 12 ").as_ref()), Some(12));
        assert_eq!(parse_cost(v("0").as_ref()), Some(0));
        for bad in ["-3", "1.5", "7 tokens", "", "18446744073709551616"] {
            assert_eq!(parse_cost(v(bad).as_ref()), None, "{bad:?}");
        }
        assert_eq!(parse_cost(None), None);
        let opaque = HeaderValue::from_bytes(b"\xff7").unwrap();
        assert_eq!(parse_cost(Some(&opaque)), None);
    }
}
