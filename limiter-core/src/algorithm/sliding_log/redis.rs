//! The sliding log on Redis: `sliding_log.lua` (a sorted set of admissions), its
//! arguments and its four-integer reply.

use std::time::Duration;

use redis::Cmd;

use crate::algorithm::mirror::{self, micros_up, uint};
use crate::decision::Decision;
use crate::limiter::Policy;

/// The sliding log's script, with the window in whole µs (rounded up: never a faster
/// policy).
pub struct Mirror {
    window: u64,
    limit: u64,
}

impl mirror::Mirror for Mirror {
    const LUA: &'static str = include_str!("sliding_log.lua");
    // The reply is {allowed (1 or 0), remaining, reset, retry}.
    const ADMITTED: &'static str = "r[1] == 1";

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
        let &[allowed, remaining, reset, retry] = reply else {
            return None;
        };
        let (remaining, reset, retry) = (uint(remaining)?, us(uint(reset)?), us(uint(retry)?));
        Some(match allowed {
            1 => Decision::allow(self.limit, remaining, reset),
            _ => Decision::deny(self.limit, remaining, reset, retry),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::Kind;
    use crate::quota::Quota;

    #[test]
    fn window_in_whole_microseconds_rounded_up() {
        let q = Quota::new(2, Duration::from_nanos(1_500)).unwrap();
        let m = <Mirror as mirror::Mirror>::new(&Policy::new(Kind::SlidingLog, q));
        assert_eq!((m.window, m.limit), (2, 2));
    }
}
