//! From the file's words to a [`Workload`]: every number the simulator uses in range,
//! every mistake reported with the file, the line (from the TOML parser's span) and the
//! key.

use std::time::Duration;

use gateway_contract::policy::PolicySpec;
use limiter_core::quota::MAX_LIMIT;
use limiter_core::{Kind, Nanos, Quota};
use toml::Spanned;

use super::file::{RawArrivals, RawDeployment, RawEndpoint, RawPhase, RawUsers, RawWorkload};
use super::{
    Deployment, Endpoint, MAX_ARRIVALS, MAX_KEYS, Phase, Process, SECOND, UserDistribution, Users,
    Workload, WorkloadError, line_col, parse_duration,
};

/// Turns raw TOML values into a [`Workload`], naming file, line and key on error.
pub(super) struct Validator<'a> {
    pub(super) text: &'a str,
    pub(super) file: &'a str,
}

impl Validator<'_> {
    fn err(
        &self,
        offset: usize,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> WorkloadError {
        WorkloadError::Invalid {
            file: self.file.to_owned(),
            line: line_col(self.text, offset).0,
            key: key.into(),
            message: message.into(),
        }
    }

    fn duration(&self, v: &Spanned<String>, key: &str) -> Result<Nanos, WorkloadError> {
        parse_duration(v.get_ref()).map_err(|m| self.err(v.span().start, key, m))
    }

    fn rate(&self, v: &Spanned<f64>, key: &str) -> Result<f64, WorkloadError> {
        let r = *v.get_ref();
        if !(0.0..=1e9).contains(&r) {
            return Err(self.err(
                v.span().start,
                key,
                format!("must be a number of arrivals per second between 0 and 1e9, not {r}"),
            ));
        }
        Ok(r)
    }

    pub(super) fn workload(
        &self,
        raw: RawWorkload,
        default_name: &str,
    ) -> Result<Workload, WorkloadError> {
        let name = match &raw.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                return Err(self.err(n.span().start, "name", "must not be empty"));
            }
            Some(n) => n.get_ref().trim().to_owned(),
            None => default_name.to_owned(),
        };
        let users = self.users(raw.users.as_ref())?;
        let process = self.arrivals(raw.arrivals.as_ref())?;
        let deployment = self.deployment(raw.deployment.as_ref())?;
        let phases = self.phases(&raw.phase)?;
        let start = phases.last().map_or(0, Phase::end);
        let expected: f64 = phases.iter().map(Phase::expected_arrivals).sum();
        if expected > MAX_ARRIVALS {
            let first = raw.phase[0].get_ref();
            return Err(self.err(
                first.rate.span().start,
                "phase[*].rate",
                format!(
                    "the phases ask for about {expected:.0} arrivals; the simulator takes at most {MAX_ARRIVALS:.0}"
                ),
            ));
        }
        let endpoints = self.endpoints(&raw.endpoint)?;
        let keys = users.count as u64 * endpoints.len() as u64;
        if keys > MAX_KEYS {
            return Err(self.err(
                raw.users.as_ref().map_or(0, |u| u.span().start),
                "users.count",
                format!("users × endpoints is {keys} keys; the simulator takes at most {MAX_KEYS}"),
            ));
        }
        if let Process::Boundary { window, .. } = process
            && expected > 0.0
            && window > start
        {
            let at = raw.arrivals.as_ref().map_or(0, |a| a.span().start);
            return Err(self.err(
                at,
                "arrivals.window",
                "is longer than the whole workload: no window edge to attack",
            ));
        }
        Ok(Workload {
            name,
            description: raw.description.unwrap_or_default().trim().to_owned(),
            source: self.file.to_owned(),
            seed: raw.seed.unwrap_or(1),
            users,
            process,
            phases,
            endpoints,
            deployment,
        })
    }

    fn phases(&self, raw: &[Spanned<RawPhase>]) -> Result<Vec<Phase>, WorkloadError> {
        if raw.is_empty() {
            return Err(self.err(0, "phase", "a workload needs at least one [[phase]]"));
        }
        let mut phases = Vec::with_capacity(raw.len());
        let mut start: Nanos = 0;
        for (i, p) in raw.iter().enumerate() {
            let p = p.get_ref();
            let key = |k: &str| format!("phase[{i}].{k}");
            let pname = p.name.get_ref().trim();
            if pname.is_empty() {
                return Err(self.err(p.name.span().start, key("name"), "must not be empty"));
            }
            let duration = self.duration(&p.duration, &key("duration"))?;
            if duration == 0 {
                return Err(self.err(p.duration.span().start, key("duration"), "must be positive"));
            }
            let rate = self.rate(&p.rate, &key("rate"))?;
            let rate_end = match &p.ramp_to {
                Some(r) => self.rate(r, &key("ramp_to"))?,
                None => rate,
            };
            if start.saturating_add(duration) > 30 * 24 * 3600 * SECOND {
                return Err(self.err(
                    p.duration.span().start,
                    key("duration"),
                    "the phases add up to more than 30 days",
                ));
            }
            phases.push(Phase {
                name: pname.to_owned(),
                start,
                duration,
                rate,
                rate_end,
            });
            start += duration;
        }
        Ok(phases)
    }

    fn endpoints(&self, raw: &[Spanned<RawEndpoint>]) -> Result<Vec<Endpoint>, WorkloadError> {
        if raw.is_empty() {
            return Err(self.err(0, "endpoint", "a workload needs at least one [[endpoint]]"));
        }
        if raw.len() > 256 {
            return Err(self.err(raw[256].span().start, "endpoint", "at most 256 endpoints"));
        }
        let mut endpoints = Vec::with_capacity(raw.len());
        for (i, e) in raw.iter().enumerate() {
            endpoints.push(self.endpoint(i, e.get_ref())?);
        }
        Ok(endpoints)
    }

    fn users(&self, raw: Option<&Spanned<RawUsers>>) -> Result<Users, WorkloadError> {
        let Some(raw) = raw else {
            return Ok(Users {
                count: 1,
                distribution: UserDistribution::Uniform,
            });
        };
        let u = raw.get_ref();
        let count = *u.count.get_ref();
        if count == 0 || count > u32::MAX as u64 {
            return Err(self.err(
                u.count.span().start,
                "users.count",
                "must be between 1 and 4294967295",
            ));
        }
        let kind = u
            .distribution
            .as_ref()
            .map_or("uniform", |d| d.get_ref().as_str());
        let distribution = match kind {
            "uniform" => {
                if let Some(e) = &u.exponent {
                    return Err(self.err(
                        e.span().start,
                        "users.exponent",
                        "only a zipf distribution has an exponent",
                    ));
                }
                UserDistribution::Uniform
            }
            "zipf" => {
                let exponent = u.exponent.as_ref().map_or(1.0, |e| *e.get_ref());
                if !(exponent.is_finite() && exponent > 0.0 && exponent <= 10.0) {
                    let at = u
                        .exponent
                        .as_ref()
                        .map_or(raw.span().start, |e| e.span().start);
                    return Err(self.err(at, "users.exponent", "must be a number in (0, 10]"));
                }
                UserDistribution::Zipf { exponent }
            }
            other => {
                let at = u
                    .distribution
                    .as_ref()
                    .map_or(raw.span().start, |d| d.span().start);
                return Err(self.err(
                    at,
                    "users.distribution",
                    format!("unknown distribution {other:?} (expected one of: uniform, zipf)"),
                ));
            }
        };
        Ok(Users {
            count: count as u32,
            distribution,
        })
    }

    fn arrivals(&self, raw: Option<&Spanned<RawArrivals>>) -> Result<Process, WorkloadError> {
        let Some(raw) = raw else {
            return Ok(Process::Constant);
        };
        let a = raw.get_ref();
        let extra = |v: &Option<Spanned<String>>, k: &str, p: &str| match v {
            Some(v) => Err(self.err(
                v.span().start,
                format!("arrivals.{k}"),
                format!("does not apply to process {p:?}"),
            )),
            None => Ok(()),
        };
        let need = |v: &Option<Spanned<String>>, k: &str| -> Result<Nanos, WorkloadError> {
            match v {
                Some(v) => {
                    let d = self.duration(v, &format!("arrivals.{k}"))?;
                    if d == 0 {
                        return Err(self.err(
                            v.span().start,
                            format!("arrivals.{k}"),
                            "must be positive",
                        ));
                    }
                    Ok(d)
                }
                None => Err(self.err(
                    raw.span().start,
                    format!("arrivals.{k}"),
                    "is required for this process",
                )),
            }
        };
        let name = a.process.get_ref().as_str();
        match name {
            "constant" | "poisson" => {
                extra(&a.on, "on", name)?;
                extra(&a.off, "off", name)?;
                extra(&a.window, "window", name)?;
                extra(&a.spread, "spread", name)?;
                Ok(if name == "constant" {
                    Process::Constant
                } else {
                    Process::Poisson
                })
            }
            "onoff" => {
                extra(&a.window, "window", name)?;
                extra(&a.spread, "spread", name)?;
                Ok(Process::OnOff {
                    on: need(&a.on, "on")?,
                    off: need(&a.off, "off")?,
                })
            }
            "boundary" => {
                extra(&a.on, "on", name)?;
                extra(&a.off, "off", name)?;
                let window = need(&a.window, "window")?;
                let spread = match &a.spread {
                    Some(_) => need(&a.spread, "spread")?,
                    None => (window / 100).max(1),
                };
                if spread > window / 2 {
                    let at = a.spread.as_ref().map_or(raw.span().start, |s| s.span().start);
                    return Err(self.err(at, "arrivals.spread", "must be at most half the window"));
                }
                Ok(Process::Boundary { window, spread })
            }
            other => Err(self.err(
                a.process.span().start,
                "arrivals.process",
                format!(
                    "unknown arrival process {other:?} (expected one of: constant, poisson, onoff, boundary)"
                ),
            )),
        }
    }

    fn deployment(
        &self,
        raw: Option<&Spanned<RawDeployment>>,
    ) -> Result<Deployment, WorkloadError> {
        let Some(raw) = raw else {
            return Ok(Deployment::default());
        };
        let d = raw.get_ref();
        let mut out = Deployment::default();
        let at = |k: &str| -> usize {
            let s = match k {
                "store" => d.store.as_ref().map(|v| v.span().start),
                "gateways" => d.gateways.as_ref().map(|v| v.span().start),
                "skew" => d.skew.as_ref().map(|v| v.span().start),
                "rtt" => d.rtt.as_ref().map(|v| v.span().start),
                "jitter" => d.jitter.as_ref().map(|v| v.span().start),
                _ => None,
            };
            s.unwrap_or(raw.span().start)
        };
        if let Some(s) = &d.store {
            out.store = s
                .get_ref()
                .parse()
                .map_err(|m: String| self.err(s.span().start, "deployment.store", m))?;
        }
        if let Some(g) = &d.gateways {
            out.gateways = u32::try_from(*g.get_ref()).unwrap_or(u32::MAX);
        }
        if let Some(v) = &d.skew {
            out.skew = self.duration(v, "deployment.skew")?;
        }
        if let Some(v) = &d.rtt {
            out.rtt = self.duration(v, "deployment.rtt")?;
        }
        if let Some(v) = &d.jitter {
            out.jitter = self.duration(v, "deployment.jitter")?;
        }
        out.validate()
            .map_err(|(k, m)| self.err(at(k), format!("deployment.{k}"), m))?;
        Ok(out)
    }

    fn endpoint(&self, i: usize, e: &RawEndpoint) -> Result<Endpoint, WorkloadError> {
        let key = |k: &str| format!("endpoint[{i}].{k}");
        let path = e.path.get_ref().trim();
        if path.is_empty() {
            return Err(self.err(e.path.span().start, key("path"), "must not be empty"));
        }
        let weight = e.weight.as_ref().map_or(1.0, |w| *w.get_ref());
        if !(weight.is_finite() && weight > 0.0) {
            let at = e
                .weight
                .as_ref()
                .map_or(e.path.span().start, |w| w.span().start);
            return Err(self.err(at, key("weight"), "must be a positive number"));
        }
        let limit = *e.limit.get_ref();
        if limit == 0 || limit > MAX_LIMIT {
            return Err(self.err(
                e.limit.span().start,
                key("limit"),
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let window = self.duration(&e.window, &key("window"))?;
        let quota = Quota::new(limit, Duration::from_nanos(window))
            .map_err(|err| self.err(e.window.span().start, key("window"), err.to_string()))?;
        let quota = match &e.burst {
            Some(b) => quota
                .with_burst(*b.get_ref())
                .map_err(|err| self.err(b.span().start, key("burst"), err.to_string()))?,
            None => quota,
        };
        let cost = e.cost.as_ref().map_or(1, |c| *c.get_ref());
        // The one cost rule, for every algorithm the endpoint is played against.
        PolicySpec::new(quota, cost, &Kind::ALL).map_err(|err| {
            let at = e
                .cost
                .as_ref()
                .map_or(e.limit.span().start, |c| c.span().start);
            self.err(at, key("cost"), err.to_string())
        })?;
        Ok(Endpoint {
            path: path.to_owned(),
            weight,
            quota,
            cost,
        })
    }
}
