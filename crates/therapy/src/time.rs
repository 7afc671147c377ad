//! Device time. Devices keep a local wall clock without a zone, and drift.
//! A [`DeviceTime`] is that wall-clock reading; [`to_utc`] turns it into an
//! instant given the patient's IANA zone and the clock offset measured at upload.

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

pub const DEVICE_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// A device's own local timestamp, `YYYY-MM-DDTHH:MM:SS`, no zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceTime(pub NaiveDateTime);

impl DeviceTime {
    pub fn new(dt: NaiveDateTime) -> Self {
        DeviceTime(dt)
    }

    /// `YYYY-MM-DDTHH:MM:SS` as ASCII bytes for years 0–9999, written without
    /// the formatting machinery (imports format every record's time); `None`
    /// for other years, which `Display` formats through chrono.
    fn ascii(&self) -> Option<[u8; 19]> {
        use chrono::{Datelike, Timelike};
        let (d, t) = (self.0.date(), self.0.time());
        let y = u32::try_from(d.year()).ok().filter(|y| *y <= 9999)?;
        let two = |v: u32| [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8];
        let mut b = *b"0000-00-00T00:00:00";
        b[..2].copy_from_slice(&two(y / 100));
        b[2..4].copy_from_slice(&two(y % 100));
        b[5..7].copy_from_slice(&two(d.month()));
        b[8..10].copy_from_slice(&two(d.day()));
        b[11..13].copy_from_slice(&two(t.hour()));
        b[14..16].copy_from_slice(&two(t.minute()));
        b[17..19].copy_from_slice(&two(t.second()));
        Some(b)
    }
}

impl fmt::Display for DeviceTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ascii() {
            // Only ASCII digits and separators were written.
            Some(b) => f.write_str(std::str::from_utf8(&b).map_err(|_| fmt::Error)?),
            None => write!(f, "{}", self.0.format(DEVICE_TIME_FORMAT)),
        }
    }
}

#[cfg(test)]
mod display_tests {
    use super::*;

