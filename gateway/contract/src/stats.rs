//! The mock backend's `GET /stats` document: how many requests reached it, per user and
//! concrete path — the ground truth the load driver judges a gateway against.
//!
//! The backend serialises this type and the load driver deserialises it, so a field
//! renamed on one side is a compile error on the other, not a silent zero.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The `/stats` JSON: `{"total", "errors", "untracked", "users": {user: {path: n}}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsDocument {
    /// Every request counted since the last reset.
    pub total: u64,
    /// Requests the backend answered with an injected error.
    #[serde(default)]
    pub errors: u64,
    /// Requests past the per-pair table (counted in `total` only).
    #[serde(default)]
    pub untracked: u64,
    /// `user -> concrete path -> count` (the user is the identity header's value, `-`
    /// when absent).
    #[serde(default)]
    pub users: HashMap<String, HashMap<String, u64>>,
}

impl StatsDocument {
    /// The count for `user` on `path`.
    pub fn count(&self, user: &str, path: &str) -> u64 {
        self.users
            .get(user)
            .and_then(|p| p.get(path))
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_requires_a_total() {
        let text =
            r#"{"total":5,"errors":0,"untracked":1,"users":{"user-0":{"/a":3},"-":{"/b":1}}}"#;
        let s: StatsDocument = serde_json::from_str(text).unwrap();
        assert_eq!((s.total, s.untracked), (5, 1));
        assert_eq!(s.count("user-0", "/a"), 3);
        assert_eq!(s.count("user-1", "/a"), 0);
        let back: StatsDocument =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert!(serde_json::from_str::<StatsDocument>("{}").is_err());
        assert!(serde_json::from_str::<StatsDocument>("<html>").is_err());
    }
}
