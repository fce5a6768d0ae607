//! nginx `log_format` strings (and Apache's combined format, which writes the same
//! line): compiled once into literals and variables, then matched against each line
//! without allocating.
//!
//! A variable's value runs to the next occurrence of the literal that follows it (the
//! last one to the end of the line), which is how nginx's own escaping keeps fields
//! apart (`"` inside a quoted field is written `\x22`). Variables ratelab does not use
//! are skipped.

use std::borrow::Cow;

use super::fields::{Fields, present, split_request, target_path};
use super::time;

/// nginx's built-in `combined` format (Apache's `%h %l %u %t "%r" %>s %b
/// "%{Referer}i" "%{User-agent}i"` writes the same line).
pub const COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

/// What a variable fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Client,
    /// `$time_local`, `$time_iso8601`, `$msec`: any accepted time form.
    Time,
    /// `$request`: `GET /x HTTP/1.1`.
    Request,
    Method,
    /// `$request_uri`, `$uri`.
    Path,
    Status,
    ApiKey,
    Header,
    /// `$http_x_cost`-like: a cost header.
    Cost,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    Var(Var),
}

/// A compiled `log_format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFormat {
    tokens: Vec<Token>,
}

/// The nginx variable of a request header: `x-api-key` → `http_x_api_key`.
pub fn header_var(header: &str) -> String {
    format!("http_{}", header.to_ascii_lowercase().replace('-', "_"))
}

impl LogFormat {
    /// Compiles `format`; `api_key_header` and `identity_header` name the request
    /// headers whose `$http_…` variables carry an API key and an identity.
    pub fn new(format: &str, api_key_header: &str, identity_header: &str) -> Result<Self, String> {
        let (key_var, id_var) = (header_var(api_key_header), header_var(identity_header));
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut rest = format;
        while let Some(i) = rest.find('$') {
            literal.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let (name, tail) = match after.strip_prefix('{') {
                Some(b) => {
                    let end = b.find('}').ok_or("unclosed ${ in the log format")?;
                    (&b[..end], &b[end + 1..])
                }
                None => {
                    let end = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            if name.is_empty() {
                return Err(format!("a '$' without a variable name in {format:?}"));
            }
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            } else if matches!(tokens.last(), Some(Token::Var(_))) {
                return Err(format!(
                    "${name} follows another variable with nothing between them: the line cannot be split"
                ));
            }
            let var = match name {
                "remote_addr" | "binary_remote_addr" | "realip_remote_addr" => Var::Client,
                "time_local" | "time_iso8601" | "msec" => Var::Time,
                "request" => Var::Request,
                "request_method" => Var::Method,
                "request_uri" | "uri" | "document_uri" => Var::Path,
                "status" => Var::Status,
                "http_x_cost" => Var::Cost,
                n if n == key_var => Var::ApiKey,
                n if n == id_var => Var::Header,
                _ => Var::Skip,
            };
            tokens.push(Token::Var(var));
            rest = tail;
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        let has = |v: Var| tokens.contains(&Token::Var(v));
        if !has(Var::Time) {
            return Err("the log format has no time ($time_local, $time_iso8601 or $msec)".into());
        }
        if !has(Var::Request) && !has(Var::Path) {
            return Err("the log format has no path ($request, $request_uri or $uri)".into());
        }
        Ok(Self { tokens })
    }

    /// Reads one line.
    pub fn parse<'a>(&self, line: &'a str) -> Result<Fields<'a>, String> {
        self.read(line, &mut time::Cache::default())
    }

