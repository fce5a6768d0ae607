//! Prometheus metrics on `GET /metrics`: the gateway's counters and histograms, the
//! per-route decision families, the standard `process_*` metrics and
//! `ratelab_build_info`, written by `prometheus-client`'s encoders.
//!
//! The guarantee: recording is a relaxed atomic add (a counter) or a bucket search and
//! two (a [`Histogram`]), with no lock and no allocation on the request path; a scrape
//! costs O(routes), never O(keys); the text is the Prometheus format 0.0.4
//! (`text/plain; version=0.0.4; charset=utf-8`), or OpenMetrics 1.0 for a scraper whose
//! `Accept` asks for it, each counter monotonically increasing between scrapes.
//!
//! Values live where they are counted (here, and in each route's stats); at scrape
//! time [`Collector`]s hand them to the registry's encoder in a fixed order, so the
//! output is stable for the tests and scripts that read it.

mod histogram;
mod process;

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::contract::metrics as names;

pub use histogram::{DECISION_BUCKETS, Histogram, UPSTREAM_BUCKETS};
pub use process::ProcessCollector;
pub use prometheus_client::encoding::DescriptorEncoder;
pub use prometheus_client::metrics::gauge::Gauge;

/// The content type of the Prometheus text format the gateway answers by default.
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The content type of OpenMetrics text, for scrapers that ask for it.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A monotonically increasing count: prometheus-client's counter (one shared atomic),
/// with an `inc` that reads as a statement wherever it is used.
#[derive(Debug, Default, Clone)]
pub struct Counter(prometheus_client::metrics::counter::Counter);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.inc();
    }

    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

