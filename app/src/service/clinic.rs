//! The clinic workspace: clinics and their members, patient records (name,
//! date of birth and MRN sealed at rest), link codes, upload requests, and
//! the dashboard of patients with 14-day figures and triage flags.
//!
//! Membership is checked here ([`policy::clinic_role`]); patient data is
//! reached only through [`policy::can`], which honours the patient's grants.

use super::policy::{self, Scope, grant_active, scope_names};
use super::{Actor, AppState, ServiceError, ms_to_rfc3339};
use crate::model::{ClinicMember, ClinicPatientPage, ClinicPatientRow, ClinicSummary, LinkCode};
use chrono::{Duration, TimeZone, Utc};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Set, TransactionTrait,
};
use std::collections::HashMap;
use store::entity::{
    clinic_invites, clinic_members, clinics, daily_glucose, grants, link_codes, patient_records, patients,
    upload_requests, uploads, users,
};
use therapy::metrics::daily::combine;

/// The dashboard's window: the 14 local days ending today.
pub const DASHBOARD_DAYS: i64 = 14;
pub const MAX_PER_PAGE: u32 = 200;

pub(crate) fn clean_name(s: &str, field: &'static str, what: &str) -> Result<String, ServiceError> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
        return Err(ServiceError::bad(field, format!("Give {what} of 1 to 200 characters.")));
    }
    Ok(s.to_string())
}

fn require_clinician(actor: &Actor) -> Result<(), ServiceError> {
    match actor.user.role.as_str() {
        "clinician" | "admin" => Ok(()),
        _ => Err(ServiceError::Forbidden),
    }
}

/// A clinician creates a clinic and becomes its admin.
pub async fn create_clinic(
    state: &AppState,
    actor: &Actor,
    name: &str,
    now: i64,
) -> Result<ClinicSummary, ServiceError> {
    require_clinician(actor)?;
    // A clinic receives patients' data: not for an address nobody confirmed.
    super::reauth::require_confirmed(actor)?;
    let name = clean_name(name, "name", "the clinic a name")?;
    let id = store::new_id();
    let txn = state.db.begin().await?;
    let share_code = super::sharing::normalise_code(&super::sharing::new_link_code());
    clinics::ActiveModel {
        id: Set(id.clone()),
        name: Set(name.clone()),
        created_ms: Set(now),
        require_2fa: Set(false),
        share_code: Set(share_code.clone()),
    }
    .insert(&txn)
    .await?;
    clinic_members::ActiveModel {
        clinic_id: Set(id.clone()),
        user_id: Set(actor.user.id.clone()),
        role: Set("admin".into()),
        created_ms: Set(now),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    audit(state, actor, None, "clinic.created", &format!("clinic={id}"), now).await?;
    Ok(ClinicSummary {
        id,
        name,
        role: "admin".into(),
        patients: 0,
        members: 1,
        require_2fa: false,
        share_code: share_code.as_deref().map(format_share_code),
        new_patients: 0,
    })
}

async fn audit(
    state: &AppState,
    actor: &Actor,
    patient: Option<&str>,
    action: &str,
    detail: &str,
    now: i64,
) -> Result<(), ServiceError> {
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(&actor.user.id),
            patient_id: patient,
            action,
            detail,
            ip: None,
        },
    )
    .await?;
    Ok(())
}

/// The clinics the caller belongs to (first joining the clinics that
/// invited a confirmed clinician's address, when the caller has full access).
pub async fn my_clinics(state: &AppState, actor: &Actor) -> Result<Vec<ClinicSummary>, ServiceError> {
    if actor.full_access() {
        join_invited(state, &actor.user, super::now_ms()).await?;
    }
    let memberships =
        clinic_members::Entity::find().filter(clinic_members::Column::UserId.eq(&actor.user.id)).all(&state.db).await?;
    let mut out = Vec::new();
    for m in memberships {
        let Some(c) = clinics::Entity::find_by_id(m.clinic_id.clone()).one(&state.db).await? else { continue };
        let patients = patient_records::Entity::find()
            .filter(patient_records::Column::ClinicId.eq(&c.id))
            .count(&state.db)
            .await?;
        let members =
            clinic_members::Entity::find().filter(clinic_members::Column::ClinicId.eq(&c.id)).count(&state.db).await?;
        let new_patients = patient_records::Entity::find()
            .filter(patient_records::Column::ClinicId.eq(&c.id))
            .filter(patient_records::Column::LinkState.eq("new"))
            .count(&state.db)
            .await?;
        let code = match c.share_code.clone() {
            Some(code) => code,
            None => ensure_share_code(state, &c.id).await?,
        };
        out.push(ClinicSummary {
            id: c.id,
            name: c.name,
            role: m.role,
            patients,
            members,
            require_2fa: c.require_2fa,
            share_code: Some(format_share_code(&code)),
            new_patients,
        });
    }
    out.sort_by_key(|a| a.name.to_lowercase());
    Ok(out)
}

/// `ABCDEFGHJKMN` as `ABCD-EFGH-JKMN`.
pub fn format_share_code(normalised: &str) -> String {
    if normalised.len() == 12 && normalised.is_ascii() {
        format!("{}-{}-{}", &normalised[0..4], &normalised[4..8], &normalised[8..12])
    } else {
        normalised.to_string()
    }
}

/// Gives a clinic made before share codes existed its code (once; a
/// concurrent caller's code wins).
async fn ensure_share_code(state: &AppState, clinic_id: &str) -> Result<String, ServiceError> {
    let code = super::sharing::normalise_code(&super::sharing::new_link_code())
        .ok_or_else(|| ServiceError::Internal("share code".into()))?;
    clinics::Entity::update_many()
        .col_expr(clinics::Column::ShareCode, Expr::value(code))
        .filter(clinics::Column::Id.eq(clinic_id))
        .filter(clinics::Column::ShareCode.is_null())
        .exec(&state.db)
        .await?;
    clinics::Entity::find_by_id(clinic_id.to_string())
        .one(&state.db)
        .await?
        .and_then(|c| c.share_code)
        .ok_or(ServiceError::NotFound)
}

