//! The players' tallies into `ratelab.results/1`: a [`Run`] per algorithm with the
//! accuracy figures as synthetic runs define them (DESIGN.md "Accuracy, defined once")
//! and rejections over time, and the trace section: throttling by route and identity,
//! false positives against the exact sliding log, and the sweep.

use limiter_core::Nanos;
use limiter_core::algorithm::Reference;
use results::{
    EndpointInfo, PhaseInfo, PhaseStats, ResultSource, Results, RouteThrottle, Run, Series,
    SweepPoint, ThrottledIdentity, TraceAlgorithm, TraceReplay, WorkloadInfo, round4,
};

use super::format::FormatSpec;
use super::reader::Reader;
use super::replay::Job;
use super::routes::Routes;
use super::time;
use crate::judging::figures::Wronged;

/// Everything the results are made from.
pub(crate) struct Parts<'a> {
    pub(crate) path: &'a str,
    pub(crate) spec: &'a FormatSpec,
    pub(crate) routes: &'a Routes,
    pub(crate) cells: &'a [Routes],
    pub(crate) reader: &'a Reader<'a>,
    pub(crate) jobs: &'a [Job],
    pub(crate) tallies: &'a [super::players::Tally],
    pub(crate) bin: Nanos,
    pub(crate) top: usize,
}

/// Builds the results.
pub(crate) fn results(p: Parts<'_>) -> Results {
    let mut input = p.reader.input.clone();
    input.path = p.path.to_owned();
    input.format = p.spec.describe();
    let reference = |r: Reference| {
        p.jobs
            .iter()
            .position(|j| *j == Job::Reference(r))
            .map(|i| &p.tallies[i])
    };
    let (first_bin, bins) = bin_span(p.tallies);
    let mut results = Results::new(ResultSource::Simulated, workload_info(&p));
    let mut algorithms = Vec::new();
    let mut sweep = Vec::new();
    for (job, tally) in p.jobs.iter().zip(p.tallies) {
        let Job::Algorithm(kind, cell) = *job else {
            continue;
        };
        match cell {
            None => {
                let judge = reference(kind.reference());
                let log = reference(Reference::SlidingLog);
                let mut run = run(&p, kind.name(), kind.reference(), tally, judge);
                run.series = series(tally, p.bin, first_bin, bins);
                results.runs.push(run);
                algorithms.push(throttling(&p, kind.name(), tally, log));
            }
            Some(c) => {
                let (limit, burst_factor) = p.cells[c].info().first().map_or((0, 1.0), |r| {
                    (r.limit, r.burst as f64 / r.limit.max(1) as f64)
                });
                let per_identity = by_identity(&p, tally);
                sweep.push(SweepPoint {
                    algorithm: kind.name().to_owned(),
                    limit,
                    burst_factor: round4(burst_factor),
                    requests: tally
                        .admitted
                        .iter()
                        .chain(&tally.rejected)
                        .map(|&n| u64::from(n))
                        .sum(),
                    rejected: tally.rejected.iter().map(|&n| u64::from(n)).sum(),
                    identities: per_identity.iter().filter(|i| i.0 + i.1 > 0).count() as u64,
                    identities_throttled: per_identity.iter().filter(|i| i.1 > 0).count() as u64,
                });
            }
        }
    }
    results.trace = Some(TraceReplay {
        input,
        routes: p.routes.info(),
        algorithms,
        sweep,
    });
    results
}

fn sum(v: &[u32]) -> u64 {
    v.iter().map(|&n| u64::from(n)).sum()
}

/// The run of one algorithm: totals and the figures against its reference `judge`.
fn run(
    p: &Parts<'_>,
    name: &str,
    reference: Reference,
    t: &super::players::Tally,
    judge: Option<&super::players::Tally>,
) -> Run {
    let admitted = sum(&t.admitted);
    let rejected = sum(&t.rejected);
    let mut stats = PhaseStats {
        name: "trace".into(),
        offered: admitted + rejected,
        admitted,
        rejected,
        errors: 0,
        reference_admitted: 0,
        envelope_excess: round4(t.excess),
        over_admission: 0,
        under_admission: 0,
        burst_ratio: round4(t.burst),
        fairness: None,
        wronged_users: None,
        latency_us: None,
        boundary_burst: None,
    };
    if let Some(j) = judge {
        stats.reference_admitted = sum(&j.admitted);
        // Per user: sent anything, and short of the reference on some key. From counts
        // per key this is a lower bound of "refused while the reference admits" (a key
        // can be refused at one instant and over-admitted at another).
        let mut users = vec![(false, false); p.reader.keys.names.len()];
        for (slot, (&a, &r)) in t.admitted.iter().zip(&j.admitted).enumerate() {
            let (a, r) = (u64::from(a), u64::from(r));
            stats.over_admission += a.saturating_sub(r);
            stats.under_admission += r.saturating_sub(a);
            let user = p.reader.keys.slot_keys[slot].0 as usize;
            let sent = a + u64::from(t.rejected.get(slot).copied().unwrap_or(0)) > 0;
            users[user].0 |= sent;
            users[user].1 |= r > a;
        }
        let mut wronged = Wronged::default();
        for (sent, short) in users {
            wronged.add(sent, short);
        }
        stats.wronged_users = wronged.share().map(round4);
    }
    let mut totals = stats.clone();
    totals.name = "total".into();
    Run {
        algorithm: name.to_owned(),
        store: "memory".into(),
        deployment: "trace replay: one process, at the logged instants".into(),
        reference: reference.name().to_owned(),
        keys: t.admitted.len() as u64,
        memory_per_key_bytes: 0,
        phases: vec![stats],
        totals,
        series: Series {
            step_s: 1.0,
            offered: Vec::new(),
            admitted: Vec::new(),
            rejected: Vec::new(),
            latency_us: Vec::new(),
        },
    }
}

