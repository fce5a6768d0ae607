//! The admin listener (`admin_listen`, default `127.0.0.1:9901`): `/metrics`,
//! `/healthz` and `/readyz`, and nothing of them on the proxy port.
//!
//! The guarantee: the operator's endpoints are not reachable through the proxy port,
//! where every path goes to the backend; `/healthz` answers `200` while the process
//! serves (liveness); `/readyz` answers `200` only when the gateway can take traffic —
//! the store answers, or its failure policy serves without it — and `503` when the
//! store is down under `fail-closed` or the gateway is draining for shutdown, with one
//! line saying why either way.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::limits::GatewayLimiter;
use crate::metrics::Exposition;

/// Admin connections served at once (scrapers and probes, not clients).
const MAX_ADMIN_CONNECTIONS: usize = 64;

/// What the admin endpoints read.
#[derive(Debug)]
pub struct Admin {
    exposition: Arc<Exposition>,
    limiter: Arc<GatewayLimiter>,
    draining: AtomicBool,
}

impl Admin {
    /// The admin endpoints of a gateway with these metrics and limiters.
    pub fn new(exposition: Arc<Exposition>, limiter: Arc<GatewayLimiter>) -> Self {
        Self {
            exposition,
            limiter,
            draining: AtomicBool::new(false),
        }
    }

    /// From now on `/readyz` answers `503`: the gateway is shutting down.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Answers one admin request.
    pub async fn handle<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        if !matches!(*req.method(), Method::GET | Method::HEAD) {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "GET or HEAD\n",
            );
        }
        match req.uri().path() {
            "/healthz" => text(StatusCode::OK, "text/plain", "ok\n"),
            "/readyz" => {
                if self.draining.load(Ordering::Relaxed) {
                    return text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain",
                        "not ready: shutting down\n",
                    );
                }
                let r = self.limiter.stores().readiness().await;
                let status = if r.ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                let word = if r.ready { "ready" } else { "not ready" };
                text(status, "text/plain", format!("{word}: {}\n", r.detail))
            }
            "/metrics" => {
                let accept = req.headers().get(ACCEPT).map(HeaderValue::as_bytes);
                let (content_type, out) = self.exposition.render(accept);
                text(StatusCode::OK, content_type, out)
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "text/plain",
                "not found: /metrics, /healthz, /readyz\n",
            ),
        }
    }

    /// Serves `listener` until the task is aborted.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(5))
            .keep_alive(true);
        let permits = Arc::new(Semaphore::new(MAX_ADMIN_CONNECTIONS));
        loop {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            let (stream, peer) = match listener.accept().await {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(error = %err, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let admin = Arc::clone(&self);
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let admin = Arc::clone(&admin);
                async move { Ok::<_, Infallible>(admin.handle(&req).await) }
            });
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::spawn(async move {
                if let Err(err) = conn.await {
                    tracing::debug!(error = %err, %peer, "admin connection ended with an error");
                }
                drop(permit);
            });
        }
    }
}

/// Binds the admin address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, crate::Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| crate::Error::Io(format!("cannot listen on {addr} (admin_listen): {e}")))
}

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
