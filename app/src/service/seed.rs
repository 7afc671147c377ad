//! Demo data for `make run`: a patient with 90 days of pump and CGM data (the
//! deterministic `devices::demo` data set, uploaded from a simulated MiniMed pump
//! through the real driver and the pump-dump import), a clinic and a clinician.
//! Seeded only when asked (`diabase serve --demo`), never on a real site
//! without it, and only once.

use super::auth::{Email, create_user, hash_password};
use super::{AppState, ServiceError};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use store::entity::{clinic_members, clinics, devices, patient_records, patients, users};

pub const DEMO_PATIENT_EMAIL: &str = "demo.patient@diabase.example";
pub const DEMO_PATIENT_PASSWORD: &str = "glucose-demo-patient-2026";
pub const DEMO_CLINICIAN_EMAIL: &str = "demo.clinician@diabase.example";
pub const DEMO_CLINICIAN_PASSWORD: &str = "glucose-demo-clinician-2026";
pub const DEMO_ZONE: &str = "Europe/Berlin";

/// What was seeded (or found already there).
#[derive(Debug, Clone)]
pub struct DemoLogins {
    pub created: bool,
    pub records: u64,
}

pub async fn seed_demo(state: &AppState, now_ms: i64) -> Result<DemoLogins, ServiceError> {
    // Each step looks for what it makes, so a seed interrupted part-way (a
    // crash, a database error) is completed at the next start instead of
    // leaving a demo patient without a clinic or without data. The pump upload
    // comes last: it is the slow step, and once its device is stored the demo
    // is whole.
    let (user, new_patient) =
        demo_user(state, DEMO_PATIENT_EMAIL, DEMO_PATIENT_PASSWORD, "Alex Demo", "patient", now_ms).await?;
    let (clinician, new_clinician) =
        demo_user(state, DEMO_CLINICIAN_EMAIL, DEMO_CLINICIAN_PASSWORD, "Dr. Sam Demo", "clinician", now_ms).await?;
    let mut created = new_patient || new_clinician;
    let patient = patients::Entity::find()
        .filter(patients::Column::UserId.eq(&user.id))
        .one(&state.db)
        .await?
        .ok_or_else(|| ServiceError::Internal("demo patient space missing".into()))?;
    let linked = patient_records::Entity::find()
        .filter(patient_records::Column::PatientId.eq(&patient.id))
        .one(&state.db)
        .await?
        .is_some();
    if !linked {
        link_demo_clinic(state, &patient.id, &clinician.id, now_ms).await?;
        created = true;
    }
    let uploaded = devices::Entity::find()
        .filter(devices::Column::PatientId.eq(&patient.id))
        .filter(devices::Column::Serial.eq(::devices::minimed::demo_pump::DEMO_SERIAL))
        .one(&state.db)
        .await?
        .is_some();
    let mut records = 0;
    if !uploaded {
        records = upload_demo_pump(state, &patient.id, now_ms).await?;
        created = true;
    }
    Ok(DemoLogins { created, records })
}

/// The demo account with this e-mail, made (verified, in the demo's zone) if
/// it is not there yet; `true` when it was made now.
async fn demo_user(
    state: &AppState,
    email: &str,
    password: &str,
    name: &str,
    role: &str,
    now_ms: i64,
) -> Result<(users::Model, bool), ServiceError> {
    let find = || users::Entity::find().filter(users::Column::Email.eq(email)).one(&state.db);
    if let Some(u) = find().await? {
        return Ok((u, false));
    }
    let hash = hash_password(password.into()).await?;
    match create_user(&state.db, &Email::parse(email)?, &hash, name, role, DEMO_ZONE, true, now_ms).await? {
        Some(u) => Ok((u, true)),
        // Made meanwhile by another process.
        None => {
            Ok((find().await?.ok_or_else(|| ServiceError::Internal(format!("demo account {email} vanished")))?, false))
        }
    }
}

/// The demo pump: 90 days of the demo data set (devices::demo) written into a
/// simulated MiniMed 754 whose clock runs 3 min 20 s fast, read now with the
/// real driver over the simulated CareLink stick, and imported as the browser
/// posts a pump dump. So the demo's data took the path a patient's takes:
/// pages, CRCs, decoders, clock offset, import. Returns the records stored.
async fn upload_demo_pump(state: &AppState, patient_id: &str, now_ms: i64) -> Result<u64, ServiceError> {
    let zone = therapy::time::parse_zone(DEMO_ZONE).unwrap_or(chrono_tz::UTC);
    let utc = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    let clock = utc.with_timezone(&zone).naive_local() + chrono::Duration::seconds(200);
    let cfg = ::devices::demo::DemoConfig::new(42, 90, clock.date());
    let dump = ::devices::minimed::demo_pump::read_demo_pump(&cfg, clock, utc).map_err(ServiceError::Internal)?;
    let bytes = serde_json::to_vec(&dump).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let file_name = format!("MiniMed-{}-{}.json", ::devices::minimed::demo_pump::DEMO_MODEL, dump.device.serial);
    let summary = super::import::import_file(state, None, patient_id, &file_name, &bytes, now_ms).await?;
    Ok(summary.records.values().sum())
}

/// The demo clinic, its clinician as admin, and the demo patient's record
/// there with a grant of every scope, as if the patient had accepted a link
/// code: one transaction.
async fn link_demo_clinic(
    state: &AppState,
    patient_id: &str,
    clinician_id: &str,
    now_ms: i64,
) -> Result<(), ServiceError> {
    let txn = state.db.begin().await?;
    let clinic_id = store::new_id();
    clinics::ActiveModel {
        id: Set(clinic_id.clone()),
        name: Set("Diabase Demo Clinic".into()),
        created_ms: Set(now_ms),
        require_2fa: Set(false),
        share_code: Set(super::sharing::normalise_code(&super::sharing::new_link_code())),
    }
    .insert(&txn)
    .await?;
    clinic_members::ActiveModel {
        clinic_id: Set(clinic_id.clone()),
        user_id: Set(clinician_id.to_string()),
        role: Set("admin".into()),
        created_ms: Set(now_ms),
    }
    .insert(&txn)
    .await?;
    // The demo patient shares everything with the demo clinic, as if
    // they had accepted a link code.
    let cipher = &state.config.cipher;
    let record_id = store::new_id();
    let grant_id = super::sharing::replace_clinic_grant(
        &txn,
        patient_id,
        &clinic_id,
        &record_id,
        &super::policy::Scope::ALL,
        None,
        now_ms,
    )
    .await?;
    patient_records::ActiveModel {
        id: Set(record_id),
        clinic_id: Set(clinic_id.clone()),
        patient_id: Set(patient_id.to_string()),
        name: Set(cipher.seal("Alex Demo")),
        birth_date: Set(Some(cipher.seal("1990-04-12"))),
        mrn: Set(Some(cipher.seal("DEMO-0001"))),
        linked_user: Set(1),
        created_ms: Set(now_ms),
        mrn_index: Set(Some(cipher.index(&clinic_id, "DEMO-0001"))),
        grant_id: Set(Some(grant_id)),
        created_by: Set(Some(clinician_id.to_string())),
        link_state: Set("linked".into()),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(())
}