/// The bins any player used: the first, and how many from there.
fn bin_span(tallies: &[super::players::Tally]) -> (usize, usize) {
    let used = |t: &super::players::Tally| {
        let first = t.bins.iter().position(|&(a, r)| a + r > 0);
        first.map(|f| (f, t.bins.len()))
    };
    let spans: Vec<(usize, usize)> = tallies.iter().filter_map(used).collect();
    let first = spans.iter().map(|s| s.0).min().unwrap_or(0);
    let end = spans.iter().map(|s| s.1).max().unwrap_or(0);
    (first, end.saturating_sub(first).max(1))
}

fn series(t: &super::players::Tally, bin: Nanos, first: usize, len: usize) -> Series {
    let at = |i: usize| t.bins.get(first + i).copied().unwrap_or((0, 0));
    Series {
        step_s: bin as f64 / 1e9,
        offered: (0..len).map(|i| at(i).0 + at(i).1).collect(),
        admitted: (0..len).map(|i| at(i).0).collect(),
        rejected: (0..len).map(|i| at(i).1).collect(),
        latency_us: Vec::new(),
    }
}

/// Per identity: (admitted, rejected).
fn by_identity(p: &Parts<'_>, t: &super::players::Tally) -> Vec<(u64, u64)> {
    let mut out = vec![(0u64, 0u64); p.reader.keys.names.len()];
    for (slot, &(identity, _)) in p.reader.keys.slot_keys.iter().enumerate() {
        let o = &mut out[identity as usize];
        o.0 += u64::from(t.admitted.get(slot).copied().unwrap_or(0));
        o.1 += u64::from(t.rejected.get(slot).copied().unwrap_or(0));
    }
    out
}

/// Throttling by route and identity, and the false positives against `log` (the
/// exact sliding log's tally).
fn throttling(
    p: &Parts<'_>,
    name: &str,
    t: &super::players::Tally,
    log: Option<&super::players::Tally>,
) -> TraceAlgorithm {
    let keys = &p.reader.keys;
    let mut routes: Vec<RouteThrottle> = p
        .routes
        .iter()
        .map(|r| RouteThrottle {
            route: r.name().to_owned(),
            requests: 0,
            rejected: 0,
            identities: 0,
            identities_throttled: 0,
        })
        .collect();
    let mut log_rejected = vec![0u64; keys.names.len()];
    let mut fp_requests = 0;
    for (slot, &(identity, route)) in keys.slot_keys.iter().enumerate() {
        let (a, r) = (u64::from(t.admitted[slot]), u64::from(t.rejected[slot]));
        let rt = &mut routes[route as usize];
        rt.requests += a + r;
        rt.rejected += r;
        rt.identities += 1;
        rt.identities_throttled += u64::from(r > 0);
        let exact = log.map_or(0, |l| u64::from(l.rejected[slot]));
        log_rejected[identity as usize] += exact;
        if exact == 0 {
            fp_requests += r;
        }
    }
    let per_identity = by_identity(p, t);
    let throttled = per_identity.iter().filter(|i| i.1 > 0).count() as u64;
    let fp_identities = per_identity
        .iter()
        .zip(&log_rejected)
        .filter(|((_, r), exact)| *r > 0 && **exact == 0)
        .count() as u64;
    let mut top: Vec<usize> = (0..per_identity.len())
        .filter(|&i| per_identity[i].1 > 0)
        .collect();
    top.sort_by(|&a, &b| {
        per_identity[b]
            .1
            .cmp(&per_identity[a].1)
            .then(keys.names[a].cmp(&keys.names[b]))
    });
    top.truncate(p.top);
    TraceAlgorithm {
        algorithm: name.to_owned(),
        routes,
        top_identities: top
            .into_iter()
            .map(|i| ThrottledIdentity {
                identity: keys.names[i].to_string(),
                requests: per_identity[i].0 + per_identity[i].1,
                rejected: per_identity[i].1,
            })
            .collect(),
        identities_throttled: throttled,
        false_positive_identities: fp_identities,
        false_positive_requests: fp_requests,
    }
}

/// The log as a workload: one phase over its span, its routes as endpoints.
fn workload_info(p: &Parts<'_>) -> WorkloadInfo {
    let input = &p.reader.input;
    let span = match (time::parse(&input.first), time::parse(&input.last)) {
        (Ok(a), Ok(b)) => (b - a) as f64 / 1e9,
        _ => 0.0,
    };
    let rate = if span > 0.0 {
        input.requests as f64 / span
    } else {
        0.0
    };
    let name = std::path::Path::new(p.path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(p.path)
        .to_owned();
    WorkloadInfo {
        name,
        description: format!("access log replay ({})", p.spec.describe()),
        source: p.path.to_owned(),
        seed: 0,
        duration_s: round4(span),
        users: input.identities,
        user_distribution: "trace".into(),
        arrivals: "trace".into(),
        phases: vec![PhaseInfo {
            name: "trace".into(),
            start_s: 0.0,
            duration_s: round4(span),
            rate: round4(rate),
            rate_end: round4(rate),
        }],
        endpoints: p
            .routes
            .info()
            .into_iter()
            .map(|r| EndpointInfo {
                path: r.route,
                weight: 1.0,
                limit: r.limit,
                window_s: r.window_s,
                burst: r.burst,
                cost: r.cost,
            })
            .collect(),
    }
}
