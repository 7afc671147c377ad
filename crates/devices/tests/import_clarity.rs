//! Dexcom Clarity CSV importer on the shared fixture (vs peer CGM metrics) and edge cases.
#![allow(clippy::unwrap_used)]

mod import_util;

use devices::import::{Format, detect, inspect_bytes};
use import_util as u;
use serde_json::json;
use therapy::RecordKind;
use therapy::record::OutOfRange;

const FILE: &str = "dexcom-clarity-csv/glucosedao-synthetic/Clarity_Export_synthetic.csv";

#[test]
fn clarity_export_matches_peer_cgm_metrics() {
    let Some(ins) = u::inspect(FILE) else { return };
    assert_eq!(ins.format, Format::DexcomClarityCsv);
    assert!(ins.rejected.is_empty(), "{:?}", ins.rejected);
    assert_eq!(ins.device.manufacturer.as_deref(), Some("Dexcom"));
    assert_eq!(ins.device.model.as_deref(), Some("Dexcom G6 Mobile App"));
    // 3,917 numeric EGVs (what the peer counted) and 5 `Low` stored at 39 and flagged: the
    // peer excluded them, we keep them so that reports count the lows.
    u::assert_matches_peer(&ins, "dexcom-clarity-csv/glucosedao-synthetic/PEER_METRICS.json", 5);
    let lows: Vec<_> = ins
        .records
        .iter()
        .filter_map(|r| match r.kind {
            RecordKind::Cgm { value_mg_dl, out_of_range: Some(o), .. } => {
                Some((r.device_time.to_string(), value_mg_dl, o))
            }
            _ => None,
        })
        .collect();
    assert_eq!(lows.len(), 5);
    assert_eq!(lows[0], ("1961-04-17T04:17:00".to_string(), 39, OutOfRange::Below));
    let c = u::counts(&ins);
    assert_eq!(c["cgm"], 3922);
    // 33 fast-acting doses → boluses; 14 long-acting → notes.
    assert_eq!(c["bolus"], 33);
    assert_eq!(c["note"], 14);
    assert_eq!(
        serde_json::to_value(&ins.records[0]).unwrap(),
        json!({"type": "cgm", "value_mg_dl": 144, "device_time": "1961-04-12T00:56:47"})
    );
    let last = ins.records.last().unwrap();
    assert_eq!(
        serde_json::to_value(last).unwrap(),
        json!({"type": "cgm", "value_mg_dl": 101, "device_time": "1961-04-25T18:52:23"})
    );
    let long = u::of_type(&ins, "note")[0];
    assert_eq!(
        serde_json::to_value(long).unwrap(),
        json!({"type": "note", "text": "Long-Acting insulin: 27 U", "device_time": "1961-04-12T06:30:00"})
    );
    // Names in the file are not output.
    assert!(!serde_json::to_string(&ins.to_json("c.csv")).unwrap().contains("Gagarin"));
}

const HEADER: &str = "Index,Timestamp (YYYY-MM-DDThh:mm:ss),Event Type,Event Subtype,Patient Info,Device Info,Source Device ID,Glucose Value (mmol/L),Insulin Value (u),Carb Value (grams),Duration (hh:mm:ss),Glucose Rate of Change (mmol/L/min),Transmitter Time (Long Integer),Transmitter ID";

#[test]
fn clarity_mmol_high_events_and_bad_rows() {
    let file = format!(
        "{HEADER}\r\n\
         1,,Device,,,G7 Receiver,PG12345678,,,,,,,\r\n\
         2,2024-03-01T08:00:00,EGV,,,,PG12345678,5.5,,,,0.05,1000,ABC\r\n\
         3,2024-03-01T08:05:00,EGV,,,,PG12345678,High,,,,,1300,ABC\r\n\
         4,2024-03-01T08:10:00,EGV,,,,PG12345678,6.0,,,,-0.07,1600,ABC\r\n\
         5,2024-03-01T08:15:00,Calibration,,,,PG12345678,6.1,,,,,,\r\n\
         6,2024-03-01T08:20:00,Carbs,,,,PG12345678,,,45,,,,\r\n\
         7,2024-03-01T08:21:00,Insulin,Fast-Acting,,,PG12345678,,4.5,,,,,\r\n\
         8,2024-03-01T08:25:00,EGV,,,,PG12345678,abc,,,,,1900,ABC\r\n\
         9,2024-13-01T08:30:00,EGV,,,,PG12345678,5.0,,,,,2200,ABC\r\n\
         10,2024-03-01T08:35:00,Exercise,Medium,,,PG12345678,,,,0:30:00,,,\r\n"
    );
    assert_eq!(detect(file.as_bytes(), None), Some(Format::DexcomClarityCsv));
    let ins = inspect_bytes(file.as_bytes(), Some("c.csv")).unwrap();
    assert_eq!(ins.device.serial.as_deref(), Some("PG12345678"));
    let got: Vec<_> = ins.records.iter().map(|r| serde_json::to_value(r).unwrap()).collect();
    assert_eq!(
        got,
        [
            json!({"type": "cgm", "value_mg_dl": 99, "trend": "flat", "device_time": "2024-03-01T08:00:00"}),
            json!({"type": "cgm", "value_mg_dl": 401, "out_of_range": "above", "device_time": "2024-03-01T08:05:00"}),
            json!({"type": "cgm", "value_mg_dl": 108, "trend": "forty_five_down", "device_time": "2024-03-01T08:10:00"}),
            json!({"type": "bg", "value_mg_dl": 110, "source": "calibration", "device_time": "2024-03-01T08:15:00"}),
            json!({"type": "carbs", "grams": 45.0, "device_time": "2024-03-01T08:20:00"}),
            json!({"type": "bolus", "subtype": "normal", "delivered_u": 4.5, "device_time": "2024-03-01T08:21:00"}),
            json!({"type": "note", "text": "Exercise: Medium (0:30:00)", "device_time": "2024-03-01T08:35:00"}),
        ]
    );
    let rej: Vec<_> = ins.rejected.iter().map(|r| (r.line, r.field.clone().unwrap())).collect();
    assert_eq!(rej, [(9, "Glucose Value".to_string()), (10, "Timestamp".into())]);
}
