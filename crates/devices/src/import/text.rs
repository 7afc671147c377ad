//! Small, allocation-free field parsers shared by the importers: numbers with a decimal point
//! or comma, dates in the orders exports use, clock times, `h:mm:ss` durations; and the
//! validation limits documented in the module docs.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use std::borrow::Cow;
use std::ops::RangeInclusive;

/// Trims ASCII whitespace (and a stray NUL) from both ends.
#[inline]
pub(crate) fn trim(b: &[u8]) -> &[u8] {
    let mut s = 0;
    let mut e = b.len();
    while s < e && (b[s].is_ascii_whitespace() || b[s] == 0) {
        s += 1;
    }
    while e > s && (b[e - 1].is_ascii_whitespace() || b[e - 1] == 0) {
        e -= 1;
    }
    &b[s..e]
}

/// A field as text: UTF-8 when it is, Windows-1252 otherwise (older European exports).
pub(crate) fn text(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => encoding_rs::WINDOWS_1252.decode_without_bom_handling(b).0,
    }
}

/// Owned, trimmed text of a field, capped to `max` characters.
pub(crate) fn owned(b: &[u8], max: usize) -> String {
    let t = text(trim(b));
    if t.chars().count() > max { t.chars().take(max).collect() } else { t.into_owned() }
}

/// A short quoted excerpt of a field for messages.
pub(crate) fn show(b: &[u8]) -> String {
    format!("{:?}", owned(b, 40))
}

/// A decimal number: optional sign, digits, at most one `.` or `,` as the decimal separator.
/// No exponent, no thousands separators, no `inf`/`nan`.
pub(crate) fn num(b: &[u8]) -> Option<f64> {
    let b = trim(b);
    if b.is_empty() || b.len() > 40 {
        return None;
    }
    let mut buf = [0u8; 40];
    let mut sep = false;
    let mut digits = 0;
    for (i, &c) in b.iter().enumerate() {
        buf[i] = match c {
            b'0'..=b'9' => {
                digits += 1;
                c
            }
            b'.' | b',' if !sep => {
                sep = true;
                b'.'
            }
            b'+' | b'-' if i == 0 => c,
            _ => return None,
        };
    }
    if digits == 0 {
        return None;
    }
    std::str::from_utf8(&buf[..b.len()]).ok()?.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Day/month order of numeric dates whose year is last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DateOrder {
    /// `M/D/Y` (US)
    Mdy,
    /// `D/M/Y` (most of the world)
    Dmy,
}

/// The three numeric parts of a date `a?b?c` (separators `/`, `-`, `.`), with their digit counts.
pub(crate) fn date_parts(b: &[u8]) -> Option<([u32; 3], [usize; 3])> {
    let mut parts = [0u32; 3];
    let mut lens = [0usize; 3];
    let mut k = 0;
    for &c in b {
        match c {
            b'0'..=b'9' => {
                if lens[k] >= 4 {
                    return None;
                }
                parts[k] = parts[k] * 10 + u32::from(c - b'0');
                lens[k] += 1;
            }
            b'/' | b'-' | b'.' => {
                if lens[k] == 0 || k == 2 {
                    return None;
                }
                k += 1;
            }
            _ => return None,
        }
    }
    if k != 2 || lens[2] == 0 {
        return None;
    }
    Some((parts, lens))
}

fn full_year(y: u32, len: usize) -> Option<i32> {
    match len {
        4 => Some(y as i32),
        2 => Some(if y < 70 { 2000 + y as i32 } else { 1900 + y as i32 }),
        _ => None,
    }
}

/// A date: `YYYY?MM?DD`, or day and month in `order` followed by a 2- or 4-digit year.
pub(crate) fn date(b: &[u8], order: DateOrder) -> Option<NaiveDate> {
    let (p, l) = date_parts(trim(b))?;
    if l[0] == 4 {
        return NaiveDate::from_ymd_opt(p[0] as i32, p[1], p[2]);
    }
    if l[0] > 2 || l[1] > 2 {
        return None;
    }
    let y = full_year(p[2], l[2])?;
    let (m, d) = match order {
        DateOrder::Mdy => (p[0], p[1]),
        DateOrder::Dmy => (p[1], p[0]),
    };
    NaiveDate::from_ymd_opt(y, m, d)
}

/// A clock time `H:MM`, `H:MM:SS` or `H:MM:SS.fff`, optionally followed by `AM`/`PM`.
/// Fractions of a second are dropped.
pub(crate) fn time(b: &[u8]) -> Option<NaiveTime> {
    let b = trim(b);
    let (b, ampm) = split_ampm(b);
    let mut parts = [0u32; 3];
    let mut lens = [0usize; 3];
    let mut k = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'0'..=b'9' => {
                if lens[k] >= 2 {
                    return None;
                }
                parts[k] = parts[k] * 10 + u32::from(c - b'0');
                lens[k] += 1;
            }
            b':' => {
                if lens[k] == 0 || k == 2 {
                    return None;
                }
                k += 1;
            }
            b'.' if k == 2 && lens[2] > 0 => {
                // fraction: digits only
                if !b[i + 1..].iter().all(u8::is_ascii_digit) {
                    return None;
                }
                break;
            }
            _ => return None,
        }
        i += 1;
    }
    if k == 0 || lens[k] == 0 || lens[1] != 2 || (k == 2 && lens[2] != 2) {
        return None;
    }
    let mut h = parts[0];
    if let Some(pm) = ampm {
        if h == 0 || h > 12 {
            return None;
        }
        h = match (pm, h) {
            (false, 12) => 0,
            (true, 12) => 12,
            (true, h) => h + 12,
            (false, h) => h,
        };
    }
    NaiveTime::from_hms_opt(h, parts[1], parts[2])
}

