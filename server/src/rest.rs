//! The public JSON API v1 (`/api/v1/…`): thin handlers over the service
//! layer. Errors are `{"error": {"code", "message"}}` with the right status.

use app::model::MePatch;
use app::service::{self, Actor, AppState, ServiceError, auth, me, tokens};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/health", get(health))
        .route("/auth/signup", post(signup))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/logout-all", post(logout_all))
        .route("/me", get(get_me).patch(patch_me).delete(crate::rest_account::delete_me))
        .route("/me/sessions", get(list_sessions))
        .route("/me/sessions/{id}", delete(end_session))
        .route("/me/logins", get(login_history))
        .route("/tokens", post(create_token).get(list_tokens))
        .route("/tokens/{id}", delete(delete_token))
        .route(
            "/uploads",
            post(create_upload).layer(axum::extract::DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)).get(list_uploads),
        )
        .route("/uploads/{id}", delete(delete_upload))
        .route("/devices", get(list_devices))
        .route("/patients/{patient_id}/report", get(patient_report))
        .route("/patients/{patient_id}/glucose", get(patient_glucose))
        .route("/patients/{patient_id}/report.pdf", get(patient_report_pdf))
        .route("/patients/{patient_id}/protected-report", post(patient_report_pdf_protected))
        .merge(crate::rest_sharing::routes())
        .merge(crate::rest_account::routes())
        .merge(crate::nightscout::v1_routes())
        .layer(axum::extract::DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .fallback(not_found)
        .with_state(state)
}

/// The largest body a JSON endpoint reads (log-in, sign-up, settings, …:
/// the largest, a passkey's attestation, is a few KiB). Only `POST
/// /uploads` takes more, and the Nightscout API has its own limit
/// (`nightscout::INFLATED_LIMIT`).
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// The largest upload body: the largest import file and a margin for the
/// multipart framing.
pub const UPLOAD_BODY_LIMIT: usize = app::service::import::MAX_FILE_BYTES + 1024 * 1024;

/// The OpenAPI 3.1 document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// A service error as an HTTP answer.
pub struct ApiError(pub ServiceError);

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        if let ServiceError::Internal(cause) = &e {
            tracing::error!(%cause, "request failed");
        }
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = json!({"error": {"code": e.code(), "message": e.to_string()}});
        if let ServiceError::BadInput { field: Some(f), .. } = &e {
            body["error"]["field"] = json!(f);
        }
        let mut res = (status, Json(body)).into_response();
        if let ServiceError::RateLimited { retry_after_s } = e
            && let Ok(v) = retry_after_s.to_string().parse()
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// JSON body whose rejections become our 400 error shape.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError(ServiceError::TooLarge { limit_bytes: JSON_BODY_LIMIT as u64 }))
            }
            Err(rej) => Err(ApiError(ServiceError::BadInput {
                field: None,
                message: format!("The request body is not the JSON this endpoint takes: {}", rej.body_text()),
            })),
        }
    }
}

/// Query parameters whose rejections become our 400 error shape (axum's own
/// answer is `text/plain`, which the API does not document).
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rej) => Err(ApiError(ServiceError::BadInput {
                field: None,
                message: format!("The query string is not what this endpoint takes: {}", rej.body_text()),
            })),
        }
    }
}

/// The authenticated caller (session cookie or bearer token); 401 otherwise.
pub struct Authed(pub Actor);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let actor = service::authenticate(state, &parts.headers, service::now_ms())
            .await?
            .ok_or(ApiError(ServiceError::Unauthorized))?;
        if let service::AuthVia::Token { scopes, .. } = &actor.via
            && !scopes.full
        {
            let path = parts.extensions.get::<axum::extract::MatchedPath>().map(|m| m.as_str()).unwrap_or("");
            if !scoped_token_may_call(scopes, &parts.method, path) {
                return Err(ApiError(ServiceError::Forbidden));
            }
        }
        Ok(Authed(actor))
    }
}

/// The endpoints a token without `full` scope may call at all; the policy
/// then checks its scopes against the data (a `read:glucose` token reads no
/// insulin, an `upload` token reads nothing). Everything else is refused.
/// docs/DECISIONS.md has the whole table (server/tests/scopes.rs checks it).
fn scoped_token_may_call(scopes: &service::tokens::TokenScopes, method: &http::Method, path: &str) -> bool {
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    let reads = scopes.read_glucose || scopes.read_all;
    match *method {
        http::Method::GET | http::Method::HEAD => match path {
            // Who the token belongs to, and the account's upload history.
            "/me" | "/uploads" => true,
            // Whose data the account may see is itself something read: an
            // `upload` token (a phone's uploader) does not list it (issue 19).
            "/sharing/shared-with-me"
            | "/patients/{patient_id}/report"
            | "/patients/{patient_id}/glucose"
            | "/patients/{patient_id}/report.pdf" => reads,
            _ => false,
        },
        http::Method::POST => match path {
            // Refused before the body is read.
            "/uploads" => scopes.upload,
            "/patients/{patient_id}/protected-report" => reads,
            _ => false,
        },
        _ => false,
    }
}

