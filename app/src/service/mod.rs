//! The service layer: one implementation of every operation, called by the
//! Leptos server functions and by the REST API alike. Authorization is
//! decided in [`policy`]; errors map to HTTP in one place ([`ServiceError`]).

pub mod auth;
pub mod clinic;
pub mod daily;
pub mod dashboard;
pub mod erase;
pub mod export;
pub mod import;
pub mod keys;
pub mod logins;
pub mod mail;
pub mod me;
pub mod nightscout;
pub mod passkeys;
pub mod policy;
pub mod ratelimit;
pub mod reauth;
pub mod report;
pub mod reset;
pub mod seed;
pub mod sharing;
pub mod sms;
pub mod sweep;
pub mod tokens;
pub mod twofactor;
pub mod verify_email;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// Everything a request needs, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub leptos_options: LeptosOptions,
    /// The SQLite log's background checkpoint; it stops with the last clone
    /// of the state.
    pub checkpointer: Option<Arc<store::checkpoint::Checkpointer>>,
    /// The mail queue's delivery worker (see [`mail`]); it stops with the
    /// last clone of the state. `None`: mail waits in the queue until a
    /// worker or [`mail::flush`] delivers it.
    pub mailer: Option<Arc<mail::Mailer>>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(s: &AppState) -> Self {
        s.leptos_options.clone()
    }
}

/// Runtime settings (see the README's configuration table).
#[derive(Clone, Debug)]
pub struct Config {
    /// Cookies get `Secure` and the `__Host-` prefix (TLS, or an https public URL).
    pub secure_cookies: bool,
    /// A session ends after this long without a request.
    pub session_idle_ms: i64,
    /// A session ends this long after log-in, whatever its use.
    pub session_absolute_ms: i64,
    /// Failed log-ins allowed per window: per (email, client address), per
    /// client address (password and passkey), and per email from all
    /// clients together (a last resort against distributed guessing).
    pub login_limit_per_email: u32,
    pub login_limit_per_ip: u32,
    pub login_limit_per_email_all_clients: u32,
    pub login_window_ms: i64,
    /// Failed Nightscout credentials allowed per client address per window
    /// (`nightscout::FAILED_AUTH_WINDOW_MS`); past it, the address's further
    /// Nightscout requests are refused unchecked (429).
    pub ns_failed_auth_limit: u32,
    /// Origins accepted on state-changing requests besides the request's own host.
    pub extra_origins: Vec<String>,
    /// The largest file an import accepts (at most `import::MAX_FILE_BYTES`).
    pub max_upload_bytes: usize,
    /// Seals personal identifiers at rest (key from `DIABASE_KEY_FILE`).
    pub cipher: Arc<store::crypto::FieldCipher>,
    /// Where mail goes when no SMTP server is configured: one `.eml` file per message.
    pub mail_outbox: std::path::PathBuf,
    /// An SMTP server to send mail through (`smtp://user:pass@host:587?tls=required`,
    /// `smtps://…`, or `smtp://127.0.0.1:25` in the clear); `None`: the outbox.
    pub smtp_url: Option<String>,
    /// The sender address of outgoing mail.
    pub mail_from: String,
    /// The operator's HTTP SMS gateway (see [`sms`]); `None`: no text messages.
    pub sms: Option<sms::Gateway>,
    /// The address users reach the site at, for links in mail (no trailing slash).
    pub public_url: String,
    /// Link-code entries (preview, accept, decline) allowed per user per window.
    pub link_code_attempts: u32,
    pub link_code_window_ms: i64,
    /// With `DIABASE_TRUST_PROXY`, the client address is the n-th
    /// `X-Forwarded-For` entry from the right (the one the n-th trusted
    /// proxy added; `DIABASE_TRUSTED_PROXY_HOPS`, default 1).
    pub trusted_proxy_hops: usize,
    /// `public_url` was set by the operator (`DIABASE_PUBLIC_URL`), not
    /// guessed from the listen address: links always use it.
    pub public_url_configured: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            secure_cookies: false,
            session_idle_ms: 2 * 3600 * 1000,
            session_absolute_ms: 7 * 24 * 3600 * 1000,
            login_limit_per_email: 10,
            login_limit_per_ip: 100,
            login_limit_per_email_all_clients: 100,
            login_window_ms: 15 * 60 * 1000,
            ns_failed_auth_limit: nightscout::FAILED_AUTH_LIMIT,
            extra_origins: Vec::new(),
            max_upload_bytes: import::MAX_FILE_BYTES,
            // Tests and tools get a throw-away key; `diabase serve` reads its key file.
            cipher: Arc::new(store::crypto::FieldCipher::new(store::crypto::FieldCipher::random_key())),
            mail_outbox: std::path::PathBuf::from("data/outbox"),
            smtp_url: None,
            mail_from: "Diabase <no-reply@diabase.invalid>".into(),
            sms: None,
            public_url: "http://127.0.0.1:3000".into(),
            link_code_attempts: 10,
            link_code_window_ms: 15 * 60 * 1000,
            trusted_proxy_hops: 1,
            public_url_configured: false,
        }
    }
}

