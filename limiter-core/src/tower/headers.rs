//! Rate-limit response headers: the IETF draft's `RateLimit-Policy` and `RateLimit`
//! (draft-ietf-httpapi-ratelimit-headers), the legacy `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset`, and `Retry-After`.
//!
//! Every number of seconds is rounded **up**: a client that waits `Retry-After` seconds
//! and retries is admitted (if nothing else spent the allowance meanwhile), and a
//! `Retry-After` on a denial is never 0.
//!
//! How a [`Policy`] maps to the draft's quota `q` and window `w`: the windowed
//! algorithms admit `q = limit` per window `w = period`; the token bucket and GCRA hold
//! `q = burst` and refill it completely in `w = burst × period / limit`.
//!
//! ```
//! use limiter_core::tower::PolicyHeaders;
//! use limiter_core::{Decision, Kind, Policy, Quota};
//! use std::time::Duration;
//!
//! let policy = Policy::new(Kind::FixedWindow, Quota::per_minute(100).unwrap());
//! let headers = PolicyHeaders::new("search", &policy);
//! assert_eq!(headers.policy_value(), "\"search\";q=100;w=60");
//!
//! let mut map = http::HeaderMap::new();
//! let denied = Decision::deny(100, 0, Duration::from_millis(1500), Duration::from_millis(200));
//! headers.apply(&mut map, &denied);
//! assert_eq!(map["ratelimit"], "\"search\";r=0;t=2");
//! assert_eq!(map["retry-after"], "1");
//! assert_eq!(map["x-ratelimit-reset"], "2");
//! ```

use std::time::Duration;

use bytes::BytesMut;
use http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use crate::decision::Decision;
use crate::limiter::Policy;

/// `RateLimit-Policy`: the policies that apply (quota `q`, window `w`).
pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`: the state of the policy for this client (remaining `r`, reset `t`).
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// `X-RateLimit-Limit` (legacy): the quota.
pub static X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// `X-RateLimit-Remaining` (legacy): units left now.
pub static X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `X-RateLimit-Reset` (legacy): seconds until the full allowance is back (a delta, not
/// a timestamp).
pub static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Whole seconds, rounded up: what a client waits so that the wait is long enough.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The `Retry-After` value for a wait of `d`: whole seconds rounded up, at least 1.
pub fn retry_after_secs(d: Duration) -> u64 {
    ceil_secs(d).max(1)
}

/// The header values fixed by a policy, formatted once: `RateLimit-Policy`,
/// `X-RateLimit-Limit` and the policy's name for `RateLimit`.
#[derive(Debug, Clone)]
pub struct PolicyHeaders {
    name: String,
    quota: u64,
    window_secs: u64,
    policy: HeaderValue,
    limit: HeaderValue,
}

impl PolicyHeaders {
    /// The headers of `policy`, advertised under `name` (an identifier such as the
    /// route; characters outside printable ASCII, `"` and `\` become `_`).
    pub fn new(name: &str, policy: &Policy) -> Self {
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let q = policy.quota;
        let (quota, window) = if policy.kind.is_bucket() {
            let refill =
                u128::from(q.burst()) * u128::from(q.period_nanos()) / u128::from(q.limit());
            (
                q.burst(),
                Duration::from_nanos(u64::try_from(refill).unwrap_or(u64::MAX)),
            )
        } else {
            (q.limit(), q.period())
        };
        let window_secs = ceil_secs(window).max(1);
        let policy = format!("\"{name}\";q={quota};w={window_secs}");
        Self {
            policy: HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static("")),
            limit: HeaderValue::from(quota),
            name,
            quota,
            window_secs,
        }
    }

    /// The policy's name in the headers.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The draft's quota `q`.
    pub fn quota(&self) -> u64 {
        self.quota
    }

    /// The draft's window `w`, in seconds.
    pub fn window_secs(&self) -> u64 {
        self.window_secs
    }

    /// The `RateLimit-Policy` value, e.g. `"orders";q=20;w=2`.
    pub fn policy_value(&self) -> &str {
        self.policy.to_str().unwrap_or_default()
    }

    /// The `RateLimit` value for `decision`, e.g. `"orders";r=19;t=1`.
    pub fn ratelimit_value(&self, decision: &Decision) -> HeaderValue {
        self.state_values(decision).ratelimit
    }

    /// The three values that change with each decision. They share one buffer: the
    /// legacy remaining and reset values are the digits of `r=` and `t=` inside the
    /// `RateLimit` value (one allocation per response, not three).
    fn state_values(&self, decision: &Decision) -> StateValues {
        let mut digits = itoa::Buffer::new();
        let mut s = BytesMut::with_capacity(self.name.len() + 48);
        s.extend_from_slice(b"\"");
        s.extend_from_slice(self.name.as_bytes());
        s.extend_from_slice(b"\";r=");
        let remaining = s.len();
        s.extend_from_slice(digits.format(decision.remaining).as_bytes());
        let remaining = remaining..s.len();
        s.extend_from_slice(b";t=");
        let reset = s.len();
        s.extend_from_slice(digits.format(ceil_secs(decision.reset_after)).as_bytes());
        let reset = reset..s.len();
        let all = s.freeze();
        let value = |b: bytes::Bytes| {
            HeaderValue::from_maybe_shared(b).unwrap_or_else(|_| HeaderValue::from_static(""))
        };
        StateValues {
            remaining: value(all.slice(remaining)),
            reset: value(all.slice(reset)),
            ratelimit: value(all),
        }
    }

    /// Sets every rate-limit header for `decision` on `headers`, replacing any already
    /// there; a denial also gets `Retry-After`.
    pub fn apply(&self, headers: &mut HeaderMap, decision: &Decision) {
        let state = self.state_values(decision);
        // Room for all six at once, not a regrowth halfway.
        headers.reserve(6);
        headers.insert(RATELIMIT_POLICY.clone(), self.policy.clone());
        headers.insert(RATELIMIT.clone(), state.ratelimit);
        headers.insert(X_RATELIMIT_LIMIT.clone(), self.limit.clone());
        headers.insert(X_RATELIMIT_REMAINING.clone(), state.remaining);
        headers.insert(X_RATELIMIT_RESET.clone(), state.reset);
        if !decision.allowed {
            headers.insert(
                RETRY_AFTER,
                HeaderValue::from(retry_after_secs(decision.retry_after)),
            );
        }
    }
}

