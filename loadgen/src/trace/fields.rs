//! What one log line says about one request, whatever the format, and the names of
//! those fields in JSON lines and CSV.

use std::borrow::Cow;

use limiter_core::Nanos;

/// One request as a log line tells it. A field the line does not carry (or carries as
/// `-`) is `None`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Fields<'a> {
    /// When, nanoseconds since the Unix epoch.
    pub time: Option<Nanos>,
    /// An identity the writer already resolved (the gateway's own access log).
    pub identity: Option<Cow<'a, str>>,
    /// The API key header's value.
    pub api_key: Option<Cow<'a, str>>,
    /// The identity header's value (`x-user-id`, or the gateway's `[identity] header`).
    pub header: Option<Cow<'a, str>>,
    /// The client address.
    pub client: Option<Cow<'a, str>>,
    /// The method.
    pub method: Option<Cow<'a, str>>,
    /// The request path (a query string is ignored, as the gateway's routes do).
    pub path: Option<Cow<'a, str>>,
    /// The response status.
    pub status: Option<u16>,
    /// Units the request costs, when the log says (else the route's cost).
    pub cost: Option<u64>,
}

/// A value as logs write "nothing": absent, empty or `-`.
pub(crate) fn present(v: &str) -> Option<&str> {
    (!v.is_empty() && v != "-").then_some(v)
}

/// The path of a request target: the part before `?` or `#`, and of an absolute-form
/// target (`http://host/path`) the path after the authority.
pub(crate) fn target_path(target: &str) -> &str {
    let target = if target.starts_with('/') {
        target
    } else {
        match target.find("://") {
            Some(i) => target[i + 3..]
                .find('/')
                .map_or("/", |p| &target[i + 3 + p..]),
            None => target,
        }
    };
    match memchr::memchr2(b'?', b'#', target.as_bytes()) {
        Some(end) => &target[..end],
        None => target,
    }
}

/// Column (CSV) or key (JSON lines) of each field. The defaults are the gateway's
/// own access log's names, so `--format json` reads it without options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldNames {
    /// Time: RFC 3339, the common log format's, or seconds since the epoch.
    pub time: String,
    /// A resolved identity.
    pub identity: String,
    /// An API key.
    pub api_key: String,
    /// The identity header's value.
    pub header: String,
    /// The client address.
    pub client: String,
    /// The method.
    pub method: String,
    /// The path (or a full request line `GET /x HTTP/1.1`).
    pub path: String,
    /// The status.
    pub status: String,
    /// The cost.
    pub cost: String,
}

impl Default for FieldNames {
    fn default() -> Self {
        Self {
            time: "time".into(),
            identity: "identity".into(),
            api_key: "api_key".into(),
            header: "user".into(),
            client: "client".into(),
            method: "method".into(),
            path: "path".into(),
            status: "status".into(),
            cost: "cost".into(),
        }
    }
}

impl FieldNames {
    /// Renames one field from a `FIELD=NAME` option (`time=ts`, `identity=user_id`).
    pub fn set(&mut self, assignment: &str) -> Result<(), String> {
        let (field, name) = assignment
            .split_once('=')
            .ok_or_else(|| format!("{assignment:?}: expected FIELD=NAME"))?;
        let name = name.trim().to_owned();
        if name.is_empty() {
            return Err(format!("{assignment:?}: the name is empty"));
        }
        let slot = match field.trim() {
            "time" => &mut self.time,
            "identity" => &mut self.identity,
            "api_key" => &mut self.api_key,
            "header" | "user" => &mut self.header,
            "client" => &mut self.client,
            "method" => &mut self.method,
            "path" => &mut self.path,
            "status" => &mut self.status,
            "cost" => &mut self.cost,
            other => {
                return Err(format!(
                    "unknown field {other:?} (expected time, identity, api_key, header, client, method, path, status or cost)"
                ));
            }
        };
        *slot = name;
        Ok(())
    }

