//! Accounts and sessions: sign-up, log-in, log-out, session lookup.

use super::{AppState, ClientMeta, ServiceError, ratelimit};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use base64::Engine as _;
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, TransactionSession, TransactionTrait,
};
use store::entity::{patients, sessions, users};

/// Names of the session cookie: with the `__Host-` prefix when cookies are
/// Secure (TLS); browsers refuse that prefix without Secure.
pub const COOKIE_SECURE: &str = "__Host-diabase_session";
pub const COOKIE_PLAIN: &str = "diabase_session";

/// A normalised email address: trimmed, lower-case, one `@`, a dot in the
/// domain, no spaces, at most 254 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Email, ServiceError> {
        let s = s.trim().to_lowercase();
        let bad = || ServiceError::bad("email", "Enter a valid email address.");
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(bad());
        }
        Ok(Email(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const MIN_PASSWORD_LEN: usize = 10;
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Refuses short, over-long and guessable passwords (zxcvbn score < 3).
pub fn check_password_strength(password: &str, inputs: &[&str]) -> Result<(), ServiceError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(ServiceError::bad("password", format!("Use at least {MIN_PASSWORD_LEN} characters.")));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(ServiceError::bad("password", "That password is too long."));
    }
    let estimate = zxcvbn::zxcvbn(password, inputs);
    if (estimate.score() as u8) < 3 {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning().map(|w| w.to_string()))
            .unwrap_or_else(|| "It is too easy to guess.".to_string());
        return Err(ServiceError::bad(
            "password",
            format!("Choose a stronger password: {hint} Add words or characters that are hard to guess."),
        ));
    }
    Ok(())
}

/// Argon2 computations allowed at once, process-wide: each takes 19 MiB on
/// the blocking pool, so this bounds the memory password hashing can take
/// whatever the number of requests (sign-up, log-in, reset, re-auth).
pub const HASH_PERMITS: usize = 2;
/// How long a request waits for a hashing permit before it is refused (429)
/// instead of queueing without bound.
pub const HASH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(HASH_PERMITS);

/// Argon2 computations running now, and the most seen at once (tests).
#[cfg(test)]
static RUNNING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
#[cfg(test)]
static PEAK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts one running computation while alive (tests only).
struct Running;
impl Running {
    fn start() -> Running {
        #[cfg(test)]
        {
            use std::sync::atomic::Ordering;
            let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        Running
    }
}
impl Drop for Running {
    fn drop(&mut self) {
        #[cfg(test)]
        RUNNING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A permit to run one Argon2 computation (see [`HASH_PERMITS`]).
async fn hashing_permit() -> Result<tokio::sync::SemaphorePermit<'static>, ServiceError> {
    match tokio::time::timeout(HASH_WAIT, HASHING.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => {
            tracing::warn!("password hashing is saturated: a request was refused");
            Err(ServiceError::RateLimited { retry_after_s: HASH_WAIT.as_secs() as i64 })
        }
    }
}

/// Argon2id with the crate's defaults (19 MiB, t=2, p=1: OWASP's baseline).
pub async fn hash_password(password: String) -> Result<String, ServiceError> {
    let _permit = hashing_permit().await?;
    tokio::task::spawn_blocking(move || {
        let _running = Running::start();
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ServiceError::Internal(format!("hashing: {e}")))
    })
    .await
    .map_err(|e| ServiceError::Internal(e.to_string()))?
}

/// Verifies in constant work whether or not the account exists: a missing
/// account is checked against a dummy hash. `false` also when no hashing
/// permit came in time; [`verify_password_checked`] says so instead.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    verify_password_checked(password, hash).await.unwrap_or(false)
}

/// [`verify_password`], or `RateLimited` when the server is too busy
/// hashing to check now.
pub async fn verify_password_checked(password: String, hash: Option<String>) -> Result<bool, ServiceError> {
    let _permit = hashing_permit().await?;
    Ok(tokio::task::spawn_blocking(move || {
        let _running = Running::start();
        static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let dummy = DUMMY.get_or_init(|| {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default().hash_password(b"not a real password", &salt).map(|h| h.to_string()).unwrap_or_default()
        });
        let (h, real) = match &hash {
            Some(h) => (h.as_str(), true),
            None => (dummy.as_str(), false),
        };
        let ok = PasswordHash::new(h)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false);
        ok && real
    })
    .await
    .unwrap_or(false))
}

