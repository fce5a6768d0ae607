//! Unix day counts to calendar dates: the access log the gateway writes and the trace
//! reader that reads it back (and writes generated logs) spell times the same way.

/// The proleptic Gregorian date `(year, month 1–12, day 1–31)` of a day count since
/// 1970-01-01 (H. Hinnant's `civil_from_days`), for any day count, negative included.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // doy is 0..=365 and mp 0..=11, so day and month fit in a u32.
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn known_days_give_their_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_788), (2026, 12, 1));
    }

    #[test]
    fn consecutive_days_advance_the_date_by_one() {
        let mut last = civil_from_days(-800_000);
        for day in -799_999..800_000 {
            let next = civil_from_days(day);
            let (y, m, d) = last;
            let follows = next == (y, m, d + 1)
                || (next == (y, m + 1, 1) && m < 12)
                || (next == (y + 1, 1, 1) && (m, d) == (12, 31));
            assert!(follows, "{last:?} then {next:?} at day {day}");
            assert!(next.2 <= 31);
            last = next;
        }
    }
}