fn split_ampm(b: &[u8]) -> (&[u8], Option<bool>) {
    if b.len() >= 2 {
        let tail = &b[b.len() - 2..];
        let pm = if tail.eq_ignore_ascii_case(b"PM") {
            Some(true)
        } else if tail.eq_ignore_ascii_case(b"AM") {
            Some(false)
        } else {
            None
        };
        if pm.is_some() {
            return (trim(&b[..b.len() - 2]), pm);
        }
    }
    (b, None)
}

/// `date time` or `dateTtime` (a trailing `Z` is ignored).
pub(crate) fn datetime(b: &[u8], order: DateOrder) -> Option<NaiveDateTime> {
    let b = trim(b);
    let b = b.strip_suffix(b"Z").unwrap_or(b);
    let split = b.iter().position(|&c| c == b' ' || c == b'T')?;
    let d = date(&b[..split], order)?;
    let t = time(&b[split + 1..])?;
    Some(NaiveDateTime::new(d, t))
}

/// A duration `h:mm:ss` or `h:mm` in whole minutes (seconds rounded).
pub(crate) fn hms_minutes(b: &[u8]) -> Option<f64> {
    let b = trim(b);
    let mut parts = [0u64; 3];
    let mut k = 0;
    let mut len = 0;
    for &c in b {
        match c {
            b'0'..=b'9' => {
                len += 1;
                if len > 6 {
                    return None;
                }
                parts[k] = parts[k] * 10 + u64::from(c - b'0');
            }
            b':' => {
                if len == 0 || k == 2 {
                    return None;
                }
                k += 1;
                len = 0;
            }
            _ => return None,
        }
    }
    if k == 0 || len == 0 {
        return None;
    }
    let secs = if k == 2 { parts[0] * 3600 + parts[1] * 60 + parts[2] } else { parts[0] * 3600 + parts[1] * 60 };
    Some(secs as f64 / 60.0)
}

/// The trailing number in parentheses of an alarm text: `"No Delivery (4)"` → 4; or the number
/// after a final `:`: `"Other Alarm Code: 1003"` → 1003.
pub(crate) fn alarm_code(s: &str) -> Option<u32> {
    let s = s.trim();
    if let Some(inner) = s.strip_suffix(')').and_then(|x| x.rsplit_once('(')).map(|(_, c)| c) {
        return inner.trim().parse().ok();
    }
    s.rsplit_once(':').and_then(|(_, c)| c.trim().parse().ok())
}

// ---------------------------------------------------------------------------------------------
// Validation limits (documented in the module docs).

