//! The names of the gateway's Prometheus metrics: what `/metrics` exposes and what the
//! load driver reads back. The gateway registers families under [`Family::name`]; the
//! text exposition shows counters with the `_total` suffix ([`Family::sample`]).

/// One metric family: the name it is registered under and the name of its samples in
/// the text exposition (`_total` appended for counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// The family name as registered (`ratelab_gateway_decisions`).
    pub name: &'static str,
    /// The sample name in the exposition (`ratelab_gateway_decisions_total`).
    pub sample: &'static str,
}

impl Family {
    const fn counter(name: &'static str, sample: &'static str) -> Self {
        Self { name, sample }
    }

    const fn plain(name: &'static str) -> Self {
        Self { name, sample: name }
    }
}

/// The prefix every gateway metric starts with; a target without any is not a ratelab
/// gateway.
pub const PREFIX: &str = "ratelab_gateway_";

/// Rate-limit decisions, by route, algorithm and outcome (counter).
pub const DECISIONS: Family = Family::counter(
    "ratelab_gateway_decisions",
    "ratelab_gateway_decisions_total",
);
/// Decisions made by the store's failure policy, by route, algorithm and policy
/// (counter).
pub const STORE_FALLBACKS: Family = Family::counter(
    "ratelab_gateway_store_fallbacks",
    "ratelab_gateway_store_fallbacks_total",
);
/// Calls to the rate-limit store (counter).
pub const STORE_CALLS: Family = Family::counter(
    "ratelab_gateway_store_calls",
    "ratelab_gateway_store_calls_total",
);
/// Failed store calls (counter).
pub const STORE_ERRORS: Family = Family::counter(
    "ratelab_gateway_store_errors",
    "ratelab_gateway_store_errors_total",
);
/// Store calls that timed out (counter).
pub const STORE_TIMEOUTS: Family = Family::counter(
    "ratelab_gateway_store_timeouts",
    "ratelab_gateway_store_timeouts_total",
);
/// Store calls skipped because the circuit breaker was open (counter).
pub const STORE_SHORT_CIRCUITED: Family = Family::counter(
    "ratelab_gateway_store_short_circuited",
    "ratelab_gateway_store_short_circuited_total",
);
/// Times the store's circuit breaker opened (counter).
pub const STORE_CIRCUIT_OPENED: Family = Family::counter(
    "ratelab_gateway_store_circuit_opened",
    "ratelab_gateway_store_circuit_opened_total",
);
/// Decisions admitted from a lease in hand, without a store call (counter).
pub const STORE_LOCAL_ALLOWED: Family = Family::counter(
    "ratelab_gateway_store_local_allowed",
    "ratelab_gateway_store_local_allowed_total",
);
/// Decisions refused locally after a store refusal, without a store call (counter).
pub const STORE_LOCAL_DENIED: Family = Family::counter(
    "ratelab_gateway_store_local_denied",
    "ratelab_gateway_store_local_denied_total",
);
/// Units dropped from leases that expired unspent (counter).
pub const STORE_LEASE_STRANDED: Family = Family::counter(
    "ratelab_gateway_store_lease_stranded",
    "ratelab_gateway_store_lease_stranded_total",
);
/// Whether the store's circuit breaker is open now (gauge).
pub const STORE_CIRCUIT_OPEN: Family = Family::plain("ratelab_gateway_store_circuit_open");
/// Requests each limit of a several-limit route refused, by route, tier and limit
/// (counter; a request two limits refuse counts in both).
pub const LIMIT_REFUSALS: Family = Family::counter(
    "ratelab_gateway_limit_refusals",
    "ratelab_gateway_limit_refusals_total",
);
/// Requests holding slots of each in-flight (concurrency) limit now, by route, tier and
/// limit, on this gateway (gauge; on Redis the store holds every gateway's).
pub const IN_FLIGHT_HELD: Family = Family::plain("ratelab_gateway_in_flight_held");
/// Costs settled after the response (`cost_from_response` routes), by route and
/// `result` (`debited`, `credited`, `unchanged`, `refunded`, `failed`).
pub const COST_SETTLES: Family = Family::counter(
    "ratelab_gateway_cost_settles",
    "ratelab_gateway_cost_settles_total",
);
/// Configuration reloads (SIGHUP or `--watch`), by `result`.
pub const CONFIG_RELOADS: Family = Family::counter(
    "ratelab_gateway_config_reloads",
    "ratelab_gateway_config_reloads_total",
);
/// Time to decide, by route and algorithm (histogram, seconds).
pub const DECISION_SECONDS: Family = Family::plain("ratelab_gateway_decision_seconds");
/// Keys held by each route's in-memory limiter (gauge).
pub const LIMITER_KEYS: Family = Family::plain("ratelab_gateway_limiter_keys");
/// Keys each route's in-memory limiter forgot, by reason: `idle` (back to a full
/// allowance), `in_use` (least recently used, to make room), `throttled` (`at_capacity =
/// "evict-oldest"` with every key throttled) (counter).
pub const LIMITER_EVICTIONS: Family = Family::counter(
    "ratelab_gateway_limiter_evictions",
    "ratelab_gateway_limiter_evictions_total",
);
/// New keys each route's in-memory limiter refused (`503`) because it was full of
/// throttled keys (`at_capacity = "deny"`) (counter).
pub const LIMITER_REFUSED: Family = Family::counter(
    "ratelab_gateway_limiter_refused",
    "ratelab_gateway_limiter_refused_total",
);
/// Client connections closed at once because their address held
/// `max_connections_per_ip` already (counter).
pub const CONNECTIONS_REFUSED: Family = Family::counter(
    "ratelab_gateway_connections_refused",
    "ratelab_gateway_connections_refused_total",
);
/// Client connections accepted (counter).
pub const CONNECTIONS: Family = Family::counter(
    "ratelab_gateway_connections",
    "ratelab_gateway_connections_total",
);
/// Client connections open now (gauge).
pub const CONNECTIONS_OPEN: Family = Family::plain("ratelab_gateway_connections_open");
/// Requests in flight now (gauge).
pub const IN_FLIGHT: Family = Family::plain("ratelab_gateway_in_flight");
/// Responses by status class (counter).
pub const RESPONSES: Family = Family::counter(
    "ratelab_gateway_responses",
    "ratelab_gateway_responses_total",
);
/// Backend exchanges that failed (counter).
pub const UPSTREAM_ERRORS: Family = Family::counter(
    "ratelab_gateway_upstream_errors",
    "ratelab_gateway_upstream_errors_total",
);
/// Requests refused for their identity before any limit, by reason (counter).
pub const IDENTITY_REJECTIONS: Family = Family::counter(
    "ratelab_gateway_identity_rejections",
    "ratelab_gateway_identity_rejections_total",
);
/// Access log lines by outcome, `written` or `dropped` (counter).
pub const ACCESS_LOG_LINES: Family = Family::counter(
    "ratelab_gateway_access_log_lines",
    "ratelab_gateway_access_log_lines_total",
);
/// Time until the backend's response headers (histogram, seconds).
pub const UPSTREAM_SECONDS: Family = Family::plain("ratelab_gateway_upstream_seconds");

