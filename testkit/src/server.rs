//! `redis-server` processes owned by a test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::port::free_port;
use crate::resp::command;
use crate::{Error, Result};

const START_TIMEOUT: Duration = Duration::from_secs(10);

/// One `redis-server` on `127.0.0.1`, with no persistence (`--save "" --appendonly no`)
/// and its working directory in a temporary directory. Killed and cleaned up on drop.
///
/// [`kill`](Self::kill) and [`restart`](Self::restart) take `&self`, so a test can hold
/// the server in an `Arc` and crash it while other tasks use it.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: TempDir,
    extra: Vec<String>,
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it answers `PING`.
    ///
    /// Errors when `redis-server` is not installed (with how to install it), or when it
    /// does not come up within 10 s (with the end of its log).
    pub fn start() -> Result<Self> {
        Self::start_with(free_port, &[])
    }

    pub(crate) fn start_with(port: fn() -> u16, extra: &[&str]) -> Result<Self> {
        let mut last = None;
        // Another process may take the port between our check and the server's bind.
        for _ in 0..5 {
            let port = port();
            let server = Self {
                port,
                dir: TempDir::new(port)?,
                extra: extra.iter().map(|s| (*s).to_owned()).collect(),
                child: Mutex::new(None),
            };
            match server.restart() {
                Ok(()) => return Ok(server),
                Err(e) if e.to_string().contains("Address already in use") => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::new("no port")))
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL, like a crash) and waits for it to exit. Its data is
    /// lost. Does nothing if it is not running.
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(mut c) = child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// True while the server process runs.
    pub fn is_running(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        matches!(child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Starts the server again on the same port (killing it first if it runs), empty,
    /// and waits until it answers `PING`.
    pub fn restart(&self) -> Result<()> {
        self.kill();
        let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        let log = self.dir.path().join("redis.log");
        let _ = std::fs::remove_file(&log);
        let mut cmd = Command::new(binary("REDIS_SERVER", "redis-server"));
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--databases", "1"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut c = cmd.spawn().map_err(|e| not_installed("redis-server", e))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return Err(Error::new(format!(
                    "redis-server on port {} exited at start ({status}); its log ends:\n{}",
                    self.port,
                    tail(&log)
                )));
            }
            if command(self.port, &["PING"]).is_ok_and(|r| r == "PONG") {
                *child = Some(c);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return Err(Error::new(format!(
                    "redis-server on port {} did not answer PING within {START_TIMEOUT:?}; \
                     its log ends:\n{}",
                    self.port,
                    tail(&log)
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends one command and returns the reply as text (status and bulk strings as
    /// they are, integers in decimal, arrays one element per line); an error reply is
    /// an `Err`. For checks and statistics (`INFO commandstats`), not for load.
    pub fn cmd(&self, args: &[&str]) -> Result<String> {
        command(self.port, args)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn binary(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

pub(crate) fn not_installed(name: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::new(format!(
            "{name} is not installed (not found on PATH). The Redis tests need real servers \
             and are never skipped: run `bash scripts/test.sh` (installs Debian's \
             redis-server and redis-tools), or `apt-get install redis-server redis-tools`."
        ))
    } else {
        Error::new(format!("could not start {name}: {e}"))
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// A directory under the system's temporary directory, removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new(port: u16) -> Result<Self> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("testkit-redis-{}-{n}-{port}", std::process::id()));
        std::fs::create_dir_all(&path)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", path.display())))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
