//! Where the gateway's limiters keep state: in memory, or in Redis / Redis Cluster
//! shared by every instance.
//!
//! The guarantee: a decision never fails and never hangs. A remote store answers within
//! its timeout or the configured failure policy answers for it (`fail-open` admits,
//! `fail-closed` refuses with `503`, `local` decides in memory), and every fallback is
//! counted.

use limiter_core::store::redis::CircuitState;
use limiter_core::{MonotonicClock, Policy, RateLimiter, RedisOptions, RedisStore};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::Error;
use crate::config::{StoreConfig, StoreKind};
use crate::contract::metrics as names;
use crate::metrics::{DescriptorEncoder, encode_one};

/// The stores a gateway's routes use.
#[derive(Debug)]
pub struct Stores {
    config: StoreConfig,
    redis: Option<RedisStore>,
}

impl Stores {
    /// Opens the configured store: connects to Redis (or the cluster) and loads the
    /// scripts, failing when it cannot be reached within the timeout (at least 1 s).
    pub async fn connect(config: &StoreConfig) -> Result<Self, Error> {
        let opts = || RedisOptions {
            key_prefix: config.key_prefix.clone(),
            timeout: config.timeout,
            on_error: config.on_error,
            ..RedisOptions::default()
        };
        let redis = match &config.kind {
            StoreKind::Memory => None,
            StoreKind::Redis { url } => {
                Some(RedisStore::connect(url, opts()).await.map_err(|e| {
                    Error::Store(format!("cannot connect to {url}: {}", e.report()))
                })?)
            }
            StoreKind::RedisCluster { urls } => Some(
                RedisStore::connect_cluster(urls, opts())
                    .await
                    .map_err(|e| {
                        Error::Store(format!(
                            "cannot connect to cluster {urls:?}: {}",
                            e.report()
                        ))
                    })?,
            ),
        };
        Ok(Self {
            config: config.clone(),
            redis,
        })
    }

    /// A limiter for `policy` on this store.
    pub fn limiter(&self, policy: Policy) -> RateLimiter {
        match &self.redis {
            Some(store) => RateLimiter::redis(store, policy),
            None => RateLimiter::memory(policy, MonotonicClock::new(), self.config.max_keys),
        }
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
