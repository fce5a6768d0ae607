//! The routes a log is replayed against: the gateway's templates, matched exactly as
//! the gateway matches them (`gateway_contract::routes`: the first route whose template
//! matches the normalised path, else the default), each with the policy every
//! algorithm is given.

use gateway_contract::policy::PolicySpec;
use gateway_contract::routes::{Template, normalise};
use limiter_core::{Kind, Quota};
use results::TraceRoute;

/// One route: its template (`None`: the default) and its policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The template; `None` for the default limit.
    pub template: Option<Template>,
    /// The policy and cost of a request.
    pub spec: PolicySpec,
}

impl Route {
    /// Its name in results: the template, or `default`.
    pub fn name(&self) -> &str {
        self.template.as_ref().map_or("default", Template::as_str)
    }
}

/// The routes, in match order, the default (if any) last.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Routes {
    routes: Vec<Route>,
    has_default: bool,
}

impl Routes {
    /// `routes` in match order and an optional default. Every policy must suit every
    /// algorithm in `kinds` (the cost rule, `PolicySpec::new`), since each is played.
    pub fn new(
        routes: Vec<Route>,
        default: Option<PolicySpec>,
        kinds: &[Kind],
    ) -> Result<Self, String> {
        let mut all = routes;
        let has_default = default.is_some();
        all.extend(default.map(|spec| Route {
            template: None,
            spec,
        }));
        for r in &all {
            PolicySpec::new(r.spec.quota, r.spec.cost, kinds)
                .map_err(|e| format!("route {}: {e}", r.name()))?;
        }
        if all.is_empty() {
            return Err(
                "the configuration has no route and no default limit: nothing to replay".into(),
            );
        }
        Ok(Self {
            routes: all,
            has_default,
        })
    }

    /// The route index that limits `path`, if any.
    pub fn route_for(&self, path: &str) -> Option<u32> {
        let segments = normalise(path);
        let templated = self.routes.len() - usize::from(self.has_default);
        self.routes[..templated]
            .iter()
            .position(|r| r.template.as_ref().is_some_and(|t| t.matches(&segments)))
            .or(self.has_default.then_some(templated))
            .map(|i| i as u32)
    }

    /// Every route in match order, the default last.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Route> {
        self.routes.iter()
    }

    /// Number of routes (the default included).
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Each route's quota.
    pub fn quotas(&self) -> Vec<Quota> {
        self.routes.iter().map(|r| r.spec.quota).collect()
    }

    /// Each route's cost per request.
    pub fn costs(&self) -> Vec<u64> {
        self.routes.iter().map(|r| r.spec.cost).collect()
    }

    /// The same routes with every quota replaced by `limit` per the route's window and
    /// a burst of `burst_factor × limit` (a sweep's grid point).
    pub fn scaled(&self, limit: u64, burst_factor: f64, kinds: &[Kind]) -> Result<Self, String> {
        let mut out = self.clone();
        for r in &mut out.routes {
            let burst = ((limit as f64 * burst_factor).round() as u64).max(1);
            let quota = Quota::new(limit, r.spec.quota.period())
                .and_then(|q| q.with_burst(burst))
                .map_err(|e| format!("limit {limit}, burst {burst}: {e}"))?;
            r.spec = PolicySpec::new(quota, r.spec.cost, kinds)
                .map_err(|e| format!("route {} at limit {limit}: {e}", r.name()))?;
        }
        Ok(out)
    }

    /// The routes as results name them.
    pub fn info(&self) -> Vec<TraceRoute> {
        self.routes
            .iter()
            .map(|r| TraceRoute {
                route: r.name().to_owned(),
                limit: r.spec.quota.limit(),
                window_s: results::round4(r.spec.quota.period().as_secs_f64()),
                burst: r.spec.quota.burst(),
                cost: r.spec.cost,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec(limit: u64) -> PolicySpec {
        PolicySpec {
            quota: Quota::new(limit, Duration::from_secs(60)).unwrap(),
            cost: 1,
        }
    }

    #[test]
    fn first_match_then_default_as_the_gateway() {
        let route = |t: &str, l| Route {
            template: Some(Template::parse(t).unwrap()),
            spec: spec(l),
        };
        let routes = Routes::new(
            vec![route("/api/orders/{id}", 10), route("/api/{*rest}", 20)],
            Some(spec(5)),
            &Kind::ALL,
        )
        .unwrap();
        assert_eq!(routes.route_for("/api/orders/42"), Some(0));
        assert_eq!(routes.route_for("/api//orders/./42/"), Some(0));
        assert_eq!(routes.route_for("/api/%6Frders/42"), Some(0));
        assert_eq!(routes.route_for("/api/search"), Some(1));
        assert_eq!(routes.route_for("/health"), Some(2));
        let no_default = Routes::new(vec![route("/a", 1)], None, &Kind::ALL).unwrap();
        assert_eq!(no_default.route_for("/b"), None);
        assert!(Routes::new(vec![], None, &Kind::ALL).is_err());
        let s = routes.scaled(100, 2.0, &Kind::ALL).unwrap();
        assert_eq!(s.info()[1].limit, 100);
        assert_eq!(s.info()[1].burst, 200);
        assert_eq!(s.info()[1].window_s, 60.0);
    }
}
