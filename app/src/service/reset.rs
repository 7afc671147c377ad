//! "Forgot your password?": an emailed, single-use link valid 24 hours.
//!
//! - The answer to a request is the same whether or not the address has an
//!   account (no enumeration); requests are rate-limited per address and per
//!   client address.
//! - The token (256 random bits) is stored as its SHA-256 hash; using it
//!   voids every other outstanding link of the account.
//! - A new password ends every session of the account and revokes every
//!   personal API token (in one transaction), and is checked for strength
//!   like a sign-up. Passkeys and the Nightscout site stay: the answer lists
//!   them for the owner to look over (someone who had the account may have
//!   added them).

use super::{AppState, ClientMeta, ServiceError, auth, ratelimit};
use crate::model::{PasskeyReview, ResetOutcome};
use sea_orm::QueryOrder;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use store::entity::{api_tokens, nightscout_sites, passkeys, password_resets, sessions, users};

/// How long a reset link works.
pub const VALID_MS: i64 = 24 * 3600 * 1000;
/// Requests allowed per email address, and per client address, per hour.
pub const PER_EMAIL_PER_HOUR: u32 = 5;
pub const PER_IP_PER_HOUR: u32 = 30;
const HOUR_MS: i64 = 3600 * 1000;

/// Asks for a reset link. `Ok(())` whether or not the account exists.
pub async fn request(state: &AppState, email: &str, meta: &ClientMeta, now: i64) -> Result<(), ServiceError> {
    let key = auth::Email::parse(email).map(|e| e.as_str().to_string()).unwrap_or_else(|_| email.trim().to_lowercase());
    ratelimit::hit(
        &state.db,
        &format!("reset:email:{}", store::sha256_hex(key.as_bytes())),
        PER_EMAIL_PER_HOUR,
        HOUR_MS,
        now,
    )
    .await?;
    if let Some(ip) = &meta.ip {
        ratelimit::hit(&state.db, &format!("reset:ip:{ip}"), PER_IP_PER_HOUR, HOUR_MS, now).await?;
    }
    let Some(user) = users::Entity::find().filter(users::Column::Email.eq(&key)).one(&state.db).await? else {
        return Ok(());
    };
    let token = auth::random_secret();
    password_resets::ActiveModel {
        token_hash: Set(store::sha256_hex(token.as_bytes())),
        user_id: Set(user.id.clone()),
        created_ms: Set(now),
        expires_ms: Set(now + VALID_MS),
        used_ms: Set(None),
    }
    .insert(&state.db)
    .await?;
    let link = format!("{}/reset-password?token={token}", state.config.public_url);
    let body = format!(
        "Hello {name},\n\nSomeone (we hope you) asked to reset the password of your Diabase account.\n\
         Open this link within 24 hours to choose a new one. It works once.\n\n{link}\n\n\
         Setting a new password signs you out everywhere and revokes every API token.\n\
         If you did not ask for this, ignore this message: your password stays as it is.\n",
        name = user.display_name,
    );
    super::mail::send(
        state,
        super::mail::Mail { to: &user.email, subject: "Reset your Diabase password", body: &body },
        now,
    )
    .await?;
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(&user.id),
            patient_id: None,
            action: "password_reset_requested",
            detail: "",
            ip: meta.ip.as_deref(),
        },
    )
    .await?;
    Ok(())
}

fn invalid() -> ServiceError {
    ServiceError::bad(
        "token",
        "This reset link does not work: it was used already, or it is older than 24 hours. Ask for a new one.",
    )
}

/// Sets a new password with a reset token; ends every session of the
/// account and revokes its API tokens. The answer lists its passkeys and
/// whether it has a Nightscout site, for review.
pub async fn confirm(
    state: &AppState,
    token: &str,
    password: &str,
    meta: &ClientMeta,
    now: i64,
) -> Result<ResetOutcome, ServiceError> {
    let hash = store::sha256_hex(token.trim().as_bytes());
    let row = password_resets::Entity::find_by_id(hash.clone()).one(&state.db).await?.ok_or_else(invalid)?;
    if row.used_ms.is_some() || row.expires_ms <= now {
        return Err(invalid());
    }
    let user = users::Entity::find_by_id(row.user_id.clone()).one(&state.db).await?.ok_or_else(invalid)?;
    auth::check_password_strength(password, &[&user.email, &user.display_name])?;
    let password_hash = auth::hash_password(password.to_string()).await?;
    let txn = state.db.begin().await?;
    // Single use even under a race: only the request that marks it used goes on.
    let taken = password_resets::Entity::update_many()
        .col_expr(password_resets::Column::UsedMs, sea_orm::sea_query::Expr::value(now))
        .filter(password_resets::Column::TokenHash.eq(&hash))
        .filter(password_resets::Column::UsedMs.is_null())
        .exec(&txn)
        .await?;
    if taken.rows_affected != 1 {
        return Err(invalid());
    }
    // Every other link of the account stops working too.
    password_resets::Entity::update_many()
        .col_expr(password_resets::Column::UsedMs, sea_orm::sea_query::Expr::value(now))
        .filter(password_resets::Column::UserId.eq(&user.id))
        .filter(password_resets::Column::UsedMs.is_null())
        .exec(&txn)
        .await?;
    let user_id = user.id.clone();
    let mut active: users::ActiveModel = user.into();
    active.password_hash = Set(password_hash);
    active.password_changed_ms = Set(now);
    active.updated_ms = Set(now);
    // The link reached the address: that confirms it too.
    if active.email_verified_ms.as_ref().is_none() {
        active.email_verified_ms = Set(Some(now));
    }
    active.update(&txn).await?;
    let sessions_ended =
        sessions::Entity::delete_many().filter(sessions::Column::UserId.eq(&user_id)).exec(&txn).await?.rows_affected;
    // Whoever had the account may have made tokens: none outlives the reset.
    let tokens_revoked = api_tokens::Entity::update_many()
        .col_expr(api_tokens::Column::RevokedMs, sea_orm::sea_query::Expr::value(now))
        .filter(api_tokens::Column::UserId.eq(&user_id))
        .filter(api_tokens::Column::RevokedMs.is_null())
        .exec(&txn)
        .await?
        .rows_affected;
    txn.commit().await?;
    let passkeys = passkeys::Entity::find()
        .filter(passkeys::Column::UserId.eq(&user_id))
        .order_by_asc(passkeys::Column::CreatedMs)
        .all(&state.db)
        .await?
        .into_iter()
        .map(|p| PasskeyReview { name: p.name, created_at: super::ms_to_rfc3339(p.created_ms) })
        .collect::<Vec<_>>();
    let nightscout_site = match super::policy::own_patient(state, &user_id).await? {
        Some(p) => nightscout_sites::Entity::find_by_id(p.id).one(&state.db).await?.is_some(),
        None => false,
    };
    store::audit::append(&state.db, &state.config.cipher.audit_key(), store::audit::Entry {
        at_ms: now,
        actor_user_id: Some(&user_id),
        patient_id: None,
        action: "password_reset",
        detail: &format!(
            "sessions_ended={sessions_ended} tokens_revoked={tokens_revoked} passkeys={} nightscout_site={nightscout_site}",
            passkeys.len()
        ),
        ip: meta.ip.as_deref(),
    })
    .await?;
    Ok(ResetOutcome { sessions_ended, tokens_revoked, passkeys, nightscout_site })
}
