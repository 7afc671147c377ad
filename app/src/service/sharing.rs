//! Sharing on the patient's side: one-time link codes from a clinic (preview,
//! accept with chosen scopes and an optional expiry, decline), care-partner
//! invitations, the list of grants (edit, revoke) and the access log.
//!
//! Link codes: 12 characters of Crockford base32 (60 bits), shown as
//! `XXXX-XXXX-XXXX`; case, spaces and dashes are ignored on entry and the
//! look-alikes O/I/L read as 0/1/1. Only the code's SHA-256 is stored. A code
//! is single use and expires after 48 hours; entries are rate-limited per
//! user (and per client address), so guessing is hopeless: 2^60 codes
//! against at most 10 tries per 15 minutes.

use super::policy::{self, Scope, grant_active, grant_status, scope_names, scopes_to_db};
use super::{Actor, AppState, ClientMeta, ServiceError, ms_to_rfc3339, ratelimit};
use crate::model::{AccessLogEntry, GrantInfo, IncomingInvite, LinkPreview, SharedWithMe, UploadRequestInfo};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, TransactionTrait,
};
use store::entity::{
    audit_log, clinics, daily_glucose, devices, glucose, grants, link_codes, patient_records, patients, therapy_events,
    upload_requests, uploads, users,
};

/// How long a link code stays valid.
pub const LINK_CODE_TTL_MS: i64 = 48 * 3600 * 1000;
/// How long a care-partner invitation can be accepted.
pub const INVITE_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_LEN: usize = 12;

/// A new random link code, formatted `XXXX-XXXX-XXXX`.
pub fn new_link_code() -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    let raw: String = (0..CODE_LEN).map(|_| ALPHABET[rng.gen_range(0..32)] as char).collect();
    format!("{}-{}-{}", &raw[0..4], &raw[4..8], &raw[8..12])
}

