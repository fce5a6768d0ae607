//! The mock backend: answers every request after a configurable latency, fails a
//! configurable share of them, and counts what reached it per user and path — the
//! ground truth for how much a gateway admitted.
//!
//! The guarantee: every request that reaches the backend's data port is counted exactly
//! once, before it is answered, so `GET /stats` after the responses have arrived is
//! exact. `/stats` and `POST /stats/reset` (which zeroes the counts) are served on a
//! listener of their own ([`Backend::serve_stats`]), never on the data port: there
//! `/stats` is an ordinary path like any other, so a client of a gateway in front
//! cannot read every user id or reset the ground truth. Memory stays bounded:
//! past [`MAX_TRACKED`] distinct user+path pairs, new pairs are counted only in the
//! totals (and in `untracked`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use gateway_contract::stats::StatsDocument;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use tokio::net::TcpListener;

/// The most distinct user+path pairs counted separately.
pub const MAX_TRACKED: usize = 100_000;

/// The user header the backend counts by (the contract's identity header).
pub use gateway_contract::USER_HEADER;

/// How long the backend takes to answer, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    /// Always `ms`.
    Fixed(f64),
    /// Uniform in `[lo, hi)`.
    Uniform(f64, f64),
    /// Log-normal with the given median and shape `sigma` (a long right tail).
    LogNormal {
        /// The median, ms.
        median: f64,
        /// The shape: 0.5 gives p99 ≈ 3.2 × median.
        sigma: f64,
    },
}

impl Latency {
    fn sample(&self, rng: &mut StdRng) -> Duration {
        let ms = match *self {
            Latency::Fixed(ms) => ms,
            Latency::Uniform(lo, hi) => rng.random_range(lo..hi),
            Latency::LogNormal { median, sigma } => {
                LogNormal::new(median.ln(), sigma).map_or(median, |d| d.sample(rng))
            }
        };
        Duration::from_secs_f64((ms / 1000.0).clamp(0.0, 3600.0))
    }

    fn is_zero(&self) -> bool {
        matches!(self, Latency::Fixed(ms) if *ms == 0.0)
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Latency::Fixed(ms) => write!(f, "fixed:{ms}"),
            Latency::Uniform(lo, hi) => write!(f, "uniform:{lo},{hi}"),
            Latency::LogNormal { median, sigma } => write!(f, "lognormal:{median},{sigma}"),
        }
    }
}

impl FromStr for Latency {
    type Err = String;

    /// `5` or `fixed:5`; `uniform:2,8`; `lognormal:5,0.5` (median ms, sigma).
    fn from_str(s: &str) -> Result<Self, String> {
        let num = |v: &str| -> Result<f64, String> {
            let n: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("latency {s:?}: {v:?} is not a number of milliseconds"))?;
            if !n.is_finite() || n < 0.0 {
                return Err(format!(
                    "latency {s:?}: {v:?} must be a non-negative number"
                ));
            }
            Ok(n)
        };
        let pair = |v: &str| -> Result<(f64, f64), String> {
            let (a, b) = v
                .split_once(',')
                .ok_or_else(|| format!("latency {s:?}: expected two numbers separated by ','"))?;
            Ok((num(a)?, num(b)?))
        };
        let (kind, args) = s.split_once(':').unwrap_or(("fixed", s));
        match kind {
            "fixed" => Ok(Latency::Fixed(num(args)?)),
            "uniform" => {
                let (lo, hi) = pair(args)?;
                if hi <= lo {
                    return Err(format!(
                        "latency {s:?}: the upper bound must exceed the lower"
                    ));
                }
                Ok(Latency::Uniform(lo, hi))
            }
            "lognormal" => {
                let (median, sigma) = pair(args)?;
                if median <= 0.0 || sigma <= 0.0 {
                    return Err(format!("latency {s:?}: median and sigma must be positive"));
                }
                Ok(Latency::LogNormal { median, sigma })
            }
            other => Err(format!(
                "unknown latency distribution {other:?} (expected fixed:MS, uniform:LO,HI or lognormal:MEDIAN,SIGMA)"
            )),
        }
    }
}

/// How the backend behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendConfig {
    /// Response latency.
    pub latency: Latency,
    /// Share of requests answered `500`, in `[0, 1]`.
    pub error_rate: f64,
    /// Seed of the latency and error draws.
    pub seed: u64,
    /// A response header saying what each request cost, as an LLM backend reports the
    /// tokens it used (for a gateway's `cost_from_response`): its value is the
    /// request's `cost` query parameter, as sent (no parameter, no header).
    pub cost_header: Option<http::HeaderName>,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            latency: Latency::Fixed(0.0),
            error_rate: 0.0,
            seed: 1,
            cost_header: None,
        }
    }
}

/// The value of the `cost` parameter of `query`, as sent.
fn cost_param(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("cost="))
}

#[derive(Debug, Default)]
struct Counts {
    /// What `/stats` answers.
    doc: StatsDocument,
    /// Distinct user+path pairs in `doc.users`.
    tracked: usize,
}

/// The backend's request counts, shared by its connections.
#[derive(Debug, Default)]
pub struct Stats {
    counts: Mutex<Counts>,
}

