//! How the gateway says no about identity: RFC 9457 problem details, with a
//! `WWW-Authenticate` challenge on `401`.
//!
//! Two places refuse: the server, for a request whose identity header cannot be used
//! (`400`), and the rate-limit layer, for a request with an unknown API key or without
//! the key its route requires (`401`, after the per-IP limit). Both answer the same
//! shape; the layer's other refusals (`429`, `503`) keep their JSON error body.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use limiter_core::tower::{JsonError, ProblemJson, Refusal, RefusalResponse};

use super::Rejection;

/// The `WWW-Authenticate` challenge of a `401`: the header a key goes in.
fn challenge(api_key_header: Option<&HeaderName>) -> HeaderValue {
    let header = api_key_header.map_or("x-api-key", HeaderName::as_str);
    HeaderValue::from_str(&format!("ApiKey header=\"{header}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("ApiKey"))
}

/// The answer to a request without a usable identity header, before any limit:
/// problem details (`400`; a `401` gets a challenge).
pub fn refusal(rejection: &Rejection, api_key_header: Option<&HeaderName>) -> Response<Bytes> {
    let status = rejection.status();
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Request refused"),
        "status": status.as_u16(),
        "detail": rejection.to_string(),
    });
    let mut res = Response::new(Bytes::from(body.to_string()));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(WWW_AUTHENTICATE, challenge(api_key_header));
    }
    res
}

/// The rate-limit layer's refusals: `401` (an unknown API key, or a route's required
/// key missing) as problem details with a challenge, everything else as the layer's
/// JSON error.
#[derive(Debug, Clone)]
pub struct GatewayRefusal {
    challenge: HeaderValue,
}

impl GatewayRefusal {
    /// Refusals naming `api_key_header` in their challenge.
    pub fn new(api_key_header: Option<&HeaderName>) -> Self {
        Self {
            challenge: challenge(api_key_header),
        }
    }
}

impl RefusalResponse for GatewayRefusal {
    fn respond(&self, refusal: &Refusal<'_>) -> Response<Bytes> {
        if refusal.status != StatusCode::UNAUTHORIZED {
            return JsonError.respond(refusal);
        }
        let mut res = ProblemJson::new().respond(refusal);
        res.headers_mut()
            .insert(WWW_AUTHENTICATE, self.challenge.clone());
        res
    }
}
