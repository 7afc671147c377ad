//! Passkeys (WebAuthn, via webauthn-rs): register one or more, named; sign in
//! with a passkey alone (a discoverable credential: no email, no password);
//! rename and remove.
//!
//! The relying party is the public origin (`Config::public_url`): its host is
//! the RP ID, so passkeys need the site to be reached by a domain name
//! (`localhost` for a local install), not a bare IP address. Ceremony state
//! is kept in `webauthn_challenges`, server-side, single use, five minutes.
//! A passkey sign-in verifies the user (PIN or biometrics on the
//! authenticator), so it stands for both factors: it does not ask for a TOTP
//! code, and it satisfies a clinic's two-factor requirement.

use super::{Actor, AppState, ClientMeta, ServiceError, auth, ms_to_rfc3339, ratelimit, twofactor};
use crate::model::PasskeyInfo;
use base64::Engine;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set};
use sha2::{Digest, Sha256};
use store::entity::{passkeys, users, webauthn_challenges};
use webauthn_rs::prelude::{
    CredentialID, DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid, Webauthn, WebauthnBuilder,
};

/// How long a ceremony may take.
pub const CHALLENGE_TTL_MS: i64 = 5 * 60 * 1000;
/// Passkeys per account at most.
pub const MAX_PASSKEYS: u64 = 20;
/// Sign-in ceremonies started per client address per minute.
const LOGIN_STARTS_PER_MINUTE: u32 = 30;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The relying party of this site.
pub fn relying_party(state: &AppState) -> Result<Webauthn, ServiceError> {
    let origin = Url::parse(&state.config.public_url).map_err(|_| {
        ServiceError::Unprocessable("Passkeys need the site's public address (DIABASE_PUBLIC_URL).".into())
    })?;
    let Some(host) = origin.domain().map(str::to_string) else {
        return Err(ServiceError::Unprocessable(format!(
            "Passkeys need the site to be opened by a domain name, not an IP address: set DIABASE_PUBLIC_URL \
             (for this computer, http://localhost:{}).",
            origin.port_or_known_default().unwrap_or(80)
        )));
    };
    WebauthnBuilder::new(&host, &origin)
        .and_then(|b| b.rp_name("Diabase").build())
        .map_err(|e| ServiceError::Internal(format!("webauthn: {e}")))
}

