//! Insulin and carbohydrate summaries: per-day averages over the report window.

use super::window::{window_days, window_secs};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Basal insulin delivered at a constant rate over `[start, end)`.
///
/// Pass the *delivered* basal timeline: non-overlapping segments, with temp
/// basals and suspends already applied (a suspend is a segment at rate 0).
/// Overlapping segments are summed, not resolved.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct BasalSegment {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub rate_u_h: f64,
}

/// Insulin and carbs per day over the window (`days` local days).
///
/// Every field is `None` when the window is empty (`to < from`); the basal
/// and bolus percentages are also `None` when no insulin was delivered.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct InsulinSummary {
    pub days: u32,
    /// Basal + bolus units per day.
    pub total_daily_dose_u: Option<f64>,
    pub basal_u_per_day: Option<f64>,
    pub bolus_u_per_day: Option<f64>,
    pub basal_percent: Option<f64>,
    pub bolus_percent: Option<f64>,
    /// Boluses (amount > 0) per day.
    pub boluses_per_day: Option<f64>,
    pub carbs_g_per_day: Option<f64>,
}

/// Insulin and carbohydrate summary of the local days `from..=to` in `zone`.
///
/// - boluses and carbs count when their instant lies in the window; amounts
///   that are negative or not finite are ignored;
/// - basal counts the part of each segment inside the window (rate × hours);
///   segments with `end <= start` or a rate that is negative or not finite
///   are ignored;
/// - per-day values divide by the number of local days in the window, not by
///   the number of days that have data.
pub fn insulin_summary(
    boluses: &[(DateTime<Utc>, f64)],
    basal: &[BasalSegment],
    carbs: &[(DateTime<Utc>, f64)],
    zone: Tz,
    from: NaiveDate,
    to: NaiveDate,
) -> InsulinSummary {
    let days = window_days(from, to);
    let Some((ws, we)) = window_secs(zone, from, to) else {
        return InsulinSummary {
            days: 0,
            total_daily_dose_u: None,
            basal_u_per_day: None,
            bolus_u_per_day: None,
            basal_percent: None,
            bolus_percent: None,
            boluses_per_day: None,
            carbs_g_per_day: None,
        };
    };
    let inside = |t: &DateTime<Utc>| {
        let s = t.timestamp();
        s >= ws && s < we
    };
    let usable = |x: f64| x.is_finite() && x >= 0.0;

    let mut bolus_u = 0.0;
    let mut bolus_n = 0u64;
    for (t, u) in boluses {
        if inside(t) && usable(*u) {
            bolus_u += u;
            if *u > 0.0 {
                bolus_n += 1;
            }
        }
    }
    let carbs_g: f64 = carbs.iter().filter(|(t, g)| inside(t) && usable(*g)).map(|(_, g)| g).sum();

    // Overlap in milliseconds, so sub-second segment bounds still count.
    let (wsm, wem) = (ws.saturating_mul(1000), we.saturating_mul(1000));
    let mut basal_u = 0.0;
    for seg in basal {
        if !usable(seg.rate_u_h) {
            continue;
        }
        let s = seg.start.timestamp_millis().max(wsm);
        let e = seg.end.timestamp_millis().min(wem);
        if e > s {
            basal_u += seg.rate_u_h * (e - s) as f64 / 3_600_000.0;
        }
    }

    let nd = f64::from(days.max(1));
    let total = basal_u + bolus_u;
    let share = |x: f64| if total > 0.0 { Some(x / total * 100.0) } else { None };
    InsulinSummary {
        days,
        total_daily_dose_u: Some(total / nd),
        basal_u_per_day: Some(basal_u / nd),
        bolus_u_per_day: Some(bolus_u / nd),
        basal_percent: share(basal_u),
        bolus_percent: share(bolus_u),
        boluses_per_day: Some(bolus_n as f64 / nd),
        carbs_g_per_day: Some(carbs_g / nd),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn two_days_of_pump_data() {
        let z: Tz = "UTC".parse().unwrap();
        let from: NaiveDate = "2024-05-01".parse().unwrap();
        let to: NaiveDate = "2024-05-02".parse().unwrap();
        // Basal 1 U/h for the whole window, plus a segment that starts before
        // the window (only its inside half counts) and one after it.
        let basal = [
            BasalSegment { start: at("2024-04-30T23:00:00Z"), end: at("2024-05-03T00:00:00Z"), rate_u_h: 1.0 },
            BasalSegment { start: at("2024-05-03T00:00:00Z"), end: at("2024-05-04T00:00:00Z"), rate_u_h: 9.0 },
            BasalSegment { start: at("2024-05-01T10:00:00Z"), end: at("2024-05-01T09:00:00Z"), rate_u_h: 9.0 },
            BasalSegment { start: at("2024-05-01T10:00:00Z"), end: at("2024-05-01T11:00:00Z"), rate_u_h: f64::NAN },
        ];
        let boluses = [
            (at("2024-05-01T08:00:00Z"), 6.0),
            (at("2024-05-01T12:00:00Z"), 10.0),
            (at("2024-05-02T19:00:00Z"), 8.0),
            (at("2024-05-02T20:00:00Z"), 0.0),  // not a bolus
            (at("2024-05-03T00:00:00Z"), 50.0), // outside
            (at("2024-05-02T21:00:00Z"), -1.0), // garbage
        ];
        let carbs = [
            (at("2024-05-01T08:00:00Z"), 60.0),
            (at("2024-05-02T08:00:00Z"), 40.0),
            (at("2024-04-30T08:00:00Z"), 999.0),
        ];
        let s = insulin_summary(&boluses, &basal, &carbs, z, from, to);
        assert_eq!(s.days, 2);
        assert_eq!(s.basal_u_per_day, Some(24.0));
        assert_eq!(s.bolus_u_per_day, Some(12.0));
        assert_eq!(s.total_daily_dose_u, Some(36.0));
        assert!((s.basal_percent.unwrap() - 200.0 / 3.0).abs() < 1e-9);
        assert!((s.bolus_percent.unwrap() - 100.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.boluses_per_day, Some(1.5));
        assert_eq!(s.carbs_g_per_day, Some(50.0));
    }

    #[test]
    fn dst_day_basal_is_23_hours() {
        let z: Tz = "Europe/Berlin".parse().unwrap();
        let d: NaiveDate = "2024-03-31".parse().unwrap();
        let basal =
            [BasalSegment { start: Utc.timestamp_opt(0, 0).unwrap(), end: at("2030-01-01T00:00:00Z"), rate_u_h: 1.0 }];
        let s = insulin_summary(&[], &basal, &[], z, d, d);
        assert_eq!(s.basal_u_per_day, Some(23.0));
        assert_eq!(s.bolus_percent, Some(0.0));
    }

    #[test]
    fn empty_window_and_no_insulin() {
        let z: Tz = "UTC".parse().unwrap();
        let d: NaiveDate = "2024-03-31".parse().unwrap();
        let s = insulin_summary(&[], &[], &[], z, d, d.pred_opt().unwrap());
        assert_eq!(s.days, 0);
        assert_eq!(s.total_daily_dose_u, None);
        let s = insulin_summary(&[], &[], &[], z, d, d);
        assert_eq!(s.total_daily_dose_u, Some(0.0));
        assert_eq!(s.basal_percent, None);
        assert_eq!(s.boluses_per_day, Some(0.0));
    }
}