/// The header values of one decision.
struct StateValues {
    ratelimit: HeaderValue,
    remaining: HeaderValue,
    reset: HeaderValue,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Kind, Quota};

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_secs(Duration::ZERO), 0);
        assert_eq!(ceil_secs(Duration::from_nanos(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
        assert_eq!(ceil_secs(Duration::from_millis(2001)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
    }

    #[test]
    fn bucket_policy_advertises_burst_and_refill_time() {
        // 20 tokens refilled at 10/s: 20 in 2 s.
        let p = Policy::new(Kind::TokenBucket, Quota::bucket(20, 10.0).unwrap());
        let h = PolicyHeaders::new("/api/orders/{id}", &p);
        assert_eq!(h.policy_value(), "\"/api/orders/{id}\";q=20;w=2");
        // The original project's 5 per minute.
        let p = Policy::new(Kind::Gcra, Quota::bucket(5, 0.083).unwrap());
        assert_eq!(PolicyHeaders::new("x", &p).window_secs(), 61);
    }

    #[test]
    fn names_are_sanitised() {
        let p = Policy::new(Kind::FixedWindow, Quota::per_second(1).unwrap());
        let h = PolicyHeaders::new("a\"b\\c\u{e9}", &p);
        assert_eq!(h.name(), "a_b_c_");
    }

    #[test]
    fn allowed_responses_carry_no_retry_after() {
        let p = Policy::new(Kind::SlidingLog, Quota::per_second(5).unwrap());
        let h = PolicyHeaders::new("p", &p);
        let mut map = HeaderMap::new();
        h.apply(&mut map, &Decision::allow(5, 4, Duration::from_millis(200)));
        assert_eq!(map["ratelimit"], "\"p\";r=4;t=1");
        assert_eq!(map["x-ratelimit-limit"], "5");
        assert_eq!(map["x-ratelimit-remaining"], "4");
        assert_eq!(map["x-ratelimit-reset"], "1");
        assert!(map.get("retry-after").is_none());
        // Numbers of every width land in their own values.
        h.apply(
            &mut map,
            &Decision::allow(5, u64::MAX, Duration::from_secs(1_000_000)),
        );
        assert_eq!(map["ratelimit"], format!("\"p\";r={};t=1000000", u64::MAX));
        assert_eq!(map["x-ratelimit-remaining"], u64::MAX.to_string().as_str());
        assert_eq!(map["x-ratelimit-reset"], "1000000");
    }
}
