//! The patient dashboard: the latest reading and the last 14 days' figures.

use super::{Actor, AppState, ServiceError, policy};
use crate::model::{DashboardData, LatestReading};
use chrono::{Duration, TimeZone, Utc};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use store::entity::{glucose, uploads};
use therapy::metrics::{Reading, ReportInput, glucose_report};

/// CGM readings of a patient in [from_ms, to_ms), one source per instant:
/// where sources overlap (a pump upload and a file of the same sensor), the
/// device upload wins over files, files over the live API.
pub async fn cgm_readings(
    state: &AppState,
    patient_id: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Reading>, ServiceError> {
    cgm_readings_in(&state.db, patient_id, from_ms, to_ms).await
}

/// [`cgm_readings`] on any connection (inside a transaction, say).
pub async fn cgm_readings_in<C: sea_orm::ConnectionTrait>(
    db: &C,
    patient_id: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Reading>, ServiceError> {
    let rows: Vec<(i64, i32, i16)> = glucose::Entity::find()
        .select_only()
        .column(glucose::Column::TimeMs)
        .column(glucose::Column::ValueMgDl)
        .column(glucose::Column::SourceRank)
        .filter(glucose::Column::PatientId.eq(patient_id))
        .filter(glucose::Column::Kind.eq("cgm"))
        .filter(glucose::Column::TimeMs.gte(from_ms))
        .filter(glucose::Column::TimeMs.lt(to_ms))
        .order_by_asc(glucose::Column::TimeMs)
        .into_tuple()
        .all(db)
        .await?;
    Ok(one_source_per_instant(&rows)
        .into_iter()
        .filter_map(|(t, v)| {
            Some(Reading { time: Utc.timestamp_millis_opt(t).single()?, value_mg_dl: u16::try_from(v).ok()? })
        })
        .collect())
}

/// Keeps, within any 150-second neighbourhood, only the readings of the best
/// (lowest) source rank present there. Input sorted by time.
pub fn one_source_per_instant(rows: &[(i64, i32, i16)]) -> Vec<(i64, i32)> {
    const NEAR_MS: i64 = 150_000;
    let ranks: std::collections::BTreeSet<i16> = rows.iter().map(|r| r.2).collect();
    if ranks.len() <= 1 {
        return rows.iter().map(|r| (r.0, r.1)).collect();
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut lo = 0usize;
    let mut hi = 0usize;
    for (i, r) in rows.iter().enumerate() {
        while rows[lo].0 < r.0 - NEAR_MS {
            lo += 1;
        }
        if hi < i {
            hi = i;
        }
        while hi + 1 < rows.len() && rows[hi + 1].0 <= r.0 + NEAR_MS {
            hi += 1;
        }
        let best = rows[lo..=hi].iter().map(|x| x.2).min().unwrap_or(r.2);
        if r.2 == best {
            out.push((r.0, r.1));
        }
    }
    out
}

pub async fn patient_dashboard(
    state: &AppState,
    actor: &Actor,
    now_ms: i64,
) -> Result<Option<DashboardData>, ServiceError> {
    let Some(patient) = policy::own_patient(state, &actor.user.id).await? else {
        return Ok(None);
    };
    policy::require(state, actor, policy::Action::ReadGlucose, &patient.id).await?;
    let zone = therapy::time::parse_zone(&patient.time_zone).unwrap_or(chrono_tz::UTC);
    let now = Utc.timestamp_millis_opt(now_ms).single().unwrap_or_else(Utc::now);
    // The newest reading decides the window: a demo or an old upload still shows.
    let newest: Option<(i64, i32, Option<String>)> = glucose::Entity::find()
        .select_only()
        .column(glucose::Column::TimeMs)
        .column(glucose::Column::ValueMgDl)
        .column(glucose::Column::Trend)
        .filter(glucose::Column::PatientId.eq(&patient.id))
        .filter(glucose::Column::Kind.eq("cgm"))
        .order_by_desc(glucose::Column::TimeMs)
        .limit(1)
        .into_tuple()
        .one(&state.db)
        .await?;
    let end_local = match &newest {
        Some((t, _, _)) => Utc.timestamp_millis_opt(*t).single().unwrap_or(now).with_timezone(&zone),
        None => now.with_timezone(&zone),
    };
    let to = end_local.date_naive();
    let from = to - Duration::days(13);
    let from_ms = therapy::time::to_utc(therapy::DeviceTime(from.and_hms_opt(0, 0, 0).unwrap_or_default()), zone, 0)
        .timestamp_millis();
    let to_ms = therapy::time::to_utc(
        therapy::DeviceTime((to + Duration::days(1)).and_hms_opt(0, 0, 0).unwrap_or_default()),
        zone,
        0,
    )
    .timestamp_millis();
    let readings = cgm_readings(state, &patient.id, from_ms, to_ms).await?;
    let report =
        glucose_report(&ReportInput { readings: &readings, zone, from, to, sensor_interval_min: 5, agp_bin_min: 15 });
    let latest = newest.and_then(|(t, v, trend)| {
        let when = Utc.timestamp_millis_opt(t).single()?;
        let arrow = trend
            .as_deref()
            .and_then(|s| serde_json::from_value::<therapy::Trend>(serde_json::Value::String(s.into())).ok())
            .map(|t| t.arrow().to_string())
            .unwrap_or_default();
        Some(LatestReading {
            value_mg_dl: u16::try_from(v).ok()?,
            trend_arrow: arrow,
            local_time: when.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string(),
            minutes_ago: (now - when).num_minutes(),
        })
    });
    let day_start = readings.last().map(|r| r.time - Duration::hours(24));
    let last_day = match day_start {
        Some(start) => readings
            .iter()
            .filter(|r| r.time > start)
            .map(|r| (((r.time - start).num_seconds() / 60) as u32, r.value_mg_dl))
            .collect(),
        None => Vec::new(),
    };
    let upload_count =
        uploads::Entity::find().filter(uploads::Column::PatientId.eq(&patient.id)).count(&state.db).await?;
    let last_upload: Option<i64> = uploads::Entity::find()
        .select_only()
        .column(uploads::Column::CreatedMs)
        .filter(uploads::Column::PatientId.eq(&patient.id))
        .order_by_desc(uploads::Column::CreatedMs)
        .limit(1)
        .into_tuple()
        .one(&state.db)
        .await?;
    Ok(Some(DashboardData {
        patient_name: patient.display_name.clone(),
        time_zone: patient.time_zone.clone(),
        latest,
        from: from.to_string(),
        to: to.to_string(),
        readings: report.readings as u64,
        mean_mg_dl: report.mean_mg_dl,
        gmi_percent: report.gmi_percent,
        cv_percent: report.cv_percent,
        cgm_active_percent: report.cgm_active_percent,
        very_low_percent: report.very_low_percent,
        low_percent: report.low_percent,
        in_range_percent: report.in_range_percent,
        high_percent: report.high_percent,
        very_high_percent: report.very_high_percent,
        last_upload_at: last_upload.map(super::ms_to_rfc3339),
        uploads: upload_count,
        last_day,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn overlapping_sources_keep_the_device_upload() {
        let rows = vec![
            (0, 100, 1),
            (10_000, 101, 0),
            (300_000, 120, 0),
            (310_000, 121, 1),
            (900_000, 130, 1), // only the file covers this instant
        ];
        assert_eq!(super::one_source_per_instant(&rows), vec![(10_000, 101), (300_000, 120), (900_000, 130)]);
    }
}
