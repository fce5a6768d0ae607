//! Rate-limit headers for a request under several limits ([`crate::limits`]): every
//! limit is one list member of `RateLimit-Policy` and `RateLimit`
//! (draft-ietf-httpapi-ratelimit-headers-11 §3, §4: `"burst";q=20;w=2,
//! "hourly";q=1000;w=3600`), each member formatted by that limit's own
//! [`PolicyHeaders`]; the legacy `X-RateLimit-*` and `Retry-After` carry the combined
//! decision (the limit with the least remaining, or the refusing limit with the longest
//! wait).
//!
//! ```
//! use limiter_core::limits::{Limit, LimitSet, MultiLimiter};
//! use limiter_core::tower::HeaderList;
//! use limiter_core::{Kind, ManualClock, Policy, Quota};
//! use std::time::Duration;
//!
//! let burst = Limit::new("burst", "a", Policy::new(Kind::Gcra, Quota::bucket(20, 10.0).unwrap()), 10);
//! let hourly = Limit::new("hourly", "b",
//!     Policy::new(Kind::SlidingWindow, Quota::new(1000, Duration::from_secs(3600)).unwrap()), 10);
//! let set = LimitSet::new(vec![burst, hourly]).unwrap();
//! let headers = HeaderList::new(&set);
//! assert_eq!(headers.policy_value(), "\"burst\";q=20;w=2, \"hourly\";q=1000;w=3600");
//! ```

use http::header::{HeaderMap, HeaderValue, RETRY_AFTER};

use super::headers::{
    PolicyHeaders, RATELIMIT, RATELIMIT_POLICY, X_RATELIMIT_LIMIT, X_RATELIMIT_REMAINING,
    X_RATELIMIT_RESET, ceil_secs, retry_after_secs, sf_integer,
};
use crate::limits::{LimitSet, LimitsDecision, Rule};

/// The header values fixed by a set of limits, formatted once, and each limit's own
/// [`PolicyHeaders`] for the per-request state.
#[derive(Debug, Clone)]
pub struct HeaderList {
    members: Vec<PolicyHeaders>,
    policy: HeaderValue,
}

impl HeaderList {
    /// The headers of every limit of `set`, each advertised under its name.
    pub fn new(set: &LimitSet) -> Self {
        let members: Vec<PolicyHeaders> = set
            .limits()
            .iter()
            .map(|l| match l.rule() {
                Rule::Rate(policy) => PolicyHeaders::new(l.name(), &policy),
                Rule::InFlight(f) => PolicyHeaders::in_flight(l.name(), f.limit()),
            })
            .collect();
        let joined = members
            .iter()
            .map(PolicyHeaders::policy_value)
            .collect::<Vec<_>>()
            .join(", ");
        Self {
            policy: HeaderValue::from_str(&joined).unwrap_or_else(|_| HeaderValue::from_static("")),
            members,
        }
    }

    /// The `RateLimit-Policy` value: every limit, in the set's order.
    pub fn policy_value(&self) -> &str {
        self.policy.to_str().unwrap_or_default()
    }

