//! The access log (`[log] access = "path"` or `"-"`): one JSON line per request — time,
//! identity (or its keyed pseudonym, `[log] identity = "hash"`), route, method, the
//! canonical path, status, the decision and the limits checked with what remains of
//! each, latency — written by a thread of its own.
//!
//! The guarantee: logging never slows the proxy down. A request's facts travel in the
//! box they were gathered in, through a bounded channel, without waiting; the writer
//! thread formats (by hand: [`Entry::write_json`]) and hashes them into one reused
//! buffer, so the request pays no formatting and no allocation beyond its path and
//! limit names. When the writer falls behind (a slow disk, a full pipe) the line is dropped and counted
//! (`ratelab_gateway_access_log_lines_total{outcome="dropped"}`), never queued without
//! bound. The keys are the ones `ratelab simulate --trace --format json` reads by
//! default, so a log collected in shadow mode replays against other algorithms and
//! limits without options.

mod entry;
mod json;
mod pseudonym;

use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::metrics::MetricType;

pub use entry::{DecisionNote, Entry, LimitNote, Name, decision, timestamp};
pub use pseudonym::{HashKey, LogIdentity, MIN_KEY_BYTES, Pseudonym};

use crate::contract::metrics as names;
use crate::metrics::{Counter, DescriptorEncoder, encode_family};

/// Lines waiting for the writer; beyond this they are dropped.
pub const CAPACITY: usize = 16 * 1024;

/// How often the writer flushes when lines stop coming.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// Standard output (`access = "-"`).
    Stdout,
    /// A file, appended to (`access = "path"`, relative to the config's folder).
    File(PathBuf),
}

/// `[log]`: where lines go and how they name people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogConfig {
    /// `access`.
    pub target: AccessLogTarget,
    /// `identity` (with its key).
    pub identity: LogIdentity,
}

/// Lines written and dropped.
#[derive(Debug, Default)]
pub struct AccessLogStats {
    /// Lines handed to the writer.
    pub written: Counter,
    /// Lines dropped because the writer was behind.
    pub dropped: Counter,
}

/// The sending side of the access log; cheap to share.
#[derive(Debug, Clone)]
pub struct AccessLog {
    tx: SyncSender<Box<Pending>>,
    stats: Arc<AccessLogStats>,
}

impl AccessLog {
    /// Opens `config.target` (a file is created or appended to) and starts the writer
    /// thread, which ends when every [`AccessLog`] and [`Pending`] is dropped, after
    /// writing what is queued.
    pub fn open(config: &AccessLogConfig) -> io::Result<Self> {
        let out: Box<dyn Write + Send> = match &config.target {
            AccessLogTarget::Stdout => Box::new(io::stdout()),
            AccessLogTarget::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        let (tx, rx) = sync_channel(CAPACITY);
        let writer = Writer {
            identity: config.identity.clone(),
            line: Vec::with_capacity(1024),
            out: BufWriter::with_capacity(64 * 1024, out),
        };
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer.run(&rx))?;
        Ok(Self {
            tx,
            stats: Arc::new(AccessLogStats::default()),
        })
    }

    /// Hands one request to the writer, or drops it when the writer is behind.
    fn send(&self, pending: Box<Pending>) {
        match self.tx.try_send(pending) {
            Ok(()) => self.stats.written.inc(),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.stats.dropped.inc(),
        }
    }

    /// An access log whose writer never reads (tests of overflow).
    #[cfg(test)]
    fn detached(capacity: usize) -> (Self, Receiver<Box<Pending>>) {
        let (tx, rx) = sync_channel(capacity);
        let log = Self {
            tx,
            stats: Arc::new(AccessLogStats::default()),
        };
        (log, rx)
    }

    /// Lines written and dropped so far.
    pub fn stats(&self) -> &AccessLogStats {
        &self.stats
    }

    /// Writes `ratelab_gateway_access_log_lines_total{outcome}`.
    pub fn encode_metrics(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        encode_family(
            encoder,
            names::ACCESS_LOG_LINES.name,
            "Access log lines, by outcome: written, or dropped because the writer was behind.",
            MetricType::Counter,
            [
                ([(names::LABEL_OUTCOME, "written")], &self.stats.written),
                ([(names::LABEL_OUTCOME, "dropped")], &self.stats.dropped),
            ],
        )
    }
}

