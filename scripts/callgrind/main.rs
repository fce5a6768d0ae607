//! One keyed in-memory check, counted in instructions by callgrind.
//!
//! The set-up is `limiter-core/benches/memory.rs`'s (same quotas, keys, visiting order
//! and check wrapper, `KeyedLimiter` on its own clock, governor's `keyed` limiter), minus
//! criterion: every key is inserted first, then `timed_checks` runs `ITERS` checks, and
//! only that function is collected (`valgrind --tool=callgrind
//! --toggle-collect='*timed_checks*'`), so the total over `ITERS` is the instructions one
//! check costs, clock read and the loop's few included. `run.sh` runs the matrix.
//!
//! Usage: `callgrind-memory ALGORITHM u64|str allowed|denied KEYS ITERS`, ALGORITHM one
//! of limiter-core's names or `governor`; `callgrind-memory limits CASE KEYS ITERS` for
//! several limits on one request against one ([`limits`]).

mod limits;

use std::hint::black_box;
use std::num::NonZeroU32;
use std::process::ExitCode;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota as GovQuota};
use limiter_core::algorithm::Visit;
use limiter_core::{Algorithm, KeyedLimiter, Kind, Quota};

const ROUTES: [&str; 4] = ["/api/orders", "/api/users", "/api/search", "/api/cart"];
/// benches/memory.rs shuffles the string keys of its largest set and takes a prefix.
const MAX_KEYS: usize = 1_000_000;

/// Whether the timed checks are admitted or denied (benches/memory.rs's quotas).
#[derive(Debug, Clone, Copy)]
enum Scenario {
    Allowed,
    Denied,
}

impl Scenario {
    fn quota<A: Algorithm>(self) -> Quota {
        let hour = Duration::from_secs(3600);
        let q = match self {
            Scenario::Denied => Quota::new(1, hour),
            Scenario::Allowed if A::KIND.is_bucket() => {
                Quota::new(10, Duration::from_secs(1)).and_then(|q| q.with_burst(1_000_000_000))
            }
            Scenario::Allowed if A::KIND == Kind::SlidingLog => {
                Quota::new(4_000_000_000, Duration::from_millis(250))
            }
            Scenario::Allowed => Quota::new(4_000_000_000, hour),
        };
        q.unwrap_or_else(|e| panic!("bench quota: {e}"))
    }

    fn governor_quota(self) -> GovQuota {
        let (period, burst) = match self {
            Scenario::Denied => (Duration::from_secs(3600), NonZeroU32::MIN),
            Scenario::Allowed => (
                Duration::from_millis(100),
                NonZeroU32::new(1_000_000_000).unwrap_or(NonZeroU32::MAX),
            ),
        };
        GovQuota::with_period(period)
            .unwrap_or_else(|| panic!("bench quota"))
            .allow_burst(burst)
    }
}

/// Something that decides one request for a key of type `K`.
///
/// Each side's whole answer goes through `black_box` before it is read (ours a
/// `Result<Decision>`, governor's a `Result<(), NotUntil>`), so neither compiler can
/// drop the work a caller who reads the answer pays for (our `remaining` and
/// durations, governor's `NotUntil`) because only `allowed` is looked at here.
trait Subject<K> {
    fn check(&self, key: &K) -> bool;
}

impl<A: Algorithm> Subject<u64> for KeyedLimiter<u64, A> {
    #[inline]
    fn check(&self, key: &u64) -> bool {
        matches!(black_box(KeyedLimiter::check(self, key, 1)), Ok(d) if d.allowed)
    }
}

impl<A: Algorithm> Subject<String> for KeyedLimiter<Box<str>, A> {
    #[inline]
    fn check(&self, key: &String) -> bool {
        matches!(black_box(KeyedLimiter::check(self, key.as_str(), 1)), Ok(d) if d.allowed)
    }
}

impl<K: Clone + Eq + std::hash::Hash> Subject<K> for DefaultKeyedRateLimiter<K> {
    #[inline]
    fn check(&self, key: &K) -> bool {
        black_box(self.check_key(key)).is_ok()
    }
}

/// SplitMix64: a bijection on `u64`, so distinct inputs give distinct keys.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Fisher–Yates with benches/memory.rs's fixed seed.
fn shuffle<T>(v: &mut [T]) {
    let mut state = 42u64;
    for i in (1..v.len()).rev() {
        state = splitmix(state);
        let j = (state % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

fn u64_keys(n: usize) -> Vec<u64> {
    (0..n as u64).map(splitmix).collect()
}

fn string_keys(n: usize) -> Vec<String> {
    let mut ids: Vec<usize> = (0..MAX_KEYS.max(n)).collect();
    shuffle(&mut ids);
    ids.into_iter()
        .take(n)
        .map(|i| {
            format!(
                "user:{}:{}",
                1_000_000 + i / ROUTES.len(),
                ROUTES[i % ROUTES.len()]
            )
        })
        .collect()
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
            let keys = u64_keys(self.keys);
            drive(&KeyedLimiter::<u64, A>::new(q), &keys, self.iters);
        }
    }
}

impl Run {
    fn governor(self) {
        let q = self.scenario.governor_quota();
        if self.strings {
            let keys = string_keys(self.keys);
            drive(
                &DefaultKeyedRateLimiter::<String>::keyed(q),
                &keys,
                self.iters,
            );
        } else {
            let keys = u64_keys(self.keys);
            drive(&DefaultKeyedRateLimiter::<u64>::keyed(q), &keys, self.iters);
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
