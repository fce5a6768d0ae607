//! Whose quota a logged request spends, by the gateway's rules in the order DESIGN.md
//! gives them: an identity the writer already resolved (the gateway's own access
//! log), else the API key, else the identity header, else the client address — IPv6
//! grouped by its prefix, as the gateway groups it.
//!
//! An API key is never shown: it becomes `key:` and a stable 64-bit hash of it, so
//! results and reports can name the heaviest key holders without leaking keys.

use std::net::{IpAddr, Ipv6Addr};

use super::fields::Fields;

/// The identity rules of a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityRules {
    /// IPv6 clients are grouped by this many leading bits (the gateway's
    /// `[identity] ipv6_prefix`, default 64).
    pub ipv6_prefix: u8,
}

impl Default for IdentityRules {
    fn default() -> Self {
        Self { ipv6_prefix: 64 }
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
            use std::fmt::Write;
            let _ = write!(out, "key:{:016x}", fnv1a(key));
        } else if let Some(h) = &f.header {
            out.push_str(h);
        } else if let Some(client) = &f.client {
            match client.parse::<IpAddr>() {
                Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
                    let bits = u32::from(self.ipv6_prefix.min(128));
                    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                    let net = Ipv6Addr::from(u128::from(v6) & mask);
                    use std::fmt::Write;
                    let _ = write!(out, "{net}/{bits}");
                }
                Ok(IpAddr::V6(v6)) => out.push_str(&v6.to_canonical().to_string()),
                _ => out.push_str(client),
            }
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
        assert_eq!(out, "2001:db8:1:2::/64");
        f.client = Some(Cow::Borrowed("::ffff:10.0.0.1"));
        rules.resolve(&f, &mut out);
        assert_eq!(out, "10.0.0.1");
        f.header = Some(Cow::Borrowed("alice"));
        rules.resolve(&f, &mut out);
        assert_eq!(out, "alice");
        f.api_key = Some(Cow::Borrowed("secret"));
        rules.resolve(&f, &mut out);
        assert!(out.starts_with("key:") && !out.contains("secret"), "{out}");
        f.identity = Some(Cow::Borrowed("acme"));
        rules.resolve(&f, &mut out);
        assert_eq!(out, "acme");
        assert!(!rules.resolve(&Fields::default(), &mut out));
        let zero = IdentityRules { ipv6_prefix: 0 };
        let f = Fields {
            client: Some(Cow::Borrowed("2001:db8::1")),
            ..Fields::default()
        };
        zero.resolve(&f, &mut out);
        assert_eq!(out, "::/0");
    }
}
