//! Simulated decisions per second on one core: every algorithm playing the `api-mix`
//! workload (1.3 million arrivals, 10,000 Zipf users, five endpoints) in virtual time.
//!
//! Reference, measured in the same run on the same arrivals: `limiter-core`'s
//! production keyed store (`MemoryStore`: sharded hash tables, string keys, atomic
//! state) running the token bucket — what the simulator's direct `Vec` indexing saves.
//!
//! Run: `cargo bench -p loadgen --bench sim` (add `-- --quick` for a smoke test).

// A benchmark on a built-in workload: a failure here is a bug to see at once.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use limiter_core::Algorithm;
use limiter_core::algorithm::TokenBucket;
use limiter_core::store::memory::MemoryStore;
use loadgen::{SimAlgorithm, Simulation, Workload};

fn decisions(c: &mut Criterion) {
    let workload = Workload::load("api-mix").unwrap();
    let sim = Simulation::new(workload, 1).unwrap();
    let arrivals = sim.arrivals();
    let n = arrivals.list.len() as u64;

    let mut group = c.benchmark_group("api-mix decisions");
    group.throughput(Throughput::Elements(n));
    group.sample_size(10);
    for algorithm in SimAlgorithm::all() {
        group.bench_function(algorithm.name(), |b| {
            b.iter(|| {
                black_box(
                    sim.play(algorithm, &mut |_, _| {})
                        .unwrap()
                        .decisions
                        .count(),
                )
            })
        });
    }

    // The reference: the same arrivals through the production keyed store.
    let endpoints = &sim.workload().endpoints;
    let keys: Vec<Box<str>> = (0..arrivals.keys())
        .map(|k| {
            let e = &endpoints[k % endpoints.len()];
            format!("user-{}:{}", k / endpoints.len(), e.path).into_boxed_str()
        })
        .collect();
    group.bench_function("reference: limiter-core MemoryStore, token-bucket", |b| {
        b.iter(|| {
            let stores: Vec<MemoryStore<Box<str>, TokenBucket>> = endpoints
                .iter()
                .map(|e| MemoryStore::with_max_keys(TokenBucket::new(e.quota), 1 << 20))
                .collect();
            let mut admitted = 0u64;
            for a in &arrivals.list {
                let e = a.endpoint as usize;
                let key: &str = &keys[arrivals.key(a)];
                if stores[e]
                    .check(key, a.at, endpoints[e].cost)
                    .unwrap()
                    .allowed
                {
                    admitted += 1;
                }
            }
            black_box(admitted)
        })
    });
    group.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
