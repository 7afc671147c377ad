//! Report data beyond the glucose metrics: the delivered basal timeline, the
//! per-day views of the Daily page and the PDF, time-of-day trends, the
//! logbook, and the device settings seen. Pure computation over data already
//! read from the store, so the web pages, the PDF and the tests share one
//! implementation.
//!
//! # Conventions
//! - Instants are UTC milliseconds since the Unix epoch (`*_ms`), as stored.
//! - Local days are the patient's zone's calendar days, from local midnight
//!   to the next local midnight (23 or 25 hours on DST days), as in
//!   [`crate::metrics`].
//! - Inside a day, times are `sec`: seconds elapsed since the day's start.
//!   [`DayView::clock`] turns elapsed minutes into the local wall-clock time
//!   ("02:30" twice on the autumn DST day).
//! - Glucose is in mg/dL, insulin in units (U), carbohydrate in grams.

mod basal;
mod days;
mod logbook;
mod settings;
mod trends;

pub use basal::{BasalEvent, BasalKind, BasalPiece, MAX_BASAL_GAP_MS, TempRate, basal_segments, basal_timeline};
pub use days::{DayAlarm, DayBasal, DayBg, DayBolus, DayCarbs, DayStats, DayView, day_views};
pub use logbook::{LOGBOOK_PERIODS, LogbookCell, LogbookDay, LogbookPeriod, logbook, logbook_periods};
pub use settings::{
    BasalProfile, DeviceSettings, ScheduleEntry, SettingsSeen, TargetEntry, parse_settings, settings_history,
};
pub use trends::{HourTrend, Trends, WeekdayTrend, trends};

use chrono::{DateTime, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A fingerstick (or other non-CGM) glucose value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct BgPoint {
    pub time_ms: i64,
    pub mg_dl: u16,
    /// `meter`, `linked_meter`, `manual` or `calibration`, when known.
    pub source: Option<String>,
}

/// A bolus as delivered (or programmed, when the delivered amount is unknown).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct BolusPoint {
    pub time_ms: i64,
    pub units: f64,
    /// `normal`, `square` or `dual`, when known.
    pub subtype: Option<String>,
    /// Extended part's duration (square and dual boluses).
    pub duration_min: Option<u32>,
    /// The extended part of a square or dual bolus (delivered, else programmed), given over
    /// `duration_min` from `time_ms`; `units` includes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_u: Option<f64>,
}

/// Carbohydrate entered (on the pump's Bolus Wizard, or logged).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CarbPoint {
    pub time_ms: i64,
    pub grams: f64,
}

/// A device alarm or alert.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AlarmPoint {
    pub time_ms: i64,
    pub code: Option<u32>,
    pub description: Option<String>,
}

/// Everything a report's pages draw, over a window (each list in any order;
/// the functions here sort what they need).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TherapyData {
    pub cgm: Vec<crate::metrics::Reading>,
    pub bg: Vec<BgPoint>,
    pub boluses: Vec<BolusPoint>,
    pub carbs: Vec<CarbPoint>,
    /// The delivered basal timeline ([`basal_timeline`]).
    pub basal: Vec<BasalPiece>,
    pub alarms: Vec<AlarmPoint>,
}

impl TherapyData {
    /// Sorts every list by time (stable).
    pub fn sort(&mut self) {
        self.cgm.sort_by_key(|r| r.time);
        self.bg.sort_by_key(|b| b.time_ms);
        self.boluses.sort_by_key(|b| b.time_ms);
        self.carbs.sort_by_key(|c| c.time_ms);
        self.basal.sort_by_key(|p| p.start_ms);
        self.alarms.sort_by_key(|a| a.time_ms);
    }

    /// Whether any pump data (basal or bolus) is present.
    pub fn has_pump_data(&self) -> bool {
        !self.basal.is_empty() || !self.boluses.is_empty()
    }
}

/// The UTC bounds `[start, end)` of the local day `date`, in milliseconds.
pub fn day_bounds_ms(zone: Tz, date: NaiveDate) -> (i64, i64) {
    match crate::metrics::window_utc(zone, date, date) {
        Some((s, e)) => (s.timestamp_millis(), e.timestamp_millis()),
        None => (0, 0),
    }
}

/// Local wall-clock time of UTC milliseconds, as seconds since the Unix
/// epoch read as if the wall clock were UTC. Caches the offset of the last
/// UTC day asked for (data is mostly sorted).
pub(crate) struct LocalClock {
    zone: Tz,
    day: i64,
    offset_s: Option<i64>,
}

impl LocalClock {
    pub(crate) fn new(zone: Tz) -> Self {
        LocalClock { zone, day: i64::MIN, offset_s: None }
    }

    fn offset_at(&self, secs: i64) -> i64 {
        match DateTime::<Utc>::from_timestamp(secs, 0) {
            Some(t) => i64::from(self.zone.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()),
            None => 0,
        }
    }

    /// Local wall-clock seconds (since the epoch, read as UTC) of `ms`.
    pub(crate) fn local_secs(&mut self, ms: i64) -> i64 {
        let secs = ms.div_euclid(1000);
        let day = secs.div_euclid(86_400);
        if day != self.day {
            self.day = day;
            let a = self.offset_at(day.saturating_mul(86_400));
            let b = self.offset_at(day.saturating_mul(86_400).saturating_add(86_399));
            self.offset_s = (a == b).then_some(a);
        }
        let off = match self.offset_s {
            Some(o) => o,
            None => self.offset_at(secs),
        };
        secs.saturating_add(off)
    }

    /// The local wall-clock minute of the day (0..1440) of `ms`.
    pub(crate) fn minute_of_day(&mut self, ms: i64) -> u32 {
        (self.local_secs(ms).rem_euclid(86_400) / 60) as u32
    }

    /// The local calendar date of `ms`.
    pub(crate) fn date(&mut self, ms: i64) -> Option<NaiveDate> {
        let days = self.local_secs(ms).div_euclid(86_400);
        NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::Duration::days(days))
    }
}

/// The local dates `from..=to` (empty when `to < from`).
pub(crate) fn dates(from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    from.iter_days().take_while(move |d| *d <= to)
}

/// An amount worth counting: finite and not negative.
pub(crate) fn usable(x: f64) -> bool {
    x.is_finite() && x >= 0.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
