//! The Nightscout-compatible API over HTTP: thin handlers over
//! `app::service::nightscout`.
//!
//! Served at the root (`/api/v1/entries`, … merged into the REST v1 router;
//! `/api/v2/…`, `/api/v3/…`), where the credentials choose the site, and under
//! `/ns/{site}/api/…` for clients that keep a path in their URL (the
//! credentials must then open that site). Request bodies may be gzip.
//! Answers and errors take Nightscout's shapes (`{"status", "message"}`);
//! `/api/v1/me/nightscout` is ours and answers in ours.

use crate::rest::{ApiError, Authed};
use app::service::nightscout::{self as ns, Collection, Credentials, Doc, NsAuth, Op, Patched};
use app::service::{self, AppState, ServiceError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, RawPathParams, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use tower_http::decompression::RequestDecompressionLayer;

type Pairs = Query<Vec<(String, String)>>;
type Params = Path<HashMap<String, String>>;
type Body = Result<Bytes, BytesRejection>;

/// `/api/v2/…`, `/api/v3/…` and everything under `/ns/{site}/api/…`.
pub fn routes(state: AppState) -> Router {
    Router::new()
        .nest("/ns/{site}/api/v1", ns_v1())
        .nest("/ns/{site}/api/v2", v2())
        .nest("/ns/{site}/api/v3", v3())
        .nest("/api/v2", v2())
        .nest("/api/v3", v3())
        .with_state(state)
}

/// The root `/api/v1/…` Nightscout paths and `/api/v1/me/nightscout`,
/// relative to `/api/v1` (merged into `rest::routes`).
pub fn v1_routes() -> Router<AppState> {
    ns_v1().route("/me/nightscout", get(site_info).post(create_site))
}

fn ns_v1() -> Router<AppState> {
    let entries = || get(entries_list).post(entries_post).delete(entries_delete);
    let treatments = || get(treatments_list).post(treatments_post).put(treatments_put).delete(treatments_delete);
    let devicestatus = || get(devicestatus_list).post(devicestatus_post).delete(devicestatus_delete);
    let profile = || get(profile_list).post(profile_post).put(profile_put);
    Router::new()
        .route("/entries", entries())
        .route("/entries.json", entries())
        .route("/entries/{spec}", get(entries_spec))
        .route("/treatments", treatments())
        .route("/treatments.json", treatments())
        .route("/treatments/{id}", put(treatment_put_id).delete(treatment_delete_id))
        .route("/devicestatus", devicestatus())
        .route("/devicestatus.json", devicestatus())
        .route("/profile", profile())
        .route("/profile.json", profile())
        .route("/profile/current", get(profile_current))
        .route("/profile/current.json", get(profile_current))
        .route("/profiles", get(profile_list))
        .route("/profiles.json", get(profile_list))
        .route("/status", get(status))
        .route("/status.json", get(status))
        .route("/verifyauth", get(verifyauth))
        .route("/experiments/test", get(experiments_test))
        .layer(RequestDecompressionLayer::new())
        .layer(DefaultBodyLimit::max(INFLATED_LIMIT))
        .layer(cors())
}

/// Nightscout readers run in browsers on other origins (watch faces, web
/// followers): any origin may call, without cookies. These endpoints take
/// only header or query credentials, never the session cookie, so an
/// open CORS policy exposes nothing a request could not already carry.
fn cors() -> tower_http::cors::CorsLayer {
    use tower_http::cors::{Any, CorsLayer};
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        .allow_headers(Any)
        .expose_headers(Any)
        .max_age(std::time::Duration::from_secs(600))
}

fn v2() -> Router<AppState> {
    Router::new().route("/authorization/request/{token}", get(authorization_request)).layer(cors())
}

fn v3() -> Router<AppState> {
    Router::new()
        .route("/status", get(v3_status))
        .route("/version", get(v3_version))
        .route("/lastModified", get(v3_last_modified))
        .route("/{collection}", get(v3_search).post(v3_create))
        .route("/{collection}/history", get(v3_history))
        .route("/{collection}/history/{last_modified}", get(v3_history))
        .route("/{collection}/{identifier}", get(v3_read).put(v3_update).patch(v3_patch).delete(v3_delete))
        .layer(RequestDecompressionLayer::new())
        .layer(DefaultBodyLimit::max(INFLATED_LIMIT))
        .layer(cors())
}

// ---------------------------------------------------------------------------------------------
// Errors and authentication

/// An error in Nightscout's shape: `{"status", "message"[, "description"]}`.
pub struct NsError {
    status: StatusCode,
    body: Value,
}

impl NsError {
    fn new(status: StatusCode, message: &str) -> NsError {
        NsError { status, body: json!({"status": status.as_u16(), "message": message}) }
    }

    /// API v1 and v2: what Nightscout answers a missing or wrong secret.
    fn unauthorized() -> NsError {
        NsError {
            status: StatusCode::UNAUTHORIZED,
            body: json!({"status": 401, "message": "Unauthorized", "description": "Invalid/Missing"}),
        }
    }

    fn unauthorized_v3() -> NsError {
        NsError::new(StatusCode::UNAUTHORIZED, "Missing or bad access token or JWT")
    }
}

impl From<ServiceError> for NsError {
    fn from(e: ServiceError) -> NsError {
        if let ServiceError::Internal(cause) = &e {
            tracing::error!(%cause, "nightscout request failed");
            return NsError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error");
        }
        NsError::new(StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST), &e.to_string())
    }
}

