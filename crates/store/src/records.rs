//! Idempotent insertion of normalised records into `glucose` and
//! `therapy_events`. Each row carries a dedup hash of (device, kind, device
//! time, value); the unique key (patient, dedup) makes a re-import or an
//! overlapping import add nothing twice.

use crate::entity::{glucose, therapy_events};
use chrono_free::to_utc_ms;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};
use std::collections::BTreeMap;
use therapy::{Record, RecordKind};

/// Where records come from; orders sources covering the same instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceRank {
    Device = 0,
    File = 1,
    Api = 2,
}

/// The context every record of one batch shares.
#[derive(Clone, Debug)]
pub struct Batch<'a> {
    pub patient_id: &'a str,
    pub device_id: Option<&'a str>,
    pub upload_id: Option<&'a str>,
    pub rank: SourceRank,
    pub zone: chrono_tz::Tz,
    /// Device clock minus true local time, in seconds.
    pub clock_offset_s: i64,
}

/// What a batch insert did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inserted {
    /// New rows by record type.
    pub by_kind: BTreeMap<String, u64>,
    /// Records already stored (same device, kind, time and value).
    pub duplicates: u64,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

impl Inserted {
    pub fn total(&self) -> u64 {
        self.by_kind.values().sum()
    }
}

const CHUNK: usize = 400;

/// Inserts `records` (in chunks, inside the caller's transaction if it is one).
pub async fn insert_records<C: ConnectionTrait>(
    db: &C,
    batch: &Batch<'_>,
    records: &[Record],
) -> Result<Inserted, DbErr> {
    let mut out = Inserted::default();
    let zone_name = batch.zone.name().to_string();
    let mut g_rows: Vec<(String, glucose::ActiveModel)> = Vec::new();
    let mut e_rows: Vec<(String, therapy_events::ActiveModel)> = Vec::new();
    for r in records {
        let time_ms = match r.time {
            Some(t) => t.timestamp_millis(),
            None => to_utc_ms(r, batch.zone, batch.clock_offset_s),
        };
        out.first_ms = Some(out.first_ms.map_or(time_ms, |f| f.min(time_ms)));
        out.last_ms = Some(out.last_ms.map_or(time_ms, |l| l.max(time_ms)));
        let device_time = r.device_time.to_string();
        let dev = batch.device_id.unwrap_or("");
        match &r.kind {
            RecordKind::Cgm { value_mg_dl, trend, out_of_range } => {
                let dedup = dedup_key(&[dev, "cgm", &device_time, &value_mg_dl.to_string()]);
                g_rows.push(("cgm".into(), glucose::ActiveModel {
                    patient_id: Set(batch.patient_id.into()),
                    device_id: Set(batch.device_id.map(Into::into)),
                    upload_id: Set(batch.upload_id.map(Into::into)),
                    kind: Set("cgm".into()),
                    bg_source: Set(None),
                    source_rank: Set(batch.rank as i16),
                    time_ms: Set(time_ms),
                    device_time: Set(device_time),
                    time_zone: Set(zone_name.clone()),
                    clock_offset_s: Set(batch.clock_offset_s),
                    value_mg_dl: Set(i32::from(*value_mg_dl)),
                    trend: Set(trend.map(|t| enum_str(&t))),
                    out_of_range: Set(out_of_range.map(|o| enum_str(&o))),
                    dedup: Set(dedup),
                    ..Default::default()
                }));
            }
            RecordKind::Bg { value_mg_dl, source } => {
                let src = enum_str(source);
                let dedup = dedup_key(&[dev, "bg", &device_time, &value_mg_dl.to_string(), &src]);
                g_rows.push(("bg".into(), glucose::ActiveModel {
                    patient_id: Set(batch.patient_id.into()),
                    device_id: Set(batch.device_id.map(Into::into)),
                    upload_id: Set(batch.upload_id.map(Into::into)),
                    kind: Set("bg".into()),
                    bg_source: Set(Some(src)),
                    source_rank: Set(batch.rank as i16),
                    time_ms: Set(time_ms),
                    device_time: Set(device_time),
                    time_zone: Set(zone_name.clone()),
                    clock_offset_s: Set(batch.clock_offset_s),
                    value_mg_dl: Set(i32::from(*value_mg_dl)),
                    trend: Set(None),
                    out_of_range: Set(None),
                    dedup: Set(dedup),
                    ..Default::default()
                }));
            }
            kind => {
                let mut stored = r.clone();
                stored.time = None;
                let json = serde_json::to_string(&stored).map_err(|e| DbErr::Custom(e.to_string()))?;
                let type_name = kind.type_name();
                let dedup = dedup_key(&[dev, type_name, &json]);
                let (amount, duration) = hot_values(kind);
                e_rows.push((type_name.into(), therapy_events::ActiveModel {
                    patient_id: Set(batch.patient_id.into()),
                    device_id: Set(batch.device_id.map(Into::into)),
                    upload_id: Set(batch.upload_id.map(Into::into)),
                    kind: Set(type_name.into()),
                    source_rank: Set(batch.rank as i16),
                    time_ms: Set(time_ms),
                    device_time: Set(device_time),
                    time_zone: Set(zone_name.clone()),
                    clock_offset_s: Set(batch.clock_offset_s),
                    amount: Set(amount),
                    duration_min: Set(duration),
                    record_json: Set(json),
                    dedup: Set(dedup),
                    ..Default::default()
                }));
            }
        }
    }
    // Chunks of one kind each, so the inserted count of a chunk is exact per kind.
    g_rows.sort_by(|a, b| a.0.cmp(&b.0));
    e_rows.sort_by(|a, b| a.0.cmp(&b.0));
    for group in g_rows.chunk_by(|a, b| a.0 == b.0) {
        for chunk in group.chunks(CHUNK) {
            let n = insert_chunk::<glucose::Entity, _>(db, chunk, glucose::Column::PatientId, glucose::Column::Dedup).await?;
            account(&mut out, &chunk[0].0, chunk.len() as u64, n);
        }
    }
    for group in e_rows.chunk_by(|a, b| a.0 == b.0) {
        for chunk in group.chunks(CHUNK) {
            let n = insert_chunk::<therapy_events::Entity, _>(db, chunk, therapy_events::Column::PatientId, therapy_events::Column::Dedup).await?;
            account(&mut out, &chunk[0].0, chunk.len() as u64, n);
        }
    }
    Ok(out)
}

