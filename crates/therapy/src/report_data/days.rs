//! One local day of data, shaped for the Daily page and the PDF.

use super::{BasalKind, TherapyData, dates, day_bounds_ms};
use crate::metrics::{Reading, ReportInput, glucose_report};
use chrono::{DateTime, NaiveDate, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A fingerstick within a day.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct DayBg {
    /// Seconds since the day's start.
    pub sec: u32,
    pub mg_dl: u16,
    pub source: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct DayBolus {
    pub sec: u32,
    pub units: f64,
    pub subtype: Option<String>,
    pub duration_min: Option<u32>,
    /// The extended part (U) of a square or dual bolus, given over `duration_min`; `units`
    /// includes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_u: Option<f64>,
}

impl DayBolus {
    /// The part given at once: all of it, less the extended part.
    pub fn now_u(&self) -> f64 {
        (self.units - self.extended_u.unwrap_or(0.0)).max(0.0)
    }

    /// The extended part's rate (U/h) and its end (seconds since the day's start, possibly
    /// past the day's end), when the bolus has one with a duration.
    pub fn extended(&self) -> Option<(f64, u32)> {
        let (u, m) = (self.extended_u?, self.duration_min?);
        (u > 0.0 && m > 0).then(|| (u * 60.0 / f64::from(m), self.sec.saturating_add(m * 60)))
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct DayCarbs {
    pub sec: u32,
    pub grams: f64,
}

/// A basal piece clipped to the day.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct DayBasal {
    pub start_sec: u32,
    pub end_sec: u32,
    pub kind: BasalKind,
    pub rate_u_h: f64,
    pub scheduled_u_h: Option<f64>,
    pub percent: Option<f64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct DayAlarm {
    pub sec: u32,
    pub code: Option<u32>,
    pub description: Option<String>,
}

/// A day's figures. Glucose figures are `None` without CGM readings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct DayStats {
    pub readings: usize,
    pub mean_mg_dl: Option<f64>,
    pub sd_mg_dl: Option<f64>,
    pub min_mg_dl: Option<u16>,
    pub max_mg_dl: Option<u16>,
    pub very_low_percent: Option<f64>,
    pub low_percent: Option<f64>,
    pub in_range_percent: Option<f64>,
    pub high_percent: Option<f64>,
    pub very_high_percent: Option<f64>,
    pub cgm_active_percent: Option<f64>,
    pub hypo_episodes: usize,
    pub bg_count: usize,
    pub carbs_g: f64,
    pub bolus_u: f64,
    pub boluses: usize,
    /// `None` when the day has no basal data.
    pub basal_u: Option<f64>,
    /// Basal + bolus; `None` when the day has no basal data.
    pub total_u: Option<f64>,
}

/// One local day of data.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct DayView {
    pub date: NaiveDate,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The day's length in minutes: 1440, or 1380 / 1500 on DST days.
    pub minutes: u32,
    /// Local wall-clock minute at the day's start (0 unless midnight fell in a DST gap).
    pub start_wall_min: u32,
    /// Where the UTC offset changes within the day: (elapsed minute, change in minutes).
    pub offset_change: Option<(u32, i32)>,
    /// CGM readings: (seconds since the day's start, mg/dL).
    pub cgm: Vec<(u32, u16)>,
    pub bg: Vec<DayBg>,
    pub boluses: Vec<DayBolus>,
    pub carbs: Vec<DayCarbs>,
    pub basal: Vec<DayBasal>,
    pub alarms: Vec<DayAlarm>,
    pub stats: DayStats,
}

impl DayView {
    /// The local wall-clock minute of the day (0..1440) `elapsed_min` minutes after the day's start.
    pub fn wall_minute(&self, elapsed_min: u32) -> u32 {
        let shift = match self.offset_change {
            Some((at, d)) if elapsed_min >= at => d,
            _ => 0,
        };
        (i64::from(self.start_wall_min) + i64::from(elapsed_min) + i64::from(shift)).rem_euclid(1440) as u32
    }

    /// The local wall-clock time "HH:MM" `elapsed_min` minutes after the day's start.
    pub fn clock(&self, elapsed_min: u32) -> String {
        let m = self.wall_minute(elapsed_min);
        format!("{:02}:{:02}", m / 60, m % 60)
    }

    /// [`DayView::clock`] of a `sec` value.
    pub fn clock_sec(&self, sec: u32) -> String {
        self.clock(sec / 60)
    }

    /// The delivered basal rate at `sec`, if known.
    pub fn basal_at(&self, sec: u32) -> Option<&DayBasal> {
        let i = self.basal.partition_point(|b| b.end_sec <= sec);
        self.basal.get(i).filter(|b| b.start_sec <= sec)
    }
}

fn offset_s(zone: Tz, ms: i64) -> i64 {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) => i64::from(zone.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()),
        None => 0,
    }
}

/// Elapsed minute and size (minutes) of the one UTC offset change inside `[s, e)`, if any.
fn offset_change(zone: Tz, s: i64, e: i64) -> Option<(u32, i32)> {
    let (a, b) = (offset_s(zone, s), offset_s(zone, e - 1));
    if a == b {
        return None;
    }
    let (mut lo, mut hi) = (s, e - 1);
    while hi - lo > 1000 {
        let mid = lo + (hi - lo) / 2;
        if offset_s(zone, mid) == a { lo = mid } else { hi = mid }
    }
    let at = u32::try_from((hi - s) / 60_000).unwrap_or(0);
    Some((at, i32::try_from((b - a) / 60).unwrap_or(0)))
}

