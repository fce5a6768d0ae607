//! The one duration syntax of gateway configs, workload files and the command line:
//! whole numbers with units, parsed by `humantime` — `"250ms"`, `"60s"`, `"1m30s"`,
//! `"1h"`, `"1d"`, `"500us"`, `"10ns"`.
//!
//! The guarantee: [`format()`] writes every duration so that [`parse`] reads back the
//! very same duration, to the nanosecond (the load driver writes scaled workloads and
//! routes that must mean exactly what was played).

use std::time::Duration;

/// A string that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration ({reason}); write e.g. \"250ms\", \"60s\", \"1m30s\", \"1d\"")]
pub struct DurationError {
    /// The text as given.
    pub text: String,
    /// What the parser said.
    pub reason: String,
}

/// Parses a duration: whole numbers, each with a unit (`ns`, `us`, `ms`, `s`, `m`,
/// `h`, `d`, `w` and their long forms), possibly several (`"1m30s"`, `"1h 5m"`).
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    humantime::parse_duration(text.trim()).map_err(|e| DurationError {
        text: text.to_owned(),
        reason: e.to_string(),
    })
}

/// Parses a duration into nanoseconds, refusing ones longer than `max`.
pub fn parse_nanos(text: &str, max: Duration) -> Result<u64, DurationError> {
    let d = parse(text)?;
    if d > max {
        return Err(DurationError {
            text: text.to_owned(),
            reason: format!("longer than {}", format(max)),
        });
    }
    u64::try_from(d.as_nanos()).map_err(|_| DurationError {
        text: text.to_owned(),
        reason: "too long".to_owned(),
    })
}

/// Writes a duration so that [`parse`] reads it back exactly (`"1m 30s"`, `"6s"`,
/// `"1s 500ms"`, `"0s"`).
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// [`format()`] of a number of nanoseconds.
pub fn format_nanos(n: u64) -> String {
    format(Duration::from_nanos(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_design_words_parse() {
        let s = Duration::from_secs;
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("60s"), Ok(s(60)));
        assert_eq!(parse("1m30s"), Ok(s(90)));
        assert_eq!(parse("1h"), Ok(s(3600)));
        assert_eq!(parse("1d"), Ok(s(86_400)));
        assert_eq!(parse("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        for bad in ["5", "s", "-1s", "1e400s", "5 fortnights", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let e = parse("10 parsecs").unwrap_err().to_string();
        assert!(
            e.contains("\"10 parsecs\" is not a duration") && e.contains("unit"),
            "{e}"
        );
    }

    #[test]
    fn format_round_trips_to_the_nanosecond() {
        for n in [
            0,
            1,
            999,
            1_500_000_000,
            6_000_000_000,
            86_400_000_000_123,
            4_200_003_007,
        ] {
            let d = Duration::from_nanos(n);
            assert_eq!(parse(&format(d)), Ok(d), "{}", format(d));
        }
        assert_eq!(format(Duration::from_secs(6)), "6s");
        assert!(parse_nanos("2s", Duration::from_secs(1)).is_err());
        assert_eq!(parse_nanos("1s", Duration::from_secs(1)), Ok(1_000_000_000));
    }
}
