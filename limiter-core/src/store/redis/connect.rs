//! Reaching Redis: a store exists before its first connection, connects in the
//! background, and keeps trying until Redis answers.
//!
//! The guarantee: a process that starts while Redis is down does not fail or block; its
//! limiters answer with their failure policy meanwhile (a call on a store that has not
//! connected fails at once, like a call on an open circuit), and the first moment Redis
//! accepts a connection and our scripts, the store uses it — nobody has to restart
//! anything. Once connected, the redis crate's connection repairs itself after
//! disconnections; a Redis that restarts empty gets the scripts again on `NOSCRIPT`.

use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::{Cmd, ErrorKind, RedisError, RedisFuture, Value};
use tokio::sync::watch;

use super::{Breakers, Connection, Counters, Inner, RedisOptions, RedisStore, script, store_error};
use crate::error::{Error, Result};

impl RedisStore {
    /// Connects to one Redis server (`redis://host:port/`) and loads the scripts,
    /// waiting for the first connection.
    ///
    /// Errors when the server cannot be reached within the options' timeout (at least
    /// one second); later disconnections are repaired in the background. To start
    /// without waiting (Redis may come later), use [`connect_lazy`](Self::connect_lazy).
    pub async fn connect(url: &str, opts: RedisOptions) -> Result<RedisStore> {
        let wait = opts.timeout.max(Duration::from_secs(1));
        let store = Self::connect_lazy(url, opts)?;
        store.wait_connected(wait).await?;
        Ok(store)
    }

    /// Connects to a Redis Cluster through any of its nodes (`redis://host:port/`) and
    /// loads the scripts on every master, waiting for the first connection (see
    /// [`connect`](Self::connect)).
    pub async fn connect_cluster(urls: &[String], opts: RedisOptions) -> Result<RedisStore> {
        let wait = opts.timeout.max(Duration::from_secs(1));
        let store = Self::connect_cluster_lazy(urls, opts)?;
        store.wait_connected(wait).await?;
        Ok(store)
    }

    /// A store for one Redis server that connects in the background: it returns at
    /// once, its limiters answer with the failure policy until Redis is reachable, and
    /// it keeps trying (pauses growing to a second) until it is. Errors only for a URL
    /// the redis crate cannot read, or outside a tokio runtime.
    pub fn connect_lazy(url: &str, opts: RedisOptions) -> Result<RedisStore> {
        let client = redis::Client::open(url).map_err(store_error)?;
        Self::spawn(Connector::Single(client), opts)
    }

    /// A Redis Cluster store that connects in the background (see
    /// [`connect_lazy`](Self::connect_lazy)).
    pub fn connect_cluster_lazy(urls: &[String], opts: RedisOptions) -> Result<RedisStore> {
        let client = ClusterClientBuilder::new(urls.iter().map(String::as_str))
            .connection_timeout(opts.timeout.max(Duration::from_millis(10)))
            .response_timeout(opts.timeout)
            .retries(2)
            .min_retry_wait(5)
            .max_retry_wait(50)
            .build()
            .map_err(store_error)?;
        Self::spawn(Connector::Cluster(Box::new(client)), opts)
    }

    fn spawn(connector: Connector, opts: RedisOptions) -> Result<RedisStore> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| Error::store(format!("a Redis store needs a tokio runtime: {e}")))?;
        let store = RedisStore {
            inner: Arc::new(Inner {
                breakers: match connector {
                    Connector::Single(_) => Breakers::single(opts.breaker),
                    Connector::Cluster(_) => Breakers::cluster(opts.breaker),
                },
                link: Link::new(),
                opts,
                counters: Counters::default(),
            }),
        };
        runtime.spawn(keep_connecting(Arc::downgrade(&store.inner), connector));
        Ok(store)
    }

    /// Waits at most `timeout` for the first connection (with the scripts loaded).
    pub async fn wait_connected(&self, timeout: Duration) -> Result<()> {
        self.inner.link.wait(timeout).await
    }

    /// True once the store has connected (it may be disconnected again now: ask
    /// [`ping`](Self::ping) for that).
    pub fn is_connected(&self) -> bool {
        self.inner.link.get().is_some()
    }

    /// Why the last connection attempt failed, while the store has not connected.
    pub fn connect_error(&self) -> Option<String> {
        self.inner.link.last_error()
    }

    /// Asks Redis for `PING` within the options' timeout: is it reachable now? (A
    /// readiness probe; no breaker applies.)
    pub async fn ping(&self) -> Result<()> {
        if !self.is_connected() {
            return Err(Error::store(
                self.connect_error()
                    .unwrap_or_else(|| "not connected yet".to_owned()),
            ));
        }
        let mut conn = self.connection();
        let timeout = self.inner.opts.timeout;
        tokio::time::timeout(timeout, redis::cmd("PING").query_async::<Value>(&mut conn))
            .await
            .map_err(|_| Error::timeout(timeout))?
            .map(|_| ())
            .map_err(store_error)
    }
}

/// How to open the connection: the client of one server or of a cluster.
pub(super) enum Connector {
    /// One Redis server.
    Single(redis::Client),
    /// A Redis Cluster (boxed: its client is several times the size of one server's).
    Cluster(Box<ClusterClient>),
}

