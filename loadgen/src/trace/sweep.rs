//! A sweep's grid: `limit=50..500/50` (or `limit=50,100,200`) and `burst=1x,2x,4x`;
//! every route gets each limit per its own window and a burst of that many times the
//! limit, and every algorithm is replayed at every cell in the same single read.

use limiter_core::Kind;

use super::TraceError;
use super::routes::Routes;

/// Most cells a grid may have (each is a replay of every algorithm).
pub const MAX_CELLS: usize = 1000;

/// The limits and burst factors of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Limits, ascending as given.
    pub limits: Vec<u64>,
    /// Burst factors (1.0 = burst equals the limit).
    pub bursts: Vec<f64>,
}

impl Default for Grid {
    fn default() -> Self {
        Self {
            limits: Vec::new(),
            bursts: vec![1.0],
        }
    }
}

impl Grid {
    /// A grid from `--sweep` options (`limit=…`, `burst=…`; each at most once).
    pub fn parse<S: AsRef<str>>(options: &[S]) -> Result<Self, String> {
        let mut grid = Grid::default();
        let (mut limits, mut bursts) = (false, false);
        for opt in options {
            let opt = opt.as_ref();
            let (name, values) = opt
                .split_once('=')
                .ok_or_else(|| format!("{opt:?}: expected limit=… or burst=…"))?;
            match name.trim() {
                "limit" if !limits => {
                    grid.limits = parse_limits(values.trim())?;
                    limits = true;
                }
                "burst" if !bursts => {
                    grid.bursts = values
                        .split(',')
                        .map(|v| {
                            let v = v.trim();
                            v.strip_suffix('x')
                                .unwrap_or(v)
                                .parse::<f64>()
                                .ok()
                                .filter(|f| f.is_finite() && *f > 0.0)
                                .ok_or_else(|| format!("burst {v:?}: expected a factor like 2x"))
                        })
                        .collect::<Result<_, _>>()?;
                    bursts = true;
                }
                "limit" | "burst" => return Err(format!("{name} is swept twice")),
                other => return Err(format!("cannot sweep {other:?} (expected limit or burst)")),
            }
        }
        if grid.limits.is_empty() {
            return Err("a sweep needs limit=… (e.g. limit=50..500/50)".into());
        }
        let cells = grid.limits.len() * grid.bursts.len();
        if cells > MAX_CELLS {
            return Err(format!("{cells} grid cells; at most {MAX_CELLS}"));
        }
        Ok(grid)
    }

    /// The cells in order (limit-major): `(limit, burst factor)`.
    pub fn cells(&self) -> impl Iterator<Item = (u64, f64)> + '_ {
        self.limits
            .iter()
            .flat_map(|&l| self.bursts.iter().map(move |&b| (l, b)))
    }

    /// `routes` at every cell.
    pub(crate) fn routes(
        &self,
        routes: &Routes,
        kinds: &[Kind],
    ) -> Result<Vec<Routes>, TraceError> {
        self.cells()
            .map(|(l, b)| routes.scaled(l, b, kinds).map_err(TraceError::Config))
            .collect()
    }
}

/// `a..b/step` (inclusive) or `a,b,c`.
fn parse_limits(s: &str) -> Result<Vec<u64>, String> {
    let num = |v: &str| {
        v.trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("limit {v:?}: expected a positive whole number"))
    };
    if let Some((from, rest)) = s.split_once("..") {
        let (to, step) = rest.split_once('/').unwrap_or((rest, "1"));
        let (from, to, step) = (num(from)?, num(to)?, num(step)?);
        if from > to {
            return Err(format!("limit range {s:?} runs backwards"));
        }
        if (to - from) / step >= MAX_CELLS as u64 {
            return Err(format!(
                "limit range {s:?} has more than {MAX_CELLS} values"
            ));
        }
        return Ok((from..=to).step_by(step as usize).collect());
    }
    s.split(',').map(num).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_lists_and_factors() {
        let g = Grid::parse(&["limit=50..500/50", "burst=1x,2x,4x"]).unwrap();
        assert_eq!(g.limits, (1..=10).map(|i| i * 50).collect::<Vec<_>>());
        assert_eq!(g.bursts, [1.0, 2.0, 4.0]);
        assert_eq!(g.cells().count(), 30);
        assert_eq!(g.cells().nth(1), Some((50, 2.0)));
        let g = Grid::parse(&["limit=10,20"]).unwrap();
        assert_eq!((g.limits, g.bursts), (vec![10, 20], vec![1.0]));
        for bad in [
            &["burst=2x"][..],
            &["limit=500..50/50"],
            &["limit=0..10"],
            &["limit=1..100000"],
            &["limit=1", "limit=2"],
            &["rate=1"],
            &["limit=10", "burst=0x"],
            &["limit"],
        ] {
            assert!(Grid::parse(bad).is_err(), "{bad:?}");
        }
    }
}
