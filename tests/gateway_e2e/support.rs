//! Helpers for the gateway's process-level tests: `ratelab` child processes that are
//! killed on drop, and a tiny blocking HTTP/1.1 client over raw sockets (so tests can
//! also misbehave: stall, send huge headers).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A running `ratelab` subcommand, killed (SIGKILL) when dropped.
pub struct Proc {
    child: Child,
    /// The address it printed it listens on.
    pub addr: SocketAddr,
    /// The admin address it printed (a gateway's `/metrics`, `/healthz`, `/readyz`; a
    /// backend's `/stats`).
    pub admin: Option<SocketAddr>,
}

impl Proc {
    /// Starts `ratelab <args>` and waits (10 s at most) for its "listening on" line.
    pub fn start(args: &[&str]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ratelab"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ratelab");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (admin_tx, admin_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                let admin = line
                    .split("admin on http://")
                    .nth(1)
                    .or_else(|| line.split("stats on http://").nth(1));
                if let Some(url) = admin {
                    let _ = admin_tx.send(url.trim().to_owned());
                }
                if let Some(url) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(addr) => addr.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                panic!("ratelab {args:?} did not start (exit: {status})");
            }
        };
        // Printed before the listening line, when there is one.
        let admin = admin_rx.try_recv().ok().map(|a| a.parse().unwrap());
        Proc { child, addr, admin }
    }

    /// The admin address (panics for a process that printed none).
    pub fn admin(&self) -> SocketAddr {
        self.admin.expect("this process printed no admin address")
    }

    /// The admin base URL.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin())
    }

    /// Sends SIGHUP (reload).
    pub fn hangup(&self) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -HUP failed");
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits (at most `limit`) for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the mock backend on a free port.
pub fn backend(extra: &[&str]) -> Proc {
    let mut args = vec![
        "backend",
        "--listen",
        "127.0.0.1:0",
        "--stats-listen",
        "127.0.0.1:0",
        "--threads",
        "1",
    ];
    args.extend_from_slice(extra);
    Proc::start(&args)
}

/// Starts a gateway for `config` in front of `backend`, on a free port.
pub fn gateway(config: &Path, backend: &Proc) -> Proc {
    let backend_url = backend.url();
    Proc::start(&[
        "gateway",
        "--config",
        config.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--backend",
        &backend_url,
        "--admin-listen",
        "127.0.0.1:0",
        "--threads",
        "1",
    ])
}

/// The identity table the tests' configs use to believe `x-user-id` from loopback
/// (the test client is the trusted proxy).
pub const TRUST_LOOPBACK: &str = "\n[identity]\ntrusted_proxies = [\"127.0.0.1\"]\n";

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory under the system's temp dir.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ratelab-gw-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Writes `name` with `text` and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Res {
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Res {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends raw bytes on a fresh connection and reads the whole response (the request
/// should say `connection: close`). Times out after 10 s.
pub fn raw(addr: SocketAddr, request: &[u8]) -> std::io::Result<Res> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    parse(&buf).ok_or_else(|| {
        std::io::Error::other(format!("bad response: {:?}", String::from_utf8_lossy(&buf)))
    })
}

/// `GET path` with optional `x-user-id`.
pub fn get(addr: SocketAddr, path: &str, user: Option<&str>) -> Res {
    let mut req = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    if let Some(u) = user {
        req.push_str(&format!("x-user-id: {u}\r\n"));
    }
    req.push_str("\r\n");
    raw(addr, req.as_bytes()).unwrap()
}

/// `POST path` with an empty body.
pub fn post(addr: SocketAddr, path: &str) -> Res {
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    raw(addr, req.as_bytes()).unwrap()
}

fn parse(buf: &[u8]) -> Option<Res> {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect::<Vec<_>>();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some(Res {
        status,
        headers,
        body,
    })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The backend's `/stats` as JSON.
pub fn stats(backend: &Proc) -> serde_json::Value {
    let res = get(backend.admin(), "/stats", None);
    assert_eq!(res.status, 200, "{res:?}");
    serde_json::from_str(&res.body).unwrap()
}
