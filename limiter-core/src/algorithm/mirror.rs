//! An algorithm's Redis twin: its atomic Lua script, the numbers the script is called
//! with, and the decision its reply stands for. Each algorithm implements it beside its
//! pure step (`algorithm/<name>/redis.rs`); the Redis store only sends and parses.
//!
//! Every script takes the limiter key as `KEYS[1]`, then the arguments the mirror
//! pushes (as few as it can: each costs Redis CPU), then `now` in µs only on the
//! caller's time (absent: Redis's `TIME`). Every script sets a TTL on what it writes so
//! that abandoned keys vanish, at least a minute on the caller's time (TTLs run on
//! Redis's clock). A reply is one integer or an array of at most four.

use redis::{Cmd, Value};

use super::{Algorithm, Kind, registry};
use crate::decision::Decision;
use crate::limiter::Policy;
use crate::store::lease::{Ask, Grant};

/// The most integers a script's reply holds.
pub(crate) const MAX_REPLY: usize = 4;

/// How one algorithm decides on Redis.
pub trait Mirror: Send + Sync + 'static {
    /// The script's source.
    const LUA: &'static str;

    /// A Lua expression, true when the script's reply `r` (an integer or a table)
    /// admitted: the multi-limit script ([`crate::limits`]) composes every algorithm's
    /// script and needs to know. By default the reply's first integer is not negative.
    const ADMITTED: &'static str = "(type(r) == 'table' and r[1] or r) >= 0";

    /// The mirror of `policy`, with its numbers worked out once.
    fn new(policy: &Policy) -> Self;

    /// Pushes the script's arguments for a request of `cost` (after the key, before
    /// `now`).
    fn push_args(&self, cmd: &mut Cmd, cost: u64);

    /// The decision a reply (its integers, at most [`MAX_REPLY`]) stands for; `None` for
    /// a reply the script never sends.
    fn decode(&self, reply: &[i64], cost: u64) -> Option<Decision>;

    /// The lease script (store mode `lease`), for the algorithms that lease
    /// ([`Kind::lease_support`]); `None` for the rest.
    const LEASE_LUA: Option<&'static str> = None;

    /// Pushes the lease script's arguments for `ask` (after the key, before `now`).
    /// Only called when [`LEASE_LUA`](Self::LEASE_LUA) is some.
    fn push_lease_args(&self, _cmd: &mut Cmd, _ask: Ask) {}

    /// The grant a lease script's reply stands for; `None` for a reply it never sends
    /// (and for algorithms that do not lease).
    fn decode_lease(&self, _reply: &[i64], _ask: Ask) -> Option<Grant> {
        None
    }

    /// The settle script (cost after the decision, [`crate::settle`]), for the
    /// algorithms that settle ([`Kind::settles`]); `None` for the rest.
    const SETTLE_LUA: Option<&'static str> = None;

    /// Pushes the settle script's arguments for a request that reserved `reserved` and
    /// cost `actual` (after the key, before `now`). Only called when
    /// [`SETTLE_LUA`](Self::SETTLE_LUA) is some.
    fn push_settle_args(&self, _cmd: &mut Cmd, _reserved: u64, _actual: u64) {}

    /// What a request of cost 1 would be told after the settle script answered
    /// `reply`; `None` for a reply it never sends (and for algorithms that do not
    /// settle).
    fn decode_settle(&self, _reply: &[i64]) -> Option<Decision> {
        None
    }
}

/// `n` nanoseconds in whole microseconds, rounded up (never a faster policy), at least 1.
pub(crate) fn micros_up(n: u64) -> u64 {
    n.div_ceil(1_000).max(1)
}

/// `x` as a script argument (the policies' numbers stay far inside `i64`).
pub(crate) fn int(x: i128) -> i64 {
    x.clamp(i64::MIN.into(), i64::MAX.into()) as i64
}

/// A non-negative reply integer as `u64`.
pub(crate) fn uint(x: i64) -> Option<u64> {
    u64::try_from(x).ok()
}

