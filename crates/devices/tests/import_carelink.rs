//! CareLink CSV importer against the shared real-world fixtures: the decocare full export, the
//! Guardian Connect export (vs peer CGM metrics), the 22 Tidepool uploader scenarios (vs the
//! records Tidepool's CareLink driver produced), synthetic edge cases and throughput.
#![allow(clippy::unwrap_used)]

mod import_util;

use devices::import::{Format, Item, detect, import, inspect_bytes};
use import_util as u;
use serde_json::{Value, json};
use std::path::Path;
use therapy::record::OutOfRange;
use therapy::{BgSource, BolusSubtype, RecordKind};

const DECOCARE: &str = "carelink-csv/decocare-578398-mm522/CareLink-Export-1430357806982.csv";
const GUARDIAN: &str = "carelink-csv/glucosedao-guardian-connect/medtronics_test_livia.csv";

#[test]
fn decocare_full_export() {
    let Some(ins) = u::inspect(DECOCARE) else {
        return;
    };
    assert_eq!(ins.format, Format::CarelinkCsv);
    assert!(ins.rejected.is_empty(), "{:?}", &ins.rejected[..ins.rejected.len().min(5)]);
    // Two pumps, serials from the preamble, announced as their rows begin.
    let models: Vec<_> = ins.devices.iter().map(|d| (d.model.clone().unwrap(), d.serial.clone().unwrap())).collect();
    assert_eq!(
        models,
        [("Paradigm Revel - 523".to_string(), "736868".to_string()), ("Paradigm 522".into(), "578398".into())]
    );
    assert_eq!(ins.device.manufacturer.as_deref(), Some("Medtronic"));

    let c = u::counts(&ins);
    // GlucoseSensorData 3869 + 2778, GlucoseSensorDataLow 15, GlucoseSensorDataHigh 1.
    assert_eq!(c["cgm"], 6647 + 15 + 1);
    assert_eq!(c["basal_profile_start"], 100);
    assert_eq!(c["daily_total"], 27);
    assert_eq!(c["prime"], 18);
    assert_eq!(c["rewind"], 11);
    assert_eq!(c["temp_basal"], 5);
    assert_eq!(c["suspend"] + c["resume"], 59);
    // AlarmSensor 480 + AlarmPump 8 + low reservoir 13 + low battery 2.
    assert_eq!(c["alarm"], 480 + 8 + 13 + 2);
    // 169 normal + 41 square parts: 40 dual-wave pairs (each paired part once), 10 dual-wave
    // normal parts whose square part never came, 1 plain square bolus: 170 boluses.
    assert_eq!(c["bolus"], 169 + 41 - 40);
    let boluses = u::of_type(&ins, "bolus");
    let dual = |with_square: bool| {
        boluses
            .iter()
            .filter(|r| matches!(r.kind, RecordKind::Bolus { subtype: BolusSubtype::Dual, duration_min, .. } if duration_min.is_some() == with_square))
            .count()
    };
    assert_eq!((dual(true), dual(false)), (40, 10));
    let squares =
        boluses.iter().filter(|r| matches!(r.kind, RecordKind::Bolus { subtype: BolusSubtype::Square, .. })).count();
    assert_eq!(squares, 1);
    // Every linked BG (BGReceived) once; calibrations of the same reading are not repeated.
    let bgs = u::of_type(&ins, "bg");
    let linked = bgs.iter().filter(|r| matches!(r.kind, RecordKind::Bg { source: BgSource::LinkedMeter, .. })).count();
    assert_eq!(linked, 87);
    // Each estimate kept belongs to a bolus; carbs come with the estimates that had some.
    let wizards = u::of_type(&ins, "bolus_wizard");
    // 139 estimates, 9 of them backed out of (no bolus followed within 5 minutes).
    assert_eq!(wizards.len(), 130);
    let with_carbs = wizards
        .iter()
        .filter(|r| matches!(&r.kind, RecordKind::BolusWizard(w) if w.carbs_g.is_some_and(|g| g > 0.0)))
        .count();
    assert_eq!(c["carbs"], with_carbs);

    // First records of the file, in file order.
    let first: Vec<Value> = ins.records.iter().take(3).map(|r| serde_json::to_value(r).unwrap()).collect();
    assert_eq!(
        first,
        [
            json!({"type": "basal_profile_start", "rate_u_h": 0.9, "profile": "standard", "offset_min": 0,
                   "device_time": "2015-04-01T00:00:00"}),
            json!({"type": "daily_total", "date": "2015-04-01", "units": 48.6, "device_time": "2015-04-01T00:00:00"}),
            json!({"type": "alarm", "code": 104, "description": "Sensor Alert: Meter BG Now",
                   "device_time": "2015-04-01T00:11:00"}),
        ]
    );
    // The first bolus: a dual-wave bolus whose square part was 0 U.
    let b = u::of_type(&ins, "bolus")[0];
    assert_eq!(
        serde_json::to_value(b).unwrap(),
        json!({"type": "bolus", "subtype": "dual", "programmed_u": 1.6, "delivered_u": 1.6, "duration_min": 0,
               "normal_programmed_u": 1.6, "normal_delivered_u": 1.6, "extended_programmed_u": 0.0,
               "extended_delivered_u": 0.0, "extended_duration_min": 0, "device_time": "2015-04-01T00:14:44"})
    );
    // Sensor limits are flagged.
    let flagged = ins
        .records
        .iter()
        .filter_map(|r| match r.kind {
            RecordKind::Cgm { value_mg_dl, out_of_range: Some(o), .. } => Some((value_mg_dl, o)),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert_eq!(flagged.len(), 16);
    assert!(flagged.iter().all(|&(v, o)| (v == 40 && o == OutOfRange::Below) || (v == 400 && o == OutOfRange::Above)));
    let cgm = u::cgm(&ins);
    assert_eq!(cgm.first().unwrap().0, "2015-04-01T00:25:00");
    assert_eq!(cgm.last().unwrap().0, "2015-04-29T18:27:00");
    // Settings snapshots at each upload (3 for the 523, 1 for the 522) and the 522's changes.
    let snapshots = u::of_type(&ins, "settings")
        .into_iter()
        .filter(|r| matches!(&r.kind, RecordKind::Settings { values } if values["kind"] == "snapshot"))
        .collect::<Vec<_>>();
    assert_eq!(snapshots.len(), 4);
    let RecordKind::Settings { values } = &snapshots[0].kind else { unreachable!() };
    assert_eq!(values["pump_model"], "523");
    assert_eq!(values["active_schedule"], "standard");
    assert_eq!(values["basal_schedules"]["standard"][0], json!({"start_min": 0, "rate_u_h": 0.9}));
    assert_eq!(values["insulin_action_min"], 240);
    assert_eq!(values["units"], json!({"bg": "mg/dL", "carb": "grams"}));
}

#[test]
fn guardian_connect_export_matches_peer_cgm_metrics() {
    let Some(ins) = u::inspect(GUARDIAN) else {
        return;
    };
    assert_eq!(ins.format, Format::CarelinkCsv);
    assert!(ins.rejected.is_empty(), "{:?}", &ins.rejected[..ins.rejected.len().min(5)]);
    // One device, announced for its Pump and its Sensor section; the patient's name is not output.
    assert_eq!(ins.devices.len(), 2);
    assert_eq!(ins.device.model.as_deref(), Some("Guardian Connect"));
    assert_eq!(ins.device.serial.as_deref(), Some("GCZ7PA-UYGI-AZWP-LWF1"));
    let json = serde_json::to_string(&ins.to_json("x.csv")).unwrap();
    assert!(!json.contains("Livia") && !json.contains("Zaharia"));

    u::assert_matches_peer(&ins, "carelink-csv/glucosedao-guardian-connect/PEER_METRICS.json", 0);
    let c = u::counts(&ins);
    assert_eq!(c["cgm"], 22_149);
    assert_eq!(c["bg"], 255);
    assert_eq!(c["alarm"], 1857);
    // Event markers: 239 meals → carbs, the rest (insulin injections, "Other") → notes.
    assert_eq!(c["carbs"] + c["note"], 634);
    let meal = u::of_type(&ins, "carbs")[0];
    assert_eq!(
        serde_json::to_value(meal).unwrap(),
        json!({"type": "carbs", "grams": 60.0, "device_time": "2021-07-24T13:20:41"})
    );
    let first = serde_json::to_value(&ins.records[0]).unwrap();
    assert_eq!(first, json!({"type": "note", "text": "Insulin: 27,00", "device_time": "2021-07-25T09:35:28"}));
    let alarm =
        u::of_type(&ins, "alarm").into_iter().find(|r| matches!(&r.kind, RecordKind::Alarm { code: Some(_), .. }));
    assert_eq!(
        serde_json::to_value(alarm.unwrap()).unwrap(),
        json!({"type": "alarm", "code": 1003, "description": "Other Alarm Code: 1003", "device_time": "2021-07-25T00:32:53"})
    );
}

// ---------------------------------------------------------------------------------------------
// Tidepool uploader scenarios.
//
// Both sides are reduced to the essentials of each record (type, device time, amounts), with
// Tidepool's names translated: `normal`/`extended` (U) → one bolus with `delivered_u` = their
// sum and `programmed_u` = `expectedNormal`/`expectedExtended` (or the delivered values);
// `subType` `dual/square` → `dual`; `duration` ms → `duration_min`; `basal-scheduled` →
// `basal_profile_start` (`scheduleName` → `profile`); `basal-temp` → `temp_basal`; `wizard` →
// `bolus_wizard` (`recommended.carb/correction/net`, `insulinOnBoard`, `bgTarget`); `cbg` → `cgm`;
// `smbg` `linked`/`manual` → `bg` `linked_meter`/`manual`.
//
// Deliberate differences, checked separately below:
// - we also emit a `carbs` record for each estimate with carbs entered (Tidepool keeps them only
//   inside the wizard record);
// - a wizard BG input of 0 ("no BG entered") is absent (`bgInput: 0` in Tidepool);
// - `JournalEntryPumpLowReservoir` becomes an `alarm` (Tidepool has no such record);
// - settings: Tidepool propagates the upload-time snapshot backwards through the change events,
//   we emit the snapshot at its own time and each change at its time (see `settings_*`).

fn r6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn n(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn tidepool_essentials(e: &Value) -> Option<Value> {
    let t = e["deviceTime"].as_str().unwrap();
    let ty = e["type"].as_str().unwrap();
    Some(match ty {
        "basal-scheduled" => {
            json!({"type": "basal_profile_start", "time": t, "rate": e["rate"], "profile": e["scheduleName"]})
        }
        "basal-temp" => {
            json!({"type": "temp_basal", "time": t, "rate": e["rate"], "percent": e["percent"].as_f64().map(|p| (p * 100.0).round()),
                               "duration_min": n(&e["duration"]).map(|d| (d / 60000.0).round())})
        }
        "bolus" => {
            let normal = n(&e["normal"]);
            let ext = n(&e["extended"]);
            let exp_normal = n(&e["expectedNormal"]).or(normal);
            let exp_ext = n(&e["expectedExtended"]).or(ext);
            let sum = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (None, None) => None,
                (a, b) => Some(r6(a.unwrap_or(0.0) + b.unwrap_or(0.0))),
            };
            let subtype = match e["subType"].as_str().unwrap() {
                "dual/square" => "dual",
                s => s,
            };
            // The parts of square and dual boluses (Tidepool's square has no normal: 0 now).
            let parts = match subtype {
                "square" => json!([0.0, 0.0, ext.map(r6), exp_ext.map(r6)]),
                "dual" => json!([normal.map(r6), exp_normal.map(r6), ext.map(r6), exp_ext.map(r6)]),
                _ => Value::Null,
            };
            json!({"type": "bolus", "time": t, "subtype": subtype, "delivered": sum(normal, ext), "programmed": sum(exp_normal, exp_ext),
                   "duration_min": n(&e["duration"]).map(|d| (d / 60000.0).round()), "parts": parts})
        }
        "wizard" => json!({"type": "bolus_wizard", "time": t, "carbs": n(&e["carbInput"]),
                           "bg": n(&e["bgInput"]).filter(|&b| b > 0.0), "ratio": n(&e["insulinCarbRatio"]),
                           "isf": n(&e["insulinSensitivity"]), "low": n(&e["bgTarget"]["low"]), "high": n(&e["bgTarget"]["high"]),
                           "food": n(&e["recommended"]["carb"]), "correction": n(&e["recommended"]["correction"]),
                           "total": n(&e["recommended"]["net"]), "iob": n(&e["insulinOnBoard"])}),
        "cbg" => json!({"type": "cgm", "time": t, "value": n(&e["value"])}),
        "smbg" => json!({"type": "bg", "time": t, "value": n(&e["value"]),
                         "source": match e["subType"].as_str() { Some("linked") => "linked_meter", _ => "manual" }}),
        "pumpSettings" => return None,
        other => panic!("unexpected Tidepool type {other}"),
    })
}

fn our_essentials(r: &therapy::Record) -> Option<Value> {
    let t = r.device_time.to_string();
    let f = |x: Option<f64>| x.map(r6);
    Some(match &r.kind {
        RecordKind::BasalProfileStart { rate_u_h, profile, .. } => {
            json!({"type": "basal_profile_start", "time": t, "rate": rate_u_h, "profile": profile})
        }
        RecordKind::TempBasal { rate_u_h, percent, duration_min } => {
            json!({"type": "temp_basal", "time": t, "rate": rate_u_h,
            "percent": percent.map(f64::from), "duration_min": duration_min.map(f64::from)})
        }
        RecordKind::Bolus {
            subtype,
            programmed_u,
            delivered_u,
            duration_min,
            normal_programmed_u,
            normal_delivered_u,
            extended_programmed_u,
            extended_delivered_u,
            extended_duration_min,
        } => {
            let parts = match subtype {
                BolusSubtype::Normal => Value::Null,
                _ => {
                    assert_eq!(extended_duration_min, &extended_delivered_u.and(*duration_min));
                    json!([
                        f(*normal_delivered_u),
                        f(*normal_programmed_u),
                        f(*extended_delivered_u),
                        f(*extended_programmed_u)
                    ])
                }
            };
            json!({"type": "bolus", "time": t,
            "subtype": subtype, "delivered": f(*delivered_u), "programmed": f(*programmed_u), "duration_min": duration_min.map(f64::from), "parts": parts})
        }
        RecordKind::BolusWizard(w) => {
            json!({"type": "bolus_wizard", "time": t, "carbs": w.carbs_g, "bg": w.bg_mg_dl.map(f64::from),
            "ratio": w.carb_ratio_g_per_u, "isf": w.sensitivity_mg_dl_per_u, "low": w.target_low_mg_dl.map(f64::from),
            "high": w.target_high_mg_dl.map(f64::from), "food": w.food_estimate_u, "correction": w.correction_estimate_u,
            "total": w.total_estimate_u, "iob": w.active_insulin_u})
        }
        RecordKind::Cgm { value_mg_dl, .. } => {
            json!({"type": "cgm", "time": t, "value": f64::from(*value_mg_dl)})
        }
        RecordKind::Bg { value_mg_dl, source } => {
            json!({"type": "bg", "time": t, "value": f64::from(*value_mg_dl), "source": source})
        }
        // Not produced by Tidepool's CareLink driver (see the list above).
        RecordKind::Carbs { .. } | RecordKind::Settings { .. } | RecordKind::Alarm { .. } => {
            return None;
        }
        other => panic!("unexpected record {other:?}"),
    })
}

/// Numbers as f64 so that `2` and `2.0` compare equal.
fn canon(v: &Value) -> Value {
    match v {
        Value::Number(x) => json!(r6(x.as_f64().unwrap())),
        Value::Array(a) => Value::Array(a.iter().map(canon).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), canon(v))).collect()),
        other => other.clone(),
    }
}

fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|x| (x["time"].as_str().unwrap().to_string(), x["type"].as_str().unwrap().to_string()));
    v.iter().map(canon).collect()
}

struct Case {
    name: String,
    ours: devices::import::Inspection,
    expected: Vec<Value>,
}

fn tidepool_case(rel: &str) -> Option<Case> {
    let dir = u::dir()?.join("carelink-csv/tidepool-uploader").join(rel);
    let input = ["input.csv", "old.csv"].iter().map(|f| dir.join(f)).find(|p| p.is_file()).unwrap();
    let bytes = std::fs::read(&input).unwrap();
    assert_eq!(detect(&bytes, None), Some(Format::CarelinkCsv), "{rel}");
    let ours = inspect_bytes(&bytes, Some("input.csv")).unwrap();
    assert!(ours.rejected.is_empty(), "{rel}: {:?}", ours.rejected);
    let expected: Vec<Value> =
        serde_json::from_slice(&std::fs::read(dir.join("EXPECTED.output.json")).unwrap()).unwrap();
    Some(Case { name: rel.to_string(), ours, expected })
}

/// Runs one scenario: the essentials must be equal; extra carbs records must mirror the wizards.
fn check_tidepool(rel: &str) {
    // The settings/withChanges expectation holds no `cbg` for the file's one GlucoseSensorData
    // row (that test of Tidepool's compared the settings): ours is not compared there.
    let ignore: &[&str] = if rel == "settings/withChanges" { &["cgm"] } else { &[] };
    let Some(case) = tidepool_case(rel) else {
        return;
    };
    let want = sorted(case.expected.iter().filter_map(tidepool_essentials).collect());
    let got = sorted(
        case.ours.records.iter().filter(|r| !ignore.contains(&r.type_name())).filter_map(our_essentials).collect(),
    );
    assert_eq!(got, want, "{}", case.name);
    // Each wizard with carbs has a carbs record at its time, with the same grams.
    for w in u::of_type(&case.ours, "bolus_wizard") {
        let RecordKind::BolusWizard(wz) = &w.kind else { unreachable!() };
        if let Some(g) = wz.carbs_g.filter(|g| *g > 0.0) {
            assert!(
                case.ours
                    .records
                    .iter()
                    .any(|r| r.device_time == w.device_time && r.kind == RecordKind::Carbs { grams: g }),
                "{}: carbs for the wizard at {}",
                case.name,
                w.device_time
            );
        }
    }
    // Every record Tidepool emitted for this device is tied to a device we announced.
    assert_eq!(case.ours.device.model.as_deref(), case.expected[0]["deviceId"].as_str().unwrap().split("-=-").next());
}