/// Sign-ups allowed per address (keyed by the SHA-256 of the normalised
/// address) and per client address, per hour.
pub const SIGNUPS_PER_EMAIL_PER_HOUR: u32 = 5;
pub const SIGNUPS_PER_IP_PER_HOUR: u32 = 20;
const HOUR_MS: i64 = 3600 * 1000;

#[derive(Clone, Debug)]
pub struct SignupInput {
    pub email: String,
    pub password: String,
    pub display_name: String,
    pub role: Option<String>,
    /// The interface language chosen on the form (`en`, `es`, `fr`, `de`).
    pub language: Option<String>,
}

/// Creates an account. The answer is the same whether or not the email is
/// taken (no account enumeration): a taken email changes nothing, and both
/// paths hash the password and queue (not send) at most one mail, so they
/// take the same time. Rate-limited per address and per client address
/// before any hashing.
pub async fn signup(state: &AppState, input: SignupInput, meta: &ClientMeta, now: i64) -> Result<Email, ServiceError> {
    let email = Email::parse(&input.email)?;
    let display_name = clean_display_name(&input.display_name)?;
    let role = match input.role.as_deref().map(str::trim) {
        None | Some("") | Some("patient") => "patient",
        Some("clinician") => "clinician",
        Some(_) => return Err(ServiceError::bad("role", "Role must be patient or clinician.")),
    };
    let language = match input.language.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(l) => Some(super::me::parse_language(l)?.code().to_string()),
    };
    check_password_strength(&input.password, &[email.as_str(), &display_name])?;
    let mut buckets =
        vec![(format!("signup:email:{}", store::sha256_hex(email.as_str().as_bytes())), SIGNUPS_PER_EMAIL_PER_HOUR)];
    if let Some(ip) = &meta.ip {
        buckets.push((format!("signup:ip:{ip}"), SIGNUPS_PER_IP_PER_HOUR));
    }
    ratelimit::hit_all(&state.db, &buckets, HOUR_MS, now).await?;
    // Hash before looking the email up, so both paths take the same time.
    let hash = hash_password(input.password).await?;
    if let Some(mut user) = create_user(&state.db, &email, &hash, &display_name, role, "UTC", false, now).await? {
        if language.is_some() {
            let mut m: users::ActiveModel = user.clone().into();
            m.language = Set(language);
            user = m.update(&state.db).await?;
        }
        // Clinic invitations to this address wait until it is confirmed.
        if let Err(e) = super::verify_email::send(state, &user, now).await {
            tracing::warn!(error = %e, "the confirmation mail could not be sent; the user can ask again");
        }
    }
    Ok(email)
}

/// Inserts a user (and, for patients, their data space). Returns `None`
/// when the email is taken. `email_verified`: the address counts as
/// confirmed (an operator or the demo made the account).
#[allow(clippy::too_many_arguments)] // the account fields, named at every call
pub async fn create_user<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    email: &Email,
    password_hash: &str,
    display_name: &str,
    role: &str,
    time_zone: &str,
    email_verified: bool,
    now: i64,
) -> Result<Option<users::Model>, ServiceError> {
    let txn = db.begin().await?;
    let exists = users::Entity::find().filter(users::Column::Email.eq(email.as_str())).one(&txn).await?;
    if exists.is_some() {
        return Ok(None);
    }
    let user = users::ActiveModel {
        id: Set(store::new_id()),
        email: Set(email.as_str().to_string()),
        password_hash: Set(password_hash.to_string()),
        display_name: Set(display_name.to_string()),
        role: Set(role.to_string()),
        glucose_unit: Set("mg/dL".into()),
        time_zone: Set(time_zone.into()),
        created_ms: Set(now),
        updated_ms: Set(now),
        password_changed_ms: Set(now),
        email_verified_ms: Set(email_verified.then_some(now)),
        language: Set(None),
    }
    .insert(&txn)
    .await;
    let user = match user {
        Ok(u) => u,
        // A concurrent sign-up with the same email won the race.
        Err(e) if is_unique_violation(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if role == "patient" {
        patients::ActiveModel {
            id: Set(store::new_id()),
            user_id: Set(Some(user.id.clone())),
            display_name: Set(display_name.to_string()),
            time_zone: Set(time_zone.into()),
            created_ms: Set(now),
        }
        .insert(&txn)
        .await?;
    }
    txn.commit().await?;
    Ok(Some(user))
}

pub fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    let s = e.to_string().to_lowercase();
    s.contains("unique") || s.contains("duplicate key")
}

pub fn clean_display_name(s: &str) -> Result<String, ServiceError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(ServiceError::bad("display_name", "Enter a name."));
    }
    if s.chars().count() > 100 || s.chars().any(char::is_control) {
        return Err(ServiceError::bad("display_name", "Use at most 100 ordinary characters."));
    }
    Ok(s.to_string())
}

