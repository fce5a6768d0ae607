//! What the metrics cost a proxied request: the updates the gateway makes per request
//! (a response counter, the in-flight gauge up and down, a decision counter, two latency
//! histograms), with the gateway's types against `prometheus-client`'s own histogram and
//! against plain inline atomics (the hand-written counters before the crate), alone
//! and with two threads recording into the same metrics.
//!
//! `cargo bench -p gateway --bench metrics -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use gateway::metrics::{Counter, DECISION_BUCKETS, Gauge, Histogram, UPSTREAM_BUCKETS};
use prometheus_client::metrics::histogram::Histogram as CrateHistogram;

/// The per-request updates, over any pair of histogram types.
trait PerRequest: Sync {
    fn record(&self, decision: Duration, upstream: Duration);
}

/// The gateway's metrics: prometheus-client counters and gauges, our histogram.
struct Ours {
    response: Counter,
    allowed: Counter,
    in_flight: Gauge,
    decision: Histogram,
    upstream: Histogram,
}

impl PerRequest for Ours {
    #[inline]
    fn record(&self, decision: Duration, upstream: Duration) {
        self.in_flight.inc();
        self.allowed.inc();
        self.decision.observe(decision);
        self.upstream.observe(upstream);
        self.response.inc();
        self.in_flight.dec();
    }
}

/// The same with prometheus-client's histogram (a mutex per observation).
struct Crate {
    response: Counter,
    allowed: Counter,
    in_flight: Gauge,
    decision: CrateHistogram,
    upstream: CrateHistogram,
}

impl PerRequest for Crate {
    #[inline]
    fn record(&self, decision: Duration, upstream: Duration) {
        self.in_flight.inc();
        self.allowed.inc();
        self.decision.observe(decision.as_secs_f64());
        self.upstream.observe(upstream.as_secs_f64());
        self.response.inc();
        self.in_flight.dec();
    }
}

/// Before the crate: counters and the gauge as inline atomics (no `Arc`), our histogram.
struct Inline {
    response: AtomicU64,
    allowed: AtomicU64,
    in_flight: AtomicU64,
    decision: Histogram,
    upstream: Histogram,
}

impl PerRequest for Inline {
    #[inline]
    fn record(&self, decision: Duration, upstream: Duration) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.allowed.fetch_add(1, Ordering::Relaxed);
        self.decision.observe(decision);
        self.upstream.observe(upstream);
        self.response.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
    }
}

fn ours() -> Ours {
    Ours {
        response: Counter::default(),
        allowed: Counter::default(),
        in_flight: Gauge::default(),
        decision: Histogram::new(DECISION_BUCKETS),
        upstream: Histogram::new(UPSTREAM_BUCKETS),
    }
}

fn with_crate_histogram() -> Crate {
    Crate {
        response: Counter::default(),
        allowed: Counter::default(),
        in_flight: Gauge::default(),
        decision: CrateHistogram::new(DECISION_BUCKETS.iter().copied()),
        upstream: CrateHistogram::new(UPSTREAM_BUCKETS.iter().copied()),
    }
}

fn inline() -> Inline {
    Inline {
        response: AtomicU64::new(0),
        allowed: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        decision: Histogram::new(DECISION_BUCKETS),
        upstream: Histogram::new(UPSTREAM_BUCKETS),
    }
}

/// Latencies that land in different buckets, as real requests do.
const SAMPLES: [(Duration, Duration); 4] = [
    (Duration::from_nanos(700), Duration::from_micros(800)),
    (Duration::from_micros(3), Duration::from_millis(4)),
    (Duration::from_micros(300), Duration::from_millis(30)),
    (Duration::from_nanos(400), Duration::from_micros(300)),
];

/// `iters` requests recorded by each of `threads` threads into the same metrics; the
/// wall time of the slowest, divided by the requests each recorded.
fn contended(m: &dyn PerRequest, threads: usize, iters: u64) -> Duration {
    std::thread::scope(|s| {
        let all: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let started = Instant::now();
                    for i in 0..iters {
                        let (d, u) = SAMPLES[(i % 4) as usize];
                        m.record(black_box(d), black_box(u));
                    }
                    started.elapsed()
                })
            })
            .collect();
        all.into_iter()
            .filter_map(|t| t.join().ok())
            .max()
            .unwrap_or_default()
    })
}

fn per_request(c: &mut Criterion) {
    let variants: [(&str, Box<dyn PerRequest>); 3] = [
        (
            "gateway (crate counters, atomic histogram)",
            Box::new(ours()),
        ),
        ("crate histogram", Box::new(with_crate_histogram())),
        ("inline atomics (before)", Box::new(inline())),
    ];
    let mut one = c.benchmark_group("per-request metrics, 1 thread");
    for (name, m) in &variants {
        one.bench_function(*name, |b| {
            let mut i = 0usize;
            b.iter(|| {
                let (d, u) = SAMPLES[i % 4];
                i += 1;
                m.record(black_box(d), black_box(u));
            });
        });
    }
    one.finish();
    let mut two = c.benchmark_group("per-request metrics, 2 threads, same route");
    for (name, m) in &variants {
        two.bench_function(*name, |b| b.iter_custom(|iters| contended(&**m, 2, iters)));
    }
    two.finish();
}

criterion_group!(benches, per_request);
criterion_main!(benches);
