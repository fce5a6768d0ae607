//! The Redis store against real servers: keys that hostile identities cannot break,
//! scripts reloaded after a flush, TTLs renewed on every write (a regression test
//! against the original project's TTL-once flaw), and time taken from Redis.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

#[path = "common/envelope.rs"]
mod envelope;

use std::time::{Duration, Instant};

use limiter_core::DecidedBy;
use limiter_core::store::redis::{RedisOptions, RedisStore};
use limiter_core::{Kind, Limiter, Policy, Quota};
use testkit::{RedisCluster, RedisServer};

/// Default options but a generous timeout: these tests check decisions, not latency,
/// on a machine that may be busy.
fn options() -> RedisOptions {
    RedisOptions {
        timeout: Duration::from_secs(2),
        ..RedisOptions::default()
    }
}

fn policy(kind: Kind, limit: u64, period: Duration, burst: u64) -> Policy {
    Policy::new(
        kind,
        Quota::new(limit, period)
            .unwrap()
            .with_burst(burst)
            .unwrap(),
    )
}

async fn query<T: redis::FromRedisValue>(store: &RedisStore, args: &[&[u8]]) -> T {
    let mut cmd = redis::Cmd::new();
    for a in args {
        cmd.arg(*a);
    }
    cmd.query_async(&mut store.connection()).await.unwrap()
}

/// Identities that try to break out of their key: braces, newlines, escapes that look
/// like other identities, a 10 KB string.
fn hostile() -> Vec<String> {
    let mut ids: Vec<String> = [
        "u1", "u1}", "u1%7D", "{u1}", "u1}{u2", "}", "{", "", "%", "%25", "u1\nu2", "u1\r\n",
        "u1%0Au2", "u1:/a", "é{ü}",
    ]
    .map(String::from)
    .to_vec();
    ids.push("{x}\n".repeat(2_560));
    ids
}

/// Each hostile identity gets its own state: exhausting one leaves every other full.
async fn identities_are_isolated(store: &RedisStore) {
    for kind in Kind::ALL {
        let limiter = store
            .limiter(policy(kind, 2, Duration::from_secs(60), 2))
            .unwrap();
        let ids = hostile();
        for (i, id) in ids.iter().enumerate() {
            let first = limiter.check(id, 2).await.unwrap();
            assert!(first.allowed, "{kind}: identity #{i} was not fresh");
            assert!(!limiter.check(id, 1).await.unwrap().allowed, "{kind}: #{i}");
        }
        let keys: std::collections::HashSet<String> =
            ids.iter().map(|id| limiter.redis_key(id)).collect();
        assert_eq!(keys.len(), ids.len());
    }
}

#[tokio::test]
async fn hostile_identities_get_their_own_keys_on_a_single_node() {
    let redis = RedisServer::start().unwrap();
    let store = RedisStore::connect(&redis.url(), options()).await.unwrap();
    identities_are_isolated(&store).await;
}

#[tokio::test]
async fn hostile_identities_get_their_own_keys_and_slots_on_a_cluster() {
    let cluster = RedisCluster::start().unwrap();
    let store = RedisStore::connect_cluster(&cluster.urls(), options())
        .await
        .unwrap();
    identities_are_isolated(&store).await;
    // The hash tag is the escaped identity, whole: Redis hashes exactly it.
    let limiter = store
        .limiter(policy(Kind::Gcra, 1, Duration::from_secs(1), 1))
        .unwrap();
    for id in hostile() {
        let key = limiter.redis_key(&id);
        let open = key.find('{').unwrap();
        let tag = &key[open + 1..key.len() - 1];
        assert!(!tag.contains(['{', '}', '\n']));
        let slot: i64 = query(&store, &[b"CLUSTER", b"KEYSLOT", key.as_bytes()]).await;
        let tag_slot: i64 = query(&store, &[b"CLUSTER", b"KEYSLOT", tag.as_bytes()]).await;
        if !tag.is_empty() {
            assert_eq!(slot, tag_slot, "{key:.80}");
        }
    }
}

