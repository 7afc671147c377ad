//! The report window (whole local days in the patient's zone) and a cheap
//! UTC→local offset lookup for sorted instants.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

const DAY_S: i64 = 86_400;

/// Number of local days in `from..=to` (0 when `to < from`).
pub fn window_days(from: NaiveDate, to: NaiveDate) -> u32 {
    if to < from {
        return 0;
    }
    let d = to.signed_duration_since(from).num_days() + 1;
    u32::try_from(d).unwrap_or(u32::MAX)
}

/// The report window as a half-open UTC interval `[start, end)`: from local
/// midnight of `from` to local midnight of the day after `to`, in `zone`.
/// DST days are 23 or 25 hours long, so the interval is not `days × 24 h`.
/// `None` when `to < from` (an empty window).
pub fn window_utc(zone: Tz, from: NaiveDate, to: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (s, e) = window_secs(zone, from, to)?;
    Some((
        DateTime::from_timestamp(s, 0).unwrap_or(DateTime::<Utc>::MIN_UTC),
        DateTime::from_timestamp(e, 0).unwrap_or(DateTime::<Utc>::MAX_UTC),
    ))
}

/// [`window_utc`] as Unix seconds.
pub(crate) fn window_secs(zone: Tz, from: NaiveDate, to: NaiveDate) -> Option<(i64, i64)> {
    if to < from {
        return None;
    }
    let start = local_midnight_utc(zone, from);
    let end = match to.succ_opt() {
        Some(next) => local_midnight_utc(zone, next),
        // `to` is the last representable date: its day ends 24 h after it starts.
        None => local_midnight_utc(zone, to).saturating_add(DAY_S),
    };
    Some((start, end.max(start)))
}

/// The instant (Unix seconds) at which local `date` begins in `zone`. When
/// local midnight does not exist (a DST gap at 00:00, as in some zones'
/// history), the day starts at the first local time after the gap; when it
/// exists twice, at the earlier one.
pub(crate) fn local_midnight_utc(zone: Tz, date: NaiveDate) -> i64 {
    let midnight = date.and_time(NaiveTime::MIN);
    if let Some(t) = first_instant(zone, &midnight) {
        return t;
    }
    // Gap: walk forward minute by minute (gaps are at most a few hours).
    let mut probe = midnight;
    for _ in 0..(24 * 60) {
        match probe.checked_add_signed(chrono::Duration::minutes(1)) {
            Some(p) => probe = p,
            None => break,
        }
        if let Some(t) = first_instant(zone, &probe) {
            return t;
        }
    }
    // Only reachable at the edges of chrono's range: read the wall time as UTC.
    midnight.and_utc().timestamp()
}

fn first_instant(zone: Tz, local: &NaiveDateTime) -> Option<i64> {
    match zone.from_local_datetime(local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.timestamp()),
        LocalResult::None => None,
    }
}

/// UTC offset (seconds, local − UTC) of `zone` at Unix second `ts`.
fn offset_at(zone: Tz, ts: i64) -> i64 {
    use chrono::Offset;
    match DateTime::from_timestamp(ts, 0) {
        Some(t) => i64::from(zone.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()),
        None => 0,
    }
}

/// Offset lookup that caches the constant-offset stretch around the last
/// instant asked for. A time-zone lookup costs a binary search over the
/// zone's transitions; readings are sorted, so almost every lookup hits the
/// cache (two lookups per UTC day, a short bisection on a transition day).
///
/// Assumes a zone changes its offset at most once within one UTC day, which
/// holds for every IANA zone's DST and standard-time changes.
pub(crate) struct OffsetCache {
    zone: Tz,
    start: i64,
    end: i64,
    offset: i64,
}

impl OffsetCache {
    pub(crate) fn new(zone: Tz) -> Self {
        OffsetCache { zone, start: 0, end: 0, offset: 0 }
    }

    #[inline]
    pub(crate) fn offset(&mut self, ts: i64) -> i64 {
        if ts >= self.start && ts < self.end {
            return self.offset;
        }
        self.refill(ts);
        self.offset
    }

