//! The algorithms, each one unit: a pure decision over one key's plain state, its Redis
//! mirror, and its guarantee.
//!
//! An algorithm lives in one folder, `algorithm/<name>/`: `mod.rs` holds the pure step
//! (an [`Algorithm`]: plain state in, a [`Decision`] out, handed `now` and the cost — no
//! I/O, no clock) and the [`Envelope`] it promises; `redis.rs` and `<name>.lua` hold its
//! Redis twin (the atomic script, its arguments and the decoding of its reply). The
//! exact references the lab judges them against live in [`reference`](mod@reference), written
//! independently of the algorithms they check.
//!
//! Everything that dispatches over algorithms — [`Kind`], its names, [`Kind::ALL`],
//! [`MemoryLimiter`](crate::limiter::MemoryLimiter)'s variants, the Redis script table — is
//! generated from the one registration list in this file (`registry!`), so adding an
//! algorithm is its folder plus one line there.
//!
//! | algorithm | state per key | guarantee |
//! |---|---|---|
//! | [`FixedWindow`] | one `u64` (CAS) | `limit` per aligned window; up to 2x across a boundary |
//! | [`SlidingLog`] | a log of admissions (lock) | `limit` in every window-length interval, exactly |
//! | [`SlidingWindow`] | three counters (lock) | `limit` per aligned window; under 2x in any interval |
//! | [`TokenBucket`] | one `u64` (CAS) | `burst + rate × t` in every interval of length `t` |
//! | [`Gcra`] | one `u64` (CAS) | `burst + rate × t` in every interval of length `t` |
//! | [`BucketedWindow`] | `k` counts (lock) | `limit` per window of `k` sub-windows on sub-window boundaries |
//!
//! The token bucket and GCRA also settle a cost after the decision (their balance may go
//! negative: [`Algorithm::settle`], [`crate::settle`]); the window counters cannot.

use std::fmt;
use std::str::FromStr;

use crate::clock::Nanos;
use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::limiter::Policy;
use crate::quota::Quota;

mod envelope;
#[cfg(feature = "redis")]
pub(crate) mod mirror;
mod params;
pub mod reference;
mod shared;

pub use envelope::{Bound, Breach, Envelope};
pub use params::{MAX_PARAMS, Param, Params};
pub use reference::Reference;
pub use shared::Shared;

/// The one registration list: every algorithm as `Variant: module::Type`. Each macro
/// that dispatches over algorithms is handed this list (`registry!(callback)`), so this
/// list is the only place an algorithm is named outside its folder.
macro_rules! registry {
    ($callback:ident) => {
        $callback! {
            FixedWindow: fixed_window::FixedWindow,
            SlidingLog: sliding_log::SlidingLog,
            SlidingWindow: sliding_window::SlidingWindow,
            TokenBucket: token_bucket::TokenBucket,
            Gcra: gcra::Gcra,
            BucketedWindow: bucketed_window::BucketedWindow,
        }
    };
}
pub(crate) use registry;

/// Counts the identifiers it is given, as a constant expression.
macro_rules! count {
    () => { 0usize };
    ($head:ident $($tail:ident)*) => { 1usize + count!($($tail)*) };
}

/// Declares the algorithms' modules, [`Kind`] and its dispatch.
macro_rules! declare {
    ($($variant:ident: $module:ident::$ty:ident,)*) => {
        $(pub mod $module;)*
        $(pub use $module::$ty;)*

        /// The algorithms by name, for configuration and reports (generated from the
        /// registration list: see each type for what it does).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind {
            $(
                #[doc = concat!("[`", stringify!($ty), "`].")]
                $variant,
            )*
        }

        impl Kind {
            /// Every algorithm, in a stable order (the registration order).
            pub const ALL: [Kind; count!($($variant)*)] = [$(Kind::$variant),*];

            /// Calls `v` with the algorithm's type: static dispatch on a kind chosen at run
            /// time, without `dyn`.
            #[inline]
            pub fn visit<V: Visit>(self, v: V) -> V::Output {
                match self {
                    $(Kind::$variant => v.visit::<$ty>(),)*
                }
            }

            /// The name used in configs, on the command line and in reports.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Kind::$variant => <$ty as Algorithm>::NAME,)*
                }
            }

            /// The exact reference the lab judges this algorithm against.
            pub const fn reference(self) -> Reference {
                match self {
                    $(Kind::$variant => <$ty as Algorithm>::REFERENCE,)*
                }
            }

            /// The parameters this algorithm takes beyond the quota.
            pub const fn params(self) -> &'static [Param] {
                match self {
                    $(Kind::$variant => <$ty as Algorithm>::PARAMS,)*
                }
            }

            /// What this algorithm promises, in a line a user reads.
            pub const fn guarantee(self) -> &'static str {
                match self {
                    $(Kind::$variant => <$ty as Algorithm>::GUARANTEE,)*
                }
            }

            /// One key's state, in a line a user reads.
            pub const fn state_per_key(self) -> &'static str {
                match self {
                    $(Kind::$variant => <$ty as Algorithm>::STATE_PER_KEY,)*
                }
            }

            /// True when a key's balance may go negative, so a request's cost can be
            /// settled after its decision ([`Algorithm::settle`]; see [`crate::settle`]).
            pub const fn settles(self) -> bool {
                match self {
                    $(Kind::$variant => <$ty as Algorithm>::SETTLES,)*
                }
            }
        }
    };
}

