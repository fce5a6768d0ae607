//! How the access log names people (`[log] identity`): the quota key as is, or a keyed
//! pseudonym of it.
//!
//! The guarantee of `hash`: the same identity always gets the same pseudonym under
//! one key (across restarts and gateways that share the key), two identities
//! practically never share one (64 bits of HMAC-SHA-256), and without the key nobody
//! can tell which identity a pseudonym stands for — not even by hashing every IPv4
//! address, which an unkeyed hash would allow. A replay groups requests by pseudonym
//! exactly as it would by identity, so a hashed log answers the same questions.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The shortest secret accepted for `hash`, in bytes.
pub const MIN_KEY_BYTES: usize = 16;

/// What a pseudonym starts with: `hash:` and 16 hex digits.
pub const PREFIX: &str = "hash:";

/// A pseudonym's length: the prefix and 16 hex digits.
const LEN: usize = PREFIX.len() + 16;

/// How identities and client addresses are written.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum LogIdentity {
    /// As they are: `key:acme`, `h:alice`, `ip:203.0.113.9`.
    #[default]
    Plain,
    /// As keyed pseudonyms: `hash:3f9c0e2a7b1d4c55`.
    Hash(HashKey),
}

impl std::fmt::Debug for LogIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl LogIdentity {
    /// `plain` or `hash`.
    pub fn name(&self) -> &'static str {
        match self {
            LogIdentity::Plain => "plain",
            LogIdentity::Hash(_) => "hash",
        }
    }
}

/// The secret of `identity = "hash"`, ready to sign with (never printed).
#[derive(Clone)]
pub struct HashKey(Hmac<Sha256>);

impl PartialEq for HashKey {
    /// Keys are compared by what they make of one fixed input (a reload that keeps
    /// the key keeps the pseudonyms).
    fn eq(&self, other: &Self) -> bool {
        let probe = "ratelab access log key probe";
        self.pseudonym(probe) == other.pseudonym(probe)
    }
}

impl Eq for HashKey {}

impl HashKey {
    /// A key from the secret's bytes; `None` when shorter than [`MIN_KEY_BYTES`].
    pub fn new(secret: &[u8]) -> Option<Self> {
        if secret.len() < MIN_KEY_BYTES {
            return None;
        }
        // HMAC takes a key of any length: this cannot fail.
        Hmac::<Sha256>::new_from_slice(secret).ok().map(HashKey)
    }

    /// The pseudonym of `name`: `hash:` and the first 64 bits of HMAC-SHA-256(key,
    /// name) in hex.
    pub fn pseudonym(&self, name: &str) -> Pseudonym {
        let mut mac = self.0.clone();
        mac.update(name.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = [0u8; LEN];
        out[..PREFIX.len()].copy_from_slice(PREFIX.as_bytes());
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, b) in digest.iter().take(8).enumerate() {
            out[PREFIX.len() + 2 * i] = HEX[usize::from(b >> 4)];
            out[PREFIX.len() + 2 * i + 1] = HEX[usize::from(b & 15)];
        }
        Pseudonym(out)
    }
}

/// A pseudonym, on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Pseudonym([u8; LEN]);

impl Pseudonym {
    /// Its text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written into it.
        std::str::from_utf8(&self.0).unwrap_or(PREFIX)
    }
}

impl std::fmt::Debug for Pseudonym {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_keyed_and_distinct() {
        let key = HashKey::new(b"0123456789abcdef").unwrap();
        let a = key.pseudonym("h:alice");
        assert_eq!(a, key.pseudonym("h:alice"), "stable");
        assert_ne!(a, key.pseudonym("h:bob"));
        let text = a.as_str();
        assert!(text.starts_with(PREFIX) && text.len() == LEN, "{text}");
        assert!(text[PREFIX.len()..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(!text.contains("alice"));
        // HMAC-SHA-256 as Python's `hmac` computes it:
        // hmac.new(b"0123456789abcdef", b"h:alice", hashlib.sha256).hexdigest()[:16]
        assert_eq!(text, "hash:9347b4af63400e3c");
        let other = HashKey::new(b"another key, 16+ bytes").unwrap();
        assert_ne!(other.pseudonym("h:alice"), a, "keyed");
        assert!(key != other && key == HashKey::new(b"0123456789abcdef").unwrap());
        assert!(HashKey::new(b"short").is_none());
    }
}
