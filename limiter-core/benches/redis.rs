//! The Redis store, measured beside its references in one run, on one connection, on
//! a `redis-server` started for the run (`cargo bench -p limiter-core --features redis
//! --bench redis`; `BENCH_SECS` sets each measurement's length, default 1; each figure
//! is the median, or for CPU the least, of the rounds taken in turns).
//!
//! 1. Throughput: decisions/s through `RedisLimiter::check` at concurrency 1, 16 and
//!    64, beside raw `EVALSHA` of the same script with the same arguments and `PING`,
//!    over the same multiplexed connection.
//! 2. Redis CPU per call (`INFO commandstats`, `usec_per_call` of `EVALSHA`) for each
//!    algorithm's script, beside a classic token-bucket script (HMGET of two fields,
//!    float refill, HMSET, PEXPIRE), `TIME` alone and `return 1`; the buckets also with
//!    busy keys (live between calls) beside the classic script on the same policy.
//!
//! Prints Markdown tables (the ones in notes/redis-readme.md).

// A benchmark: any failure should stop it loudly.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use limiter_core::store::redis::{RedisLimiter, RedisOptions, RedisStore};
use limiter_core::{Kind, Limiter, Policy, Quota};
use redis::{Cmd, Value};
use testkit::RedisServer;

/// Distinct users per task: every call reads and writes a key, as a gateway does.
const KEYS_PER_TASK: usize = 256;

/// The usual token bucket in Lua: two hash fields, a float refill, four commands.
const CLASSIC: &str = r"
local t = redis.call('TIME')
local now = t[1] + t[2] / 1000000
local capacity, rate, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(v[1]) or capacity
local ts = tonumber(v[2]) or now
tokens = math.min(capacity, tokens + (now - ts) * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HMSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000))
return {allowed, math.floor(tokens)}
";
const TIME_ONLY: &str = "redis.call('TIME') return 1";
const RETURN_1: &str = "return 1";

fn secs() -> Duration {
    let s = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    Duration::from_secs_f64(s)
}

/// A generous policy: nearly every call is admitted, so every call writes.
fn policy(kind: Kind) -> Policy {
    Policy::new(
        kind,
        Quota::per_second(1_000).unwrap().with_burst(1_000).unwrap(),
    )
}

fn key(task: usize, i: usize) -> String {
    format!(
        "user:{}:/api/orders/{{id}}",
        task * KEYS_PER_TASK + i % KEYS_PER_TASK
    )
}

/// Runs `op(task, i)` from `tasks` tasks for `secs()`; returns operations per second.
async fn rate<F, Fut>(tasks: usize, op: F) -> f64
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    // Warm up, then measure.
    for phase in 0..2 {
        stop.store(false, Ordering::Relaxed);
        done.store(0, Ordering::Relaxed);
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let (op, stop, done) = (op.clone(), stop.clone(), done.clone());
                tokio::spawn(async move {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        op(t, i).await;
                        i += 1;
                    }
                    done.fetch_add(i as u64, Ordering::Relaxed);
                })
            })
            .collect();
        let start = Instant::now();
        tokio::time::sleep(if phase == 0 { secs() / 4 } else { secs() }).await;
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.await.unwrap();
        }
        if phase == 1 {
            return done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
        }
    }
    unreachable!()
}

/// Rounds of the Redis CPU comparison (pairs with the classic script, in turns).
const CPU_ROUNDS: usize = 11;

