//! Exit codes, one meaning each, and the error type that carries the "your mistake"
//! one through `anyhow`.
//!
//! The guarantee: a mistake in what the user asked for — a flag, a workload or config
//! file, a directory that is not there — exits 2 whether clap caught it while parsing or
//! a command caught it after; a failure of the run itself (a port taken, a server that
//! went away) exits 1; a run that ended early or lost requests exits 3 with its results
//! written and marked incomplete.

use std::fmt;
use std::process::ExitCode;

/// The run failed (exit status 1).
pub const FAILURE: u8 = 1;
/// A usage or configuration mistake (exit status 2, as clap's own usage errors).
pub const USAGE: u8 = 2;
/// The run ended early or lost requests; its results are kept and marked (exit status 3).
pub const INCOMPLETE: u8 = 3;

/// The exit codes as `--help` states them.
pub const HELP: &str = "\
Exit status:
  0  success
  1  the run failed (a port in use, a store or target that went away...)
  2  a usage or configuration mistake (flags, workload or config files, paths)
  3  the run was incomplete: results are written and marked incomplete";

/// A mistake in what the user asked for: the command line, a workload or config file,
/// a path. Exits [`USAGE`].
#[derive(Debug)]
pub struct Usage(anyhow::Error);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&message(&self.0))
    }
}

impl std::error::Error for Usage {}

/// Marks an error as the user's mistake (exit status 2).
pub fn usage(err: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(Usage(err.into()))
}

/// `bail!` for the user's mistakes: returns a [`Usage`] error made from a format string.
macro_rules! usage_bail {
    ($($arg:tt)*) => {
        return Err($crate::exit::usage(anyhow::anyhow!($($arg)*)))
    };
}
pub(crate) use usage_bail;

/// Marks a result's error as the user's mistake (exit status 2).
pub trait UsageContext<T> {
    /// The error, if any, becomes a [`Usage`] error.
    fn usage(self) -> anyhow::Result<T>;
    /// The error, if any, becomes a [`Usage`] error, prefixed with `context`.
    fn usage_context(self, context: impl fmt::Display) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> UsageContext<T> for Result<T, E> {
    fn usage(self) -> anyhow::Result<T> {
        self.map_err(usage)
    }

    fn usage_context(self, context: impl fmt::Display) -> anyhow::Result<T> {
        self.map_err(|e| usage(e.into().context(context.to_string())))
    }
}

/// The exit code for `err`: [`USAGE`] when it (or what it wraps) is a [`Usage`] error,
/// else [`FAILURE`].
pub fn code_of(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<Usage>()) {
        USAGE
    } else {
        FAILURE
    }
}

/// `err` with its causes, each said once: a cause whose text its parent already ends
/// with (an I/O error that a path error prints, then reports again as its source) is
/// not repeated.
pub fn message(err: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut previous = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !previous.is_empty() && (previous.contains(&text) || text.is_empty()) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
        previous = text;
    }
    out
}

/// Prints `err` on stderr and returns its exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    eprintln!("error: {}", message(err));
    ExitCode::from(code_of(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_exit_2_through_context_and_others_exit_1() {
        let e = usage(anyhow::anyhow!("--threads must be at least 1"));
        assert_eq!(code_of(&e), USAGE);
        let wrapped = e.context("starting");
        assert_eq!(code_of(&wrapped), USAGE, "context keeps the mark");
        assert_eq!(message(&wrapped), "starting: --threads must be at least 1");
        let r: Result<(), std::io::Error> = Err(std::io::Error::other("gone"));
        assert_eq!(code_of(&r.usage_context("reading x").unwrap_err()), USAGE);
        assert_eq!(code_of(&anyhow::anyhow!("port in use")), FAILURE);
    }

    #[test]
    fn a_cause_already_said_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(io)
            .context("x/results.json: no such file")
            .context("reading results");
        assert_eq!(message(&e), "reading results: x/results.json: no such file");
    }
}