/// The route template label.
pub const LABEL_ROUTE: &str = "route";
/// The algorithm label (`limiter_core::Kind::name`).
pub const LABEL_ALGORITHM: &str = "algorithm";
/// The outcome label of [`DECISIONS`].
pub const LABEL_OUTCOME: &str = "outcome";
/// The failure-policy label of [`STORE_FALLBACKS`] (`fail-open`, `fail-closed`, `local`).
pub const LABEL_POLICY: &str = "policy";
/// The limit label of [`LIMIT_REFUSALS`] (the limit's name in the headers).
pub const LABEL_LIMIT: &str = "limit";
/// The tier label of [`LIMIT_REFUSALS`] (`default` for the route's own limits).
pub const LABEL_TIER: &str = "tier";
/// The result label of [`CONFIG_RELOADS`] (`applied`, `refused`).
pub const LABEL_RESULT: &str = "result";
/// The reason label of [`IDENTITY_REJECTIONS`] (`unknown_api_key`, `api_key_required`,
/// `bad_identity_header`) and of [`LIMITER_EVICTIONS`] (`idle`, `in_use`, `throttled`).
pub const LABEL_REASON: &str = "reason";

/// Outcome: the request was admitted.
pub const OUTCOME_ALLOWED: &str = "allowed";
/// Outcome: refused by the limit (`429`).
pub const OUTCOME_DENIED: &str = "denied";
/// Outcome: refused before deciding (`400` a cost above the limit, `401` a route's
/// required API key missing).
pub const OUTCOME_REJECTED: &str = "rejected";
/// Outcome: the store failed and the policy refused (`503`).
pub const OUTCOME_UNAVAILABLE: &str = "unavailable";
/// `outcome` value: a route in shadow mode (or a `--dry-run` gateway) would have
/// refused the request, and let it through.
pub const OUTCOME_SHADOW_DENIED: &str = "shadow_denied";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_samples_are_the_name_with_total() {
        for f in [
            DECISIONS,
            STORE_FALLBACKS,
            STORE_CALLS,
            STORE_ERRORS,
            STORE_TIMEOUTS,
            STORE_SHORT_CIRCUITED,
            STORE_CIRCUIT_OPENED,
            STORE_LOCAL_ALLOWED,
            STORE_LOCAL_DENIED,
            STORE_LEASE_STRANDED,
            LIMITER_EVICTIONS,
            LIMITER_REFUSED,
            CONNECTIONS_REFUSED,
            CONNECTIONS,
            RESPONSES,
            UPSTREAM_ERRORS,
            IDENTITY_REJECTIONS,
        ] {
            assert_eq!(f.sample, format!("{}_total", f.name));
            assert!(f.name.starts_with(PREFIX));
        }
        for f in [
            STORE_CIRCUIT_OPEN,
            DECISION_SECONDS,
            LIMITER_KEYS,
            IN_FLIGHT,
        ] {
            assert_eq!(f.sample, f.name);
        }
    }
}
