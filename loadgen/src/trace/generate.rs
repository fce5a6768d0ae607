//! Test data without downloads: a workload's arrivals written as an access log, in
//! any of the three formats, deterministically (same workload and seed, same bytes).
//!
//! The log starts at [`START`] (a UTC midnight, so the replay's virtual time equals
//! the simulator's). Combined lines name users by client address (`10.a.b.c` from the
//! user's number) and carry whole seconds, as servers write them; JSON lines and CSV
//! name users by identity (`user-N`) and carry nanoseconds (RFC 3339), so their replay
//! reproduces the synthetic run's decisions exactly.

use std::io::{self, Write};

use gateway_contract::policy::PolicySpec;
use limiter_core::{Kind, Nanos};

use super::format::Format;
use super::routes::{Route, Routes};
use super::time;
use crate::arrivals;
use crate::drivers::http::plan::EndpointRequest;
use crate::workload::Workload;

/// Where generated logs start: 2026-12-01T00:00:00Z.
pub const START: Nanos = 1_796_083_200_000_000_000;

/// User agents of generated combined lines, one per user by its number: real browsers'
/// and clients' strings, so lines are as long as real ones (~190 bytes).
const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "python-requests/2.32.3",
    "okhttp/4.12.0",
];

/// A user's client address in combined logs: `10.a.b.c` from its number.
pub fn client_ip(user: u32) -> String {
    let u = user + 1;
    format!("10.{}.{}.{}", (u >> 16) & 255, (u >> 8) & 255, u & 255)
}

/// A user's identity in JSON lines and CSV.
pub fn identity(user: u32) -> String {
    format!("user-{user}")
}

/// Writes the arrivals of `workload` for `seed` as a log in `format`; returns the
/// number of lines written (the header row of CSV not counted).
pub fn generate(
    workload: &Workload,
    seed: u64,
    format: Format,
    out: &mut dyn Write,
) -> io::Result<u64> {
    let requests: Vec<EndpointRequest> = workload
        .endpoints
        .iter()
        .map(|e| EndpointRequest::parse(&e.path))
        .collect::<Result<_, _>>()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let arrivals = arrivals::generate(workload, seed);
    let mut out = io::BufWriter::with_capacity(1 << 20, out);
    if format == Format::Csv {
        writeln!(out, "time,identity,client,method,path,status")?;
    }
    let mut line = String::with_capacity(256);
    for (n, a) in arrivals.list.iter().enumerate() {
        let req = &requests[a.endpoint as usize];
        let path = req.path(n as u64);
        let at = START + a.at;
        let method = req.method.as_str();
        line.clear();
        use std::fmt::Write as _;
        // Sizes vary a little, as real bodies do; deterministic from the position.
        let bytes = 200 + (n * 7919) % 1800;
        let _ = match format {
            Format::Combined => write!(
                line,
                "{} - - [{}] \"{method} {path} HTTP/1.1\" 200 {bytes} \"https://app.example.com/\" \"{}\"",
                client_ip(a.user),
                time::clf_utc(at),
                AGENTS[a.user as usize % AGENTS.len()]
            ),
            Format::Json => write!(
                line,
                "{{\"time\":\"{}\",\"identity\":\"{}\",\"client\":\"{}\",\"method\":\"{method}\",\"path\":\"{path}\",\"status\":200}}",
                time::rfc3339(at),
                identity(a.user),
                client_ip(a.user)
            ),
            Format::Csv => write!(
                line,
                "{},{},{},{method},{path},200",
                time::rfc3339(at),
                identity(a.user),
                client_ip(a.user)
            ),
        };
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    Ok(arrivals.list.len() as u64)
}

impl Routes {
    /// The routes of a workload's endpoints (their templates, quotas and costs, burst
    /// included), for replaying a log against the workload's policies.
    pub fn from_workload(workload: &Workload, kinds: &[Kind]) -> Result<Self, String> {
        let routes = workload
            .endpoints
            .iter()
            .map(|e| {
                let req = EndpointRequest::parse(&e.path).map_err(|err| err.to_string())?;
                Ok(Route {
                    template: Some(req.template),
                    spec: PolicySpec {
                        quota: e.quota,
                        cost: e.cost,
                    },
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Routes::new(routes, None, kinds)
    }
}