/// The canonical form of an entered code (`None` when it cannot be one).
pub fn normalise_code(input: &str) -> Option<String> {
    let mut out = String::with_capacity(CODE_LEN);
    for c in input.chars() {
        let c = match c.to_ascii_uppercase() {
            ' ' | '-' | '\t' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !ALPHABET.contains(&(c as u8)) || !c.is_ascii() {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_LEN).then_some(out)
}

pub fn code_hash(normalised: &str) -> String {
    store::sha256_hex(format!("diabase-link-code:{normalised}").as_bytes())
}

/// Counts an entry attempt against the caller (and their address).
async fn count_attempt(state: &AppState, actor: &Actor, meta: &ClientMeta, now: i64) -> Result<(), ServiceError> {
    let c = &state.config;
    ratelimit::hit(
        &state.db,
        &format!("linkcode:user:{}", actor.user.id),
        c.link_code_attempts,
        c.link_code_window_ms,
        now,
    )
    .await?;
    if let Some(ip) = &meta.ip {
        ratelimit::hit(&state.db, &format!("linkcode:ip:{ip}"), c.link_code_attempts * 5, c.link_code_window_ms, now)
            .await?;
    }
    Ok(())
}

fn invalid_code() -> ServiceError {
    ServiceError::NotFound
}

/// The unused, unexpired code `input` stands for.
async fn find_code(state: &AppState, input: &str, now: i64) -> Result<link_codes::Model, ServiceError> {
    let norm = normalise_code(input)
        .ok_or_else(|| ServiceError::bad("code", "A link code has 12 letters and digits, like ABCD-EFGH-JKMN."))?;
    let code = link_codes::Entity::find_by_id(code_hash(&norm)).one(&state.db).await?.ok_or_else(invalid_code)?;
    if code.used_ms.is_some() || code.expires_ms <= now {
        return Err(invalid_code());
    }
    Ok(code)
}

/// What a code asks for (counts as an attempt).
pub async fn preview(
    state: &AppState,
    actor: &Actor,
    meta: &ClientMeta,
    input: &str,
    now: i64,
) -> Result<LinkPreview, ServiceError> {
    count_attempt(state, actor, meta, now).await?;
    let code = match find_code(state, input, now).await {
        Ok(code) => code,
        Err(ServiceError::NotFound) => {
            let clinic = find_share_code(state, input).await?;
            return Ok(LinkPreview {
                clinic_id: clinic.id,
                clinic_name: clinic.name,
                scopes: Scope::ALL.iter().map(|s| s.as_str().to_string()).collect(),
                code_expires_at: None,
                kind: "share".into(),
            });
        }
        Err(e) => return Err(e),
    };
    let clinic = clinics::Entity::find_by_id(code.clinic_id.clone()).one(&state.db).await?.ok_or_else(invalid_code)?;
    Ok(LinkPreview {
        clinic_id: clinic.id,
        clinic_name: clinic.name,
        scopes: scope_names(&code.scopes),
        code_expires_at: Some(ms_to_rfc3339(code.expires_ms)),
        kind: "link".into(),
    })
}

/// The patient's one grant to a clinic: earlier ones are revoked and a new,
/// accepted grant of `scopes` until `expires_ms` takes their place (inside
/// the caller's transaction). Returns its id.
pub(crate) async fn replace_clinic_grant<C: ConnectionTrait>(
    txn: &C,
    patient_id: &str,
    clinic_id: &str,
    record_id: &str,
    scopes: &[Scope],
    expires_ms: Option<i64>,
    now: i64,
) -> Result<String, ServiceError> {
    grants::Entity::update_many()
        .col_expr(grants::Column::RevokedMs, Expr::value(now))
        .col_expr(grants::Column::UpdatedMs, Expr::value(now))
        .filter(grants::Column::PatientId.eq(patient_id))
        .filter(grants::Column::GranteeClinicId.eq(clinic_id))
        .filter(grants::Column::RevokedMs.is_null())
        .exec(txn)
        .await?;
    let grant_id = store::new_id();
    grants::ActiveModel {
        id: Set(grant_id.clone()),
        patient_id: Set(patient_id.to_string()),
        grantee_clinic_id: Set(Some(clinic_id.to_string())),
        grantee_user_id: Set(None),
        record_id: Set(Some(record_id.to_string())),
        invite_email: Set(None),
        invite_token_hash: Set(None),
        invite_expires_ms: Set(None),
        scopes: Set(scopes_to_db(scopes)),
        created_ms: Set(now),
        updated_ms: Set(now),
        accepted_ms: Set(Some(now)),
        expires_ms: Set(expires_ms),
        revoked_ms: Set(None),
        paused_ms: Set(None),
        provider_name: Set(None),
        provider_clinic: Set(None),
    }
    .insert(txn)
    .await?;
    Ok(grant_id)
}

/// The clinic whose share code `input` is.
async fn find_share_code(state: &AppState, input: &str) -> Result<clinics::Model, ServiceError> {
    let norm = normalise_code(input)
        .ok_or_else(|| ServiceError::bad("code", "A code has 12 letters and digits, like ABCD-EFGH-JKMN."))?;
    clinics::Entity::find().filter(clinics::Column::ShareCode.eq(norm)).one(&state.db).await?.ok_or_else(invalid_code)
}

/// The patient shares with a clinic on their own initiative (its share
/// code): a grant of `scopes`, and a record in the clinic's list marked
/// "new" until a clinician acknowledges it. A clinic that already has a
/// record of this account keeps it (its grant is replaced).
#[allow(clippy::too_many_arguments)] // the grant fields, named at every call
async fn share_with_clinic(
    state: &AppState,
    actor: &Actor,
    meta: &ClientMeta,
    patient: &patients::Model,
    clinic: &clinics::Model,
    scopes: &[Scope],
    expires_ms: Option<i64>,
    now: i64,
) -> Result<String, ServiceError> {
    let cipher = &state.config.cipher;
    let txn = state.db.begin().await?;
    let existing = patient_records::Entity::find()
        .filter(patient_records::Column::ClinicId.eq(&clinic.id))
        .filter(patient_records::Column::PatientId.eq(&patient.id))
        .one(&txn)
        .await?;
    let record_id = existing.as_ref().map(|r| r.id.clone()).unwrap_or_else(store::new_id);
    let grant_id = replace_clinic_grant(&txn, &patient.id, &clinic.id, &record_id, scopes, expires_ms, now).await?;
    match existing {
        Some(r) => {
            let state_now =
                if r.link_state == "new" || r.link_state == "linked" { r.link_state.clone() } else { "linked".into() };
            let mut m: patient_records::ActiveModel = r.into();
            m.grant_id = Set(Some(grant_id.clone()));
            m.linked_user = Set(1);
            m.link_state = Set(state_now);
            m.update(&txn).await?;
        }
        None => {
            patient_records::ActiveModel {
                id: Set(record_id.clone()),
                clinic_id: Set(clinic.id.clone()),
                patient_id: Set(patient.id.clone()),
                name: Set(cipher.seal(&actor.user.display_name)),
                birth_date: Set(None),
                mrn: Set(None),
                linked_user: Set(1),
                created_ms: Set(now),
                mrn_index: Set(None),
                grant_id: Set(Some(grant_id.clone())),
                created_by: Set(None),
                link_state: Set("new".into()),
            }
            .insert(&txn)
            .await?;
        }
    }
    txn.commit().await?;
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(&actor.user.id),
            patient_id: Some(&patient.id),
            action: "grant.created",
            detail: &format!("grant={grant_id} clinic={} scopes={} via=share_code", clinic.id, scopes_to_db(scopes)),
            ip: meta.ip.as_deref(),
        },
    )
    .await?;
    Ok(grant_id)
}

/// Parses an optional expiry: RFC 3339, or a date (access ends at the end
/// of that day in `zone`). It must lie in the future.
pub fn parse_expiry(input: Option<&str>, zone: chrono_tz::Tz, now: i64) -> Result<Option<i64>, ServiceError> {
    let Some(s) = input.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let ms = if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        t.timestamp_millis()
    } else if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        super::report::window_ms(zone, d, d).1
    } else {
        return Err(ServiceError::bad(
            "expires_at",
            "Give the end of access as a date (YYYY-MM-DD) or an RFC 3339 time.",
        ));
    };
    if ms <= now {
        return Err(ServiceError::bad("expires_at", "The end of access must be in the future."));
    }
    Ok(Some(ms))
}

async fn own_patient_required(state: &AppState, actor: &Actor) -> Result<patients::Model, ServiceError> {
    policy::own_patient(state, &actor.user.id)
        .await?
        .ok_or_else(|| ServiceError::bad("code", "Only a patient account can share its data; this account holds none."))
}

