//! Proving again who one is before a sensitive change (issue 19, item 4),
//! and the confirmed-address rule.
//!
//! - Until the account's email address is confirmed it gets no passkeys, API
//!   tokens, Nightscout site or sharing ([`require_confirmed`]): someone who
//!   signs up with another person's address cannot plant credentials that
//!   outlive the owner's password reset.
//! - Adding a passkey, setting up TOTP, making a `full` token, creating or
//!   rotating the Nightscout secret and exporting all data need a browser
//!   session whose password (or a passkey) was checked within the last
//!   [`RECENT_MS`] ([`require_recent`]). The session's `auth_ms` is set when
//!   it opens (so a fresh log-in goes straight on) and by
//!   `POST /api/v1/me/reauth`. An API token, whatever its scopes, never can.
//! - Every check of a signed-in account's password or second factor (the
//!   re-authentication, changing the password, turning 2FA off, new recovery
//!   codes, deleting the account) spends from one per-account budget of
//!   [`FAILURES`] attempts per [`WINDOW_MS`]: the attempt is counted before
//!   the credential is checked (atomically, in the database) and the budget
//!   is cleared when the check succeeds.

use super::{Actor, AppState, AuthVia, ClientMeta, ServiceError, auth, ratelimit};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use store::entity::{sessions, users};

/// How long a password check counts for sensitive changes.
pub const RECENT_MS: i64 = 5 * 60 * 1000;
/// Credential checks of a signed-in account allowed per window.
pub const FAILURES: u32 = 5;
pub const WINDOW_MS: i64 = 15 * 60 * 1000;

/// The one message for a wrong password or a wrong code, so that a caller
/// cannot tell which of the two was wrong.
pub const WRONG_PASSWORD_OR_CODE: &str = "The password or the code is not right.";

/// The account's budget of credential checks (shared with `erase`).
pub fn bucket(user_id: &str) -> String {
    format!("reauth:{user_id}")
}

/// Refuses an account whose address is not confirmed yet.
pub fn require_confirmed(actor: &Actor) -> Result<(), ServiceError> {
    if actor.user.email_verified_ms.is_none() {
        return Err(ServiceError::EmailUnconfirmed);
    }
    Ok(())
}

/// The caller's browser session (its id hash); an API token is refused.
pub fn session_of(actor: &Actor) -> Result<&str, ServiceError> {
    match &actor.via {
        AuthVia::Session(h) => Ok(h.as_str()),
        AuthVia::Token { .. } => Err(ServiceError::Forbidden),
    }
}

/// Whether the caller's session checked its password (or a passkey) within
/// the last [`RECENT_MS`]: `ReauthRequired` when not, `Forbidden` for a token.
pub async fn require_recent(state: &AppState, actor: &Actor, now: i64) -> Result<(), ServiceError> {
    let id = session_of(actor)?;
    let session =
        sessions::Entity::find_by_id(id.to_string()).one(&state.db).await?.ok_or(ServiceError::Unauthorized)?;
    if now - session.auth_ms >= RECENT_MS {
        return Err(ServiceError::ReauthRequired);
    }
    Ok(())
}

/// Counts one credential check against the account's budget, before the
/// check: refused once the window's attempts are spent.
pub async fn charge(state: &AppState, user_id: &str, now: i64) -> Result<(), ServiceError> {
    ratelimit::hit(&state.db, &bucket(user_id), FAILURES, WINDOW_MS, now).await
}

/// A successful check gives the budget back.
pub async fn settle(state: &AppState, user_id: &str) -> Result<(), ServiceError> {
    ratelimit::clear(&state.db, &bucket(user_id)).await
}

/// Notes that the session's owner just proved who they are.
pub async fn mark<C: sea_orm::ConnectionTrait>(db: &C, session_id_hash: &str, now: i64) -> Result<(), ServiceError> {
    sessions::Entity::update_many()
        .col_expr(sessions::Column::AuthMs, sea_orm::sea_query::Expr::value(now))
        .filter(sessions::Column::IdHash.eq(session_id_hash))
        .exec(db)
        .await?;
    Ok(())
}

async fn audit(
    state: &AppState,
    user_id: &str,
    action: &str,
    detail: &str,
    meta: &ClientMeta,
    now: i64,
) -> Result<(), ServiceError> {
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(user_id),
            patient_id: None,
            action,
            detail,
            ip: meta.ip.as_deref(),
        },
    )
    .await?;
    Ok(())
}

