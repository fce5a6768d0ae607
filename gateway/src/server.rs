//! The gateway server: hyper 1.x over HTTP/1.1, the rate-limit layer in front of the
//! proxy, `/healthz` and `/metrics` beside them.
//!
//! The guarantee: a client that is slow to send its request head is cut off after the
//! header read timeout; an over-long head gets `431`; no input makes the server panic;
//! and on shutdown the listener closes at once while requests already in flight finish
//! (within the grace period) before [`Gateway::serve`] returns.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use limiter_core::tower::{PeerAddr, RateLimit, RateLimitBody, RateLimitLayer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use crate::Error;
use crate::config::Config;
use crate::limits::GatewayLimiter;
use crate::metrics::{CollectFn, DescriptorEncoder, Exposition, Metrics};
use crate::proxy::{ClientProxy, Proxy, ProxyBody};

/// The body of every gateway response.
pub type GatewayBody = RateLimitBody<ProxyBody>;

/// One client connection's service: the rate-limit layer (`limiter-core`'s, shared
/// limiter) over the proxy for that client.
type Stack = RateLimit<ClientProxy, GatewayLimiter>;

/// A configured gateway, ready to serve.
#[derive(Debug)]
pub struct Gateway {
    config: Config,
    limiter: Arc<GatewayLimiter>,
    metrics: Arc<Metrics>,
    /// What `/metrics` answers: the routes' and the gateway's families, process metrics
    /// and build info.
    exposition: Arc<Exposition>,
    /// `limiter-core`'s rate-limit layer, the one other services reuse; it wraps each
    /// connection's proxy.
    layer: RateLimitLayer<GatewayLimiter>,
    proxy: Proxy,
}

impl Gateway {
    /// Builds the gateway of `config`: its limiters (connecting to Redis when
    /// configured), the rate-limit layer and the proxy.
    pub async fn new(config: Config) -> Result<Self, Error> {
        let metrics = Arc::new(Metrics::default());
        let limiter = Arc::new(GatewayLimiter::new(&config).await?);
        let layer = RateLimitLayer::shared(Arc::clone(&limiter));
        let proxy = Proxy::new(&config, Arc::clone(&metrics));
        let exposition = {
            let (routes, gateway) = (Arc::clone(&limiter), Arc::clone(&metrics));
            Arc::new(Exposition::new(vec![
                Box::new(CollectFn::new(move |e: &mut DescriptorEncoder| {
                    routes.encode_metrics(e)
                })),
                Box::new(CollectFn::new(move |e: &mut DescriptorEncoder| {
                    gateway.encode_metrics(e)
                })),
            ]))
        };
        Ok(Self {
            config,
            limiter,
            metrics,
            exposition,
            layer,
            proxy,
        })
    }

    /// The limiters, for tests and metrics.
    pub fn limiter(&self) -> &Arc<GatewayLimiter> {
        &self.limiter
    }

    /// The configuration it runs.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Binds the configured listen address.
    pub async fn bind(&self) -> Result<TcpListener, Error> {
        TcpListener::bind(self.config.listen)
            .await
            .map_err(|e| Error::Io(format!("cannot listen on {}: {e}", self.config.listen)))
    }

    /// Serves connections from `listener` until `shutdown` completes, then stops
    /// accepting and waits (at most the grace period) for in-flight requests.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        let sweeper = self.limiter.spawn_sweeper(self.config.store.sweep_interval);
        let server = &self.config.server;
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(server.header_read_timeout)
            .max_buf_size(server.max_header_bytes.max(8192))
            .keep_alive(true);
        let graceful = GracefulShutdown::new();
        let permits = Arc::new(Semaphore::new(server.max_connections));
        let app = Arc::new(App {
            limiter: Arc::clone(&self.limiter),
            metrics: Arc::clone(&self.metrics),
            exposition: Arc::clone(&self.exposition),
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
            let _ = stream.set_nodelay(true);
            self.metrics.connections_total.inc();
            self.metrics.connections_open.inc();
            let conn = Connection {
                app: Arc::clone(&app),
                stack: RefCell::new(self.layer.layer(self.proxy.for_client(peer))),
                peer,
            };
            let service = hyper::service::service_fn(move |req| conn.handle(req));
            let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
            let metrics = Arc::clone(&self.metrics);
            tokio::spawn(async move {
                if let Err(err) = conn.await {
                    tracing::debug!(error = %err, %peer, "connection ended with an error");
                }
                metrics.connections_open.dec();
                drop(permit);
            });
        }
        drop(listener);
        tracing::info!("shutting down: draining in-flight requests");
        let drained = tokio::time::timeout(server.shutdown_grace, graceful.shutdown()).await;
        if drained.is_err() {
            tracing::warn!(grace = ?server.shutdown_grace, "grace period over; closing remaining connections");
        }
        sweeper.abort();
        Ok(())
    }
}

/// What every connection shares.
struct App {
    limiter: Arc<GatewayLimiter>,
    metrics: Arc<Metrics>,
    exposition: Arc<Exposition>,
}

/// One client connection: its peer, and its service stack built once for it.
struct Connection {
    app: Arc<App>,
    /// Called for one request at a time (HTTP/1.1 answers in order), and only while
    /// the request is handed over: its futures own what they need.
    stack: RefCell<Stack>,
    peer: SocketAddr,
}

impl Connection {
    fn handle(&self, mut req: Request<Incoming>) -> Handled {
        let app = &*self.app;
        let in_flight = InFlight::new(Arc::clone(&app.metrics));
        let state = match (req.method(), req.uri().path()) {
            (&Method::GET | &Method::HEAD, "/healthz") => {
                State::answered(text(StatusCode::OK, "text/plain", "ok\n".to_owned()))
            }
            (&Method::GET | &Method::HEAD, "/metrics") => {
                let accept = req.headers().get(ACCEPT).map(HeaderValue::as_bytes);
                let (content_type, out) = app.exposition.render(accept);
                State::answered(text(StatusCode::OK, content_type, out))
            }
            _ => {
                // The limiter keys by IP only without the identity header; an extension
                // costs allocations, so it is added only then.
                if app.limiter.identifies_by_ip(&req) {
                    req.extensions_mut().insert(PeerAddr(self.peer));
                }
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
        Handled { state, in_flight }
    }
}

pin_project_lite::pin_project! {
    /// A request being answered: by the stack, or already (health, metrics).
    struct Handled {
        #[pin]
        state: State,
        in_flight: InFlight,
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
    type Output = Result<Response<GatewayBody>, Infallible>;

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
        Poll::Ready(Ok(response))
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
