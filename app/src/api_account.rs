//! Server functions of account security: password reset, two-factor
//! authentication, and the clinic's two-factor requirement.

#[cfg(feature = "ssr")]
use crate::api::ssr;
use crate::model::{TotpSetup, TwoFactorStatus};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

/// Asks for a reset link; the same answer whether or not the address has an account.
#[server(prefix = "/_fn", endpoint = "request_password_reset")]
pub async fn request_password_reset(email: String) -> Result<(), ServerFnError> {
    use crate::service;
    let (state, _, meta) = ssr::context().await?;
    service::reset::request(&state, &email, &meta, service::now_ms()).await.map_err(ssr::to_sfn)
}

/// Sets a new password with the emailed token: every session ends and every
/// API token is revoked; the answer lists the passkeys and the Nightscout
/// site for the owner to look over.
#[server(prefix = "/_fn", endpoint = "reset_password")]
pub async fn reset_password(token: String, password: String) -> Result<crate::model::ResetOutcome, ServerFnError> {
    use crate::service;
    let (state, _, meta) = ssr::context().await?;
    service::reset::confirm(&state, &token, &password, &meta, service::now_ms()).await.map_err(ssr::to_sfn)
}

/// Enters the password again: the session may make sensitive changes for
/// the next five minutes.
#[server(prefix = "/_fn", endpoint = "reauthenticate")]
pub async fn reauthenticate(password: String) -> Result<(), ServerFnError> {
    use crate::service;
    let (state, actor, meta) = ssr::actor_with_meta().await?;
    service::reauth::with_password(&state, &actor, &password, &meta, service::now_ms()).await.map_err(ssr::to_sfn)
}

/// Whether this session's password was checked within the last five minutes.
#[server(prefix = "/_fn", endpoint = "recently_authenticated", input = GetUrl)]
pub async fn recently_authenticated() -> Result<bool, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    match service::reauth::require_recent(&state, &actor, service::now_ms()).await {
        Ok(()) => Ok(true),
        Err(service::ServiceError::ReauthRequired) => Ok(false),
        Err(e) => Err(ssr::to_sfn(e)),
    }
}

/// Changes the password (the current one first); every other session ends.
#[server(prefix = "/_fn", endpoint = "change_password")]
pub async fn change_password(current_password: String, new_password: String) -> Result<u64, ServerFnError> {
    use crate::service;
    let (state, actor, meta) = ssr::actor_with_meta().await?;
    service::reauth::change_password(&state, &actor, &current_password, &new_password, &meta, service::now_ms())
        .await
        .map(|r| r.sessions_ended)
        .map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "two_factor_status", input = GetUrl)]
pub async fn get_two_factor_status() -> Result<TwoFactorStatus, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::twofactor::status(&state, &actor).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "begin_totp")]
pub async fn begin_totp() -> Result<TotpSetup, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::twofactor::begin(&state, &actor, service::now_ms()).await.map_err(ssr::to_sfn)
}

/// Confirms the authenticator; returns the recovery codes (shown once).
#[server(prefix = "/_fn", endpoint = "confirm_totp")]
pub async fn confirm_totp(code: String) -> Result<Vec<String>, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::twofactor::confirm(&state, &actor, &code, service::now_ms()).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "new_recovery_codes")]
pub async fn new_recovery_codes(code: String) -> Result<Vec<String>, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::twofactor::regenerate_recovery_codes(&state, &actor, &code, service::now_ms()).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "disable_two_factor")]
pub async fn disable_two_factor(password: String, code: String) -> Result<(), ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::twofactor::disable(&state, &actor, &password, &code, service::now_ms()).await.map_err(ssr::to_sfn)
}

/// A clinic admin requires (or stops requiring) two-factor authentication of members.
#[server(prefix = "/_fn", endpoint = "set_clinic_require_2fa")]
pub async fn set_clinic_require_2fa(clinic_id: String, on: Option<String>) -> Result<bool, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    let on = on.is_some_and(|v| v == "on" || v == "true");
    service::clinic::set_require_2fa(&state, &actor, &clinic_id, on, service::now_ms()).await.map_err(ssr::to_sfn)?;
    Ok(on)
}

