//! Confirming the email address of a new account: an emailed single-use
//! link, valid 7 days (the token is stored as its SHA-256 hash). Until the
//! address is confirmed the account works, shows a reminder with "send the
//! link again", and clinic invitations to the address wait (so nobody joins
//! a clinic, and sees its patients, with an address that is not theirs). A
//! password reset through the emailed link also confirms the address.

use super::{Actor, AppState, ClientMeta, ServiceError, auth, ratelimit};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use store::entity::{email_verifications, users};

/// How long a confirmation link works.
pub const VALID_MS: i64 = 7 * 24 * 3600 * 1000;
/// New links per account per hour.
pub const PER_HOUR: u32 = 5;
const HOUR_MS: i64 = 3600 * 1000;

/// Sends a new confirmation link to `user`'s address.
pub async fn send(state: &AppState, user: &users::Model, now: i64) -> Result<(), ServiceError> {
    ratelimit::hit(&state.db, &format!("verify:user:{}", user.id), PER_HOUR, HOUR_MS, now).await?;
    let token = auth::random_secret();
    email_verifications::ActiveModel {
        token_hash: Set(store::sha256_hex(token.as_bytes())),
        user_id: Set(user.id.clone()),
        email: Set(user.email.clone()),
        created_ms: Set(now),
        expires_ms: Set(now + VALID_MS),
        used_ms: Set(None),
    }
    .insert(&state.db)
    .await?;
    let link = format!("{}/verify-email?token={token}", state.config.public_url);
    let body = format!(
        "Hello {name},\n\nPlease confirm that this is your address for your new Diabase account.\n\
         Open this link within 7 days:\n\n{link}\n\n\
         If you did not create a Diabase account, ignore this message.\n",
        name = user.display_name,
    );
    super::mail::send(
        state,
        super::mail::Mail { to: &user.email, subject: "Confirm your email address for Diabase", body: &body },
        now,
    )
    .await?;
    Ok(())
}

/// "Send the link again" for the signed-in user; nothing when already confirmed.
pub async fn resend(state: &AppState, actor: &Actor, now: i64) -> Result<bool, ServiceError> {
    if actor.user.email_verified_ms.is_some() {
        return Ok(false);
    }
    send(state, &actor.user, now).await?;
    Ok(true)
}

fn invalid() -> ServiceError {
    ServiceError::bad(
        "token",
        "This confirmation link does not work: it was used already, or it is older than 7 days. Log in and ask for a new one in Settings.",
    )
}

/// Confirms an address with the emailed token; then joins waiting clinic invitations.
pub async fn confirm(state: &AppState, token: &str, meta: &ClientMeta, now: i64) -> Result<(), ServiceError> {
    let hash = store::sha256_hex(token.trim().as_bytes());
    let row = email_verifications::Entity::find_by_id(hash.clone()).one(&state.db).await?.ok_or_else(invalid)?;
    if row.used_ms.is_some() || row.expires_ms <= now {
        return Err(invalid());
    }
    let user = users::Entity::find_by_id(row.user_id.clone()).one(&state.db).await?.ok_or_else(invalid)?;
    // A link sent to an address the account no longer has proves nothing.
    if user.email != row.email {
        return Err(invalid());
    }
    let txn = state.db.begin().await?;
    let taken = email_verifications::Entity::update_many()
        .col_expr(email_verifications::Column::UsedMs, sea_orm::sea_query::Expr::value(now))
        .filter(email_verifications::Column::TokenHash.eq(&hash))
        .filter(email_verifications::Column::UsedMs.is_null())
        .exec(&txn)
        .await?;
    if taken.rows_affected != 1 {
        return Err(invalid());
    }
    let user = if user.email_verified_ms.is_none() {
        let mut m: users::ActiveModel = user.into();
        m.email_verified_ms = Set(Some(now));
        m.update(&txn).await?
    } else {
        user
    };
    txn.commit().await?;
    super::clinic::join_invited(state, &user, now).await?;
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(&user.id),
            patient_id: None,
            action: "email_verified",
            detail: "",
            ip: meta.ip.as_deref(),
        },
    )
    .await?;
    Ok(())
}
