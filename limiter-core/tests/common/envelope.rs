//! The promise each algorithm makes, checked on a record of admissions: the library's
//! own definition ([`Policy::envelope`]), so every store's tests (memory and Redis) hold
//! the algorithms to the one definition the lab uses.

#![allow(dead_code)]

use limiter_core::{Nanos, Policy};

/// Checks that `admitted` — `(instant, cost)` pairs in time order — keeps the
/// envelope of `policy`, and says where it does not.
pub fn check(policy: &Policy, admitted: &[(Nanos, u64)]) -> Result<(), String> {
    if admitted.windows(2).any(|w| w[0].0 > w[1].0) {
        return Err("admissions are not in time order".into());
    }
    policy.envelope().check(admitted).map_err(|e| e.to_string())
}

/// The most a policy may admit, from a full start, in a run lasting `length`
/// nanoseconds that starts at instant `start` — the number concurrency tests compare
/// with.
pub fn most_in(policy: &Policy, start: Nanos, length: Nanos) -> u64 {
    policy.envelope().most_in(start, length)
}