/// Deletes the caller's account and all its data after the password (and a
/// second-factor code when 2FA is on), then sends them to the log-in page.
#[server(prefix = "/_fn", endpoint = "delete_account")]
pub async fn delete_account(
    password: String,
    code: Option<String>,
    confirm: Option<String>,
) -> Result<(), ServerFnError> {
    use crate::service;
    // Who is asking comes first: a refusal must not depend on the form.
    let (state, actor, meta) = ssr::actor_with_meta().await?;
    if confirm.as_deref() != Some("on") {
        return Err(ssr::to_sfn(service::ServiceError::bad(
            "confirm",
            "Tick the box to confirm that everything will be deleted.",
        )));
    }
    service::erase::delete_account(&state, &actor, &password, code.as_deref(), &meta, service::now_ms())
        .await
        .map_err(ssr::to_sfn)?;
    ssr::set_cookie(&service::auth::clear_cookie(&state));
    leptos_axum::redirect("/login?deleted=1");
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "list_passkeys", input = GetUrl)]
pub async fn list_passkeys() -> Result<Vec<crate::model::PasskeyInfo>, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::passkeys::list(&state, &actor).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "rename_passkey")]
pub async fn rename_passkey(id: String, name: String) -> Result<(), ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::passkeys::rename(&state, &actor, &id, &name).await.map_err(ssr::to_sfn)?;
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "remove_passkey")]
pub async fn remove_passkey(id: String) -> Result<(), ServerFnError> {
    use crate::service;
    let (state, actor, meta) = ssr::actor_with_meta().await?;
    service::passkeys::remove(&state, &actor, &id, &meta, service::now_ms()).await.map_err(ssr::to_sfn)
}

/// Confirms the email address with the emailed token.
#[server(prefix = "/_fn", endpoint = "verify_email")]
pub async fn verify_email(token: String) -> Result<(), ServerFnError> {
    use crate::service;
    let (state, _, meta) = ssr::context().await?;
    service::verify_email::confirm(&state, &token, &meta, service::now_ms()).await.map_err(ssr::to_sfn)
}

/// Sends the confirmation link again; `false` when already confirmed.
#[server(prefix = "/_fn", endpoint = "resend_verification")]
pub async fn resend_verification() -> Result<bool, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::verify_email::resend(&state, &actor, service::now_ms()).await.map_err(ssr::to_sfn)
}

/// The account's sign-ins and failed sign-ins, newest first.
#[server(prefix = "/_fn", endpoint = "login_history", input = GetUrl)]
pub async fn login_history() -> Result<Vec<crate::model::LoginEventInfo>, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::logins::history(&state, &actor, 100).await.map_err(ssr::to_sfn)
}

/// The personal access tokens that still work.
#[server(prefix = "/_fn", endpoint = "list_tokens", input = GetUrl)]
pub async fn list_tokens() -> Result<Vec<crate::model::TokenInfo>, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::tokens::list(&state, &actor, service::now_ms()).await.map_err(ssr::to_sfn)
}

/// A token made in Settings, its secret shown once.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NewToken {
    pub name: String,
    pub token: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
}

/// Makes a token: `access` is `read:glucose`, `read:all`, `upload`,
/// `read:all+upload` or `full`; `days` the lifetime (empty: until revoked).
#[server(prefix = "/_fn", endpoint = "create_token")]
pub async fn create_token(name: String, access: String, days: Option<String>) -> Result<NewToken, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    let now = service::now_ms();
    let scopes: Vec<String> = access.split('+').map(str::to_string).collect();
    let expires_at = match days.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => {
            let n: i64 = d.parse().ok().filter(|n| (1..=3650).contains(n)).ok_or_else(|| {
                ssr::to_sfn(service::ServiceError::bad("days", "Give the token a lifetime of 1 to 3650 days, or none."))
            })?;
            Some(service::ms_to_rfc3339(now + n * 86_400_000))
        }
        None => None,
    };
    let t = service::tokens::create(&state, &actor, &name, Some(&scopes), expires_at.as_deref(), now)
        .await
        .map_err(ssr::to_sfn)?;
    Ok(NewToken { name: t.name, token: t.token, scopes: t.scopes, expires_at: t.expires_at })
}

#[server(prefix = "/_fn", endpoint = "revoke_token")]
pub async fn revoke_token(id: String) -> Result<(), ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::tokens::revoke(&state, &actor, &id, service::now_ms()).await.map_err(ssr::to_sfn)
}