impl EncodeMetric for Counter {
    fn encode(&self, encoder: prometheus_client::encoding::MetricEncoder) -> fmt::Result {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// Writes one family of `kind` whose members are `(labels, metric)` pairs.
pub fn encode_family<'m, S, M>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    members: impl IntoIterator<Item = (S, &'m M)>,
) -> fmt::Result
where
    S: EncodeLabelSet,
    M: EncodeMetric + 'm,
{
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, metric) in members {
        metric.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes one family of a single, unlabelled metric.
pub fn encode_one(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> fmt::Result {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// Writes the in-memory limiters' evictions (by reason) and refusals of new keys, one
/// member per route (`labels`: route and algorithm).
pub fn encode_store_counters(
    encoder: &mut DescriptorEncoder,
    routes: &[([(&'static str, &str); 2], limiter_core::store::StoreStats)],
) -> fmt::Result {
    use prometheus_client::metrics::counter::ConstCounter;
    let evictions: Vec<_> = routes
        .iter()
        .flat_map(|&([route, algorithm], s)| {
            [
                ("idle", s.evicted_idle),
                ("in_use", s.evicted_forced),
                ("throttled", s.evicted_throttled),
            ]
            .map(|(reason, n)| {
                (
                    [route, algorithm, (names::LABEL_REASON, reason)],
                    ConstCounter::new(n),
                )
            })
        })
        .collect();
    encode_family(
        encoder,
        names::LIMITER_EVICTIONS.name,
        "Keys an in-memory limiter forgot, by reason (idle; in_use: least recently used, to make room; throttled: evict-oldest with every key throttled).",
        MetricType::Counter,
        evictions.iter().map(|(l, c)| (*l, c)),
    )?;
    let refused: Vec<_> = routes
        .iter()
        .map(|(l, s)| (*l, ConstCounter::new(s.refused)))
        .collect();
    encode_family(
        encoder,
        names::LIMITER_REFUSED.name,
        "New keys an in-memory limiter refused (503) because it was full of throttled keys (at_capacity = deny).",
        MetricType::Counter,
        refused.iter().map(|(l, c)| (*l, c)),
    )
}

/// Why the gateway answered an upstream exchange itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayAnswer {
    /// The backend could not be reached or broke the connection: `502`.
    Unreachable,
    /// The backend did not answer in time: `504`.
    Timeout,
    /// The request body was larger than allowed: `413`.
    BodyTooLarge,
    /// The client sent a request the gateway will not forward (an ambiguous path, a
    /// duplicate or contradicting `Host`, a malformed body): `400`, the client's fault.
    BadRequest,
    /// The client paused its request body longer than `body_idle_timeout`: `408`.
    ClientTimeout,
    /// No backend connection came free (`max_backend_connections`) within the upstream
    /// timeout: `503`.
    BackendBusy,
}

impl GatewayAnswer {
    const ALL: [GatewayAnswer; 6] = [
        GatewayAnswer::Unreachable,
        GatewayAnswer::Timeout,
        GatewayAnswer::BodyTooLarge,
        GatewayAnswer::BadRequest,
        GatewayAnswer::ClientTimeout,
        GatewayAnswer::BackendBusy,
    ];

    fn name(self) -> &'static str {
        match self {
            GatewayAnswer::Unreachable => "unreachable",
            GatewayAnswer::Timeout => "timeout",
            GatewayAnswer::BodyTooLarge => "body_too_large",
            GatewayAnswer::BadRequest => "bad_request",
            GatewayAnswer::ClientTimeout => "client_timeout",
            GatewayAnswer::BackendBusy => "backend_busy",
        }
    }
}

/// Gateway-wide metrics (per-route decision metrics live with the routes).
#[derive(Debug)]
pub struct Metrics {
    /// Responses by status class: index 0 for 1xx .. 4 for 5xx.
    responses: [Counter; 5],
    /// Time from forwarding a request to the backend's response headers.
    pub upstream_latency: Histogram,
    upstream_errors: [Counter; GatewayAnswer::ALL.len()],
    /// Client connections accepted.
    pub connections_total: Counter,
    /// Client connections closed at once: their address held `max_connections_per_ip`.
    pub connections_refused: Counter,
    /// Client connections open now.
    pub connections_open: Gauge,
    /// Requests being handled now.
    pub in_flight: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            responses: Default::default(),
            upstream_latency: Histogram::new(UPSTREAM_BUCKETS),
            upstream_errors: Default::default(),
            connections_total: Counter::default(),
            connections_refused: Counter::default(),
            connections_open: Gauge::default(),
            in_flight: Gauge::default(),
        }
    }
}

impl Metrics {
    /// Counts a response with `status`.
    #[inline]
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].inc();
    }

    /// Counts an exchange the gateway answered itself.
    pub fn upstream_error(&self, e: GatewayAnswer) {
        self.upstream_errors[e as usize].inc();
    }

    /// Exchanges of one kind the gateway answered itself, so far.
    pub fn upstream_errors(&self, e: GatewayAnswer) -> u64 {
        self.upstream_errors[e as usize].get()
    }

    /// Writes the gateway-wide families.
    pub fn encode_metrics(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        encode_family(
            encoder,
            names::RESPONSES.name,
            "Responses sent, by status class.",
            MetricType::Counter,
            CLASSES
                .map(|c| [("class", c)])
                .into_iter()
                .zip(&self.responses),
        )?;
        encode_family(
            encoder,
            names::UPSTREAM_ERRORS.name,
            "Requests the gateway answered itself, by kind: the backend's fault (unreachable 502, timeout 504, backend_busy 503) or the client's (body_too_large 413, bad_request 400, client_timeout 408).",
            MetricType::Counter,
            GatewayAnswer::ALL
                .map(|e| [("kind", e.name())])
                .into_iter()
                .zip(&self.upstream_errors),
        )?;
        encode_one(
            encoder,
            names::UPSTREAM_SECONDS.name,
            "Time from forwarding a request to the backend's response headers.",
            &self.upstream_latency,
        )?;
        encode_one(
            encoder,
            names::CONNECTIONS.name,
            "Client connections accepted.",
            &self.connections_total,
        )?;
        encode_one(
            encoder,
            names::CONNECTIONS_REFUSED.name,
            "Client connections closed at once because their address held max_connections_per_ip.",
            &self.connections_refused,
        )?;
        encode_one(
            encoder,
            names::CONNECTIONS_OPEN.name,
            "Client connections open now.",
            &self.connections_open,
        )?;
        encode_one(
            encoder,
            names::IN_FLIGHT.name,
            "Requests being handled now.",
            &self.in_flight,
        )
    }
}

/// `ratelab_build_info`: always 1, labelled with the build's version and profile.
#[derive(Debug, Default, Clone, Copy)]
pub struct BuildInfo;

impl Collector for BuildInfo {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let profile = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        let labels = [("version", env!("CARGO_PKG_VERSION")), ("profile", profile)];
        encode_family(
            &mut encoder,
            "ratelab_build_info",
            "The running build: always 1, labelled with its version and profile.",
            MetricType::Gauge,
            [(labels, &ConstGauge::new(1i64))],
        )
    }
}

/// A [`Collector`] from a function that writes families: how parts that keep their own
/// counters (the routes, the store) join the registry.
pub struct CollectFn<F>(F);

impl<F> CollectFn<F>
where
    F: Fn(&mut DescriptorEncoder) -> fmt::Result + Send + Sync + 'static,
{
    /// A collector that calls `write` at each scrape.
    pub fn new(write: F) -> Self {
        Self(write)
    }
}

impl<F> fmt::Debug for CollectFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CollectFn")
    }
}

impl<F> Collector for CollectFn<F>
where
    F: Fn(&mut DescriptorEncoder) -> fmt::Result + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        (self.0)(&mut encoder)
    }
}

/// What `/metrics` answers: a registry of collectors, encoded in the format the scraper
/// asks for.
#[derive(Debug, Default)]
pub struct Exposition {
    registry: Registry,
}