registry!(declare);

pub use sliding_log::Log;
pub use sliding_window::Counters;

/// A computation generic over the algorithm, run by [`Kind::visit`] with the concrete
/// type of a kind chosen at run time.
pub trait Visit {
    /// What it computes.
    type Output;
    /// Runs with algorithm `A`.
    fn visit<A: Algorithm>(self) -> Self::Output;
}

/// A rate-limit algorithm configured with one policy: a pure step over one key's plain
/// state.
///
/// `step` is handed `now` and never reads a clock; it changes the state only when it
/// admits, so a denial never writes. The in-memory store runs it on a [`Shared`] form
/// (a compare-and-swap loop on an `AtomicU64`, or a small lock); the simulator runs it
/// on plain states it owns.
pub trait Algorithm: Sized + Clone + fmt::Debug + Send + Sync + 'static {
    /// One key's plain state.
    type State: Clone + Send + 'static;

    /// How the in-memory store shares a state between threads: `AtomicU64` (a
    /// compare-and-swap loop) when the state is one word, else `Mutex<State>`.
    type Shared: Shared<Self::State>;

    /// The Redis twin: the script's arguments and the decoding of its reply.
    #[cfg(feature = "redis")]
    type Mirror: mirror::Mirror;

    /// Which algorithm this is.
    const KIND: Kind;

    /// The name used in configs, on the command line and in reports.
    const NAME: &'static str;

    /// The exact reference the lab judges it against.
    const REFERENCE: Reference;

    /// The parameters it takes beyond the quota (none for most).
    const PARAMS: &'static [Param] = &[];

    /// What it promises, in a line a user reads (`ratelab algorithms`); the precise
    /// form is [`Algorithm::envelope`].
    const GUARANTEE: &'static str;

    /// One key's state, in a line a user reads: its size and how it is shared.
    const STATE_PER_KEY: &'static str;

    /// Builds the algorithm for a policy (its quota and parameters).
    fn from_policy(policy: &Policy) -> Self;

    /// Builds the algorithm for a quota, with default parameters.
    fn new(quota: Quota) -> Self {
        Self::from_policy(&Policy::new(Self::KIND, quota))
    }

    /// The quota it enforces.
    fn quota(&self) -> &Quota;

    /// The policy it enforces (algorithms with parameters report theirs).
    fn policy(&self) -> Policy {
        Policy::new(Self::KIND, *self.quota())
    }

    /// The most one request may cost: what it can ever admit at once.
    fn capacity(&self) -> u64;

    /// The state of a key never seen: full allowance.
    fn fresh(&self) -> Self::State;

    /// Decides one request of `cost` units at `now`, updating `state` when admitted (a
    /// denial leaves it as it was).
    ///
    /// Errors only when `cost` exceeds what the policy can ever admit at once.
    fn step(&self, state: &mut Self::State, now: Nanos, cost: u64) -> Result<Decision>;

    /// True when the state carries no information at `now` (back to full allowance), so
    /// the key may be forgotten without changing any future decision.
    fn is_idle(&self, state: &Self::State, now: Nanos) -> bool;

    /// Heap bytes the state owns beyond its inline size (the sliding log's entries).
    fn heap_bytes(&self, _state: &Self::State) -> usize {
        0
    }

    /// The most heap bytes one key's state can ever own under this policy (what a byte
    /// budget must reserve for it): 0 for the fixed-size states.
    fn max_heap_bytes(&self) -> usize {
        0
    }

    /// True when a request of cost 1 would be refused at `now`: the key is throttled,
    /// and the in-memory store does not forget it to make room for a new key.
    fn is_throttled(&self, state: &Self::State, now: Nanos) -> bool {
        let mut probe = state.clone();
        !matches!(self.step(&mut probe, now, 1), Ok(d) if d.allowed)
    }

    /// What it promises about admissions in any interval.
    fn envelope(&self) -> Envelope;

    /// True when a key's balance may go negative: the algorithm implements
    /// [`settle`](Self::settle) (the token bucket and GCRA; see [`crate::settle`]).
    const SETTLES: bool = false;

    /// Settles a request admitted earlier having reserved `reserved` units, whose cost
    /// turned out to be `actual`: moves the key's balance by `actual − reserved` from
    /// where it stands at `now` — down without bound (the key then waits for the
    /// refill), up never past a full allowance. Answers what a request of cost 1 would
    /// be told at `now` (without spending it).
    ///
    /// Errors for the algorithms whose balance cannot go negative
    /// ([`SETTLES`](Self::SETTLES) false): counters per window cannot owe.
    fn settle(
        &self,
        _state: &mut Self::State,
        _now: Nanos,
        _reserved: u64,
        _actual: u64,
    ) -> Result<Decision> {
        Err(Error::settle_unsupported(Self::NAME))
    }

    /// A fresh key's state in its shared form, for the in-memory store.
    fn new_shared(&self) -> Self::Shared {
        Self::Shared::new(self.fresh())
    }

    /// [`step`](Self::step) on a shared state, atomically: concurrent checks behave as
    /// if they ran one after another.
    #[inline]
    fn check(&self, state: &Self::Shared, now: Nanos, cost: u64) -> Result<Decision> {
        state.apply(|s| self.step(s, now, cost))
    }
}