impl IntoResponse for NsError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

type NsResult = Result<Response, NsError>;

/// The site a request's credentials open, if any: the `api-secret` header
/// (or `secret` parameter), the `token` parameter, or a bearer JWT; under
/// `/ns/{site}/` it must be that site.
async fn resolve(parts: &mut Parts, state: &AppState) -> Result<Option<NsAuth>, NsError> {
    let slug = RawPathParams::from_request_parts(parts, state)
        .await
        .ok()
        .and_then(|p| p.iter().find(|(k, _)| *k == "site").map(|(_, v)| v.to_string()));
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let query = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri).map(|q| q.0).unwrap_or_default();
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let bearer = header(header::AUTHORIZATION.as_str()).and_then(|v| {
        let v = v.trim();
        v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).map(|s| s.trim().to_string())
    });
    let creds =
        Credentials { api_secret: header("api-secret").or_else(|| param("secret")), token: param("token"), bearer };
    let presented = [&creds.api_secret, &creds.token, &creds.bearer]
        .iter()
        .any(|c| c.as_deref().is_some_and(|v| !v.trim().is_empty()));
    if !presented {
        return Ok(None);
    }
    let bucket = fail_bucket(parts);
    let now = service::now_ms();
    charge(state, &bucket, now).await?;
    let auth = ns::authenticate(state, slug.as_deref(), &creds, now).await?;
    if auth.is_some() {
        refund(state, &bucket, now).await?;
    }
    Ok(auth)
}

/// The failed-credentials bucket of a request's client address.
fn fail_bucket(parts: &Parts) -> String {
    let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0);
    let trust = parts.extensions.get::<app::api::ssr::TrustProxy>().map(|t| t.0);
    let ip = service::client_meta(&parts.headers, peer, trust).ip.unwrap_or_else(|| "unknown".into());
    format!("ns:fail:{ip}")
}

/// Failed credentials are counted per client address: past the limit, a
/// window's further attempts are refused unchecked (429). The attempt is
/// charged before the credential is checked (one conditional UPDATE), so
/// that concurrent guesses cannot all pass a check made before any of them
/// is counted; a credential that proves right is refunded.
async fn charge(state: &AppState, bucket: &str, now: i64) -> Result<(), NsError> {
    match service::ratelimit::hit(&state.db, bucket, state.config.ns_failed_auth_limit, FAILED_AUTH_WINDOW_MS, now)
        .await
    {
        Ok(()) => Ok(()),
        Err(ServiceError::RateLimited { retry_after_s }) => Err(NsError {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: json!({"status": 429, "message": "Too many failed attempts", "description": format!("Try again in {retry_after_s} seconds")}),
        }),
        Err(e) => Err(e.into()),
    }
}

async fn refund(state: &AppState, bucket: &str, now: i64) -> Result<(), NsError> {
    Ok(service::ratelimit::refund(&state.db, bucket, FAILED_AUTH_WINDOW_MS, now).await?)
}

pub use ns::{FAILED_AUTH_LIMIT, FAILED_AUTH_WINDOW_MS};

/// Reading methods: all a read-only token may use.
fn reads(m: &http::Method) -> bool {
    matches!(*m, http::Method::GET | http::Method::HEAD | http::Method::OPTIONS)
}

/// A request authenticated to a site (API v1 and v2 401 otherwise).
pub struct V1(pub NsAuth);

impl FromRequestParts<AppState> for V1 {
    type Rejection = NsError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let a = resolve(parts, state).await?.ok_or_else(NsError::unauthorized)?;
        if a.read_only && !reads(&parts.method) {
            return Err(NsError::unauthorized());
        }
        Ok(V1(a))
    }
}

/// A request authenticated to a site (API v3 401 otherwise).
pub struct V3(pub NsAuth);

impl FromRequestParts<AppState> for V3 {
    type Rejection = NsError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let a = resolve(parts, state).await?.ok_or_else(NsError::unauthorized_v3)?;
        if a.read_only && !reads(&parts.method) {
            return Err(NsError::new(StatusCode::FORBIDDEN, "This token may only read."));
        }
        Ok(V3(a))
    }
}

/// A request that may or may not be authenticated.
pub struct MaybeNs(pub Option<NsAuth>);

