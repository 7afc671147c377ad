//! Nightscout JSON (entries, treatments, profiles) and entries CSV on the shared fixtures.
#![allow(clippy::unwrap_used)]

mod import_util;

use devices::import::{Format, Item, detect, import, inspect_bytes};
use import_util as u;
use serde_json::json;
use therapy::RecordKind;

const DIR: &str = "nightscout/glucosedao";

#[test]
fn entries_json_matches_peer_cgm_metrics() {
    let Some(ins) = u::inspect(&format!("{DIR}/nightscout_entries.json")) else {
        return;
    };
    assert_eq!(ins.format, Format::NightscoutJson);
    assert!(ins.rejected.is_empty(), "{:?}", ins.rejected);
    // Times as UTC (utcOffset is 0 here), as the peer took them.
    u::assert_matches_peer(&ins, &format!("{DIR}/PEER_METRICS.json"), 0);
    assert_eq!(ins.records.len(), 1000);
    assert_eq!(
        serde_json::to_value(&ins.records[0]).unwrap(),
        json!({"type": "cgm", "value_mg_dl": 162, "trend": "flat", "device_time": "2026-04-05T20:30:29",
               "time": "2026-04-05T20:30:29Z"})
    );
    // One entry has direction "NONE": no trend.
    let no_trend = ins.records.iter().filter(|r| matches!(r.kind, RecordKind::Cgm { trend: None, .. })).count();
    assert_eq!(no_trend, 1);
}

#[test]
fn entries_csv_equals_entries_json() {
    let (Some(json), Some(csv)) =
        (u::inspect(&format!("{DIR}/nightscout_entries.json")), u::inspect(&format!("{DIR}/nightscout_entries.csv")))
    else {
        return;
    };
    assert_eq!(csv.format, Format::NightscoutEntriesCsv);
    assert!(csv.rejected.is_empty(), "{:?}", csv.rejected);
    assert_eq!(csv.records, json.records);
}

#[test]
fn treatments_json() {
    let Some(ins) = u::inspect(&format!("{DIR}/nightscout_treatments.json")) else {
        return;
    };
    assert!(ins.rejected.is_empty(), "{:?}", ins.rejected);
    let c = u::counts(&ins);
    // 155 SMB + 18 Bolus; 9 Carb Correction; 342 Temp Basal; 462 Sensor Start;
    // 11 Temporary Target + 2 Site Change + 1 Insulin Change as notes.
    assert_eq!(c["bolus"], 173);
    assert_eq!(c["carbs"], 9);
    assert_eq!(c["temp_basal"], 342);
    assert_eq!(c["sensor_event"], 462);
    assert_eq!(c["note"], 14);
    assert_eq!(ins.records.len(), 1000);
    assert_eq!(
        serde_json::to_value(&ins.records[0]).unwrap(),
        json!({"type": "temp_basal", "rate_u_h": 0.0, "duration_min": 30, "device_time": "2026-04-05T20:16:02",
               "time": "2026-04-05T20:16:02.703Z"})
    );
    let carbs = u::of_type(&ins, "carbs")[0];
    assert_eq!(
        serde_json::to_value(carbs).unwrap(),
        json!({"type": "carbs", "grams": 25.0, "device_time": "2026-04-05T16:56:00", "time": "2026-04-05T16:56:00Z"})
    );
    let bolus = ins
        .records
        .iter()
        .find(|r| matches!(r.kind, RecordKind::Bolus { delivered_u: Some(d), .. } if d == 1.5))
        .unwrap();
    assert_eq!(bolus.device_time.to_string(), "2026-04-05T17:56:05");
}

#[test]
fn profile_json() {
    let Some(ins) = u::inspect(&format!("{DIR}/nightscout_profile.json")) else {
        return;
    };
    assert!(ins.rejected.is_empty(), "{:?}", ins.rejected);
    assert_eq!(ins.records.len(), 9);
    let RecordKind::Settings { values } = &ins.records[0].kind else { panic!() };
    // The profile's own zone (Europe/Moscow, UTC+3) gives the local time.
    assert_eq!(ins.records[0].device_time.to_string(), "2026-04-05T11:33:12");
    assert_eq!(values["kind"], "profile");
    assert_eq!(values["active_schedule"], "default");
    assert_eq!(values["basal_schedules"]["default"][1], json!({"start_min": 180, "rate_u_h": 1.3}));
    assert_eq!(values["carb_ratios"], json!([{"start_min": 0, "g_per_u": 10.0}]));
    // mmol/L profile: 8 mmol/L/U and a 7.5 mmol/L target in mg/dL.
    assert_eq!(values["sensitivities"][0]["mg_dl_per_u"], 144.1456);
    assert_eq!(values["bg_targets"][0], json!({"start_min": 0, "low_mg_dl": 135, "high_mg_dl": 135}));
    assert_eq!(values["insulin_action_min"], 360);
    assert_eq!(values["units"], json!({"bg": "mmol/L"}));
}

