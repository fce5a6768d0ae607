//! Real Redis servers for tests: a single node ([`RedisServer`]) or a 3-master Redis
//! Cluster ([`RedisCluster`], with or without a replica per master, and failover on
//! demand: [`RedisCluster::fail_over`]), each on free loopback ports, with its data in a
//! temporary directory, stopped and cleaned up when dropped.
//!
//! Nothing is skipped: where `redis-server` (or, for the cluster, `redis-cli`) is not
//! installed, [`RedisServer::start`] fails with a message that says how to install it
//! (`scripts/test.sh` does). Set `REDIS_SERVER` / `REDIS_CLI` to use other binaries.
//!
//! ```no_run
//! let redis = testkit::RedisServer::start().unwrap();
//! assert_eq!(redis.cmd(&["PING"]).unwrap(), "PONG");
//! redis.kill();    // a crash, for fault tests
//! redis.restart().unwrap(); // back on the same port, empty
//! # let _ = redis.url();
//! ```

mod cluster;
mod port;
mod resp;
mod server;

pub use cluster::{Failover, Killed, RedisCluster};
pub use port::free_port;
pub use server::RedisServer;

use std::fmt;

/// Why a test server could not be started or asked.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
