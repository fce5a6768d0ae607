//! The gateway server: hyper 1.x over HTTP/1.1, each request's identity resolved, the
//! rate-limit layer in front of the proxy; the admin listener ([`crate::admin`]) beside
//! it.
//!
//! The guarantee: a client that is slow to send its request head is cut off after the
//! header read timeout, and an idle kept-alive connection after the (longer, advertised
//! in `Keep-Alive: timeout=N`) keep-alive timeout ([`crate::keep_alive`]); an over-long
//! head gets `431`; no input makes the server panic;
//! every path on the proxy port goes through identity, limits and the proxy (nothing is
//! answered specially there: `/metrics`, `/healthz` and `/readyz` live on
//! `admin_listen`); and on shutdown the listener closes at once, `/readyz` turns `503`,
//! and requests already in flight finish (within the grace period) before
//! [`Gateway::serve`] returns. SIGHUP reloads the API keys file.

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
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use limiter_core::tower::{RateLimit, RateLimitBody, RateLimitLayer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use crate::Error;
use crate::access_log::{self, AccessLog};
use crate::admin::{self, Admin};
use crate::config::Config;
use crate::identity::{self, GatewayRefusal, Resolver};
use crate::keep_alive::{self, Finish, Requests, Timed, Tracked};
use crate::limits::GatewayLimiter;
use crate::metrics::{CollectFn, DescriptorEncoder, Exposition, Metrics};
use crate::proxy::{ClientProxy, Proxy, ProxyBody};

/// The body of every gateway response.
pub type GatewayBody = RateLimitBody<ProxyBody>;

/// `Keep-Alive`, on every response: the idle timeout clients should retire a
/// connection before.
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");

/// One client connection's service: the rate-limit layer (`limiter-core`'s, shared
/// limiter) over the proxy for that client.
type Stack = RateLimit<ClientProxy, GatewayLimiter>;

/// A configured gateway, ready to serve.
#[derive(Debug)]
pub struct Gateway {
    config: Config,
    limiter: Arc<GatewayLimiter>,
    metrics: Arc<Metrics>,
    /// Who each request is.
    resolver: Arc<Resolver>,
    /// `/metrics`, `/healthz`, `/readyz` on `admin_listen`.
    admin: Arc<Admin>,
    /// `limiter-core`'s rate-limit layer, the one other services reuse; it wraps each
    /// connection's proxy.
    layer: RateLimitLayer<GatewayLimiter>,
    proxy: Proxy,
    /// `[log] access`: one JSON line per request.
    access_log: Option<AccessLog>,
}

/// The gateway's two sockets: the proxy (`listen`) and the admin endpoints
/// (`admin_listen`).
#[derive(Debug)]
pub struct Listeners {
    /// Where clients connect.
    pub proxy: TcpListener,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub admin: TcpListener,
}

impl Gateway {
    /// Builds the gateway of `config`: its identity resolver (reading the API keys
    /// file), its limiters (a Redis store connects in the background: the gateway
    /// starts while Redis is down), the rate-limit layer and the proxy.
    pub async fn new(config: Config) -> Result<Self, Error> {
        let metrics = Arc::new(Metrics::default());
        let limiter = Arc::new(GatewayLimiter::new(&config)?);
        let resolver = Arc::new(
            Resolver::new(&config.identity)?.with_stats(Arc::clone(limiter.identity_stats())),
        );
        let layer = RateLimitLayer::shared(Arc::clone(&limiter))
            .with_refusal(GatewayRefusal::new(resolver.api_key_header()));
        let proxy = Proxy::new(&config, Arc::clone(&metrics));
        let access_log = match &config.access_log {
            Some(target) => {
                Some(AccessLog::open(target).map_err(|e| Error::Io(format!("access log: {e}")))?)
            }
            None => None,
        };
        let exposition = {
            let (routes, gateway) = (Arc::clone(&limiter), Arc::clone(&metrics));
            let lines = access_log.clone();
            Arc::new(Exposition::new(vec![
                Box::new(CollectFn::new(move |e: &mut DescriptorEncoder| {
                    lines.as_ref().map_or(Ok(()), |l| l.encode_metrics(e))
                })),
                Box::new(CollectFn::new(move |e: &mut DescriptorEncoder| {
                    routes.encode_metrics(e)
                })),
                Box::new(CollectFn::new(move |e: &mut DescriptorEncoder| {
                    gateway.encode_metrics(e)
                })),
            ]))
        };
        Ok(Self {
            admin: Arc::new(Admin::new(exposition, Arc::clone(&limiter))),
            config,
            limiter,
            metrics,
            resolver,
            layer,
            proxy,
            access_log,
        })
    }

    /// The limiters, for tests and metrics.
    pub fn limiter(&self) -> &Arc<GatewayLimiter> {
        &self.limiter
    }

    /// The identity resolver (to reload its keys).
    pub fn resolver(&self) -> &Arc<Resolver> {
        &self.resolver
    }

    /// The configuration it runs.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Binds the configured listen and admin addresses.
    pub async fn bind(&self) -> Result<Listeners, Error> {
        let proxy = TcpListener::bind(self.config.listen)
            .await
            .map_err(|e| Error::Io(format!("cannot listen on {}: {e}", self.config.listen)))?;
        let admin = admin::bind(self.config.admin_listen).await?;
        Ok(Listeners { proxy, admin })
    }

    /// Serves connections from `listeners` until `shutdown` completes, then stops
    /// accepting and waits (at most the grace period) for in-flight requests.
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        let Listeners {
            proxy: listener,
            admin: admin_listener,
        } = listeners;
        let sweeper = self.limiter.spawn_sweeper(self.config.store.sweep_interval);
        let admin = tokio::spawn(Arc::clone(&self.admin).serve(admin_listener));
        let reloader = identity::spawn_key_reloader(Arc::clone(&self.resolver));
        let server = &self.config.server;
        let mut builder = http1::Builder::new();
        // Both client timeouts are kept by `keep_alive::Timed` (hyper's own header
        // timeout would also close idle connections, after the short header timeout).
        builder
            .header_read_timeout(None)
            .max_buf_size(server.max_header_bytes.max(8192))
            .keep_alive(true)
            // A client that shuts down its sending side after the request still gets
            // the answer.
            .half_close(true);
        let per_ip = server
            .max_connections_per_ip
            .map(crate::conn_limit::PerIpConnections::new);
        let graceful = GracefulShutdown::new();
        let permits = Arc::new(Semaphore::new(server.max_connections));
        let timeouts = keep_alive::Timeouts {
            keep_alive: server.keep_alive_timeout,
            header_read: server.header_read_timeout,
        };
        let app = Arc::new(App {
            metrics: Arc::clone(&self.metrics),
            resolver: Arc::clone(&self.resolver),
            access_log: self.access_log.clone(),
            keep_alive: keep_alive_value(server.keep_alive_timeout),
        });
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = Arc::clone(&permits).acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        continue;
                    }
                },
            };
            // `max_connections_per_ip`: a client at its cap is closed at once.
            let ip_slot = match &per_ip {
                Some(per_ip) => match per_ip.admit(peer.ip()) {
                    Some(slot) => Some(slot),
                    None => {
                        self.metrics.connections_refused.inc();
                        continue;
                    }
                },
                None => None,
            };
            let _ = stream.set_nodelay(true);
            self.metrics.connections_total.inc();
            self.metrics.connections_open.inc();
            let identity = self.resolver.peer(peer);
            let forwarding = identity.forwarding(peer.port());
            let requests = Arc::new(Requests::default());
            let conn = Connection {
                app: Arc::clone(&app),
                stack: RefCell::new(self.layer.layer(self.proxy.for_client(forwarding))),
                identity,
                requests: Arc::clone(&requests),
            };
            let service = hyper::service::service_fn(move |req| conn.handle(req));
            let io = TokioIo::new(Timed::new(stream, requests, timeouts));
            let conn = graceful.watch(builder.serve_connection(io, service));
            let metrics = Arc::clone(&self.metrics);
            tokio::spawn(async move {
                if let Err(err) = conn.await {
                    tracing::debug!(error = %err, %peer, "connection ended with an error");
                }
                metrics.connections_open.dec();
                drop((permit, ip_slot));
            });
        }
        drop(listener);
        self.admin.start_draining();
        tracing::info!("shutting down: draining in-flight requests");
        let drained = tokio::time::timeout(server.shutdown_grace, graceful.shutdown()).await;
        if drained.is_err() {
            tracing::warn!(grace = ?server.shutdown_grace, "grace period over; closing remaining connections");
        }
        sweeper.abort();
        admin.abort();
        if let Some(reloader) = reloader {
            reloader.abort();
        }
        Ok(())
    }
}

/// What every connection shares.
struct App {
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

/// One client connection: its peer's part of every identity, and its service stack
/// built once for it.
struct Connection {
    app: Arc<App>,
    /// Called for one request at a time (HTTP/1.1 answers in order), and only while
    /// the request is handed over: its futures own what they need.
    stack: RefCell<Stack>,
    identity: identity::Peer,
    /// Requests begun and finished, for the keep-alive timer.
    requests: Arc<Requests>,
}

impl Connection {
    fn handle(&self, mut req: Request<Incoming>) -> Handled {
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
    struct Handled {
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

/// Completes on SIGINT or SIGTERM (SIGINT only where SIGTERM does not exist).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