/// A new session: the secret for the cookie (shown to the browser only).
pub struct NewSession {
    pub token: String,
    pub user: users::Model,
    pub expires_ms: i64,
    /// The device cookie to set (a browser that had none; see `logins`).
    pub device_cookie: Option<String>,
}

/// The failed-sign-in counter of a client address (password and passkey
/// sign-in share it).
pub fn client_failure_bucket(state: &AppState, meta: &ClientMeta) -> (String, u32) {
    (format!("login:fail:ip:{}", meta.ip.as_deref().unwrap_or("unknown")), state.config.login_limit_per_ip)
}

/// The failure counters a password log-in for `email_key` from `meta`
/// charges: per (email, client address), per client address, and a much
/// higher per-email ceiling against guessing spread over many addresses.
fn login_failure_buckets(state: &AppState, email_key: &str, meta: &ClientMeta) -> Vec<(String, u32)> {
    let cfg = &state.config;
    let email = store::sha256_hex(email_key.as_bytes());
    let ip = meta.ip.as_deref().unwrap_or("unknown");
    vec![
        (
            format!("login:fail:email-ip:{}", store::sha256_hex(format!("{email}\0{ip}").as_bytes())),
            cfg.login_limit_per_email,
        ),
        client_failure_bucket(state, meta),
        (format!("login:fail:email:{email}"), cfg.login_limit_per_email_all_clients),
    ]
}

/// Checks credentials and opens a session. Only failures count against the
/// limits: per (email, client address), per client address, and a ceiling
/// per email. Each attempt takes a slot in those counters before the
/// password is checked (refused, unchecked, when one is full) and a
/// successful log-in gives it back, so concurrent guesses cannot overrun a
/// limit and ten bad tries from one client do not lock the owner out of
/// the account from another.
pub async fn login(
    state: &AppState,
    email: &str,
    password: &str,
    totp: Option<&str>,
    meta: &ClientMeta,
    now: i64,
) -> Result<NewSession, ServiceError> {
    let cfg = &state.config;
    let email_key = Email::parse(email).map(|e| e.0).unwrap_or_else(|_| email.trim().to_lowercase());
    let buckets = login_failure_buckets(state, &email_key, meta);
    ratelimit::hit_all(&state.db, &buckets, cfg.login_window_ms, now).await?;
    let not_a_failure = || ratelimit::refund_all(&state.db, &buckets, cfg.login_window_ms, now);
    if password.len() > MAX_PASSWORD_LEN {
        return Err(ServiceError::InvalidCredentials);
    }
    let user = users::Entity::find().filter(users::Column::Email.eq(&email_key)).one(&state.db).await?;
    let ok = match verify_password_checked(password.to_string(), user.as_ref().map(|u| u.password_hash.clone())).await {
        Ok(ok) => ok,
        Err(e) => {
            // Not checked (the server is busy hashing): not a failure.
            not_a_failure().await?;
            return Err(e);
        }
    };
    let user = match (ok, user) {
        (true, Some(u)) => u,
        (_, u) => {
            if let Some(u) = &u {
                let _ = super::logins::failed(state, &u.id, meta, "password", now).await;
            }
            let _ = store::audit::append(
                &state.db,
                &state.config.cipher.audit_key(),
                store::audit::Entry {
                    at_ms: now,
                    actor_user_id: u.as_ref().map(|u| u.id.as_str()),
                    patient_id: None,
                    action: "login_failed",
                    detail: "",
                    ip: meta.ip.as_deref(),
                },
            )
            .await;
            return Err(ServiceError::InvalidCredentials);
        }
    };
    // The second factor, when the account has one. A wrong code counts as a
    // failed log-in (the failure counters above stay charged); asking for
    // the code does not.
    let second = super::twofactor::enabled(&state.db, &user.id).await?;
    if second {
        let code = totp.map(str::trim).filter(|c| !c.is_empty());
        let Some(code) = code else {
            not_a_failure().await?;
            return Err(ServiceError::TotpRequired);
        };
        if !super::twofactor::verify(state, &user.id, code, now).await? {
            let _ = super::logins::failed(state, &user.id, meta, "password", now).await;
            let _ = store::audit::append(
                &state.db,
                &state.config.cipher.audit_key(),
                store::audit::Entry {
                    at_ms: now,
                    actor_user_id: Some(&user.id),
                    patient_id: None,
                    action: "login_failed",
                    detail: "second factor",
                    ip: meta.ip.as_deref(),
                },
            )
            .await;
            return Err(ServiceError::TotpInvalid);
        }
    }
    // A success is not a failure; this client's earlier typos are forgiven.
    not_a_failure().await?;
    ratelimit::clear(&state.db, &buckets[0].0).await?;
    super::clinic::join_invited(state, &user, now).await?;
    let session = open_session(state, &user, meta, "password", now).await?;
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(&user.id),
            patient_id: None,
            action: "login",
            detail: if second { "password+totp" } else { "password" },
            ip: meta.ip.as_deref(),
        },
    )
    .await?;
    Ok(session)
}

