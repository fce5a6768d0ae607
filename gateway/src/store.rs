//! Where the gateway's limiters keep state: in memory, or in Redis / Redis Cluster
//! shared by every instance.
//!
//! The guarantee: a decision never fails and never hangs. A remote store answers within
//! its timeout or the configured failure policy answers for it (`fail-open` admits,
//! `fail-closed` refuses with `503`, `local` decides in memory), and every fallback is
//! counted. Redis being down at start-up is one more failure, not a reason not to
//! start: the store connects in the background and takes over when Redis answers.

use limiter_core::limits::{LimitSet, MultiLimiter};
use limiter_core::store::redis::CircuitState;
use limiter_core::{FailurePolicy, MonotonicClock, Policy, RateLimiter, RedisOptions, RedisStore};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::Error;
use crate::config::{StoreConfig, StoreKind};
use crate::contract::metrics as names;
use crate::metrics::{DescriptorEncoder, encode_one};

/// Whether a gateway can take traffic (`/readyz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// `200` when true, `503` when false.
    pub ready: bool,
    /// One line saying why.
    pub detail: String,
}

/// The stores a gateway's routes use.
#[derive(Debug)]
pub struct Stores {
    config: StoreConfig,
    redis: Option<RedisStore>,
}

impl Stores {
    /// Opens the configured store. Redis (or the cluster) is connected in the
    /// background: the gateway starts and serves by its failure policy while Redis is
    /// unreachable, and uses Redis as soon as it answers. Fails only for a URL that
    /// cannot be used at all.
    pub fn open(config: &StoreConfig) -> Result<Self, Error> {
        let opts = || RedisOptions {
            key_prefix: config.key_prefix.clone(),
            timeout: config.timeout,
            on_error: config.on_error,
            // The `local` fallback is bounded like the memory store and swept by the
            // gateway's sweeper (through `RateLimiter::sweep`).
            local: config.capacity(),
            mode: config.mode,
            ..RedisOptions::default()
        };
        let redis = match &config.kind {
            StoreKind::Memory => None,
            StoreKind::Redis { url } => Some(
                RedisStore::connect_lazy(url, opts())
                    .map_err(|e| Error::Store(format!("{url}: {}", e.report())))?,
            ),
            StoreKind::RedisCluster { urls } => Some(
                RedisStore::connect_cluster_lazy(urls, opts())
                    .map_err(|e| Error::Store(format!("cluster {urls:?}: {}", e.report())))?,
            ),
        };
        Ok(Self {
            config: config.clone(),
            redis,
        })
    }

    /// Waits at most `timeout` for Redis's first connection (`Ok` at once for the
    /// memory store); tests and scripts that want a warm start use it.
    pub async fn wait_connected(&self, timeout: std::time::Duration) -> Result<(), Error> {
        match &self.redis {
            Some(store) => store
                .wait_connected(timeout)
                .await
                .map_err(|e| Error::Store(e.report().to_string())),
            None => Ok(()),
        }
    }

    /// Whether the gateway can take traffic now, and why: the memory store always; a
    /// Redis store when Redis answers `PING` within the store timeout, or when it does
    /// not but the failure policy (`fail-open`, `local`) serves without it.
    pub async fn readiness(&self) -> Readiness {
        let Some(store) = &self.redis else {
            return Readiness {
                ready: true,
                detail: "store: memory".to_owned(),
            };
        };
        match store.ping().await {
            Ok(()) => Readiness {
                ready: true,
                detail: "store: redis reachable".to_owned(),
            },
            Err(e) => {
                let policy = self.config.on_error;
                let ready = policy != FailurePolicy::FailClosed;
                let verdict = if ready {
                    "serving by the failure policy (degraded)"
                } else {
                    "refusing requests with 503"
                };
                Readiness {
                    ready,
                    detail: format!(
                        "store: redis unreachable ({}); on_error = {policy}: {verdict}",
                        e.report()
                    ),
                }
            }
        }
    }

    /// A limiter for `policy` on this store, in its mode (a mode that cannot enforce
    /// the policy is refused: the config's validation refuses it first); in memory
    /// within `[store]`'s capacity (a byte budget too small for the policy is refused
    /// by validation first, too).
    pub fn limiter(&self, policy: Policy) -> Result<RateLimiter, Error> {
        match &self.redis {
            Some(store) => RateLimiter::redis(store, policy)
                .map_err(|e| Error::Invalid(format!("store mode: {}", e.report()))),
            // Windows on the Unix epoch, as on Redis: gateways share boundaries and a
            // client (the lab's judging) knows where each window starts.
            None => RateLimiter::memory_within(
                policy,
                MonotonicClock::unix_aligned(),
                self.config.capacity(),
            )
            .map_err(|e| Error::Invalid(format!("store.max_bytes: {e}"))),
        }
    }

    /// A limiter deciding every limit of `set` all-or-nothing on this store (on Redis,
    /// one script call per request).
    pub fn multi(&self, set: LimitSet) -> MultiLimiter {
        match &self.redis {
            Some(store) => MultiLimiter::redis(store, set, MonotonicClock::new()),
            None => MultiLimiter::memory(set, MonotonicClock::unix_aligned()),
        }
    }

    /// The most keys one limit holds in memory.
    pub fn max_keys(&self) -> usize {
        self.config.max_keys
    }

    /// Writes the store-wide metric families (Redis calls, errors, circuit).
    pub fn encode_metrics(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let Some(store) = &self.redis else {
            return Ok(());
        };
        let m = store.metrics();
        for (name, help, value) in [
            (
                names::STORE_CALLS.name,
                "Decisions asked of Redis.",
                m.calls,
            ),
            (
                names::STORE_ERRORS.name,
                "Redis calls that failed (errors and timeouts).",
                m.errors,
            ),
            (
                names::STORE_TIMEOUTS.name,
                "Redis calls that timed out.",
                m.timeouts,
            ),
            (
                names::STORE_SHORT_CIRCUITED.name,
                "Decisions not asked of Redis because its circuit was open.",
                m.short_circuited,
            ),
            (
                names::STORE_CIRCUIT_OPENED.name,
                "Times the Redis circuit opened.",
                m.circuit_opened,
            ),
            (
                names::STORE_LOCAL_ALLOWED.name,
                "Decisions admitted from a lease in hand, without a Redis call.",
                m.local_allowed,
            ),
            (
                names::STORE_LOCAL_DENIED.name,
                "Decisions refused locally after a Redis refusal, without a Redis call.",
                m.local_denied,
            ),
            (
                names::STORE_LEASE_STRANDED.name,
                "Units dropped from leases that expired unspent (under-admission).",
                m.stranded,
            ),
        ] {
            encode_one(encoder, name, help, &ConstCounter::new(value))?;
        }
        let open = i64::from(m.circuit != CircuitState::Closed);
        encode_one(
            encoder,
            names::STORE_CIRCUIT_OPEN.name,
            "1 while the Redis circuit is open or half-open (calls fail fast), else 0.",
            &ConstGauge::new(open),
        )
    }
}
