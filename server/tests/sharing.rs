//! Sharing and the clinic workspace, through the public API on SQLite and
//! PostgreSQL: the link-code flow, the authorization matrix (every role ×
//! every data endpoint × every grant state), care partners, members,
//! custodial records, rate limits and the dashboard's figures.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Backend, STRONG, TestApp};
use serde_json::{Value, json};

async fn body(r: reqwest::Response) -> Value {
    let status = r.status();
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: {e}: {text}"))
}

use app::service::nightscout::sha1_hex;

/// Posts `days` days of 5-minute CGM readings ending now, through the
/// Nightscout API (as xDrip+ would), so the patient has recent data.
async fn post_cgm(app: &TestApp, c: &reqwest::Client, days: i64) {
    let r = c.post(app.url("/api/v1/me/nightscout")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let site = body(r).await;
    let secret = sha1_hex(site["secret"].as_str().unwrap().as_bytes());
    let now = app::service::now_ms() / 300_000 * 300_000;
    let n = days * 288;
    let entries: Vec<Value> = (0..n)
        .map(|i| {
            let t = now - (n - i) * 300_000;
            // A wave through every range: 40..=330 mg/dL.
            let v = 185 + ((i as f64 / 12.0).sin() * 145.0) as i64;
            json!({"type": "sgv", "sgv": v, "date": t, "device": "xDrip-DexcomG6", "direction": "Flat"})
        })
        .collect();
    let r = reqwest::Client::new()
        .post(app.url("/api/v1/entries"))
        .header("api-secret", secret)
        .json(&entries)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn me(app: &TestApp, c: &reqwest::Client) -> Value {
    body(c.get(app.url("/api/v1/me")).send().await.unwrap()).await
}

struct Clinic {
    id: String,
    record: String,
}

async fn clinic_with_record(app: &TestApp, c: &reqwest::Client, name: &str, mrn: &str) -> Clinic {
    let r = c.post(app.url("/api/v1/clinics")).json(&json!({"name": name})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let id = body(r).await["id"].as_str().unwrap().to_string();
    let r = c
        .post(app.url(&format!("/api/v1/clinics/{id}/patients")))
        .json(&json!({"name": "Robin Patient", "birth_date": "1985-02-03", "mrn": mrn}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let record = body(r).await["record_id"].as_str().unwrap().to_string();
    Clinic { id, record }
}

async fn link_code(app: &TestApp, c: &reqwest::Client, k: &Clinic) -> String {
    let r = c.post(app.url(&format!("/api/v1/clinics/{}/patients/{}/link-code", k.id, k.record))).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let b = body(r).await;
    assert!(b["expires_at"].as_str().is_some());
    b["code"].as_str().unwrap().to_string()
}

async fn accept(app: &TestApp, c: &reqwest::Client, code: &str, scopes: &[&str]) -> String {
    let r =
        c.post(app.url("/api/v1/sharing/accept")).json(&json!({"code": code, "scopes": scopes})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    body(r).await["grant_id"].as_str().unwrap().to_string()
}

fn window() -> (String, String) {
    let today = chrono::Utc::now().date_naive();
    ((today - chrono::Duration::days(13)).to_string(), today.to_string())
}

async fn rows(app: &TestApp, c: &reqwest::Client, clinic: &str, query: &str) -> (Vec<Value>, u64) {
    let r = c.get(app.url(&format!("/api/v1/clinics/{clinic}/patients{query}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let total = r.headers()["x-total-count"].to_str().unwrap().parse().unwrap();
    (body(r).await.as_array().unwrap().clone(), total)
}

both_backends!(link_flow_end_to_end);
async fn link_flow_end_to_end(app: &TestApp) {
    let clin = app.user("dr.lee@clinic.example", "clinician").await;
    let k = clinic_with_record(app, &clin, "North Clinic", "mrn-0042").await;
    // The MRN is normalised and unique in the clinic; stored sealed.
    let r = clin
        .post(app.url(&format!("/api/v1/clinics/{}/patients", k.id)))
        .json(&json!({"name": "Someone Else", "mrn": " MRN-0042 "}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    {
        use sea_orm::EntityTrait;
        let rec = store::entity::patient_records::Entity::find_by_id(k.record.clone())
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap();
        for field in [&rec.name, rec.mrn.as_ref().unwrap(), rec.birth_date.as_ref().unwrap()] {
            assert!(field.starts_with("enc1:"), "sealed at rest: {field}");
        }
        assert!(!rec.mrn.unwrap().contains("0042"));
    }
    let (list, total) = rows(app, &clin, &k.id, "").await;
    assert_eq!(total, 1);
    assert_eq!(list[0]["name"], "Robin Patient");
    assert_eq!(list[0]["mrn"], "MRN-0042");
    assert_eq!(list[0]["birth_date"], "1985-02-03");
    assert_eq!(list[0]["link_status"], "custodial");

    let code = link_code(app, &clin, &k).await;
    assert_eq!(code.len(), 14);
    let (list, _) = rows(app, &clin, &k.id, "").await;
    assert_eq!(list[0]["link_status"], "code_pending");

    let pat = app.user("robin@patient.example", "patient").await;
    post_cgm(app, &pat, 3).await;
    let pid = me(app, &pat).await["patient_id"].as_str().unwrap().to_string();
    // Before accepting, the clinic sees nothing.
    let (from, to) = window();
    let report_url = app.url(&format!("/api/v1/patients/{pid}/report?from={from}&to={to}"));
    assert_eq!(clin.get(&report_url).send().await.unwrap().status(), 404);

    let p = body(
        pat.post(app.url("/api/v1/sharing/preview")).json(&json!({"code": code.to_lowercase()})).send().await.unwrap(),
    )
    .await;
    assert_eq!(p["clinic_name"], "North Clinic");
    assert_eq!(p["scopes"], json!(["glucose", "insulin", "settings", "events"]));
    // Bad scopes are refused without spending the code.
    let r = pat
        .post(app.url("/api/v1/sharing/accept"))
        .json(&json!({"code": code, "scopes": ["everything"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = pat
        .post(app.url("/api/v1/sharing/accept"))
        .json(&json!({"code": code, "scopes": ["glucose"], "expires_at": "2001-01-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let grant = accept(app, &pat, &code, &["glucose"]).await;
    // Single use.
    let r = pat
        .post(app.url("/api/v1/sharing/accept"))
        .json(&json!({"code": code, "scopes": ["glucose"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The clinic now sees the patient, with the same figures as the report.
    let (list, _) = rows(app, &clin, &k.id, "").await;
    let row = &list[0];
    assert_eq!(row["link_status"], "linked");
    assert_eq!(row["patient_id"], pid.as_str());
    assert_eq!(row["scopes"], json!(["glucose"]));
    assert!(row["readings"].as_u64().unwrap() > 800, "{row}");
    let report = body(clin.get(&report_url).send().await.unwrap()).await;
    assert_eq!(row["readings"].as_u64().unwrap(), report["readings"].as_u64().unwrap());
    for (a, b) in [
        ("in_range_percent", "in_range_percent"),
        ("very_low_percent", "very_low_percent"),
        ("gmi_percent", "gmi_percent"),
        ("cv_percent", "cv_percent"),
        ("mean_mg_dl", "mean_mg_dl"),
    ] {
        let (x, y) = (row[a].as_f64().unwrap(), report[b].as_f64().unwrap());
        assert!((x - y).abs() < 1e-9, "{a}: dashboard {x} vs report {y}");
    }
    let active = (row["cgm_active_percent"].as_f64().unwrap() - report["cgm_active_percent"].as_f64().unwrap()).abs();
    assert!(active < 0.5, "cgm active differs by {active}");
    let pdf = clin.get(app.url(&format!("/api/v1/patients/{pid}/report.pdf"))).send().await.unwrap();
    assert_eq!(pdf.status(), 200);

    // The patient sees who looked.
    let log = body(pat.get(app.url("/api/v1/sharing/access-log")).send().await.unwrap()).await;
    let entries = log.as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["actor_email"] == "dr.lee@clinic.example" && e["clinic_name"] == "North Clinic"),
        "{log}"
    );
    assert!(entries.iter().any(|e| e["action"] == "read.summary"), "{log}");
    assert!(entries.iter().any(|e| e["action"] == "read.glucose"), "{log}");
    assert!(entries.iter().any(|e| e["action"] == "read.report"), "{log}");

    // Edit: more scopes and an end date; then revoke.
    let grants = body(pat.get(app.url("/api/v1/sharing/grants")).send().await.unwrap()).await;
    assert_eq!(grants[0]["id"], grant.as_str());
    assert_eq!(grants[0]["status"], "active");
    assert_eq!(grants[0]["grantee_type"], "clinic");
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Duration::days(2)).to_string();
    let g = body(
        pat.patch(app.url(&format!("/api/v1/sharing/grants/{grant}")))
            .json(&json!({"scopes": ["glucose", "insulin"], "expires_at": tomorrow}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(g["scopes"], json!(["glucose", "insulin"]));
    assert!(g["expires_at"].as_str().is_some());
    let g = body(
        pat.patch(app.url(&format!("/api/v1/sharing/grants/{grant}")))
            .json(&json!({"expires_at": null}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(g["expires_at"], Value::Null);
    let r = pat.delete(app.url(&format!("/api/v1/sharing/grants/{grant}"))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    // Effective on the next request.
    assert_eq!(clin.get(&report_url).send().await.unwrap().status(), 404);
    let (list, _) = rows(app, &clin, &k.id, "").await;
    assert_eq!(list[0]["link_status"], "revoked");
    assert_eq!(list[0]["patient_id"], Value::Null);
    assert_eq!(list[0]["readings"], 0);
    assert_eq!(list[0]["in_range_percent"], Value::Null);

    // Re-linking with a new code works; the old grant stays revoked.
    let code2 = link_code(app, &clin, &k).await;
    accept(app, &pat, &code2, &["glucose"]).await;
    assert_eq!(clin.get(&report_url).send().await.unwrap().status(), 200);
    let grants = body(pat.get(app.url("/api/v1/sharing/grants")).send().await.unwrap()).await;
    let statuses: Vec<&str> = grants.as_array().unwrap().iter().map(|g| g["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, vec!["active", "revoked"]);

    assert!(matches!(
        store::audit::verify(&app.state.db, &app.state.config.cipher.audit_key()).await.unwrap(),
        store::audit::Verdict::Intact { .. }
    ));
}

/// One data request: (name, method, path) — `{pid}` is replaced.
const DATA_ENDPOINTS: &[(&str, &str)] = &[
    ("report", "/api/v1/patients/{pid}/report?from={from}&to={to}"),
    ("glucose", "/api/v1/patients/{pid}/glucose?from={from}&to={to}"),
    ("pdf", "/api/v1/patients/{pid}/report.pdf?from={from}&to={to}"),
    ("fn_overview", "/_fn/report_overview?patient={pid}&from={from}&to={to}"),
    ("fn_daily", "/_fn/report_daily?patient={pid}&date={to}"),
    ("fn_trends", "/_fn/report_trends?patient={pid}&from={from}&to={to}"),
    ("fn_logbook", "/_fn/report_logbook?patient={pid}&from={from}&to={to}"),
    ("fn_device", "/_fn/report_device?patient={pid}&from={from}&to={to}"),
];

/// Which endpoints a glucose-only grant opens: all but the device page
/// (settings and events).
fn glucose_opens(name: &str) -> bool {
    name != "fn_device"
}

async fn status_of(app: &TestApp, c: &reqwest::Client, path: &str, pid: &str) -> u16 {
    let (from, to) = window();
    let url = app.url(&path.replace("{pid}", pid).replace("{from}", &from).replace("{to}", &to));
    c.get(&url).send().await.unwrap().status().as_u16()
}

/// Asserts allow (2xx) or deny (401/403/404, never 2xx) for every endpoint.
async fn expect(app: &TestApp, who: &str, c: &reqwest::Client, pid: &str, allowed: impl Fn(&str) -> bool) {
    for (name, path) in DATA_ENDPOINTS {
        let s = status_of(app, c, path, pid).await;
        if allowed(name) {
            assert!((200..300).contains(&s), "{who} should read {name}: got {s}");
        } else {
            assert!(matches!(s, 401 | 403 | 404), "{who} must not read {name}: got {s}");
        }
    }
}

both_backends!(authorization_matrix);
async fn authorization_matrix(app: &TestApp) {
    let pat = app.user("p@m.example", "patient").await;
    post_cgm(app, &pat, 2).await;
    let pid = me(app, &pat).await["patient_id"].as_str().unwrap().to_string();
    let other = app.user("o@m.example", "patient").await;
    post_cgm(app, &other, 1).await;
    let other_pid = me(app, &other).await["patient_id"].as_str().unwrap().to_string();
    let ca = app.user("ca@m.example", "clinician").await;
    let cb = app.user("cb@m.example", "clinician").await;
    let partner = app.user("cp@m.example", "patient").await;
    let anon = app.client();
    let a = clinic_with_record(app, &ca, "Clinic A", "A-1").await;
    let b = clinic_with_record(app, &cb, "Clinic B", "B-1").await;

    // Grant state: none.
    expect(app, "patient", &pat, &pid, |_| true).await;
    expect(app, "other patient", &other, &pid, |_| false).await;
    expect(app, "clinician A (no grant)", &ca, &pid, |_| false).await;
    expect(app, "clinician B", &cb, &pid, |_| false).await;
    expect(app, "care partner (no grant)", &partner, &pid, |_| false).await;
    expect(app, "anonymous", &anon, &pid, |_| false).await;

    // Active grants: clinic A (glucose), the care partner (glucose + insulin).
    let code = link_code(app, &ca, &a).await;
    let grant_a = accept(app, &pat, &code, &["glucose"]).await;
    let inv = body(
        pat.post(app.url("/api/v1/sharing/invites"))
            .json(&json!({"email": "cp@m.example", "scopes": ["glucose", "insulin"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let grant_p = inv["grant_id"].as_str().unwrap().to_string();
    // Only the invited account can accept, not the patient's clinician.
    assert_eq!(
        ca.post(app.url(&format!("/api/v1/sharing/invites/{grant_p}/accept"))).send().await.unwrap().status(),
        404
    );
    let r = partner.post(app.url(&format!("/api/v1/sharing/invites/{grant_p}/accept"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    expect(app, "clinician A (glucose)", &ca, &pid, glucose_opens).await;
    expect(app, "care partner (glucose+insulin)", &partner, &pid, glucose_opens).await;
    expect(app, "clinician B (A's grant)", &cb, &pid, |_| false).await;
    expect(app, "other patient", &other, &pid, |_| false).await;
    // A grant to P never opens another patient.
    expect(app, "clinician A on another patient", &ca, &other_pid, |_| false).await;
    expect(app, "care partner on another patient", &partner, &other_pid, |_| false).await;

    // In scope: settings and events open the device page.
    let r = pat
        .patch(app.url(&format!("/api/v1/sharing/grants/{grant_a}")))
        .json(&json!({"scopes": ["glucose", "settings", "events"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    expect(app, "clinician A (all but insulin)", &ca, &pid, |_| true).await;
    // Out of scope: without glucose, nothing glucose-based opens.
    let r = pat
        .patch(app.url(&format!("/api/v1/sharing/grants/{grant_a}")))
        .json(&json!({"scopes": ["insulin"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    expect(app, "clinician A (insulin only)", &ca, &pid, |_| false).await;

    // Expired.
    {
        use sea_orm::{ActiveModelTrait, EntityTrait, Set};
        let g = store::entity::grants::Entity::find_by_id(grant_p.clone()).one(&app.state.db).await.unwrap().unwrap();
        let mut m: store::entity::grants::ActiveModel = g.into();
        m.expires_ms = Set(Some(app::service::now_ms() - 1000));
        m.update(&app.state.db).await.unwrap();
    }
    expect(app, "care partner (expired)", &partner, &pid, |_| false).await;
    let grants = body(pat.get(app.url("/api/v1/sharing/grants")).send().await.unwrap()).await;
    assert!(grants.as_array().unwrap().iter().any(|g| g["id"] == grant_p.as_str() && g["status"] == "expired"));

    // Revoked.
    let r = pat
        .patch(app.url(&format!("/api/v1/sharing/grants/{grant_a}")))
        .json(&json!({"scopes": ["glucose"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    expect(app, "clinician A (glucose again)", &ca, &pid, glucose_opens).await;
    assert_eq!(pat.delete(app.url(&format!("/api/v1/sharing/grants/{grant_a}"))).send().await.unwrap().status(), 204);
    expect(app, "clinician A (revoked)", &ca, &pid, |_| false).await;

    // Grants belong to their patient: others can neither see nor change them.
    for (who, c) in [("other", &other), ("clinician A", &ca), ("partner", &partner)] {
        let r = c
            .patch(app.url(&format!("/api/v1/sharing/grants/{grant_p}")))
            .json(&json!({"scopes": ["glucose"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{who} patch");
        assert_eq!(
            c.delete(app.url(&format!("/api/v1/sharing/grants/{grant_p}"))).send().await.unwrap().status(),
            404,
            "{who} delete"
        );
    }
    // No IDOR across clinics: B's clinician and A's ids.
    for path in [
        format!("/api/v1/clinics/{}/patients", a.id),
        format!("/api/v1/clinics/{}/patients/{}", a.id, a.record),
        format!("/api/v1/clinics/{}/patients/{}", b.id, a.record),
        format!("/api/v1/clinics/{}/members", a.id),
    ] {
        assert_eq!(cb.get(app.url(&path)).send().await.unwrap().status(), 404, "GET {path}");
    }
    for path in [
        format!("/api/v1/clinics/{}/patients/{}/link-code", a.id, a.record),
        format!("/api/v1/clinics/{}/patients/{}/link-code", b.id, a.record),
        format!("/api/v1/clinics/{}/patients/{}/upload-request", b.id, a.record),
    ] {
        assert_eq!(cb.post(app.url(&path)).send().await.unwrap().status(), 404, "POST {path}");
    }
    let r = cb
        .post(app.url(&format!("/api/v1/clinics/{}/patients", a.id)))
        .json(&json!({"name": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // A patient cannot act as a clinic.
    assert_eq!(pat.get(app.url(&format!("/api/v1/clinics/{}/patients", a.id))).send().await.unwrap().status(), 404);
    assert_eq!(pat.post(app.url("/api/v1/clinics")).json(&json!({"name": "Mine"})).send().await.unwrap().status(), 403);
    // Nobody uploads to or deletes from a patient's own data but the patient.
    let ups = body(pat.get(app.url("/api/v1/uploads")).send().await.unwrap()).await;
    let up = ups[0]["upload_id"].as_str().or(ups[0]["id"].as_str()).unwrap().to_string();
    for c in [&ca, &cb, &partner, &other] {
        assert_eq!(c.delete(app.url(&format!("/api/v1/uploads/{up}"))).send().await.unwrap().status(), 404);
        assert_eq!(c.get(app.url(&format!("/api/v1/uploads?patient_id={pid}"))).send().await.unwrap().status(), 404);
    }
    assert_eq!(anon.get(app.url("/api/v1/sharing/grants")).send().await.unwrap().status(), 401);
    assert_eq!(anon.get(app.url(&format!("/api/v1/clinics/{}/patients", a.id))).send().await.unwrap().status(), 401);
}

both_backends!(care_partner_by_email);
async fn care_partner_by_email(app: &TestApp) {
    let pat = app.user("sam@family.example", "patient").await;
    post_cgm(app, &pat, 1).await;
    let pid = me(app, &pat).await["patient_id"].as_str().unwrap().to_string();
    let r = pat
        .post(app.url("/api/v1/sharing/invites"))
        .json(&json!({"email": "Mum@Family.example", "scopes": ["glucose"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let inv = body(r).await;
    assert_eq!(inv["status"], "pending");
    // The email holds the link with the token.
    let mail = app.wait_for_mail(|m| m.contains("To: <mum@family.example>")).await.expect("invitation mail");
    let token = mail.split("/sharing?invite=").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    // Signing up with another address does not open it.
    let stranger = app.user("stranger@family.example", "patient").await;
    let r =
        stranger.post(app.url("/api/v1/sharing/invites/accept")).json(&json!({"token": token})).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let mum = app.user("mum@family.example", "patient").await;
    let incoming = body(mum.get(app.url("/api/v1/sharing/invites")).send().await.unwrap()).await;
    assert_eq!(incoming.as_array().unwrap().len(), 1);
    let r = mum.post(app.url("/api/v1/sharing/invites/accept")).json(&json!({"token": token})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let shared = body(mum.get(app.url("/api/v1/sharing/shared-with-me")).send().await.unwrap()).await;
    assert_eq!(shared[0]["patient_id"], pid.as_str());
    assert_eq!(status_of(app, &mum, DATA_ENDPOINTS[0].1, &pid).await, 200);
    let log = body(pat.get(app.url("/api/v1/sharing/access-log")).send().await.unwrap()).await;
    assert!(
        log.as_array().unwrap().iter().any(|e| e["actor_email"] == "mum@family.example" && e["clinic_name"].is_null())
    );
    // The token works once.
    let r = mum.post(app.url("/api/v1/sharing/invites/accept")).json(&json!({"token": token})).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

both_backends!(link_codes_are_attempt_limited);
async fn link_codes_are_attempt_limited(app: &TestApp) {
    let pat = app.user("guesser@x.example", "patient").await;
    let mut statuses = Vec::new();
    for i in 0..12 {
        let r = pat
            .post(app.url("/api/v1/sharing/preview"))
            .json(&json!({"code": format!("AAAA-BBBB-{i:04}")}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(&statuses[..10], &[404; 10], "{statuses:?}");
    assert_eq!(statuses[10], 429, "{statuses:?}");
    // A malformed code is a clear 400 (still counted).
    let other = app.user("typo@x.example", "patient").await;
    let r = other.post(app.url("/api/v1/sharing/preview")).json(&json!({"code": "12"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
}

both_backends!(clinic_members_and_roles);
async fn clinic_members_and_roles(app: &TestApp) {
    let admin = app.user("admin@c.example", "clinician").await;
    let colleague = app.user("colleague@c.example", "clinician").await;
    let k = clinic_with_record(app, &admin, "Members Clinic", "M-1").await;
    // A clinician account is invited like any address (no enumeration); the
    // confirmed colleague joins when they next look at their clinics.
    let r = admin
        .post(app.url(&format!("/api/v1/clinics/{}/members", k.id)))
        .json(&json!({"email": "colleague@c.example", "role": "clinician"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(body(r).await["status"], "invited");
    let clinics = body(colleague.get(app.url("/api/v1/clinics")).send().await.unwrap()).await;
    assert_eq!(clinics[0]["id"], k.id.as_str());
    let (list, _) = rows(app, &colleague, &k.id, "").await;
    assert_eq!(list.len(), 1);
    // Only admins add members.
    let r = colleague
        .post(app.url(&format!("/api/v1/clinics/{}/members", k.id)))
        .json(&json!({"email": "x@c.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // An address without an account is invited and joins once its owner confirms it.
    let r = admin
        .post(app.url(&format!("/api/v1/clinics/{}/members", k.id)))
        .json(&json!({"email": "new@c.example", "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await["status"], "invited");
    let newbie = app.user("new@c.example", "clinician").await;
    let clinics = body(newbie.get(app.url("/api/v1/clinics")).send().await.unwrap()).await;
    assert_eq!(clinics[0]["id"], k.id.as_str());
    assert_eq!(clinics[0]["role"], "admin");
    // The last admin cannot step down; with two, one can.
    let admin_id = me(app, &admin).await["id"].as_str().unwrap().to_string();
    let members = body(admin.get(app.url(&format!("/api/v1/clinics/{}/members", k.id))).send().await.unwrap()).await;
    assert_eq!(members.as_array().unwrap().len(), 3);
    let r = admin
        .patch(app.url(&format!("/api/v1/clinics/{}/members/{admin_id}", k.id)))
        .json(&json!({"role": "clinician"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let newbie_id = me(app, &newbie).await["id"].as_str().unwrap().to_string();
    let r = newbie
        .patch(app.url(&format!("/api/v1/clinics/{}/members/{newbie_id}", k.id)))
        .json(&json!({"role": "clinician"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    // A patient account cannot join a clinic, but the answer does not say
    // that the address is a patient's: the same invitation.
    let pat = app.user("pat@c.example", "patient").await;
    let r = newbie
        .post(app.url(&format!("/api/v1/clinics/{}/members", k.id)))
        .json(&json!({"email": "pat@c.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(body(r).await["status"], "invited");
    assert_eq!(body(pat.get(app.url("/api/v1/clinics")).send().await.unwrap()).await, json!([]));
}

both_backends!(custodial_record_data_moves_on_link);
async fn custodial_record_data_moves_on_link(app: &TestApp) {
    let clin = app.user("desk@clinic.example", "clinician").await;
    let k = clinic_with_record(app, &clin, "Upload Clinic", "U-1").await;
    let (list, _) = rows(app, &clin, &k.id, "").await;
    let custodial = list[0]["patient_id"].as_str().unwrap().to_string();
    // The clinic uploads an export for the patient (no account yet).
    let csv = devices::import::synth::carelink_csv(600);
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(csv).file_name("carelink.csv"));
    let r =
        clin.post(app.url(&format!("/api/v1/uploads?patient_id={custodial}"))).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let imported = body(r).await;
    let ups = body(clin.get(app.url(&format!("/api/v1/uploads?patient_id={custodial}"))).send().await.unwrap()).await;
    assert_eq!(ups.as_array().unwrap().len(), 1);
    // Another clinic cannot upload there.
    let other = app.user("other@clinic.example", "clinician").await;
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("x.csv"));
    let r =
        other.post(app.url(&format!("/api/v1/uploads?patient_id={custodial}"))).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // The patient links: the clinic's upload becomes theirs.
    let pat = app.user("claims@patient.example", "patient").await;
    let code = link_code(app, &clin, &k).await;
    accept(app, &pat, &code, &["glucose", "insulin"]).await;
    let mine = body(pat.get(app.url("/api/v1/uploads")).send().await.unwrap()).await;
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    let pid = me(app, &pat).await["patient_id"].as_str().unwrap().to_string();
    let (list, _) = rows(app, &clin, &k.id, "").await;
    assert_eq!(list[0]["patient_id"], pid.as_str());
    {
        use sea_orm::EntityTrait;
        assert!(store::entity::patients::Entity::find_by_id(custodial).one(&app.state.db).await.unwrap().is_none());
    }
    let n: u64 = imported["records"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert!(n > 0);
}

both_backends!(dashboard_sorts_filters_and_pages);
async fn dashboard_sorts_filters_and_pages(app: &TestApp) {
    let clin = app.user("triage@clinic.example", "clinician").await;
    let r = clin.post(app.url("/api/v1/clinics")).json(&json!({"name": "Triage"})).send().await.unwrap();
    let cid = body(r).await["id"].as_str().unwrap().to_string();
    for (i, name) in ["Carla", "anna", "Bert"].iter().enumerate() {
        let r = clin
            .post(app.url(&format!("/api/v1/clinics/{cid}/patients")))
            .json(&json!({"name": name, "mrn": format!("T-{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let (list, total) = rows(app, &clin, &cid, "?sort=name").await;
    assert_eq!(total, 3);
    let names: Vec<&str> = list.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["anna", "Bert", "Carla"]);
    let (list, _) = rows(app, &clin, &cid, "?sort=name&order=desc").await;
    assert_eq!(list[0]["name"], "Carla");
    let (list, total) = rows(app, &clin, &cid, "?q=t-1").await;
    assert_eq!((total, list[0]["name"].as_str()), (1, Some("anna")));
    let (list, total) = rows(app, &clin, &cid, "?per_page=2&page=2&sort=name").await;
    assert_eq!((total, list.len(), list[0]["name"].as_str()), (3, 1, Some("Carla")));
    // Custodial records without data carry low_active and no_upload.
    let (_, total) = rows(app, &clin, &cid, "?filter=no_upload").await;
    assert_eq!(total, 3);
    let (_, total) = rows(app, &clin, &cid, "?filter=below_54").await;
    assert_eq!(total, 0);
    let r = clin.get(app.url(&format!("/api/v1/clinics/{cid}/patients?sort=shoe_size"))).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = clin.get(app.url(&format!("/api/v1/clinics/{cid}/patients?filter=nope"))).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // Linked with data: the flags follow the figures (the test wave spends
    // well over 1 % below 54 and under 70 % in range).
    let k = Clinic {
        id: cid.clone(),
        record: body(
            clin.post(app.url(&format!("/api/v1/clinics/{cid}/patients")))
                .json(&json!({"name": "Dora"}))
                .send()
                .await
                .unwrap(),
        )
        .await["record_id"]
            .as_str()
            .unwrap()
            .to_string(),
    };
    let pat = app.user("dora@patient.example", "patient").await;
    post_cgm(app, &pat, 2).await;
    let code = link_code(app, &clin, &k).await;
    accept(app, &pat, &code, &["glucose"]).await;
    let (list, _) = rows(app, &clin, &cid, "?filter=below_54").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "Dora");
    let flags: Vec<&str> = list[0]["flags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(flags.contains(&"below_54") && flags.contains(&"low_tir") && flags.contains(&"low_active"), "{flags:?}");
    assert!(!flags.contains(&"no_upload"), "{flags:?}");
    // Request an upload: the patient sees it until they upload.
    let r = clin
        .post(app.url(&format!("/api/v1/clinics/{cid}/patients/{}/upload-request", k.record)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let reqs = body(pat.get(app.url("/api/v1/me/upload-requests")).send().await.unwrap()).await;
    assert_eq!(reqs[0]["clinic_name"], "Triage");
    let html = pat.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("data-testid=\"upload-now\""), "dashboard prompts an upload");
    let csv = devices::import::synth::carelink_csv(50);
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(csv).file_name("carelink.csv"));
    assert_eq!(pat.post(app.url("/api/v1/uploads")).multipart(form).send().await.unwrap().status(), 201);
    let reqs = body(pat.get(app.url("/api/v1/me/upload-requests")).send().await.unwrap()).await;
    assert_eq!(reqs.as_array().unwrap().len(), 0);
    // A custodial record has no account to ask.
    let (list, _) = rows(app, &clin, &cid, "?q=anna").await;
    let r = clin
        .post(
            app.url(&format!(
                "/api/v1/clinics/{cid}/patients/{}/upload-request",
                list[0]["record_id"].as_str().unwrap()
            )),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
}

both_backends!(deleted_patient_leaves_clinic_chart_unlinked);
async fn deleted_patient_leaves_clinic_chart_unlinked(app: &TestApp) {
    let clin = app.user("chart@clinic.example", "clinician").await;
    let k = clinic_with_record(app, &clin, "Chart Clinic", "C-9").await;
    let pat = app.user("goes@patient.example", "patient").await;
    post_cgm(app, &pat, 3).await;
    let code = link_code(app, &clin, &k).await;
    accept(app, &pat, &code, &["glucose"]).await;
    let pid = me(app, &pat).await["patient_id"].as_str().unwrap().to_string();
    let (list, _) = rows(app, &clin, &k.id, "").await;
    assert_eq!(list[0]["patient_id"], pid.as_str());
    let report = "/api/v1/patients/{pid}/report?from={from}&to={to}";
    assert_eq!(status_of(app, &clin, report, &pid).await, 200);

    // The clinician, the only admin of a clinic with a record, cannot leave without handing it over.
    let r = clin.delete(app.url("/api/v1/me")).json(&json!({"password": STRONG})).send().await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(body(r).await["error"]["message"].as_str().unwrap().contains("Chart Clinic"));

    let r = pat.delete(app.url("/api/v1/me")).json(&json!({"password": STRONG})).send().await.unwrap();
    assert_eq!(r.status(), 204);
    // The clinic keeps its chart (name, MRN) over an empty custodial space; the data and the grant are gone.
    let (list, total) = rows(app, &clin, &k.id, "").await;
    assert_eq!(total, 1);
    assert_eq!(list[0]["name"], "Robin Patient");
    assert_eq!(list[0]["mrn"], "C-9");
    let space = list[0]["patient_id"].as_str().unwrap().to_string();
    assert_ne!(space, pid);
    assert!(matches!(status_of(app, &clin, report, &pid).await, 403 | 404));
    let (from, to) = window();
    let r =
        body(clin.get(app.url(&format!("/api/v1/patients/{space}/report?from={from}&to={to}"))).send().await.unwrap())
            .await;
    assert_eq!(r["readings"], 0, "{r}");
}
