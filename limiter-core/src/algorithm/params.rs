//! An algorithm's tuning beyond the quota (the bucketed window's `buckets`), carried in
//! a [`Policy`](crate::Policy) so that a new algorithm brings its parameters without a
//! new field anywhere else.

/// A named integer parameter an algorithm takes, with its default and range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// The name used in configs (`buckets`).
    pub name: &'static str,
    /// The value when none is given.
    pub default: u64,
    /// The smallest value accepted.
    pub min: u64,
    /// The largest value accepted.
    pub max: u64,
    /// The error for a value outside `min..=max`.
    pub invalid: &'static str,
}

/// The most parameters one algorithm takes.
pub const MAX_PARAMS: usize = 2;

/// The values of an algorithm's [`Param`]s, in the order the algorithm declares them
/// (defaults until set). Plain and `Copy`, so a policy stays a small value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Params([u64; MAX_PARAMS]);

impl Params {
    /// The defaults of `params`.
    pub(crate) fn defaults(params: &[Param]) -> Self {
        let mut values = [0; MAX_PARAMS];
        for (v, p) in values.iter_mut().zip(params) {
            *v = p.default;
        }
        Self(values)
    }

    /// The value at `index` in the algorithm's declaration order.
    pub fn get(&self, index: usize) -> u64 {
        self.0.get(index).copied().unwrap_or(0)
    }

    /// Sets the value at `index`.
    pub(crate) fn set(&mut self, index: usize, value: u64) {
        if let Some(v) = self.0.get_mut(index) {
            *v = value;
        }
    }
}
