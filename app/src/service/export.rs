//! Data portability: a user's whole record, as Diabase JSON (every stored
//! record in the normalised form of `diabase inspect`, with the account,
//! devices, uploads, grants and the access log) or as a FHIR R4 Bundle per
//! the HL7 CGM implementation guide (`therapy::fhir`). Used by
//! `GET /api/v1/me/export` and `diabase export`; every export is written to
//! the audit trail.

use super::{AppState, ServiceError, policy, report};
use chrono::{Duration, TimeZone, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write;
use store::entity::{devices, glucose, grants, patients, therapy_events, uploads, users};
use therapy::fhir::{self, BundleWriter, DeviceInfo, PatientInfo, Reading, ReadingKind};
use therapy::record::{BgSource, OutOfRange, Trend};
use therapy::{DeviceTime, Record, RecordKind};

/// The export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Fhir,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, ServiceError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "fhir" => Ok(Format::Fhir),
            _ => Err(ServiceError::bad("format", format!("format must be \"json\" or \"fhir\", got {s:?}"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Fhir => "fhir",
        }
    }

    /// The media type of the body.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Fhir => "application/fhir+json",
        }
    }

    /// A download name, e.g. `diabase-export-2026-12-02.fhir.json`.
    pub fn file_name(self, now_ms: i64) -> String {
        let day = Utc.timestamp_millis_opt(now_ms).single().unwrap_or_default().format("%Y-%m-%d");
        match self {
            Format::Json => format!("diabase-export-{day}.json"),
            Format::Fhir => format!("diabase-export-{day}.fhir.json"),
        }
    }
}

/// The days a FHIR CGM summary covers, ending on the newest data's day (as
/// the Overview page's default).
pub const SUMMARY_DAYS: i64 = 14;

/// One stored glucose row, as read for an export.
struct GlucoseRow {
    dedup: String,
    time_ms: i64,
    device_time: String,
    kind: String,
    value: i32,
    bg_source: Option<String>,
    trend: Option<String>,
    out_of_range: Option<String>,
    device_id: Option<String>,
    upload_id: Option<String>,
}

/// A record in the JSON export: the normalised record and where it came from.
#[derive(Serialize)]
struct Exported<'a> {
    #[serde(flatten)]
    record: &'a Record,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upload_id: Option<&'a str>,
}

fn enum_of<T: serde::de::DeserializeOwned>(s: Option<&str>) -> Option<T> {
    s.and_then(|s| serde_json::from_value(serde_json::Value::String(s.to_string())).ok())
}

