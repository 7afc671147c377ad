//! Data rights through the public API, on SQLite and PostgreSQL: download all
//! my data as Diabase JSON and as a FHIR R4 Bundle (validated by an R4
//! validator from PyPI), and delete my account with all its data after
//! re-authentication.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Backend, STRONG, TestApp};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

fn ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// The Python of the venv `make test-tools` makes with `fhir.resources`.
fn fhir_python() -> Option<std::path::PathBuf> {
    let p = std::env::var_os("DIABASE_FHIR_PYTHON").map(std::path::PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache/diabase/fhir-venv/bin/python"))
    })?;
    let ok = std::process::Command::new(&p)
        .args(["-c", "import fhir.resources"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        Some(p)
    } else if ci() {
        panic!(
            "the FHIR validator (fhir.resources in {}) is missing under CI=true: run `make test-tools`",
            p.display()
        );
    } else {
        eprintln!("skipping FHIR validation: no fhir.resources at {} (run `make test-tools`)", p.display());
        None
    }
}

/// Runs the validator on `bundle`; panics with its message when invalid.
fn validate_fhir(bundle: &[u8]) -> Option<String> {
    let py = fhir_python()?;
    let dir = common::TempDir::new("fhir");
    let file = dir.0.join("bundle.json");
    std::fs::write(&file, bundle).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fhir_validate.py");
    let out = std::process::Command::new(py).arg(script).arg(&file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "FHIR R4 validation failed:\n{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    Some(stdout)
}

async fn upload_synthetic(app: &TestApp, c: &reqwest::Client) -> BTreeMap<String, u64> {
    let csv = devices::import::synth::carelink_csv(700);
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(csv).file_name("carelink.csv"));
    let r = c.post(app.url("/api/v1/uploads")).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    v["records"].as_object().unwrap().iter().map(|(k, n)| (k.clone(), n.as_u64().unwrap())).collect()
}

async fn export(app: &TestApp, c: &reqwest::Client, format: &str) -> (u16, String, String, Vec<u8>) {
    let r = c.get(app.url(&format!("/api/v1/me/export?format={format}"))).send().await.unwrap();
    let status = r.status().as_u16();
    let h = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (ct, cd) = (h("content-type"), h("content-disposition"));
    (status, ct, cd, r.bytes().await.unwrap().to_vec())
}

