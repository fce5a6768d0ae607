//! In-flight limits on Redis: the admission step spliced into the set's one script
//! (`in_flight.lua`), and the leases an admitted request holds — renewed by one task per
//! request while it runs, removed when its [`Permit`](super::Permit) is released.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use redis::Cmd;
use tokio::sync::oneshot;

use super::in_flight::InFlight;
use crate::store::redis::{RedisStore, TimeSource};

/// The admission step (one key's sorted set of leases), as the set's script runs it.
pub(super) const STEP: &str = include_str!("in_flight.lua");

/// Its reply's test: admitted when the first integer is 1.
pub(super) const ADMITTED: &str = "r[1] == 1";

const RENEW: &str = "\
-- Renews one request's leases: KEYS its lease sets; ARGV[1] its member, ARGV[2] now in
-- µs or '' for Redis's TIME, then per key its lease TTL and its key TTL in ms. A lease
-- already expired and trimmed stays gone (ZADD XX): its slot may have been given away.
local now = ARGV[2]
if now == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = math.floor(tonumber(now) / 1000)
end
for i, key in ipairs(KEYS) do
  local ttl, key_ttl = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  redis.call('ZADD', key, 'XX', now + ttl, ARGV[1])
  if redis.call('PTTL', key) < key_ttl then redis.call('PEXPIRE', key, key_ttl) end
end
return 0
";

const RELEASE: &str = "\
-- Releases one request's leases: KEYS its lease sets, ARGV[1] its member.
for _, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[1]) end
return 0
";

/// A script's source and SHA1.
struct Script {
    source: &'static str,
    sha: String,
}

fn script(cell: &'static OnceLock<Script>, source: &'static str) -> &'static Script {
    cell.get_or_init(|| Script {
        source,
        sha: redis::Script::new(source).get_hash().to_owned(),
    })
}

fn renew_script() -> &'static Script {
    static CELL: OnceLock<Script> = OnceLock::new();
    script(&CELL, RENEW)
}

fn release_script() -> &'static Script {
    static CELL: OnceLock<Script> = OnceLock::new();
    script(&CELL, RELEASE)
}

/// A request id no other request of any instance shares: this process's random id and
/// a counter.
pub(super) fn member() -> String {
    static INSTANCE: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let instance = *INSTANCE.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let since = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        h.write_u128(since.as_nanos());
        h.finish()
    });
    format!("{instance:016x}:{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// How long the lease key itself lives past a write: the lease TTL on Redis's clock;
/// with the caller's clock (which may run apart from Redis's) at least a minute, as
/// every other key (a lease's own expiry is its score, on the caller's clock).
pub(super) fn key_ttl_ms(store: &RedisStore, limit: &InFlight) -> u64 {
    let ttl = limit.lease_ttl();
    let ttl = match store.options().time {
        TimeSource::Redis => ttl,
        TimeSource::Caller(_) => ttl.max(Duration::from_secs(60)),
    };
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

/// The admission step's arguments for `limit` and the request `member` (after the key,
/// before `now`).
pub(super) fn push_args(cmd: &mut Cmd, store: &RedisStore, limit: &InFlight, member: &str) {
    cmd.arg(limit.limit())
        .arg(u64::try_from(limit.lease_ttl().as_millis()).unwrap_or(u64::MAX))
        .arg(key_ttl_ms(store, limit))
        .arg(member);
}

/// One admitted request's leases: renewed while held, removed when released.
#[derive(Debug)]
pub(crate) struct Leases {
    stop: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<()>>,
}

impl Leases {
    /// Starts holding `member`'s leases in `keys` (each with its limit): a task renews
    /// them every third of the shortest lease TTL until released or dropped, then
    /// removes them.
    pub(super) fn hold(store: RedisStore, keys: Vec<(String, InFlight)>, member: String) -> Self {
        let (stop, stopped) = oneshot::channel();
        let (finished, done) = oneshot::channel();
        tokio::spawn(run(store, keys, member, stopped, finished));
        Self {
            stop: Some(stop),
            done: Some(done),
        }
    }

    /// Releases the leases and waits until the store removed them (or gave up).
    pub(super) async fn release(mut self) {
        drop(self.stop.take());
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

impl Drop for Leases {
    fn drop(&mut self) {
        // Dropping the sender wakes the task, which removes the leases.
        drop(self.stop.take());
    }
}

/// The lease holder's task: renew, then release.
async fn run(
    store: RedisStore,
    keys: Vec<(String, InFlight)>,
    member: String,
    mut stopped: oneshot::Receiver<()>,
    finished: oneshot::Sender<()>,
) {
    let shortest = keys
        .iter()
        .map(|(_, l)| l.lease_ttl())
        .min()
        .unwrap_or(super::in_flight::DEFAULT_LEASE_TTL);
    let every = shortest / 3;
    loop {
        match tokio::time::timeout(every, &mut stopped).await {
            Ok(_) => break,
            // A failed renewal is retried at the next period; the lease has two more.
            Err(_) => {
                let _ = store
                    .guarded_call(&renew(&store, &keys, &member), renew_script().source)
                    .await;
            }
        }
    }
    let mut release = Cmd::new();
    release
        .arg("EVALSHA")
        .arg(&release_script().sha)
        .arg(keys.len());
    for (key, _) in &keys {
        release.arg(key);
    }
    release.arg(&member);
    // Unreachable store: the leases expire within their TTL.
    let _ = store.guarded_call(&release, release_script().source).await;
    let _ = finished.send(());
}

/// The renewal call of `member`'s leases in `keys`.
fn renew(store: &RedisStore, keys: &[(String, InFlight)], member: &str) -> Cmd {
    let mut cmd = Cmd::new();
    cmd.arg("EVALSHA").arg(&renew_script().sha).arg(keys.len());
    for (key, _) in keys {
        cmd.arg(key);
    }
    cmd.arg(member);
    match &store.options().time {
        TimeSource::Caller(clock) => cmd.arg(clock.now() / 1_000),
        TimeSource::Redis => cmd.arg(""),
    };
    for (_, limit) in keys {
        cmd.arg(u64::try_from(limit.lease_ttl().as_millis()).unwrap_or(u64::MAX))
            .arg(key_ttl_ms(store, limit));
    }
    cmd
}
