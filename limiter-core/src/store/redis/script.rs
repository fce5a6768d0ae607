//! The five Lua scripts, one per algorithm, and their SHA1 digests for `EVALSHA`.
//!
//! Every script takes the limiter key as `KEYS[1]`, then `now` in µs (or `""` for
//! Redis's `TIME`), the cost and the policy's numbers. Each returns as little as the
//! decision needs (one integer for the token bucket, GCRA, fixed window and an
//! admitting sliding window: every reply element costs Redis CPU); the limiter derives
//! the rest from the policy.

use std::sync::OnceLock;

use crate::algorithm::Kind;

/// Each algorithm's script source, in [`Kind::ALL`] order.
pub(super) const ALL: [&str; 5] = [
    include_str!("../lua/fixed_window.lua"),
    include_str!("../lua/sliding_log.lua"),
    include_str!("../lua/sliding_window.lua"),
    include_str!("../lua/token_bucket.lua"),
    include_str!("../lua/gcra.lua"),
];

fn index(kind: Kind) -> usize {
    match kind {
        Kind::FixedWindow => 0,
        Kind::SlidingLog => 1,
        Kind::SlidingWindow => 2,
        Kind::TokenBucket => 3,
        Kind::Gcra => 4,
    }
}

/// The Lua source of `kind`'s script.
pub fn lua(kind: Kind) -> &'static str {
    ALL[index(kind)]
}

/// The SHA1 (hex) of `kind`'s script, as `EVALSHA` names it.
pub fn sha(kind: Kind) -> &'static str {
    static SHAS: OnceLock<[String; 5]> = OnceLock::new();
    &SHAS.get_or_init(|| ALL.map(|s| redis::Script::new(s).get_hash().to_owned()))[index(kind)]
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