    #[test]
    fn display_matches_the_format_string() {
        for s in [
            "2024-03-31T02:30:00",
            "0001-01-01T00:00:00",
            "9999-12-31T23:59:59",
            "2015-01-01T00:05:09",
            "0000-06-30T19:48:07",
            "1970-10-01T10:10:10",
        ] {
            let t: DeviceTime = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
            assert_eq!(t.to_string(), t.0.format(DEVICE_TIME_FORMAT).to_string());
        }
        let far = DeviceTime(chrono::NaiveDate::from_ymd_opt(12_345, 1, 2).unwrap().and_hms_opt(3, 4, 5).unwrap());
        assert_eq!(far.to_string(), far.0.format(DEVICE_TIME_FORMAT).to_string());
        let bc = DeviceTime(chrono::NaiveDate::from_ymd_opt(-44, 3, 15).unwrap().and_hms_opt(12, 0, 0).unwrap());
        assert_eq!(bc.to_string(), bc.0.format(DEVICE_TIME_FORMAT).to_string());
        // Stored rows hold this text: sweep the whole fast-path range.
        let mut t = chrono::NaiveDate::from_ymd_opt(0, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        let end = chrono::NaiveDate::from_ymd_opt(10_000, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        while t < end {
            assert_eq!(DeviceTime(t).to_string(), t.format(DEVICE_TIME_FORMAT).to_string());
            t += chrono::Duration::seconds(3_600 * 997 + 61 * 7 + 13);
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid device time {0:?}: expected YYYY-MM-DDTHH:MM:SS")]
pub struct BadDeviceTime(pub String);

impl FromStr for DeviceTime {
    type Err = BadDeviceTime;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NaiveDateTime::parse_from_str(s, DEVICE_TIME_FORMAT).map(DeviceTime).map_err(|_| BadDeviceTime(s.to_string()))
    }
}

impl Serialize for DeviceTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses an IANA zone name ("Europe/Berlin").
pub fn parse_zone(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

/// Converts a device-local reading to UTC.
///
/// `clock_offset_s` is (device clock − true local time) in seconds, measured at
/// upload: it is subtracted first. A wall time in a DST gap (one the zone
/// skipped) is read with the offset in force before the gap, and in a DST
/// fold (a wall time the zone went through twice) the earlier instant is
/// used: both as a device that was not yet changed over means them (02:30
/// on Berlin's spring-forward day is 01:30 UTC). So readings in the gap keep
/// their spacing instead of collapsing onto the end of the gap.
pub fn to_utc(device_time: DeviceTime, zone: Tz, clock_offset_s: i64) -> DateTime<Utc> {
    let local = device_time.0 - chrono::Duration::seconds(clock_offset_s);
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        LocalResult::None => {
            // The offset in force before the gap: the one of the last wall
            // time before it (gaps last at most a few hours).
            let mut probe = local;
            for _ in 0..(4 * 60) {
                probe -= chrono::Duration::minutes(1);
                if let LocalResult::Single(t) | LocalResult::Ambiguous(_, t) = zone.from_local_datetime(&probe) {
                    let offset = chrono::Duration::seconds(i64::from(t.offset().fix().local_minus_utc()));
                    return Utc.from_utc_datetime(&(local - offset));
                }
            }
            Utc.from_utc_datetime(&local)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DeviceTime {
        s.parse().unwrap()
    }

    #[test]
    fn device_time_round_trips() {
        let t = dt("2015-04-29T18:05:00");
        assert_eq!(t.to_string(), "2015-04-29T18:05:00");
        assert!("2015-04-29 18:05".parse::<DeviceTime>().is_err());
    }

    #[test]
    fn utc_conversion_respects_zone_and_offset() {
        let z: Tz = "Europe/Berlin".parse().unwrap();
        // Summer: UTC+2; device 5 minutes fast.
        let u = to_utc(dt("2024-07-01T12:05:00"), z, 300);
        assert_eq!(u.to_rfc3339(), "2024-07-01T10:00:00+00:00");
        // Spring-forward gap 02:30 does not exist on 2024-03-31: read at
        // the offset before the gap (CET, UTC+1).
        let gap = to_utc(dt("2024-03-31T02:30:00"), z, 0);
        assert_eq!(gap.to_rfc3339(), "2024-03-31T01:30:00+00:00");
        // Fall-back fold 02:30 happened twice on 2024-10-27: the first one.
        let fold = to_utc(dt("2024-10-27T02:30:00"), z, 0);
        assert_eq!(fold.to_rfc3339(), "2024-10-27T00:30:00+00:00");
    }

    /// Five-minute readings through both transitions of a year, in two
    /// zones, from a device whose clock was not changed over during the
    /// transition hour: every reading keeps its own instant, 5 minutes
    /// after the one before (the gap hour used to collapse onto one instant).
    #[test]
    fn readings_across_dst_transitions_keep_their_spacing() {
        // (zone, day, readings from midnight to the end of the transition hour)
        for (zone, day, n) in [
            ("Europe/Berlin", "2024-03-31", 36),    // gap 02:00-02:59
            ("Europe/Berlin", "2024-10-27", 36),    // fold 02:00-02:59
            ("America/New_York", "2024-03-10", 36), // gap 02:00-02:59
            ("America/New_York", "2024-11-03", 24), // fold 01:00-01:59
        ] {
            let z: Tz = zone.parse().unwrap();
            let midnight: DeviceTime = format!("{day}T00:00:00").parse().unwrap();
            let times: Vec<DateTime<Utc>> =
                (0..n).map(|i| to_utc(DeviceTime(midnight.0 + chrono::Duration::minutes(5 * i)), z, 0)).collect();
            for w in times.windows(2) {
                assert_eq!((w[1] - w[0]).num_minutes(), 5, "{zone} {day}: {} then {}", w[0], w[1]);
            }
            let distinct: std::collections::BTreeSet<_> = times.iter().collect();
            assert_eq!(distinct.len(), n as usize, "{zone} {day}");
        }
        // New York's gap: 02:30 EST (UTC-5) is 07:30 UTC.
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(to_utc(dt("2024-03-10T02:30:00"), ny, 0).to_rfc3339(), "2024-03-10T07:30:00+00:00");
        // Its fold: 01:30 happened twice; the first (EDT, UTC-4).
        assert_eq!(to_utc(dt("2024-11-03T01:30:00"), ny, 0).to_rfc3339(), "2024-11-03T05:30:00+00:00");
    }
}
