//! File import: detect the format, keep the raw bytes content-addressed,
//! decode with `devices::import`, and insert every record idempotently, all in
//! one transaction (a file is stored whole or not at all).

use super::{Actor, AppState, ServiceError, policy};
use ::devices::import::{self as imp, Item};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use std::collections::BTreeMap;
use store::entity::{devices, patients, raw_blobs, uploads};
use store::records::{Batch, SourceRank};

/// Files larger than this are refused (413).
pub const MAX_FILE_BYTES: usize = 100 * 1024 * 1024;
const FLUSH: usize = 5_000;

pub use crate::model::{DeviceRow, ImportSummary, RejectedRow, UploadRow};

/// Imports `bytes` into `patient_id`'s data, if the actor may upload there.
pub async fn import_file(
    state: &AppState,
    actor: Option<&Actor>,
    patient_id: &str,
    file_name: &str,
    bytes: &[u8],
    now: i64,
) -> Result<ImportSummary, ServiceError> {
    if let Some(a) = actor {
        policy::require(state, a, policy::Action::Upload, patient_id).await?;
    }
    let limit = state.config.max_upload_bytes.min(MAX_FILE_BYTES);
    if bytes.len() > limit {
        return Err(ServiceError::TooLarge { limit_bytes: limit as u64 });
    }
    let patient =
        patients::Entity::find_by_id(patient_id.to_string()).one(&state.db).await?.ok_or(ServiceError::NotFound)?;
    let zone = therapy::time::parse_zone(&patient.time_zone).unwrap_or(chrono_tz::UTC);
    let head = &bytes[..bytes.len().min(64 * 1024)];
    let format = imp::detect(head, Some(file_name)).ok_or_else(|| {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            ServiceError::Unprocessable(format!("{file_name}: the file is empty"))
        } else {
            ServiceError::Unprocessable(format!(
                "{file_name}: unrecognised format: not a CareLink, Dexcom Clarity, LibreView or Nightscout export"
            ))
        }
    })?;
    // The parser reads a shared copy of the bytes, so it can run on its own thread.
    let shared: std::sync::Arc<[u8]> = std::sync::Arc::from(bytes);
    // The content address is computed on its own thread while parsing starts.
    let hashing = {
        let b = shared.clone();
        tokio::task::spawn_blocking(move || store::sha256_hex(&b))
    };
    let importer = imp::import_named(std::io::Cursor::new(shared), format, Some(file_name))
        .map_err(|e| ServiceError::Unprocessable(format!("{file_name}: {e}")))?;
    // Pages read from a pump are device data: they rank above files when two sources cover the
    // same instant, and a dump carries the pump's clock against the uploader's UTC, whose
    // difference (in the patient's zone) corrects every pump-local time of the upload.
    let (source, rank, clock_offset_s) = if format == imp::Format::MinimedPages {
        let offset = if !::devices::minimed::dump::is_bare_pages(bytes) && bytes.trim_ascii_start().starts_with(b"{") {
            ::devices::minimed::dump::PumpDump::from_json(bytes).ok().and_then(|d| d.clock_offset_s(zone))
        } else {
            None
        };
        ("device", SourceRank::Device, offset.unwrap_or(0))
    } else {
        ("file", SourceRank::File, 0)
    };

    let txn = state.db.begin().await?;
    let upload_id = store::new_id();
    uploads::ActiveModel {
        id: Set(upload_id.clone()),
        patient_id: Set(patient.id.clone()),
        uploaded_by: Set(actor.map(|a| a.user.id.clone())),
        source: Set(source.into()),
        format: Set(format.name().to_string()),
        file_name: Set(Some(file_name.chars().take(255).collect())),
        blob_sha256: Set(None),
        device_id: Set(None),
        time_zone: Set(zone.name().to_string()),
        clock_offset_s: Set(clock_offset_s),
        counts_json: Set("{}".into()),
        duplicates: Set(0),
        rejected: Set(0),
        first_ms: Set(None),
        last_ms: Set(None),
        created_ms: Set(now),
    }
    .insert(&txn)
    .await?;

    // Two stages, so parsing overlaps the database's work: a blocking
    // thread parses the file and builds the insert statements of each
    // batch of records (times, dedup keys, SQL) while this task runs the
    // statements of the batch before in the transaction. The channel holds
    // at most two batches, so a large file is never all in memory. A device
    // announced by the file is looked up (or created) here, in the
    // transaction, and its id sent back before the thread goes on.
    enum Msg {
        Device(imp::DeviceInfo, tokio::sync::oneshot::Sender<String>),
        Rows(store::records::Prepared),
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg>(2);
    let backend = state.db.get_database_backend();
    let (pid, uid, fname) = (patient.id.clone(), upload_id.clone(), file_name.to_string());
    let producer = tokio::task::spawn_blocking(move || -> Result<Vec<RejectedRow>, ServiceError> {
        let mut device_id: Option<String> = None;
        let mut pending: Vec<therapy::Record> = Vec::with_capacity(FLUSH);
        let mut rejected = Vec::new();
        let mut known: std::collections::HashMap<imp::DeviceInfo, String> = std::collections::HashMap::new();
        // Sends the pending records' statements; false when the consumer stopped.
        let flush = |pending: &mut Vec<therapy::Record>, device_id: Option<&str>| -> Result<bool, ServiceError> {
            if pending.is_empty() {
                return Ok(true);
            }
            let batch = Batch { patient_id: &pid, device_id, upload_id: Some(&uid), rank, zone, clock_offset_s };
            let prepared = store::records::prepare(backend, &batch, pending)?;
            pending.clear();
            Ok(tx.blocking_send(Msg::Rows(prepared)).is_ok())
        };
        for item in importer {
            match item {
                Item::Device(d) => {
                    // A device announced again (a file that switches back and
                    // forth) is looked up once; records are flushed only when
                    // the device really changes.
                    let id = match known.get(&d) {
                        Some(id) => id.clone(),
                        None => {
                            let (reply, answer) = tokio::sync::oneshot::channel();
                            if tx.blocking_send(Msg::Device(d.clone(), reply)).is_err() {
                                return Ok(rejected);
                            }
                            let Ok(id) = answer.blocking_recv() else { return Ok(rejected) };
                            known.insert(d, id.clone());
                            id
                        }
                    };
                    if device_id.as_deref() != Some(id.as_str()) {
                        if !flush(&mut pending, device_id.as_deref())? {
                            return Ok(rejected);
                        }
                        device_id = Some(id);
                    }
                }
                Item::Record(r) => {
                    pending.push(r);
                    if pending.len() >= FLUSH && !flush(&mut pending, device_id.as_deref())? {
                        return Ok(rejected);
                    }
                }
                Item::Rejected(r) => {
                    if rejected.len() < 10_000 {
                        rejected.push(RejectedRow { line: r.line, location: r.location(&fname), reason: r.describe() });
                    }
                }
            }
        }
        flush(&mut pending, device_id.as_deref())?;
        Ok(rejected)
    });

    let mut first_device: Option<String> = None;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut duplicates = 0u64;
    let mut first_ms: Option<i64> = None;
    let mut last_ms: Option<i64> = None;
    let consumed: Result<(), ServiceError> = async {
        while let Some(msg) = rx.recv().await {
            match msg {
                Msg::Device(d, reply) => {
                    let id = find_or_create_device(&txn, &patient.id, &d, now).await?;
                    if first_device.is_none() {
                        first_device = Some(id.clone());
                    }
                    let _ = reply.send(id);
                }
                Msg::Rows(prepared) => {
                    let ins = store::records::execute(&txn, prepared).await?;
                    for (k, v) in ins.by_kind {
                        *counts.entry(k).or_default() += v;
                    }
                    duplicates += ins.duplicates;
                    first_ms = match (first_ms, ins.first_ms) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    last_ms = match (last_ms, ins.last_ms) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    };
                }
            }
        }
        Ok(())
    }
    .await;
    // On a database error the receiver is dropped here, so the parsing
    // thread stops at its next send; the transaction rolls back on drop.
    drop(rx);
    let produced = producer.await.map_err(|e| ServiceError::Internal(format!("import task: {e}")))?;
    consumed?;
    let rejected = produced?;

    // The raw bytes, kept once per content (the same SHA-256 is the same
    // bytes). Looking first spares a re-import copying the whole file through
    // the driver into a statement that then does nothing.
    let sha = hashing.await.map_err(|e| ServiceError::Internal(format!("hashing task: {e}")))?;
    let stored = raw_blobs::Entity::find_by_id(sha.clone())
        .select_only()
        .column(raw_blobs::Column::Sha256)
        .into_tuple::<String>()
        .one(&txn)
        .await?;
    if stored.is_none() {
        raw_blobs::Entity::insert(raw_blobs::ActiveModel {
            sha256: Set(sha.clone()),
            size: Set(bytes.len() as i64),
            bytes: Set(bytes.to_vec()),
            created_ms: Set(now),
        })
        .on_conflict(OnConflict::column(raw_blobs::Column::Sha256).do_nothing().to_owned())
        .exec_without_returning(&txn)
        .await?;
    }

    let mut up: uploads::ActiveModel = uploads::Entity::find_by_id(upload_id.clone())
        .one(&txn)
        .await?
        .ok_or_else(|| ServiceError::Internal("upload row vanished".into()))?
        .into();
    up.blob_sha256 = Set(Some(sha));
    up.counts_json = Set(serde_json::to_string(&counts).unwrap_or_else(|_| "{}".into()));
    up.duplicates = Set(duplicates as i64);
    up.rejected = Set(rejected.len() as i64);
    up.first_ms = Set(first_ms);
    up.last_ms = Set(last_ms);
    up.device_id = Set(first_device);
    up.update(&txn).await?;
    // The per-day CGM sums change only when CGM readings were added.
    if let (Some(a), Some(b), true) = (first_ms, last_ms, counts.contains_key("cgm")) {
        super::daily::refresh_in(&txn, &patient.id, Some((a, b))).await?;
    }
    // An upload answers the clinics' pending "please upload" requests.
    store::entity::upload_requests::Entity::update_many()
        .col_expr(store::entity::upload_requests::Column::DoneMs, sea_orm::sea_query::Expr::value(now))
        .filter(store::entity::upload_requests::Column::PatientId.eq(&patient.id))
        .filter(store::entity::upload_requests::Column::DoneMs.is_null())
        .exec(&txn)
        .await?;
    txn.commit().await?;

    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: actor.map(|a| a.user.id.as_str()),
            patient_id: Some(&patient.id),
            action: "upload",
            detail: &format!("{upload_id} {}", format.name()),
            ip: None,
        },
    )
    .await?;
    Ok(ImportSummary {
        upload_id,
        file: file_name.to_string(),
        format: format.name().to_string(),
        records: counts,
        duplicates,
        rejected,
        first: first_ms.map(super::ms_to_rfc3339),
        last: last_ms.map(super::ms_to_rfc3339),
    })
}

