//! Glucose metrics of the design contract ("Reports and metrics"): the
//! international consensus on time in range (Battelino et al., Diabetes Care
//! 2019), the AGP, GMI, the Glycemia Risk Index (Klonoff et al. 2022) and
//! level-2 hypoglycaemia episodes; plus insulin and carbohydrate summaries.
//!
//! Pure computation: no I/O, no clock, builds for `wasm32-unknown-unknown`.
//!
//! # Definitions
//! - **Window**: the local days `from..=to` in the patient's zone, as the UTC
//!   interval `[local midnight of from, local midnight of to + 1)`. A DST day
//!   is 23 or 25 hours long. Readings outside the window are ignored.
//! - **Readings**: every reading in the window counts once (the store keeps
//!   one CGM source per instant; this module does not second-guess it).
//! - **Ranges** on integer mg/dL: very low < 54; low 54–69; in range 70–180;
//!   high 181–250; very high > 250. Percentages of the readings in the window.
//! - **Mean**, **SD** (population, n in the denominator), **CV** = SD / mean × 100,
//!   **GMI** (%) = 3.31 + 0.02392 × mean.
//! - **CGM active %** = distinct sensor slots received / readings expected at
//!   the sensor interval over the window (window seconds / interval), capped
//!   at 100. A reading opens a new slot when it is at least half an interval
//!   after the reading that opened the previous one, so duplicates and
//!   overlapping sources never count twice, and clock jitter of a few seconds
//!   loses nothing.
//! - **AGP**: readings grouped by local time of day in bins of `agp_bin_min`
//!   minutes (`minute` = start of the bin, 0 ≤ minute < 1440); in each bin the
//!   5/25/50/75/95th percentiles with linear interpolation between closest
//!   ranks (numpy's default, R type 7). Bins without readings are omitted.
//! - **GRI** = 3.0 × very low % + 2.4 × low % + 1.6 × very high % + 0.8 × high %,
//!   capped at 100 (hypo component = very low + 0.8 × low; hyper component =
//!   very high + 0.5 × high; GRI = 3 × hypo + 1.6 × hyper).
//! - **Hypoglycaemia episode** (level 2): taking the window's readings in
//!   time order, an episode starts at a reading < 54 mg/dL and continues
//!   through further readings < 54 that follow each other within
//!   2 × the sensor interval. It ends at the first reading ≥ 54 (its `end` is
//!   that reading's time) — or, when the next reading comes more than
//!   2 × interval after the last low one (a gap) or there is none, at the last
//!   low reading + one interval (each reading stands for one interval).
//!   It counts when `end − start` ≥ 15 minutes: at a 5-minute interval, three
//!   consecutive readings < 54.
//! - **Sufficient** data: CGM active ≥ 70 % over a window of ≥ 14 days.

mod agp;
pub mod daily;
mod insulin;
mod percentile;
mod window;

pub use insulin::{BasalSegment, InsulinSummary, insulin_summary};
pub use percentile::percentile_sorted;
pub use window::{window_days, window_utc};

use agp::AgpAccumulator;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use window::{OffsetCache, window_secs};

/// Upper bound (exclusive) of "very low": readings < 54 mg/dL.
pub const VERY_LOW_BELOW: u16 = 54;
/// Upper bound (exclusive) of "low": readings 54–69 mg/dL.
pub const LOW_BELOW: u16 = 70;
/// Upper bound (inclusive) of "in range": readings 70–180 mg/dL.
pub const IN_RANGE_MAX: u16 = 180;
/// Upper bound (inclusive) of "high": readings 181–250 mg/dL; above is very high.
pub const HIGH_MAX: u16 = 250;
/// Minimum duration of a hypoglycaemia episode, minutes.
pub const HYPO_EPISODE_MIN_MINUTES: i64 = 15;
/// Data sufficiency: CGM active at least this percentage…
pub const SUFFICIENT_ACTIVE_PERCENT: f64 = 70.0;
/// …over at least this many days.
pub const SUFFICIENT_DAYS: u32 = 14;
pub const DEFAULT_SENSOR_INTERVAL_MIN: u32 = 5;
pub const DEFAULT_AGP_BIN_MIN: u32 = 15;
/// The AGP percentiles, in the order of [`AgpBin`]'s fields.
pub const AGP_PERCENTILES: [f64; 5] = [5.0, 25.0, 50.0, 75.0, 95.0];

const MINUTES_PER_DAY: u32 = 1440;

/// One CGM reading.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    pub time: DateTime<Utc>,
    pub value_mg_dl: u16,
}