impl Kind {
    /// True for the algorithms configured by capacity and refill rate rather than by a
    /// limit per window (those judged against the exact token bucket).
    pub const fn is_bucket(self) -> bool {
        matches!(self.reference(), Reference::TokenBucket)
    }

    /// The envelope `policy` promises with this algorithm.
    pub fn envelope(self, policy: &Policy) -> Envelope {
        struct E<'a>(&'a Policy);
        impl Visit for E<'_> {
            type Output = Envelope;
            fn visit<A: Algorithm>(self) -> Envelope {
                A::from_policy(self.0).envelope()
            }
        }
        self.visit(E(policy))
    }

    /// The most one request may cost under `policy` with this algorithm.
    pub fn capacity(self, policy: &Policy) -> u64 {
        struct C<'a>(&'a Policy);
        impl Visit for C<'_> {
            type Output = u64;
            fn visit<A: Algorithm>(self) -> u64 {
                A::from_policy(self.0).capacity()
            }
        }
        self.visit(C(policy))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown algorithm name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown algorithm {0:?} (expected one of: {names})", names = names())]
pub struct UnknownKind(pub String);

fn names() -> String {
    Kind::ALL.map(Kind::name).join(", ")
}

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// Refuses a cost the policy can never admit at once.
#[inline]
pub(crate) fn ensure_fits(cost: u64, capacity: u64) -> Result<()> {
    if cost > capacity {
        return Err(Error::cost_exceeds_capacity(cost, capacity));
    }
    Ok(())
}

/// Stores the state a pure `decide` returned with an admission (a denial returns none and
/// writes nothing): the `step` of every algorithm whose decision is "decision, next
/// state".
#[inline]
pub(crate) fn keep<S>(state: &mut S, decided: Result<(Decision, Option<S>)>) -> Result<Decision> {
    let (decision, next) = decided?;
    if let Some(next) = next {
        *state = next;
    }
    Ok(decision)
}

/// Nanoseconds as a `Duration`.
#[inline]
pub(crate) fn dur(n: Nanos) -> std::time::Duration {
    std::time::Duration::from_nanos(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in Kind::ALL {
            assert_eq!(k.name().parse::<Kind>(), Ok(k));
        }
        let err = "leaky".parse::<Kind>().unwrap_err();
        assert!(err.to_string().contains("\"leaky\""));
        assert!(err.to_string().contains("fixed-window, sliding-log"));
    }

    #[test]
    fn buckets_are_the_token_bucket_and_gcra() {
        let buckets: Vec<Kind> = Kind::ALL.into_iter().filter(|k| k.is_bucket()).collect();
        assert_eq!(buckets, [Kind::TokenBucket, Kind::Gcra]);
    }
}
