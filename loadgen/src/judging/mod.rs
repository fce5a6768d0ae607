//! Judging: how far each limiter strays from its policy — accuracy, defined once
//! (DESIGN.md), for simulated and measured runs alike.
//!
//! For every key (user × endpoint) and phase, and over the whole run:
//!
//! - **over-/under-admission**: admitted minus what an exact reference limiter admits
//!   on the same arrivals, where positive (and the reverse). Which reference judges an
//!   algorithm is `limiter-core`'s word ([`Kind::reference`](limiter_core::Kind::reference)):
//!   an exact token bucket (rational arithmetic, no rounding) for the algorithms set by
//!   burst and rate, an exact sliding log for the sliding windowed ones, an exact fixed
//!   window on the store's own windows for the fixed window (so "over" means it broke
//!   its own promise); the references live in
//!   [`limiter_core::algorithm::reference`], beside the algorithms, and nowhere else.
//! - **envelope excess**: the most by which admissions in any interval exceed what the
//!   policy permits in that interval by the reference's reading of it
//!   ([`Reference::envelope`](limiter_core::algorithm::Reference::envelope): `burst +
//!   rate × length`, or `limit` in any window-length interval), in cost units; 0 is
//!   perfect.
//! - **burst ratio**: the most admitted in any interval `[s, s + window)`, over `limit`
//!   (a fixed window reaches 2.0 at a boundary).
//! - **boundary burst** (fixed window only): admitted beyond the exact sliding log on
//!   the same arrivals — the fixed window's known weakness, kept as its own figure now
//!   that its over-admission is judged against its own windows.
//! - **wronged users**: the share of users (who sent something) with a request refused
//!   that the exact reference admits — throttled while within their policy; 0 is
//!   perfect. (It replaces Jain's index over users' admitted shares, which read 1.000
//!   in every run, even with 10,000 Zipf users.)
//!
//! Phases report the worst key's envelope excess and burst ratio and the sum over keys
//! of over- and under-admission; a phase's figures only look at that phase's requests.
//!
//! The pieces: [`decisions`] (one bit per arrival), [`figures`] (each figure on one
//! key's instants), [`accounting`] (figures
//! into `ratelab.results/1`), and for measured runs (feature `http`) [`measured`],
//! `delivery` (statuses, latency, lateness) and [`ground_truth`] (the backend's count
//! against the client's and the algorithm's own envelope,
//! [`Policy::envelope`](limiter_core::Policy::envelope)).

pub mod accounting;
pub mod decisions;
#[cfg(feature = "http")]
mod delivery;
pub mod figures;
#[cfg(feature = "http")]
pub mod ground_truth;
#[cfg(feature = "http")]
pub mod measured;
#[cfg(feature = "http")]
mod windows;

pub use accounting::Accounting;
pub use decisions::Decisions;

use limiter_core::Nanos;

use crate::workload::Workload;

/// Fewest and most bins a run's series is cut into.
const BINS: (u64, u64) = (100, 400);

/// The width of the bins a run's series counts in: every phase boundary falls on a bin
/// edge (so a plot steps exactly where a phase does, and no bin mixes two phases), with
/// between about 100 and 400 bins over the run. It divides the greatest common divisor
/// of the phase starts and the duration (or is a whole multiple of it when that would
/// give more than 400 bins); whole milliseconds when the phases allow it.
pub fn bin_width(workload: &Workload) -> Nanos {
    let duration = workload.duration().max(1);
    let g = workload
        .phases
        .iter()
        .map(|p| p.start)
        .fold(duration, gcd)
        .max(1);
    let bins = duration / g;
    if bins > BINS.1 {
        g * bins.div_ceil(BINS.1 / 2)
    } else if bins < BINS.0 {
        // Split each aligned span into m bins; prefer an m that keeps whole milliseconds.
        let want = BINS.0.div_ceil(bins.max(1));
        (want..want * 3)
            .find(|m| g % m == 0 && (g / m) % 1_000_000 == 0)
            .map_or(g / want, |m| g / m)
            .max(1)
    } else {
        g
    }
}

fn gcd(a: Nanos, b: Nanos) -> Nanos {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod bin_tests {
    use super::*;

    #[test]
    fn bins_fall_on_phase_boundaries() {
        let seed = Workload::builtin("seed").unwrap().unwrap();
        let bin = bin_width(&seed);
        for p in &seed.phases {
            assert_eq!(p.start % bin, 0, "phase {} at {}", p.name, p.start);
        }
        let n = seed.duration() / bin;
        assert!((100..=400).contains(&n), "{n} bins of {bin} ns");
        assert_eq!(bin % 1_000_000, 0, "whole milliseconds: {bin}");
        // Time-scaled as the benchmark plays it: 2.4 s phases.
        let scaled = crate::drivers::http::plan::scale_workload(
            &seed,
            crate::drivers::http::plan::Scale {
                time: 0.04,
                rate: 1.0,
            },
        );
        if let Ok(w) = scaled {
            let bin = bin_width(&w);
            for p in &w.phases {
                assert_eq!(p.start % bin, 0);
            }
        }
    }
}
