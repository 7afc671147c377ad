//! Per-day sums of CGM readings, and the window figures rebuilt from them.
//!
//! Dashboards over many patients cannot afford to read every reading per
//! request. The store keeps, per patient and local day, the sums below
//! (refreshed whenever that day's data changes); [`combine`] turns the days of
//! a window into the same figures as [`super::glucose_report`] — exactly for
//! the counts, ranges, mean, SD, CV and GMI; CGM active differs only when a
//! sensor slot straddles local midnight (a reading within half an interval
//! after midnight whose slot opened before it), by at most one slot a day.

use super::window::window_secs;
use super::{HIGH_MAX, IN_RANGE_MAX, LOW_BELOW, Reading, VERY_LOW_BELOW};
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The sums of one local day.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct DaySums {
    pub day: NaiveDate,
    pub readings: u32,
    /// Sensor slots received (see the CGM active definition).
    pub slots: u32,
    /// Readings the day could hold at the sensor interval (DST-aware).
    pub expected: u32,
    pub sum_mg_dl: u64,
    pub sum_sq_mg_dl: u64,
    pub very_low: u32,
    pub low: u32,
    pub in_range: u32,
    pub high: u32,
    pub very_high: u32,
}

/// The sums of every local day in `from..=to` that holds a reading, from
/// `readings` sorted by time (unsorted input is sorted first).
pub fn day_sums(readings: &[Reading], zone: Tz, from: NaiveDate, to: NaiveDate, interval_min: u32) -> Vec<DaySums> {
    let interval_s = i64::from(interval_min.clamp(1, 1440)) * 60;
    let half = interval_s / 2;
    let mut sorted;
    let rs = if readings.is_sorted_by_key(|r| r.time) {
        readings
    } else {
        sorted = readings.to_vec();
        sorted.sort_by_key(|r| r.time);
        &sorted[..]
    };
    let mut out = Vec::new();
    let mut day = from;
    let mut i = rs.partition_point(|r| window_secs(zone, from, from).is_some_and(|(s, _)| r.time.timestamp() < s));
    while day <= to {
        let Some((ds, de)) = window_secs(zone, day, day) else { break };
        let mut d = DaySums {
            day,
            readings: 0,
            slots: 0,
            expected: u32::try_from((de - ds) / interval_s).unwrap_or(0),
            sum_mg_dl: 0,
            sum_sq_mg_dl: 0,
            very_low: 0,
            low: 0,
            in_range: 0,
            high: 0,
            very_high: 0,
        };
        let mut slot_ts = i64::MIN;
        while i < rs.len() && rs[i].time.timestamp() < de {
            let ts = rs[i].time.timestamp();
            if ts >= ds {
                let v = rs[i].value_mg_dl;
                d.readings += 1;
                d.sum_mg_dl += u64::from(v);
                d.sum_sq_mg_dl += u64::from(v) * u64::from(v);
                match v {
                    v if v < VERY_LOW_BELOW => d.very_low += 1,
                    v if v < LOW_BELOW => d.low += 1,
                    v if v <= IN_RANGE_MAX => d.in_range += 1,
                    v if v <= HIGH_MAX => d.high += 1,
                    _ => d.very_high += 1,
                }
                if ts.saturating_sub(slot_ts) >= half {
                    d.slots += 1;
                    slot_ts = ts;
                }
            }
            i += 1;
        }
        if d.readings > 0 {
            out.push(d);
        }
        match day.succ_opt() {
            Some(n) => day = n,
            None => break,
        }
    }
    out
}

/// Window figures rebuilt from day sums: every field `None` without readings.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct WindowFigures {
    pub readings: u64,
    pub mean_mg_dl: Option<f64>,
    pub sd_mg_dl: Option<f64>,
    pub cv_percent: Option<f64>,
    pub gmi_percent: Option<f64>,
    pub cgm_active_percent: Option<f64>,
    pub very_low_percent: Option<f64>,
    pub low_percent: Option<f64>,
    pub in_range_percent: Option<f64>,
    pub high_percent: Option<f64>,
    pub very_high_percent: Option<f64>,
}

