//! The public API v1 of account security: password reset by email, and
//! two-factor authentication (TOTP with recovery codes). Thin handlers over
//! `service::reset` and `service::twofactor`.

use crate::rest::{ApiError, ApiJson, ApiQuery, Authed};
use crate::rest_sharing::Meta;
use app::service::{self, AppState, reset, twofactor};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::json;

type ApiResult<T> = Result<T, ApiError>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/password-reset", post(reset_request))
        .route("/auth/password-reset/confirm", post(reset_confirm))
        .route("/me/2fa", get(status))
        .route("/me/2fa/totp", post(totp_begin))
        .route("/me/2fa/totp/confirm", post(totp_confirm))
        .route("/me/2fa/recovery-codes", post(recovery_codes))
        .route("/me/2fa/disable", post(disable))
        .route("/me/export", get(export))
        .route("/auth/verify-email", post(verify_email))
        .route("/me/verify-email", post(resend_verification))
        .route("/auth/passkey/start", post(passkey_login_start))
        .route("/auth/passkey/finish", post(passkey_login_finish))
        .route("/me/passkeys", get(passkey_list).post(passkey_register_finish))
        .route("/me/passkeys/start", post(passkey_register_start))
        .route("/me/passkeys/{id}", patch(passkey_rename).delete(passkey_remove))
        .route("/me/reauth", post(reauth_password))
        .route("/me/reauth/passkey/start", post(reauth_passkey_start))
        .route("/me/reauth/passkey/finish", post(reauth_passkey_finish))
        .route("/me/password", post(change_password))
}

// ---------------------------------------------------------------------------
// Re-authentication and changing the password (browser sessions only).

#[derive(Deserialize)]
struct Password {
    password: String,
}

/// `POST /me/reauth {password}`: 204; the session counts as recently
/// authenticated for the next five minutes.
async fn reauth_password(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Meta(m): Meta,
    ApiJson(b): ApiJson<Password>,
) -> ApiResult<StatusCode> {
    service::reauth::with_password(&state, &actor, &b.password, &m, service::now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /me/reauth/passkey/start` → `{challenge_id, options}` listing the account's passkeys.
async fn reauth_passkey_start(
    State(state): State<AppState>,
    Authed(actor): Authed,
) -> ApiResult<Json<serde_json::Value>> {
    let (challenge_id, options) = service::passkeys::begin_reauth(&state, &actor, service::now_ms()).await?;
    Ok(Json(json!({"challenge_id": challenge_id, "options": options})))
}

/// `POST /me/reauth/passkey/finish {challenge_id, credential}`: 204, as `/me/reauth`.
async fn reauth_passkey_finish(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Meta(m): Meta,
    ApiJson(b): ApiJson<PasskeyLogin>,
) -> ApiResult<StatusCode> {
    service::reauth::with_passkey(&state, &actor, &b.challenge_id, &b.credential, &m, service::now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ChangePassword {
    current_password: String,
    new_password: String,
}

/// `POST /me/password {current_password, new_password}` → `{sessions_ended}`;
/// every other session of the account ends.
async fn change_password(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Meta(m): Meta,
    ApiJson(b): ApiJson<ChangePassword>,
) -> ApiResult<Json<service::reauth::PasswordChanged>> {
    let r =
        service::reauth::change_password(&state, &actor, &b.current_password, &b.new_password, &m, service::now_ms())
            .await?;
    Ok(Json(r))
}

// ---------------------------------------------------------------------------
// Passkeys (WebAuthn). The options are webauthn-rs' JSON: binary fields as
// base64url; the browser's answers come back the same way.

/// `POST /auth/passkey/start` → `{challenge_id, options}` for `navigator.credentials.get`.
async fn passkey_login_start(State(state): State<AppState>, Meta(m): Meta) -> ApiResult<Json<serde_json::Value>> {
    let (challenge_id, options) = service::passkeys::begin_login(&state, &m, service::now_ms()).await?;
    Ok(Json(json!({"challenge_id": challenge_id, "options": options})))
}

#[derive(Deserialize)]
struct PasskeyLogin {
    challenge_id: String,
    credential: webauthn_rs::prelude::PublicKeyCredential,
}

/// `POST /auth/passkey/finish {challenge_id, credential}` → the user, with a session cookie.
async fn passkey_login_finish(
    State(state): State<AppState>,
    Meta(m): Meta,
    ApiJson(b): ApiJson<PasskeyLogin>,
) -> ApiResult<Response> {
    let session =
        service::passkeys::finish_login(&state, &b.challenge_id, &b.credential, &m, service::now_ms()).await?;
    crate::rest::signed_in(&state, &session).await
}

async fn passkey_list(
    State(state): State<AppState>,
    Authed(actor): Authed,
) -> ApiResult<Json<Vec<app::model::PasskeyInfo>>> {
    Ok(Json(service::passkeys::list(&state, &actor).await?))
}

/// `POST /me/passkeys/start` → `{challenge_id, options}` for `navigator.credentials.create`.
async fn passkey_register_start(
    State(state): State<AppState>,
    Authed(actor): Authed,
) -> ApiResult<Json<serde_json::Value>> {
    let (challenge_id, options) = service::passkeys::begin_register(&state, &actor, service::now_ms()).await?;
    Ok(Json(json!({"challenge_id": challenge_id, "options": options})))
}

#[derive(Deserialize)]
struct PasskeyRegister {
    challenge_id: String,
    name: String,
    credential: webauthn_rs::prelude::RegisterPublicKeyCredential,
}

async fn passkey_register_finish(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Meta(m): Meta,
    ApiJson(b): ApiJson<PasskeyRegister>,
) -> ApiResult<Response> {
    let p = service::passkeys::finish_register(
        &state,
        &actor,
        &b.challenge_id,
        &b.name,
        &b.credential,
        &m,
        service::now_ms(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(p)).into_response())
}

#[derive(Deserialize)]
struct PasskeyName {
    name: String,
}

async fn passkey_rename(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<PasskeyName>,
) -> ApiResult<Json<app::model::PasskeyInfo>> {
    Ok(Json(service::passkeys::rename(&state, &actor, &id, &b.name).await?))
}

async fn passkey_remove(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Meta(m): Meta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    service::passkeys::remove(&state, &actor, &id, &m, service::now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Token {
    token: String,
}

/// `POST /auth/verify-email {token}`: confirms the address the link was sent to.
async fn verify_email(
    State(state): State<AppState>,
    Meta(m): Meta,
    ApiJson(b): ApiJson<Token>,
) -> ApiResult<StatusCode> {
    service::verify_email::confirm(&state, &b.token, &m, service::now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /me/verify-email`: sends the confirmation link again (202; `sent` is
/// false when the address is already confirmed).
async fn resend_verification(State(state): State<AppState>, Authed(actor): Authed) -> ApiResult<Response> {
    let sent = service::verify_email::resend(&state, &actor, service::now_ms()).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"sent": sent}))).into_response())
}

