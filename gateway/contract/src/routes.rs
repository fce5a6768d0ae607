//! Route templates: `/api/orders/{id}` matches `/api/orders/42`, and the template —
//! never the raw path — becomes part of the rate-limit key, so keys do not explode.
//!
//! The guarantee: the gateway matches and forwards one path, the [`canonical`] form of
//! what the client sent — empty segments dropped, escapes of unreserved characters
//! decoded, other escapes in upper case — and refuses (`400`) a path a backend could
//! read as another one: an encoded `/` or `\`, a `.` or `..` segment however spelled
//! (`%2e%2e`), an encoded NUL, a broken escape. So a client cannot slip past a route's
//! limit with `/api//search/`, `/api/%73earch` or `/api/orders%2F1`, and the backend
//! serves the path that was limited. A route may also match in any case
//! ([`Template::case_insensitive`]): `/API/orders/1` then counts as `/api/orders/{id}`.
//! `{name}` matches exactly one segment; a final `{*name}` matches one or more.

use std::borrow::Cow;
use std::fmt;

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Matches itself.
    Literal(String),
    /// `{name}`: any one segment.
    Param,
    /// `{*name}`: one or more segments, last only.
    Rest,
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
    case_insensitive: bool,
}

impl Template {
    /// Parses a template: starts with `/`; segments are literals, `{name}`, or a final
    /// `{*name}`; no spaces, `?` or `#`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if !s.starts_with('/') {
            return Err(format!("path {s:?} must start with '/'"));
        }
        if s.contains(|c: char| c.is_whitespace() || c.is_control() || c == '?' || c == '#') {
            return Err(format!("path {s:?} must not contain spaces, '?' or '#'"));
        }
        let parts: Vec<&str> = s.split('/').filter(|p| !p.is_empty()).collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let seg = if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
            {
                let (rest, name) = match inner.strip_prefix('*') {
                    Some(name) => (true, name),
                    None => (false, inner),
                };
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!(
                        "bad parameter {part:?} in {s:?}: use {{name}} or {{*name}}"
                    ));
                }
                if rest && i + 1 != parts.len() {
                    return Err(format!("{part:?} must be the last segment of {s:?}"));
                }
                if rest { Segment::Rest } else { Segment::Param }
            } else if part.contains(['{', '}']) {
                return Err(format!(
                    "segment {part:?} of {s:?} mixes text and a parameter"
                ));
            } else if *part == "." || *part == ".." {
                return Err(format!("path {s:?} must not contain '.' or '..' segments"));
            } else {
                Segment::Literal(decode(part).into_owned())
            };
            segments.push(seg);
        }
        Ok(Self {
            source: s.to_owned(),
            segments,
            case_insensitive: false,
        })
    }

    /// This template matching its literal segments in any case when `on`
    /// (`/API/Orders/1` matches `/api/orders/{id}`): for backends that ignore case.
    pub fn case_insensitive(mut self, on: bool) -> Self {
        self.case_insensitive = on;
        self
    }

    /// True when literal segments match in any case.
    pub fn is_case_insensitive(&self) -> bool {
        self.case_insensitive
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the template has no `{name}` or `{*name}` segment.
    pub fn is_literal(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// A concrete path under this template: literal segments as written, each
    /// parameter replaced by `value()` (the load driver's requests).
    pub fn fill(&self, mut value: impl FnMut() -> String) -> String {
        if self.is_literal() {
            return self.source.clone();
        }
        let parts = self.source.split('/').filter(|p| !p.is_empty());
        let mut out = String::with_capacity(self.source.len() + 4);
        for (part, seg) in parts.zip(&self.segments) {
            out.push('/');
            match seg {
                Segment::Literal(_) => out.push_str(part),
                Segment::Param | Segment::Rest => out.push_str(&value()),
            }
        }
        out
    }

    /// True when `path` (normalised segments, see [`normalise`]) matches.
    pub fn matches(&self, path: &[Cow<'_, str>]) -> bool {
        let mut i = 0;
        for seg in &self.segments {
            match seg {
                Segment::Rest => return path.len() > i,
                Segment::Param => {
                    if i >= path.len() {
                        return false;
                    }
                }
                Segment::Literal(lit) => {
                    let same = |p: &Cow<'_, str>| {
                        p == lit || (self.case_insensitive && same_ignoring_case(p, lit))
                    };
                    if !path.get(i).is_some_and(same) {
                        return false;
                    }
                }
            }
            i += 1;
        }
        i == path.len()
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A normalised path's segments; paths of up to 8 segments stay on the stack.
pub type Segments<'a> = smallvec::SmallVec<[Cow<'a, str>; 8]>;

/// A request path's segments as routes see them: empty and `.` segments dropped, `..`
/// applied (never above the root), percent-escapes decoded where they decode to UTF-8.
pub fn normalise(path: &str) -> Segments<'_> {
    let mut out = Segments::new();
    for part in path.split('/') {
        let seg = decode(part);
        match seg.as_ref() {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            _ => out.push(seg),
        }
    }
    out
}

/// True when `a` and `b` are equal ignoring case (ASCII at once, else by Unicode's
/// lower-case mapping).
fn same_ignoring_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// Percent-decodes `s`; returns it unchanged when it has no valid escapes or would not
/// decode to UTF-8.
fn decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16)),
                bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(_) => Cow::Borrowed(s),
    }
}

