//! The Nightscout-compatible API, so that phone uploaders and followers
//! (xDrip+, Loop, Trio, AndroidAPS, Nightscout readers) work unchanged.
//!
//! - Each patient has one *site*: a random API secret (stored as its SHA-1
//!   hex, which is what clients send in `api-secret`), an access token
//!   (`diabase-<16 hex>`, stored as SHA-256) and an HMAC key for the JWTs of
//!   `/api/v2/authorization/request/{token}`. A request finds its site by any
//!   of these credentials (and, under `/ns/{site}/`, must match the slug).
//! - Documents (entries, treatments, devicestatus, profile, food, settings) are
//!   stored as the clients sent them, with Nightscout's semantics: `_id`,
//!   upsert on re-post (same `_id`, API v3 `identifier`, or natural key),
//!   newest first, `count` / `find[...]` (v1) and `field$op` (v3) queries,
//!   soft deletion with API v3 history.
//! - Entries and treatments are mirrored into the normalised stores
//!   (`glucose`, `therapy_events`) with [`SourceRank::Api`], so reports and
//!   the dashboard see them. The mapping is the file importer's
//!   (`devices::import`, format `NightscoutJson`): one mapping for files and
//!   the API. The mirror is kept per second of time: a write re-derives the
//!   mirrored rows of every second it touched from the documents now there
//!   (see docs/DECISIONS.md).

use super::{Actor, AppState, ServiceError, policy};
use ::devices::import::{self as imp, Item};
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use store::entity::{
    glucose, nightscout_docs as docs, nightscout_sites as sites, patients, therapy_events, uploads, users,
};
use store::records::{Batch, SourceRank, insert_records};

/// Failed Nightscout credentials allowed per client address per window by
/// default (`DIABASE_NS_FAILED_AUTH_LIMIT`): a misconfigured uploader
/// retrying every few minutes stays under it, a guesser does not.
pub const FAILED_AUTH_LIMIT: u32 = 30;
pub const FAILED_AUTH_WINDOW_MS: i64 = 15 * 60 * 1000;

/// The Nightscout release whose API this one follows (clients check it).
pub const NS_VERSION: &str = "15.0.3";
/// The Nightscout API v3 version served.
pub const API3_VERSION: &str = "3.0.5";
/// The subject name of a site's access token (`diabase-<16 hex>`).
pub const TOKEN_NAME: &str = "diabase";
/// The subject of the read-only token (`diabase-readonly-<hex>`).
pub const READ_TOKEN_NAME: &str = "diabase-readonly";
/// JWTs from `/api/v2/authorization/request/{token}` last this long.
pub const JWT_TTL_S: i64 = 8 * 3600;
/// `count` when a v1 request gives none (entries, devicestatus, profile).
pub const DEFAULT_COUNT: u64 = 10;
/// Treatments without `count`: 100, or 1000 when the request has `find`
/// (Nightscout's lib/api/treatments/index.js).
pub const TREATMENTS_DEFAULT_COUNT: u64 = 100;
pub const TREATMENTS_FIND_DEFAULT_COUNT: u64 = 1000;
/// The largest `count` served (v1).
pub const MAX_COUNT: u64 = 100_000;
/// API v3's largest (and default) `limit`.
pub const V3_MAX_LIMIT: u64 = 1000;
/// Documents accepted in one POST.
pub const MAX_BATCH: usize = 10_000;

/// The upload row mirrored records hang from (`uploads.source`/`format`).
const UPLOAD_SOURCE: &str = "api";
const UPLOAD_FORMAT: &str = "nightscout";
/// Fields the server owns; a client's values are dropped on write. A
/// client's `isValid` is kept: AndroidAPS marks a removed treatment with
/// `isValid: false` (API v3 answers `isValid: false` for deleted documents
/// itself, and a PATCH cannot set it).
const SERVER_FIELDS: [&str; 5] = ["srvModified", "srvCreated", "subject", "modifiedBy", "_id"];
/// The treatment fields Nightscout turns into numbers on write
/// (`prepareData` in cgm-remote-monitor's lib/server/treatments.js); a
/// numeric text there becomes a number, as Nightscout stores it. Every
/// other value keeps the JSON type it was posted with.
const TREATMENT_NUMBERS: [&str; 10] = [
    "glucose",
    "targetTop",
    "targetBottom",
    "carbs",
    "insulin",
    "duration",
    "percent",
    "absolute",
    "relative",
    "preBolus",
];
/// Where an entry's instant is read from, in order; each one it holds must be a time.
const ENTRY_TIMES: [&str; 5] = ["date", "dateString", "sysTime", "created_at", "mills"];
const TREATMENT_TIMES: [&str; 4] = ["created_at", "timestamp", "date", "mills"];
const STATUS_TIMES: [&str; 3] = ["created_at", "date", "mills"];
const PROFILE_TIMES: [&str; 4] = ["startDate", "created_at", "date", "mills"];

type HmacSha256 = Hmac<sha2::Sha256>;

/// A Nightscout collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Collection {
    Entries,
    Treatments,
    DeviceStatus,
    Profile,
    Food,
    Settings,
}

impl Collection {
    pub const ALL: [Collection; 6] = [
        Collection::DeviceStatus,
        Collection::Entries,
        Collection::Food,
        Collection::Profile,
        Collection::Settings,
        Collection::Treatments,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Collection::Entries => "entries",
            Collection::Treatments => "treatments",
            Collection::DeviceStatus => "devicestatus",
            Collection::Profile => "profile",
            Collection::Food => "food",
            Collection::Settings => "settings",
        }
    }

    pub fn from_name(s: &str) -> Option<Collection> {
        Collection::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Whether documents of this collection are mirrored into the normalised stores.
    pub fn mirrored(self) -> bool {
        matches!(self, Collection::Entries | Collection::Treatments)
    }
}

// ---------------------------------------------------------------------------------------------
// Sites and credentials

/// A new or rotated site: shown once.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NewSite {
    pub site: String,
    /// The API secret, shown this once.
    pub secret: String,
    /// The base URL for clients that keep a path (`<origin>/ns/<site>`).
    pub url: String,
    /// The access token (for API v3 clients such as AndroidAPS), shown this once.
    pub token: String,
    /// A read-only access token for followers and readers, shown this once.
    pub read_token: String,
}

/// A site as its owner may see it later (no secrets).
#[derive(Clone, Debug, serde::Serialize)]
pub struct SiteInfo {
    pub site: String,
    pub url: String,
    pub created_at: String,
    pub rotated_at: String,
}

/// Creates the caller's site, or rotates its secret, access token and JWT
/// key (the slug stays). Only the owner of a patient data space has a site.
///
/// The secret reads and deletes everything, so only a browser session
/// whose password was checked within the last minutes, of a confirmed
/// address, may set it; never an API token. The operator's command line
/// uses [`create_or_rotate_for_patient`].
pub async fn create_or_rotate(
    state: &AppState,
    actor: &Actor,
    origin: &str,
    now: i64,
) -> Result<NewSite, ServiceError> {
    super::reauth::session_of(actor)?;
    super::reauth::require_confirmed(actor)?;
    super::reauth::require_recent(state, actor, now).await?;
    let patient = policy::own_patient(state, &actor.user.id)
        .await?
        .ok_or_else(|| ServiceError::Conflict("Only a patient account has a Nightscout site.".into()))?;
    policy::require(state, actor, policy::Action::Upload, &patient.id).await?;
    create_or_rotate_for_patient(state, &patient.id, Some(&actor.user.id), origin, now).await
}

/// [`create_or_rotate`] for a patient data space (the operator's command line).
pub async fn create_or_rotate_for_patient(
    state: &AppState,
    patient_id: &str,
    actor_user_id: Option<&str>,
    origin: &str,
    now: i64,
) -> Result<NewSite, ServiceError> {
    // 18 random bytes: 24 URL-safe characters (Nightscout wants at least 12).
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<18>());
    let token = format!("{TOKEN_NAME}-{}", hex::encode(random_bytes::<8>()));
    let read_token = format!("{READ_TOKEN_NAME}-{}", hex::encode(random_bytes::<8>()));
    let key = hex::encode(random_bytes::<32>());
    let existing = sites::Entity::find_by_id(patient_id.to_string()).one(&state.db).await?;
    let (slug, action) = match existing {
        Some(s) => {
            sites::ActiveModel {
                patient_id: ActiveValue::Unchanged(s.patient_id.clone()),
                secret_sha1: Set(sha1_hex(secret.as_bytes())),
                token_hash: Set(store::sha256_hex(token.as_bytes())),
                read_token_hash: Set(Some(store::sha256_hex(read_token.as_bytes()))),
                jwt_key: Set(key),
                rotated_ms: Set(now),
                ..Default::default()
            }
            .update(&state.db)
            .await?;
            (s.slug, "nightscout_site_rotated")
        }
        None => {
            let slug = hex::encode(random_bytes::<8>());
            sites::ActiveModel {
                patient_id: Set(patient_id.to_string()),
                slug: Set(slug.clone()),
                secret_sha1: Set(sha1_hex(secret.as_bytes())),
                token_hash: Set(store::sha256_hex(token.as_bytes())),
                jwt_key: Set(key),
                created_ms: Set(now),
                rotated_ms: Set(now),
                read_token_hash: Set(Some(store::sha256_hex(read_token.as_bytes()))),
            }
            .insert(&state.db)
            .await?;
            (slug, "nightscout_site_created")
        }
    };
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id,
            patient_id: Some(patient_id),
            action,
            detail: &slug,
            ip: None,
        },
    )
    .await?;
    Ok(NewSite { url: site_url(origin, &slug), site: slug, secret, token, read_token })
}

/// The caller's site, without secrets; `NotFound` when there is none.
pub async fn site_info(state: &AppState, actor: &Actor, origin: &str) -> Result<SiteInfo, ServiceError> {
    let patient = policy::own_patient(state, &actor.user.id).await?.ok_or(ServiceError::NotFound)?;
    let s = sites::Entity::find_by_id(patient.id).one(&state.db).await?.ok_or(ServiceError::NotFound)?;
    Ok(SiteInfo {
        url: site_url(origin, &s.slug),
        site: s.slug,
        created_at: super::ms_to_rfc3339(s.created_ms),
        rotated_at: super::ms_to_rfc3339(s.rotated_ms),
    })
}

