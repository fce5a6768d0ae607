//! The wire contract between the ratelab gateway and everything that talks to it.
//!
//! The gateway defines these words; the load driver (`loadgen`), the scripts and the
//! tests use them from here and nowhere else, so the two sides cannot drift apart:
//!
//! - [`USER_HEADER`]: the header that carries a caller's identity;
//! - [`routes`]: route templates (`/api/orders/{id}`) — one parser, one normalisation
//!   of request paths;
//! - [`metrics`]: the names of the gateway's Prometheus families and labels;
//! - [`stats`]: the mock backend's `GET /stats` document, as serde types;
//! - [`config`]: the gateway configuration file's tables, as serde types (the gateway
//!   reads them, `ratelab load --emit-routes` writes them);
//! - [`duration`] and [`policy`]: the one duration syntax and the one policy
//!   vocabulary ("L per W, burst B, cost C") of gateway configs and workload files;
//! - [`calendar`]: Unix days to dates, as the access log and the trace reader spell them;
//! - [`limits`]: a limit table's words (short form, `limits = [...]`, tiers) turned
//!   into limiter-core policies, for gateway routes and workload endpoints alike.
//!
//! The crate is deliberately light — serde, toml, humantime and `limiter-core` — so the
//! simulator, which never opens a socket, depends on it without pulling in the server.

pub mod calendar;
pub mod config;
pub mod duration;
pub mod limits;
pub mod metrics;
pub mod policy;
pub mod routes;
pub mod stats;

/// The header the gateway reads a caller's identity from by default
/// (`[identity] header`), the one the mock backend counts by, and the one the load
/// driver sets per simulated user.
pub const USER_HEADER: &str = "x-user-id";