/// The milliseconds since the Unix epoch, now. The only clock read: domain
/// functions take `now` as a parameter.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn ms_to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// What went wrong, in terms a client can act on. The message is safe to
/// show; internal causes are logged, never sent.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{message}")]
    BadInput { field: Option<&'static str>, message: String },
    #[error("Email or password is incorrect.")]
    InvalidCredentials,
    #[error("Please log in.")]
    Unauthorized,
    #[error("Enter the 6-digit code from your authenticator app, or one of your recovery codes.")]
    TotpRequired,
    #[error("That code is not right. Enter the code your authenticator app shows now, or a recovery code.")]
    TotpInvalid,
    #[error("This clinic requires two-factor authentication or a passkey. Turn one on in Settings to open the clinic.")]
    ClinicRequires2fa,
    #[error("You do not have access to this.")]
    Forbidden,
    /// The account's address is not confirmed yet: no passkeys, tokens,
    /// Nightscout site or sharing until it is.
    #[error("Confirm your email address first: we sent you a link. You can send it again in Settings.")]
    EmailUnconfirmed,
    /// A sensitive change needs the password (or a passkey) checked within
    /// the last few minutes: `POST /api/v1/me/reauth`, then try again.
    #[error("For your security, enter your password again to continue.")]
    ReauthRequired,
    #[error("Not found.")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("Too many attempts. Try again in {retry_after_s} seconds.")]
    RateLimited { retry_after_s: i64 },
    #[error("The file is larger than the limit of {limit_bytes} bytes.")]
    TooLarge { limit_bytes: u64 },
    #[error("{0}")]
    Unprocessable(String),
    /// An outside service (the SMS gateway) failed; the message says which.
    #[error("{0}")]
    Unavailable(String),
    #[error("Something went wrong on our side. Please try again.")]
    Internal(String),
}

impl ServiceError {
    pub fn bad(field: &'static str, message: impl Into<String>) -> Self {
        ServiceError::BadInput { field: Some(field), message: message.into() }
    }

    /// The message for a person reading `lang`: from the catalogs (area
    /// `errors`). A message built with `format!` is translated through its
    /// format string, which the catalogs hold as a template
    /// (`"{file_name}: the file is empty"`); the values inside (a file name,
    /// an importer's own text) stay as they are. The REST API keeps the
    /// English `message` of the design.
    pub fn message_in(&self, lang: crate::i18n::Lang) -> String {
        match self {
            ServiceError::InvalidCredentials => lang.tr("Email or password is incorrect.").into(),
            ServiceError::Unauthorized => lang.tr("Please log in.").into(),
            ServiceError::TotpRequired => {
                lang.tr("Enter the 6-digit code from your authenticator app, or one of your recovery codes.").into()
            }
            ServiceError::TotpInvalid => lang
                .tr("That code is not right. Enter the code your authenticator app shows now, or a recovery code.")
                .into(),
            ServiceError::ClinicRequires2fa => lang
                .tr("This clinic requires two-factor authentication or a passkey. Turn one on in Settings to open the clinic.")
                .into(),
            ServiceError::Forbidden => lang.tr("You do not have access to this.").into(),
            ServiceError::EmailUnconfirmed => lang
                .tr("Confirm your email address first: we sent you a link. You can send it again in Settings.")
                .into(),
            ServiceError::ReauthRequired => lang.tr("For your security, enter your password again to continue.").into(),
            ServiceError::NotFound => lang.tr("Not found.").into(),
            ServiceError::RateLimited { retry_after_s } => {
                lang.trf("Too many attempts. Try again in {seconds} seconds.", &[("seconds", retry_after_s)])
            }
            ServiceError::TooLarge { limit_bytes } => {
                lang.trf("The file is larger than the limit of {bytes} bytes.", &[("bytes", limit_bytes)])
            }
            ServiceError::Internal(_) => lang.tr("Something went wrong on our side. Please try again.").into(),
            ServiceError::BadInput { message, .. }
            | ServiceError::Conflict(message)
            | ServiceError::Unprocessable(message)
            | ServiceError::Unavailable(message) => lang.tr_message(message).unwrap_or_else(|| message.clone()),
        }
    }

