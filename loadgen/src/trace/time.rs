//! Timestamps as web servers write them, to nanoseconds since the Unix epoch (UTC).
//!
//! Accepted: the common log format's `10/Oct/2000:13:55:36 -0700` (nginx
//! `$time_local`, Apache `%t`, with or without the brackets), RFC 3339 / ISO 8601
//! `2000-10-10T13:55:36-07:00` (nginx `$time_iso8601`; `Z`, a space instead of `T`, and
//! a fraction of up to nine digits too), and seconds since the epoch with an optional
//! fraction (nginx `$msec`, `1700000000.123`). The zone is always applied: two lines
//! written in different zones land on one time line. Dates before 1970 are refused.

use limiter_core::Nanos;

const NANOS: i64 = 1_000_000_000;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Nanoseconds since the epoch of any accepted form, or why not.
pub fn parse(s: &str) -> Result<Nanos, String> {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    let b = s.as_bytes();
    let out = if b.len() >= 20 && b.get(2) == Some(&b'/') {
        clf(b)
    } else if b.len() >= 19 && b.get(4) == Some(&b'-') {
        iso(b)
    } else if !b.is_empty() && b.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
        epoch(s)
    } else {
        None
    };
    out.ok_or_else(|| format!("unreadable time {s:?}"))
}

/// The last time text read and its value: consecutive lines of a log mostly share
/// their second, so most lines cost one comparison instead of a parse.
#[derive(Debug, Default, Clone)]
pub(crate) struct Cache {
    text: Vec<u8>,
    value: Nanos,
}

impl Cache {
    /// [`parse`], remembering the last text and its value.
    pub(crate) fn parse(&mut self, s: &str) -> Result<Nanos, String> {
        if !self.text.is_empty() && self.text == s.as_bytes() {
            return Ok(self.value);
        }
        let value = parse(s)?;
        self.text.clear();
        self.text.extend_from_slice(s.as_bytes());
        self.value = value;
        Ok(value)
    }
}

/// Nanoseconds of a day count and a time of day, in a zone `offset` seconds east.
fn at(days: i64, secs: i64, frac: i64, offset: i64) -> Option<Nanos> {
    let t = (days * 86_400 + secs - offset).checked_mul(NANOS)?;
    u64::try_from(t.checked_add(frac)?).ok()
}

/// `10/Oct/2000:13:55:36 -0700`.
fn clf(b: &[u8]) -> Option<Nanos> {
    let day = digits(b, 0, 2)?;
    let name = b.get(3..6)?;
    let month = MONTHS.iter().position(|m| m.as_bytes() == name)? as i64 + 1;
    let year = digits(b, 7, 4)?;
    if b[6] != b'/' || b[11] != b':' || b[14] != b':' || b[17] != b':' {
        return None;
    }
    let secs = clock(b, 12)?;
    let offset = zone(b.get(20..)?.trim_ascii())?;
    at(civil_days(year, month, day)?, secs, 0, offset)
}

/// `2000-10-10T13:55:36.123-07:00`.
fn iso(b: &[u8]) -> Option<Nanos> {
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let secs = clock(b, 11)?;
    let mut rest = &b[19..];
    let mut frac = 0i64;
    if let Some((b'.', tail)) = rest.split_first() {
        let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        frac = ascii_int(&tail[..n])? * 10i64.pow(9 - n as u32);
        rest = &tail[n..];
    }
    let offset = zone(rest)?;
    at(civil_days(year, month, day)?, secs, frac, offset)
}

/// `1700000000` or `1700000000.123`.
fn epoch(s: &str) -> Option<Nanos> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || frac.len() > 9 {
        return None;
    }
    let secs = ascii_int(whole.as_bytes())?;
    let f = if frac.is_empty() {
        0
    } else {
        ascii_int(frac.as_bytes())? * 10i64.pow(9 - frac.len() as u32)
    };
    at(0, secs, f, 0)
}

