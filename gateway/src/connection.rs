//! One client connection's service: each request's head checked, its identity
//! resolved and put in its extensions, then the rate-limit layer over the proxy
//! ([`Stack`], built once per connection). Every response carries `Keep-Alive:
//! timeout=N`, and its body marks the request finished for the keep-alive timer;
//! requests in flight are counted until their future or body is dropped. The access
//! log's hooks (start, forwarded path, identity, status) live here.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use limiter_core::tower::{RateLimit, RateLimitBody};
use tower::Service;

use crate::access_log::{self, AccessLog};
use crate::identity::{self, Resolver};
use crate::keep_alive::{Finish, Requests, Tracked};
use crate::limits::GatewayLimiter;
use crate::metrics::Metrics;
use crate::proxy::ClientProxy;
use crate::server::GatewayBody;

/// `Keep-Alive`, on every response: the idle timeout clients should retire a
/// connection before.
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");

/// One client connection's service: the rate-limit layer (`limiter-core`'s, shared
/// limiter) over the proxy for that client.
pub(crate) type Stack = RateLimit<ClientProxy, GatewayLimiter>;

/// What every connection shares.
pub(crate) struct App {
    metrics: Arc<Metrics>,
    resolver: Arc<Resolver>,
    access_log: Option<AccessLog>,
    /// `Keep-Alive: timeout=N`, formatted once.
    keep_alive: HeaderValue,
}

/// `timeout=N`: the keep-alive timeout in whole seconds, rounded down, so a client
/// that honours it retires the connection before the gateway closes it.
fn keep_alive_value(timeout: std::time::Duration) -> HeaderValue {
    HeaderValue::from_str(&format!("timeout={}", timeout.as_secs()))
        .unwrap_or_else(|_| HeaderValue::from_static("timeout=0"))
}

impl App {
    /// What the connections of a gateway share: its counters, who requests are, its
    /// access log, and the keep-alive timeout they advertise.
    pub(crate) fn new(
        metrics: Arc<Metrics>,
        resolver: Arc<Resolver>,
        access_log: Option<AccessLog>,
        keep_alive_timeout: std::time::Duration,
    ) -> Self {
        Self {
            metrics,
            resolver,
            access_log,
            keep_alive: keep_alive_value(keep_alive_timeout),
        }
    }
}

/// One client connection: its peer's part of every identity, and its service stack
/// built once for it.
pub(crate) struct Connection {
    app: Arc<App>,
    /// Called for one request at a time (HTTP/1.1 answers in order), and only while
    /// the request is handed over: its futures own what they need.
    stack: RefCell<Stack>,
    identity: identity::Peer,
    /// Requests begun and finished, for the keep-alive timer.
    requests: Arc<Requests>,
}

impl Connection {
    /// The connection of the peer `identity`, served by `stack`; `requests` tells the
    /// keep-alive timer when a request begins and ends.
    pub(crate) fn new(
        app: Arc<App>,
        stack: Stack,
        identity: identity::Peer,
        requests: Arc<Requests>,
    ) -> Self {
        Self {
            app,
            stack: RefCell::new(stack),
            identity,
            requests,
        }
    }

    /// Answers one request: refused here (bad head, bad identity), or handed to the
    /// stack.
    pub(crate) fn handle(&self, mut req: Request<Incoming>) -> Handled {
        let app = &*self.app;
        let finish = Some(self.requests.begin());
        let in_flight = InFlight::new(Arc::clone(&app.metrics));
        let mut log = (app.access_log.as_ref()).map(|l| {
            access_log::Pending::start(l, req.method(), req.uri().path(), self.identity.addr())
        });
        // An ambiguous path or Host is refused before it is limited or forwarded.
        if let Err(reason) = crate::proxy::check_head(&mut req) {
            let refused = crate::proxy::bad_request(reason, &app.metrics);
            let state = State::answered(refused.map(RateLimitBody::inner));
            return Handled {
                state,
                in_flight,
                log,
                finish,
                app: Arc::clone(&self.app),
            };
        }
        if let Some(log) = &mut log {
            // The log names the path the routes matched and the backend receives.
            log.forwarded_path(req.uri().path());
        }
        let state = match app.resolver.resolve(&self.identity, req.headers()) {
            Err(rejection) => State::answered(
                identity::refusal(&rejection, app.resolver.api_key_header())
                    .map(|body| RateLimitBody::inner(Either::Right(Full::new(body)))),
            ),
            Ok(identity) => {
                if let Some(log) = &mut log {
                    req.extensions_mut().insert(log.identified(&identity));
                }
                req.extensions_mut().insert(identity);
                // The proxy is always ready (`poll_ready` is `Ready`), so it is called
                // straight away.
                match self.stack.try_borrow_mut() {
                    Ok(mut stack) => State::Stack {
                        call: stack.call(req),
                    },
                    // Unreachable (one request at a time), answered rather than panicking.
                    Err(_) => State::answered(text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain",
                        "busy\n".to_owned(),
                    )),
                }
            }
        };
        Handled {
            state,
            in_flight,
            log,
            finish,
            app: Arc::clone(&self.app),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request being answered: by the stack, or already (no usable identity).
    pub(crate) struct Handled {
        #[pin]
        state: State,
        in_flight: InFlight,
        log: Option<Box<access_log::Pending>>,
        // Handed to the response body: the request is in hand until the body ends.
        finish: Option<Finish>,
        app: Arc<App>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State {
        Stack { #[pin] call: <Stack as Service<Request<Incoming>>>::Future },
        Answered { response: Option<Response<GatewayBody>> },
    }
}

impl State {
    fn answered(response: Response<GatewayBody>) -> Self {
        State::Answered {
            response: Some(response),
        }
    }
}

impl Future for Handled {
    type Output = Result<Response<Tracked<GatewayBody>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.state.project() {
            StateProj::Stack { call } => match std::task::ready!(call.poll(cx)) {
                Ok(response) => response,
                Err(never) => match never {},
            },
            StateProj::Answered { response } => response.take().unwrap_or_else(|| {
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    "answered\n".to_owned(),
                )
            }),
        };
        this.in_flight.0.response(response.status().as_u16());
        if let Some(log) = this.log.take() {
            log.finish(response.status().as_u16());
        }
        let mut response = response;
        response
            .headers_mut()
            .insert(KEEP_ALIVE.clone(), this.app.keep_alive.clone());
        let finish = this.finish.take();
        Poll::Ready(Ok(response.map(|body| Tracked::new(body, finish))))
    }
}

/// Counts a request in flight until dropped (also when the client goes away).
struct InFlight(Arc<Metrics>);

impl InFlight {
    fn new(metrics: Arc<Metrics>) -> Self {
        metrics.in_flight.inc();
        Self(metrics)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<GatewayBody> {
    let mut res = Response::new(RateLimitBody::inner(Either::Right(Full::new(Bytes::from(
        body,
    )))));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}