    /// Fills `f` from one named value (a JSON key or a CSV column).
    pub(crate) fn assign<'a>(
        &self,
        f: &mut Fields<'a>,
        name: &str,
        value: Cow<'a, str>,
    ) -> Result<(), String> {
        let Some(v) = present(&value) else {
            return Ok(());
        };
        if name == self.time {
            f.time = Some(super::time::parse(v)?);
        } else if name == self.status {
            f.status = Some(
                v.parse()
                    .map_err(|_| format!("status {v:?} is not a number"))?,
            );
        } else if name == self.cost {
            let c: u64 = v
                .parse()
                .map_err(|_| format!("cost {v:?} is not a whole number"))?;
            f.cost = (c > 0).then_some(c);
        } else if name == self.path {
            f.path = Some(request_path(value, &mut f.method));
        } else {
            let slot = if name == self.identity {
                &mut f.identity
            } else if name == self.api_key {
                &mut f.api_key
            } else if name == self.header {
                &mut f.header
            } else if name == self.client {
                &mut f.client
            } else if name == self.method {
                &mut f.method
            } else {
                return Ok(());
            };
            *slot = Some(value);
        }
        Ok(())
    }
}

/// The path of a path field, which may hold a full request line (`GET /x HTTP/1.1`,
/// whose method then fills `method` when nothing else does).
fn request_path<'a>(value: Cow<'a, str>, method: &mut Option<Cow<'a, str>>) -> Cow<'a, str> {
    match value {
        Cow::Borrowed(v) => {
            let (m, target) = split_request(v);
            if method.is_none() {
                *method = m.map(Cow::Borrowed);
            }
            Cow::Borrowed(target_path(target))
        }
        Cow::Owned(v) => {
            let (m, target) = split_request(&v);
            if method.is_none() {
                *method = m.map(|m| Cow::Owned(m.to_owned()));
            }
            Cow::Owned(target_path(target).to_owned())
        }
    }
}

/// `GET /x HTTP/1.1` → (`GET`, `/x`); `/x` → (none, `/x`).
pub(crate) fn split_request(v: &str) -> (Option<&str>, &str) {
    if v.starts_with('/') {
        return (None, v);
    }
    // The first two words, however many spaces part them.
    let rest = v.trim_start_matches(' ');
    let Some(space) = memchr::memchr(b' ', rest.as_bytes()) else {
        return (None, v);
    };
    let tail = rest[space..].trim_start_matches(' ');
    if tail.is_empty() {
        return (None, v);
    }
    let target = memchr::memchr(b' ', tail.as_bytes()).map_or(tail, |end| &tail[..end]);
    (Some(&rest[..space]), target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_request_lines() {
        assert_eq!(target_path("/a/b?x=1"), "/a/b");
        assert_eq!(target_path("http://h:80/a?x"), "/a");
        assert_eq!(target_path("http://h"), "/");
        assert_eq!(split_request("GET /x HTTP/1.1"), (Some("GET"), "/x"));
        assert_eq!(split_request("/only"), (None, "/only"));
        assert_eq!(split_request("  GET   /x  "), (Some("GET"), "/x"));
        assert_eq!(split_request("GET"), (None, "GET"));
        assert_eq!(split_request("GET   "), (None, "GET   "));
        assert_eq!(target_path("/a#f?x"), "/a");
    }

    #[test]
    fn names_are_set_by_option() {
        let mut n = FieldNames::default();
        n.set("time=ts").unwrap();
        n.set("header = x_user").unwrap();
        assert_eq!((n.time.as_str(), n.header.as_str()), ("ts", "x_user"));
        assert!(n.set("when=ts").unwrap_err().contains("unknown field"));
        assert!(n.set("time=").is_err());
        assert!(n.set("time").is_err());
        let mut f = Fields::default();
        n.assign(&mut f, "path", Cow::Borrowed("POST /api/x?y HTTP/1.1"))
            .unwrap();
        assert_eq!(f.path.as_deref(), Some("/api/x"));
        assert_eq!(f.method.as_deref(), Some("POST"));
        n.assign(&mut f, "status", Cow::Borrowed("-")).unwrap();
        assert_eq!(f.status, None);
        assert!(n.assign(&mut f, "status", Cow::Borrowed("ok")).is_err());
    }
}
