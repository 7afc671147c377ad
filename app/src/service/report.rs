//! Reports over a date window in the patient's zone: the glucose report of
//! the contract, and the report pages' data (overview, daily, trends,
//! logbook, device settings and alarms) and the PDF's bundle.
//!
//! Every operation takes the window as whole local days `from..=to` in the
//! patient's zone and asks the policy first (`actor` is `None` for the
//! operator's command line). The pure shaping lives in
//! `therapy::report_data`; this module reads the store and decides.

use super::{Actor, AppState, ServiceError, dashboard::cgm_readings, policy};
use crate::api_reports::{
    AlarmRow, DailyData, DeviceData, EpisodeRow, LogbookData, OverviewData, ReportMeta, TrendsData,
};
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use store::entity::{glucose as glucose_t, patients, therapy_events, users};
use therapy::GlucoseUnit;
use therapy::metrics::{GlucoseReport, InsulinSummary, ReportInput, glucose_report, insulin_summary};
use therapy::record::RecordKind;
use therapy::report_data::{self as rd, BasalEvent, TempRate, TherapyData};

/// Days in a window when the caller names neither end.
pub const DEFAULT_DAYS: i64 = 14;
/// The longest window a report covers.
pub const MAX_DAYS: i64 = 366 * 5;
/// Daily pages in a PDF at most (the newest days of the window).
pub const PDF_MAX_DAYS: usize = 31;
/// A temp basal recorded without a duration is taken to last this long.
const TEMP_DEFAULT_MIN: u32 = 30;

/// Parses a `YYYY-MM-DD` query value.
pub fn parse_date(field: &'static str, s: &str) -> Result<NaiveDate, ServiceError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| ServiceError::bad(field, format!("{field} must be a date YYYY-MM-DD, got {s:?}")))
}

