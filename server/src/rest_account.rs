//! The public API v1 of account security: password reset by email, and
//! two-factor authentication (TOTP with recovery codes). Thin handlers over
//! `service::reset` and `service::twofactor`.

use crate::rest::{ApiError, ApiJson, Authed};
use crate::rest_sharing::Meta;
use app::service::{self, reset, twofactor, AppState};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{header, HeaderValue, StatusCode};
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
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let format = service::export::Format::parse(q.format.as_deref().unwrap_or("json"))?;
    let now = service::now_ms();
    let body = service::export::export(&state, &actor.user, Some(&actor.user.id), format, m.ip.as_deref(), now).await?;
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
async fn reset_request(State(state): State<AppState>, Meta(m): Meta, ApiJson(b): ApiJson<ResetRequest>) -> ApiResult<Response> {
    reset::request(&state, &b.email, &m, service::now_ms()).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "If the address has an account, a reset link is on its way."})))
        .into_response())
}

#[derive(Deserialize)]
struct ResetConfirm {
    token: String,
    password: String,
}

async fn reset_confirm(State(state): State<AppState>, Meta(m): Meta, ApiJson(b): ApiJson<ResetConfirm>) -> ApiResult<StatusCode> {
    reset::confirm(&state, &b.token, &b.password, &m, service::now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
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

async fn totp_confirm(State(state): State<AppState>, Authed(actor): Authed, ApiJson(b): ApiJson<Code>) -> ApiResult<Json<serde_json::Value>> {
    let codes = twofactor::confirm(&state, &actor, &b.code, service::now_ms()).await?;
    Ok(Json(json!({"recovery_codes": codes})))
}

async fn recovery_codes(State(state): State<AppState>, Authed(actor): Authed, ApiJson(b): ApiJson<Code>) -> ApiResult<Json<serde_json::Value>> {
    let codes = twofactor::regenerate_recovery_codes(&state, &actor, &b.code, service::now_ms()).await?;
    Ok(Json(json!({"recovery_codes": codes})))
}

#[derive(Deserialize)]
struct Disable {
    password: String,
    code: String,
}

async fn disable(State(state): State<AppState>, Authed(actor): Authed, ApiJson(b): ApiJson<Disable>) -> ApiResult<StatusCode> {
    twofactor::disable(&state, &actor, &b.password, &b.code, service::now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}
