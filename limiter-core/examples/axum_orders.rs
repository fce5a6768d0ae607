//! A small axum service rate-limited by `limiter-core`'s tower layer — the same layer
//! the ratelab gateway runs.
//!
//! `GET /orders/{id}` answers the order; each API key (`x-api-key`, else the client IP)
//! may make 5 requests at once and 1 more per second (GCRA). Refused requests get
//! `429` with `Retry-After` and the `RateLimit` headers; admitted ones get the headers
//! too.
//!
//! ```text
//! cargo run -p limiter-core --features tower --example axum_orders -- 127.0.0.1:3000
//! curl -i -H 'x-api-key: k1' http://127.0.0.1:3000/orders/7
//! ```

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use limiter_core::tower::{HeaderOrIp, PeerAddr, RateLimitLayer};
use limiter_core::{Kind, MemoryLimiter, MonotonicClock, Policy, Quota};

/// Bursts of 5, refilled at 1 per second, per API key.
pub fn policy() -> Policy {
    match Quota::bucket(5, 1.0) {
        Ok(quota) => Policy::new(Kind::Gcra, quota),
        Err(err) => unreachable!("a constant quota is valid: {err}"),
    }
}

/// The application: one route behind the rate-limit layer.
pub fn app() -> Router {
    let limiter = MemoryLimiter::new(policy(), MonotonicClock::new(), 100_000);
    let key = match HeaderOrIp::new("x-api-key") {
        Ok(key) => key,
        Err(err) => unreachable!("a constant header name is valid: {err}"),
    };
    Router::new()
        .route("/orders/{id}", get(order))
        .layer(RateLimitLayer::keyed("orders", limiter, key))
        // Outermost: hand the client address to the key extractor (axum keeps it as
        // `ConnectInfo`; the layer reads `PeerAddr`).
        .layer(middleware::from_fn(peer_addr))
}

async fn order(Path(id): Path<u64>) -> String {
    format!("{{\"order\":{id}}}\n")
}

async fn peer_addr(mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        req.extensions_mut().insert(PeerAddr(addr));
    }
    next.run(req).await
}

#[allow(dead_code)] // the integration test reuses `app` without running `main`
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app().into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
