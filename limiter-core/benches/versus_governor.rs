//! The governor ratio, measured so that one run shows it: ratelab's keyed token bucket,
//! GCRA and bucketed window beside governor's keyed limiter, 10,000 keys, one thread,
//! `u64` and string keys, allowed and denied — the cells of issue 12.8 (≤ 0.8× governor).
//!
//! `benches/memory.rs` times each limiter in its own criterion block, one after the
//! other: on a shared VM the host's state drifts between blocks (frequency, a
//! neighbour's load, what the other vCPU does), and the same cell moved by 0.3× from
//! one run to the next. Here every subject of a cell is timed in short runs,
//! interleaved, many rounds:
//! - one key set and visiting order for all (`benches/common/cells.rs`, as in
//!   memory.rs and the callgrind harness), every key inserted and then `WARM` passes
//!   made before the first timed run, so tables, caches and branch predictors are warm
//!   for every subject alike;
//! - each round times every subject for `CHECKS` checks from the same first key, in a
//!   rotating order that reverses every other round, so no subject always runs first
//!   or after the same neighbour;
//! - each subject's time is compared with governor's **in the same round**; the
//!   figure is the median of those paired ratios (drift between rounds cancels), with
//!   their interquartile range to show how settled it is, beside each subject's
//!   median and fastest time;
//! - the whole answer of each check goes through `black_box` on both sides (ours a
//!   `Decision`, governor's a `NotUntil`), and each side hashes as it ships (ours
//!   foldhash, governor std's SipHash); `governor+foldhash` is governor given our
//!   hasher, to show how much of the gap is the hasher.
//!
//! Run: `cargo bench -p limiter-core --bench versus_governor` (about 2 minutes).
//! Environment: `ROUNDS` (default 61), `CHECKS` per timed run (default 20,000),
//! `KEYS` (default 10,000), `WARM` passes (default 5).

#[path = "common/cells.rs"]
mod cells;

use std::hint::black_box;
use std::time::Instant;

use cells::{Scenario, Subject, ours_str, ours_u64, string_keys, u64_keys};
use limiter_core::algorithm::{BucketedWindow, Gcra, TokenBucket};

/// Reads a positive number from the environment, else `default`.
fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// How a cell is measured.
#[derive(Debug, Clone, Copy)]
struct Plan {
    rounds: usize,
    checks: u64,
    warm: u64,
}

/// `checks` checks from the first key on, wrapping around; nanoseconds per check and
/// how many were admitted.
#[inline(never)]
fn timed<K, S: Subject<K>>(subject: &S, keys: &[K], checks: u64) -> (f64, u64) {
    let mut i = 0;
    let mut allowed = 0;
    let start = Instant::now();
    for _ in 0..checks {
        allowed += u64::from(black_box(subject.check(&keys[i])));
        i += 1;
        if i == keys.len() {
            i = 0;
        }
    }
    (start.elapsed().as_nanos() as f64 / checks as f64, allowed)
}

/// Times `checks` checks over the keys: nanoseconds per check, and how many admitted.
type TimedRun<'a, K> = Box<dyn Fn(&[K], u64) -> (f64, u64) + 'a>;

/// One subject of a cell, its type erased once per timed run (the loop inside is
/// monomorphised).
struct Entry<'a, K> {
    name: &'static str,
    run: TimedRun<'a, K>,
}

fn entry<'a, K: 'a, S: Subject<K> + 'a>(name: &'static str, subject: S) -> Entry<'a, K> {
    Entry {
        name,
        run: Box::new(move |keys, checks| timed(&subject, keys, checks)),
    }
}