impl Connector {
    /// One attempt to open the connection, bounded by `timeout`.
    async fn open(&self, timeout: Duration) -> Result<Connection> {
        let connecting = async {
            match self {
                Connector::Single(client) => {
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(timeout))
                        .set_response_timeout(None)
                        // Reconnect quickly once Redis is back: never wait more than
                        // 100 ms between attempts (the breaker, not the backoff,
                        // protects a dead server).
                        .set_min_delay(Duration::from_millis(10))
                        .set_max_delay(Duration::from_millis(100))
                        .set_number_of_retries(3);
                    ConnectionManager::new_with_config(client.clone(), config)
                        .await
                        .map(Connection::Single)
                }
                Connector::Cluster(client) => {
                    client.get_async_connection().await.map(Connection::Cluster)
                }
            }
        };
        tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| Error::timeout(timeout))?
            .map_err(Error::store)
    }
}

/// The store's connection: empty until the background task's first success.
#[derive(Debug)]
pub(super) struct Link {
    conn: OnceLock<Connection>,
    /// `true` once connected, for those waiting.
    connected: watch::Sender<bool>,
    /// Why the last attempt failed, for logs, readiness and `connect`'s error.
    last_error: Mutex<Option<String>>,
}

impl Link {
    pub(super) fn new() -> Self {
        Self {
            conn: OnceLock::new(),
            connected: watch::Sender::new(false),
            last_error: Mutex::new(None),
        }
    }

    /// The connection, once there is one.
    pub(super) fn get(&self) -> Option<&Connection> {
        self.conn.get()
    }

    /// Why the last connection attempt failed (`None` once connected or before any).
    pub(super) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_error(&self, error: Option<String>) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error;
    }

    /// Waits at most `timeout` for the first connection.
    pub(super) async fn wait(&self, timeout: Duration) -> Result<()> {
        let mut rx = self.connected.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|c| *c)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(match self.last_error() {
                Some(why) => Error::store(format!("not connected within {timeout:?}: {why}")),
                None => Error::timeout(timeout),
            }),
        }
    }

    /// A handle for commands: the connection when there is one, else one that fails
    /// every command at once.
    pub(super) fn handle(&self) -> StoreConnection {
        StoreConnection {
            conn: self.conn.get().cloned(),
        }
    }
}

/// Keeps trying to connect `store` (and load the scripts) until it succeeds or the
/// store is dropped: a short pause after each failure, growing to at most a second.
pub(super) async fn keep_connecting(store: Weak<Inner>, connector: Connector) {
    let mut pause = Duration::from_millis(50);
    let mut attempts: u64 = 0;
    loop {
        let Some(inner) = store.upgrade() else { return };
        let timeout = inner.opts.timeout.max(Duration::from_secs(1));
        let result = match connector.open(timeout).await {
            Ok(conn) => load_scripts(&conn, timeout).await.map(|()| conn),
            Err(e) => Err(e),
        };
        attempts += 1;
        match result {
            Ok(conn) => {
                let _ = inner.link.conn.set(conn);
                inner.link.set_error(None);
                inner.link.connected.send_replace(true);
                if attempts > 1 {
                    tracing::info!(attempts, "redis reachable: the store is connected");
                }
                return;
            }
            Err(e) => {
                let why = e.report().to_string();
                if attempts == 1 || attempts.is_power_of_two() {
                    tracing::warn!(attempts, error = %why, "redis unreachable; retrying in the background");
                }
                inner.link.set_error(Some(why));
            }
        }
        drop(inner);
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// Loads every algorithm's script and lease script (on every master of a cluster).
async fn load_scripts(conn: &Connection, timeout: Duration) -> Result<()> {
    let leases = script::LEASE_SOURCES.into_iter().flatten();
    let settles = script::SETTLE_SOURCES.into_iter().flatten();
    for source in script::SOURCES.into_iter().chain(leases).chain(settles) {
        let mut conn = conn.clone();
        let mut load = redis::cmd("SCRIPT");
        load.arg("LOAD").arg(source);
        tokio::time::timeout(timeout, load.query_async::<Value>(&mut conn))
            .await
            .map_err(|_| Error::timeout(timeout))?
            .map_err(Error::store)?;
    }
    Ok(())
}

/// A connection handle for commands of a store's own or of callers': multiplexed and
/// reconnecting once the store has connected; before, every command fails at once with
/// an I/O error ("not connected"). Cheap to clone.
#[derive(Clone, Debug)]
pub struct StoreConnection {
    conn: Option<Connection>,
}

fn not_connected() -> RedisError {
    RedisError::from((ErrorKind::Io, "redis store not connected yet"))
}

impl ConnectionLike for StoreConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.conn {
            Some(c) => c.req_packed_command(cmd),
            None => Box::pin(async { Err(not_connected()) }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.conn {
            Some(c) => c.req_packed_commands(pipeline, offset, count),
            None => Box::pin(async { Err(not_connected()) }),
        }
    }

    fn get_db(&self) -> i64 {
        self.conn.as_ref().map_or(0, ConnectionLike::get_db)
    }
}