#[test]
fn tidepool_basal_scheduled() {
    check_tidepool("basal/scheduled/normal");
}

#[test]
fn tidepool_basal_temp_rate() {
    check_tidepool("basal/temp/rate");
}

#[test]
fn tidepool_bolus_normal() {
    check_tidepool("bolus/normal/noWizard");
}

#[test]
fn tidepool_bolus_normal_interrupted() {
    // programmed 0.9, delivered 0.725 (Tidepool: expectedNormal 0.9, normal 0.725).
    check_tidepool("bolus/normal/noWizardInterrupted");
}

#[test]
fn tidepool_bolus_normal_with_wizard() {
    check_tidepool("bolus/normal/withWizard");
}

#[test]
fn tidepool_bolus_normal_with_override() {
    // The user delivered 2 U over a 1.15 U estimate; 16 UnabsorbedInsulin rows in between.
    check_tidepool("bolus/normal/withOverride");
}

#[test]
fn tidepool_bolus_square() {
    check_tidepool("bolus/square/noWizard");
}

#[test]
fn tidepool_bolus_square_with_wizard() {
    check_tidepool("bolus/square/withWizard");
}

#[test]
fn tidepool_bolus_dual() {
    // Normal and square parts two minutes apart: one dual bolus at the normal part's time.
    check_tidepool("bolus/dual/noWizard");
}

