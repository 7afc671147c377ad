//! File import through the REST API and the CLI, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)] // a test fails by panicking

mod common;

use common::{Backend, TestApp};
use serde_json::Value;

fn fixture(rel: &str) -> Option<(String, Vec<u8>)> {
    let dir = therapy::fixtures::fixtures_dir()?;
    let p = dir.join(rel);
    Some((p.file_name().unwrap().to_string_lossy().to_string(), std::fs::read(&p).expect("fixture")))
}

async fn upload(app: &TestApp, c: &reqwest::Client, name: &str, bytes: Vec<u8>) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_string());
    c.post(app.url("/api/v1/uploads"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap()
}

both_backends!(clarity_upload_is_idempotent_and_reported);
async fn clarity_upload_is_idempotent_and_reported(app: &TestApp) {
    let Some((name, bytes)) = fixture("dexcom-clarity-csv/glucosedao-synthetic/Clarity_Export_synthetic.csv") else {
        return;
    };
    let c = app.user("kim@example.org", "patient").await;
    let r = upload(app, &c, &name, bytes.clone()).await;
    assert_eq!(r.status(), 201);
    let s: Value = r.json().await.unwrap();
    assert_eq!(s["format"], "dexcom_clarity_csv", "{s}");
    // 3,917 numeric EGVs plus 5 "Low" readings stored at 39 mg/dL.
    assert_eq!(s["records"]["cgm"], 3922, "{s}");
    assert!(s["upload_id"].is_string());

    // The same file again: nothing new.
    let again: Value = upload(app, &c, &name, bytes).await.json().await.unwrap();
    assert!(
        again["records"].as_object().unwrap().values().all(|v| v == 0)
            || again["records"].as_object().unwrap().is_empty(),
        "{again}"
    );
    assert!(again["duplicates"].as_u64().unwrap() >= 3922);

    let me: Value = c.get(app.url("/api/v1/me")).send().await.unwrap().json().await.unwrap();
    let pid = me["patient_id"].as_str().unwrap();
    let rep: Value = c
        .get(app.url(&format!("/api/v1/patients/{pid}/report?from=1961-04-12&to=1961-04-25")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rep["readings"], 3922);
    assert_eq!(rep["days"], 14);
    for k in [
        "mean_mg_dl",
        "sd_mg_dl",
        "cv_percent",
        "gmi_percent",
        "cgm_active_percent",
        "very_low_percent",
        "low_percent",
        "in_range_percent",
        "high_percent",
        "very_high_percent",
        "gri",
    ] {
        assert!(rep[k].is_number(), "{k}");
    }
    assert_eq!(rep["agp"].as_array().unwrap().len(), 96);
    let g: Value = c
        .get(app.url(&format!("/api/v1/patients/{pid}/glucose?from=1961-04-12&to=1961-04-12")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(g.as_array().unwrap().len() > 200);

    // Another patient cannot read it (404, the id is not confirmed).
    let other = app.user("lee@example.org", "patient").await;
    let r = other
        .get(app.url(&format!("/api/v1/patients/{pid}/report?from=1961-04-12&to=1961-04-25")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Bad dates are a clear 400.
    let r =
        c.get(app.url(&format!("/api/v1/patients/{pid}/report?from=1961-13-01&to=1961-04-25"))).send().await.unwrap();
    assert_eq!(r.status(), 400);

    // The history lists it; deleting removes exactly its records.
    let list: Value = c.get(app.url("/api/v1/uploads")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let first = s["upload_id"].as_str().unwrap();
    assert_eq!(other.delete(app.url(&format!("/api/v1/uploads/{first}"))).send().await.unwrap().status(), 404);
    assert_eq!(c.delete(app.url(&format!("/api/v1/uploads/{first}"))).send().await.unwrap().status(), 204);
    let rep: Value = c
        .get(app.url(&format!("/api/v1/patients/{pid}/report?from=1961-04-12&to=1961-04-25")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rep["readings"], 0);
}

both_backends!(bad_files_change_nothing);
async fn bad_files_change_nothing(app: &TestApp) {
    let c = app.user("max@example.org", "patient").await;
    let r = upload(app, &c, "notes.txt", b"hello, this is not an export\n".to_vec()).await;
    assert_eq!(r.status(), 422);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"]["message"].as_str().unwrap().contains("notes.txt"));
    let r = c
        .post(app.url("/api/v1/uploads"))
        .multipart(reqwest::multipart::Form::new().text("other", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let list: Value = c.get(app.url("/api/v1/uploads")).send().await.unwrap().json().await.unwrap();
    assert!(list.as_array().unwrap().is_empty());
    assert_eq!(app.client().post(app.url("/api/v1/uploads")).send().await.unwrap().status(), 401);
}

both_backends!(a_failing_import_leaves_nothing_behind);
async fn a_failing_import_leaves_nothing_behind(app: &TestApp) {
    use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};
    let Some((name, bytes)) = fixture("carelink-csv/decocare-578398-mm522/CareLink-Export-1430357806982.csv") else {
        return;
    };
    let c = app.user("nia@example.org", "patient").await;
    // Make the database refuse bolus rows, so the import fails part-way
    // through (after glucose rows, the raw blob and the upload row were written).
    let db = &app.state.db;
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            db.execute_unprepared("CREATE FUNCTION refuse_bolus() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused for the test'; END; $$ LANGUAGE plpgsql").await.unwrap();
            db.execute_unprepared("CREATE TRIGGER refuse_bolus BEFORE INSERT ON therapy_events FOR EACH ROW WHEN (NEW.kind = 'bolus') EXECUTE FUNCTION refuse_bolus()").await.unwrap();
        }
        _ => {
            db.execute_unprepared("CREATE TRIGGER refuse_bolus BEFORE INSERT ON therapy_events WHEN NEW.kind = 'bolus' BEGIN SELECT RAISE(ABORT, 'refused for the test'); END").await.unwrap();
        }
    }
    let r = upload(app, &c, &name, bytes.clone()).await;
    assert_eq!(r.status(), 500);
    let e: Value = r.json().await.unwrap();
    assert!(!e["error"]["message"].as_str().unwrap().contains("refused"), "no database text reaches the client");
    assert_eq!(store::entity::uploads::Entity::find().count(db).await.unwrap(), 0);
    assert_eq!(store::entity::glucose::Entity::find().count(db).await.unwrap(), 0);
    assert_eq!(store::entity::therapy_events::Entity::find().count(db).await.unwrap(), 0);
    assert_eq!(store::entity::raw_blobs::Entity::find().count(db).await.unwrap(), 0);
    // Once the fault is gone, the same file imports whole.
    let drop = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => "DROP TRIGGER refuse_bolus ON therapy_events",
        _ => "DROP TRIGGER refuse_bolus",
    };
    db.execute_unprepared(drop).await.unwrap();
    let r = upload(app, &c, &name, bytes).await;
    assert_eq!(r.status(), 201);
    let s: Value = r.json().await.unwrap();
    assert!(s["records"]["bolus"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(store::entity::uploads::Entity::find().count(db).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_files_are_refused() {
    let config = app::service::Config { max_upload_bytes: 1000, ..Default::default() };
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, config).await else { return };
    let c = app.user("oz@example.org", "patient").await;
    let r = upload(&app, &c, "big.csv", vec![b'a'; 5000]).await;
    assert_eq!(r.status(), 413);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "too_large");
    let list: Value = c.get(app.url("/api/v1/uploads")).send().await.unwrap().json().await.unwrap();
    assert!(list.as_array().unwrap().is_empty());
    app.finish().await;
}

#[test]
fn cli_inspect_import_and_report() {
    let Some(dir) = therapy::fixtures::fixtures_dir() else { return };
    let file = dir.join("dexcom-clarity-csv/glucosedao-synthetic/Clarity_Export_synthetic.csv");
    let bin = env!("CARGO_BIN_EXE_diabase");
    let out = std::process::Command::new(bin).arg("inspect").arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["source"]["format"].is_string());
    assert!(v["source"]["device"].is_object());
    assert!(v["rejected"].is_array());
    let recs = v["records"].as_array().unwrap();
    assert_eq!(recs.iter().filter(|r| r["type"] == "cgm").count(), 3922);
    assert!(recs.iter().all(|r| r["device_time"].as_str().unwrap().len() == 19));

    let tmp = common::TempDir::new("cli-import");
    let db = format!("sqlite://{}/i.sqlite?mode=rwc", tmp.0.display());
    let run = |args: &[&str]| {
        std::process::Command::new(bin).args(args).env("DATABASE_URL", &db).env("RUST_LOG", "warn").output().unwrap()
    };
    assert!(run(&["user", "add", "--email", "pat@example.org", "--role", "patient"]).status.success());
    let out = run(&["import", "--user", "pat@example.org", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["records"]["cgm"], 3922);
    let out = run(&["import", "--user", "pat@example.org", file.to_str().unwrap()]);
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(s["duplicates"].as_u64().unwrap() >= 3922);
    let out =
        run(&["report", "--user", "pat@example.org", "--from", "1961-04-12", "--to", "1961-04-25", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["readings"], 3922);
    let out =
        run(&["report", "--user", "pat@example.org", "--from", "1961-04-12", "--to", "1961-04-25", "--format", "csv"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("in_range_percent,"));
    let out = std::process::Command::new(bin).arg("inspect").arg("/etc/hostname").output().unwrap();
    assert!(!out.status.success());
    let _ = Backend::Sqlite;
}
