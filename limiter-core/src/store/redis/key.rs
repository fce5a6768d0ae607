//! Redis key names: `<prefix>:<algorithm>:{<identity>}`, escaped so that no identity
//! can reach another's key or break the hash tag.
//!
//! The identity (user + route, any bytes a client sent) and the prefix are
//! percent-encoded with the `percent-encoding` crate: `%`, `{`, `}`, every control
//! byte (newlines) and every non-ASCII byte become `%XX`, and `:` too in the prefix.
//! Percent-encoding is injective, so distinct identities give distinct keys, and an
//! encoded text holds no brace, so the one `{…}` is always the identity: Redis Cluster
//! hashes exactly it, and all of one identity's data lives in one slot. Long identities
//! stay exact (a 10 KB identity makes a key of at most 30 KB).

use std::fmt::Write as _;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::algorithm::Kind;

/// What is escaped in an identity: controls (and, always, non-ASCII bytes), `%` so
/// that escaping stays injective, and the braces of the hash tag.
const IDENTITY: &AsciiSet = &CONTROLS.add(b'%').add(b'{').add(b'}');

/// What is escaped in a prefix: as in an identity, and `:`, so that no prefix poses as
/// another prefix plus an algorithm.
const PREFIX: &AsciiSet = &IDENTITY.add(b':');

fn escape(out: &mut String, text: &str, set: &'static AsciiSet) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{}", utf8_percent_encode(text, set));
}

/// The Redis Cluster hash slot of `key`: CRC16 (XMODEM) of its hash tag (the bytes
/// between the first `{` and the next `}`, when not empty) or of the whole key, modulo
/// 16384 — what the cluster computes, so the store can tell which calls share a master.
pub(super) fn slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    let mut crc: u16 = 0;
    for &byte in tagged.unwrap_or(key) {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16_384
}

/// The Redis key of `identity` for an `kind` limiter under `prefix`.
///
/// ```
/// use limiter_core::Kind;
/// use limiter_core::store::redis::redis_key;
///
/// assert_eq!(redis_key("ratelab", Kind::Gcra, "u1:/api/{id}"), "ratelab:gcra:{u1:/api/%7Bid%7D}");
/// ```
pub fn redis_key(prefix: &str, kind: Kind, identity: &str) -> String {
    with_head(&head(prefix, kind), identity)
}

/// The part of every key of a `kind` limiter under `prefix` before the identity,
/// `<prefix>:<algorithm>:{` (a limiter works it out once).
pub(super) fn head(prefix: &str, kind: Kind) -> String {
    named_head(prefix, kind.name())
}

/// `<prefix>:<name>:{`: the head of every key of one kind of state.
fn named_head(prefix: &str, name: &str) -> String {
    let mut head = String::with_capacity(prefix.len() + 20);
    escape(&mut head, prefix, PREFIX);
    head.push(':');
    head.push_str(name);
    head.push_str(":{");
    head
}

/// The lease set of in-flight limit `id` for `tag`: `<prefix>:in-flight:{<tag>}:<id>`,
/// in the same slot as every other key of the request (see [`tagged_key`]).
pub fn in_flight_key(prefix: &str, tag: &str, id: &str) -> String {
    let mut key = with_head(&named_head(prefix, "in-flight"), tag);
    key.push(':');
    escape(&mut key, id, IDENTITY);
    key
}

/// The key of `identity` after `head` (from [`head`]).
pub(super) fn with_head(head: &str, identity: &str) -> String {
    let mut key = String::with_capacity(head.len() + identity.len() + 1);
    key.push_str(head);
    escape(&mut key, identity, IDENTITY);
    key.push('}');
    key
}

