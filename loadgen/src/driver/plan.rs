//! What a load run plays: a workload scaled to fit the machine, its arrivals, and the
//! HTTP request each arrival becomes.
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

use std::time::Duration;

use gateway_contract::config::{LimitTable, routes_toml};
use gateway_contract::policy::PolicySpec;
use gateway_contract::routes::{Template, normalise};
use http::Method;
use limiter_core::{Kind, Nanos, Quota};

use crate::arrivals::{self, Arrivals};
use crate::workload::{Process, Workload};

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

/// How a workload is stretched or thinned to fit the machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    /// Durations are multiplied by this, rates divided by it.
    pub time: f64,
    /// Rates are multiplied by this.
    pub rate: f64,
}

impl Default for Scale {
    fn default() -> Self {
        Self {
            time: 1.0,
            rate: 1.0,
        }
    }
}

impl Scale {
    /// Checks both factors are in `[1e-4, 1e4]`.
    pub fn validate(&self) -> Result<(), PlanError> {
        for (which, value) in [("time-scale", self.time), ("rate-scale", self.rate)] {
            if !(value.is_finite() && (1e-4..=1e4).contains(&value)) {
                return Err(PlanError::Scale {
                    which,
                    value,
                    min: 1e-4,
                    max: 1e4,
                });
            }
        }
        Ok(())
    }

    /// True for the identity scale.
    pub fn is_identity(&self) -> bool {
        self.time == 1.0 && self.rate == 1.0
    }
}

fn mul(n: Nanos, f: f64) -> Nanos {
    (n as f64 * f).round().max(0.0) as Nanos
}

/// The workload `w` with `scale` applied (see the module docs).
pub fn scale_workload(w: &Workload, scale: Scale) -> Result<Workload, PlanError> {
    scale.validate()?;
    let mut out = w.clone();
    if scale.is_identity() {
        return Ok(out);
    }
    let t = scale.time;
    let rate = scale.rate / t;
    let mut start = 0;
    for p in &mut out.phases {
        p.start = start;
        p.duration = mul(p.duration, t).max(1);
        p.rate *= rate;
        p.rate_end *= rate;
        start += p.duration;
    }
    out.process = match out.process {
        Process::OnOff { on, off } => Process::OnOff {
            on: mul(on, t).max(1),
            off: mul(off, t).max(1),
        },
        Process::Boundary { window, spread } => Process::Boundary {
            window: mul(window, t).max(1),
            spread: mul(spread, t).max(1),
        },
        p => p,
    };
    for e in &mut out.endpoints {
        let q = e.quota;
        let period = mul(q.period_nanos(), t);
        e.quota = Quota::new(q.limit(), Duration::from_nanos(period))
            .and_then(|n| n.with_burst(q.burst()))
            .map_err(|err| PlanError::Policy {
                endpoint: e.path.clone(),
                message: err.to_string(),
            })?;
    }
    let d = &mut out.deployment;
    d.skew = mul(d.skew, t);
    d.rtt = mul(d.rtt, t);
    d.jitter = mul(d.jitter, t).min(d.rtt);
    let mut note = Vec::new();
    if t != 1.0 {
        note.push(format!("time ×{t}"));
    }
    if scale.rate != 1.0 {
        note.push(format!("rate ×{}", scale.rate));
    }
    out.description = format!("{} (scaled: {})", out.description, note.join(", "));
    Ok(out)
}

/// The HTTP request an endpoint's arrivals become.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointRequest {
    /// The method (`GET` unless the endpoint's path starts with another).
    pub method: Method,
    /// The route template the gateway keys on (`/api/orders/{id}`), parsed by the
    /// gateway's own parser.
    pub template: Template,
}

const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

impl EndpointRequest {
    /// Parses an endpoint path: `"GET /api/orders/{id}"` or just `"/api/orders/{id}"`.
    pub fn parse(path: &str) -> Result<Self, PlanError> {
        let err = |message: String| PlanError::Endpoint {
            endpoint: path.to_owned(),
            message,
        };
        let trimmed = path.trim();
        let (method, template) = match trimmed.split_once(char::is_whitespace) {
            Some((m, rest)) if METHODS.contains(&m.to_ascii_uppercase().as_str()) => {
                let m = Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|e| err(e.to_string()))?;
                (m, rest.trim())
            }
            Some((m, _)) if !m.starts_with('/') => {
                return Err(err(format!(
                    "unknown method {m:?} (expected one of: {})",
                    METHODS.join(", ")
                )));
            }
            _ => (Method::GET, trimmed),
        };
        let template = Template::parse(template).map_err(err)?;
        Ok(Self { method, template })
    }

    /// A concrete path for the `n`th request: parameters become small numbers
    /// (`1..=8`), so the backend's per-path counts stay few.
    pub fn path(&self, n: u64) -> String {
        self.template.fill(|| (n % 8 + 1).to_string())
    }

    /// Whether a concrete `path` falls under this template, as the gateway decides it
    /// (the same normalisation and matching).
    pub fn matches(&self, path: &str) -> bool {
        self.template.matches(&normalise(path))
    }

    /// True for methods that carry a body.
    pub fn has_body(&self) -> bool {
        matches!(self.method, Method::POST | Method::PUT | Method::PATCH)
    }
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

