//! The Lua scripts, one per algorithm (beside it: `algorithm/<name>/<name>.lua`), and
//! their SHA1 digests for `EVALSHA`, as a table generated from the algorithms'
//! registration list.
//!
//! What each script takes and answers is its algorithm's mirror's business (see
//! `algorithm/mirror.rs`); the token bucket and GCRA share one script, as on Redis they
//! are one algorithm (`algorithm/token_bucket/bucket.lua`).

use std::sync::OnceLock;

use crate::algorithm::{Algorithm, Kind, mirror::Mirror, registry};

macro_rules! sources {
    ($($variant:ident: $module:ident::$ty:ident,)*) => {
        /// Every algorithm's script, in the order of [`Kind::ALL`] (as the store loads
        /// them; two algorithms sharing a script load it twice, harmlessly).
        pub(super) const SOURCES: [&str; Kind::ALL.len()] =
            [$(<<crate::algorithm::$ty as Algorithm>::Mirror as Mirror>::LUA,)*];

        /// Every algorithm's lease script (store mode `lease`), where it has one.
        pub(super) const LEASE_SOURCES: [Option<&str>; Kind::ALL.len()] =
            [$(<<crate::algorithm::$ty as Algorithm>::Mirror as Mirror>::LEASE_LUA,)*];

        /// Every algorithm's settle script (cost after the decision), where it has one.
        pub(super) const SETTLE_SOURCES: [Option<&str>; Kind::ALL.len()] =
            [$(<<crate::algorithm::$ty as Algorithm>::Mirror as Mirror>::SETTLE_LUA,)*];
    };
}
registry!(sources);

fn index(kind: Kind) -> usize {
    // `Kind::ALL` lists the kinds in declaration order.
    kind as usize
}

/// The Lua source of `kind`'s script.
pub(crate) fn lua(kind: Kind) -> &'static str {
    SOURCES[index(kind)]
}

/// The SHA1 (hex) of `kind`'s script, as `EVALSHA` names it.
pub(crate) fn sha(kind: Kind) -> &'static str {
    static SHAS: OnceLock<[String; Kind::ALL.len()]> = OnceLock::new();
    &SHAS.get_or_init(|| SOURCES.map(|s| redis::Script::new(s).get_hash().to_owned()))[index(kind)]
}

/// The Lua source of `kind`'s lease script, if it leases.
pub(crate) fn lease_lua(kind: Kind) -> Option<&'static str> {
    LEASE_SOURCES[index(kind)]
}

/// The SHA1 (hex) of `kind`'s lease script (empty when it does not lease).
pub(crate) fn lease_sha(kind: Kind) -> &'static str {
    static SHAS: OnceLock<[String; Kind::ALL.len()]> = OnceLock::new();
    &SHAS.get_or_init(|| {
        LEASE_SOURCES
            .map(|s| s.map_or_else(String::new, |s| redis::Script::new(s).get_hash().to_owned()))
    })[index(kind)]
}

/// The Lua source of `kind`'s settle script, if it settles.
pub(crate) fn settle_lua(kind: Kind) -> Option<&'static str> {
    SETTLE_SOURCES[index(kind)]
}

/// The SHA1 (hex) of `kind`'s settle script (empty when it does not settle).
pub(crate) fn settle_sha(kind: Kind) -> &'static str {
    static SHAS: OnceLock<[String; Kind::ALL.len()]> = OnceLock::new();
    &SHAS.get_or_init(|| {
        SETTLE_SOURCES
            .map(|s| s.map_or_else(String::new, |s| redis::Script::new(s).get_hash().to_owned()))
    })[index(kind)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_script() {
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(index(kind), i);
            let folder = kind.name().replace('-', "_");
            assert!(
                lua(kind).contains(&format!("algorithm/{folder}/")),
                "{kind}"
            );
            assert_eq!(sha(kind).len(), 40);
            let leases = kind.lease_support() != crate::store::mode::LeaseSupport::None;
            assert_eq!(lease_lua(kind).is_some(), leases, "{kind}");
            assert_eq!(lease_sha(kind).len(), if leases { 40 } else { 0 });
            assert_eq!(settle_lua(kind).is_some(), kind.settles(), "{kind}");
            assert_eq!(settle_sha(kind).len(), if kind.settles() { 40 } else { 0 });
        }
    }
}