#[test]
fn ndjson_wrapped_and_bad_elements() {
    let text = concat!(
        "{\"type\":\"sgv\",\"sgv\":120,\"date\":1700000000000,\"direction\":\"SingleUp\",\"utcOffset\":60}\n",
        "{\"type\":\"sgv\",\"sgv\":5,\"date\":1700000300000}\n",
        "{\"type\":\"mbg\",\"mbg\":\"110\",\"dateString\":\"2023-11-14T22:20:00+01:00\"}\n",
        "{\"eventType\":\"Meal Bolus\",\"insulin\":3.5,\"carbs\":40,\"created_at\":\"2023-11-14T22:25:00Z\"}\n",
        "{\"eventType\":\"Temp Basal\",\"percent\":-30,\"duration\":60,\"created_at\":\"2023-11-14T22:30:00Z\"}\n",
        "{\"eventType\":\"BG Check\",\"glucose\":6.2,\"units\":\"mmol\",\"glucoseType\":\"Finger\",\"created_at\":\"2023-11-14T22:35:00Z\"}\n",
        "{\"eventType\":\"Note\",\"notes\":\"felt low\",\"created_at\":\"2023-11-14T22:40:00Z\"}\n",
        "{\"eventType\":\"Combo Bolus\",\"insulin\":2,\"enteredinsulin\":5,\"duration\":90,\"created_at\":\"2023-11-14T22:45:00Z\"}\n",
        "{\"eventType\":\"Note\"}\n",
        "{not json}\n",
        "{\"result\": [{\"type\":\"sgv\",\"sgv\":130,\"date\":1700001000000}]}\n",
    );
    assert_eq!(detect(text.as_bytes(), None), Some(Format::NightscoutJson));
    let ins = inspect_bytes(text.as_bytes(), Some("ns.json")).unwrap();
    let got: Vec<_> = ins.records.iter().map(|r| serde_json::to_value(r).unwrap()).collect();
    assert_eq!(
        got,
        [
            // utcOffset +60: local time one hour ahead of UTC.
            json!({"type": "cgm", "value_mg_dl": 120, "trend": "single_up", "device_time": "2023-11-14T23:13:20", "time": "2023-11-14T22:13:20Z"}),
            json!({"type": "bg", "value_mg_dl": 110, "source": "meter", "device_time": "2023-11-14T21:20:00", "time": "2023-11-14T21:20:00Z"}),
            json!({"type": "bolus", "subtype": "normal", "delivered_u": 3.5, "device_time": "2023-11-14T22:25:00", "time": "2023-11-14T22:25:00Z"}),
            json!({"type": "carbs", "grams": 40.0, "device_time": "2023-11-14T22:25:00", "time": "2023-11-14T22:25:00Z"}),
            json!({"type": "temp_basal", "percent": 70, "duration_min": 60, "device_time": "2023-11-14T22:30:00", "time": "2023-11-14T22:30:00Z"}),
            json!({"type": "bg", "value_mg_dl": 112, "source": "manual", "device_time": "2023-11-14T22:35:00", "time": "2023-11-14T22:35:00Z"}),
            json!({"type": "note", "text": "Note — felt low", "device_time": "2023-11-14T22:40:00", "time": "2023-11-14T22:40:00Z"}),
            json!({"type": "bolus", "subtype": "dual", "programmed_u": 5.0, "delivered_u": 5.0, "duration_min": 90,
                   "normal_programmed_u": 2.0, "normal_delivered_u": 2.0, "extended_programmed_u": 3.0,
                   "extended_delivered_u": 3.0, "extended_duration_min": 90,
                   "device_time": "2023-11-14T22:45:00", "time": "2023-11-14T22:45:00Z"}),
            json!({"type": "cgm", "value_mg_dl": 130, "device_time": "2023-11-14T22:30:00", "time": "2023-11-14T22:30:00Z"}),
        ]
    );
    let rej: Vec<_> = ins.rejected.iter().map(|r| (r.line, r.describe())).collect();
    assert_eq!(rej.len(), 3, "{rej:?}");
    assert_eq!(rej[0].0, 2);
    assert!(rej[0].1.contains("status code"), "{}", rej[0].1);
    assert_eq!(rej[1].0, 9);
    assert!(rej[1].1.contains("no time"), "{}", rej[1].1);
    assert_eq!(rej[2].0, 10);
    assert!(rej[2].1.contains("invalid JSON"), "{}", rej[2].1);
}

#[test]
fn pretty_printed_array_streams_element_by_element() {
    let text = "[\n  {\n    \"type\": \"sgv\",\n    \"sgv\": 100,\n    \"date\": 1700000000000\n  },\n  {\n    \"type\": \"sgv\",\n    \"sgv\": 1000,\n    \"date\": 1700000300000\n  }\n]\n";
    let items: Vec<Item> = import(text.as_bytes(), Format::NightscoutJson).unwrap().collect();
    assert_eq!(items.len(), 2);
    assert!(
        matches!(&items[0], Item::Record(r) if r.kind == RecordKind::Cgm { value_mg_dl: 100, trend: None, out_of_range: None })
    );
    // The second element starts on line 7.
    assert!(matches!(&items[1], Item::Rejected(r) if r.line == 7 && r.field.as_deref() == Some("sgv")));
    // An empty array is a valid, empty file.
    assert_eq!(inspect_bytes(b"[]", Some("x.json")).unwrap().records.len(), 0);
}

/// AndroidAPS marks a treatment it removed with `isValid: false`: it is not therapy.
#[test]
fn removed_treatments_are_skipped() {
    let text = r#"[{"eventType":"Correction Bolus","insulin":2.5,"created_at":"2024-03-01T10:00:00Z","isValid":false},
                   {"eventType":"Correction Bolus","insulin":1.5,"created_at":"2024-03-01T11:00:00Z","isValid":true},
                   {"eventType":"Carb Correction","carbs":12,"created_at":"2024-03-01T12:00:00Z"}]"#;
    let ins = inspect_bytes(text.as_bytes(), Some("t.json")).unwrap();
    assert!(ins.rejected.is_empty(), "{:?}", ins.rejected);
    let kinds: Vec<_> = ins.records.iter().map(|r| serde_json::to_value(r).unwrap()).collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert_eq!(kinds[0]["delivered_u"], json!(1.5));
    assert_eq!(kinds[1]["grams"], json!(12.0));
}
