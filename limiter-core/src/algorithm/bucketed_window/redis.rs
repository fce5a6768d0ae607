//! The bucketed window on Redis: `bucketed_window.lua`, its arguments and its reply.

use std::time::Duration;

use redis::Cmd;

use super::grid;
use crate::algorithm::mirror::{self, denied, uint};
use crate::decision::Decision;
use crate::limiter::Policy;

/// The bucketed window's script: the sub-window in µs, how many make a window, the
/// limit.
pub struct Mirror {
    sub: u64,
    k: u64,
    limit: u64,
}

impl mirror::Mirror for Mirror {
    const LUA: &'static str = include_str!("bucketed_window.lua");

    fn new(policy: &Policy) -> Self {
        let (sub, k) = grid(policy);
        Self {
            sub: sub / 1_000,
            k,
            limit: policy.quota.limit(),
        }
    }

    fn push_args(&self, cmd: &mut Cmd, cost: u64) {
        cmd.arg(cost).arg(self.sub).arg(self.k).arg(self.limit);
    }

    fn decode(&self, reply: &[i64], _cost: u64) -> Option<Decision> {
        let us = Duration::from_micros;
        let &[x, reset, retry] = reply else {
            return None;
        };
        let (reset, retry) = (us(uint(reset)?), us(uint(retry)?));
        Some(if x >= 0 {
            Decision::allow(self.limit, x as u64, reset)
        } else {
            Decision::deny(self.limit, denied(x)?, reset, retry)
        })
    }
}