mod canonical;
pub use canonical::{PathRejection, canonical};

#[cfg(test)]
mod tests {
    use super::*;

    fn m(t: &str, p: &str) -> bool {
        Template::parse(t).unwrap().matches(&normalise(p))
    }

    #[test]
    fn templates_match_segments() {
        assert!(m("/api/orders/{id}", "/api/orders/42"));
        assert!(!m("/api/orders/{id}", "/api/orders"));
        assert!(!m("/api/orders/{id}", "/api/orders/42/items"));
        assert!(m("/api/search", "/api/search"));
        assert!(m("/", "/"));
        assert!(!m("/", "/x"));
        assert!(m("/static/{*file}", "/static/a/b.css"));
        assert!(!m("/static/{*file}", "/static"));
        // Deeper than the segments kept on the stack.
        let deep = "/static/1/2/3/4/5/6/7/8/9/10/11/12";
        assert!(m("/static/{*file}", deep));
        assert!(m("/static/{a}/2/3/4/5/6/7/8/9/10/11/{b}", deep));
        assert!(!m("/static/{a}/2/3/4/5/6/7/8/9/10/11", deep));
        assert_eq!(normalise(deep).len(), 13);
    }

    #[test]
    fn fill_keeps_literals_as_written() {
        let t = Template::parse("/api//orders/{id}/x%20y").unwrap();
        assert_eq!(t.fill(|| "7".to_owned()), "/api/orders/7/x%20y");
        assert!(t.matches(&normalise(&t.fill(|| "7".to_owned()))));
        let t = Template::parse("/plain").unwrap();
        assert!(t.is_literal());
        assert_eq!(t.fill(|| unreachable!()), "/plain");
        assert_eq!(Template::parse("/").unwrap().fill(String::new), "/");
    }

    #[test]
    fn path_tricks_still_match() {
        assert!(m("/api/search", "/api//search/"));
        assert!(m("/api/search", "/api/./search"));
        assert!(m("/api/search", "/api/x/../search"));
        assert!(m("/api/search", "/api/%73earch"));
        assert!(m("/api/search", "/../../api/search"));
        assert!(!m("/api/search", "/api/search%2fx"));
    }

    #[test]
    fn case_insensitive_routes_match_any_case() {
        let t = Template::parse("/api/orders/{id}").unwrap();
        assert!(!t.matches(&normalise("/API/orders/1")));
        let t = t.case_insensitive(true);
        assert!(t.matches(&normalise("/API/Orders/1")));
        assert!(t.matches(&normalise("/api/ORDERS/X")));
        assert!(!t.matches(&normalise("/api/order/1")));
        let t = Template::parse("/straße").unwrap().case_insensitive(true);
        assert!(t.matches(&normalise("/STRASSE")) || t.matches(&normalise("/Straße")));
        assert!(t.matches(&normalise("/STRAßE")));
    }

    #[test]
    fn bad_templates() {
        for t in [
            "api",
            "/a b",
            "/a?x",
            "/{}",
            "/{*rest}/x",
            "/a{id}",
            "/{i-d}",
            "/a/../b",
        ] {
            assert!(Template::parse(t).is_err(), "{t}");
        }
    }

    #[test]
    fn decoding_is_total() {
        assert_eq!(decode("%"), "%");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(decode("%ff"), "%ff");
        assert_eq!(decode("a%20b"), "a b");
    }
}