async fn find_or_create_device<C: sea_orm::ConnectionTrait>(
    db: &C,
    patient_id: &str,
    d: &imp::DeviceInfo,
    now: i64,
) -> Result<String, ServiceError> {
    let manufacturer = d.manufacturer.clone().unwrap_or_else(|| "unknown".into());
    let model = d.model.clone().unwrap_or_else(|| "unknown".into());
    let serial = d.serial.clone().unwrap_or_default();
    if let Some(existing) = devices::Entity::find()
        .filter(devices::Column::PatientId.eq(patient_id))
        .filter(devices::Column::Manufacturer.eq(&manufacturer))
        .filter(devices::Column::Model.eq(&model))
        .filter(devices::Column::Serial.eq(&serial))
        .one(db)
        .await?
    {
        return Ok(existing.id);
    }
    let id = store::new_id();
    devices::ActiveModel {
        id: Set(id.clone()),
        patient_id: Set(patient_id.to_string()),
        manufacturer: Set(manufacturer),
        model: Set(model),
        serial: Set(serial),
        created_ms: Set(now),
    }
    .insert(db)
    .await?;
    Ok(id)
}

/// The devices that uploaded into a data space, with what an uploader needs for an incremental
/// read: the newest pump-local time already stored from each device's history and CGM.
pub async fn list_devices(state: &AppState, actor: &Actor, patient_id: &str) -> Result<Vec<DeviceRow>, ServiceError> {
    use store::entity::{glucose, therapy_events};
    policy::require(state, actor, policy::Action::Upload, patient_id).await?;
    let devs = devices::Entity::find()
        .filter(devices::Column::PatientId.eq(patient_id))
        .order_by_asc(devices::Column::CreatedMs)
        .all(&state.db)
        .await?;
    let mut out = Vec::with_capacity(devs.len());
    for d in devs {
        let newest_cgm: Option<String> = glucose::Entity::find()
            .select_only()
            .column_as(glucose::Column::DeviceTime.max(), "m")
            .filter(glucose::Column::PatientId.eq(patient_id))
            .filter(glucose::Column::DeviceId.eq(&d.id))
            .filter(glucose::Column::Kind.eq("cgm"))
            .into_tuple::<Option<String>>()
            .one(&state.db)
            .await?
            .flatten();
        let newest_history: Option<String> = therapy_events::Entity::find()
            .select_only()
            .column_as(therapy_events::Column::DeviceTime.max(), "m")
            .filter(therapy_events::Column::PatientId.eq(patient_id))
            .filter(therapy_events::Column::DeviceId.eq(&d.id))
            .into_tuple::<Option<String>>()
            .one(&state.db)
            .await?
            .flatten();
        let last_upload = uploads::Entity::find()
            .filter(uploads::Column::PatientId.eq(patient_id))
            .filter(uploads::Column::DeviceId.eq(&d.id))
            .order_by_desc(uploads::Column::CreatedMs)
            .one(&state.db)
            .await?;
        out.push(DeviceRow {
            id: d.id,
            manufacturer: d.manufacturer,
            model: d.model,
            serial: (!d.serial.is_empty()).then_some(d.serial),
            last_upload_at: last_upload.map(|u| super::ms_to_rfc3339(u.created_ms)),
            newest_history_device_time: newest_history,
            newest_cgm_device_time: newest_cgm,
        });
    }
    Ok(out)
}

