//! What an algorithm promises about the cost units it admits, defined once: checked on
//! records by the property tests, and turned into "the most it may admit over a span"
//! by every accuracy figure.

use std::fmt;

use crate::clock::Nanos;
use crate::quota::Quota;

/// One bound on admissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bound {
    /// At most `burst + limit × t / period` units in every closed interval of length `t`
    /// (the token bucket's promise).
    Rate {
        /// Units admitted at once from full.
        burst: u64,
        /// Units refilled per `period`.
        limit: u64,
        /// The refill period, nanoseconds.
        period: Nanos,
    },
    /// At most `limit` units in every window `[j × step, j × step + length)` (`j` any
    /// whole number): `step == length` is the aligned windows of a fixed window, `step ==
    /// 1` every interval of that length (a sliding log), in between the sub-window
    /// granular windows of a bucketed window.
    Windows {
        /// Units admitted per window.
        limit: u64,
        /// The window length, nanoseconds.
        length: Nanos,
        /// Where windows may start: every multiple of `step` nanoseconds.
        step: Nanos,
    },
}

/// Where admissions broke a bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{admitted} admitted in [{from}, {to}] breaks {bound}")]
pub struct Breach {
    /// The bound broken.
    pub bound: Bound,
    /// The first admission's instant in the offending interval.
    pub from: Nanos,
    /// The last admission's instant in it.
    pub to: Nanos,
    /// Units admitted in it.
    pub admitted: u64,
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Bound::Rate {
                burst,
                limit,
                period,
            } => write!(f, "{burst} + {limit} per {period} ns × length"),
            Bound::Windows {
                limit,
                length,
                step,
            } => write!(
                f,
                "{limit} per {length} ns window starting on a {step} ns grid"
            ),
        }
    }
}

impl Bound {
    /// `quota` read as a rate: at most `burst + limit × t / period` in any interval of
    /// length `t` (the token bucket's and GCRA's promise, and the exact token bucket's).
    pub fn rate(quota: &Quota) -> Self {
        Bound::Rate {
            burst: quota.burst(),
            limit: quota.limit(),
            period: quota.period_nanos(),
        }
    }

    /// Checks `admitted` — `(instant, cost)` pairs in time order — against the bound.
    pub fn check(&self, admitted: &[(Nanos, u64)]) -> Result<(), Breach> {
        match *self {
            Bound::Rate {
                burst,
                limit,
                period,
            } => {
                let (b, l, p) = (u128::from(burst), u128::from(limit), u128::from(period));
                for i in 0..admitted.len() {
                    let mut sum = 0u128;
                    for j in i..admitted.len() {
                        sum += u128::from(admitted[j].1);
                        let len = u128::from(admitted[j].0 - admitted[i].0);
                        // sum ≤ burst + limit × len / period, in integers.
                        if sum * p > b * p + l * len {
                            return Err(self.breach(admitted[i].0, admitted[j].0, sum));
                        }
                    }
                }
            }
            Bound::Windows {
                limit,
                length,
                step,
            } => {
                // Every window's admissions are those of the window starting at the grid
                // point at or before its first admission, cut short: checking the windows
                // that start there, for each admission, covers them all.
                let mut end = 0;
                let mut sum = 0u128;
                for (i, &(t, _)) in admitted.iter().enumerate() {
                    let start = u128::from(t - t % step.max(1));
                    if end < i {
                        end = i;
                        sum = 0;
                    }
                    while end < admitted.len()
                        && u128::from(admitted[end].0) < start + u128::from(length)
                    {
                        sum += u128::from(admitted[end].1);
                        end += 1;
                    }
                    if sum > u128::from(limit) {
                        return Err(self.breach(t, admitted[end - 1].0, sum));
                    }
                    sum -= u128::from(admitted[i].1);
                }
            }
        }
        Ok(())
    }

    fn breach(&self, from: Nanos, to: Nanos, sum: u128) -> Breach {
        Breach {
            bound: *self,
            from,
            to,
            admitted: u64::try_from(sum).unwrap_or(u64::MAX),
        }
    }

