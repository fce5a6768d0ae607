//! The access log (`[log] access = "path"` or `"-"`): one JSON line per request — time,
//! identity, route, method, path, status, the decision and the limits checked with what
//! remains of each, latency — written by a thread of its own.
//!
//! The guarantee: logging never slows the proxy down. A request hands its line to a
//! bounded channel without waiting; when the writer falls behind (a slow disk, a full
//! pipe) the line is dropped and counted (`ratelab_gateway_access_log_lines_total
//! {outcome="dropped"}`), never queued without bound. The keys are the ones
//! `ratelab simulate --trace --format json` reads by default, so a log collected in
//! shadow mode replays against other algorithms and limits without options.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use limiter_core::{DecidedBy, Verdict};
use prometheus_client::metrics::MetricType;
use serde::Serialize;

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
    tx: SyncSender<String>,
    stats: Arc<AccessLogStats>,
}

impl AccessLog {
    /// Opens `target` (a file is created or appended to) and starts the writer thread,
    /// which ends when every [`AccessLog`] is dropped, after writing what is queued.
    pub fn open(target: &AccessLogTarget) -> io::Result<Self> {
        let out: Box<dyn Write + Send> = match target {
            AccessLogTarget::Stdout => Box::new(io::stdout()),
            AccessLogTarget::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        let (tx, rx) = sync_channel(CAPACITY);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(&rx, BufWriter::with_capacity(64 * 1024, out)))?;
        Ok(Self {
            tx,
            stats: Arc::new(AccessLogStats::default()),
        })
    }

    /// Hands one request's line to the writer, or drops it when the writer is behind.
    pub fn record(&self, entry: &Entry<'_>) {
        // Plain data with string keys: serialization cannot fail.
        let Ok(line) = serde_json::to_string(entry) else {
            return;
        };
        match self.tx.try_send(line) {
            Ok(()) => self.stats.written.inc(),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.stats.dropped.inc(),
        }
    }