/// An admin replaces the clinic's share code (the old one stops working at
/// once; patients who already share keep sharing).
pub async fn rotate_share_code(
    state: &AppState,
    actor: &Actor,
    clinic_id: &str,
    now: i64,
) -> Result<String, ServiceError> {
    policy::require_clinic_admin(state, actor, clinic_id).await?;
    let code = super::sharing::normalise_code(&super::sharing::new_link_code())
        .ok_or_else(|| ServiceError::Internal("share code".into()))?;
    clinics::Entity::update_many()
        .col_expr(clinics::Column::ShareCode, Expr::value(code.clone()))
        .filter(clinics::Column::Id.eq(clinic_id))
        .exec(&state.db)
        .await?;
    audit(state, actor, None, "clinic.share_code_rotated", &format!("clinic={clinic_id}"), now).await?;
    Ok(format_share_code(&code))
}

/// A clinician has seen a patient who shared on their own initiative: the
/// record leaves the "new patients" list.
pub async fn acknowledge_patient(
    state: &AppState,
    actor: &Actor,
    clinic_id: &str,
    record_id: &str,
    now: i64,
) -> Result<(), ServiceError> {
    let (_, record) = record_of(state, actor, clinic_id, record_id).await?;
    if record.link_state != "new" {
        return Ok(());
    }
    patient_records::Entity::update_many()
        .col_expr(patient_records::Column::LinkState, Expr::value("linked"))
        .filter(patient_records::Column::Id.eq(record_id))
        .filter(patient_records::Column::LinkState.eq("new"))
        .exec(&state.db)
        .await?;
    audit(
        state,
        actor,
        Some(&record.patient_id),
        "clinic.patient_acknowledged",
        &format!("clinic={clinic_id} record={record_id}"),
        now,
    )
    .await?;
    Ok(())
}

/// An admin makes two-factor authentication required (or not) for the
/// clinic's members. An admin without it cannot require it (they would lock
/// themselves out); members without it are told to turn it on when they next
/// open the clinic, and until then see none of its patients.
pub async fn set_require_2fa(
    state: &AppState,
    actor: &Actor,
    clinic_id: &str,
    on: bool,
    now: i64,
) -> Result<(), ServiceError> {
    policy::require_clinic_admin(state, actor, clinic_id).await?;
    if on && !super::twofactor::strong(&state.db, &actor.user.id).await? {
        return Err(ServiceError::bad(
            "require_2fa",
            "Turn on two-factor authentication or add a passkey for your own account first (Settings), then require it of the clinic.",
        ));
    }
    let clinic =
        clinics::Entity::find_by_id(clinic_id.to_string()).one(&state.db).await?.ok_or(ServiceError::NotFound)?;
    let mut active: clinics::ActiveModel = clinic.into();
    active.require_2fa = Set(on);
    active.update(&state.db).await?;
    audit(
        state,
        actor,
        None,
        if on { "clinic.require_2fa.on" } else { "clinic.require_2fa.off" },
        &format!("clinic={clinic_id}"),
        now,
    )
    .await
}

/// The name of a clinic `user_id` belongs to that requires two-factor
/// authentication, if any (such a member cannot turn it off).
pub async fn clinic_requiring_2fa<C: sea_orm::ConnectionTrait>(
    db: &C,
    user_id: &str,
) -> Result<Option<String>, ServiceError> {
    let ids: Vec<String> = clinic_members::Entity::find()
        .filter(clinic_members::Column::UserId.eq(user_id))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.clinic_id)
        .collect();
    if ids.is_empty() {
        return Ok(None);
    }
    Ok(clinics::Entity::find()
        .filter(clinics::Column::Id.is_in(ids))
        .filter(clinics::Column::Require2fa.eq(true))
        .one(db)
        .await?
        .map(|c| c.name))
}

fn parse_role(role: &str) -> Result<&'static str, ServiceError> {
    match role.trim() {
        "clinician" => Ok("clinician"),
        "admin" => Ok("admin"),
        _ => Err(ServiceError::bad("role", "Role must be clinician or admin.")),
    }
}

