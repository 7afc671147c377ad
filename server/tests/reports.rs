//! Report pages' data (server functions), the report PDF (REST and CLI),
//! on SQLite and PostgreSQL, with the demo patient's 90 days of pump and CGM
//! data and with a CGM-only Dexcom Clarity export.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Backend, TestApp};
use serde_json::Value;

const DEMO_EMAIL: &str = "demo.patient@diabase.example";
const DEMO_PASSWORD: &str = "glucose-demo-patient-2026";

async fn demo_client(app: &TestApp) -> reqwest::Client {
    app::service::seed::seed_demo(&app.state, app::service::now_ms()).await.expect("seed");
    let c = app.client();
    let r = c
        .post(app.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"email": DEMO_EMAIL, "password": DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    c
}

async fn get_json(c: &reqwest::Client, url: String) -> Value {
    let r = c.get(&url).send().await.unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(status.is_success(), "{url}: {status} {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
}

/// The local date of the first therapy event of `kind` in the window (UTC ms).
async fn day_with(app: &TestApp, kind: &str, from_ms: i64) -> Option<String> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    use store::entity::therapy_events as t;
    let ms: Option<i64> = t::Entity::find()
        .select_only()
        .column(t::Column::TimeMs)
        .filter(t::Column::Kind.eq(kind))
        .filter(t::Column::TimeMs.gte(from_ms))
        .order_by_desc(t::Column::TimeMs)
        .limit(1)
        .into_tuple()
        .one(&app.state.db)
        .await
        .unwrap();
    let zone: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
    ms.and_then(chrono::DateTime::from_timestamp_millis).map(|t| t.with_timezone(&zone).date_naive().to_string())
}

fn tool(name: &str) -> bool {
    let ok = std::process::Command::new(name).arg("-v").output().is_ok();
    if !ok {
        if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
            panic!("{name} (poppler-utils) is required under CI=true");
        }
        eprintln!("SKIP: {name} not installed (poppler-utils); PDF text checks skipped");
    }
    ok
}

/// Checks a PDF: its text holds every one of `needles`; page 1 renders.
fn check_pdf(bytes: &[u8], needles: &[&str]) {
    assert!(bytes.starts_with(b"%PDF-"), "not a PDF");
    let dir = common::TempDir::new("pdf");
    let path = dir.0.join("r.pdf");
    std::fs::write(&path, bytes).unwrap();
    if tool("pdftotext") {
        let out = std::process::Command::new("pdftotext").arg(&path).arg("-").output().unwrap();
        assert!(out.status.success(), "pdftotext: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        for n in needles {
            assert!(text.contains(n), "the PDF text lacks {n:?}:\n{}", &text[..text.len().min(3000)]);
        }
    }
    if tool("pdftoppm") {
        let out = std::process::Command::new("pdftoppm")
            .args(["-png", "-r", "50", "-f", "1", "-l", "1"])
            .arg(&path)
            .arg(dir.0.join("p"))
            .output()
            .unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "pdftoppm: {}", String::from_utf8_lossy(&out.stderr));
        let png = std::fs::read_dir(&dir.0)
            .unwrap()
            .filter_map(Result::ok)
            .find(|e| e.path().extension().is_some_and(|x| x == "png"));
        let png = png.expect("page 1 rendered");
        assert!(png.metadata().unwrap().len() > 5_000, "page 1 is not blank");
    }
}

