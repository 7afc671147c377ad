//! Demo data for `make run`: a patient with 90 days of pump and CGM data (the
//! deterministic `devices::demo` data set, uploaded from a simulated MiniMed pump
//! through the real driver and the pump-dump import), a clinic and a clinician.
//! Seeded only when asked (`diabase serve --demo`), never on a real site
//! without it, and only once.

use super::auth::{create_user, hash_password, Email};
use super::{AppState, ServiceError};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use store::entity::{clinic_members, clinics, grants, patient_records, patients, users};

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
    let existing = users::Entity::find()
        .filter(users::Column::Email.eq(DEMO_PATIENT_EMAIL))
        .one(&state.db)
        .await?;
    if existing.is_some() {
        return Ok(DemoLogins { created: false, records: 0 });
    }
    let zone = therapy::time::parse_zone(DEMO_ZONE).unwrap_or(chrono_tz::UTC);
    let patient_email = Email::parse(DEMO_PATIENT_EMAIL)?;
    let clin_email = Email::parse(DEMO_CLINICIAN_EMAIL)?;
    let ph = hash_password(DEMO_PATIENT_PASSWORD.into()).await?;
    let ch = hash_password(DEMO_CLINICIAN_PASSWORD.into()).await?;
    let Some(user) = create_user(&state.db, &patient_email, &ph, "Alex Demo", "patient", DEMO_ZONE, true, now_ms).await?
    else {
        return Ok(DemoLogins { created: false, records: 0 });
    };
    let clinician = create_user(&state.db, &clin_email, &ch, "Dr. Sam Demo", "clinician", DEMO_ZONE, true, now_ms).await?;
    let patient = patients::Entity::find()
        .filter(patients::Column::UserId.eq(&user.id))
        .one(&state.db)
        .await?
        .ok_or_else(|| ServiceError::Internal("demo patient space missing".into()))?;

    // The demo pump: 90 days of the demo data set (devices::demo) written into a simulated
    // MiniMed 754 whose clock runs 3 min 20 s fast, read now with the real driver over the
    // simulated CareLink stick, and posted as the browser posts a pump dump. So the demo's
    // data took the path a patient's takes: pages, CRCs, decoders, clock offset, import.
    let utc = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    let clock = utc.with_timezone(&zone).naive_local() + chrono::Duration::seconds(200);
    let cfg = ::devices::demo::DemoConfig::new(42, 90, clock.date());
    let dump = ::devices::minimed::demo_pump::read_demo_pump(&cfg, clock, utc).map_err(ServiceError::Internal)?;
    let bytes = serde_json::to_vec(&dump).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let file_name = format!("MiniMed-{}-{}.json", ::devices::minimed::demo_pump::DEMO_MODEL, dump.device.serial);
    let summary = super::import::import_file(state, None, &patient.id, &file_name, &bytes, now_ms).await?;
    let records: u64 = summary.records.values().sum();

    let txn = state.db.begin().await?;
    if let Some(clinician) = clinician {
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
            user_id: Set(clinician.id.clone()),
            role: Set("admin".into()),
            created_ms: Set(now_ms),
        }
        .insert(&txn)
        .await?;
        // The demo patient shares everything with the demo clinic, as if
        // they had accepted a link code.
        let cipher = &state.config.cipher;
        let record_id = store::new_id();
        let grant_id = store::new_id();
        grants::ActiveModel {
            id: Set(grant_id.clone()),
            patient_id: Set(patient.id.clone()),
            grantee_clinic_id: Set(Some(clinic_id.clone())),
            grantee_user_id: Set(None),
            record_id: Set(Some(record_id.clone())),
            invite_email: Set(None),
            invite_token_hash: Set(None),
            invite_expires_ms: Set(None),
            scopes: Set(super::sharing::all_scopes()),
            created_ms: Set(now_ms),
            updated_ms: Set(now_ms),
            accepted_ms: Set(Some(now_ms)),
            expires_ms: Set(None),
            revoked_ms: Set(None),
            paused_ms: Set(None),
            provider_name: Set(None),
            provider_clinic: Set(None),
        }
        .insert(&txn)
        .await?;
        patient_records::ActiveModel {
            id: Set(record_id),
            clinic_id: Set(clinic_id.clone()),
            patient_id: Set(patient.id.clone()),
            name: Set(cipher.seal("Alex Demo")),
            birth_date: Set(Some(cipher.seal("1990-04-12"))),
            mrn: Set(Some(cipher.seal("DEMO-0001"))),
            linked_user: Set(1),
            created_ms: Set(now_ms),
            mrn_index: Set(Some(cipher.index(&clinic_id, "DEMO-0001"))),
            grant_id: Set(Some(grant_id)),
            created_by: Set(Some(clinician.id.clone())),
            link_state: Set("linked".into()),
        }
        .insert(&txn)
        .await?;
    }
    txn.commit().await?;
    Ok(DemoLogins { created: true, records })
}
