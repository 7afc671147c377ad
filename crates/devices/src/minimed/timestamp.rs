//! The packed date formats of MiniMed records. Every field is a few low bits of a byte; the
//! month is spread over the spare high bits of two others. Nothing here validates beyond the
//! calendar: an impossible date (month 0, 31 February, …) is `None`, never a panic.

use chrono::{NaiveDate, NaiveDateTime};

/// The 5-byte pump-history timestamp (decocare `parse_date`, MinimedKit
/// `DateComponents(pumpEventBytes:)`), pump-local wall time:
///
/// | byte | bits |
/// |---|---|
/// | 0 | `mm ssssss`: month bits 3–2, seconds |
/// | 1 | `mm nnnnnn`: month bits 1–0, minutes |
/// | 2 | `xxx hhhhh`: hours (the top bits belong to the record: bolus type, BG high bits, …) |
/// | 3 | `xxx ddddd`: day of month |
/// | 4 | `x yyyyyyy`: year − 2000 (the top bit belongs to the record) |
pub fn pump_datetime(b: [u8; 5]) -> Option<NaiveDateTime> {
    let second = u32::from(b[0] & 0x3F);
    let minute = u32::from(b[1] & 0x3F);
    let hour = u32::from(b[2] & 0x1F);
    let day = u32::from(b[3] & 0x1F);
    let month = u32::from(((b[0] >> 6) << 2) | (b[1] >> 6));
    let year = 2000 + i32::from(b[4] & 0x7F);
    NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(hour, minute, second)
}

/// The 2-byte date of the daily-total records (decocare `unmask_m_midnight`): byte 0 is
/// `mmm ddddd` (month bits 3–1, day), byte 1 is `m yyyyyyy` (month bit 0, year − 2000).
pub fn pump_date(b: [u8; 2]) -> Option<NaiveDate> {
    let day = u32::from(b[0] & 0x1F);
    let month = u32::from(((b[0] & 0xE0) >> 4) | ((b[1] & 0x80) >> 7));
    let year = 2000 + i32::from(b[1] & 0x7F);
    NaiveDate::from_ymd_opt(year, month, day)
}

/// The 4-byte, minute-resolution timestamp of CGM-page records, in the page's reversed reading
/// order (MinimedKit `DateComponents(glucoseEventBytes:)`; decocare `cgm.parse_date` on the
/// same bytes reversed): byte 0 `mm xhhhhh` (month bits 3–2, hours), byte 1 `mm nnnnnn` (month
/// bits 1–0, minutes), byte 2 `xxx ddddd` (the top bits are the record's subtype), byte 3
/// `x yyyyyyy`.
pub fn glucose_datetime(b: [u8; 4]) -> Option<NaiveDateTime> {
    let hour = u32::from(b[0] & 0x1F);
    let minute = u32::from(b[1] & 0x3F);
    let month = u32::from(((b[0] >> 6) << 2) | (b[1] >> 6));
    let day = u32::from(b[2] & 0x1F);
    let year = 2000 + i32::from(b[3] & 0x7F);
    NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(hour, minute, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap_or_default()
    }

    #[test]
    fn pump_datetime_matches_decocare_doctests() {
        // decocare records/times.py doctests.
        assert_eq!(pump_datetime([0x6f, 0xd7, 0x08, 0x01, 0x06]), Some(t("2006-07-01T08:23:47")));
        assert_eq!(pump_datetime([0x93, 0xd4, 0x0e, 0x10, 0x0c]), Some(t("2012-11-16T14:20:19")));
        assert_eq!(pump_datetime([0xa3, 0xcf, 0x30, 0x10, 0x0c]), Some(t("2012-11-16T16:15:35")));
        // Month 0, day 0: not a date.
        assert_eq!(pump_datetime([0; 5]), None);
        // Month 15.
        assert_eq!(pump_datetime([0xc0, 0xc0, 0, 1, 10]), None);
    }

    #[test]
    fn pump_date_is_the_daily_total_date() {
        // decocare 522 page 1, MResultTotals `07000008f6` + `5c0f`: the totals of 2015-04-28.
        assert_eq!(pump_date([0x5c, 0x0f]), NaiveDate::from_ymd_opt(2015, 4, 28));
        // minimed_rf 523 spec: `6ebf0f` → 2015-10-31.
        assert_eq!(pump_date([0xbf, 0x0f]), NaiveDate::from_ymd_opt(2015, 10, 31));
        assert_eq!(pump_date([0, 0]), None);
    }

    #[test]
    fn glucose_datetime_matches_minimedkit() {
        // SensorCalFactorGlucoseEventTests: 0f 4f 67 13 0f 12 8c → 2015-05-19 15:39.
        assert_eq!(glucose_datetime([0x4f, 0x67, 0x13, 0x0f]), Some(t("2015-05-19T15:39:00")));
        // SensorTimestampGlucoseEventTests.pageEnd: 08 14 b6 28 10 → 2016-02-08 20:54.
        assert_eq!(glucose_datetime([0x14, 0xb6, 0x28, 0x10]), Some(t("2016-02-08T20:54:00")));
        assert_eq!(glucose_datetime([0xff; 4]), None);
    }
}
