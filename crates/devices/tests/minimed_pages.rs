//! MiniMed history and CGM page decoding against the shared fixtures
//! (`../shared/fixtures/minimed-pages/`, see its SOURCES.md): every page's CRC; every decode
//! the fixtures' EXPECTED files state (types, timestamps, amounts); the CGM times against the
//! CareLink export of the same pump; the normalised records against the CareLink importer;
//! and property tests that no input panics.
//!
//! Where our decode deliberately differs from a reference's expected output, the test states
//! the difference exactly (see `decocare_history_pages_match_decocare` and
//! `decocare_cgm_page_matches_decocare_and_carelink`).
#![allow(clippy::unwrap_used)]

mod import_util;

use chrono::{NaiveDate, NaiveDateTime};
use devices::import::{Format, Item, import};
use devices::minimed::glucose::{
    self, GlucoseData, SensorCalKind, SensorStatusKind, SensorSyncKind, SensorTimestampKind, decode_glucose_page,
};
use devices::minimed::history::{
    self, BolusType, EventData, HistoryPage, PumpEvent, TempBasalRate, TimelineEnd, decode_history, decode_history_page,
};
use devices::minimed::records::{glucose_records, history_records};
use devices::minimed::{PAGE_DATA_LEN, PAGE_LEN, PageError, PumpModel, crc, page_data};
use proptest::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;
use therapy::{BgSource, BolusSubtype, RecordKind};

const DIR: &str = "minimed-pages";

fn model(n: &str) -> PumpModel {
    n.parse().unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

/// A fixture page: `.data` as is, `.hex` decoded. `None` when the fixtures are absent (skip).
fn page(rel: &str) -> Option<Vec<u8>> {
    let b = import_util::read(&format!("{DIR}/{rel}"))?;
    Some(if rel.ends_with(".hex") { unhex(std::str::from_utf8(&b).unwrap()) } else { b })
}

fn expected(rel: &str) -> Option<Value> {
    import_util::peer(&format!("{DIR}/{rel}"))
}

fn t(s: &str) -> NaiveDateTime {
    let s = if s.len() == 16 { format!("{s}:00") } else { s.to_string() };
    NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S").unwrap()
}

fn ts(e: &PumpEvent) -> String {
    e.timestamp.map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string()).unwrap_or_default()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// Every page of the set: CRC as SOURCES.md says (all good but the two deliberately corrupted
/// copies), and the corrupted ones refused by both decoders.
#[test]
fn every_fixture_page_crc() {
    let Some(root) = import_util::dir() else {
        return;
    };
    let mut n = 0;
    for sub in ["decocare-578398-mm522", "minimed_rf", "rileylink-minimedkit", "rileylink-minimedkit-glucose"] {
        let mut names: Vec<_> = std::fs::read_dir(root.join(DIR).join(sub))
            .unwrap_or_else(|e| panic!("{sub}: {e}"))
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".data") || n.ends_with(".hex"))
            .collect();
        names.sort();
        for name in names {
            let rel = format!("{sub}/{name}");
            let p = page(&rel).unwrap();
            assert_eq!(p.len(), PAGE_LEN, "{rel}");
            let bad = name.contains("InvalidCRC");
            let computed = crc::crc16_ccitt(&p[..PAGE_DATA_LEN]);
            assert_eq!(crc::stored_crc16(&p) == Some(computed), !bad, "{rel}: CRC");
            assert_eq!(page_data(&p).is_ok(), !bad, "{rel}");
            if bad {
                let e = decode_history_page(&p, model("551")).unwrap_err();
                assert!(matches!(e, PageError::BadCrc { .. }), "{rel}: {e}");
                assert!(e.to_string().contains("CRC mismatch"), "{e}");
                assert!(matches!(decode_glucose_page(&p), Err(PageError::BadCrc { .. })));
            }
            n += 1;
        }
    }
    // 12 decocare + 2 minimed_rf + 22 MinimedKit history + 2 MinimedKit CGM pages.
    assert_eq!(n, 38, "fixture pages found");
}

// ---------------------------------------------------------------------------------------------
// decocare 522 (serial 578398)

fn decocare_history(i: usize) -> Option<(HistoryPage, Value)> {
    let p = page(&format!("decocare-578398-mm522/ReadHistoryData-page-{i}.data"))?;
    let exp = expected(&format!("decocare-578398-mm522/ReadHistoryData-page-{i}.EXPECTED.json"))?;
    Some((decode_history_page(&p, model("522")).unwrap(), exp))
}