/// An admin adds a colleague by email. The answer is the same for an
/// unknown address, a patient account and a clinician account (status
/// `invited`: nothing tells the admin which, issue 19): the address gets an
/// invitation, which only a clinician account whose address is confirmed
/// joins (at its next sign-in, confirmation or look at its clinics). A
/// patient account gets a mail saying that colleagues need a clinician
/// account. Only a colleague who is a member already (the admin sees the
/// members) has their role changed at once.
pub async fn add_member(
    state: &AppState,
    actor: &Actor,
    clinic_id: &str,
    email: &str,
    role: &str,
    now: i64,
) -> Result<ClinicMember, ServiceError> {
    policy::require_clinic_admin(state, actor, clinic_id).await?;
    let role = parse_role(role)?;
    let email = super::auth::Email::parse(email)?;
    let clinic =
        clinics::Entity::find_by_id(clinic_id.to_string()).one(&state.db).await?.ok_or(ServiceError::NotFound)?;
    let user = users::Entity::find().filter(users::Column::Email.eq(email.as_str())).one(&state.db).await?;
    if let Some(u) = &user
        && let Some(m) =
            clinic_members::Entity::find_by_id((clinic_id.to_string(), u.id.clone())).one(&state.db).await?
    {
        let mut am: clinic_members::ActiveModel = m.into();
        am.role = Set(role.into());
        am.update(&state.db).await?;
        audit(state, actor, None, "clinic.member_added", &format!("clinic={clinic_id} role={role} status=active"), now)
            .await?;
        return Ok(ClinicMember {
            user_id: Some(u.id.clone()),
            email: u.email.clone(),
            display_name: Some(u.display_name.clone()),
            role: role.into(),
            status: "active".into(),
        });
    }
    clinic_invites::Entity::delete_many()
        .filter(clinic_invites::Column::ClinicId.eq(clinic_id))
        .filter(clinic_invites::Column::Email.eq(email.as_str()))
        .exec(&state.db)
        .await?;
    clinic_invites::ActiveModel {
        clinic_id: Set(clinic_id.to_string()),
        email: Set(email.as_str().to_string()),
        role: Set(role.into()),
        invited_by: Set(Some(actor.user.id.clone())),
        created_ms: Set(now),
    }
    .insert(&state.db)
    .await?;
    let patient = user.as_ref().is_some_and(|u| u.role == "patient");
    let body = if patient {
        format!(
            "{who} invited this address to the clinic \"{clinic}\" on Diabase as {role}.\n\n\
             Your Diabase account with this address is a patient account, which cannot join a clinic:\n\
             colleagues need a clinician account, with an address of its own. Nothing changes for your\n\
             account or your data. If you did not expect this, ignore this message.\n",
            who = actor.user.display_name,
            clinic = clinic.name,
        )
    } else {
        format!(
            "{who} invited you to the clinic \"{clinic}\" on Diabase as {role}.\n\n\
             Sign in (or sign up) as a clinician with this email address and confirm it; then open:\n{url}/clinic\n\n\
             If you did not expect this, ignore this message.\n",
            who = actor.user.display_name,
            clinic = clinic.name,
            url = state.config.public_url,
        )
    };
    super::mail::send(
        state,
        super::mail::Mail { to: email.as_str(), subject: "You were invited to a clinic on Diabase", body: &body },
        now,
    )
    .await?;
    audit(state, actor, None, "clinic.member_added", &format!("clinic={clinic_id} role={role} status=invited"), now)
        .await?;
    Ok(ClinicMember {
        user_id: None,
        email: email.as_str().to_string(),
        display_name: None,
        role: role.into(),
        status: "invited".into(),
    })
}

/// Turns the invitations for `user`'s email into memberships (at sign-up and log-in).
pub async fn join_invited(state: &AppState, user: &users::Model, now: i64) -> Result<(), ServiceError> {
    if user.role == "patient" || user.email_verified_ms.is_none() {
        return Ok(());
    }
    let invites =
        clinic_invites::Entity::find().filter(clinic_invites::Column::Email.eq(&user.email)).all(&state.db).await?;
    for inv in invites {
        let exists =
            clinic_members::Entity::find_by_id((inv.clinic_id.clone(), user.id.clone())).one(&state.db).await?;
        if exists.is_none() {
            clinic_members::ActiveModel {
                clinic_id: Set(inv.clinic_id.clone()),
                user_id: Set(user.id.clone()),
                role: Set(inv.role.clone()),
                created_ms: Set(now),
            }
            .insert(&state.db)
            .await?;
        }
        clinic_invites::Entity::delete_many()
            .filter(clinic_invites::Column::ClinicId.eq(&inv.clinic_id))
            .filter(clinic_invites::Column::Email.eq(&inv.email))
            .exec(&state.db)
            .await?;
    }
    Ok(())
}

pub async fn list_members(state: &AppState, actor: &Actor, clinic_id: &str) -> Result<Vec<ClinicMember>, ServiceError> {
    policy::clinic_role(state, actor, clinic_id).await?;
    let members =
        clinic_members::Entity::find().filter(clinic_members::Column::ClinicId.eq(clinic_id)).all(&state.db).await?;
    let mut out = Vec::new();
    for m in members {
        if let Some(u) = users::Entity::find_by_id(m.user_id.clone()).one(&state.db).await? {
            out.push(ClinicMember {
                user_id: Some(u.id),
                email: u.email,
                display_name: Some(u.display_name),
                role: m.role,
                status: "active".into(),
            });
        }
    }
    let invites =
        clinic_invites::Entity::find().filter(clinic_invites::Column::ClinicId.eq(clinic_id)).all(&state.db).await?;
    out.extend(invites.into_iter().map(|i| ClinicMember {
        user_id: None,
        email: i.email,
        display_name: None,
        role: i.role,
        status: "invited".into(),
    }));
    out.sort_by(|a, b| a.email.cmp(&b.email));
    Ok(out)
}

/// Changes a member's role; the last admin cannot step down.
pub async fn set_member_role(
    state: &AppState,
    actor: &Actor,
    clinic_id: &str,
    user_id: &str,
    role: &str,
    now: i64,
) -> Result<(), ServiceError> {
    policy::require_clinic_admin(state, actor, clinic_id).await?;
    let role = parse_role(role)?;
    let m = clinic_members::Entity::find_by_id((clinic_id.to_string(), user_id.to_string()))
        .one(&state.db)
        .await?
        .ok_or(ServiceError::NotFound)?;
    if m.role == "admin" && role != "admin" && admins(state, clinic_id).await? <= 1 {
        return Err(ServiceError::Conflict("A clinic needs at least one admin: make someone else admin first.".into()));
    }
    let mut am: clinic_members::ActiveModel = m.into();
    am.role = Set(role.into());
    am.update(&state.db).await?;
    audit(state, actor, None, "clinic.member_role", &format!("clinic={clinic_id} user={user_id} role={role}"), now)
        .await
}

