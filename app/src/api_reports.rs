//! Report pages' server functions and their data shapes (DTOs).
//!
//! Each function authenticates, parses its query values and calls one
//! `service::report` operation; the service resolves the window, asks the
//! policy and shapes the data. Without a `patient` the signed-in user's own
//! patient data space is used (`Ok(None)` when the user has none).

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};
use therapy::metrics::{AgpBin, GlucoseReport, InsulinSummary};
use therapy::report_data::{DayView, LogbookDay, LogbookPeriod, SettingsSeen, Trends};

/// Who and which local days a report page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportMeta {
    pub patient_id: String,
    pub patient_name: String,
    pub time_zone: String,
    /// First and last local day of the window, inclusive (`YYYY-MM-DD`).
    pub from: String,
    pub to: String,
    pub days: u32,
    /// The local date of the newest reading or event, if any.
    pub newest: Option<String>,
    /// The viewer's own data (else a clinic's or a care partner's view).
    pub is_own: bool,
}

/// Overview / AGP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverviewData {
    pub meta: ReportMeta,
    pub glucose: GlucoseReport,
    /// The AGP in hourly bins, for the table.
    pub agp_hourly: Vec<AgpBin>,
    /// `None` when the viewer may not see insulin data.
    pub insulin: Option<InsulinSummary>,
    /// Whether the window holds any pump data (basal or bolus).
    pub pump_data: bool,
    /// Whether the window holds basal data (pen users' long-acting insulin is not in it).
    pub basal_data: bool,
    /// The level-2 hypoglycaemia episodes, oldest first.
    pub episodes: Vec<EpisodeRow>,
}

/// A hypoglycaemia episode, in the patient's local time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeRow {
    /// `YYYY-MM-DD HH:MM`, local.
    pub start_local: String,
    pub minutes: i64,
    pub min_mg_dl: u16,
}

/// One day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DailyData {
    pub meta: ReportMeta,
    pub day: DayView,
    pub prev: String,
    pub next: String,
    /// Whether insulin and events are shown (the viewer may see them).
    pub insulin_visible: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrendsData {
    pub meta: ReportMeta,
    pub trends: Trends,
    pub pump_data: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogbookData {
    pub meta: ReportMeta,
    pub periods: Vec<LogbookPeriod>,
    /// Newest day first.
    pub days: Vec<LogbookDay>,
}

/// A device alarm, in the patient's local time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmRow {
    /// `YYYY-MM-DD HH:MM`, local.
    pub local_time: String,
    pub code: Option<u32>,
    pub description: Option<String>,
}

/// Device settings seen and alarms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceData {
    pub meta: ReportMeta,
    /// Newest first: the settings in effect at the window's start, then each
    /// different state seen in the window.
    pub settings: Vec<SettingsSeen>,
    /// Newest first.
    pub alarms: Vec<AlarmRow>,
    /// Whether the viewer may see settings and events.
    pub settings_visible: bool,
    pub events_visible: bool,
}

#[cfg(feature = "ssr")]
fn date_arg(field: &'static str, v: &Option<String>) -> Result<Option<chrono::NaiveDate>, ServerFnError> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => crate::service::report::parse_date(field, s).map(Some).map_err(crate::api::ssr::to_sfn),
        None => Ok(None),
    }
}

/// The patient to show: the given id, else the actor's own.
#[cfg(feature = "ssr")]
async fn patient_for(
    state: &crate::service::AppState,
    actor: &crate::service::Actor,
    patient: Option<String>,
) -> Result<Option<String>, ServerFnError> {
    match patient.filter(|p| !p.trim().is_empty()) {
        Some(p) => Ok(Some(p)),
        None => Ok(crate::service::policy::own_patient(state, &actor.user.id)
            .await
            .map_err(crate::api::ssr::to_sfn)?
            .map(|p| p.id)),
    }
}

#[server(prefix = "/_fn", endpoint = "report_overview", input = GetUrl)]
pub async fn report_overview(
    from: Option<String>,
    to: Option<String>,
    patient: Option<String>,
) -> Result<Option<OverviewData>, ServerFnError> {
    use crate::api::ssr;
    use crate::service::{self, report};
    let (state, actor) = ssr::actor().await?;
    let (from, to) = (date_arg("from", &from)?, date_arg("to", &to)?);
    let Some(pid) = patient_for(&state, &actor, patient).await? else { return Ok(None) };
    report::overview(&state, Some(&actor), &pid, from, to, service::now_ms()).await.map(Some).map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "report_daily", input = GetUrl)]
pub async fn report_daily(date: Option<String>, patient: Option<String>) -> Result<Option<DailyData>, ServerFnError> {
    use crate::api::ssr;
    use crate::service::{self, report};
    let (state, actor) = ssr::actor().await?;
    let date = date_arg("date", &date)?;
    let Some(pid) = patient_for(&state, &actor, patient).await? else { return Ok(None) };
    report::daily(&state, Some(&actor), &pid, date, service::now_ms()).await.map(Some).map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "report_trends", input = GetUrl)]
pub async fn report_trends(
    from: Option<String>,
    to: Option<String>,
    patient: Option<String>,
) -> Result<Option<TrendsData>, ServerFnError> {
    use crate::api::ssr;
    use crate::service::{self, report};
    let (state, actor) = ssr::actor().await?;
    let (from, to) = (date_arg("from", &from)?, date_arg("to", &to)?);
    let Some(pid) = patient_for(&state, &actor, patient).await? else { return Ok(None) };
    report::trends(&state, Some(&actor), &pid, from, to, service::now_ms()).await.map(Some).map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "report_logbook", input = GetUrl)]
pub async fn report_logbook(
    from: Option<String>,
    to: Option<String>,
    patient: Option<String>,
) -> Result<Option<LogbookData>, ServerFnError> {
    use crate::api::ssr;
    use crate::service::{self, report};
    let (state, actor) = ssr::actor().await?;
    let (from, to) = (date_arg("from", &from)?, date_arg("to", &to)?);
    let Some(pid) = patient_for(&state, &actor, patient).await? else { return Ok(None) };
    report::logbook(&state, Some(&actor), &pid, from, to, service::now_ms()).await.map(Some).map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "report_device", input = GetUrl)]
pub async fn report_device(
    from: Option<String>,
    to: Option<String>,
    patient: Option<String>,
) -> Result<Option<DeviceData>, ServerFnError> {
    use crate::api::ssr;
    use crate::service::{self, report};
    let (state, actor) = ssr::actor().await?;
    let (from, to) = (date_arg("from", &from)?, date_arg("to", &to)?);
    let Some(pid) = patient_for(&state, &actor, patient).await? else { return Ok(None) };
    report::device(&state, Some(&actor), &pid, from, to, service::now_ms()).await.map(Some).map_err(ssr::to_sfn)
}