#[test]
fn tidepool_bolus_dual_without_normal_part() {
    check_tidepool("bolus/dual/noWizardNoNormal");
}

#[test]
fn tidepool_bolus_dual_with_wizard() {
    check_tidepool("bolus/dual/withWizard");
}

#[test]
fn tidepool_bolus_dual_with_wizard_without_normal_part() {
    // A 0 % normal dual-wave: the square part alone, a `square` bolus, as in Tidepool.
    check_tidepool("bolus/dual/withWizardNoNormal");
}

#[test]
fn tidepool_bolus_dual_with_wizard_out_of_sequence() {
    check_tidepool("bolus/dual/withWizardOutOfSequence");
    let Some(case) = tidepool_case("bolus/dual/withWizardOutOfSequence") else {
        return;
    };
    // The low-reservoir journal entry between the parts is kept as an alarm.
    assert_eq!(u::counts(&case.ours)["alarm"], 1);
}

#[test]
fn tidepool_bolus_dual_with_several_estimates() {
    // Three identical estimates 18:59:10, :17, :37 and one bolus at :38: only the last estimate
    // belongs to it (the others were backed out of), as in Tidepool. The `Date` column says 2013
    // where `Timestamp` says 2014; the Timestamp wins.
    check_tidepool("bolus/dual/withMultiWizardOutOfSequence");
}

