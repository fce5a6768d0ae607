//! Workloads, the virtual-time simulator, and accuracy accounting.
pub mod arrivals;
pub mod rng;
pub mod workload;
