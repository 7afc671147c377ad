//! The public API v1 of the clinic workspace and of sharing: clinics,
//! members, patient records, link codes, upload requests; grants, care-partner
//! invitations and the access log. Thin handlers over `service::clinic` and
//! `service::sharing`; the policy decides every access.

use crate::rest::{ApiError, ApiJson, ApiQuery, Authed};
use app::service::clinic::{self, NewRecord, PatientQuery};
use app::service::sharing::{self, GrantPatch};
use app::service::{self, AppState, ClientMeta, ServiceError};
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;

type ApiResult<T> = Result<T, ApiError>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/clinics", post(create_clinic).get(list_clinics))
        .route("/clinics/{clinic_id}", patch(update_clinic))
        .route("/clinics/{clinic_id}/members", post(add_member).get(list_members))
        .route("/clinics/{clinic_id}/members/{member}", patch(set_member_role).delete(remove_member))
        .route("/clinics/{clinic_id}/patients", get(list_patients).post(create_record))
        .route("/clinics/{clinic_id}/patients/{record_id}", get(get_record))
        .route("/clinics/{clinic_id}/patients/{record_id}/link-code", post(link_code))
        .route("/clinics/{clinic_id}/patients/{record_id}/upload-request", post(upload_request))
        .route("/sharing/preview", post(preview))
        .route("/sharing/accept", post(accept))
        .route("/sharing/decline", post(decline))
        .route("/sharing/invites", post(invite).get(incoming))
        .route("/sharing/invites/accept", post(accept_invite_token))
        .route("/sharing/invites/{grant_id}/accept", post(accept_invite_id))
        .route("/sharing/grants", get(list_grants))
        .route("/sharing/grants/{grant_id}", patch(update_grant).delete(revoke_grant))
        .route("/sharing/access-log", get(access_log))
        .route("/sharing/pause", post(pause_all))
        .route("/sharing/resume", post(resume_all))
        .route("/sharing/paused", get(paused))
        .route("/clinics/{clinic_id}/share-code", post(rotate_share_code))
        .route("/clinics/{clinic_id}/patients/{record_id}/acknowledge", post(acknowledge))
        .route("/sharing/shared-with-me", get(shared_with_me))
        .route("/me/upload-requests", get(my_upload_requests))
        .route("/me/upload-requests/{id}/dismiss", post(dismiss_upload_request))
}

#[derive(Deserialize)]
struct ClinicPatch {
    require_2fa: Option<bool>,
}

/// An admin changes clinic settings (today: whether members need 2FA).
async fn update_clinic(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(clinic_id): Path<String>,
    ApiJson(b): ApiJson<ClinicPatch>,
) -> ApiResult<StatusCode> {
    if let Some(on) = b.require_2fa {
        clinic::set_require_2fa(&state, &actor, &clinic_id, on, now()).await?;
    } else {
        service::policy::require_clinic_admin(&state, &actor, &clinic_id).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Client facts (address, user agent) for rate limits and the audit log.
pub struct Meta(pub ClientMeta);

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let trust = parts.extensions.get::<app::api::ssr::TrustProxy>().map(|t| t.0);
        Ok(Meta(service::client_meta(&parts.headers, peer, trust)))
    }
}

fn now() -> i64 {
    service::now_ms()
}

fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

// --- clinics ---------------------------------------------------------------

#[derive(Deserialize)]
struct NameBody {
    name: String,
}

async fn create_clinic(
    State(s): State<AppState>,
    Authed(a): Authed,
    ApiJson(b): ApiJson<NameBody>,
) -> ApiResult<Response> {
    let c = clinic::create_clinic(&s, &a, &b.name, now()).await?;
    Ok(created(c))
}

async fn list_clinics(State(s): State<AppState>, Authed(a): Authed) -> ApiResult<Response> {
    Ok(Json(clinic::my_clinics(&s, &a).await?).into_response())
}

#[derive(Deserialize)]
struct MemberBody {
    email: String,
    #[serde(default)]
    role: Option<String>,
}

async fn add_member(
    State(s): State<AppState>,
    Authed(a): Authed,
    Path(clinic_id): Path<String>,
    ApiJson(b): ApiJson<MemberBody>,
) -> ApiResult<Response> {
    let m = clinic::add_member(&s, &a, &clinic_id, &b.email, b.role.as_deref().unwrap_or("clinician"), now()).await?;
    // The same answer for an unknown address, a patient and a clinician
    // account: an invitation (202). Only a member's role change is done at once.
    let status = if m.status == "invited" { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, Json(m)).into_response())
}

async fn list_members(
    State(s): State<AppState>,
    Authed(a): Authed,
    Path(clinic_id): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(clinic::list_members(&s, &a, &clinic_id).await?).into_response())
}

#[derive(Deserialize)]
struct RoleBody {
    role: String,
}

