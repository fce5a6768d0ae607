//! The command line's enumerated values as clap [`ValueEnum`]s, so help, completions
//! and the man page list them and clap refuses a misspelling with a suggestion.
//!
//! The guarantee: each list is read from the crate that owns the concept (the
//! algorithms from `limiter-core`'s registry and the simulator's list, store models
//! from `loadgen`), never restated here, so a new algorithm appears on the command
//! line with no change to this file.

use std::sync::LazyLock;

use clap::ValueEnum;
use clap::builder::PossibleValue;
use limiter_core::Kind;
use loadgen::{ModeName, SimAlgorithm, StoreModel};

/// One value of `simulate --algorithms`: `all`, or one algorithm the simulator plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlgorithmChoice {
    /// Every algorithm, the seed replica included.
    All,
    /// One algorithm.
    One(SimAlgorithm),
}

static ALGORITHM_CHOICES: LazyLock<Vec<AlgorithmChoice>> = LazyLock::new(|| {
    std::iter::once(AlgorithmChoice::All)
        .chain(SimAlgorithm::all().into_iter().map(AlgorithmChoice::One))
        .collect()
});

impl ValueEnum for AlgorithmChoice {
    fn value_variants<'a>() -> &'a [Self] {
        ALGORITHM_CHOICES.as_slice()
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            AlgorithmChoice::All => PossibleValue::new("all").help("every algorithm below"),
            AlgorithmChoice::One(a) => PossibleValue::new(a.name()).help(a.guarantee()),
        })
    }
}

/// The algorithms `choices` name, in order, without duplicates (`all` is every one).
pub fn algorithms(choices: &[AlgorithmChoice]) -> Vec<SimAlgorithm> {
    if choices.contains(&AlgorithmChoice::All) {
        return SimAlgorithm::all();
    }
    let mut out = Vec::new();
    for c in choices {
        if let AlgorithmChoice::One(a) = *c
            && !out.contains(&a)
        {
            out.push(a);
        }
    }
    out
}

/// A `limiter-core` algorithm (what a gateway can run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindArg(pub Kind);

static KINDS: LazyLock<Vec<KindArg>> = LazyLock::new(|| Kind::ALL.map(KindArg).to_vec());

impl ValueEnum for KindArg {
    fn value_variants<'a>() -> &'a [Self] {
        KINDS.as_slice()
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.name()))
    }
}

/// A simulated store model (`simulate --store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreModelArg(pub StoreModel);

static STORE_MODELS: LazyLock<Vec<StoreModelArg>> =
    LazyLock::new(|| StoreModel::ALL.map(StoreModelArg).to_vec());

impl ValueEnum for StoreModelArg {
    fn value_variants<'a>() -> &'a [Self] {
        STORE_MODELS.as_slice()
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.name()))
    }
}

/// A store mode of the simulated curve (`simulate --store-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeArg(pub ModeName);

static MODES: LazyLock<Vec<ModeArg>> = LazyLock::new(|| ModeName::ALL.map(ModeArg).to_vec());

impl ValueEnum for ModeArg {
    fn value_variants<'a>() -> &'a [Self] {
        MODES.as_slice()
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.name()))
    }
}

/// The store behind measured gateways (`load --store`), in the gateway config's words
/// (`[store] kind`), or `none` when the targets are the backend itself (the load
/// generator's ceiling). The variants carry no doc comment on purpose: clap would make
/// each a line of `--help`, and the names say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)]
pub enum GatewayStore {
    Memory,
    Redis,
    RedisCluster,
    None,
}

impl GatewayStore {
    /// The name results carry (the config's `kind`).
    pub fn name(self) -> &'static str {
        match self {
            GatewayStore::Memory => "memory",
            GatewayStore::Redis => "redis",
            GatewayStore::RedisCluster => "redis-cluster",
            GatewayStore::None => "none",
        }
    }
}

/// The HTTP load driver (`load --driver`): goose (closed-loop users paced to the
/// schedule) or open (open loop on tokio + hyper). No variant doc comments, as above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)]
pub enum DriverKind {
    Goose,
    Open,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_is_a_possible_value_with_its_guarantee() {
        let names: Vec<String> = AlgorithmChoice::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|p| p.get_name().to_owned())
            .collect();
        assert_eq!(names[0], "all");
        for a in SimAlgorithm::all() {
            assert!(names.iter().any(|n| n == a.name()), "{a}");
            let parsed = AlgorithmChoice::from_str(a.name(), false).unwrap();
            assert_eq!(parsed, AlgorithmChoice::One(a));
        }
        assert_eq!(KindArg::value_variants().len(), Kind::ALL.len());
        assert_eq!(StoreModelArg::value_variants().len(), StoreModel::ALL.len());
        assert_eq!(ModeArg::value_variants().len(), ModeName::ALL.len());
    }

    #[test]
    fn all_wins_and_duplicates_go() {
        let gcra = SimAlgorithm::Library(Kind::Gcra);
        let tb = SimAlgorithm::Library(Kind::TokenBucket);
        use AlgorithmChoice::{All, One};
        assert_eq!(algorithms(&[One(gcra), One(tb), One(gcra)]), vec![gcra, tb]);
        assert_eq!(algorithms(&[One(gcra), All]), SimAlgorithm::all());
    }
}
