//! The logbook: per local day and per period of the day (by local
//! wall-clock time), the CGM average, the fingersticks, carbs and boluses.

use super::{LocalClock, TherapyData, dates, day_bounds_ms};
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A period of the day: its name and local start minute; it lasts until the next one's start.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LogbookPeriod {
    pub name: String,
    pub start_min: u32,
    pub end_min: u32,
}

/// The periods: night 00:00–06:00, breakfast 06:00–11:00, lunch 11:00–16:00,
/// dinner 16:00–21:00, evening 21:00–24:00.
pub const LOGBOOK_PERIODS: [(&str, u32); 5] =
    [("night", 0), ("breakfast", 360), ("lunch", 660), ("dinner", 960), ("evening", 1260)];

/// One day × period.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct LogbookCell {
    pub cgm_readings: u32,
    pub cgm_mean_mg_dl: Option<f64>,
    pub cgm_min_mg_dl: Option<u16>,
    pub cgm_max_mg_dl: Option<u16>,
    /// Fingerstick values in time order.
    pub bg_mg_dl: Vec<u16>,
    pub bg_mean_mg_dl: Option<f64>,
    pub carbs_g: f64,
    pub bolus_u: f64,
    pub boluses: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LogbookDay {
    pub date: NaiveDate,
    /// One cell per period of [`LOGBOOK_PERIODS`], in order.
    pub cells: Vec<LogbookCell>,
    pub cgm_mean_mg_dl: Option<f64>,
    pub carbs_g: f64,
    pub bolus_u: f64,
    /// `None` when the day has no basal data.
    pub basal_u: Option<f64>,
}

/// The periods with their end minutes.
pub fn logbook_periods() -> Vec<LogbookPeriod> {
    LOGBOOK_PERIODS
        .iter()
        .enumerate()
        .map(|(i, (n, s))| LogbookPeriod {
            name: (*n).to_string(),
            start_min: *s,
            end_min: LOGBOOK_PERIODS.get(i + 1).map_or(1440, |p| p.1),
        })
        .collect()
}

fn period_of(minute: u32) -> usize {
    LOGBOOK_PERIODS.iter().rposition(|p| p.1 <= minute).unwrap_or(0)
}

#[derive(Default, Clone)]
struct Acc {
    n: u32,
    sum: u64,
    min: Option<u16>,
    max: Option<u16>,
}

impl Acc {
    fn add(&mut self, v: u16) {
        self.n += 1;
        self.sum += u64::from(v);
        self.min = Some(self.min.map_or(v, |m| m.min(v)));
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
    }
    fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum as f64 / f64::from(self.n))
    }
}

/// The logbook of the days `from..=to` of `data`, in `zone`, newest day last.
pub fn logbook(data: &TherapyData, zone: Tz, from: NaiveDate, to: NaiveDate) -> Vec<LogbookDay> {
    let days: Vec<NaiveDate> = dates(from, to).collect();
    let np = LOGBOOK_PERIODS.len();
    let mut cells = vec![vec![LogbookCell::default(); np]; days.len()];
    let mut cgm = vec![vec![Acc::default(); np]; days.len()];
    let mut day_cgm = vec![Acc::default(); days.len()];
    let mut clock = LocalClock::new(zone);
    let index = |clock: &mut LocalClock, ms: i64| -> Option<(usize, usize)> {
        let d = clock.date(ms)?;
        let di = usize::try_from((d - from).num_days()).ok().filter(|i| *i < days.len())?;
        Some((di, period_of(clock.minute_of_day(ms))))
    };
    for r in &data.cgm {
        if let Some((d, p)) = index(&mut clock, r.time.timestamp_millis()) {
            cgm[d][p].add(r.value_mg_dl);
            day_cgm[d].add(r.value_mg_dl);
        }
    }
    for b in &data.bg {
        if let Some((d, p)) = index(&mut clock, b.time_ms) {
            cells[d][p].bg_mg_dl.push(b.mg_dl);
        }
    }
    for c in data.carbs.iter().filter(|c| super::usable(c.grams)) {
        if let Some((d, p)) = index(&mut clock, c.time_ms) {
            cells[d][p].carbs_g += c.grams;
        }
    }
    for b in data.boluses.iter().filter(|b| super::usable(b.units)) {
        if let Some((d, p)) = index(&mut clock, b.time_ms) {
            cells[d][p].bolus_u += b.units;
            cells[d][p].boluses += u32::from(b.units > 0.0);
        }
    }
    days.iter()
        .enumerate()
        .map(|(i, &date)| {
            let (s, e) = day_bounds_ms(zone, date);
            let mut row = std::mem::take(&mut cells[i]);
            for (p, cell) in row.iter_mut().enumerate() {
                let a = &cgm[i][p];
                cell.cgm_readings = a.n;
                cell.cgm_mean_mg_dl = a.mean();
                cell.cgm_min_mg_dl = a.min;
                cell.cgm_max_mg_dl = a.max;
                cell.bg_mean_mg_dl = (!cell.bg_mg_dl.is_empty())
                    .then(|| cell.bg_mg_dl.iter().map(|v| f64::from(*v)).sum::<f64>() / cell.bg_mg_dl.len() as f64);
            }
            let lo = data.basal.partition_point(|p| p.end_ms <= s);
            let pieces = data.basal[lo..].iter().take_while(|p| p.start_ms < e);
            let mut any = false;
            let basal: f64 = pieces.inspect(|_| any = true).map(|p| p.units_within(s, e)).sum();
            LogbookDay {
                date,
                carbs_g: row.iter().map(|c| c.carbs_g).sum(),
                bolus_u: row.iter().map(|c| c.bolus_u).sum(),
                cells: row,
                cgm_mean_mg_dl: day_cgm[i].mean(),
                basal_u: any.then_some(basal),
            }
        })
        .collect()
}