/// The patient accepts a clinic's code: grants `scopes` until `expires_at`,
/// and the clinic's record is linked to their account. The code may also be
/// the clinic's share code (see [`share_with_clinic`]). Data the clinic had
/// uploaded to a custodial record moves into the patient's account.
pub async fn accept(
    state: &AppState,
    actor: &Actor,
    meta: &ClientMeta,
    input: &str,
    scopes: &[String],
    expires_at: Option<&str>,
    now: i64,
) -> Result<String, ServiceError> {
    super::reauth::require_confirmed(actor)?;
    count_attempt(state, actor, meta, now).await?;
    let patient = own_patient_required(state, actor).await?;
    let zone = therapy::time::parse_zone(&patient.time_zone).unwrap_or(chrono_tz::UTC);
    let scopes = policy::parse_scopes(scopes)?;
    let expires_ms = parse_expiry(expires_at, zone, now)?;
    let code = match find_code(state, input, now).await {
        Ok(code) => code,
        Err(ServiceError::NotFound) => {
            let clinic = find_share_code(state, input).await?;
            return share_with_clinic(state, actor, meta, &patient, &clinic, &scopes, expires_ms, now).await;
        }
        Err(e) => return Err(e),
    };
    let txn = state.db.begin().await?;
    // Single use: only one request can flip used_ms.
    let used = link_codes::Entity::update_many()
        .col_expr(link_codes::Column::UsedMs, Expr::value(now))
        .col_expr(link_codes::Column::UsedBy, Expr::value(actor.user.id.clone()))
        .col_expr(link_codes::Column::Outcome, Expr::value("accepted"))
        .filter(link_codes::Column::CodeHash.eq(&code.code_hash))
        .filter(link_codes::Column::UsedMs.is_null())
        .exec(&txn)
        .await?;
    if used.rows_affected != 1 {
        return Err(invalid_code());
    }
    let record =
        patient_records::Entity::find_by_id(code.record_id.clone()).one(&txn).await?.ok_or_else(invalid_code)?;
    let current = patients::Entity::find_by_id(record.patient_id.clone()).one(&txn).await?;
    let custodial = match current {
        Some(p) if p.id == patient.id => None,
        Some(p) if p.user_id.is_none() => Some(p.id),
        Some(_) => {
            return Err(ServiceError::Conflict(
                "This clinic record is already linked to another account. Ask the clinic for help.".into(),
            ));
        }
        None => None,
    };
    let grant_id =
        replace_clinic_grant(&txn, &patient.id, &record.clinic_id, &record.id, &scopes, expires_ms, now).await?;
    let mut rec: patient_records::ActiveModel = record.clone().into();
    rec.patient_id = Set(patient.id.clone());
    rec.linked_user = Set(1);
    rec.grant_id = Set(Some(grant_id.clone()));
    rec.link_state = Set("linked".into());
    rec.update(&txn).await?;
    // Only now (the record points at the account) may the custodial space go.
    let moved = match custodial {
        Some(from) => merge_custodial(&txn, &from, &patient.id).await?,
        None => None,
    };
    if let Some((a, b)) = moved {
        super::daily::refresh_in(&txn, &patient.id, Some((a, b))).await?;
    }
    txn.commit().await?;
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(&actor.user.id),
            patient_id: Some(&patient.id),
            action: "grant.created",
            detail: &format!("grant={grant_id} clinic={} scopes={}", record.clinic_id, scopes_to_db(&scopes)),
            ip: meta.ip.as_deref(),
        },
    )
    .await?;
    Ok(grant_id)
}

/// The patient declines a code: it is spent and the clinic sees "declined".
pub async fn decline(
    state: &AppState,
    actor: &Actor,
    meta: &ClientMeta,
    input: &str,
    now: i64,
) -> Result<(), ServiceError> {
    count_attempt(state, actor, meta, now).await?;
    let code = find_code(state, input, now).await?;
    let res = link_codes::Entity::update_many()
        .col_expr(link_codes::Column::UsedMs, Expr::value(now))
        .col_expr(link_codes::Column::UsedBy, Expr::value(actor.user.id.clone()))
        .col_expr(link_codes::Column::Outcome, Expr::value("declined"))
        .filter(link_codes::Column::CodeHash.eq(&code.code_hash))
        .filter(link_codes::Column::UsedMs.is_null())
        .exec(&state.db)
        .await?;
    if res.rows_affected != 1 {
        return Err(invalid_code());
    }
    patient_records::Entity::update_many()
        .col_expr(patient_records::Column::LinkState, Expr::value("declined"))
        .filter(patient_records::Column::Id.eq(&code.record_id))
        .filter(patient_records::Column::LinkedUser.eq(0))
        .exec(&state.db)
        .await?;
    Ok(())
}

