//! Two-factor authentication: a time-based one-time password (TOTP, RFC 6238:
//! HMAC-SHA1, 6 digits, 30-second steps, as every authenticator app speaks
//! it) and ten single-use recovery codes.
//!
//! - The shared secret (160 random bits) is sealed at rest with the field
//!   cipher; it is shown once, as a QR code and as base32 text, while setting
//!   up, and only a code from the app confirms it.
//! - A code is accepted for the current step and one step either side (clock
//!   drift), and never twice: the newest accepted step is stored.
//! - Recovery codes (`xxxxx-xxxxx`, ~49 bits each) are stored as a keyed
//!   hash, HMAC-SHA256 under a sub-key of the field-encryption key, bound to
//!   the account (`h1:` + hex): a copy of the database alone cannot be
//!   searched for them. Codes stored before (plain SHA-256, no prefix) still
//!   work once each. Each code works once; making new ones voids the old.
//! - Setting up needs a recently checked password (see `reauth`). Turning
//!   2FA off needs the password and a current code (or a recovery code);
//!   new recovery codes need a current code. Those checks spend from the
//!   account's re-authentication budget and answer one message for either
//!   mistake. Every change is written to the audit log.
//! - Wrong codes at log-in count as failed log-ins (rate-limited with them).

use super::{Actor, AppState, ServiceError};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use store::entity::{recovery_codes, totp};

pub const DIGITS: u32 = 6;
pub const STEP_S: i64 = 30;
/// Steps either side of now that are accepted.
pub const SKEW_STEPS: i64 = 1;
pub const RECOVERY_CODE_COUNT: usize = 10;
const ISSUER: &str = "Diabase";

/// HOTP (RFC 4226) of `counter`: the `DIGITS`-digit code.
pub fn hotp(secret: &[u8], counter: u64) -> u32 {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret) else { return 0 };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = usize::from(h[19] & 0x0f);
    let bin = (u32::from(h[off] & 0x7f) << 24)
        | (u32::from(h[off + 1]) << 16)
        | (u32::from(h[off + 2]) << 8)
        | u32::from(h[off + 3]);
    bin % 10u32.pow(DIGITS)
}

/// The TOTP step of a Unix time.
pub fn step_of(unix_s: i64) -> i64 {
    unix_s.div_euclid(STEP_S)
}

/// The TOTP code at a Unix time, zero-padded.
pub fn code_at(secret: &[u8], unix_s: i64) -> String {
    format!("{:0width$}", hotp(secret, step_of(unix_s).max(0) as u64), width = DIGITS as usize)
}

/// The step whose code `code` is, within the allowed skew of `unix_s`.
pub fn matching_step(secret: &[u8], code: &str, unix_s: i64) -> Option<i64> {
    let code = code.trim().replace(' ', "");
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(unix_s);
    (now - SKEW_STEPS..=now + SKEW_STEPS)
        .filter(|s| *s >= 0)
        .find(|s| constant_time_eq(format!("{:06}", hotp(secret, *s as u64)).as_bytes(), code.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `otpauth://` URI authenticator apps read from the QR code.
pub fn otpauth_uri(secret_b32: &str, account: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret_b32}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_S}",
        issuer = enc(ISSUER),
        account = enc(account),
    )
}

pub use crate::model::{TotpSetup, TwoFactorStatus};

/// The purpose of the recovery codes' sub-key of the field-encryption key.
const RECOVERY_KEY_PURPOSE: &str = "diabase recovery codes v1";

/// A recovery code's stored form: `h1:` and the hex HMAC-SHA256, under
/// `subkey`, of the account id and the normalised code.
fn keyed_hash(subkey: &[u8; 32], user_id: &str, code: &str) -> String {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(subkey).expect("HMAC takes any key length");
    mac.update(user_id.as_bytes());
    mac.update(&[0]);
    mac.update(normalise_recovery(code).as_bytes());
    format!("h1:{}", hex::encode(mac.finalize().into_bytes()))
}