impl FromRequestParts<AppState> for MaybeNs {
    type Rejection = NsError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(MaybeNs(resolve(parts, state).await?))
    }
}

/// A body: one document or an array of at most `ns::MAX_BATCH`, read and
/// parsed within the limits of [`bounded`] (413 past them).
fn json_body(body: Body) -> Result<bounded::Input, NsError> {
    let too_large = || NsError::new(StatusCode::PAYLOAD_TOO_LARGE, "The request body is too large.");
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            NsError::new(StatusCode::BAD_REQUEST, "Bad or missing request body")
        }
    })?;
    bounded::parse(&bytes, ns::MAX_BATCH).map_err(|r| match r {
        bounded::Refused::Malformed => NsError::new(StatusCode::BAD_REQUEST, "Bad or missing request body"),
        bounded::Refused::TooLarge => too_large(),
        bounded::Refused::TooManyDocuments => {
            NsError::new(StatusCode::PAYLOAD_TOO_LARGE, &format!("Send at most {} documents at once.", ns::MAX_BATCH))
        }
        bounded::Refused::TooDeep => NsError::new(
            StatusCode::BAD_REQUEST,
            &format!("Documents nest at most {} levels deep.", bounded::MAX_DEPTH),
        ),
    })
}

fn json_object(body: Body) -> Result<Map<String, Value>, NsError> {
    match json_body(body)? {
        bounded::Input::One(Value::Object(m)) if !m.is_empty() => Ok(m),
        _ => Err(NsError::new(StatusCode::BAD_REQUEST, "Bad or missing request body")),
    }
}

// ---------------------------------------------------------------------------------------------
// Our own: the caller's site

/// The public origin for site URLs: `DIABASE_PUBLIC_URL`, else the request's host.
fn public_origin(state: &AppState, headers: &HeaderMap) -> String {
    service::public_origin(state, headers)
}

async fn create_site(
    State(state): State<AppState>,
    Authed(actor): Authed,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let origin = public_origin(&state, &headers);
    let site = ns::create_or_rotate(&state, &actor, &origin, service::now_ms()).await?;
    Ok((StatusCode::CREATED, Json(site)).into_response())
}

async fn site_info(
    State(state): State<AppState>,
    Authed(actor): Authed,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let origin = public_origin(&state, &headers);
    Ok(Json(ns::site_info(&state, &actor, &origin).await?).into_response())
}

// ---------------------------------------------------------------------------------------------
// API v1

fn v1_docs(docs: &[Doc]) -> Response {
    Json(docs.iter().map(Doc::v1).collect::<Vec<_>>()).into_response()
}

async fn list_v1(
    st: &AppState,
    a: &NsAuth,
    coll: Collection,
    pairs: &[(String, String)],
    kind: Option<&str>,
) -> NsResult {
    let mut q = ns::v1_query(pairs, ns::v1_default_count(coll, pairs))?;
    if let Some(k) = kind {
        q = q.with("type", Op::Eq, k);
    }
    Ok(v1_docs(&ns::list(st, a, coll, &q).await?))
}

/// POST: one document or an array; answers 200 with an array as long as
/// the batch. A document that cannot be stored (no valid time, say) is
/// answered in its place by `{"status": 400, "message", "field"?, "index"}`
/// and the others are stored; one document alone that cannot be stored is
/// refused with 400.
async fn post_v1(st: &AppState, a: &NsAuth, coll: Collection, body: Body) -> NsResult {
    let input = match json_body(body)? {
        bounded::Input::Many(v) => v,
        bounded::Input::One(other) => {
            let written = ns::write(st, a, coll, vec![other], service::now_ms()).await?;
            return Ok(Json(written.iter().map(|w| w.doc.v1()).collect::<Vec<_>>()).into_response());
        }
    };
    let outcome = ns::write_each(st, a, coll, input, service::now_ms()).await?;
    let refused = outcome.iter().filter(|o| o.is_err()).count();
    let body: Vec<Value> = outcome
        .into_iter()
        .enumerate()
        .map(|(index, o)| match o {
            Ok(w) => w.doc.v1(),
            Err(r) => {
                let mut e = json!({"status": 400, "message": r.reason, "index": index});
                if let Some(f) = r.field {
                    e["field"] = json!(f);
                }
                e
            }
        })
        .collect();
    if refused > 0 {
        tracing::info!(collection = coll.name(), refused, "nightscout batch: documents refused");
    }
    Ok(Json(body).into_response())
}

/// PUT: like POST (an update by `_id`, else an upsert); one document in, one out.
async fn put_v1(st: &AppState, a: &NsAuth, coll: Collection, body: Body) -> NsResult {
    let (single, input) = match json_body(body)? {
        bounded::Input::Many(v) => (false, v),
        bounded::Input::One(other) => (true, vec![other]),
    };
    let written = ns::write(st, a, coll, input, service::now_ms()).await?;
    let docs: Vec<Value> = written.iter().map(|w| w.doc.v1()).collect();
    Ok(match (single, docs.into_iter().next()) {
        (true, Some(d)) => Json(d).into_response(),
        (_, first) => Json(first.map(|d| vec![d]).unwrap_or_default()).into_response(),
    })
}

