//! Several limits on Redis in one script call: the script (`limits.lua`, with every
//! algorithm's own step spliced in from the registration list, never copied), the
//! call's keys and arguments, and the decoding of its reply.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use redis::{Cmd, Value};

use super::{LimitSet, LimitsDecision, LimitsVerdict, MAX_LIMITS, MultiLimiter};
use crate::algorithm::mirror::{AnyMirror, Mirror};
use crate::algorithm::{Algorithm, Kind, registry};
use crate::clock::Clock;
use crate::decision::{DecidedBy, Decision};
use crate::error::{Error, Result};
use crate::store::redis::{FailurePolicy, RedisStore, TimeSource, script, tagged_key};

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
        let source = TEMPLATE.replace("--@STEPS@\n", &steps);
        let sha = redis::Script::new(&source).get_hash().to_owned();
        (source, sha)
    })
}

/// The Redis side of a [`MultiLimiter`]: each limit's mirror and key name.
pub(crate) struct RedisLimits {
    store: RedisStore,
    limits: Vec<(AnyMirror, Kind, String)>,
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
                let p = l.policy();
                (AnyMirror::new(&p), p.kind, l.id().to_owned())
            })
            .collect();
        Self { store, limits }
    }

    /// The `EVALSHA` call deciding every limit for `tag` at a cost of `cost`.
    pub(crate) fn command(&self, tag: &str, cost: u64) -> Cmd {
        let prefix = &self.store.options().key_prefix;
        let n = self.limits.len();
        let mut cmd = Cmd::with_capacity(4 + 6 * n, 64 + 96 * n);
        cmd.arg("EVALSHA").arg(&script().1).arg(n);
        for (_, kind, id) in &self.limits {
            cmd.arg(tagged_key(prefix, *kind, tag, id));
        }
        cmd.arg(n);
        match &self.store.options().time {
            TimeSource::Caller(clock) => cmd.arg(clock.now() / 1_000),
            TimeSource::Redis => cmd.arg(""),
        };
        let mut args = Cmd::new();
        for (mirror, kind, _) in &self.limits {
            args.clear();
            mirror.push_args(&mut args, cost);
            cmd.arg(*kind as usize).arg(args.args_iter().len());
            for arg in args.args_iter() {
                if let redis::Arg::Simple(bytes) = arg {
                    cmd.arg(bytes);
                }
            }
        }
        cmd
    }

    /// Every limit's decision from the script's reply.
    fn decode(&self, reply: &Value, cost: u64) -> Option<LimitsDecision> {
        let Value::Array(items) = reply else {
            return None;
        };
        let (first, rest) = items.split_first()?;
        if rest.len() != self.limits.len() || rest.len() > MAX_LIMITS {
            return None;
        }
        let all = matches!(first, Value::Int(1));
        let mut ds = [Decision::allow(0, 0, Duration::ZERO); MAX_LIMITS];
        for ((slot, r), (mirror, _, _)) in ds.iter_mut().zip(rest).zip(&self.limits) {
            *slot = mirror.decode_value(r, cost)?;
        }
        let decision = LimitsDecision::new(&ds[..rest.len()], cost);
        // The script's word and the decoded decisions must agree.
        (decision.allowed == all).then_some(decision)
    }

    /// Settles every limit that settles for `tag` (see [`MultiLimiter::settle`]): one
    /// settle script call each, on the key the decision wrote.
    pub(super) async fn settle(&self, tag: &str, reserved: u64, actual: u64) -> Result<usize> {
        let prefix = &self.store.options().key_prefix;
        let mut settled = 0;
        for (mirror, kind, id) in &self.limits {
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
    ) -> Result<LimitsVerdict> {
        let cmd = self.command(tag, cost);
        let err = match self.store.guarded_call(&cmd, &script().0).await {
            Ok(reply) => {
                let decision = self
                    .decode(&reply, cost)
                    .ok_or_else(|| Error::bad_reply(format!("{reply:?}")))?;
                return Ok(LimitsVerdict {
                    decision,
                    decided_by: DecidedBy::Store,
                });
            }
            Err(e) if !e.is_store_failure() => return Err(e),
            Err(e) => e,
        };
        let opts = self.store.options();
        let set = limiter.set();
        let (decision, by) = match opts.on_error {
            FailurePolicy::Local => (limiter.decide_memory(tag, cost)?.decision, DecidedBy::Local),
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
        Ok(LimitsVerdict {
            decision,
            decided_by: by,
        })
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
    }
}
