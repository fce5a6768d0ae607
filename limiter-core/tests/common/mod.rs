//! Helpers shared by the integration tests of every store.

pub mod edges;
pub mod envelope;
