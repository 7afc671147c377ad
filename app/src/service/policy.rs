//! The one authorization policy: every access to a patient's data asks
//! [`can`] (or [`require`]). No handler checks roles by hand.
//!
//! Who may do what with patient P's data:
//! - P's own account: everything.
//! - A member of a clinic holding a **custodial** record of P (P has no
//!   account): everything; the clinic keeps that data.
//! - A member of a clinic with an **active grant** from P (accepted, not
//!   revoked, not expired): reading within the grant's scopes.
//! - A **care partner** with an active grant from P: reading within its scopes.
//! - Nobody else; a refusal looks like "not found".
//!
//! Grants are read from the database on every request: a revocation or an
//! expiry takes effect on the next request, with no cache to go stale. Every
//! read by someone other than the patient is written to the audit log
//! (in [`require`]), which the patient sees as their access log.

use super::{Actor, AppState, ServiceError};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};
use store::entity::{clinic_members, clinics, grants, patient_records, patients};

/// What an actor wants to do with a patient's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    ReadGlucose,
    ReadInsulin,
    ReadSettings,
    ReadEvents,
    Upload,
    DeleteData,
}

impl Action {
    /// The grant scope that allows this action (`None`: no grant allows it).
    pub fn scope(self) -> Option<Scope> {
        match self {
            Action::ReadGlucose => Some(Scope::Glucose),
            Action::ReadInsulin => Some(Scope::Insulin),
            Action::ReadSettings => Some(Scope::Settings),
            Action::ReadEvents => Some(Scope::Events),
            Action::Upload | Action::DeleteData => None,
        }
    }

    /// The audit action of a read, e.g. `read.glucose`.
    pub fn audit_name(self) -> &'static str {
        match self {
            Action::ReadGlucose => "read.glucose",
            Action::ReadInsulin => "read.insulin",
            Action::ReadSettings => "read.settings",
            Action::ReadEvents => "read.events",
            Action::Upload => "upload",
            Action::DeleteData => "delete",
        }
    }
}

/// What a grant may cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Glucose,
    Insulin,
    Settings,
    Events,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Glucose, Scope::Insulin, Scope::Settings, Scope::Events];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Glucose => "glucose",
            Scope::Insulin => "insulin",
            Scope::Settings => "settings",
            Scope::Events => "events",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s.trim())
    }
}

/// Parses a scope list (JSON array items); refuses unknown names and an
/// empty list. Returns the canonical comma list.
pub fn parse_scopes(items: &[String]) -> Result<Vec<Scope>, ServiceError> {
    let mut out = Vec::new();
    for s in items {
        let scope = Scope::parse(s).ok_or_else(|| {
            ServiceError::bad("scopes", format!("Unknown scope {s:?}: use glucose, insulin, settings or events."))
        })?;
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    if out.is_empty() {
        return Err(ServiceError::bad("scopes", "Choose at least one kind of data to share."));
    }
    out.sort();
    Ok(out)
}

pub fn scopes_to_db(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

pub fn scopes_from_db(s: &str) -> Vec<Scope> {
    s.split(',').filter_map(Scope::parse).collect()
}

pub fn scope_names(s: &str) -> Vec<String> {
    scopes_from_db(s).into_iter().map(|x| x.as_str().to_string()).collect()
}

/// Why access was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// The patient's own data.
    Owner,
    /// A clinic's custodial record (the patient has no account).
    Custodial { clinic_id: String },
    /// A grant from the patient, to a clinic the actor belongs to or to the actor.
    Shared { grant_id: String, clinic_id: Option<String> },
}

/// Whether a stored grant is in force at `now`.
pub fn grant_active(g: &grants::Model, now: i64) -> bool {
    g.accepted_ms.is_some() && g.revoked_ms.is_none() && g.paused_ms.is_none() && g.expires_ms.is_none_or(|e| e > now)
}

/// The status word of a grant: active, pending, expired, paused or revoked.
pub fn grant_status(g: &grants::Model, now: i64) -> &'static str {
    if g.revoked_ms.is_some() {
        "revoked"
    } else if g.accepted_ms.is_none() {
        if g.invite_expires_ms.is_some_and(|e| e <= now) { "expired" } else { "pending" }
    } else if g.expires_ms.is_some_and(|e| e <= now) {
        "expired"
    } else if g.paused_ms.is_some() {
        "paused"
    } else {
        "active"
    }
}

/// Decides whether `actor` may do `action` on `patient_id`'s data.
pub async fn can(
    state: &AppState,
    actor: &Actor,
    action: Action,
    patient_id: &str,
) -> Result<Option<Grant>, ServiceError> {
    can_at(state, actor, action, patient_id, super::now_ms()).await
}