fn meta(headers: &HeaderMap, peer: Option<SocketAddr>, trusted_hops: Option<usize>) -> service::ClientMeta {
    service::client_meta(headers, peer, trusted_hops)
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn health(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    use sea_orm::ConnectionTrait;
    state.db.execute_unprepared("SELECT 1").await.map_err(ServiceError::from)?;
    Ok(Json(json!({"status": "ok"})))
}

async fn not_found() -> ApiError {
    ApiError(ServiceError::NotFound)
}

#[derive(Deserialize)]
struct SignupBody {
    email: String,
    password: String,
    display_name: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    language: Option<String>,
}

async fn signup(
    State(state): State<AppState>,
    crate::rest_sharing::Meta(m): crate::rest_sharing::Meta,
    ApiJson(b): ApiJson<SignupBody>,
) -> ApiResult<Response> {
    let email = auth::signup(
        &state,
        auth::SignupInput {
            email: b.email,
            password: b.password,
            display_name: b.display_name,
            role: b.role,
            language: b.language,
        },
        &m,
        service::now_ms(),
    )
    .await?;
    // The same answer whether or not the address already had an account.
    Ok((
        StatusCode::CREATED,
        Json(json!({"email": email.as_str(), "message": "If this address can be used, the account is ready. Log in to continue."})),
    )
        .into_response())
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
    #[serde(default)]
    totp: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    req: Request,
) -> ApiResult<Response> {
    let trust = req.extensions().get::<app::api::ssr::TrustProxy>().map(|t| t.0);
    let ApiJson(b) = ApiJson::<LoginBody>::from_request(req, &()).await?;
    let m = meta(&headers, Some(peer), trust);
    let now = service::now_ms();
    let session = auth::login(&state, &b.email, &b.password, b.totp.as_deref(), &m, now).await?;
    signed_in(&state, &session).await
}

/// The answer to a successful sign-in (password or passkey): the user, and
/// the session cookie.
pub async fn signed_in(state: &AppState, session: &auth::NewSession) -> ApiResult<Response> {
    let body = me::to_me(&session.user, service::policy::own_patient(state, &session.user.id).await?.map(|p| p.id));
    let mut res = Json(body).into_response();
    if let Ok(v) = auth::session_cookie(state, &session.token).parse() {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    if let Some(Ok(v)) = session.device_cookie.as_ref().map(|c| c.parse()) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = auth::session_token_from_cookies(&headers, state.config.secure_cookies) {
        auth::logout(&state, &store::sha256_hex(token.as_bytes())).await?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = auth::clear_cookie(&state).parse() {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

async fn logout_all(State(state): State<AppState>, Authed(actor): Authed) -> ApiResult<Response> {
    auth::logout_all(&state, &actor.user.id, service::now_ms()).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = auth::clear_cookie(&state).parse() {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

async fn get_me(State(state): State<AppState>, Authed(actor): Authed) -> ApiResult<Json<app::model::Me>> {
    Ok(Json(me::get(&state, &actor).await?))
}

async fn patch_me(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiJson(p): ApiJson<MePatch>,
) -> ApiResult<Json<app::model::Me>> {
    Ok(Json(me::update(&state, &actor, p, service::now_ms()).await?))
}

async fn end_session(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth::end_session(&state, &actor.user.id, &id, service::now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn login_history(
    State(state): State<AppState>,
    Authed(actor): Authed,
) -> ApiResult<Json<Vec<app::model::LoginEventInfo>>> {
    if !actor.full_access() {
        return Err(ApiError(ServiceError::Forbidden));
    }
    Ok(Json(service::logins::history(&state, &actor, 200).await?))
}

async fn list_sessions(
    State(state): State<AppState>,
    Authed(actor): Authed,
) -> ApiResult<Json<Vec<app::model::SessionInfo>>> {
    let current = match &actor.via {
        service::AuthVia::Session(h) => Some(h.clone()),
        service::AuthVia::Token { .. } => None,
    };
    Ok(Json(auth::list_sessions(&state, &actor.user.id, current.as_deref()).await?))
}

#[derive(Deserialize)]
struct TokenBody {
    name: String,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    expires_at: Option<String>,
}

async fn create_token(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiJson(b): ApiJson<TokenBody>,
) -> ApiResult<Response> {
    let t = tokens::create(&state, &actor, &b.name, b.scopes.as_deref(), b.expires_at.as_deref(), service::now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(t)).into_response())
}

async fn list_tokens(
    State(state): State<AppState>,
    Authed(actor): Authed,
) -> ApiResult<Json<Vec<app::model::TokenInfo>>> {
    Ok(Json(tokens::list(&state, &actor, service::now_ms()).await?))
}

async fn delete_token(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    tokens::revoke(&state, &actor, &id, service::now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn own_patient_id(state: &AppState, actor: &Actor) -> ApiResult<String> {
    service::policy::own_patient(state, &actor.user.id).await?.map(|p| p.id).ok_or(ApiError(ServiceError::Forbidden))
}

/// `?patient_id=…`: upload to another data space the caller may upload to
/// (a clinic's custodial record); default: the caller's own.
#[derive(Deserialize)]
struct Target {
    #[serde(default)]
    patient_id: Option<String>,
}

async fn target_patient(state: &AppState, actor: &Actor, t: &Target) -> ApiResult<String> {
    match t.patient_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(p) => Ok(p.to_string()),
        None => own_patient_id(state, actor).await,
    }
}

async fn create_upload(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiQuery(target): ApiQuery<Target>,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    use axum::extract::FromRequest;
    let patient_id = target_patient(&state, &actor, &target).await?;
    // Whether the caller may upload here is decided before the body is read.
    service::policy::require(&state, &actor, service::policy::Action::Upload, &patient_id).await?;
    let too_large = || ServiceError::TooLarge { limit_bytes: app::service::import::MAX_FILE_BYTES as u64 };
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"));
    let (name, bytes) = if is_json {
        // Raw device pages (a MiniMed pump dump) posted by the browser's device upload.
        let body = axum::body::Bytes::from_request(req, &state).await.map_err(|e| {
            ApiError(if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ServiceError::BadInput {
                    field: None,
                    message: format!("The upload could not be read: {}", e.body_text()),
                }
            })
        })?;
        if !body.trim_ascii_start().starts_with(b"{") || !body.windows(15).any(|w| w == b"\"minimed_pages\"") {
            return Err(ApiError(ServiceError::bad(
                "format",
                "A JSON upload is raw device pages: {\"format\": \"minimed_pages\", \"device\", \"clock\", \"history_pages\", \"glucose_pages\"}. Send export files as a multipart field named \"file\".",
            )));
        }
        ("device-upload.json".to_string(), body.to_vec())
    } else {
        let mut multipart = axum::extract::Multipart::from_request(req, &state).await.map_err(|e| {
            ApiError(ServiceError::BadInput {
                field: Some("file"),
                message: format!("The upload could not be read: {}", e.body_text()),
            })
        })?;
        let mut file: Option<(String, Vec<u8>)> = None;
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    let status = e.status();
                    return Err(ApiError(if status == StatusCode::PAYLOAD_TOO_LARGE {
                        too_large()
                    } else {
                        ServiceError::BadInput {
                            field: Some("file"),
                            message: format!("The upload could not be read: {}", e.body_text()),
                        }
                    }));
                }
            };
            if field.name() == Some("file") {
                let name = field.file_name().unwrap_or("upload").to_string();
                let bytes = field.bytes().await.map_err(|e| {
                    ApiError(if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        too_large()
                    } else {
                        ServiceError::BadInput {
                            field: Some("file"),
                            message: format!("The upload could not be read: {}", e.body_text()),
                        }
                    })
                })?;
                file = Some((name, bytes.to_vec()));
            }
        }
        file.ok_or(ApiError(ServiceError::bad("file", "Send the export as a multipart field named \"file\".")))?
    };
    let summary =
        app::service::import::import_file(&state, Some(&actor), &patient_id, &name, &bytes, service::now_ms()).await?;
    Ok((StatusCode::CREATED, Json(summary)).into_response())
}

async fn list_devices(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiQuery(target): ApiQuery<Target>,
) -> ApiResult<Response> {
    let patient_id = target_patient(&state, &actor, &target).await?;
    Ok(Json(app::service::import::list_devices(&state, &actor, &patient_id).await?).into_response())
}

async fn list_uploads(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiQuery(target): ApiQuery<Target>,
) -> ApiResult<Response> {
    let patient_id = target_patient(&state, &actor, &target).await?;
    Ok(Json(app::service::import::list_uploads(&state, &actor, &patient_id).await?).into_response())
}

async fn delete_upload(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app::service::import::delete_upload(&state, &actor, &id, service::now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Window {
    from: Option<String>,
    to: Option<String>,
}

fn window(w: &Window) -> Result<(chrono::NaiveDate, chrono::NaiveDate), ServiceError> {
    use app::service::report::parse_date;
    let from =
        parse_date("from", w.from.as_deref().ok_or(ServiceError::bad("from", "from (YYYY-MM-DD) is required"))?)?;
    let to = parse_date("to", w.to.as_deref().ok_or(ServiceError::bad("to", "to (YYYY-MM-DD) is required"))?)?;
    Ok((from, to))
}

async fn patient_report(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(patient_id): Path<String>,
    ApiQuery(w): ApiQuery<Window>,
) -> ApiResult<Response> {
    let (from, to) = window(&w)?;
    let r = app::service::report::glucose(&state, Some(&actor), &patient_id, from, to).await?;
    Ok(Json(r).into_response())
}

async fn patient_glucose(
    State(state): State<AppState>,
    Authed(actor): Authed,
    Path(patient_id): Path<String>,
    ApiQuery(w): ApiQuery<Window>,
) -> ApiResult<Response> {
    let (from, to) = window(&w)?;
    app::service::report::check_window(from, to)?;
    service::policy::require(&state, &actor, service::policy::Action::ReadGlucose, &patient_id).await?;
    use sea_orm::EntityTrait;
    let patient = store::entity::patients::Entity::find_by_id(patient_id.clone())
        .one(&state.db)
        .await
        .map_err(ServiceError::from)?
        .ok_or(ApiError(ServiceError::NotFound))?;
    let zone = therapy::time::parse_zone(&patient.time_zone).unwrap_or(chrono_tz::UTC);
    let (a, b) = app::service::report::window_ms(zone, from, to);
    let readings = app::service::dashboard::cgm_readings(&state, &patient_id, a, b).await?;
    let out: Vec<serde_json::Value> = readings
        .iter()
        .map(|r| json!({"time": r.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "value_mg_dl": r.value_mg_dl}))
        .collect();
    Ok(Json(out).into_response())
}

#[derive(Deserialize)]
struct OptWindow {
    from: Option<String>,
    to: Option<String>,
}

/// The report as PDF (the overview and one page per day, at most 31), in the
/// caller's glucose unit. Without `from`/`to`: the 14 days ending on the
/// newest data.
/// The report PDF of a window (`None` ends: the default window): its file name and bytes.
/// Written in the viewer's language: the one their account chose, else the
/// request's (`diabase_lang` cookie, `Accept-Language`), else English.
async fn report_pdf(
    state: &AppState,
    actor: &Actor,
    headers: &http::HeaderMap,
    patient_id: &str,
    w: &OptWindow,
) -> ApiResult<(String, Vec<u8>)> {
    use app::service::report::{bundle, parse_date};
    let from = w.from.as_deref().filter(|s| !s.trim().is_empty()).map(|s| parse_date("from", s)).transpose()?;
    let to = w.to.as_deref().filter(|s| !s.trim().is_empty()).map(|s| parse_date("to", s)).transpose()?;
    let b = bundle(state, Some(actor), patient_id, from, to, service::now_ms()).await?;
    let name = format!("diabase-report-{}-{}.pdf", b.overview.meta.from, b.overview.meta.to);
    let lang = actor
        .user
        .language
        .as_deref()
        .and_then(app::i18n::Lang::parse)
        .unwrap_or_else(|| app::i18n::Lang::of_request(headers));
    let bytes = tokio::task::spawn_blocking(move || crate::pdf::render_report_pdf_in(&b, lang))
        .await
        .map_err(|e| ServiceError::Internal(format!("pdf task: {e}")))?;
    Ok((name, bytes))
}

/// The report PDF for sending outside Diabase: encrypted (AES-256) under a
/// password Diabase generates and returns this once, with the file:
/// `{password, file_name, pdf_base64}`. Nothing is stored.
async fn patient_report_pdf_protected(
    State(state): State<AppState>,
    headers: http::HeaderMap,
    Authed(actor): Authed,
    Path(patient_id): Path<String>,
    ApiQuery(w): ApiQuery<OptWindow>,
) -> ApiResult<Response> {
    use base64::Engine;
    let (name, bytes) = report_pdf(&state, &actor, &headers, &patient_id, &w).await?;
    let password = crate::pdf_protect::generate_password();
    let pw = password.clone();
    let sealed = tokio::task::spawn_blocking(move || crate::pdf_protect::protect(&bytes, &pw))
        .await
        .map_err(|e| ServiceError::Internal(format!("pdf task: {e}")))?
        .map_err(|e| ServiceError::Internal(format!("pdf encryption: {e}")))?;
    let file_name = name.replace(".pdf", "-protected.pdf");
    let mut res = Json(json!({
        "password": password,
        "file_name": file_name,
        "pdf_base64": base64::engine::general_purpose::STANDARD.encode(&sealed),
    }))
    .into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    Ok(res)
}

async fn patient_report_pdf(
    State(state): State<AppState>,
    headers: http::HeaderMap,
    Authed(actor): Authed,
    Path(patient_id): Path<String>,
    ApiQuery(w): ApiQuery<OptWindow>,
) -> ApiResult<Response> {
    let (name, bytes) = report_pdf(&state, &actor, &headers, &patient_id, &w).await?;
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/pdf"));
    if let Ok(v) = http::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}
