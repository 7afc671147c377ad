//! Reports over a date window in the patient's zone.

use super::{dashboard::cgm_readings, policy, Actor, AppState, ServiceError};
use chrono::NaiveDate;
use sea_orm::EntityTrait;
use store::entity::patients;
use therapy::metrics::{glucose_report, GlucoseReport, ReportInput};

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
    if let Some(a) = actor {
        policy::require(state, a, policy::Action::ReadGlucose, patient_id).await?;
    }
    if to < from {
        return Err(ServiceError::bad("to", "The end date is before the start date."));
    }
    if (to - from).num_days() > 366 * 5 {
        return Err(ServiceError::bad("to", "A report covers at most five years."));
    }
    let patient = patients::Entity::find_by_id(patient_id.to_string())
        .one(&state.db)
        .await?
        .ok_or(ServiceError::NotFound)?;
    let zone = therapy::time::parse_zone(&patient.time_zone).unwrap_or(chrono_tz::UTC);
    let (start, end) = window_ms(zone, from, to);
    let readings = cgm_readings(state, patient_id, start, end).await?;
    Ok(glucose_report(&ReportInput::new(&readings, zone, from, to)))
}

/// The UTC milliseconds of local midnight starting `from` and local midnight
/// after `to`, in `zone` (DST-aware).
pub fn window_ms(zone: chrono_tz::Tz, from: NaiveDate, to: NaiveDate) -> (i64, i64) {
    let midnight = |d: NaiveDate| {
        therapy::time::to_utc(therapy::DeviceTime(d.and_hms_opt(0, 0, 0).unwrap_or_default()), zone, 0).timestamp_millis()
    };
    (midnight(from), midnight(to + chrono::Duration::days(1)))
}
