//! Several limits on Redis in one script call: the script (`limits.lua`, with every
//! algorithm's own step spliced in from the registration list, never copied), the
//! call's keys and arguments, and the decoding of its reply.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use redis::{Cmd, Value};

use super::in_flight::{InFlight, Permit};
use super::redis_leases::{self, Leases};
use super::{Admission, LimitSet, LimitsDecision, LimitsVerdict, MAX_LIMITS, MultiLimiter, Rule};
use crate::algorithm::mirror::{AnyMirror, Mirror};
use crate::algorithm::{Algorithm, Kind, registry};
use crate::clock::Clock;
use crate::decision::{DecidedBy, Decision};
use crate::error::{Error, Result};
use crate::store::redis::{
    FailurePolicy, RedisStore, TimeSource, in_flight_key, script, tagged_key,
};

const TEMPLATE: &str = include_str!("limits.lua");

macro_rules! steps {
    ($($variant:ident: $module:ident::$ty:ident,)*) => {
        /// Every algorithm's script and its "admitted?" test, by [`Kind`] index.
        const STEPS: [(&str, &str); Kind::ALL.len()] = [$((
            <<crate::algorithm::$ty as Algorithm>::Mirror as Mirror>::LUA,
            <<crate::algorithm::$ty as Algorithm>::Mirror as Mirror>::ADMITTED,
        ),)*];
    };
}
registry!(steps);

/// The step index of in-flight limits in the composed script: after every algorithm.
const IN_FLIGHT: usize = Kind::ALL.len();

/// The composed script's source and SHA1, built once.
fn script() -> &'static (String, String) {
    static SCRIPT: OnceLock<(String, String)> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        let mut steps = String::new();
        for (i, (lua, admitted)) in STEPS.iter().enumerate() {
            steps.push_str(&format!(
                "steps[{i}] = function(KEYS, ARGV, redis)\n{lua}\nend\n\
                 admitted[{i}] = function(r) return {admitted} end\n"
            ));
        }
        // In-flight limits: the step after every algorithm's.
        steps.push_str(&format!(
            "steps[{IN_FLIGHT}] = function(KEYS, ARGV, redis)\n{}\nend\n\
             admitted[{IN_FLIGHT}] = function(r) return {} end\n",
            redis_leases::STEP,
            redis_leases::ADMITTED,
        ));
        let source = TEMPLATE.replace("--@STEPS@\n", &steps);
        let sha = redis::Script::new(&source).get_hash().to_owned();
        (source, sha)
    })
}

/// How the script decides one limit: a rate algorithm's mirror, or an in-flight limit.
enum Step {
    Rate(AnyMirror, Kind),
    InFlight(InFlight),
}

/// The Redis side of a [`MultiLimiter`]: each limit's step and id.
pub(crate) struct RedisLimits {
    store: RedisStore,
    limits: Vec<(Step, String)>,
    /// Whether some limit is an in-flight limit (admissions hold leases).
    in_flight: bool,
}

impl fmt::Debug for RedisLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimits").finish_non_exhaustive()
    }
}

impl RedisLimits {
    pub(super) fn new(store: RedisStore, set: &LimitSet) -> Self {
        let limits = set
            .limits()
            .iter()
            .map(|l| {
                let step = match l.rule() {
                    Rule::Rate(p) => Step::Rate(AnyMirror::new(&p), p.kind),
                    Rule::InFlight(f) => Step::InFlight(f),
                };
                (step, l.id().to_owned())
            })
            .collect();
        Self {
            store,
            limits,
            in_flight: set.has_in_flight(),
        }
    }

    /// The key of limit `id` for `tag`.
    fn key(&self, step: &Step, tag: &str, id: &str) -> String {
        let prefix = &self.store.options().key_prefix;
        match step {
            Step::Rate(_, kind) => tagged_key(prefix, *kind, tag, id),
            Step::InFlight(_) => in_flight_key(prefix, tag, id),
        }
    }

    /// The `EVALSHA` call deciding every limit for `tag` at a cost of `cost`; `member`
    /// names the request's leases in its in-flight limits.
    pub(crate) fn command(&self, tag: &str, cost: u64, member: &str) -> Cmd {
        let n = self.limits.len();
        let mut cmd = Cmd::with_capacity(4 + 6 * n, 64 + 96 * n);
        cmd.arg("EVALSHA").arg(&script().1).arg(n);
        for (step, id) in &self.limits {
            cmd.arg(self.key(step, tag, id));
        }
        cmd.arg(n);
        match &self.store.options().time {
            TimeSource::Caller(clock) => cmd.arg(clock.now() / 1_000),
            TimeSource::Redis => cmd.arg(""),
        };
        let mut args = Cmd::new();
        for (step, _) in &self.limits {
            args.clear();
            let index = match step {
                Step::Rate(mirror, kind) => {
                    mirror.push_args(&mut args, cost);
                    *kind as usize
                }
                Step::InFlight(f) => {
                    redis_leases::push_args(&mut args, &self.store, f, member);
                    IN_FLIGHT
                }
            };
            cmd.arg(index).arg(args.args_iter().len());
            for arg in args.args_iter() {
                if let redis::Arg::Simple(bytes) = arg {
                    cmd.arg(bytes);
                }
            }
        }
        cmd
    }

