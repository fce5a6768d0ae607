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
use super::fields::Fields;
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

/// Raw identity values remembered before the cache starts over (bounds its memory when
/// a log holds more distinct addresses than identities, as IPv6 /64 groups do).
const RAW_CACHE: usize = 1 << 20;

/// Distinct paths remembered with their route before the cache starts over.
const ROUTE_CACHE: usize = 1 << 16;

/// No key slot yet.
const NO_SLOT: u32 = u32::MAX;

/// Identities and keys, numbered in order of first use.
#[derive(Debug)]
pub(crate) struct Keys {
    ids: HashMap<Box<str>, u32, RandomState>,
    /// Identity names by number.
    pub(crate) names: Vec<Box<str>>,
    /// The identity of each raw value already resolved, per source (resolved identity,
    /// API key, identity header, client address): a line costs one lookup, not a
    /// resolution (an address parsed and written back, a key hashed).
    raw: [HashMap<Box<str>, u32, RandomState>; 4],
    /// Per identity × route: its key slot, or [`NO_SLOT`].
    slots: Vec<u32>,
    routes: usize,
    /// Per key slot: (identity, route).
    pub(crate) slot_keys: Vec<(u32, u32)>,
}

impl Keys {
    fn new(routes: usize) -> Self {
        Self {
            ids: HashMap::default(),
            names: Vec::new(),
            raw: Default::default(),
            slots: Vec::new(),
            routes: routes.max(1),
            slot_keys: Vec::new(),
        }
    }

    /// The raw value that decides the identity of `f` (the first of: a resolved
    /// identity, an API key, the identity header, the client address) and its source.
    fn raw<'f>(f: &'f Fields<'_>) -> Option<(usize, &'f str)> {
        [&f.identity, &f.api_key, &f.header, &f.client]
            .into_iter()
            .enumerate()
            .find_map(|(i, v)| v.as_deref().map(|v| (i, v)))
    }

    /// The identity of `f` (whose deciding value is `raw`) by `rules`; `scratch` holds
    /// its name while it is new.
    fn resolve(
        &mut self,
        rules: &IdentityRules,
        f: &Fields<'_>,
        (source, raw): (usize, &str),
        scratch: &mut String,
    ) -> u32 {
        if let Some(&id) = self.raw[source].get(raw) {
            return id;
        }
        // A value is never empty (`fields::present`), so a name always results.
        rules.resolve(f, scratch);
        let id = self.identity(scratch);
        let cache = &mut self.raw[source];
        if cache.len() >= RAW_CACHE {
            cache.clear();
        }
        cache.insert(raw.into(), id);
        id
    }

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
        let i = identity as usize * self.routes + route as usize;
        if i >= self.slots.len() {
            self.slots
                .resize((identity as usize + 1) * self.routes, NO_SLOT);
        }
        if self.slots[i] == NO_SLOT {
            self.slots[i] = self.slot_keys.len() as u32;
            self.slot_keys.push((identity, route));
        }
        self.slots[i]
    }
}

/// Reads a log into time-ordered requests.
pub(crate) struct Reader<'a> {
    lines: LineReader,
    rules: IdentityRules,
    routes: &'a Routes,
    /// The route of each distinct path seen (matching normalises and walks every
    /// template; a log repeats its paths).
    route_of: HashMap<Box<str>, Option<u32>, RandomState>,
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
            route_of: HashMap::default(),
            costs: routes.costs(),
            window,
            strict,
            pending: VecDeque::new(),
            newest: 0,
            released: 0,
            origin: None,
            first: Nanos::MAX,
            last: 0,
            keys: Keys::new(routes.len()),
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
        let mut carry = Vec::new();
        let mut batch = Vec::with_capacity(super::CHUNK);
        let mut id = String::new();
        let read = |e: std::io::Error| TraceError::Read(e.to_string());
        loop {
            let block = reader.fill_buf().map_err(read)?;
            if block.is_empty() {
                if !carry.is_empty() {
                    self.one(&carry, &mut id, &mut batch, out)?;
                }
                break;
            }
            let mut from = 0;
            // Lines whole in the block are read where they lie; one cut by the block's
            // end is carried over.
            while let Some(i) = memchr::memchr(b'\n', &block[from..]) {
                let end = from + i;
                if carry.is_empty() {
                    self.one(&block[from..end], &mut id, &mut batch, out)?;
                } else {
                    carry.extend_from_slice(&block[from..end]);
                    self.one(&carry, &mut id, &mut batch, out)?;
                    carry.clear();
                }
                from = end + 1;
            }
            carry.extend_from_slice(&block[from..]);
            let used = block.len();
            reader.consume(used);
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

    /// One line, without its newline.
    fn one(
        &mut self,
        line: &[u8],
        id: &mut String,
        batch: &mut Vec<Req>,
        out: &mut dyn FnMut(&mut Vec<Req>, &TraceInput),
    ) -> Result<(), TraceError> {
        self.input.lines += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        if let Err(why) = self.line(line, id) {
            self.malformed(why)?;
        }
        self.release(false, batch);
        if batch.len() >= super::CHUNK {
            out(batch, &self.input);
        }
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
        let Some(raw) = Keys::raw(&f) else {
            return Err("no identity (no identity, key, header or client field)".into());
        };
        if f.status == Some(429) {
            self.input.logged_429 += 1;
        }
        let Some(route) = self.route_for(path) else {
            self.input.unrouted += 1;
            return Ok(());
        };
        let cost = f.cost.unwrap_or(self.costs[route as usize]);
        let identity = self.keys.resolve(&self.rules, &f, raw, id);
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

    /// The route of `path`, remembered per distinct path.
    fn route_for(&mut self, path: &str) -> Option<u32> {
        if let Some(&route) = self.route_of.get(path) {
            return route;
        }
        let route = self.routes.route_for(path);
        if self.route_of.len() >= ROUTE_CACHE {
            self.route_of.clear();
        }
        self.route_of.insert(path.into(), route);
        route
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
