//! Rate limiters you can compare, and reuse.
//!
//! `limiter-core` implements six rate-limit algorithms — fixed window, sliding log,
//! sliding window counter, token bucket, GCRA and the bucketed sliding window — each as a
//! pure decision over one key's state ([`algorithm`]), kept in memory ([`store::memory`]) or in Redis
//! (`store::redis`, feature `redis`). Every limiter answers a [`Decision`] that carries
//! what a client needs to pace itself: allowed, limit, remaining, reset and retry-after.
//!
//! The names most users need are re-exported here:
//! - [`Quota`] ("`limit` per `period`, bursts up to `burst`") and [`Kind`] (the
//!   algorithm) make a [`Policy`];
//! - [`RateLimiter`] enforces a policy in memory or on Redis, chosen at run time, and
//!   answers a [`Verdict`]: the [`Decision`] and who made it ([`DecidedBy`]: the store or
//!   a [`FailurePolicy`] standing in for it);
//! - [`KeyedLimiter`] is the in-memory limiter for one algorithm known at compile time
//!   (the fastest path), the algorithm one of [`algorithm`]'s types ([`Algorithm`]);
//! - [`Clock`], [`MonotonicClock`] and [`ManualClock`]: time is handed in, never read
//!   inside an algorithm, so tests and the simulator run on a manual clock;
//! - [`Reservation`]: a request admitted on a reserved cost, settled or refunded once
//!   its true cost is known ([`settle`]: the token bucket and GCRA may owe);
//! - [`Error`] for what can never succeed and for stores that failed;
//! - with feature `redis`: [`RedisStore`] and [`RedisOptions`]; with feature `tower`:
//!   the [`tower`] layer (`RateLimitLayer`).
//!
//! The rest lives in its module: the algorithms in [`algorithm`], clocks in [`clock`],
//! the keyed stores in [`store`], several quotas in one limiter in [`limiter`].
//!
//! ```
//! use limiter_core::algorithm::Gcra;
//! use limiter_core::{KeyedLimiter, Quota};
//!
//! // 100 requests per minute per key, bursts of 10.
//! let limiter: KeyedLimiter<String, Gcra> =
//!     KeyedLimiter::new(Quota::per_minute(100).unwrap().with_burst(10).unwrap());
//! let decision = limiter.check("user:42:/api/orders/{id}", 1).unwrap();
//! assert!(decision.allowed);
//! assert_eq!(decision.remaining, 9);
//! ```
//!
//! # Features
//!
//! - `redis`: the Redis and Redis Cluster stores ([`store::redis`](crate::store)).
//! - `tower`: the tower layer answering `429` with rate-limit headers.
//! - `axum`: the tower layer reads axum's `ConnectInfo<SocketAddr>` for client-IP keys.
//! - `serde`: `Serialize`/`Deserialize` for [`Quota`], [`Kind`], [`Policy`] and
//!   `FailurePolicy`, in a human form (`{ limit = 10, per = "1s", burst = 20 }`).

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod algorithm;
pub mod clock;
pub mod decision;
pub mod error;
pub mod limiter;
pub mod limits;
pub mod quota;
pub mod runtime;
#[cfg(feature = "serde")]
mod serde_impls;
pub mod settle;
pub mod store;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

pub use algorithm::{Algorithm, Kind};
pub use clock::{Clock, ManualClock, MonotonicClock, Nanos};
pub use decision::{DecidedBy, Decision, Verdict};
pub use error::{Error, Result};
pub use limiter::{KeyedLimiter, Limiter, Policy};
pub use quota::Quota;
pub use runtime::RateLimiter;
pub use settle::Reservation;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::redis::{FailurePolicy, RedisOptions, RedisStore};
