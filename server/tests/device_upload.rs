//! Uploads of raw MiniMed pump pages (`POST /api/v1/uploads` with a JSON pump dump), on SQLite
//! and PostgreSQL: the server decodes the pages, corrects the pump's clock, stores idempotently
//! and keeps the bytes; `diabase inspect` decodes the same dumps and bare pages.
#![allow(clippy::unwrap_used)] // a test fails by panicking

mod common;

use common::{Backend, TestApp};
use serde_json::{Value, json};

const DIR: &str = "minimed-pages/decocare-578398-mm522";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The decocare 522's eleven history pages (newest first) and its CGM page as a pump dump. The
/// pump's clock is five minutes fast against the uploader's UTC in US Pacific time.
fn dump() -> Option<Value> {
    let dir = therapy::fixtures::fixtures_dir()?.join(DIR);
    let page = |name: String| std::fs::read(dir.join(name)).expect("fixture page");
    let history: Vec<Value> =
        (0..=10).map(|n| json!({"number": n, "hex": hex(&page(format!("ReadHistoryData-page-{n}.data")))})).collect();
    Some(json!({
        "format": "minimed_pages",
        "device": {"manufacturer": "Medtronic", "model": "522", "serial": "578398", "firmware": "VER 2.4A1.1"},
        // 20:17:36 on the pump = 20:12:36 PDT = 03:12:36 UTC the next day.
        "clock": {"pump": "2015-04-29T20:17:36", "utc": "2015-04-30T03:12:36Z"},
        "history_pages": history,
        "glucose_pages": [{"number": 6, "hex": hex(&page("ReadGlucoseHistory-page-6.data".into()))}],
    }))
}

async fn post(app: &TestApp, c: &reqwest::Client, body: &Value) -> reqwest::Response {
    c.post(app.url("/api/v1/uploads")).json(body).send().await.unwrap()
}

