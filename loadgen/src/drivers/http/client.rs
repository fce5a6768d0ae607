//! A small HTTP/1.1 client on hyper for everything around the load itself: checking the
//! targets before a run, reading the backend's `/stats` (the ground truth) and the
//! gateways' `/metrics` (their own counters), and the open-loop driver's requests.
//!
//! The guarantee: every call is bounded by a timeout and answers a typed error that
//! names the URL and says what went wrong in words (refused, timed out, not a ratelab
//! gateway), never a panic.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use gateway_contract::metrics::{self, LABEL_ALGORITHM, LABEL_OUTCOME};
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::drivers::http::record::Reply;

/// The hyper client every helper uses: keep-alive, plain HTTP.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A fresh client keeping up to `idle` idle connections per host.
pub fn client(idle: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(idle)
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// Bodies larger than this are cut off (ground-truth JSON of many keys fits).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Why a helper request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not an `http://host:port` URL.
    #[error("{url:?} is not a usable URL: {message}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// No connection or no response.
    #[error("{url}: {message}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Refused, timed out...
        message: String,
    },
    /// A response, but not the expected one.
    #[error("{url}: {message}")]
    Unexpected {
        /// The URL.
        url: String,
        /// What was wrong with it.
        message: String,
    },
}

/// Checks and normalises a base URL: `http://host:port`, no path, no trailing slash.
pub fn base_url(url: &str) -> Result<String, ClientError> {
    let err = |message: &str| ClientError::Url {
        url: url.to_owned(),
        message: message.to_owned(),
    };
    let trimmed = url.trim().trim_end_matches('/');
    let uri: Uri = trimmed.parse().map_err(|_| err("cannot parse it"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err(err("https is not supported: the gateway speaks plain HTTP")),
        _ => return Err(err("expected http://host:port")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(err("it has no host"));
    }
    if uri
        .path_and_query()
        .is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty())
    {
        return Err(err("give the base URL only, without a path"));
    }
    Ok(trimmed.to_owned())
}

/// A complete response.
#[derive(Debug)]
pub struct Response {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// Sends one request and reads the whole response within `timeout`. The error is the
/// [`Reply`] a load request would record.
pub async fn send(
    client: &HttpClient,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
    timeout: Duration,
) -> Result<Response, Reply> {
    let mut builder = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    if !body.is_empty() {
        builder = builder.header(http::header::CONTENT_TYPE, "application/json");
    }
    let req = builder.body(Full::new(body)).map_err(|_| Reply::Other)?;
    let exchange = async {
        let res = client.request(req).await.map_err(|e| {
            if e.is_connect() {
                Reply::Connect
            } else {
                Reply::Other
            }
        })?;
        let (parts, body) = res.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|_| Reply::Other)?
            .to_bytes();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(Reply::Timeout),
    }
}

fn reply_words(r: Reply) -> &'static str {
    match r {
        Reply::Connect => "connection refused (is it running?)",
        Reply::Timeout => "no answer in time",
        Reply::Other | Reply::Status(_) => "the exchange failed",
    }
}

/// `GET url`, expecting `200`; the body as text.
pub async fn get_text(
    client: &HttpClient,
    url: &str,
    timeout: Duration,
) -> Result<String, ClientError> {
    let res = send(client, Method::GET, url, &[], Bytes::new(), timeout)
        .await
        .map_err(|r| ClientError::Unreachable {
            url: url.to_owned(),
            message: reply_words(r).to_owned(),
        })?;
    if res.status != StatusCode::OK {
        return Err(ClientError::Unexpected {
            url: url.to_owned(),
            message: format!("answered {} instead of 200", res.status),
        });
    }
    String::from_utf8(res.body.to_vec()).map_err(|_| ClientError::Unexpected {
        url: url.to_owned(),
        message: "the body is not UTF-8".to_owned(),
    })
}

/// Counters of one or more ratelab gateways, from `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewaySnapshot {
    /// Decisions that admitted.
    pub allowed: u64,
    /// Decisions that refused.
    pub denied: u64,
    /// Requests refused because the store failed.
    pub unavailable: u64,
    /// Decisions made by the failure policy.
    pub fallbacks: u64,
    /// The algorithms the routes run.
    pub algorithms: BTreeSet<String>,
}

impl GatewaySnapshot {
    /// Adds another gateway's counters.
    pub fn add(&mut self, other: &GatewaySnapshot) {
        self.allowed += other.allowed;
        self.denied += other.denied;
        self.unavailable += other.unavailable;
        self.fallbacks += other.fallbacks;
        self.algorithms.extend(other.algorithms.iter().cloned());
    }