#[test]
fn tidepool_bolus_22_series() {
    for rel in [
        "bolus/22-series/dual/withWizard",
        "bolus/22-series/normal/noWizard",
        "bolus/22-series/normal/withWizard",
        "bolus/22-series/square/withWizard",
    ] {
        check_tidepool(rel);
    }
}

#[test]
fn tidepool_cbg() {
    check_tidepool("cbg");
}

#[test]
fn tidepool_smbg() {
    // BGReceived + BGCapturedOnPump of one fingerstick: one record; "paradigm link modified"
    // and pump-entered readings are manual.
    check_tidepool("smbg");
}

fn settings_of(ins: &devices::import::Inspection) -> Vec<(String, serde_json::Map<String, Value>)> {
    ins.records
        .iter()
        .filter_map(|r| match &r.kind {
            RecordKind::Settings { values } => Some((r.device_time.to_string(), values.clone())),
            _ => None,
        })
        .collect()
}

/// Tidepool's pumpSettings in our shape.
fn tidepool_settings(e: &Value) -> Value {
    let sched = |a: &Value| -> Value {
        Value::Array(
            a.as_array()
                .unwrap()
                .iter()
                .map(|x| json!({"start_min": x["start"].as_f64().unwrap() / 60000.0, "rate_u_h": x["rate"]}))
                .collect(),
        )
    };
    let basal: serde_json::Map<String, Value> =
        e["basalSchedules"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), sched(v))).collect();
    let list = |key: &str, f: &dyn Fn(&Value) -> Value| -> Value {
        Value::Array(e[key].as_array().unwrap().iter().map(f).collect())
    };
    canon(&json!({
        "active_schedule": e["activeSchedule"],
        "basal_schedules": basal,
        "bg_targets": list("bgTarget", &|x| json!({"start_min": x["start"].as_f64().unwrap() / 60000.0, "low_mg_dl": x["low"], "high_mg_dl": x["high"]})),
        "carb_ratios": list("carbRatio", &|x| json!({"start_min": x["start"].as_f64().unwrap() / 60000.0, "g_per_u": x["amount"]})),
        "sensitivities": list("insulinSensitivity", &|x| json!({"start_min": x["start"].as_f64().unwrap() / 60000.0, "mg_dl_per_u": x["amount"]})),
        "units": e["units"],
    }))
}

fn pick(m: &serde_json::Map<String, Value>, keys: &[&str]) -> Value {
    canon(&Value::Object(keys.iter().filter_map(|k| m.get(*k).map(|v| (k.to_string(), v.clone()))).collect()))
}

#[test]
fn tidepool_settings_no_changes() {
    check_tidepool("settings/noChanges");
    let Some(case) = tidepool_case("settings/noChanges") else {
        return;
    };
    let s = settings_of(&case.ours);
    assert_eq!(s.len(), 1);
    let (time, values) = &s[0];
    // Deliberate difference: the snapshot is at the upload time it was read at (Tidepool dates
    // it back to the first datum of the file, 2014-03-13T00:00:00).
    assert_eq!(time, "2014-03-15T22:21:19");
    assert_eq!(values["kind"], "snapshot");
    let keys = ["active_schedule", "basal_schedules", "bg_targets", "carb_ratios", "sensitivities", "units"];
    let expected = case.expected.iter().find(|e| e["type"] == "pumpSettings").unwrap();
    assert_eq!(pick(values, &keys), tidepool_settings(expected));
}