/// Moves a custodial data space into a patient's own (inside `txn`) and
/// deletes it. Returns the span of the moved glucose, for the aggregates.
async fn merge_custodial<C: ConnectionTrait>(
    txn: &C,
    from: &str,
    to: &str,
) -> Result<Option<(i64, i64)>, ServiceError> {
    // Readings already in the account (same dedup key) are kept once.
    for table in ["glucose", "therapy_events"] {
        let sql = format!(
            "DELETE FROM {table} WHERE patient_id = $1 AND dedup IN (SELECT dedup FROM {table} WHERE patient_id = $2)"
        );
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            txn.get_database_backend(),
            backend_sql(txn, &sql),
            [from.into(), to.into()],
        ))
        .await?;
    }
    // Devices: the account's row for the same device wins.
    let from_devices = devices::Entity::find().filter(devices::Column::PatientId.eq(from)).all(txn).await?;
    for d in from_devices {
        let existing = devices::Entity::find()
            .filter(devices::Column::PatientId.eq(to))
            .filter(devices::Column::Manufacturer.eq(&d.manufacturer))
            .filter(devices::Column::Model.eq(&d.model))
            .filter(devices::Column::Serial.eq(&d.serial))
            .one(txn)
            .await?;
        match existing {
            Some(e) => {
                glucose::Entity::update_many()
                    .col_expr(glucose::Column::DeviceId, Expr::value(e.id.clone()))
                    .filter(glucose::Column::DeviceId.eq(&d.id))
                    .exec(txn)
                    .await?;
                therapy_events::Entity::update_many()
                    .col_expr(therapy_events::Column::DeviceId, Expr::value(e.id.clone()))
                    .filter(therapy_events::Column::DeviceId.eq(&d.id))
                    .exec(txn)
                    .await?;
                uploads::Entity::update_many()
                    .col_expr(uploads::Column::DeviceId, Expr::value(e.id.clone()))
                    .filter(uploads::Column::DeviceId.eq(&d.id))
                    .exec(txn)
                    .await?;
                devices::Entity::delete_by_id(d.id).exec(txn).await?;
            }
            None => {
                devices::Entity::update_many()
                    .col_expr(devices::Column::PatientId, Expr::value(to))
                    .filter(devices::Column::Id.eq(&d.id))
                    .exec(txn)
                    .await?;
            }
        }
    }
    let span: Option<(Option<i64>, Option<i64>)> = glucose::Entity::find()
        .select_only()
        .expr(Func::min(Expr::col(glucose::Column::TimeMs)))
        .expr(Func::max(Expr::col(glucose::Column::TimeMs)))
        .filter(glucose::Column::PatientId.eq(from))
        .into_tuple()
        .one(txn)
        .await?;
    uploads::Entity::update_many()
        .col_expr(uploads::Column::PatientId, Expr::value(to))
        .filter(uploads::Column::PatientId.eq(from))
        .exec(txn)
        .await?;
    glucose::Entity::update_many()
        .col_expr(glucose::Column::PatientId, Expr::value(to))
        .filter(glucose::Column::PatientId.eq(from))
        .exec(txn)
        .await?;
    therapy_events::Entity::update_many()
        .col_expr(therapy_events::Column::PatientId, Expr::value(to))
        .filter(therapy_events::Column::PatientId.eq(from))
        .exec(txn)
        .await?;
    upload_requests::Entity::delete_many().filter(upload_requests::Column::PatientId.eq(from)).exec(txn).await?;
    daily_glucose::Entity::delete_many().filter(daily_glucose::Column::PatientId.eq(from)).exec(txn).await?;
    patients::Entity::delete_by_id(from.to_string()).exec(txn).await?;
    Ok(match span {
        Some((Some(a), Some(b))) => Some((a, b)),
        _ => None,
    })
}

/// `$1`-style placeholders for PostgreSQL, `?` for SQLite.
fn backend_sql<C: ConnectionTrait>(db: &C, sql: &str) -> String {
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => sql.to_string(),
        _ => {
            let mut s = sql.to_string();
            for i in (1..10).rev() {
                s = s.replace(&format!("${i}"), "?");
            }
            s
        }
    }
}

// ---------------------------------------------------------------------------
// Care partners.

/// A provider (a doctor, a nurse, a diabetes educator) the patient shares
/// with by the provider's email: their name and clinic as the patient types
/// them. Only an account with that confirmed address can accept.
#[derive(Clone, Debug, Default)]
pub struct Provider {
    pub name: String,
    pub clinic: String,
}

/// Invites a care partner, or a provider, by email (and, when the server has
/// an SMS gateway and `phone` is given, by text message too). The grant is
/// pending until the invitee, signed in with the confirmed invited address,
/// accepts; then they read within `scopes` until `expires_at`.
pub async fn invite(
    state: &AppState,
    actor: &Actor,
    email: &str,
    scopes: &[String],
    expires_at: Option<&str>,
    now: i64,
) -> Result<GrantInfo, ServiceError> {
    invite_with(state, actor, email, scopes, expires_at, None, None, now).await
}

