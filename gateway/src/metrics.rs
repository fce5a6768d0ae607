//! Prometheus metrics, hand-rolled: lock-free counters and fixed-bucket histograms,
//! rendered in the text exposition format (version 0.0.4) on `GET /metrics`.
//!
//! The guarantee: recording is a few relaxed atomic adds (no lock, no allocation), so
//! metrics cost the hot path nothing measurable; a scrape sees each counter
//! monotonically increasing.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (open connections, requests in flight).
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Subtracts one (never below zero).
    pub fn dec(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
    }

    /// The value now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Bucket bounds (seconds) for limiter decisions: a memory decision takes well under a
/// microsecond, a Redis round trip a few hundred.
pub const DECISION_BUCKETS: &[f64] = &[
    1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0,
];

/// Bucket bounds (seconds) for upstream responses.
pub const UPSTREAM_BUCKETS: &[f64] = &[
    5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A histogram over fixed bucket bounds (in seconds).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    bounds_ns: Box<[u64]>,
    /// Per bucket (not cumulative), plus one for +Inf.
    counts: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl Histogram {
    /// A histogram over `bounds` (seconds, increasing).
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            bounds_ns: bounds.iter().map(|b| (b * 1e9) as u64).collect(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    #[inline]
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = self.bounds_ns.partition_point(|&b| b < ns);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Writes the `_bucket`, `_sum` and `_count` series of `name` with `labels`
    /// (`key="value",...` or empty).
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {cumulative}", braces(labels));
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a family.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, quote, newline).
pub fn label(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Why the gateway answered an upstream error itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayAnswer {
    /// The backend could not be reached or broke the connection: `502`.
    Unreachable,
    /// The backend did not answer in time: `504`.
    Timeout,
    /// The request body was larger than allowed: `413`.
    BodyTooLarge,
}

impl GatewayAnswer {
    const ALL: [GatewayAnswer; 3] = [
        GatewayAnswer::Unreachable,
        GatewayAnswer::Timeout,
        GatewayAnswer::BodyTooLarge,
    ];

    fn name(self) -> &'static str {
        match self {
            GatewayAnswer::Unreachable => "unreachable",
            GatewayAnswer::Timeout => "timeout",
            GatewayAnswer::BodyTooLarge => "body_too_large",
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
    upstream_errors: [Counter; 3],
    /// Client connections accepted.
    pub connections_total: Counter,
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

    /// Counts an upstream error.
    pub fn upstream_error(&self, e: GatewayAnswer) {
        self.upstream_errors[e as usize].inc();
    }

    /// Upstream errors of one kind so far.
    pub fn upstream_errors(&self, e: GatewayAnswer) -> u64 {
        self.upstream_errors[e as usize].get()
    }

    /// Writes the gateway-wide families.
    pub fn render(&self, out: &mut String) {
        family(
            out,
            "ratelab_gateway_responses_total",
            "counter",
            "Responses sent, by status class.",
        );
        for (i, c) in self.responses.iter().enumerate() {
            let _ = writeln!(
                out,
                "ratelab_gateway_responses_total{{class=\"{}xx\"}} {}",
                i + 1,
                c.get()
            );
        }
        family(
            out,
            "ratelab_gateway_upstream_errors_total",
            "counter",
            "Requests the gateway answered itself because the backend failed (502/504) or the body was too large (413).",
        );
        for e in GatewayAnswer::ALL {
            let _ = writeln!(
                out,
                "ratelab_gateway_upstream_errors_total{{kind=\"{}\"}} {}",
                e.name(),
                self.upstream_errors(e)
            );
        }
        family(
            out,
            "ratelab_gateway_upstream_seconds",
            "histogram",
            "Time from forwarding a request to the backend's response headers.",
        );
        self.upstream_latency
            .render(out, "ratelab_gateway_upstream_seconds", "");
        family(
            out,
            "ratelab_gateway_connections_total",
            "counter",
            "Client connections accepted.",
        );
        let _ = writeln!(
            out,
            "ratelab_gateway_connections_total {}",
            self.connections_total.get()
        );
        family(
            out,
            "ratelab_gateway_connections_open",
            "gauge",
            "Client connections open now.",
        );
        let _ = writeln!(
            out,
            "ratelab_gateway_connections_open {}",
            self.connections_open.get()
        );
        family(
            out,
            "ratelab_gateway_in_flight",
            "gauge",
            "Requests being handled now.",
        );
        let _ = writeln!(out, "ratelab_gateway_in_flight {}", self.in_flight.get());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::new(&[0.001, 0.01]);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_secs(1));
        let mut s = String::new();
        h.render(&mut s, "x", "a=\"b\"");
        assert!(s.contains("x_bucket{a=\"b\",le=\"0.001\"} 1\n"), "{s}");
        assert!(s.contains("x_bucket{a=\"b\",le=\"0.01\"} 2\n"), "{s}");
        assert!(s.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"), "{s}");
        assert!(s.contains("x_count{a=\"b\"} 3\n"), "{s}");
        assert_eq!(h.count(), 3);
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
