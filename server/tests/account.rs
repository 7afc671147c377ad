//! Account security through the public API, on SQLite and PostgreSQL:
//! password reset through a real SMTP conversation on loopback, two-factor
//! authentication (TOTP and recovery codes) at log-in, and a clinic that
//! requires two-factor authentication of its members.

#![allow(clippy::unwrap_used)]

mod common;

use app::service::twofactor;
use common::{Backend, STRONG, TestApp};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A minimal SMTP server on loopback: answers one conversation after
/// another and hands over each message's DATA.
async fn smtp_receiver() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    smtp_receiver_on(listener, std::time::Duration::ZERO)
}

/// [`smtp_receiver`] on `listener`, taking `delay` to accept each message
/// (a slow mail server).
fn smtp_receiver_on(
    listener: tokio::net::TcpListener,
    delay: std::time::Duration,
) -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 test.invalid ESMTP\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(d) = data.as_mut() {
                        if line == "." {
                            tokio::time::sleep(delay).await;
                            tx.send(data.take().unwrap()).unwrap();
                            w.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                        } else {
                            d.push_str(line.strip_prefix('.').unwrap_or(&line));
                            d.push('\n');
                        }
                        continue;
                    }
                    let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-test.invalid\r\n250 8BITMIME\r\n",
                        "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"502 not implemented\r\n",
                    };
                    w.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, rx)
}

/// The body of a message, decoded from quoted-printable or base64 if so sent.
fn body_of(message: &str) -> String {
    let (head, body) = message.split_once("\n\n").unwrap_or((message, ""));
    let head = head.to_ascii_lowercase();
    if head.contains("content-transfer-encoding: quoted-printable") {
        let joined = body.replace("=\n", "");
        let mut out = Vec::new();
        let b = joined.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'='
                && i + 2 < b.len()
                && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    } else if head.contains("content-transfer-encoding: base64") {
        use base64::Engine;
        let compact: String = body.split_whitespace().collect();
        String::from_utf8_lossy(&base64::engine::general_purpose::STANDARD.decode(compact).unwrap()).into_owned()
    } else {
        body.to_string()
    }
}