/// Removes a member (or an invitation, by email); the last admin stays.
pub async fn remove_member(
    state: &AppState,
    actor: &Actor,
    clinic_id: &str,
    user_or_email: &str,
    now: i64,
) -> Result<(), ServiceError> {
    policy::require_clinic_admin(state, actor, clinic_id).await?;
    if user_or_email.contains('@') {
        let res = clinic_invites::Entity::delete_many()
            .filter(clinic_invites::Column::ClinicId.eq(clinic_id))
            .filter(clinic_invites::Column::Email.eq(user_or_email.trim().to_lowercase()))
            .exec(&state.db)
            .await?;
        if res.rows_affected == 0 {
            return Err(ServiceError::NotFound);
        }
        return Ok(());
    }
    let m = clinic_members::Entity::find_by_id((clinic_id.to_string(), user_or_email.to_string()))
        .one(&state.db)
        .await?
        .ok_or(ServiceError::NotFound)?;
    if m.role == "admin" && admins(state, clinic_id).await? <= 1 {
        return Err(ServiceError::Conflict("A clinic needs at least one admin.".into()));
    }
    clinic_members::Entity::delete_by_id((clinic_id.to_string(), user_or_email.to_string())).exec(&state.db).await?;
    audit(state, actor, None, "clinic.member_removed", &format!("clinic={clinic_id} user={user_or_email}"), now).await
}

async fn admins(state: &AppState, clinic_id: &str) -> Result<u64, ServiceError> {
    Ok(clinic_members::Entity::find()
        .filter(clinic_members::Column::ClinicId.eq(clinic_id))
        .filter(clinic_members::Column::Role.eq("admin"))
        .count(&state.db)
        .await?)
}

// ---------------------------------------------------------------------------
// Patient records.

/// The input of a new record.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct NewRecord {
    pub name: String,
    #[serde(default)]
    pub birth_date: Option<String>,
    #[serde(default)]
    pub mrn: Option<String>,
}

fn normalise_mrn(mrn: &str) -> String {
    mrn.trim().to_uppercase()
}

/// Adds a patient record (custodial until linked): its own data space, so
/// the clinic can upload for a patient without an account.
pub async fn create_record(
    state: &AppState,
    actor: &Actor,
    clinic_id: &str,
    input: NewRecord,
    now: i64,
) -> Result<String, ServiceError> {
    policy::clinic_role(state, actor, clinic_id).await?;
    let name = clean_name(&input.name, "name", "the patient's name")?;
    let birth = match input.birth_date.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(b) => {
            let d = chrono::NaiveDate::parse_from_str(b, "%Y-%m-%d")
                .map_err(|_| ServiceError::bad("birth_date", "Give the date of birth as YYYY-MM-DD."))?;
            let today = Utc.timestamp_millis_opt(now).single().unwrap_or_default().date_naive();
            if d > today || d < chrono::NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(d) {
                return Err(ServiceError::bad("birth_date", "The date of birth is not plausible."));
            }
            Some(d.to_string())
        }
        None => None,
    };
    let mrn = input.mrn.as_deref().map(normalise_mrn).filter(|s| !s.is_empty());
    if let Some(m) = &mrn
        && (m.chars().count() > 64 || m.chars().any(char::is_control))
    {
        return Err(ServiceError::bad("mrn", "An MRN has at most 64 characters."));
    }
    let cipher = &state.config.cipher;
    let mrn_index = mrn.as_ref().map(|m| cipher.index(clinic_id, m));
    if let Some(ix) = &mrn_index {
        let dup = patient_records::Entity::find()
            .filter(patient_records::Column::ClinicId.eq(clinic_id))
            .filter(patient_records::Column::MrnIndex.eq(ix))
            .count(&state.db)
            .await?;
        if dup > 0 {
            return Err(ServiceError::Conflict("This clinic already has a patient with that MRN.".into()));
        }
    }
    let patient_id = store::new_id();
    let record_id = store::new_id();
    let txn = state.db.begin().await?;
    patients::ActiveModel {
        id: Set(patient_id.clone()),
        user_id: Set(None),
        display_name: Set(cipher.seal(&name)),
        time_zone: Set(actor.user.time_zone.clone()),
        created_ms: Set(now),
    }
    .insert(&txn)
    .await?;
    patient_records::ActiveModel {
        id: Set(record_id.clone()),
        clinic_id: Set(clinic_id.to_string()),
        patient_id: Set(patient_id),
        name: Set(cipher.seal(&name)),
        birth_date: Set(birth.as_deref().map(|b| cipher.seal(b))),
        mrn: Set(mrn.as_deref().map(|m| cipher.seal(m))),
        linked_user: Set(0),
        created_ms: Set(now),
        mrn_index: Set(mrn_index),
        grant_id: Set(None),
        created_by: Set(Some(actor.user.id.clone())),
        link_state: Set("custodial".into()),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    audit(state, actor, None, "clinic.record_created", &format!("clinic={clinic_id} record={record_id}"), now).await?;
    Ok(record_id)
}

async fn record_of(
    state: &AppState,
    actor: &Actor,
    clinic_id: &str,
    record_id: &str,
) -> Result<(String, patient_records::Model), ServiceError> {
    let role = policy::clinic_role(state, actor, clinic_id).await?;
    let r = patient_records::Entity::find_by_id(record_id.to_string())
        .filter(patient_records::Column::ClinicId.eq(clinic_id))
        .one(&state.db)
        .await?
        .ok_or(ServiceError::NotFound)?;
    Ok((role, r))
}

