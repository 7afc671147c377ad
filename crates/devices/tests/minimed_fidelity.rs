//! Issue 24 (fidelity), the MiniMed side: bare pages that begin like JSON are still pages; a
//! dual-wave bolus keeps both parts; a Bolus Wizard estimate keeps what was entered, its own
//! time, and survives its bolus being on the next page (pages decoded one at a time give the
//! records of the pages decoded together).
#![allow(clippy::unwrap_used)]

mod import_util;

use chrono::NaiveDateTime;
use devices::import::{Format, detect, inspect_bytes};
use devices::minimed::PumpModel;
use devices::minimed::dump::{self, RawHints, decode_pages, decode_raw};
use devices::minimed::encode::{HistoryEvent, HistoryPages};
use devices::minimed::history::{BgUnits, Bolus, BolusType, EventData, WizardEstimate};
use std::collections::BTreeSet;
use therapy::{BolusSubtype, Record, RecordKind};

fn t(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap()
}

fn m522() -> PumpModel {
    "522".parse().unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    dump::parse_hex(s).unwrap()
}

fn bolus(bolus_type: BolusType, programmed_u: f64, delivered_u: f64, duration_min: u32) -> EventData {
    EventData::Bolus(Bolus {
        bolus_type,
        programmed_u,
        delivered_u,
        duration_min,
        unabsorbed_total_u: None,
        remote: None,
        unabsorbed: None,
    })
}

fn wizard(carbs_g: u16, estimate: f64) -> EventData {
    EventData::BolusWizard(WizardEstimate {
        units: BgUnits::MgDl,
        carbs_g,
        bg: 180,
        carb_ratio_g_per_u: 10.0,
        sensitivity: 40,
        target_low: 100,
        target_high: 120,
        food_estimate_u: f64::from(carbs_g) / 10.0,
        correction_estimate_u: 1.5,
        unabsorbed_insulin_u: 0.0,
        bolus_estimate_u: estimate,
    })
}

/// One history page holding `events` (oldest first), as the pump writes it.
fn page(events: &[(&str, EventData)]) -> Vec<u8> {
    let mut p = HistoryPages::default();
    for (at, data) in events {
        p.push(HistoryEvent::new(t(at), data.clone()), m522()).unwrap();
    }
    let pages = p.pages();
    assert_eq!(pages.len(), 1);
    pages.into_iter().next().unwrap()
}

fn basal_start(at: &'static str) -> (&'static str, EventData) {
    (at, EventData::BasalProfileStart { rate_u_h: 0.8, offset_min: 360, index: 1, pattern: 0 })
}

/// `detect`, and `inspect_bytes` (what `diabase inspect` runs), take `bytes` as MiniMed pages
/// and decode them as [`decode_raw`] does.
fn assert_pages(bytes: &[u8], what: &str) -> Vec<Record> {
    assert_eq!(detect(bytes, None), Some(Format::MinimedPages), "{what}");
    assert_eq!(detect(bytes, Some("upload.json")), Some(Format::MinimedPages), "{what}");
    assert!(dump::is_bare_pages(bytes), "{what}");
    let ins = inspect_bytes(bytes, None).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(ins.format, Format::MinimedPages, "{what}");
    assert!(!ins.records.is_empty(), "{what}: no records");
    let direct = decode_raw(bytes, RawHints::default()).unwrap();
    assert_eq!(ins.records, direct.records, "{what}");
    ins.records
}

