//! FHIR R4 (4.0.1) export of a patient's glucose data, shaped by the HL7
//! Continuous Glucose Monitoring implementation guide (STU 1, 1.0.0): a
//! `collection` Bundle with the Patient, their Devices, one sensor-reading
//! Observation per CGM value (LOINC 99504-3, mg/dL), one Observation per
//! meter or calibration blood glucose (LOINC 41653-7), and a CGM summary
//! (LOINC 104643-2) whose members carry the mean glucose, the times in
//! ranges, the GMI, the coefficient of variation, the days of wear and the
//! sensor-active percentage of a reporting period.
//!
//! The writer streams: a year of five-minute readings is about 100,000
//! Observations, written one at a time to any `io::Write`. Resource ids are
//! given by the caller (`urn:uuid:` references inside the bundle), so the same
//! data exports to the same ids every time. Pure: no clock, no database.

use crate::metrics::GlucoseReport;
use crate::record::{BgSource, OutOfRange};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::io::{self, Write};

pub const LOINC: &str = "http://loinc.org";
/// The IG's code system for summary codes that had no LOINC code when it was written.
pub const CGM_SUMMARY_CODES: &str = "http://hl7.org/fhir/uv/cgm/CodeSystem/cgm-summary-codes-temporary";
const UCUM: &str = "http://unitsofmeasure.org";
const PROFILE: &str = "http://hl7.org/fhir/uv/cgm/StructureDefinition/";
const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// The interstitial glucose of a CGM sensor reading.
pub const LOINC_SENSOR_MASS: &str = "99504-3";
/// Capillary blood glucose by glucometer (meter readings and calibrations).
pub const LOINC_METER_BG: &str = "41653-7";

/// The patient the bundle is about.
pub struct PatientInfo<'a> {
    pub uuid: &'a str,
    pub name: &'a str,
    pub email: Option<&'a str>,
}

/// A device that produced readings.
pub struct DeviceInfo<'a> {
    pub uuid: &'a str,
    pub manufacturer: &'a str,
    pub model: &'a str,
    pub serial: &'a str,
}

/// Where a glucose value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadingKind {
    Cgm,
    Bg(BgSource),
}

/// One stored glucose value.
pub struct Reading<'a> {
    pub uuid: &'a str,
    pub time: DateTime<Utc>,
    pub value_mg_dl: u16,
    pub kind: ReadingKind,
    /// The device printed LOW or HIGH: the value is the limit it reports.
    pub out_of_range: Option<OutOfRange>,
    pub device_uuid: Option<&'a str>,
}

/// A CGM summary over whole local days `from..=to`.
pub struct Summary<'a> {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub report: &'a GlucoseReport,
    /// Local days of the period with at least one CGM reading.
    pub days_of_wear: u32,
    /// Ids of the summary and its members: summary, mean, ranges, GMI, CV,
    /// days of wear, sensor active.
    pub uuids: [&'a str; 7],
}

fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn urn(uuid: &str) -> String {
    format!("urn:uuid:{uuid}")
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn percent(x: f64) -> Value {
    json!({"value": round2(x), "unit": "%", "system": UCUM, "code": "%"})
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"system": system, "code": code, "display": display})
}

fn laboratory() -> Value {
    json!([{"coding": [{"system": CATEGORY, "code": "laboratory", "display": "Laboratory"}]}])
}

/// Writes one Bundle: call [`BundleWriter::reading`] for each value, then
/// [`BundleWriter::summary`] if there is one, then [`BundleWriter::finish`].
pub struct BundleWriter<'p, W: Write> {
    out: W,
    patient_ref: String,
    patient: &'p PatientInfo<'p>,
    first: bool,
}