/// The stable id of a resource: a UUID derived from the patient and what it is,
/// so that the same data exports to the same ids.
fn uuid_of(patient_id: &str, what: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"diabase-fhir\0");
    h.update(patient_id.as_bytes());
    h.update(b"\0");
    h.update(what.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

async fn glucose_rows(state: &AppState, patient_id: &str) -> Result<Vec<GlucoseRow>, ServiceError> {
    type Row = (
        String,
        i64,
        String,
        String,
        i32,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = glucose::Entity::find()
        .select_only()
        .column(glucose::Column::Dedup)
        .column(glucose::Column::TimeMs)
        .column(glucose::Column::DeviceTime)
        .column(glucose::Column::Kind)
        .column(glucose::Column::ValueMgDl)
        .column(glucose::Column::BgSource)
        .column(glucose::Column::Trend)
        .column(glucose::Column::OutOfRange)
        .column(glucose::Column::DeviceId)
        .column(glucose::Column::UploadId)
        .filter(glucose::Column::PatientId.eq(patient_id))
        .order_by_asc(glucose::Column::TimeMs)
        .order_by_asc(glucose::Column::Id)
        .into_tuple()
        .all(&state.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(dedup, time_ms, device_time, kind, value, bg_source, trend, out_of_range, device_id, upload_id)| {
            GlucoseRow {
                dedup,
                time_ms,
                device_time,
                kind,
                value,
                bg_source,
                trend,
                out_of_range,
                device_id,
                upload_id,
            }
        })
        .collect())
}

fn glucose_record(r: &GlucoseRow) -> Option<Record> {
    let device_time: DeviceTime = r.device_time.parse().ok()?;
    let value_mg_dl = u16::try_from(r.value).ok()?;
    let kind = if r.kind == "cgm" {
        RecordKind::Cgm {
            value_mg_dl,
            trend: enum_of::<Trend>(r.trend.as_deref()),
            out_of_range: enum_of::<OutOfRange>(r.out_of_range.as_deref()),
        }
    } else {
        RecordKind::Bg { value_mg_dl, source: enum_of::<BgSource>(r.bg_source.as_deref()).unwrap_or(BgSource::Meter) }
    };
    let mut rec = Record::new(device_time, kind);
    rec.time = Utc.timestamp_millis_opt(r.time_ms).single();
    Some(rec)
}

fn io(e: std::io::Error) -> ServiceError {
    ServiceError::Internal(format!("writing the export: {e}"))
}

/// The signed-in caller's own export: a browser session whose password was
/// checked within the last minutes (never an API token).
pub async fn export_own(
    state: &AppState,
    actor: &super::Actor,
    format: Format,
    ip: Option<&str>,
    now_ms: i64,
) -> Result<Vec<u8>, ServiceError> {
    super::reauth::require_recent(state, actor, now_ms).await?;
    export(state, &actor.user, Some(&actor.user.id), format, ip, now_ms).await
}

/// Exports `user`'s data in `format`. `by` is who asks (the user, or `None`
/// for the operator's command line); the export is audited.
pub async fn export(
    state: &AppState,
    user: &users::Model,
    by: Option<&str>,
    format: Format,
    ip: Option<&str>,
    now_ms: i64,
) -> Result<Vec<u8>, ServiceError> {
    let patient = policy::own_patient(state, &user.id).await?;
    let body = match format {
        Format::Json => json_export(state, user, patient.as_ref(), now_ms).await?,
        Format::Fhir => fhir_export(state, user, patient.as_ref(), now_ms).await?,
    };
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now_ms,
            actor_user_id: by,
            patient_id: patient.as_ref().map(|p| p.id.as_str()),
            action: if format == Format::Json { "export.json" } else { "export.fhir" },
            detail: &format!("user={} bytes={}", user.id, body.len()),
            ip,
        },
    )
    .await?;
    Ok(body)
}

async fn device_rows(state: &AppState, patient_id: &str) -> Result<Vec<devices::Model>, ServiceError> {
    Ok(devices::Entity::find()
        .filter(devices::Column::PatientId.eq(patient_id))
        .order_by_asc(devices::Column::CreatedMs)
        .all(&state.db)
        .await?)
}