/// The stored form of a new recovery code (under the current key).
fn hash_code(state: &AppState, user_id: &str, code: &str) -> String {
    let subkey = state.config.cipher.subkeys(RECOVERY_KEY_PURPOSE)[0];
    keyed_hash(&subkey, user_id, code)
}

/// Every stored form `code` may have: under each key of the ring, and the
/// unkeyed SHA-256 of codes made before keyed hashing.
fn code_candidates(state: &AppState, user_id: &str, code: &str) -> Vec<String> {
    let mut v: Vec<String> =
        state.config.cipher.subkeys(RECOVERY_KEY_PURPOSE).iter().map(|k| keyed_hash(k, user_id, code)).collect();
    v.push(store::sha256_hex(normalise_recovery(code).as_bytes()));
    v
}

/// Recovery codes compare without case, spaces or dashes.
fn normalise_recovery(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

/// Ten new codes, `xxxxx-xxxxx` in an alphabet without look-alikes.
fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    (0..RECOVERY_CODE_COUNT)
        .map(|_| {
            let mut s = String::with_capacity(11);
            for i in 0..10 {
                if i == 5 {
                    s.push('-');
                }
                // Rejection sampling keeps the letters uniform.
                loop {
                    let b = (rng.next_u32() & 0x1f) as usize;
                    if b < ALPHABET.len() {
                        s.push(char::from(ALPHABET[b]));
                        break;
                    }
                }
            }
            s
        })
        .collect()
}

/// Whether `user_id` has a confirmed authenticator.
pub async fn enabled<C: sea_orm::ConnectionTrait>(db: &C, user_id: &str) -> Result<bool, ServiceError> {
    Ok(totp::Entity::find_by_id(user_id.to_string()).one(db).await?.is_some_and(|t| t.confirmed_ms.is_some()))
}

/// Whether `user_id` signs in with more than a password: a confirmed
/// authenticator, or a passkey (which verifies the user on the device). This
/// is what a clinic's two-factor requirement asks for.
pub async fn strong<C: sea_orm::ConnectionTrait>(db: &C, user_id: &str) -> Result<bool, ServiceError> {
    Ok(enabled(db, user_id).await? || super::passkeys::has_passkey(db, user_id).await?)
}

pub async fn status(state: &AppState, actor: &Actor) -> Result<TwoFactorStatus, ServiceError> {
    let enabled = enabled(&state.db, &actor.user.id).await?;
    let left = recovery_codes::Entity::find()
        .filter(recovery_codes::Column::UserId.eq(&actor.user.id))
        .filter(recovery_codes::Column::UsedMs.is_null())
        .all(&state.db)
        .await?
        .len();
    Ok(TwoFactorStatus { enabled, recovery_codes_left: u32::try_from(left).unwrap_or(u32::MAX) })
}

/// Two-factor settings change only from a logged-in browser session, never
/// with an API token.
pub fn require_session(actor: &Actor) -> Result<(), ServiceError> {
    match actor.via {
        super::AuthVia::Session(_) => Ok(()),
        _ => Err(ServiceError::Forbidden),
    }
}

/// Starts setting up: a new secret, unconfirmed until [`confirm`]. Refused
/// while 2FA is on (turn it off first).
pub async fn begin(state: &AppState, actor: &Actor, now: i64) -> Result<TotpSetup, ServiceError> {
    require_session(actor)?;
    super::reauth::require_recent(state, actor, now).await?;
    if enabled(&state.db, &actor.user.id).await? {
        return Err(ServiceError::Conflict(
            "Two-factor authentication is already on. Turn it off first to set up a new app.".into(),
        ));
    }
    let mut secret = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let b32 = data_encoding::BASE32_NOPAD.encode(&secret);
    let sealed = state.config.cipher.seal(&b32);
    totp::Entity::delete_by_id(actor.user.id.clone()).exec(&state.db).await?;
    totp::ActiveModel {
        user_id: Set(actor.user.id.clone()),
        secret: Set(sealed),
        confirmed_ms: Set(None),
        last_step: Set(0),
        created_ms: Set(now),
    }
    .insert(&state.db)
    .await?;
    let uri = otpauth_uri(&b32, &actor.user.email);
    let qr_svg = qrcode::QrCode::new(uri.as_bytes())
        .map(|q| q.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).build())
        .map_err(|e| ServiceError::Internal(format!("qr: {e}")))?;
    Ok(TotpSetup { secret: b32, uri, qr_svg })
}