    /// HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            ServiceError::BadInput { .. } => 400,
            ServiceError::InvalidCredentials
            | ServiceError::Unauthorized
            | ServiceError::TotpRequired
            | ServiceError::TotpInvalid
            | ServiceError::ReauthRequired => 401,
            ServiceError::ClinicRequires2fa => 403,
            ServiceError::Forbidden | ServiceError::EmailUnconfirmed => 403,
            ServiceError::NotFound => 404,
            ServiceError::Conflict(_) => 409,
            ServiceError::RateLimited { .. } => 429,
            ServiceError::TooLarge { .. } => 413,
            ServiceError::Unprocessable(_) => 422,
            ServiceError::Unavailable(_) => 502,
            ServiceError::Internal(_) => 500,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::BadInput { .. } => "bad_request",
            ServiceError::InvalidCredentials => "invalid_credentials",
            ServiceError::Unauthorized => "unauthorized",
            ServiceError::TotpRequired => "totp_required",
            ServiceError::TotpInvalid => "totp_invalid",
            ServiceError::ClinicRequires2fa => "two_factor_required",
            ServiceError::Forbidden => "forbidden",
            ServiceError::EmailUnconfirmed => "email_unconfirmed",
            ServiceError::ReauthRequired => "reauth_required",
            ServiceError::NotFound => "not_found",
            ServiceError::Conflict(_) => "conflict",
            ServiceError::RateLimited { .. } => "rate_limited",
            ServiceError::TooLarge { .. } => "too_large",
            ServiceError::Unprocessable(_) => "unprocessable",
            ServiceError::Unavailable(_) => "unavailable",
            ServiceError::Internal(_) => "internal",
        }
    }
}

impl From<sea_orm::DbErr> for ServiceError {
    fn from(e: sea_orm::DbErr) -> Self {
        tracing::error!(error = %e, "database error");
        ServiceError::Internal(e.to_string())
    }
}

/// Who is making a request, once authenticated.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user: store::entity::users::Model,
    pub via: AuthVia,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthVia {
    /// A browser session (its id hash).
    Session(String),
    /// A personal access token (its id) and what it may do.
    Token { id: String, scopes: tokens::TokenScopes },
}

impl Actor {
    /// Whether the caller may do everything the account may (a session, or
    /// a token with full access). Everything but reading and uploading
    /// patient data needs this.
    pub fn full_access(&self) -> bool {
        match &self.via {
            AuthVia::Session(_) => true,
            AuthVia::Token { scopes, .. } => scopes.full,
        }
    }

    /// Whether the credential allows `action` at all (the policy then asks
    /// whether the account does).
    pub fn credential_allows(&self, action: policy::Action) -> bool {
        match &self.via {
            AuthVia::Session(_) => true,
            AuthVia::Token { scopes, .. } => scopes.allows(action),
        }
    }
}

/// Client facts recorded with sessions and audit entries.
#[derive(Clone, Debug, Default)]
pub struct ClientMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The browser's device id (see [`logins`]).
    pub device: Option<String>,
    /// Whether `device` came from the `__Host-` cookie (only that one is
    /// read under TLS).
    pub device_prefixed: bool,
}

/// Authenticates a request: a bearer token, else the session cookie.
/// `None` when neither is present or valid.
pub async fn authenticate(
    state: &AppState,
    headers: &http::HeaderMap,
    now: i64,
) -> Result<Option<Actor>, ServiceError> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        if let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) {
            // A presented but bad token is refused even with a cookie.
            return tokens::resolve(state, token.trim(), now).await;
        }
    }
    let Some(token) = auth::session_token_from_cookies(headers, state.config.secure_cookies) else {
        return Ok(None);
    };
    Ok(auth::resolve_session(state, &token, now)
        .await?
        .map(|(session, user)| Actor { user, via: AuthVia::Session(session.id_hash) }))
}

