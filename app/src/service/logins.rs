//! The login history and new-device alerts (breach response).
//!
//! Every sign-in (password or passkey) and every failed password of an
//! existing account is written to `login_events` with the time, the address
//! and the browser. A browser carries a long-lived random device cookie
//! (HttpOnly; only its SHA-256 is stored, per account, in `known_devices`).
//! A successful sign-in from a browser the account has not used before is
//! mailed to the owner, unless it is the account's very first sign-in.
//! The mail names no health data.

use super::{Actor, AppState, ClientMeta, ServiceError, mail, ms_to_rfc3339};
use crate::model::LoginEventInfo;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use store::entity::{known_devices, login_events, users};

const COOKIE_SECURE: &str = "__Host-diabase_device";
const COOKIE_PLAIN: &str = "diabase_device";
/// 400 days, the longest lifetime browsers keep a cookie.
const COOKIE_MAX_AGE_S: i64 = 400 * 24 * 3600;

/// The device id from a `Cookie` header, if it looks like one of ours, and
/// whether it came from the `__Host-` cookie ([`signed_in`] takes only the
/// name this server sets: under TLS the prefixed one alone).
pub fn device_from_cookies(headers: &http::HeaderMap) -> Option<(String, bool)> {
    let mut plain = None;
    for value in headers.get_all(http::header::COOKIE) {
        let Ok(s) = value.to_str() else { continue };
        for pair in s.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else { continue };
            if (k == COOKIE_SECURE || k == COOKIE_PLAIN) && (20..=64).contains(&v.len()) {
                if k == COOKIE_SECURE {
                    return Some((v.to_string(), true));
                }
                plain.get_or_insert_with(|| (v.to_string(), false));
            }
        }
    }
    plain
}

/// The `Set-Cookie` value that gives a browser its device id.
pub fn device_cookie(state: &AppState, id: &str) -> String {
    if state.config.secure_cookies {
        format!("{COOKIE_SECURE}={id}; Path=/; Max-Age={COOKIE_MAX_AGE_S}; HttpOnly; Secure; SameSite=Lax")
    } else {
        format!("{COOKIE_PLAIN}={id}; Path=/; Max-Age={COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Lax")
    }
}

fn device_hash(id: &str) -> String {
    store::sha256_hex(format!("diabase-device:{id}").as_bytes())
}

fn event(
    user_id: &str,
    meta: &ClientMeta,
    method: &str,
    success: bool,
    new_device: bool,
    now: i64,
) -> login_events::ActiveModel {
    login_events::ActiveModel {
        id: Set(store::new_id()),
        user_id: Set(user_id.to_string()),
        at_ms: Set(now),
        method: Set(method.to_string()),
        success: Set(i32::from(success)),
        new_device: Set(i32::from(new_device)),
        ip: Set(meta.ip.clone()),
        user_agent: Set(meta.user_agent.as_ref().map(|s| s.chars().take(300).collect())),
    }
}

/// Records a failed sign-in of an existing account.
pub async fn failed(
    state: &AppState,
    user_id: &str,
    meta: &ClientMeta,
    method: &str,
    now: i64,
) -> Result<(), ServiceError> {
    event(user_id, meta, method, false, false, now).insert(&state.db).await?;
    Ok(())
}