fn secret_of(state: &AppState, row: &totp::Model) -> Result<Vec<u8>, ServiceError> {
    let b32 = state.config.cipher.open(&row.secret).map_err(|e| ServiceError::Internal(format!("totp secret: {e}")))?;
    data_encoding::BASE32_NOPAD.decode(b32.as_bytes()).map_err(|e| ServiceError::Internal(format!("totp secret: {e}")))
}

/// Checks a TOTP code against `row` and burns its step. `Ok(false)`: wrong
/// or already used.
async fn take_totp<C: sea_orm::ConnectionTrait>(
    state: &AppState,
    db: &C,
    row: &totp::Model,
    code: &str,
    now: i64,
) -> Result<bool, ServiceError> {
    let secret = secret_of(state, row)?;
    let Some(step) = matching_step(&secret, code, now.div_euclid(1000)) else { return Ok(false) };
    if step <= row.last_step {
        return Ok(false);
    }
    // Conditional update: of two requests racing with one code, one wins.
    let res = totp::Entity::update_many()
        .col_expr(totp::Column::LastStep, sea_orm::sea_query::Expr::value(step))
        .filter(totp::Column::UserId.eq(&row.user_id))
        .filter(totp::Column::LastStep.lt(step))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Confirms the set-up with a code from the app; returns the recovery codes
/// (shown once).
pub async fn confirm(state: &AppState, actor: &Actor, code: &str, now: i64) -> Result<Vec<String>, ServiceError> {
    require_session(actor)?;
    super::reauth::require_recent(state, actor, now).await?;
    let row = totp::Entity::find_by_id(actor.user.id.clone())
        .one(&state.db)
        .await?
        .ok_or_else(|| ServiceError::bad("code", "Start the set-up first."))?;
    if row.confirmed_ms.is_some() {
        return Err(ServiceError::Conflict("Two-factor authentication is already on.".into()));
    }
    let txn = state.db.begin().await?;
    if !take_totp(state, &txn, &row, code, now).await? {
        return Err(ServiceError::bad("code", "That code is not right. Enter the 6-digit code your app shows now."));
    }
    let mut active: totp::ActiveModel = row.into();
    active.confirmed_ms = Set(Some(now));
    active.update(&txn).await?;
    let codes = replace_recovery_codes(state, &txn, &actor.user.id, now).await?;
    txn.commit().await?;
    audit(state, actor, "2fa_enabled", now).await?;
    Ok(codes)
}

async fn replace_recovery_codes<C: sea_orm::ConnectionTrait>(
    state: &AppState,
    db: &C,
    user_id: &str,
    now: i64,
) -> Result<Vec<String>, ServiceError> {
    recovery_codes::Entity::delete_many().filter(recovery_codes::Column::UserId.eq(user_id)).exec(db).await?;
    let codes = new_recovery_codes();
    recovery_codes::Entity::insert_many(codes.iter().map(|c| recovery_codes::ActiveModel {
        code_hash: Set(hash_code(state, user_id, c)),
        user_id: Set(user_id.to_string()),
        used_ms: Set(None),
        created_ms: Set(now),
    }))
    .exec_without_returning(db)
    .await?;
    Ok(codes)
}

/// Checks a second factor of `user_id`: a current TOTP code, or an unused
/// recovery code (which is then spent). `Ok(false)` when it is neither.
pub async fn verify(state: &AppState, user_id: &str, code: &str, now: i64) -> Result<bool, ServiceError> {
    check_code(state, user_id, code, now, true).await
}

/// [`verify`], spending the code only when `spend` (else a look that
/// changes nothing, for a request refused for another reason: it costs the
/// same work, so the answer's timing does not tell which check failed).
async fn check_code(state: &AppState, user_id: &str, code: &str, now: i64, spend: bool) -> Result<bool, ServiceError> {
    let Some(row) = totp::Entity::find_by_id(user_id.to_string()).one(&state.db).await? else { return Ok(false) };
    if row.confirmed_ms.is_none() {
        return Ok(false);
    }
    let digits = code.trim().replace(' ', "");
    if digits.len() == DIGITS as usize && digits.bytes().all(|b| b.is_ascii_digit()) {
        if !spend {
            let secret = secret_of(state, &row)?;
            return Ok(matching_step(&secret, &digits, now.div_euclid(1000)).is_some_and(|s| s > row.last_step));
        }
        return take_totp(state, &state.db, &row, &digits, now).await;
    }
    if normalise_recovery(code).len() != 10 {
        return Ok(false);
    }
    let candidates = code_candidates(state, user_id, code);
    if !spend {
        let found = recovery_codes::Entity::find()
            .filter(recovery_codes::Column::CodeHash.is_in(candidates))
            .filter(recovery_codes::Column::UserId.eq(user_id))
            .filter(recovery_codes::Column::UsedMs.is_null())
            .one(&state.db)
            .await?;
        return Ok(found.is_some());
    }
    let res = recovery_codes::Entity::update_many()
        .col_expr(recovery_codes::Column::UsedMs, sea_orm::sea_query::Expr::value(now))
        .filter(recovery_codes::Column::CodeHash.is_in(candidates))
        .filter(recovery_codes::Column::UserId.eq(user_id))
        .filter(recovery_codes::Column::UsedMs.is_null())
        .exec(&state.db)
        .await?;
    // Two stored forms of one code cannot both exist: one row at most.
    Ok(res.rows_affected >= 1)
}

fn wrong_password_or_code() -> ServiceError {
    ServiceError::bad("code", "The password or the code is not right.")
}

/// New recovery codes (the old ones stop working), after a current code.
pub async fn regenerate_recovery_codes(
    state: &AppState,
    actor: &Actor,
    code: &str,
    now: i64,
) -> Result<Vec<String>, ServiceError> {
    require_session(actor)?;
    if !enabled(&state.db, &actor.user.id).await? {
        return Err(ServiceError::bad("code", "Two-factor authentication is off."));
    }
    // Counted before the check, given back when it succeeds.
    super::reauth::charge(state, &actor.user.id, now).await?;
    if !verify(state, &actor.user.id, code, now).await? {
        return Err(wrong_password_or_code());
    }
    super::reauth::settle(state, &actor.user.id).await?;
    let txn = state.db.begin().await?;
    let codes = replace_recovery_codes(state, &txn, &actor.user.id, now).await?;
    txn.commit().await?;
    audit(state, actor, "2fa_recovery_codes_renewed", now).await?;
    Ok(codes)
}

/// Turns 2FA off, after the password and a current code or recovery code.
pub async fn disable(
    state: &AppState,
    actor: &Actor,
    password: &str,
    code: &str,
    now: i64,
) -> Result<(), ServiceError> {
    require_session(actor)?;
    if !enabled(&state.db, &actor.user.id).await? {
        return Ok(());
    }
    // One attempt, counted before either check; one answer for either
    // mistake. The code is spent only when the password is right.
    super::reauth::charge(state, &actor.user.id, now).await?;
    let password_ok = password.len() <= super::auth::MAX_PASSWORD_LEN
        && super::auth::verify_password(password.to_string(), Some(actor.user.password_hash.clone())).await;
    let code_ok = check_code(state, &actor.user.id, code, now, false).await?;
    if !(password_ok && code_ok) {
        return Err(wrong_password_or_code());
    }
    super::reauth::settle(state, &actor.user.id).await?;
    if !super::passkeys::has_passkey(&state.db, &actor.user.id).await?
        && let Some(clinic) = super::clinic::clinic_requiring_2fa(&state.db, &actor.user.id).await?
    {
        return Err(ServiceError::Conflict(format!(
            "{clinic} requires two-factor authentication or a passkey of its members. Add a passkey, leave the clinic or ask an admin first."
        )));
    }
    if !verify(state, &actor.user.id, code, now).await? {
        return Err(wrong_password_or_code());
    }
    let txn = state.db.begin().await?;
    totp::Entity::delete_by_id(actor.user.id.clone()).exec(&txn).await?;
    recovery_codes::Entity::delete_many().filter(recovery_codes::Column::UserId.eq(&actor.user.id)).exec(&txn).await?;
    txn.commit().await?;
    audit(state, actor, "2fa_disabled", now).await?;
    Ok(())
}

/// The operator's reset (`diabase user reset-2fa`): removes the account's
/// authenticator and recovery codes. `Ok(false)`: it had none.
pub async fn operator_reset(state: &AppState, email: &str, now: i64) -> Result<bool, ServiceError> {
    let user = store::entity::users::Entity::find()
        .filter(store::entity::users::Column::Email.eq(email))
        .one(&state.db)
        .await?
        .ok_or(ServiceError::NotFound)?;
    let txn = state.db.begin().await?;
    let removed = totp::Entity::delete_by_id(user.id.clone()).exec(&txn).await?.rows_affected > 0;
    recovery_codes::Entity::delete_many().filter(recovery_codes::Column::UserId.eq(&user.id)).exec(&txn).await?;
    txn.commit().await?;
    if !removed {
        return Ok(false);
    }
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: None,
            patient_id: None,
            action: "2fa_reset_by_operator",
            detail: &format!("user={}", user.id),
            ip: None,
        },
    )
    .await?;
    Ok(removed)
}