    /// Reads one line, its time through `times` (the lines of one second share it).
    pub(crate) fn read<'a>(
        &self,
        line: &'a str,
        times: &mut time::Cache,
    ) -> Result<Fields<'a>, String> {
        let mut f = Fields::default();
        let mut pos = 0;
        let bytes = line.as_bytes();
        for (i, token) in self.tokens.iter().enumerate() {
            match token {
                Token::Literal(l) => {
                    if !bytes[pos..].starts_with(l.as_bytes()) {
                        return Err(format!("expected {l:?} at column {}", pos + 1));
                    }
                    pos += l.len();
                }
                Token::Var(var) => {
                    let end = match self.tokens.get(i + 1) {
                        Some(Token::Literal(l)) => find(&bytes[pos..], l.as_bytes())
                            .map(|e| pos + e)
                            .ok_or_else(|| format!("line ends before {l:?}"))?,
                        _ => line.len(),
                    };
                    // `end` is where an ASCII literal starts, or the line's end: a
                    // character boundary.
                    let value = line.get(pos..end).ok_or("a field splits a character")?;
                    fill(&mut f, *var, value, times)?;
                    pos = end;
                }
            }
        }
        Ok(f)
    }
}

/// Where `needle` (not empty) first occurs in `hay`: its first byte found by `memchr`,
/// the rest compared — literals are short, and their first byte is rare in a field.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(i) = memchr::memchr(first, &hay[from..]) {
        let at = from + i;
        if hay[at + 1..].starts_with(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn fill<'a>(
    f: &mut Fields<'a>,
    var: Var,
    v: &'a str,
    times: &mut time::Cache,
) -> Result<(), String> {
    let Some(v) = present(v) else {
        return Ok(());
    };
    match var {
        Var::Client => f.client = Some(Cow::Borrowed(v)),
        Var::Time => f.time = Some(times.parse(v)?),
        Var::Request => {
            let (method, target) = split_request(v);
            if method.is_none() || !target.starts_with(['/', 'h']) {
                return Err(format!("not a request line: {v:?}"));
            }
            f.method = method.map(Cow::Borrowed);
            f.path = Some(Cow::Borrowed(target_path(target)));
        }
        Var::Method => f.method = Some(Cow::Borrowed(v)),
        Var::Path => f.path = Some(Cow::Borrowed(target_path(v))),
        Var::Status => f.status = Some(v.parse().map_err(|_| format!("status {v:?}"))?),
        Var::ApiKey => f.api_key = Some(Cow::Borrowed(v)),
        Var::Header => f.header = Some(Cow::Borrowed(v)),
        Var::Cost => f.cost = v.parse().ok().filter(|c| *c > 0),
        Var::Skip => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_lines() {
        let c = LogFormat::new(COMBINED, "x-api-key", "x-user-id").unwrap();
        let line = r#"203.0.113.9 - frank [10/Oct/2000:13:55:36 -0700] "GET /api/orders/7?x=1 HTTP/1.1" 200 2326 "http://ref/" "Mozilla/5.0 (X11; Linux)""#;
        let f = c.parse(line).unwrap();
        assert_eq!(f.client.as_deref(), Some("203.0.113.9"));
        assert_eq!(f.method.as_deref(), Some("GET"));
        assert_eq!(f.path.as_deref(), Some("/api/orders/7"));
        assert_eq!(f.status, Some(200));
        assert_eq!(f.time, Some(971_211_336_000_000_000));
        assert!(c.parse("garbage").is_err());
        let tls = r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "\x16\x03\x01" 400 157 "-" "-""#;
        assert!(c.parse(tls).unwrap_err().contains("not a request line"));
    }

    #[test]
    fn custom_formats_with_keys_and_headers() {
        let fmt = r#"$remote_addr [$time_iso8601] "$request" $status $request_time key=$http_x_api_key user=${http_x_user_id}"#;
        let c = LogFormat::new(fmt, "X-Api-Key", "x-user-id").unwrap();
        let f = c
            .parse(r#"::1 [2000-10-10T13:55:36-07:00] "POST /login HTTP/2.0" 429 0.001 key=abc user=-"#)
            .unwrap();
        assert_eq!(f.api_key.as_deref(), Some("abc"));
        assert_eq!(f.header, None);
        assert_eq!(f.status, Some(429));
        assert!(
            LogFormat::new("$remote_addr $status", "k", "u")
                .unwrap_err()
                .contains("no time")
        );
        assert!(
            LogFormat::new("$msec$status /", "k", "u")
                .unwrap_err()
                .contains("nothing between")
        );
        assert!(LogFormat::new("$msec ${uri", "k", "u").is_err());
    }
}