both_backends!(pump_pages_upload_decodes_corrects_the_clock_and_is_idempotent);
async fn pump_pages_upload_decodes_corrects_the_clock_and_is_idempotent(app: &TestApp) {
    let Some(body) = dump() else { return };
    let c = app.user("pump@example.org", "patient").await;
    let r = c.patch(app.url("/api/v1/me")).json(&json!({"time_zone": "America/Los_Angeles"})).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let r = post(app, &c, &body).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let s: Value = r.json().await.unwrap();
    assert_eq!(s["format"], "minimed_pages", "{s}");
    // The CGM page holds 169 readings with a time; the history pages boluses, BGs, temp basals.
    assert_eq!(s["records"]["cgm"], 169, "{s}");
    for k in ["bolus", "bg", "temp_basal"] {
        assert!(s["records"][k].as_u64().unwrap_or(0) > 0, "{k}: {s}");
    }
    assert_eq!(s["duplicates"], 0, "{s}");
    // Records the pump wrote after a clock reset (on a 2005 clock) are moved by the time change
    // that set the clock again: nothing lands years away.
    assert!(s["first"].as_str().unwrap().starts_with("2015-"), "{s}");

    // The same dump again adds nothing.
    let again: Value = post(app, &c, &body).await.json().await.unwrap();
    assert!(again["records"].as_object().unwrap().values().all(|v| v == 0), "{again}");
    assert!(again["duplicates"].as_u64().unwrap() >= 169, "{again}");

    // The first CGM reading, 04:57 on the pump's clock (5 minutes fast), was 04:52 PDT.
    let me: Value = c.get(app.url("/api/v1/me")).send().await.unwrap().json().await.unwrap();
    let pid = me["patient_id"].as_str().unwrap();
    let g: Value = c
        .get(app.url(&format!("/api/v1/patients/{pid}/glucose?from=2015-04-29&to=2015-04-29")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let g = g.as_array().unwrap();
    assert_eq!(g.len(), 169);
    assert_eq!(g[0]["time"], "2015-04-29T11:52:00Z", "{:?}", &g[..2]);
    assert_eq!(g[0]["value_mg_dl"], 250);

    // The upload is listed as a device upload, and the pump as a device with the newest times
    // an incremental read needs.
    let list: Value = c.get(app.url("/api/v1/uploads")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list[0]["source"], "device", "{list}");
    let devs: Value = c.get(app.url("/api/v1/devices")).send().await.unwrap().json().await.unwrap();
    let pump = devs.as_array().unwrap().iter().find(|d| d["serial"] == "578398").expect("the pump is listed");
    assert_eq!(pump["manufacturer"], "Medtronic");
    assert_eq!(pump["model"], "Paradigm 522");
    assert!(pump["newest_history_device_time"].as_str().unwrap().starts_with("2015-04-29T"), "{pump}");
    assert!(pump["newest_cgm_device_time"].as_str().unwrap().starts_with("2015-04-29T"), "{pump}");

    // Another account cannot list this patient's devices.
    let other = app.user("other@example.org", "patient").await;
    let r = other.get(app.url(&format!("/api/v1/devices?patient_id={pid}"))).send().await.unwrap();
    assert!(r.status() == 404 || r.status() == 403, "{}", r.status());
}

both_backends!(bad_pages_are_reported_and_bad_dumps_store_nothing);
async fn bad_pages_are_reported_and_bad_dumps_store_nothing(app: &TestApp) {
    let Some(mut body) = dump() else { return };
    let c = app.user("crc@example.org", "patient").await;

    // A page whose CRC fails is reported by number and not decoded; the others are stored.
    let h = body["history_pages"][3]["hex"].as_str().unwrap().to_string();
    let flipped = format!("{}{}", if &h[..2] == "ff" { "00" } else { "ff" }, &h[2..]);
    body["history_pages"][3]["hex"] = json!(flipped);
    let r = post(app, &c, &body).await;
    assert_eq!(r.status(), 201);
    let s: Value = r.json().await.unwrap();
    let rejected = s["rejected"].as_array().unwrap();
    assert!(
        rejected.iter().any(|x| x["reason"].as_str().unwrap().contains("history page 3")
            && x["reason"].as_str().unwrap().contains("CRC")),
        "{s}"
    );
    assert_eq!(s["records"]["cgm"], 169);

    // A dump that cannot be decoded at all is refused whole: nothing is stored.
    let uploads = |c: &reqwest::Client| {
        let u = app.url("/api/v1/uploads");
        let c = c.clone();
        async move { c.get(u).send().await.unwrap().json::<Value>().await.unwrap().as_array().unwrap().len() }
    };
    let before = uploads(&c).await;
    let mut bad = dump().unwrap();
    bad["device"]["serial"] = json!("57839");
    let r = post(app, &c, &bad).await;
    assert_eq!(r.status(), 422);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"]["message"].as_str().unwrap().contains("device.serial"), "{e}");
    let mut bad = dump().unwrap();
    bad["device"]["model"] = json!("999");
    let r = post(app, &c, &bad).await;
    assert_eq!(r.status(), 422);
    // JSON that is not a pump dump is a clear 400.
    let r = post(app, &c, &json!({"hello": "world"})).await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"]["message"].as_str().unwrap().contains("minimed_pages"), "{e}");
    assert_eq!(uploads(&c).await, before);
}

/// Reads a simulated pump with the real driver (waits skipped), as the browser does.
fn read_pump(
    sim: &mut devices::minimed::simulator::Simulator,
    since: Option<chrono::NaiveDateTime>,
    utc: chrono::DateTime<chrono::Utc>,
) -> Result<devices::minimed::dump::PumpDump, devices::minimed::driver::DriverError> {
    use devices::minimed::driver::{Driver, DriverConfig, run_blocking_with_clock};
    let mut cfg = DriverConfig::new("654321");
    cfg.since = since;
    let mut d = Driver::new(cfg)?;
    run_blocking_with_clock(&mut d, |a| sim.transport(a), || Some(utc))
}

both_backends!(a_simulated_pump_uploads_end_to_end_with_faults_and_incrementally);
async fn a_simulated_pump_uploads_end_to_end_with_faults_and_incrementally(app: &TestApp) {
    use devices::minimed::PumpModel;
    use devices::minimed::encode::HistoryEvent;
    use devices::minimed::history::EventData;
    use devices::minimed::simulator::{Fault, Scenario, Simulator};
    let c = app.user("sim@example.org", "patient").await;
    let r = c.patch(app.url("/api/v1/me")).json(&json!({"time_zone": "Europe/Berlin"})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The pump's clock reads 10:02:00 on 2 Dec 2026 when it is 09:00:00 UTC = 10:00:00 in Berlin.
    let clock = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap().and_hms_opt(10, 2, 0).unwrap();
    let utc = "2026-12-02T09:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    let mut scenario = Scenario::ninety_days(PumpModel::new(523).unwrap(), "654321", clock, 11);

    // A pump that stops answering mid-history: the driver gives up and nothing is posted.
    scenario.faults = vec![Fault::PumpStopsAnswering { after_history_pages: 3 }];
    let mut dead = Simulator::new(scenario.clone());
    let e = read_pump(&mut dead, None, utc).unwrap_err();
    assert!(e.to_string().contains("move it closer"), "{e}");

    // Radio faults are retried: the upload completes.
    scenario.faults = vec![
        Fault::Nak { at_command: 0x80, times: 1 },
        Fault::LostFrame { nth_read: 40 },
        Fault::BadCrc { nth_frame: 25 },
    ];
    let mut sim = Simulator::new(scenario);
    let dump = read_pump(&mut sim, None, utc).unwrap();
    assert_eq!(dump.clock.as_ref().map(|c| c.pump), Some(clock));
    let body = serde_json::to_value(&dump).unwrap();
    let r = post(app, &c, &body).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let s: Value = r.json().await.unwrap();
    assert!(s["records"]["cgm"].as_u64().unwrap() > 20_000, "{s}");
    assert_eq!(s["records"]["settings"], 1, "{s}");
    assert!(s["rejected"].as_array().unwrap().is_empty(), "{s}");

    // The pump's clock was 2 minutes fast: its last CGM reading lands 2 minutes earlier in UTC.
    let newest = dump
        .glucose_pages
        .iter()
        .filter_map(|p| devices::minimed::glucose::decode_glucose_page(&p.bytes().unwrap()).ok())
        .flat_map(|p| p.events)
        .filter(|e| matches!(e.data, devices::minimed::glucose::GlucoseData::SensorGlucose { .. }))
        .filter_map(|e| e.timestamp)
        .max()
        .unwrap();
    let me: Value = c.get(app.url("/api/v1/me")).send().await.unwrap().json().await.unwrap();
    let pid = me["patient_id"].as_str().unwrap();
    let day = newest.date();
    let g: Value = c
        .get(app.url(&format!("/api/v1/patients/{pid}/glucose?from={day}&to={day}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = g.as_array().unwrap().last().unwrap()["time"].as_str().unwrap().to_string();
    let expect =
        chrono::TimeZone::from_local_datetime(&chrono_tz::Europe::Berlin, &(newest - chrono::Duration::minutes(2)))
            .single()
            .unwrap()
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
    assert_eq!(last, expect);

    // The pump is used for an hour; the next upload starts from what is stored and reads one page.
    let devs: Value = c.get(app.url("/api/v1/devices")).send().await.unwrap().json().await.unwrap();
    let pump = devs.as_array().unwrap().iter().find(|d| d["serial"] == "654321").unwrap().clone();
    let since = [&pump["newest_history_device_time"], &pump["newest_cgm_device_time"]]
        .iter()
        .filter_map(|v| v.as_str())
        .filter_map(|s| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok())
        .min();
    assert!(since.is_some(), "{pump}");
    sim.add_history(&[
        HistoryEvent::new(clock + chrono::Duration::minutes(20), EventData::Suspend),
        HistoryEvent::new(clock + chrono::Duration::minutes(35), EventData::Resume { remote: false }),
    ])
    .unwrap();
    sim.set_clock(clock + chrono::Duration::minutes(60));
    sim.reset_session();
    let before = sim.commands_seen(0x80);
    let second = read_pump(&mut sim, since, utc + chrono::Duration::minutes(60)).unwrap();
    assert!(sim.commands_seen(0x80) - before <= 2);
    let s: Value = post(app, &c, &serde_json::to_value(&second).unwrap()).await.json().await.unwrap();
    assert_eq!(s["records"]["suspend"], 1, "{s}");
    assert_eq!(s["records"]["resume"], 1, "{s}");
    assert_eq!(s["records"].get("cgm").and_then(Value::as_u64).unwrap_or(0), 0, "{s}");
    assert!(s["duplicates"].as_u64().unwrap() > 0, "{s}");
}

#[test]
fn cli_inspects_bare_pages_and_dumps() {
    let Some(dir) = therapy::fixtures::fixtures_dir() else { return };
    let bin = env!("CARGO_BIN_EXE_diabase");
    let inspect = |path: &std::path::Path| -> Value {
        let out = std::process::Command::new(bin).arg("inspect").arg(path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // A bare history page: the model comes from the name (mm522), the records from the bytes.
    let v = inspect(&dir.join(DIR).join("ReadHistoryData-page-1.data"));
    assert_eq!(v["source"]["format"], "minimed_pages");
    assert_eq!(v["source"]["device"]["model"], "Paradigm 522");
    assert!(v["records"].as_array().unwrap().iter().any(|r| r["type"] == "bolus"));
    // A CGM page copied under a name that says nothing: kind and model found from the bytes.
    let tmp = common::TempDir::new("inspect-pages");
    let plain = tmp.0.join("page.bin");
    std::fs::copy(dir.join(DIR).join("ReadGlucoseHistory-page-6.data"), &plain).unwrap();
    let v = inspect(&plain);
    let recs = v["records"].as_array().unwrap();
    assert_eq!(recs.iter().filter(|r| r["type"] == "cgm").count(), 169);
    assert_eq!(recs[0]["device_time"], "2015-04-29T04:57:00");
    // A 523 page in hex, named without a model: the x23 layout reads it.
    let v = inspect(&dir.join("minimed-pages/rileylink-minimedkit/testHistoryDecoding523.hex"));
    assert_eq!(v["source"]["device"]["model"], "Paradigm Revel - 523");
    // A whole dump, with the serial.
    let file = tmp.0.join("dump.json");
    std::fs::write(&file, serde_json::to_vec(&dump().unwrap()).unwrap()).unwrap();
    let v = inspect(&file);
    assert_eq!(v["source"]["device"]["serial"], "578398");
    assert!(v["records"].as_array().unwrap().len() > 182);
    // A page with a bad CRC is reported, not decoded.
    let v = inspect(&dir.join("minimed-pages/rileylink-minimedkit/testHistoryPageInvalidCRC.hex"));
    assert!(v["records"].as_array().unwrap().is_empty());
    assert!(v["rejected"][0]["reason"].as_str().unwrap().contains("CRC"), "{v}");
    // Bytes that are not whole pages are an error that says so.
    let odd = tmp.0.join("odd.data");
    std::fs::write(&odd, [0u8; 1000]).unwrap();
    let out = std::process::Command::new(bin).arg("inspect").arg(&odd).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1024-byte pages"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[allow(dead_code)]
const _USES_BACKEND: Option<Backend> = None;
