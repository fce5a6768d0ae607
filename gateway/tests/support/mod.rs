//! In-process servers on port 0 and a raw HTTP/1.1 client, for the gateway's
//! library-level tests.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gateway::{Backend, BackendConfig, Config, Gateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server task stopped (gracefully) by `stop`, or aborted on drop.
pub struct Running {
    pub addr: SocketAddr,
    /// The gateway's admin listener (`/metrics`, `/healthz`, `/readyz`); a backend's
    /// stats listener (`/stats`).
    pub admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// Triggers graceful shutdown and waits for the server to return.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .unwrap()
                .unwrap();
        }
    }

    /// Triggers graceful shutdown without waiting.
    pub fn trigger_stop(&mut self) -> JoinHandle<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.take().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Starts the mock backend.
pub async fn backend(config: BackendConfig) -> (Running, Arc<Backend>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = stats.local_addr().unwrap();
    let backend = Backend::new(config);
    let (tx, rx) = oneshot::channel::<()>();
    let b = Arc::clone(&backend);
    let task = tokio::spawn(async move {
        let stats = tokio::spawn(Arc::clone(&b).serve_stats(stats, std::future::pending()));
        b.serve(listener, async {
            let _ = rx.await;
        })
        .await;
        stats.abort();
    });
    (
        Running {
            addr,
            admin,
            stop: Some(tx),
            task: Some(task),
        },
        backend,
    )
}

/// Starts a gateway for `toml` (listen, admin and backend overridden). Without an
/// `[identity]` table in `toml`, 127.0.0.1 is a trusted proxy, so the tests' `x-user-id`
/// counts; with one, the table is used as written.
pub async fn gateway(toml: &str, backend: &str) -> Running {
    start_gateway(toml, backend, true).await
}

/// [`gateway`] without waiting for Redis: it serves at once, by its failure policy
/// until Redis answers.
pub async fn gateway_cold(toml: &str, backend: &str) -> Running {
    start_gateway(toml, backend, false).await
}

async fn start_gateway(toml: &str, backend: &str, warm: bool) -> Running {
    let mut config = Config::parse("test.toml", toml).unwrap();
    config.set_listen("127.0.0.1:0").unwrap();
    config.set_admin_listen("127.0.0.1:0").unwrap();
    config.set_backend(backend).unwrap();
    if !toml.contains("[identity") {
        config.identity.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    }
    let gw = Gateway::new(config).await.unwrap();
    // A warm start: Redis (when configured and up) connected before the first request.
    if warm {
        let _ = gw
            .limiter()
            .stores()
            .wait_connected(Duration::from_secs(5))
            .await;
    }
    let listeners = gw.bind().await.unwrap();
    let addr = listeners.proxy.local_addr().unwrap();
    let admin = listeners.admin.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        gw.serve(listeners, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running {
        addr,
        admin,
        stop: Some(tx),
        task: Some(task),
    }
}

/// A parsed response.
#[derive(Debug)]
pub struct Res {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Res {
    /// The value of header `name` (lowercase), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    }
}

/// Sends raw bytes on a fresh connection and reads the response until the server
/// closes (send `connection: close`).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> std::io::Result<Res> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(request).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("response timed out"))??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("bad response {text:?}")))?;
    let status = head[9..12].parse().map_err(std::io::Error::other)?;
    Ok(Res {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// `GET path` as `user`.
pub async fn get(addr: SocketAddr, path: &str, user: &str) -> Res {
    let req =
        format!("GET {path} HTTP/1.1\r\nhost: x\r\nx-user-id: {user}\r\nconnection: close\r\n\r\n");
    raw(addr, req.as_bytes()).await.unwrap()
}

/// Sends `request` (a whole HTTP/1.1 request, `connection: close`) from the loopback
/// address `source` (any 127.x.y.z on Linux) and reads the response.
pub async fn raw_from(source: [u8; 4], addr: SocketAddr, request: &str) -> Res {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((source, 0).into()).unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    Res {
        status: head[9..12].parse().unwrap(),
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// `GET path` from `source` with extra header lines (each ending in `\r\n`).
pub async fn get_from(source: [u8; 4], addr: SocketAddr, path: &str, headers: &str) -> Res {
    let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\n{headers}connection: close\r\n\r\n");
    raw_from(source, addr, &req).await
}