/// Records a successful sign-in. Returns the device cookie to set when the
/// browser had none. Mails the owner when the browser is new to the
/// account and the account has signed in before.
pub async fn signed_in(
    state: &AppState,
    user: &users::Model,
    meta: &ClientMeta,
    method: &str,
    now: i64,
) -> Result<Option<String>, ServiceError> {
    let device = meta.device.as_ref().filter(|_| meta.device_prefixed == state.config.secure_cookies);
    let (device_id, cookie) = match device {
        Some(d) => (d.clone(), None),
        None => {
            let d = super::auth::random_secret();
            let c = device_cookie(state, &d);
            (d, Some(c))
        }
    };
    let hash = device_hash(&device_id);
    let known = known_devices::Entity::find_by_id((user.id.clone(), hash.clone())).one(&state.db).await?;
    let new_device = known.is_none();
    if new_device {
        let signed_in_before = login_events::Entity::find()
            .filter(login_events::Column::UserId.eq(&user.id))
            .filter(login_events::Column::Success.eq(1))
            .count(&state.db)
            .await?
            > 0;
        known_devices::Entity::insert(known_devices::ActiveModel {
            user_id: Set(user.id.clone()),
            device_hash: Set(hash.clone()),
            first_ms: Set(now),
            last_ms: Set(now),
            user_agent: Set(meta.user_agent.as_ref().map(|s| s.chars().take(300).collect())),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([known_devices::Column::UserId, known_devices::Column::DeviceHash])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&state.db)
        .await?;
        if signed_in_before {
            alert_new_device(state, user, meta, method, now).await?;
        }
    } else {
        known_devices::Entity::update_many()
            .col_expr(known_devices::Column::LastMs, Expr::value(now))
            .filter(known_devices::Column::UserId.eq(&user.id))
            .filter(known_devices::Column::DeviceHash.eq(&hash))
            .exec(&state.db)
            .await?;
    }
    event(&user.id, meta, method, true, new_device, now).insert(&state.db).await?;
    Ok(cookie)
}

async fn alert_new_device(
    state: &AppState,
    user: &users::Model,
    meta: &ClientMeta,
    method: &str,
    now: i64,
) -> Result<(), ServiceError> {
    let when = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now)
        .map(|t| {
            let zone = therapy::time::parse_zone(&user.time_zone).unwrap_or(chrono_tz::UTC);
            t.with_timezone(&zone).format("%Y-%m-%d %H:%M %Z").to_string()
        })
        .unwrap_or_default();
    let how = if method == "passkey" { "a passkey" } else { "your password" };
    let body = format!(
        "Hello {name},\n\n\
         Someone signed in to your Diabase account from a browser it had not been used from before.\n\n\
         When:    {when}\n\
         Browser: {browser}\n\
         Address: {ip}\n\
         With:    {how}\n\n\
         If this was you, there is nothing to do.\n\n\
         If it was not you, act now: {url}/security walks you through it\n\
         (sign out everywhere, change your password, pause all sharing, check who looked at your data).\n",
        name = user.display_name,
        browser = meta.user_agent.as_deref().unwrap_or("unknown"),
        ip = meta.ip.as_deref().unwrap_or("unknown"),
        url = state.config.public_url,
    );
    // A mail that cannot be sent must not block the sign-in: it is logged.
    if let Err(e) = mail::send(
        state,
        mail::Mail { to: &user.email, subject: "New sign-in to your Diabase account", body: &body },
        now,
    )
    .await
    {
        tracing::warn!(error = %e, "new-device alert not sent");
    }
    Ok(())
}

/// The caller's sign-ins and failed sign-ins, newest first.
pub async fn history(state: &AppState, actor: &Actor, limit: u64) -> Result<Vec<LoginEventInfo>, ServiceError> {
    history_of(state, &actor.user.id, limit).await
}

/// [`history`] of the user `user_id` (the data export).
pub async fn history_of(state: &AppState, user_id: &str, limit: u64) -> Result<Vec<LoginEventInfo>, ServiceError> {
    let rows = login_events::Entity::find()
        .filter(login_events::Column::UserId.eq(user_id))
        .order_by_desc(login_events::Column::AtMs)
        .limit(limit.clamp(1, 500))
        .all(&state.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|e| LoginEventInfo {
            at: ms_to_rfc3339(e.at_ms),
            method: e.method,
            success: e.success != 0,
            new_device: e.new_device != 0,
            ip: e.ip,
            user_agent: e.user_agent,
        })
        .collect())
}
