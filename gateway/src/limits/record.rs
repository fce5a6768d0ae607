//! A limiter's answer recorded on its route: counted (outcome, fallback, refusals per
//! limit, decision time), heard by the access log, mapped to the rate-limit layer's
//! outcome with what the response must run attached (a settle, in-flight slots), and
//! shadow mode applied.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use http::StatusCode;
use limiter_core::limits::{Admission, LimitsVerdict, Permit};
use limiter_core::tower::{
    HeaderList, PolicyHeaders, RequestOutcome, ResponseEnd, ResponseGuard, ResponseHook,
};
use limiter_core::{DecidedBy, Result as LimitResult, Verdict};

use super::cost::SettleOn;
use super::route::{Limiting, Route};
use crate::access_log::DecisionNote;
use crate::metrics::Counter;

/// An admitted request's in-flight slots, counted in its set's gauge until released.
struct Holding {
    _permit: Permit,
    count: Arc<AtomicI64>,
}

impl Holding {
    fn new(permit: Permit, count: &Arc<AtomicI64>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self {
            _permit: permit,
            count: Arc::clone(count),
        }
    }
}

impl ResponseHook for Holding {
    fn on_end(self: Box<Self>, _end: ResponseEnd) {
        self.count.fetch_sub(1, Ordering::Relaxed);
        // The permit drops with `self`: its slots are released.
    }
}

impl Route {
    fn count_fallback(&self, by: DecidedBy) {
        match by {
            DecidedBy::Store => {}
            DecidedBy::FailOpen => self.stats.fallback_open.inc(),
            DecidedBy::Local => self.stats.fallback_local.inc(),
            DecidedBy::FailClosed => self.stats.fallback_closed.inc(),
        }
    }

    /// Records one limiter's answer and maps it to the layer's outcome (the one mapping,
    /// [`RequestOutcome::from_result`]), shadow mode applied.
    /// `attach` adds what the response must run (the settle of `cost_from_response`)
    /// before shadow mode lets a refusal through.
    pub(super) fn record(
        &self,
        result: LimitResult<Verdict>,
        headers: &Arc<PolicyHeaders>,
        started: Instant,
        note: Option<&DecisionNote>,
        attach: impl FnOnce(RequestOutcome) -> RequestOutcome,
    ) -> RequestOutcome {
        self.stats.decision_latency.observe(started.elapsed());
        if let Ok(verdict) = &result {
            self.count_fallback(verdict.decided_by);
            if let Some(note) = note {
                note.note(&self.name, verdict, self.shadow);
            }
        }
        self.finish(attach(RequestOutcome::from_result(result, headers)))
    }

    /// [`record_all`](Self::record_all) for an admission of the set `limiting` that may
    /// hold in-flight slots: the permit rides with the response (released when its body
    /// ends or the client goes away), counted in the set's `holding` gauge meanwhile.
    pub(super) fn record_held(
        &self,
        result: LimitResult<Admission>,
        limiting: &Limiting,
        started: Instant,
        note: Option<&DecisionNote>,
        attach: impl FnOnce(RequestOutcome) -> RequestOutcome,
    ) -> RequestOutcome {
        let Limiting::All {
            headers,
            refusals,
            holding,
            ..
        } = limiting
        else {
            // Only a set of limits acquires; answered rather than panicking.
            return RequestOutcome::Unlimited;
        };
        let (result, permit) = match result {
            Ok(Admission { verdict, permit }) => (Ok(verdict), permit),
            Err(e) => (Err(e), Permit::default()),
        };
        let outcome = self.record_all(result, headers, refusals, started, note, attach);
        if permit.is_empty() {
            return outcome;
        }
        outcome.with_guard(ResponseGuard::new(Holding::new(permit, holding)))
    }

    /// [`record`](Self::record) for several limits.
    pub(super) fn record_all(
        &self,
        result: LimitResult<LimitsVerdict>,
        headers: &Arc<HeaderList>,
        refusals: &[Counter],
        started: Instant,
        note: Option<&DecisionNote>,
        attach: impl FnOnce(RequestOutcome) -> RequestOutcome,
    ) -> RequestOutcome {
        self.stats.decision_latency.observe(started.elapsed());
        if let Ok(verdict) = &result {
            self.count_fallback(verdict.decided_by);
            if let Some(note) = note {
                note.note(&self.name, &verdict.verdict(), self.shadow);
            }
            if !verdict.decision.allowed && !verdict.is_unavailable() {
                for i in verdict.decision.refusing() {
                    if let Some(c) = refusals.get(i) {
                        c.inc();
                    }
                }
            }
        }
        self.finish(attach(RequestOutcome::from_limits(result, headers)))
    }

    /// `outcome` with the settle of its reservation of `cost` attached, on a
    /// `cost_from_response` route (`settle` is `None` elsewhere: unchanged).
    pub(super) fn settled(
        &self,
        outcome: RequestOutcome,
        settle: Option<SettleOn>,
        cost: u64,
    ) -> RequestOutcome {
        match settle {
            Some(settle) => settle.attach(outcome, cost),
            None => outcome,
        }
    }

    /// Counts the outcome; a shadow route lets a refusal by its limits through (with
    /// the headers of the decision when `shadow_headers`, else none).
    fn finish(&self, outcome: RequestOutcome) -> RequestOutcome {
        let counter = match outcome.refusal_status() {
            None => &self.stats.allowed,
            Some(StatusCode::TOO_MANY_REQUESTS) if self.shadow => {
                self.stats.shadow_denied.inc();
                return self.let_through(outcome);
            }
            Some(StatusCode::TOO_MANY_REQUESTS) => &self.stats.denied,
            Some(StatusCode::SERVICE_UNAVAILABLE) => &self.stats.unavailable,
            Some(_) => &self.stats.rejected,
        };
        counter.inc();
        outcome
    }

    /// A refused outcome turned into one that passes: the decision's headers (without
    /// `Retry-After`) when the route sends them in shadow mode, else none.
    fn let_through(&self, outcome: RequestOutcome) -> RequestOutcome {
        // Whatever the response must still run (a response-lifetime guard) stays.
        let (outcome, guard) = outcome.into_parts();
        if !self.shadow_headers {
            return RequestOutcome::Unlimited.with_guard(guard);
        }
        let passed = match outcome {
            RequestOutcome::Decided {
                mut verdict,
                policy,
            } => {
                verdict.decision.allowed = true;
                RequestOutcome::Decided { verdict, policy }
            }
            RequestOutcome::DecidedAll {
                mut verdict,
                headers,
            } => {
                verdict.decision.allowed = true;
                RequestOutcome::DecidedAll { verdict, headers }
            }
            _ => RequestOutcome::Unlimited,
        };
        passed.with_guard(guard)
    }
}