/// A random 256-bit secret, base64url.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Opens a session after a successful sign-in by `method` (`password` or
/// `passkey`), and writes it to the login history.
pub async fn open_session(
    state: &AppState,
    user: &users::Model,
    meta: &ClientMeta,
    method: &str,
    now: i64,
) -> Result<NewSession, ServiceError> {
    let token = random_secret();
    let expires_ms = now + state.config.session_absolute_ms;
    sessions::ActiveModel {
        id_hash: Set(store::sha256_hex(token.as_bytes())),
        user_id: Set(user.id.clone()),
        created_ms: Set(now),
        last_seen_ms: Set(now),
        expires_ms: Set(expires_ms),
        user_agent: Set(meta.user_agent.as_ref().map(|s| s.chars().take(300).collect())),
        ip: Set(meta.ip.clone()),
        // Signing in proves who one is: sensitive changes may follow at once.
        auth_ms: Set(now),
    }
    .insert(&state.db)
    .await?;
    let device_cookie = super::logins::signed_in(state, user, meta, method, now).await?;
    Ok(NewSession { token, user: user.clone(), expires_ms, device_cookie })
}

/// Looks a session cookie up: `None` when unknown, idle too long or past
/// its absolute expiry (an expired session is deleted).
pub async fn resolve_session(
    state: &AppState,
    token: &str,
    now: i64,
) -> Result<Option<(sessions::Model, users::Model)>, ServiceError> {
    let id_hash = store::sha256_hex(token.as_bytes());
    let Some(session) = sessions::Entity::find_by_id(id_hash.clone()).one(&state.db).await? else {
        return Ok(None);
    };
    if now >= session.expires_ms || now - session.last_seen_ms >= state.config.session_idle_ms {
        sessions::Entity::delete_by_id(id_hash).exec(&state.db).await?;
        return Ok(None);
    }
    let Some(user) = users::Entity::find_by_id(session.user_id.clone()).one(&state.db).await? else {
        return Ok(None);
    };
    // Note use, at most once a minute per session.
    if now - session.last_seen_ms > 60_000 {
        sessions::Entity::update_many()
            .col_expr(sessions::Column::LastSeenMs, sea_orm::sea_query::Expr::value(now))
            .filter(sessions::Column::IdHash.eq(&session.id_hash))
            .exec(&state.db)
            .await?;
    }
    Ok(Some((session, user)))
}

/// Ends one session.
pub async fn logout(state: &AppState, session_id_hash: &str) -> Result<(), ServiceError> {
    sessions::Entity::delete_by_id(session_id_hash.to_string()).exec(&state.db).await?;
    Ok(())
}

/// Ends every session of a user (log out everywhere).
pub async fn logout_all(state: &AppState, user_id: &str, now: i64) -> Result<u64, ServiceError> {
    let res = sessions::Entity::delete_many().filter(sessions::Column::UserId.eq(user_id)).exec(&state.db).await?;
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(user_id),
            patient_id: None,
            action: "logout_all",
            detail: &format!("{} sessions", res.rows_affected),
            ip: None,
        },
    )
    .await?;
    Ok(res.rows_affected)
}

pub async fn list_sessions(
    state: &AppState,
    user_id: &str,
    current_hash: Option<&str>,
) -> Result<Vec<crate::model::SessionInfo>, ServiceError> {
    let rows = sessions::Entity::find().filter(sessions::Column::UserId.eq(user_id)).all(&state.db).await?;
    Ok(rows
        .into_iter()
        .map(|s| crate::model::SessionInfo {
            id: session_handle(&s.id_hash),
            created_at: super::ms_to_rfc3339(s.created_ms),
            last_seen_at: super::ms_to_rfc3339(s.last_seen_ms),
            current: current_hash == Some(s.id_hash.as_str()),
            user_agent: s.user_agent,
            ip: s.ip,
        })
        .collect())
}