/// The gateway `[[route]]` tables that enforce `w`'s policies with algorithm `kind`,
/// as TOML written by serde from the gateway's own config types: windowed algorithms
/// get `limit` per `window`, buckets `capacity` = burst and `refill_per_sec` = limit /
/// window.
pub fn gateway_routes(w: &Workload, kind: Kind) -> Result<String, PlanError> {
    let mut tables = Vec::with_capacity(w.endpoints.len());
    for e in &w.endpoints {
        let req = EndpointRequest::parse(&e.path)?;
        let policy =
            PolicySpec::new(e.quota, e.cost, &[kind]).map_err(|err| PlanError::Policy {
                endpoint: e.path.clone(),
                message: err.to_string(),
            })?;
        tables.push(LimitTable::route(req.template.as_str(), kind, &policy));
    }
    let routes = routes_toml(tables).map_err(|err| PlanError::Policy {
        endpoint: w.name.clone(),
        message: err.to_string(),
    })?;
    Ok(format!(
        "# Routes for workload {:?} with {} (generated by `ratelab load --emit-routes`).\n\n{routes}",
        w.name,
        kind.name()
    ))
}

/// A duration as workload files read it, exactly (the contract's syntax).
fn workload_duration(n: Nanos) -> String {
    gateway_contract::duration::format_nanos(n)
}