#[allow(clippy::too_many_arguments)]
pub async fn invite_with(
    state: &AppState,
    actor: &Actor,
    email: &str,
    scopes: &[String],
    expires_at: Option<&str>,
    phone: Option<&str>,
    provider: Option<Provider>,
    now: i64,
) -> Result<GrantInfo, ServiceError> {
    super::reauth::require_confirmed(actor)?;
    let patient = own_patient_required(state, actor)
        .await
        .map_err(|_| ServiceError::bad("email", "Only a patient account can invite someone to see its data."))?;
    let email = super::auth::Email::parse(email)?;
    if email.as_str() == actor.user.email {
        return Err(ServiceError::bad("email", "Invite someone else: this is your own address."));
    }
    let provider = match provider {
        Some(p) => Some(Provider {
            name: super::clinic::clean_name(&p.name, "provider_name", "the provider's name")?,
            clinic: super::clinic::clean_name(&p.clinic, "provider_clinic", "the provider's clinic")?,
        }),
        None => None,
    };
    let phone = match phone.map(str::trim).filter(|s| !s.is_empty()) {
        Some(p) => {
            if !super::sms::enabled(state) {
                return Err(ServiceError::bad(
                    "phone",
                    "Text messages are not set up on this Diabase server; the invitation goes by email.",
                ));
            }
            Some(super::sms::parse_e164(p)?)
        }
        None => None,
    };
    let zone = therapy::time::parse_zone(&patient.time_zone).unwrap_or(chrono_tz::UTC);
    let scopes = policy::parse_scopes(scopes)?;
    let expires_ms = parse_expiry(expires_at, zone, now)?;
    let token = super::auth::random_secret();
    let id = store::new_id();
    let model = grants::ActiveModel {
        id: Set(id.clone()),
        patient_id: Set(patient.id.clone()),
        grantee_clinic_id: Set(None),
        grantee_user_id: Set(None),
        record_id: Set(None),
        invite_email: Set(Some(email.as_str().to_string())),
        invite_token_hash: Set(Some(store::sha256_hex(token.as_bytes()))),
        invite_expires_ms: Set(Some(now + INVITE_TTL_MS)),
        scopes: Set(scopes_to_db(&scopes)),
        created_ms: Set(now),
        updated_ms: Set(now),
        accepted_ms: Set(None),
        expires_ms: Set(expires_ms),
        revoked_ms: Set(None),
        paused_ms: Set(None),
        provider_name: Set(provider.as_ref().map(|p| p.name.clone())),
        provider_clinic: Set(provider.as_ref().map(|p| p.clinic.clone())),
    }
    .insert(&state.db)
    .await?;
    let link = format!("{}/sharing?invite={token}", state.config.public_url);
    let until = expires_ms.map(|e| format!(" until {}", ms_to_rfc3339(e))).unwrap_or_default();
    let (subject, body) = match &provider {
        Some(p) => (
            "A patient shares their diabetes data with you on Diabase",
            format!(
                "Hello {pname},\n\n{name} shares their diabetes data with you ({clinic}) on Diabase: {scopes}{until}, read only.\n\n\
                 Accept within 7 days:\n{link}\n\n\
                 Sign in, or sign up as a clinician, with this email address ({email}) and confirm it; only that account can accept. \
                 If you did not expect this, ignore this message.",
                pname = p.name,
                clinic = p.clinic,
                name = actor.user.display_name,
                scopes = scope_names(&model.scopes).join(", "),
                email = email.as_str(),
            ),
        ),
        None => (
            "An invitation to follow data on Diabase",
            format!(
                "{name} invites you to follow their diabetes data on Diabase (read only: {scopes}{until}).\n\nAccept within 7 days:\n{link}\n\nLog in or sign up with this email address ({email}) to accept. If you did not expect this, ignore this message.",
                name = actor.user.display_name,
                scopes = scope_names(&model.scopes).join(", "),
                email = email.as_str(),
            ),
        ),
    };
    super::mail::send(state, super::mail::Mail { to: email.as_str(), subject, body: &body }, now).await?;
    if let Some(p) = &phone {
        // The link and who sends it; no health data.
        let who: String = actor.user.display_name.chars().take(40).collect();
        let text = format!(
            "Diabase: {who} invites you to see the data they share. Accept within 7 days (sign in with {}): {link}",
            email.as_str()
        );
        super::sms::send(state, p, &text).await?;
    }
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(&actor.user.id),
            patient_id: Some(&patient.id),
            action: "grant.invited",
            detail: &format!(
                "grant={id} scopes={} provider={} texted={}",
                model.scopes,
                provider.is_some(),
                phone.is_some()
            ),
            ip: None,
        },
    )
    .await?;
    grant_info(state, &model, now).await
}

/// Invitations waiting for the caller (by their account's email). None
/// until the address is confirmed: an account that merely claims an
/// address sees nothing sent to it.
pub async fn incoming(state: &AppState, actor: &Actor, now: i64) -> Result<Vec<IncomingInvite>, ServiceError> {
    if actor.user.email_verified_ms.is_none() {
        return Ok(Vec::new());
    }
    let rows = grants::Entity::find()
        .filter(grants::Column::InviteEmail.eq(&actor.user.email))
        .filter(grants::Column::AcceptedMs.is_null())
        .filter(grants::Column::RevokedMs.is_null())
        .order_by_desc(grants::Column::CreatedMs)
        .all(&state.db)
        .await?;
    let mut out = Vec::new();
    for g in rows.into_iter().filter(|g| g.invite_expires_ms.is_none_or(|e| e > now)) {
        let name = patient_name(state, &g.patient_id).await?;
        out.push(IncomingInvite {
            grant_id: g.id,
            patient_name: name,
            scopes: scope_names(&g.scopes),
            expires_at: g.expires_ms.map(ms_to_rfc3339),
            invite_expires_at: g.invite_expires_ms.map(ms_to_rfc3339),
        });
    }
    Ok(out)
}

/// Accepts an invitation, by its id (in the app) or its emailed token. The
/// caller's account email must be the invited one.
pub async fn accept_invite(
    state: &AppState,
    actor: &Actor,
    meta: &ClientMeta,
    grant_id: Option<&str>,
    token: Option<&str>,
    now: i64,
) -> Result<String, ServiceError> {
    // Only the owner of the address: someone who signed up with it but
    // never confirmed it cannot take the invitation.
    super::reauth::require_confirmed(actor)?;
    count_attempt(state, actor, meta, now).await?;
    let g = match (grant_id, token) {
        (Some(id), _) => grants::Entity::find_by_id(id.to_string()).one(&state.db).await?,
        (None, Some(t)) => {
            grants::Entity::find()
                .filter(grants::Column::InviteTokenHash.eq(store::sha256_hex(t.trim().as_bytes())))
                .one(&state.db)
                .await?
        }
        (None, None) => return Err(ServiceError::bad("token", "Give the invitation's token or id.")),
    }
    .ok_or(ServiceError::NotFound)?;
    if g.invite_email.as_deref() != Some(actor.user.email.as_str()) {
        return Err(ServiceError::NotFound);
    }
    if g.accepted_ms.is_some() || g.revoked_ms.is_some() || g.invite_expires_ms.is_some_and(|e| e <= now) {
        return Err(ServiceError::NotFound);
    }
    if patients::Entity::find_by_id(g.patient_id.clone()).one(&state.db).await?.and_then(|p| p.user_id).as_deref()
        == Some(actor.user.id.as_str())
    {
        return Err(ServiceError::bad("token", "This is an invitation to your own data."));
    }
    let res = grants::Entity::update_many()
        .col_expr(grants::Column::AcceptedMs, Expr::value(now))
        .col_expr(grants::Column::GranteeUserId, Expr::value(actor.user.id.clone()))
        .col_expr(grants::Column::InviteTokenHash, Expr::value(Option::<String>::None))
        .col_expr(grants::Column::UpdatedMs, Expr::value(now))
        .filter(grants::Column::Id.eq(&g.id))
        .filter(grants::Column::AcceptedMs.is_null())
        .exec(&state.db)
        .await?;
    if res.rows_affected != 1 {
        return Err(ServiceError::NotFound);
    }
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(&actor.user.id),
            patient_id: Some(&g.patient_id),
            action: "grant.accepted",
            detail: &format!("grant={}", g.id),
            ip: meta.ip.as_deref(),
        },
    )
    .await?;
    Ok(g.id)
}