async fn delete_find_v1(st: &AppState, a: &NsAuth, coll: Collection, pairs: &[(String, String)]) -> NsResult {
    let q = ns::v1_query(pairs, ns::MAX_COUNT)?;
    let n = ns::delete_matching(st, a, coll, &q, service::now_ms()).await?;
    Ok(Json(json!({"n": n, "ok": 1})).into_response())
}

async fn entries_list(State(st): State<AppState>, V1(a): V1, Query(p): Pairs) -> NsResult {
    list_v1(&st, &a, Collection::Entries, &p, None).await
}
async fn entries_post(State(st): State<AppState>, V1(a): V1, body: Body) -> NsResult {
    post_v1(&st, &a, Collection::Entries, body).await
}
async fn entries_delete(State(st): State<AppState>, V1(a): V1, Query(p): Pairs) -> NsResult {
    delete_find_v1(&st, &a, Collection::Entries, &p).await
}

/// `/entries/current(.json)`, `/entries/{sgv|mbg|cal}(.json)`, `/entries/{_id}`.
async fn entries_spec(State(st): State<AppState>, V1(a): V1, Path(params): Params, Query(p): Pairs) -> NsResult {
    let spec = params.get("spec").map(String::as_str).unwrap_or("");
    let spec = spec.strip_suffix(".json").unwrap_or(spec);
    match spec {
        "current" => {
            let q = ns::Query::newest(1).with("type", Op::Eq, "sgv");
            Ok(v1_docs(&ns::list(&st, &a, Collection::Entries, &q).await?))
        }
        "sgv" | "mbg" | "cal" => list_v1(&st, &a, Collection::Entries, &p, Some(spec)).await,
        id => {
            let found = ns::find_one(&st, &a, Collection::Entries, id).await?.filter(|d| !d.deleted());
            Ok(v1_docs(&found.into_iter().collect::<Vec<_>>()))
        }
    }
}

async fn treatments_list(State(st): State<AppState>, V1(a): V1, Query(p): Pairs) -> NsResult {
    list_v1(&st, &a, Collection::Treatments, &p, None).await
}
async fn treatments_post(State(st): State<AppState>, V1(a): V1, body: Body) -> NsResult {
    post_v1(&st, &a, Collection::Treatments, body).await
}
async fn treatments_put(State(st): State<AppState>, V1(a): V1, body: Body) -> NsResult {
    put_v1(&st, &a, Collection::Treatments, body).await
}
async fn treatments_delete(State(st): State<AppState>, V1(a): V1, Query(p): Pairs) -> NsResult {
    delete_find_v1(&st, &a, Collection::Treatments, &p).await
}

async fn treatment_put_id(State(st): State<AppState>, V1(a): V1, Path(params): Params, body: Body) -> NsResult {
    let mut doc = json_object(body)?;
    if let Some(id) = params.get("id") {
        doc.insert("_id".into(), json!(id));
    }
    let written = ns::write(&st, &a, Collection::Treatments, vec![Value::Object(doc)], service::now_ms()).await?;
    let first = written.first().ok_or_else(|| NsError::from(ServiceError::Internal("nothing written".into())))?;
    Ok(Json(first.doc.v1()).into_response())
}

async fn treatment_delete_id(State(st): State<AppState>, V1(a): V1, Path(params): Params) -> NsResult {
    let id = params.get("id").map(String::as_str).unwrap_or("");
    let found = ns::delete(&st, &a, Collection::Treatments, id, false, service::now_ms()).await?;
    Ok(Json(json!({"n": u8::from(found), "ok": 1})).into_response())
}

async fn devicestatus_list(State(st): State<AppState>, V1(a): V1, Query(p): Pairs) -> NsResult {
    list_v1(&st, &a, Collection::DeviceStatus, &p, None).await
}
async fn devicestatus_post(State(st): State<AppState>, V1(a): V1, body: Body) -> NsResult {
    post_v1(&st, &a, Collection::DeviceStatus, body).await
}
async fn devicestatus_delete(State(st): State<AppState>, V1(a): V1, Query(p): Pairs) -> NsResult {
    delete_find_v1(&st, &a, Collection::DeviceStatus, &p).await
}

async fn profile_list(State(st): State<AppState>, V1(a): V1, Query(p): Pairs) -> NsResult {
    list_v1(&st, &a, Collection::Profile, &p, None).await
}
async fn profile_post(State(st): State<AppState>, V1(a): V1, body: Body) -> NsResult {
    post_v1(&st, &a, Collection::Profile, body).await
}
async fn profile_put(State(st): State<AppState>, V1(a): V1, body: Body) -> NsResult {
    put_v1(&st, &a, Collection::Profile, body).await
}