/// What [`glucose_report`] works on.
#[derive(Clone, Copy, Debug)]
pub struct ReportInput<'a> {
    /// CGM readings, sorted by time or not (sorted input is faster).
    pub readings: &'a [Reading],
    /// The patient's time zone: defines the local days and the AGP's time of day.
    pub zone: Tz,
    /// First local date of the window (inclusive).
    pub from: NaiveDate,
    /// Last local date of the window (inclusive).
    pub to: NaiveDate,
    /// The sensor's own interval, minutes (5 for Medtronic and Dexcom). Clamped to 1..=1440.
    pub sensor_interval_min: u32,
    /// AGP bin width, minutes (15 by default). Clamped to 1..=1440.
    pub agp_bin_min: u32,
}

impl<'a> ReportInput<'a> {
    /// An input with the default 5-minute sensor interval and 15-minute AGP bins.
    pub fn new(readings: &'a [Reading], zone: Tz, from: NaiveDate, to: NaiveDate) -> Self {
        ReportInput {
            readings,
            zone,
            from,
            to,
            sensor_interval_min: DEFAULT_SENSOR_INTERVAL_MIN,
            agp_bin_min: DEFAULT_AGP_BIN_MIN,
        }
    }
}

/// One AGP time-of-day bin. Percentiles in mg/dL.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct AgpBin {
    /// Start of the bin, minutes after local midnight.
    pub minute: u32,
    pub p5: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p95: f64,
    /// Readings in the bin.
    pub n: u32,
}

/// A level-2 hypoglycaemia episode (see the module documentation).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Episode {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub min_mg_dl: u16,
}

impl Episode {
    pub fn duration_min(&self) -> i64 {
        (self.end - self.start).num_minutes()
    }
}

/// The glucose part of a report. The first fields serialize under the
/// contract's stable JSON keys; the rest are extras.
///
/// Every `Option` is `None` when the window holds no reading.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct GlucoseReport {
    pub readings: usize,
    pub days: u32,
    pub mean_mg_dl: Option<f64>,
    pub sd_mg_dl: Option<f64>,
    /// Also `None` when the mean is 0 (every reading 0 mg/dL).
    pub cv_percent: Option<f64>,
    pub gmi_percent: Option<f64>,
    pub cgm_active_percent: Option<f64>,
    pub very_low_percent: Option<f64>,
    pub low_percent: Option<f64>,
    pub in_range_percent: Option<f64>,
    pub high_percent: Option<f64>,
    pub very_high_percent: Option<f64>,
    pub gri: Option<f64>,
    pub agp: Vec<AgpBin>,
    // --- extras ---
    /// GRI hypoglycaemia component: very low % + 0.8 × low %.
    pub gri_hypo: Option<f64>,
    /// GRI hyperglycaemia component: very high % + 0.5 × high %.
    pub gri_hyper: Option<f64>,
    /// Level-2 hypoglycaemia episodes (≥ 15 min < 54 mg/dL), in time order.
    pub hypo_episodes: Vec<Episode>,
    pub hypo_episode_count: usize,
    /// CGM active ≥ 70 % over ≥ 14 days (consensus minimum for a report).
    pub sufficient: bool,
    /// The interval and bin width actually used (after clamping).
    pub sensor_interval_min: u32,
    pub agp_bin_min: u32,
}

/// Computes the glucose report of `input` (see the module documentation for
/// every definition). Never panics. Linear in the number of readings when
/// they are sorted (two passes, and a histogram per AGP bin); unsorted input
/// costs a copy and a sort of the window's readings.
pub fn glucose_report(input: &ReportInput) -> GlucoseReport {
    let interval_min = input.sensor_interval_min.clamp(1, MINUTES_PER_DAY);
    let bin_min = input.agp_bin_min.clamp(1, MINUTES_PER_DAY);
    let days = window_days(input.from, input.to);
    let mut report = GlucoseReport {
        readings: 0,
        days,
        mean_mg_dl: None,
        sd_mg_dl: None,
        cv_percent: None,
        gmi_percent: None,
        cgm_active_percent: None,
        very_low_percent: None,
        low_percent: None,
        in_range_percent: None,
        high_percent: None,
        very_high_percent: None,
        gri: None,
        agp: Vec::new(),
        gri_hypo: None,
        gri_hyper: None,
        hypo_episodes: Vec::new(),
        hypo_episode_count: 0,
        sufficient: false,
        sensor_interval_min: interval_min,
        agp_bin_min: bin_min,
    };
    let Some((ws, we)) = window_secs(input.zone, input.from, input.to) else {
        return report;
    };

    // Sorted input (the usual case) is used in place: the window is found by
    // binary search, the time pass checks that the window's readings are in
    // order, and the readings around it are checked here. Otherwise the
    // window's readings are copied and sorted.
    let all = input.readings;
    let lo = all.partition_point(|r| r.time.timestamp() < ws);
    let hi = all.partition_point(|r| r.time.timestamp() < we).max(lo);
    let sorted_outside = all[..(lo + 1).min(all.len())].is_sorted_by_key(|r| r.time)
        && all[hi.saturating_sub(1)..].is_sorted_by_key(|r| r.time);
    if sorted_outside && fill(&mut report, &all[lo..hi], input.zone, ws, we, interval_min, bin_min) {
        return report;
    }
    let mut win: Vec<Reading> = all.iter().filter(|r| (ws..we).contains(&r.time.timestamp())).copied().collect();
    win.sort_by_key(|r| r.time);
    fill(&mut report, &win, input.zone, ws, we, interval_min, bin_min);
    report
}

