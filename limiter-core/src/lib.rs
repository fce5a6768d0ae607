//! Rate limiters you can compare, and reuse.
//!
//! `limiter-core` implements five rate-limit algorithms — fixed window, sliding log,
//! sliding window counter, token bucket and GCRA — each as a pure decision over one
//! key's state ([`algorithm`]), kept in memory ([`store::memory`]) or in Redis
//! (`store::redis`, feature `redis`). Every limiter answers a [`Decision`] that carries
//! what a client needs to pace itself: allowed, limit, remaining, reset and retry-after.
//!
//! Time is handed in, never read inside an algorithm: production uses
//! [`MonotonicClock`], tests and the simulator a [`ManualClock`].
//!
//! ```
//! use limiter_core::{Gcra, KeyedLimiter, Quota};
//!
//! // 100 requests per minute per key, bursts of 10.
//! let limiter: KeyedLimiter<String, Gcra> =
//!     KeyedLimiter::new(Quota::per_minute(100).unwrap().with_burst(10).unwrap());
//! let decision = limiter.check("user:42:/api/orders/{id}", 1).unwrap();
//! assert!(decision.allowed);
//! assert_eq!(decision.remaining, 9);
//! ```

pub mod algorithm;
pub mod clock;
pub mod decision;
pub mod error;
pub mod limiter;
pub mod quota;
pub mod store;
#[cfg(feature = "tower")]
pub mod tower;

pub use algorithm::{Algorithm, FixedWindow, Gcra, Kind, SlidingLog, SlidingWindow, TokenBucket};
pub use clock::{Clock, ManualClock, MonotonicClock, Nanos, UnixClock};
pub use decision::Decision;
pub use error::{Error, Result};
pub use limiter::{KeyedLimiter, Limiter, MemoryLimiter, Policy, PolicyId, PolicySet};
pub use quota::Quota;
pub use store::memory::{MemoryStore, StoreStats};
#[cfg(feature = "redis")]
pub use store::redis::{
    FailurePolicy, RedisLimiter, RedisOptions, RedisStore, Source, StoreMetrics, TimeSource,
    Verdict,
};