/// Our records flattened like decocare's collated output: each unabsorbed-insulin record
/// attached to a bolus counts as a record of its own. (raw hex, event, attached 0x5c?)
fn flatten(page: &HistoryPage) -> Vec<(String, &PumpEvent, bool)> {
    let mut v = Vec::new();
    for e in &page.events {
        v.push((hex(&e.raw), e, false));
        if let EventData::Bolus(b) = &e.data
            && let Some(u) = &b.unabsorbed
        {
            v.push((hex(&u.raw), e, true));
        }
    }
    v
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Each of the 11 history pages: every record decocare lists is one of ours (same bytes, same
/// type, timestamp and decoded amounts); ours has exactly one record more: the unabsorbed-
/// insulin record that ends page 10, which decocare's decoder drops.
///
/// One field differs by design: a 522 Bolus Wizard `correction_estimate`. decocare keeps only
/// the low nibble of the correction byte; we read the whole byte (MinimedKit), which is what
/// the wizard computed: (216 − 120) / 40 = 2.4 U where decocare says 0.8 U. The test checks
/// that decocare's value is exactly ours with the high nibble dropped.
#[test]
fn decocare_history_pages_match_decocare() {
    let mut total = 0;
    for i in 0..=10 {
        let Some((page, exp)) = decocare_history(i) else {
            return;
        };
        assert_eq!(page.stop, None, "page {i}");
        let ours = flatten(&page);
        let mut used = vec![false; ours.len()];
        let mut theirs = Vec::new();
        for r in exp.as_array().unwrap() {
            theirs.push(r);
            if let Some(a) = r.get("appended") {
                theirs.extend(a.as_array().unwrap());
            }
        }
        for r in &theirs {
            let raw = format!(
                "{}{}{}",
                r["_head"].as_str().unwrap(),
                r["_date"].as_str().unwrap(),
                r["_body"].as_str().unwrap()
            );
            let k = (0..ours.len())
                .find(|&k| !used[k] && ours[k].0 == raw)
                .unwrap_or_else(|| panic!("page {i}: decocare record {raw} not decoded"));
            used[k] = true;
            check_decocare(i, r, ours[k].1, ours[k].2);
        }
        let extra: Vec<&str> = (0..ours.len()).filter(|&k| !used[k]).map(|k| ours[k].0.as_str()).collect();
        if i == 10 {
            assert_eq!(extra, ["5c08e0ea0428fe04"], "page 10");
        } else {
            assert!(extra.is_empty(), "page {i}: not in decocare's decode: {extra:?}");
        }
        total += theirs.len();
    }
    assert_eq!(total, 830);
}

fn check_decocare(page: usize, r: &Value, e: &PumpEvent, attached: bool) {
    let ty = r["_type"].as_str().unwrap();
    let ctx = format!("page {page} {ty} {}", r["_head"]);
    let ours = if attached { "UnabsorbedInsulin" } else { e.name() };
    let same_type = match ty {
        "Bolus" => "BolusNormal",
        "BolusWizard" => "BolusWizardBolusEstimate",
        "UnabsorbedInsulinBolus" => "UnabsorbedInsulin",
        "SensorAlert" => "AlarmSensor",
        "PumpSuspend" => "Suspend",
        "PumpResume" => "Resume",
        "NoDelivery" => "PumpAlarm",
        "Model522ResultTotals" => "DailyTotal522",
        "MResultTotals" => "ResultDailyTotal",
        "LowReservoir" => "JournalEntryPumpLowReservoir",
        "LowBattery" => "JournalEntryPumpLowBattery",
        "NewTimeSet" => "NewTime",
        "ChangeTimeDisplay" => "ChangeTimeFormat",
        "OldBolusWizardChange" => "BolusWizardSetup",
        "SetBolusWizardEnabled" => "EnableBolusWizard",
        "ChangeBasalProfile_old_profile" => "ChangeBasalProfilePattern",
        "ChangeBasalProfile_new_profile" => "ChangeBasalProfile",
        other => other,
    };
    assert_eq!(ours, same_type, "{ctx}");
    if attached {
        let EventData::Bolus(b) = &e.data else { unreachable!() };
        let doses = &b.unabsorbed.as_ref().unwrap().doses;
        let data = r["data"].as_array().unwrap();
        assert_eq!(doses.len(), data.len(), "{ctx}");
        for (d, x) in doses.iter().zip(data) {
            assert!(close(d.amount_u, f(&x["amount"])), "{ctx}");
            assert_eq!(u64::from(d.age_min), x["age"].as_u64().unwrap(), "{ctx}");
        }
        return;
    }
    if let Some(tsv) = r.get("timestamp") {
        assert_eq!(ts(e), tsv.as_str().unwrap(), "{ctx}");
    }
    match &e.data {
        EventData::Bolus(b) => {
            assert!(close(b.programmed_u, f(&r["programmed"])), "{ctx}");
            assert!(close(b.delivered_u, f(&r["amount"])), "{ctx}");
            assert_eq!(u64::from(b.duration_min), r["duration"].as_u64().unwrap(), "{ctx}");
            let square = matches!(b.bolus_type, BolusType::Square | BolusType::DualSquare);
            assert_eq!(square, r["type"] == "square", "{ctx}");
        }
        EventData::BolusWizard(w) => {
            assert_eq!(u64::from(w.bg), r["bg"].as_u64().unwrap(), "{ctx}");
            assert_eq!(u64::from(w.carbs_g), r["carb_input"].as_u64().unwrap(), "{ctx}");
            assert!(close(w.carb_ratio_g_per_u, f(&r["carb_ratio"])), "{ctx}");
            assert_eq!(u64::from(w.sensitivity), r["sensitivity"].as_u64().unwrap(), "{ctx}");
            assert_eq!(u64::from(w.target_low), r["bg_target_low"].as_u64().unwrap(), "{ctx}");
            assert_eq!(u64::from(w.target_high), r["bg_target_high"].as_u64().unwrap(), "{ctx}");
            assert!(close(w.bolus_estimate_u, f(&r["bolus_estimate"])), "{ctx}");
            assert!(close(w.food_estimate_u, f(&r["food_estimate"])), "{ctx}");
            assert!(close(w.unabsorbed_insulin_u, f(&r["unabsorbed_insulin_total"])), "{ctx}");
            let tenths = (w.correction_estimate_u * 10.0).round() as i64;
            assert!(close(f(&r["correction_estimate"]), (tenths % 16) as f64 / 10.0), "{ctx}");
        }
        EventData::BgReceived { bg_mg_dl, meter } => {
            assert_eq!(u64::from(*bg_mg_dl), r["amount"].as_u64().unwrap(), "{ctx}");
            assert_eq!(meter, r["link"].as_str().unwrap(), "{ctx}");
        }
        EventData::CalBgForPh { bg_mg_dl } => {
            assert_eq!(u64::from(*bg_mg_dl), r["amount"].as_u64().unwrap(), "{ctx}");
        }
        EventData::SensorAlarm { code, glucose_mg_dl } => {
            assert_eq!(u64::from(*code), r["alarm_type"].as_u64().unwrap(), "{ctx}");
            assert_eq!(glucose_mg_dl.map(u64::from), r.get("amount").and_then(Value::as_u64), "{ctx}");
        }
        EventData::TempBasal { rate, .. } => match rate {
            TempBasalRate::Absolute(x) => {
                assert_eq!(r["temp"], "absolute", "{ctx}");
                assert!(close(*x, f(&r["rate"])), "{ctx}");
            }
            TempBasalRate::Percent(p) => {
                assert_eq!(r["temp"], "percent", "{ctx}");
                assert_eq!(u64::from(*p), r["rate"].as_u64().unwrap(), "{ctx}");
            }
            TempBasalRate::Unknown(x) => panic!("{ctx}: rate type {x}"),
        },
        EventData::TempBasalDuration { duration_min } => {
            assert_eq!(u64::from(*duration_min), r["duration (min)"].as_u64().unwrap(), "{ctx}");
        }
        EventData::Prime { amount_u, programmed_u } => {
            assert!(close(*amount_u, f(&r["amount"])), "{ctx}");
            assert!(close(*programmed_u, f(&r["fixed"])), "{ctx}");
            assert_eq!(r["type"] == "manual", *programmed_u == 0.0, "{ctx}");
        }
        EventData::LowReservoir { amount_u } => assert!(close(*amount_u, f(&r["amount"])), "{ctx}"),
        _ => {}
    }
}

/// The 0x07 total of 2015-04-28 on page 1 is CareLink's `ResultDailyTotal` for that day
/// (`AMOUNT=57.35`), stamped by decocare at the midnight that ends the day.
#[test]
fn decocare_daily_total_matches_carelink() {
    let Some((page, _)) = decocare_history(1) else {
        return;
    };
    let e = page.events.iter().find(|e| e.op == 0x07).unwrap();
    assert_eq!(e.data, EventData::ResultDailyTotal { date: NaiveDate::from_ymd_opt(2015, 4, 28), total_u: 57.35 });
    assert_eq!(ts(e), "2015-04-29T00:00:00");
}

/// `(time, mg/dL)` of the 522's CGM readings in the CareLink export, and the export's end.
fn carelink_cgm() -> Option<(BTreeMap<NaiveDateTime, u16>, NaiveDateTime)> {
    let csv = import_util::read("carelink-csv/decocare-578398-mm522/CareLink-Export-1430357806982.csv")?;
    let text = String::from_utf8_lossy(&csv);
    let mut m = BTreeMap::new();
    for line in text.lines() {
        if !line.contains("GlucoseSensorData,") || !line.trim_end().ends_with("Paradigm 522") {
            continue;
        }
        let cols: Vec<&str> = line.split(',').collect();
        let time = NaiveDateTime::parse_from_str(cols[3], "%m/%d/%y %H:%M:%S").unwrap();
        m.insert(time, cols[30].parse().unwrap());
    }
    // "Data Range,4/1/15 00:00:00,to,4/29/15 18:32:33"
    Some((m, t("2015-04-29T18:32:33")))
}

/// The CGM page: decocare's sensor values (in order), calibration factors, calibration BGs and
/// reference timestamps are ours; the reading times are CareLink's.
///
/// decocare's 2015 decoder read the 8-byte `10-something` record as 5 bytes, so it also lists
/// the record's last three bytes as a `DataEnd` and two 0 mg/dL readings (9 times); and it
/// dated readings forward from calibration-factor and `10-something` records, a few minutes
/// off, and left out the 4 readings older than the first of those. We date them back from the sensor timestamp (MinimedKit), which gives every one of the
/// 163 readings up to the export's end the minute and value the CareLink export has; the 6
/// later ones come after the export, and there decocare's times and ours agree.
#[test]
fn decocare_cgm_page_matches_decocare_and_carelink() {
    let Some(p) = page("decocare-578398-mm522/ReadGlucoseHistory-page-6.data") else {
        return;
    };
    let Some(exp) = expected("decocare-578398-mm522/ReadGlucoseHistory-page-6.EXPECTED.json") else {
        return;
    };
    let exp = exp.as_array().unwrap();
    let g = decode_glucose_page(&p).unwrap();
    assert_eq!(g.stop, None);
    assert!(!g.needs_timestamp);

    let ours: Vec<u16> = g
        .events
        .iter()
        .filter_map(|e| match e.data {
            GlucoseData::SensorGlucose { mg_dl } => Some(mg_dl),
            _ => None,
        })
        .collect();
    let theirs: Vec<u16> = exp
        .iter()
        .filter(|r| r["name"] == "GlucoseSensorData" && r["sgv"] != 0)
        .map(|r| r["sgv"].as_u64().unwrap() as u16)
        .collect();
    // decocare drops the 4 oldest readings (older than the first record it anchors on).
    assert_eq!(ours[..4], [250, 260, 266, 318]);
    assert_eq!(ours[4..], theirs[..]);
    assert_eq!(exp.iter().filter(|r| r["name"] == "GlucoseSensorData" && r["sgv"] == 0).count(), 18);
    assert_eq!(exp.iter().filter(|r| r["name"] == "DataEnd").count(), 10);

    // Records with their own time, in order.
    for (op, name) in
        [(0x0f, "SensorCalFactor"), (0x0e, "CalBGForGH"), (0x08, "SensorTimestamp"), (0x10, "10-Something")]
    {
        let ours: Vec<_> = g.events.iter().filter(|e| e.op == op).collect();
        let theirs: Vec<_> = exp.iter().filter(|r| r["name"] == name).collect();
        assert_eq!(ours.len(), theirs.len(), "{name}");
        for (o, r) in ours.iter().zip(theirs) {
            assert_eq!(o.timestamp, Some(t(r["date"].as_str().unwrap())), "{name}");
            match o.data {
                GlucoseData::SensorCalFactor { factor } => assert!(close(factor, f(&r["factor"]))),
                GlucoseData::CalBgForGh { bg_mg_dl } => {
                    assert_eq!(u64::from(bg_mg_dl), r["amount"].as_u64().unwrap())
                }
                _ => {}
            }
        }
    }

    let Some((carelink, end)) = carelink_cgm() else {
        return;
    };
    let readings: Vec<(NaiveDateTime, u16)> = g
        .events
        .iter()
        .filter_map(|e| match e.data {
            GlucoseData::SensorGlucose { mg_dl } => Some((e.timestamp.unwrap(), mg_dl)),
            _ => None,
        })
        .collect();
    // The export ends at 18:32:33; its last reading is the one of 18:27.
    assert!(end > *carelink.keys().max().unwrap());
    let last = *carelink.keys().max().unwrap();
    let (before, after): (Vec<_>, Vec<_>) = readings.iter().partition(|(t, _)| *t <= last);
    assert_eq!(before.len(), 163);
    for (t, v) in &before {
        assert_eq!(carelink.get(t), Some(v), "reading at {t}");
    }
    assert_eq!(after.len(), 6);
    // decocare's readings written after the page's sensor timestamp (the last record it
    // anchors on): there both ways of dating agree.
    let stamp = exp.iter().position(|r| r["name"] == "SensorTimestamp").unwrap();
    let decocare_after: Vec<_> = exp[stamp..]
        .iter()
        .filter(|r| r["name"] == "GlucoseSensorData")
        .map(|r| (t(r["date"].as_str().unwrap()), r["sgv"].as_u64().unwrap() as u16))
        .collect();
    assert_eq!(after, decocare_after);
}

/// The normalised records of all 11 history pages and the CGM page against what the CareLink
/// importer makes of the CareLink export of the same pump, over the hours both cover: the same
/// boluses (dual waves combined), fingersticks, CGM readings, suspends and resumes.
#[test]
fn decocare_records_match_the_carelink_importer() {
    let mut events = Vec::new();
    for i in (0..=10).rev() {
        let Some((page, _)) = decocare_history(i) else {
            return;
        };
        events.extend(page.events);
    }
    let m = model("522");
    let conv = history_records(&events, m);
    assert_eq!(conv.device.model.as_deref(), Some("Paradigm 522"));
    assert_eq!(conv.device.manufacturer.as_deref(), Some("Medtronic"));
    assert_eq!(conv.skipped.len(), 2, "{:?}", conv.skipped); // two trailing 0x5c records
    let mut counts = BTreeMap::new();
    for r in &conv.records {
        *counts.entry(r.type_name()).or_insert(0) += 1;
    }
    let want = [
        ("alarm", 283),
        ("bg", 62),
        ("bolus", 98),
        ("bolus_wizard", 94),
        ("carbs", 62),
        ("daily_total", 18),
        ("prime", 12),
        ("resume", 20),
        ("rewind", 8),
        ("suspend", 20),
        ("temp_basal", 3),
        ("time_change", 2),
        // Settings changes, clear-alarm records and the 522's detailed daily totals.
        ("unknown", 43),
    ];
    assert_eq!(counts, BTreeMap::from(want));
    let Some(p) = page("decocare-578398-mm522/ReadGlucoseHistory-page-6.data") else {
        return;
    };
    let cgm = glucose_records(&decode_glucose_page(&p).unwrap().events, m);
    assert!(cgm.skipped.is_empty());

    let Some(csv) = import_util::read("carelink-csv/decocare-578398-mm522/CareLink-Export-1430357806982.csv") else {
        return;
    };
    let mut carelink = Vec::new();
    let mut is_522 = false;
    for item in import(&csv[..], Format::CarelinkCsv).unwrap() {
        match item {
            Item::Device(d) => is_522 = d.model.as_deref() == Some("Paradigm 522"),
            Item::Record(r) if is_522 => carelink.push(r),
            _ => {}
        }
    }
    let first = events.iter().filter_map(|e| e.timestamp).min().unwrap();
    let end = t("2015-04-29T18:32:33");
    let key = |r: &therapy::Record| serde_json::to_string(r).unwrap();
    for ty in ["bolus", "bg", "suspend", "resume", "cgm", "rewind", "prime"] {
        let mut ours: Vec<String> = conv
            .records
            .iter()
            .chain(&cgm.records)
            .filter(|r| r.type_name() == ty && r.device_time.0 >= first && r.device_time.0 <= end)
            .map(key)
            .collect();
        let cgm_first = cgm.records.iter().map(|r| r.device_time.0).min().unwrap();
        // The export's last sensor reading is at 18:27; the page's 6 later ones came after it.
        if ty == "cgm" {
            ours.retain(|r| !r.contains("T18:3") && !r.contains("T18:4") && !r.contains("T18:5"));
        }
        let mut theirs: Vec<String> = carelink
            .iter()
            .filter(|r| r.type_name() == ty && r.device_time.0 >= first && r.device_time.0 <= end)
            .filter(|r| ty != "cgm" || r.device_time.0 >= cgm_first)
            .map(key)
            .collect();
        ours.sort();
        theirs.sort();
        assert!(!ours.is_empty(), "{ty}");
        assert_eq!(ours, theirs, "{ty}");
    }

    // Spot checks: the dual waves of 11:44:45 (4 U now + 2 U over 2 h) and of the 28th (4.5 U
    // at 19:17:02 + 3.5 U over 4 h, its square part written at 19:20:02), the linked-meter BG
    // written twice, the daily total.
    let at = |s: &str, ty: &str| {
        conv.records
            .iter()
            .find(|r| r.device_time.0 == t(s) && r.type_name() == ty)
            .unwrap_or_else(|| panic!("no {ty} at {s}"))
            .kind
            .clone()
    };
    assert_eq!(
        at("2015-04-29T11:44:45", "bolus"),
        RecordKind::Bolus {
            subtype: BolusSubtype::Dual,
            programmed_u: Some(6.0),
            delivered_u: Some(6.0),
            duration_min: Some(120),
            normal_programmed_u: Some(4.0),
            normal_delivered_u: Some(4.0),
            extended_programmed_u: Some(2.0),
            extended_delivered_u: Some(2.0),
            extended_duration_min: Some(120),
        }
    );
    assert_eq!(
        at("2015-04-28T19:17:02", "bolus"),
        RecordKind::Bolus {
            subtype: BolusSubtype::Dual,
            programmed_u: Some(8.0),
            delivered_u: Some(8.0),
            duration_min: Some(240),
            normal_programmed_u: Some(4.5),
            normal_delivered_u: Some(4.5),
            extended_programmed_u: Some(3.5),
            extended_delivered_u: Some(3.5),
            extended_duration_min: Some(240),
        }
    );
    assert_eq!(at("2015-04-29T17:40:56", "bg"), RecordKind::Bg { value_mg_dl: 216, source: BgSource::LinkedMeter });
    assert_eq!(
        at("2015-04-28T00:00:00", "daily_total"),
        RecordKind::DailyTotal { date: "2015-04-28".into(), units: 57.35 }
    );
    let RecordKind::BolusWizard(w) = at("2015-04-29T17:41:08", "bolus_wizard") else { panic!() };
    assert_eq!((w.bg_mg_dl, w.correction_estimate_u, w.active_insulin_u), (Some(216), Some(2.4), Some(2.8)));
    // Every record serialises to the contract shape; unknown records keep op and bytes.
    for r in conv.records.iter().chain(&cgm.records) {
        let v = serde_json::to_value(r).unwrap();
        assert!(v["device_time"].is_string() && v["type"].is_string(), "{v}");
        if r.type_name() == "unknown" {
            assert!(v["op"].is_u64() && v["raw_hex"].is_string(), "{v}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// minimed_rf

#[test]
fn minimed_rf_pages_match_the_spec() {
    let Some(exp) = expected("minimed_rf/EXPECTED.json") else {
        return;
    };
    for (name, m) in [("spec-522-data", "522"), ("spec-523-data", "551")] {
        let x = &exp["pages"][name];
        let p = page(&format!("minimed_rf/{name}.hex")).unwrap();
        let h = decode_history_page(&p, model(m)).unwrap();
        assert_eq!(h.stop, None, "{name}");
        assert_eq!(h.events.len() as u64, x["event_count"].as_u64().unwrap(), "{name}");
        for ev in x["events"].as_array().unwrap() {
            let e = &h.events[ev["index"].as_u64().unwrap() as usize];
            check_expected(&format!("{name}#{}", ev["index"]), ev, e);
        }
    }
}

/// Checks every field an expected event states (both the minimed_rf and MinimedKit names);
/// a field this function does not know fails the test, so no expectation goes unchecked.
fn check_expected(ctx: &str, x: &Value, e: &PumpEvent) {
    let ty = x["type"].as_str().unwrap();
    let ours = e.name();
    let type_ok = match ty {
        "BolusWizardBolusEstimate"
        | "BolusNormal"
        | "BasalProfileStart"
        | "CalBGForPH"
        | "Rewind"
        | "Prime"
        | "TempBasal"
        | "TempBasalDuration"
        | "JournalEntryMealMarker"
        | "SaveSettings"
        | "BolusWizardSetup"
        | "DailyTotal523"
        | "PumpAlarm" => ours == ty,
        // x12/x15 meter BGs are 0x39 (see below).
        "BGReceived" => ours == "BGReceived" || ours == "BGReceived512",
        "ResultDailyTotal/DailyTotal523" => ours == "DailyTotal523",
        _ => panic!("{ctx}: unexpected type {ty}"),
    };
    assert!(type_ok, "{ctx}: {ty} vs {ours}");
    for (k, v) in x.as_object().unwrap() {
        let num = || f(v);
        match (k.as_str(), &e.data) {
            ("index" | "type" | "note" | "to_s", _) => {}
            ("opcode", _) => {
                let op = u8::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
                // MinimedKit's testMeterBGx15 reads the 515's meter BG (opcode 0x39) as
                // `BGReceived`; the transcription names BGReceived's usual opcode 0x3f.
                if !(ctx.starts_with("testMeterBGx15") && op == 0x3f) {
                    assert_eq!(e.op, op, "{ctx}");
                } else {
                    assert_eq!(e.op, 0x39, "{ctx}");
                }
            }
            ("timestamp", _) => assert_eq!(ts(e), v.as_str().unwrap(), "{ctx}"),
            ("timestamp_date_only" | "valid_date", EventData::DailyTotalDetail { date }) => {
                assert_eq!(date.map(|d| d.to_string()).as_deref(), v.as_str(), "{ctx}")
            }
            ("valid_date_month", EventData::DailyTotalDetail { date }) => {
                assert_eq!(date.map(|d| u64::from(chrono::Datelike::month(&d))), v.as_u64(), "{ctx}")
            }
            ("valid_date_day", EventData::DailyTotalDetail { date }) => {
                assert_eq!(date.map(|d| u64::from(chrono::Datelike::day(&d))), v.as_u64(), "{ctx}")
            }
            ("amount", EventData::Bolus(b)) => assert!(close(b.delivered_u, num()), "{ctx}"),
            ("programmed" | "programmed_amount", EventData::Bolus(b)) => {
                assert!(close(b.programmed_u, num()), "{ctx}")
            }
            ("duration" | "duration_minutes", EventData::Bolus(b)) => {
                assert_eq!(u64::from(b.duration_min), v.as_u64().unwrap(), "{ctx}")
            }
            ("bolus_type", EventData::Bolus(b)) => {
                let s = match b.bolus_type {
                    BolusType::Normal | BolusType::DualNormal => "normal",
                    BolusType::Square | BolusType::DualSquare => "square",
                };
                assert_eq!(s, v.as_str().unwrap(), "{ctx}");
            }
            ("unabsorbed_insulin_total", EventData::Bolus(b)) => {
                assert!(close(b.unabsorbed_total_u.unwrap_or(0.0), num()), "{ctx}")
            }
            ("was_remotely_triggered", EventData::Bolus(b)) => {
                assert_eq!(b.remote.unwrap_or(false), v.as_bool().unwrap(), "{ctx}")
            }
            ("unabsorbed_insulin_records", EventData::Bolus(b)) => {
                let doses = &b.unabsorbed.as_ref().unwrap().doses;
                let want = v.as_array().unwrap();
                assert_eq!(doses.len(), want.len(), "{ctx}");
                for (d, w) in doses.iter().zip(want) {
                    assert!(close(d.amount_u, f(&w["amount"])), "{ctx}");
                    assert_eq!(u64::from(d.age_min), w["age_minutes"].as_u64().unwrap(), "{ctx}");
                }
            }
            (k, EventData::BolusWizard(w)) => {
                let got = match k {
                    "blood_glucose" => f64::from(w.bg),
                    "bg_target_low" => f64::from(w.target_low),
                    "bg_target_high" => f64::from(w.target_high),
                    "insulin_sensitivity" => f64::from(w.sensitivity),
                    "carbohydrates" => f64::from(w.carbs_g),
                    "carb_ratio" => w.carb_ratio_g_per_u,
                    "correction_estimate" => w.correction_estimate_u,
                    "food_estimate" => w.food_estimate_u,
                    "bolus_estimate" => w.bolus_estimate_u,
                    "unabsorbed_insulin_total" => w.unabsorbed_insulin_u,
                    _ => panic!("{ctx}: unchecked expectation {k}"),
                };
                assert!(close(got, num()), "{ctx}: {k} {got} vs {v}");
            }
            ("offset_ms", EventData::BasalProfileStart { offset_min, .. }) => {
                assert_eq!(u64::from(*offset_min) * 60_000, v.as_u64().unwrap(), "{ctx}")
            }
            ("schedule_entry", EventData::BasalProfileStart { rate_u_h, offset_min, index, .. }) => {
                assert_eq!(u64::from(*offset_min) * 60, v["time_offset_seconds"].as_u64().unwrap(), "{ctx}");
                assert!(close(*rate_u_h, f(&v["rate"])), "{ctx}");
                assert_eq!(u64::from(*index), v["index"].as_u64().unwrap(), "{ctx}");
            }
            ("amount", EventData::CalBgForPh { bg_mg_dl }) | ("amount", EventData::BgReceived { bg_mg_dl, .. }) => {
                assert_eq!(u64::from(*bg_mg_dl), v.as_u64().unwrap(), "{ctx}")
            }
            ("meter", EventData::BgReceived { meter, .. }) => {
                assert_eq!(meter, v.as_str().unwrap(), "{ctx}")
            }
            ("amount", EventData::Prime { amount_u, .. }) => {
                assert!(close(*amount_u, num()), "{ctx}")
            }
            ("programmed_amount", EventData::Prime { programmed_u, .. }) => {
                assert!(close(*programmed_u, num()), "{ctx}")
            }
            ("prime_type", EventData::Prime { programmed_u, .. }) => {
                let s = if *programmed_u == 0.0 { "manual" } else { "fixed" };
                assert_eq!(s, v.as_str().unwrap(), "{ctx}");
            }
            ("rate", EventData::TempBasal { rate: TempBasalRate::Absolute(r), .. }) => {
                assert!(close(*r, num()), "{ctx}")
            }
            ("rate_type", EventData::TempBasal { rate, .. }) => {
                let s = match rate {
                    TempBasalRate::Absolute(_) => "absolute",
                    TempBasalRate::Percent(_) => "percent",
                    TempBasalRate::Unknown(_) => "unknown",
                };
                assert_eq!(s, v.as_str().unwrap(), "{ctx}");
            }
            ("was_remotely_triggered", EventData::TempBasal { remote, .. }) => {
                assert_eq!(*remote, v.as_bool().unwrap(), "{ctx}")
            }
            ("duration_minutes", EventData::TempBasalDuration { duration_min }) => {
                assert_eq!(u64::from(*duration_min), v.as_u64().unwrap(), "{ctx}")
            }
            ("carbohydrates", EventData::MealMarker { carbs, .. }) => {
                assert!(close(*carbs, num()), "{ctx}")
            }
            ("carb_units", EventData::MealMarker { exchanges, .. }) => {
                assert_eq!(if *exchanges { "exchanges" } else { "grams" }, v.as_str().unwrap(), "{ctx}")
            }
            ("alarm_type", EventData::PumpAlarm { code }) => {
                let name = match code {
                    5 => "batteryDepleted",
                    21 => "deviceResetBatteryIssue21",
                    17 => "deviceResetBatteryIssue17",
                    _ => "other",
                };
                assert_eq!(name, v.as_str().unwrap(), "{ctx}");
            }
            (k, d) => panic!("{ctx}: unchecked expectation {k} on {d:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MinimedKit (rileylink_ios) history pages

#[test]
fn minimedkit_history_pages_match_the_tests() {
    let Some(exp) = expected("rileylink-minimedkit/EXPECTED.json") else {
        return;
    };
    let mut checked = 0;
    for (test, spec) in exp["tests"].as_object().unwrap() {
        let m = model(spec["pump_model"].as_str().unwrap());
        let x = &spec["expect"];
        let files: Vec<&str> = spec["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
        let pages: Vec<Vec<u8>> = files.iter().map(|f| page(&format!("rileylink-minimedkit/{f}")).unwrap()).collect();
        if x.get("crc_ok") == Some(&Value::Bool(false)) {
            assert!(matches!(decode_history_page(&pages[0], m), Err(PageError::BadCrc { .. })), "{test}");
            checked += 1;
            continue;
        }
        let decoded: Vec<HistoryPage> = pages.iter().map(|p| decode_history_page(p, m).unwrap()).collect();
        for (f, h) in files.iter().zip(&decoded) {
            assert_eq!(h.stop, None, "{test} {f}");
        }
        let h = &decoded[0];
        if let Some(n) = x.get("event_count") {
            assert_eq!(h.events.len() as u64, n.as_u64().unwrap(), "{test}");
        }
        if let Some(n) = x.get("event_count_greater_than") {
            assert!(h.events.len() as u64 > n.as_u64().unwrap(), "{test}");
        }
        for ev in x.get("events").and_then(Value::as_array).into_iter().flatten() {
            let e = &h.events[ev["index"].as_u64().unwrap() as usize];
            check_expected(&format!("{test}#{}", ev["index"]), ev, e);
        }
        match test.as_str() {
            "testHistoryTimeShift" => check_time_shift(&decoded, m),
            "testHistoryParsingShouldNotContinuePastAlarmsIndicatingUnrecoverableClock" => {
                let after = &x["timestamped_events_after"];
                // 2020-11-20T00:00:00Z on a pump at UTC−6 is 2020-11-19T18:00:00 on its clock.
                assert_eq!(after["pump_utc_offset_seconds"], -21600);
                let since = t("2020-11-19T18:00:00");
                let (events, end) = history::timeline(&decoded, m, Some(since));
                assert_eq!(events.len() as u64, after["count"].as_u64().unwrap());
                assert!(matches!(end, TimelineEnd::ClockReset { page: 0, .. }), "{end:?}");
                assert!(events.iter().all(|e| e.time > since));
            }
            _ => {}
        }
        checked += 1;
    }
    assert_eq!(checked, 13);
}

/// Ten pages of a 523 whose clock went +3 h and back −3 h on page 7: on one clock the events
/// are in order newest to oldest, nothing stops the walk; on the raw pump clock they are not.
fn check_time_shift(pages: &[HistoryPage], m: PumpModel) {
    let (events, end) = history::timeline(pages, m, None);
    assert_eq!(end, TimelineEnd::Exhausted);
    assert!(events.len() > 1000);
    assert!(events.windows(2).all(|w| w[0].time <= w[1].time), "not in order on one clock");
    let raw: Vec<_> = events.iter().map(|e| e.event.timestamp.unwrap()).collect();
    assert!(raw.windows(2).any(|w| w[0] > w[1]), "the raw clock should jump");
    let changes = pages[7].events.iter().filter(|e| e.op == 0x17).count();
    assert_eq!(changes, 2);
}

// ---------------------------------------------------------------------------------------------
// MinimedKit CGM pages and single records

#[test]
fn minimedkit_glucose_pages_and_records() {
    let Some(exp) = expected("rileylink-minimedkit-glucose/EXPECTED.json") else {
        return;
    };
    let good = page("rileylink-minimedkit-glucose/testGlucosePageCRC.hex").unwrap();
    let g = decode_glucose_page(&good).unwrap();
    assert_eq!(g.stop, None);
    assert!(!g.needs_timestamp);
    assert!(g.events.iter().filter(|e| matches!(e.data, GlucoseData::SensorGlucose { .. })).count() > 600);
    assert!(g.events.iter().filter(|e| e.is_relative()).all(|e| e.timestamp.is_some()));
    let bad = page("rileylink-minimedkit-glucose/testGlucosePageInvalidCRC.hex").unwrap();
    assert!(matches!(decode_glucose_page(&bad), Err(PageError::BadCrc { .. })));
    assert_eq!(exp["pages"]["testGlucosePageInvalidCRC.hex"]["crc_ok"], false);

    for s in exp["synthetic_pages"].as_array().unwrap() {
        let h = s["records_hex"].as_str().unwrap();
        let p = unhex(&format!("{h:0>2048}"));
        let g = decode_glucose_page(&p).unwrap_or_else(|e| panic!("{}: {e}", s["test"]));
        let x = &s["expect"];
        if let Some(n) = x.get("event_count") {
            assert_eq!(g.events.len() as u64, n.as_u64().unwrap(), "{}", s["test"]);
        }
        if let Some(first) = x.get("first_event") {
            assert_eq!(first["type"], "Unknown");
            assert_eq!(g.events[0].data, GlucoseData::Unknown);
            assert_eq!(format!("{:02x}", g.events[0].op), first["op"].as_str().unwrap());
        }
        if let Some(n) = x.get("needs_timestamp") {
            assert_eq!(g.needs_timestamp, n.as_bool().unwrap(), "{}", s["test"]);
        }
    }

    for r in exp["records"].as_array().unwrap() {
        let ctx = r["test"].as_str().unwrap();
        let e = glucose::decode_record(&unhex(r["hex"].as_str().unwrap())).unwrap_or_else(|| panic!("{ctx}"));
        let name = glucose::name(e.op);
        assert_eq!(name, r["type"].as_str().unwrap(), "{ctx}");
        for (k, v) in r.as_object().unwrap() {
            match (k.as_str(), &e.data) {
                ("test" | "hex" | "type" | "note", _) => {}
                ("opcode", _) => {
                    assert_eq!(format!("0x{:02x}", e.op), v.as_str().unwrap(), "{ctx}")
                }
                ("timestamp", _) => assert_eq!(e.timestamp, Some(t(v.as_str().unwrap())), "{ctx}"),
                ("amount", GlucoseData::CalBgForGh { bg_mg_dl }) => {
                    assert_eq!(u64::from(*bg_mg_dl), v.as_u64().unwrap(), "{ctx}")
                }
                // The origin is the subtype bits of the day byte; 0 is `rf`.
                ("origin_type", GlucoseData::CalBgForGh { .. }) => {
                    assert_eq!(v, "rf");
                    assert_eq!((e.raw[3] >> 5) & 3, 0, "{ctx}");
                }
                ("factor", GlucoseData::SensorCalFactor { factor }) => {
                    assert!(close(*factor, f(v)), "{ctx}")
                }
                ("sgv", GlucoseData::SensorGlucose { mg_dl }) => {
                    assert_eq!(u64::from(*mg_dl), v.as_u64().unwrap(), "{ctx}")
                }
                ("sgv", GlucoseData::SensorDataHigh) => assert_eq!(v, 400, "{ctx}"),
                ("sgv", GlucoseData::SensorDataLow) => assert_eq!(v, 40, "{ctx}"),
                ("calibration_type", GlucoseData::SensorCal(k)) => {
                    let s = match k {
                        SensorCalKind::MeterBgNow => "meter_bg_now",
                        SensorCalKind::Waiting => "waiting",
                        SensorCalKind::CalError => "cal_error",
                        SensorCalKind::Other(_) => "other",
                    };
                    assert_eq!(s, v.as_str().unwrap(), "{ctx}");
                }
                ("error_type", GlucoseData::SensorError { end, .. }) => {
                    assert_eq!(*end, v == "end", "{ctx}")
                }
                ("packet_type", GlucoseData::SensorPacket { init, .. }) => {
                    assert_eq!(*init, v == "init", "{ctx}")
                }
                ("status_type", GlucoseData::SensorStatus(k)) => {
                    let s = match k {
                        SensorStatusKind::Off => "off",
                        SensorStatusKind::On => "on",
                        SensorStatusKind::Lost => "lost",
                        SensorStatusKind::Unknown => "unknown",
                    };
                    assert_eq!(s, v.as_str().unwrap(), "{ctx}");
                }
                ("sync_type", GlucoseData::SensorSync(k)) => {
                    let s = match k {
                        SensorSyncKind::New => "new",
                        SensorSyncKind::Old => "old",
                        SensorSyncKind::Find => "find",
                        SensorSyncKind::Unknown => "unknown",
                    };
                    assert_eq!(s, v.as_str().unwrap(), "{ctx}");
                }
                ("timestamp_type", GlucoseData::SensorTimestamp(k)) => {
                    let s = match k {
                        SensorTimestampKind::LastRf => "lastRf",
                        SensorTimestampKind::PageEnd => "pageEnd",
                        SensorTimestampKind::Gap => "gap",
                        SensorTimestampKind::Unknown => "unknown",
                    };
                    assert_eq!(s, v.as_str().unwrap(), "{ctx}");
                }
                (k, d) => panic!("{ctx}: unchecked expectation {k} on {d:?}"),
            }
        }
    }

    for r in exp["pump_records"].as_array().unwrap() {
        let ctx = r["test"].as_str().unwrap();
        let raw = unhex(r["hex"].as_str().unwrap());
        let h = decode_history(&raw, model(r["pump_model"].as_str().unwrap()));
        assert_eq!(h.stop, None, "{ctx}");
        assert_eq!(h.events.len(), 1, "{ctx}");
        let e = &h.events[0];
        assert_eq!(e.name(), r["type"].as_str().unwrap(), "{ctx}");
        for (k, v) in r.as_object().unwrap() {
            match (k.as_str(), &e.data) {
                ("test" | "hex" | "type" | "pump_model", _) => {}
                ("opcode", _) => {
                    assert_eq!(format!("0x{:02x}", e.op), v.as_str().unwrap(), "{ctx}")
                }
                ("length", _) => assert_eq!(e.raw.len() as u64, v.as_u64().unwrap(), "{ctx}"),
                ("year", _) => assert_eq!(e.timestamp.map(|t| i64::from(chrono::Datelike::year(&t))), v.as_i64()),
                ("month", _) => assert_eq!(e.timestamp.map(|t| u64::from(chrono::Datelike::month(&t))), v.as_u64()),
                ("was_remotely_triggered", EventData::Resume { remote }) => {
                    assert_eq!(*remote, v.as_bool().unwrap())
                }
                ("amount", EventData::Bolus(b)) => assert!(close(b.delivered_u, f(v)), "{ctx}"),
                ("programmed", EventData::Bolus(b)) => {
                    assert!(close(b.programmed_u, f(v)), "{ctx}")
                }
                ("unabsorbed_insulin_total", EventData::Bolus(b)) => {
                    assert!(close(b.unabsorbed_total_u.unwrap(), f(v)), "{ctx}")
                }
                ("duration", EventData::Bolus(b)) => {
                    assert_eq!(u64::from(b.duration_min), v.as_u64().unwrap())
                }
                ("bolus_type", EventData::Bolus(b)) => {
                    assert_eq!(b.bolus_type == BolusType::Normal, v == "normal")
                }
                (k, d) => panic!("{ctx}: unchecked expectation {k} on {d:?}"),
            }
        }
    }
}

/// CGM records → records: readings, the sensor's limits flagged, status events.
#[test]
fn glucose_records_map_readings_and_status() {
    // Page order (oldest first): sensor timestamp 2016-10-19 20:51 last_rf, reading 0x53,
    // "below 40" (0x06), "above 400" (0x07 ff), weak signal (0x02), a sensor-start packet
    // (0x04 02). After a `last_rf` timestamp the relative records follow 5 minutes apart.
    let data = [0x10, 0x13, 0xb3, 0x94, 0x08, 0x53, 0x06, 0xff, 0x07, 0x02, 0x02, 0x04];
    let g = glucose::decode_glucose(&data);
    assert_eq!(g.stop, None);
    let conv = glucose_records(&g.events, model("754"));
    let got: Vec<String> = conv.records.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
    assert_eq!(
        got,
        [
            r#"{"type":"unknown","op":8,"raw_hex":"0894b31310","device_time":"2016-10-19T20:51:00"}"#,
            r#"{"type":"cgm","value_mg_dl":166,"device_time":"2016-10-19T20:56:00"}"#,
            r#"{"type":"cgm","value_mg_dl":40,"out_of_range":"below","device_time":"2016-10-19T21:01:00"}"#,
            r#"{"type":"cgm","value_mg_dl":400,"out_of_range":"above","device_time":"2016-10-19T21:06:00"}"#,
            r#"{"type":"sensor_event","kind":"weak_signal","device_time":"2016-10-19T21:11:00"}"#,
            r#"{"type":"sensor_event","kind":"sensor_start","device_time":"2016-10-19T21:16:00"}"#,
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// No input panics.

const MODELS: [&str; 6] = ["515", "522", "523", "551", "723", "754"];

fn with_crc(mut data: Vec<u8>) -> Vec<u8> {
    data.resize(PAGE_DATA_LEN, 0);
    let c = crc::crc16_ccitt(&data).to_be_bytes();
    data.extend_from_slice(&c);
    data
}

fn exercise(bytes: &[u8]) {
    for m in MODELS {
        let m = model(m);
        let h = decode_history(bytes, m);
        for e in &h.events {
            assert!(e.offset + e.raw.len() <= bytes.len());
        }
        let conv = history_records(&h.events, m);
        for r in &conv.records {
            serde_json::to_string(r).unwrap();
        }
        let _ = history::timeline(std::slice::from_ref(&h), m, None);
        let _ = decode_history_page(bytes, m);
    }
    let g = glucose::decode_glucose(bytes);
    for e in &g.events {
        assert!(e.offset + e.raw.len() <= bytes.len());
    }
    for r in &glucose_records(&g.events, model("522")).records {
        serde_json::to_string(r).unwrap();
    }
    let _ = decode_glucose_page(bytes);
    let _ = glucose::decode_record(bytes);
}

/// Real pages (when the fixtures are there) as mutation seeds.
fn seeds() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    if import_util::dir().is_some() {
        for rel in [
            "decocare-578398-mm522/ReadHistoryData-page-1.data",
            "decocare-578398-mm522/ReadGlucoseHistory-page-6.data",
            "rileylink-minimedkit/testHistoryDecoding.hex",
            "rileylink-minimedkit/testMeterBGx15.hex",
            "rileylink-minimedkit-glucose/testGlucosePageCRC.hex",
        ] {
            v.extend(page(rel));
        }
    }
    if v.is_empty() {
        v.push(with_crc(unhex("01009000900058008a344b10101f20a4e30e0a13")));
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1100)) {
        exercise(&bytes);
    }

    #[test]
    fn any_page_with_a_valid_crc_decodes(data in proptest::collection::vec(any::<u8>(), PAGE_DATA_LEN)) {
        let p = with_crc(data);
        for m in MODELS {
            prop_assert!(decode_history_page(&p, model(m)).is_ok());
        }
        prop_assert!(decode_glucose_page(&p).is_ok());
        exercise(&p);
    }

    #[test]
    fn damaged_real_pages_decode_without_panic(
        which in 0usize..5,
        edits in proptest::collection::vec((0usize..PAGE_DATA_LEN, any::<u8>()), 1..12),
    ) {
        let seeds = seeds();
        let mut p = seeds[which % seeds.len()].clone();
        p.truncate(PAGE_DATA_LEN);
        for (i, b) in edits {
            if i < p.len() {
                p[i] = b;
            }
        }
        exercise(&with_crc(p));
    }
}