/// `Z`, `+07:00`, `-0700`: seconds east of UTC.
fn zone(b: &[u8]) -> Option<i64> {
    if b == b"Z" || b == b"z" {
        return Some(0);
    }
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = match b.len() {
        6 if b[3] == b':' => (digits(b, 1, 2)?, digits(b, 4, 2)?),
        5 => (digits(b, 1, 2)?, digits(b, 3, 2)?),
        _ => return None,
    };
    (h < 24 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

/// `HH:MM:SS` at `b[i..]` as seconds of the day (a leap second reads as :59).
fn clock(b: &[u8], i: usize) -> Option<i64> {
    let (h, m, s) = (digits(b, i, 2)?, digits(b, i + 3, 2)?, digits(b, i + 6, 2)?);
    (h < 24 && m < 60 && s <= 60).then_some(h * 3600 + m * 60 + s.min(59))
}

fn digits(b: &[u8], i: usize, n: usize) -> Option<i64> {
    ascii_int(b.get(i..i + n)?)
}

fn ascii_int(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 18 {
        return None;
    }
    b.iter().try_fold(0i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm), or
/// `None` for an impossible date.
fn civil_days(y: i64, m: i64, d: i64) -> Option<i64> {
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn split(t: Nanos) -> (i64, i64, u64) {
    let secs = (t / NANOS as u64) as i64;
    (
        secs.div_euclid(86_400),
        secs.rem_euclid(86_400),
        t % NANOS as u64,
    )
}

/// UTC midnight at or before `t`.
pub fn midnight(t: Nanos) -> Nanos {
    t - t % (86_400 * NANOS as u64)
}

/// RFC 3339 in UTC with nanoseconds: `2026-12-01T10:00:00.000000001Z`.
pub fn rfc3339(t: Nanos) -> String {
    let (days, secs, frac) = split(t);
    let (y, m, d) = gateway_contract::calendar::civil_from_days(days);
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:09}Z")
}

/// The common log format's time in UTC, without brackets: `01/Dec/2026:10:00:00 +0000`
/// (whole seconds, as servers write it).
pub fn clf_utc(t: Nanos) -> String {
    let (days, secs, _) = split(t);
    let (y, m, d) = gateway_contract::calendar::civil_from_days(days);
    let month = MONTHS[(m - 1) as usize];
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("{d:02}/{month}/{y:04}:{h:02}:{mi:02}:{s:02} +0000")
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = NANOS as u64;

    #[test]
    fn every_form_of_one_instant() {
        // 2000-10-10T20:55:36Z = 971211336.
        let t = 971_211_336 * S;
        assert_eq!(parse("10/Oct/2000:13:55:36 -0700"), Ok(t));
        assert_eq!(parse("[10/Oct/2000:13:55:36 -0700]"), Ok(t));
        assert_eq!(parse("10/Oct/2000:20:55:36 +0000"), Ok(t));
        assert_eq!(parse("2000-10-10T13:55:36-07:00"), Ok(t));
        assert_eq!(parse("2000-10-10T20:55:36Z"), Ok(t));
        assert_eq!(parse("2000-10-10 22:55:36+0200"), Ok(t));
        assert_eq!(parse("2000-10-10T20:55:36.5Z"), Ok(t + S / 2));
        assert_eq!(parse("2000-10-10T20:55:36.000000007Z"), Ok(t + 7));
        assert_eq!(parse("971211336"), Ok(t));
        assert_eq!(parse("971211336.123"), Ok(t + 123_000_000));
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "yesterday",
            "31/Feb/2000:00:00:00 +0000",
            "10/Oct/2000:25:00:00 +0000",
            "10/Foo/2000:13:55:36 -0700",
            "10/Oct/2000:13:55:36",
            "2000-10-10T13:55:36",
            "2000-13-10T13:55:36Z",
            "2000-10-10T13:55:36.Z",
            "1969-12-31T23:59:59Z",
            "1.2.3",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn the_cache_answers_as_parse_does() {
        let mut cache = Cache::default();
        for text in [
            "10/Oct/2000:13:55:36 -0700",
            "10/Oct/2000:13:55:36 -0700",
            "10/Oct/2000:13:55:37 -0700",
            "10/Oct/2000:13:55:37 +0000",
            "971211336.5",
        ] {
            assert_eq!(cache.parse(text), parse(text), "{text}");
        }
        assert!(cache.parse("yesterday").is_err());
        assert_eq!(cache.parse("971211336.5"), parse("971211336.5"));
    }

    #[test]
    fn writes_what_it_reads() {
        for t in [0, 971_211_336 * S + 42, 1_796_083_200 * S + 999_999_999] {
            assert_eq!(parse(&rfc3339(t)), Ok(t));
            assert_eq!(parse(&clf_utc(t)), Ok(t - t % S));
        }
        assert_eq!(rfc3339(1_796_083_200 * S), "2026-12-01T00:00:00.000000000Z");
        assert_eq!(clf_utc(1_796_083_200 * S), "01/Dec/2026:00:00:00 +0000");
        assert_eq!(midnight(1_796_083_200 * S + 5 * S), 1_796_083_200 * S);
    }
}
