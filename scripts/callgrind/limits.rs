//! Several limits on one request in memory against one limit, counted in instructions:
//! `limiter-core/benches/limits.rs`'s cases (same quotas, keys and visiting order),
//! minus criterion. Every key is inserted first, then `timed_limits` runs `ITERS`
//! admitted checks and only that function is collected (`run.sh` toggles collection on
//! `*timed_*`), so the total over `ITERS` is one check's instructions.
//!
//! Usage: `callgrind-memory limits CASE KEYS ITERS`, CASE one of [`CASES`].

use std::hint::black_box;
use std::time::Duration;

use limiter_core::limits::{Limit, LimitSet, MultiLimiter};
use limiter_core::{Kind, MonotonicClock, Policy, Quota, RateLimiter};

/// The cases: `one/gcra` is the single-limit fast path, the rest [`MultiLimiter`]s.
pub const CASES: [(&str, &[Kind]); 5] = [
    ("one/gcra", &[Kind::Gcra]),
    ("set1/gcra", &[Kind::Gcra]),
    (
        "set2/gcra+sliding-window",
        &[Kind::Gcra, Kind::SlidingWindow],
    ),
    (
        "set2/token-bucket+fixed-window",
        &[Kind::TokenBucket, Kind::FixedWindow],
    ),
    (
        "set3/gcra+sliding-window+fixed-window",
        &[Kind::Gcra, Kind::SlidingWindow, Kind::FixedWindow],
    ),
];

/// benches/limits.rs's policy of `kind` that no run exhausts.
fn roomy(kind: Kind) -> Policy {
    let q = if kind.is_bucket() {
        Quota::new(10, Duration::from_secs(1)).and_then(|q| q.with_burst(1_000_000_000))
    } else {
        Quota::new(4_000_000_000, Duration::from_secs(3600))
    };
    Policy::new(kind, q.unwrap_or_else(|e| panic!("bench quota: {e}")))
}

/// Something that decides one request for a string key; true when admitted.
trait Decides {
    fn decide(&self, key: &str) -> bool;
}

impl Decides for RateLimiter {
    #[inline]
    fn decide(&self, key: &str) -> bool {
        matches!(black_box(self.decide_now(key, 1)), Some(Ok(v)) if v.decision.allowed)
    }
}

impl Decides for MultiLimiter {
    #[inline]
    fn decide(&self, key: &str) -> bool {
        matches!(black_box(self.decide_now(key, 1)), Some(Ok(v)) if v.decision.allowed)
    }
}

/// The collected part: `iters` checks, walking the keys round and round.
#[inline(never)]
fn timed_limits<D: Decides>(subject: &D, keys: &[String], iters: u64) -> u64 {
    let mut i = 0;
    let mut allowed = 0;
    for _ in 0..iters {
        allowed += u64::from(black_box(subject.decide(&keys[i])));
        i += 1;
        if i == keys.len() {
            i = 0;
        }
    }
    allowed
}

fn drive<D: Decides>(subject: &D, keys: &[String], iters: u64) {
    for key in keys {
        black_box(subject.decide(key));
    }
    let allowed = timed_limits(subject, keys, iters);
    eprintln!("{iters} checks, {allowed} allowed");
}

/// Runs case `name` on `n` keys (`user:<n>`, benches/limits.rs's); false when there is
/// no such case.
pub fn run(name: &str, n: usize, iters: u64) -> bool {
    let Some(&(_, kinds)) = CASES.iter().find(|(c, _)| *c == name) else {
        return false;
    };
    let keys: Vec<String> = (0..n).map(|i| format!("user:{}", 1_000_000 + i)).collect();
    if name.starts_with("one/") {
        let one = RateLimiter::memory(roomy(kinds[0]), MonotonicClock::new(), 1_000_000);
        drive(&one, &keys, iters);
    } else {
        let limits = kinds
            .iter()
            .map(|&k| Limit::new(k.name(), k.name(), roomy(k), 1_000_000))
            .collect();
        let set = LimitSet::new(limits).unwrap_or_else(|e| panic!("bench set: {e}"));
        drive(
            &MultiLimiter::memory(set, MonotonicClock::new()),
            &keys,
            iters,
        );
    }
    true
}
