//! Passkeys through the public API, on SQLite and PostgreSQL, with a small
//! software authenticator written here (P-256 key, "none" attestation, the
//! WebAuthn byte layouts): register, list, rename, sign in with the passkey
//! alone, refusals (replayed ceremony, wrong signature, unknown credential,
//! API token), a clinic's two-factor requirement met by a passkey, removal.

#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use common::{Backend, TestApp};
use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::Private;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ORIGIN: &str = "http://localhost:8443";
const RP_ID: &str = "localhost";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).unwrap()
}

/// CBOR: a head of `major` with argument `n`.
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
    }
}

fn cbor_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        head(out, 0, v as u64);
    } else {
        head(out, 1, (-1 - v) as u64);
    }
}

fn cbor_bytes(out: &mut Vec<u8>, b: &[u8]) {
    head(out, 2, b.len() as u64);
    out.extend_from_slice(b);
}

fn cbor_text(out: &mut Vec<u8>, s: &str) {
    head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A software authenticator holding one discoverable credential.
struct SoftKey {
    key: EcKey<Private>,
    cred_id: Vec<u8>,
    counter: u32,
    user_handle: Vec<u8>,
}

impl SoftKey {
    fn new() -> SoftKey {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let mut id = vec![0u8; 32];
        openssl::rand::rand_bytes(&mut id).unwrap();
        SoftKey { key: EcKey::generate(&group).unwrap(), cred_id: id, counter: 0, user_handle: Vec::new() }
    }

    fn cose_key(&self) -> Vec<u8> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        let (mut x, mut y) = (openssl::bn::BigNum::new().unwrap(), openssl::bn::BigNum::new().unwrap());
        self.key.public_key().affine_coordinates(&group, &mut x, &mut y, &mut ctx).unwrap();
        let mut out = Vec::new();
        head(&mut out, 5, 5);
        cbor_int(&mut out, 1);
        cbor_int(&mut out, 2); // kty: EC2
        cbor_int(&mut out, 3);
        cbor_int(&mut out, -7); // alg: ES256
        cbor_int(&mut out, -1);
        cbor_int(&mut out, 1); // crv: P-256
        cbor_int(&mut out, -2);
        cbor_bytes(&mut out, &x.to_vec_padded(32).unwrap());
        cbor_int(&mut out, -3);
        cbor_bytes(&mut out, &y.to_vec_padded(32).unwrap());
        out
    }

    fn auth_data(&self, flags: u8, attested: bool) -> Vec<u8> {
        let mut d = Sha256::digest(RP_ID.as_bytes()).to_vec();
        d.push(flags);
        d.extend(self.counter.to_be_bytes());
        if attested {
            d.extend([0u8; 16]); // AAGUID
            d.extend((self.cred_id.len() as u16).to_be_bytes());
            d.extend(&self.cred_id);
            d.extend(self.cose_key());
        }
        d
    }

    /// `navigator.credentials.create` on the server's options.
    fn create(&mut self, options: &Value) -> Value {
        let pk = &options["publicKey"];
        assert_eq!(pk["rp"]["id"], RP_ID);
        self.user_handle = unb64(pk["user"]["id"].as_str().unwrap());
        let client =
            json!({"type": "webauthn.create", "challenge": pk["challenge"], "origin": ORIGIN, "crossOrigin": false});
        let client = serde_json::to_vec(&client).unwrap();
        // User present + verified + attested credential data.
        let auth = self.auth_data(0x45, true);
        let mut att = Vec::new();
        head(&mut att, 5, 3);
        cbor_text(&mut att, "fmt");
        cbor_text(&mut att, "none");
        cbor_text(&mut att, "attStmt");
        head(&mut att, 5, 0);
        cbor_text(&mut att, "authData");
        cbor_bytes(&mut att, &auth);
        json!({
            "id": b64(&self.cred_id),
            "rawId": b64(&self.cred_id),
            "type": "public-key",
            "response": {"attestationObject": b64(&att), "clientDataJSON": b64(&client)},
            "extensions": {},
        })
    }

    /// `navigator.credentials.get` on the server's options.
    fn get(&mut self, options: &Value, origin: &str) -> Value {
        let pk = &options["publicKey"];
        self.counter += 1;
        let client =
            json!({"type": "webauthn.get", "challenge": pk["challenge"], "origin": origin, "crossOrigin": false});
        let client = serde_json::to_vec(&client).unwrap();
        let auth = self.auth_data(0x05, false);
        let mut msg = auth.clone();
        msg.extend(Sha256::digest(&client));
        let sig = EcdsaSig::sign(&Sha256::digest(&msg), &self.key).unwrap().to_der().unwrap();
        json!({
            "id": b64(&self.cred_id),
            "rawId": b64(&self.cred_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth),
                "clientDataJSON": b64(&client),
                "signature": b64(&sig),
                "userHandle": b64(&self.user_handle),
            },
            "extensions": {},
        })
    }
}

