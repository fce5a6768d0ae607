//! The three log formats and one line reader over them: nginx/Apache (`combined` or
//! any `log_format`), JSON lines and CSV with a header row.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use super::fields::{FieldNames, Fields};
use super::nginx::{COMBINED, LogFormat};

/// A log's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// nginx's or Apache's combined log format, or a custom nginx `log_format`.
    #[default]
    Combined,
    /// One JSON object per line (the gateway's own access log by default names).
    Json,
    /// Comma-separated values, the first line naming the columns.
    Csv,
}

impl Format {
    /// `combined`, `json` or `csv`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Combined => "combined",
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "combined" => Ok(Format::Combined),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            _ => Err(format!(
                "unknown format {s:?} (expected combined, json or csv)"
            )),
        }
    }
}

/// How to read a log: its format, and for each format what it needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormatSpec {
    /// The format.
    pub format: Format,
    /// A custom nginx `log_format` (format `combined` only).
    pub log_format: Option<String>,
    /// Field names (JSON keys, CSV columns).
    pub names: FieldNames,
    /// The request header carrying an API key (`x-api-key`).
    pub api_key_header: String,
    /// The request header carrying an identity (`x-user-id`).
    pub identity_header: String,
}

impl FormatSpec {
    /// In words, for results: `combined`, `combined: <log_format>`, `json`, `csv`.
    pub fn describe(&self) -> String {
        match (&self.format, &self.log_format) {
            (Format::Combined, Some(f)) => format!("combined: {f}"),
            (f, _) => f.name().to_owned(),
        }
    }
}

/// Reads lines of one format into [`Fields`].
#[derive(Debug)]
pub(crate) enum LineReader {
    /// A compiled format, and the last time read.
    Nginx(LogFormat, super::time::Cache),
    Json(FieldNames),
    /// Columns named by the header row, once read.
    Csv(FieldNames, Option<Vec<String>>),
}

impl LineReader {
    pub(crate) fn new(spec: &FormatSpec) -> Result<Self, String> {
        match spec.format {
            Format::Combined => {
                let fmt = spec.log_format.as_deref().unwrap_or(COMBINED);
                let f = LogFormat::new(fmt, &spec.api_key_header, &spec.identity_header)?;
                Ok(LineReader::Nginx(f, super::time::Cache::default()))
            }
            Format::Json => Ok(LineReader::Json(spec.names.clone())),
            Format::Csv => Ok(LineReader::Csv(spec.names.clone(), None)),
        }
    }

    /// Reads one non-empty line: `Ok(None)` for a header row.
    pub(crate) fn read<'a>(&mut self, line: &'a str) -> Result<Option<Fields<'a>>, String> {
        match self {
            LineReader::Nginx(f, times) => f.read(line, times).map(Some),
            LineReader::Json(names) => json(names, line).map(Some),
            LineReader::Csv(names, columns) => match columns {
                None => {
                    let header: Vec<String> =
                        split_csv(line)?.into_iter().map(Cow::into_owned).collect();
                    if !header.contains(&names.time) || !header.contains(&names.path) {
                        return Err(format!(
                            "the header row names no {:?} or no {:?} column",
                            names.time, names.path
                        ));
                    }
                    *columns = Some(header);
                    Ok(None)
                }
                Some(columns) => {
                    let values = split_csv(line)?;
                    if values.len() != columns.len() {
                        return Err(format!(
                            "{} values for {} columns",
                            values.len(),
                            columns.len()
                        ));
                    }
                    let mut f = Fields::default();
                    for (name, value) in columns.iter().zip(values) {
                        names.assign(&mut f, name, value)?;
                    }
                    Ok(Some(f))
                }
            },
        }
    }
}

/// One JSON object: strings as they are, numbers as their text (a time number is
/// seconds since the epoch).
fn json<'a>(names: &FieldNames, line: &'a str) -> Result<Fields<'a>, String> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    let mut f = Fields::default();
    for (key, value) in map {
        let text = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            _ => continue,
        };
        names.assign(&mut f, &key, Cow::Owned(text))?;
    }
    Ok(f)
}

/// Splits a CSV line (RFC 4180: `"` quotes a field, `""` is a quote inside one).
fn split_csv(line: &str) -> Result<Vec<Cow<'_, str>>, String> {
    let mut out = Vec::new();
    let mut rest = line;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut tail = quoted;
            loop {
                let i = tail.find('"').ok_or("an unclosed quote")?;
                value.push_str(&tail[..i]);
                tail = &tail[i + 1..];
                match tail.strip_prefix('"') {
                    Some(t) => {
                        value.push('"');
                        tail = t;
                    }
                    None => break,
                }
            }
            out.push(Cow::Owned(value));
            match tail.strip_prefix(',') {
                Some(t) => rest = t,
                None if tail.is_empty() => return Ok(out),
                None => return Err("text after a closing quote".into()),
            }
        } else {
            match rest.find(',') {
                Some(i) => {
                    out.push(Cow::Borrowed(&rest[..i]));
                    rest = &rest[i + 1..];
                }
                None => {
                    out.push(Cow::Borrowed(rest));
                    return Ok(out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(format: Format) -> FormatSpec {
        FormatSpec {
            format,
            api_key_header: "x-api-key".into(),
            identity_header: "x-user-id".into(),
            ..FormatSpec::default()
        }
    }

    #[test]
    fn csv_with_a_header_and_quotes() {
        assert_eq!(
            split_csv(r#"a,"b,""c""",,d"#).unwrap(),
            ["a", "b,\"c\"", "", "d"]
        );
        assert!(split_csv(r#""open"#).is_err());
        let mut r = LineReader::new(&spec(Format::Csv)).unwrap();
        assert_eq!(r.read("time,identity,path,status").unwrap(), None);
        let f = r
            .read("2026-12-01T00:00:01Z,acme,/api/x?q=1,200")
            .unwrap()
            .unwrap();
        assert_eq!(f.identity.as_deref(), Some("acme"));
        assert_eq!(f.path.as_deref(), Some("/api/x"));
        assert!(
            r.read("2026-12-01T00:00:01Z,acme")
                .unwrap_err()
                .contains("2 values for 4")
        );
        let mut r = LineReader::new(&spec(Format::Csv)).unwrap();
        assert!(r.read("when,who").unwrap_err().contains("header row"));
    }

    #[test]
    fn json_lines_by_name() {
        let mut s = spec(Format::Json);
        s.names.set("identity=user_id").unwrap();
        let mut r = LineReader::new(&s).unwrap();
        let f = r
            .read(r#"{"time": 1796083200.5, "user_id": "u\"1", "path": "/a", "status": 429, "cost": 3, "extra": [1]}"#)
            .unwrap()
            .unwrap();
        assert_eq!(f.time, Some(1_796_083_200_500_000_000));
        assert_eq!(f.identity.as_deref(), Some("u\"1"));
        assert_eq!((f.status, f.cost), (Some(429), Some(3)));
        assert!(r.read("[1,2]").is_err());
        assert!(r.read(r#"{"time": "soon"}"#).is_err());
    }
}
