//! One keyed in-memory check, counted in instructions by callgrind.
//!
//! The set-up is `limiter-core/benches/common/cells.rs`, shared with benches/memory.rs
//! and benches/versus_governor.rs (same quotas, keys, visiting order
//! and check wrapper, `KeyedLimiter` on its own clock, governor's `keyed` limiter), minus
//! criterion: every key is inserted first, then `timed_checks` runs `ITERS` checks, and
//! only that function is collected (`valgrind --tool=callgrind
//! --toggle-collect='*timed_*'`), so the total over `ITERS` is the instructions one
//! check costs, clock read and the loop's few included. `run.sh` runs the matrix.
//!
//! Usage: `callgrind-memory ALGORITHM u64|str allowed|denied KEYS ITERS`, ALGORITHM one
//! of limiter-core's names or `governor`; `callgrind-memory limits CASE KEYS ITERS` for
//! several limits on one request against one ([`limits`]).

#[path = "../../limiter-core/benches/common/cells.rs"]
mod cells;
mod limits;

use std::hint::black_box;
use std::process::ExitCode;

use cells::{Scenario, Subject};
use limiter_core::algorithm::Visit;
use limiter_core::{Algorithm, KeyedLimiter, Kind};

/// benches/memory.rs shuffles the string keys of its largest set and takes a prefix.
const MAX_KEYS: usize = 1_000_000;

fn string_keys(n: usize) -> Vec<String> {
    let mut keys = cells::string_keys(MAX_KEYS.max(n));
    keys.truncate(n);
    keys
}

/// The collected part: `iters` checks, walking the key set round and round.
#[inline(never)]
fn timed_checks<K, S: Subject<K>>(subject: &S, keys: &[K], iters: u64) -> u64 {
    let mut i = 0;
    let mut allowed = 0;
    for _ in 0..iters {
        allowed += u64::from(black_box(subject.check(&keys[i])));
        i += 1;
        if i == keys.len() {
            i = 0;
        }
    }
    allowed
}

/// Inserts every key, then runs the collected checks; says how many were admitted, so
/// a run whose scenario did not hold (all allowed, or all denied) shows.
fn drive<K, S: Subject<K>>(subject: &S, keys: &[K], iters: u64) {
    for key in keys {
        black_box(subject.check(key));
    }
    let allowed = timed_checks(subject, keys, iters);
    eprintln!("{iters} checks, {allowed} allowed");
}

/// What to run.
#[derive(Debug, Clone, Copy)]
struct Run {
    strings: bool,
    scenario: Scenario,
    keys: usize,
    iters: u64,
}

impl Visit for Run {
    type Output = ();
    fn visit<A: Algorithm>(self) {
        let q = self.scenario.quota::<A>();
        if self.strings {
            let keys = string_keys(self.keys);
            drive(&KeyedLimiter::<Box<str>, A>::new(q), &keys, self.iters);
        } else {
            let keys = cells::u64_keys(self.keys);
            drive(&KeyedLimiter::<u64, A>::new(q), &keys, self.iters);
        }
    }
}

impl Run {
    fn governor(self) {
        if self.strings {
            let keys = string_keys(self.keys);
            drive(&cells::governor::<String>(self.scenario), &keys, self.iters);
        } else {
            let keys = cells::u64_keys(self.keys);
            drive(&cells::governor::<u64>(self.scenario), &keys, self.iters);
        }
    }
}

fn parse(args: &[String]) -> Option<(&str, Run)> {
    let [algorithm, keys, scenario, n, iters] = args else {
        return None;
    };
    let run = Run {
        strings: match keys.as_str() {
            "u64" => false,
            "str" => true,
            _ => return None,
        },
        scenario: match scenario.as_str() {
            "allowed" => Scenario::Allowed,
            "denied" => Scenario::Denied,
            _ => return None,
        },
        keys: n.parse().ok().filter(|&n| n > 0)?,
        iters: iters.parse().ok()?,
    };
    Some((algorithm.as_str(), run))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, case, n, iters] = args.as_slice()
        && mode == "limits"
    {
        let (Ok(n), Ok(iters)) = (n.parse::<usize>(), iters.parse::<u64>()) else {
            eprintln!("usage: callgrind-memory limits CASE KEYS ITERS");
            return ExitCode::from(2);
        };
        if n == 0 || !limits::run(case, n, iters) {
            let cases: Vec<&str> = limits::CASES.iter().map(|(c, _)| *c).collect();
            eprintln!("limits: KEYS > 0 and CASE one of {}", cases.join(", "));
            return ExitCode::from(2);
        }
        return ExitCode::SUCCESS;
    }
    let Some((algorithm, run)) = parse(&args) else {
        eprintln!("usage: callgrind-memory ALGORITHM u64|str allowed|denied KEYS ITERS");
        return ExitCode::from(2);
    };
    if algorithm == "governor" {
        run.governor();
    } else {
        match algorithm.parse::<Kind>() {
            Ok(kind) => kind.visit(run),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        }
    }
    ExitCode::SUCCESS
}