impl<'p, W: Write> BundleWriter<'p, W> {
    /// Starts the bundle and writes the Patient and Device resources.
    pub fn new(
        mut out: W,
        bundle_uuid: &str,
        timestamp: DateTime<Utc>,
        patient: &'p PatientInfo<'p>,
        devices: &[DeviceInfo<'_>],
    ) -> io::Result<Self> {
        let head =
            json!({"resourceType": "Bundle", "id": bundle_uuid, "type": "collection", "timestamp": utc(timestamp)});
        let head = serde_json::to_string(&head)?;
        // `{...}` without its closing brace, then the entries.
        out.write_all(&head.as_bytes()[..head.len() - 1])?;
        out.write_all(b",\"entry\":[")?;
        let mut w = BundleWriter { out, patient_ref: urn(patient.uuid), patient, first: true };
        let mut p = json!({
            "resourceType": "Patient",
            "id": patient.uuid,
            "active": true,
            "name": [{"text": patient.name}],
        });
        if let Some(email) = patient.email {
            p["telecom"] = json!([{"system": "email", "value": email}]);
        }
        w.entry(patient.uuid, &p)?;
        for d in devices {
            let mut r = json!({
                "resourceType": "Device",
                "id": d.uuid,
                "status": "active",
                "manufacturer": d.manufacturer,
                "patient": {"reference": w.patient_ref},
            });
            if !d.model.is_empty() {
                r["deviceName"] = json!([{"name": d.model, "type": "model-name"}]);
            }
            if !d.serial.is_empty() {
                r["serialNumber"] = json!(d.serial);
            }
            w.entry(d.uuid, &r)?;
        }
        Ok(w)
    }

    fn entry(&mut self, uuid: &str, resource: &Value) -> io::Result<()> {
        if !self.first {
            self.out.write_all(b",")?;
        }
        self.first = false;
        serde_json::to_writer(&mut self.out, &json!({"fullUrl": urn(uuid), "resource": resource}))?;
        Ok(())
    }

    /// One glucose value as an Observation.
    pub fn reading(&mut self, r: &Reading<'_>) -> io::Result<()> {
        let mut value = json!({"value": r.value_mg_dl, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"});
        match r.out_of_range {
            Some(OutOfRange::Below) => value["comparator"] = json!("<"),
            Some(OutOfRange::Above) => value["comparator"] = json!(">"),
            None => {}
        }
        let mut o = match r.kind {
            ReadingKind::Cgm => json!({
                "resourceType": "Observation",
                "id": r.uuid,
                "meta": {"profile": [format!("{PROFILE}cgm-sensor-reading-mass-per-volume")]},
                "status": "final",
                "category": laboratory(),
                "code": {"coding": [coding(LOINC, LOINC_SENSOR_MASS, "Glucose [Mass/volume] in Interstitial fluid")]},
            }),
            ReadingKind::Bg(source) => {
                let mut o = json!({
                    "resourceType": "Observation",
                    "id": r.uuid,
                    "status": "final",
                    "category": laboratory(),
                    "code": {"coding": [coding(LOINC, LOINC_METER_BG, "Glucose [Mass/volume] in Capillary blood by Glucometer")]},
                });
                let how = match source {
                    BgSource::Meter => "Meter reading",
                    BgSource::LinkedMeter => "Meter reading sent to the pump",
                    BgSource::Manual => "Entered by hand",
                    BgSource::Calibration => "Sensor calibration",
                };
                o["note"] = json!([{"text": how}]);
                o
            }
        };
        o["subject"] = json!({"reference": self.patient_ref});
        o["effectiveDateTime"] = json!(utc(r.time));
        o["valueQuantity"] = value;
        if let Some(d) = r.device_uuid {
            o["device"] = json!({"reference": urn(d)});
        }
        self.entry(r.uuid, &o)
    }

    /// The CGM summary and its member Observations; nothing when the
    /// period holds no CGM reading.
    pub fn summary(&mut self, s: &Summary<'_>) -> io::Result<()> {
        let g = s.report;
        if g.readings == 0 {
            return Ok(());
        }
        let period =
            json!({"start": s.from.format("%Y-%m-%d").to_string(), "end": s.to.format("%Y-%m-%d").to_string()});
        let [summary_id, mean_id, ranges_id, gmi_id, cv_id, wear_id, active_id] = s.uuids;
        let base = |id: &str, profile: &str, code: Value| {
            json!({
                "resourceType": "Observation",
                "id": id,
                "meta": {"profile": [format!("{PROFILE}{profile}")]},
                "status": "final",
                "category": laboratory(),
                "code": {"coding": code},
                "subject": {"reference": self.patient_ref},
                "effectivePeriod": period,
            })
        };
        let mut members: Vec<(String, Value)> = Vec::new();
        if let Some(mean) = g.mean_mg_dl {
            let mut o = base(
                mean_id,
                "cgm-summary-mean-glucose-mass-per-volume",
                json!([coding(
                    LOINC,
                    "97507-8",
                    "Average glucose [Mass/volume] in Interstitial fluid during Reporting Period"
                )]),
            );
            o["valueQuantity"] =
                json!({"value": (mean * 10.0).round() / 10.0, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"});
            members.push((mean_id.to_string(), o));
        }
        if let (Some(vl), Some(l), Some(r), Some(h), Some(vh)) =
            (g.very_low_percent, g.low_percent, g.in_range_percent, g.high_percent, g.very_high_percent)
        {
            let mut o = base(
                ranges_id,
                "cgm-summary-times-in-ranges",
                json!([coding(LOINC, "106793-3", "Continuous glucose monitoring time in ranges panel")]),
            );
            let part = |code: &str, display: &str, v: f64| json!({"code": {"coding": [coding(LOINC, code, display)]}, "valueQuantity": percent(v)});
            o["component"] = json!([
                part(
                    "104642-4",
                    "Time below range, very low in Reporting Period Interstitial fluid by calculation",
                    vl
                ),
                part("104641-6", "Time below range, low in Reporting Period Interstitial fluid by calculation", l),
                part(
                    "97510-2",
                    "Glucose measurements in range out of Total glucose measurements during reporting period",
                    r
                ),
                part("104640-8", "Time above range, high in Reporting Period Interstitial fluid by calculation", h),
                part(
                    "104639-0",
                    "Time above range, very high in Reporting Period Interstitial fluid by calculation",
                    vh
                ),
            ]);
            members.push((ranges_id.to_string(), o));
        }
        if let Some(gmi) = g.gmi_percent {
            let mut o =
                base(gmi_id, "cgm-summary-gmi", json!([coding(LOINC, "97506-0", "Glucose management indicator")]));
            o["valueQuantity"] = percent(gmi);
            members.push((gmi_id.to_string(), o));
        }
        if let Some(cv) = g.cv_percent {
            let mut o = base(
                cv_id,
                "cgm-summary-coefficient-of-variation",
                json!([coding(CGM_SUMMARY_CODES, "coefficient-of-variation", "Coefficient of Variation (CV)")]),
            );
            o["valueQuantity"] = percent(cv);
            members.push((cv_id.to_string(), o));
        }
        let mut wear = base(
            wear_id,
            "cgm-summary-days-of-wear",
            json!([coding(CGM_SUMMARY_CODES, "days-of-wear", "Days of Wear")]),
        );
        wear["valueQuantity"] = json!({"value": s.days_of_wear, "unit": "days", "system": UCUM, "code": "d"});
        members.push((wear_id.to_string(), wear));
        if let Some(active) = g.cgm_active_percent {
            let mut o = base(
                active_id,
                "cgm-summary-sensor-active-percentage",
                json!([coding(CGM_SUMMARY_CODES, "sensor-active-percentage", "Sensor Active Percentage")]),
            );
            o["valueQuantity"] = percent(active);
            members.push((active_id.to_string(), o));
        }
        let mut summary = base(
            summary_id,
            "cgm-summary",
            json!([
                coding(LOINC, "104643-2", "Glucose summary panel [Mass/volume] Interstitial fluid by CGM"),
                coding(CGM_SUMMARY_CODES, "cgm-summary", "CGM Summary Report"),
            ]),
        );
        summary["hasMember"] = Value::Array(members.iter().map(|(id, _)| json!({"reference": urn(id)})).collect());
        self.entry(summary_id, &summary)?;
        for (id, o) in &members {
            self.entry(id, o)?;
        }
        Ok(())
    }

    /// Closes the bundle and hands back the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let _ = self.patient;
        self.out.write_all(b"]}")?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Reading as MReading, ReportInput, glucose_report};
    use chrono::TimeZone;

    fn bundle(readings: &[Reading<'_>], summary: Option<&Summary<'_>>) -> Value {
        let p = PatientInfo {
            uuid: "00000000-0000-4000-8000-000000000001",
            name: "Ana Żółć",
            email: Some("ana@example.org"),
        };
        let d = [DeviceInfo {
            uuid: "00000000-0000-4000-8000-000000000002",
            manufacturer: "Medtronic",
            model: "MiniMed 640G",
            serial: "NG1234567H",
        }];
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let mut w = BundleWriter::new(Vec::new(), "00000000-0000-4000-8000-0000000000ff", t, &p, &d).unwrap();
        for r in readings {
            w.reading(r).unwrap();
        }
        if let Some(s) = summary {
            w.summary(s).unwrap();
        }
        serde_json::from_slice(&w.finish().unwrap()).expect("the bundle is JSON")
    }

    #[test]
    fn empty_bundle_has_patient_and_device() {
        let b = bundle(&[], None);
        assert_eq!(b["resourceType"], "Bundle");
        assert_eq!(b["type"], "collection");
        assert_eq!(b["timestamp"], "2026-01-02T03:04:05Z");
        let e = b["entry"].as_array().unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0]["resource"]["resourceType"], "Patient");
        assert_eq!(e[0]["resource"]["name"][0]["text"], "Ana Żółć");
        assert_eq!(e[0]["fullUrl"], "urn:uuid:00000000-0000-4000-8000-000000000001");
        assert_eq!(e[1]["resource"]["serialNumber"], "NG1234567H");
        assert_eq!(e[1]["resource"]["patient"]["reference"], e[0]["fullUrl"]);
    }

    #[test]
    fn readings_carry_loinc_units_and_comparators() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let rs = [
            Reading {
                uuid: "a",
                time: t,
                value_mg_dl: 123,
                kind: ReadingKind::Cgm,
                out_of_range: None,
                device_uuid: Some("dev"),
            },
            Reading {
                uuid: "b",
                time: t,
                value_mg_dl: 40,
                kind: ReadingKind::Cgm,
                out_of_range: Some(OutOfRange::Below),
                device_uuid: None,
            },
            Reading {
                uuid: "c",
                time: t,
                value_mg_dl: 98,
                kind: ReadingKind::Bg(BgSource::Calibration),
                out_of_range: None,
                device_uuid: None,
            },
        ];
        let b = bundle(&rs, None);
        let e = b["entry"].as_array().unwrap();
        let cgm = &e[2]["resource"];
        assert_eq!(cgm["code"]["coding"][0]["code"], LOINC_SENSOR_MASS);
        assert_eq!(cgm["valueQuantity"]["value"], 123);
        assert_eq!(cgm["valueQuantity"]["code"], "mg/dL");
        assert_eq!(cgm["effectiveDateTime"], "2026-01-01T12:00:00Z");
        assert_eq!(cgm["device"]["reference"], "urn:uuid:dev");
        assert!(cgm.get("comparator").is_none());
        assert_eq!(e[3]["resource"]["valueQuantity"]["comparator"], "<");
        assert_eq!(e[4]["resource"]["code"]["coding"][0]["code"], LOINC_METER_BG);
        assert_eq!(e[4]["resource"]["note"][0]["text"], "Sensor calibration");
    }

    #[test]
    fn summary_members_match_the_report() {
        let zone = chrono_tz::UTC;
        let from = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let to = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        // 288 readings: 1/4 at 50, 1/4 at 65, 1/4 at 150, 1/4 at 300 mg/dL.
        let cgm: Vec<MReading> = (0..288)
            .map(|i| MReading {
                time: start + chrono::Duration::minutes(5 * i),
                value_mg_dl: [50, 65, 150, 300][(i % 4) as usize],
            })
            .collect();
        let report = glucose_report(&ReportInput::new(&cgm, zone, from, to));
        let s = Summary { from, to, report: &report, days_of_wear: 1, uuids: ["s", "m", "r", "g", "v", "w", "x"] };
        let b = bundle(&[], Some(&s));
        let e = b["entry"].as_array().unwrap();
        let summary = &e[2]["resource"];
        assert_eq!(summary["code"]["coding"][0]["code"], "104643-2");
        assert_eq!(summary["effectivePeriod"]["start"], "2026-01-01");
        let members = summary["hasMember"].as_array().unwrap();
        assert_eq!(members.len(), 6);
        assert_eq!(e.len(), 2 + 1 + 6);
        let find = |id: &str| e.iter().find(|x| x["resource"]["id"] == id).unwrap()["resource"].clone();
        assert_eq!(find("m")["valueQuantity"]["value"], 141.3);
        let ranges = find("r");
        let pcts: Vec<f64> = ranges["component"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["valueQuantity"]["value"].as_f64().unwrap())
            .collect();
        assert_eq!(pcts, vec![25.0, 25.0, 25.0, 0.0, 25.0]);
        assert_eq!(find("w")["valueQuantity"]["value"], 1);
        assert_eq!(find("x")["valueQuantity"]["value"], 100.0);
    }

    #[test]
    fn no_summary_without_readings() {
        let zone = chrono_tz::UTC;
        let d = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let report = glucose_report(&ReportInput::new(&[], zone, d, d));
        let s =
            Summary { from: d, to: d, report: &report, days_of_wear: 0, uuids: ["s", "m", "r", "g", "v", "w", "x"] };
        assert_eq!(bundle(&[], Some(&s))["entry"].as_array().unwrap().len(), 2);
    }
}
