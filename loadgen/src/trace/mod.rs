//! Trace replay: real access logs through every algorithm, in virtual time.
//!
//! A log — nginx/Apache combined (or any nginx `log_format`), JSON lines (the
//! gateway's own access log by default) or CSV with a header — is read once, in
//! bounded memory, from a file, `.gz`, `.zst` or standard input. Each request's
//! identity follows the gateway's rules ([`IdentityRules`]), its route the gateway's
//! own templates and matching ([`Routes`]), and a bounded reorder window puts nearly
//! sorted lines in time order ([`reader`]). Every chosen algorithm then decides every
//! request through the simulator's own engines (`limiter-core`'s pure steps), judged
//! against the exact references as synthetic runs are; the answers — who would have
//! been throttled, on which route, when, the false positives against the exact sliding
//! log, and with a [`Grid`] the share throttled at each limit — are
//! `ratelab.results/1` with a `trace` section.
//!
//! ```
//! use loadgen::trace::{Route, Routes, ReplayOptions, replay};
//! use gateway_contract::{policy::PolicySpec, routes::Template};
//! use limiter_core::{Kind, Quota};
//!
//! let log = "\
//! 10.0.0.1 - - [01/Dec/2026:10:00:00 +0000] \"GET /api/search?q=a HTTP/1.1\" 200 5 \"-\" \"curl\"
//! 10.0.0.1 - - [01/Dec/2026:10:00:00 +0000] \"GET /api/search?q=b HTTP/1.1\" 200 5 \"-\" \"curl\"
//! 10.0.0.2 - - [01/Dec/2026:10:00:01 +0000] \"GET /api/search HTTP/1.1\" 200 5 \"-\" \"curl\"
//! ";
//! let quota = Quota::new(1, std::time::Duration::from_secs(60)).unwrap();
//! let route = Route { template: Some(Template::parse("/api/search").unwrap()), spec: PolicySpec { quota, cost: 1 } };
//! let routes = Routes::new(vec![route], None, &Kind::ALL).unwrap();
//! let out = replay(log.as_bytes(), "access.log", &routes, &ReplayOptions::default(), &mut |_| {}).unwrap();
//! let trace = out.results.trace.unwrap();
//! // 10.0.0.1's second search is over the limit, whatever the algorithm.
//! assert!(trace.algorithms.iter().all(|a| a.routes[0].rejected == 1 && a.identities_throttled == 1));
//! ```

mod answers;
mod fields;
mod format;
pub mod generate;
mod identity;
pub mod input;
mod nginx;
mod players;
mod reader;
mod replay;
mod routes;
mod sweep;
pub mod time;

pub use fields::{FieldNames, Fields};
pub use format::{Format, FormatSpec};
pub use identity::{IdentityRules, KeyLookup};
pub use nginx::{COMBINED, LogFormat, header_var};
pub use replay::{ReplayOptions, ReplayOutcome, replay};
pub use routes::{Route, Routes};
pub use sweep::Grid;

/// Requests per chunk handed to the players.
const CHUNK: usize = 8192;

/// Why a replay could not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// Reading the log failed.
    #[error("reading the log: {0}")]
    Read(String),
    /// The format options are impossible.
    #[error("log format: {0}")]
    Format(String),
    /// The routes or the sweep cannot be played.
    #[error("{0}")]
    Config(String),
    /// A malformed line, with `--strict`.
    #[error("line {line}: {message} (--strict stops at the first malformed line)")]
    Strict {
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        message: String,
    },
    /// A worker thread panicked.
    #[error("a replay worker stopped unexpectedly")]
    Worker,
}