/// The WebAuthn user id of an account: stable, and not the account id itself.
pub fn user_handle(user_id: &str) -> Uuid {
    let d = Sha256::digest(format!("diabase-webauthn-user\0{user_id}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid()
}

fn info(p: &passkeys::Model) -> PasskeyInfo {
    PasskeyInfo {
        id: p.id.clone(),
        name: p.name.clone(),
        created_at: ms_to_rfc3339(p.created_ms),
        last_used_at: p.last_used_ms.map(ms_to_rfc3339),
    }
}

fn clean_name(name: &str) -> Result<String, ServiceError> {
    let n: String = name.trim().chars().filter(|c| !c.is_control()).collect();
    if n.is_empty() {
        return Err(ServiceError::bad("name", "Give the passkey a name, e.g. \"Laptop\" or \"Phone\"."));
    }
    if n.chars().count() > 60 {
        return Err(ServiceError::bad("name", "A passkey name has at most 60 characters."));
    }
    Ok(n)
}

async fn audit(
    state: &AppState,
    user_id: &str,
    action: &str,
    detail: &str,
    ip: Option<&str>,
    now: i64,
) -> Result<(), ServiceError> {
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry { at_ms: now, actor_user_id: Some(user_id), patient_id: None, action, detail, ip },
    )
    .await?;
    Ok(())
}

/// Whether the account has at least one passkey.
pub async fn has_passkey<C: sea_orm::ConnectionTrait>(db: &C, user_id: &str) -> Result<bool, ServiceError> {
    Ok(passkeys::Entity::find().filter(passkeys::Column::UserId.eq(user_id)).count(db).await? > 0)
}

pub async fn list(state: &AppState, actor: &Actor) -> Result<Vec<PasskeyInfo>, ServiceError> {
    Ok(passkeys::Entity::find()
        .filter(passkeys::Column::UserId.eq(&actor.user.id))
        .order_by_asc(passkeys::Column::CreatedMs)
        .all(&state.db)
        .await?
        .iter()
        .map(info)
        .collect())
}

async fn store_challenge(
    state: &AppState,
    user_id: Option<&str>,
    kind: &str,
    state_json: String,
    now: i64,
) -> Result<String, ServiceError> {
    // Old ceremonies go first (nobody can finish them any more).
    webauthn_challenges::Entity::delete_many()
        .filter(webauthn_challenges::Column::ExpiresMs.lt(now))
        .exec(&state.db)
        .await?;
    let id = auth::random_secret();
    webauthn_challenges::ActiveModel {
        id: Set(store::sha256_hex(id.as_bytes())),
        user_id: Set(user_id.map(str::to_string)),
        kind: Set(kind.to_string()),
        state_json: Set(state_json),
        created_ms: Set(now),
        expires_ms: Set(now + CHALLENGE_TTL_MS),
    }
    .insert(&state.db)
    .await?;
    Ok(id)
}

/// Takes a ceremony's state out (once): `None` when unknown, expired or
/// already used.
async fn take_challenge(
    state: &AppState,
    id: &str,
    kind: &str,
    now: i64,
) -> Result<Option<webauthn_challenges::Model>, ServiceError> {
    let key = store::sha256_hex(id.as_bytes());
    let Some(row) = webauthn_challenges::Entity::find_by_id(key.clone()).one(&state.db).await? else { return Ok(None) };
    let gone = webauthn_challenges::Entity::delete_many()
        .filter(webauthn_challenges::Column::Id.eq(&key))
        .exec(&state.db)
        .await?;
    if gone.rows_affected != 1 || row.kind != kind || row.expires_ms < now {
        return Ok(None);
    }
    Ok(Some(row))
}

fn expired() -> ServiceError {
    ServiceError::bad("challenge_id", "This passkey request has expired or was already used. Try again.")
}

/// Starts registering a passkey: the options for `navigator.credentials.create`.
pub async fn begin_register(
    state: &AppState,
    actor: &Actor,
    now: i64,
) -> Result<(String, serde_json::Value), ServiceError> {
    twofactor::require_session(actor)?;
    super::reauth::require_confirmed(actor)?;
    super::reauth::require_recent(state, actor, now).await?;
    let existing = passkeys::Entity::find().filter(passkeys::Column::UserId.eq(&actor.user.id)).all(&state.db).await?;
    if existing.len() as u64 >= MAX_PASSKEYS {
        return Err(ServiceError::Conflict(format!(
            "An account has at most {MAX_PASSKEYS} passkeys. Remove one first."
        )));
    }
    let exclude: Vec<CredentialID> = existing
        .iter()
        .filter_map(|p| serde_json::from_str::<Passkey>(&p.passkey_json).ok())
        .map(|p| p.cred_id().clone())
        .collect();
    let rp = relying_party(state)?;
    let (ccr, reg) = rp
        .start_passkey_registration(
            user_handle(&actor.user.id),
            &actor.user.email,
            &actor.user.display_name,
            (!exclude.is_empty()).then_some(exclude),
        )
        .map_err(|e| ServiceError::Internal(format!("webauthn: {e}")))?;
    // A passkey signs in alone, so the credential must be discoverable.
    let mut options = serde_json::to_value(&ccr).map_err(|e| ServiceError::Internal(e.to_string()))?;
    if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection").and_then(|v| v.as_object_mut()) {
        sel.insert("requireResidentKey".into(), serde_json::Value::Bool(true));
        sel.insert("residentKey".into(), serde_json::Value::String("required".into()));
    }
    let json = serde_json::to_string(&reg).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let id = store_challenge(state, Some(&actor.user.id), "register", json, now).await?;
    Ok((id, options))
}

/// Finishes a registration with the browser's answer; the passkey is stored under `name`.
pub async fn finish_register(
    state: &AppState,
    actor: &Actor,
    challenge_id: &str,
    name: &str,
    credential: &RegisterPublicKeyCredential,
    meta: &ClientMeta,
    now: i64,
) -> Result<PasskeyInfo, ServiceError> {
    twofactor::require_session(actor)?;
    super::reauth::require_confirmed(actor)?;
    let name = clean_name(name)?;
    let row = take_challenge(state, challenge_id, "register", now).await?.ok_or_else(expired)?;
    if row.user_id.as_deref() != Some(actor.user.id.as_str()) {
        return Err(expired());
    }
    // webauthn-rs refuses an excluded (already registered) credential with
    // an algorithm error; say what it is.
    let presented = b64(credential.raw_id.as_ref());
    if passkeys::Entity::find().filter(passkeys::Column::CredentialId.eq(&presented)).count(&state.db).await? > 0 {
        return Err(ServiceError::Conflict("This passkey is already registered.".into()));
    }
    let reg: PasskeyRegistration =
        serde_json::from_str(&row.state_json).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let passkey = relying_party(state)?
        .finish_passkey_registration(credential, &reg)
        .map_err(|e| ServiceError::bad("credential", format!("The passkey could not be registered: {e}.")))?;
    let model = passkeys::ActiveModel {
        id: Set(store::new_id()),
        user_id: Set(actor.user.id.clone()),
        user_handle: Set(user_handle(&actor.user.id).to_string()),
        credential_id: Set(b64(passkey.cred_id().as_ref())),
        name: Set(name),
        passkey_json: Set(serde_json::to_string(&passkey).map_err(|e| ServiceError::Internal(e.to_string()))?),
        created_ms: Set(now),
        last_used_ms: Set(None),
    };
    let saved = match model.insert(&state.db).await {
        Ok(m) => m,
        Err(e) if auth::is_unique_violation(&e) => {
            return Err(ServiceError::Conflict("This passkey is already registered.".into()));
        }
        Err(e) => return Err(e.into()),
    };
    audit(state, &actor.user.id, "passkey.added", &format!("passkey={}", saved.id), meta.ip.as_deref(), now).await?;
    Ok(info(&saved))
}

