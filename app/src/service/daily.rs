//! Per-day CGM aggregates (`daily_glucose`), kept up to date whenever a
//! patient's glucose changes (import, upload deletion, Nightscout posts, a
//! time-zone change, linking), so that the clinic dashboard reads 14 small
//! rows per patient instead of thousands of readings.

use super::{AppState, ServiceError};
use chrono::{NaiveDate, TimeZone, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use store::entity::{daily_glucose, patients};
use therapy::metrics::daily::{DaySums, day_sums};

/// Recomputes the days of `patient_id` touched by the UTC instants
/// `[from_ms, to_ms]` (in the patient's zone). `None` bounds: every day the
/// patient has data on.
pub async fn refresh(state: &AppState, patient_id: &str, span: Option<(i64, i64)>) -> Result<(), ServiceError> {
    let txn = state.db.begin().await?;
    refresh_in(&txn, patient_id, span).await?;
    txn.commit().await?;
    Ok(())
}

/// [`refresh`] inside the caller's transaction, so that the aggregates change
/// together with the data they sum.
pub async fn refresh_in<C: ConnectionTrait>(
    db: &C,
    patient_id: &str,
    span: Option<(i64, i64)>,
) -> Result<(), ServiceError> {
    let Some(patient) = patients::Entity::find_by_id(patient_id.to_string()).one(db).await? else {
        return Ok(());
    };
    let zone = therapy::time::parse_zone(&patient.time_zone).unwrap_or(chrono_tz::UTC);
    let (from_ms, to_ms) = match span {
        Some(s) => s,
        None => match glucose_span(db, patient_id).await? {
            Some(s) => s,
            None => {
                daily_glucose::Entity::delete_many()
                    .filter(daily_glucose::Column::PatientId.eq(patient_id))
                    .exec(db)
                    .await?;
                return Ok(());
            }
        },
    };
    let day = |ms: i64| Utc.timestamp_millis_opt(ms).single().map(|t| t.with_timezone(&zone).date_naive());
    let (Some(d0), Some(d1)) = (day(from_ms.min(to_ms)), day(from_ms.max(to_ms))) else {
        return Ok(());
    };
    let (start, end) = super::report::window_ms(zone, d0, d1);
    let readings = super::dashboard::cgm_readings_in(db, patient_id, start, end).await?;
    let sums = day_sums(&readings, zone, d0, d1, therapy::metrics::DEFAULT_SENSOR_INTERVAL_MIN);
    daily_glucose::Entity::delete_many()
        .filter(daily_glucose::Column::PatientId.eq(patient_id))
        .filter(daily_glucose::Column::Day.gte(d0.to_string()))
        .filter(daily_glucose::Column::Day.lte(d1.to_string()))
        .exec(db)
        .await?;
    let rows: Vec<daily_glucose::ActiveModel> = sums.iter().map(|d| to_row(patient_id, d)).collect();
    for chunk in rows.chunks(200) {
        daily_glucose::Entity::insert_many(chunk.to_vec()).exec_without_returning(db).await?;
    }
    Ok(())
}

/// The whole span of a patient's CGM data, UTC milliseconds.
async fn glucose_span<C: ConnectionTrait>(db: &C, patient_id: &str) -> Result<Option<(i64, i64)>, ServiceError> {
    use sea_orm::QuerySelect;
    use sea_orm::sea_query::{Expr, Func};
    let row: Option<(Option<i64>, Option<i64>)> = store::entity::glucose::Entity::find()
        .select_only()
        .expr(Func::min(Expr::col(store::entity::glucose::Column::TimeMs)))
        .expr(Func::max(Expr::col(store::entity::glucose::Column::TimeMs)))
        .filter(store::entity::glucose::Column::PatientId.eq(patient_id))
        .filter(store::entity::glucose::Column::Kind.eq("cgm"))
        .into_tuple()
        .one(db)
        .await?;
    Ok(match row {
        Some((Some(a), Some(b))) => Some((a, b)),
        _ => None,
    })
}

fn to_row(patient_id: &str, d: &DaySums) -> daily_glucose::ActiveModel {
    let i = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    let l = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    daily_glucose::ActiveModel {
        patient_id: Set(patient_id.to_string()),
        day: Set(d.day.to_string()),
        readings: Set(i(d.readings)),
        slots: Set(i(d.slots)),
        expected: Set(i(d.expected)),
        sum_mg_dl: Set(l(d.sum_mg_dl)),
        sum_sq_mg_dl: Set(l(d.sum_sq_mg_dl)),
        very_low: Set(i(d.very_low)),
        low: Set(i(d.low)),
        in_range: Set(i(d.in_range)),
        high: Set(i(d.high)),
        very_high: Set(i(d.very_high)),
    }
}

/// A stored row back as day sums (rows with an unreadable day are skipped).
pub fn from_row(r: &daily_glucose::Model) -> Option<DaySums> {
    let u = |v: i32| u32::try_from(v).unwrap_or(0);
    let ul = |v: i64| u64::try_from(v).unwrap_or(0);
    Some(DaySums {
        day: NaiveDate::parse_from_str(&r.day, "%Y-%m-%d").ok()?,
        readings: u(r.readings),
        slots: u(r.slots),
        expected: u(r.expected),
        sum_mg_dl: ul(r.sum_mg_dl),
        sum_sq_mg_dl: ul(r.sum_sq_mg_dl),
        very_low: u(r.very_low),
        low: u(r.low),
        in_range: u(r.in_range),
        high: u(r.high),
        very_high: u(r.very_high),
    })
}

/// Refreshes after a change, logging rather than failing the caller: the
/// change itself is committed; a stale aggregate is repaired by the next
/// refresh (and `diabase` refreshes every patient at start-up).
pub async fn refresh_logged(state: &AppState, patient_id: &str, span: Option<(i64, i64)>) {
    if let Err(e) = refresh(state, patient_id, span).await {
        tracing::error!(error = %e, "daily aggregates could not be refreshed");
    }
}