/// The `q`-quantile of sorted `v` (nearest rank).
fn quantile(v: &[f64], q: f64) -> f64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Times every entry of one cell, interleaved, and prints its table. The last entry
/// named `governor` is the reference.
fn cell<K>(title: &str, keys: &[K], scenario: Scenario, entries: &[Entry<'_, K>], plan: Plan) {
    let n = entries.len();
    let reference = entries
        .iter()
        .position(|e| e.name == "governor")
        .unwrap_or(n - 1);
    for e in entries {
        (e.run)(keys, keys.len() as u64 * plan.warm);
    }
    let mut times = vec![Vec::with_capacity(plan.rounds); n];
    let mut wrong = vec![0u64; n];
    for round in 0..plan.rounds {
        let mut order: Vec<usize> = (0..n).map(|i| (i + round) % n).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (ns, allowed) = (entries[i].run)(keys, plan.checks);
            times[i].push(ns);
            let expected = if scenario == Scenario::Allowed {
                plan.checks
            } else {
                0
            };
            wrong[i] += allowed.abs_diff(expected);
        }
    }
    println!("\n### {title}\n");
    println!(
        "| limiter | median ns/check | fastest | ÷ governor, median of rounds | interquartile | fastest ÷ fastest |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let fastest = |t: &[f64]| t.iter().copied().fold(f64::INFINITY, f64::min);
    let gov_fastest = fastest(&times[reference]);
    for (i, e) in entries.iter().enumerate() {
        let mut ratios: Vec<f64> = times[i]
            .iter()
            .zip(&times[reference])
            .map(|(a, g)| a / g)
            .collect();
        ratios.sort_by(f64::total_cmp);
        let mut sorted = times[i].clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "| {} | {:.1} | {:.1} | {:.2} | {:.2}–{:.2} | {:.2} |",
            e.name,
            quantile(&sorted, 0.5),
            sorted[0],
            quantile(&ratios, 0.5),
            quantile(&ratios, 0.25),
            quantile(&ratios, 0.75),
            fastest(&times[i]) / gov_fastest,
        );
        if wrong[i] > 0 {
            println!(
                "\n**{}: {} checks did not go as the `{}` scenario says: the figures are not comparable.**",
                e.name,
                wrong[i],
                scenario.name()
            );
        }
    }
}

fn cpu() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn main() {
    // `cargo test --benches` runs this too: one short round then.
    let quick = std::env::args().any(|a| a == "--test");
    let plan = Plan {
        rounds: if quick { 1 } else { env("ROUNDS", 61) as usize },
        checks: if quick { 1_000 } else { env("CHECKS", 20_000) },
        warm: if quick { 1 } else { env("WARM", 5) },
    };
    let n = env("KEYS", 10_000) as usize;
    println!(
        "# Keyed checks beside governor, interleaved ({}, {n} keys, 1 thread, {} rounds of {} checks per limiter, {} warm passes)",
        cpu(),
        plan.rounds,
        plan.checks,
        plan.warm
    );
    let u64_keys = u64_keys(n);
    for scenario in Scenario::ALL {
        let entries = [
            entry("token-bucket", ours_u64::<TokenBucket>(scenario)),
            entry("gcra", ours_u64::<Gcra>(scenario)),
            entry("bucketed-window", ours_u64::<BucketedWindow>(scenario)),
            entry(
                "governor+foldhash",
                cells::governor_foldhash::<u64>(scenario),
            ),
            entry("governor", cells::governor::<u64>(scenario)),
        ];
        let title = format!("u64 keys, {}", scenario.name());
        cell(&title, &u64_keys, scenario, &entries, plan);
    }
    let string_keys = string_keys(n);
    for scenario in Scenario::ALL {
        let entries = [
            entry("token-bucket", ours_str::<TokenBucket>(scenario)),
            entry("gcra", ours_str::<Gcra>(scenario)),
            entry("bucketed-window", ours_str::<BucketedWindow>(scenario)),
            entry(
                "governor+foldhash",
                cells::governor_foldhash::<String>(scenario),
            ),
            entry("governor", cells::governor::<String>(scenario)),
        ];
        let title = format!("string keys, {}", scenario.name());
        cell(&title, &string_keys, scenario, &entries, plan);
    }
}