/// The workload as TOML that [`Workload::parse`] reads back to the same workload, with
/// `seed`.
pub fn to_toml(w: &Workload, seed: u64) -> String {
    use std::fmt::Write as _;

    use crate::workload::UserDistribution;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Written by `ratelab load`: the workload exactly as it was played."
    );
    let _ = writeln!(out, "name = {:?}", w.name);
    let _ = writeln!(out, "description = {:?}", w.description);
    let _ = writeln!(out, "seed = {seed}");
    let _ = write!(out, "\n[users]\ncount = {}\n", w.users.count);
    match w.users.distribution {
        UserDistribution::Uniform => {
            let _ = writeln!(out, "distribution = \"uniform\"");
        }
        UserDistribution::Zipf { exponent } => {
            let _ = writeln!(out, "distribution = \"zipf\"\nexponent = {exponent:?}");
        }
    }
    let _ = write!(out, "\n[arrivals]\nprocess = {:?}\n", w.process.name());
    match w.process {
        crate::workload::Process::OnOff { on, off } => {
            let _ = writeln!(
                out,
                "on = {:?}\noff = {:?}",
                workload_duration(on),
                workload_duration(off)
            );
        }
        crate::workload::Process::Boundary { window, spread } => {
            let _ = writeln!(
                out,
                "window = {:?}\nspread = {:?}",
                workload_duration(window),
                workload_duration(spread)
            );
        }
        crate::workload::Process::Constant | crate::workload::Process::Poisson => {}
    }
    let d = &w.deployment;
    if *d != crate::workload::Deployment::default() {
        let _ = write!(
            out,
            "\n[deployment]\nstore = {:?}\ngateways = {}\nskew = {:?}\nrtt = {:?}\njitter = {:?}\n",
            d.store.name(),
            d.gateways,
            workload_duration(d.skew),
            workload_duration(d.rtt),
            workload_duration(d.jitter)
        );
    }
    for p in &w.phases {
        let _ = write!(
            out,
            "\n[[phase]]\nname = {:?}\nduration = {:?}\nrate = {:?}\n",
            p.name,
            workload_duration(p.duration),
            p.rate
        );
        if p.rate_end != p.rate {
            let _ = writeln!(out, "ramp_to = {:?}", p.rate_end);
        }
    }
    for e in &w.endpoints {
        let q = &e.quota;
        let _ = write!(
            out,
            "\n[[endpoint]]\npath = {:?}\nweight = {:?}\nlimit = {}\nwindow = {:?}\nburst = {}\ncost = {}\n",
            e.path,
            e.weight,
            q.limit(),
            workload_duration(q.period_nanos()),
            q.burst(),
            e.cost
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::workload::SECOND;

    #[test]
    fn time_scale_keeps_counts_and_decisions() {
        let w = Workload::load("seed").unwrap();
        let s = scale_workload(
            &w,
            Scale {
                time: 0.1,
                rate: 1.0,
            },
        )
        .unwrap();
        assert_eq!(s.duration(), 15 * SECOND);
        assert_eq!(s.phases[1].start, 6 * SECOND);
        assert_eq!(s.phases[2].rate, 600.0);
        assert_eq!(s.endpoints[0].quota.period_nanos(), 6 * SECOND);
        assert_eq!(s.endpoints[0].quota.burst(), 5);
        let a = arrivals::generate(&w, 1);
        let b = arrivals::generate(&s, 1);
        assert_eq!(a.list.len(), b.list.len());
        assert_eq!(a.phase_starts, b.phase_starts);
        for (x, y) in a.list.iter().zip(&b.list) {
            assert!(
                (x.at as f64 * 0.1 - y.at as f64).abs() <= 1.0,
                "{} vs {}",
                x.at,
                y.at
            );
        }
    }

    #[test]
    fn rate_scale_thins() {
        let w = Workload::load("api-mix").unwrap();
        let s = scale_workload(
            &w,
            Scale {
                time: 1.0,
                rate: 0.01,
            },
        )
        .unwrap();
        assert_eq!(s.duration(), w.duration());
        assert_eq!(s.phases[2].rate, 200.0);
        assert!(s.description.contains("rate ×0.01"));
        assert!(
            Scale {
                time: 0.0,
                rate: 1.0
            }
            .validate()
            .is_err()
        );
        assert!(
            Scale {
                time: 1.0,
                rate: f64::NAN
            }
            .validate()
            .is_err()
        );
    }

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
            let text = to_toml(&s, 9);
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
    fn endpoints_become_requests() {
        let e = EndpointRequest::parse("GET /api/orders/{id}").unwrap();
        assert_eq!(e.method, Method::GET);
        assert_eq!(e.template.as_str(), "/api/orders/{id}");
        assert_eq!(e.path(0), "/api/orders/1");
        assert_eq!(e.path(15), "/api/orders/8");
        assert!(e.matches("/api/orders/7"));
        assert!(!e.matches("/api/orders"));
        assert!(!e.matches("/api/orders/7/x"));
        let p = EndpointRequest::parse("post /api/orders").unwrap();
        assert_eq!(p.method, Method::POST);
        assert!(p.has_body());
        assert!(p.matches("/api/orders"));
        assert!(!p.matches("/api/orders/1"));
        let r = EndpointRequest::parse("/files/{*rest}").unwrap();
        assert!(r.matches("/files/a/b"));
        assert!(!r.matches("/files"));
        assert!(EndpointRequest::parse("FETCH /x").is_err());
        assert!(EndpointRequest::parse("GET x").is_err());
        assert!(EndpointRequest::parse("/a/{*r}/b").is_err());
        assert!(EndpointRequest::parse("/a/x{id}").is_err());
        // One normalisation with the gateway: `//`, `.` and `..` are the gateway's.
        assert!(e.matches("/api//orders/7/"));
        assert!(e.matches("/api/./x/../orders/7"));
        assert!(EndpointRequest::parse("/a/../b").is_err());
        assert_eq!(user_index(&user_id(42)), Some(42));
        assert_eq!(user_index("alice"), None);
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

    #[test]
    fn routes_for_the_gateway() {
        let w = Workload::load("seed").unwrap();
        let s = scale_workload(
            &w,
            Scale {
                time: 0.1,
                rate: 1.0,
            },
        )
        .unwrap();
        let tb = gateway_routes(&s, Kind::TokenBucket).unwrap();
        assert!(tb.contains("path = \"/api/orders\""), "{tb}");
        assert!(
            tb.contains("capacity = 5\nrefill_per_sec = 0.8333333333333334\n"),
            "{tb}"
        );
        let fw = gateway_routes(&s, Kind::FixedWindow).unwrap();
        assert!(fw.contains("limit = 5\nwindow = \"6s\"\n"), "{fw}");
        // What the gateway reads is exactly what the workload plays.
        let config = gateway::Config::parse("gw.toml", &fw).unwrap();
        let q = config.routes[0].limit.policy.quota;
        assert_eq!(q, s.endpoints[0].quota.with_burst(q.burst()).unwrap());
        assert_eq!(config.routes[0].path.as_str(), "/api/orders");
    }
}