    /// The limits' names, in the set's order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(PolicyHeaders::name)
    }

    /// The `RateLimit` value for `decision`: every limit's remaining and reset.
    pub fn ratelimit_value(&self, decision: &LimitsDecision) -> HeaderValue {
        let mut value = Vec::with_capacity(self.members.len() * 32);
        for (i, (member, d)) in self.members.iter().zip(decision.decisions()).enumerate() {
            if i > 0 {
                value.extend_from_slice(b", ");
            }
            value.extend_from_slice(member.ratelimit_value(d).as_bytes());
        }
        HeaderValue::from_maybe_shared(bytes::Bytes::from(value))
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// Sets every rate-limit header for `decision` on `headers`, replacing any there; a
    /// refusal also gets `Retry-After`, the longest wait among the refusing limits.
    pub fn apply(&self, headers: &mut HeaderMap, decision: &LimitsDecision) {
        let combined = decision.combined();
        headers.reserve(6);
        headers.insert(RATELIMIT_POLICY.clone(), self.policy.clone());
        headers.insert(RATELIMIT.clone(), self.ratelimit_value(decision));
        headers.insert(
            X_RATELIMIT_LIMIT.clone(),
            HeaderValue::from(sf_integer(combined.limit)),
        );
        headers.insert(
            X_RATELIMIT_REMAINING.clone(),
            HeaderValue::from(sf_integer(combined.remaining)),
        );
        // On a refusal the reset is the wait, as `Retry-After` says (one number, two
        // headers that agree).
        let reset = if decision.allowed {
            ceil_secs(combined.reset_after)
        } else {
            retry_after_secs(combined.retry_after)
        };
        headers.insert(
            X_RATELIMIT_RESET.clone(),
            HeaderValue::from(sf_integer(reset)),
        );
        if !decision.allowed {
            headers.insert(
                RETRY_AFTER,
                HeaderValue::from(retry_after_secs(combined.retry_after)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::limits::{Limit, MultiLimiter};
    use crate::{Kind, ManualClock, Policy, Quota};

    #[test]
    fn every_limit_is_a_list_member_and_retry_after_the_longest_wait() {
        let hour = Duration::from_secs(3600);
        let burst = Limit::new(
            "burst",
            "a",
            Policy::new(Kind::Gcra, Quota::bucket(2, 1.0).unwrap()),
            10,
        );
        let hourly = Limit::new(
            "hourly",
            "b",
            Policy::new(Kind::FixedWindow, Quota::new(2, hour).unwrap()),
            10,
        );
        let set = LimitSet::new(vec![burst, hourly]).unwrap();
        let headers = HeaderList::new(&set);
        let multi = MultiLimiter::memory(set, ManualClock::new());
        let decide = || multi.decide_now("k", 1).unwrap().unwrap().decision;
        let mut map = HeaderMap::new();
        headers.apply(&mut map, &decide());
        assert_eq!(
            map["ratelimit-policy"],
            "\"burst\";q=2;w=2, \"hourly\";q=2;w=3600"
        );
        assert!(map.get("retry-after").is_none());
        headers.apply(&mut map, &decide());
        let refused = decide();
        assert!(!refused.allowed);
        headers.apply(&mut map, &refused);
        // Both refuse: the hour's wait is the longest.
        assert_eq!(map["retry-after"], "3600");
        let value = map["ratelimit"].to_str().unwrap();
        let parsed: sfv::List = sfv::Parser::new(value).parse().unwrap();
        assert_eq!(parsed.len(), 2, "{value}");
        assert!(value.starts_with("\"burst\";r=0;t="), "{value}");
        assert!(value.contains(", \"hourly\";r=0;t=3600"), "{value}");
        assert_eq!(map["x-ratelimit-limit"], "2");
    }

    #[test]
    fn an_in_flight_limit_is_a_concurrent_requests_member() {
        let burst = Limit::new(
            "burst",
            "a",
            Policy::new(Kind::Gcra, Quota::bucket(20, 10.0).unwrap()),
            10,
        );
        let slots = Limit::in_flight("slots", "b", crate::limits::InFlight::new(2).unwrap(), 10);
        let set = LimitSet::new(vec![burst, slots]).unwrap();
        let headers = HeaderList::new(&set);
        assert_eq!(
            headers.policy_value(),
            "\"burst\";q=20;w=2, \"slots\";q=2;qu=\"concurrent-requests\""
        );
        let parsed: sfv::List = sfv::Parser::new(headers.policy_value()).parse().unwrap();
        assert_eq!(parsed.len(), 2);
        let multi = MultiLimiter::memory(set, ManualClock::new());
        let take = || multi.acquire_now("k", 1).unwrap().unwrap();
        let (a, b) = (take(), take());
        let mut map = HeaderMap::new();
        headers.apply(&mut map, &b.verdict.decision);
        // Admitted: slots left, no reset (a slot frees whenever a request ends).
        let value = map["ratelimit"].to_str().unwrap().to_owned();
        assert!(value.ends_with(", \"slots\";r=0"), "{value}");
        sfv::Parser::new(value.as_str())
            .parse::<sfv::List>()
            .unwrap();
        let refused = take();
        assert!(!refused.verdict.decision.allowed);
        headers.apply(&mut map, &refused.verdict.decision);
        assert_eq!(map["retry-after"], "1");
        let value = map["ratelimit"].to_str().unwrap();
        assert!(value.ends_with(", \"slots\";r=0;t=1"), "{value}");
        drop((a, b));
    }
}