/// The glucose report of `patient_id` from `from` to `to` (inclusive local dates).
/// `actor` is `None` for the operator's command line.
pub async fn glucose(
    state: &AppState,
    actor: Option<&Actor>,
    patient_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<GlucoseReport, ServiceError> {
    require(state, actor, policy::Action::ReadGlucose, patient_id).await?;
    check_window(from, to)?;
    let patient = patient(state, patient_id).await?;
    let zone = zone_of(&patient);
    let (start, end) = window_ms(zone, from, to);
    let readings = cgm_readings(state, patient_id, start, end).await?;
    Ok(glucose_report(&ReportInput::new(&readings, zone, from, to)))
}

/// The UTC milliseconds of local midnight starting `from` and local midnight
/// after `to`, in `zone` (DST-aware).
pub fn window_ms(zone: chrono_tz::Tz, from: NaiveDate, to: NaiveDate) -> (i64, i64) {
    let midnight = |d: NaiveDate| {
        therapy::time::to_utc(therapy::DeviceTime(d.and_hms_opt(0, 0, 0).unwrap_or_default()), zone, 0)
            .timestamp_millis()
    };
    (midnight(from), midnight(to + chrono::Duration::days(1)))
}

// ---------------------------------------------------------------------------
// Authorization and the window.

async fn require(
    state: &AppState,
    actor: Option<&Actor>,
    action: policy::Action,
    patient_id: &str,
) -> Result<(), ServiceError> {
    if let Some(a) = actor {
        policy::require(state, a, action, patient_id).await?;
    }
    Ok(())
}

/// Whether the actor may also see a part of a page (the operator always may).
async fn allowed(
    state: &AppState,
    actor: Option<&Actor>,
    action: policy::Action,
    patient_id: &str,
) -> Result<bool, ServiceError> {
    match actor {
        Some(a) => Ok(policy::can(state, a, action, patient_id).await?.is_some()),
        None => Ok(true),
    }
}

pub fn check_window(from: NaiveDate, to: NaiveDate) -> Result<(), ServiceError> {
    if to < from {
        return Err(ServiceError::bad("to", "The end date is before the start date."));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(ServiceError::bad("to", "A report covers at most five years."));
    }
    Ok(())
}

async fn patient(state: &AppState, patient_id: &str) -> Result<patients::Model, ServiceError> {
    patients::Entity::find_by_id(patient_id.to_string()).one(&state.db).await?.ok_or(ServiceError::NotFound)
}

fn zone_of(p: &patients::Model) -> Tz {
    therapy::time::parse_zone(&p.time_zone).unwrap_or(chrono_tz::UTC)
}

/// The local date of the patient's newest glucose value, else newest event.
pub async fn newest_date(state: &AppState, patient_id: &str, zone: Tz) -> Result<Option<NaiveDate>, ServiceError> {
    let g: Option<i64> = glucose_t::Entity::find()
        .select_only()
        .column(glucose_t::Column::TimeMs)
        .filter(glucose_t::Column::PatientId.eq(patient_id))
        .order_by_desc(glucose_t::Column::TimeMs)
        .limit(1)
        .into_tuple()
        .one(&state.db)
        .await?;
    let t = match g {
        Some(t) => Some(t),
        None => {
            therapy_events::Entity::find()
                .select_only()
                .column(therapy_events::Column::TimeMs)
                .filter(therapy_events::Column::PatientId.eq(patient_id))
                .order_by_desc(therapy_events::Column::TimeMs)
                .limit(1)
                .into_tuple()
                .one(&state.db)
                .await?
        }
    };
    Ok(t.and_then(|t| Utc.timestamp_millis_opt(t).single()).map(|t| t.with_timezone(&zone).date_naive()))
}

/// An authorized window: the patient, the zone, the days and their UTC bounds.
struct Window {
    patient: patients::Model,
    zone: Tz,
    from: NaiveDate,
    to: NaiveDate,
    start_ms: i64,
    end_ms: i64,
    newest: Option<NaiveDate>,
    own: bool,
}

impl Window {
    fn meta(&self) -> ReportMeta {
        ReportMeta {
            patient_id: self.patient.id.clone(),
            patient_name: self.patient.display_name.clone(),
            time_zone: self.zone.name().to_string(),
            from: self.from.to_string(),
            to: self.to.to_string(),
            days: therapy::metrics::window_days(self.from, self.to),
            newest: self.newest.map(|d| d.to_string()),
            is_own: self.own,
        }
    }
}

/// Asks the policy for `action`, then resolves the window: both ends as
/// given; one end given: 14 days from or to it; none: the 14 days ending on
/// the newest data's local date (today when there is none).
#[allow(clippy::too_many_arguments)] // the report window and its options, named at every call
async fn open(
    state: &AppState,
    actor: Option<&Actor>,
    action: policy::Action,
    patient_id: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    now_ms: i64,
    page: &str,
) -> Result<Window, ServiceError> {
    let grant = match actor {
        Some(a) => Some(policy::can(state, a, action, patient_id).await?.ok_or(ServiceError::NotFound)?),
        None => None,
    };
    let mut patient = patient(state, patient_id).await?;
    patient.display_name = state.config.cipher.open_lossy(Some(&patient.display_name)).unwrap_or_default();
    let zone = zone_of(&patient);
    let newest = newest_date(state, patient_id, zone).await?;
    let span = Duration::days(DEFAULT_DAYS - 1);
    let (from, to) = match (from, to) {
        (Some(f), Some(t)) => (f, t),
        (Some(f), None) => (f, f + span),
        (None, Some(t)) => (t - span, t),
        (None, None) => {
            let today = Utc.timestamp_millis_opt(now_ms).single().unwrap_or_default().with_timezone(&zone).date_naive();
            let t = newest.unwrap_or(today);
            (t - span, t)
        }
    };
    check_window(from, to)?;
    if let (Some(a), Some(g)) = (actor, &grant)
        && *g != policy::Grant::Owner
    {
        policy::audit_read(state, a, patient_id, "read.report", g, &format!("{page} {from}..{to}")).await?;
    }
    let (start_ms, end_ms) = window_ms(zone, from, to);
    let own = grant.as_ref().is_none_or(|g| *g == policy::Grant::Owner);
    Ok(Window { patient, zone, from, to, start_ms, end_ms, newest, own })
}

// ---------------------------------------------------------------------------
// Reading the store.

/// What to read.
#[derive(Clone, Copy)]
struct Parts {
    glucose: bool,
    insulin: bool,
    alarms: bool,
}

/// Keeps, per kind, within any 150-second neighbourhood, only the rows of
/// the best (lowest) source rank present there (as for CGM readings): the
/// same bolus from a pump upload and a CareLink export counts once. Rows
/// sorted by time; returns the kept indices in order.
fn best_source(rows: &[(String, i64, i16)]) -> Vec<usize> {
    const NEAR_MS: i64 = 150_000;
    let mut keep = Vec::with_capacity(rows.len());
    let mut by_kind: std::collections::BTreeMap<&str, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        by_kind.entry(r.0.as_str()).or_default().push(i);
    }
    for idx in by_kind.values() {
        let (mut lo, mut hi) = (0usize, 0usize);
        for (k, &i) in idx.iter().enumerate() {
            let t = rows[i].1;
            while rows[idx[lo]].1 < t - NEAR_MS {
                lo += 1;
            }
            hi = hi.max(k);
            while hi + 1 < idx.len() && rows[idx[hi + 1]].1 <= t + NEAR_MS {
                hi += 1;
            }
            let best = idx[lo..=hi].iter().map(|&j| rows[j].2).min().unwrap_or(rows[i].2);
            if rows[i].2 == best {
                keep.push(i);
            }
        }
    }
    keep.sort_unstable();
    keep
}