#[tokio::test]
async fn scripts_are_reloaded_after_a_flush() {
    let redis = RedisServer::start().unwrap();
    let store = RedisStore::connect(&redis.url(), options()).await.unwrap();
    for kind in Kind::ALL {
        let limiter = store
            .limiter(policy(kind, 5, Duration::from_secs(60), 5))
            .unwrap();
        redis.cmd(&["SCRIPT", "FLUSH"]).unwrap();
        let v = limiter.decide("u", 1).await.unwrap();
        assert_eq!(v.decided_by, DecidedBy::Store, "{kind}");
        assert!(v.decision.allowed);
        assert_eq!(v.decision.remaining, 4, "{kind}");
    }
    assert_eq!(store.metrics().errors, 0);
}

/// Every write sets the TTL to the time the state needs to be full again: never more
/// than the reset the decision reports (rounded up to the millisecond), never less; a
/// denial does not write.
#[tokio::test]
async fn every_write_renews_the_ttl_to_the_time_until_full() {
    let redis = RedisServer::start().unwrap();
    let store = RedisStore::connect(&redis.url(), options()).await.unwrap();
    for kind in Kind::ALL {
        let limiter = store
            .limiter(policy(kind, 4, Duration::from_secs(20), 4))
            .unwrap();
        let key = limiter.redis_key("ttl");
        for i in 0..6 {
            // Apart in time, so that a TTL not renewed would show.
            tokio::time::sleep(Duration::from_millis(30)).await;
            let asked = Instant::now();
            let d = limiter.check("ttl", 1).await.unwrap();
            let pttl: i64 = redis.cmd(&["PTTL", &key]).unwrap().parse().unwrap();
            // The TTL ran down between the script and PTTL, by at most this long.
            let since = asked.elapsed().as_millis() as i64 + 1;
            assert!(pttl > 0, "{kind}: request {i}: no TTL ({pttl})");
            // PTTL counts whole milliseconds of Redis's clock: allow it one more.
            let reset = d.reset_after.as_micros().div_ceil(1000) as i64 + 1;
            assert!(
                pttl <= reset,
                "{kind}: TTL {pttl} ms beyond reset {reset} ms"
            );
            if d.allowed {
                assert!(
                    pttl >= reset - since - 1,
                    "{kind}: TTL {pttl} ms, reset {reset} ms, {since} ms later"
                );
            }
        }
    }
}

/// The original project's script, scaled down 120 times (5 tokens, one every 100 ms
/// instead of 12 s, TTL 500 ms instead of 60 s): it sets the TTL once, when the key is
/// created, so the key vanishes under a busy client and comes back full.
const SEED_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local capacity, rate, ttl = 5, 0.01, 500
local v = redis.call('HMGET', KEYS[1], 'tokens', 'lastRefill')
if not v[1] then
  redis.call('HSET', KEYS[1], 'tokens', capacity - 1, 'lastRefill', now)
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 1
end
local tokens = math.min(capacity, tonumber(v[1]) + (now - tonumber(v[2])) * rate)
if tokens < 1 then return 0 end
redis.call('HSET', KEYS[1], 'tokens', tokens - 1, 'lastRefill', now)
return 1
";

/// A client asking every 10 ms for 1.5 s: ratelab's token bucket admits the envelope
/// (5 + 15) give or take one, where the seed's TTL-once script admits far more.
#[tokio::test]
async fn a_busy_key_keeps_its_state_unlike_the_seed_ttl_once_script() {
    let redis = RedisServer::start().unwrap();
    let store = RedisStore::connect(&redis.url(), options()).await.unwrap();
    let p = policy(Kind::TokenBucket, 5, Duration::from_millis(500), 5);
    let limiter = store.limiter(p).unwrap();
    let seed = redis::Script::new(SEED_SCRIPT);
    let mut conn = store.connection();
    let (mut ours, mut theirs) = (0u64, 0u64);
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while start.elapsed() < Duration::from_millis(1_500) {
        tick.tick().await;
        ours += u64::from(limiter.check("busy", 1).await.unwrap().allowed);
        let r: i64 = seed.key("seed:busy").invoke_async(&mut conn).await.unwrap();
        theirs += r as u64;
    }
    let length = start.elapsed().as_nanos() as u64;
    let most = envelope::most_in(&p, 0, length);
    assert!(
        ours <= most && ours + 2 >= most,
        "ratelab admitted {ours}, envelope {most}"
    );
    assert!(
        theirs > most + 3,
        "the seed script admitted {theirs}, envelope {most}"
    );
}