/// `POST /me/reauth {password}`: checks the password (rate-limited) and
/// marks the session as recently authenticated.
pub async fn with_password(
    state: &AppState,
    actor: &Actor,
    password: &str,
    meta: &ClientMeta,
    now: i64,
) -> Result<(), ServiceError> {
    let session = session_of(actor)?.to_string();
    charge(state, &actor.user.id, now).await?;
    if password.len() > auth::MAX_PASSWORD_LEN
        || !auth::verify_password(password.to_string(), Some(actor.user.password_hash.clone())).await
    {
        audit(state, &actor.user.id, "reauth_failed", "password", meta, now).await?;
        return Err(ServiceError::bad("password", "The password is not right."));
    }
    settle(state, &actor.user.id).await?;
    mark(&state.db, &session, now).await?;
    audit(state, &actor.user.id, "reauth", "password", meta, now).await
}

/// A passkey assertion of the session's own account stands for the password.
pub async fn with_passkey(
    state: &AppState,
    actor: &Actor,
    challenge_id: &str,
    credential: &webauthn_rs::prelude::PublicKeyCredential,
    meta: &ClientMeta,
    now: i64,
) -> Result<(), ServiceError> {
    let session = session_of(actor)?.to_string();
    charge(state, &actor.user.id, now).await?;
    if let Err(e) = super::passkeys::finish_reauth(state, &actor.user.id, challenge_id, credential, now).await {
        audit(state, &actor.user.id, "reauth_failed", "passkey", meta, now).await?;
        return Err(e);
    }
    settle(state, &actor.user.id).await?;
    mark(&state.db, &session, now).await?;
    audit(state, &actor.user.id, "reauth", "passkey", meta, now).await
}

/// How many sessions a password change ended.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PasswordChanged {
    pub sessions_ended: u64,
}

/// `POST /me/password {current_password, new_password}` (ASVS 6.2.2): the
/// current password (rate-limited like the re-authentication), a new one as
/// strong as a sign-up's; every other session of the account ends, this one
/// stays and counts as recently authenticated. The owner is told by mail.
pub async fn change_password(
    state: &AppState,
    actor: &Actor,
    current: &str,
    new: &str,
    meta: &ClientMeta,
    now: i64,
) -> Result<PasswordChanged, ServiceError> {
    let session = session_of(actor)?.to_string();
    let user = &actor.user;
    charge(state, &user.id, now).await?;
    if current.len() > auth::MAX_PASSWORD_LEN
        || !auth::verify_password(current.to_string(), Some(user.password_hash.clone())).await
    {
        audit(state, &user.id, "password_change_failed", "", meta, now).await?;
        return Err(ServiceError::bad("current_password", "The current password is not right."));
    }
    settle(state, &user.id).await?;
    auth::check_password_strength(new, &[&user.email, &user.display_name]).map_err(|e| match e {
        ServiceError::BadInput { message, .. } => ServiceError::BadInput { field: Some("new_password"), message },
        other => other,
    })?;
    if new == current {
        return Err(ServiceError::bad("new_password", "Choose a password different from the current one."));
    }
    let hash = auth::hash_password(new.to_string()).await?;
    let txn = state.db.begin().await?;
    users::Entity::update_many()
        .col_expr(users::Column::PasswordHash, sea_orm::sea_query::Expr::value(hash))
        .col_expr(users::Column::PasswordChangedMs, sea_orm::sea_query::Expr::value(now))
        .col_expr(users::Column::UpdatedMs, sea_orm::sea_query::Expr::value(now))
        .filter(users::Column::Id.eq(&user.id))
        .exec(&txn)
        .await?;
    let ended = sessions::Entity::delete_many()
        .filter(sessions::Column::UserId.eq(&user.id))
        .filter(sessions::Column::IdHash.ne(&session))
        .exec(&txn)
        .await?
        .rows_affected;
    mark(&txn, &session, now).await?;
    txn.commit().await?;
    audit(state, &user.id, "password_changed", &format!("sessions_ended={ended}"), meta, now).await?;
    let body = format!(
        "Hello {name},\n\nThe password of your Diabase account was changed on {when} (UTC).\n\
         Every other session of your account was signed out.\n\n\
         If you did not do this, reset your password now with \"Forgot your password?\" on the log-in page\n\
         ({url}/forgot-password): a reset signs you out everywhere and revokes every API token.\n",
        name = user.display_name,
        when = super::ms_to_rfc3339(now),
        url = state.config.public_url,
    );
    if let Err(e) = super::mail::send(
        state,
        super::mail::Mail { to: &user.email, subject: "Your Diabase password was changed", body: &body },
        now,
    )
    .await
    {
        tracing::warn!(error = %e, "the password-change notice could not be sent");
    }
    Ok(PasswordChanged { sessions_ended: ended })
}
