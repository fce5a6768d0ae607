//! The gateway server: hyper 1.x over HTTP/1.1, the accept loop (connection caps,
//! graceful shutdown) handing each connection to its service
//! (`connection.rs`: identity resolved, the rate-limit layer in front
//! of the proxy); the admin listener ([`crate::admin`]) beside it.
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

use std::future::Future;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use limiter_core::tower::{RateLimitBody, RateLimitLayer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::Layer;

use crate::Error;
use crate::access_log::AccessLog;
use crate::admin::{self, Admin};
use crate::config::Config;
use crate::connection::{App, Connection};
use crate::identity::{self, GatewayRefusal, Resolver};
use crate::keep_alive::{self, Requests, Timed};
use crate::limits::GatewayLimiter;
use crate::metrics::{CollectFn, DescriptorEncoder, Exposition, Metrics};
use crate::proxy::{Proxy, ProxyBody};

/// The body of every gateway response.
pub type GatewayBody = RateLimitBody<ProxyBody>;

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
        let app = Arc::new(App::new(
            Arc::clone(&self.metrics),
            Arc::clone(&self.resolver),
            self.access_log.clone(),
            server.keep_alive_timeout,
        ));
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
            let conn = Connection::new(
                Arc::clone(&app),
                self.layer.layer(self.proxy.for_client(forwarding)),
                identity,
                Arc::clone(&requests),
            );
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
