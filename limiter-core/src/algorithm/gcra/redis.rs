//! GCRA on Redis: the token bucket's script (`token_bucket/bucket.lua`), with GCRA's
//! emission interval and tolerance folded into its two numbers.

use std::time::Duration;

use redis::Cmd;

use crate::algorithm::mirror::{self, denied, int, micros_up};
use crate::algorithm::token_bucket::redis::BUCKET_LUA;
use crate::decision::Decision;
use crate::limiter::Policy;

/// GCRA's numbers in whole µs: emission interval `t` (rounded up: never a faster
/// policy) and tolerance `tau = burst × t`.
pub struct Mirror {
    t: u64,
    tau: u64,
    burst: u64,
}

impl mirror::Mirror for Mirror {
    const LUA: &'static str = BUCKET_LUA;

    fn new(policy: &Policy) -> Self {
        let q = policy.quota;
        let t = micros_up(q.emission_interval());
        Self {
            t,
            tau: t.saturating_mul(q.burst()),
            burst: q.burst(),
        }
    }

    fn push_args(&self, cmd: &mut Cmd, cost: u64) {
        // Step cost × T, bound tau − step (see `bucket.lua`).
        let step = i128::from(cost) * i128::from(self.t);
        cmd.arg(int(step)).arg(int(i128::from(self.tau) - step));
    }

    fn decode(&self, reply: &[i64], cost: u64) -> Option<Decision> {
        let us = Duration::from_micros;
        let &[x] = reply else { return None };
        let (t, tau) = (self.t, self.tau);
        Some(if x >= 0 {
            let ttl = x as u64;
            Decision::allow(self.burst, tau.saturating_sub(ttl) / t, us(ttl))
        } else {
            let reset = denied(x)?;
            let bound = i128::from(tau) - i128::from(cost) * i128::from(t);
            let retry = u64::try_from(i128::from(reset) - bound).ok()?;
            Decision::deny(self.burst, tau.saturating_sub(reset) / t, us(reset), us(retry))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::Kind;
    use crate::quota::Quota;

    #[test]
    fn whole_microseconds_never_faster() {
        let m = |q| <Mirror as mirror::Mirror>::new(&Policy::new(Kind::Gcra, q));
        let g = m(Quota::per_minute(5).unwrap());
        assert_eq!((g.t, g.tau), (12_000_000, 60_000_000));
        let g = m(Quota::per_second(3).unwrap());
        assert_eq!((g.t, g.tau), (333_334, 1_000_002));
    }
}