    /// The most the bound lets through in the closed interval `[start, start + length]`.
    pub fn most_in(&self, start: Nanos, length: Nanos) -> u64 {
        match *self {
            Bound::Rate {
                burst,
                limit,
                period,
            } => {
                let refill = u128::from(length) * u128::from(limit) / u128::from(period);
                burst.saturating_add(u64::try_from(refill).unwrap_or(u64::MAX))
            }
            Bound::Windows {
                limit,
                length: window,
                step,
            } => {
                // Disjoint windows, the first starting at the grid point at or before
                // `start`, cover the interval.
                let first = start - start % step.max(1);
                let covered = u128::from(start) + u128::from(length) - u128::from(first);
                let windows = covered / u128::from(window.max(1)) + 1;
                u64::try_from(windows * u128::from(limit)).unwrap_or(u64::MAX)
            }
        }
    }

    /// The most the bound lets through in any closed interval of `length` nanoseconds,
    /// wherever it starts.
    pub fn most_in_any(&self, length: Nanos) -> u64 {
        match *self {
            Bound::Rate { .. } => self.most_in(0, length),
            // Worst start: just before a grid point's end.
            Bound::Windows { step, .. } => self.most_in(step.max(1) - 1, length),
        }
    }
}

/// An algorithm's promise: every one of its bounds holds on what it admits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Envelope {
    bounds: Vec<Bound>,
}

impl Envelope {
    /// The promise that every one of `bounds` holds.
    pub fn new(bounds: impl IntoIterator<Item = Bound>) -> Self {
        Self {
            bounds: bounds.into_iter().collect(),
        }
    }

    /// The bounds.
    pub fn bounds(&self) -> &[Bound] {
        &self.bounds
    }

    /// Checks `admitted` — `(instant, cost)` pairs in time order — against every bound;
    /// the first breach found.
    pub fn check(&self, admitted: &[(Nanos, u64)]) -> Result<(), Breach> {
        self.bounds.iter().try_for_each(|b| b.check(admitted))
    }

    /// The most admitted in the closed interval `[start, start + length]` (the tightest
    /// bound's figure).
    pub fn most_in(&self, start: Nanos, length: Nanos) -> u64 {
        self.bounds
            .iter()
            .map(|b| b.most_in(start, length))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// The most admitted in any closed interval of `length` nanoseconds.
    pub fn most_in_any(&self, length: Nanos) -> u64 {
        self.bounds
            .iter()
            .map(|b| b.most_in_any(length))
            .min()
            .unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    #[test]
    fn windows_on_a_grid() {
        let aligned = Bound::Windows {
            limit: 2,
            length: S,
            step: S,
        };
        let sliding = Bound::Windows {
            limit: 2,
            length: S,
            step: 1,
        };
        let across = [(S - 1, 2), (S, 2)];
        assert!(aligned.check(&across).is_ok());
        let breach = sliding.check(&across).unwrap_err();
        assert_eq!((breach.from, breach.to, breach.admitted), (S - 1, S, 4));
        assert!(sliding.check(&[(0, 2), (S, 2)]).is_ok());
        assert!(
            aligned
                .check(&[(S, 1), (S + 1, 1), (2 * S - 1, 1)])
                .is_err()
        );
    }

    #[test]
    fn most_in_spans() {
        let rate = Bound::Rate {
            burst: 5,
            limit: 5,
            period: 60 * S,
        };
        assert_eq!(rate.most_in_any(0), 5);
        assert_eq!(rate.most_in_any(150 * S), 17);
        let sliding = Bound::Windows {
            limit: 5,
            length: 60 * S,
            step: 1,
        };
        assert_eq!(sliding.most_in_any(0), 5);
        assert_eq!(sliding.most_in_any(60 * S - 1), 5);
        assert_eq!(sliding.most_in_any(60 * S), 10);
        let aligned = Bound::Windows {
            limit: 5,
            length: 60 * S,
            step: 60 * S,
        };
        assert_eq!(aligned.most_in_any(0), 5);
        assert_eq!(aligned.most_in_any(59 * S), 10);
        assert_eq!(aligned.most_in_any(60 * S), 10);
        assert_eq!(aligned.most_in_any(61 * S), 15);
        assert_eq!(aligned.most_in(0, 59 * S), 5);
        assert_eq!(aligned.most_in(60 * S, 60 * S), 10);
        // The sliding window counter's pair: the tighter bound wins.
        let twice = Bound::Windows {
            limit: 9,
            length: 60 * S,
            step: 1,
        };
        let both = Envelope::new([aligned, twice]);
        assert_eq!(both.most_in_any(30 * S), 9);
        assert_eq!(both.most_in(0, 30 * S), 5);
    }
}
