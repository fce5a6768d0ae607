//! The fixed window on Redis: `fixed_window.lua`, its arguments and its reply.

use std::time::Duration;

use redis::Cmd;

use crate::algorithm::mirror::{self, denied, micros_up, uint};
use crate::decision::Decision;
use crate::limiter::Policy;

/// The fixed window's script, with the window in whole µs (rounded up: never a faster
/// policy).
pub struct Mirror {
    window: u64,
    limit: u64,
}

impl mirror::Mirror for Mirror {
    const LUA: &'static str = include_str!("fixed_window.lua");

    fn new(policy: &Policy) -> Self {
        Self {
            window: micros_up(policy.quota.period_nanos()),
            limit: policy.quota.limit(),
        }
    }

    fn push_args(&self, cmd: &mut Cmd, cost: u64) {
        cmd.arg(cost).arg(self.window).arg(self.limit);
    }

    fn decode(&self, reply: &[i64], _cost: u64) -> Option<Decision> {
        let us = Duration::from_micros;
        let cap = self.limit;
        Some(match *reply {
            [x] => {
                // reset × (limit + 1) + remaining, negated − 1 for a denial.
                let (allowed, y) = if x >= 0 { (true, x) } else { (false, -(x + 1)) };
                let (y, base) = (y as u64, cap + 1);
                let (reset, remaining) = (us(y / base), y % base);
                if allowed {
                    Decision::allow(cap, remaining, reset)
                } else {
                    Decision::deny(cap, remaining, reset, reset)
                }
            }
            [x, reset] => {
                let reset = us(uint(reset)?);
                if x >= 0 {
                    Decision::allow(cap, x as u64, reset)
                } else {
                    Decision::deny(cap, denied(x)?, reset, reset)
                }
            }
            _ => return None,
        })
    }
}