both_backends!(export_json_and_fhir);
async fn export_json_and_fhir(app: &TestApp) {
    let c = app.user("portable@example.org", "patient").await;
    let counts = upload_synthetic(app, &c).await;
    let total: u64 = counts.values().sum();
    assert!(counts["cgm"] > 500, "{counts:?}");

    // Diabase JSON: every stored record, in time order, with its origin.
    let (st, ct, cd, body) = export(app, &c, "json").await;
    assert_eq!(st, 200);
    assert!(ct.starts_with("application/json"), "{ct}");
    assert!(cd.starts_with("attachment; filename=\"diabase-export-") && cd.ends_with(".json\""), "{cd}");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["format"], "diabase-export");
    assert_eq!(v["account"]["email"], "portable@example.org");
    assert_eq!(v["devices"].as_array().unwrap().len(), 1, "{}", v["devices"]);
    assert_eq!(v["uploads"].as_array().unwrap().len(), 1);
    // The login history is the account's data too.
    let logins = v["login_history"].as_array().unwrap();
    assert!(
        !logins.is_empty() && logins.iter().all(|e| e["success"].is_boolean() && e["at"].is_string()),
        "{logins:?}"
    );
    let records = v["records"].as_array().unwrap();
    assert_eq!(records.len() as u64, total, "every stored record is exported");
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut last = String::new();
    for r in records {
        *by_type.entry(r["type"].as_str().unwrap().to_string()).or_default() += 1;
        let t = r["time"].as_str().unwrap().to_string();
        assert!(t >= last, "records in time order");
        last = t;
        assert!(r["upload_id"].is_string() && r["device_id"].is_string());
        // Each one reads back as a normalised record.
        let _: therapy::Record = serde_json::from_value(r.clone()).unwrap();
    }
    assert_eq!(by_type, counts, "the same records by kind as the import stored");

    // FHIR R4: Patient, Device, one Observation per glucose value, and the CGM summary.
    let (st, ct, cd, body) = export(app, &c, "fhir").await;
    assert_eq!(st, 200);
    assert!(ct.starts_with("application/fhir+json"), "{ct}");
    assert!(cd.ends_with(".fhir.json\""), "{cd}");
    let b: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((b["resourceType"].as_str(), b["type"].as_str()), (Some("Bundle"), Some("collection")));
    let entries = b["entry"].as_array().unwrap();
    let urls: HashSet<&str> = entries.iter().map(|e| e["fullUrl"].as_str().unwrap()).collect();
    assert_eq!(urls.len(), entries.len(), "every entry has its own id");
    let code_count =
        |code: &str| entries.iter().filter(|e| e["resource"]["code"]["coding"][0]["code"] == code).count() as u64;
    assert_eq!(code_count("99504-3"), counts["cgm"]);
    assert_eq!(code_count("41653-7"), counts.get("bg").copied().unwrap_or(0));
    let summary =
        entries.iter().find(|e| e["resource"]["code"]["coding"][0]["code"] == "104643-2").expect("a CGM summary");
    let members = summary["resource"]["hasMember"].as_array().unwrap();
    assert!(members.len() >= 5, "{members:?}");
    // Every reference points at an entry of the bundle.
    let mut refs = 0;
    for e in entries {
        let r = &e["resource"];
        for target in [&r["subject"], &r["device"], &r["patient"]]
            .into_iter()
            .chain(r["hasMember"].as_array().into_iter().flatten())
        {
            if let Some(t) = target["reference"].as_str() {
                assert!(urls.contains(t), "dangling reference {t}");
                refs += 1;
            }
        }
    }
    assert!(refs as u64 > counts["cgm"]);
    // The mean glucose member equals the report's figure over the same days.
    let from = summary["resource"]["effectivePeriod"]["start"].as_str().unwrap();
    let to = summary["resource"]["effectivePeriod"]["end"].as_str().unwrap();
    let pid = c.get(app.url("/api/v1/me")).send().await.unwrap().json::<Value>().await.unwrap()["patient_id"]
        .as_str()
        .unwrap()
        .to_string();
    let report: Value = c
        .get(app.url(&format!("/api/v1/patients/{pid}/report?from={from}&to={to}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mean = entries.iter().find(|e| e["resource"]["code"]["coding"][0]["code"] == "97507-8").unwrap();
    let want = (report["mean_mg_dl"].as_f64().unwrap() * 10.0).round() / 10.0;
    assert_eq!(mean["resource"]["valueQuantity"]["value"].as_f64().unwrap(), want);
    // The same data exports to the same resource ids.
    let (_, _, _, again) = export(app, &c, "fhir").await;
    let again: Value = serde_json::from_slice(&again).unwrap();
    let ids = |b: &Value| {
        b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["resource"]["resourceType"] != "Bundle")
            .map(|e| e["fullUrl"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&b), ids(&again));
    if let Some(out) = validate_fhir(&body) {
        assert!(out.starts_with(&format!("ok {}", entries.len())), "{out}");
    }

    // Refused: an unknown format, and without a session.
    let (st, _, _, _) = export(app, &c, "xml").await;
    assert_eq!(st, 400);
    let (st, _, _, _) = export(app, &app.client(), "json").await;
    assert_eq!(st, 401);
    // Both exports are in the audit trail.
    let n = store::entity::audit_log::Entity::find()
        .filter(store::entity::audit_log::Column::Action.starts_with("export."))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(n, 3);
}

both_backends!(empty_account_exports);
async fn empty_account_exports(app: &TestApp) {
    let c = app.user("new@example.org", "clinician").await;
    let (st, _, _, body) = export(app, &c, "json").await;
    assert_eq!(st, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["records"], json!([]));
    let (st, _, _, body) = export(app, &c, "fhir").await;
    assert_eq!(st, 200);
    let b: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(b["entry"].as_array().unwrap().len(), 1, "the Patient alone");
    validate_fhir(&body);
}

both_backends!(delete_account_removes_everything);
async fn delete_account_removes_everything(app: &TestApp) {
    use store::entity::{glucose, raw_blobs, therapy_events, uploads, users};
    let c = app.user("leaving@example.org", "patient").await;
    upload_synthetic(app, &c).await;
    // Another patient uploads the same file: the shared raw file must stay.
    let other = app.user("staying@example.org", "patient").await;
    upload_synthetic(app, &other).await;
    let me: Value = c.get(app.url("/api/v1/me")).send().await.unwrap().json().await.unwrap();
    let pid = me["patient_id"].as_str().unwrap().to_string();
    let uid = me["id"].as_str().unwrap().to_string();
    let db = &app.state.db;
    let glucose_of = |p: String| glucose::Entity::find().filter(glucose::Column::PatientId.eq(p)).count(db);
    let before_other = {
        let o: Value = other.get(app.url("/api/v1/me")).send().await.unwrap().json().await.unwrap();
        (
            o["patient_id"].as_str().unwrap().to_string(),
            glucose_of(o["patient_id"].as_str().unwrap().to_string()).await.unwrap(),
        )
    };
    assert!(glucose_of(pid.clone()).await.unwrap() > 0);

    // The wrong password: refused, nothing removed.
    let r = c.delete(app.url("/api/v1/me")).json(&json!({"password": "not-my-password"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["field"], "password");
    assert!(glucose_of(pid.clone()).await.unwrap() > 0);
    // A token-less, cookie-less request cannot.
    let r = app.client().delete(app.url("/api/v1/me")).json(&json!({"password": STRONG})).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let r = c.delete(app.url("/api/v1/me")).json(&json!({"password": STRONG})).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers().get("set-cookie").is_some(), "the session cookie is cleared");
    assert_eq!(c.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401);
    let r = app
        .client()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "leaving@example.org", "password": STRONG}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    assert!(users::Entity::find_by_id(uid.clone()).one(db).await.unwrap().is_none());
    assert!(store::entity::patients::Entity::find_by_id(pid.clone()).one(db).await.unwrap().is_none());
    assert_eq!(glucose_of(pid.clone()).await.unwrap(), 0);
    assert_eq!(
        therapy_events::Entity::find().filter(therapy_events::Column::PatientId.eq(&pid)).count(db).await.unwrap(),
        0
    );
    assert_eq!(uploads::Entity::find().filter(uploads::Column::PatientId.eq(&pid)).count(db).await.unwrap(), 0);
    // The other patient's data and the raw file they share are intact.
    assert_eq!(glucose_of(before_other.0.clone()).await.unwrap(), before_other.1);
    assert_eq!(raw_blobs::Entity::find().count(db).await.unwrap(), 1);
    // Now the other one leaves too: no raw file is left.
    let r = other.delete(app.url("/api/v1/me")).json(&json!({"password": STRONG})).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(raw_blobs::Entity::find().count(db).await.unwrap(), 0);
    assert_eq!(glucose::Entity::find().count(db).await.unwrap(), 0);

    // The audit trail records both deletions and still verifies.
    let n = store::entity::audit_log::Entity::find()
        .filter(store::entity::audit_log::Column::Action.eq("account.deleted"))
        .count(db)
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert!(
        matches!(
            store::audit::verify(db, &app.state.config.cipher.audit_key()).await.unwrap(),
            store::audit::Verdict::Intact { .. }
        ),
        "the hash chain is intact"
    );
}

both_backends!(delete_is_rate_limited);
async fn delete_is_rate_limited(app: &TestApp) {
    let c = app.user("guessed@example.org", "patient").await;
    // The limit counts in fixed 15-minute windows: if the failures straddle a
    // window's end, they are made again inside the new one.
    const WINDOW_MS: i64 = 15 * 60 * 1000;
    for attempt in 0..2 {
        let start = app::service::now_ms();
        for _ in 0..5 {
            let r =
                c.delete(app.url("/api/v1/me")).json(&json!({"password": "wrong-wrong-wrong"})).send().await.unwrap();
            let s = r.status().as_u16();
            assert!(s == 400 || (attempt == 1 && s == 429), "{s}");
        }
        if start / WINDOW_MS == app::service::now_ms() / WINDOW_MS {
            break;
        }
    }
    // The right password no longer helps within the window.
    let r = c.delete(app.url("/api/v1/me")).json(&json!({"password": STRONG})).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(c.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);
}