/// A one-time code for the patient to link their account (see `sharing`).
/// Any earlier unused code of the record stops working. With `email`, the
/// code is also mailed to the patient.
pub async fn create_link_code(
    state: &AppState,
    actor: &Actor,
    clinic_id: &str,
    record_id: &str,
    email: Option<&str>,
    phone: Option<&str>,
    now: i64,
) -> Result<LinkCode, ServiceError> {
    let (_, record) = record_of(state, actor, clinic_id, record_id).await?;
    if record.link_state == "linked"
        && let Some(g) = &record.grant_id
        && let Some(g) = grants::Entity::find_by_id(g.clone()).one(&state.db).await?
        && grant_active(&g, now)
    {
        return Err(ServiceError::Conflict("This record is already linked to a patient account.".into()));
    }
    let email = match email.map(str::trim).filter(|s| !s.is_empty()) {
        Some(e) => Some(super::auth::Email::parse(e)?),
        None => None,
    };
    let phone = match phone.map(str::trim).filter(|s| !s.is_empty()) {
        Some(p) => {
            if !super::sms::enabled(state) {
                return Err(ServiceError::bad(
                    "phone",
                    "Text messages are not set up on this Diabase server; use email or print the code.",
                ));
            }
            Some(super::sms::parse_e164(p)?)
        }
        None => None,
    };
    let clinic =
        clinics::Entity::find_by_id(clinic_id.to_string()).one(&state.db).await?.ok_or(ServiceError::NotFound)?;
    let code = super::sharing::new_link_code();
    let norm = super::sharing::normalise_code(&code).ok_or_else(|| ServiceError::Internal("link code".into()))?;
    let expires = now + super::sharing::LINK_CODE_TTL_MS;
    let txn = state.db.begin().await?;
    link_codes::Entity::update_many()
        .col_expr(link_codes::Column::UsedMs, Expr::value(now))
        .col_expr(link_codes::Column::Outcome, Expr::value("replaced"))
        .filter(link_codes::Column::RecordId.eq(record_id))
        .filter(link_codes::Column::UsedMs.is_null())
        .exec(&txn)
        .await?;
    link_codes::ActiveModel {
        code_hash: Set(super::sharing::code_hash(&norm)),
        clinic_id: Set(clinic_id.to_string()),
        record_id: Set(record_id.to_string()),
        scopes: Set(super::sharing::all_scopes()),
        created_by: Set(Some(actor.user.id.clone())),
        created_ms: Set(now),
        expires_ms: Set(expires),
        used_ms: Set(None),
        used_by: Set(None),
        outcome: Set(None),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    let url = format!("{}/sharing?code={code}", state.config.public_url);
    if let Some(e) = &email {
        let body = format!(
            "{clinic} asks you to share your diabetes data with them on Diabase.\n\nYour one-time code: {code}\n\nOpen {url}\n(log in or sign up first), check what the clinic asks for, choose what to share and for how long, then accept or decline.\n\nThe code works once and expires in 48 hours. If you did not expect this, ignore this message.",
            clinic = clinic.name,
        );
        super::mail::send(
            state,
            super::mail::Mail { to: e.as_str(), subject: "Link your Diabase account with your clinic", body: &body },
            now,
        )
        .await?;
    }
    if let Some(p) = &phone {
        // No health data and no patient name: the clinic, the code, the page.
        let text = format!(
            "Diabase: {clinic} asks to link with your Diabase account. Your one-time code: {code} (valid 48 h). Enter it at {url}",
            clinic = clinic.name.chars().take(40).collect::<String>(),
        );
        super::sms::send(state, p, &text).await?;
    }
    audit(
        state,
        actor,
        None,
        "clinic.link_code",
        &format!("clinic={clinic_id} record={record_id} emailed={} texted={}", email.is_some(), phone.is_some()),
        now,
    )
    .await?;
    Ok(LinkCode {
        code,
        expires_at: ms_to_rfc3339(expires),
        url,
        emailed_to: email.map(|e| e.as_str().to_string()),
        texted_to: phone,
    })
}

/// "Please upload": an in-app notice on the patient's dashboard and an email.
pub async fn request_upload(
    state: &AppState,
    actor: &Actor,
    clinic_id: &str,
    record_id: &str,
    now: i64,
) -> Result<String, ServiceError> {
    let (_, record) = record_of(state, actor, clinic_id, record_id).await?;
    let patient =
        patients::Entity::find_by_id(record.patient_id.clone()).one(&state.db).await?.ok_or(ServiceError::NotFound)?;
    let Some(user_id) = patient.user_id.clone() else {
        return Err(ServiceError::Conflict(
            "This record is not linked to a patient account: upload for the patient in the clinic.".into(),
        ));
    };
    let active = match &record.grant_id {
        Some(g) => grants::Entity::find_by_id(g.clone()).one(&state.db).await?.is_some_and(|g| grant_active(&g, now)),
        None => false,
    };
    if !active {
        return Err(ServiceError::Conflict("The patient does not share data with this clinic now.".into()));
    }
    let clinic =
        clinics::Entity::find_by_id(clinic_id.to_string()).one(&state.db).await?.ok_or(ServiceError::NotFound)?;
    let id = store::new_id();
    upload_requests::ActiveModel {
        id: Set(id.clone()),
        patient_id: Set(patient.id.clone()),
        clinic_id: Set(clinic_id.to_string()),
        record_id: Set(record_id.to_string()),
        requested_by: Set(Some(actor.user.id.clone())),
        created_ms: Set(now),
        done_ms: Set(None),
    }
    .insert(&state.db)
    .await?;
    if let Some(u) = users::Entity::find_by_id(user_id).one(&state.db).await? {
        let body = format!(
            "{clinic} asks you to upload your pump, CGM or meter data before your appointment.\n\nUpload now: {url}/upload\n",
            clinic = clinic.name,
            url = state.config.public_url,
        );
        super::mail::send(
            state,
            super::mail::Mail { to: &u.email, subject: "Your clinic asks for an upload", body: &body },
            now,
        )
        .await?;
    }
    audit(
        state,
        actor,
        Some(&patient.id),
        "clinic.upload_request",
        &format!("clinic={clinic_id} record={record_id}"),
        now,
    )
    .await?;
    Ok(id)
}

// ---------------------------------------------------------------------------
// The dashboard.

/// The dashboard's query: search, triage filters, sort and page.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct PatientQuery {
    /// Matches name or MRN (case-insensitive, part of it).
    #[serde(default)]
    pub q: Option<String>,
    /// name · mrn · last_upload · in_range · below_54 · below_70 · gmi · cv · cgm_active · status
    #[serde(default)]
    pub sort: Option<String>,
    /// asc or desc.
    #[serde(default)]
    pub order: Option<String>,
    /// Comma list of flags (a row matching any is kept), or "flagged" for any flag.
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    pub page: Option<u32>,
    #[serde(default)]
    pub per_page: Option<u32>,
}

