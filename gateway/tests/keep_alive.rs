//! Idle kept-alive connections and the header read timeout (issue 14.9's unanswered
//! requests): the race reproduced deterministically, and the timeouts that keep it away
//! from clients that honour `Keep-Alive: timeout=N`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use gateway::BackendConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const REQUEST: &[u8] = b"GET /api/orders/1 HTTP/1.1\r\nhost: gw\r\nx-user-id: u1\r\n\r\n";

/// Reads one response (head + Content-Length body) from `s`; `None` when the
/// connection ends (EOF or reset) before a complete response.
async fn response(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + length {
                return Some(head);
            }
        }
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => panic!("no answer and no close within 10 s"),
        }
    }
}

/// True when the gateway closed `s` (EOF or reset) within `within`, with nothing sent.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(within, s.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => panic!("the gateway sent bytes on an idle connection"),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_request_sent_as_the_gateway_closes_an_idle_connection_gets_no_answer() {
    // The race, made deterministic: the client writes its next request onto a kept-alive
    // connection after the gateway decided to close it (its FIN is in flight, unread).
    // No byte of an answer comes back, and the backend never sees the request: a client
    // may resend it only if it is safe to (idempotent) — or better, never reuse a
    // connection past the advertised `Keep-Alive: timeout`.
    let (backend, stats) = support::backend(BackendConfig::default()).await;
    let toml = "[server]\nheader_read_timeout = \"5s\"\nkeep_alive_timeout = \"1s\"\n";
    let gw = support::gateway(toml, &format!("http://{}", backend.addr)).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(REQUEST).await.unwrap();
    let head = response(&mut s)
        .await
        .expect("the first request is answered");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("keep-alive: timeout=1"), "{head}");
    // Past the idle timeout, without reading: the gateway has closed its side.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let counted = stats.stats().total();
    let _ = s.write_all(REQUEST).await;
    assert!(
        response(&mut s).await.is_none(),
        "no answer on a closed connection"
    );
    assert_eq!(
        stats.stats().total(),
        counted,
        "the lost request never reached the backend"
    );
    backend.stop().await;
}

#[tokio::test]
async fn idle_connections_last_the_keep_alive_timeout_not_the_header_timeout() {
    let (backend, _stats) = support::backend(BackendConfig::default()).await;
    let toml = "[server]\nheader_read_timeout = \"1s\"\nkeep_alive_timeout = \"3s\"\n";
    let gw = support::gateway(toml, &format!("http://{}", backend.addr)).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(REQUEST).await.unwrap();
    let head = response(&mut s).await.unwrap();
    assert!(head.contains("keep-alive: timeout=3"), "{head}");
    // Idle for twice the header timeout: still open, and it still serves.
    assert!(!closed_within(&mut s, Duration::from_secs(2)).await);
    s.write_all(REQUEST).await.unwrap();
    let head = response(&mut s).await.expect("served after 2 s idle");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    // Then idle past the keep-alive timeout: closed, by about then.
    let idle = Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(6)).await);
    let after = idle.elapsed();
    assert!(
        after >= Duration::from_millis(2900) && after < Duration::from_secs(5),
        "closed after {after:?}"
    );
    backend.stop().await;
}

#[tokio::test]
async fn a_started_head_and_a_silent_new_connection_get_the_header_timeout() {
    let (backend, _stats) = support::backend(BackendConfig::default()).await;
    let toml = "[server]\nheader_read_timeout = \"1s\"\nkeep_alive_timeout = \"30s\"\n";
    let gw = support::gateway(toml, &format!("http://{}", backend.addr)).await;
    // A new connection that sends nothing.
    let mut silent = TcpStream::connect(gw.addr).await.unwrap();
    let opened = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await);
    assert!(
        opened.elapsed() < Duration::from_secs(3),
        "{:?}",
        opened.elapsed()
    );
    // A kept-alive connection that starts its second head and stalls.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(REQUEST).await.unwrap();
    response(&mut s).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await; // idle: fine
    s.write_all(b"GET /api/orders/1 HTTP/1.1\r\nhost: gw\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);
    let after = started.elapsed();
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(3),
        "closed {after:?} after the head began"
    );
    backend.stop().await;
}

#[tokio::test]
async fn a_long_response_body_is_not_cut_by_the_idle_timer() {
    // The request is in hand until its response body ends: a backend that sends its
    // head at once and the rest of its body after longer than both client timeouts does
    // not get the (quiet) client cut off.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = upstream.local_addr().unwrap();
    let slow = tokio::spawn(async move {
        let (mut conn, _) = upstream.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = conn.read(&mut buf).await.unwrap();
        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        conn.write_all(b"cde").await.unwrap();
        // Held open until the gateway is done with it.
        let _ = conn.read(&mut buf).await;
    });
    let toml = "[server]\nheader_read_timeout = \"1s\"\nkeep_alive_timeout = \"1s\"\n";
    let gw = support::gateway(toml, &format!("http://{addr}")).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(REQUEST).await.unwrap();
    let head = response(&mut s).await.expect("the whole body, after 2.5 s");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    slow.abort();
}
