//! The workload file format: its tables and keys as serde types, read with the TOML
//! parser's spans (for located errors) and written back with serde — the load driver
//! saves the scaled workload it played as a file `ratelab simulate` reads to the same
//! workload.

use gateway_contract::duration::format_nanos;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::{Deployment, Process, UserDistribution, Workload};

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) name: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) users: Option<Spanned<RawUsers>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) arrivals: Option<Spanned<RawArrivals>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) deployment: Option<Spanned<RawDeployment>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) phase: Vec<Spanned<RawPhase>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) endpoint: Vec<Spanned<RawEndpoint>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUsers {
    pub(super) count: Spanned<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) distribution: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) exponent: Option<Spanned<f64>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawArrivals {
    pub(super) process: Spanned<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) on: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) off: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) window: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) spread: Option<Spanned<String>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeployment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) store: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) gateways: Option<Spanned<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) skew: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) rtt: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) jitter: Option<Spanned<String>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPhase {
    pub(super) name: Spanned<String>,
    pub(super) duration: Spanned<String>,
    pub(super) rate: Spanned<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) ramp_to: Option<Spanned<f64>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEndpoint {
    pub(super) path: Spanned<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) weight: Option<Spanned<f64>>,
    pub(super) limit: Spanned<u64>,
    pub(super) window: Spanned<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) burst: Option<Spanned<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) cost: Option<Spanned<u64>>,
}

fn at<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}

fn dur(n: u64) -> Option<Spanned<String>> {
    Some(at(format_nanos(n)))
}

impl RawWorkload {
    /// The file that reads back to `w` (with `seed`).
    fn of(w: &Workload, seed: u64) -> Self {
        let (distribution, exponent) = match w.users.distribution {
            UserDistribution::Uniform => ("uniform", None),
            UserDistribution::Zipf { exponent } => ("zipf", Some(at(exponent))),
        };
        let (on, off, window, spread) = match w.process {
            Process::OnOff { on, off } => (dur(on), dur(off), None, None),
            Process::Boundary { window, spread } => (None, None, dur(window), dur(spread)),
            Process::Constant | Process::Poisson => (None, None, None, None),
        };
        let d = &w.deployment;
        let deployment = (*d != Deployment::default()).then(|| {
            at(RawDeployment {
                store: Some(at(d.store.name().to_owned())),
                gateways: Some(at(u64::from(d.gateways))),
                skew: dur(d.skew),
                rtt: dur(d.rtt),
                jitter: dur(d.jitter),
            })
        });
        let phase = w.phases.iter().map(|p| {
            at(RawPhase {
                name: at(p.name.clone()),
                duration: at(format_nanos(p.duration)),
                rate: at(p.rate),
                ramp_to: (p.rate_end != p.rate).then(|| at(p.rate_end)),
            })
        });
        let endpoint = w.endpoints.iter().map(|e| {
            at(RawEndpoint {
                path: at(e.path.clone()),
                weight: Some(at(e.weight)),
                limit: at(e.quota.limit()),
                window: at(format_nanos(e.quota.period_nanos())),
                burst: Some(at(e.quota.burst())),
                cost: Some(at(e.cost)),
            })
        });
        Self {
            name: Some(at(w.name.clone())),
            description: Some(w.description.clone()),
            seed: Some(seed),
            users: Some(at(RawUsers {
                count: at(u64::from(w.users.count)),
                distribution: Some(at(distribution.to_owned())),
                exponent,
            })),
            arrivals: Some(at(RawArrivals {
                process: at(w.process.name().to_owned()),
                on,
                off,
                window,
                spread,
            })),
            deployment,
            phase: phase.collect(),
            endpoint: endpoint.collect(),
        }
    }
}

/// The workload as TOML that [`Workload::parse`] reads back to the same workload, with
/// `seed` — written by serde from the file's own types.
pub fn to_toml(w: &Workload, seed: u64) -> Result<String, toml::ser::Error> {
    let body = toml::to_string(&RawWorkload::of(w, seed))?;
    Ok(format!(
        "# Written by `ratelab load`: the workload exactly as it was played.\n{body}"
    ))
}
