//! The `[identity]` table: header names, the API keys file (read and checked here, so
//! `--check` catches a bad keys file too), trusted proxies as CIDRs, the IPv6 prefix
//! and the per-IP limit.

use std::net::IpAddr;

use gateway_contract::config::{IdentityTable, Spanned};
use ipnet::IpNet;

use super::{Config, ConfigError, Cx};
use crate::config::ClientIpHeader;
use crate::identity::KeyTable;

impl Cx<'_> {
    pub(super) fn identity(
        &self,
        id: &IdentityTable,
        config: &mut Config,
    ) -> Result<(), ConfigError> {
        let out = &mut config.identity;
        if let Some(h) = &id.header {
            out.header = self.header_name(h, "identity.header")?;
        }
        if let Some(m) = &id.max_len {
            out.max_len = self.count(m, "identity.max_len")?;
        }
        if let Some(h) = &id.api_key_header {
            out.api_key_header = self.header_name(h, "identity.api_key_header")?;
        }
        if let Some(path) = &id.api_keys {
            let file = self
                .file
                .parent()
                .map_or_else(|| path.get_ref().into(), |dir| dir.join(path.get_ref()));
            // Read now: a missing or broken keys file is a configuration error (located
            // in the keys file), not a gateway that answers 401 to everyone.
            if !file.is_file() {
                let message = format!("keys file {} does not exist", file.display());
                return Err(self.err(path, "identity.api_keys", message));
            }
            KeyTable::load(&file)?;
            out.api_keys = Some(file);
        }
        if let Some(r) = &id.require_api_key {
            if *r.get_ref() && out.api_keys.is_none() {
                let message = "require_api_key needs `api_keys`, the keys file";
                return Err(self.err(r, "identity.require_api_key", message));
            }
            out.require_api_key = *r.get_ref();
        }
        if let Some(list) = &id.trusted_proxies {
            out.trusted_proxies = list
                .get_ref()
                .iter()
                .enumerate()
                .map(|(i, cidr)| {
                    parse_cidr(cidr.get_ref()).map_err(|e| {
                        self.err(cidr, &format!("identity.trusted_proxies[{}]", i + 1), e)
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(h) = &id.client_ip_header {
            out.client_ip_header = match h.get_ref().to_ascii_lowercase().as_str() {
                "x-forwarded-for" => ClientIpHeader::XForwardedFor,
                "forwarded" => ClientIpHeader::Forwarded,
                other => {
                    let message =
                        format!("{other:?}: expected \"x-forwarded-for\" or \"forwarded\"");
                    return Err(self.err(h, "identity.client_ip_header", message));
                }
            };
        }
        if let Some(p) = &id.ipv6_prefix {
            out.ipv6_prefix = u8::try_from(*p.get_ref())
                .ok()
                .filter(|p| *p <= 128)
                .ok_or_else(|| {
                    let message = format!("ipv6_prefix must be 0..=128, got {}", p.get_ref());
                    self.err(p, "identity.ipv6_prefix", message)
                })?;
        }
        if let Some(limit) = &id.per_ip {
            let table = limit.get_ref();
            if let Some(path) = &table.path {
                let message = "the per-IP limit applies to every request and takes no `path`";
                return Err(self.err(path, "identity.per_ip.path", message));
            }
            if let Some(r) = &table.require_api_key {
                let message = "`require_api_key` belongs to a route or to [identity]";
                return Err(self.err(r, "identity.per_ip.require_api_key", message));
            }
            let costs = [&table.cost_from_response, &table.cost_from_request];
            if let Some(h) = costs.into_iter().flatten().next() {
                let message = "the per-IP limit counts requests; a cost header belongs to a route";
                return Err(self.err(h, "identity.per_ip", message));
            }
            if let Some(t) = table.tiers.as_ref().and_then(|t| t.values().next()) {
                let message = "the per-IP limit is the same for every tier";
                return Err(self.err(t, "identity.per_ip.tiers", message));
            }
            config.identity.per_ip = Some(self.route_limits(table, "identity.per_ip", 0)?);
        }
        if config.identity.api_key_header == config.identity.header {
            let at = id.api_key_header.as_ref().or(id.header.as_ref());
            let message = "the API key header and the identity header must differ";
            return Err(self.located(at, "identity.api_key_header", message));
        }
        Ok(())
    }

    fn header_name(&self, h: &Spanned<String>, key: &str) -> Result<String, ConfigError> {
        http::HeaderName::try_from(h.get_ref().as_str())
            .map(|n| n.as_str().to_owned())
            .map_err(|_| self.err(h, key, format!("{:?} is not a header name", h.get_ref())))
    }
}

/// A CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address (`127.0.0.1`, a /32 or
/// /128), read by `ipnet`; host bits set (`10.0.0.1/8`) are refused as a likely typo.
pub(crate) fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    let net: IpNet = s
        .parse()
        .map_err(|_| format!("{s:?} is not an address or CIDR like 10.0.0.0/8"))?;
    if net.trunc() != net {
        return Err(format!(
            "{s:?} has host bits set: did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}