pub const FLAGS: [&str; 5] = ["below_54", "below_70", "low_tir", "low_active", "no_upload"];

/// Triage flags of a row (consensus targets: < 1 % below 54, < 4 % below 70,
/// > 70 % in range; CGM worn ≥ 70 %; an upload within 14 days).
pub fn flags_of(row: &ClinicPatientRow, now: i64) -> Vec<String> {
    let mut f = Vec::new();
    if row.patient_id.is_none() {
        return f;
    }
    if row.very_low_percent.is_some_and(|v| v > 1.0) {
        f.push("below_54".to_string());
    }
    if row.below_70_percent.is_some_and(|v| v > 4.0) {
        f.push("below_70".to_string());
    }
    if row.in_range_percent.is_some_and(|v| v < 70.0) {
        f.push("low_tir".to_string());
    }
    if row.cgm_active_percent.unwrap_or(0.0) < 70.0 {
        f.push("low_active".to_string());
    }
    let recent = row
        .last_upload_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| now - t.timestamp_millis() <= DASHBOARD_DAYS * 86_400_000);
    if !recent {
        f.push("no_upload".to_string());
    }
    f
}

/// The clinic's patients, one page, with figures from the per-day sums.
/// The rows shown are written to the audit log as summary reads.
pub async fn dashboard(
    state: &AppState,
    actor: &Actor,
    clinic_id: &str,
    q: &PatientQuery,
    now: i64,
) -> Result<ClinicPatientPage, ServiceError> {
    let role = policy::clinic_role(state, actor, clinic_id).await?;
    let clinic =
        clinics::Entity::find_by_id(clinic_id.to_string()).one(&state.db).await?.ok_or(ServiceError::NotFound)?;
    let mut rows = rows_of(state, clinic_id, None, now).await?;
    if let Some(text) = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let needle = text.to_lowercase();
        rows.retain(|r| {
            r.name.to_lowercase().contains(&needle)
                || r.mrn.as_deref().is_some_and(|m| m.to_lowercase().contains(&needle))
        });
    }
    if let Some(filter) = q.filter.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let wanted: Vec<&str> = filter.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        for w in &wanted {
            if *w != "flagged" && *w != "new" && !FLAGS.contains(w) {
                return Err(ServiceError::bad(
                    "filter",
                    format!("Unknown filter {w:?}: use flagged, new, {}.", FLAGS.join(", ")),
                ));
            }
        }
        rows.retain(|r| {
            wanted.iter().any(|w| match *w {
                "flagged" => !r.flags.is_empty(),
                "new" => r.new_patient,
                w => r.flags.iter().any(|f| f == w),
            })
        });
    }
    sort_rows(&mut rows, q.sort.as_deref().unwrap_or("name"), q.order.as_deref())?;
    let per_page = q.per_page.unwrap_or(50).clamp(1, MAX_PER_PAGE);
    let page = q.page.unwrap_or(1).max(1);
    let total = rows.len() as u64;
    let start = ((page - 1) as usize).saturating_mul(per_page as usize).min(rows.len());
    let end = (start + per_page as usize).min(rows.len());
    let shown: Vec<ClinicPatientRow> = rows[start..end].to_vec();
    // Figures shown are reads of those patients' data.
    let details: Vec<(String, String)> = shown
        .iter()
        .filter(|r| r.readings > 0 && r.link_status == "linked")
        .filter_map(|r| {
            r.patient_id.clone().map(|p| (p, format!("clinic={clinic_id} what=clinic dashboard {}..{}", r.from, r.to)))
        })
        .collect();
    let entries: Vec<store::audit::Entry<'_>> = details
        .iter()
        .map(|(p, d)| store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(&actor.user.id),
            patient_id: Some(p),
            action: "read.summary",
            detail: d,
            ip: None,
        })
        .collect();
    store::audit::append_many(&state.db, &state.config.cipher.audit_key(), &entries).await?;
    Ok(ClinicPatientPage { clinic_id: clinic.id, clinic_name: clinic.name, role, rows: shown, total, page, per_page })
}

/// One record's row (the record page).
pub async fn record_row(
    state: &AppState,
    actor: &Actor,
    clinic_id: &str,
    record_id: &str,
    now: i64,
) -> Result<ClinicPatientRow, ServiceError> {
    record_of(state, actor, clinic_id, record_id).await?;
    rows_of(state, clinic_id, Some(record_id), now).await?.into_iter().next().ok_or(ServiceError::NotFound)
}

