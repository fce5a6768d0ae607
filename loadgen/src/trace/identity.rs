//! Whose quota a logged request spends, by the gateway's rules in the order DESIGN.md
//! gives them and with the gateway's names (`key:…`, `h:…`, `ip:…`): an identity the
//! writer already resolved (the gateway's own access log), else the API key (the
//! identity the keys file gives it), else the identity header (the log's writer is
//! the trusted proxy that saw it), else the client address — IPv6 grouped by its
//! prefix, as the gateway groups it.
//!
//! An API key is never shown: one the keys file does not know becomes `key:#` and a
//! stable 64-bit hash of it, so results and reports can name the heaviest key holders
//! without leaking keys.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use super::fields::Fields;

/// Looks a presented API key up (the gateway's keys file): its quota key
/// (`key:<identity>`), or `None` for an unknown key.
pub type KeyLookup = Arc<dyn Fn(&str) -> Option<Arc<str>> + Send + Sync>;

/// The identity rules of a replay.
#[derive(Clone)]
pub struct IdentityRules {
    /// IPv6 clients are grouped by this many leading bits (the gateway's
    /// `[identity] ipv6_prefix`, default 64).
    pub ipv6_prefix: u8,
    /// The gateway's keys file, when it has one.
    pub keys: Option<KeyLookup>,
}

impl std::fmt::Debug for IdentityRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityRules")
            .field("ipv6_prefix", &self.ipv6_prefix)
            .field("keys", &self.keys.is_some())
            .finish()
    }
}

impl Default for IdentityRules {
    fn default() -> Self {
        Self {
            ipv6_prefix: 64,
            keys: None,
        }
    }
}

/// FNV-1a, 64 bits: stable across runs and machines.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl IdentityRules {
    /// Writes the identity of `f` into `out` (cleared first); `false` when the line
    /// names nobody.
    pub fn resolve(&self, f: &Fields<'_>, out: &mut String) -> bool {
        out.clear();
        if let Some(id) = &f.identity {
            out.push_str(id);
        } else if let Some(key) = &f.api_key {
            match self.keys.as_ref().and_then(|lookup| lookup(key)) {
                Some(known) => out.push_str(&known),
                None => {
                    use std::fmt::Write;
                    let _ = write!(out, "key:#{:016x}", fnv1a(key));
                }
            }
        } else if let Some(h) = &f.header {
            out.push_str("h:");
            out.push_str(h);
        } else if let Some(client) = &f.client {
            use std::fmt::Write;
            let _ = match client.parse::<IpAddr>() {
                Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() && self.ipv6_prefix < 128 => {
                    let bits = u32::from(self.ipv6_prefix);
                    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                    let net = Ipv6Addr::from(u128::from(v6) & mask);
                    write!(out, "ip:{net}/{bits}")
                }
                Ok(ip) => write!(out, "ip:{}", ip.to_canonical()),
                _ => write!(out, "ip:{client}"),
            };
        }
        !out.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn precedence_and_grouping() {
        let rules = IdentityRules::default();
        let mut out = String::new();
        let mut f = Fields {
            client: Some(Cow::Borrowed("2001:db8:1:2:3:4:5:6")),
            ..Fields::default()
        };
        assert!(rules.resolve(&f, &mut out));
        assert_eq!(out, "ip:2001:db8:1:2::/64");
        f.client = Some(Cow::Borrowed("::ffff:10.0.0.1"));
        rules.resolve(&f, &mut out);
        assert_eq!(out, "ip:10.0.0.1");
        f.header = Some(Cow::Borrowed("alice"));
        rules.resolve(&f, &mut out);
        assert_eq!(out, "h:alice");
        f.api_key = Some(Cow::Borrowed("secret"));
        rules.resolve(&f, &mut out);
        assert!(out.starts_with("key:#") && !out.contains("secret"), "{out}");
        let known = IdentityRules {
            keys: Some(Arc::new(|k: &str| {
                (k == "secret").then(|| Arc::from("key:acme"))
            })),
            ..IdentityRules::default()
        };
        known.resolve(&f, &mut out);
        assert_eq!(out, "key:acme");
        f.identity = Some(Cow::Borrowed("acme"));
        rules.resolve(&f, &mut out);
        assert_eq!(out, "acme");
        assert!(!rules.resolve(&Fields::default(), &mut out));
        let zero = IdentityRules {
            ipv6_prefix: 0,
            keys: None,
        };
        let f = Fields {
            client: Some(Cow::Borrowed("2001:db8::1")),
            ..Fields::default()
        };
        zero.resolve(&f, &mut out);
        assert_eq!(out, "ip:::/0");
    }
}