async fn json_export(
    state: &AppState,
    user: &users::Model,
    patient: Option<&patients::Model>,
    now_ms: i64,
) -> Result<Vec<u8>, ServiceError> {
    use super::ms_to_rfc3339 as ts;
    let account = json!({
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role,
        "glucose_unit": user.glucose_unit,
        "time_zone": user.time_zone,
        "created_at": ts(user.created_ms),
    });
    let mut out = Vec::with_capacity(1 << 16);
    let head = json!({"format": "diabase-export", "version": 1, "exported_at": ts(now_ms), "account": account});
    let head = serde_json::to_string(&head).map_err(|e| ServiceError::Internal(e.to_string()))?;
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    let Some(p) = patient else {
        out.extend_from_slice(
            b",\"patient\":null,\"devices\":[],\"uploads\":[],\"grants\":[],\"access_log\":[],\"records\":[]}",
        );
        return Ok(out);
    };
    let patient_json = json!({
        "id": p.id,
        "display_name": state.config.cipher.open_lossy(Some(&p.display_name)).unwrap_or_default(),
        "time_zone": p.time_zone,
        "created_at": ts(p.created_ms),
    });
    let devs: Vec<_> = device_rows(state, &p.id)
        .await?
        .into_iter()
        .map(|d| json!({"id": d.id, "manufacturer": d.manufacturer, "model": d.model, "serial": d.serial, "created_at": ts(d.created_ms)}))
        .collect();
    let ups: Vec<_> = uploads::Entity::find()
        .filter(uploads::Column::PatientId.eq(&p.id))
        .order_by_asc(uploads::Column::CreatedMs)
        .all(&state.db)
        .await?
        .into_iter()
        .map(|u| {
            json!({
                "id": u.id,
                "created_at": ts(u.created_ms),
                "source": u.source,
                "format": u.format,
                "file_name": u.file_name,
                "sha256": u.blob_sha256,
                "device_id": u.device_id,
                "time_zone": u.time_zone,
                "clock_offset_s": u.clock_offset_s,
                "records": serde_json::from_str::<serde_json::Value>(&u.counts_json).unwrap_or_default(),
                "duplicates": u.duplicates,
                "rejected": u.rejected,
            })
        })
        .collect();
    let gs: Vec<_> = grants::Entity::find()
        .filter(grants::Column::PatientId.eq(&p.id))
        .order_by_asc(grants::Column::CreatedMs)
        .all(&state.db)
        .await?
        .into_iter()
        .map(|g| {
            json!({
                "id": g.id,
                "clinic_id": g.grantee_clinic_id,
                "user_id": g.grantee_user_id,
                "invite_email": g.invite_email,
                "scopes": policy::scope_names(&g.scopes),
                "status": policy::grant_status(&g, now_ms),
                "created_at": ts(g.created_ms),
                "expires_at": g.expires_ms.map(ts),
                "revoked_at": g.revoked_ms.map(ts),
            })
        })
        .collect();
    let log = super::sharing::access_log_of(state, &user.id, 1000).await?;
    let logins = super::logins::history_of(state, &user.id, 500).await?;
    let mid = json!({"patient": patient_json, "devices": devs, "uploads": ups, "grants": gs, "access_log": log, "login_history": logins});
    let mid = serde_json::to_string(&mid).map_err(|e| ServiceError::Internal(e.to_string()))?;
    out.push(b',');
    out.extend_from_slice(&mid.as_bytes()[1..mid.len() - 1]);
    out.extend_from_slice(b",\"records\":[");

    // Glucose rows and therapy events, merged in time order.
    let g = glucose_rows(state, &p.id).await?;
    type Ev = (i64, String, Option<String>, Option<String>);
    let ev: Vec<Ev> = therapy_events::Entity::find()
        .select_only()
        .column(therapy_events::Column::TimeMs)
        .column(therapy_events::Column::RecordJson)
        .column(therapy_events::Column::DeviceId)
        .column(therapy_events::Column::UploadId)
        .filter(therapy_events::Column::PatientId.eq(&p.id))
        .order_by_asc(therapy_events::Column::TimeMs)
        .order_by_asc(therapy_events::Column::Id)
        .into_tuple()
        .all(&state.db)
        .await?;
    let (mut gi, mut ei, mut first) = (0usize, 0usize, true);
    while gi < g.len() || ei < ev.len() {
        let take_glucose = ei >= ev.len() || (gi < g.len() && g[gi].time_ms <= ev[ei].0);
        let (rec, device_id, upload_id) = if take_glucose {
            let r = &g[gi];
            gi += 1;
            (glucose_record(r), r.device_id.as_deref(), r.upload_id.as_deref())
        } else {
            let (time_ms, json, device_id, upload_id) = &ev[ei];
            ei += 1;
            let rec = serde_json::from_str::<Record>(json).ok().map(|mut r| {
                r.time = Utc.timestamp_millis_opt(*time_ms).single();
                r
            });
            (rec, device_id.as_deref(), upload_id.as_deref())
        };
        let Some(record) = rec else { continue };
        if !first {
            out.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut out, &Exported { record: &record, device_id, upload_id })
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

async fn fhir_export(
    state: &AppState,
    user: &users::Model,
    patient: Option<&patients::Model>,
    now_ms: i64,
) -> Result<Vec<u8>, ServiceError> {
    let now = Utc.timestamp_millis_opt(now_ms).single().unwrap_or_default();
    let owner = patient.map(|p| p.id.as_str()).unwrap_or(&user.id);
    let name = patient
        .and_then(|p| state.config.cipher.open_lossy(Some(&p.display_name)))
        .unwrap_or_else(|| user.display_name.clone());
    let patient_uuid = uuid_of(owner, "Patient");
    let info = PatientInfo { uuid: &patient_uuid, name: &name, email: Some(&user.email) };
    let devs = match patient {
        Some(p) => device_rows(state, &p.id).await?,
        None => Vec::new(),
    };
    let dev_uuids: Vec<(String, String)> =
        devs.iter().map(|d| (d.id.clone(), uuid_of(owner, &format!("Device/{}", d.id)))).collect();
    let infos: Vec<DeviceInfo<'_>> = devs
        .iter()
        .zip(&dev_uuids)
        .map(|(d, (_, u))| DeviceInfo { uuid: u, manufacturer: &d.manufacturer, model: &d.model, serial: &d.serial })
        .collect();
    let bundle_uuid = uuid_of(owner, &format!("Bundle/{now_ms}"));
    let mut w = BundleWriter::new(Vec::with_capacity(1 << 16), &bundle_uuid, now, &info, &infos).map_err(io)?;
    let Some(p) = patient else {
        return w.finish().map_err(io);
    };
    let dev_uuid = |id: &Option<String>| -> Option<&str> {
        let id = id.as_deref()?;
        dev_uuids.iter().find(|(d, _)| d == id).map(|(_, u)| u.as_str())
    };
    for r in glucose_rows(state, &p.id).await? {
        let (Ok(value_mg_dl), Some(time)) = (u16::try_from(r.value), Utc.timestamp_millis_opt(r.time_ms).single())
        else {
            continue;
        };
        let kind = if r.kind == "cgm" {
            ReadingKind::Cgm
        } else {
            ReadingKind::Bg(enum_of::<BgSource>(r.bg_source.as_deref()).unwrap_or(BgSource::Meter))
        };
        let uuid = uuid_of(&p.id, &format!("Observation/{}", r.dedup));
        w.reading(&Reading {
            uuid: &uuid,
            time,
            value_mg_dl,
            kind,
            out_of_range: enum_of::<OutOfRange>(r.out_of_range.as_deref()),
            device_uuid: dev_uuid(&r.device_id),
        })
        .map_err(io)?;
    }
    // The CGM summary of the newest SUMMARY_DAYS local days with data.
    let zone = therapy::time::parse_zone(&p.time_zone).unwrap_or(chrono_tz::UTC);
    if let Some(to) = report::newest_date(state, &p.id, zone).await? {
        let from = to - Duration::days(SUMMARY_DAYS - 1);
        let (start, end) = report::window_ms(zone, from, to);
        let readings = super::dashboard::cgm_readings(state, &p.id, start, end).await?;
        let days_of_wear = {
            let mut days: Vec<_> = readings.iter().map(|r| r.time.with_timezone(&zone).date_naive()).collect();
            days.dedup();
            days.len() as u32
        };
        let g = therapy::metrics::glucose_report(&therapy::metrics::ReportInput::new(&readings, zone, from, to));
        let ids: Vec<String> = ["summary", "mean", "ranges", "gmi", "cv", "wear", "active"]
            .iter()
            .map(|m| uuid_of(&p.id, &format!("Summary/{from}/{to}/{m}")))
            .collect();
        let uuids: [&str; 7] = std::array::from_fn(|i| ids[i].as_str());
        w.summary(&fhir::Summary { from, to, report: &g, days_of_wear, uuids }).map_err(io)?;
    }
    let mut out = w.finish().map_err(io)?;
    out.flush().map_err(io)?;
    Ok(out)
}
