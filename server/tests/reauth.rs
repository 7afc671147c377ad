//! Issue 19, item 4 and parts of item 10, on SQLite and PostgreSQL: an
//! unconfirmed address gets no credentials or sharing; a password reset
//! revokes every API token and lists what stays; sensitive changes need the
//! password within five minutes (`POST /me/reauth`), never a token; the 2FA
//! checks answer one message and are rate limited; changing the password;
//! recovery codes under the keyed hash (and the old form still once).

#![allow(clippy::unwrap_used)]

mod common;

use common::{Backend, STRONG, TestApp};
use sea_orm::{ConnectionTrait, EntityTrait, Set};
use serde_json::{Value, json};

const ORIGIN: &str = "http://localhost:8443";
const NEW_PASSWORD: &str = "copper-meadow-quartz-57";

async fn spawn(backend: Backend) -> Option<TestApp> {
    // Passkeys need a domain name: the ceremony is only started, never finished, here.
    let cfg = app::service::Config { public_url: ORIGIN.into(), ..Default::default() };
    TestApp::spawn_with(backend, cfg).await
}

macro_rules! both {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = spawn(Backend::Sqlite).await {
                    super::$name(&app).await;
                    app.finish().await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = spawn(Backend::Postgres).await {
                    super::$name(&app).await;
                    app.finish().await;
                }
            }
        }
    };
}