/// Two gateways on one Redis share one limit (the original's atomicity check: 5 of 50
/// simultaneous requests for one user).
#[tokio::test]
async fn two_gateways_share_one_limit() {
    let redis = RedisServer::start().unwrap();
    let a = RedisStore::connect(&redis.url(), options()).await.unwrap();
    let b = RedisStore::connect(&redis.url(), options()).await.unwrap();
    let p = Policy::new(Kind::TokenBucket, Quota::per_minute(5).unwrap());
    let (la, lb) = (a.limiter(p).unwrap(), b.limiter(p).unwrap());
    let tasks = (0..50).map(|i| {
        let l = if i % 2 == 0 { &la } else { &lb };
        l.check("user:1:/api/orders", 1)
    });
    let decisions = futures_util::future::join_all(tasks).await;
    let admitted = decisions
        .iter()
        .filter(|d| d.as_ref().unwrap().allowed)
        .count();
    assert_eq!(admitted, 5);
}

/// A fixed window too large to pack its answer into one exact integer answers in two.
#[tokio::test]
async fn a_huge_fixed_window_answers_in_full() {
    let redis = RedisServer::start().unwrap();
    let store = RedisStore::connect(&redis.url(), options()).await.unwrap();
    let year = Duration::from_secs(365 * 24 * 3600);
    let limiter = store
        .limiter(policy(Kind::FixedWindow, 4_000_000_000, year, 1))
        .unwrap();
    let d = limiter.check("big", 3_999_999_999).await.unwrap();
    assert!(d.allowed);
    assert_eq!(d.remaining, 1);
    let d = limiter.check("big", 2).await.unwrap();
    assert!(!d.allowed);
    assert_eq!(d.remaining, 1);
    assert!(d.reset_after <= year && d.retry_after == d.reset_after);
}

/// A sliding log whose cumulative count (kept in each entry) nears 10^15, as a key busy
/// for long would: the script renumbers its entries and keeps deciding exactly as the
/// in-memory log of the same admissions.
#[tokio::test]
async fn a_sliding_log_renumbers_its_entries_before_doubles_lose_units() {
    use limiter_core::ManualClock;
    use limiter_core::store::redis::TimeSource;
    let redis = RedisServer::start().unwrap();
    let clock = ManualClock::new();
    let opts = RedisOptions {
        time: TimeSource::Caller(std::sync::Arc::new(clock.clone())),
        ..options()
    };
    let store = RedisStore::connect(&redis.url(), opts).await.unwrap();
    let p = Policy::new(Kind::SlidingLog, Quota::per_second(10).unwrap());
    let limiter = store.limiter(p).unwrap();
    let memory = limiter_core::limiter::MemoryLimiter::new(p, clock.clone(), 10);
    let key = limiter.redis_key("busy");
    let s: u64 = 1_000_000_000;
    // Two admissions held, of 3 and 4 units, the second ending at 10^15 − 2.
    for (at, cum, cost) in [
        (10 * s, 999_999_999_999_994u64, 3u64),
        (10 * s + s / 2, 999_999_999_999_998, 4),
    ] {
        clock.set(at);
        assert!(memory.check("busy", cost).unwrap().allowed);
        let member = format!("{cum:016}:{cost}");
        redis
            .cmd(&["ZADD", &key, &(at / 1_000).to_string(), &member])
            .unwrap();
    }
    for (at, cost) in [
        (10 * s + s / 2, 2),
        (10 * s + s / 2, 2),
        (11 * s, 3),
        (11 * s + s / 2, 4),
        (11 * s + s / 2, 1),
    ] {
        clock.set(at);
        let m = memory.check("busy", cost).unwrap();
        let r = Limiter::check(&limiter, "busy", cost).await.unwrap();
        assert_eq!(m, r, "at {at} cost {cost}");
    }
    let members = redis.cmd(&["ZRANGE", &key, "0", "-1"]).unwrap();
    // Renumbered from the oldest entry held when the count passed 10^15 (then ...994).
    assert!(members.contains("0000000000000009:3"), "{members}");
    assert!(!members.contains("1000000000000"), "{members}");
}
