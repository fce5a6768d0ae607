//! Judging: how far each limiter strays from its policy — accuracy, defined once
//! (DESIGN.md), for simulated and measured runs alike.
//!
//! For every key (user × endpoint) and phase, and over the whole run:
//!
//! - **over-/under-admission**: admitted minus what an exact reference limiter admits
//!   on the same arrivals, where positive (and the reverse). Which reference judges an
//!   algorithm is `limiter-core`'s word ([`Kind::reference`](limiter_core::Kind::reference)):
//!   an exact token bucket (rational arithmetic, no rounding) for the algorithms set by
//!   burst and rate, an exact sliding log for the windowed ones; the references live in
//!   [`limiter_core::algorithm::reference`], beside the algorithms, and nowhere else.
//! - **envelope excess**: the most by which admissions in any interval exceed what the
//!   policy permits in that interval by the reference's reading of it
//!   ([`Reference::envelope`](limiter_core::algorithm::Reference::envelope): `burst +
//!   rate × length`, or `limit` in any window-length interval), in cost units; 0 is
//!   perfect.
//! - **burst ratio**: the most admitted in any interval `[s, s + window)`, over `limit`
//!   (a fixed window reaches 2.0 at a boundary).
//! - **fairness**: Jain's index `(Σx)² / (n Σx²)` over users of
//!   `x = admitted / reference-admitted` (users the reference admits something for);
//!   1 means every user gets the same share of what the policy entitles it to.
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

pub use accounting::Accounting;
pub use decisions::Decisions;