/// The newest profile document, as an object.
async fn profile_current(State(st): State<AppState>, V1(a): V1) -> NsResult {
    let docs = ns::list(&st, &a, Collection::Profile, &ns::Query::newest(1)).await?;
    match docs.first() {
        Some(d) => Ok(Json(d.v1()).into_response()),
        None => Err(NsError::new(StatusCode::NOT_FOUND, "No profile has been uploaded.")),
    }
}

/// Public, as in Nightscout; without credentials it names no patient setting.
async fn status(MaybeNs(a): MaybeNs) -> Response {
    Json(ns::status_v1(a.as_ref(), service::now_ms())).into_response()
}

/// 200 either way, as Nightscout does.
async fn verifyauth(MaybeNs(a): MaybeNs) -> Response {
    let message = match a {
        Some(_) => json!({"canRead": true, "canWrite": true, "isAdmin": true, "message": "OK",
            "rolefound": "FOUND", "permissions": "ROLE"}),
        None => json!({"canRead": false, "canWrite": false, "isAdmin": false, "message": "UNAUTHORIZED",
            "rolefound": "NOTFOUND", "permissions": "DEFAULT"}),
    };
    Json(json!({"status": 200, "message": message})).into_response()
}

/// Loop checks its secret here: 200 when it opens the site, 401 otherwise.
async fn experiments_test(V1(_a): V1) -> Response {
    Json(json!({"status": "ok"})).into_response()
}

// ---------------------------------------------------------------------------------------------
// API v2

/// Exchanges an access token for a JWT (8 hours).
/// A wrong token counts in the same failed-credentials bucket as the other
/// Nightscout endpoints (and is refused once it is full).
async fn authorization_request(
    State(st): State<AppState>,
    FailBucket(bucket): FailBucket,
    Path(params): Params,
) -> NsResult {
    let token = params.get("token").map(String::as_str).unwrap_or("");
    let now = service::now_ms();
    charge(&st, &bucket, now).await?;
    match ns::issue_jwt(&st, params.get("site").map(String::as_str), token, now).await? {
        Some(jwt) => {
            refund(&st, &bucket, now).await?;
            Ok(Json(jwt).into_response())
        }
        None => Err(NsError::unauthorized()),
    }
}

/// The failed-credentials bucket of the request's client address.
struct FailBucket(String);

impl FromRequestParts<AppState> for FailBucket {
    type Rejection = NsError;
    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(FailBucket(fail_bucket(parts)))
    }
}

// ---------------------------------------------------------------------------------------------
// API v3

fn v3_collection(params: &HashMap<String, String>) -> Result<Collection, NsError> {
    params
        .get("collection")
        .and_then(|c| Collection::from_name(c))
        .ok_or_else(|| NsError::new(StatusCode::NOT_FOUND, "Bad operation or collection"))
}

fn v3_result(result: Value) -> Response {
    Json(json!({"status": 200, "result": result})).into_response()
}

fn project(v: Value, fields: &Option<Vec<String>>) -> Value {
    match (v, fields) {
        (Value::Object(m), Some(f)) => Value::Object(m.into_iter().filter(|(k, _)| f.contains(k)).collect()),
        (v, _) => v,
    }
}

/// An HTTP date (`Last-Modified`) for epoch milliseconds.
fn http_date(ms: i64) -> Option<HeaderValue> {
    let t = chrono::DateTime::from_timestamp_millis(ms)?;
    HeaderValue::from_str(&t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()).ok()
}

fn with_last_modified(mut res: Response, ms: i64) -> Response {
    if let Some(v) = http_date(ms) {
        res.headers_mut().insert(header::LAST_MODIFIED, v);
    }
    res
}

fn status_json(status: StatusCode, mut body: Value) -> Response {
    body["status"] = json!(status.as_u16());
    (status, Json(body)).into_response()
}

async fn v3_status(V3(_a): V3) -> Response {
    v3_result(ns::status_v3(service::now_ms()))
}

async fn v3_version() -> Response {
    v3_result(ns::version_v3(service::now_ms()))
}

async fn v3_last_modified(State(st): State<AppState>, V3(a): V3) -> NsResult {
    let now = service::now_ms();
    let cols = ns::last_modified(&st, &a).await?;
    Ok(v3_result(json!({"srvDate": now, "srvDateString": ns::iso(now), "collections": cols})))
}

async fn v3_search(State(st): State<AppState>, V3(a): V3, Path(params): Params, Query(p): Pairs) -> NsResult {
    let coll = v3_collection(&params)?;
    let (q, fields) = ns::v3_query(&p)?;
    let docs = ns::list(&st, &a, coll, &q).await?;
    Ok(v3_result(Value::Array(docs.iter().map(|d| project(d.v3(), &fields)).collect())))
}