fn token_in(body: &str) -> String {
    let i = body.find("reset-password?token=").expect("a reset link in the mail") + "reset-password?token=".len();
    body[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

async fn next_mail(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await.expect("a mail within 10 s").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_over_smtp_sqlite() {
    password_reset_over_smtp(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_over_smtp_postgres() {
    password_reset_over_smtp(Backend::Postgres).await;
}

async fn password_reset_over_smtp(backend: Backend) {
    let (port, mut mails) = smtp_receiver().await;
    let config = app::service::Config { smtp_url: Some(format!("smtp://127.0.0.1:{port}")), ..Default::default() };
    let Some(app) = TestApp::spawn_with(backend, config).await else { return };
    let email = "forgetful@example.org";
    let old_session = app.user_with(email, "patient", false).await;
    let anon = app.client();
    // The sign-up's confirmation link went out over SMTP first.
    let first = next_mail(&mut mails).await;
    assert!(first.contains("Subject: Confirm your email address for Diabase"), "{first}");
    assert!(first.contains("/verify-email?token="), "{first}");

    // The same answer for an unknown address, and no mail.
    let r = anon
        .post(app.url("/api/v1/auth/password-reset"))
        .json(&json!({"email": "nobody@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let unknown = r.text().await.unwrap();
    let r = anon.post(app.url("/api/v1/auth/password-reset")).json(&json!({"email": email})).send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.text().await.unwrap(), unknown, "no account enumeration");
    let mail = next_mail(&mut mails).await;
    assert!(mail.contains(&format!("To: {email}")) || mail.contains(&format!("To: <{email}>")), "{mail}");
    assert!(mail.contains("Subject: Reset your Diabase password"), "{mail}");
    assert!(mails.try_recv().is_err(), "no mail for the unknown address");
    let token = token_in(&body_of(&mail));
    assert!(token.len() >= 40, "a 256-bit token: {token}");

    // Wrong token, weak password: refused, and the weak try does not spend the token.
    let confirm = |token: String, password: &'static str| {
        let anon = anon.clone();
        let url = app.url("/api/v1/auth/password-reset/confirm");
        async move { anon.post(url).json(&json!({"token": token, "password": password})).send().await.unwrap() }
    };
    let r = confirm("x".repeat(43), "correct-horse-battery-41").await;
    assert_eq!(r.status(), 400);
    let r = confirm(token.clone(), "password").await;
    assert_eq!(r.status(), 400);
    let r = confirm(token.clone(), "correct-horse-battery-41").await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // Every session ended; the new password works; the token is spent.
    let r = old_session.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), 401, "the old session ended");
    let r = anon
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": STRONG}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the old password no longer works");
    let r = anon
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": "correct-horse-battery-41"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // That browser is new to the account: the owner is told.
    let alert = next_mail(&mut mails).await;
    assert!(alert.contains("Subject: New sign-in to your Diabase account"), "{alert}");
    let r = confirm(token.clone(), "another-horse-battery-42").await;
    assert_eq!(r.status(), 400, "a reset link works once");

    // A link older than 24 hours is refused.
    let day = 24 * 3600 * 1000 + 1000;
    let meta = app::service::ClientMeta::default();
    app::service::reset::request(&app.state, email, &meta, app::service::now_ms() - day).await.unwrap();
    let old = token_in(&body_of(&next_mail(&mut mails).await));
    let r = confirm(old, "another-horse-battery-42").await;
    assert_eq!(r.status(), 400, "an expired link is refused");

    // Requests are rate-limited per address.
    let mut last = 0;
    for _ in 0..8 {
        last = anon
            .post(app.url("/api/v1/auth/password-reset"))
            .json(&json!({"email": "limit@example.org"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
    }
    assert_eq!(last, 429);
    app.finish().await;
}

fn secret_bytes(setup: &Value) -> Vec<u8> {
    data_encoding::BASE32_NOPAD.decode(setup["secret"].as_str().unwrap().as_bytes()).unwrap()
}

fn now_s() -> i64 {
    app::service::now_ms() / 1000
}

async fn login(app: &TestApp, c: &reqwest::Client, email: &str, totp: Option<&str>) -> (u16, Value) {
    let mut body = json!({"email": email, "password": STRONG});
    if let Some(t) = totp {
        body["totp"] = json!(t);
    }
    let r = c.post(app.url("/api/v1/auth/login")).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Turns 2FA on for the logged-in client; returns the secret and the recovery codes.
async fn enable_2fa(app: &TestApp, c: &reqwest::Client) -> (Vec<u8>, Vec<String>) {
    let setup: Value = c.post(app.url("/api/v1/me/2fa/totp")).send().await.unwrap().json().await.unwrap();
    assert!(setup["uri"].as_str().unwrap().starts_with("otpauth://totp/Diabase:"), "{setup}");
    assert!(setup["qr_svg"].as_str().unwrap().contains("<svg"));
    let secret = secret_bytes(&setup);
    let r = c.post(app.url("/api/v1/me/2fa/totp/confirm")).json(&json!({"code": "000000"})).send().await.unwrap();
    if twofactor::matching_step(&secret, "000000", now_s()).is_none() {
        assert_eq!(r.status(), 400, "a wrong code does not turn 2FA on");
    }
    let code = twofactor::code_at(&secret, now_s());
    let r = c.post(app.url("/api/v1/me/2fa/totp/confirm")).json(&json!({"code": code})).send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    let codes: Vec<String> =
        v["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    (secret, codes)
}

both_backends!(totp_at_login);
async fn totp_at_login(app: &TestApp) {
    let email = "careful@example.org";
    let c = app.user(email, "patient").await;
    let s: Value = c.get(app.url("/api/v1/me/2fa")).send().await.unwrap().json().await.unwrap();
    assert_eq!(s["enabled"], false);
    let (secret, codes) = enable_2fa(app, &c).await;
    assert_eq!(codes.len(), 10);
    let s: Value = c.get(app.url("/api/v1/me/2fa")).send().await.unwrap().json().await.unwrap();
    assert_eq!(s, json!({"enabled": true, "recovery_codes_left": 10}));
    // Set-up again while on: refused.
    let r = c.post(app.url("/api/v1/me/2fa/totp")).send().await.unwrap();
    assert_eq!(r.status(), 409);

    let anon = app.client();
    let (st, body) = login(app, &anon, email, None).await;
    assert_eq!((st, body["error"]["code"].as_str()), (401, Some("totp_required")), "{body}");
    let (st, body) = login(app, &anon, email, Some("123 456")).await;
    if twofactor::matching_step(&secret, "123456", now_s()).is_none() {
        assert_eq!((st, body["error"]["code"].as_str()), (401, Some("totp_invalid")), "{body}");
    }
    // The next step's code (the confirm used the current one), once.
    let next = twofactor::code_at(&secret, now_s() + 30);
    let (st, body) = login(app, &anon, email, Some(&next)).await;
    assert_eq!(st, 200, "{body}");
    let (st, _) = login(app, &app.client(), email, Some(&next)).await;
    assert_eq!(st, 401, "a code works once");

    // A recovery code, once; any case and spacing.
    let (st, _) = login(app, &app.client(), email, Some(&codes[0].to_uppercase().replace('-', " "))).await;
    assert_eq!(st, 200);
    let (st, _) = login(app, &app.client(), email, Some(&codes[0])).await;
    assert_eq!(st, 401, "a recovery code works once");
    let s: Value = c.get(app.url("/api/v1/me/2fa")).send().await.unwrap().json().await.unwrap();
    assert_eq!(s["recovery_codes_left"], 9);

    // Turning it off needs the password and a code.
    let r = c
        .post(app.url("/api/v1/me/2fa/disable"))
        .json(&json!({"password": "wrong-password-1234", "code": codes[1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .post(app.url("/api/v1/me/2fa/disable"))
        .json(&json!({"password": STRONG, "code": "not-a-code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .post(app.url("/api/v1/me/2fa/disable"))
        .json(&json!({"password": STRONG, "code": codes[1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (st, _) = login(app, &app.client(), email, None).await;
    assert_eq!(st, 200, "no second factor once off");

    // The audit log holds the changes.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let mut actions: Vec<String> = store::entity::audit_log::Entity::find()
        .filter(store::entity::audit_log::Column::Action.is_in(["2fa_enabled", "2fa_disabled"]))
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    actions.sort();
    assert_eq!(actions, ["2fa_disabled", "2fa_enabled"]);
    let row = store::entity::totp::Entity::find().all(&app.state.db).await.unwrap();
    assert!(row.is_empty(), "turned off: the secret is gone");
}

both_backends!(clinic_requires_2fa);
async fn clinic_requires_2fa(app: &TestApp) {
    let admin = app.user("admin@clinic.example", "clinician").await;
    let r = admin.post(app.url("/api/v1/clinics")).json(&json!({"name": "Strict Clinic"})).send().await.unwrap();
    let clinic: Value = r.json().await.unwrap();
    let id = clinic["id"].as_str().unwrap().to_string();
    let colleague = app.user("colleague@clinic.example", "clinician").await;
    let r = admin
        .post(app.url(&format!("/api/v1/clinics/{id}/members")))
        .json(&json!({"email": "colleague@clinic.example", "role": "clinician"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    // The invited colleague joins when they next look at their clinics.
    assert!(colleague.get(app.url("/api/v1/clinics")).send().await.unwrap().status().is_success());

    // An admin without 2FA cannot require it.
    let r = admin
        .patch(app.url(&format!("/api/v1/clinics/{id}")))
        .json(&json!({"require_2fa": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (_, admin_codes) = enable_2fa(app, &admin).await;
    let r = admin
        .patch(app.url(&format!("/api/v1/clinics/{id}")))
        .json(&json!({"require_2fa": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = colleague
        .patch(app.url(&format!("/api/v1/clinics/{id}")))
        .json(&json!({"require_2fa": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "only admins change it");

    // The colleague without 2FA is told to turn it on, and sees no patients.
    let r = colleague.get(app.url(&format!("/api/v1/clinics/{id}/patients"))).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "two_factor_required");
    let r = admin.get(app.url(&format!("/api/v1/clinics/{id}/patients"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    enable_2fa(app, &colleague).await;
    let r = colleague.get(app.url(&format!("/api/v1/clinics/{id}/patients"))).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // A member of a strict clinic cannot turn 2FA off.
    let r = admin
        .post(app.url("/api/v1/me/2fa/disable"))
        .json(&json!({"password": STRONG, "code": admin_codes[0]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
}

both_backends!(deleting_the_account_needs_the_second_factor);
async fn deleting_the_account_needs_the_second_factor(app: &TestApp) {
    let c = app.user("twice@example.org", "patient").await;
    let (secret, _codes) = enable_2fa(app, &c).await;
    let del = |body: Value| c.delete(app.url("/api/v1/me")).json(&body).send();
    let r = del(json!({"password": STRONG})).await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "totp_required", "{v}");
    let r = del(json!({"password": STRONG, "code": "12345x"})).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(c.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200, "still there");
    let next = twofactor::code_at(&secret, now_s() + 30);
    let r = del(json!({"password": STRONG, "code": next})).await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(c.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401);
    use sea_orm::{EntityTrait, PaginatorTrait};
    assert_eq!(store::entity::totp::Entity::find().count(&app.state.db).await.unwrap(), 0);
    assert_eq!(store::entity::recovery_codes::Entity::find().count(&app.state.db).await.unwrap(), 0);
}

both_backends!(email_confirmation_gates_clinic_invitations);
async fn email_confirmation_gates_clinic_invitations(app: &TestApp) {
    let admin = app.user("boss@clinic.example", "clinician").await;
    let r = admin.post(app.url("/api/v1/clinics")).json(&json!({"name": "Invite Clinic"})).send().await.unwrap();
    let cid = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let email = "new.doc@clinic.example";
    let r = admin
        .post(app.url(&format!("/api/v1/clinics/{cid}/members")))
        .json(&json!({"email": email, "role": "clinician"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "invited");

    // Someone signs up with the invited address: they can log in, but do not join the clinic yet.
    let c = app.client();
    let r = c
        .post(app.url("/api/v1/auth/signup"))
        .json(&json!({"email": email, "password": STRONG, "display_name": "New Doc", "role": "clinician"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (st, me) = login(app, &c, email, None).await;
    assert_eq!(st, 200);
    assert_eq!(me["email_verified"], false);
    let clinics: Value = c.get(app.url("/api/v1/clinics")).send().await.unwrap().json().await.unwrap();
    assert_eq!(clinics, json!([]), "no clinic before the address is confirmed");
    // Adding the unconfirmed account directly is an invitation too.
    let r = admin
        .post(app.url(&format!("/api/v1/clinics/{cid}/members")))
        .json(&json!({"email": email, "role": "clinician"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "invited");

    // A new link on request; a made-up token is refused.
    let r = c.post(app.url("/api/v1/me/verify-email")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap()["sent"], true);
    let bad = app
        .client()
        .post(app.url("/api/v1/auth/verify-email"))
        .json(&json!({"token": "not-a-token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let token = app.token_from_mail(email, "/verify-email").await.unwrap();
    let ok =
        app.client().post(app.url("/api/v1/auth/verify-email")).json(&json!({"token": token})).send().await.unwrap();
    assert_eq!(ok.status(), 204);
    let again =
        app.client().post(app.url("/api/v1/auth/verify-email")).json(&json!({"token": token})).send().await.unwrap();
    assert_eq!(again.status(), 400, "a link works once");

    let me: Value = c.get(app.url("/api/v1/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["email_verified"], true);
    let clinics: Value = c.get(app.url("/api/v1/clinics")).send().await.unwrap().json().await.unwrap();
    assert_eq!(clinics[0]["id"], cid.as_str(), "joined once confirmed");
    let r = c.post(app.url("/api/v1/me/verify-email")).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["sent"], false);
}

both_backends!(end_one_session);
async fn end_one_session(app: &TestApp) {
    let email = "two.devices@example.org";
    let laptop = app.user(email, "patient").await;
    let phone = app.client();
    let (st, _) = login(app, &phone, email, None).await;
    assert_eq!(st, 200);
    let list: Value = laptop.get(app.url("/api/v1/me/sessions")).send().await.unwrap().json().await.unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let other = list.iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_string();
    assert_eq!(other.len(), 24);
    // Another account cannot end it; the owner can, and only that session ends.
    let stranger = app.user("stranger@example.org", "patient").await;
    assert_eq!(stranger.delete(app.url(&format!("/api/v1/me/sessions/{other}"))).send().await.unwrap().status(), 404);
    assert_eq!(phone.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);
    assert_eq!(laptop.delete(app.url(&format!("/api/v1/me/sessions/{other}"))).send().await.unwrap().status(), 204);
    assert_eq!(phone.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401);
    assert_eq!(laptop.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);
    assert_eq!(laptop.delete(app.url(&format!("/api/v1/me/sessions/{other}"))).send().await.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_device_alert_over_smtp_sqlite() {
    new_device_alert_over_smtp(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_device_alert_over_smtp_postgres() {
    new_device_alert_over_smtp(Backend::Postgres).await;
}

/// The login history records every sign-in and failed sign-in; a sign-in
/// from a browser the account has not used before is mailed to the owner
/// (not the account's first sign-in, not a browser it knows).
async fn new_device_alert_over_smtp(backend: Backend) {
    let (port, mut mails) = smtp_receiver().await;
    let config = app::service::Config { smtp_url: Some(format!("smtp://127.0.0.1:{port}")), ..Default::default() };
    let Some(app) = TestApp::spawn_with(backend, config).await else { return };
    let email = "traveller@example.org";
    // Sign-up mails the confirmation link; the first sign-in is no alert.
    let laptop = app.user_with(email, "patient", false).await;
    let first = next_mail(&mut mails).await;
    assert!(first.contains("Subject: Confirm your email address"), "{first}");
    let login = |c: reqwest::Client, password: &'static str, agent: &'static str| {
        let url = app.url("/api/v1/auth/login");
        async move {
            c.post(url)
                .header("user-agent", agent)
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // The same browser again: known, no mail.
    assert_eq!(login(laptop.clone(), STRONG, "LaptopBrowser/1.0").await, 200);
    // A wrong password from somewhere else: a failed entry, no mail.
    let phone = app.client();
    assert_eq!(login(phone.clone(), "wrong-password-123456", "PhoneBrowser/2.0").await, 401);
    assert!(tokio::time::timeout(std::time::Duration::from_millis(300), mails.recv()).await.is_err(), "no mail yet");
    // A new browser: the owner is told when, which browser and where from.
    assert_eq!(login(phone.clone(), STRONG, "PhoneBrowser/2.0").await, 200);
    let alert = next_mail(&mut mails).await;
    assert!(alert.contains("Subject: New sign-in to your Diabase account"), "{alert}");
    let text = body_of(&alert);
    assert!(text.contains("PhoneBrowser/2.0"), "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(text.contains("/security"), "{text}");
    assert!(!text.to_lowercase().contains("mg/dl"), "no health data in the mail");
    // That browser is now known.
    assert_eq!(login(phone.clone(), STRONG, "PhoneBrowser/2.0").await, 200);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), mails.recv()).await.is_err(),
        "no second alert"
    );

    // The history, newest first, as the owner sees it.
    let r = laptop.get(app.url("/api/v1/me/logins")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h: Value = r.json().await.unwrap();
    let h = h.as_array().unwrap();
    let summary: Vec<(bool, bool, String)> = h
        .iter()
        .map(|e| {
            (
                e["success"].as_bool().unwrap(),
                e["new_device"].as_bool().unwrap(),
                e["user_agent"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(summary.len(), 5, "{summary:?}");
    assert_eq!(summary[0], (true, false, "PhoneBrowser/2.0".into()));
    assert_eq!(summary[1], (true, true, "PhoneBrowser/2.0".into()));
    assert_eq!(summary[2], (false, false, "PhoneBrowser/2.0".into()));
    assert_eq!(summary[3], (true, false, "LaptopBrowser/1.0".into()));
    assert!(summary[4].0 && summary[4].1, "the first sign-in came from a new browser: {summary:?}");
    assert!(h.iter().all(|e| e["method"] == "password" && e["ip"] == "127.0.0.1"));
    // Nobody else sees it.
    let other = app.user_with("other@example.org", "patient", false).await;
    let theirs: Value = other.get(app.url("/api/v1/me/logins")).send().await.unwrap().json().await.unwrap();
    assert!(theirs.as_array().unwrap().iter().all(|e| e["user_agent"] != "PhoneBrowser/2.0"));
    app.finish().await;
}

// ---- Issue 19: sign-up limits, log-in failure counting, mail off the request path ----

fn client(ip: &str) -> app::service::ClientMeta {
    app::service::ClientMeta { ip: Some(ip.to_string()), ..Default::default() }
}

async fn signup_status(app: &TestApp, email: &str) -> u16 {
    app.client()
        .post(app.url("/api/v1/auth/signup"))
        .json(&json!({"email": email, "password": STRONG, "display_name": "Someone"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

both_backends!(signup_is_rate_limited_per_address_and_per_client);
async fn signup_is_rate_limited_per_address_and_per_client(app: &TestApp) {
    // Five tries per address an hour (taken or not: the same answer).
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(signup_status(app, "Taken@Example.org").await);
    }
    assert_eq!(statuses, [201, 201, 201, 201, 201, 429], "per address");
    // The address is keyed normalised.
    assert_eq!(signup_status(app, "  taken@example.ORG ").await, 429);
    // Twenty per client address an hour: the five accepted above count (a
    // refused try takes nothing).
    let mut statuses = Vec::new();
    for i in 0..16 {
        statuses.push(signup_status(app, &format!("new{i}@example.org")).await);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 15, "{statuses:?}");
    assert_eq!(statuses[15], 429, "per client: {statuses:?}");
    // Another client still signs up.
    let other = app::service::auth::SignupInput {
        email: "elsewhere@example.org".into(),
        password: STRONG.into(),
        display_name: "Elsewhere".into(),
        role: None,
        language: None,
    };
    app::service::auth::signup(&app.state, other, &client("198.51.100.9"), app::service::now_ms()).await.unwrap();
}

both_backends!(failed_logins_count_per_client_and_the_owner_still_gets_in);
async fn failed_logins_count_per_client_and_the_owner_still_gets_in(app: &TestApp) {
    use app::service::{ServiceError, auth};
    let email = "owner@example.org";
    app.user(email, "patient").await;
    let now = app::service::now_ms();
    let attacker = client("203.0.113.66");
    for i in 0..10 {
        let r = auth::login(&app.state, email, "wrong-guess-123", None, &attacker, now).await;
        assert!(matches!(r, Err(ServiceError::InvalidCredentials)), "try {i}: {r:?}", r = r.err());
    }
    // The attacker's client is refused before the password is checked, even the right one.
    let r = auth::login(&app.state, email, STRONG, None, &attacker, now).await;
    assert!(matches!(r, Err(ServiceError::RateLimited { .. })), "{:?}", r.err());
    // The owner, from another client, gets in.
    let owner = client("198.51.100.7");
    auth::login(&app.state, email, STRONG, None, &owner, now).await.expect("the owner logs in");
    // Successful log-ins are not counted.
    for _ in 0..12 {
        auth::login(&app.state, email, STRONG, None, &owner, now).await.expect("successes do not count");
    }
    // Over HTTP too: ten failures from this client, then 429, for this address only.
    let c = app.client();
    let mut statuses = Vec::new();
    for _ in 0..11 {
        let r = c
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": "wrong-guess-123"}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(statuses[10], 429, "{statuses:?}");
    auth::login(&app.state, email, STRONG, None, &client("198.51.100.8"), now).await.expect("the owner still gets in");

    // The ceiling per address over all clients (a last resort against
    // guessing spread over many addresses): set low here.
    let mut state = app.state.clone();
    let mut cfg = (*state.config).clone();
    cfg.login_limit_per_email_all_clients = 25;
    state.config = std::sync::Arc::new(cfg);
    let mut refused = None;
    for i in 0..10 {
        if let Err(ServiceError::RateLimited { .. }) =
            auth::login(&state, email, "wrong-guess-123", None, &client(&format!("192.0.2.{i}")), now).await
        {
            refused = Some(i);
            break;
        }
    }
    // 20 failures so far (10 by service, 10 over HTTP): five more fill it.
    assert_eq!(refused, Some(5), "the per-address ceiling");
    let r = auth::login(&state, email, STRONG, None, &client("192.0.2.200"), now).await;
    assert!(matches!(r, Err(ServiceError::RateLimited { .. })), "{:?}", r.err());
}

/// Waits until `cond` holds for the queue rows (up to 10 s).
async fn wait_for_queue(
    app: &TestApp,
    what: &str,
    cond: impl Fn(&[store::entity::mail_queue::Model]) -> bool,
) -> Vec<store::entity::mail_queue::Model> {
    use sea_orm::EntityTrait;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rows = store::entity::mail_queue::Entity::find().all(&app.state.db).await.unwrap();
        if cond(&rows) {
            return rows;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {rows:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mail_queue_retries_after_an_smtp_failure_sqlite() {
    the_mail_queue_retries_after_an_smtp_failure(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mail_queue_retries_after_an_smtp_failure_postgres() {
    the_mail_queue_retries_after_an_smtp_failure(Backend::Postgres).await;
}

async fn the_mail_queue_retries_after_an_smtp_failure(backend: Backend) {
    use sea_orm::{ConnectionTrait, EntityTrait};
    // A port nothing listens on (yet).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = app::service::Config { smtp_url: Some(format!("smtp://127.0.0.1:{port}")), ..Default::default() };
    let Some(app) = TestApp::spawn_with(backend, config).await else { return };
    let email = "retry@example.org";
    let hash = app::service::auth::hash_password(STRONG.into()).await.unwrap();
    let e = app::service::auth::Email::parse(email).unwrap();
    app::service::auth::create_user(&app.state.db, &e, &hash, "Retry", "patient", "UTC", true, 0)
        .await
        .unwrap()
        .unwrap();
    // The request answers at once although the mail server is down.
    let r =
        app.client().post(app.url("/api/v1/auth/password-reset")).json(&json!({"email": email})).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let rows = wait_for_queue(&app, "a failed first attempt", |rows| rows.len() == 1 && rows[0].attempts == 1).await;
    let row = &rows[0];
    assert!(row.sent_ms.is_none() && row.failed_ms.is_none());
    assert!(row.last_error.as_deref().is_some_and(|e| !e.is_empty()), "{row:?}");
    assert!(row.next_attempt_ms >= row.created_ms + 25_000, "retried after a backoff: {row:?}");
    // Sealed at rest: neither the address nor the link in clear.
    assert!(!row.recipient.contains("retry@") && !row.body.contains("reset-password"), "{row:?}");
    // The mail server comes up; time passes (the backoff is due now).
    let (_, mut mails) =
        smtp_receiver_on(tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap(), std::time::Duration::ZERO);
    app.state.db.execute_unprepared("UPDATE mail_queue SET next_attempt_ms = 0").await.unwrap();
    app.state.mailer.as_ref().unwrap().wake();
    let mail = next_mail(&mut mails).await;
    assert!(mail.contains("Subject: Reset your Diabase password"), "{mail}");
    assert!(body_of(&mail).contains("reset-password?token="), "nothing lost: {mail}");
    let rows = wait_for_queue(&app, "marked sent", |rows| rows[0].sent_ms.is_some()).await;
    assert_eq!(rows[0].attempts, 2);
    assert_eq!(rows[0].body, "", "the sealed body is blanked once sent");
    assert!(mails.try_recv().is_err(), "sent once");
    // Another worker finds nothing left to claim.
    assert_eq!(app::service::mail::flush(&app.state).await.unwrap(), 0);
    let _ = store::entity::mail_queue::Entity::find().all(&app.state.db).await.unwrap();
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_requests_take_the_same_time_with_a_slow_mail_server_sqlite() {
    reset_requests_take_the_same_time_with_a_slow_mail_server(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_requests_take_the_same_time_with_a_slow_mail_server_postgres() {
    reset_requests_take_the_same_time_with_a_slow_mail_server(Backend::Postgres).await;
}

async fn reset_requests_take_the_same_time_with_a_slow_mail_server(backend: Backend) {
    // Five seconds per message: a request that waited for it would take longer.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (port, mut mails) = smtp_receiver_on(listener, std::time::Duration::from_secs(5));
    let config = app::service::Config { smtp_url: Some(format!("smtp://127.0.0.1:{port}")), ..Default::default() };
    let Some(app) = TestApp::spawn_with(backend, config).await else { return };
    let email = "known@example.org";
    let hash = app::service::auth::hash_password(STRONG.into()).await.unwrap();
    let e = app::service::auth::Email::parse(email).unwrap();
    app::service::auth::create_user(&app.state.db, &e, &hash, "Known", "patient", "UTC", true, 0)
        .await
        .unwrap()
        .unwrap();
    let anon = app.client();
    let timed = |address: &'static str| {
        let anon = anon.clone();
        let url = app.url("/api/v1/auth/password-reset");
        async move {
            let t = std::time::Instant::now();
            let r = anon.post(url).json(&json!({"email": address})).send().await.unwrap();
            assert_eq!(r.status(), 202);
            t.elapsed()
        }
    };
    let unknown = timed("nobody@example.org").await;
    let known = timed(email).await;
    // Well under the mail server's five seconds (with room for a loaded test machine).
    let bound = std::time::Duration::from_millis(3000);
    assert!(
        unknown < bound && known < bound,
        "unknown {unknown:?}, known {known:?}: the answer waited for the mail server"
    );
    // The mail still goes out.
    let mail = next_mail(&mut mails).await;
    assert!(mail.contains("Subject: Reset your Diabase password"), "{mail}");
    app.finish().await;
}

both_backends!(outbox_files_are_private);
async fn outbox_files_are_private(app: &TestApp) {
    app.user_with("private@example.org", "patient", false).await;
    let token = app.token_from_mail("private@example.org", "/verify-email").await;
    assert!(token.is_some());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = &app.state.config.mail_outbox;
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "the outbox folder: {mode:o}");
        let mut n = 0;
        for f in std::fs::read_dir(dir).unwrap().flatten() {
            let mode = f.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}: {mode:o}", f.path().display());
            n += 1;
        }
        assert!(n >= 1);
    }
}

both_backends!(invitations_show_only_to_a_confirmed_address);
async fn invitations_show_only_to_a_confirmed_address(app: &TestApp) {
    let pat = app.user("sharer@example.org", "patient").await;
    let r = pat
        .post(app.url("/api/v1/sharing/invites"))
        .json(&json!({"email": "partner@example.org", "scopes": ["glucose"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Someone signs up with the address but has not confirmed it: nothing shows.
    let claimant = app.user_with("partner@example.org", "patient", false).await;
    let list: Value = claimant.get(app.url("/api/v1/sharing/invites")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list, json!([]), "an unconfirmed address sees no invitation");
    // Once the owner of the address confirms it, the invitation shows.
    app.confirm_email("partner@example.org").await;
    let list: Value = claimant.get(app.url("/api/v1/sharing/invites")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
}

both_backends!(adding_a_clinic_member_reveals_nothing_about_the_address);
async fn adding_a_clinic_member_reveals_nothing_about_the_address(app: &TestApp) {
    let admin = app.user("head@clinic.example", "clinician").await;
    let r = admin.post(app.url("/api/v1/clinics")).json(&json!({"name": "Quiet Clinic"})).send().await.unwrap();
    let cid = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let doc = app.user("doc@clinic.example", "clinician").await;
    let pat = app.user("someone@patients.example", "patient").await;
    app.user_with("unconfirmed@clinic.example", "clinician", false).await;
    let mut answers = Vec::new();
    for email in
        ["nobody@clinic.example", "someone@patients.example", "doc@clinic.example", "unconfirmed@clinic.example"]
    {
        let r = admin
            .post(app.url(&format!("/api/v1/clinics/{cid}/members")))
            .json(&json!({"email": email, "role": "clinician"}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let mut v: Value = r.json().await.unwrap();
        assert_eq!(v["email"], email);
        v["email"] = json!("");
        answers.push((status, v));
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "the same answer for every kind of address: {answers:#?}");
    assert_eq!(answers[0].0, 202);
    assert_eq!(answers[0].1["status"], "invited");
    // The patient is told colleagues need a clinician account, and joins nothing.
    let mail = app
        .wait_for_mail(|m| m.contains("To: <someone@patients.example>") && m.contains("Quiet Clinic"))
        .await
        .expect("a mail to the patient");
    assert!(mail.contains("clinician account"), "{mail}");
    assert_eq!(pat.get(app.url("/api/v1/clinics")).send().await.unwrap().json::<Value>().await.unwrap(), json!([]));
    // The confirmed clinician joins.
    let clinics: Value = doc.get(app.url("/api/v1/clinics")).send().await.unwrap().json().await.unwrap();
    assert_eq!(clinics[0]["id"], cid.as_str());
}
