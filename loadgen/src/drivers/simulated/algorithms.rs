//! The algorithms the simulator plays: every algorithm `limiter-core` registers
//! ([`Kind::ALL`]), and the original project's flawed token bucket.
//!
//! The guarantee: this list is derived, not restated — an algorithm registered in
//! `limiter-core` is playable here (`--algorithms all` included) with no change to this
//! crate.

use std::fmt;
use std::str::FromStr;

use limiter_core::algorithm::{Envelope, Reference};
use limiter_core::{Kind, Policy, Quota};

/// An algorithm the simulator can play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SimAlgorithm {
    /// One of `limiter-core`'s algorithms, run through its own pure step.
    Library(Kind),
    /// The original project's Redis token bucket, flaws included
    /// ([`seed_replica`](super::seed_replica)).
    SeedReplica,
}

/// The seed replica's name on the command line and in results.
const SEED_REPLICA: &str = "seed-replica";

/// An algorithm name the simulator does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown algorithm {0:?} (expected all, or a comma-separated list of: {names})", names = names())]
pub struct UnknownAlgorithm(pub String);

/// Every playable name, comma-separated, in table order.
fn names() -> String {
    SimAlgorithm::all()
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl SimAlgorithm {
    /// Every playable algorithm, in the order tables list them: `limiter-core`'s in
    /// registration order, then the seed replica.
    pub fn all() -> Vec<SimAlgorithm> {
        Kind::ALL
            .into_iter()
            .map(SimAlgorithm::Library)
            .chain([SimAlgorithm::SeedReplica])
            .collect()
    }

    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            SimAlgorithm::Library(k) => k.name(),
            SimAlgorithm::SeedReplica => SEED_REPLICA,
        }
    }

    /// The `limiter-core` algorithm, or `None` for the seed replica.
    pub fn kind(self) -> Option<Kind> {
        match self {
            SimAlgorithm::Library(k) => Some(k),
            SimAlgorithm::SeedReplica => None,
        }
    }

    /// The exact reference that judges it (`limiter-core` says which for its own; the
    /// seed replica is a token bucket).
    pub fn reference(self) -> Reference {
        match self {
            SimAlgorithm::Library(k) => k.reference(),
            SimAlgorithm::SeedReplica => Reference::TokenBucket,
        }
    }

    /// What it promises about admissions under `quota` (default parameters): the
    /// algorithm's own envelope from `limiter-core`; the seed replica promises only what
    /// the exact token bucket does (and breaks it: that is the point).
    pub fn envelope(self, quota: &Quota) -> Envelope {
        match self {
            SimAlgorithm::Library(k) => Policy::new(k, *quota).envelope(),
            SimAlgorithm::SeedReplica => Reference::TokenBucket.envelope(quota),
        }
    }

    /// What it promises, in a line a user reads (from its own unit).
    pub fn guarantee(self) -> &'static str {
        match self {
            SimAlgorithm::Library(k) => k.guarantee(),
            SimAlgorithm::SeedReplica => super::seed_replica::GUARANTEE,
        }
    }

    /// One key's state, in a line a user reads (from its own unit).
    pub fn state_per_key(self) -> &'static str {
        match self {
            SimAlgorithm::Library(k) => k.state_per_key(),
            SimAlgorithm::SeedReplica => super::seed_replica::STATE_PER_KEY,
        }
    }

    /// Parses `all` or a comma-separated list of names (duplicates dropped, order kept).
    pub fn parse_list(s: &str) -> Result<Vec<SimAlgorithm>, UnknownAlgorithm> {
        if s.trim() == "all" {
            return Ok(Self::all());
        }
        let mut out = Vec::new();
        for name in s.split(',').map(str::trim) {
            let alg: SimAlgorithm = name.parse()?;
            if !out.contains(&alg) {
                out.push(alg);
            }
        }
        Ok(out)
    }
}

impl fmt::Display for SimAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SimAlgorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == SEED_REPLICA {
            return Ok(SimAlgorithm::SeedReplica);
        }
        s.parse::<Kind>()
            .map(SimAlgorithm::Library)
            .map_err(|_| UnknownAlgorithm(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let all = SimAlgorithm::all();
        assert_eq!(all.len(), Kind::ALL.len() + 1);
        for a in all {
            assert_eq!(a.name().parse::<SimAlgorithm>(), Ok(a));
        }
        assert_eq!(
            SimAlgorithm::parse_list("gcra, token-bucket,gcra").unwrap(),
            vec![
                SimAlgorithm::Library(Kind::Gcra),
                SimAlgorithm::Library(Kind::TokenBucket)
            ]
        );
        let e = SimAlgorithm::parse_list("gcra,leaky-bucket").unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("unknown algorithm \"leaky-bucket\""),
            "{text}"
        );
        // Every registered algorithm is offered, whatever the registry holds.
        for k in Kind::ALL {
            assert!(text.contains(&format!(" {},", k.name())), "{text}");
        }
        assert!(text.ends_with(", seed-replica)"), "{text}");
    }
}
