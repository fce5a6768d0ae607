//! From log lines to replayable requests: each line parsed, its identity resolved and
//! interned, its route matched, then put in time order by a bounded reorder window.
//!
//! The guarantees: a line that cannot be read is counted (the first few kept with
//! their line numbers) and never stops the run unless strict; a request older than the
//! window allows is replayed at the window's edge and counted as late, never dropped;
//! requests of equal time keep their order in the log. Memory: the identities, the
//! keys, and the requests inside the window.

use std::collections::{HashMap, VecDeque};
use std::io::BufRead;

use foldhash::fast::RandomState;
use limiter_core::Nanos;
use results::TraceInput;

use super::TraceError;
use super::format::LineReader;
use super::identity::IdentityRules;
use super::players::Req;
use super::routes::Routes;
use super::time;

/// Malformed or late lines shown by line number.
const EXAMPLES: usize = 5;

/// A request waiting in the reorder window.
#[derive(Debug, Clone, Copy)]
struct Pending {
    at: Nanos,
    identity: u32,
    route: u32,
    cost: u32,
}

/// Identities and keys, numbered in order of first use.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    ids: HashMap<Box<str>, u32, RandomState>,
    /// Identity names by number.
    pub(crate) names: Vec<Box<str>>,
    slots: HashMap<(u32, u32), u32, RandomState>,
    /// Per key slot: (identity, route).
    pub(crate) slot_keys: Vec<(u32, u32)>,
}

impl Keys {
    fn identity(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(name.into(), id);
        self.names.push(name.into());
        id
    }

    fn slot(&mut self, identity: u32, route: u32) -> u32 {
        let next = self.slot_keys.len() as u32;
        let slot = *self.slots.entry((identity, route)).or_insert(next);
        if slot == next {
            self.slot_keys.push((identity, route));
        }
        slot
    }
}

/// Reads a log into time-ordered requests.
pub(crate) struct Reader<'a> {
    lines: LineReader,
    rules: IdentityRules,
    routes: &'a Routes,
    costs: Vec<u64>,
    window: Nanos,
    strict: bool,
    pending: VecDeque<Pending>,
    newest: Nanos,
    released: Nanos,
    origin: Option<Nanos>,
    first: Nanos,
    last: Nanos,
    /// Identities and keys.
    pub(crate) keys: Keys,
    /// What was read so far.
    pub(crate) input: TraceInput,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(
        lines: LineReader,
        rules: IdentityRules,
        routes: &'a Routes,
        window: Nanos,
        strict: bool,
    ) -> Self {
        Self {
            lines,
            rules,
            routes,
            costs: routes.costs(),
            window,
            strict,
            pending: VecDeque::new(),
            newest: 0,
            released: 0,
            origin: None,
            first: Nanos::MAX,
            last: 0,
            keys: Keys::default(),
            input: TraceInput {
                reorder_window_s: window as f64 / 1e9,
                ..TraceInput::default()
            },
        }
    }

    /// Reads every line of `reader`, handing time-ordered requests to `out` in
    /// batches as they leave the window.
    pub(crate) fn read_all(
        &mut self,
        mut reader: impl BufRead,
        out: &mut dyn FnMut(&mut Vec<Req>, &TraceInput),
    ) -> Result<(), TraceError> {
        let mut buf = Vec::with_capacity(4096);
        let mut batch = Vec::with_capacity(super::CHUNK);
        let mut id = String::new();
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| TraceError::Read(e.to_string()))?;
            if n == 0 {
                break;
            }
            self.input.lines += 1;
            let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if let Err(why) = self.line(line, &mut id) {
                self.malformed(why)?;
            }
            self.release(false, &mut batch);
            if batch.len() >= super::CHUNK {
                out(&mut batch, &self.input);
            }
        }
        self.release(true, &mut batch);
        if !batch.is_empty() {
            out(&mut batch, &self.input);
        }
        if self.first <= self.last {
            self.input.first = time::rfc3339(self.first);
            self.input.last = time::rfc3339(self.last);
        }
        self.input.origin = self.origin.map(time::rfc3339).unwrap_or_default();
        self.input.identities = self.keys.names.len() as u64;
        Ok(())
    }

    fn malformed(&mut self, why: String) -> Result<(), TraceError> {
        let line = self.input.lines;
        if self.strict {
            return Err(TraceError::Strict { line, message: why });
        }
        self.input.malformed += 1;
        if self.input.malformed_examples.len() < EXAMPLES {
            self.input
                .malformed_examples
                .push(format!("line {line}: {why}"));
        }
        Ok(())
    }

    /// Parses one line and puts its request in the window.
    fn line(&mut self, raw: &[u8], id: &mut String) -> Result<(), String> {
        let text = std::str::from_utf8(raw).map_err(|_| "not UTF-8".to_owned())?;
        let Some(f) = self.lines.read(text)? else {
            return Ok(());
        };
        let at = f.time.ok_or("no time")?;
        let path = f.path.as_deref().ok_or("no path")?;
        if !self.rules.resolve(&f, id) {
            return Err("no identity (no identity, key, header or client field)".into());
        }
        if f.status == Some(429) {
            self.input.logged_429 += 1;
        }
        let Some(route) = self.routes.route_for(path) else {
            self.input.unrouted += 1;
            return Ok(());
        };
        let cost = f.cost.unwrap_or(self.costs[route as usize]);
        let identity = self.keys.identity(id);
        self.input.requests += 1;
        self.first = self.first.min(at);
        self.last = self.last.max(at);
        let origin = *self.origin.get_or_insert(time::midnight(at));
        let mut at = at.saturating_sub(origin);
        if at < self.released {
            self.late(at);
            at = self.released;
        }
        let cost = u32::try_from(cost).unwrap_or(u32::MAX);
        let p = Pending {
            at,
            identity,
            route,
            cost,
        };
        // Nearly sorted: usually the back; equal times keep the log's order.
        let i = self.pending.partition_point(|q| q.at <= at);
        self.pending.insert(i, p);
        self.newest = self.newest.max(at);
        Ok(())
    }

    fn late(&mut self, at: Nanos) {
        self.input.late += 1;
        if self.input.late_examples.len() < EXAMPLES {
            let behind = (self.released - at) as f64 / 1e9;
            self.input.late_examples.push(format!(
                "line {}: {behind:.3} s behind the reorder window",
                self.input.lines
            ));
        }
    }

    /// Moves requests older than the window (all of them at the end) to `batch`.
    fn release(&mut self, all: bool, batch: &mut Vec<Req>) {
        let edge = self.newest.saturating_sub(self.window);
        while let Some(p) = self.pending.front() {
            if !all && p.at > edge {
                break;
            }
            let p = *p;
            self.pending.pop_front();
            self.released = p.at;
            let slot = self.keys.slot(p.identity, p.route);
            batch.push(Req {
                at: p.at,
                slot,
                identity: p.identity,
                route: p.route,
                cost: p.cost,
            });
        }
    }
}
