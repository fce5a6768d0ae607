//! Cost after the decision: reserve, then settle or refund.
//!
//! Some requests cost what they cost only once they are served — the tokens an LLM
//! backend used, the rows a query returned. The two-step API admits first and pays
//! later: [`RateLimiter::reserve`](crate::RateLimiter::reserve) decides a request of an
//! estimated cost (usually 1: "admission needs a positive balance") and spends it;
//! [`settle`](crate::RateLimiter::settle) then moves the key's balance by
//! `actual − reserved`, and [`refund`](crate::RateLimiter::refund) gives the
//! reservation back (a request that failed before it cost anything).
//!
//! The guarantee: a settle is one atomic step on the key's state, like a check, in
//! memory and on Redis (one script call). It debits exactly `actual − reserved` from
//! the balance as it stands when the settle runs, with no upper bound: the balance may
//! go negative, and every request of the key is then refused until the refill brings it
//! back (the refusal's `retry_after` says exactly when). A refund or a settle below the
//! reservation credits exactly the difference, never past a full allowance. Reserving
//! `r` then settling `r → a` at one instant leaves the state a check of cost `a` would
//! have left (were `a` within the burst).
//!
//! Only the algorithms whose state is a balance can owe: the token bucket and GCRA
//! ([`Kind::settles`](crate::Kind::settles)). A window counter cannot carry a debt into
//! the next window without becoming another algorithm, so reserving on the others is an
//! error ([`Error::is_settle_unsupported`](crate::Error::is_settle_unsupported)), which a
//! configuration should refuse when it is read.
//!
//! ```
//! use limiter_core::{Kind, ManualClock, Policy, Quota, RateLimiter};
//! use std::time::Duration;
//!
//! # fn main() -> limiter_core::Result<()> {
//! // 100 tokens, 10 a second: an LLM route whose cost is the tokens used.
//! let policy = Policy::new(Kind::TokenBucket, Quota::per_second(10)?.with_burst(100)?);
//! let clock = ManualClock::new();
//! let limiter = RateLimiter::memory(policy, clock.clone(), 10_000);
//! let reservation = limiter.reserve_now("user:1", 1).expect("in memory")?;
//! assert!(reservation.verdict.decision.allowed);
//! // The backend answered: the request used 150 tokens. 1 reserved + 149 more.
//! let balance = limiter.settle_now("user:1", &reservation, 150).expect("in memory")?;
//! let balance = balance.expect("admitted by the store: settled");
//! assert!(!balance.allowed); // 50 tokens in debt
//! assert_eq!(balance.retry_after, Duration::from_millis(5_100)); // back to +1 token
//! assert!(!limiter.reserve_now("user:1", 1).expect("in memory")?.verdict.decision.allowed);
//! clock.advance(Duration::from_millis(5_100));
//! assert!(limiter.reserve_now("user:1", 1).expect("in memory")?.verdict.decision.allowed);
//! # Ok(()) }
//! ```

use crate::decision::{DecidedBy, Verdict};

/// A request decided with a reserved cost, to settle once its true cost is known (see
/// the [module](self)). Plain data: the caller keeps it beside the key it reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// The decision on the reserved cost, and who made it.
    pub verdict: Verdict,
    /// The units the decision spent when it admitted.
    pub reserved: u64,
}

impl Reservation {
    /// The reservation `verdict` made for `reserved` units.
    pub fn new(verdict: Verdict, reserved: u64) -> Self {
        Self { verdict, reserved }
    }

    /// True when there is something to settle: the request was admitted by a state
    /// that spent (the store, or the `local` failure policy's stand-in). A refusal
    /// spent nothing, and `fail-open` admitted without any state to debit.
    pub fn is_settleable(&self) -> bool {
        self.verdict.decision.allowed
            && matches!(self.verdict.decided_by, DecidedBy::Store | DecidedBy::Local)
    }
}