impl Exposition {
    /// An exposition of `collectors`, in this order, then the `process_*` metrics and
    /// `ratelab_build_info`.
    pub fn new(collectors: Vec<Box<dyn Collector>>) -> Self {
        let mut registry = Registry::default();
        for c in collectors {
            registry.register_collector(c);
        }
        registry.register_collector(Box::new(ProcessCollector));
        registry.register_collector(Box::new(BuildInfo));
        Self { registry }
    }

    /// The body and its content type for a scraper that sent `accept` (OpenMetrics
    /// only when it names `application/openmetrics-text`).
    pub fn render(&self, accept: Option<&[u8]>) -> (&'static str, String) {
        let openmetrics = accept.is_some_and(|a| {
            a.windows(b"application/openmetrics-text".len())
                .any(|w| w.eq_ignore_ascii_case(b"application/openmetrics-text"))
        });
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a `String` cannot fail; a collector's error would leave the text
        // cut short, which a scraper rejects rather than misreads.
        if openmetrics {
            let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
            (OPENMETRICS_CONTENT_TYPE, out)
        } else {
            let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
            (TEXT_CONTENT_TYPE, out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn exposition(metrics: &Arc<Metrics>) -> Exposition {
        let m = Arc::clone(metrics);
        Exposition::new(vec![Box::new(CollectFn::new(
            move |e: &mut DescriptorEncoder| m.encode_metrics(e),
        ))])
    }

    #[test]
    fn the_text_format_keeps_the_names_and_labels_scripts_read() {
        let metrics = Arc::new(Metrics::default());
        metrics.response(200);
        metrics.response(429);
        metrics.response(429);
        metrics.upstream_error(GatewayAnswer::Timeout);
        metrics.upstream_latency.observe(Duration::from_micros(700));
        metrics.upstream_latency.observe(Duration::from_secs(20));
        metrics.connections_total.inc();
        metrics.in_flight.inc();
        let (content_type, text) = exposition(&metrics).render(None);
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        for line in [
            "# TYPE ratelab_gateway_responses_total counter",
            "ratelab_gateway_responses_total{class=\"2xx\"} 1",
            "ratelab_gateway_responses_total{class=\"4xx\"} 2",
            "ratelab_gateway_upstream_errors_total{kind=\"timeout\"} 1",
            "ratelab_gateway_upstream_errors_total{kind=\"unreachable\"} 0",
            "# TYPE ratelab_gateway_upstream_seconds histogram",
            "ratelab_gateway_upstream_seconds_bucket{le=\"0.0005\"} 0",
            "ratelab_gateway_upstream_seconds_bucket{le=\"0.001\"} 1",
            "ratelab_gateway_upstream_seconds_bucket{le=\"10\"} 1",
            "ratelab_gateway_upstream_seconds_bucket{le=\"+Inf\"} 2",
            "ratelab_gateway_upstream_seconds_count 2",
            "ratelab_gateway_connections_total 1",
            "ratelab_gateway_connections_open 0",
            "ratelab_gateway_in_flight 1",
            "# TYPE ratelab_build_info gauge",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
        let build = format!(
            "ratelab_build_info{{version=\"{}\",profile=\"debug\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&build), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
        #[cfg(target_os = "linux")]
        for family in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family} missing in\n{text}"
            );
        }
    }

    #[test]
    fn openmetrics_is_answered_when_asked_for() {
        let metrics = Arc::new(Metrics::default());
        metrics.response(503);
        let accept = b"application/openmetrics-text;version=1.0.0,text/plain;q=0.5";
        let (content_type, text) = exposition(&metrics).render(Some(accept));
        assert_eq!(content_type, OPENMETRICS_CONTENT_TYPE);
        assert!(
            text.contains("# TYPE ratelab_gateway_responses counter\n"),
            "{text}"
        );
        assert!(
            text.contains("ratelab_gateway_responses_total{class=\"5xx\"} 1\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        let (content_type, _) = exposition(&metrics).render(Some(b"text/plain"));
        assert_eq!(content_type, TEXT_CONTENT_TYPE);
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_count_is_the_inf_bucket() {
        let h = Histogram::new(&[0.001, 0.01]);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_secs(1));
        let mut text = String::new();
        let mut registry = Registry::default();
        let h = Arc::new(h);
        let hist = Arc::clone(&h);
        registry.register_collector(Box::new(CollectFn::new(
            move |e: &mut DescriptorEncoder| {
                encode_family(
                    e,
                    "x",
                    "help",
                    MetricType::Histogram,
                    [([("a", "b\"c")], &*hist)],
                )
            },
        )));
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("x_bucket{a=\"b\\\"c\",le=\"0.001\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("x_bucket{a=\"b\\\"c\",le=\"0.01\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("x_bucket{a=\"b\\\"c\",le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("x_count{a=\"b\\\"c\"} 3\n"), "{text}");
        assert!(text.contains("x_sum{a=\"b\\\"c\"} 1.0055\n"), "{text}");
        assert_eq!(h.count(), 3);
    }
}