pub async fn list_uploads(state: &AppState, actor: &Actor, patient_id: &str) -> Result<Vec<UploadRow>, ServiceError> {
    policy::require(state, actor, policy::Action::Upload, patient_id).await?;
    let rows = uploads::Entity::find()
        .filter(uploads::Column::PatientId.eq(patient_id))
        .order_by_desc(uploads::Column::CreatedMs)
        .all(&state.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|u| UploadRow {
            records: serde_json::from_str(&u.counts_json).unwrap_or_default(),
            created_at: super::ms_to_rfc3339(u.created_ms),
            first: u.first_ms.map(super::ms_to_rfc3339),
            last: u.last_ms.map(super::ms_to_rfc3339),
            id: u.id,
            source: u.source,
            format: u.format,
            file_name: u.file_name,
            duplicates: u.duplicates,
            rejected: u.rejected,
        })
        .collect())
}

/// Deletes an upload and exactly the records it added (cascade).
pub async fn delete_upload(state: &AppState, actor: &Actor, upload_id: &str, now: i64) -> Result<(), ServiceError> {
    let up = uploads::Entity::find_by_id(upload_id.to_string()).one(&state.db).await?.ok_or(ServiceError::NotFound)?;
    policy::require(state, actor, policy::Action::DeleteData, &up.patient_id).await?;
    let txn = state.db.begin().await?;
    store::entity::glucose::Entity::delete_many()
        .filter(store::entity::glucose::Column::UploadId.eq(upload_id))
        .exec(&txn)
        .await?;
    store::entity::therapy_events::Entity::delete_many()
        .filter(store::entity::therapy_events::Column::UploadId.eq(upload_id))
        .exec(&txn)
        .await?;
    uploads::Entity::delete_by_id(upload_id.to_string()).exec(&txn).await?;
    if let (Some(a), Some(b)) = (up.first_ms, up.last_ms) {
        super::daily::refresh_in(&txn, &up.patient_id, Some((a, b))).await?;
    }
    txn.commit().await?;
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(&actor.user.id),
            patient_id: Some(&up.patient_id),
            action: "upload_deleted",
            detail: upload_id,
            ip: None,
        },
    )
    .await?;
    Ok(())
}