/// Fills `report` from the readings of the window `[ws, we)` (Unix seconds),
/// which must be in time order. Returns `false`, leaving `report` as it was,
/// when they are not.
fn fill(
    report: &mut GlucoseReport,
    win: &[Reading],
    zone: Tz,
    ws: i64,
    we: i64,
    interval_min: u32,
    bin_min: u32,
) -> bool {
    let n = win.len();
    if n == 0 {
        return true;
    }

    let interval_s = i64::from(interval_min) * 60;
    let half_interval_s = interval_s / 2;
    let nbins = MINUTES_PER_DAY.div_ceil(bin_min) as usize;

    // Pass 1, values: sums, ranges, extremes. Range counts are branch-free:
    // readings at or above each range's lower bound.
    let mut sum: u64 = 0;
    let mut sum_sq: u128 = 0;
    let (mut ge_low, mut ge_in_range, mut gt_in_range, mut gt_high) = (0usize, 0usize, 0usize, 0usize);
    let (mut vmin, mut vmax) = (u16::MAX, u16::MIN);
    for r in win.iter() {
        let v = r.value_mg_dl;
        sum += u64::from(v);
        sum_sq += u128::from(u32::from(v) * u32::from(v));
        ge_low += usize::from(v >= VERY_LOW_BELOW);
        ge_in_range += usize::from(v >= LOW_BELOW);
        gt_in_range += usize::from(v > IN_RANGE_MAX);
        gt_high += usize::from(v > HIGH_MAX);
        vmin = vmin.min(v);
        vmax = vmax.max(v);
    }

    // Pass 2, time: the AGP bin of every reading, sensor slots, and the
    // indices of the (rare) very low readings for the episodes.
    let mut agp = AgpAccumulator::new(n, nbins, vmin, vmax);
    let mut lows: Vec<usize> = Vec::new();
    let track_lows = vmin < VERY_LOW_BELOW;
    // Minute of the day → AGP bin, without a division per reading.
    let bin_of_minute: Vec<u16> = (0..MINUTES_PER_DAY).map(|m| (m / bin_min) as u16).collect();
    let mut slots: u64 = 0;
    let mut slot_ts = i64::MIN;
    let mut offsets = OffsetCache::new(zone);
    // Unix seconds of the current UTC date's midnight: readings are sorted,
    // so the date changes once a day and the full conversion runs that often.
    let mut utc_date = NaiveDate::MIN;
    let mut utc_midnight = utc_date.and_time(NaiveTime::MIN).and_utc().timestamp();
    let (mut prev_ts, mut prev_ns) = (i64::MIN, 0u32);
    for (i, r) in win.iter().enumerate() {
        let t = r.time.naive_utc();
        if t.date() != utc_date {
            utc_date = t.date();
            utc_midnight = utc_date.and_time(NaiveTime::MIN).and_utc().timestamp();
        }
        let utc_sod = i64::from(t.time().num_seconds_from_midnight());
        let ts = utc_midnight + utc_sod;
        let ns = t.time().nanosecond();
        if ts < prev_ts || (ts == prev_ts && ns < prev_ns) {
            return false;
        }
        (prev_ts, prev_ns) = (ts, ns);

        // Local time of day (|offset| < 24 h, so one correction suffices).
        let mut local_sod = utc_sod + offsets.offset(ts);
        if local_sod < 0 {
            local_sod += 86_400;
        } else if local_sod >= 86_400 {
            local_sod -= 86_400;
        }
        agp.add(bin_of_minute[(local_sod / 60) as usize], r.value_mg_dl);

        if ts.saturating_sub(slot_ts) >= half_interval_s {
            slots += 1;
            slot_ts = ts;
        }
        if track_lows && r.value_mg_dl < VERY_LOW_BELOW {
            lows.push(i);
        }
    }
    let episodes = hypo_episodes(win, &lows, interval_s);

    let tallies = Tallies {
        n: n as u64,
        sum: u128::from(sum),
        sum_sq,
        slots,
        ranges: [
            (n - ge_low) as u64,
            (ge_low - ge_in_range) as u64,
            (ge_in_range - gt_in_range) as u64,
            (gt_in_range - gt_high) as u64,
            gt_high as u64,
        ],
    };
    let Some(d) = tallies.derive(we - ws, interval_s) else { return true };
    let [vl, l, ir, h, vh] = d.percent;

    report.readings = n;
    report.mean_mg_dl = Some(d.mean);
    report.sd_mg_dl = Some(d.sd);
    report.cv_percent = d.cv;
    report.gmi_percent = Some(d.gmi);
    report.cgm_active_percent = Some(d.active);
    report.very_low_percent = Some(vl);
    report.low_percent = Some(l);
    report.in_range_percent = Some(ir);
    report.high_percent = Some(h);
    report.very_high_percent = Some(vh);
    report.gri = Some((3.0 * vl + 2.4 * l + 1.6 * vh + 0.8 * h).min(100.0));
    report.gri_hypo = Some(vl + 0.8 * l);
    report.gri_hyper = Some(vh + 0.5 * h);
    report.agp = agp.finish(win, nbins, bin_min, vmin, vmax);
    report.hypo_episode_count = episodes.len();
    report.hypo_episodes = episodes;
    report.sufficient = report.days >= SUFFICIENT_DAYS && d.active >= SUFFICIENT_ACTIVE_PERCENT;
    true
}