/// The Redis key of one limit of a request (see [`crate::limits`]):
/// `<prefix>:<algorithm>:{<tag>}:<id>`. Every limit of one request shares the hash tag
/// `{<tag>}` (the identity), so on a cluster they live in one slot and one script call
/// decides them all; `id` (the limit's, e.g. `/api/search burst`) is escaped like the
/// tag, so it holds no brace and the key differs from every single-limit key (which
/// ends with the tag's `}`).
///
/// ```
/// use limiter_core::Kind;
/// use limiter_core::store::redis::tagged_key;
///
/// assert_eq!(tagged_key("ratelab", Kind::Gcra, "u1", "/api/{id} burst"), "ratelab:gcra:{u1}:/api/%7Bid%7D burst");
/// ```
pub fn tagged_key(prefix: &str, kind: Kind, tag: &str, id: &str) -> String {
    let mut key = with_head(&head(prefix, kind), tag);
    key.push(':');
    escape(&mut key, id, IDENTITY);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_the_clusters_own() {
        // The check value of CRC16/XMODEM, and Redis Cluster's own examples.
        assert_eq!(slot(b"123456789"), 0x31C3);
        for key in [
            "foo",
            "{user1000}.following",
            "foo{}{bar}",
            "foo{{bar}}zap",
            "x{a}{b}",
        ] {
            let expected = format!("{:?}", redis::cluster_routing::Slot::for_key(key));
            assert_eq!(format!("Slot({})", slot(key.as_bytes())), expected, "{key}");
        }
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
    }
    use std::collections::HashSet;

    /// The hash tag Redis Cluster hashes: between the first `{` and the next `}`.
    fn tag(key: &str) -> &str {
        let open = key.find('{').unwrap();
        let close = open + 1 + key[open + 1..].find('}').unwrap();
        &key[open + 1..close]
    }

    #[test]
    fn hostile_identities_neither_collide_nor_break_the_tag() {
        let long = "x{".repeat(5_000);
        let ids = [
            "",
            "a",
            "a}",
            "a%7D",
            "{a}",
            "a}{b",
            "}",
            "{",
            "%",
            "%25",
            "a\nb",
            "a\r\nb",
            "a%0Ab",
            "user:1",
            "user%3A1",
            "é{ü}",
            long.as_str(),
        ];
        let mut keys = HashSet::new();
        for id in ids {
            let key = redis_key("ratelab", Kind::TokenBucket, id);
            assert!(keys.insert(key.clone()), "{id:?} collides");
            assert_eq!(key.matches('{').count(), 1, "{key}");
            assert_eq!(key.matches('}').count(), 1, "{key}");
            assert!(key.ends_with('}') && !key.contains('\n') && !key.contains('\r'));
            assert!(key.starts_with("ratelab:token-bucket:{"));
            assert!(tag(&key).len() <= 3 * id.len());
        }
        assert!(redis_key("ratelab", Kind::TokenBucket, &long).len() < 31_000);
        // Non-ASCII and controls are encoded byte by byte, readable ASCII left alone.
        assert_eq!(
            redis_key("ratelab", Kind::Gcra, "é a\n~"),
            "ratelab:gcra:{%C3%A9 a%0A~}"
        );
    }

    #[test]
    fn tagged_keys_share_the_tag_and_never_meet_single_keys() {
        let a = tagged_key("ratelab", Kind::Gcra, "u{1}", "/a burst");
        let b = tagged_key("ratelab", Kind::FixedWindow, "u{1}", "/a} hourly");
        assert_eq!(tag(&a), tag(&b));
        assert_eq!(b.matches('{').count(), 1);
        assert_eq!(b.matches('}').count(), 1);
        assert_ne!(
            tagged_key("ratelab", Kind::Gcra, "u", ""),
            redis_key("ratelab", Kind::Gcra, "u")
        );
        assert_ne!(
            tagged_key("ratelab", Kind::Gcra, "u", "x:y"),
            tagged_key("ratelab", Kind::Gcra, "u:x", "y")
        );
    }

    #[test]
    fn prefixes_and_algorithms_are_kept_apart() {
        // A prefix cannot open a hash tag or pose as another prefix plus algorithm.
        let a = redis_key("p{x}", Kind::Gcra, "id");
        assert_eq!(a, "p%7Bx%7D:gcra:{id}");
        assert_ne!(
            redis_key("a:gcra", Kind::Gcra, "id"),
            redis_key("a", Kind::Gcra, "gcra:{id}")
        );
        assert_ne!(
            redis_key("a", Kind::Gcra, "id"),
            redis_key("a", Kind::TokenBucket, "id")
        );
    }
}
