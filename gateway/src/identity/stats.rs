//! Requests refused for who they are, before any limit: counted by reason, so an
//! operator sees key typos, clients hitting keyed routes without keys and malformed
//! identity headers (`ratelab_gateway_identity_rejections_total{reason}`).

use prometheus_client::metrics::MetricType;

use super::Rejection;
use crate::contract::metrics as names;
use crate::metrics::{Counter, DescriptorEncoder, encode_family};

/// Identity refusals so far, by reason.
#[derive(Debug, Default)]
pub struct IdentityStats {
    /// `401`: a key the keys file does not list.
    pub unknown_api_key: Counter,
    /// `401`: no valid key where one is required.
    pub api_key_required: Counter,
    /// `400`: an identity or key header too long, not UTF-8 or repeated.
    pub bad_identity_header: Counter,
}

impl IdentityStats {
    /// Counts a resolver's refusal (a bad identity or key header).
    pub fn rejected(&self, _rejection: &Rejection) {
        self.bad_identity_header.inc();
    }

    /// Writes the family.
    pub fn encode(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        encode_family(
            encoder,
            names::IDENTITY_REJECTIONS.name,
            "Requests refused for their identity before any limit, by reason (401 unknown_api_key and api_key_required, 400 bad_identity_header).",
            MetricType::Counter,
            [
                ("unknown_api_key", &self.unknown_api_key),
                ("api_key_required", &self.api_key_required),
                ("bad_identity_header", &self.bad_identity_header),
            ]
            .map(|(reason, c)| ([(names::LABEL_REASON, reason)], c)),
        )
    }
}