/// Patients whose data the caller follows as a care partner.
pub async fn shared_with_me(state: &AppState, actor: &Actor, now: i64) -> Result<Vec<SharedWithMe>, ServiceError> {
    let rows = grants::Entity::find()
        .filter(grants::Column::GranteeUserId.eq(&actor.user.id))
        .filter(grants::Column::RevokedMs.is_null())
        .order_by_asc(grants::Column::CreatedMs)
        .all(&state.db)
        .await?;
    let mut out = Vec::new();
    for g in rows.into_iter().filter(|g| grant_active(g, now)) {
        out.push(SharedWithMe {
            patient_name: patient_name(state, &g.patient_id).await?,
            grant_id: g.id,
            patient_id: g.patient_id,
            scopes: scope_names(&g.scopes),
            expires_at: g.expires_ms.map(ms_to_rfc3339),
        });
    }
    Ok(out)
}

async fn patient_name(state: &AppState, patient_id: &str) -> Result<String, ServiceError> {
    let p = patients::Entity::find_by_id(patient_id.to_string()).one(&state.db).await?;
    Ok(p.map(|p| state.config.cipher.open_lossy(Some(&p.display_name)).unwrap_or_default()).unwrap_or_default())
}

// ---------------------------------------------------------------------------
// The patient's grants.

async fn grant_info(state: &AppState, g: &grants::Model, now: i64) -> Result<GrantInfo, ServiceError> {
    let (kind, name, email) = if let Some(cid) = &g.grantee_clinic_id {
        let c = clinics::Entity::find_by_id(cid.clone()).one(&state.db).await?;
        ("clinic", c.map(|c| c.name).unwrap_or_else(|| "(a deleted clinic)".into()), None)
    } else if let (Some(name), Some(clinic)) = (&g.provider_name, &g.provider_clinic) {
        let email = match &g.grantee_user_id {
            Some(uid) => users::Entity::find_by_id(uid.clone()).one(&state.db).await?.map(|u| u.email),
            None => g.invite_email.clone(),
        };
        ("provider", format!("{name} ({clinic})"), email)
    } else if let Some(uid) = &g.grantee_user_id {
        let u = users::Entity::find_by_id(uid.clone()).one(&state.db).await?;
        match u {
            Some(u) => ("care_partner", u.display_name, Some(u.email)),
            None => ("care_partner", "(a deleted account)".into(), None),
        }
    } else {
        ("care_partner", g.invite_email.clone().unwrap_or_default(), g.invite_email.clone())
    };
    Ok(GrantInfo {
        id: g.id.clone(),
        grantee_type: kind.into(),
        grantee_name: name,
        grantee_email: email,
        clinic_id: g.grantee_clinic_id.clone(),
        scopes: scope_names(&g.scopes),
        status: grant_status(g, now).into(),
        created_at: ms_to_rfc3339(g.created_ms),
        accepted_at: g.accepted_ms.map(ms_to_rfc3339),
        expires_at: g.expires_ms.map(ms_to_rfc3339),
        revoked_at: g.revoked_ms.map(ms_to_rfc3339),
        paused_at: g.paused_ms.map(ms_to_rfc3339),
    })
}

/// Every grant the caller's patient space has given, newest first.
pub async fn list_grants(state: &AppState, actor: &Actor, now: i64) -> Result<Vec<GrantInfo>, ServiceError> {
    let Some(patient) = policy::own_patient(state, &actor.user.id).await? else {
        return Ok(Vec::new());
    };
    let rows = grants::Entity::find()
        .filter(grants::Column::PatientId.eq(&patient.id))
        .order_by_desc(grants::Column::CreatedMs)
        .all(&state.db)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for g in &rows {
        out.push(grant_info(state, g, now).await?);
    }
    Ok(out)
}

/// The caller's own grant (another patient's: not found).
async fn own_grant(state: &AppState, actor: &Actor, grant_id: &str) -> Result<grants::Model, ServiceError> {
    let patient = policy::own_patient(state, &actor.user.id).await?.ok_or(ServiceError::NotFound)?;
    grants::Entity::find_by_id(grant_id.to_string())
        .filter(grants::Column::PatientId.eq(&patient.id))
        .one(&state.db)
        .await?
        .ok_or(ServiceError::NotFound)
}

/// What a patient may change on a grant. `expires_at`: `None` leaves it,
/// `Some(None)` removes the end, `Some(Some(x))` sets it.
#[derive(Clone, Debug, Default)]
pub struct GrantPatch {
    pub scopes: Option<Vec<String>>,
    pub expires_at: Option<Option<String>>,
}

