//! The reverse proxy: forwards a request to the backend over a keep-alive connection
//! pool and streams the response back.
//!
//! The guarantee: every request gets a response. Bodies stream both ways without being
//! buffered; hop-by-hop headers (and any named in `Connection`) are dropped both ways;
//! the forwarding headers are the gateway's ([`Forwarding`]: a client that is not a
//! trusted proxy cannot forge them). A body over the limit gets `413`, an
//! unreachable or failing backend `502`, a backend slower than the upstream timeout
//! `504` — each with a short JSON body saying so.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{Either, Full, Limited};
use hyper::body::Incoming;
use tower::Service;

use crate::config::{Config, ServerConfig};
use crate::identity::{Forwarding, Identity};
use crate::metrics::{GatewayAnswer, Metrics};
use crate::upstream::{self, Pool, PooledBody, Timeouts};

/// The body of a request forwarded to the backend: the client's, capped in size.
pub type UpstreamBody = Limited<Incoming>;

/// The body of a proxied response: the backend's, streamed, or one the gateway wrote.
pub type ProxyBody = Either<PooledBody, Full<Bytes>>;

/// A small JSON response written by the gateway.
pub fn json_response(status: StatusCode, body: &str) -> Response<ProxyBody> {
    let mut res = Response::new(Either::Right(Full::new(Bytes::from(format!("{body}\n")))));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// Checks a request head before it is limited or forwarded, and puts its path in the
/// [`canonical`](crate::routes::canonical) form the routes match and the backend gets.
/// Refuses (with the reason for a [`bad_request`]) a path a backend could read as
/// another, more than one `Host`, or an absolute-form target naming another host than
/// `Host`. The usual request — canonical path, one `Host` — is only read.
pub fn check_head<B>(req: &mut Request<B>) -> Result<(), &'static str> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err("more than one Host header");
    }
    if let (Some(target), Some(host)) = (req.uri().authority(), host)
        && !host
            .as_bytes()
            .eq_ignore_ascii_case(target.as_str().as_bytes())
    {
        return Err("the request target names another host than Host");
    }
    let canonical = match crate::routes::canonical(req.uri().path()) {
        Ok(std::borrow::Cow::Borrowed(_)) => return Ok(()),
        Ok(std::borrow::Cow::Owned(p)) => p,
        Err(why) => return Err(why.reason()),
    };
    let with_query = match req.uri().query() {
        Some(q) => format!("{canonical}?{q}"),
        None => canonical,
    };
    let unforwardable = "the path cannot be forwarded";
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(with_query).map_err(|_| unforwardable)?);
    *req.uri_mut() = Uri::from_parts(parts).map_err(|_| unforwardable)?;
    Ok(())
}

/// `400` for a request the gateway will not forward, counted as the client's fault.
pub fn bad_request(reason: &str, metrics: &Metrics) -> Response<ProxyBody> {
    failure(
        metrics,
        GatewayAnswer::BadRequest,
        StatusCode::BAD_REQUEST,
        reason,
    )
}

/// The gateway's own answer for a request it could not carry through: counted as
/// `answer`, with `{"error": <status's reason>, "detail": <detail>}` as its body.
fn failure(
    metrics: &Metrics,
    answer: GatewayAnswer,
    status: StatusCode,
    detail: &str,
) -> Response<ProxyBody> {
    metrics.upstream_error(answer);
    let error = status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase();
    json_response(
        status,
        &format!(r#"{{"error":"{error}","detail":"{detail}"}}"#),
    )
}

/// Headers that concern one connection only (RFC 9110 §7.6.1), never forwarded.
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// True for a name of [`HOP_BY_HOP`] or `Transfer-Encoding` (matched as one string
/// switch; a test keeps it and the list in agreement).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "upgrade"
            | "transfer-encoding"
    )
}

/// Removes hop-by-hop headers, including those listed in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: one pass over their few names, each matched by
    // length and bytes at once, is cheaper than nine lookups that find nothing.
    let any = headers.keys().any(is_hop_by_hop);
    if !any {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    // Framing is the client library's business on each side.
    headers.remove(header::TRANSFER_ENCODING);
}

struct Inner {
    pool: Arc<Pool>,
    authority: Authority,
    timeout: Duration,
    max_body: u64,
    metrics: Arc<Metrics>,
}

