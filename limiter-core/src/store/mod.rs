//! Where limiter state lives: in this process ([`memory`]) or in Redis (`redis`,
//! behind the `redis` feature).

pub mod lease;
pub mod memory;
pub mod mode;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

pub use memory::{AtCapacity, Capacity, HeapSize, MemoryStore, StoreStats};
pub use mode::{LeaseOptions, StoreMode};