/// The sums a window's figures come from. Both the per-reading report
/// ([`glucose_report`]) and the per-day sums ([`daily::combine`]) derive
/// their figures here, so the two cannot drift apart.
pub(crate) struct Tallies {
    pub n: u64,
    pub sum: u128,
    pub sum_sq: u128,
    /// Sensor slots received (see the CGM active definition).
    pub slots: u64,
    /// Readings very low, low, in range, high, very high.
    pub ranges: [u64; 5],
}

/// The figures of [`Tallies`].
pub(crate) struct Derived {
    pub mean: f64,
    pub sd: f64,
    pub cv: Option<f64>,
    pub gmi: f64,
    /// Very low, low, in range, high, very high, in % of readings.
    pub percent: [f64; 5],
    pub active: f64,
}

impl Tallies {
    /// The figures over a window of `window_s` seconds at a sensor interval
    /// of `interval_s`; `None` without readings.
    pub(crate) fn derive(&self, window_s: i64, interval_s: i64) -> Option<Derived> {
        if self.n == 0 {
            return None;
        }
        let nf = self.n as f64;
        let mean = self.sum as f64 / nf;
        // Population variance, exact in integers: (n·Σx² − (Σx)²) / n².
        let var_num = u128::from(self.n).saturating_mul(self.sum_sq).saturating_sub(self.sum.saturating_mul(self.sum));
        let sd = (var_num as f64).sqrt() / nf;
        let expected = window_s as f64 / interval_s.max(1) as f64;
        Some(Derived {
            mean,
            sd,
            cv: (mean > 0.0).then(|| sd / mean * 100.0),
            gmi: 3.31 + 0.02392 * mean,
            percent: self.ranges.map(|c| c as f64 / nf * 100.0),
            active: if expected > 0.0 { (self.slots as f64 / expected * 100.0).min(100.0) } else { 0.0 },
        })
    }
}

/// Level-2 hypoglycaemia episodes of the sorted window `win`, given the
/// indices of its readings < 54 mg/dL (ascending). See the module
/// documentation for the definition.
fn hypo_episodes(win: &[Reading], lows: &[usize], interval_s: i64) -> Vec<Episode> {
    let interval = Duration::seconds(interval_s);
    let max_gap = Duration::seconds(2 * interval_s);
    let min_duration = Duration::minutes(HYPO_EPISODE_MIN_MINUTES);
    let mut out = Vec::new();
    let mut k = 0;
    while k < lows.len() {
        let first = lows[k];
        let (mut last, mut min) = (first, win[first].value_mg_dl);
        k += 1;
        // Extend through the following readings while they are low and close.
        while k < lows.len() && lows[k] == last + 1 && win[lows[k]].time - win[last].time <= max_gap {
            last = lows[k];
            min = min.min(win[last].value_mg_dl);
            k += 1;
        }
        // The next reading, if close, is ≥ 54 (a close low one would have
        // been taken above): the episode ends there. Otherwise (a gap, or no
        // more readings) the last low reading stands for one interval.
        let last_time = win[last].time;
        let end = match win.get(last + 1) {
            Some(next) if next.time - last_time <= max_gap => next.time,
            _ => last_time.checked_add_signed(interval).unwrap_or(DateTime::<Utc>::MAX_UTC),
        };
        let start = win[first].time;
        if end - start >= min_duration {
            out.push(Episode { start, end, min_mg_dl: min });
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