/// The median of `ROUNDS` measurements, taken in turns with the other variants so
/// that a busy moment on the machine hits all of them alike.
const ROUNDS: usize = 7;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn throughput(store: &RedisStore) {
    println!("| algorithm | tasks | RedisLimiter::check | raw EVALSHA | ratio | PING |");
    println!("|---|---:|---:|---:|---:|---:|");
    for kind in [Kind::TokenBucket, Kind::Gcra] {
        let limiter = Arc::new(store.limiter(policy(kind)).expect("an exact-mode limiter"));
        for tasks in [1, 16, 64] {
            // The same EVALSHA calls, built once, sent bare.
            let cmds: Arc<Vec<Vec<Cmd>>> = Arc::new(
                (0..tasks)
                    .map(|t| {
                        (0..KEYS_PER_TASK)
                            .map(|i| limiter.command(&key(t, i), 1))
                            .collect()
                    })
                    .collect(),
            );
            // The callers' identities, formed once like the commands (the caller's work,
            // not the limiter's).
            let users: Arc<Vec<Vec<String>>> = Arc::new(
                (0..tasks)
                    .map(|t| (0..KEYS_PER_TASK).map(|i| key(t, i)).collect())
                    .collect(),
            );
            let (mut ours, mut raw, mut ping) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..ROUNDS {
                // Ours and raw back to back, in alternating order, so that neither is
                // always the one measured first after the previous round's PING storm.
                let ours_first = round % 2 == 0;
                for ours_now in [ours_first, !ours_first] {
                    if ours_now {
                        let (l, users) = (limiter.clone(), users.clone());
                        ours.push(
                            rate(tasks, move |t, i| {
                                let (l, users) = (l.clone(), users.clone());
                                async move {
                                    l.check(&users[t][i % KEYS_PER_TASK], 1).await.unwrap();
                                }
                            })
                            .await,
                        );
                    } else {
                        let (cmds, conn) = (cmds.clone(), store.connection());
                        raw.push(
                            rate(tasks, move |t, i| {
                                let (cmds, mut conn) = (cmds.clone(), conn.clone());
                                async move {
                                    let c = &cmds[t][i % KEYS_PER_TASK];
                                    let _: Value = c.query_async(&mut conn).await.unwrap();
                                }
                            })
                            .await,
                        );
                    }
                }
                let conn = store.connection();
                ping.push(
                    rate(tasks, move |_, _| {
                        let mut conn = conn.clone();
                        async move {
                            let _: Value = redis::cmd("PING").query_async(&mut conn).await.unwrap();
                        }
                    })
                    .await,
                );
            }
            // Each round's pair ran back to back: the median of their ratios cancels
            // the machine's slow drifts better than a ratio of medians.
            let ratio = median(ours.iter().zip(&raw).map(|(o, r)| o / r).collect());
            let (ours, raw, ping) = (median(ours), median(raw), median(ping));
            println!("| {kind} | {tasks} | {ours:.0}/s | {raw:.0}/s | {ratio:.2} | {ping:.0}/s |");
        }
    }
    let m = store.metrics();
    assert_eq!(m.errors, 0, "{m:?}");
}

/// Runs `cmds` (round robin) from 16 tasks for a while after `CONFIG RESETSTAT`;
/// returns Redis's `usec_per_call` for `EVALSHA`.
async fn cpu_per_call(redis: &RedisServer, store: &RedisStore, cmds: Vec<Cmd>) -> f64 {
    let cmds = Arc::new(cmds);
    let conn = store.connection();
    redis.cmd(&["CONFIG", "RESETSTAT"]).unwrap();
    rate(16, move |t, i| {
        let (cmds, mut conn) = (cmds.clone(), conn.clone());
        async move {
            let c = &cmds[(t * 7919 + i) % cmds.len()];
            let _: Value = c.query_async(&mut conn).await.unwrap();
        }
    })
    .await;
    let stats = redis.cmd(&["INFO", "commandstats"]).unwrap();
    let line = stats
        .lines()
        .find(|l| l.starts_with("cmdstat_evalsha:"))
        .unwrap();
    let usec = line
        .split(',')
        .find_map(|f| f.strip_prefix("usec_per_call="))
        .unwrap();
    usec.parse().unwrap()
}

fn script_cmds(script: &str, prefix: &str, args: &[&str]) -> Vec<Cmd> {
    let sha = redis::Script::new(script).get_hash().to_owned();
    (0..16 * KEYS_PER_TASK)
        .map(|i| {
            let mut c = redis::cmd("EVALSHA");
            c.arg(&sha)
                .arg(1)
                .arg(format!("{prefix}:{{{}}}", key(0, i)))
                .arg(args);
            c
        })
        .collect()
}

