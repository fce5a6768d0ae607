//! The sliding window counter on Redis: `sliding_window.lua`, its arguments and its
//! reply (one integer when it admits, three when it denies).

use std::time::Duration;

use redis::Cmd;

use crate::algorithm::mirror::{self, denied, micros_up, uint};
use crate::decision::Decision;
use crate::limiter::Policy;

/// The sliding window counter's script, with the window in whole µs (rounded up: never
/// a faster policy).
pub struct Mirror {
    window: u64,
    limit: u64,
}

impl mirror::Mirror for Mirror {
    const LUA: &'static str = include_str!("sliding_window.lua");

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
                // Admitted: reset × (limit + 1) + remaining.
                let (x, base) = (uint(x)?, cap + 1);
                Decision::allow(cap, x % base, us(x / base))
            }
            [x, reset, retry] => {
                let (reset, retry) = (us(uint(reset)?), us(uint(retry)?));
                if x >= 0 {
                    Decision::allow(cap, x as u64, reset)
                } else {
                    Decision::deny(cap, denied(x)?, reset, retry)
                }
            }
            _ => return None,
        })
    }
}