#[derive(Deserialize)]
struct ExportQuery {
    format: Option<String>,
}

/// The caller's whole record as a download: `?format=json` (default) or `fhir`.
async fn export(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Meta(m): Meta,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let format = service::export::Format::parse(q.format.as_deref().unwrap_or("json"))?;
    let now = service::now_ms();
    let body = service::export::export_own(&state, &actor, format, m.ip.as_deref(), now).await?;
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = format!("attachment; filename=\"{}\"", format.file_name(now)).parse() {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

#[derive(Deserialize)]
pub struct DeleteAccount {
    password: String,
    #[serde(default)]
    code: Option<String>,
}

/// `DELETE /me`: the account and all its data, after the password (and a
/// second-factor code when 2FA is on). 204 and the session cookie cleared.
pub async fn delete_me(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Meta(m): Meta,
    ApiJson(b): ApiJson<DeleteAccount>,
) -> ApiResult<Response> {
    service::erase::delete_account(&state, &actor, &b.password, b.code.as_deref(), &m, service::now_ms()).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = service::auth::clear_cookie(&state).parse() {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

#[derive(Deserialize)]
struct ResetRequest {
    email: String,
}

/// 202 whether or not the address has an account.
async fn reset_request(
    State(state): State<AppState>,
    Meta(m): Meta,
    ApiJson(b): ApiJson<ResetRequest>,
) -> ApiResult<Response> {
    reset::request(&state, &b.email, &m, service::now_ms()).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "If the address has an account, a reset link is on its way."})))
        .into_response())
}

#[derive(Deserialize)]
struct ResetConfirm {
    token: String,
    password: String,
}

/// 200 `{sessions_ended, tokens_revoked, passkeys: [{name, created_at}], nightscout_site}`.
async fn reset_confirm(
    State(state): State<AppState>,
    Meta(m): Meta,
    ApiJson(b): ApiJson<ResetConfirm>,
) -> ApiResult<Json<app::model::ResetOutcome>> {
    Ok(Json(reset::confirm(&state, &b.token, &b.password, &m, service::now_ms()).await?))
}

async fn status(State(state): State<AppState>, Authed(actor): Authed) -> ApiResult<Json<twofactor::TwoFactorStatus>> {
    Ok(Json(twofactor::status(&state, &actor).await?))
}

async fn totp_begin(State(state): State<AppState>, Authed(actor): Authed) -> ApiResult<Json<twofactor::TotpSetup>> {
    Ok(Json(twofactor::begin(&state, &actor, service::now_ms()).await?))
}

#[derive(Deserialize)]
struct Code {
    code: String,
}

async fn totp_confirm(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiJson(b): ApiJson<Code>,
) -> ApiResult<Json<serde_json::Value>> {
    let codes = twofactor::confirm(&state, &actor, &b.code, service::now_ms()).await?;
    Ok(Json(json!({"recovery_codes": codes})))
}

async fn recovery_codes(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiJson(b): ApiJson<Code>,
) -> ApiResult<Json<serde_json::Value>> {
    let codes = twofactor::regenerate_recovery_codes(&state, &actor, &b.code, service::now_ms()).await?;
    Ok(Json(json!({"recovery_codes": codes})))
}

#[derive(Deserialize)]
struct Disable {
    password: String,
    code: String,
}

async fn disable(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiJson(b): ApiJson<Disable>,
) -> ApiResult<StatusCode> {
    twofactor::disable(&state, &actor, &b.password, &b.code, service::now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}
