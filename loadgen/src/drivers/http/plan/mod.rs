//! What a load run plays: a workload scaled to fit the machine ([`scale`]), its
//! arrivals, and the HTTP request each arrival becomes ([`endpoint`]); and the gateway
//! routes that enforce its policies ([`routes`]).
//!
//! The guarantee: the scaled workload is an ordinary [`Workload`] that round-trips
//! through [`to_toml`], so `ratelab simulate --workload DIR/workload.toml` plays exactly
//! the arrivals `ratelab load` sent (same seed, same requests, same policies), and the
//! gateway routes from [`gateway_routes`] enforce exactly the policies the accuracy
//! figures judge against.
//!
//! Scaling: a **time scale** `t` multiplies every duration (phases, policy windows,
//! on/off periods, the boundary adversary's window) by `t` and divides every rate by
//! `t`, so the same requests meet the same policies in `t` times the wall-clock time:
//! request counts and ideal decisions do not change. A **rate scale** `r` multiplies
//! the rates and keeps the durations: fewer requests, same policies.

pub mod endpoint;
pub mod routes;
pub mod scale;

use http::Method;

pub use self::endpoint::EndpointRequest;
pub use self::routes::gateway_routes;
pub use self::scale::{Scale, scale_workload};
use crate::arrivals::{self, Arrivals};
use crate::workload::Workload;
pub use crate::workload::to_toml;

/// The most requests one load run plays: each costs about 40 bytes of bookkeeping.
pub const MAX_REQUESTS: f64 = 5_000_000.0;

/// The header that carries a simulated user's identity: the contract's.
pub use gateway_contract::USER_HEADER;

/// Why a workload cannot be played over HTTP.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A scale factor out of range.
    #[error("--{which} must be a number between {min} and {max}, got {value}")]
    Scale {
        /// `time-scale` or `rate-scale`.
        which: &'static str,
        /// The value given.
        value: f64,
        /// Smallest allowed.
        min: f64,
        /// Largest allowed.
        max: f64,
    },
    /// Scaling made a policy impossible (a window under a microsecond, say).
    #[error("endpoint {endpoint:?}: scaled policy is invalid: {message}")]
    Policy {
        /// The endpoint's path.
        endpoint: String,
        /// What limiter-core said.
        message: String,
    },
    /// An endpoint path that cannot become an HTTP request.
    #[error("endpoint {endpoint:?}: {message}")]
    Endpoint {
        /// The endpoint's path.
        endpoint: String,
        /// What is wrong.
        message: String,
    },
    /// More requests than one load run plays.
    #[error(
        "the workload asks for about {requests:.0} requests; ratelab load plays at most {MAX_REQUESTS:.0} in one run (lower --rate-scale)"
    )]
    TooMany {
        /// Expected requests.
        requests: f64,
    },
}

/// The identity header value of user `index`.
pub fn user_id(index: u32) -> String {
    format!("user-{index}")
}

/// The user index of an identity header value, if it is one of ours.
pub fn user_index(id: &str) -> Option<u32> {
    id.strip_prefix("user-")?.parse().ok()
}

/// One concrete request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSpec<'a> {
    /// Method.
    pub method: &'a Method,
    /// Path and nothing else (no query).
    pub path: String,
    /// Value of [`USER_HEADER`].
    pub user: String,
    /// Whether to send a small JSON body.
    pub body: bool,
}

/// A workload ready to play over HTTP: its arrivals and their requests.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// The (scaled) workload.
    pub workload: Workload,
    /// The seed the arrivals were drawn with.
    pub seed: u64,
    /// The arrivals, sorted by time.
    pub arrivals: Arrivals,
    /// One request shape per endpoint, in workload order.
    pub endpoints: Vec<EndpointRequest>,
}

impl LoadPlan {
    /// Draws the arrivals of `workload` for `seed` and checks every endpoint can become
    /// an HTTP request, each on its own route (the gateway keys by route, not method).
    pub fn new(workload: Workload, seed: u64) -> Result<Self, PlanError> {
        let expected = workload.expected_arrivals();
        if expected > MAX_REQUESTS {
            return Err(PlanError::TooMany { requests: expected });
        }
        let endpoints = workload
            .endpoints
            .iter()
            .map(|e| EndpointRequest::parse(&e.path))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, a) in endpoints.iter().enumerate() {
            if let Some(b) = endpoints[..i].iter().find(|b| b.template == a.template) {
                return Err(PlanError::Endpoint {
                    endpoint: workload.endpoints[i].path.clone(),
                    message: format!(
                        "shares the route {} with {} {}: the gateway keys by route, so their policies cannot be told apart",
                        a.template, b.method, b.template
                    ),
                });
            }
        }
        let arrivals = arrivals::generate(&workload, seed);
        Ok(Self {
            workload,
            seed,
            arrivals,
            endpoints,
        })
    }

    /// Number of requests.
    pub fn len(&self) -> usize {
        self.arrivals.list.len()
    }

    /// True when the workload has no arrivals.
    pub fn is_empty(&self) -> bool {
        self.arrivals.list.is_empty()
    }

    /// The request of arrival `i` (`i < len()`).
    pub fn request(&self, i: usize) -> RequestSpec<'_> {
        let a = &self.arrivals.list[i];
        let e = &self.endpoints[a.endpoint as usize];
        RequestSpec {
            method: &e.method,
            path: e.path(i as u64),
            user: user_id(a.user),
            body: e.has_body(),
        }
    }

    /// The highest rate any phase asks for, per second.
    pub fn peak_rate(&self) -> f64 {
        self.workload
            .phases
            .iter()
            .map(|p| p.rate.max(p.rate_end))
            .fold(0.0, f64::max)
    }

    /// The endpoint a concrete path belongs to.
    pub fn endpoint_of(&self, path: &str) -> Option<usize> {
        self.endpoints.iter().position(|e| e.matches(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trips() {
        for name in ["seed", "api-mix", "boundary", "onoff"] {
            let w = Workload::load(name).unwrap();
            let s = scale_workload(
                &w,
                Scale {
                    time: 0.07,
                    rate: 0.3,
                },
            )
            .unwrap();
            let text = to_toml(&s, 9).unwrap();
            let back = Workload::parse(&text, "w.toml", "w").unwrap();
            assert_eq!(back.seed, 9);
            assert_eq!(back.phases, s.phases, "{name}");
            assert_eq!(back.endpoints, s.endpoints, "{name}");
            assert_eq!(back.process, s.process, "{name}");
            assert_eq!(back.users, s.users, "{name}");
            assert_eq!(back.description, s.description, "{name}");
        }
    }

    #[test]
    fn shared_routes_are_refused() {
        let text = r#"
[[phase]]
name = "p"
duration = "1s"
rate = 1
[[endpoint]]
path = "GET /a"
limit = 1
window = "1s"
[[endpoint]]
path = "POST /a"
limit = 1
window = "1s"
"#;
        let w = Workload::parse(text, "w.toml", "w").unwrap();
        let e = LoadPlan::new(w, 1).unwrap_err().to_string();
        assert!(e.contains("shares the route /a"), "{e}");
    }
}
