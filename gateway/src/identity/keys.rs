//! API keys: a file of SHA-256 digests, each naming the identity (and tier) whose quota
//! its key spends.
//!
//! The guarantee: keys are never stored, logged or compared in plain text. A presented
//! key is hashed once and looked up by digest (a hash-table lookup of a digest leaks
//! nothing useful about other keys' values, so no constant-time comparison is needed).
//! A file with a malformed digest, a duplicate digest or an empty identity is refused
//! as a whole, with file, line and key — at start-up, by `--check`, and on reload (the
//! table in use then stays).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use gateway_contract::config::{KeyEntry, Spanned, parse_keys};
use sha2::{Digest, Sha256};

use crate::config::ConfigError;

/// What a valid key stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIdentity {
    /// The namespaced quota key: `key:<identity>`.
    pub key: Arc<str>,
    /// The tier whose limits apply, if any.
    pub tier: Option<Arc<str>>,
}

/// Every key of a keys file, by SHA-256 digest.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeyTable {
    by_digest: HashMap<[u8; 32], KeyIdentity>,
}

impl KeyTable {
    /// Reads and checks the keys file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::unreadable(path, &format!("cannot read: {e}")))?;
        Self::parse(path, &text)
    }

    /// Checks `text`, a keys file, reporting errors against `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let raw = parse_keys(text).map_err(|e| ConfigError::from_file_error(file, text, e))?;
        let err = |at: std::ops::Range<usize>, key: String, message: &str| {
            ConfigError::at(file, text, at, &key, message)
        };
        let mut by_digest = HashMap::with_capacity(raw.key.len());
        for (i, entry) in raw.key.iter().enumerate() {
            let KeyEntry {
                sha256,
                identity,
                tier,
            } = entry.get_ref();
            let at = |name: &str| format!("key[{}].{name}", i + 1);
            let digest = parse_digest(sha256.get_ref()).ok_or_else(|| {
                err(
                    sha256.span(),
                    at("sha256"),
                    "sha256 must be 64 hex digits: the SHA-256 of the key, never the key",
                )
            })?;
            let name = non_empty(identity).ok_or_else(|| {
                err(
                    identity.span(),
                    at("identity"),
                    "identity must not be empty",
                )
            })?;
            let tier = match tier {
                Some(t) => {
                    Some(Arc::from(non_empty(t).ok_or_else(|| {
                        err(t.span(), at("tier"), "tier must not be empty")
                    })?))
                }
                None => None,
            };
            let value = KeyIdentity {
                key: Arc::from(format!("key:{name}")),
                tier,
            };
            if by_digest.insert(digest, value).is_some() {
                return Err(err(
                    sha256.span(),
                    at("sha256"),
                    "this digest is listed twice",
                ));
            }
        }
        Ok(Self { by_digest })
    }

    /// What `presented` (the key as the client sent it) stands for, if it is listed.
    pub fn lookup(&self, presented: &[u8]) -> Option<&KeyIdentity> {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        self.by_digest.get(&digest)
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// True when it holds no key.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

fn non_empty(s: &Spanned<String>) -> Option<&str> {
    Some(s.get_ref().trim()).filter(|s| !s.is_empty())
}

/// 64 hex digits (either case) as 32 bytes.
fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let digit = |c: u8| char::from(c).to_digit(16);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // SHA-256("test") and SHA-256("secret").
    const TEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const SECRET: &str = "2BB80D537B1DA3E38BD30361AA855686BDE0EACD7162FEF6A25FE97BF527A25B";

    fn parse(text: &str) -> Result<KeyTable, ConfigError> {
        KeyTable::parse(Path::new("keys.toml"), text)
    }

    #[test]
    fn keys_are_looked_up_by_digest() {
        let t = parse(&format!(
            "[[key]]\nsha256 = \"{TEST}\"\nidentity = \"acme\"\ntier = \"pro\"\n\
             [[key]]\nsha256 = \"{SECRET}\"\nidentity = \"beta\"\n"
        ))
        .unwrap();
        assert_eq!(t.len(), 2);
        let acme = t.lookup(b"test").unwrap();
        assert_eq!(&*acme.key, "key:acme");
        assert_eq!(acme.tier.as_deref(), Some("pro"));
        assert_eq!(&*t.lookup(b"secret").unwrap().key, "key:beta");
        assert!(t.lookup(b"Test").is_none());
        // The digest itself is not a key.
        assert!(t.lookup(TEST.as_bytes()).is_none());
    }

    #[test]
    fn bad_files_name_line_and_key() {
        let e = parse("[[key]]\nsha256 = \"test\"\nidentity = \"a\"\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (2, "key[1].sha256"));
        assert!(e.message.contains("64 hex digits"), "{e}");
        let e = parse(&format!(
            "[[key]]\nsha256 = \"{TEST}\"\nidentity = \"a\"\n[[key]]\nsha256 = \"{}\"\nidentity = \"b\"\n",
            TEST.to_uppercase()
        ))
        .unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (5, "key[2].sha256"));
        assert!(e.message.contains("twice"), "{e}");
        let e = parse(&format!("[[key]]\nsha256 = \"{TEST}\"\nidentity = \" \"\n")).unwrap_err();
        assert_eq!(e.key, "key[1].identity");
        let e = parse(&format!(
            "[[key]]\nsha256 = \"{TEST}\"\nidentity = \"a\"\nkey = \"test\"\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
        assert!(parse("").unwrap().is_empty());
    }
}