/// Combines the day sums of `days` that fall in `from..=to` (others are
/// ignored) into the window's figures, as [`super::glucose_report`] defines them.
pub fn combine(days: &[DaySums], zone: Tz, from: NaiveDate, to: NaiveDate, interval_min: u32) -> WindowFigures {
    let mut f = WindowFigures::default();
    let (mut n, mut sum, mut sum_sq, mut slots) = (0u64, 0u128, 0u128, 0u64);
    let (mut vl, mut l, mut ir, mut h, mut vh) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for d in days.iter().filter(|d| d.day >= from && d.day <= to) {
        n += u64::from(d.readings);
        sum += u128::from(d.sum_mg_dl);
        sum_sq += u128::from(d.sum_sq_mg_dl);
        slots += u64::from(d.slots);
        vl += u64::from(d.very_low);
        l += u64::from(d.low);
        ir += u64::from(d.in_range);
        h += u64::from(d.high);
        vh += u64::from(d.very_high);
    }
    f.readings = n;
    let tallies = super::Tallies { n, sum, sum_sq, slots, ranges: [vl, l, ir, h, vh] };
    let interval_s = i64::from(interval_min.clamp(1, 1440)) * 60;
    let window = window_secs(zone, from, to);
    let Some(d) = tallies.derive(window.map_or(0, |(s, e)| e - s), interval_s) else { return f };
    let [pvl, pl, pir, ph, pvh] = d.percent;
    f.mean_mg_dl = Some(d.mean);
    f.sd_mg_dl = Some(d.sd);
    f.cv_percent = d.cv;
    f.gmi_percent = Some(d.gmi);
    f.very_low_percent = Some(pvl);
    f.low_percent = Some(pl);
    f.in_range_percent = Some(pir);
    f.high_percent = Some(ph);
    f.very_high_percent = Some(pvh);
    f.cgm_active_percent = window.map(|_| d.active);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ReportInput, glucose_report};
    use chrono::{Duration, TimeZone, Utc};
    use proptest::prelude::*;

    fn close(a: Option<f64>, b: Option<f64>, tol: f64) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() <= tol,
            (None, None) => true,
            _ => false,
        }
    }

    fn check(readings: &[Reading], zone: Tz, from: NaiveDate, to: NaiveDate) {
        let r = glucose_report(&ReportInput::new(readings, zone, from, to));
        let f = combine(&day_sums(readings, zone, from, to, 5), zone, from, to, 5);
        assert_eq!(f.readings as usize, r.readings);
        for (a, b) in [
            (f.mean_mg_dl, r.mean_mg_dl),
            (f.sd_mg_dl, r.sd_mg_dl),
            (f.cv_percent, r.cv_percent),
            (f.gmi_percent, r.gmi_percent),
            (f.very_low_percent, r.very_low_percent),
            (f.low_percent, r.low_percent),
            (f.in_range_percent, r.in_range_percent),
            (f.high_percent, r.high_percent),
            (f.very_high_percent, r.very_high_percent),
        ] {
            assert!(close(a, b, 1e-9), "{a:?} vs {b:?}");
        }
        // At most one slot a day apart: 1/288 of a day's expected readings.
        assert!(close(f.cgm_active_percent, r.cgm_active_percent, 100.0 / 288.0 + 1e-9));
    }

    #[test]
    fn matches_the_report_across_a_dst_change() {
        let zone: Tz = "Europe/Berlin".parse().unwrap();
        let from = NaiveDate::from_ymd_opt(2026, 3, 27).unwrap();
        let to = NaiveDate::from_ymd_opt(2026, 3, 30).unwrap();
        let start = Utc.with_ymd_and_hms(2026, 3, 26, 22, 0, 0).unwrap();
        let readings: Vec<Reading> = (0..4 * 288)
            .map(|i| Reading { time: start + Duration::minutes(5 * i), value_mg_dl: (40 + (i * 37) % 300) as u16 })
            .collect();
        check(&readings, zone, from, to);
        let sums = day_sums(&readings, zone, from, to, 5);
        // The spring-forward day holds 23 hours.
        assert_eq!(sums.iter().find(|d| d.day == NaiveDate::from_ymd_opt(2026, 3, 29).unwrap()).unwrap().expected, 276);
    }

    #[test]
    fn empty_window_has_no_figures() {
        let d = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let f = combine(&[], chrono_tz::UTC, d, d, 5);
        assert_eq!(f.readings, 0);
        assert_eq!(f.mean_mg_dl, None);
        assert_eq!(f.cgm_active_percent, None);
    }

    proptest! {
        #[test]
        fn combine_equals_report(
            gaps in proptest::collection::vec(1i64..900, 0..400),
            values in proptest::collection::vec(39u16..=401, 400),
        ) {
            let zone: Tz = "America/New_York".parse().unwrap();
            let from = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
            let to = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
            let mut t = Utc.with_ymd_and_hms(2026, 11, 1, 3, 0, 0).unwrap();
            let mut readings = Vec::new();
            for (g, v) in gaps.iter().zip(values.iter()) {
                t += Duration::seconds(*g * 60);
                readings.push(Reading { time: t, value_mg_dl: *v });
            }
            check(&readings, zone, from, to);
        }
    }
}