pub async fn update_grant(
    state: &AppState,
    actor: &Actor,
    grant_id: &str,
    patch: GrantPatch,
    now: i64,
) -> Result<GrantInfo, ServiceError> {
    let g = own_grant(state, actor, grant_id).await?;
    if g.revoked_ms.is_some() {
        return Err(ServiceError::Conflict("This sharing was revoked; share again instead.".into()));
    }
    let patient = policy::own_patient(state, &actor.user.id).await?.ok_or(ServiceError::NotFound)?;
    let zone = therapy::time::parse_zone(&patient.time_zone).unwrap_or(chrono_tz::UTC);
    let mut m: grants::ActiveModel = g.clone().into();
    let mut what = Vec::new();
    if let Some(s) = &patch.scopes {
        let scopes = policy::parse_scopes(s)?;
        m.scopes = Set(scopes_to_db(&scopes));
        what.push(format!("scopes={}", scopes_to_db(&scopes)));
    }
    if let Some(e) = &patch.expires_at {
        let ms = parse_expiry(e.as_deref(), zone, now)?;
        m.expires_ms = Set(ms);
        what.push(format!("expires={}", ms.map(ms_to_rfc3339).unwrap_or_else(|| "never".into())));
    }
    m.updated_ms = Set(now);
    let g = m.update(&state.db).await?;
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(&actor.user.id),
            patient_id: Some(&g.patient_id),
            action: "grant.updated",
            detail: &format!("grant={} {}", g.id, what.join(" ")),
            ip: None,
        },
    )
    .await?;
    grant_info(state, &g, now).await
}

/// Revokes a grant (or withdraws an invitation). Effective on the grantee's
/// next request: the policy reads grants on every request.
pub async fn revoke_grant(state: &AppState, actor: &Actor, grant_id: &str, now: i64) -> Result<(), ServiceError> {
    let g = own_grant(state, actor, grant_id).await?;
    if g.revoked_ms.is_some() {
        return Ok(());
    }
    let txn = state.db.begin().await?;
    grants::Entity::update_many()
        .col_expr(grants::Column::RevokedMs, Expr::value(now))
        .col_expr(grants::Column::UpdatedMs, Expr::value(now))
        .col_expr(grants::Column::InviteTokenHash, Expr::value(Option::<String>::None))
        .filter(grants::Column::Id.eq(&g.id))
        .exec(&txn)
        .await?;
    patient_records::Entity::update_many()
        .col_expr(patient_records::Column::LinkState, Expr::value("revoked"))
        .filter(patient_records::Column::GrantId.eq(&g.id))
        .exec(&txn)
        .await?;
    upload_requests::Entity::delete_many()
        .filter(upload_requests::Column::PatientId.eq(&g.patient_id))
        .filter(upload_requests::Column::DoneMs.is_null())
        .filter(upload_requests::Column::ClinicId.eq(g.grantee_clinic_id.clone().unwrap_or_default()))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(&actor.user.id),
            patient_id: Some(&g.patient_id),
            action: "grant.revoked",
            detail: &format!("grant={}", g.id),
            ip: None,
        },
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Pause all sharing.

/// Pauses every grant and invitation the caller has given that is not
/// revoked: nobody they share with sees anything until [`resume_all`].
/// Scopes and expiries are kept. Returns how many were paused.
pub async fn pause_all(state: &AppState, actor: &Actor, meta: &ClientMeta, now: i64) -> Result<u64, ServiceError> {
    set_paused(state, actor, meta, true, now).await
}

/// Ends a pause: every paused grant gives access again (those that expired
/// meanwhile stay expired). Returns how many were resumed.
pub async fn resume_all(state: &AppState, actor: &Actor, meta: &ClientMeta, now: i64) -> Result<u64, ServiceError> {
    set_paused(state, actor, meta, false, now).await
}

async fn set_paused(
    state: &AppState,
    actor: &Actor,
    meta: &ClientMeta,
    pause: bool,
    now: i64,
) -> Result<u64, ServiceError> {
    let patient = own_patient_required(state, actor).await?;
    let mut update = grants::Entity::update_many()
        .col_expr(grants::Column::PausedMs, Expr::value(pause.then_some(now)))
        .col_expr(grants::Column::UpdatedMs, Expr::value(now))
        .filter(grants::Column::PatientId.eq(&patient.id));
    update = if pause {
        update.filter(grants::Column::RevokedMs.is_null()).filter(grants::Column::PausedMs.is_null())
    } else {
        update.filter(grants::Column::PausedMs.is_not_null())
    };
    let res = update.exec(&state.db).await?;
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(&actor.user.id),
            patient_id: Some(&patient.id),
            action: if pause { "sharing.paused" } else { "sharing.resumed" },
            detail: &format!("grants={}", res.rows_affected),
            ip: meta.ip.as_deref(),
        },
    )
    .await?;
    Ok(res.rows_affected)
}

/// Whether the caller's sharing is paused (any grant not revoked is).
pub async fn sharing_paused(state: &AppState, actor: &Actor) -> Result<bool, ServiceError> {
    let Some(patient) = policy::own_patient(state, &actor.user.id).await? else {
        return Ok(false);
    };
    let n = grants::Entity::find()
        .filter(grants::Column::PatientId.eq(&patient.id))
        .filter(grants::Column::RevokedMs.is_null())
        .filter(grants::Column::PausedMs.is_not_null())
        .count(&state.db)
        .await?;
    Ok(n > 0)
}

// ---------------------------------------------------------------------------
// The access log.

/// Who looked at the caller's data (everyone but the caller), newest first.
pub async fn access_log(state: &AppState, actor: &Actor, limit: u64) -> Result<Vec<AccessLogEntry>, ServiceError> {
    access_log_of(state, &actor.user.id, limit).await
}