/// A request's identity as the log needs it.
#[derive(Debug)]
struct Who {
    key: Arc<str>,
    source: &'static str,
    client: IpAddr,
    ip_key: Arc<str>,
}

/// A request whose line is written when its response starts: what was known on
/// arrival, the limiter's [`DecisionNote`], and at the end the status and latency.
#[derive(Debug)]
pub struct Pending {
    log: AccessLog,
    arrived: SystemTime,
    started: Instant,
    method: http::Method,
    path: String,
    peer: IpAddr,
    identity: Option<Who>,
    note: DecisionNote,
    limits: Vec<LimitNote>,
    status: u16,
    latency_us: u64,
}

impl Pending {
    /// A request of `method` to `path` arriving now from `peer`.
    pub fn start(log: &AccessLog, method: &http::Method, path: &str, peer: IpAddr) -> Box<Self> {
        Box::new(Self {
            log: log.clone(),
            arrived: SystemTime::now(),
            started: Instant::now(),
            method: method.clone(),
            path: path.to_owned(),
            peer,
            identity: None,
            note: DecisionNote::default(),
            limits: Vec::new(),
            status: 0,
            latency_us: 0,
        })
    }

    /// The path the gateway matches and forwards (canonical, once the request head
    /// passed its checks), when it differs from the one received.
    pub fn forwarded_path(&mut self, path: &str) {
        if self.path != path {
            path.clone_into(&mut self.path);
        }
    }

    /// The request's identity; returns the note to put in its extensions.
    pub fn identified(&mut self, id: &crate::identity::Identity) -> DecisionNote {
        self.identity = Some(Who {
            key: Arc::clone(&id.key),
            source: id.source.name(),
            client: id.client_addr,
            ip_key: Arc::clone(&id.ip_key),
        });
        self.note.clone()
    }

    /// Hands the line of a response with `status` to the writer.
    pub fn finish(mut self: Box<Self>, status: u16) {
        self.status = status;
        self.latency_us = self.started.elapsed().as_micros() as u64;
        self.limits = self.note.take();
        let log = self.log.clone();
        log.send(self);
    }
}

/// The writer thread: formats each request's line into one reused buffer.
struct Writer {
    identity: LogIdentity,
    line: Vec<u8>,
    out: BufWriter<Box<dyn Write + Send>>,
}

impl Writer {
    /// Lines as they come, flushed whenever the channel runs dry for a moment.
    fn run(mut self, rx: &Receiver<Box<Pending>>) {
        loop {
            match rx.recv_timeout(FLUSH_EVERY) {
                Ok(pending) => {
                    self.format(&pending);
                    // Dropped here, on this thread: the request paid nothing for it.
                    drop(pending);
                    if self.out.write_all(&self.line).is_err() {
                        tracing::warn!(
                            "access log: write failed; lines are dropped until it works again"
                        );
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.out.flush();
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.out.flush();
                    return;
                }
            }
        }
    }

    /// `p`'s line, newline included, into `self.line`.
    fn format(&mut self, p: &Pending) {
        let hash = match &self.identity {
            LogIdentity::Plain => None,
            LogIdentity::Hash(key) => Some(key),
        };
        let (id_hash, client_hash);
        let (identity, client) = match (&p.identity, hash) {
            (Some(who), None) => (Some(Name::Text(&who.key)), Name::Ip(who.client)),
            (None, None) => (None, Name::Ip(p.peer)),
            (Some(who), Some(key)) => {
                id_hash = key.pseudonym(&who.key);
                client_hash = key.pseudonym(&who.ip_key);
                (
                    Some(Name::Text(id_hash.as_str())),
                    Name::Text(client_hash.as_str()),
                )
            }
            (None, Some(key)) => {
                client_hash = key.pseudonym(&format!("ip:{}", p.peer.to_canonical()));
                (None, Name::Text(client_hash.as_str()))
            }
        };
        let entry = Entry {
            time: p.arrived,
            identity,
            source: p.identity.as_ref().map(|w| w.source),
            client,
            method: p.method.as_str(),
            path: &p.path,
            route: p.limits.last().map(|l| l.name.as_str()),
            status: p.status,
            decision: decision(&p.limits, p.status),
            limits: &p.limits,
            remaining: p.limits.iter().map(|l| l.remaining).min(),
            latency_us: p.latency_us,
        };
        self.line.clear();
        entry.write_json(&mut self.line);
        self.line.push(b'\n');
    }
}

#[cfg(test)]
mod tests;