/// Forwards requests to the backend. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("backend", &self.inner.authority)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// A proxy to `config.backend`, with the pool and limits of `config.server`.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Self {
        let ServerConfig {
            upstream_timeout,
            max_body_bytes,
            pool_max_idle,
            body_idle_timeout,
            max_backend_connections,
            ..
        } = config.server;
        let authority = config
            .backend
            .authority()
            .cloned()
            .unwrap_or_else(|| Authority::from_static("127.0.0.1:9000"));
        let port = authority.port_u16().unwrap_or(80);
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Self {
            inner: Arc::new(Inner {
                pool: Pool::with_limit(
                    addr,
                    pool_max_idle,
                    max_backend_connections,
                    Timeouts {
                        head: upstream_timeout,
                        idle: body_idle_timeout,
                    },
                ),
                authority,
                timeout: upstream_timeout,
                max_body: max_body_bytes,
                metrics,
            }),
        }
    }

    /// This proxy for one client connection (its forwarding headers): the service the
    /// rate-limit layer wraps.
    pub fn for_client(&self, forwarding: Forwarding) -> ClientProxy {
        ClientProxy {
            proxy: self.clone(),
            forwarding,
        }
    }

    /// Forwards `req` from the client whose forwarding headers are `forwarding` and
    /// returns the backend's response, or the gateway's own error response: it never
    /// fails (a tower service's `Infallible` error).
    pub fn forward(
        &self,
        req: Request<Incoming>,
        forwarding: &Forwarding,
    ) -> impl Future<Output = Result<Response<ProxyBody>, Infallible>> + Send + 'static {
        // The request is rewritten now; the future holds only the exchange, a smaller
        // state to allocate and move for every request.
        let inner = Arc::clone(&self.inner);
        Forward {
            exchange: self
                .prepare(req, forwarding)
                .map(|req| Arc::clone(&inner.pool).send(req)),
            started: Instant::now(),
            inner,
        }
    }

    /// The request for the backend: origin-form, hop-by-hop headers gone, `Host` and
    /// the forwarding headers set, body capped; `None` for a body declared too large.
    fn prepare(
        &self,
        req: Request<Incoming>,
        forwarding: &Forwarding,
    ) -> Option<Request<UpstreamBody>> {
        let inner = &self.inner;
        let too_large = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > inner.max_body);
        if too_large {
            return None;
        }
        let (mut parts, body) = req.into_parts();
        // Origin-form to the backend, whatever form the client used (an absolute-form
        // target never picks the upstream).
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        parts.uri = Uri::from(path);
        parts.version = http::Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        if !parts.headers.contains_key(header::HOST)
            && let Ok(host) = HeaderValue::from_str(inner.authority.as_str())
        {
            parts.headers.insert(header::HOST, host);
        }
        forwarding.apply(&mut parts.headers, parts.extensions.get::<Identity>());
        parts.extensions = http::Extensions::new();
        let body = Limited::new(body, usize::try_from(inner.max_body).unwrap_or(usize::MAX));
        Some(Request::from_parts(parts, body))
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Proxy::forward`]: the exchange with the backend, or none for a
    /// body declared too large.
    struct Forward<F> {
        #[pin]
        exchange: Option<F>,
        started: Instant,
        inner: Arc<Inner>,
    }
}

impl<F> Future for Forward<F>
where
    F: Future<Output = Result<Response<PooledBody>, upstream::UpstreamError>>,
{
    type Output = Result<Response<ProxyBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.exchange.as_pin_mut() {
            Some(exchange) => {
                let result = std::task::ready!(exchange.poll(cx));
                this.inner.answer(result, *this.started)
            }
            None => this.inner.too_large(),
        };
        Poll::Ready(Ok(response))
    }
}

impl Inner {
    /// `413`: a body over the limit, declared or streamed.
    fn too_large(&self) -> Response<ProxyBody> {
        self.metrics.upstream_error(GatewayAnswer::BodyTooLarge);
        json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            r#"{"error":"request body too large"}"#,
        )
    }

    /// The client's response for the backend's answer (or its failure) to a request
    /// sent at `started`, each failure counted against the side that caused it.
    fn answer(
        &self,
        result: Result<Response<PooledBody>, upstream::UpstreamError>,
        started: Instant,
    ) -> Response<ProxyBody> {
        use upstream::UpstreamError as E;
        let err = match result {
            Ok(res) => {
                self.metrics.upstream_latency.observe(started.elapsed());
                let (mut parts, body) = res.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                return Response::from_parts(parts, Either::Left(body));
            }
            Err(err) => err,
        };
        match err {
            E::RequestBody(e) if is_length_limit(e.as_ref()) => self.too_large(),
            // Malformed (bad chunked framing, a length it does not match) or broken off:
            // the client's doing, not the backend's.
            E::RequestBody(e) => {
                tracing::debug!(error = %e, "bad request body");
                bad_request("malformed request body", &self.metrics)
            }
            E::ClientIdle(after) => failure(
                &self.metrics,
                GatewayAnswer::ClientTimeout,
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the request body paused longer than {} ms",
                    after.as_millis()
                ),
            ),
            E::Busy(after) => failure(
                &self.metrics,
                GatewayAnswer::BackendBusy,
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "every backend connection stayed busy for {} ms",
                    after.as_millis()
                ),
            ),
            E::Timeout(after) => failure(
                &self.metrics,
                GatewayAnswer::Timeout,
                StatusCode::GATEWAY_TIMEOUT,
                &format!("backend did not answer within {} ms", after.as_millis()),
            ),
            err => {
                let connect = matches!(err, E::Connect(_));
                tracing::warn!(error = %err, connect, "backend request failed");
                let detail = if connect {
                    "backend unreachable"
                } else {
                    "backend connection failed"
                };
                failure(
                    &self.metrics,
                    GatewayAnswer::Unreachable,
                    StatusCode::BAD_GATEWAY,
                    detail,
                )
            }
        }
    }
}

/// True when the request failed because its body exceeded the limit.
fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// The proxy serving one client connection: what it needs of the client (its
/// forwarding headers) is worked out once per connection, not per request.
#[derive(Clone, Debug)]
pub struct ClientProxy {
    proxy: Proxy,
    forwarding: Forwarding,
}

impl Service<Request<Incoming>> for ClientProxy {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        Box::pin(self.proxy.forward(req, &self.forwarding))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_check_knows_every_hop_by_hop_name() {
        assert!(HOP_BY_HOP.iter().all(is_hop_by_hop));
        assert!(is_hop_by_hop(&header::TRANSFER_ENCODING));
        for name in [
            header::HOST,
            header::CONTENT_LENGTH,
            HeaderName::from_static("x-te"),
        ] {
            assert!(!is_hop_by_hop(&name), "{name}");
        }
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-user-id", HeaderValue::from_static("u1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-user-id"], "u1");
    }
}
