//! The five Lua scripts, one per algorithm, and their SHA1 digests for `EVALSHA`.
//!
//! Every script takes the limiter key as `KEYS[1]`, then as few numbers as it needs
//! (the cost and the policy's numbers; the buckets' scripts get the two folded into two
//! numbers), then `now` in µs only on the caller's time (absent: Redis's `TIME`), as
//! each argument costs Redis CPU. Each returns as little as the decision needs (one
//! integer for the token bucket, GCRA, fixed window and an admitting sliding window:
//! every reply element costs Redis CPU too); the limiter derives the rest from the
//! policy.

use std::sync::OnceLock;

use crate::algorithm::Kind;

/// The scripts' sources: the fixed window, sliding log and sliding window have one each;
/// the token bucket and GCRA share one, as on Redis they are the same algorithm (see
/// `bucket.lua`) with their policies folded into its two numbers differently.
const FIXED_WINDOW: &str = include_str!("../lua/fixed_window.lua");
const SLIDING_LOG: &str = include_str!("../lua/sliding_log.lua");
const SLIDING_WINDOW: &str = include_str!("../lua/sliding_window.lua");
const BUCKET: &str = include_str!("../lua/bucket.lua");

/// Every distinct script, as the store loads them.
pub(super) const SOURCES: [&str; 4] = [FIXED_WINDOW, SLIDING_LOG, SLIDING_WINDOW, BUCKET];

fn index(kind: Kind) -> usize {
    match kind {
        Kind::FixedWindow => 0,
        Kind::SlidingLog => 1,
        Kind::SlidingWindow => 2,
        Kind::TokenBucket | Kind::Gcra => 3,
    }
}

/// The Lua source of `kind`'s script.
pub fn lua(kind: Kind) -> &'static str {
    SOURCES[index(kind)]
}

/// The SHA1 (hex) of `kind`'s script, as `EVALSHA` names it.
pub fn sha(kind: Kind) -> &'static str {
    static SHAS: OnceLock<[String; 4]> = OnceLock::new();
    &SHAS.get_or_init(|| SOURCES.map(|s| redis::Script::new(s).get_hash().to_owned()))[index(kind)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_script() {
        for kind in Kind::ALL {
            let file = kind.name().replace('-', "_");
            assert!(
                lua(kind).contains(&format!("algorithm/{file}.rs")),
                "{kind}"
            );
            assert_eq!(sha(kind).len(), 40);
        }
    }
}
