//! The responses the layer answers itself, and the hook that shapes them.
//!
//! A [`RefusalResponse`] turns a [`Refusal`] (status, reason, wait, policy) into the
//! response's status, headers and body. The layer then sets the rate-limit headers
//! (`RateLimit`, `RateLimit-Policy`, `X-RateLimit-*`) and `Retry-After` itself, so a
//! custom body can never make them wrong or drop them. Two are built in:
//! [`JsonError`] (the default: `{"error": "...", "retry_after": N}`) and
//! [`ProblemJson`] (RFC 9457 `application/problem+json`). Any
//! `Fn(&Refusal<'_>) -> Response<Bytes>` is one too.
//!
//! ```
//! use limiter_core::tower::{ProblemJson, RateLimitLayer, HeaderOrIp};
//! use limiter_core::{Kind, Policy, Quota, RateLimiter, MonotonicClock};
//!
//! let policy = Policy::new(Kind::Gcra, Quota::per_second(10).unwrap());
//! let limiter = RateLimiter::memory(policy, MonotonicClock::new(), 100_000);
//! let layer = RateLimitLayer::keyed("api", limiter, HeaderOrIp::new("x-api-key").unwrap())
//!     .with_refusal(ProblemJson::new().with_type("https://example.com/problems/rate-limited"));
//! # let _ = layer;
//! ```

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};

use crate::decision::Verdict;

/// Why the layer answers a request itself, handed to a [`RefusalResponse`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Refusal<'a> {
    /// The status the layer chose: `429`, `503` (store down, failing closed), `400`
    /// (unusable identity, cost above the limit) or `500` (no client address).
    pub status: StatusCode,
    /// A short, human-readable reason (`"too many requests"`).
    pub reason: &'a str,
    /// The `Retry-After` the layer sends, in whole seconds, for `429` and `503`.
    pub retry_after: Option<u64>,
    /// The policy's name in the rate-limit headers, when a limiter decided.
    pub policy: Option<&'a str>,
    /// The limiter's verdict, when it decided (`429`, `503`).
    pub verdict: Option<&'a Verdict>,
}

/// Shapes the response to a [`Refusal`]: status, headers and body. The layer adds the
/// rate-limit headers and `Retry-After` afterwards, replacing any of the same name.
pub trait RefusalResponse: Send + Sync + 'static {
    /// The response to `refusal`.
    fn respond(&self, refusal: &Refusal<'_>) -> Response<Bytes>;
}

impl<F> RefusalResponse for F
where
    F: Fn(&Refusal<'_>) -> Response<Bytes> + Send + Sync + 'static,
{
    fn respond(&self, refusal: &Refusal<'_>) -> Response<Bytes> {
        self(refusal)
    }
}

fn response(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Bytes> {
    let mut res = Response::new(Bytes::from(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// The default body: `application/json`, `{"error":"too many requests","retry_after":2}`
/// (`retry_after` only on `429` and `503`), one line.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonError;

impl RefusalResponse for JsonError {
    fn respond(&self, refusal: &Refusal<'_>) -> Response<Bytes> {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), refusal.reason.into());
        if let Some(secs) = refusal.retry_after {
            body.insert("retry_after".into(), secs.into());
        }
        let mut bytes = serde_json::Value::Object(body).to_string().into_bytes();
        bytes.push(b'\n');
        response(refusal.status, "application/json", bytes)
    }
}

/// RFC 9457 problem details: `application/problem+json` with `type`, `title` (the
/// status's reason phrase), `status`, `detail` (the refusal's reason) and, as
/// extension members, `retry_after` (seconds) and `policy`:
///
/// ```text
/// HTTP/1.1 429 Too Many Requests
/// content-type: application/problem+json
/// retry-after: 2
///
/// {"detail":"too many requests","policy":"api","retry_after":2,"status":429,
///  "title":"Too Many Requests","type":"about:blank"}
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProblemJson {
    type_uri: Option<String>,
}

impl ProblemJson {
    /// Problems of type `about:blank` (the status says it all, RFC 9457 §4.2.1).
    pub fn new() -> Self {
        Self::default()
    }

    /// Problems of type `uri`, a page documenting your rate limits.
    pub fn with_type(mut self, uri: impl Into<String>) -> Self {
        self.type_uri = Some(uri.into());
        self
    }
}

impl RefusalResponse for ProblemJson {
    fn respond(&self, refusal: &Refusal<'_>) -> Response<Bytes> {
        let mut body = serde_json::Map::new();
        body.insert(
            "type".into(),
            self.type_uri.as_deref().unwrap_or("about:blank").into(),
        );
        body.insert(
            "title".into(),
            refusal
                .status
                .canonical_reason()
                .unwrap_or("Request refused")
                .into(),
        );
        body.insert("status".into(), refusal.status.as_u16().into());
        body.insert("detail".into(), refusal.reason.into());
        if let Some(secs) = refusal.retry_after {
            body.insert("retry_after".into(), secs.into());
        }
        if let Some(policy) = refusal.policy {
            body.insert("policy".into(), policy.into());
        }
        let bytes = serde_json::Value::Object(body).to_string().into_bytes();
        response(refusal.status, "application/problem+json", bytes)
    }
}
