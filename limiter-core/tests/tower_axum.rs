//! The tower layer in an axum app (the one in `examples/axum_orders.rs`), over a real
//! socket and in process.

#![allow(clippy::unwrap_used)]

#[path = "../examples/axum_orders.rs"]
#[allow(dead_code, unreachable_pub)]
mod example;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use limiter_core::tower::{
    ClientIp, HeaderOrIp, MissingPeer, ProblemJson, RateLimitLayer, Refusal,
};
use limiter_core::{Kind, MonotonicClock, Policy, Quota, RateLimiter};
use tower::ServiceExt;

async fn get(app: &axum::Router, key: Option<&str>) -> (StatusCode, http::HeaderMap, String) {
    let mut req = Request::get("/orders/42");
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn burst_then_429_with_headers_per_key() {
    let app = example::app();
    for i in 0..5u64 {
        let (status, headers, body) = get(&app, Some("k1")).await;
        assert_eq!(status, StatusCode::OK, "request {i}");
        assert_eq!(body, "{\"order\":42}\n");
        assert_eq!(headers["ratelimit-policy"], "\"orders\";q=5;w=5");
        assert_eq!(
            headers["x-ratelimit-remaining"],
            (4 - i).to_string().as_str()
        );
        assert!(headers.get("retry-after").is_none());
    }
    let (status, headers, body) = get(&app, Some("k1")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert_eq!(headers["content-type"], "application/json");
    assert!(body.contains("too many requests"), "{body}");
    // Another key is not affected.
    assert_eq!(get(&app, Some("k2")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn over_long_keys_are_a_bad_request() {
    let app = example::app();
    let long = "x".repeat(300);
    let (status, _, body) = get(&app, Some(&long)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("identity too long"), "{body}");
}

#[tokio::test]
async fn without_connect_info_an_ip_key_is_refused_not_shared() {
    // Served without `into_make_service_with_connect_info`: no client address. The
    // layer says so with a 500 instead of counting everyone against one key.
    let app = example::app();
    let (status, headers, body) = get(&app, None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(headers["content-type"], "application/json");
    assert!(body.contains("client address unavailable"), "{body}");
    // Opting in to one shared key works, and is the distinct key `no-peer`.
    let limiter = RateLimiter::memory(
        Policy::new(Kind::FixedWindow, Quota::per_minute_const(1)),
        MonotonicClock::new(),
        10,
    );
    let key = ClientIp::new().with_missing_peer(MissingPeer::Shared);
    let app = axum::Router::new()
        .route("/orders/{id}", axum::routing::get(|| async { "ok" }))
        .layer(RateLimitLayer::keyed("shared", limiter, key));
    assert_eq!(get(&app, None).await.0, StatusCode::OK);
    assert_eq!(get(&app, None).await.0, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn refusals_can_be_problem_details() {
    let limiter = RateLimiter::memory(
        Policy::new(Kind::TokenBucket, Quota::per_minute_const(1)),
        MonotonicClock::new(),
        10,
    );
    let layer = RateLimitLayer::keyed("orders", limiter, HeaderOrIp::new("x-api-key").unwrap())
        .with_refusal(ProblemJson::new().with_type("https://example.com/problems/rate-limit"));
    let app = axum::Router::new()
        .route("/orders/{id}", axum::routing::get(|| async { "ok" }))
        .layer(layer);
    assert_eq!(get(&app, Some("k")).await.0, StatusCode::OK);
    let (status, headers, body) = get(&app, Some("k")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["content-type"], "application/problem+json");
    // The layer's headers stay, whatever the body.
    assert_eq!(headers["retry-after"], "60");
    assert_eq!(headers["ratelimit"], "\"orders\";r=0;t=60");
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["type"], "https://example.com/problems/rate-limit");
    assert_eq!(problem["title"], "Too Many Requests");
    assert_eq!(problem["status"], 429);
    assert_eq!(problem["detail"], "too many requests");
    assert_eq!(problem["retry_after"], 60);
    assert_eq!(problem["policy"], "orders");

    // A closure shapes it too; an unusable identity is a 400 through the same hook.
    let limiter = RateLimiter::memory(
        Policy::new(Kind::Gcra, Quota::per_second_const(1)),
        MonotonicClock::new(),
        10,
    );
    let layer = RateLimitLayer::keyed("x", limiter, HeaderOrIp::new("x-api-key").unwrap())
        .with_refusal(|r: &Refusal<'_>| {
            let mut res = http::Response::new(bytes::Bytes::from(format!("no: {}", r.reason)));
            *res.status_mut() = r.status;
            res
        });
    let app = axum::Router::new()
        .route("/orders/{id}", axum::routing::get(|| async { "ok" }))
        .layer(layer);
    let (status, _, body) = get(&app, Some(&"x".repeat(300))).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "no: identity too long")
    );
}

#[tokio::test]
async fn over_a_real_socket_the_client_ip_is_the_key() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            example::app().into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(raw_get(addr).await);
    }
    server.abort();
    assert_eq!(statuses[..5], [200; 5]);
    assert_eq!(statuses[5], 429);
}

/// One HTTP/1.1 request on a fresh connection; returns the status code.
async fn raw_get(addr: SocketAddr) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /orders/1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf);
    text[9..12].parse().unwrap()
}