async fn set_member_role(
    State(s): State<AppState>,
    Authed(a): Authed,
    Path((clinic_id, member)): Path<(String, String)>,
    ApiJson(b): ApiJson<RoleBody>,
) -> ApiResult<StatusCode> {
    clinic::set_member_role(&s, &a, &clinic_id, &member, &b.role, now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_member(
    State(s): State<AppState>,
    Authed(a): Authed,
    Path((clinic_id, member)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    clinic::remove_member(&s, &a, &clinic_id, &member, now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The dashboard rows of one page, as an array; `X-Total-Count` holds the
/// number of rows matching before paging.
async fn list_patients(
    State(s): State<AppState>,
    Authed(a): Authed,
    Path(clinic_id): Path<String>,
    ApiQuery(q): ApiQuery<PatientQuery>,
) -> ApiResult<Response> {
    let page = clinic::dashboard(&s, &a, &clinic_id, &q, now()).await?;
    let mut res = Json(&page.rows).into_response();
    let h = res.headers_mut();
    for (k, v) in [
        ("x-total-count", page.total.to_string()),
        ("x-page", page.page.to_string()),
        ("x-per-page", page.per_page.to_string()),
    ] {
        if let Ok(v) = v.parse() {
            h.insert(k, v);
        }
    }
    Ok(res)
}

async fn create_record(
    State(s): State<AppState>,
    Authed(a): Authed,
    Path(clinic_id): Path<String>,
    ApiJson(b): ApiJson<NewRecord>,
) -> ApiResult<Response> {
    let id = clinic::create_record(&s, &a, &clinic_id, b, now()).await?;
    Ok(created(json!({"record_id": id})))
}

async fn get_record(
    State(s): State<AppState>,
    Authed(a): Authed,
    Path((clinic_id, record_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    Ok(Json(clinic::record_row(&s, &a, &clinic_id, &record_id, now()).await?).into_response())
}

#[derive(Deserialize, Default)]
struct LinkCodeBody {
    #[serde(default)]
    email: Option<String>,
    /// Also text the code to this number (E.164), through the SMS gateway.
    #[serde(default)]
    phone: Option<String>,
}

async fn link_code(
    State(s): State<AppState>,
    Authed(a): Authed,
    Path((clinic_id, record_id)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> ApiResult<Response> {
    // The body is optional: `{}` or nothing makes a code; `{"email"}` also mails it.
    let b: LinkCodeBody = match body {
        Some(Json(v)) => serde_json::from_value(v)
            .map_err(|e| ApiError(ServiceError::bad("email", format!("The request body is not valid: {e}"))))?,
        None => LinkCodeBody::default(),
    };
    let c =
        clinic::create_link_code(&s, &a, &clinic_id, &record_id, b.email.as_deref(), b.phone.as_deref(), now()).await?;
    Ok(created(c))
}

async fn upload_request(
    State(s): State<AppState>,
    Authed(a): Authed,
    Path((clinic_id, record_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = clinic::request_upload(&s, &a, &clinic_id, &record_id, now()).await?;
    Ok(created(json!({"id": id})))
}

// --- sharing ---------------------------------------------------------------

#[derive(Deserialize)]
struct CodeBody {
    code: String,
}

async fn preview(
    State(s): State<AppState>,
    Authed(a): Authed,
    Meta(m): Meta,
    ApiJson(b): ApiJson<CodeBody>,
) -> ApiResult<Response> {
    Ok(Json(sharing::preview(&s, &a, &m, &b.code, now()).await?).into_response())
}

#[derive(Deserialize)]
struct AcceptBody {
    code: String,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    expires_at: Option<String>,
}

async fn accept(
    State(s): State<AppState>,
    Authed(a): Authed,
    Meta(m): Meta,
    ApiJson(b): ApiJson<AcceptBody>,
) -> ApiResult<Response> {
    let scopes =
        b.scopes.ok_or(ApiError(ServiceError::bad("scopes", "Choose the kinds of data to share (scopes).")))?;
    let id = sharing::accept(&s, &a, &m, &b.code, &scopes, b.expires_at.as_deref(), now()).await?;
    Ok(created(json!({"grant_id": id})))
}

/// "Pause all sharing": every grant stops giving access until resumed.
async fn pause_all(State(s): State<AppState>, Authed(a): Authed, Meta(m): Meta) -> ApiResult<Json<Value>> {
    let n = sharing::pause_all(&s, &a, &m, now()).await?;
    Ok(Json(json!({"paused": true, "grants": n})))
}

async fn resume_all(State(s): State<AppState>, Authed(a): Authed, Meta(m): Meta) -> ApiResult<Json<Value>> {
    let n = sharing::resume_all(&s, &a, &m, now()).await?;
    Ok(Json(json!({"paused": false, "grants": n})))
}

async fn paused(State(s): State<AppState>, Authed(a): Authed) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"paused": sharing::sharing_paused(&s, &a).await?})))
}

/// An admin replaces the clinic's share code.
async fn rotate_share_code(
    State(s): State<AppState>,
    Authed(a): Authed,
    Path(clinic_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let code = clinic::rotate_share_code(&s, &a, &clinic_id, now()).await?;
    Ok(Json(json!({"share_code": code})))
}

/// A clinician has seen a patient who shared on their own initiative.
async fn acknowledge(
    State(s): State<AppState>,
    Authed(a): Authed,
    Path((clinic_id, record_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    clinic::acknowledge_patient(&s, &a, &clinic_id, &record_id, now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn decline(
    State(s): State<AppState>,
    Authed(a): Authed,
    Meta(m): Meta,
    ApiJson(b): ApiJson<CodeBody>,
) -> ApiResult<StatusCode> {
    sharing::decline(&s, &a, &m, &b.code, now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct InviteBody {
    email: String,
    scopes: Vec<String>,
    #[serde(default)]
    expires_at: Option<String>,
    /// Also text the invitation to this number (E.164).
    #[serde(default)]
    phone: Option<String>,
    /// Sharing with a provider: their name and clinic (both, or neither).
    #[serde(default)]
    provider_name: Option<String>,
    #[serde(default)]
    provider_clinic: Option<String>,
}

async fn invite(State(s): State<AppState>, Authed(a): Authed, ApiJson(b): ApiJson<InviteBody>) -> ApiResult<Response> {
    let provider = match (b.provider_name, b.provider_clinic) {
        (None, None) => None,
        (name, clinic) => {
            Some(sharing::Provider { name: name.unwrap_or_default(), clinic: clinic.unwrap_or_default() })
        }
    };
    let g =
        sharing::invite_with(&s, &a, &b.email, &b.scopes, b.expires_at.as_deref(), b.phone.as_deref(), provider, now())
            .await?;
    Ok(created(json!({"grant_id": g.id, "status": g.status, "grant": g})))
}

async fn incoming(State(s): State<AppState>, Authed(a): Authed) -> ApiResult<Response> {
    Ok(Json(sharing::incoming(&s, &a, now()).await?).into_response())
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

async fn accept_invite_token(
    State(s): State<AppState>,
    Authed(a): Authed,
    Meta(m): Meta,
    ApiJson(b): ApiJson<TokenBody>,
) -> ApiResult<Response> {
    let id = sharing::accept_invite(&s, &a, &m, None, Some(&b.token), now()).await?;
    Ok(Json(json!({"grant_id": id})).into_response())
}

async fn accept_invite_id(
    State(s): State<AppState>,
    Authed(a): Authed,
    Meta(m): Meta,
    Path(grant_id): Path<String>,
) -> ApiResult<Response> {
    let id = sharing::accept_invite(&s, &a, &m, Some(&grant_id), None, now()).await?;
    Ok(Json(json!({"grant_id": id})).into_response())
}

async fn list_grants(State(s): State<AppState>, Authed(a): Authed) -> ApiResult<Response> {
    Ok(Json(sharing::list_grants(&s, &a, now()).await?).into_response())
}

/// `{scopes?, expires_at?}`: a key left out is unchanged; `expires_at: null`
/// removes the end date.
async fn update_grant(
    State(s): State<AppState>,
    Authed(a): Authed,
    Path(grant_id): Path<String>,
    ApiJson(b): ApiJson<Value>,
) -> ApiResult<Response> {
    let obj = b.as_object().ok_or(ApiError(ServiceError::bad("body", "Send a JSON object.")))?;
    let mut p = GrantPatch::default();
    if let Some(v) = obj.get("scopes") {
        let list: Vec<String> = serde_json::from_value(v.clone())
            .map_err(|_| ApiError(ServiceError::bad("scopes", "scopes must be an array of strings.")))?;
        p.scopes = Some(list);
    }
    if let Some(v) = obj.get("expires_at") {
        p.expires_at = Some(match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            _ => return Err(ApiError(ServiceError::bad("expires_at", "expires_at must be a string or null."))),
        });
    }
    if p.scopes.is_none() && p.expires_at.is_none() {
        return Err(ApiError(ServiceError::bad("body", "Nothing to change: send scopes and/or expires_at.")));
    }
    Ok(Json(sharing::update_grant(&s, &a, &grant_id, p, now()).await?).into_response())
}

async fn revoke_grant(
    State(s): State<AppState>,
    Authed(a): Authed,
    Path(grant_id): Path<String>,
) -> ApiResult<StatusCode> {
    sharing::revoke_grant(&s, &a, &grant_id, now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct LimitQuery {
    #[serde(default)]
    limit: Option<u64>,
}

async fn access_log(
    State(s): State<AppState>,
    Authed(a): Authed,
    ApiQuery(q): ApiQuery<LimitQuery>,
) -> ApiResult<Response> {
    Ok(Json(sharing::access_log(&s, &a, q.limit.unwrap_or(200)).await?).into_response())
}

async fn shared_with_me(State(s): State<AppState>, Authed(a): Authed) -> ApiResult<Response> {
    Ok(Json(sharing::shared_with_me(&s, &a, now()).await?).into_response())
}

async fn my_upload_requests(State(s): State<AppState>, Authed(a): Authed) -> ApiResult<Response> {
    Ok(Json(sharing::my_upload_requests(&s, &a).await?).into_response())
}

async fn dismiss_upload_request(
    State(s): State<AppState>,
    Authed(a): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    sharing::dismiss_upload_request(&s, &a, &id, now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
