//! Trends by local hour of the day and by day of the week.

use super::{LocalClock, TherapyData};
use crate::metrics::{HIGH_MAX, IN_RANGE_MAX, LOW_BELOW, VERY_LOW_BELOW, percentile_sorted};
use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// One local hour of the day (0–23) over the window.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct HourTrend {
    pub hour: u32,
    pub readings: u32,
    pub mean_mg_dl: Option<f64>,
    pub sd_mg_dl: Option<f64>,
    pub p10_mg_dl: Option<f64>,
    pub p50_mg_dl: Option<f64>,
    pub p90_mg_dl: Option<f64>,
    /// Below 70 mg/dL (very low + low), %.
    pub below_percent: Option<f64>,
    /// 70–180 mg/dL, %.
    pub in_range_percent: Option<f64>,
    /// Above 180 mg/dL (high + very high), %.
    pub above_percent: Option<f64>,
    pub bg_count: u32,
    pub bg_mean_mg_dl: Option<f64>,
    /// Carbohydrate in this hour per day of the window.
    pub carbs_g_per_day: f64,
    /// Bolus insulin in this hour per day of the window.
    pub bolus_u_per_day: f64,
    /// Average delivered basal rate in this hour, over the time with basal data.
    pub basal_u_h: Option<f64>,
}

/// One day of the week over the window (Monday = 0).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct WeekdayTrend {
    pub weekday: u32,
    pub name: String,
    pub readings: u32,
    pub mean_mg_dl: Option<f64>,
    pub below_percent: Option<f64>,
    pub in_range_percent: Option<f64>,
    pub above_percent: Option<f64>,
    pub very_low_percent: Option<f64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Trends {
    /// 24 entries, hour 0 first.
    pub hours: Vec<HourTrend>,
    /// 7 entries, Monday first.
    pub weekdays: Vec<WeekdayTrend>,
    /// Days in the window (the denominator of the per-day figures).
    pub days: u32,
}

const WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// Range counts of a set of readings: [very low, low, in range, high, very high].
fn ranges(values: &[u16]) -> [u32; 5] {
    let mut c = [0u32; 5];
    for &v in values {
        let i = if v < VERY_LOW_BELOW {
            0
        } else if v < LOW_BELOW {
            1
        } else if v <= IN_RANGE_MAX {
            2
        } else if v <= HIGH_MAX {
            3
        } else {
            4
        };
        c[i] += 1;
    }
    c
}

fn mean_sd(values: &[u16]) -> (Option<f64>, Option<f64>) {
    if values.is_empty() {
        return (None, None);
    }
    let n = values.len() as f64;
    let mean = values.iter().map(|v| f64::from(*v)).sum::<f64>() / n;
    let var = values.iter().map(|v| (f64::from(*v) - mean).powi(2)).sum::<f64>() / n;
    (Some(mean), Some(var.sqrt()))
}

