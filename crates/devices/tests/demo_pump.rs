//! The demo data set written into a simulated MiniMed 754 and read back with the real driver:
//! what the server decodes from the dump is the demo data as a pump holds it (see
//! `devices::minimed::demo_pump`): every day of the 90 on the pages, the same boluses, BGs,
//! basal and CGM readings (even mg/dL), and the demo's schedules in the settings record.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use devices::demo::{DemoConfig, generate};
use devices::minimed::demo_pump::{DEMO_SERIAL, demo_scenario, read_demo_pump};
use devices::minimed::simulator::{GLUCOSE_PAGES_KEPT, HISTORY_PAGES_KEPT};
use std::collections::BTreeMap;
use therapy::record::{Record, RecordKind};

fn clock() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 12, 3).unwrap().and_hms_opt(14, 3, 20).unwrap()
}

fn utc() -> DateTime<Utc> {
    // Berlin is UTC+1 in December: the pump runs 3 min 20 s fast.
    "2026-12-03T13:00:00Z".parse().unwrap()
}

fn cfg() -> DemoConfig {
    DemoConfig::new(42, 90, NaiveDate::from_ymd_opt(2026, 12, 3).unwrap())
}

fn counts(records: &[Record]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for r in records {
        *m.entry(r.kind.type_name()).or_default() += 1;
    }
    m
}

#[test]
fn the_demo_pump_reads_back_as_the_demo_data() {
    let demo: Vec<Record> = generate(&cfg()).records.into_iter().filter(|r| r.device_time.0 <= clock()).collect();
    let encoded = demo_scenario(&cfg(), clock()).unwrap();
    // 90 days fit in what a pump keeps: nothing is lost to the page limits.
    assert!(
        encoded.scenario.history_pages.len() < HISTORY_PAGES_KEPT,
        "{} history pages",
        encoded.scenario.history_pages.len()
    );
    assert!(
        encoded.scenario.glucose_pages.len() < GLUCOSE_PAGES_KEPT,
        "{} CGM pages",
        encoded.scenario.glucose_pages.len()
    );
    assert!(
        encoded.left_out.keys().all(|k| ["after the clock", "settings", "note"].contains(k)),
        "{:?}",
        encoded.left_out
    );

    let dump = read_demo_pump(&cfg(), clock(), utc()).unwrap();
    assert_eq!(dump.device.serial, DEMO_SERIAL);
    let zone: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
    assert_eq!(dump.clock_offset_s(zone), Some(200));
    let decoded = dump.decode().unwrap();
    assert!(decoded.rejected.is_empty(), "{:?}", decoded.rejected);
    let got = counts(&decoded.records);
    let want = counts(&demo);
    for kind in [
        "cgm",
        "bolus",
        "basal_profile_start",
        "temp_basal",
        "suspend",
        "resume",
        "rewind",
        "prime",
        "alarm",
        "daily_total",
        "bolus_wizard",
    ] {
        assert_eq!(got.get(kind), want.get(kind), "{kind}: {got:?} against {want:?}");
    }
    // Every carb entry comes back: from its wizard, or as a meal marker.
    assert_eq!(got.get("carbs"), want.get("carbs"));
    assert_eq!(got.get("bg"), want.get("bg"));
    assert_eq!(got.get("settings"), Some(&1));

    // The same first and last CGM reading times; values even and within 1 mg/dL.
    let cgm = |rs: &[Record]| -> Vec<(NaiveDateTime, u16)> {
        rs.iter()
            .filter_map(|r| match r.kind {
                RecordKind::Cgm { value_mg_dl, .. } => Some((r.device_time.0, value_mg_dl)),
                _ => None,
            })
            .collect()
    };
    let (a, b) = (cgm(&demo), cgm(&decoded.records));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.0, y.0);
        assert!(y.1 % 2 == 0 && y.1.abs_diff(x.1) <= 1, "{x:?} → {y:?}");
    }
    // Insulin: bolus totals agree to the stroke.
    let bolus_total = |rs: &[Record]| -> f64 {
        rs.iter()
            .filter_map(|r| match r.kind {
                RecordKind::Bolus { delivered_u, .. } => delivered_u,
                _ => None,
            })
            .sum()
    };
    assert!((bolus_total(&demo) - bolus_total(&decoded.records)).abs() < 1e-6 * demo.len() as f64);

    // The settings record states the demo's schedules, at the pump's clock.
    let s = decoded.records.iter().find(|r| r.kind.type_name() == "settings").unwrap();
    assert_eq!(s.device_time.0, clock());
    let v = serde_json::to_value(&s.kind).unwrap();
    assert_eq!(v["insulin_action_min"], 180, "{v}");
    assert_eq!(v["basal_schedules"]["standard"].as_array().unwrap().len(), 5, "{v}");
    assert_eq!(v["carb_ratios"].as_array().unwrap().len(), 3, "{v}");
}