type EventRow = (String, i64, i16, Option<f64>, Option<i32>, String);

async fn events(
    state: &AppState,
    patient_id: &str,
    kinds: &[&str],
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<EventRow>, ServiceError> {
    let rows: Vec<EventRow> = therapy_events::Entity::find()
        .select_only()
        .column(therapy_events::Column::Kind)
        .column(therapy_events::Column::TimeMs)
        .column(therapy_events::Column::SourceRank)
        .column(therapy_events::Column::Amount)
        .column(therapy_events::Column::DurationMin)
        .column(therapy_events::Column::RecordJson)
        .filter(therapy_events::Column::PatientId.eq(patient_id))
        .filter(therapy_events::Column::Kind.is_in(kinds.iter().copied()))
        .filter(therapy_events::Column::TimeMs.gte(from_ms))
        .filter(therapy_events::Column::TimeMs.lt(to_ms))
        .order_by_asc(therapy_events::Column::TimeMs)
        .into_tuple()
        .all(&state.db)
        .await?;
    let keys: Vec<(String, i64, i16)> = rows.iter().map(|r| (r.0.clone(), r.1, r.2)).collect();
    let keep = best_source(&keys);
    if keep.len() == rows.len() {
        return Ok(rows);
    }
    let mut rows: Vec<Option<EventRow>> = rows.into_iter().map(Some).collect();
    Ok(keep.into_iter().filter_map(|i| rows.get_mut(i).and_then(Option::take)).collect())
}

fn record_kind(json: &str) -> Option<RecordKind> {
    serde_json::from_str::<therapy::Record>(json).ok().map(|r| r.kind)
}

fn basal_event(row: &EventRow) -> Option<BasalEvent> {
    let (kind, t, _, amount, duration, json) = row;
    let time_ms = *t;
    Some(match kind.as_str() {
        "basal_profile_start" => BasalEvent::Scheduled { time_ms, rate_u_h: (*amount)? },
        "suspend" => BasalEvent::Suspend { time_ms },
        "resume" => BasalEvent::Resume { time_ms },
        "temp_basal" => {
            let RecordKind::TempBasal { rate_u_h, percent, duration_min } = record_kind(json)? else { return None };
            let rate = match (rate_u_h, percent) {
                (Some(r), _) => TempRate::UPerH(r),
                (None, Some(p)) => TempRate::Percent(f64::from(p)),
                (None, None) => return None,
            };
            let duration_min =
                duration_min.or_else(|| duration.and_then(|d| u32::try_from(d).ok())).unwrap_or(TEMP_DEFAULT_MIN);
            BasalEvent::Temp { time_ms, rate, duration_min }
        }
        _ => return None,
    })
}

/// Reads the window's data (one source per instant), with the basal
/// timeline built from the pump events.
async fn load(state: &AppState, w: &Window, parts: Parts) -> Result<TherapyData, ServiceError> {
    let pid = w.patient.id.as_str();
    let mut d = TherapyData::default();
    if parts.glucose {
        d.cgm = cgm_readings(state, pid, w.start_ms, w.end_ms).await?;
        let rows: Vec<(i64, i32, i16, Option<String>)> = glucose_t::Entity::find()
            .select_only()
            .column(glucose_t::Column::TimeMs)
            .column(glucose_t::Column::ValueMgDl)
            .column(glucose_t::Column::SourceRank)
            .column(glucose_t::Column::BgSource)
            .filter(glucose_t::Column::PatientId.eq(pid))
            .filter(glucose_t::Column::Kind.eq("bg"))
            .filter(glucose_t::Column::TimeMs.gte(w.start_ms))
            .filter(glucose_t::Column::TimeMs.lt(w.end_ms))
            .order_by_asc(glucose_t::Column::TimeMs)
            .into_tuple()
            .all(&state.db)
            .await?;
        let keys: Vec<(String, i64, i16)> = rows.iter().map(|r| ("bg".to_string(), r.0, r.2)).collect();
        d.bg = best_source(&keys)
            .into_iter()
            .filter_map(|i| {
                let (t, v, _, src) = rows.get(i)?;
                Some(rd::BgPoint { time_ms: *t, mg_dl: u16::try_from(*v).ok()?, source: src.clone() })
            })
            .collect();
    }
    if parts.insulin {
        let rows = events(state, pid, &["bolus", "carbs"], w.start_ms, w.end_ms).await?;
        for (kind, t, _, amount, duration, json) in &rows {
            let Some(amount) = *amount else { continue };
            if kind == "carbs" {
                d.carbs.push(rd::CarbPoint { time_ms: *t, grams: amount });
            } else {
                // The extended part, delivered (as `amount` is) or else programmed.
                let (subtype, extended_u) = match record_kind(json) {
                    Some(RecordKind::Bolus { subtype, extended_delivered_u, extended_programmed_u, .. }) => (
                        serde_json::to_value(subtype).ok().and_then(|v| v.as_str().map(str::to_string)),
                        extended_delivered_u.or(extended_programmed_u),
                    ),
                    _ => (None, None),
                };
                d.boluses.push(rd::BolusPoint {
                    time_ms: *t,
                    units: amount,
                    subtype,
                    duration_min: duration.and_then(|x| u32::try_from(x).ok()),
                    extended_u,
                });
            }
        }
        let lookback = w.start_ms.saturating_sub(rd::MAX_BASAL_GAP_MS);
        let rows =
            events(state, pid, &["basal_profile_start", "temp_basal", "suspend", "resume"], lookback, w.end_ms).await?;
        let basal: Vec<BasalEvent> = rows.iter().filter_map(basal_event).collect();
        d.basal = rd::basal_timeline(&basal, w.start_ms, w.end_ms);
    }
    if parts.alarms {
        d.alarms = alarms(state, pid, w.start_ms, w.end_ms).await?;
    }
    d.sort();
    Ok(d)
}

async fn alarms(state: &AppState, pid: &str, from_ms: i64, to_ms: i64) -> Result<Vec<rd::AlarmPoint>, ServiceError> {
    Ok(events(state, pid, &["alarm"], from_ms, to_ms)
        .await?
        .iter()
        .filter_map(|(_, t, _, _, _, json)| match record_kind(json)? {
            RecordKind::Alarm { code, description } => Some(rd::AlarmPoint { time_ms: *t, code, description }),
            _ => None,
        })
        .collect())
}

fn insulin_of(d: &TherapyData, w: &Window) -> InsulinSummary {
    let at = |ms: i64| Utc.timestamp_millis_opt(ms).single();
    let boluses: Vec<_> = d.boluses.iter().filter_map(|b| Some((at(b.time_ms)?, b.units))).collect();
    let carbs: Vec<_> = d.carbs.iter().filter_map(|c| Some((at(c.time_ms)?, c.grams))).collect();
    insulin_summary(&boluses, &rd::basal_segments(&d.basal), &carbs, w.zone, w.from, w.to)
}

// ---------------------------------------------------------------------------
// The pages.

/// Overview / AGP: the glucose report, the hourly AGP table and the insulin
/// and carbohydrate summary.
pub async fn overview(
    state: &AppState,
    actor: Option<&Actor>,
    patient_id: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    now_ms: i64,
) -> Result<OverviewData, ServiceError> {
    let w = open(state, actor, policy::Action::ReadGlucose, patient_id, from, to, now_ms, "overview").await?;
    let insulin_ok = allowed(state, actor, policy::Action::ReadInsulin, patient_id).await?;
    let d = load(state, &w, Parts { glucose: true, insulin: insulin_ok, alarms: false }).await?;
    Ok(overview_of(&w, &d, insulin_ok))
}

fn overview_of(w: &Window, d: &TherapyData, insulin_ok: bool) -> OverviewData {
    let glucose = glucose_report(&ReportInput::new(&d.cgm, w.zone, w.from, w.to));
    let mut hourly = ReportInput::new(&d.cgm, w.zone, w.from, w.to);
    hourly.agp_bin_min = 60;
    let agp_hourly = glucose_report(&hourly).agp;
    let episodes = glucose
        .hypo_episodes
        .iter()
        .map(|e| EpisodeRow {
            start_local: e.start.with_timezone(&w.zone).format("%Y-%m-%d %H:%M").to_string(),
            minutes: e.duration_min(),
            min_mg_dl: e.min_mg_dl,
        })
        .collect();
    OverviewData {
        meta: w.meta(),
        episodes,
        glucose,
        agp_hourly,
        insulin: insulin_ok.then(|| insulin_of(d, w)),
        pump_data: d.has_pump_data(),
        basal_data: !d.basal.is_empty(),
    }
}

/// One local day (default: the newest data's day).
pub async fn daily(
    state: &AppState,
    actor: Option<&Actor>,
    patient_id: &str,
    date: Option<NaiveDate>,
    now_ms: i64,
) -> Result<DailyData, ServiceError> {
    let w = open(state, actor, policy::Action::ReadGlucose, patient_id, date, date, now_ms, "daily").await?;
    // Without a date, `open` picked 14 days ending on the newest: show its last.
    let w = Window { from: w.to, start_ms: window_ms(w.zone, w.to, w.to).0, ..w };
    let insulin_ok = allowed(state, actor, policy::Action::ReadInsulin, patient_id).await?
        && allowed(state, actor, policy::Action::ReadEvents, patient_id).await?;
    let d = load(state, &w, Parts { glucose: true, insulin: insulin_ok, alarms: insulin_ok }).await?;
    let day = rd::day_views(&d, w.zone, w.to, w.to).pop().ok_or(ServiceError::NotFound)?;
    Ok(DailyData {
        meta: w.meta(),
        prev: (w.to - Duration::days(1)).to_string(),
        next: (w.to + Duration::days(1)).to_string(),
        day,
        insulin_visible: insulin_ok,
    })
}

/// Trends by hour of the day and day of the week.
pub async fn trends(
    state: &AppState,
    actor: Option<&Actor>,
    patient_id: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    now_ms: i64,
) -> Result<TrendsData, ServiceError> {
    let w = open(state, actor, policy::Action::ReadGlucose, patient_id, from, to, now_ms, "trends").await?;
    let insulin_ok = allowed(state, actor, policy::Action::ReadInsulin, patient_id).await?;
    let d = load(state, &w, Parts { glucose: true, insulin: insulin_ok, alarms: false }).await?;
    Ok(TrendsData { meta: w.meta(), trends: rd::trends(&d, w.zone, w.from, w.to), pump_data: d.has_pump_data() })
}

/// The logbook, newest day first.
pub async fn logbook(
    state: &AppState,
    actor: Option<&Actor>,
    patient_id: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    now_ms: i64,
) -> Result<LogbookData, ServiceError> {
    let w = open(state, actor, policy::Action::ReadGlucose, patient_id, from, to, now_ms, "logbook").await?;
    let insulin_ok = allowed(state, actor, policy::Action::ReadInsulin, patient_id).await?;
    let d = load(state, &w, Parts { glucose: true, insulin: insulin_ok, alarms: false }).await?;
    let mut days = rd::logbook(&d, w.zone, w.from, w.to);
    days.reverse();
    Ok(LogbookData { meta: w.meta(), periods: rd::logbook_periods(), days })
}

/// Device settings seen (the state at the window's start and every change
/// in it) and the alarms of the window.
pub async fn device(
    state: &AppState,
    actor: Option<&Actor>,
    patient_id: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    now_ms: i64,
) -> Result<DeviceData, ServiceError> {
    let settings_ok = allowed(state, actor, policy::Action::ReadSettings, patient_id).await?;
    let events_ok = allowed(state, actor, policy::Action::ReadEvents, patient_id).await?;
    let action = if settings_ok { policy::Action::ReadSettings } else { policy::Action::ReadEvents };
    let w = open(state, actor, action, patient_id, from, to, now_ms, "device").await?;
    let mut settings = Vec::new();
    if settings_ok {
        let rows: Vec<(i64, String)> = therapy_events::Entity::find()
            .select_only()
            .column(therapy_events::Column::TimeMs)
            .column(therapy_events::Column::RecordJson)
            .filter(therapy_events::Column::PatientId.eq(w.patient.id.as_str()))
            .filter(therapy_events::Column::Kind.eq("settings"))
            .filter(therapy_events::Column::TimeMs.lt(w.end_ms))
            .order_by_asc(therapy_events::Column::TimeMs)
            .limit(10_000)
            .into_tuple()
            .all(&state.db)
            .await?;
        let parsed: Vec<(i64, serde_json::Map<String, serde_json::Value>)> = rows
            .iter()
            .filter_map(|(t, json)| match record_kind(json)? {
                RecordKind::Settings { values } => Some((*t, values)),
                _ => None,
            })
            .collect();
        let refs: Vec<(i64, &serde_json::Map<String, serde_json::Value>)> =
            parsed.iter().map(|(t, v)| (*t, v)).collect();
        let history = rd::settings_history(&refs, w.zone);
        // The state in effect at the start, then those seen in the window.
        let start = match history.iter().position(|s| s.last_seen >= w.from) {
            Some(i) if i == 0 || history[i].first_seen <= w.from => i,
            Some(i) => i - 1,
            None => history.len().saturating_sub(1),
        };
        settings = history.get(start..).map(<[_]>::to_vec).unwrap_or_default();
        settings.reverse();
    }
    let mut alarm_rows = Vec::new();
    if events_ok {
        for a in alarms(state, &w.patient.id, w.start_ms, w.end_ms).await?.into_iter().rev() {
            let local = Utc
                .timestamp_millis_opt(a.time_ms)
                .single()
                .map(|t| t.with_timezone(&w.zone).format("%Y-%m-%d %H:%M").to_string());
            alarm_rows.push(AlarmRow {
                local_time: local.unwrap_or_default(),
                code: a.code,
                description: a.description,
            });
        }
    }
    Ok(DeviceData {
        meta: w.meta(),
        settings,
        alarms: alarm_rows,
        settings_visible: settings_ok,
        events_visible: events_ok,
    })
}

// ---------------------------------------------------------------------------
// The PDF's data.

/// Everything the PDF shows: the overview and the newest days' pages.
#[derive(Clone, Debug)]
pub struct ReportBundle {
    pub overview: OverviewData,
    /// The daily pages, oldest first (the newest [`PDF_MAX_DAYS`] days).
    pub days: Vec<therapy::report_data::DayView>,
    /// The window had more days than daily pages.
    pub days_capped: bool,
    /// The viewer's glucose unit.
    pub unit: GlucoseUnit,
    /// When it was made, in the patient's zone (`YYYY-MM-DD HH:MM Zone`).
    pub generated_at: String,
    pub insulin_visible: bool,
}

/// The PDF's data for `patient_id` over `from..=to` (defaults as for the
/// pages), in the viewer's unit (the actor's; for the operator, the
/// patient's own account's).
pub async fn bundle(
    state: &AppState,
    actor: Option<&Actor>,
    patient_id: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    now_ms: i64,
) -> Result<ReportBundle, ServiceError> {
    let w = open(state, actor, policy::Action::ReadGlucose, patient_id, from, to, now_ms, "pdf").await?;
    let insulin_ok = allowed(state, actor, policy::Action::ReadInsulin, patient_id).await?
        && allowed(state, actor, policy::Action::ReadEvents, patient_id).await?;
    let d = load(state, &w, Parts { glucose: true, insulin: insulin_ok, alarms: insulin_ok }).await?;
    let overview = overview_of(&w, &d, insulin_ok);
    let total = therapy::metrics::window_days(w.from, w.to) as usize;
    let first_day = if total > PDF_MAX_DAYS { w.to - Duration::days(PDF_MAX_DAYS as i64 - 1) } else { w.from };
    let days = rd::day_views(&d, w.zone, first_day, w.to);
    let unit = match actor {
        Some(a) => a.user.glucose_unit.parse().unwrap_or_default(),
        None => match &w.patient.user_id {
            Some(uid) => users::Entity::find_by_id(uid.clone())
                .one(&state.db)
                .await?
                .and_then(|u| u.glucose_unit.parse().ok())
                .unwrap_or_default(),
            None => GlucoseUnit::default(),
        },
    };
    let generated_at = Utc
        .timestamp_millis_opt(now_ms)
        .single()
        .map(|t| format!("{} {}", t.with_timezone(&w.zone).format("%Y-%m-%d %H:%M"), w.zone.name()))
        .unwrap_or_default();
    Ok(ReportBundle {
        overview,
        days,
        days_capped: total > PDF_MAX_DAYS,
        unit,
        generated_at,
        insulin_visible: insulin_ok,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn best_source_is_per_kind_and_neighbourhood() {
        let rows: Vec<(String, i64, i16)> = vec![
            ("bolus".into(), 0, 1),
            ("bolus".into(), 60_000, 0),    // the same bolus from the device: wins
            ("carbs".into(), 61_000, 1),    // another kind: kept
            ("bolus".into(), 1_000_000, 1), // only the file has this one
            ("bolus".into(), 1_000_500, 1), // two of the same rank: both kept
        ];
        assert_eq!(super::best_source(&rows), vec![1, 2, 3, 4]);
        assert!(super::best_source(&[]).is_empty());
    }
}