both_backends!(demo_patient_reports);
async fn demo_patient_reports(app: &TestApp) {
    let c = demo_client(app).await;
    let me: Value = get_json(&c, app.url("/api/v1/me")).await;
    let pid = me["patient_id"].as_str().unwrap().to_string();

    // Overview: the default window is the 14 days ending on the newest data.
    let o = get_json(&c, app.url("/_fn/report_overview")).await;
    let meta = &o["meta"];
    assert_eq!(meta["days"], 14, "{meta}");
    assert_eq!(meta["to"], meta["newest"]);
    assert_eq!(meta["patient_name"], "Alex Demo");
    assert_eq!(meta["time_zone"], "Europe/Berlin");
    let (from, to) = (meta["from"].as_str().unwrap().to_string(), meta["to"].as_str().unwrap().to_string());
    let g = &o["glucose"];
    for k in [
        "readings",
        "days",
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
        assert!(g[k].is_number(), "{k}: {}", g[k]);
    }
    // 13 whole days and the part of today before the upload.
    assert!(g["readings"].as_u64().unwrap() > 3300, "{g}");
    assert_eq!(g["agp"].as_array().unwrap().len(), 96);
    assert_eq!(g["sufficient"], true);
    assert_eq!(o["agp_hourly"].as_array().unwrap().len(), 24);
    assert_eq!(o["pump_data"], true);
    assert_eq!(o["basal_data"], true);
    let ins = &o["insulin"];
    let f = |k: &str| ins[k].as_f64().unwrap_or_else(|| panic!("{k}: {ins}"));
    assert!((25.0..70.0).contains(&f("total_daily_dose_u")), "{ins}");
    assert!((10.0..35.0).contains(&f("basal_u_per_day")), "{ins}");
    assert!((5.0..50.0).contains(&f("bolus_u_per_day")), "{ins}");
    assert!((f("basal_percent") + f("bolus_percent") - 100.0).abs() < 1e-6);
    assert!((2.0..10.0).contains(&f("boluses_per_day")), "{ins}");
    assert!((80.0..400.0).contains(&f("carbs_g_per_day")), "{ins}");
    // The same figures as the contract's report.
    let rep = get_json(&c, app.url(&format!("/api/v1/patients/{pid}/report?from={from}&to={to}"))).await;
    assert_eq!(rep["in_range_percent"], g["in_range_percent"]);
    assert_eq!(rep["readings"], g["readings"]);
    // A chosen window.
    let o7 = get_json(&c, app.url(&format!("/_fn/report_overview?from={}&to={to}", shift(&to, -6)))).await;
    assert_eq!(o7["meta"]["days"], 7);
    assert_eq!(o7["glucose"]["sufficient"], false, "7 days are not enough for the consensus");

    // Daily: the newest day by default; a day of the window by date.
    let d = get_json(&c, app.url("/_fn/report_daily")).await;
    assert_eq!(d["day"]["date"], to.as_str());
    assert_eq!(d["prev"], shift(&to, -1).as_str());
    let d = get_json(&c, app.url(&format!("/_fn/report_daily?date={}", shift(&to, -3)))).await;
    let day = &d["day"];
    assert!(day["cgm"].as_array().unwrap().len() > 250);
    assert!(!day["boluses"].as_array().unwrap().is_empty());
    assert!(!day["carbs"].as_array().unwrap().is_empty());
    assert!(!day["bg"].as_array().unwrap().is_empty());
    let basal = day["basal"].as_array().unwrap();
    assert!(basal.iter().any(|b| b["kind"] == "scheduled"), "{basal:?}");
    assert!(day["stats"]["basal_u"].as_f64().unwrap() > 10.0);
    assert_eq!(day["minutes"].as_u64().unwrap() % 60, 0);
    // The days with a suspension, a temp basal and an alarm show them.
    let start_ms = chrono::NaiveDate::parse_from_str(&from, "%Y-%m-%d")
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis()
        - 80 * 86_400_000;
    for (kind, check) in [("suspend", "suspended"), ("temp_basal", "temp")] {
        let date = day_with(app, kind, start_ms).await.expect("the demo has one");
        let d = get_json(&c, app.url(&format!("/_fn/report_daily?date={date}"))).await;
        let b = d["day"]["basal"].as_array().unwrap();
        assert!(b.iter().any(|x| x["kind"] == check), "{date}: no {check} basal in {b:?}");
    }
    let date = day_with(app, "alarm", start_ms).await.expect("the demo has alarms");
    let d = get_json(&c, app.url(&format!("/_fn/report_daily?date={date}"))).await;
    assert!(!d["day"]["alarms"].as_array().unwrap().is_empty());

    // Trends, logbook, device settings.
    let t = get_json(&c, app.url(&format!("/_fn/report_trends?from={from}&to={to}"))).await;
    assert_eq!(t["trends"]["hours"].as_array().unwrap().len(), 24);
    assert_eq!(t["trends"]["weekdays"].as_array().unwrap().len(), 7);
    let hours_readings: u64 =
        t["trends"]["hours"].as_array().unwrap().iter().map(|h| h["readings"].as_u64().unwrap()).sum();
    assert_eq!(hours_readings, g["readings"].as_u64().unwrap());
    let l = get_json(&c, app.url(&format!("/_fn/report_logbook?from={from}&to={to}"))).await;
    let days = l["days"].as_array().unwrap();
    assert_eq!(days.len(), 14);
    assert_eq!(days[0]["date"], to.as_str(), "newest first");
    assert_eq!(l["periods"].as_array().unwrap().len(), 5);
    assert_eq!(days[3]["cells"].as_array().unwrap().len(), 5);
    let carbs: f64 = days.iter().map(|d| d["carbs_g"].as_f64().unwrap()).sum();
    assert!((carbs / 14.0 - f("carbs_g_per_day")).abs() < 1e-6, "logbook and summary agree on carbs");
    let dev = get_json(&c, app.url(&format!("/_fn/report_device?from={from}&to={to}"))).await;
    let settings = dev["settings"].as_array().unwrap();
    assert_eq!(settings.len(), 1, "the demo's settings, seen before the window: {dev}");
    let s = &settings[0]["settings"];
    assert_eq!(s["basal_profiles"][0]["name"], "standard");
    assert_eq!(s["basal_profiles"][0]["active"], true);
    assert_eq!(s["carb_ratios"].as_array().unwrap().len(), 3);
    assert_eq!(s["sensitivities"].as_array().unwrap().len(), 3);
    assert_eq!(s["targets"][0]["low_mg_dl"], 100.0);
    assert_eq!(s["active_insulin_min"], 180);
    assert!(dev["alarms"].as_array().unwrap().iter().all(|a| a["local_time"].as_str().unwrap().len() == 16));

    // Bad input is a 400; another patient's data is "not found".
    let r = c.get(app.url("/_fn/report_overview?from=2024-13-01")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = c.get(app.url(&format!("/_fn/report_overview?from={to}&to={from}"))).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let other = app.user("nosy@example.org", "patient").await;
    for path in [
        format!("/_fn/report_overview?patient={pid}"),
        format!("/_fn/report_daily?patient={pid}"),
        format!("/_fn/report_trends?patient={pid}"),
        format!("/_fn/report_logbook?patient={pid}"),
        format!("/_fn/report_device?patient={pid}"),
        format!("/api/v1/patients/{pid}/report.pdf?from={from}&to={to}"),
    ] {
        let r = other.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    assert_eq!(
        app.client().get(app.url(&format!("/api/v1/patients/{pid}/report.pdf"))).send().await.unwrap().status(),
        401
    );
    // A user without data sees an empty overview, not an error.
    let own = get_json(&other, app.url("/_fn/report_overview")).await;
    assert_eq!(own["glucose"]["readings"], 0);

    // The PDF: overview + 14 daily pages, the patient's name and the TIR figure in its text.
    let t0 = std::time::Instant::now();
    let r = c.get(app.url(&format!("/api/v1/patients/{pid}/report.pdf?from={from}&to={to}"))).send().await.unwrap();
    let elapsed = t0.elapsed();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains(".pdf"));
    let pdf = r.bytes().await.unwrap();
    eprintln!("report.pdf, 14 days, {:?}: {} bytes in {elapsed:?}", app_backend(app), pdf.len());
    let tir = format!("{:.1} %", g["in_range_percent"].as_f64().unwrap());
    let day = |iso: &str| app::i18n::Lang::En.date(chrono::NaiveDate::parse_from_str(iso, "%Y-%m-%d").unwrap());
    let span = format!("{} to {}", day(&from), day(&to));
    check_pdf(&pdf, &["Alex Demo", &tir, "Time in ranges", "Ambulatory glucose profile", "Page 15 of 15", &span]);

    // In the viewer's language: the account's choice, else the browser's.
    use app::i18n::Lang;
    let es = |k: &'static str| Lang::Es.tr(k);
    assert_ne!(es("Time in ranges"), "Time in ranges", "the Spanish catalog translates the PDF");
    let r = c.patch(app.url("/api/v1/me")).json(&serde_json::json!({"language": "es"})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["language"], "es");
    let r = c.get(app.url(&format!("/api/v1/patients/{pid}/report.pdf?from={from}&to={to}"))).send().await.unwrap();
    let pdf = r.bytes().await.unwrap();
    let es_day = |iso: &str| Lang::Es.date(chrono::NaiveDate::parse_from_str(iso, "%Y-%m-%d").unwrap());
    let es_tir = format!("{} %", Lang::Es.num(g["in_range_percent"].as_f64().unwrap(), 1));
    let es_page = Lang::Es.trf("Page {n} of {total}", &[("n", &15), ("total", &15)]);
    let es_span =
        Lang::Es.trf("{from} to {to} ({days} days)", &[("from", &es_day(&from)), ("to", &es_day(&to)), ("days", &14)]);
    check_pdf(
        &pdf,
        &["Alex Demo", &es_tir, es("Time in ranges"), es("Ambulatory glucose profile (AGP)"), &es_page, &es_span],
    );
    let r = c.patch(app.url("/api/v1/me")).json(&serde_json::json!({"language": "tlh"})).send().await.unwrap();
    assert_eq!(r.status(), 400, "an unknown language is refused");
    // A user who never chose gets the browser's language.
    let r = other.get(app.url("/api/v1/me")).send().await.unwrap();
    let other_me: Value = r.json().await.unwrap();
    assert_eq!(other_me["language"], Value::Null);
    let opid = other_me["patient_id"].as_str().unwrap();
    let r = other
        .get(app.url(&format!("/api/v1/patients/{opid}/report.pdf")))
        .header("accept-language", "de-CH, de;q=0.9, en;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    check_pdf(
        &r.bytes().await.unwrap(),
        &[Lang::De.tr("Time in ranges"), Lang::De.tr("No CGM readings in these days.")],
    );
    let r = c.patch(app.url("/api/v1/me")).json(&serde_json::json!({"language": "en"})).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let doc = get_json(&c, app.url("/api/v1/openapi.json")).await;
    assert!(doc["paths"]["/patients/{patient_id}/report.pdf"]["get"].is_object(), "report.pdf documented");

    // The command line writes the same report, to a file or to standard output.
    let bin = env!("CARGO_BIN_EXE_diabase");
    let dir = common::TempDir::new("cli-pdf");
    let out_file = dir.0.join("r.pdf");
    let run = |extra: &[&str]| {
        let mut args = vec!["report", "--user", DEMO_EMAIL, "--from", &from, "--to", &to, "--format", "pdf"];
        args.extend_from_slice(extra);
        std::process::Command::new(bin)
            .args(&args)
            .env("DATABASE_URL", &app.database_url)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run(&["--out", out_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    check_pdf(&std::fs::read(&out_file).unwrap(), &["Alex Demo", &tir]);
    let out = run(&[]);
    assert!(out.status.success());
    assert!(out.stdout.starts_with(b"%PDF-"));
    // --protect: AES-256 under a password printed once on standard error.
    let out = run(&["--protect", "--out", out_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    let password = err
        .lines()
        .find_map(|l| l.split("channel than the file): ").nth(1))
        .expect("the password on stderr")
        .trim()
        .to_string();
    let protected = std::fs::read(&out_file).unwrap();
    assert!(String::from_utf8_lossy(&protected).contains("/AESV3"));
    assert!(!String::from_utf8_lossy(&protected).contains("Alex Demo"));
    assert!(password.len() >= 20);
    let json_protect = std::process::Command::new(bin)
        .args(["report", "--user", DEMO_EMAIL, "--from", &from, "--to", &to, "--format", "json", "--protect"])
        .env("DATABASE_URL", &app.database_url)
        .output()
        .unwrap();
    assert!(!json_protect.status.success(), "--protect is for PDF only");
}

fn app_backend(app: &TestApp) -> &'static str {
    if app.database_url.starts_with("sqlite") { "SQLite" } else { "PostgreSQL" }
}

fn shift(date: &str, days: i64) -> String {
    (chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap() + chrono::Duration::days(days)).to_string()
}

both_backends!(cgm_only_export_reports);
async fn cgm_only_export_reports(app: &TestApp) {
    let Some(dir) = therapy::fixtures::fixtures_dir() else { return };
    let path = dir.join("dexcom-clarity-csv/glucosedao-synthetic/Clarity_Export_synthetic.csv");
    let c = app.user("cgm.only@example.org", "patient").await;
    let part = reqwest::multipart::Part::bytes(std::fs::read(&path).unwrap()).file_name("Clarity_Export_synthetic.csv");
    let r = c
        .post(app.url("/api/v1/uploads"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let o = get_json(&c, app.url("/_fn/report_overview")).await;
    // Pen boluses, no basal (the long-acting doses are notes in this export).
    assert_eq!(o["pump_data"], true);
    assert_eq!(o["basal_data"], false);
    assert!(o["glucose"]["readings"].as_u64().unwrap() > 3000);
    assert!(o["insulin"]["bolus_u_per_day"].as_f64().unwrap() > 1.0);
    assert_eq!(o["insulin"]["basal_u_per_day"], 0.0);
    let to = o["meta"]["to"].as_str().unwrap().to_string();
    let d = get_json(&c, app.url(&format!("/_fn/report_daily?date={to}"))).await;
    assert!(d["day"]["basal"].as_array().unwrap().is_empty());
    assert_eq!(d["day"]["stats"]["basal_u"], Value::Null);
    let dev = get_json(&c, app.url("/_fn/report_device")).await;
    assert!(dev["settings"].as_array().unwrap().is_empty());
    // A name outside Latin-1 prints as itself (an embedded font subset), and
    // pdftotext reads it back.
    let name = "Łukasz Żółć · Ελένη Жанна";
    let r = c.patch(app.url("/api/v1/me")).json(&serde_json::json!({"display_name": name})).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let me: Value = get_json(&c, app.url("/api/v1/me")).await;
    let pid = me["patient_id"].as_str().unwrap();
    let r = c.get(app.url(&format!("/api/v1/patients/{pid}/report.pdf"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let pdf = r.bytes().await.unwrap();
    check_pdf(&pdf, &["No basal data in these days", name]);
    let body = String::from_utf8_lossy(&pdf);
    assert!(body.contains("/FontFile2") && body.contains("+DejaVuSans"), "a DejaVu Sans subset is embedded");
    assert!(pdf.len() < 400_000, "the subset keeps the file small: {} bytes", pdf.len());
    let _ = Backend::Sqlite;
}

both_backends!(password_protected_pdf);
/// The PDF for sending outside Diabase: AES-256 under a generated password,
/// shown once. pdftotext refuses it without the password (or with a wrong
/// one) and reads it with it; qpdf checks its structure and its encryption.
async fn password_protected_pdf(app: &TestApp) {
    use base64::Engine;
    let c = demo_client(app).await;
    let me: Value = get_json(&c, app.url("/api/v1/me")).await;
    let pid = me["patient_id"].as_str().unwrap().to_string();
    let r = c.post(app.url(&format!("/api/v1/patients/{pid}/protected-report"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");
    let v: Value = r.json().await.unwrap();
    let password = v["password"].as_str().unwrap().to_string();
    assert!(password.len() >= 20, "a strong password: {password}");
    assert!(v["file_name"].as_str().unwrap().ends_with("-protected.pdf"));
    let pdf = base64::engine::general_purpose::STANDARD.decode(v["pdf_base64"].as_str().unwrap()).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let raw = String::from_utf8_lossy(&pdf);
    assert!(raw.contains("/AESV3"), "AES-256");
    assert!(!raw.contains("Alex Demo"), "the patient's name is not readable in the file");
    // A second one has another password.
    let v2: Value = c
        .post(app.url(&format!("/api/v1/patients/{pid}/protected-report")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(v2["password"], v["password"]);
    // Someone without access gets nothing.
    let stranger = app.user("stranger@pdf.example", "patient").await;
    let r = stranger.post(app.url(&format!("/api/v1/patients/{pid}/protected-report"))).send().await.unwrap();
    assert_eq!(r.status(), 404);

    let dir = common::TempDir::new("pdf-protected");
    let path = dir.0.join("p.pdf");
    std::fs::write(&path, &pdf).unwrap();
    if tool("pdftotext") {
        let run = |pw: Option<&str>| {
            let mut cmd = std::process::Command::new("pdftotext");
            if let Some(pw) = pw {
                cmd.args(["-upw", pw]);
            }
            cmd.arg(&path).arg("-").output().unwrap()
        };
        let out = run(None);
        assert!(!out.status.success(), "pdftotext must refuse without the password");
        let out = run(Some("not-the-password"));
        assert!(!out.status.success(), "pdftotext must refuse a wrong password");
        let out = run(Some(&password));
        assert!(out.status.success(), "pdftotext with the password: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Alex Demo"), "{}", &text[..text.len().min(2000)]);
        assert!(
            text.contains("Time in ranges") || text.contains("time in ranges"),
            "{}",
            &text[..text.len().min(2000)]
        );
    }
    let qpdf = std::process::Command::new("qpdf").arg("--version").output().is_ok();
    if !qpdf && std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("qpdf is required under CI=true");
    }
    if qpdf {
        let out = std::process::Command::new("qpdf")
            .arg(format!("--password={password}"))
            .arg("--check")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "qpdf --check: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let out = std::process::Command::new("qpdf")
            .arg(format!("--password={password}"))
            .arg("--show-encryption")
            .arg(&path)
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(shown.contains("R = 6"), "{shown}");
        assert!(shown.contains("AESv3"), "{shown}");
    }
}