/// Creates a document: 201 with its identifier, or 200 when it matched a
/// stored one (`isDeduplication`), which it then replaced.
async fn v3_create(State(st): State<AppState>, V3(a): V3, Path(params): Params, body: Body) -> NsResult {
    let coll = v3_collection(&params)?;
    let doc = json_object(body)?;
    let w = ns::write(&st, &a, coll, vec![Value::Object(doc)], service::now_ms())
        .await?
        .pop()
        .ok_or_else(|| NsError::from(ServiceError::Internal("nothing written".into())))?;
    let id = w.doc.identifier().to_string();
    let lm = w.doc.modified_ms();
    let res = if w.created {
        status_json(StatusCode::CREATED, json!({"identifier": id, "lastModified": lm}))
    } else {
        let mut b = json!({"identifier": id, "isDeduplication": true, "lastModified": lm});
        if let Some(prev) = w.previous_identifier.filter(|p| *p != id) {
            b["deduplicatedIdentifier"] = json!(prev);
        }
        status_json(StatusCode::OK, b)
    };
    Ok(with_last_modified(res, lm))
}

async fn v3_read(State(st): State<AppState>, V3(a): V3, Path(params): Params, Query(p): Pairs) -> NsResult {
    let coll = v3_collection(&params)?;
    let (_, fields) = ns::v3_query(&p.into_iter().filter(|(k, _)| k == "fields").collect::<Vec<_>>())?;
    let id = params.get("identifier").map(String::as_str).unwrap_or("");
    match ns::find_one(&st, &a, coll, id).await? {
        None => Err(NsError::new(StatusCode::NOT_FOUND, "Not found")),
        Some(d) if d.deleted() => Err(NsError::new(StatusCode::GONE, "Gone")),
        Some(d) => Ok(with_last_modified(v3_result(project(d.v3(), &fields)), d.modified_ms())),
    }
}

/// Replaces the document with this identifier, or creates it (201).
async fn v3_update(State(st): State<AppState>, V3(a): V3, Path(params): Params, body: Body) -> NsResult {
    let coll = v3_collection(&params)?;
    let doc = json_object(body)?;
    let id = params.get("identifier").map(String::as_str).unwrap_or("");
    let w = ns::replace(&st, &a, coll, id, Value::Object(doc), service::now_ms()).await?;
    let lm = w.doc.modified_ms();
    let res = if w.created {
        status_json(StatusCode::CREATED, json!({"identifier": w.doc.identifier(), "lastModified": lm}))
    } else {
        status_json(StatusCode::OK, json!({"lastModified": lm}))
    };
    Ok(with_last_modified(res, lm))
}

async fn v3_patch(State(st): State<AppState>, V3(a): V3, Path(params): Params, body: Body) -> NsResult {
    let coll = v3_collection(&params)?;
    let fields = json_object(body)?;
    let id = params.get("identifier").map(String::as_str).unwrap_or("");
    match ns::patch(&st, &a, coll, id, fields, service::now_ms()).await? {
        Patched::NotFound => Err(NsError::new(StatusCode::NOT_FOUND, "Not found")),
        Patched::Gone => Err(NsError::new(StatusCode::GONE, "Gone")),
        Patched::Done(w) => {
            let lm = w.doc.modified_ms();
            Ok(with_last_modified(status_json(StatusCode::OK, json!({"lastModified": lm})), lm))
        }
    }
}

/// Marks the document deleted (`isValid: false` in history), or removes it
/// with `permanent=true`.
async fn v3_delete(State(st): State<AppState>, V3(a): V3, Path(params): Params, Query(p): Pairs) -> NsResult {
    let coll = v3_collection(&params)?;
    let id = params.get("identifier").map(String::as_str).unwrap_or("");
    let permanent = p.iter().any(|(k, v)| k == "permanent" && v == "true");
    if ns::delete(&st, &a, coll, id, permanent, service::now_ms()).await? {
        Ok(status_json(StatusCode::OK, json!({})))
    } else {
        Err(NsError::new(StatusCode::NOT_FOUND, "Not found"))
    }
}

