//! What one access log line says: the limits a request was checked against (noted by
//! the limiter as it decides), the decision in one word, and the line's JSON.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use limiter_core::{DecidedBy, Verdict};
use serde::{Serialize, Serializer};

/// One limit a request was checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitNote {
    /// The route (template, `*` for the default, `per-ip` for the per-IP limit).
    pub name: String,
    /// Whether it admitted the request.
    pub allowed: bool,
    /// Its limit.
    pub limit: u64,
    /// What remains of it after this request.
    pub remaining: u64,
    /// Who decided: `store`, `local`, `fail-open`, `fail-closed`.
    pub decided_by: &'static str,
    /// The route is in shadow mode: a refusal was let through.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

/// The limits a request was checked against, noted by the limiter as it decides (a
/// request extension, present only when the access log is on).
#[derive(Debug, Clone, Default)]
pub struct DecisionNote(Arc<Mutex<Vec<LimitNote>>>);

impl DecisionNote {
    /// Notes one limit's verdict (`shadow`: its route lets refusals through).
    pub fn note(&self, name: &str, verdict: &Verdict, shadow: bool) {
        let decided_by = match verdict.decided_by {
            DecidedBy::Store => "store",
            DecidedBy::Local => "local",
            DecidedBy::FailOpen => "fail-open",
            DecidedBy::FailClosed => "fail-closed",
        };
        if let Ok(mut notes) = self.0.lock() {
            notes.push(LimitNote {
                name: name.to_owned(),
                allowed: verdict.decision.allowed,
                limit: verdict.decision.limit,
                remaining: verdict.decision.remaining,
                decided_by,
                shadow,
            });
        }
    }

    /// The limits noted so far.
    pub fn take(&self) -> Vec<LimitNote> {
        self.0
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
    }
}

/// The decision in one word: `allowed`, `denied`, `shadow_denied` (a shadow route's
/// limits refused and let it through), `fallback` (a store failure decided:
/// fail-open, fail-closed or the local stand-in), `rejected` (refused before any limit:
/// no usable identity, a missing API key, a cost no limit admits) or `unlimited`.
pub fn decision(limits: &[LimitNote], status: u16) -> &'static str {
    // A 4xx other than 429 is a refusal before the route's limits (an unknown or missing
    // API key is answered after the per-IP limit admitted it).
    if (400..500).contains(&status) && status != 429 {
        return "rejected";
    }
    if limits.is_empty() {
        return "unlimited";
    }
    if limits.iter().any(|l| l.decided_by != "store") {
        "fallback"
    } else if limits.iter().all(|l| l.allowed) {
        "allowed"
    } else if limits.iter().all(|l| l.allowed || l.shadow) {
        "shadow_denied"
    } else {
        "denied"
    }
}

/// A name in a line: text (an identity, a pseudonym) or a client address.
#[derive(Debug, Clone, Copy)]
pub enum Name<'a> {
    /// As written.
    Text(&'a str),
    /// An address, written as text.
    Ip(IpAddr),
}

impl Serialize for Name<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Name::Text(t) => s.serialize_str(t),
            Name::Ip(ip) => s.collect_str(ip),
        }
    }
}

/// One request's line. Its keys are the ones `ratelab simulate --trace --format json`
/// reads by default.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// When it arrived, RFC 3339 UTC with nanoseconds.
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    /// Whose quota it spent (`key:…`, `h:…`, `ip:…`, or its `hash:…` pseudonym), if it
    /// had a usable identity.
    pub identity: Option<Name<'a>>,
    /// Where the identity came from (`api-key`, `header`, `client-ip`).
    pub source: Option<&'a str>,
    /// The client's address (the socket peer when no identity resolved), or the
    /// pseudonym of its per-IP key.
    pub client: Name<'a>,
    /// The method.
    pub method: &'a str,
    /// The path the gateway matched and forwarded (canonical), without the query; the
    /// path as received when it was refused as ambiguous.
    pub path: &'a str,
    /// The route that limited it (its last limit's name), if any.
    pub route: Option<&'a str>,
    /// The response status.
    pub status: u16,
    /// [`decision`].
    pub decision: &'static str,
    /// Every limit checked, in order.
    pub limits: &'a [LimitNote],
    /// What remains of the tightest limit checked.
    pub remaining: Option<u64>,
    /// From arrival to response headers, microseconds.
    pub latency_us: u64,
}

fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_nanos(*t))
}

/// RFC 3339 UTC with nanoseconds.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use limiter_core::Decision;

    use super::*;

    fn verdict(allowed: bool, decided_by: DecidedBy) -> Verdict {
        let d = if allowed {
            Decision::allow(5, 4, Duration::from_secs(1))
        } else {
            Decision::deny(5, 0, Duration::from_secs(1), Duration::from_secs(1))
        };
        Verdict {
            decision: d,
            decided_by,
        }
    }

    #[test]
    fn decisions_in_one_word() {
        let note = DecisionNote::default();
        note.note("/a", &verdict(true, DecidedBy::Store), false);
        let limits = note.take();
        assert_eq!(decision(&limits, 200), "allowed");
        assert!(note.take().is_empty(), "taken once");
        note.note("per-ip", &verdict(true, DecidedBy::Store), false);
        note.note("/a", &verdict(false, DecidedBy::Store), false);
        assert_eq!(decision(&note.take(), 429), "denied");
        note.note("/a", &verdict(false, DecidedBy::Store), true);
        assert_eq!(decision(&note.take(), 200), "shadow_denied");
        note.note("/a", &verdict(true, DecidedBy::FailOpen), false);
        assert_eq!(decision(&note.take(), 200), "fallback");
        assert_eq!(decision(&[], 401), "rejected");
        note.note("per-ip", &verdict(true, DecidedBy::Store), false);
        assert_eq!(
            decision(&note.take(), 401),
            "rejected",
            "unknown key after the per-IP limit"
        );
        assert_eq!(decision(&[], 200), "unlimited");
    }

    #[test]
    fn a_line_as_json() {
        let limits = [LimitNote {
            name: "/api/orders/{id}".into(),
            allowed: false,
            limit: 3,
            remaining: 0,
            decided_by: "store",
            shadow: false,
        }];
        let entry = Entry {
            time: SystemTime::UNIX_EPOCH + Duration::from_nanos(1_796_083_200_000_000_001),
            identity: Some(Name::Text("key:acme")),
            source: Some("api-key"),
            client: Name::Ip("10.0.0.1".parse().unwrap()),
            method: "GET",
            path: "/api/orders/7",
            route: Some("/api/orders/{id}"),
            status: 429,
            decision: "denied",
            limits: &limits,
            remaining: Some(0),
            latency_us: 12,
        };
        assert_eq!(
            serde_json::to_string(&entry).unwrap(),
            r#"{"time":"2026-12-01T00:00:00.000000001Z","identity":"key:acme","source":"api-key","client":"10.0.0.1","method":"GET","path":"/api/orders/7","route":"/api/orders/{id}","status":429,"decision":"denied","limits":[{"name":"/api/orders/{id}","allowed":false,"limit":3,"remaining":0,"decided_by":"store"}],"remaining":0,"latency_us":12}"#
        );
    }
}