#[test]
fn tidepool_settings_with_changes() {
    check_tidepool("settings/withChanges");
    let Some(case) = tidepool_case("settings/withChanges") else {
        return;
    };
    let s = settings_of(&case.ours);
    let at = |t: &str| -> &serde_json::Map<String, Value> {
        &s.iter().find(|(time, _)| time == t).unwrap_or_else(|| panic!("no settings record at {t}")).1
    };
    let exp: Vec<Value> = case.expected.iter().filter(|e| e["type"] == "pumpSettings").map(tidepool_settings).collect();
    let times: Vec<&str> = case
        .expected
        .iter()
        .filter(|e| e["type"] == "pumpSettings")
        .map(|e| e["deviceTime"].as_str().unwrap())
        .collect();
    assert_eq!(
        times,
        [
            "2014-03-13T11:51:05",
            "2014-03-14T01:01:27",
            "2014-03-14T01:02:02",
            "2014-03-14T01:03:59",
            "2014-03-14T01:08:07",
            "2014-03-14T11:51:05"
        ]
    );
    // Each change carries the values Tidepool's reconstruction shows from that time on.
    assert_eq!(canon(&at("2014-03-14T01:01:27")["basal_schedules"]["standard"]), exp[1]["basal_schedules"]["standard"]);
    assert_eq!(
        canon(&at("2014-03-14T01:02:02")["basal_schedules"]["pattern a"]),
        exp[2]["basal_schedules"]["pattern a"]
    );
    assert_eq!(
        canon(&at("2014-03-14T01:03:59")["basal_schedules"]["pattern a"]),
        exp[3]["basal_schedules"]["pattern a"]
    );
    let wiz = ["bg_targets", "carb_ratios", "sensitivities"];
    assert_eq!(pick(at("2014-03-14T01:08:07"), &wiz), pick(exp[4].as_object().unwrap(), &wiz));
    assert_eq!(at("2014-03-14T11:51:05")["active_schedule"], exp[5]["active_schedule"]);
    // Deliberate difference: at 2014-03-13T11:51:05 the pump switched to `standard`
    // (PATTERN_NAME=standard, OLD_PATTERN_NAME=pattern a); Tidepool's backwards reconstruction
    // labels that instant with the pattern before the switch.
    assert_eq!(at("2014-03-13T11:51:05")["active_schedule"], "standard");
    assert_eq!(exp[0]["active_schedule"], "pattern a");
    // The snapshot read at upload equals Tidepool's final state.
    let snap = at("2014-03-14T22:21:19");
    assert_eq!(snap["kind"], "snapshot");
    let keys = ["active_schedule", "basal_schedules", "bg_targets", "carb_ratios", "sensitivities", "units"];
    assert_eq!(pick(snap, &keys), exp[5]);
}