fn site_url(origin: &str, slug: &str) -> String {
    format!("{}/ns/{slug}", origin.trim_end_matches('/'))
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// SHA-1 as lowercase hex (Nightscout's `api-secret` header).
pub fn sha1_hex(bytes: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    hex::encode(Sha1::digest(bytes))
}

/// The stored form of an `api-secret` value: clients send the SHA-1 hex of
/// the secret; a value that is not 40 hex digits is taken as the plain secret.
pub fn secret_hash(sent: &str) -> String {
    let s = sent.trim();
    if s.len() == 40 && s.bytes().all(|c| c.is_ascii_hexdigit()) {
        s.to_ascii_lowercase()
    } else {
        sha1_hex(s.as_bytes())
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a request presented: the `api-secret` header (or `secret` query
/// parameter), the `token` query parameter (an access token or a JWT), and an
/// `Authorization: Bearer` value (a JWT, or an access token).
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub api_secret: Option<String>,
    pub token: Option<String>,
    pub bearer: Option<String>,
}

/// A request authenticated to a site: full access to its patient's Nightscout data.
#[derive(Clone, Debug)]
pub struct NsAuth {
    /// A read-only token (or its JWT): reading only.
    pub read_only: bool,
    pub site: sites::Model,
    pub patient: patients::Model,
    pub owner: users::Model,
}

impl NsAuth {
    pub fn zone(&self) -> chrono_tz::Tz {
        therapy::time::parse_zone(&self.patient.time_zone).unwrap_or(chrono_tz::UTC)
    }

    /// Nightscout's name for the owner's glucose unit.
    pub fn units(&self) -> &'static str {
        if self.owner.glucose_unit.to_ascii_lowercase().starts_with("mmol") { "mmol" } else { "mg/dl" }
    }
}

/// Finds the site a request's credentials open (`None`: none does). Under
/// `/ns/{slug}/` the site must be that one.
pub async fn authenticate(
    state: &AppState,
    slug: Option<&str>,
    creds: &Credentials,
    now: i64,
) -> Result<Option<NsAuth>, ServiceError> {
    let present = |v: &Option<String>| {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty() && s.len() <= 4096).map(str::to_string)
    };
    let mut site = None;
    let mut read_only = false;
    if let Some(s) = present(&creds.api_secret) {
        site = site_by(state, sites::Column::SecretSha1, &secret_hash(&s)).await?;
    }
    for t in [present(&creds.token), present(&creds.bearer)].into_iter().flatten() {
        if site.is_some() {
            break;
        }
        if let Some((s, ro)) = site_by_token_or_jwt(state, &t, now).await? {
            site = Some(s);
            read_only = ro;
        }
    }
    let Some(site) = site else { return Ok(None) };
    if let Some(slug) = slug
        && !ct_eq(site.slug.as_bytes(), slug.as_bytes())
    {
        return Ok(None);
    }
    let Some(patient) = patients::Entity::find_by_id(site.patient_id.clone()).one(&state.db).await? else {
        return Ok(None);
    };
    let Some(owner_id) = patient.user_id.clone() else { return Ok(None) };
    let Some(owner) = users::Entity::find_by_id(owner_id).one(&state.db).await? else { return Ok(None) };
    Ok(Some(NsAuth { read_only, site, patient, owner }))
}

async fn site_by(state: &AppState, col: sites::Column, value: &str) -> Result<Option<sites::Model>, ServiceError> {
    Ok(sites::Entity::find().filter(col.eq(value)).one(&state.db).await?)
}

/// The site an access token or JWT opens, and whether only for reading.
async fn site_by_token_or_jwt(
    state: &AppState,
    t: &str,
    now: i64,
) -> Result<Option<(sites::Model, bool)>, ServiceError> {
    if t.matches('.').count() == 2 { verify_jwt(state, t, now).await } else { site_by_access_token(state, t).await }
}

async fn site_by_access_token(state: &AppState, t: &str) -> Result<Option<(sites::Model, bool)>, ServiceError> {
    let h = store::sha256_hex(t.as_bytes());
    if let Some(s) = site_by(state, sites::Column::TokenHash, &h).await? {
        return Ok(Some((s, false)));
    }
    Ok(site_by(state, sites::Column::ReadTokenHash, &h).await?.map(|s| (s, true)))
}

/// A JWT issued for an access token.
#[derive(Clone, Debug, serde::Serialize)]
pub struct IssuedJwt {
    pub token: String,
    pub sub: String,
    #[serde(rename = "permissionGroups")]
    pub permission_groups: Vec<Vec<String>>,
    /// Seconds since the epoch, as in the JWT.
    pub iat: i64,
    pub exp: i64,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn mac(key_hex: &str) -> Result<HmacSha256, ServiceError> {
    let key = hex::decode(key_hex).map_err(|_| ServiceError::Internal("bad jwt key".into()))?;
    HmacSha256::new_from_slice(&key).map_err(|_| ServiceError::Internal("bad jwt key".into()))
}

/// `/api/v2/authorization/request/{access_token}`: a JWT (HS256, signed with
/// the site's key) valid for [`JWT_TTL_S`]; `None` for an unknown token.
pub async fn issue_jwt(
    state: &AppState,
    slug: Option<&str>,
    access_token: &str,
    now: i64,
) -> Result<Option<IssuedJwt>, ServiceError> {
    let t = access_token.trim();
    if t.is_empty() || t.len() > 200 {
        return Ok(None);
    }
    let Some((site, ro)) = site_by_access_token(state, t).await? else {
        return Ok(None);
    };
    if slug.is_some_and(|s| !ct_eq(s.as_bytes(), site.slug.as_bytes())) {
        return Ok(None);
    }
    let iat = now.div_euclid(1000);
    let exp = iat + JWT_TTL_S;
    let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let sub = if ro { READ_TOKEN_NAME } else { TOKEN_NAME };
    let payload = b64(json!({"sub": sub, "site": site.slug, "ro": ro, "iat": iat, "exp": exp}).to_string().as_bytes());
    let input = format!("{header}.{payload}");
    let mut m = mac(&site.jwt_key)?;
    m.update(input.as_bytes());
    let sig = b64(&m.finalize().into_bytes());
    Ok(Some(IssuedJwt {
        token: format!("{input}.{sig}"),
        sub: sub.to_string(),
        permission_groups: vec![vec![if ro { "api:*:read" } else { "*" }.to_string()]],
        iat,
        exp,
    }))
}

async fn verify_jwt(state: &AppState, token: &str, now: i64) -> Result<Option<(sites::Model, bool)>, ServiceError> {
    let dec = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok();
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else { return Ok(None) };
    let Some(header) = dec(h).and_then(|b| serde_json::from_slice::<Value>(&b).ok()) else { return Ok(None) };
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Ok(None);
    }
    let Some(claims) = dec(p).and_then(|b| serde_json::from_slice::<Value>(&b).ok()) else { return Ok(None) };
    let (Some(slug), Some(exp)) =
        (claims.get("site").and_then(Value::as_str), claims.get("exp").and_then(Value::as_i64))
    else {
        return Ok(None);
    };
    if exp.saturating_mul(1000) <= now {
        return Ok(None);
    }
    let Some(sig) = dec(s) else { return Ok(None) };
    let Some(site) = site_by(state, sites::Column::Slug, slug).await? else { return Ok(None) };
    let ro = claims.get("ro").and_then(Value::as_bool).unwrap_or(false);
    let mut m = mac(&site.jwt_key)?;
    m.update(format!("{h}.{p}").as_bytes());
    Ok(m.verify_slice(&sig).is_ok().then_some((site, ro)))
}

// ---------------------------------------------------------------------------------------------
// Documents

/// A stored document.
#[derive(Clone, Debug)]
pub struct Doc {
    pub row: docs::Model,
    pub doc: Map<String, Value>,
}

impl Doc {
    fn from_row(row: docs::Model) -> Doc {
        let doc = match serde_json::from_str(&row.doc_json) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        Doc { row, doc }
    }

    /// The API v3 identifier: the client's, else the `_id`.
    pub fn identifier(&self) -> &str {
        self.row.identifier.as_deref().unwrap_or(&self.row.ns_id)
    }

    pub fn deleted(&self) -> bool {
        self.row.deleted_ms.is_some()
    }

    pub fn modified_ms(&self) -> i64 {
        self.row.modified_ms
    }

    /// As API v1 serves it: the document as stored, with `_id`.
    pub fn v1(&self) -> Value {
        let mut d = Map::with_capacity(self.doc.len() + 1);
        d.insert("_id".into(), json!(self.row.ns_id));
        for (k, v) in &self.doc {
            d.insert(k.clone(), v.clone());
        }
        Value::Object(d)
    }

    /// As API v3 serves it: with `identifier`, `date` (ms), `srvModified`,
    /// `srvCreated`, and `isValid: false` once deleted.
    pub fn v3(&self) -> Value {
        let mut v = self.v1();
        if let Value::Object(d) = &mut v {
            d.insert("identifier".into(), json!(self.identifier()));
            if !d.get("date").is_some_and(Value::is_number) {
                d.insert("date".into(), json!(self.row.date_ms));
            }
            d.insert("srvModified".into(), json!(self.row.modified_ms));
            d.insert("srvCreated".into(), json!(self.row.created_ms));
            if self.deleted() {
                d.insert("isValid".into(), json!(false));
            }
        }
        v
    }
}

/// The outcome of writing one document.
#[derive(Clone, Debug)]
pub struct Written {
    pub doc: Doc,
    /// A new document (not an update of a stored one).
    pub created: bool,
    /// For an update: the stored document's identifier before the write.
    pub previous_identifier: Option<String>,
}

/// A document ready to store.
#[derive(Clone, Debug)]
struct Normal {
    doc: Map<String, Value>,
    ns_id: Option<String>,
    identifier: Option<String>,
    date_ms: i64,
    kind: Option<String>,
    dedup: Option<String>,
}

fn valid_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A new `_id`: 24 hex digits, like a MongoDB ObjectId (seconds, then random).
pub fn new_object_id(now: i64) -> String {
    let secs = u32::try_from(now.div_euclid(1000)).unwrap_or(0);
    format!("{secs:08x}{}", hex::encode(random_bytes::<8>()))
}

/// ISO 8601 in UTC with milliseconds, as Nightscout writes it.
pub fn iso(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// An instant from a Nightscout time value: epoch milliseconds (a number or
/// digits), or ISO 8601 text (without a zone: UTC; a date alone: midnight
/// UTC). Also the text's UTC offset in minutes, when it names one other
/// than UTC.
pub fn parse_time(v: &Value) -> Option<(i64, Option<i32>)> {
    let ok = |ms: i64| (0..7_300_000_000_000).contains(&ms);
    match v {
        Value::Number(n) => {
            n.as_f64().filter(|f| f.is_finite()).map(|f| f.round() as i64).filter(|m| ok(*m)).map(|m| (m, None))
        }
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
                return s.parse::<f64>().ok().map(|f| f.round() as i64).filter(|m| ok(*m)).map(|m| (m, None));
            }
            let zoned = DateTime::parse_from_rfc3339(s)
                .ok()
                .or_else(|| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
                .or_else(|| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%z").ok());
            if let Some(t) = zoned {
                let off = t.offset().local_minus_utc() / 60;
                let ms = t.timestamp_millis();
                return ok(ms).then_some((ms, (off != 0).then_some(off)));
            }
            let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(s.trim_end_matches(['Z', 'z']), f).ok())
                .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)));
            naive.map(|t| t.and_utc().timestamp_millis()).filter(|m| ok(*m)).map(|m| (m, None))
        }
        _ => None,
    }
}