pub(crate) const CGM_MG_DL: RangeInclusive<f64> = 20.0..=600.0;
pub(crate) const BG_MG_DL: RangeInclusive<f64> = 20.0..=600.0;
pub(crate) const INSULIN_U: RangeInclusive<f64> = 0.0..=100.0;
pub(crate) const ESTIMATE_U: RangeInclusive<f64> = -100.0..=100.0;
pub(crate) const RATE_U_H: RangeInclusive<f64> = 0.0..=35.0;
pub(crate) const PERCENT: RangeInclusive<f64> = 0.0..=200.0;
pub(crate) const DURATION_MIN: RangeInclusive<f64> = 0.0..=1440.0;
pub(crate) const CARBS_G: RangeInclusive<f64> = 0.0..=500.0;
pub(crate) const DAILY_TOTAL_U: RangeInclusive<f64> = 0.0..=500.0;
pub(crate) const CARB_RATIO_G_U: RangeInclusive<f64> = 0.1..=500.0;
pub(crate) const ISF_MG_DL_U: RangeInclusive<f64> = 1.0..=1000.0;

/// Checks `v` against `range`; the error says what the limit is.
pub(crate) fn within(v: f64, range: &RangeInclusive<f64>, unit: &str) -> Result<f64, String> {
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} {unit} is outside the accepted {}–{} {unit}", range.start(), range.end()))
    }
}

/// Parses a number field and checks it.
pub(crate) fn number_in(b: &[u8], range: &RangeInclusive<f64>, unit: &str) -> Result<f64, String> {
    let v = num(b).ok_or_else(|| format!("{} is not a number", show(b)))?;
    within(v, range, unit)
}

/// A glucose field in mg/dL or mmol/L, as whole mg/dL within `range`.
pub(crate) fn glucose_in(b: &[u8], mmol: bool, range: &RangeInclusive<f64>) -> Result<u16, String> {
    let v = num(b).ok_or_else(|| format!("{} is not a number", show(b)))?;
    glucose_value(v, mmol, range)
}

pub(crate) fn glucose_value(v: f64, mmol: bool, range: &RangeInclusive<f64>) -> Result<u16, String> {
    let mg = if mmol { v * therapy::units::MG_DL_PER_MMOL_L } else { v };
    let mg = mg.round();
    if range.contains(&mg) {
        Ok(mg as u16)
    } else if mmol {
        Err(format!("{v} mmol/L ({mg} mg/dL) is outside the accepted {}–{} mg/dL", range.start(), range.end()))
    } else {
        Err(format!("{v} mg/dL is outside the accepted {}–{} mg/dL", range.start(), range.end()))
    }
}

/// Rounds to 1e-6 (undoes binary noise from sums and unit conversions).
pub(crate) fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(num(b"1,5"), Some(1.5));
        assert_eq!(num(b" 27,00 "), Some(27.0));
        assert_eq!(num(b"-0.05"), Some(-0.05));
        assert_eq!(num(b"1,00000"), Some(1.0));
        assert_eq!(num(b"1.2.3"), None);
        assert_eq!(num(b"inf"), None);
        assert_eq!(num(b"NaN"), None);
        assert_eq!(num(b"-"), None);
        assert_eq!(num(b""), None);
    }

    #[test]
    fn dates_and_times() {
        let d = |s: &str, o| date(s.as_bytes(), o).map(|d| d.to_string());
        assert_eq!(d("4/1/15", DateOrder::Mdy).as_deref(), Some("2015-04-01"));
        assert_eq!(d("2021/07/25", DateOrder::Mdy).as_deref(), Some("2021-07-25"));
        assert_eq!(d("12-04-1961", DateOrder::Dmy).as_deref(), Some("1961-04-12"));
        assert_eq!(d("13/13/15", DateOrder::Mdy), None);
        assert_eq!(time(b"18:05").map(|t| t.to_string()).as_deref(), Some("18:05:00"));
        assert_eq!(time(b"6:36 PM").map(|t| t.to_string()).as_deref(), Some("18:36:00"));
        assert_eq!(time(b"12:10 AM").map(|t| t.to_string()).as_deref(), Some("00:10:00"));
        assert_eq!(time(b"00:29:03.250").map(|t| t.to_string()).as_deref(), Some("00:29:03"));
        assert_eq!(time(b"25:00"), None);
        assert_eq!(
            datetime(b"1961-04-12T00:56:47", DateOrder::Mdy).map(|t| t.to_string()).as_deref(),
            Some("1961-04-12 00:56:47")
        );
        assert_eq!(hms_minutes(b"02:00:00"), Some(120.0));
        assert_eq!(hms_minutes(b"0:30:00"), Some(30.0));
        assert_eq!(alarm_code("Sensor Alert: Meter BG Now (104)"), Some(104));
        assert_eq!(alarm_code("Other Alarm Code: 1003"), Some(1003));
        assert_eq!(alarm_code("LOW SG"), None);
    }
}