/// Changes after a time (path, exclusive) or the `Last-Modified` header
/// (inclusive, whole seconds), oldest first; `ETag: W/"<latest srvModified>"`.
async fn v3_history(
    State(st): State<AppState>,
    V3(a): V3,
    Path(params): Params,
    headers: HeaderMap,
    Query(p): Pairs,
) -> NsResult {
    let coll = v3_collection(&params)?;
    let bad = || NsError::new(StatusCode::BAD_REQUEST, "Bad or missing Last-Modified header/parameter");
    let (since, inclusive) = match params.get("last_modified") {
        Some(s) => (ns::parse_time(&Value::String(s.clone())).ok_or_else(bad)?.0, false),
        None => {
            let h = headers.get(header::LAST_MODIFIED).and_then(|v| v.to_str().ok()).ok_or_else(bad)?;
            let t = chrono::DateTime::parse_from_rfc2822(h).map_err(|_| bad())?;
            (t.timestamp() * 1000, true)
        }
    };
    let limit = match p.iter().find(|(k, _)| k == "limit") {
        Some((_, v)) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=ns::V3_MAX_LIMIT).contains(n))
            .ok_or_else(|| NsError::new(StatusCode::BAD_REQUEST, "Parameter limit out of tolerance"))?,
        None => ns::V3_MAX_LIMIT,
    };
    let (_, fields) = ns::v3_query(&p.iter().filter(|(k, _)| k == "fields").cloned().collect::<Vec<_>>())?;
    let docs = ns::history(&st, &a, coll, since, inclusive, limit).await?;
    let latest = docs.iter().map(Doc::modified_ms).max();
    let mut res = v3_result(Value::Array(docs.iter().map(|d| project(d.v3(), &fields)).collect()));
    if let Some(m) = latest {
        res = with_last_modified(res, m);
        if let Ok(v) = HeaderValue::from_str(&format!("W/\"{m}\"")) {
            res.headers_mut().insert(header::ETAG, v);
        }
    }
    Ok(res)
}

// ---------------------------------------------------------------------------------------------
// Bounded request bodies

/// The largest Nightscout request body after gzip inflation. A batch of
/// 10,000 entries as xDrip+ uploads them (every field it sends) is about
/// 2.5 MiB (measured by the `a_full_batch_fits` test below); 4 MiB leaves
/// room for larger documents while a gzip bomb stops after inflating 4 MiB.
pub const INFLATED_LIMIT: usize = 4 * 1024 * 1024;

