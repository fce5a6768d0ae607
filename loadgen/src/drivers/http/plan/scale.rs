//! Scaling a workload to the machine: a time scale stretches every duration and
//! divides every rate (same requests, same decisions, slower), a rate scale thins the
//! arrivals (fewer requests, same policies).

use std::time::Duration;

use limiter_core::{Nanos, Quota};

use super::PlanError;
use crate::workload::{Process, Workload};

/// How a workload is stretched or thinned to fit the machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    /// Durations are multiplied by this, rates divided by it.
    pub time: f64,
    /// Rates are multiplied by this.
    pub rate: f64,
}

impl Default for Scale {
    fn default() -> Self {
        Self {
            time: 1.0,
            rate: 1.0,
        }
    }
}

impl Scale {
    /// Checks both factors are in `[1e-4, 1e4]`.
    pub fn validate(&self) -> Result<(), PlanError> {
        for (which, value) in [("time-scale", self.time), ("rate-scale", self.rate)] {
            if !(value.is_finite() && (1e-4..=1e4).contains(&value)) {
                return Err(PlanError::Scale {
                    which,
                    value,
                    min: 1e-4,
                    max: 1e4,
                });
            }
        }
        Ok(())
    }

    /// True for the identity scale.
    pub fn is_identity(&self) -> bool {
        self.time == 1.0 && self.rate == 1.0
    }
}

fn mul(n: Nanos, f: f64) -> Nanos {
    (n as f64 * f).round().max(0.0) as Nanos
}

/// The workload `w` with `scale` applied (see the module docs).
pub fn scale_workload(w: &Workload, scale: Scale) -> Result<Workload, PlanError> {
    scale.validate()?;
    let mut out = w.clone();
    if scale.is_identity() {
        return Ok(out);
    }
    let t = scale.time;
    let rate = scale.rate / t;
    let mut start = 0;
    for p in &mut out.phases {
        p.start = start;
        p.duration = mul(p.duration, t).max(1);
        p.rate *= rate;
        p.rate_end *= rate;
        start += p.duration;
    }
    out.process = match out.process {
        Process::OnOff { on, off } => Process::OnOff {
            on: mul(on, t).max(1),
            off: mul(off, t).max(1),
        },
        Process::Boundary { window, spread } => Process::Boundary {
            window: mul(window, t).max(1),
            spread: mul(spread, t).max(1),
        },
        p => p,
    };
    for e in &mut out.endpoints {
        let q = e.quota;
        let period = mul(q.period_nanos(), t);
        e.quota = Quota::new(q.limit(), Duration::from_nanos(period))
            .and_then(|n| n.with_burst(q.burst()))
            .map_err(|err| PlanError::Policy {
                endpoint: e.path.clone(),
                message: err.to_string(),
            })?;
    }
    let d = &mut out.deployment;
    d.skew = mul(d.skew, t);
    d.rtt = mul(d.rtt, t);
    d.jitter = mul(d.jitter, t).min(d.rtt);
    let mut note = Vec::new();
    if t != 1.0 {
        note.push(format!("time ×{t}"));
    }
    if scale.rate != 1.0 {
        note.push(format!("rate ×{}", scale.rate));
    }
    out.description = format!("{} (scaled: {})", out.description, note.join(", "));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrivals;
    use crate::workload::SECOND;

    #[test]
    fn time_scale_keeps_counts_and_decisions() {
        let w = Workload::load("seed").unwrap();
        let s = scale_workload(
            &w,
            Scale {
                time: 0.1,
                rate: 1.0,
            },
        )
        .unwrap();
        assert_eq!(s.duration(), 15 * SECOND);
        assert_eq!(s.phases[1].start, 6 * SECOND);
        assert_eq!(s.phases[2].rate, 600.0);
        assert_eq!(s.endpoints[0].quota.period_nanos(), 6 * SECOND);
        assert_eq!(s.endpoints[0].quota.burst(), 5);
        let a = arrivals::generate(&w, 1);
        let b = arrivals::generate(&s, 1);
        assert_eq!(a.list.len(), b.list.len());
        assert_eq!(a.phase_starts, b.phase_starts);
        for (x, y) in a.list.iter().zip(&b.list) {
            assert!(
                (x.at as f64 * 0.1 - y.at as f64).abs() <= 1.0,
                "{} vs {}",
                x.at,
                y.at
            );
        }
    }

    #[test]
    fn rate_scale_thins() {
        let w = Workload::load("api-mix").unwrap();
        let s = scale_workload(
            &w,
            Scale {
                time: 1.0,
                rate: 0.01,
            },
        )
        .unwrap();
        assert_eq!(s.duration(), w.duration());
        assert_eq!(s.phases[2].rate, 200.0);
        assert!(s.description.contains("rate ×0.01"));
        assert!(
            Scale {
                time: 0.0,
                rate: 1.0
            }
            .validate()
            .is_err()
        );
        assert!(
            Scale {
                time: 1.0,
                rate: f64::NAN
            }
            .validate()
            .is_err()
        );
    }
}
