//! `Serialize`/`Deserialize` for the policy types (feature `serde`), in the form people
//! write in config files:
//!
//! ```toml
//! quota  = { limit = 10, per = "1s", burst = 20 }     # Quota; burst defaults to limit
//! policy = { algorithm = "gcra", limit = 10, per = "1s", burst = 20 }   # Policy
//! window = { algorithm = "bucketed-window", limit = 100, per = "1m", buckets = 6 }
//! on_error = "fail-open"                               # FailurePolicy (feature redis)
//! ```
//!
//! Durations are humantime strings (`"250ms"`, `"1m30s"`, `"1h"`, `"1d"`). Everything
//! read goes through the validating constructors ([`Quota::new`], [`Quota::with_burst`]),
//! and [`Policy::with_param`] for an algorithm's parameters (`buckets`), so a config can
//! never build a policy the code would reject; unknown fields are errors.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::algorithm::Kind;
use crate::limiter::Policy;
use crate::quota::Quota;

/// The written form of a [`Quota`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaForm {
    limit: u64,
    #[serde(with = "humantime_serde")]
    per: Duration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    burst: Option<u64>,
}

impl QuotaForm {
    fn of(q: &Quota) -> Self {
        Self {
            limit: q.limit(),
            per: q.period(),
            burst: (q.burst() != q.limit()).then_some(q.burst()),
        }
    }

    fn quota(&self) -> crate::Result<Quota> {
        let q = Quota::new(self.limit, self.per)?;
        match self.burst {
            Some(burst) => q.with_burst(burst),
            None => Ok(q),
        }
    }
}

impl Serialize for Quota {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        QuotaForm::of(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Quota {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        QuotaForm::deserialize(d)?.quota().map_err(D::Error::custom)
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        name.parse().map_err(D::Error::custom)
    }
}

/// The written form of a [`Policy`]: the algorithm beside the quota's fields and the
/// algorithm's parameters (any other key is refused by [`Policy::with_param`]).
#[derive(Serialize, Deserialize)]
struct PolicyForm {
    algorithm: Kind,
    limit: u64,
    #[serde(with = "humantime_serde")]
    per: Duration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    burst: Option<u64>,
    #[serde(flatten)]
    params: BTreeMap<String, u64>,
}

impl Serialize for Policy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let q = QuotaForm::of(&self.quota);
        let params = self
            .kind
            .params()
            .iter()
            .filter_map(|p| Some((p.name.to_owned(), self.param(p.name)?)))
            .collect();
        PolicyForm {
            algorithm: self.kind,
            limit: q.limit,
            per: q.per,
            burst: q.burst,
            params,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let p = PolicyForm::deserialize(d)?;
        let quota = QuotaForm {
            limit: p.limit,
            per: p.per,
            burst: p.burst,
        }
        .quota()
        .map_err(D::Error::custom)?;
        p.params
            .iter()
            .try_fold(Policy::new(p.algorithm, quota), |policy, (name, value)| {
                policy
                    .with_param(name, *value)
                    .map_err(|e| D::Error::custom(format_args!("`{name}`: {e}")))
            })
    }
}

#[cfg(feature = "redis")]
impl Serialize for crate::store::redis::FailurePolicy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(feature = "redis")]
impl<'de> Deserialize<'de> for crate::store::redis::FailurePolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        name.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Config {
        quota: Quota,
        policy: Policy,
    }

    #[test]
    fn reads_and_writes_the_human_form() {
        let text = r#"
            quota = { limit = 10, per = "1s", burst = 20 }
            policy = { algorithm = "token-bucket", limit = 100, per = "1m" }
        "#;
        let c: Config = toml::from_str(text).unwrap();
        assert_eq!(
            c.quota,
            Quota::per_second(10).unwrap().with_burst(20).unwrap()
        );
        assert_eq!(
            c.policy,
            Policy::new(Kind::TokenBucket, Quota::per_minute(100).unwrap())
        );
        let written = serde_json::to_string(&c).unwrap();
        assert!(written.contains(r#""per":"1m""#), "{written}");
        assert!(!written.contains("burst\":100"), "{written}");
        assert_eq!(serde_json::from_str::<Config>(&written).unwrap(), c);
        let q: Quota = serde_json::from_str(r#"{"limit":5,"per":"1m30s"}"#).unwrap();
        assert_eq!(q.period(), Duration::from_secs(90));
    }

    #[test]
    fn rejects_what_the_constructors_reject() {
        for bad in [
            r#"{"limit":0,"per":"1s"}"#,
            r#"{"limit":5,"per":"0s"}"#,
            r#"{"limit":5,"per":"1s","burst":0}"#,
            r#"{"limit":5,"per":"soon"}"#,
            r#"{"limit":5,"per":"1s","brust":3}"#,
        ] {
            assert!(serde_json::from_str::<Quota>(bad).is_err(), "{bad}");
        }
        let err = serde_json::from_str::<Policy>(r#"{"algorithm":"leaky","limit":1,"per":"1s"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("leaky"), "{err}");
        // A parameter the algorithm does not take, or out of range, is refused.
        for bad in [
            r#"{"algorithm":"gcra","limit":1,"per":"1s","buckets":4}"#,
            r#"{"algorithm":"bucketed-window","limit":1,"per":"1s","buckets":0}"#,
            r#"{"algorithm":"gcra","limit":1,"per":"1s","brust":4}"#,
        ] {
            assert!(serde_json::from_str::<Policy>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn algorithm_parameters_round_trip() {
        let p: Policy = serde_json::from_str(
            r#"{"algorithm":"bucketed-window","limit":100,"per":"1m","buckets":6}"#,
        )
        .unwrap();
        assert_eq!(p.kind, Kind::BucketedWindow);
        assert_eq!(p.param("buckets"), Some(6));
        let written = serde_json::to_string(&p).unwrap();
        assert!(written.contains(r#""buckets":6"#), "{written}");
        assert_eq!(serde_json::from_str::<Policy>(&written).unwrap(), p);
    }
}
