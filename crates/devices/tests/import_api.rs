//! The importer API: format detection, errors, the `diabase inspect` JSON shape.
#![allow(clippy::unwrap_used)]

mod import_util;

use devices::import::{Format, HEAD_LEN, ImportError, Item, detect, import, inspect_bytes};
use import_util as u;
use serde_json::json;

#[test]
fn detects_every_fixture_from_its_head() {
    let cases = [
        ("carelink-csv/decocare-578398-mm522/CareLink-Export-1430357806982.csv", Format::CarelinkCsv),
        ("carelink-csv/glucosedao-guardian-connect/medtronics_test_livia.csv", Format::CarelinkCsv),
        ("carelink-csv/tidepool-uploader/bolus/dual/withWizard/input.csv", Format::CarelinkCsv),
        ("carelink-csv/tidepool-uploader/bolus/22-series/dual/withWizard/old.csv", Format::CarelinkCsv),
        ("dexcom-clarity-csv/glucosedao-synthetic/Clarity_Export_synthetic.csv", Format::DexcomClarityCsv),
        ("libre-csv/glucosedao-synthetic/FreeStyle_Libre_3_synthetic.csv", Format::LibreViewCsv),
        ("nightscout/glucosedao/nightscout_entries.json", Format::NightscoutJson),
        ("nightscout/glucosedao/nightscout_treatments.json", Format::NightscoutJson),
        ("nightscout/glucosedao/nightscout_profile.json", Format::NightscoutJson),
        ("nightscout/glucosedao/nightscout_entries.csv", Format::NightscoutEntriesCsv),
    ];
    for (rel, want) in cases {
        let Some(bytes) = u::read(rel) else { return };
        // A few KB are enough, with or without the file name.
        let head = &bytes[..bytes.len().min(4096)];
        assert_eq!(detect(head, None), Some(want), "{rel}");
        assert_eq!(detect(&bytes[..bytes.len().min(HEAD_LEN)], Some(rel)), Some(want), "{rel}");
    }
    // The iglu CSV is not an export this module reads.
    let Some(iglu) = u::read("cgm-datasets/iglu-example-data-5-subject/example_data_5_subject.subjects_1-3.csv") else {
        return;
    };
    assert_eq!(detect(&iglu, None), None);
}

#[test]
fn rejects_what_it_cannot_read() {
    assert!(matches!(inspect_bytes(b"", None), Err(ImportError::Empty)));
    assert!(matches!(inspect_bytes(b" \r\n\t", None), Err(ImportError::Empty)));
    assert!(matches!(import(&b""[..], Format::LibreViewCsv), Err(ImportError::Empty)));
    let e = inspect_bytes(b"hello,world\n1,2\n", Some("x.csv")).unwrap_err();
    assert!(matches!(e, ImportError::UnrecognisedFormat(_)));
    assert!(e.to_string().contains("\"hello,world"), "{e}");
    assert_eq!(detect(b"{\"foo\": 1}", None), None);
    assert_eq!(detect(b"{\"foo\": 1}", Some("dump.json")), Some(Format::NightscoutJson));
    assert_eq!(detect(&[0xff, 0xfe, 0x00, 0xd8], None), None);
    // Forcing a CSV format on a file without its header is an error that says what is missing.
    let e = import(&b"a,b,c\n"[..], Format::DexcomClarityCsv).unwrap_err();
    assert!(e.to_string().contains("Event Type"), "{e}");
    let e = import(&b"a,b,c\n"[..], Format::LibreViewCsv).unwrap_err();
    assert!(e.to_string().contains("Record Type"), "{e}");
}

#[test]
fn format_names_round_trip() {
    for f in Format::ALL {
        assert_eq!(Format::from_name(f.name()), Some(f));
        assert_eq!(serde_json::to_value(f).unwrap(), json!(f.name()));
        assert!(!f.to_string().is_empty());
    }
}

#[test]
fn inspect_json_has_the_contract_shape() {
    let text = "Index,Date,Time,Timestamp,New Device Time,BG Reading (mg/dL),Sensor Glucose (mg/dL),Raw-Type,Raw-Values,Raw-ID,Raw-Upload ID,Raw-Seq Num,Raw-Device Type\n\
                1,3/13/14,00:04:00,3/13/14 00:04:00,,,120,GlucoseSensorData,\"AMOUNT=120\",1,2,3,Paradigm Revel - 723\n\
                2,3/13/14,00:09:00,3/13/14 00:09:00,,,9999,GlucoseSensorData,\"AMOUNT=9999\",1,2,4,Paradigm Revel - 723\n";
    let ins = inspect_bytes(text.as_bytes(), Some("pump.csv")).unwrap();
    assert_eq!(
        ins.to_json("pump.csv"),
        json!({
            "source": {"format": "carelink_csv", "device": {"manufacturer": "Medtronic", "model": "Paradigm Revel - 723", "serial": null}},
            "records": [{"type": "cgm", "value_mg_dl": 120, "device_time": "2014-03-13T00:04:00"}],
            "rejected": [{"where": "pump.csv:3", "reason": "Sensor Glucose: 9999 mg/dL is outside the accepted 20–600 mg/dL"}],
        })
    );
    // `Serialize` gives the same shape with the file name "input".
    assert_eq!(serde_json::to_value(&ins).unwrap()["rejected"][0]["where"], "input:3");
    // The streaming view: device first, then the record and the rejection in file order.
    let items: Vec<Item> = import(text.as_bytes(), Format::CarelinkCsv).unwrap().collect();
    assert!(matches!(&items[..], [Item::Device(_), Item::Record(_), Item::Rejected(_)]));
}