/// The public handle of a session: derived from its stored hash, useless
/// for signing in.
pub fn session_handle(id_hash: &str) -> String {
    let mut h = store::sha256_hex(format!("diabase-session-handle\0{id_hash}").as_bytes());
    h.truncate(24);
    h
}

/// Ends one of the user's sessions by its handle (any device: a lost
/// phone, a shared computer). `NotFound` when the user has no such session.
pub async fn end_session(state: &AppState, user_id: &str, handle: &str, now: i64) -> Result<(), ServiceError> {
    let rows = sessions::Entity::find().filter(sessions::Column::UserId.eq(user_id)).all(&state.db).await?;
    let target =
        rows.into_iter().find(|s| session_handle(&s.id_hash) == handle.trim()).ok_or(ServiceError::NotFound)?;
    sessions::Entity::delete_by_id(target.id_hash.clone()).exec(&state.db).await?;
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(user_id),
            patient_id: None,
            action: "session_ended",
            detail: &format!("session={}", session_handle(&target.id_hash)),
            ip: None,
        },
    )
    .await?;
    Ok(())
}

/// The `Set-Cookie` value that installs a session.
pub fn session_cookie(state: &AppState, token: &str) -> String {
    let max_age = state.config.session_absolute_ms / 1000;
    if state.config.secure_cookies {
        format!("{COOKIE_SECURE}={token}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax")
    } else {
        format!("{COOKIE_PLAIN}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax")
    }
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(state: &AppState) -> String {
    if state.config.secure_cookies {
        format!("{COOKIE_SECURE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
    } else {
        format!("{COOKIE_PLAIN}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
    }
}

/// The session secret from a `Cookie` header, if any. Only the name this
/// server sets is read: under TLS (`secure`) the `__Host-` cookie alone,
/// which a browser keeps only when it was set by this host over HTTPS with
/// `Path=/` and no `Domain` (a plain `diabase_session` cookie planted by a
/// sibling subdomain or over HTTP must not be taken for a session).
pub fn session_token_from_cookies(headers: &http::HeaderMap, secure: bool) -> Option<String> {
    let name = if secure { COOKIE_SECURE } else { COOKIE_PLAIN };
    for value in headers.get_all(http::header::COOKIE) {
        let Ok(s) = value.to_str() else { continue };
        for pair in s.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else { continue };
            if k == name && !v.is_empty() {
                return Some(v.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse("  Ann@Example.ORG ").unwrap().as_str(), "ann@example.org");
        for bad in ["", "ann", "ann@", "@x.org", "a b@x.org", "ann@x", "ann@x..org", "a@b@c.org"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn weak_passwords_are_refused() {
        assert!(check_password_strength("password", &[]).is_err());
        assert!(check_password_strength("password123", &[]).is_err());
        assert!(check_password_strength("ann@example.org1", &["ann@example.org"]).is_err());
        assert!(check_password_strength("correct horse battery staple", &[]).is_ok());
    }

    /// However many requests hash at once, at most `HASH_PERMITS`
    /// Argon2 computations (19 MiB each) run; the rest wait their turn.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn password_hashing_is_bounded_process_wide() {
        let mut tasks = Vec::new();
        for i in 0..6 {
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    hash_password(format!("pw-{i}-horse-battery")).await.map(|_| ())
                } else {
                    verify_password_checked(format!("pw-{i}"), None).await.map(|_| ())
                }
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let peak = PEAK.load(std::sync::atomic::Ordering::SeqCst);
        assert!((1..=HASH_PERMITS).contains(&peak), "{peak} Argon2 computations ran at once");
    }

    #[test]
    fn cookie_parsing_reads_only_the_configured_name() {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::COOKIE, "a=1; diabase_session=abc; b=2".parse().unwrap());
        assert_eq!(session_token_from_cookies(&h, false).as_deref(), Some("abc"));
        assert_eq!(session_token_from_cookies(&h, true), None, "under TLS only the __Host- cookie");
        let mut h = http::HeaderMap::new();
        h.insert(http::header::COOKIE, "__Host-diabase_session=xyz".parse().unwrap());
        assert_eq!(session_token_from_cookies(&h, true).as_deref(), Some("xyz"));
        assert_eq!(session_token_from_cookies(&h, false), None);
    }
}