fn sort_rows(rows: &mut [ClinicPatientRow], sort: &str, order: Option<&str>) -> Result<(), ServiceError> {
    fn num(v: Option<f64>) -> f64 {
        v.unwrap_or(f64::NEG_INFINITY)
    }
    let desc = match order.map(str::trim) {
        None | Some("") | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(ServiceError::bad("order", "Order must be asc or desc.")),
    };
    let key = sort.trim();
    let cmp_f = |a: f64, b: f64| a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal);
    match key {
        "name" => rows.sort_by_key(|a| a.name.to_lowercase()),
        "mrn" => rows.sort_by(|a, b| a.mrn.cmp(&b.mrn)),
        "status" => rows.sort_by(|a, b| a.link_status.cmp(&b.link_status)),
        "last_upload" => rows.sort_by(|a, b| a.last_upload_at.cmp(&b.last_upload_at)),
        "in_range" => rows.sort_by(|a, b| cmp_f(num(a.in_range_percent), num(b.in_range_percent))),
        "below_54" => rows.sort_by(|a, b| cmp_f(num(a.very_low_percent), num(b.very_low_percent))),
        "below_70" => rows.sort_by(|a, b| cmp_f(num(a.below_70_percent), num(b.below_70_percent))),
        "gmi" => rows.sort_by(|a, b| cmp_f(num(a.gmi_percent), num(b.gmi_percent))),
        "cv" => rows.sort_by(|a, b| cmp_f(num(a.cv_percent), num(b.cv_percent))),
        "cgm_active" => rows.sort_by(|a, b| cmp_f(num(a.cgm_active_percent), num(b.cgm_active_percent))),
        _ => {
            return Err(ServiceError::bad(
                "sort",
                "Sort by name, mrn, status, last_upload, in_range, below_54, below_70, gmi, cv or cgm_active.",
            ));
        }
    }
    if desc {
        rows.reverse();
    }
    Ok(())
}

/// One patient's sums of `daily_glucose` over a window: patient id,
/// readings, slots, expected, sum, sum of squares, very low, low, in range,
/// high, very high.
type WindowSums = (String, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);

