//! Patient control through the public API, on SQLite and PostgreSQL:
//! scoped personal access tokens, "pause all sharing", and sharing on the
//! patient's initiative with a clinic's share code.

#![allow(clippy::unwrap_used)]

mod common;

use app::service::nightscout::sha1_hex;
use common::{Backend, TestApp};
use serde_json::{Value, json};

async fn body(r: reqwest::Response) -> Value {
    let status = r.status();
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: {e}: {text}"))
}

/// A day of 5-minute CGM readings ending now, sent as xDrip+ would.
async fn post_cgm(app: &TestApp, c: &reqwest::Client) {
    let r = c.post(app.url("/api/v1/me/nightscout")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let site = body(r).await;
    let secret = sha1_hex(site["secret"].as_str().unwrap().as_bytes());
    let now = app::service::now_ms() / 300_000 * 300_000;
    let entries: Vec<Value> = (0..288)
        .map(|i| json!({"type": "sgv", "sgv": 100 + (i % 50), "date": now - (288 - i) * 300_000, "device": "xDrip-DexcomG6"}))
        .collect();
    let r = reqwest::Client::new()
        .post(app.url("/api/v1/entries"))
        .header("api-secret", secret)
        .json(&entries)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Whether an RFC 3339 end of access is the end of local day `date` (in
/// any zone: within a day after that date's start in UTC).
fn ends_on(rfc3339: &Value, date: &str) -> bool {
    let Some(t) = rfc3339.as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()) else { return false };
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let t = t.with_timezone(&chrono::Utc);
    t > d - chrono::Duration::hours(14) && t <= d + chrono::Duration::hours(38)
}

fn window() -> (String, String) {
    let today = chrono::Utc::now().date_naive();
    ((today - chrono::Duration::days(2)).to_string(), (today + chrono::Duration::days(1)).to_string())
}

async fn get_status(c: &reqwest::Client, url: String, bearer: Option<&str>) -> u16 {
    let mut req = c.get(url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn make_token(
    app: &TestApp,
    c: &reqwest::Client,
    name: &str,
    scopes: Value,
    expires_at: Option<&str>,
) -> reqwest::Response {
    let mut b = json!({"name": name, "scopes": scopes});
    if let Some(e) = expires_at {
        b["expires_at"] = json!(e);
    }
    c.post(app.url("/api/v1/tokens")).json(&b).send().await.unwrap()
}

const NIGHTSCOUT_JSON: &str =
    r#"[{"type":"sgv","sgv":123,"date":1700000000000,"dateString":"2023-11-14T22:13:20.000Z","device":"xDrip"}]"#;

async fn upload(app: &TestApp, token: &str) -> u16 {
    let part = reqwest::multipart::Part::bytes(NIGHTSCOUT_JSON.as_bytes().to_vec()).file_name("entries.json");
    let form = reqwest::multipart::Form::new().part("file", part);
    reqwest::Client::new()
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

both_backends!(scoped_tokens);
async fn scoped_tokens(app: &TestApp) {
    let pat = app.user("scoped@example.org", "patient").await;
    post_cgm(app, &pat).await;
    let me = body(pat.get(app.url("/api/v1/me")).send().await.unwrap()).await;
    let pid = me["patient_id"].as_str().unwrap().to_string();
    let (from, to) = window();
    let data = |what: &str| app.url(&format!("/api/v1/patients/{pid}/{what}?from={from}&to={to}"));
    let anon = reqwest::Client::new();

    // Bad scopes and past expiries are refused with the field named.
    let r = make_token(app, &pat, "x", json!(["read:everything"]), None).await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["field"], "scopes");
    let r = make_token(app, &pat, "x", json!([]), None).await;
    assert_eq!(r.status(), 400);
    let r = make_token(app, &pat, "x", json!(["read:glucose"]), Some("2001-01-01")).await;
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["field"], "expires_at");

    // read:glucose: glucose and the glucose report, nothing else.
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Duration::days(30)).to_string();
    let r = make_token(app, &pat, "follower", json!(["read:glucose"]), Some(&tomorrow)).await;
    assert_eq!(r.status(), 201);
    let t = body(r).await;
    assert_eq!(t["scopes"], json!(["read:glucose"]));
    assert!(ends_on(&t["expires_at"], &tomorrow), "{}", t["expires_at"]);
    let glucose_token = t["token"].as_str().unwrap().to_string();
    assert_eq!(get_status(&anon, app.url("/api/v1/me"), Some(&glucose_token)).await, 200);
    assert_eq!(get_status(&anon, data("glucose"), Some(&glucose_token)).await, 200);
    assert_eq!(get_status(&anon, data("report"), Some(&glucose_token)).await, 200);
    // Writes, account data, sharing and the browser's functions: refused.
    assert_eq!(upload(app, &glucose_token).await, 403);
    for path in [
        "/api/v1/me/export?format=json",
        "/api/v1/sharing/grants",
        "/api/v1/tokens",
        "/api/v1/uploads",
        "/api/v1/me/logins",
    ] {
        assert_eq!(get_status(&anon, app.url(path), Some(&glucose_token)).await, 403, "{path}");
    }
    let r = anon.post(app.url("/api/v1/sharing/pause")).bearer_auth(&glucose_token).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = anon
        .post(app.url("/api/v1/tokens"))
        .bearer_auth(&glucose_token)
        .json(&json!({"name": "escalate"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let fn_url = app.url(&format!("/_fn/report_logbook?patient={pid}&from={from}&to={to}"));
    assert!(matches!(get_status(&anon, fn_url, Some(&glucose_token)).await, 401 | 403));
    // Insulin, settings and events: the policy refuses the token itself.
    let actor =
        app::service::tokens::resolve(&app.state, &glucose_token, app::service::now_ms()).await.unwrap().unwrap();
    use app::service::policy::{self, Action};
    assert!(policy::can(&app.state, &actor, Action::ReadGlucose, &pid).await.unwrap().is_some());
    for a in [Action::ReadInsulin, Action::ReadSettings, Action::ReadEvents, Action::Upload, Action::DeleteData] {
        assert!(policy::can(&app.state, &actor, a, &pid).await.unwrap().is_none(), "{a:?}");
        assert!(
            matches!(policy::require(&app.state, &actor, a, &pid).await, Err(app::service::ServiceError::Forbidden)),
            "{a:?}"
        );
    }
    // The token stops at its end date.
    let later = chrono::Utc::now().timestamp_millis() + 40 * 86_400_000;
    assert!(app::service::tokens::resolve(&app.state, &glucose_token, later).await.unwrap().is_none());

    // upload: uploads, reads nothing.
    let r = make_token(app, &pat, "xDrip+", json!(["upload"]), None).await;
    let up = body(r).await;
    let upload_token = up["token"].as_str().unwrap().to_string();
    assert_eq!(upload(app, &upload_token).await, 201);
    assert_eq!(get_status(&anon, data("glucose"), Some(&upload_token)).await, 403);
    assert_eq!(get_status(&anon, data("report"), Some(&upload_token)).await, 403);

    // read:all reads everything, writes nothing.
    let all = body(make_token(app, &pat, "doctor script", json!(["read:all"]), None).await).await;
    assert_eq!(all["scopes"], json!(["read:all"]));
    let all_token = all["token"].as_str().unwrap().to_string();
    let actor = app::service::tokens::resolve(&app.state, &all_token, app::service::now_ms()).await.unwrap().unwrap();
    for a in [Action::ReadGlucose, Action::ReadInsulin, Action::ReadSettings, Action::ReadEvents] {
        assert!(policy::can(&app.state, &actor, a, &pid).await.unwrap().is_some(), "{a:?}");
    }
    assert_eq!(upload(app, &all_token).await, 403);

    // No scopes given: the API's original full token.
    let full = body(pat.post(app.url("/api/v1/tokens")).json(&json!({"name": "legacy"})).send().await.unwrap()).await;
    assert_eq!(full["scopes"], json!(["full"]));
    assert_eq!(get_status(&anon, app.url("/api/v1/sharing/grants"), full["token"].as_str()).await, 200);

    // Listed with scopes and ends; a revoked token is refused at once.
    let list = body(pat.get(app.url("/api/v1/tokens")).send().await.unwrap()).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 4);
    let follower = list.iter().find(|t| t["name"] == "follower").unwrap();
    assert_eq!(follower["scopes"], json!(["read:glucose"]));
    assert!(follower["expires_at"].is_string());
    assert!(follower["last_used_at"].is_string());
    assert!(list.iter().all(|t| t.get("token").is_none()), "secrets are never listed");
    let id = follower["id"].as_str().unwrap();
    assert_eq!(pat.delete(app.url(&format!("/api/v1/tokens/{id}"))).send().await.unwrap().status(), 204);
    assert_eq!(get_status(&anon, data("glucose"), Some(&glucose_token)).await, 401);
}

/// Shares with a care partner (invitation accepted); returns the partner's client.
async fn share_with_partner(app: &TestApp, pat: &reqwest::Client, email: &str) -> reqwest::Client {
    let r = pat
        .post(app.url("/api/v1/sharing/invites"))
        .json(&json!({"email": email, "scopes": ["glucose"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let partner = app.user(email, "patient").await;
    let incoming = body(partner.get(app.url("/api/v1/sharing/invites")).send().await.unwrap()).await;
    let gid = incoming[0]["grant_id"].as_str().unwrap().to_string();
    let r = partner.post(app.url(&format!("/api/v1/sharing/invites/{gid}/accept"))).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    partner
}

both_backends!(pause_all_sharing);
async fn pause_all_sharing(app: &TestApp) {
    let pat = app.user("pausing@example.org", "patient").await;
    post_cgm(app, &pat).await;
    let pid =
        body(pat.get(app.url("/api/v1/me")).send().await.unwrap()).await["patient_id"].as_str().unwrap().to_string();
    let partner = share_with_partner(app, &pat, "partner@example.org").await;
    // And a clinic, by its share code.
    let doc = app.user("doc@clinic.example", "clinician").await;
    let clinic =
        body(doc.post(app.url("/api/v1/clinics")).json(&json!({"name": "Pause Clinic"})).send().await.unwrap()).await;
    let clinic_id = clinic["id"].as_str().unwrap().to_string();
    let code = clinic["share_code"].as_str().unwrap().to_string();
    let r = pat
        .post(app.url("/api/v1/sharing/accept"))
        .json(&json!({"code": code, "scopes": ["glucose"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (from, to) = window();
    let url = app.url(&format!("/api/v1/patients/{pid}/glucose?from={from}&to={to}"));
    assert_eq!(get_status(&partner, url.clone(), None).await, 200);
    assert_eq!(get_status(&doc, url.clone(), None).await, 200);

    // Pause: both lose access on their next request; nothing is lost.
    let r = pat.post(app.url("/api/v1/sharing/pause")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let p = body(r).await;
    assert_eq!(p["paused"], true);
    assert_eq!(p["grants"], 2);
    assert_eq!(body(pat.get(app.url("/api/v1/sharing/paused")).send().await.unwrap()).await["paused"], true);
    assert_eq!(get_status(&partner, url.clone(), None).await, 404);
    assert_eq!(get_status(&doc, url.clone(), None).await, 404);
    let grants = body(pat.get(app.url("/api/v1/sharing/grants")).send().await.unwrap()).await;
    assert!(
        grants.as_array().unwrap().iter().all(|g| g["status"] == "paused" && g["paused_at"].is_string()),
        "{grants}"
    );
    let rows = body(doc.get(app.url(&format!("/api/v1/clinics/{clinic_id}/patients"))).send().await.unwrap()).await;
    assert_eq!(rows[0]["link_status"], "paused", "{rows}");
    assert!(rows[0]["patient_id"].is_null());
    assert!(rows[0]["readings"].as_u64() == Some(0));
    // Scopes and expiries are kept; resuming restores both.
    let r = pat.post(app.url("/api/v1/sharing/resume")).send().await.unwrap();
    assert_eq!(body(r).await["grants"], 2);
    assert_eq!(get_status(&partner, url.clone(), None).await, 200);
    assert_eq!(get_status(&doc, url.clone(), None).await, 200);
    let grants = body(pat.get(app.url("/api/v1/sharing/grants")).send().await.unwrap()).await;
    assert!(grants.as_array().unwrap().iter().all(|g| g["status"] == "active" && g["scopes"] == json!(["glucose"])));
    // A clinician or partner cannot pause someone else's sharing.
    let r = doc.post(app.url("/api/v1/sharing/pause")).send().await.unwrap();
    assert!(r.status().is_client_error());
    assert_eq!(get_status(&partner, url, None).await, 200);
}

both_backends!(share_code_flow);
async fn share_code_flow(app: &TestApp) {
    let admin = app.user("admin@share.example", "clinician").await;
    let clinic =
        body(admin.post(app.url("/api/v1/clinics")).json(&json!({"name": "Share Clinic"})).send().await.unwrap()).await;
    let clinic_id = clinic["id"].as_str().unwrap().to_string();
    let code = clinic["share_code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 14, "XXXX-XXXX-XXXX: {code}");
    assert_eq!(code.matches('-').count(), 2);
    // The workspace shows the same code.
    let list = body(admin.get(app.url("/api/v1/clinics")).send().await.unwrap()).await;
    assert_eq!(list[0]["share_code"], code.as_str());
    assert_eq!(list[0]["new_patients"], 0);

    let pat = app.user("initiative@example.org", "patient").await;
    post_cgm(app, &pat).await;
    let pid =
        body(pat.get(app.url("/api/v1/me")).send().await.unwrap()).await["patient_id"].as_str().unwrap().to_string();
    // Preview names the clinic; lower case and no dashes work too.
    let typed = code.replace('-', " ").to_lowercase();
    let r = pat.post(app.url("/api/v1/sharing/preview")).json(&json!({"code": typed})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let p = body(r).await;
    assert_eq!(p["clinic_name"], "Share Clinic");
    assert_eq!(p["kind"], "share");
    assert!(p["code_expires_at"].is_null());
    // Nothing is shared by a preview.
    let rows = body(admin.get(app.url(&format!("/api/v1/clinics/{clinic_id}/patients"))).send().await.unwrap()).await;
    assert_eq!(rows.as_array().unwrap().len(), 0);
    // Share glucose until a date.
    let until = (chrono::Utc::now().date_naive() + chrono::Duration::days(60)).to_string();
    let r = pat
        .post(app.url("/api/v1/sharing/accept"))
        .json(&json!({"code": code, "scopes": ["glucose", "insulin"], "expires_at": until}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let grant_id = body(r).await["grant_id"].as_str().unwrap().to_string();
    let grants = body(pat.get(app.url("/api/v1/sharing/grants")).send().await.unwrap()).await;
    assert_eq!(grants[0]["id"], grant_id.as_str());
    assert_eq!(grants[0]["grantee_name"], "Share Clinic");
    assert_eq!(grants[0]["scopes"], json!(["glucose", "insulin"]));
    assert!(ends_on(&grants[0]["expires_at"], &until), "{}", grants[0]["expires_at"]);

    // The clinic finds the patient among its new patients, with figures.
    let list = body(admin.get(app.url("/api/v1/clinics")).send().await.unwrap()).await;
    assert_eq!(list[0]["new_patients"], 1);
    let rows =
        body(admin.get(app.url(&format!("/api/v1/clinics/{clinic_id}/patients?filter=new"))).send().await.unwrap())
            .await;
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    let row = &rows[0];
    assert_eq!(row["new_patient"], true);
    assert_eq!(row["link_status"], "linked");
    assert_eq!(row["name"], "Test Person");
    assert_eq!(row["patient_id"], pid.as_str());
    assert!(row["readings"].as_u64().unwrap() > 200);
    let record_id = row["record_id"].as_str().unwrap().to_string();
    let (from, to) = window();
    assert_eq!(
        get_status(&admin, app.url(&format!("/api/v1/patients/{pid}/glucose?from={from}&to={to}")), None).await,
        200
    );
    // Acknowledged: off the new list, still linked.
    let r = admin
        .post(app.url(&format!("/api/v1/clinics/{clinic_id}/patients/{record_id}/acknowledge")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let rows =
        body(admin.get(app.url(&format!("/api/v1/clinics/{clinic_id}/patients?filter=new"))).send().await.unwrap())
            .await;
    assert_eq!(rows.as_array().unwrap().len(), 0);
    let rows = body(admin.get(app.url(&format!("/api/v1/clinics/{clinic_id}/patients"))).send().await.unwrap()).await;
    assert_eq!(rows[0]["link_status"], "linked");
    assert_eq!(rows[0]["new_patient"], false);

    // Sharing again replaces the grant; the clinic keeps one record.
    let r = pat
        .post(app.url("/api/v1/sharing/accept"))
        .json(&json!({"code": code, "scopes": ["glucose"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let rows = body(admin.get(app.url(&format!("/api/v1/clinics/{clinic_id}/patients"))).send().await.unwrap()).await;
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["scopes"], json!(["glucose"]));
    let grants = body(pat.get(app.url("/api/v1/sharing/grants")).send().await.unwrap()).await;
    assert_eq!(grants.as_array().unwrap().iter().filter(|g| g["status"] == "active").count(), 1);

    // Only an admin replaces the code; the old one then finds nothing.
    let member = app.user("member@share.example", "clinician").await;
    let r = admin
        .post(app.url(&format!("/api/v1/clinics/{clinic_id}/members")))
        .json(&json!({"email": "member@share.example", "role": "clinician"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    // The invited colleague joins when they next look at their clinics.
    assert!(member.get(app.url("/api/v1/clinics")).send().await.unwrap().status().is_success());
    let r = member.post(app.url(&format!("/api/v1/clinics/{clinic_id}/share-code"))).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = admin.post(app.url(&format!("/api/v1/clinics/{clinic_id}/share-code"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let new_code = body(r).await["share_code"].as_str().unwrap().to_string();
    assert_ne!(new_code, code);
    let other = app.user("latecomer@example.org", "patient").await;
    let r = other.post(app.url("/api/v1/sharing/preview")).json(&json!({"code": code})).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = other.post(app.url("/api/v1/sharing/preview")).json(&json!({"code": new_code})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The patient who shared still shares.
    assert_eq!(
        get_status(&admin, app.url(&format!("/api/v1/patients/{pid}/glucose?from={from}&to={to}")), None).await,
        200
    );
    // A clinician cannot share "as a patient" into their own clinic.
    let r = admin
        .post(app.url("/api/v1/sharing/accept"))
        .json(&json!({"code": new_code, "scopes": ["glucose"]}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
}

/// An SMS gateway stub on loopback: records each request's authorization
/// header and JSON body; answers `status`.
async fn sms_gateway(status: u16) -> (String, std::sync::Arc<std::sync::Mutex<Vec<(Option<String>, Value)>>>) {
    use axum::{Json, Router, extract::State, http::HeaderMap, routing::post};
    type Log = std::sync::Arc<std::sync::Mutex<Vec<(Option<String>, Value)>>>;
    let log: Log = Default::default();
    async fn receive(
        State((log, status)): State<(Log, u16)>,
        headers: HeaderMap,
        Json(v): Json<Value>,
    ) -> axum::http::StatusCode {
        let auth = headers.get("authorization").and_then(|h| h.to_str().ok()).map(str::to_string);
        log.lock().unwrap().push((auth, v));
        axum::http::StatusCode::from_u16(status).unwrap()
    }
    let app = Router::new().route("/send", post(receive)).with_state((log.clone(), status));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/send", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, log)
}

async fn spawn_with_sms(backend: Backend, url: &str) -> Option<TestApp> {
    let gw = app::service::sms::Gateway {
        url: url.to_string(),
        token: Some("gw-secret".into()),
        from: Some("Diabase".into()),
    };
    TestApp::spawn_with(backend, app::service::Config { sms: Some(gw), ..Default::default() }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_code_by_sms_sqlite() {
    link_code_by_sms(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_code_by_sms_postgres() {
    link_code_by_sms(Backend::Postgres).await;
}

/// A clinic texts a link code through the gateway; the patient links with
/// the code from the message. Numbers are checked; no health data is sent.
async fn link_code_by_sms(backend: Backend) {
    let (url, log) = sms_gateway(200).await;
    let Some(app) = spawn_with_sms(backend, &url).await else { return };
    let doc = app.user("sms-doc@clinic.example", "clinician").await;
    let clinic =
        body(doc.post(app.url("/api/v1/clinics")).json(&json!({"name": "Text Clinic"})).send().await.unwrap()).await;
    let cid = clinic["id"].as_str().unwrap().to_string();
    let r = doc
        .post(app.url(&format!("/api/v1/clinics/{cid}/patients")))
        .json(&json!({"name": "Robin Text", "birth_date": "1980-02-03", "mrn": "T-1"}))
        .send()
        .await
        .unwrap();
    let rid = body(r).await["record_id"].as_str().unwrap().to_string();
    let code_url = app.url(&format!("/api/v1/clinics/{cid}/patients/{rid}/link-code"));
    // A number without a country code, or with letters: refused, nothing sent.
    for bad in ["07700 900123", "+44 77OO 900123"] {
        let r = doc.post(&code_url).json(&json!({"phone": bad})).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(body(r).await["error"]["field"], "phone");
    }
    assert!(log.lock().unwrap().is_empty());
    let r = doc.post(&code_url).json(&json!({"phone": "+44 7700 900123"})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let made = body(r).await;
    assert_eq!(made["texted_to"], "+447700900123");
    let sent = log.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let (auth, msg) = &sent[0];
    assert_eq!(auth.as_deref(), Some("Bearer gw-secret"));
    assert_eq!(msg["to"], "+447700900123");
    assert_eq!(msg["from"], "Diabase");
    let text = msg["body"].as_str().unwrap();
    assert!(text.contains("Text Clinic"), "{text}");
    // The random code may by chance hold "T-1" or "1980": look at the rest.
    let rest = text.replace(made["code"].as_str().unwrap(), "");
    assert!(
        !rest.contains("Robin") && !rest.contains("1980") && !rest.contains("T-1"),
        "no patient identifiers: {text}"
    );
    // The patient types the code from the message.
    let code: String =
        text.split_whitespace().find(|w| w.len() == 14 && w.matches('-').count() == 2).unwrap().to_string();
    assert_eq!(code, made["code"].as_str().unwrap());
    let pat = app.user("robin@example.org", "patient").await;
    let r = pat
        .post(app.url("/api/v1/sharing/accept"))
        .json(&json!({"code": code, "scopes": ["glucose"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let row = body(doc.get(app.url(&format!("/api/v1/clinics/{cid}/patients/{rid}"))).send().await.unwrap()).await;
    assert_eq!(row["link_status"], "linked");

    // A care partner's invitation can go by text as well; it holds the link only.
    let r = pat
        .post(app.url("/api/v1/sharing/invites"))
        .json(&json!({"email": "kim@example.org", "scopes": ["glucose"], "phone": "+1 555 123 4567"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let sent = log.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].1["to"], "+15551234567");
    assert!(sent[1].1["body"].as_str().unwrap().contains("/sharing?invite="));
    app.finish().await;

    // A gateway that fails: a clear 502, not a silent success.
    let (url, _log) = sms_gateway(500).await;
    let Some(app) = spawn_with_sms(backend, &url).await else { return };
    let doc = app.user("sms-doc2@clinic.example", "clinician").await;
    let clinic =
        body(doc.post(app.url("/api/v1/clinics")).json(&json!({"name": "Down Clinic"})).send().await.unwrap()).await;
    let cid = clinic["id"].as_str().unwrap().to_string();
    let r = doc
        .post(app.url(&format!("/api/v1/clinics/{cid}/patients")))
        .json(&json!({"name": "Alex"}))
        .send()
        .await
        .unwrap();
    let rid = body(r).await["record_id"].as_str().unwrap().to_string();
    let r = doc
        .post(app.url(&format!("/api/v1/clinics/{cid}/patients/{rid}/link-code")))
        .json(&json!({"phone": "+4915112345678"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(body(r).await["error"]["code"], "unavailable");
    app.finish().await;
}

both_backends!(sms_off_by_default);
async fn sms_off_by_default(app: &TestApp) {
    let pat = app.user("nosms@example.org", "patient").await;
    let r = pat
        .post(app.url("/api/v1/sharing/invites"))
        .json(&json!({"email": "kim@example.org", "scopes": ["glucose"], "phone": "+15551234567"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e = body(r).await;
    assert_eq!(e["error"]["field"], "phone");
    assert!(e["error"]["message"].as_str().unwrap().contains("not set up"));
    // Nothing was created.
    let grants = body(pat.get(app.url("/api/v1/sharing/grants")).send().await.unwrap()).await;
    assert!(grants.as_array().unwrap().is_empty());
}

both_backends!(share_with_provider_by_email);
async fn share_with_provider_by_email(app: &TestApp) {
    let pat = app.user("patient@provider.example", "patient").await;
    post_cgm(app, &pat).await;
    let pid =
        body(pat.get(app.url("/api/v1/me")).send().await.unwrap()).await["patient_id"].as_str().unwrap().to_string();
    let until = (chrono::Utc::now().date_naive() + chrono::Duration::days(14)).to_string();
    let r = pat
        .post(app.url("/api/v1/sharing/invites"))
        .json(&json!({"email": "Dr.Lee@Hospital.example", "scopes": ["glucose", "insulin"], "expires_at": until,
            "provider_name": "Dr Ana Lee", "provider_clinic": "City Diabetes Centre"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let g = body(r).await;
    assert_eq!(g["grant"]["grantee_type"], "provider");
    assert_eq!(g["grant"]["grantee_name"], "Dr Ana Lee (City Diabetes Centre)");
    assert_eq!(g["status"], "pending");
    // Name and clinic are both needed.
    let r = pat
        .post(app.url("/api/v1/sharing/invites"))
        .json(&json!({"email": "x@hospital.example", "scopes": ["glucose"], "provider_name": "Dr X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["field"], "provider_clinic");
    // The provider is told by email, with no health data.
    let mail =
        app.wait_for_mail(|m| m.contains("To: <dr.lee@hospital.example>")).await.expect("a mail to the provider");
    assert!(mail.contains("Dr Ana Lee") && mail.contains("City Diabetes Centre"), "{mail}");
    assert!(!mail.to_lowercase().contains("mg/dl"));
    // Someone who signs up with the address but never confirms it cannot accept.
    let impostor = app.user_with("dr.lee@hospital.example", "clinician", false).await;
    let gid = g["grant_id"].as_str().unwrap().to_string();
    let r = impostor.post(app.url(&format!("/api/v1/sharing/invites/{gid}/accept"))).send().await.unwrap();
    assert_eq!(r.status(), 403, "an unconfirmed address takes no invitation");
    let (from, to) = window();
    let data = app.url(&format!("/api/v1/patients/{pid}/glucose?from={from}&to={to}"));
    assert_eq!(get_status(&impostor, data.clone(), None).await, 404);
    // Once the address is confirmed, the provider accepts and reads.
    app.confirm_email("dr.lee@hospital.example").await;
    let r = impostor.post(app.url(&format!("/api/v1/sharing/invites/{gid}/accept"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get_status(&impostor, data, None).await, 200);
    let grants = body(pat.get(app.url("/api/v1/sharing/grants")).send().await.unwrap()).await;
    let g = grants.as_array().unwrap().iter().find(|x| x["id"] == gid.as_str()).unwrap().clone();
    assert_eq!(g["status"], "active");
    assert_eq!(g["grantee_email"], "dr.lee@hospital.example");
    assert!(ends_on(&g["expires_at"], &until), "{}", g["expires_at"]);
}
