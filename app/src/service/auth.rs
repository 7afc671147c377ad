//! Accounts and sessions: sign-up, log-in, log-out, session lookup.

use super::{ratelimit, AppState, ClientMeta, ServiceError};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, TransactionSession,
    TransactionTrait,
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
        return Err(ServiceError::bad(
            "password",
            format!("Use at least {MIN_PASSWORD_LEN} characters."),
        ));
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

/// Argon2id with the crate's defaults (19 MiB, t=2, p=1: OWASP's baseline).
pub async fn hash_password(password: String) -> Result<String, ServiceError> {
    tokio::task::spawn_blocking(move || {
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
/// account is checked against a dummy hash.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let dummy = DUMMY.get_or_init(|| {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(b"not a real password", &salt)
                .map(|h| h.to_string())
                .unwrap_or_default()
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
    .unwrap_or(false)
}

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
/// taken (no account enumeration): a taken email changes nothing.
pub async fn signup(state: &AppState, input: SignupInput, now: i64) -> Result<Email, ServiceError> {
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
    let exists = users::Entity::find()
        .filter(users::Column::Email.eq(email.as_str()))
        .one(&txn)
        .await?;
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

/// Checks credentials (rate-limited per email and per client address) and
/// opens a session.
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
    let email_bucket = format!("login:email:{}", store::sha256_hex(email_key.as_bytes()));
    ratelimit::hit(&state.db, &email_bucket, cfg.login_limit_per_email, cfg.login_window_ms, now).await?;
    if let Some(ip) = &meta.ip {
        ratelimit::hit(&state.db, &format!("login:ip:{ip}"), cfg.login_limit_per_ip, cfg.login_window_ms, now)
            .await?;
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(ServiceError::InvalidCredentials);
    }
    let user = users::Entity::find()
        .filter(users::Column::Email.eq(&email_key))
        .one(&state.db)
        .await?;
    let ok = verify_password(password.to_string(), user.as_ref().map(|u| u.password_hash.clone())).await;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        (_, u) => {
            if let Some(u) = &u {
                let _ = super::logins::failed(state, &u.id, meta, "password", now).await;
            }
            let _ = store::audit::append(&state.db, store::audit::Entry {
                at_ms: now,
                actor_user_id: u.as_ref().map(|u| u.id.as_str()),
                patient_id: None,
                action: "login_failed",
                detail: "",
                ip: meta.ip.as_deref(),
            })
            .await;
            return Err(ServiceError::InvalidCredentials);
        }
    };
    // The second factor, when the account has one. A wrong code counts as a
    // failed log-in (the attempt limits above stay charged).
    let second = super::twofactor::enabled(&state.db, &user.id).await?;
    if second {
        let code = totp.map(str::trim).filter(|c| !c.is_empty());
        let Some(code) = code else { return Err(ServiceError::TotpRequired) };
        if !super::twofactor::verify(state, &user.id, code, now).await? {
            let _ = super::logins::failed(state, &user.id, meta, "password", now).await;
            let _ = store::audit::append(&state.db, store::audit::Entry {
                at_ms: now,
                actor_user_id: Some(&user.id),
                patient_id: None,
                action: "login_failed",
                detail: "second factor",
                ip: meta.ip.as_deref(),
            })
            .await;
            return Err(ServiceError::TotpInvalid);
        }
    }
    ratelimit::clear(&state.db, &email_bucket).await?;
    super::clinic::join_invited(state, &user, now).await?;
    let session = open_session(state, &user, meta, "password", now).await?;
    store::audit::append(&state.db, store::audit::Entry {
        at_ms: now,
        actor_user_id: Some(&user.id),
        patient_id: None,
        action: "login",
        detail: if second { "password+totp" } else { "password" },
        ip: meta.ip.as_deref(),
    })
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
    let res = sessions::Entity::delete_many()
        .filter(sessions::Column::UserId.eq(user_id))
        .exec(&state.db)
        .await?;
    store::audit::append(&state.db, store::audit::Entry {
        at_ms: now,
        actor_user_id: Some(user_id),
        patient_id: None,
        action: "logout_all",
        detail: &format!("{} sessions", res.rows_affected),
        ip: None,
    })
    .await?;
    Ok(res.rows_affected)
}

pub async fn list_sessions(
    state: &AppState,
    user_id: &str,
    current_hash: Option<&str>,
) -> Result<Vec<crate::model::SessionInfo>, ServiceError> {
    let rows = sessions::Entity::find()
        .filter(sessions::Column::UserId.eq(user_id))
        .all(&state.db)
        .await?;
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
    let target = rows.into_iter().find(|s| session_handle(&s.id_hash) == handle.trim()).ok_or(ServiceError::NotFound)?;
    sessions::Entity::delete_by_id(target.id_hash.clone()).exec(&state.db).await?;
    store::audit::append(&state.db, store::audit::Entry {
        at_ms: now,
        actor_user_id: Some(user_id),
        patient_id: None,
        action: "session_ended",
        detail: &format!("session={}", session_handle(&target.id_hash)),
        ip: None,
    })
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

/// The session secret from a `Cookie` header, if any.
pub fn session_token_from_cookies(headers: &http::HeaderMap) -> Option<String> {
    for value in headers.get_all(http::header::COOKIE) {
        let Ok(s) = value.to_str() else { continue };
        for pair in s.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else { continue };
            if (k == COOKIE_SECURE || k == COOKIE_PLAIN) && !v.is_empty() {
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

    #[test]
    fn cookie_parsing_finds_either_name() {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::COOKIE, "a=1; diabase_session=abc; b=2".parse().unwrap());
        assert_eq!(session_token_from_cookies(&h).as_deref(), Some("abc"));
        let mut h = http::HeaderMap::new();
        h.insert(http::header::COOKIE, "__Host-diabase_session=xyz".parse().unwrap());
        assert_eq!(session_token_from_cookies(&h).as_deref(), Some("xyz"));
    }
}
