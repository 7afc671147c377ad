//! Deleting an account and all its data (the right to erasure), after the
//! user proves again who they are: the password, and a second-factor code
//! when two-factor authentication is on.
//!
//! What goes: the account, its sessions, tokens, authenticator and recovery
//! codes, reset links, the patient's data space (every glucose value,
//! therapy event, device, upload, Nightscout site and document, grant,
//! daily sum and upload request) and raw files no other upload refers to.
//! What stays: a clinic's own record of the patient (name, birth date, MRN:
//! the clinic's chart, sealed), now unlinked and without data; and the
//! audit trail, which is append-only and holds ids, never health data (it
//! gains an `account.deleted` entry). A clinic whose only admin this user is
//! must get another admin first, unless the user is its only member and it
//! holds no records, in which case the clinic goes too.

use super::{Actor, AppState, ClientMeta, ServiceError, auth, policy, ratelimit, twofactor};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Set, TransactionTrait,
};
use store::entity::{clinic_members, clinics, patient_records, patients, raw_blobs, uploads, users};

/// Failed re-authentications allowed per account per window.
const REAUTH_LIMIT: u32 = 5;
const REAUTH_WINDOW_MS: i64 = 15 * 60 * 1000;

/// Checks the password (and the second factor when it is on) of a
/// destructive request. Failures count against a per-account limit.
pub async fn reauthenticate(
    state: &AppState,
    user: &users::Model,
    password: &str,
    code: Option<&str>,
    now: i64,
) -> Result<(), ServiceError> {
    let bucket = format!("reauth:{}", user.id);
    // Charged before the check (one conditional UPDATE), so that concurrent
    // attempts cannot all pass a check made before any of them is counted;
    // a success clears the bucket.
    ratelimit::hit(&state.db, &bucket, REAUTH_LIMIT, REAUTH_WINDOW_MS, now).await?;
    if !auth::verify_password_checked(password.to_string(), Some(user.password_hash.clone())).await? {
        return Err(ServiceError::bad("password", "The password is not right."));
    }
    if twofactor::enabled(&state.db, &user.id).await? {
        let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
            // Asking for the code is not a failed attempt.
            ratelimit::refund(&state.db, &bucket, REAUTH_WINDOW_MS, now).await?;
            return Err(ServiceError::TotpRequired);
        };
        if !twofactor::verify(state, &user.id, code, now).await? {
            return Err(ServiceError::TotpInvalid);
        }
    }
    ratelimit::clear(&state.db, &bucket).await?;
    Ok(())
}

/// Deletes the caller's account and data; see the module documentation.
pub async fn delete_account(
    state: &AppState,
    actor: &Actor,
    password: &str,
    code: Option<&str>,
    meta: &ClientMeta,
    now: i64,
) -> Result<(), ServiceError> {
    // Never with an API token, whatever its scopes.
    super::twofactor::require_session(actor)?;
    let user = &actor.user;
    reauthenticate(state, user, password, code, now).await?;

    // Clinics this user administers alone.
    let mut lone_clinics = Vec::new();
    let admin_of: Vec<String> = clinic_members::Entity::find()
        .select_only()
        .column(clinic_members::Column::ClinicId)
        .filter(clinic_members::Column::UserId.eq(&user.id))
        .filter(clinic_members::Column::Role.eq("admin"))
        .into_tuple()
        .all(&state.db)
        .await?;
    for clinic_id in admin_of {
        let admins = clinic_members::Entity::find()
            .filter(clinic_members::Column::ClinicId.eq(&clinic_id))
            .filter(clinic_members::Column::Role.eq("admin"))
            .count(&state.db)
            .await?;
        if admins > 1 {
            continue;
        }
        let members = clinic_members::Entity::find()
            .filter(clinic_members::Column::ClinicId.eq(&clinic_id))
            .count(&state.db)
            .await?;
        let records = patient_records::Entity::find()
            .filter(patient_records::Column::ClinicId.eq(&clinic_id))
            .count(&state.db)
            .await?;
        if members > 1 || records > 0 {
            let name = clinics::Entity::find_by_id(clinic_id.clone())
                .one(&state.db)
                .await?
                .map(|c| c.name)
                .unwrap_or_default();
            return Err(ServiceError::Conflict(format!(
                "You are the only admin of {name}. Make another member an admin first, or remove its members and patient records."
            )));
        }
        lone_clinics.push(clinic_id);
    }

    let patient = policy::own_patient(state, &user.id).await?;
    let txn = state.db.begin().await?;
    let mut blobs: Vec<String> = Vec::new();
    if let Some(p) = &patient {
        // Clinic records of this patient keep the clinic's chart, unlinked,
        // each over a new empty custodial space.
        let records =
            patient_records::Entity::find().filter(patient_records::Column::PatientId.eq(&p.id)).all(&txn).await?;
        for r in records {
            let space = store::new_id();
            patients::ActiveModel {
                id: Set(space.clone()),
                user_id: Set(None),
                display_name: Set(r.name.clone()),
                time_zone: Set(p.time_zone.clone()),
                created_ms: Set(now),
            }
            .insert(&txn)
            .await?;
            let mut m: patient_records::ActiveModel = r.into();
            m.patient_id = Set(space);
            m.linked_user = Set(0);
            m.grant_id = Set(None);
            m.link_state = Set("custodial".into());
            m.update(&txn).await?;
        }
        blobs = uploads::Entity::find()
            .select_only()
            .column(uploads::Column::BlobSha256)
            .filter(uploads::Column::PatientId.eq(&p.id))
            .filter(uploads::Column::BlobSha256.is_not_null())
            .into_tuple::<Option<String>>()
            .all(&txn)
            .await?
            .into_iter()
            .flatten()
            .collect();
        blobs.sort();
        blobs.dedup();
        // Records go with their uploads, then everything else of the space.
        uploads::Entity::delete_many().filter(uploads::Column::PatientId.eq(&p.id)).exec(&txn).await?;
        patients::Entity::delete_by_id(p.id.clone()).exec(&txn).await?;
    }
    for chunk in blobs.chunks(500) {
        let still_used: Vec<Option<String>> = uploads::Entity::find()
            .select_only()
            .column(uploads::Column::BlobSha256)
            .filter(uploads::Column::BlobSha256.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(&txn)
            .await?;
        let orphans: Vec<&String> =
            chunk.iter().filter(|s| !still_used.iter().any(|u| u.as_deref() == Some(s.as_str()))).collect();
        if !orphans.is_empty() {
            raw_blobs::Entity::delete_many()
                .filter(raw_blobs::Column::Sha256.is_in(orphans.into_iter().cloned()))
                .exec(&txn)
                .await?;
        }
    }
    for clinic_id in &lone_clinics {
        clinics::Entity::delete_by_id(clinic_id.clone()).exec(&txn).await?;
    }
    users::Entity::delete_by_id(user.id.clone()).exec(&txn).await?;
    txn.commit().await?;
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(&user.id),
            patient_id: patient.as_ref().map(|p| p.id.as_str()),
            action: "account.deleted",
            detail: &format!("user={} clinics_removed={}", user.id, lone_clinics.len()),
            ip: meta.ip.as_deref(),
        },
    )
    .await?;
    Ok(())
}