/// Time-of-day and day-of-week trends of `data` over the local days `from..=to`.
/// Only data inside the window counts; `data.basal` should be clipped to it
/// (as [`super::basal_timeline`] does).
pub fn trends(data: &TherapyData, zone: Tz, from: NaiveDate, to: NaiveDate) -> Trends {
    let days = crate::metrics::window_days(from, to);
    let Some((ws, we)) = crate::metrics::window_utc(zone, from, to) else {
        return Trends { hours: Vec::new(), weekdays: Vec::new(), days: 0 };
    };
    let (ws, we) = (ws.timestamp_millis(), we.timestamp_millis());
    let inside = |t: i64| t >= ws && t < we;
    let mut clock = LocalClock::new(zone);

    let mut by_hour: Vec<Vec<u16>> = vec![Vec::new(); 24];
    let mut by_weekday: Vec<Vec<u16>> = vec![Vec::new(); 7];
    for r in &data.cgm {
        let t = r.time.timestamp_millis();
        if !inside(t) {
            continue;
        }
        by_hour[(clock.minute_of_day(t) / 60) as usize].push(r.value_mg_dl);
        if let Some(d) = clock.date(t) {
            by_weekday[d.weekday().num_days_from_monday() as usize].push(r.value_mg_dl);
        }
    }
    let mut bg: Vec<(u32, u64)> = vec![(0, 0); 24];
    for b in data.bg.iter().filter(|b| inside(b.time_ms)) {
        let h = (clock.minute_of_day(b.time_ms) / 60) as usize;
        bg[h].0 += 1;
        bg[h].1 += u64::from(b.mg_dl);
    }
    let mut carbs = [0.0f64; 24];
    for c in data.carbs.iter().filter(|c| inside(c.time_ms) && super::usable(c.grams)) {
        carbs[(clock.minute_of_day(c.time_ms) / 60) as usize] += c.grams;
    }
    let mut bolus = [0.0f64; 24];
    for b in data.boluses.iter().filter(|b| inside(b.time_ms) && super::usable(b.units)) {
        bolus[(clock.minute_of_day(b.time_ms) / 60) as usize] += b.units;
    }
    // Basal: each piece split at local hour boundaries.
    let mut basal_u = [0.0f64; 24];
    let mut basal_ms = [0i64; 24];
    for p in &data.basal {
        let (mut t, end) = (p.start_ms.max(ws), p.end_ms.min(we));
        while t < end {
            let local = clock.local_secs(t);
            let into_hour_ms = local.rem_euclid(3600) * 1000 + t.rem_euclid(1000);
            let next = (t - into_hour_ms + 3_600_000).min(end).max(t + 1);
            let h = (local.rem_euclid(86_400) / 3600) as usize;
            basal_u[h] += p.rate_u_h * (next - t) as f64 / 3_600_000.0;
            basal_ms[h] += next - t;
            t = next;
        }
    }

    let nd = f64::from(days.max(1));
    let hours = by_hour
        .iter_mut()
        .enumerate()
        .map(|(h, v)| {
            v.sort_unstable();
            let n = v.len() as f64;
            let c = ranges(v);
            let pct = |x: u32| (!v.is_empty()).then(|| f64::from(x) / n * 100.0);
            let (mean, sd) = mean_sd(v);
            HourTrend {
                hour: h as u32,
                readings: v.len() as u32,
                mean_mg_dl: mean,
                sd_mg_dl: sd,
                p10_mg_dl: percentile_sorted(v, 10.0),
                p50_mg_dl: percentile_sorted(v, 50.0),
                p90_mg_dl: percentile_sorted(v, 90.0),
                below_percent: pct(c[0] + c[1]),
                in_range_percent: pct(c[2]),
                above_percent: pct(c[3] + c[4]),
                bg_count: bg[h].0,
                bg_mean_mg_dl: (bg[h].0 > 0).then(|| bg[h].1 as f64 / f64::from(bg[h].0)),
                carbs_g_per_day: carbs[h] / nd,
                bolus_u_per_day: bolus[h] / nd,
                basal_u_h: (basal_ms[h] > 0).then(|| basal_u[h] / (basal_ms[h] as f64 / 3_600_000.0)),
            }
        })
        .collect();
    let weekdays = by_weekday
        .iter()
        .enumerate()
        .map(|(d, v)| {
            let n = v.len() as f64;
            let c = ranges(v);
            let pct = |x: u32| (!v.is_empty()).then(|| f64::from(x) / n * 100.0);
            WeekdayTrend {
                weekday: d as u32,
                name: WEEKDAYS[d].to_string(),
                readings: v.len() as u32,
                mean_mg_dl: mean_sd(v).0,
                below_percent: pct(c[0] + c[1]),
                in_range_percent: pct(c[2]),
                above_percent: pct(c[3] + c[4]),
                very_low_percent: pct(c[0]),
            }
        })
        .collect();
    Trends { hours, weekdays, days }
}