/// Client facts from request headers. `trusted_hops`: `None` unless the
/// operator trusts a proxy; then the client address is the
/// `X-Forwarded-For` entry that proxy added (see [`forwarded_client`]).
pub fn client_meta(
    headers: &http::HeaderMap,
    peer: Option<std::net::SocketAddr>,
    trusted_hops: Option<usize>,
) -> ClientMeta {
    let forwarded = trusted_hops.and_then(|hops| {
        let values: Vec<&str> = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        forwarded_client(&values, hops)
    });
    let device = logins::device_from_cookies(headers);
    ClientMeta {
        ip: forwarded.map(|ip| ip.to_string()).or_else(|| peer.map(|p| p.ip().to_string())),
        user_agent: headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(300).collect()),
        device_prefixed: device.as_ref().is_some_and(|d| d.1),
        device: device.map(|d| d.0),
    }
}

/// The client address in `X-Forwarded-For` (all its header lines, in
/// order): the `hops`-th entry from the right. Each proxy appends the
/// address it received the request from, so the rightmost entry is the one
/// the nearest (trusted) proxy wrote; everything left of the trusted
/// proxies' entries is whatever the client sent. `None` (use the peer
/// address) when there are fewer entries than hops or that entry is not an
/// IP address.
pub fn forwarded_client(values: &[&str], hops: usize) -> Option<std::net::IpAddr> {
    if hops == 0 {
        return None;
    }
    let entries: Vec<&str> = values.iter().flat_map(|v| v.split(',')).map(str::trim).collect();
    let entry = *entries.len().checked_sub(hops).and_then(|i| entries.get(i))?;
    parse_forwarded_ip(entry)
}

/// An IP address as proxies write it: `192.0.2.1`, `2001:db8::1`, and (some
/// proxies) with a port: `192.0.2.1:4711`, `[2001:db8::1]:4711`.
fn parse_forwarded_ip(s: &str) -> Option<std::net::IpAddr> {
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Some(ip);
    }
    s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())
}

/// The site's public origin for links shown to users: `DIABASE_PUBLIC_URL`
/// when set, else the request's `Host` (https when cookies are Secure).
pub fn public_origin(state: &AppState, headers: &http::HeaderMap) -> String {
    if state.config.public_url_configured && !state.config.public_url.is_empty() {
        return state.config.public_url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|c| c.is_ascii_alphanumeric() || b".-:[]".contains(&c)))
        .unwrap_or("localhost");
    let scheme = if state.config.secure_cookies { "https" } else { "http" };
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod forwarded_tests {
    use super::*;

    fn ip(values: &[&str], hops: usize) -> Option<String> {
        forwarded_client(values, hops).map(|i| i.to_string())
    }

    #[test]
    fn the_entry_the_trusted_proxy_added_is_used() {
        // nginx's $proxy_add_x_forwarded_for: what the client sent, then the peer.
        assert_eq!(ip(&["6.6.6.6, 203.0.113.7"], 1).as_deref(), Some("203.0.113.7"));
        assert_eq!(ip(&["203.0.113.7"], 1).as_deref(), Some("203.0.113.7"));
        // Several header lines count as one list.
        assert_eq!(ip(&["6.6.6.6", "203.0.113.7"], 1).as_deref(), Some("203.0.113.7"));
        // Two trusted proxies: the second from the right.
        assert_eq!(ip(&["6.6.6.6, 203.0.113.7, 10.0.0.2"], 2).as_deref(), Some("203.0.113.7"));
        assert_eq!(ip(&[" 2001:db8::1 "], 1).as_deref(), Some("2001:db8::1"));
        assert_eq!(ip(&["[2001:db8::1]:4711"], 1).as_deref(), Some("2001:db8::1"));
        assert_eq!(ip(&["192.0.2.1:4711"], 1).as_deref(), Some("192.0.2.1"));
    }

    #[test]
    fn malformed_or_short_lists_fall_back_to_the_peer() {
        assert_eq!(ip(&[], 1), None);
        assert_eq!(ip(&[""], 1), None);
        assert_eq!(ip(&["1.2.3.4, nonsense"], 1), None);
        assert_eq!(ip(&["1.2.3.4, unknown"], 1), None);
        assert_eq!(ip(&["203.0.113.7"], 2), None);
        assert_eq!(ip(&["1.2.3.4"], 0), None);
        let mut h = http::HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, garbage".parse().unwrap());
        let peer: std::net::SocketAddr = "10.0.0.1:5000".parse().unwrap();
        assert_eq!(client_meta(&h, Some(peer), Some(1)).ip.as_deref(), Some("10.0.0.1"));
        // Not trusted: the header is ignored.
        h.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());
        assert_eq!(client_meta(&h, Some(peer), None).ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(client_meta(&h, Some(peer), Some(1)).ip.as_deref(), Some("203.0.113.7"));
    }
}