async fn own(state: &AppState, actor: &Actor, id: &str) -> Result<passkeys::Model, ServiceError> {
    passkeys::Entity::find_by_id(id.to_string())
        .one(&state.db)
        .await?
        .filter(|p| p.user_id == actor.user.id)
        .ok_or(ServiceError::NotFound)
}

pub async fn rename(state: &AppState, actor: &Actor, id: &str, name: &str) -> Result<PasskeyInfo, ServiceError> {
    twofactor::require_session(actor)?;
    let name = clean_name(name)?;
    let mut m: passkeys::ActiveModel = own(state, actor, id).await?.into();
    m.name = Set(name);
    Ok(info(&m.update(&state.db).await?))
}

/// Removes a passkey. The last strong factor of a member of a clinic that
/// requires two-factor authentication cannot go.
pub async fn remove(
    state: &AppState,
    actor: &Actor,
    id: &str,
    meta: &ClientMeta,
    now: i64,
) -> Result<(), ServiceError> {
    twofactor::require_session(actor)?;
    let p = own(state, actor, id).await?;
    let others =
        passkeys::Entity::find().filter(passkeys::Column::UserId.eq(&actor.user.id)).count(&state.db).await? - 1;
    if others == 0
        && !twofactor::enabled(&state.db, &actor.user.id).await?
        && let Some(clinic) = super::clinic::clinic_requiring_2fa(&state.db, &actor.user.id).await?
    {
        return Err(ServiceError::Conflict(format!(
            "{clinic} requires two-factor authentication or a passkey of its members. Turn on two-factor authentication first."
        )));
    }
    passkeys::Entity::delete_by_id(p.id.clone()).exec(&state.db).await?;
    audit(state, &actor.user.id, "passkey.removed", &format!("passkey={}", p.id), meta.ip.as_deref(), now).await
}

/// Starts a re-authentication with one of the signed-in account's passkeys:
/// options for `navigator.credentials.get` listing them. `Conflict` when the
/// account has none (use the password).
pub async fn begin_reauth(
    state: &AppState,
    actor: &Actor,
    now: i64,
) -> Result<(String, RequestChallengeResponse), ServiceError> {
    super::reauth::session_of(actor)?;
    let keys: Vec<Passkey> = passkeys::Entity::find()
        .filter(passkeys::Column::UserId.eq(&actor.user.id))
        .all(&state.db)
        .await?
        .iter()
        .filter_map(|p| serde_json::from_str::<Passkey>(&p.passkey_json).ok())
        .collect();
    if keys.is_empty() {
        return Err(ServiceError::Conflict("This account has no passkey: enter your password instead.".into()));
    }
    let (rcr, auth_state) = relying_party(state)?
        .start_passkey_authentication(&keys)
        .map_err(|e| ServiceError::Internal(format!("webauthn: {e}")))?;
    let json = serde_json::to_string(&auth_state).map_err(|e| ServiceError::Internal(e.to_string()))?;
    // Stored as a sign-in ceremony bound to the account (the table allows
    // `register` and `login`); a discoverable sign-in has no account.
    let id = store_challenge(state, Some(&actor.user.id), "login", json, now).await?;
    Ok((id, rcr))
}

/// Checks a re-authentication assertion: it must come from a passkey of
/// `user_id` and answer that account's ceremony.
pub(crate) async fn finish_reauth(
    state: &AppState,
    user_id: &str,
    challenge_id: &str,
    credential: &PublicKeyCredential,
    now: i64,
) -> Result<(), ServiceError> {
    let row = take_challenge(state, challenge_id, "login", now).await?.ok_or_else(expired)?;
    if row.user_id.as_deref() != Some(user_id) {
        return Err(expired());
    }
    let auth_state: webauthn_rs::prelude::PasskeyAuthentication =
        serde_json::from_str(&row.state_json).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let result = relying_party(state)?
        .finish_passkey_authentication(credential, &auth_state)
        .map_err(|_| ServiceError::Unauthorized)?;
    let Some(stored) = passkeys::Entity::find()
        .filter(passkeys::Column::CredentialId.eq(b64(result.cred_id().as_ref())))
        .filter(passkeys::Column::UserId.eq(user_id))
        .one(&state.db)
        .await?
    else {
        return Err(ServiceError::Unauthorized);
    };
    let mut passkey: Passkey =
        serde_json::from_str(&stored.passkey_json).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let mut m: passkeys::ActiveModel = stored.into();
    if passkey.update_credential(&result) == Some(true) {
        m.passkey_json = Set(serde_json::to_string(&passkey).map_err(|e| ServiceError::Internal(e.to_string()))?);
    }
    m.last_used_ms = Set(Some(now));
    m.update(&state.db).await?;
    Ok(())
}

