//! The public API v1 of account security: password reset by email, and
//! two-factor authentication (TOTP with recovery codes). Thin handlers over
//! `service::reset` and `service::twofactor`.

use crate::rest::{ApiError, ApiJson, Authed};
use crate::rest_sharing::Meta;
use app::service::{self, reset, twofactor, AppState};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
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