    /// Every limit's decision from the script's reply.
    fn decode(&self, set: &LimitSet, reply: &Value, cost: u64) -> Option<LimitsDecision> {
        let Value::Array(items) = reply else {
            return None;
        };
        let (first, rest) = items.split_first()?;
        if rest.len() != self.limits.len() || rest.len() > MAX_LIMITS {
            return None;
        }
        let all = matches!(first, Value::Int(1));
        let mut ds = [Decision::allow(0, 0, Duration::ZERO); MAX_LIMITS];
        for ((slot, r), (step, _)) in ds.iter_mut().zip(rest).zip(&self.limits) {
            *slot = match step {
                Step::Rate(mirror, _) => mirror.decode_value(r, cost)?,
                Step::InFlight(f) => decode_in_flight(f, r)?,
            };
        }
        let decision = LimitsDecision::new(set, &ds[..rest.len()], cost);
        // The script's word and the decoded decisions must agree.
        (decision.allowed == all).then_some(decision)
    }

    /// Settles every limit that settles for `tag` (see [`MultiLimiter::settle`]): one
    /// settle script call each, on the key the decision wrote.
    pub(super) async fn settle(&self, tag: &str, reserved: u64, actual: u64) -> Result<usize> {
        let prefix = &self.store.options().key_prefix;
        let mut settled = 0;
        for (step, id) in &self.limits {
            // In-flight limits hold slots, not units: nothing to settle.
            let Step::Rate(mirror, kind) = step else {
                continue;
            };
            let Some(lua) = script::settle_lua(*kind) else {
                continue;
            };
            let mut cmd = Cmd::with_capacity(6, 160);
            cmd.arg("EVALSHA")
                .arg(script::settle_sha(*kind))
                .arg(1)
                .arg(tagged_key(prefix, *kind, tag, id));
            mirror.push_settle_args(&mut cmd, reserved, actual);
            if let TimeSource::Caller(clock) = &self.store.options().time {
                cmd.arg(clock.now() / 1_000);
            }
            let reply = self.store.guarded_call(&cmd, lua).await?;
            mirror
                .decode_settle_value(&reply)
                .ok_or_else(|| Error::bad_reply(format!("{reply:?}")))?;
            settled += 1;
        }
        Ok(settled)
    }

    /// Decides in Redis, answering a failed store with its failure policy.
    pub(super) async fn decide<C: Clock>(
        &self,
        limiter: &MultiLimiter<C>,
        tag: &str,
        cost: u64,
    ) -> Result<Admission> {
        let member = if self.in_flight {
            redis_leases::member()
        } else {
            String::new()
        };
        let cmd = self.command(tag, cost, &member);
        let set = limiter.set();
        let err = match self.store.guarded_call(&cmd, &script().0).await {
            Ok(reply) => {
                let decision = self
                    .decode(set, &reply, cost)
                    .ok_or_else(|| Error::bad_reply(format!("{reply:?}")))?;
                let permit = if decision.allowed && self.in_flight {
                    Permit::with_leases(self.leases(tag, member))
                } else {
                    Permit::default()
                };
                return Ok(Admission {
                    verdict: LimitsVerdict {
                        decision,
                        decided_by: DecidedBy::Store,
                    },
                    permit,
                });
            }
            Err(e) if !e.is_store_failure() => return Err(e),
            Err(e) => e,
        };
        let opts = self.store.options();
        let mut permit = Permit::default();
        let (decision, by) = match opts.on_error {
            FailurePolicy::Local => {
                let verdict = limiter.decide_memory(tag, cost, Some(&mut permit))?;
                (verdict.decision, DecidedBy::Local)
            }
            FailurePolicy::FailClosed => {
                let retry = err.retry_after().unwrap_or(opts.breaker.open_for);
                (
                    LimitsDecision::uniform(set, false, retry, cost),
                    DecidedBy::FailClosed,
                )
            }
            FailurePolicy::FailOpen => (
                LimitsDecision::uniform(set, true, Duration::ZERO, cost),
                DecidedBy::FailOpen,
            ),
        };
        self.store.count_fallback(by);
        Ok(Admission {
            verdict: LimitsVerdict {
                decision,
                decided_by: by,
            },
            permit,
        })
    }

    /// Starts holding `member`'s leases in every in-flight limit of `tag`.
    fn leases(&self, tag: &str, member: String) -> Leases {
        let keys = self
            .limits
            .iter()
            .filter_map(|(step, id)| match step {
                Step::InFlight(f) => Some((self.key(step, tag, id), *f)),
                Step::Rate(..) => None,
            })
            .collect();
        Leases::hold(self.store.clone(), keys, member)
    }
}

/// An in-flight step's reply: `{1, slots left}` or `{0, 0}`.
fn decode_in_flight(limit: &InFlight, reply: &Value) -> Option<Decision> {
    let Value::Array(items) = reply else {
        return None;
    };
    match items.as_slice() {
        [Value::Int(1), Value::Int(left)] => {
            let left = u64::try_from(*left).ok()?.min(limit.limit());
            Some(Decision::allow(limit.limit(), left, Duration::ZERO))
        }
        [Value::Int(0), Value::Int(_)] => Some(limit.decision(limit.limit())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_holds_every_algorithms_own_step() {
        let (source, sha) = script();
        assert_eq!(sha.len(), 40);
        assert!(!source.contains("--@STEPS@"));
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            assert!(source.contains(&format!("steps[{i}] = function")), "{kind}");
            assert!(source.contains(STEPS[i].0));
        }
        assert!(source.contains(&format!("steps[{IN_FLIGHT}] = function")));
        assert!(source.contains(redis_leases::STEP));
    }
}