/// Why a document was not stored: the field at fault (if one) and a reason
/// a person can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub field: Option<&'static str>,
    pub reason: String,
}

impl Refused {
    fn new(field: Option<&'static str>, reason: impl Into<String>) -> Refused {
        Refused { field, reason: reason.into() }
    }
}

impl From<Refused> for ServiceError {
    fn from(r: Refused) -> ServiceError {
        ServiceError::BadInput { field: r.field, message: r.reason }
    }
}

/// The document's instant: from the first of `keys` it holds. Every one of
/// them it holds must be a time, so that a document never carries a time
/// its stored instant contradicts. `None` when it holds none.
fn doc_time(d: &Map<String, Value>, keys: &[&'static str]) -> Result<Option<(i64, Option<i32>)>, Refused> {
    let mut first = None;
    for k in keys {
        let Some(v) = d.get(*k).filter(|v| !v.is_null()) else { continue };
        match parse_time(v) {
            Some(t) => {
                first.get_or_insert(t);
            }
            None => {
                return Err(Refused::new(Some(*k), format!("{k} {v} is not a time (epoch milliseconds or ISO 8601)")));
            }
        }
    }
    Ok(first)
}

/// A number, or a text that is one.
fn numeric(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

fn text<'a>(d: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    d.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// Normalises a document as Nightscout does on write: times, `_id`, the
/// treatment numbers Nightscout converts, and the natural key a re-post is
/// matched on. Refuses what it cannot store faithfully: anything but an
/// object, a time field that is not a time, an entry without any time (it
/// is never stamped with the server's clock), and an `sgv` / `mbg` entry
/// whose reading is not a number.
fn normalise(coll: Collection, v: Value, now: i64) -> Result<Normal, Refused> {
    let Value::Object(mut d) = v else {
        return Err(Refused::new(None, "Each document must be a JSON object."));
    };
    let ns_id = d.get("_id").and_then(Value::as_str).map(str::trim).filter(|s| valid_id(s)).map(str::to_string);
    for k in SERVER_FIELDS {
        d.remove(k);
    }
    let identifier = text(&d, "identifier").filter(|s| valid_id(s)).map(str::to_string);
    if identifier.is_none() {
        d.remove("identifier");
    }
    if coll == Collection::Treatments {
        for k in TREATMENT_NUMBERS {
            if let Some(Value::String(s)) = d.get(k)
                && let Ok(f) = s.trim().parse::<f64>()
                && f.is_finite()
            {
                let n = if f.fract() == 0.0 && f.abs() < 9e15 { json!(f as i64) } else { json!(f) };
                d.insert(k.to_string(), n);
            }
        }
    }
    let set_offset = |d: &mut Map<String, Value>, off: Option<i32>| {
        if !d.contains_key("utcOffset")
            && let Some(o) = off
        {
            d.insert("utcOffset".into(), json!(o));
        }
    };
    let (date_ms, kind, dedup) = match coll {
        Collection::Entries => {
            let (t, off) = doc_time(&d, &ENTRY_TIMES)?.ok_or_else(|| {
                Refused::new(Some("date"), "An entry needs its time: date (epoch milliseconds), dateString or sysTime.")
            })?;
            let off = off.or_else(|| d.get("dateString").and_then(parse_time).and_then(|x| x.1));
            if d.get("date").is_none_or(Value::is_null) {
                d.insert("date".into(), json!(t));
            }
            if !d.get("dateString").is_some_and(Value::is_string) {
                d.insert("dateString".into(), json!(iso(t)));
            }
            if !d.contains_key("sysTime") {
                let ds = d.get("dateString").cloned().unwrap_or_else(|| json!(iso(t)));
                d.insert("sysTime".into(), ds);
            }
            set_offset(&mut d, off);
            let ty = match text(&d, "type") {
                Some(t) => Some(t.to_string()),
                None => {
                    let inferred = if d.contains_key("sgv") {
                        Some("sgv")
                    } else if d.contains_key("mbg") {
                        Some("mbg")
                    } else if d.contains_key("slope") || d.contains_key("intercept") {
                        Some("cal")
                    } else {
                        None
                    };
                    if let Some(i) = inferred {
                        d.insert("type".into(), json!(i));
                    }
                    inferred.map(str::to_string)
                }
            };
            for (reading, field) in [("sgv", "sgv"), ("mbg", "mbg")] {
                if ty.as_deref() == Some(reading) && numeric(d.get(field)).is_none() {
                    let got = d.get(field).map_or_else(|| "nothing".to_string(), Value::to_string);
                    return Err(Refused::new(
                        Some(field),
                        format!("An {reading} entry needs {field} as a number, not {got}."),
                    ));
                }
            }
            // Nightscout's natural key for entries: (sysTime, type).
            let dedup = format!("{t}|{}", ty.as_deref().unwrap_or(""));
            (t, ty, Some(dedup))
        }
        Collection::Treatments => {
            let (t, off) = doc_time(&d, &TREATMENT_TIMES)?.unwrap_or((now, None));
            d.insert("created_at".into(), json!(iso(t)));
            set_offset(&mut d, off);
            let et = match text(&d, "eventType") {
                Some(e) => e.to_string(),
                None => {
                    d.insert("eventType".into(), json!("<none>"));
                    "<none>".to_string()
                }
            };
            let dedup = format!("{t}|{et}");
            (t, Some(et), Some(dedup))
        }
        Collection::DeviceStatus => {
            let (t, off) = doc_time(&d, &STATUS_TIMES)?.unwrap_or((now, None));
            d.insert("created_at".into(), json!(iso(t)));
            set_offset(&mut d, off);
            let dedup = format!("{t}|{}", text(&d, "device").unwrap_or(""));
            (t, None, Some(dedup))
        }
        Collection::Profile => {
            let (t, off) = doc_time(&d, &PROFILE_TIMES)?.unwrap_or((now, None));
            if !d.contains_key("startDate") {
                d.insert("startDate".into(), json!(iso(t)));
            }
            if !d.contains_key("created_at") {
                d.insert("created_at".into(), json!(iso(t)));
            }
            set_offset(&mut d, off);
            (t, None, Some(t.to_string()))
        }
        Collection::Food | Collection::Settings => {
            let (t, _) = doc_time(&d, &STATUS_TIMES)?.unwrap_or((now, None));
            if !d.contains_key("created_at") {
                d.insert("created_at".into(), json!(iso(t)));
            }
            (t, None, None)
        }
    };
    Ok(Normal { doc: d, ns_id, identifier, date_ms, kind, dedup })
}

/// Writes documents (POST, PUT): each one updates the stored document with
/// the same `_id`, else the same API v3 `identifier`, else the same natural
/// key (entries: date and type, as Nightscout's (sysTime, type);
/// treatments: created_at and eventType; devicestatus: created_at and
/// device; profile: its time), and is inserted otherwise. One transaction;
/// the mirror is updated in it. All or nothing: one document that cannot be
/// stored refuses the call, naming it.
pub async fn write(
    state: &AppState,
    auth: &NsAuth,
    coll: Collection,
    input: Vec<Value>,
    now: i64,
) -> Result<Vec<Written>, ServiceError> {
    if input.len() > MAX_BATCH {
        return Err(ServiceError::bad("body", format!("Send at most {MAX_BATCH} documents at once.")));
    }
    let many = input.len() > 1;
    let mut normal = Vec::with_capacity(input.len());
    for (i, v) in input.into_iter().enumerate() {
        match normalise(coll, v, now) {
            Ok(n) => normal.push(n),
            Err(r) if many => return Err(Refused { reason: format!("Document {i}: {}", r.reason), ..r }.into()),
            Err(r) => return Err(r.into()),
        }
    }
    store(state, auth, coll, normal, now).await
}

/// Writes a batch (API v1 POST of an array): the documents that can be
/// stored are, in one transaction, and each one that cannot is answered
/// with why, in its place. Nothing else changes.
pub async fn write_each(
    state: &AppState,
    auth: &NsAuth,
    coll: Collection,
    input: Vec<Value>,
    now: i64,
) -> Result<Vec<Result<Written, Refused>>, ServiceError> {
    if input.len() > MAX_BATCH {
        return Err(ServiceError::bad("body", format!("Send at most {MAX_BATCH} documents at once.")));
    }
    let checked: Vec<Result<Normal, Refused>> = input.into_iter().map(|v| normalise(coll, v, now)).collect();
    let valid: Vec<Normal> = checked.iter().filter_map(|c| c.as_ref().ok().cloned()).collect();
    let mut written =
        if valid.is_empty() { Vec::new() } else { store(state, auth, coll, valid, now).await? }.into_iter();
    Ok(checked
        .into_iter()
        .map(|c| match c {
            Ok(_) => written.next().ok_or_else(|| Refused::new(None, "not written")),
            Err(r) => Err(r),
        })
        .collect())
}

async fn store(
    state: &AppState,
    auth: &NsAuth,
    coll: Collection,
    normal: Vec<Normal>,
    now: i64,
) -> Result<Vec<Written>, ServiceError> {
    // A concurrent write of the same new document trips the unique keys
    // (`_id`, natural key), or SQLite's single writer: a later attempt then
    // finds the document and updates it.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let txn = begin_write(state).await?;
        match write_in(&txn, auth, coll, normal.clone(), now).await {
            Ok(out) => {
                txn.commit().await?;
                return Ok(out);
            }
            Err(ServiceError::Internal(cause)) if attempt < 3 && is_write_conflict(&cause) => {
                txn.rollback().await?;
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_write_conflict(cause: &str) -> bool {
    let c = cause.to_ascii_lowercase();
    c.contains("unique") || c.contains("duplicate key") || c.contains("database is locked") || c.contains("busy")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RowState {
    Stored,
    Changed,
    New,
}

async fn write_in<C: ConnectionTrait>(
    db: &C,
    auth: &NsAuth,
    coll: Collection,
    normal: Vec<Normal>,
    now: i64,
) -> Result<Vec<Written>, ServiceError> {
    let pid = auth.patient.id.as_str();
    let base = || {
        docs::Entity::find().filter(docs::Column::PatientId.eq(pid)).filter(docs::Column::Collection.eq(coll.name()))
    };
    // The stored documents any of these may update, in a few queries.
    let mut rows: Vec<(docs::Model, RowState)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let keys = |f: fn(&Normal) -> Option<&String>| -> Vec<String> {
        let mut v: Vec<String> = normal.iter().filter_map(f).cloned().collect();
        v.sort();
        v.dedup();
        v
    };
    let ids = keys(|n| n.ns_id.as_ref());
    let idents = keys(|n| n.identifier.as_ref());
    let dedups = keys(|n| n.dedup.as_ref());
    let mut found = Vec::new();
    for c in ids.chunks(300) {
        found.extend(base().filter(docs::Column::NsId.is_in(c.to_vec())).all(db).await?);
    }
    for c in idents.chunks(300) {
        found.extend(
            base()
                .filter(
                    Condition::any()
                        .add(docs::Column::Identifier.is_in(c.to_vec()))
                        .add(docs::Column::NsId.is_in(c.to_vec())),
                )
                .all(db)
                .await?,
        );
    }
    for c in dedups.chunks(300) {
        found.extend(base().filter(docs::Column::Dedup.is_in(c.to_vec())).all(db).await?);
    }
    // Prefer live documents over tombstones for the same key.
    found.sort_by_key(|r| (r.deleted_ms.is_some(), r.id));
    for r in found {
        if seen.insert(r.id) {
            rows.push((r, RowState::Stored));
        }
    }
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut by_ident: HashMap<String, usize> = HashMap::new();
    let mut by_dedup: HashMap<String, usize> = HashMap::new();
    for (i, (r, _)) in rows.iter().enumerate() {
        by_id.entry(r.ns_id.clone()).or_insert(i);
        if let Some(x) = &r.identifier {
            by_ident.entry(x.clone()).or_insert(i);
        }
        if let Some(x) = &r.dedup {
            by_dedup.entry(x.clone()).or_insert(i);
        }
    }

    let mut modified = next_modified(db, pid, coll, now).await?;
    let mut instants = BTreeSet::new();
    let mut out: Vec<(usize, bool, Option<String>)> = Vec::with_capacity(normal.len());
    for n in normal {
        let hit = n
            .ns_id
            .as_ref()
            .and_then(|i| by_id.get(i))
            .or_else(|| n.identifier.as_ref().and_then(|i| by_ident.get(i).or_else(|| by_id.get(i))))
            .or_else(|| n.dedup.as_ref().and_then(|k| by_dedup.get(k)))
            .copied();
        let doc_json =
            serde_json::to_string(&Value::Object(n.doc)).map_err(|e| ServiceError::Internal(e.to_string()))?;
        match hit {
            Some(ix) => {
                let (row, st) = &mut rows[ix];
                instants.insert(row.date_ms);
                let previous = row.identifier.clone().unwrap_or_else(|| row.ns_id.clone());
                if let Some(k) = &row.dedup
                    && by_dedup.get(k) == Some(&ix)
                {
                    by_dedup.remove(k);
                }
                if n.identifier.is_some() {
                    row.identifier = n.identifier;
                }
                // An update onto another document's natural key (a PUT that
                // moves a treatment onto another's time and type) keeps both:
                // this one without a natural key.
                row.dedup = n.dedup.filter(|k| by_dedup.get(k).is_none_or(|&other| other == ix));
                row.kind = n.kind;
                row.date_ms = n.date_ms;
                row.doc_json = doc_json;
                row.modified_ms = modified;
                row.deleted_ms = None;
                if *st == RowState::Stored {
                    *st = RowState::Changed;
                }
                if let Some(x) = &row.identifier {
                    by_ident.insert(x.clone(), ix);
                }
                if let Some(x) = &row.dedup {
                    by_dedup.insert(x.clone(), ix);
                }
                out.push((ix, false, Some(previous)));
            }
            None => {
                let ns_id = n.ns_id.unwrap_or_else(|| new_object_id(now));
                let ix = rows.len();
                by_id.insert(ns_id.clone(), ix);
                if let Some(x) = &n.identifier {
                    by_ident.insert(x.clone(), ix);
                }
                if let Some(x) = &n.dedup {
                    by_dedup.insert(x.clone(), ix);
                }
                rows.push((
                    docs::Model {
                        id: 0,
                        patient_id: pid.to_string(),
                        collection: coll.name().to_string(),
                        ns_id,
                        identifier: n.identifier,
                        dedup: n.dedup,
                        kind: n.kind,
                        date_ms: n.date_ms,
                        doc_json,
                        created_ms: modified,
                        modified_ms: modified,
                        deleted_ms: None,
                    },
                    RowState::New,
                ));
                out.push((ix, true, None));
            }
        }
        instants.insert(n.date_ms);
        modified += 1;
    }

    let mut new_rows = Vec::new();
    for (r, st) in &rows {
        match st {
            RowState::Stored => {}
            RowState::Changed => {
                docs::ActiveModel {
                    id: ActiveValue::Unchanged(r.id),
                    identifier: Set(r.identifier.clone()),
                    dedup: Set(r.dedup.clone()),
                    kind: Set(r.kind.clone()),
                    date_ms: Set(r.date_ms),
                    doc_json: Set(r.doc_json.clone()),
                    modified_ms: Set(r.modified_ms),
                    deleted_ms: Set(None),
                    ..Default::default()
                }
                .update(db)
                .await?;
            }
            RowState::New => new_rows.push(docs::ActiveModel {
                id: ActiveValue::NotSet,
                patient_id: Set(r.patient_id.clone()),
                collection: Set(r.collection.clone()),
                ns_id: Set(r.ns_id.clone()),
                identifier: Set(r.identifier.clone()),
                dedup: Set(r.dedup.clone()),
                kind: Set(r.kind.clone()),
                date_ms: Set(r.date_ms),
                doc_json: Set(r.doc_json.clone()),
                created_ms: Set(r.created_ms),
                modified_ms: Set(r.modified_ms),
                deleted_ms: Set(None),
            }),
        }
    }
    for chunk in new_rows.chunks(200) {
        docs::Entity::insert_many(chunk.to_vec()).exec_without_returning(db).await?;
    }
    if coll.mirrored() {
        mirror(db, auth, &instants, now).await?;
    }
    Ok(out
        .into_iter()
        .map(|(ix, created, previous_identifier)| Written {
            doc: Doc::from_row(rows[ix].0.clone()),
            created,
            previous_identifier,
        })
        .collect())
}

/// A write transaction. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`), so concurrent uploads wait their turn instead of
/// failing when a read snapshot turns stale; PostgreSQL ignores the mode.
async fn begin_write(state: &AppState) -> Result<DatabaseTransaction, ServiceError> {
    Ok(state
        .db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?)
}

/// The next srvModified in a patient's collection: now, or later than any
/// stored one, so API v3 history never sees two writes with the same time.
async fn next_modified<C: ConnectionTrait>(
    db: &C,
    patient_id: &str,
    coll: Collection,
    now: i64,
) -> Result<i64, ServiceError> {
    let max: Option<Option<i64>> = docs::Entity::find()
        .select_only()
        .column_as(docs::Column::ModifiedMs.max(), "m")
        .filter(docs::Column::PatientId.eq(patient_id))
        .filter(docs::Column::Collection.eq(coll.name()))
        .into_tuple()
        .one(db)
        .await?;
    Ok(match max.flatten() {
        Some(m) if m >= now => m + 1,
        _ => now,
    })
}

// ---------------------------------------------------------------------------------------------
// The mirror into the normalised stores

/// Splits sorted seconds into runs spanning at most a day (and 2,000 entries).
fn clusters(seconds: &BTreeSet<i64>) -> Vec<Vec<i64>> {
    let mut out: Vec<Vec<i64>> = Vec::new();
    for &s in seconds {
        match out.last_mut() {
            Some(c) if s - c[0] <= 86_400 && c.len() < 2_000 => c.push(s),
            _ => out.push(vec![s]),
        }
    }
    out
}

/// Re-derives the mirrored rows of every second in `instants_ms` from the
/// live entries and treatments now stored there. Mirrored rows belong to the
/// patient's Nightscout upload (`uploads.source = 'api'`, `format =
/// 'nightscout'`), so deleting that upload removes them all.
async fn mirror<C: ConnectionTrait>(
    db: &C,
    auth: &NsAuth,
    instants_ms: &BTreeSet<i64>,
    now: i64,
) -> Result<(), ServiceError> {
    let pid = auth.patient.id.as_str();
    let zone = auth.zone();
    let seconds: BTreeSet<i64> = instants_ms.iter().map(|t| t.div_euclid(1000)).collect();
    let upload_ids: Vec<String> = uploads::Entity::find()
        .select_only()
        .column(uploads::Column::Id)
        .filter(uploads::Column::PatientId.eq(pid))
        .filter(uploads::Column::Source.eq(UPLOAD_SOURCE))
        .filter(uploads::Column::Format.eq(UPLOAD_FORMAT))
        .order_by_asc(uploads::Column::CreatedMs)
        .into_tuple()
        .all(db)
        .await?;
    let mut removed: BTreeMap<String, i64> = BTreeMap::new();
    let mut records: Vec<therapy::Record> = Vec::new();
    for cluster in clusters(&seconds) {
        let set: BTreeSet<i64> = cluster.iter().copied().collect();
        let lo = cluster[0] * 1000;
        let hi = (cluster[cluster.len() - 1] + 1) * 1000;
        let inside = |ms: i64| set.contains(&ms.div_euclid(1000));
        if !upload_ids.is_empty() {
            let g: Vec<(i64, String, i64)> = glucose::Entity::find()
                .select_only()
                .column(glucose::Column::Id)
                .column(glucose::Column::Kind)
                .column(glucose::Column::TimeMs)
                .filter(glucose::Column::PatientId.eq(pid))
                .filter(glucose::Column::TimeMs.gte(lo))
                .filter(glucose::Column::TimeMs.lt(hi))
                .filter(glucose::Column::UploadId.is_in(upload_ids.clone()))
                .into_tuple()
                .all(db)
                .await?;
            let ids: Vec<i64> = g
                .iter()
                .filter(|r| inside(r.2))
                .map(|r| {
                    *removed.entry(r.1.clone()).or_default() += 1;
                    r.0
                })
                .collect();
            for c in ids.chunks(500) {
                glucose::Entity::delete_many().filter(glucose::Column::Id.is_in(c.to_vec())).exec(db).await?;
            }
            let e: Vec<(i64, String, i64)> = therapy_events::Entity::find()
                .select_only()
                .column(therapy_events::Column::Id)
                .column(therapy_events::Column::Kind)
                .column(therapy_events::Column::TimeMs)
                .filter(therapy_events::Column::PatientId.eq(pid))
                .filter(therapy_events::Column::TimeMs.gte(lo))
                .filter(therapy_events::Column::TimeMs.lt(hi))
                .filter(therapy_events::Column::UploadId.is_in(upload_ids.clone()))
                .into_tuple()
                .all(db)
                .await?;
            let ids: Vec<i64> = e
                .iter()
                .filter(|r| inside(r.2))
                .map(|r| {
                    *removed.entry(r.1.clone()).or_default() += 1;
                    r.0
                })
                .collect();
            for c in ids.chunks(500) {
                therapy_events::Entity::delete_many()
                    .filter(therapy_events::Column::Id.is_in(c.to_vec()))
                    .exec(db)
                    .await?;
            }
        }
        let live = docs::Entity::find()
            .filter(docs::Column::PatientId.eq(pid))
            .filter(docs::Column::Collection.is_in([Collection::Entries.name(), Collection::Treatments.name()]))
            .filter(docs::Column::DeletedMs.is_null())
            .filter(docs::Column::DateMs.gte(lo))
            .filter(docs::Column::DateMs.lt(hi))
            .all(db)
            .await?;
        for d in live.iter().filter(|d| inside(d.date_ms)) {
            records.extend(doc_records(d, zone));
        }
    }
    if records.is_empty() && removed.is_empty() {
        return Ok(());
    }
    let upload_id = match upload_ids.first() {
        Some(u) => u.clone(),
        None => {
            let id = store::new_id();
            uploads::ActiveModel {
                id: Set(id.clone()),
                patient_id: Set(pid.to_string()),
                uploaded_by: Set(None),
                source: Set(UPLOAD_SOURCE.into()),
                format: Set(UPLOAD_FORMAT.into()),
                file_name: Set(Some("Nightscout API".into())),
                blob_sha256: Set(None),
                device_id: Set(None),
                time_zone: Set(zone.name().to_string()),
                clock_offset_s: Set(0),
                counts_json: Set("{}".into()),
                duplicates: Set(0),
                rejected: Set(0),
                first_ms: Set(None),
                last_ms: Set(None),
                created_ms: Set(now),
            }
            .insert(db)
            .await?;
            id
        }
    };
    let ins = if records.is_empty() {
        store::records::Inserted::default()
    } else {
        let batch = Batch {
            patient_id: pid,
            device_id: None,
            upload_id: Some(&upload_id),
            rank: SourceRank::Api,
            zone,
            clock_offset_s: 0,
        };
        insert_records(db, &batch, &records).await?
    };
    // Keep the upload's summary current: net records by kind, time covered.
    if let Some(up) = uploads::Entity::find_by_id(upload_id.clone()).one(db).await? {
        let mut counts: BTreeMap<String, i64> = serde_json::from_str(&up.counts_json).unwrap_or_default();
        for (k, v) in &ins.by_kind {
            *counts.entry(k.clone()).or_default() += i64::try_from(*v).unwrap_or(0);
        }
        for (k, v) in &removed {
            *counts.entry(k.clone()).or_default() -= v;
        }
        counts.retain(|_, v| *v > 0);
        let first = match (up.first_ms, ins.first_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let last = match (up.last_ms, ins.last_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        uploads::ActiveModel {
            id: ActiveValue::Unchanged(up.id),
            counts_json: Set(serde_json::to_string(&counts).unwrap_or_else(|_| "{}".into())),
            first_ms: Set(first),
            last_ms: Set(last),
            ..Default::default()
        }
        .update(db)
        .await?;
    }
    // The clinic dashboard's per-day sums follow the mirrored glucose.
    if let (Some(a), Some(b)) = (instants_ms.first(), instants_ms.last()) {
        super::daily::refresh_in(db, pid, Some((*a, *b))).await?;
    }
    Ok(())
}

/// The normalised records of one stored entry or treatment, by the file
/// importer's Nightscout mapping. Without a `utcOffset` in the document, the
/// device time is the instant in the patient's zone.
fn doc_records(row: &docs::Model, zone: chrono_tz::Tz) -> Vec<therapy::Record> {
    let Ok(Value::Object(mut d)) = serde_json::from_str::<Value>(&row.doc_json) else { return Vec::new() };
    // Keys the importer reads as wrappers or as another document kind.
    for k in ["result", "entries", "treatments", "profiles", "data"] {
        if d.get(k).is_some_and(Value::is_array) {
            d.remove(k);
        }
    }
    d.remove("store");
    if row.collection == Collection::Entries.name() {
        d.remove("eventType");
    } else if d.get("eventType").and_then(Value::as_str) == Some("<none>") {
        d.insert("eventType".into(), json!(""));
    }
    let has_offset = d.get("utcOffset").is_some_and(|v| !v.is_null());
    let Ok(bytes) = serde_json::to_vec(&Value::Object(d)) else { return Vec::new() };
    let Ok(importer) = imp::import(bytes.as_slice(), imp::Format::NightscoutJson) else { return Vec::new() };
    importer
        .filter_map(|item| match item {
            Item::Record(r) => Some(r),
            _ => None,
        })
        .map(|mut r| {
            if !has_offset && let Some(t) = r.time {
                let local = t.with_timezone(&zone).naive_local();
                r.device_time = therapy::DeviceTime(local.with_nanosecond(0).unwrap_or(local));
            }
            r
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Queries

/// A comparison operator of `find[field][$op]` (v1) or `field$op` (v3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Nin,
    /// v1 `find[field][$exists]=true|false` (MongoDB's `$exists`).
    Exists,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s.trim_start_matches('$') {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "in" => Op::In,
            "nin" => Op::Nin,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub field: String,
    pub op: Op,
    pub value: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Date,
    Modified,
    Created,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub filters: Vec<Filter>,
    /// v1 `find[$or][i][field]...`: a document matches when it matches
    /// every filter of any one alternative (empty: no `$or`).
    pub any_of: Vec<Vec<Filter>>,
    pub limit: u64,
    pub skip: u64,
    pub sort: SortKey,
    pub descending: bool,
}

impl Query {
    pub fn newest(limit: u64) -> Query {
        Query { filters: Vec::new(), any_of: Vec::new(), limit, skip: 0, sort: SortKey::Date, descending: true }
    }

    pub fn with(mut self, field: &str, op: Op, value: &str) -> Query {
        self.filters.push(Filter { field: field.into(), op, value: value.into() });
        self
    }
}

/// The `count` Nightscout serves when a v1 request gives none.
pub fn v1_default_count(coll: Collection, pairs: &[(String, String)]) -> u64 {
    match coll {
        Collection::Treatments if pairs.iter().any(|(k, _)| k.starts_with("find[")) => TREATMENTS_FIND_DEFAULT_COUNT,
        Collection::Treatments => TREATMENTS_DEFAULT_COUNT,
        _ => DEFAULT_COUNT,
    }
}

/// API v1 query parameters: `count` and `find[field]`, `find[field][$op]`
/// (nested fields `find[a][b]` mean `a.b`; `$exists` too), and MongoDB's
/// `find[$and][i][...]` and `find[$or][i][...]` as Nightscout passes them
/// on (Trio sends both). Other parameters are ignored.
pub fn v1_query(pairs: &[(String, String)], default_count: u64) -> Result<Query, ServiceError> {
    let mut q = Query::newest(default_count);
    let mut any_of: BTreeMap<usize, Vec<Filter>> = BTreeMap::new();
    for (k, v) in pairs {
        if k == "count" {
            let n: u64 = v.trim().parse().map_err(|_| ServiceError::bad("count", "count must be a whole number."))?;
            q.limit = n.min(MAX_COUNT);
        } else if let Some(rest) = k.strip_prefix("find[") {
            let rest = rest.strip_suffix(']').unwrap_or(rest);
            let mut parts: Vec<&str> = rest.split("][").collect();
            // A `$and` alternative is one more condition (every find is
            // already a conjunction); a `$or` one is grouped by its index.
            let mut alternative = None;
            let logic = match parts.as_slice() {
                [l @ ("$and" | "$or"), i, _, ..] => Some((*l, *i)),
                _ => None,
            };
            if let Some((logic, index)) = logic {
                let i: usize = index.parse().map_err(|_| {
                    ServiceError::bad("find", format!("{logic} needs an index: find[{logic}][0][field]."))
                })?;
                if logic == "$or" {
                    alternative = Some(i);
                }
                parts.drain(..2);
            }
            let mut field = Vec::new();
            let mut op = Op::Eq;
            for part in parts {
                if part == "$exists" {
                    op = Op::Exists;
                } else if part.starts_with('$') {
                    op = Op::parse(part)
                        .ok_or_else(|| ServiceError::bad("find", format!("Unsupported operator {part}.")))?;
                } else if !part.is_empty() {
                    field.push(part);
                }
            }
            if field.is_empty() {
                return Err(ServiceError::bad("find", "find needs a field name."));
            }
            let f = Filter { field: field.join("."), op, value: v.clone() };
            match alternative {
                Some(i) => any_of.entry(i).or_default().push(f),
                None => q.filters.push(f),
            }
        }
    }
    q.any_of = any_of.into_values().collect();
    Ok(q)
}

/// API v3 search parameters: `limit` (1–1000, default 1000), `skip`,
/// `sort` / `sort$desc`, `fields`, and filters `field=value` or
/// `field$op=value`. Returns the query and the requested fields, if any.
pub fn v3_query(pairs: &[(String, String)]) -> Result<(Query, Option<Vec<String>>), ServiceError> {
    let mut q = Query::newest(V3_MAX_LIMIT);
    let mut fields = None;
    let mut sorted = false;
    for (k, v) in pairs {
        match k.as_str() {
            "token" | "now" => {}
            "limit" => {
                q.limit = v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=V3_MAX_LIMIT).contains(n))
                    .ok_or_else(|| ServiceError::bad("limit", "Parameter limit out of tolerance"))?;
            }
            "skip" => {
                q.skip = v.trim().parse().map_err(|_| ServiceError::bad("skip", "Parameter skip out of tolerance"))?;
            }
            "sort" | "sort$desc" => {
                if sorted {
                    return Err(ServiceError::bad("sort", "Parameters sort and sort_desc cannot be combined"));
                }
                sorted = true;
                q.descending = k == "sort$desc";
                q.sort = sort_key(v);
            }
            "fields" => {
                if v.trim() != "_all" {
                    fields = Some(v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect());
                }
            }
            _ => {
                let (field, op) = match k.rsplit_once('$') {
                    Some((f, o)) => (
                        f.to_string(),
                        Op::parse(o)
                            .ok_or_else(|| ServiceError::bad("filter", format!("Unsupported filter operator {o}")))?,
                    ),
                    None => (k.clone(), Op::Eq),
                };
                q.filters.push(Filter { field, op, value: v.clone() });
            }
        }
    }
    Ok((q, fields))
}

fn sort_key(field: &str) -> SortKey {
    match field {
        "srvModified" => SortKey::Modified,
        "srvCreated" => SortKey::Created,
        _ => SortKey::Date,
    }
}

/// The fields that are the document's instant (answered from `date_ms`).
fn is_date_field(field: &str) -> bool {
    matches!(field, "date" | "dateString" | "created_at" | "sysTime" | "mills" | "startDate" | "timestamp")
}

fn filter_ms(f: &Filter) -> Result<i64, ServiceError> {
    parse_time(&Value::String(f.value.clone()))
        .map(|x| x.0)
        .ok_or_else(|| ServiceError::bad("find", format!("{} is not a time for {}.", f.value, f.field)))
}

fn apply_ms<S: QueryFilter>(sel: S, col: docs::Column, op: Op, ms: i64) -> S {
    match op {
        Op::Eq => sel.filter(col.eq(ms)),
        Op::Ne => sel.filter(col.ne(ms)),
        Op::Gt => sel.filter(col.gt(ms)),
        Op::Gte => sel.filter(col.gte(ms)),
        Op::Lt => sel.filter(col.lt(ms)),
        Op::Lte => sel.filter(col.lte(ms)),
        Op::In | Op::Nin | Op::Exists => sel,
    }
}

/// Live documents matching a query, in its order.
pub async fn list(state: &AppState, auth: &NsAuth, coll: Collection, q: &Query) -> Result<Vec<Doc>, ServiceError> {
    let mut sel = docs::Entity::find()
        .filter(docs::Column::PatientId.eq(&auth.patient.id))
        .filter(docs::Column::Collection.eq(coll.name()))
        .filter(docs::Column::DeletedMs.is_null());
    let mut residual = Vec::new();
    for f in &q.filters {
        let ms_col = if is_date_field(&f.field) {
            Some(docs::Column::DateMs)
        } else if f.field == "srvModified" {
            Some(docs::Column::ModifiedMs)
        } else if f.field == "srvCreated" {
            Some(docs::Column::CreatedMs)
        } else {
            None
        };
        match (ms_col, f.op) {
            (Some(_), Op::In | Op::Nin | Op::Exists) => residual.push(f.clone()),
            (Some(col), op) => sel = apply_ms(sel, col, op, filter_ms(f)?),
            (None, Op::Eq)
                if (coll == Collection::Entries && f.field == "type")
                    || (coll == Collection::Treatments && f.field == "eventType") =>
            {
                sel = sel.filter(docs::Column::Kind.eq(f.value.clone()));
            }
            (None, Op::Eq) if f.field == "_id" => sel = sel.filter(docs::Column::NsId.eq(f.value.clone())),
            _ => residual.push(f.clone()),
        }
    }
    let col = match q.sort {
        SortKey::Date => docs::Column::DateMs,
        SortKey::Modified => docs::Column::ModifiedMs,
        SortKey::Created => docs::Column::CreatedMs,
    };
    sel = if q.descending {
        sel.order_by_desc(col).order_by_desc(docs::Column::Id)
    } else {
        sel.order_by_asc(col).order_by_asc(docs::Column::Id)
    };
    if residual.is_empty() && q.any_of.is_empty() {
        let rows = sel.offset(q.skip).limit(q.limit).all(&state.db).await?;
        return Ok(rows.into_iter().map(Doc::from_row).collect());
    }
    // Filters on other fields are applied here, page by page.
    const PAGE: u64 = 1000;
    const SCAN_LIMIT: u64 = 200_000;
    let want = q.skip.saturating_add(q.limit);
    let mut out = Vec::new();
    let mut offset = 0u64;
    while (out.len() as u64) < want && offset < SCAN_LIMIT {
        let rows = sel.clone().offset(offset).limit(PAGE).all(&state.db).await?;
        let n = rows.len() as u64;
        for r in rows {
            let d = Doc::from_row(r);
            let view = d.v3();
            if residual.iter().all(|f| matches(&view, f))
                && (q.any_of.is_empty() || q.any_of.iter().any(|alt| alt.iter().all(|f| matches(&view, f))))
            {
                out.push(d);
                if out.len() as u64 >= want {
                    break;
                }
            }
        }
        if n < PAGE {
            break;
        }
        offset += PAGE;
    }
    Ok(out.into_iter().skip(usize::try_from(q.skip).unwrap_or(usize::MAX)).collect())
}

fn lookup<'a>(doc: &'a Value, field: &str) -> Option<&'a Value> {
    field.split('.').try_fold(doc, |v, k| v.get(k))
}

fn value_eq(got: &Value, want: &str) -> bool {
    match got {
        Value::String(s) => s == want,
        Value::Number(n) => want.trim().parse::<f64>().ok().zip(n.as_f64()).is_some_and(|(a, b)| a == b),
        Value::Bool(b) => want == if *b { "true" } else { "false" },
        Value::Null => want == "null",
        _ => false,
    }
}

fn value_cmp(got: &Value, want: &str) -> Option<std::cmp::Ordering> {
    match got {
        Value::Number(n) => n.as_f64()?.partial_cmp(&want.trim().parse::<f64>().ok()?),
        Value::String(s) => Some(s.as_str().cmp(want)),
        _ => None,
    }
}

fn matches(doc: &Value, f: &Filter) -> bool {
    use std::cmp::Ordering::*;
    let got = lookup(doc, &f.field);
    let any_eq = |vals: &str| vals.split(['|', ',']).any(|w| got.is_some_and(|g| value_eq(g, w)));
    match f.op {
        Op::Eq => got.is_some_and(|g| value_eq(g, &f.value)),
        Op::Ne => !got.is_some_and(|g| value_eq(g, &f.value)),
        Op::In => any_eq(&f.value),
        Op::Nin => !any_eq(&f.value),
        Op::Exists => got.is_some() != matches!(f.value.trim(), "false" | "0" | ""),
        Op::Gt => got.and_then(|g| value_cmp(g, &f.value)) == Some(Greater),
        Op::Gte => matches!(got.and_then(|g| value_cmp(g, &f.value)), Some(Greater | Equal)),
        Op::Lt => got.and_then(|g| value_cmp(g, &f.value)) == Some(Less),
        Op::Lte => matches!(got.and_then(|g| value_cmp(g, &f.value)), Some(Less | Equal)),
    }
}

/// One document by `_id` or API v3 identifier, deleted or not.
pub async fn find_one(
    state: &AppState,
    auth: &NsAuth,
    coll: Collection,
    id: &str,
) -> Result<Option<Doc>, ServiceError> {
    find_row(&state.db, auth, coll, id).await.map(|r| r.map(Doc::from_row))
}

async fn find_row<C: ConnectionTrait>(
    db: &C,
    auth: &NsAuth,
    coll: Collection,
    id: &str,
) -> Result<Option<docs::Model>, ServiceError> {
    if !valid_id(id) {
        return Ok(None);
    }
    let mut rows = docs::Entity::find()
        .filter(docs::Column::PatientId.eq(&auth.patient.id))
        .filter(docs::Column::Collection.eq(coll.name()))
        .filter(Condition::any().add(docs::Column::NsId.eq(id)).add(docs::Column::Identifier.eq(id)))
        .all(db)
        .await?;
    rows.sort_by_key(|r| (r.deleted_ms.is_some(), r.ns_id != id, r.id));
    Ok(rows.into_iter().next())
}

/// API v3 PUT: replaces the document with this identifier, or creates it.
pub async fn replace(
    state: &AppState,
    auth: &NsAuth,
    coll: Collection,
    id: &str,
    doc: Value,
    now: i64,
) -> Result<Written, ServiceError> {
    if !valid_id(id) {
        return Err(ServiceError::bad("identifier", "Bad or missing identifier field"));
    }
    let mut n = normalise(coll, doc, now)?;
    let txn = begin_write(state).await?;
    match find_row(&txn, auth, coll, id).await? {
        Some(row) => {
            n.ns_id = Some(row.ns_id);
            n.identifier = row.identifier.or_else(|| n.identifier.take());
        }
        None => n.identifier = Some(id.to_string()),
    }
    let mut w = write_in(&txn, auth, coll, vec![n], now).await?;
    txn.commit().await?;
    w.pop().ok_or_else(|| ServiceError::Internal("nothing written".into()))
}

/// What a PATCH found.
#[derive(Clone, Debug)]
pub enum Patched {
    NotFound,
    Gone,
    Done(Box<Written>),
}

/// API v3 PATCH: sets the given fields (the identifier and server fields stay).
pub async fn patch(
    state: &AppState,
    auth: &NsAuth,
    coll: Collection,
    id: &str,
    fields: Map<String, Value>,
    now: i64,
) -> Result<Patched, ServiceError> {
    let txn = begin_write(state).await?;
    let Some(row) = find_row(&txn, auth, coll, id).await? else { return Ok(Patched::NotFound) };
    if row.deleted_ms.is_some() {
        return Ok(Patched::Gone);
    }
    let mut d = Doc::from_row(row.clone()).doc;
    for (k, v) in fields {
        if SERVER_FIELDS.contains(&k.as_str()) || k == "identifier" || k == "isValid" || v.is_null() {
            continue;
        }
        d.insert(k, v);
    }
    let mut n = normalise(coll, Value::Object(d), now)?;
    n.ns_id = Some(row.ns_id);
    n.identifier = row.identifier;
    let mut w = write_in(&txn, auth, coll, vec![n], now).await?;
    txn.commit().await?;
    Ok(w.pop().map(|w| Patched::Done(Box::new(w))).unwrap_or(Patched::NotFound))
}

/// Deletes one document by `_id` or identifier: a tombstone (API v3 history
/// reports it), or gone for good with `permanent`. `false` when not found.
pub async fn delete(
    state: &AppState,
    auth: &NsAuth,
    coll: Collection,
    id: &str,
    permanent: bool,
    now: i64,
) -> Result<bool, ServiceError> {
    let txn = begin_write(state).await?;
    let Some(row) = find_row(&txn, auth, coll, id).await? else { return Ok(false) };
    delete_rows(&txn, auth, coll, vec![row], permanent, now).await?;
    txn.commit().await?;
    Ok(true)
}

/// Deletes every live document matching a query (API v1 `DELETE` with
/// `find[...]`); refuses a query without filters. Returns how many.
pub async fn delete_matching(
    state: &AppState,
    auth: &NsAuth,
    coll: Collection,
    q: &Query,
    now: i64,
) -> Result<u64, ServiceError> {
    if q.filters.is_empty() && q.any_of.is_empty() {
        return Err(ServiceError::bad("find", "Name what to delete with find[...]."));
    }
    let mut all = q.clone();
    all.limit = MAX_COUNT;
    let found = list(state, auth, coll, &all).await?;
    let n = found.len() as u64;
    if n > 0 {
        let txn = begin_write(state).await?;
        delete_rows(&txn, auth, coll, found.into_iter().map(|d| d.row).collect(), false, now).await?;
        txn.commit().await?;
    }
    Ok(n)
}

async fn delete_rows<C: ConnectionTrait>(
    db: &C,
    auth: &NsAuth,
    coll: Collection,
    rows: Vec<docs::Model>,
    permanent: bool,
    now: i64,
) -> Result<(), ServiceError> {
    let mut modified = next_modified(db, &auth.patient.id, coll, now).await?;
    let mut instants = BTreeSet::new();
    for row in rows {
        instants.insert(row.date_ms);
        if permanent {
            docs::Entity::delete_by_id(row.id).exec(db).await?;
        } else {
            docs::Entity::update_many()
                .col_expr(docs::Column::DeletedMs, Expr::value(now))
                .col_expr(docs::Column::ModifiedMs, Expr::value(modified))
                .filter(docs::Column::Id.eq(row.id))
                .exec(db)
                .await?;
            modified += 1;
        }
    }
    if coll.mirrored() {
        mirror(db, auth, &instants, now).await?;
    }
    Ok(())
}

/// API v3 history: documents (deleted ones too) modified after `since_ms`
/// (or at it, with `inclusive`), oldest change first.
pub async fn history(
    state: &AppState,
    auth: &NsAuth,
    coll: Collection,
    since_ms: i64,
    inclusive: bool,
    limit: u64,
) -> Result<Vec<Doc>, ServiceError> {
    let col = docs::Column::ModifiedMs;
    let rows = docs::Entity::find()
        .filter(docs::Column::PatientId.eq(&auth.patient.id))
        .filter(docs::Column::Collection.eq(coll.name()))
        .filter(if inclusive { col.gte(since_ms) } else { col.gt(since_ms) })
        .order_by_asc(col)
        .order_by_asc(docs::Column::Id)
        .limit(limit)
        .all(&state.db)
        .await?;
    Ok(rows.into_iter().map(Doc::from_row).collect())
}

/// API v3 lastModified: the latest srvModified of each collection that has documents.
pub async fn last_modified(state: &AppState, auth: &NsAuth) -> Result<BTreeMap<String, i64>, ServiceError> {
    let rows: Vec<(String, Option<i64>)> = docs::Entity::find()
        .select_only()
        .column(docs::Column::Collection)
        .column_as(docs::Column::ModifiedMs.max(), "m")
        .filter(docs::Column::PatientId.eq(&auth.patient.id))
        .group_by(docs::Column::Collection)
        .into_tuple()
        .all(&state.db)
        .await?;
    Ok(rows.into_iter().filter_map(|(c, m)| Some((c, m?))).collect())
}

// ---------------------------------------------------------------------------------------------
// Status

/// `GET /api/v1/status.json`. Without valid credentials it names no patient
/// setting (the unit is mg/dl) and `authorized` is null.
pub fn status_v1(auth: Option<&NsAuth>, now: i64) -> Value {
    let units = auth.map_or("mg/dl", NsAuth::units);
    json!({
        "status": "ok",
        "name": "Diabase",
        "version": NS_VERSION,
        "diabaseVersion": env!("CARGO_PKG_VERSION"),
        "serverTime": iso(now),
        "serverTimeEpoch": now,
        "apiEnabled": true,
        "careportalEnabled": true,
        "boluscalcEnabled": false,
        "head": "diabase",
        "settings": {
            "units": units,
            "timeFormat": 24,
            "customTitle": "Diabase",
            "theme": "default",
            "language": "en",
            "authDefaultRoles": "denied",
            "enable": ["careportal", "iob", "cob", "basal", "devicestatus"],
            "showPlugins": "careportal iob cob basal",
            "thresholds": {"bgHigh": 250, "bgTargetTop": 180, "bgTargetBottom": 70, "bgLow": 54},
            "alarmTypes": ["predict"],
        },
        "extendedSettings": {"devicestatus": {"advanced": true}},
        "authorized": auth.map(|a| if a.read_only {
            json!({"sub": READ_TOKEN_NAME, "permissionGroups": [["api:*:read"]]})
        } else {
            json!({"sub": TOKEN_NAME, "permissionGroups": [["*"]]})
        }),
    })
}

/// `GET /api/v3/version` (the `result`).
pub fn version_v3(now: i64) -> Value {
    json!({
        "version": NS_VERSION,
        "apiVersion": API3_VERSION,
        "srvDate": now,
        "storage": {"storage": "diabase", "version": env!("CARGO_PKG_VERSION")},
    })
}

/// `GET /api/v3/status` (the `result`): the version and full permissions on every collection.
pub fn status_v3(now: i64) -> Value {
    let mut v = version_v3(now);
    let perms: Map<String, Value> = Collection::ALL.iter().map(|c| (c.name().to_string(), json!("crud"))).collect();
    if let Value::Object(m) = &mut v {
        m.insert("apiPermissions".into(), Value::Object(perms));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_hash_like_nightscout() {
        // sha1("verysecretpassword")
        let h = sha1_hex(b"verysecretpassword");
        assert_eq!(h.len(), 40);
        assert_eq!(secret_hash(&h), h);
        assert_eq!(secret_hash(&h.to_uppercase()), h);
        assert_eq!(secret_hash("verysecretpassword"), h);
    }

    #[test]
    fn times_parse() {
        assert_eq!(parse_time(&json!(1_600_000_000_000i64)), Some((1_600_000_000_000, None)));
        assert_eq!(parse_time(&json!("1600000000000")), Some((1_600_000_000_000, None)));
        assert_eq!(parse_time(&json!("1600000000000.0")), Some((1_600_000_000_000, None)));
        assert_eq!(parse_time(&json!("2024-01-01T00:00:00Z")).map(|x| x.0), Some(1_704_067_200_000));
        assert_eq!(parse_time(&json!("2024-01-01")).map(|x| x.0), Some(1_704_067_200_000));
        assert_eq!(parse_time(&json!("2024-01-01T01:00:00.000+0100")), Some((1_704_067_200_000, Some(60))));
        assert_eq!(parse_time(&json!("2024-01-01T01:00:00+01:00")), Some((1_704_067_200_000, Some(60))));
        assert_eq!(parse_time(&json!("2024-01-01T00:00:00")).map(|x| x.0), Some(1_704_067_200_000));
        assert_eq!(parse_time(&json!("yesterday")), None);
        assert_eq!(parse_time(&json!(-5)), None);
    }

    #[test]
    fn v1_queries_parse() {
        let p = |s: &[(&str, &str)]| s.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        let q = v1_query(
            &p(&[("count", "5"), ("find[date][$gte]", "1600000000000"), ("find[type]", "sgv"), ("rr", "1")]),
            10,
        )
        .unwrap();
        assert_eq!(q.limit, 5);
        assert_eq!(
            q.filters,
            vec![
                Filter { field: "date".into(), op: Op::Gte, value: "1600000000000".into() },
                Filter { field: "type".into(), op: Op::Eq, value: "sgv".into() },
            ]
        );
        let q = v1_query(&p(&[("find[boluscalc][foods][$ne]", "x")]), 10).unwrap();
        assert_eq!(q.filters[0].field, "boluscalc.foods");
        assert_eq!(q.filters[0].op, Op::Ne);
        assert!(v1_query(&p(&[("find[date][$where]", "1")]), 10).is_err());
        assert!(v1_query(&p(&[("count", "many")]), 10).is_err());
        assert_eq!(v1_query(&p(&[]), 10).unwrap().limit, 10);
        // Trio's: $exists, a $and list, a $or of two alternatives.
        let q = v1_query(
            &p(&[
                ("find[carbs][$exists]", "true"),
                ("find[$and][0][enteredBy][$ne]", "Trio"),
                ("find[$or][0][id][$eq]", "A"),
                ("find[$or][1][dateString][$eq]", "B"),
            ]),
            10,
        )
        .unwrap();
        assert_eq!(
            q.filters,
            vec![
                Filter { field: "carbs".into(), op: Op::Exists, value: "true".into() },
                Filter { field: "enteredBy".into(), op: Op::Ne, value: "Trio".into() },
            ]
        );
        assert_eq!(
            q.any_of,
            vec![
                vec![Filter { field: "id".into(), op: Op::Eq, value: "A".into() }],
                vec![Filter { field: "dateString".into(), op: Op::Eq, value: "B".into() }],
            ]
        );
        assert!(v1_query(&p(&[("find[$or][x][id]", "A")]), 10).is_err());
    }

    #[test]
    fn v3_queries_parse() {
        let p = |s: &[(&str, &str)]| s.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        let (q, f) = v3_query(&p(&[
            ("sort$desc", "date"),
            ("type", "sgv"),
            ("date$gt", "5"),
            ("limit", "3"),
            ("fields", "sgv,date"),
        ]))
        .unwrap();
        assert!(q.descending);
        assert_eq!(q.limit, 3);
        assert_eq!(q.filters.len(), 2);
        assert_eq!(q.filters[1], Filter { field: "date".into(), op: Op::Gt, value: "5".into() });
        assert_eq!(f, Some(vec!["sgv".to_string(), "date".to_string()]));
        assert!(v3_query(&p(&[("limit", "0")])).is_err());
        assert!(v3_query(&p(&[("limit", "1001")])).is_err());
        assert!(v3_query(&p(&[("sort", "date"), ("sort$desc", "date")])).is_err());
        assert!(v3_query(&p(&[("date$re", "x")])).is_err());
    }

    #[test]
    fn residual_filters_match() {
        let d = json!({"sgv": 120, "type": "sgv", "boluscalc": {"x": "a"}});
        let f = |field: &str, op, value: &str| Filter { field: field.into(), op, value: value.into() };
        assert!(matches(&d, &f("sgv", Op::Gte, "120")));
        assert!(!matches(&d, &f("sgv", Op::Gt, "120")));
        assert!(matches(&d, &f("sgv", Op::Lt, "121.5")));
        assert!(matches(&d, &f("type", Op::In, "mbg|sgv")));
        assert!(matches(&d, &f("boluscalc.x", Op::Eq, "a")));
        assert!(matches(&d, &f("missing", Op::Ne, "a")));
        assert!(!matches(&d, &f("missing", Op::Eq, "a")));
        assert!(matches(&d, &f("sgv", Op::Exists, "true")));
        assert!(!matches(&d, &f("missing", Op::Exists, "true")));
        assert!(matches(&d, &f("missing", Op::Exists, "false")));
    }

    #[test]
    fn entries_normalise() {
        let n =
            normalise(Collection::Entries, json!({"sgv": "120", "date": 1_600_000_000_000i64, "device": "xDrip"}), 0)
                .unwrap();
        // Posted as text, kept as text (Nightscout stores entries as sent).
        assert_eq!(n.doc["sgv"], json!("120"));
        assert_eq!(n.doc["type"], json!("sgv"));
        assert_eq!(n.doc["dateString"], json!("2020-09-13T12:26:40.000Z"));
        assert_eq!(n.doc["sysTime"], n.doc["dateString"]);
        assert_eq!(n.date_ms, 1_600_000_000_000);
        // Nightscout's natural key: (sysTime, type), whichever device sent it.
        assert_eq!(n.dedup.as_deref(), Some("1600000000000|sgv"));
        let other = normalise(
            Collection::Entries,
            json!({"sgv": 121, "date": 1_600_000_000_000i64, "device": "loop://iPhone"}),
            0,
        )
        .unwrap();
        assert_eq!(other.dedup, n.dedup);
        let t = normalise(
            Collection::Treatments,
            json!({"created_at": "2024-01-01T01:00:00+01:00", "insulin": "2", "isValid": false, "foo": "1"}),
            0,
        )
        .unwrap();
        assert_eq!(t.doc["created_at"], json!("2024-01-01T00:00:00.000Z"));
        assert_eq!(t.doc["utcOffset"], json!(60));
        assert_eq!(t.doc["eventType"], json!("<none>"));
        // Nightscout turns a treatment's insulin into a number; other fields keep their type.
        assert_eq!(t.doc["insulin"], json!(2));
        assert_eq!(t.doc["foo"], json!("1"));
        assert_eq!(t.doc["isValid"], json!(false));
        let p = normalise(Collection::Profile, json!({"mills": "1700000000000", "defaultProfile": "x"}), 0).unwrap();
        assert_eq!(p.doc["mills"], json!("1700000000000"));
        assert_eq!(p.date_ms, 1_700_000_000_000);
        assert!(normalise(Collection::Entries, json!([1]), 0).is_err());
        let s = normalise(Collection::Entries, json!({"_id": "bad id!", "srvModified": 5, "sgv": 100, "date": 9}), 7)
            .unwrap();
        assert_eq!(s.ns_id, None);
        assert!(!s.doc.contains_key("srvModified"));
        assert_eq!(s.date_ms, 9);
    }

    #[test]
    fn entries_without_a_valid_time_or_reading_are_refused() {
        // Never stamped with the server's clock.
        let r = normalise(Collection::Entries, json!({"sgv": 100}), 7).unwrap_err();
        assert_eq!(r.field, Some("date"));
        let r =
            normalise(Collection::Entries, json!({"sgv": "high", "date": "yesterday", "dateString": "not a date"}), 7)
                .unwrap_err();
        assert_eq!(r.field, Some("date"));
        assert!(r.reason.contains("yesterday"), "{r:?}");
        // A valid date with a dateString that is no time contradicts itself.
        let r = normalise(
            Collection::Entries,
            json!({"sgv": 100, "date": 1_600_000_000_000i64, "dateString": "not a date"}),
            7,
        )
        .unwrap_err();
        assert_eq!(r.field, Some("dateString"));
        let r = normalise(Collection::Entries, json!({"sgv": "high", "date": 1_600_000_000_000i64}), 7).unwrap_err();
        assert_eq!(r.field, Some("sgv"));
        let r = normalise(Collection::Entries, json!({"type": "mbg", "date": 1_600_000_000_000i64}), 7).unwrap_err();
        assert_eq!(r.field, Some("mbg"));
        // A dateString alone is enough; a calibration needs no reading.
        assert!(
            normalise(Collection::Entries, json!({"sgv": 100, "dateString": "2024-01-01T10:00:00+01:00"}), 7).is_ok()
        );
        assert!(normalise(Collection::Entries, json!({"type": "cal", "slope": 1000, "date": 5}), 7).is_ok());
        // Treatments without a time are Nightscout's "now"; a time that is not one is refused.
        assert_eq!(normalise(Collection::Treatments, json!({"eventType": "Note"}), 7).unwrap().date_ms, 7);
        let r = normalise(Collection::Treatments, json!({"eventType": "Note", "created_at": "soon"}), 7).unwrap_err();
        assert_eq!(r.field, Some("created_at"));
    }

    #[test]
    fn treatments_default_count_as_nightscout() {
        let p = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        assert_eq!(v1_default_count(Collection::Treatments, &p(&[])), 100);
        assert_eq!(v1_default_count(Collection::Treatments, &p(&[("find[created_at][$gte]", "2024")])), 1000);
        assert_eq!(v1_default_count(Collection::Entries, &p(&[])), 10);
        assert_eq!(v1_default_count(Collection::DeviceStatus, &p(&[])), 10);
    }

    #[test]
    fn object_ids_are_24_hex() {
        let id = new_object_id(1_700_000_000_000);
        assert_eq!(id.len(), 24);
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, new_object_id(1_700_000_000_000));
    }

    #[test]
    fn seconds_cluster_by_day() {
        let s: BTreeSet<i64> = [0, 10, 86_400, 86_401, 500_000].into_iter().collect();
        assert_eq!(clusters(&s), vec![vec![0, 10, 86_400], vec![86_401], vec![500_000]]);
    }
}