#[test]
fn every_tidepool_scenario_is_covered() {
    let Some(dir) = u::dir() else { return };
    let root = dir.join("carelink-csv/tidepool-uploader");
    let mut found = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() == "EXPECTED.output.json" {
                found.push(p.parent().unwrap().strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    found.sort();
    // 22 scenarios, all checked by the tests above.
    assert_eq!(found.len(), 22, "{found:?}");
    for f in &found {
        check_tidepool(f);
    }
}

// ---------------------------------------------------------------------------------------------
// Synthetic edge cases.

const NEW_HEADER: &str = "Index;Date;Time;New Device Time;BG Reading (mmol/L);Linked BG Meter ID;Basal Rate (U/h);Temp Basal Amount;Temp Basal Type;Temp Basal Duration (h:mm:ss);Bolus Type;Bolus Volume Selected (U);Bolus Volume Delivered (U);Bolus Duration (h:mm:ss);Prime Type;Prime Volume Delivered (U);Alarm;Suspend;Rewind;BWZ Estimate (U);BWZ Target High BG (mmol/L);BWZ Target Low BG (mmol/L);BWZ Carb Ratio (g/U);BWZ Insulin Sensitivity (mmol/L/U);BWZ Carb Input (grams);BWZ BG Input (mmol/L);BWZ Correction Estimate (U);BWZ Food Estimate (U);BWZ Active Insulin (U);BWZ Status;Sensor Calibration BG (mmol/L);Sensor Glucose (mmol/L);ISIG Value;Event Marker";

/// A row of the newer layout from `(column, value)` pairs.
fn new_row(index: u32, date: &str, time: &str, cells: &[(&str, &str)]) -> String {
    let names: Vec<&str> = NEW_HEADER.split(';').collect();
    let mut row = vec![String::new(); names.len()];
    row[0] = format!("{index},00000");
    row[1] = date.into();
    row[2] = time.into();
    for (k, v) in cells {
        let i = names.iter().position(|n| n == k).unwrap_or_else(|| panic!("no column {k}"));
        row[i] = v.to_string();
    }
    row.join(";")
}

fn newer_layout_file() -> String {
    let mut s = String::from("Last Name;First Name;Patient ID;System ID;Start Date;End Date;Device;MiniMed 640G\r\n");
    s += "\"Doe\";\"Jane\";\"\";\"\";\"01.05.2021 00:00:00\";\"25.07.2021 23:59:59\";\"Serial Number\";NG1234567H\r\n\r\n";
    s += "-------;MiniMed 640G;Pump;NG1234567H;-------\r\n";
    s += NEW_HEADER;
    s += "\r\n";
    let rows = [
        new_row(1, "2021/07/25", "12:00:00", &[("Sensor Glucose (mmol/L)", "5,5")]),
        new_row(2, "2021/07/25", "12:01:00", &[("BG Reading (mmol/L)", "6,1"), ("Linked BG Meter ID", "BC1234")]),
        new_row(
            3,
            "2021/07/25",
            "12:02:00",
            &[
                ("BWZ Estimate (U)", "3,5"),
                ("BWZ Target High BG (mmol/L)", "6,0"),
                ("BWZ Target Low BG (mmol/L)", "5,0"),
                ("BWZ Carb Ratio (g/U)", "10,0"),
                ("BWZ Insulin Sensitivity (mmol/L/U)", "2,5"),
                ("BWZ Carb Input (grams)", "30"),
                ("BWZ BG Input (mmol/L)", "6,1"),
                ("BWZ Correction Estimate (U)", "0,5"),
                ("BWZ Food Estimate (U)", "3,0"),
                ("BWZ Active Insulin (U)", "0,0"),
                ("BWZ Status", "Delivered"),
            ],
        ),
        new_row(
            4,
            "2021/07/25",
            "12:02:05",
            &[
                ("Bolus Type", "Dual (normal part)"),
                ("Bolus Volume Selected (U)", "2,0"),
                ("Bolus Volume Delivered (U)", "2,0"),
            ],
        ),
        new_row(
            5,
            "2021/07/25",
            "12:02:05",
            &[
                ("Bolus Type", "Dual (square part)"),
                ("Bolus Volume Selected (U)", "1,5"),
                ("Bolus Volume Delivered (U)", "0,75"),
                ("Bolus Duration (h:mm:ss)", "1:00:00"),
            ],
        ),
        new_row(
            6,
            "2021/07/25",
            "12:30:00",
            &[
                ("Temp Basal Amount", "80"),
                ("Temp Basal Type", "Percent"),
                ("Temp Basal Duration (h:mm:ss)", "2:00:00"),
            ],
        ),
        new_row(7, "2021/07/25", "13:00:00", &[("Basal Rate (U/h)", "0,825")]),
        new_row(8, "2021/07/25", "13:10:00", &[("Suspend", "USER_SUSPEND")]),
        new_row(9, "2021/07/25", "13:20:00", &[("Suspend", "NORMAL_PUMPING")]),
        new_row(10, "2021/07/25", "13:30:00", &[("Rewind", "Rewind")]),
        new_row(11, "2021/07/25", "13:31:00", &[("Prime Type", "Manual"), ("Prime Volume Delivered (U)", "8,4")]),
        new_row(12, "2021/07/25", "13:32:00", &[("Prime Type", "Fixed"), ("Prime Volume Delivered (U)", "0,3")]),
        new_row(13, "2021/07/25", "14:00:00", &[("Sensor Glucose (mmol/L)", "99,9")]),
        new_row(14, "2021/13/25", "14:05:00", &[("Sensor Glucose (mmol/L)", "5,5")]),
        new_row(15, "2021/07/25", "14:10:00", &[("Sensor Calibration BG (mmol/L)", "7,0")]),
        new_row(16, "2021/07/25", "14:20:00", &[("New Device Time", "2021/07/25 15:20:00")]),
        new_row(17, "2021/07/25", "14:30:00", &[("Event Marker", "Meal: 45,00grams")]),
    ];
    for r in rows {
        s += &r;
        s += "\r\n";
    }
    s
}

#[test]
fn newer_layout_with_mmol_and_decimal_commas() {
    let file = newer_layout_file();
    assert_eq!(detect(file.as_bytes(), None), Some(Format::CarelinkCsv));
    let ins = inspect_bytes(file.as_bytes(), Some("pump.csv")).unwrap();
    assert_eq!(ins.device.model.as_deref(), Some("MiniMed 640G"));
    assert_eq!(ins.device.serial.as_deref(), Some("NG1234567H"));
    let got: Vec<Value> = ins.records.iter().map(|r| serde_json::to_value(r).unwrap()).collect();
    let expected = [
        json!({"type": "cgm", "value_mg_dl": 99, "device_time": "2021-07-25T12:00:00"}),
        json!({"type": "bg", "value_mg_dl": 110, "source": "linked_meter", "device_time": "2021-07-25T12:01:00"}),
        json!({"type": "temp_basal", "percent": 80, "duration_min": 120, "device_time": "2021-07-25T12:30:00"}),
        json!({"type": "basal_profile_start", "rate_u_h": 0.825, "device_time": "2021-07-25T13:00:00"}),
        json!({"type": "suspend", "device_time": "2021-07-25T13:10:00"}),
        json!({"type": "resume", "device_time": "2021-07-25T13:20:00"}),
        json!({"type": "rewind", "device_time": "2021-07-25T13:30:00"}),
        json!({"type": "prime", "units": 8.4, "kind": "manual", "device_time": "2021-07-25T13:31:00"}),
        json!({"type": "prime", "units": 0.3, "kind": "fixed", "device_time": "2021-07-25T13:32:00"}),
        json!({"type": "bg", "value_mg_dl": 126, "source": "calibration", "device_time": "2021-07-25T14:10:00"}),
        json!({"type": "time_change", "from": "2021-07-25T14:20:00", "to": "2021-07-25T15:20:00", "device_time": "2021-07-25T14:20:00"}),
        json!({"type": "carbs", "grams": 45.0, "device_time": "2021-07-25T14:30:00"}),
        // The held bolus parts and estimate come out once 15 minutes of rows have passed.
    ];
    let held = |v: &Value| {
        ["bolus", "bolus_wizard"].contains(&v["type"].as_str().unwrap()) || (v["type"] == "carbs" && v["grams"] == 30.0)
    };
    let without_bolus: Vec<Value> = got.iter().filter(|v| !held(v)).cloned().collect();
    assert_eq!(without_bolus, expected);
    let bolus = got.iter().find(|v| v["type"] == "bolus").unwrap();
    // 2 U normal + 0.75 of 1.5 U square (interrupted halfway: 30 of 60 minutes).
    assert_eq!(
        bolus,
        &json!({"type": "bolus", "subtype": "dual", "programmed_u": 3.5, "delivered_u": 2.75, "duration_min": 30,
                "normal_programmed_u": 2.0, "normal_delivered_u": 2.0, "extended_programmed_u": 1.5,
                "extended_delivered_u": 0.75, "extended_duration_min": 30, "device_time": "2021-07-25T12:02:05"})
    );
    let wizard = got.iter().find(|v| v["type"] == "bolus_wizard").unwrap();
    assert_eq!(
        wizard,
        &json!({"type": "bolus_wizard", "carbs_g": 30.0, "bg_mg_dl": 110, "carb_ratio_g_per_u": 10.0,
                "sensitivity_mg_dl_per_u": 45.0455, "target_low_mg_dl": 90, "target_high_mg_dl": 108,
                "food_estimate_u": 3.0, "correction_estimate_u": 0.5, "active_insulin_u": 0.0, "total_estimate_u": 3.5,
                "device_time": "2021-07-25T12:02:00"})
    );
    assert!(got.iter().any(|v| v == &json!({"type": "carbs", "grams": 30.0, "device_time": "2021-07-25T12:02:00"})));
    // Bad rows are rejected with their line and column; the import goes on.
    let rej: Vec<(u64, Option<&str>)> = ins.rejected.iter().map(|r| (r.line, r.field.as_deref())).collect();
    assert_eq!(rej, [(18, Some("Sensor Glucose")), (19, Some("Date"))]);
    assert!(ins.rejected[0].reason.contains("outside"), "{}", ins.rejected[0].reason);
    let j = ins.to_json("pump.csv");
    assert_eq!(j["rejected"][0]["where"], "pump.csv:18");
    assert!(j["rejected"][0]["reason"].as_str().unwrap().starts_with("Sensor Glucose: 99.9 mmol/L"));
    assert_eq!(
        j["source"],
        json!({"format": "carelink_csv", "device": {"manufacturer": "Medtronic", "model": "MiniMed 640G", "serial": "NG1234567H"}})
    );
}

#[test]
fn utf16_and_windows_1252_exports() {
    let file = newer_layout_file().replace("MiniMed 640G", "MiniMed 640G Größe");
    // UTF-16LE with BOM.
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in file.encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    assert_eq!(detect(&utf16, None), Some(Format::CarelinkCsv));
    let a = inspect_bytes(&utf16, None).unwrap();
    let b = inspect_bytes(file.as_bytes(), None).unwrap();
    assert_eq!(a.records, b.records);
    assert_eq!(a.device.model.as_deref(), Some("MiniMed 640G Größe"));
    // Windows-1252 bytes in a field.
    // Every character of this file is in Latin-1, so `as u8` is its Windows-1252 byte.
    let latin: Vec<u8> = file.chars().map(|c| c as u32 as u8).collect();
    assert!(latin.contains(&0xDF));
    let c = inspect_bytes(&latin, None).unwrap();
    assert_eq!(c.device.model.as_deref(), Some("MiniMed 640G Größe"));
    assert_eq!(c.records, b.records);
}

#[test]
fn reads_from_a_trickling_reader_the_same() {
    struct OneByte<'a>(&'a [u8]);
    impl std::io::Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }
    let file = newer_layout_file();
    let all: Vec<Item> = import(file.as_bytes(), Format::CarelinkCsv).unwrap().collect();
    let trickled: Vec<Item> = import(OneByte(file.as_bytes()), Format::CarelinkCsv).unwrap().collect();
    assert_eq!(all, trickled);
    assert!(matches!(all[0], Item::Device(_)));
}

#[test]
fn header_is_required() {
    let e = import(&b"Name,Fred\nSomething,else\n"[..], Format::CarelinkCsv).unwrap_err();
    assert!(e.to_string().contains("header"), "{e}");
}

/// Parsing speed on real CareLink exports (≥ 500,000 rows/s required; asserted in release
/// builds, printed always: `cargo test --release -p devices --test import_carelink throughput -- --nocapture`).
#[test]
fn throughput() {
    let Some(dir) = u::dir() else { return };
    for rel in [DECOCARE, GUARDIAN] {
        let bytes = std::fs::read(Path::new(&dir).join(rel)).unwrap();
        let rows = bytes.iter().filter(|&&b| b == b'\n').count();
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let n = import(&bytes[..], Format::CarelinkCsv).unwrap().count();
            best = best.min(t.elapsed().as_secs_f64());
            assert!(n > 1000);
        }
        let rate = rows as f64 / best;
        println!("{rel}: {rows} rows in {:.1} ms: {:.0} rows/s", best * 1e3, rate);
        #[cfg(not(debug_assertions))]
        assert!(rate >= 500_000.0, "{rel}: {rate:.0} rows/s");
    }
}