    /// An access log whose writer never reads (tests of overflow).
    #[cfg(test)]
    fn detached(capacity: usize) -> (Self, Receiver<String>) {
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

/// The writer: lines as they come, flushed whenever the channel runs dry for a moment.
fn write_lines(rx: &Receiver<String>, mut out: BufWriter<Box<dyn Write + Send>>) {
    loop {
        match rx.recv_timeout(FLUSH_EVERY) {
            Ok(line) => {
                if out
                    .write_all(line.as_bytes())
                    .and_then(|()| out.write_all(b"\n"))
                    .is_err()
                {
                    tracing::warn!(
                        "access log: write failed; lines are dropped until it works again"
                    );
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = out.flush();
            }
            Err(RecvTimeoutError::Disconnected) => {
                let _ = out.flush();
                return;
            }
        }
    }
}

/// One limit a request was checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitNote {
    /// The route (template, `*` for the default, `per-ip` for the per-IP limit).
    pub name: String,
    /// Whether it admitted the request.
    pub allowed: bool,
    /// Its limit.
    pub limit: u64,
    /// What remains of it after this request.
    pub remaining: u64,
    /// Who decided: `store`, `local`, `fail-open`, `fail-closed`.
    pub decided_by: &'static str,
    /// The route is in shadow mode: a refusal was let through.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

/// The limits a request was checked against, noted by the limiter as it decides (a
/// request extension, present only when the access log is on).
#[derive(Debug, Clone, Default)]
pub struct DecisionNote(Arc<Mutex<Vec<LimitNote>>>);

impl DecisionNote {
    /// Notes one limit's verdict (`shadow`: its route lets refusals through).
    pub fn note(&self, name: &str, verdict: &Verdict, shadow: bool) {
        let decided_by = match verdict.decided_by {
            DecidedBy::Store => "store",
            DecidedBy::Local => "local",
            DecidedBy::FailOpen => "fail-open",
            DecidedBy::FailClosed => "fail-closed",
        };
        if let Ok(mut notes) = self.0.lock() {
            notes.push(LimitNote {
                name: name.to_owned(),
                allowed: verdict.decision.allowed,
                limit: verdict.decision.limit,
                remaining: verdict.decision.remaining,
                decided_by,
                shadow,
            });
        }
    }

    /// The limits noted so far.
    pub fn take(&self) -> Vec<LimitNote> {
        self.0
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
    }
}

/// The decision in one word: `allowed`, `denied`, `shadow_denied` (a shadow route's
/// limits refused and let it through), `fallback` (a store failure decided:
/// fail-open, fail-closed or the local stand-in), `rejected` (refused before any limit:
/// no usable identity, a missing API key, a cost no limit admits) or `unlimited`.
pub fn decision(limits: &[LimitNote], status: u16) -> &'static str {
    // A 4xx other than 429 is a refusal before the route's limits (an unknown or missing
    // API key is answered after the per-IP limit admitted it).
    if (400..500).contains(&status) && status != 429 {
        return "rejected";
    }
    if limits.is_empty() {
        return "unlimited";
    }
    if limits.iter().any(|l| l.decided_by != "store") {
        "fallback"
    } else if limits.iter().all(|l| l.allowed) {
        "allowed"
    } else if limits.iter().all(|l| l.allowed || l.shadow) {
        "shadow_denied"
    } else {
        "denied"
    }
}

/// One request's line.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// When it arrived, RFC 3339 UTC with nanoseconds.
    pub time: String,
    /// Whose quota it spent (`key:…`, `h:…`, `ip:…`), if it had a usable identity.
    pub identity: Option<&'a str>,
    /// Where the identity came from (`api_key`, `header`, `client_ip`).
    pub source: Option<&'a str>,
    /// The client's address (the socket peer when no identity resolved).
    pub client: Option<String>,
    /// The method.
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The route that limited it (its last limit's name), if any.
    pub route: Option<String>,
    /// The response status.
    pub status: u16,
    /// [`decision`].
    pub decision: &'static str,
    /// Every limit checked, in order.
    pub limits: Vec<LimitNote>,
    /// What remains of the tightest limit checked.
    pub remaining: Option<u64>,
    /// From arrival to response headers, microseconds.
    pub latency_us: u64,
}

/// A request whose line is written when its response starts: what was known on
/// arrival, and the limiter's [`DecisionNote`].
#[derive(Debug)]
pub struct Pending {
    log: AccessLog,
    arrived: SystemTime,
    started: std::time::Instant,
    method: http::Method,
    path: String,
    peer: std::net::IpAddr,
    identity: Option<(Arc<str>, &'static str, std::net::IpAddr)>,
    note: DecisionNote,
}

impl Pending {
    /// A request of `method` to `path` arriving now from `peer`.
    pub fn start(
        log: &AccessLog,
        method: &http::Method,
        path: &str,
        peer: std::net::IpAddr,
    ) -> Box<Self> {
        Box::new(Self {
            log: log.clone(),
            arrived: SystemTime::now(),
            started: std::time::Instant::now(),
            method: method.clone(),
            path: path.to_owned(),
            peer,
            identity: None,
            note: DecisionNote::default(),
        })
    }

    /// The request's identity; returns the note to put in its extensions.
    pub fn identified(&mut self, id: &crate::identity::Identity) -> DecisionNote {
        self.identity = Some((Arc::clone(&id.key), id.source.name(), id.client_addr));
        self.note.clone()
    }

    /// Writes the line of a response with `status`.
    pub fn finish(self, status: u16) {
        let limits = self.note.take();
        let remaining = limits.iter().map(|l| l.remaining).min();
        let entry = Entry {
            time: timestamp(self.arrived),
            identity: self.identity.as_ref().map(|i| &*i.0),
            source: self.identity.as_ref().map(|i| i.1),
            client: Some(
                self.identity
                    .as_ref()
                    .map_or(self.peer, |i| i.2)
                    .to_string(),
            ),
            method: self.method.as_str(),
            path: &self.path,
            route: limits.last().map(|l| l.name.clone()),
            status,
            decision: decision(&limits, status),
            remaining,
            limits,
            latency_us: self.started.elapsed().as_micros() as u64,
        };
        self.log.record(&entry);
    }
}

/// RFC 3339 UTC with nanoseconds.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

#[cfg(test)]
mod tests {
    use limiter_core::Decision;

    use super::*;

    fn verdict(allowed: bool, decided_by: DecidedBy) -> Verdict {
        let d = if allowed {
            Decision::allow(5, 4, Duration::from_secs(1))
        } else {
            Decision::deny(5, 0, Duration::from_secs(1), Duration::from_secs(1))
        };
        Verdict {
            decision: d,
            decided_by,
        }
    }

    #[test]
    fn decisions_in_one_word() {
        let note = DecisionNote::default();
        note.note("/a", &verdict(true, DecidedBy::Store), false);
        let limits = note.take();
        assert_eq!(decision(&limits, 200), "allowed");
        assert!(note.take().is_empty(), "taken once");
        note.note("per-ip", &verdict(true, DecidedBy::Store), false);
        note.note("/a", &verdict(false, DecidedBy::Store), false);
        assert_eq!(decision(&note.take(), 429), "denied");
        note.note("/a", &verdict(false, DecidedBy::Store), true);
        assert_eq!(decision(&note.take(), 200), "shadow_denied");
        note.note("/a", &verdict(true, DecidedBy::FailOpen), false);
        assert_eq!(decision(&note.take(), 200), "fallback");
        assert_eq!(decision(&[], 401), "rejected");
        note.note("per-ip", &verdict(true, DecidedBy::Store), false);
        assert_eq!(
            decision(&note.take(), 401),
            "rejected",
            "unknown key after the per-IP limit"
        );
        assert_eq!(decision(&[], 200), "unlimited");
    }

    #[test]
    fn lines_are_written_and_overflow_is_counted() {
        let dir = std::env::temp_dir().join(format!("ratelab-access-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.jsonl");
        let log = AccessLog::open(&AccessLogTarget::File(path.clone())).unwrap();
        let entry = Entry {
            time: timestamp(
                SystemTime::UNIX_EPOCH + Duration::from_nanos(1_796_083_200_000_000_001),
            ),
            identity: Some("key:acme"),
            source: Some("api_key"),
            client: Some("10.0.0.1".into()),
            method: "GET",
            path: "/api/orders/7",
            route: Some("/api/orders/{id}".into()),
            status: 429,
            decision: "denied",
            limits: vec![],
            remaining: Some(0),
            latency_us: 12,
        };
        for _ in 0..3 {
            log.record(&entry);
        }
        let stats = Arc::clone(&log.stats);
        drop(log);
        // The writer flushes and ends once every sender is gone.
        let mut text = String::new();
        for _ in 0..100 {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.lines().count() == 3 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(text.lines().count(), 3, "{text}");
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line["time"], "2026-12-01T00:00:00.000000001Z");
        assert_eq!(line["identity"], "key:acme");
        assert_eq!(line["decision"], "denied");
        assert_eq!((stats.written.get(), stats.dropped.get()), (3, 0));
        std::fs::remove_dir_all(&dir).unwrap();
        // A writer that is behind: lines beyond the channel are dropped and counted,
        // and recording never blocks.
        let (slow, rx) = AccessLog::detached(2);
        for _ in 0..5 {
            slow.record(&entry);
        }
        assert_eq!(
            (slow.stats().written.get(), slow.stats().dropped.get()),
            (2, 3)
        );
        drop(rx);
    }
}