fn sec_in(start_ms: i64, t: i64) -> u32 {
    u32::try_from((t - start_ms).max(0) / 1000).unwrap_or(u32::MAX)
}

/// Indices `[lo, hi)` of the items of a time-sorted slice inside `[s, e)`.
fn range<T>(v: &[T], time: impl Fn(&T) -> i64, s: i64, e: i64) -> std::ops::Range<usize> {
    let lo = v.partition_point(|x| time(x) < s);
    let hi = v.partition_point(|x| time(x) < e).max(lo);
    lo..hi
}

/// The days `from..=to` of `data` (sorted with [`TherapyData::sort`]), in `zone`.
pub fn day_views(data: &TherapyData, zone: Tz, from: NaiveDate, to: NaiveDate) -> Vec<DayView> {
    dates(from, to).map(|d| day_view(data, zone, d)).collect()
}

fn day_view(data: &TherapyData, zone: Tz, date: NaiveDate) -> DayView {
    let (s, e) = day_bounds_ms(zone, date);
    let minutes = u32::try_from((e - s).max(0) / 60_000).unwrap_or(1440);
    let start_wall_min = DateTime::<Utc>::from_timestamp_millis(s)
        .map(|t| {
            let l = t.with_timezone(&zone);
            l.hour() * 60 + l.minute()
        })
        .unwrap_or(0);

    let cgm_r = range(&data.cgm, |r: &Reading| r.time.timestamp_millis(), s, e);
    let day_cgm: &[Reading] = &data.cgm[cgm_r];
    let cgm: Vec<(u32, u16)> = day_cgm.iter().map(|r| (sec_in(s, r.time.timestamp_millis()), r.value_mg_dl)).collect();
    let bg: Vec<DayBg> = data.bg[range(&data.bg, |b| b.time_ms, s, e)]
        .iter()
        .map(|b| DayBg { sec: sec_in(s, b.time_ms), mg_dl: b.mg_dl, source: b.source.clone() })
        .collect();
    let boluses: Vec<DayBolus> = data.boluses[range(&data.boluses, |b| b.time_ms, s, e)]
        .iter()
        .filter(|b| super::usable(b.units))
        .map(|b| DayBolus {
            sec: sec_in(s, b.time_ms),
            units: b.units,
            subtype: b.subtype.clone(),
            duration_min: b.duration_min,
            extended_u: b.extended_u.filter(|&x| super::usable(x)),
        })
        .collect();
    let carbs: Vec<DayCarbs> = data.carbs[range(&data.carbs, |c| c.time_ms, s, e)]
        .iter()
        .filter(|c| super::usable(c.grams))
        .map(|c| DayCarbs { sec: sec_in(s, c.time_ms), grams: c.grams })
        .collect();
    let alarms: Vec<DayAlarm> = data.alarms[range(&data.alarms, |a| a.time_ms, s, e)]
        .iter()
        .map(|a| DayAlarm { sec: sec_in(s, a.time_ms), code: a.code, description: a.description.clone() })
        .collect();
    // Pieces overlapping the day (sorted by start, non-overlapping).
    let first = data.basal.partition_point(|p| p.end_ms <= s);
    let basal: Vec<DayBasal> = data.basal[first..]
        .iter()
        .take_while(|p| p.start_ms < e)
        .map(|p| DayBasal {
            start_sec: sec_in(s, p.start_ms.max(s)),
            end_sec: sec_in(s, p.end_ms.min(e)),
            kind: p.kind,
            rate_u_h: p.rate_u_h,
            scheduled_u_h: p.scheduled_u_h,
            percent: p.percent,
        })
        .collect();
    let basal_u = (!basal.is_empty())
        .then(|| data.basal[first..].iter().take_while(|p| p.start_ms < e).map(|p| p.units_within(s, e)).sum::<f64>());

    let g = glucose_report(&ReportInput::new(day_cgm, zone, date, date));
    let bolus_u: f64 = boluses.iter().map(|b| b.units).sum();
    let stats = DayStats {
        readings: g.readings,
        mean_mg_dl: g.mean_mg_dl,
        sd_mg_dl: g.sd_mg_dl,
        min_mg_dl: day_cgm.iter().map(|r| r.value_mg_dl).min(),
        max_mg_dl: day_cgm.iter().map(|r| r.value_mg_dl).max(),
        very_low_percent: g.very_low_percent,
        low_percent: g.low_percent,
        in_range_percent: g.in_range_percent,
        high_percent: g.high_percent,
        very_high_percent: g.very_high_percent,
        cgm_active_percent: g.cgm_active_percent,
        hypo_episodes: g.hypo_episode_count,
        bg_count: bg.len(),
        carbs_g: carbs.iter().map(|c| c.grams).sum(),
        bolus_u,
        boluses: boluses.iter().filter(|b| b.units > 0.0).count(),
        basal_u,
        total_u: basal_u.map(|b| b + bolus_u),
    };
    DayView {
        date,
        start_ms: s,
        end_ms: e,
        minutes,
        start_wall_min,
        offset_change: offset_change(zone, s, e),
        cgm,
        bg,
        boluses,
        carbs,
        basal,
        alarms,
        stats,
    }
}