#[test]
fn encoded_pages_starting_with_a_bracket_are_pages() {
    // 0x7B `{`: a basal profile start first; 0x5B `[`: a Bolus Wizard estimate first.
    let brace =
        page(&[basal_start("2024-05-01T06:00:00"), ("2024-05-01T07:00:00", bolus(BolusType::Normal, 1.0, 1.0, 0))]);
    let bracket = page(&[
        ("2024-05-01T08:00:00", wizard(30, 4.5)),
        ("2024-05-01T08:00:05", bolus(BolusType::Normal, 4.5, 4.5, 0)),
    ]);
    assert_eq!((brace[0], bracket[0]), (b'{', b'['));
    for (p, first) in [(&brace, "basal_profile_start"), (&bracket, "bolus_wizard")] {
        let two = [p.clone(), p.clone()].concat();
        for (bytes, what) in [
            (p.clone(), "binary"),
            (hex(p).into_bytes(), "hex"),
            (hex(p).to_ascii_uppercase().into_bytes(), "HEX"),
            (format!("{}\n", hex(p)).into_bytes(), "hex line"),
            (two, "two binary pages"),
        ] {
            let records = assert_pages(&bytes, &format!("{first} {what}"));
            assert_eq!(records[0].type_name(), first, "{what}");
        }
    }
    // Not a page: a JSON dump still goes to the JSON reader (and says what is wrong with it).
    let e = inspect_bytes(br#"{"format": "minimed_pages", "device": 1}"#, None).unwrap_err();
    assert!(e.to_string().contains("MiniMed"), "{e}");
    // One byte short of a page is not a page.
    assert!(!dump::is_bare_pages(&brace[..1023]));
    assert!(!dump::starts_with_page(&brace[..1023]));
}

#[test]
fn fixture_pages_starting_with_a_bracket_are_pages() {
    let dir = "minimed-pages";
    let Some(bin5b) = import_util::read(&format!("{dir}/decocare-578398-mm522/ReadHistoryData-page-5.data")) else {
        return;
    };
    assert_eq!(bin5b[0], 0x5B);
    let mut cases = vec![(bin5b.clone(), "page-5.data (binary, 0x5B)".to_string())];
    cases.push((hex(&bin5b).into_bytes(), "page-5.data as hex".into()));
    for rel in ["testSaveSettings.hex", "testHistoryTimeShift-page-1.hex"] {
        let text = import_util::read(&format!("{dir}/rileylink-minimedkit/{rel}")).unwrap();
        let bin = unhex(std::str::from_utf8(&text).unwrap());
        assert_eq!(bin[0], 0x7B, "{rel}");
        cases.push((text, format!("{rel} (hex, 0x7B)")));
        cases.push((bin, format!("{rel} as binary")));
    }
    for (bytes, what) in cases {
        assert_pages(&bytes, &what);
    }
}

/// The MiniMed decoder's dual-wave bolus keeps both parts; an interrupted square part's
/// duration is the time it ran.
#[test]
fn a_dual_wave_bolus_keeps_both_parts() {
    let p = page(&[
        basal_start("2024-05-01T06:00:00"),
        ("2024-05-01T12:00:00", bolus(BolusType::DualNormal, 2.0, 2.0, 0)),
        ("2024-05-01T12:00:01", bolus(BolusType::DualSquare, 3.0, 1.5, 60)),
        ("2024-05-01T15:00:00", bolus(BolusType::Square, 2.0, 2.0, 90)),
        ("2024-05-01T18:00:00", bolus(BolusType::DualNormal, 1.0, 1.0, 0)),
    ]);
    let d = decode_pages(m522(), &[(0, p)], &[]);
    let boluses: Vec<&RecordKind> = d.records.iter().filter(|r| r.type_name() == "bolus").map(|r| &r.kind).collect();
    assert_eq!(
        boluses,
        [
            &RecordKind::Bolus {
                subtype: BolusSubtype::Dual,
                programmed_u: Some(5.0),
                delivered_u: Some(3.5),
                duration_min: Some(30),
                normal_programmed_u: Some(2.0),
                normal_delivered_u: Some(2.0),
                extended_programmed_u: Some(3.0),
                extended_delivered_u: Some(1.5),
                extended_duration_min: Some(30),
            },
            &RecordKind::Bolus {
                subtype: BolusSubtype::Square,
                programmed_u: Some(2.0),
                delivered_u: Some(2.0),
                duration_min: Some(90),
                normal_programmed_u: Some(0.0),
                normal_delivered_u: Some(0.0),
                extended_programmed_u: Some(2.0),
                extended_delivered_u: Some(2.0),
                extended_duration_min: Some(90),
            },
            // Its square part never came: the part now only.
            &RecordKind::Bolus {
                subtype: BolusSubtype::Dual,
                programmed_u: Some(1.0),
                delivered_u: Some(1.0),
                duration_min: None,
                normal_programmed_u: Some(1.0),
                normal_delivered_u: Some(1.0),
                extended_programmed_u: None,
                extended_delivered_u: None,
                extended_duration_min: None,
            },
        ]
    );
}

fn wizards(records: &[Record]) -> Vec<(String, Option<f64>)> {
    records
        .iter()
        .filter_map(|r| match &r.kind {
            RecordKind::BolusWizard(w) => Some((r.device_time.to_string(), w.carbs_g)),
            _ => None,
        })
        .collect()
}

/// A correction-only estimate keeps `carbs_g: 0` and its own time, and makes no `carbs`.
#[test]
fn a_wizard_keeps_zero_carbs_and_its_own_time() {
    let p = page(&[
        basal_start("2024-05-01T06:00:00"),
        ("2024-05-01T09:00:00", wizard(0, 1.5)),
        ("2024-05-01T09:00:40", bolus(BolusType::Normal, 1.5, 1.5, 0)),
        ("2024-05-01T20:00:00", bolus(BolusType::Normal, 0.5, 0.5, 0)),
    ]);
    let d = decode_pages(m522(), &[(0, p)], &[]);
    assert_eq!(wizards(&d.records), [("2024-05-01T09:00:00".to_string(), Some(0.0))]);
    assert!(d.records.iter().all(|r| r.type_name() != "carbs"));
    let v = serde_json::to_value(d.records.iter().find(|r| r.type_name() == "bolus_wizard").unwrap()).unwrap();
    assert_eq!(v["carbs_g"], 0.0);
}

/// The set of records a list of decodes gives, as the store would keep them (one of each).
fn record_set(records: impl IntoIterator<Item = Record>) -> BTreeSet<String> {
    records.into_iter().map(|r| serde_json::to_string(&r).unwrap()).collect()
}

/// An estimate at the end of one page whose bolus is the first record of the next page: kept
/// when the pages are decoded together, and when each is decoded alone (the incremental case);
/// an estimate backed out of mid-page is still dropped.
#[test]
fn a_wizard_whose_bolus_is_on_the_next_page_is_kept() {
    let older = page(&[
        basal_start("2024-05-01T06:00:00"),
        ("2024-05-01T10:00:00", wizard(20, 2.0)),
        ("2024-05-01T11:00:00", bolus(BolusType::Normal, 0.5, 0.5, 0)),
        ("2024-05-01T12:30:00", wizard(45, 4.5)),
    ]);
    let newer = page(&[
        ("2024-05-01T12:30:20", bolus(BolusType::Normal, 4.5, 4.5, 0)),
        ("2024-05-01T14:00:00", bolus(BolusType::Normal, 1.0, 1.0, 0)),
    ]);
    let together = decode_pages(m522(), &[(0, newer.clone()), (1, older.clone())], &[]);
    let want = [("2024-05-01T12:30:00".to_string(), Some(45.0))];
    assert_eq!(wizards(&together.records), want);
    let alone = decode_pages(m522(), &[(1, older)], &[]);
    assert_eq!(wizards(&alone.records), want);
    let newest = decode_pages(m522(), &[(0, newer)], &[]);
    assert_eq!(record_set(alone.records.into_iter().chain(newest.records)), record_set(together.records));
}

/// The shared 522 pages decoded one at a time (as separate uploads would) give the records of
/// all 11 decoded together.
#[test]
fn decocare_pages_one_at_a_time_match_all_together() {
    let mut pages = Vec::new();
    for i in 0..=10u32 {
        let Some(p) = import_util::read(&format!("minimed-pages/decocare-578398-mm522/ReadHistoryData-page-{i}.data"))
        else {
            return;
        };
        pages.push((i, p));
    }
    let together = decode_pages(m522(), &pages, &[]);
    // The whole history's clock walk finds where the pump lost its clock (2015-04-24) and
    // uses nothing older; a page alone cannot see that, so the comparison starts there.
    assert!(together.rejected.iter().any(|r| r.reason.contains("lost its clock")), "{:?}", together.rejected);
    // (A daily total is dated at the midnight starting its day, before the records it sums.)
    let from = together.records.iter().filter(|r| r.type_name() != "daily_total").map(|r| r.device_time).min().unwrap();
    let one_by_one: Vec<Record> = pages
        .iter()
        .flat_map(|p| decode_pages(m522(), std::slice::from_ref(p), &[]).records)
        .filter(|r| r.device_time >= from)
        .collect();
    let since: Vec<Record> = together.records.iter().filter(|r| r.device_time >= from).cloned().collect();
    assert!(since.len() > 200, "{}", since.len());
    let (a, b) = (record_set(one_by_one), record_set(since));
    let only_alone: Vec<_> = a.difference(&b).collect();
    let only_together: Vec<_> = b.difference(&a).collect();
    assert!(
        only_alone.is_empty() && only_together.is_empty(),
        "only one at a time: {only_alone:#?}\nonly together: {only_together:#?}"
    );
    // Correction-only estimates keep their 0 g.
    assert!(wizards(&together.records).iter().any(|w| w.1 == Some(0.0)));
}
