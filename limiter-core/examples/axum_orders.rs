//! A small axum service rate-limited by `limiter-core`'s tower layer — the same layer
//! the ratelab gateway runs.
//!
//! `GET /orders/{id}` answers the order; each API key (`x-api-key`, else the client IP)
//! may make 5 requests at once and 1 more per second (GCRA). Refused requests get
//! `429` with `Retry-After` and the `RateLimit` headers; admitted ones get the headers
//! too. The client IP comes from axum's `ConnectInfo` (feature `axum`): no middleware
//! of our own.
//!
//! ```text
//! cargo run -p limiter-core --features axum --example axum_orders -- 127.0.0.1:3000
//! curl -i -H 'x-api-key: k1' http://127.0.0.1:3000/orders/7
//! ```

use std::net::SocketAddr;

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use limiter_core::tower::{HeaderOrIp, RateLimitLayer};
use limiter_core::{Kind, MonotonicClock, Policy, Quota, RateLimiter};

/// Bursts of 5, refilled at 1 per second, per API key: a constant, checked by the
/// compiler.
pub const QUOTA: Quota = Quota::per_second_const(1).with_burst_const(5);

/// The application: one route behind the rate-limit layer.
pub fn app() -> Router {
    let limiter = RateLimiter::memory(
        Policy::new(Kind::Gcra, QUOTA),
        MonotonicClock::new(),
        100_000,
    );
    let key = match HeaderOrIp::new("x-api-key") {
        Ok(key) => key,
        Err(err) => unreachable!("a constant header name is valid: {err}"),
    };
    Router::new()
        .route("/orders/{id}", get(order))
        .layer(RateLimitLayer::keyed("orders", limiter, key))
}

async fn order(Path(id): Path<u64>) -> String {
    format!("{{\"order\":{id}}}\n")
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
