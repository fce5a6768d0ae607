//! The one path the gateway matches and forwards: a request path in canonical form, or
//! the reason it is refused.
//!
//! Canonical (RFC 3986 §6.2.2): empty segments dropped (a final `/` kept), escapes of
//! unreserved characters (`A-Z a-z 0-9 - . _ ~`) decoded, every other escape in upper
//! case. Refused: what a backend could read as a different path than the gateway
//! matched — an encoded `/` or `\`, a raw `\`, a `.` or `..` segment however spelled
//! (`%2e`, `.%2E`, `..;x`), an encoded NUL, a `%` not followed by two hex digits.

use std::borrow::Cow;
use std::fmt;

/// Why a request path is refused (`400`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRejection {
    /// `%2F` or `%5C` (or a raw `\`): one segment to the gateway, two to some backends.
    EncodedSeparator,
    /// A `.` or `..` segment, however spelled: backends resolve them differently.
    DotSegment,
    /// `%00`: ends the path early in some backends.
    EncodedNul,
    /// A `%` not followed by two hex digits.
    BadEscape,
}

impl PathRejection {
    /// A short reason for the client.
    pub const fn reason(self) -> &'static str {
        match self {
            PathRejection::EncodedSeparator => "the path contains an encoded '/' or '\\'",
            PathRejection::DotSegment => "the path contains a '.' or '..' segment",
            PathRejection::EncodedNul => "the path contains an encoded NUL",
            PathRejection::BadEscape => "the path contains a '%' not followed by two hex digits",
        }
    }
}

impl fmt::Display for PathRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for PathRejection {}

/// The canonical form of `path` (an origin-form path, without the query), borrowed when
/// it is canonical already — the usual case, which allocates nothing — or why it is
/// refused. `*` (for `OPTIONS *`) and paths not starting with `/` are returned as given.
pub fn canonical(path: &str) -> Result<Cow<'_, str>, PathRejection> {
    if !path.starts_with('/') {
        return Ok(Cow::Borrowed(path));
    }
    // One pass: an empty segment needs a rewrite unless it is the last (a final `/`).
    let mut rewrite = false;
    let mut rest = &path[1..];
    while let Some(end) = rest.find('/') {
        let seg = &rest[..end];
        rewrite |= seg.is_empty() || check(seg)?;
        rest = &rest[end + 1..];
    }
    if !rest.is_empty() {
        rewrite |= check(rest)?;
    }
    if !rewrite {
        return Ok(Cow::Borrowed(path));
    }
    let last = path[1..].split('/').count() - 1;
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path[1..].split('/').enumerate() {
        if seg.is_empty() && i != last {
            continue;
        }
        out.push('/');
        write_segment(seg, &mut out);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// Checks one non-empty segment; true when its escapes need rewriting.
fn check(seg: &str) -> Result<bool, PathRejection> {
    if seg.contains('\\') {
        return Err(PathRejection::EncodedSeparator);
    }
    let mut rewrite = false;
    let mut dots_only = true;
    let mut dots = 0;
    let bytes = seg.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let (b, escaped) = if bytes[i] == b'%' {
            let b = escape(bytes, i).ok_or(PathRejection::BadEscape)?;
            rewrite |= is_unreserved(b) || bytes[i + 1..i + 3].iter().any(u8::is_ascii_lowercase);
            i += 3;
            (b, true)
        } else {
            i += 1;
            (bytes[i - 1], false)
        };
        match b {
            b'/' | b'\\' if escaped => return Err(PathRejection::EncodedSeparator),
            0 => return Err(PathRejection::EncodedNul),
            // `..;x` is `..` to servlet containers: path parameters end the segment.
            b';' if dots_only => break,
            b'.' => dots += 1,
            _ => dots_only = false,
        }
    }
    if dots_only && (dots == 1 || dots == 2) {
        return Err(PathRejection::DotSegment);
    }
    Ok(rewrite)
}

/// The byte of the escape at `bytes[i]` (`%XY`), if well formed.
fn escape(bytes: &[u8], i: usize) -> Option<u8> {
    let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
    let (h, l) = (hex(bytes.get(i + 1))?, hex(bytes.get(i + 2))?);
    u8::try_from(h * 16 + l).ok()
}

/// RFC 3986's unreserved characters: an escape of one names the same resource.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Writes a checked segment: unreserved escapes decoded, others in upper case.
fn write_segment(seg: &str, out: &mut String) {
    let bytes = seg.as_bytes();
    let mut i = 0;
    let mut plain = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            i += 1;
            continue;
        }
        out.push_str(&seg[plain..i]);
        // Checked before: a well-formed escape.
        let b = escape(bytes, i).unwrap_or(b'%');
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push_str(&seg[i + 1..i + 3].to_ascii_uppercase());
        }
        i += 3;
        plain = i;
    }
    out.push_str(&seg[plain..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(path: &str) -> String {
        canonical(path).unwrap().into_owned()
    }

    #[test]
    fn canonical_paths_are_borrowed() {
        for p in [
            "/",
            "/api/orders/1",
            "/api/search/",
            "/a%20b",
            "/x%3Ay%C3%A9",
            "*",
        ] {
            assert!(matches!(canonical(p), Ok(Cow::Borrowed(_))), "{p}");
        }
    }

    #[test]
    fn harmless_spellings_are_rewritten() {
        assert_eq!(ok("/api//search"), "/api/search");
        assert_eq!(ok("//api/search/"), "/api/search/");
        assert_eq!(ok("/api/%73earch"), "/api/search");
        assert_eq!(ok("/api/a%2eb"), "/api/a.b");
        assert_eq!(ok("/a%3ab/%c3%a9"), "/a%3Ab/%C3%A9");
        assert_eq!(ok("//"), "/");
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        use PathRejection::*;
        for (p, why) in [
            ("/api/orders%2F1", EncodedSeparator),
            ("/api/orders%2f1", EncodedSeparator),
            ("/api/orders%5C1", EncodedSeparator),
            ("/api/orders\\1", EncodedSeparator),
            ("/api/orders/%2e%2e", DotSegment),
            ("/api/orders/%2E", DotSegment),
            ("/api/orders/.%2e/x", DotSegment),
            ("/api/./orders", DotSegment),
            ("/api/../orders", DotSegment),
            ("/api/..;x/orders", DotSegment),
            ("/api/orders/..", DotSegment),
            ("/api/a%00", EncodedNul),
            ("/api/%zz", BadEscape),
            ("/api/%4", BadEscape),
            ("/api/%", BadEscape),
        ] {
            assert_eq!(canonical(p), Err(why), "{p}");
        }
        // Dots inside a segment are a name, not a dot segment.
        assert_eq!(ok("/a/.../b..c/.x"), "/a/.../b..c/.x");
    }
}