async fn redis_cpu(redis: &RedisServer, store: &RedisStore) {
    let mut conn = store.connection();
    for s in [CLASSIC, TIME_ONLY, RETURN_1] {
        let _: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(s)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    // Each row: a name, its commands, and the row it is compared with. "Idle keys":
    // users call every ~60 ms under a 1,000/s policy, so each finds its bucket full
    // again and its exact-TTL key gone (the costlier case for ours: the key is made
    // again each call). "Busy keys": 10/s with a burst of 1,000, so every key stays
    // live and every call rewrites it, as the classic script's keys always do.
    let busy = Quota::per_second(10).unwrap().with_burst(1_000).unwrap();
    let ours_cmds = |kind, quota, task| -> Vec<Cmd> {
        let limiter: RedisLimiter = store
            .limiter(Policy::new(kind, quota))
            .expect("an exact-mode limiter");
        (0..16 * KEYS_PER_TASK)
            .map(|i| limiter.command(&key(task, i), 1))
            .collect()
    };
    let mut scripts: Vec<(String, Vec<Cmd>, usize)> = vec![(
        "classic token bucket (HMGET, float refill, HMSET, PEXPIRE)".into(),
        script_cmds(CLASSIC, "classic", &["1000", "1000", "1"]),
        0,
    )];
    for kind in Kind::ALL {
        let cmds = ours_cmds(kind, policy(kind).quota, 1);
        scripts.push((format!("ratelab {kind}"), cmds, 0));
    }
    let busy_classic = scripts.len();
    scripts.push((
        "classic token bucket, busy keys".into(),
        script_cmds(CLASSIC, "busy", &["1000", "10", "1"]),
        busy_classic,
    ));
    for kind in [Kind::TokenBucket, Kind::Gcra] {
        let cmds = ours_cmds(kind, busy, 2);
        scripts.push((format!("ratelab {kind}, busy keys"), cmds, busy_classic));
    }
    scripts.push(("`TIME` only".into(), script_cmds(TIME_ONLY, "t", &[]), 0));
    scripts.push(("`return 1`".into(), script_cmds(RETURN_1, "r", &[]), 0));
    // Each script is measured right after a fresh measurement of its classic reference,
    // so that each ratio compares two figures taken seconds apart (the host's load
    // drifts over a run); per script, the least of the rounds (its own cost, with the
    // least noise) and the median of its ratios to the reference.
    let mut usec = vec![Vec::new(); scripts.len()];
    let mut ratios = vec![Vec::new(); scripts.len()];
    for _ in 0..CPU_ROUNDS {
        for (i, (_, cmds, reference)) in scripts.iter().enumerate() {
            if i == *reference {
                continue;
            }
            let classic = cpu_per_call(redis, store, scripts[*reference].1.clone()).await;
            let ours = cpu_per_call(redis, store, cmds.clone()).await;
            usec[*reference].push(classic);
            usec[i].push(ours);
            ratios[i].push(ours / classic);
        }
    }
    println!("| script | Redis CPU µs/call | vs classic |");
    println!("|---|---:|---:|");
    for (i, (name, _, reference)) in scripts.iter().enumerate() {
        let least = usec[i].iter().copied().fold(f64::INFINITY, f64::min);
        let ratio = if i == *reference {
            1.0
        } else {
            median(ratios[i].clone())
        };
        println!("| {name} | {least:.2} | {ratio:.2} |");
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let redis = RedisServer::start().unwrap();
    let version = redis.cmd(&["INFO", "server"]).unwrap();
    let version = version
        .lines()
        .find(|l| l.starts_with("redis_version:"))
        .unwrap_or("");
    rt.block_on(async {
        let opts = RedisOptions {
            timeout: Duration::from_secs(1),
            ..RedisOptions::default()
        };
        let store = RedisStore::connect(&redis.url(), opts).await.unwrap();
        println!(
            "Redis store benchmark: {version}, {:?} per measurement\n",
            secs()
        );
        throughput(&store).await;
        println!();
        redis_cpu(&redis, &store).await;
    });
}