/// Parses a JSON body while counting what it builds, so that memory follows
/// the accepted limits, not the inflated size: at most `MAX_BATCH`
/// documents in an array (the next one is refused as soon as it starts), a
/// cost per document and per body (about the bytes the parsed values take:
/// 32 a value, plus string and key bytes), and a nesting depth.
pub mod bounded {
    use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};
    use std::cell::Cell;
    use std::fmt;

    /// The estimated in-memory size one document may take (a large Loop or
    /// AndroidAPS profile or device status takes tens of KiB).
    pub const MAX_DOC_COST: usize = 1024 * 1024;
    /// The estimated in-memory size a whole body may take (10,000 xDrip+
    /// entries take about 10 MiB).
    pub const MAX_BODY_COST: usize = 16 * 1024 * 1024;
    /// How deep documents nest (Nightscout's deepest, a device status's
    /// predictions, nest 4 levels).
    pub const MAX_DEPTH: usize = 32;
    const NODE: usize = 32;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Refused {
        /// Not JSON, or not one document or an array of them.
        Malformed,
        TooManyDocuments,
        TooLarge,
        TooDeep,
    }

    /// One document, or an array of them.
    #[derive(Debug)]
    pub enum Input {
        One(Value),
        Many(Vec<Value>),
    }

    struct Budget {
        body: Cell<usize>,
        doc: Cell<usize>,
        max_docs: usize,
        refused: Cell<Option<Refused>>,
    }

    impl Budget {
        fn refuse<E: de::Error>(&self, r: Refused) -> E {
            self.refused.set(Some(r));
            E::custom("refused")
        }

        fn charge<E: de::Error>(&self, n: usize) -> Result<(), E> {
            let doc = self.doc.get().saturating_add(n);
            let body = self.body.get().saturating_add(n);
            self.doc.set(doc);
            self.body.set(body);
            if doc > MAX_DOC_COST || body > MAX_BODY_COST {
                return Err(self.refuse(Refused::TooLarge));
            }
            Ok(())
        }
    }

    /// Parses `bytes` as one document or an array of at most `max_docs`.
    pub fn parse(bytes: &[u8], max_docs: usize) -> Result<Input, Refused> {
        parse_counted(bytes, max_docs).0
    }

    /// As [`parse`], with the cost charged.
    fn parse_counted(bytes: &[u8], max_docs: usize) -> (Result<Input, Refused>, usize) {
        let budget = Budget { body: Cell::new(0), doc: Cell::new(0), max_docs, refused: Cell::new(None) };
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let out = de::Deserializer::deserialize_any(&mut de, Top(&budget)).and_then(|v| de.end().map(|()| v));
        (out.map_err(|_| budget.refused.get().unwrap_or(Refused::Malformed)), budget.body.get())
    }

    struct Top<'a>(&'a Budget);

    impl<'de> Visitor<'de> for Top<'_> {
        type Value = Input;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a document or an array of documents")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Input, A::Error> {
            let b = self.0;
            let mut out = Vec::new();
            loop {
                if out.len() == b.max_docs {
                    // One more element, skipped without building it, is one too many.
                    if seq.next_element::<IgnoredAny>()?.is_some() {
                        return Err(b.refuse(Refused::TooManyDocuments));
                    }
                    break;
                }
                b.doc.set(0);
                match seq.next_element_seed(Node { b, depth: 1 })? {
                    Some(v) => out.push(v),
                    None => break,
                }
            }
            Ok(Input::Many(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Input, A::Error> {
            Node { b: self.0, depth: 0 }.visit_map(map).map(Input::One)
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Input, E> {
            Ok(Input::One(Value::Bool(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Input, E> {
            Ok(Input::One(Value::from(v)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Input, E> {
            Ok(Input::One(Value::from(v)))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Input, E> {
            Ok(Input::One(Value::from(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Input, E> {
            self.0.charge(v.len())?;
            Ok(Input::One(Value::String(v.to_string())))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Input, E> {
            Ok(Input::One(Value::Null))
        }
    }

    /// A value inside a document, charged to the budget as it is built.
    struct Node<'a> {
        b: &'a Budget,
        depth: usize,
    }

    impl<'de> DeserializeSeed<'de> for Node<'_> {
        type Value = Value;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            if self.depth > MAX_DEPTH {
                return Err(self.b.refuse(Refused::TooDeep));
            }
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Node<'_> {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
            self.b.charge(NODE)?;
            Ok(Value::Bool(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
            self.b.charge(NODE)?;
            Ok(Value::from(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
            self.b.charge(NODE)?;
            Ok(Value::from(v))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
            self.b.charge(NODE)?;
            Ok(Value::from(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
            self.b.charge(NODE + v.len())?;
            Ok(Value::String(v.to_string()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
            self.b.charge(NODE + v.len())?;
            Ok(Value::String(v))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
            self.b.charge(NODE)?;
            Ok(Value::Null)
        }
        fn visit_none<E: de::Error>(self) -> Result<Value, E> {
            self.visit_unit()
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            self.b.charge(NODE)?;
            let mut out = Vec::new();
            while let Some(v) = seq.next_element_seed(Node { b: self.b, depth: self.depth + 1 })? {
                out.push(v);
            }
            Ok(Value::Array(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            self.b.charge(NODE)?;
            let mut out = Map::new();
            while let Some(k) = map.next_key::<String>()? {
                self.b.charge(NODE + k.len())?;
                let v = map.next_value_seed(Node { b: self.b, depth: self.depth + 1 })?;
                out.insert(k, v);
            }
            Ok(Value::Object(out))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// 10,000 entries with every field xDrip+ sends.
        fn xdrip_batch() -> Vec<u8> {
            let docs: Vec<Value> = (0..10_000i64)
                .map(|i| {
                    let ms = 1_710_057_600_000 + i * 300_000;
                    let iso = chrono::DateTime::from_timestamp_millis(ms)
                        .unwrap()
                        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                        .to_string();
                    serde_json::json!({"device": "xDrip-DexcomG6", "date": ms, "dateString": iso, "sysTime": iso,
                        "sgv": 100 + i % 150, "delta": -1.234, "direction": "FortyFiveDown", "type": "sgv",
                        "filtered": 123_456, "unfiltered": 123_456, "rssi": 100, "noise": 1, "utcOffset": 60})
                })
                .collect();
            serde_json::to_vec(&docs).unwrap()
        }

        #[test]
        fn a_full_batch_fits() {
            let bytes = xdrip_batch();
            let (out, cost) = parse_counted(&bytes, 10_000);
            eprintln!("10,000 xDrip+ entries: {} bytes of JSON, cost {cost}", bytes.len());
            assert!(bytes.len() < super::super::INFLATED_LIMIT * 2 / 3, "{} bytes", bytes.len());
            assert!(cost < MAX_BODY_COST * 3 / 4, "cost {cost}");
            match out.unwrap() {
                Input::Many(v) => assert_eq!(v.len(), 10_000),
                other => panic!("{other:?}"),
            }
        }

        #[test]
        fn limits_are_enforced_while_parsing() {
            let many = format!("[{}{{}}]", "{},".repeat(10_000));
            assert_eq!(parse(many.as_bytes(), 10_000).unwrap_err(), Refused::TooManyDocuments);
            let ok = format!("[{}{{}}]", "{},".repeat(9_999));
            assert!(matches!(parse(ok.as_bytes(), 10_000), Ok(Input::Many(v)) if v.len() == 10_000));
            let deep = format!("{}{}", "{\"a\":".repeat(40), "1".to_string() + &"}".repeat(40));
            assert_eq!(parse(deep.as_bytes(), 10).unwrap_err(), Refused::TooDeep);
            let wide = format!("[{{\"a\":[{}0]}}]", "0,".repeat(MAX_DOC_COST / NODE));
            assert_eq!(parse(wide.as_bytes(), 10).unwrap_err(), Refused::TooLarge);
            assert_eq!(parse(b"[{}] x", 10).unwrap_err(), Refused::Malformed);
            assert!(matches!(parse(br#"{"a": [1, "b", null, 2.5]}"#, 10), Ok(Input::One(Value::Object(_)))));
        }
    }
}
