//! The keyed-check cells shared by `benches/memory.rs`, `benches/versus_governor.rs` and
//! `scripts/callgrind` (which includes this file by path): the scenarios and their
//! quotas, ours and governor's, the keys and their visiting order, and the one check
//! wrapper, so every measurement of "ratelab beside governor" measures the same thing.

#![allow(dead_code)] // each includer uses part of it

use std::hash::{BuildHasher, Hash};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::QuantaInstant;
use governor::middleware::NoOpMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota as GovQuota};
use limiter_core::{Algorithm, KeyedLimiter, Kind, Quota};

/// The routes string keys end with (`user:1000042:/api/orders`, as the gateway forms
/// them).
pub const ROUTES: [&str; 4] = ["/api/orders", "/api/users", "/api/search", "/api/cart"];

/// Whether the timed checks are admitted or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// A quota no check exhausts during a run.
    Allowed,
    /// 1 per hour: every key spent its one request when it was inserted.
    Denied,
}

impl Scenario {
    /// Both, in the order the benchmarks print them.
    pub const ALL: [Scenario; 2] = [Scenario::Allowed, Scenario::Denied];

    /// `allowed` or `denied`.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Allowed => "allowed",
            Scenario::Denied => "denied",
        }
    }

    /// Our quota for algorithm `A` in this scenario.
    pub fn quota<A: Algorithm>(self) -> Quota {
        let hour = Duration::from_secs(3600);
        let q = match self {
            Scenario::Denied => Quota::new(1, hour),
            // A billion tokens refilled at 10 a second: 3.2 years to refill, within the
            // quota's ten-year limit.
            Scenario::Allowed if A::KIND.is_bucket() => {
                Quota::new(10, Duration::from_secs(1)).and_then(|q| q.with_burst(1_000_000_000))
            }
            // The sliding log keeps one entry per admission: a 250 ms window keeps one
            // hot key's log to tens of MB.
            Scenario::Allowed if A::KIND == Kind::SlidingLog => {
                Quota::new(4_000_000_000, Duration::from_millis(250))
            }
            Scenario::Allowed => Quota::new(4_000_000_000, hour),
        };
        q.unwrap_or_else(|e| panic!("bench quota: {e}"))
    }

    /// Governor's quota in this scenario (the bucket quota above).
    pub fn governor_quota(self) -> GovQuota {
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

/// Something that decides one request for a key of type `K`; true when admitted.
///
/// Each side's whole answer goes through `black_box` before it is read (ours a
/// `Result<Decision>`, governor's a `Result<(), NotUntil>`), so neither compiler can
/// drop the work a caller who reads the answer pays for (our `remaining` and
/// durations, governor's `NotUntil`) because only "admitted?" is looked at here.
pub trait Subject<K>: Sync {
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

/// Governor's keyed limiter with hasher `S` (its default is std's SipHash; ours is
/// foldhash, which governor takes too through `dashmap_with_hasher`).
pub type Governor<K, S = std::hash::RandomState> =
    DefaultKeyedRateLimiter<K, NoOpMiddleware<QuantaInstant>, S>;

impl<K, S> Subject<K> for Governor<K, S>
where
    K: Clone + Eq + Hash + Send + Sync,
    S: BuildHasher + Clone + Send + Sync,
{
    #[inline]
    fn check(&self, key: &K) -> bool {
        black_box(self.check_key(key)).is_ok()
    }
}

/// Our keyed limiter for algorithm `A` over `u64` keys.
pub fn ours_u64<A: Algorithm>(scenario: Scenario) -> KeyedLimiter<u64, A> {
    KeyedLimiter::new(scenario.quota::<A>())
}

/// Our keyed limiter for algorithm `A` over string keys, stored as `MemoryLimiter`
/// stores them.
pub fn ours_str<A: Algorithm>(scenario: Scenario) -> KeyedLimiter<Box<str>, A> {
    KeyedLimiter::new(scenario.quota::<A>())
}

/// Governor's default keyed limiter (std's hasher).
pub fn governor<K: Clone + Eq + Hash>(scenario: Scenario) -> Governor<K> {
    DefaultKeyedRateLimiter::keyed(scenario.governor_quota())
}

/// Governor's keyed limiter hashing with foldhash, as ours does.
pub fn governor_foldhash<K: Clone + Eq + Hash>(
    scenario: Scenario,
) -> Governor<K, foldhash::fast::RandomState> {
    Governor::dashmap_with_hasher(
        scenario.governor_quota(),
        foldhash::fast::RandomState::default(),
    )
}

/// SplitMix64: a bijection on `u64`, so distinct inputs give distinct keys.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Fisher–Yates with a fixed seed, so every run visits keys in the same order.
pub fn shuffle<T>(v: &mut [T]) {
    let mut state = 42u64;
    for i in (1..v.len()).rev() {
        state = splitmix(state);
        let j = (state % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// `n` distinct `u64` keys (every prefix is a key set of its own).
pub fn u64_keys(n: usize) -> Vec<u64> {
    (0..n as u64).map(splitmix).collect()
}

/// `n` string keys as the gateway forms them (client, then route), in a shuffled
/// visiting order; take a prefix for a smaller set. Each string is allocated in
/// visiting order, so reading the caller's key is as cheap as in the gateway, which
/// forms the key just before the check: what is timed is the limiter's work,
/// including its random walk over its own table.
pub fn string_keys(n: usize) -> Vec<String> {
    let mut ids: Vec<usize> = (0..n).collect();
    shuffle(&mut ids);
    ids.into_iter()
        .map(|i| {
            format!(
                "user:{}:{}",
                1_000_000 + i / ROUTES.len(),
                ROUTES[i % ROUTES.len()]
            )
        })
        .collect()
}