/// Starts a passkey sign-in: options for `navigator.credentials.get` with no
/// allowed credentials (the browser offers the site's passkeys).
pub async fn begin_login(
    state: &AppState,
    meta: &ClientMeta,
    now: i64,
) -> Result<(String, RequestChallengeResponse), ServiceError> {
    if let Some(ip) = &meta.ip {
        ratelimit::hit(&state.db, &format!("passkey:start:{ip}"), LOGIN_STARTS_PER_MINUTE, 60_000, now).await?;
    }
    let (rcr, auth_state) = relying_party(state)?
        .start_discoverable_authentication()
        .map_err(|e| ServiceError::Internal(format!("webauthn: {e}")))?;
    let json = serde_json::to_string(&auth_state).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let id = store_challenge(state, None, "login", json, now).await?;
    Ok((id, rcr))
}

/// Finishes a passkey sign-in: the account whose passkey answered, and a new session.
pub async fn finish_login(
    state: &AppState,
    challenge_id: &str,
    credential: &PublicKeyCredential,
    meta: &ClientMeta,
    now: i64,
) -> Result<auth::NewSession, ServiceError> {
    // Failed sign-ins of this client, shared with the password log-in: the
    // attempt takes a slot first, a success gives it back.
    let window = state.config.login_window_ms;
    let client = [auth::client_failure_bucket(state, meta)];
    ratelimit::hit_all(&state.db, &client, window, now).await?;
    let row = take_challenge(state, challenge_id, "login", now).await?.ok_or_else(expired)?;
    // A re-authentication ceremony (bound to an account) signs nobody in.
    if row.user_id.is_some() {
        return Err(expired());
    }
    let auth_state: DiscoverableAuthentication =
        serde_json::from_str(&row.state_json).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let rp = relying_party(state)?;
    let failed = |user: Option<&str>, why: &str| {
        let why = why.to_string();
        let user = user.map(str::to_string);
        async move {
            let _ = store::audit::append(
                &state.db,
                &state.config.cipher.audit_key(),
                store::audit::Entry {
                    at_ms: now,
                    actor_user_id: user.as_deref(),
                    patient_id: None,
                    action: "login_failed",
                    detail: &format!("passkey: {why}"),
                    ip: meta.ip.as_deref(),
                },
            )
            .await;
            ServiceError::Unauthorized
        }
    };
    let Ok((handle, cred_id)) = rp.identify_discoverable_authentication(credential) else {
        return Err(failed(None, "no user handle").await);
    };
    let Some(row) =
        passkeys::Entity::find().filter(passkeys::Column::CredentialId.eq(b64(cred_id))).one(&state.db).await?
    else {
        return Err(failed(None, "unknown passkey").await);
    };
    if row.user_handle != handle.to_string() {
        return Err(failed(Some(&row.user_id), "user handle does not match").await);
    }
    let mut passkey: Passkey =
        serde_json::from_str(&row.passkey_json).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let result = match rp.finish_discoverable_authentication(credential, auth_state, &[DiscoverableKey::from(&passkey)])
    {
        Ok(r) => r,
        Err(e) => return Err(failed(Some(&row.user_id), &e.to_string()).await),
    };
    let user =
        users::Entity::find_by_id(row.user_id.clone()).one(&state.db).await?.ok_or(ServiceError::Unauthorized)?;
    let mut m: passkeys::ActiveModel = row.clone().into();
    if passkey.update_credential(&result) == Some(true) {
        m.passkey_json = Set(serde_json::to_string(&passkey).map_err(|e| ServiceError::Internal(e.to_string()))?);
    }
    m.last_used_ms = Set(Some(now));
    m.update(&state.db).await?;
    ratelimit::refund_all(&state.db, &client, window, now).await?;
    super::clinic::join_invited(state, &user, now).await?;
    let session = auth::open_session(state, &user, meta, "passkey", now).await?;
    audit(state, &user.id, "login", &format!("passkey={}", row.id), meta.ip.as_deref(), now).await?;
    Ok(session)
}