/// Inserts one chunk with ON CONFLICT DO NOTHING; returns rows inserted.
async fn insert_chunk<E, C>(
    db: &C,
    chunk: &[(String, E::ActiveModel)],
    c1: E::Column,
    c2: E::Column,
) -> Result<u64, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
    E::ActiveModel: Clone,
{
    if chunk.is_empty() {
        return Ok(0);
    }
    let res = E::insert_many(chunk.iter().map(|(_, m)| m.clone()))
        .on_conflict(OnConflict::columns([c1, c2]).do_nothing().to_owned())
        .exec_without_returning(db)
        .await;
    match res {
        Ok(n) => Ok(n),
        Err(DbErr::RecordNotInserted) => Ok(0),
        Err(e) => Err(e),
    }
}

fn account(out: &mut Inserted, kind: &str, rows: u64, inserted: u64) {
    out.duplicates += rows.saturating_sub(inserted);
    if inserted > 0 {
        *out.by_kind.entry(kind.to_string()).or_default() += inserted;
    }
}

fn hot_values(kind: &RecordKind) -> (Option<f64>, Option<i32>) {
    match kind {
        RecordKind::Bolus { delivered_u, programmed_u, duration_min, .. } => {
            (delivered_u.or(*programmed_u), duration_min.map(|d| d as i32))
        }
        RecordKind::BolusWizard(w) => (w.carbs_g, None),
        RecordKind::BasalProfileStart { rate_u_h, .. } => (Some(*rate_u_h), None),
        RecordKind::TempBasal { rate_u_h, percent, duration_min } => {
            (rate_u_h.or(percent.map(f64::from)), duration_min.map(|d| d as i32))
        }
        RecordKind::Carbs { grams } => (Some(*grams), None),
        RecordKind::Prime { units, .. } => (Some(*units), None),
        RecordKind::DailyTotal { units, .. } => (Some(*units), None),
        RecordKind::Alarm { code, .. } => (code.map(f64::from), None),
        _ => (None, None),
    }
}

fn enum_str<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn dedup_key(parts: &[&str]) -> String {
    let mut s = String::new();
    for p in parts {
        s.push_str(&p.len().to_string());
        s.push(':');
        s.push_str(p);
    }
    let mut h = crate::sha256_hex(s.as_bytes());
    h.truncate(32);
    h
}

mod chrono_free {
    use therapy::Record;
    pub fn to_utc_ms(r: &Record, zone: chrono_tz::Tz, offset_s: i64) -> i64 {
        therapy::time::to_utc(r.device_time, zone, offset_s).timestamp_millis()
    }
}