/// [`access_log`] of the user `user_id`.
pub async fn access_log_of(state: &AppState, user_id: &str, limit: u64) -> Result<Vec<AccessLogEntry>, ServiceError> {
    let Some(patient) = policy::own_patient(state, user_id).await? else {
        return Ok(Vec::new());
    };
    let rows = audit_log::Entity::find()
        .filter(audit_log::Column::PatientId.eq(&patient.id))
        .filter(audit_log::Column::ActorUserId.ne(user_id))
        .filter(
            sea_orm::Condition::any()
                .add(audit_log::Column::Action.starts_with("read."))
                .add(audit_log::Column::Action.starts_with("export.")),
        )
        .order_by_desc(audit_log::Column::Seq)
        .limit(limit.clamp(1, 1000))
        .all(&state.db)
        .await?;
    let mut users_cache: std::collections::HashMap<String, Option<users::Model>> = Default::default();
    let mut clinic_cache: std::collections::HashMap<String, Option<String>> = Default::default();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let uid = r.actor_user_id.clone().unwrap_or_default();
        if !users_cache.contains_key(&uid) {
            let u = users::Entity::find_by_id(uid.clone()).one(&state.db).await?;
            users_cache.insert(uid.clone(), u);
        }
        let user = users_cache.get(&uid).cloned().flatten();
        let clinic_id = r.detail.split_whitespace().find_map(|p| p.strip_prefix("clinic=")).map(str::to_string);
        let clinic_name = match clinic_id {
            Some(cid) => {
                if !clinic_cache.contains_key(&cid) {
                    let c = clinics::Entity::find_by_id(cid.clone()).one(&state.db).await?;
                    clinic_cache.insert(cid.clone(), c.map(|c| c.name));
                }
                clinic_cache.get(&cid).cloned().flatten()
            }
            None => None,
        };
        let what = r.detail.split_once("what=").map(|(_, w)| w.to_string()).unwrap_or_default();
        out.push(AccessLogEntry {
            at: ms_to_rfc3339(r.at_ms),
            actor_name: user.as_ref().map(|u| u.display_name.clone()).unwrap_or_else(|| "(a deleted account)".into()),
            actor_email: user.map(|u| u.email),
            clinic_name,
            what: describe(&r.action, &what),
            action: r.action,
        });
    }
    Ok(out)
}

/// The access log's words for an entry.
/// What an access-log entry read, in the language of the page asking (the
/// REST API, which has no page, gets English).
fn describe(action: &str, what: &str) -> String {
    let lang = crate::i18n::detect();
    let base = match action {
        "read.glucose" => lang.tr("Glucose data"),
        "read.insulin" => lang.tr("Insulin data"),
        "read.settings" => lang.tr("Device settings"),
        "read.events" => lang.tr("Events and notes"),
        "read.summary" => lang.tr("Dashboard summary (14 days)"),
        "read.report" => lang.tr("Report"),
        a if a.starts_with("export.") => lang.tr("Export"),
        _ => lang.tr("Data"),
    };
    if what.is_empty() { base.to_string() } else { format!("{base}: {what}") }
}

// ---------------------------------------------------------------------------
// Upload requests, as the patient sees them.

pub async fn my_upload_requests(state: &AppState, actor: &Actor) -> Result<Vec<UploadRequestInfo>, ServiceError> {
    let Some(patient) = policy::own_patient(state, &actor.user.id).await? else {
        return Ok(Vec::new());
    };
    let rows = upload_requests::Entity::find()
        .filter(upload_requests::Column::PatientId.eq(&patient.id))
        .filter(upload_requests::Column::DoneMs.is_null())
        .order_by_desc(upload_requests::Column::CreatedMs)
        .all(&state.db)
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let clinic = clinics::Entity::find_by_id(r.clinic_id.clone()).one(&state.db).await?;
        out.push(UploadRequestInfo {
            id: r.id,
            clinic_name: clinic.map(|c| c.name).unwrap_or_default(),
            requested_at: ms_to_rfc3339(r.created_ms),
        });
    }
    Ok(out)
}

pub async fn dismiss_upload_request(state: &AppState, actor: &Actor, id: &str, now: i64) -> Result<(), ServiceError> {
    let patient = policy::own_patient(state, &actor.user.id).await?.ok_or(ServiceError::NotFound)?;
    let res = upload_requests::Entity::update_many()
        .col_expr(upload_requests::Column::DoneMs, Expr::value(now))
        .filter(upload_requests::Column::Id.eq(id))
        .filter(upload_requests::Column::PatientId.eq(&patient.id))
        .exec(&state.db)
        .await?;
    if res.rows_affected == 0 {
        return Err(ServiceError::NotFound);
    }
    Ok(())
}

/// Scopes a clinic asks for by default: everything.
pub fn all_scopes() -> String {
    scopes_to_db(&Scope::ALL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_readable_and_normalise() {
        for _ in 0..100 {
            let c = new_link_code();
            assert_eq!(c.len(), 14);
            assert_eq!(normalise_code(&c).unwrap().len(), 12);
            assert_eq!(normalise_code(&c.to_lowercase()), normalise_code(&c));
        }
        assert_eq!(normalise_code("abcd efgh jkmn").as_deref(), Some("ABCDEFGHJKMN"));
        assert_eq!(normalise_code("O0IL-1111-2222").as_deref(), Some("001111112222"));
        assert_eq!(normalise_code("ABCD-EFGH-JKM"), None);
        assert_eq!(normalise_code("ABCD-EFGH-JKMU"), None);
        assert_eq!(normalise_code("ÄBCD-EFGH-JKMN"), None);
    }

    #[test]
    fn expiry_must_be_future() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-05-01T12:00:00Z").unwrap().timestamp_millis();
        let zone: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(parse_expiry(None, zone, now).unwrap(), None);
        assert!(parse_expiry(Some("2026-04-30"), zone, now).is_err());
        // The end of 2026-05-01 in Berlin is 22:00 UTC.
        let end = parse_expiry(Some("2026-05-01"), zone, now).unwrap().unwrap();
        assert_eq!(ms_to_rfc3339(end), "2026-05-01T22:00:00Z");
        assert!(parse_expiry(Some("soon"), zone, now).is_err());
    }
}