/// [`can`] at a given instant (tests of expiry).
pub async fn can_at(
    state: &AppState,
    actor: &Actor,
    action: Action,
    patient_id: &str,
    now: i64,
) -> Result<Option<Grant>, ServiceError> {
    // A personal access token never does more than its scopes allow.
    if !actor.credential_allows(action) {
        return Ok(None);
    }
    let Some(patient) = patients::Entity::find_by_id(patient_id.to_string()).one(&state.db).await? else {
        return Ok(None);
    };
    if patient.user_id.as_deref() == Some(actor.user.id.as_str()) {
        return Ok(Some(Grant::Owner));
    }
    let clinic_ids = usable_clinic_ids(state, actor).await?;
    if patient.user_id.is_none() {
        if clinic_ids.is_empty() {
            return Ok(None);
        }
        let record = patient_records::Entity::find()
            .filter(patient_records::Column::PatientId.eq(patient_id))
            .filter(patient_records::Column::ClinicId.is_in(clinic_ids))
            .one(&state.db)
            .await?;
        return Ok(record.map(|r| Grant::Custodial { clinic_id: r.clinic_id }));
    }
    let Some(scope) = action.scope() else {
        return Ok(None);
    };
    let mut who = Condition::any().add(grants::Column::GranteeUserId.eq(&actor.user.id));
    if !clinic_ids.is_empty() {
        who = who.add(grants::Column::GranteeClinicId.is_in(clinic_ids));
    }
    let candidates = grants::Entity::find()
        .filter(grants::Column::PatientId.eq(patient_id))
        .filter(who)
        .filter(grants::Column::RevokedMs.is_null())
        .filter(grants::Column::AcceptedMs.is_not_null())
        .all(&state.db)
        .await?;
    Ok(candidates
        .into_iter()
        .find(|g| grant_active(g, now) && scopes_from_db(&g.scopes).contains(&scope))
        .map(|g| Grant::Shared { grant_id: g.id, clinic_id: g.grantee_clinic_id }))
}

/// Like [`can`], but a refusal is "not found" (no hint that the id exists).
/// A read by anyone but the patient is written to the audit log.
pub async fn require(state: &AppState, actor: &Actor, action: Action, patient_id: &str) -> Result<Grant, ServiceError> {
    if !actor.credential_allows(action) {
        return Err(ServiceError::Forbidden);
    }
    let grant = can(state, actor, action, patient_id).await?.ok_or(ServiceError::NotFound)?;
    if grant != Grant::Owner && action.scope().is_some() {
        audit_read(state, actor, patient_id, action.audit_name(), &grant, "").await?;
    }
    Ok(grant)
}

/// Writes one read by someone other than the patient to the audit log.
/// `what` says what was looked at (a page, a date range); no health data.
pub async fn audit_read(
    state: &AppState,
    actor: &Actor,
    patient_id: &str,
    action: &str,
    grant: &Grant,
    what: &str,
) -> Result<(), ServiceError> {
    let detail = read_detail(grant, what);
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: super::now_ms(),
            actor_user_id: Some(&actor.user.id),
            patient_id: Some(patient_id),
            action,
            detail: &detail,
            ip: None,
        },
    )
    .await?;
    Ok(())
}

/// The detail of a read entry: `grant=<id> clinic=<id> what=<text>`.
pub fn read_detail(grant: &Grant, what: &str) -> String {
    let mut d = match grant {
        Grant::Owner => String::new(),
        Grant::Custodial { clinic_id } => format!("custodial clinic={clinic_id}"),
        Grant::Shared { grant_id, clinic_id: Some(c) } => format!("grant={grant_id} clinic={c}"),
        Grant::Shared { grant_id, clinic_id: None } => format!("grant={grant_id}"),
    };
    if !what.is_empty() {
        d.push_str(" what=");
        d.push_str(what);
    }
    d
}

/// The patient data space a user owns, if any.
pub async fn own_patient(state: &AppState, user_id: &str) -> Result<Option<patients::Model>, ServiceError> {
    Ok(patients::Entity::find().filter(patients::Column::UserId.eq(user_id)).one(&state.db).await?)
}

/// The clinics whose access the actor may use now: those they belong to,
/// less those that require two-factor authentication while the actor has
/// none.
async fn usable_clinic_ids(state: &AppState, actor: &Actor) -> Result<Vec<String>, ServiceError> {
    let memberships =
        clinic_members::Entity::find().filter(clinic_members::Column::UserId.eq(&actor.user.id)).all(&state.db).await?;
    if memberships.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = memberships.into_iter().map(|m| m.clinic_id).collect();
    let strict: Vec<String> = clinics::Entity::find()
        .filter(clinics::Column::Id.is_in(ids.clone()))
        .filter(clinics::Column::Require2fa.eq(true))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    if strict.is_empty() || super::twofactor::strong(&state.db, &actor.user.id).await? {
        return Ok(ids);
    }
    Ok(ids.into_iter().filter(|id| !strict.contains(id)).collect())
}

/// The caller's role in a clinic, or "not found" when not a member (so a
/// clinic id from another tenant reveals nothing). A member of a clinic that
/// requires two-factor authentication, without it, is told to turn it on.
pub async fn clinic_role(state: &AppState, actor: &Actor, clinic_id: &str) -> Result<String, ServiceError> {
    let role = clinic_members::Entity::find_by_id((clinic_id.to_string(), actor.user.id.clone()))
        .one(&state.db)
        .await?
        .map(|m| m.role)
        .ok_or(ServiceError::NotFound)?;
    let strict =
        clinics::Entity::find_by_id(clinic_id.to_string()).one(&state.db).await?.is_some_and(|c| c.require_2fa);
    if strict && !super::twofactor::strong(&state.db, &actor.user.id).await? {
        return Err(ServiceError::ClinicRequires2fa);
    }
    Ok(role)
}

/// Requires the clinic's admin role (a member who is not admin: forbidden).
pub async fn require_clinic_admin(state: &AppState, actor: &Actor, clinic_id: &str) -> Result<(), ServiceError> {
    match clinic_role(state, actor, clinic_id).await?.as_str() {
        "admin" => Ok(()),
        _ => Err(ServiceError::Forbidden),
    }
}