    #[cold]
    fn refill(&mut self, ts: i64) {
        let day0 = ts.div_euclid(DAY_S).saturating_mul(DAY_S);
        let day1 = day0.saturating_add(DAY_S);
        let a = offset_at(self.zone, day0);
        let b = offset_at(self.zone, day1 - 1);
        if a == b {
            (self.start, self.end, self.offset) = (day0, day1, a);
            return;
        }
        // One transition inside the day: bisect to the first second of the new offset.
        let (mut lo, mut hi) = (day0, day1 - 1);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if offset_at(self.zone, mid) == a {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        if ts < hi {
            (self.start, self.end, self.offset) = (day0, hi, a);
        } else {
            (self.start, self.end, self.offset) = (hi, day1, b);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn berlin_dst_days_are_23_and_25_hours() {
        let z: Tz = "Europe/Berlin".parse().unwrap();
        let (s, e) = window_secs(z, d("2024-03-31"), d("2024-03-31")).unwrap();
        assert_eq!(e - s, 23 * 3600);
        let (s, e) = window_secs(z, d("2024-10-27"), d("2024-10-27")).unwrap();
        assert_eq!(e - s, 25 * 3600);
        let (s, e) = window_secs(z, d("2024-07-01"), d("2024-07-14")).unwrap();
        assert_eq!(e - s, 14 * 86_400);
        assert_eq!(window_days(d("2024-07-01"), d("2024-07-14")), 14);
        assert_eq!(window_days(d("2024-07-02"), d("2024-07-01")), 0);
        assert!(window_secs(z, d("2024-07-02"), d("2024-07-01")).is_none());
    }

    #[test]
    fn window_utc_is_local_midnight() {
        let z: Tz = "Europe/Berlin".parse().unwrap();
        let (s, e) = window_utc(z, d("2024-07-01"), d("2024-07-01")).unwrap();
        assert_eq!(s.to_rfc3339(), "2024-06-30T22:00:00+00:00");
        assert_eq!(e.to_rfc3339(), "2024-07-01T22:00:00+00:00");
    }

    #[test]
    fn midnight_in_a_gap_starts_after_it() {
        // Sao Paulo started DST at local midnight on 2018-11-04 (00:00 -> 01:00).
        let z: Tz = "America/Sao_Paulo".parse().unwrap();
        let s = local_midnight_utc(z, d("2018-11-04"));
        assert_eq!(DateTime::from_timestamp(s, 0).unwrap().to_rfc3339(), "2018-11-04T03:00:00+00:00");
    }

    #[test]
    fn offset_cache_matches_direct_lookup_across_transitions() {
        let z: Tz = "Europe/Berlin".parse().unwrap();
        let mut c = OffsetCache::new(z);
        let start = window_secs(z, d("2024-03-30"), d("2024-03-30")).unwrap().0;
        for i in 0..(3 * 288) {
            let ts = start + i * 300 + 7;
            assert_eq!(c.offset(ts), offset_at(z, ts), "at {ts}");
        }
        let start = window_secs(z, d("2024-10-26"), d("2024-10-26")).unwrap().0;
        for i in 0..(3 * 288) {
            let ts = start + i * 300;
            assert_eq!(c.offset(ts), offset_at(z, ts), "at {ts}");
        }
    }

    #[test]
    fn extreme_dates_do_not_panic() {
        let z: Tz = "Pacific/Kiritimati".parse().unwrap();
        let _ = window_secs(z, NaiveDate::MIN, NaiveDate::MAX);
        let _ = window_utc(z, NaiveDate::MAX, NaiveDate::MAX);
        let _ = window_utc(z, NaiveDate::MIN, NaiveDate::MIN);
        let mut c = OffsetCache::new(z);
        let _ = c.offset(DateTime::<Utc>::MAX_UTC.timestamp());
        let _ = c.offset(DateTime::<Utc>::MIN_UTC.timestamp());
    }
}