/// A denial's encoded number `−n − 1` back to `n`.
pub(crate) fn denied(x: i64) -> Option<u64> {
    uint(x.checked_neg()?.checked_sub(1)?)
}

/// A script's reply as its integers (one, or an array of at most [`MAX_REPLY`]), in
/// `buf`; `None` for any other reply.
fn reply_ints<'a>(reply: &Value, buf: &'a mut [i64; MAX_REPLY]) -> Option<&'a [i64]> {
    match reply {
        Value::Int(x) => {
            buf[0] = *x;
            Some(&buf[..1])
        }
        Value::Array(items) if items.len() <= buf.len() => {
            for (slot, v) in buf.iter_mut().zip(items) {
                let Value::Int(x) = v else { return None };
                *slot = *x;
            }
            Some(&buf[..items.len()])
        }
        _ => None,
    }
}

macro_rules! any_mirror {
    ($($variant:ident: $module:ident::$ty:ident,)*) => {
        /// The mirror of a policy's algorithm, chosen at run time (generated from the
        /// registration list; static dispatch).
        pub(crate) enum AnyMirror {
            $($variant(<super::$ty as Algorithm>::Mirror),)*
        }

        impl AnyMirror {
            /// The mirror of `policy`'s algorithm.
            pub(crate) fn new(policy: &Policy) -> Self {
                match policy.kind {
                    $(Kind::$variant => AnyMirror::$variant(Mirror::new(policy)),)*
                }
            }

            /// See [`Mirror::push_args`].
            pub(crate) fn push_args(&self, cmd: &mut Cmd, cost: u64) {
                match self {
                    $(AnyMirror::$variant(m) => m.push_args(cmd, cost),)*
                }
            }

            /// The decision a script's reply stands for: its integers (one, or an array
            /// of at most [`MAX_REPLY`]), decoded by the algorithm's mirror.
            pub(crate) fn decode_value(&self, reply: &Value, cost: u64) -> Option<Decision> {
                let mut buf = [0i64; MAX_REPLY];
                self.decode(reply_ints(reply, &mut buf)?, cost)
            }

            /// The grant a lease script's reply stands for (see [`Mirror::decode_lease`]).
            pub(crate) fn decode_lease_value(&self, reply: &Value, ask: Ask) -> Option<Grant> {
                let mut buf = [0i64; MAX_REPLY];
                self.decode_lease(reply_ints(reply, &mut buf)?, ask)
            }

            /// See [`Mirror::decode`].
            pub(crate) fn decode(&self, reply: &[i64], cost: u64) -> Option<Decision> {
                match self {
                    $(AnyMirror::$variant(m) => m.decode(reply, cost),)*
                }
            }

            /// See [`Mirror::push_lease_args`].
            pub(crate) fn push_lease_args(&self, cmd: &mut Cmd, ask: Ask) {
                match self {
                    $(AnyMirror::$variant(m) => m.push_lease_args(cmd, ask),)*
                }
            }

            /// See [`Mirror::push_settle_args`].
            pub(crate) fn push_settle_args(&self, cmd: &mut Cmd, reserved: u64, actual: u64) {
                match self {
                    $(AnyMirror::$variant(m) => m.push_settle_args(cmd, reserved, actual),)*
                }
            }

            /// The balance a settle script's reply stands for (see
            /// [`Mirror::decode_settle`]).
            pub(crate) fn decode_settle_value(&self, reply: &Value) -> Option<Decision> {
                let mut buf = [0i64; MAX_REPLY];
                let reply = reply_ints(reply, &mut buf)?;
                match self {
                    $(AnyMirror::$variant(m) => m.decode_settle(reply),)*
                }
            }

            /// See [`Mirror::decode_lease`].
            pub(crate) fn decode_lease(&self, reply: &[i64], ask: Ask) -> Option<Grant> {
                match self {
                    $(AnyMirror::$variant(m) => m.decode_lease(reply, ask),)*
                }
            }
        }
    };
}
registry!(any_mirror);
