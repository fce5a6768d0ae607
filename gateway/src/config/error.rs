//! How a configuration mistake is shown: where the TOML parser saw it (file, line,
//! column, from the parser's own span), the key, what is wrong, and the offending line
//! underlined (rendered by `annotate-snippets`).

use std::ops::Range;
use std::path::{Path, PathBuf};

use annotate_snippets::{Level, Renderer, Snippet};
use gateway_contract::config::FileError;

/// A configuration error, located: `file:line:column: key: message`, then the line
/// at fault with the value underlined; a file that could not be read says only
/// `file: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.located())]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// 1-based line of the offending key (0 when the file could not be read).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The key at fault, with its table (`route[2].capacity`).
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// The source excerpt with the span underlined (empty when there is no source),
    /// starting with a newline.
    pub excerpt: String,
}

impl ConfigError {
    /// The error as shown: located in the file, or the file alone when it could not be
    /// read (there is no line to point at).
    fn located(&self) -> String {
        let file = self.file.display();
        if self.line == 0 {
            format!("{file}: {}", self.message)
        } else {
            let (line, column, key) = (self.line, self.column, &self.key);
            format!(
                "{file}:{line}:{column}: {key}: {}{}",
                self.message, self.excerpt
            )
        }
    }

    /// A file that could not be read at all.
    pub(crate) fn unreadable(file: &Path, message: &str) -> Self {
        Self {
            file: file.to_owned(),
            line: 0,
            column: 0,
            key: "(file)".to_owned(),
            message: message.to_owned(),
            excerpt: String::new(),
        }
    }

    /// An error at byte range `span` of `src` (the parser's span of the value or key).
    pub(crate) fn at(file: &Path, src: &str, span: Range<usize>, key: &str, message: &str) -> Self {
        let span = clamp(src, span);
        let before = &src[..span.start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Self {
            file: file.to_owned(),
            line,
            column,
            key: if key.is_empty() { "(file)" } else { key }.to_owned(),
            message: message.to_owned(),
            excerpt: excerpt(file, src, span, message),
        }
    }

    /// The parser's own error: its span and the key path it was reading.
    pub(crate) fn from_file_error(file: &Path, src: &str, e: FileError) -> Self {
        Self::at(file, src, e.span.unwrap_or(0..0), &e.key, &e.message)
    }
}

/// `span` within `src`, on character boundaries, at least one character wide when
/// there is one to underline.
fn clamp(src: &str, span: Range<usize>) -> Range<usize> {
    let floor = |mut i: usize| {
        i = i.min(src.len());
        while !src.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = floor(span.start);
    let mut end = floor(span.end.max(start));
    if end == start {
        end = src[start..]
            .chars()
            .next()
            .filter(|c| *c != '\n')
            .map_or(start, |c| start + c.len_utf8());
    }
    start..end
}

/// The lines around `span`, underlined with `label`, without the title line.
fn excerpt(file: &Path, src: &str, span: Range<usize>, label: &str) -> String {
    if src.is_empty() {
        return String::new();
    }
    let origin = file.display().to_string();
    let message = Level::Error.title(label).snippet(
        Snippet::source(src)
            .line_start(1)
            .origin(&origin)
            .fold(true)
            .annotation(Level::Error.span(span).label(label)),
    );
    let rendered = Renderer::plain().render(message).to_string();
    match rendered.split_once('\n') {
        Some((_title, rest)) => format!("\n{rest}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_excerpt_underlines_the_value() {
        let src = "[store]\nkind = \"memory\"\ncolour = 3\n";
        let e = ConfigError::at(
            Path::new("gw.toml"),
            src,
            24..30,
            "store.colour",
            "unknown field",
        );
        assert_eq!((e.line, e.column), (3, 1));
        let text = e.to_string();
        assert!(
            text.starts_with("gw.toml:3:1: store.colour: unknown field\n"),
            "{text}"
        );
        assert!(text.contains("3 | colour = 3"), "{text}");
        assert!(text.contains("^^^^^^"), "{text}");
        let missing = ConfigError::unreadable(Path::new("gone.toml"), "cannot read: no such file");
        assert_eq!(missing.to_string(), "gone.toml: cannot read: no such file");
        // Spans past the end or inside a character are clamped, never a panic.
        let e = ConfigError::at(Path::new("x"), "é", 1..9, "k", "m");
        assert_eq!((e.line, e.column), (1, 1));
    }
}