async fn spawn(backend: Backend) -> Option<TestApp> {
    let cfg = app::service::Config { public_url: ORIGIN.into(), ..app::service::Config::default() };
    TestApp::spawn_with(backend, cfg).await
}

async fn post(c: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = c.post(url).json(&body).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn register(app: &TestApp, c: &reqwest::Client, key: &mut SoftKey, name: &str) -> (u16, Value) {
    let (s, start) = post(c, app.url("/api/v1/me/passkeys/start"), json!({})).await;
    assert_eq!(s, 200, "{start}");
    let sel = &start["options"]["publicKey"]["authenticatorSelection"];
    assert_eq!((sel["residentKey"].as_str(), sel["requireResidentKey"].as_bool()), (Some("required"), Some(true)));
    let credential = key.create(&start["options"]);
    post(
        c,
        app.url("/api/v1/me/passkeys"),
        json!({"challenge_id": start["challenge_id"], "name": name, "credential": credential}),
    )
    .await
}

async fn sign_in(app: &TestApp, key: &mut SoftKey, origin: &str) -> (u16, Value, reqwest::Client) {
    let c = app.client();
    let (s, start) = post(&c, app.url("/api/v1/auth/passkey/start"), json!({})).await;
    assert_eq!(s, 200, "{start}");
    assert!(
        start["options"]["publicKey"]["allowCredentials"].as_array().is_none_or(|a| a.is_empty()),
        "discoverable: no list"
    );
    let credential = key.get(&start["options"], origin);
    let (s, v) = post(
        &c,
        app.url("/api/v1/auth/passkey/finish"),
        json!({"challenge_id": start["challenge_id"], "credential": credential}),
    )
    .await;
    (s, v, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_sqlite() {
    if let Some(app) = spawn(Backend::Sqlite).await {
        passkeys(&app).await;
        app.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_postgres() {
    if let Some(app) = spawn(Backend::Postgres).await {
        passkeys(&app).await;
        app.finish().await;
    }
}

async fn passkeys(app: &TestApp) {
    let email = "keyholder@example.org";
    let c = app.user(email, "clinician").await;
    let mut key = SoftKey::new();
    let (s, p) = register(app, &c, &mut key, "  Laptop ").await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(p["name"], "Laptop");
    let id = p["id"].as_str().unwrap().to_string();

    // The same authenticator again: the same credential is refused.
    let (s, v) = register(app, &c, &mut key, "Again").await;
    assert_eq!(s, 409, "{v}");
    // A ceremony works once.
    let (_, start) = post(&c, app.url("/api/v1/me/passkeys/start"), json!({})).await;
    let mut other = SoftKey::new();
    let cred = other.create(&start["options"]);
    let body = json!({"challenge_id": start["challenge_id"], "name": "Phone", "credential": cred});
    assert_eq!(post(&c, app.url("/api/v1/me/passkeys"), body.clone()).await.0, 201);
    assert_eq!(post(&c, app.url("/api/v1/me/passkeys"), body).await.0, 400);

    let list: Value = c.get(app.url("/api/v1/me/passkeys")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let r = c
        .patch(app.url(&format!("/api/v1/me/passkeys/{id}")))
        .json(&json!({"name": "Work laptop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c.patch(app.url(&format!("/api/v1/me/passkeys/{id}"))).json(&json!({"name": "  "})).send().await.unwrap();
    assert_eq!(r.status(), 400);

    // Sign in with the passkey alone: no email, no password.
    let (s, me, signed) = sign_in(app, &mut key, ORIGIN).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["email"], email);
    let me: Value = signed.get(app.url("/api/v1/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["email"], email);
    let list: Value = c.get(app.url("/api/v1/me/passkeys")).send().await.unwrap().json().await.unwrap();
    assert!(list.as_array().unwrap().iter().any(|p| p["name"] == "Work laptop" && p["last_used_at"].is_string()));

    // Refused: another site's origin, a bad signature, an unknown credential, a replayed ceremony.
    let (s, _, _) = sign_in(app, &mut key, "http://localhost.evil.example:8443").await;
    assert_eq!(s, 401);
    let anon = app.client();
    let (_, start) = post(&anon, app.url("/api/v1/auth/passkey/start"), json!({})).await;
    let mut cred = key.get(&start["options"], ORIGIN);
    let mut sig = unb64(cred["response"]["signature"].as_str().unwrap());
    let n = sig.len();
    sig[n - 1] ^= 1;
    cred["response"]["signature"] = json!(b64(&sig));
    let body = json!({"challenge_id": start["challenge_id"], "credential": cred});
    assert_eq!(post(&anon, app.url("/api/v1/auth/passkey/finish"), body.clone()).await.0, 401);
    assert_eq!(post(&anon, app.url("/api/v1/auth/passkey/finish"), body).await.0, 400, "a ceremony is used once");
    let mut stranger = SoftKey::new();
    stranger.user_handle = key.user_handle.clone();
    let (s, _, _) = sign_in(app, &mut stranger, ORIGIN).await;
    assert_eq!(s, 401);
    assert_eq!(anon.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401);

    // An API token cannot add passkeys.
    let (_, tok) = post(&c, app.url("/api/v1/tokens"), json!({"name": "script"})).await;
    let r = reqwest::Client::new()
        .post(app.url("/api/v1/me/passkeys/start"))
        .bearer_auth(tok["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // A passkey meets a clinic's two-factor requirement; the last one cannot then be removed.
    let (s, clinic) = post(&c, app.url("/api/v1/clinics"), json!({"name": "Key Clinic"})).await;
    assert_eq!(s, 201);
    let cid = clinic["id"].as_str().unwrap();
    let r =
        c.patch(app.url(&format!("/api/v1/clinics/{cid}"))).json(&json!({"require_2fa": true})).send().await.unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let list: Value = c.get(app.url("/api/v1/me/passkeys")).send().await.unwrap().json().await.unwrap();
    let ids: Vec<String> = list.as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(c.delete(app.url(&format!("/api/v1/me/passkeys/{}", ids[0]))).send().await.unwrap().status(), 204);
    assert_eq!(c.delete(app.url(&format!("/api/v1/me/passkeys/{}", ids[1]))).send().await.unwrap().status(), 409);
    // Someone else's passkey is not found.
    let d = app.user("other@example.org", "patient").await;
    assert_eq!(d.delete(app.url(&format!("/api/v1/me/passkeys/{}", ids[1]))).send().await.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ip_address_origin_explains_itself() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else { return };
    let (s, v) = post(&app.client(), app.url("/api/v1/auth/passkey/start"), json!({})).await;
    assert_eq!(s, 422);
    assert!(v["error"]["message"].as_str().unwrap().contains("DIABASE_PUBLIC_URL"), "{v}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_reauth_sqlite() {
    if let Some(app) = spawn(Backend::Sqlite).await {
        passkey_reauth(&app).await;
        app.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_reauth_postgres() {
    if let Some(app) = spawn(Backend::Postgres).await {
        passkey_reauth(&app).await;
        app.finish().await;
    }
}

/// An assertion from one of the account's own passkeys stands for the
/// password when a sensitive change asks for it again (issue 19).
async fn passkey_reauth(app: &TestApp) {
    use sea_orm::ConnectionTrait;
    let c = app.user("reauth.key@example.org", "patient").await;
    let mut key = SoftKey::new();
    let (s, p) = register(app, &c, &mut key, "Laptop").await;
    assert_eq!(s, 201, "{p}");
    // Ten minutes later the session must prove itself again.
    app.state
        .db
        .execute_unprepared("UPDATE sessions SET auth_ms = auth_ms - 600000, created_ms = created_ms - 600000")
        .await
        .unwrap();
    let (s, v) = post(&c, app.url("/api/v1/me/passkeys/start"), json!({})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (401, Some("reauth_required")), "{v}");
    // Another account's passkey does not do.
    let other = app.user("someone.else@example.org", "patient").await;
    let mut theirs = SoftKey::new();
    assert_eq!(register(app, &other, &mut theirs, "Theirs").await.0, 201);
    let (s, start) = post(&c, app.url("/api/v1/me/reauth/passkey/start"), json!({})).await;
    assert_eq!(s, 200, "{start}");
    assert_eq!(start["options"]["publicKey"]["allowCredentials"].as_array().map(Vec::len), Some(1), "{start}");
    let cred = theirs.get(&start["options"], ORIGIN);
    let (s, _) = post(
        &c,
        app.url("/api/v1/me/reauth/passkey/finish"),
        json!({"challenge_id": start["challenge_id"], "credential": cred}),
    )
    .await;
    assert_eq!(s, 401);
    // The account's own passkey does.
    let (_, start) = post(&c, app.url("/api/v1/me/reauth/passkey/start"), json!({})).await;
    let cred = key.get(&start["options"], ORIGIN);
    let (s, v) = post(
        &c,
        app.url("/api/v1/me/reauth/passkey/finish"),
        json!({"challenge_id": start["challenge_id"], "credential": cred}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = post(&c, app.url("/api/v1/me/passkeys/start"), json!({})).await;
    assert_eq!(s, 200, "{v}");
}