impl Stats {
    fn record(&self, user: &str, path: &str, error: bool) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let Counts { doc, tracked } = &mut *c;
        doc.total += 1;
        doc.errors += u64::from(error);
        if let Some(paths) = doc.users.get_mut(user) {
            if let Some(count) = paths.get_mut(path) {
                *count += 1;
                return;
            }
            if *tracked < MAX_TRACKED {
                paths.insert(path.to_owned(), 1);
                *tracked += 1;
                return;
            }
        } else if *tracked < MAX_TRACKED {
            doc.users
                .insert(user.to_owned(), HashMap::from([(path.to_owned(), 1)]));
            *tracked += 1;
            return;
        }
        doc.untracked += 1;
    }

    /// Requests counted since the last reset.
    pub fn total(&self) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .doc
            .total
    }

    /// Requests for `user` on `path` since the last reset.
    pub fn count(&self, user: &str, path: &str) -> u64 {
        let c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        c.doc.count(user, path)
    }

    /// Zeroes every count.
    pub fn reset(&self) {
        *self.counts.lock().unwrap_or_else(PoisonError::into_inner) = Counts::default();
    }

    /// The counts as the `/stats` JSON ([`StatsDocument`]).
    pub fn to_json(&self) -> String {
        let c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        // A document of strings and integers always serialises.
        serde_json::to_string(&c.doc).unwrap_or_default()
    }
}

/// The mock backend.
#[derive(Debug)]
pub struct Backend {
    config: BackendConfig,
    stats: Arc<Stats>,
    rng: Mutex<StdRng>,
}

type Body = Full<Bytes>;

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

impl Backend {
    /// A backend behaving as `config` says.
    pub fn new(config: BackendConfig) -> Arc<Self> {
        Arc::new(Self {
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            config,
            stats: Arc::new(Stats::default()),
        })
    }

    /// Its counts.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// The stats listener's answer: the counts, or zeroing them.
    fn stats_answer<B>(&self, req: &Request<B>) -> Response<Body> {
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/stats") => respond(StatusCode::OK, self.stats.to_json()),
            (&Method::POST, "/stats/reset") => {
                self.stats.reset();
                respond(StatusCode::OK, "{\"reset\":true}\n")
            }
            _ => respond(
                StatusCode::NOT_FOUND,
                "{\"error\":\"GET /stats or POST /stats/reset\"}\n",
            ),
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        // Read (and discard) the body, so the connection stays reusable.
        let _ = http_body_util::Limited::new(body, 16 * 1024 * 1024)
            .collect()
            .await;
        let (delay, error) = if self.config.latency.is_zero() && self.config.error_rate <= 0.0 {
            (Duration::ZERO, false)
        } else {
            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            let delay = self.config.latency.sample(&mut rng);
            (
                delay,
                self.config.error_rate > 0.0 && rng.random::<f64>() < self.config.error_rate,
            )
        };
        let user = parts
            .headers
            .get(USER_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        self.stats.record(user, parts.uri.path(), error);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut res = if error {
            respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "{\"error\":\"injected failure\"}\n",
            )
        } else {
            respond(StatusCode::OK, "{\"ok\":true}\n")
        };
        if let Some(name) = &self.config.cost_header
            && let Some(cost) = cost_param(parts.uri.query())
            && let Ok(value) = HeaderValue::from_str(cost)
        {
            res.headers_mut().insert(name.clone(), value);
        }
        res
    }

    /// Serves the data port on `listener` (every path answered and counted) until
    /// `shutdown` completes, then drains in-flight requests (for at most 10 seconds).
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        self.serve_as(listener, shutdown, false).await;
    }

    /// Serves `GET /stats` and `POST /stats/reset` on `listener` (and nothing else) until
    /// `shutdown` completes.
    pub async fn serve_stats(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) {
        self.serve_as(listener, shutdown, true).await;
    }

    async fn serve_as(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
        stats: bool,
    ) {
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new()).keep_alive(true);
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, _) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let this = Arc::clone(&self);
            let service = hyper::service::service_fn(move |req| {
                let this = Arc::clone(&this);
                async move {
                    Ok::<_, Infallible>(if stats {
                        this.stats_answer(&req)
                    } else {
                        this.handle(req).await
                    })
                }
            });
            let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
        drop(listener);
        let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_specs() {
        assert_eq!("5".parse(), Ok(Latency::Fixed(5.0)));
        assert_eq!("fixed:0.5".parse(), Ok(Latency::Fixed(0.5)));
        assert_eq!("uniform:1,3".parse(), Ok(Latency::Uniform(1.0, 3.0)));
        assert_eq!(
            "lognormal:5,0.5".parse(),
            Ok(Latency::LogNormal {
                median: 5.0,
                sigma: 0.5
            })
        );
        for bad in [
            "",
            "-1",
            "uniform:3,1",
            "lognormal:0,1",
            "gamma:1",
            "uniform:1",
            "fixed:nan",
        ] {
            assert!(bad.parse::<Latency>().is_err(), "{bad}");
        }
    }

    #[test]
    fn samples_stay_in_range() {
        let mut rng = StdRng::seed_from_u64(7);
        let u = Latency::Uniform(1.0, 3.0);
        for _ in 0..1000 {
            let d = u.sample(&mut rng);
            assert!(d >= Duration::from_millis(1) && d < Duration::from_millis(3));
        }
        let l = Latency::LogNormal {
            median: 5.0,
            sigma: 0.5,
        };
        let mut v: Vec<Duration> = (0..2001).map(|_| l.sample(&mut rng)).collect();
        v.sort();
        let median = v[1000].as_secs_f64() * 1000.0;
        assert!((4.0..6.0).contains(&median), "{median}");
    }

    #[test]
    fn counts_per_user_and_path() {
        let s = Stats::default();
        s.record("u1", "/a", false);
        s.record("u1", "/a", true);
        s.record("u2", "/b", false);
        assert_eq!(s.total(), 3);
        assert_eq!(s.count("u1", "/a"), 2);
        let json: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(json["total"], 3);
        assert_eq!(json["errors"], 1);
        assert_eq!(json["users"]["u2"]["/b"], 1);
        s.reset();
        assert_eq!(s.total(), 0);
    }
}