/// Every row of the clinic (or one record), with figures where allowed.
/// A fixed number of queries whatever the clinic's size.
async fn rows_of(
    state: &AppState,
    clinic_id: &str,
    only: Option<&str>,
    now: i64,
) -> Result<Vec<ClinicPatientRow>, ServiceError> {
    let cipher = &state.config.cipher;
    let mut find = patient_records::Entity::find().filter(patient_records::Column::ClinicId.eq(clinic_id));
    if let Some(r) = only {
        find = find.filter(patient_records::Column::Id.eq(r));
    }
    let records = find.all(&state.db).await?;
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let pids: Vec<String> = records.iter().map(|r| r.patient_id.clone()).collect();
    let pats: HashMap<String, patients::Model> =
        chunked(&pids, |ids| patients::Entity::find().filter(patients::Column::Id.is_in(ids.to_vec())).all(&state.db))
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
    let grant_ids: Vec<String> = records.iter().filter_map(|r| r.grant_id.clone()).collect();
    let grant_map: HashMap<String, grants::Model> =
        chunked(&grant_ids, |ids| grants::Entity::find().filter(grants::Column::Id.is_in(ids.to_vec())).all(&state.db))
            .await?
            .into_iter()
            .map(|g| (g.id.clone(), g))
            .collect();
    let record_ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    let pending_codes: std::collections::HashSet<String> = chunked(&record_ids, |ids| {
        link_codes::Entity::find()
            .filter(link_codes::Column::RecordId.is_in(ids.to_vec()))
            .filter(link_codes::Column::UsedMs.is_null())
            .filter(link_codes::Column::ExpiresMs.gt(now))
            .all(&state.db)
    })
    .await?
    .into_iter()
    .map(|c| c.record_id)
    .collect();
    // Which patients the clinic may see, and the window of each.
    let mut visible: HashMap<String, (chrono_tz::Tz, chrono::NaiveDate, chrono::NaiveDate)> = HashMap::new();
    let mut statuses: HashMap<String, (String, Vec<String>, Option<String>)> = HashMap::new();
    for r in &records {
        let p = pats.get(&r.patient_id);
        let custodial = p.is_some_and(|p| p.user_id.is_none());
        let grant = r.grant_id.as_ref().and_then(|g| grant_map.get(g));
        let (status, scopes, expires) = if custodial {
            (
                if pending_codes.contains(&r.id) {
                    "code_pending"
                } else if r.link_state == "declined" {
                    "declined"
                } else {
                    "custodial"
                },
                Vec::new(),
                None,
            )
        } else {
            match grant {
                Some(g) if grant_active(g, now) => ("linked", scope_names(&g.scopes), g.expires_ms.map(ms_to_rfc3339)),
                Some(g) if g.revoked_ms.is_some() => ("revoked", Vec::new(), None),
                Some(g) if g.paused_ms.is_some() && g.expires_ms.is_none_or(|e| e > now) => {
                    ("paused", Vec::new(), None)
                }
                Some(g) => ("expired", Vec::new(), g.expires_ms.map(ms_to_rfc3339)),
                None => ("revoked", Vec::new(), None),
            }
        };
        let status = if status == "revoked" && pending_codes.contains(&r.id) { "code_pending" } else { status };
        let glucose_ok = custodial || (status == "linked" && scopes.iter().any(|s| s == Scope::Glucose.as_str()));
        if let (true, Some(p)) = (glucose_ok, p) {
            let zone = therapy::time::parse_zone(&p.time_zone).unwrap_or(chrono_tz::UTC);
            let today = Utc.timestamp_millis_opt(now).single().unwrap_or_default().with_timezone(&zone).date_naive();
            visible.insert(p.id.clone(), (zone, today - Duration::days(DASHBOARD_DAYS - 1), today));
        }
        statuses.insert(r.id.clone(), (status.to_string(), scopes, expires));
    }
    let vis_ids: Vec<String> = visible.keys().cloned().collect();
    // The window's sums per patient, added up by the database: one row per
    // patient instead of one per day. Patients are grouped by window (their
    // zones may be on different dates).
    let mut days: HashMap<String, Vec<therapy::metrics::daily::DaySums>> = HashMap::new();
    let mut windows: std::collections::BTreeMap<(chrono::NaiveDate, chrono::NaiveDate), Vec<String>> =
        Default::default();
    for (pid, (_, f, t)) in &visible {
        windows.entry((*f, *t)).or_default().push(pid.clone());
    }
    for ((f, t), ids) in windows {
        let sums: Vec<WindowSums> = chunked(&ids, |chunk| {
            let sum = |c: &str| Expr::cust(format!("CAST(SUM({c}) AS BIGINT)"));
            daily_glucose::Entity::find()
                .select_only()
                .column(daily_glucose::Column::PatientId)
                .expr(sum("readings"))
                .expr(sum("slots"))
                .expr(sum("expected"))
                .expr(sum("sum_mg_dl"))
                .expr(sum("sum_sq_mg_dl"))
                .expr(sum("very_low"))
                .expr(sum("low"))
                .expr(sum("in_range"))
                .expr(sum("high"))
                .expr(sum("very_high"))
                .filter(daily_glucose::Column::PatientId.is_in(chunk.to_vec()))
                .filter(daily_glucose::Column::Day.gte(f.to_string()))
                .filter(daily_glucose::Column::Day.lte(t.to_string()))
                .group_by(daily_glucose::Column::PatientId)
                .into_tuple()
                .all(&state.db)
        })
        .await?;
        let u = |v: i64| u32::try_from(v).unwrap_or(0);
        let ul = |v: i64| u64::try_from(v).unwrap_or(0);
        for (pid, n, slots, expected, sum, sum_sq, vl, l, ir, h, vh) in sums {
            // One "day" holding the window's totals (combine only adds up).
            days.entry(pid).or_default().push(therapy::metrics::daily::DaySums {
                day: f,
                readings: u(n),
                slots: u(slots),
                expected: u(expected),
                sum_mg_dl: ul(sum),
                sum_sq_mg_dl: ul(sum_sq),
                very_low: u(vl),
                low: u(l),
                in_range: u(ir),
                high: u(h),
                very_high: u(vh),
            });
        }
    }
    let last_uploads: HashMap<String, i64> = {
        let rows: Vec<(String, Option<i64>)> = chunked(&vis_ids, |ids| {
            uploads::Entity::find()
                .select_only()
                .column(uploads::Column::PatientId)
                .expr(Func::max(Expr::col(uploads::Column::CreatedMs)))
                .filter(uploads::Column::PatientId.is_in(ids.to_vec()))
                .group_by(uploads::Column::PatientId)
                .into_tuple()
                .all(&state.db)
        })
        .await?;
        rows.into_iter().filter_map(|(p, t)| Some((p, t?))).collect()
    };
    let requests: HashMap<String, i64> = {
        let rows: Vec<(String, Option<i64>)> = chunked(&record_ids, |ids| {
            upload_requests::Entity::find()
                .select_only()
                .column(upload_requests::Column::RecordId)
                .expr(Func::max(Expr::col(upload_requests::Column::CreatedMs)))
                .filter(upload_requests::Column::RecordId.is_in(ids.to_vec()))
                .filter(upload_requests::Column::DoneMs.is_null())
                .group_by(upload_requests::Column::RecordId)
                .into_tuple()
                .all(&state.db)
        })
        .await?;
        rows.into_iter().filter_map(|(p, t)| Some((p, t?))).collect()
    };
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let (status, scopes, grant_expires_at) = statuses.remove(&r.id).unwrap_or_default();
        let vis = visible.get(&r.patient_id).copied();
        let (from, to) = match vis {
            Some((_, f, t)) => (f, t),
            None => {
                let t = Utc.timestamp_millis_opt(now).single().unwrap_or_default().date_naive();
                (t - Duration::days(DASHBOARD_DAYS - 1), t)
            }
        };
        let fig = match vis {
            Some((zone, f, t)) => combine(days.get(&r.patient_id).map(Vec::as_slice).unwrap_or(&[]), zone, f, t, 5),
            None => Default::default(),
        };
        let mut row = ClinicPatientRow {
            record_id: r.id.clone(),
            patient_id: vis.map(|_| r.patient_id.clone()),
            name: cipher.open_lossy(Some(&r.name)).unwrap_or_default(),
            birth_date: cipher.open_lossy(r.birth_date.as_deref()),
            mrn: cipher.open_lossy(r.mrn.as_deref()),
            new_patient: r.link_state == "new" && status == "linked",
            link_status: status,
            scopes,
            grant_expires_at,
            last_upload_at: vis.and(last_uploads.get(&r.patient_id)).map(|t| ms_to_rfc3339(*t)),
            from: from.to_string(),
            to: to.to_string(),
            readings: fig.readings,
            mean_mg_dl: fig.mean_mg_dl,
            in_range_percent: fig.in_range_percent,
            very_low_percent: fig.very_low_percent,
            low_percent: fig.low_percent,
            below_70_percent: match (fig.very_low_percent, fig.low_percent) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            },
            high_percent: fig.high_percent,
            very_high_percent: fig.very_high_percent,
            gmi_percent: fig.gmi_percent,
            cv_percent: fig.cv_percent,
            cgm_active_percent: fig.cgm_active_percent,
            flags: Vec::new(),
            upload_requested_at: requests.get(&r.id).map(|t| ms_to_rfc3339(*t)),
        };
        row.flags = flags_of(&row, now);
        out.push(row);
    }
    Ok(out)
}

/// Runs an `IN (…)` query in chunks of at most 500 ids.
async fn chunked<'a, T, F, Fut>(ids: &'a [String], mut f: F) -> Result<Vec<T>, ServiceError>
where
    F: FnMut(&'a [String]) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, sea_orm::DbErr>>,
{
    let mut out = Vec::new();
    for c in ids.chunks(500) {
        out.extend(f(c).await?);
    }
    Ok(out)
}
