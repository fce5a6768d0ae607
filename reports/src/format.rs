//! How numbers read in tables and reports: thousands separated (`1,234,567`, by
//! `num-format`), durations compact (`250ms`, `5m`), deviations signed with their share.
//! One home, so the terminal, Markdown and plots write a figure the same way.

use num_format::{Locale, ToFormattedString};

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    n.to_formatted_string(&Locale::en)
}

/// A rate per second: whole and separated from 100 up (`20,346`), one decimal below
/// (`12.5`).
pub fn rate(r: f64) -> String {
    if r >= 100.0 {
        thousands(r.round() as u64)
    } else {
        format!("{r:.1}")
    }
}

/// Seconds as a compact duration: `60s`, `1.5s`, `250ms`, `5m`, `1h`.
pub fn seconds(s: f64) -> String {
    let trim = |v: f64| {
        let t = format!("{v:.3}");
        t.trim_end_matches('0').trim_end_matches('.').to_owned()
    };
    if s >= 3600.0 && (s / 3600.0).fract() == 0.0 {
        format!("{}h", trim(s / 3600.0))
    } else if s >= 120.0 && (s / 60.0).fract() == 0.0 {
        format!("{}m", trim(s / 60.0))
    } else if s >= 1.0 || s == 0.0 {
        format!("{}s", trim(s))
    } else if s >= 1e-3 {
        format!("{}ms", trim(s * 1e3))
    } else {
        format!("{}µs", trim(s * 1e6))
    }
}

/// Microseconds as milliseconds with two decimals (`2.10`).
pub fn ms(us: f64) -> String {
    format!("{:.2}", us / 1000.0)
}

/// Microseconds as milliseconds to about three significant digits: `123`, `12.3`,
/// `1.23` (the benchmark report's latency cells).
pub fn ms_compact(us: f64) -> String {
    let v = us / 1000.0;
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Signed count of over- or under-admission, with its share of the reference:
/// `+8 (47.1%)`, `0`, `−3 (0.2%)`.
pub fn deviation(count: u64, of: u64, sign: char) -> String {
    if count == 0 {
        "0".to_owned()
    } else if of == 0 {
        format!("{sign}{}", thousands(count))
    } else {
        format!(
            "{sign}{} ({:.1}%)",
            thousands(count),
            count as f64 * 100.0 / of as f64
        )
    }
}

/// A multiple: `1.80×`.
pub fn ratio(x: f64) -> String {
    format!("{x:.2}×")
}

/// An envelope excess: `0`, `<0.01`, `10`, `0.50`.
pub fn excess(x: f64) -> String {
    if x == 0.0 {
        "0".to_owned()
    } else if x < 0.01 {
        "<0.01".to_owned()
    } else if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// The share of users wronged (throttled while within their policy) as a percentage:
/// `0%`, `12.5%`, `<0.1%`; `–` when there is none.
pub fn wronged(f: Option<f64>) -> String {
    match f {
        None => "–".to_owned(),
        Some(0.0) => "0%".to_owned(),
        Some(f) if f < 0.001 => "<0.1%".to_owned(),
        Some(f) => {
            let t = format!("{:.1}", f * 100.0);
            format!("{}%", t.trim_end_matches(".0"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written separator this replaced, kept as the oracle for `thousands`.
    fn thousands_by_hand(n: u64) -> String {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(ch);
        }
        out
    }

    #[test]
    fn numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        for n in [1, 12, 123_456, 9_999_999, 10_000_000, u64::MAX] {
            assert_eq!(thousands(n), thousands_by_hand(n));
        }
        assert_eq!(rate(20_345.67), "20,346");
        assert_eq!(rate(12.46), "12.5");
        assert_eq!(seconds(60.0), "60s");
        assert_eq!(seconds(300.0), "5m");
        assert_eq!(seconds(0.25), "250ms");
        assert_eq!(seconds(1.5), "1.5s");
        assert_eq!(seconds(3600.0), "1h");
        assert_eq!(ms(2100.0), "2.10");
        assert_eq!(ms_compact(1234.0), "1.23");
        assert_eq!(ms_compact(12_345.0), "12.3");
        assert_eq!(ms_compact(123_456.0), "123");
        assert_eq!(deviation(8, 17, '+'), "+8 (47.1%)");
        assert_eq!(deviation(0, 17, '+'), "0");
        assert_eq!(deviation(1_500, 0, '−'), "−1,500");
        assert_eq!(excess(0.5), "0.50");
        assert_eq!(excess(10.0), "10");
        assert_eq!(excess(0.001), "<0.01");
        assert_eq!(ratio(1.8), "1.80×");
        assert_eq!(wronged(None), "–");
        assert_eq!(wronged(Some(0.0)), "0%");
        assert_eq!(wronged(Some(0.125)), "12.5%");
        assert_eq!(wronged(Some(0.5)), "50%");
        assert_eq!(wronged(Some(0.0004)), "<0.1%");
    }
}