    /// `self - before`, counter by counter (a restarted gateway's counters drop to 0:
    /// never negative).
    pub fn since(&self, before: &GatewaySnapshot) -> GatewaySnapshot {
        GatewaySnapshot {
            allowed: self.allowed.saturating_sub(before.allowed),
            denied: self.denied.saturating_sub(before.denied),
            unavailable: self.unavailable.saturating_sub(before.unavailable),
            fallbacks: self.fallbacks.saturating_sub(before.fallbacks),
            algorithms: self.algorithms.clone(),
        }
    }
}

fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let len = labels[start..].find('"')?;
    Some(&labels[start..start + len])
}

/// Reads the gateway families from Prometheus text; `None` when there are none (not a
/// ratelab gateway).
pub fn parse_metrics(text: &str) -> Option<GatewaySnapshot> {
    let mut s = GatewaySnapshot::default();
    let mut seen = false;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let value = if value.is_finite() && value > 0.0 {
            value as u64
        } else {
            0
        };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        if name == metrics::DECISIONS.sample {
            seen = true;
            if let Some(a) = label(labels, LABEL_ALGORITHM) {
                s.algorithms.insert(a.to_owned());
            }
            match label(labels, LABEL_OUTCOME) {
                Some(metrics::OUTCOME_ALLOWED) => s.allowed += value,
                Some(metrics::OUTCOME_DENIED) => s.denied += value,
                Some(metrics::OUTCOME_UNAVAILABLE) => s.unavailable += value,
                _ => {}
            }
        } else if name == metrics::STORE_FALLBACKS.sample {
            seen = true;
            s.fallbacks += value;
        } else if name.starts_with(metrics::PREFIX) {
            seen = true;
        }
    }
    seen.then_some(s)
}

/// Reads `/metrics` of a gateway.
pub async fn gateway_metrics(
    client: &HttpClient,
    base: &str,
    timeout: Duration,
) -> Result<GatewaySnapshot, ClientError> {
    let url = format!("{base}/metrics");
    let text = get_text(client, &url, timeout).await?;
    parse_metrics(&text).ok_or_else(|| ClientError::Unexpected {
        url,
        message: format!(
            "answers, but is not a ratelab gateway (no {} metrics)",
            metrics::PREFIX
        ),
    })
}

/// Checks a target before the run: it must answer `/healthz` with 200 and expose
/// ratelab gateway metrics.
pub async fn probe_gateway(
    client: &HttpClient,
    base: &str,
) -> Result<GatewaySnapshot, ClientError> {
    let timeout = Duration::from_secs(3);
    let url = format!("{base}/healthz");
    get_text(client, &url, timeout).await.map_err(|e| match e {
        ClientError::Unexpected { url, message } => ClientError::Unexpected {
            url,
            message: format!("{message}: not a ratelab gateway"),
        },
        other => other,
    })?;
    gateway_metrics(client, base, timeout).await
}

/// The backend's counts: requests per user and concrete path — the `/stats` document
/// exactly as the backend writes it.
pub type BackendStats = gateway_contract::stats::StatsDocument;

/// Reads the backend's `/stats`.
pub async fn backend_stats(client: &HttpClient, base: &str) -> Result<BackendStats, ClientError> {
    let url = format!("{base}/stats");
    let text = get_text(client, &url, Duration::from_secs(10)).await?;
    serde_json::from_str(&text).map_err(|e| ClientError::Unexpected {
        url,
        message: format!("is not the ratelab backend's /stats: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            base_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(
            base_url("https://x")
                .unwrap_err()
                .to_string()
                .contains("https")
        );
        assert!(base_url("127.0.0.1:8080").is_err());
        assert!(
            base_url("http://x/api")
                .unwrap_err()
                .to_string()
                .contains("without a path")
        );
        assert!(base_url("not a url").is_err());
    }

    #[test]
    fn metrics_are_read() {
        let text = "# HELP x\n\
            ratelab_gateway_decisions_total{route=\"/a\",algorithm=\"gcra\",outcome=\"allowed\"} 7\n\
            ratelab_gateway_decisions_total{route=\"/a\",algorithm=\"gcra\",outcome=\"denied\"} 3\n\
            ratelab_gateway_decisions_total{route=\"/a\",algorithm=\"gcra\",outcome=\"unavailable\"} 1\n\
            ratelab_gateway_store_fallbacks_total{route=\"/a\",algorithm=\"gcra\",policy=\"fail-open\"} 2\n\
            ratelab_gateway_store_fallbacks_total{route=\"/a\",algorithm=\"gcra\",policy=\"local\"} 0\n";
        let s = parse_metrics(text).unwrap();
        assert_eq!(
            (s.allowed, s.denied, s.unavailable, s.fallbacks),
            (7, 3, 1, 2)
        );
        assert_eq!(s.algorithms.iter().collect::<Vec<_>>(), ["gcra"]);
        assert_eq!(parse_metrics("go_goroutines 7\n"), None);
        let mut t = s.clone();
        t.add(&s);
        assert_eq!(t.since(&s), s);
    }
}