async fn post(c: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = c.post(url).json(&body).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn get(c: &reqwest::Client, url: String) -> u16 {
    c.get(url).send().await.unwrap().status().as_u16()
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// Ages every session of `email` by `ms`: as if it had signed in that long ago.
async fn age_sessions(app: &TestApp, email: &str, ms: i64) {
    let db = &app.state.db;
    let sql = format!(
        "UPDATE sessions SET auth_ms = auth_ms - {ms}, created_ms = created_ms - {ms} \
         WHERE user_id = (SELECT id FROM users WHERE email = '{email}')"
    );
    db.execute_unprepared(&sql).await.unwrap();
}

async fn user_id(app: &TestApp, email: &str) -> String {
    use sea_orm::{ColumnTrait, QueryFilter};
    store::entity::users::Entity::find()
        .filter(store::entity::users::Column::Email.eq(email))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .id
}

// ---------------------------------------------------------------------------

both!(unconfirmed_address_gets_no_credentials_or_sharing);
async fn unconfirmed_address_gets_no_credentials_or_sharing(app: &TestApp) {
    let email = "new.patient@example.org";
    let c = app.user_with(email, "patient", false).await;
    let doc = app.user_with("new.doctor@example.org", "clinician", false).await;
    let refused = |(s, v): (u16, Value)| {
        assert_eq!(s, 403, "{v}");
        assert_eq!(code(&v), "email_unconfirmed", "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("Confirm your email address first"), "{v}");
    };
    refused(post(&c, app.url("/api/v1/me/passkeys/start"), json!({})).await);
    refused(post(&c, app.url("/api/v1/tokens"), json!({"name": "script", "scopes": ["read:glucose"]})).await);
    refused(post(&c, app.url("/api/v1/me/nightscout"), json!({})).await);
    refused(
        post(&c, app.url("/api/v1/sharing/invites"), json!({"email": "partner@example.org", "scopes": ["glucose"]}))
            .await,
    );
    refused(
        post(&c, app.url("/api/v1/sharing/accept"), json!({"code": "ABCD-EFGH-JKMN", "scopes": ["glucose"]})).await,
    );
    refused(post(&c, app.url("/api/v1/sharing/invites/accept"), json!({"token": "x".repeat(43)})).await);
    refused(post(&doc, app.url("/api/v1/clinics"), json!({"name": "Shadow Clinic"})).await);
    // Nothing was made.
    let toks: Value = c.get(app.url("/api/v1/tokens")).send().await.unwrap().json().await.unwrap();
    assert_eq!(toks.as_array().unwrap().len(), 0);
    assert_eq!(get(&c, app.url("/api/v1/me/nightscout")).await, 404);

    // Once the address is confirmed, the same sessions may.
    app.confirm_email(email).await;
    app.confirm_email("new.doctor@example.org").await;
    let (s, v) = post(&c, app.url("/api/v1/me/passkeys/start"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(&c, app.url("/api/v1/tokens"), json!({"name": "script", "scopes": ["read:glucose"]})).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = post(&c, app.url("/api/v1/me/nightscout"), json!({})).await;
    assert!(s == 200 || s == 201, "{s} {v}");
    let (s, v) =
        post(&c, app.url("/api/v1/sharing/invites"), json!({"email": "partner@example.org", "scopes": ["glucose"]}))
            .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = post(&doc, app.url("/api/v1/clinics"), json!({"name": "Real Clinic"})).await;
    assert_eq!(s, 201, "{v}");
}

both!(the_attack_story_from_the_issue);
async fn the_attack_story_from_the_issue(app: &TestApp) {
    // An attacker signs up with the victim's address and tries to plant a token.
    let victim = "victim@example.org";
    let attacker = app.user_with(victim, "patient", false).await;
    let (s, v) = post(&attacker, app.url("/api/v1/tokens"), json!({"name": "backdoor"})).await;
    assert_eq!((s, code(&v)), (403, "email_unconfirmed"), "{v}");
    let (s, v) = post(&attacker, app.url("/api/v1/me/passkeys/start"), json!({})).await;
    assert_eq!((s, code(&v)), (403, "email_unconfirmed"), "{v}");

    // An account that had a full token, a Nightscout site, a passkey and sessions.
    let email = "owner@example.org";
    let laptop = app.user(email, "patient").await;
    let phone = app.client();
    let (s, _) = post(&phone, app.url("/api/v1/auth/login"), json!({"email": email, "password": STRONG})).await;
    assert_eq!(s, 200);
    let (s, tok) = post(&laptop, app.url("/api/v1/tokens"), json!({"name": "planted"})).await;
    assert_eq!(s, 201, "{tok}");
    let token = tok["token"].as_str().unwrap().to_string();
    let (s, tok2) = post(&laptop, app.url("/api/v1/tokens"), json!({"name": "uploader", "scopes": ["upload"]})).await;
    assert_eq!(s, 201, "{tok2}");
    let bearer = reqwest::Client::new();
    assert_eq!(bearer.get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap().status(), 200);
    let (s, _) = post(&laptop, app.url("/api/v1/me/nightscout"), json!({})).await;
    assert!(s == 200 || s == 201);
    let uid = user_id(app, email).await;
    store::entity::passkeys::Entity::insert(store::entity::passkeys::ActiveModel {
        id: Set(store::new_id()),
        user_id: Set(uid.clone()),
        user_handle: Set(app::service::passkeys::user_handle(&uid).to_string()),
        credential_id: Set("planted-credential".into()),
        name: Set("Unknown key".into()),
        passkey_json: Set("{}".into()),
        created_ms: Set(app::service::now_ms()),
        last_used_ms: Set(None),
    })
    .exec_without_returning(&app.state.db)
    .await
    .unwrap();

    // The owner resets the password through the emailed link.
    let anon = app.client();
    let r = anon.post(app.url("/api/v1/auth/password-reset")).json(&json!({"email": email})).send().await.unwrap();
    assert_eq!(r.status(), 202);
    // Mail leaves through the queue: wait for it.
    let reset = app.token_from_mail(email, "/reset-password").await.unwrap();
    let mail = std::fs::read_dir(&app.state.config.mail_outbox)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .find(|m| m.contains("Reset your Diabase password") && m.contains(email))
        .expect("a reset mail");
    assert!(mail.contains("revokes every API token"), "{mail}");
    let (s, out) =
        post(&anon, app.url("/api/v1/auth/password-reset/confirm"), json!({"token": reset, "password": NEW_PASSWORD}))
            .await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["sessions_ended"], 2, "{out}");
    assert_eq!(out["tokens_revoked"], 2, "{out}");
    assert_eq!(out["nightscout_site"], true, "{out}");
    let keys = out["passkeys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{out}");
    assert_eq!(keys[0]["name"], "Unknown key");
    assert!(keys[0]["created_at"].as_str().unwrap().ends_with('Z'), "{out}");

    // The planted token and every session are gone.
    assert_eq!(bearer.get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap().status(), 401);
    assert_eq!(get(&laptop, app.url("/api/v1/me")).await, 401);
    assert_eq!(get(&phone, app.url("/api/v1/me")).await, 401);
    let audit: Vec<String> = store::entity::audit_log::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "password_reset")
        .map(|e| e.detail)
        .collect();
    assert_eq!(audit.len(), 1);
    assert!(audit[0].contains("sessions_ended=2") && audit[0].contains("tokens_revoked=2"), "{audit:?}");
    let (s, _) = post(&anon, app.url("/api/v1/auth/login"), json!({"email": email, "password": NEW_PASSWORD})).await;
    assert_eq!(s, 200);
    let toks: Value = anon.get(app.url("/api/v1/tokens")).send().await.unwrap().json().await.unwrap();
    assert_eq!(toks.as_array().unwrap().len(), 0, "no token survives the reset");
}

both!(sensitive_changes_need_a_recent_password);
async fn sensitive_changes_need_a_recent_password(app: &TestApp) {
    let email = "careful@example.org";
    let c = app.user(email, "patient").await;
    // A fresh log-in goes straight on.
    let (s, full) = post(&c, app.url("/api/v1/tokens"), json!({"name": "full one"})).await;
    assert_eq!(s, 201, "{full}");
    let full = full["token"].as_str().unwrap().to_string();
    assert_eq!(get(&c, app.url("/api/v1/me/export")).await, 200);

    // Six minutes later: refused, with the code the pages look for.
    age_sessions(app, email, 6 * 60 * 1000).await;
    let needs = |(s, v): (u16, Value)| {
        assert_eq!((s, code(&v)), (401, "reauth_required"), "{v}");
        assert_eq!(v["error"]["message"], "For your security, enter your password again to continue.");
    };
    needs(post(&c, app.url("/api/v1/tokens"), json!({"name": "another"})).await);
    needs(post(&c, app.url("/api/v1/tokens"), json!({"name": "another", "scopes": ["full"]})).await);
    needs(post(&c, app.url("/api/v1/me/nightscout"), json!({})).await);
    needs(post(&c, app.url("/api/v1/me/2fa/totp"), json!({})).await);
    needs(post(&c, app.url("/api/v1/me/passkeys/start"), json!({})).await);
    let r = c.get(app.url("/api/v1/me/export")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(code(&r.json().await.unwrap()), "reauth_required");
    // A narrower token and ordinary reading need nothing more.
    let (s, v) = post(&c, app.url("/api/v1/tokens"), json!({"name": "follower", "scopes": ["read:glucose"]})).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(get(&c, app.url("/api/v1/me")).await, 200);

    // The wrong password does not count; the right one does, for five minutes.
    let (s, v) = post(&c, app.url("/api/v1/me/reauth"), json!({"password": "not-the-password-1"})).await;
    assert_eq!(s, 400, "{v}");
    needs(post(&c, app.url("/api/v1/me/nightscout"), json!({})).await);
    let (s, v) = post(&c, app.url("/api/v1/me/reauth"), json!({"password": STRONG})).await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = post(&c, app.url("/api/v1/me/nightscout"), json!({})).await;
    assert!(s == 200 || s == 201, "{s} {v}");
    assert_eq!(get(&c, app.url("/api/v1/me/export")).await, 200);
    let (s, v) = post(&c, app.url("/api/v1/me/2fa/totp"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(&c, app.url("/api/v1/me/passkeys/start"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(&c, app.url("/api/v1/tokens"), json!({"name": "another"})).await;
    assert_eq!(s, 201, "{v}");

    // A token, even a full one, never: not the change, not the re-authentication.
    let t = reqwest::Client::new();
    let bearer = |path: &str| t.post(app.url(path)).bearer_auth(&full);
    assert_eq!(bearer("/api/v1/me/nightscout").send().await.unwrap().status(), 403);
    assert_eq!(bearer("/api/v1/tokens").json(&json!({"name": "x"})).send().await.unwrap().status(), 403);
    assert_eq!(bearer("/api/v1/me/reauth").json(&json!({"password": STRONG})).send().await.unwrap().status(), 403);
    assert_eq!(
        bearer("/api/v1/me/password")
            .json(&json!({"current_password": STRONG, "new_password": NEW_PASSWORD}))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(t.get(app.url("/api/v1/me/export")).bearer_auth(&full).send().await.unwrap().status(), 403);
    // The browser's function, with the token: refused too.
    let r = t
        .post(app.url("/_fn/rotate_nightscout"))
        .bearer_auth(&full)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert!(r.status() == 403 || r.status() == 401, "{}", r.status());

    // The re-authentication is rate limited: five failures, then even the right password waits.
    for _ in 0..5 {
        let (s, _) = post(&c, app.url("/api/v1/me/reauth"), json!({"password": "not-the-password-1"})).await;
        assert_eq!(s, 400);
    }
    let (s, v) = post(&c, app.url("/api/v1/me/reauth"), json!({"password": STRONG})).await;
    assert_eq!((s, code(&v)), (429, "rate_limited"), "{v}");
}

fn secret_bytes(setup: &Value) -> Vec<u8> {
    data_encoding::BASE32_NOPAD.decode(setup["secret"].as_str().unwrap().as_bytes()).unwrap()
}

/// Turns TOTP on for the signed-in `c`; returns the secret and the recovery codes.
async fn turn_on_2fa(app: &TestApp, c: &reqwest::Client) -> (Vec<u8>, Vec<String>) {
    let (s, setup) = post(c, app.url("/api/v1/me/2fa/totp"), json!({})).await;
    assert_eq!(s, 200, "{setup}");
    let secret = secret_bytes(&setup);
    let now = chrono::Utc::now().timestamp();
    let code = app::service::twofactor::code_at(&secret, now);
    let (s, v) = post(c, app.url("/api/v1/me/2fa/totp/confirm"), json!({"code": code})).await;
    assert_eq!(s, 200, "{v}");
    let codes = v["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    (secret, codes)
}

both!(two_factor_mistakes_answer_alike_and_are_limited);
async fn two_factor_mistakes_answer_alike_and_are_limited(app: &TestApp) {
    let email = "two.keys@example.org";
    let c = app.user(email, "patient").await;
    let (_secret, codes) = turn_on_2fa(app, &c).await;
    let disable = |password: &'static str, code: String| {
        let c = c.clone();
        let url = app.url("/api/v1/me/2fa/disable");
        async move { post(&c, url, json!({"password": password, "code": code})).await }
    };
    // A wrong password with a good code, a good password with a wrong code,
    // a wrong code for new recovery codes: one answer.
    let (s1, v1) = disable("not-the-password-1", codes[0].clone()).await;
    let (s2, v2) = disable(STRONG, "aaaaa-bbbbb".into()).await;
    let (s3, v3) = post(&c, app.url("/api/v1/me/2fa/recovery-codes"), json!({"code": "000000"})).await;
    assert_eq!(s1, 400, "{v1}");
    assert_eq!((s1, &v1), (s2, &v2), "the same answer for either mistake");
    assert_eq!((s1, &v1), (s3, &v3));
    assert_eq!(v1["error"]["message"], "The password or the code is not right.");
    // The wrong password did not spend the good code: it still turns 2FA off.
    let (s, v) = disable(STRONG, codes[0].clone()).await;
    assert_eq!(s, 204, "{v}");

    // Failures are counted before the check: five, then even the right credentials wait.
    let (_secret, codes) = turn_on_2fa(app, &c).await;
    for i in 0..5 {
        let (s, v) = if i % 2 == 0 {
            disable("not-the-password-1", codes[1].clone()).await
        } else {
            post(&c, app.url("/api/v1/me/2fa/recovery-codes"), json!({"code": "000000"})).await
        };
        assert_eq!(s, 400, "attempt {i}: {v}");
    }
    let (s, v) = disable(STRONG, codes[1].clone()).await;
    assert_eq!((s, code(&v)), (429, "rate_limited"), "{v}");
    let (s, v) = post(&c, app.url("/api/v1/me/2fa/recovery-codes"), json!({"code": codes[2]})).await;
    assert_eq!(s, 429, "{v}");
    // The same budget guards the re-authentication.
    let (s, _) = post(&c, app.url("/api/v1/me/reauth"), json!({"password": STRONG})).await;
    assert_eq!(s, 429);
}

both!(recovery_codes_use_the_keyed_hash_and_old_ones_still_work);
async fn recovery_codes_use_the_keyed_hash_and_old_ones_still_work(app: &TestApp) {
    let email = "recovering@example.org";
    let c = app.user(email, "patient").await;
    let (_secret, codes) = turn_on_2fa(app, &c).await;
    let uid = user_id(app, email).await;
    let rows = store::entity::recovery_codes::Entity::find().all(&app.state.db).await.unwrap();
    assert_eq!(rows.len(), 10);
    for r in &rows {
        assert!(r.code_hash.starts_with("h1:") && r.code_hash.len() == 67, "{}", r.code_hash);
        let plain: String = codes.iter().map(|c| store::sha256_hex(c.replace('-', "").as_bytes())).collect();
        assert!(!plain.contains(&r.code_hash[3..]), "not the unkeyed hash");
    }
    // A code signs in once (with the password), in any case and spacing.
    let login = |code: String| {
        let url = app.url("/api/v1/auth/login");
        async move { post(&app.client(), url, json!({"email": email, "password": STRONG, "totp": code})).await.0 }
    };
    assert_eq!(login(codes[3].to_uppercase().replace('-', " ")).await, 200);
    assert_eq!(login(codes[3].clone()).await, 401, "a code works once");

    // A code stored before the keyed hash (plain SHA-256) still works, once.
    let old = "k7m2p-q9r4t";
    store::entity::recovery_codes::Entity::insert(store::entity::recovery_codes::ActiveModel {
        code_hash: Set(store::sha256_hex(b"k7m2pq9r4t")),
        user_id: Set(uid.clone()),
        used_ms: Set(None),
        created_ms: Set(0),
    })
    .exec_without_returning(&app.state.db)
    .await
    .unwrap();
    assert_eq!(login(old.into()).await, 200);
    assert_eq!(login(old.into()).await, 401);
    // Under another field key, the stored codes are worthless.
    let other = app::service::AppState {
        config: std::sync::Arc::new(app::service::Config {
            cipher: std::sync::Arc::new(store::crypto::FieldCipher::new([1u8; 32])),
            ..(*app.state.config).clone()
        }),
        ..app.state.clone()
    };
    let now = app::service::now_ms();
    assert!(!app::service::twofactor::verify(&other, &uid, &codes[4], now).await.unwrap());
    assert!(app::service::twofactor::verify(&app.state, &uid, &codes[4], now).await.unwrap());
}

both!(changing_the_password);
async fn changing_the_password(app: &TestApp) {
    let email = "changer@example.org";
    let here = app.user(email, "patient").await;
    let elsewhere = app.client();
    let (s, _) = post(&elsewhere, app.url("/api/v1/auth/login"), json!({"email": email, "password": STRONG})).await;
    assert_eq!(s, 200);
    let url = app.url("/api/v1/me/password");
    // The current password first; the new one as strong as a sign-up's.
    let (s, v) =
        post(&here, url.clone(), json!({"current_password": "not-the-password-1", "new_password": NEW_PASSWORD})).await;
    assert_eq!((s, v["error"]["field"].as_str()), (400, Some("current_password")), "{v}");
    let (s, v) = post(&here, url.clone(), json!({"current_password": STRONG, "new_password": "password123"})).await;
    assert_eq!((s, v["error"]["field"].as_str()), (400, Some("new_password")), "{v}");
    let (s, v) = post(&here, url.clone(), json!({"current_password": STRONG, "new_password": NEW_PASSWORD})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["sessions_ended"], 1);
    // This session stays (and counts as just authenticated); the other ended.
    assert_eq!(get(&here, app.url("/api/v1/me")).await, 200);
    assert_eq!(get(&elsewhere, app.url("/api/v1/me")).await, 401);
    let (s, _) = post(&here, app.url("/api/v1/me/nightscout"), json!({})).await;
    assert!(s == 200 || s == 201);
    let anon = app.client();
    assert_eq!(post(&anon, app.url("/api/v1/auth/login"), json!({"email": email, "password": STRONG})).await.0, 401);
    assert_eq!(
        post(&anon, app.url("/api/v1/auth/login"), json!({"email": email, "password": NEW_PASSWORD})).await.0,
        200
    );
    // The owner is told by mail; the change is audited.
    let mail =
        app.wait_for_mail(|m| m.contains("Subject: Your Diabase password was changed")).await.expect("a notice mail");
    assert!(mail.contains(email), "{mail}");
    let audited = store::entity::audit_log::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .any(|e| e.action == "password_changed" && e.detail == "sessions_ended=1");
    assert!(audited);
    // Guessing the current password is rate limited.
    for _ in 0..5 {
        let (s, _) = post(
            &here,
            url.clone(),
            json!({"current_password": "not-the-password-1", "new_password": "another-copper-meadow-12"}),
        )
        .await;
        assert_eq!(s, 400);
    }
    let (s, v) =
        post(&here, url, json!({"current_password": NEW_PASSWORD, "new_password": "another-copper-meadow-12"})).await;
    assert_eq!(s, 429, "{v}");
}
