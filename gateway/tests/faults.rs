//! Issue 14 item 6 through the real gateway: timeouts and faults blamed on the side that
//! caused them. A slow upload is not a backend timeout; a client or backend that stalls
//! mid-body does not hold a connection forever; a malformed body or Host is the
//! client's `400`; a half-closed client gets its answer; one address cannot take every
//! connection; the backend's connections are capped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use gateway::{BackendConfig, Latency};
use support::{backend, gateway, get, raw};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn metric(addr: std::net::SocketAddr, needle: &str) -> bool {
    get(addr, "/metrics", "m").await.body.contains(needle)
}

/// Reads one whole response (or until the server closes), within `limit`.
async fn read_all(s: &mut TcpStream, limit: Duration) -> String {
    let mut buf = Vec::new();
    tokio::time::timeout(limit, s.read_to_end(&mut buf))
        .await
        .expect("the gateway must answer or close")
        .unwrap_or(0);
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_is_not_a_backend_timeout() {
    let (be, backend_state) = backend(BackendConfig::default()).await;
    let gw = gateway(
        "[server]\nupstream_timeout = \"2s\"\n",
        &format!("http://{}", be.addr),
    )
    .await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nhost: x\r\nx-user-id: u\r\ncontent-length: 5120\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    // 5 KB over 3.2 s: longer than upstream_timeout, never idle for long.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(640)).await;
        s.write_all(&[b'x'; 1024]).await.unwrap();
    }
    let res = read_all(&mut s, Duration::from_secs(10)).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert_eq!(backend_state.stats().count("u", "/upload"), 1);
    assert!(metric(gw.admin, "kind=\"timeout\"} 0").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stalls_mid_body_gets_408() {
    let (be, _) = backend(BackendConfig::default()).await;
    let gw = gateway(
        "[server]\nbody_idle_timeout = \"500ms\"\n",
        &format!("http://{}", be.addr),
    )
    .await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nhalf")
        .await
        .unwrap();
    let t = Instant::now();
    let res = read_all(&mut s, Duration::from_secs(10)).await;
    assert!(res.starts_with("HTTP/1.1 408"), "{res}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(metric(gw.admin, "kind=\"client_timeout\"} 1").await);
    assert!(metric(gw.admin, "kind=\"timeout\"} 0").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_stalls_mid_body_does_not_hold_the_client_forever() {
    // A backend that sends a head and 10 of 100 body bytes, then says nothing.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789")
                .await;
            held.push(s);
        }
    });
    let gw = gateway(
        "[server]\nbody_idle_timeout = \"500ms\"\n",
        &format!("http://{addr}"),
    )
    .await;
    let t = Instant::now();
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /stall HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let res = read_all(&mut s, Duration::from_secs(10)).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(res.ends_with("0123456789"), "{res}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_and_hosts_are_the_clients_400() {
    let (be, backend_state) = backend(BackendConfig::default()).await;
    let gw = gateway("", &format!("http://{}", be.addr)).await;
    let bad_chunk = b"POST /c HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n5\r\nhello\r\nzz\r\nmore\r\n0\r\n\r\n";
    let res = raw(gw.addr, bad_chunk).await.unwrap();
    assert_eq!(res.status, 400, "{res:?}");
    let two_hosts = b"GET /h HTTP/1.1\r\nhost: a\r\nhost: b\r\nconnection: close\r\n\r\n";
    assert_eq!(raw(gw.addr, two_hosts).await.unwrap().status, 400);
    let mismatch = b"GET http://a/h HTTP/1.1\r\nhost: b\r\nconnection: close\r\n\r\n";
    assert_eq!(raw(gw.addr, mismatch).await.unwrap().status, 400);
    let matching = b"GET http://a/h HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n";
    assert_eq!(raw(gw.addr, matching).await.unwrap().status, 200);
    assert_eq!(backend_state.stats().count("-", "/h"), 1);
    assert!(metric(gw.admin, "kind=\"bad_request\"} 3").await);
    assert!(metric(gw.admin, "kind=\"unreachable\"} 0").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_closed_client_gets_its_answer() {
    let (be, _) = backend(BackendConfig::default()).await;
    let gw = gateway("", &format!("http://{}", be.addr)).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /half HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    let res = read_all(&mut s, Duration::from_secs(10)).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_connection() {
    let (be, _) = backend(BackendConfig::default()).await;
    let gw = gateway(
        "[server]\nmax_connections_per_ip = 2\n",
        &format!("http://{}", be.addr),
    )
    .await;
    let a = TcpStream::connect(gw.addr).await.unwrap();
    let _b = TcpStream::connect(gw.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The third is closed at once, without an answer.
    let mut c = TcpStream::connect(gw.addr).await.unwrap();
    let _ = c.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert_eq!(read_all(&mut c, Duration::from_secs(5)).await, "");
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get(gw.addr, "/ok", "u").await.status, 200);
    assert!(metric(gw.admin, "ratelab_gateway_connections_refused_total 1").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_connections_are_capped() {
    let (be, _) = backend(BackendConfig {
        latency: Latency::Fixed(1000.0),
        ..Default::default()
    })
    .await;
    let gw = gateway(
        "[server]\nmax_backend_connections = 1\nupstream_timeout = \"1500ms\"\n",
        &format!("http://{}", be.addr),
    )
    .await;
    // Three at once over one connection of a 1 s backend: the first at 1 s, the second
    // at 2 s (it waited for the connection, then had 1.5 s), the third found none free
    // within 1.5 s.
    let t = Instant::now();
    let calls: Vec<_> = (0..3)
        .map(|i| {
            let addr = gw.addr;
            tokio::spawn(async move { get(addr, &format!("/cap{i}"), "u").await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for call in calls {
        statuses.push(call.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 503], "after {:?}", t.elapsed());
    assert!(
        t.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        t.elapsed()
    );
    assert!(metric(gw.admin, "kind=\"backend_busy\"} 1").await);
}