async fn audit(state: &AppState, actor: &Actor, action: &str, now: i64) -> Result<(), ServiceError> {
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(&actor.user.id),
            patient_id: None,
            action,
            detail: "",
            ip: None,
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B (SHA-1 seed "12345678901234567890"), last 6 digits.
        let seed = b"12345678901234567890";
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(code_at(seed, t), code, "t = {t}");
        }
        // RFC 4226 appendix D.
        assert_eq!(hotp(seed, 0), 755_224);
        assert_eq!(hotp(seed, 9), 520_489);
    }

    #[test]
    fn skew_and_format() {
        let seed = b"12345678901234567890";
        let t = 1_111_111_111;
        let now = code_at(seed, t);
        assert_eq!(matching_step(seed, &now, t), Some(step_of(t)));
        assert_eq!(matching_step(seed, &code_at(seed, t - 30), t), Some(step_of(t) - 1));
        assert_eq!(matching_step(seed, &code_at(seed, t + 30), t), Some(step_of(t) + 1));
        assert_eq!(matching_step(seed, &code_at(seed, t - 90), t), None);
        assert_eq!(matching_step(seed, &format!(" {} {} ", &now[..3], &now[3..]), t), Some(step_of(t)));
        assert_eq!(matching_step(seed, "12345", t), None);
        assert_eq!(matching_step(seed, "abcdef", t), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalised() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
        let set: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(set.len(), codes.len());
        for c in &codes {
            assert_eq!(c.len(), 11);
            assert_eq!(&c[5..6], "-");
            let k = [3u8; 32];
            assert_eq!(keyed_hash(&k, "u1", c), keyed_hash(&k, "u1", &c.to_uppercase().replace('-', " ")));
            assert_ne!(keyed_hash(&k, "u1", c), keyed_hash(&k, "u2", c), "bound to the account");
            assert_ne!(keyed_hash(&k, "u1", c), keyed_hash(&[4u8; 32], "u1", c), "keyed");
            assert!(keyed_hash(&k, "u1", c).starts_with("h1:"));
        }
    }

    #[test]
    fn otpauth_uri_escapes_the_account() {
        let u = otpauth_uri("ABC", "a+b@example.org");
        assert_eq!(
            u,
            "otpauth://totp/Diabase:a%2Bb@example.org?secret=ABC&issuer=Diabase&algorithm=SHA1&digits=6&period=30"
        );
    }
}
