//! The replay: one reader streams the log into time-ordered chunks, and worker
//! threads (all cores) play every chunk through every player — each chosen algorithm
//! and the exact references on the configured routes, and with a sweep each algorithm
//! at every grid point.
//!
//! The guarantee: every player sees the same requests in the same order at the same
//! virtual instants, as the simulator's algorithms see the same arrivals; the chunks
//! travel through bounded channels, so memory stays bounded whatever the log's length.

use std::io::BufRead;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use limiter_core::algorithm::Reference;
use limiter_core::{Kind, Nanos};
use results::{Results, TraceInput};

use super::format::{FormatSpec, LineReader};
use super::identity::IdentityRules;
use super::players::{self, Player, Req, Setup, Tally};
use super::reader::Reader;
use super::routes::Routes;
use super::sweep::Grid;
use super::{TraceError, answers};

/// Chunks waiting for each worker.
const IN_FLIGHT: usize = 4;

/// How to replay a log.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The algorithms, in table order.
    pub algorithms: Vec<Kind>,
    /// How to read lines.
    pub format: FormatSpec,
    /// Whose quota a request spends.
    pub identity: IdentityRules,
    /// The reorder window, nanoseconds.
    pub reorder: Nanos,
    /// Rejections over time: the bin, nanoseconds.
    pub bin: Nanos,
    /// Stop at the first malformed line.
    pub strict: bool,
    /// How many top throttled identities to list.
    pub top: usize,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// A grid of limits and bursts to sweep.
    pub sweep: Option<Grid>,
    /// Keep every decision, in replay order (tests, small logs).
    pub record: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            algorithms: Kind::ALL.to_vec(),
            format: FormatSpec {
                api_key_header: "x-api-key".into(),
                identity_header: "x-user-id".into(),
                ..FormatSpec::default()
            },
            identity: IdentityRules::default(),
            reorder: 5_000_000_000,
            bin: 3_600_000_000_000,
            strict: false,
            top: 10,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            sweep: None,
            record: false,
        }
    }
}

/// What a replay produced.
#[derive(Debug)]
pub struct ReplayOutcome {
    /// The results: a run per algorithm, and the trace section.
    pub results: Results,
    /// With `record`: each algorithm's decisions in replay order.
    pub decisions: Vec<(Kind, Vec<bool>)>,
    /// Wall-clock time of the whole replay.
    pub elapsed: Duration,
}

/// Which player a job is: an algorithm or a reference, on the configured routes
/// (`cell` `None`) or at a sweep's grid cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Job {
    Algorithm(Kind, Option<usize>),
    Reference(Reference),
}

/// Replays `reader` (named `path` in the results) against `routes`. `progress` is
/// called after every chunk with what was read so far.
pub fn replay(
    reader: impl BufRead,
    path: &str,
    routes: &Routes,
    options: &ReplayOptions,
    progress: &mut dyn FnMut(&TraceInput),
) -> Result<ReplayOutcome, TraceError> {
    let started = Instant::now();
    let lines = LineReader::new(&options.format).map_err(TraceError::Format)?;
    let cells = match &options.sweep {
        Some(grid) => grid.routes(routes, &options.algorithms)?,
        None => Vec::new(),
    };
    let (jobs, mut list) = players(routes, &cells, options);
    let threads = options.threads.clamp(1, list.len().max(1));
    let mut groups: Vec<Vec<(usize, Box<dyn Player>)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, p) in list.drain(..).enumerate() {
        groups[i % threads].push((i, p));
    }
    let mut source = Reader::new(
        lines,
        options.identity.clone(),
        routes,
        options.reorder,
        options.strict,
    );
    let tallies = std::thread::scope(|s| -> Result<Vec<Tally>, TraceError> {
        let mut senders = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for mut group in groups {
            let (tx, rx) = sync_channel::<Arc<[Req]>>(IN_FLIGHT);
            senders.push(tx);
            handles.push(s.spawn(move || {
                for chunk in rx {
                    for (_, p) in &mut group {
                        p.play(&chunk);
                    }
                }
                group
                    .into_iter()
                    .map(|(i, p)| (i, p.finish()))
                    .collect::<Vec<_>>()
            }));
        }
        let read = source.read_all(reader, &mut |batch, input| {
            let chunk: Arc<[Req]> = batch.drain(..).collect();
            for tx in &senders {
                // A worker only goes away by panicking; its join reports it.
                let _ = tx.send(Arc::clone(&chunk));
            }
            progress(input);
        });
        drop(senders);
        let mut out: Vec<(usize, Tally)> = Vec::new();
        for h in handles {
            out.extend(h.join().map_err(|_| TraceError::Worker)?);
        }
        read?;
        out.sort_by_key(|(i, _)| *i);
        Ok(out.into_iter().map(|(_, t)| t).collect())
    })?;
    progress(&source.input);
    let results = answers::results(answers::Parts {
        path,
        spec: &options.format,
        routes,
        cells: &cells,
        reader: &source,
        jobs: &jobs,
        tallies: &tallies,
        bin: options.bin,
        top: options.top,
    });
    let decisions = jobs
        .iter()
        .zip(&tallies)
        .filter_map(|(job, t)| match (job, &t.decisions) {
            (Job::Algorithm(k, None), Some(d)) => Some((*k, d.clone())),
            _ => None,
        })
        .collect();
    Ok(ReplayOutcome {
        results,
        decisions,
        elapsed: started.elapsed(),
    })
}

/// Every player: the algorithms with their figures, the references they need (the
/// exact sliding log always: false positives are counted against it), and with a
/// sweep every algorithm at every cell, counting only.
fn players(
    routes: &Routes,
    cells: &[Routes],
    options: &ReplayOptions,
) -> (Vec<Job>, Vec<Box<dyn Player>>) {
    let setup = |routes, figures, record| Setup {
        routes,
        figures,
        bin: options.bin,
        record,
    };
    let mut jobs = Vec::new();
    let mut list = Vec::new();
    for &k in &options.algorithms {
        jobs.push(Job::Algorithm(k, None));
        list.push(players::algorithm(k, setup(routes, true, options.record)));
    }
    for r in Reference::ALL {
        if r == Reference::SlidingLog || options.algorithms.iter().any(|k| k.reference() == r) {
            jobs.push(Job::Reference(r));
            list.push(players::reference(r, setup(routes, false, false)));
        }
    }
    for (c, cell) in cells.iter().enumerate() {
        for &k in &options.algorithms {
            jobs.push(Job::Algorithm(k, Some(c)));
            list.push(players::algorithm(k, setup(cell, false, false)));
        }
    }
    (jobs, list)
}
