//! The normalised therapy record: the contract of `diabase inspect` and of
//! `GET …/records` (see docs/DESIGN.md, "Normalised records").
//!
//! Serialised form: `{"type": "...", "device_time": "YYYY-MM-DDTHH:MM:SS",
//! "time"?: RFC 3339 UTC, ...type fields}`; a field the source lacks is absent.

use crate::time::DeviceTime;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One normalised record from a device or a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    #[serde(flatten)]
    pub kind: RecordKind,
    pub device_time: DeviceTime,
    /// The UTC instant, once a zone and clock offset are known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
}

impl Record {
    pub fn new(device_time: DeviceTime, kind: RecordKind) -> Self {
        Record { kind, device_time, time: None }
    }

    /// The `type` string of this record.
    pub fn type_name(&self) -> &'static str {
        self.kind.type_name()
    }
}

/// CGM trend arrow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    DoubleUp,
    SingleUp,
    FortyFiveUp,
    Flat,
    FortyFiveDown,
    SingleDown,
    DoubleDown,
    NotComputable,
    RateOutOfRange,
}

impl Trend {
    /// Parses Nightscout / Dexcom direction names ("FortyFiveUp", "Flat", …).
    pub fn from_direction(s: &str) -> Option<Trend> {
        Some(match s.trim() {
            "DoubleUp" => Trend::DoubleUp,
            "SingleUp" => Trend::SingleUp,
            "FortyFiveUp" => Trend::FortyFiveUp,
            "Flat" => Trend::Flat,
            "FortyFiveDown" => Trend::FortyFiveDown,
            "SingleDown" => Trend::SingleDown,
            "DoubleDown" => Trend::DoubleDown,
            "NOT COMPUTABLE" | "NotComputable" => Trend::NotComputable,
            "RATE OUT OF RANGE" | "RateOutOfRange" => Trend::RateOutOfRange,
            _ => return None,
        })
    }

    /// The Nightscout direction name.
    pub fn direction(self) -> &'static str {
        match self {
            Trend::DoubleUp => "DoubleUp",
            Trend::SingleUp => "SingleUp",
            Trend::FortyFiveUp => "FortyFiveUp",
            Trend::Flat => "Flat",
            Trend::FortyFiveDown => "FortyFiveDown",
            Trend::SingleDown => "SingleDown",
            Trend::DoubleDown => "DoubleDown",
            Trend::NotComputable => "NOT COMPUTABLE",
            Trend::RateOutOfRange => "RATE OUT OF RANGE",
        }
    }

    pub fn arrow(self) -> &'static str {
        match self {
            Trend::DoubleUp => "⇈",
            Trend::SingleUp => "↑",
            Trend::FortyFiveUp => "↗",
            Trend::Flat => "→",
            Trend::FortyFiveDown => "↘",
            Trend::SingleDown => "↓",
            Trend::DoubleDown => "⇊",
            Trend::NotComputable | Trend::RateOutOfRange => "",
        }
    }
}

/// Where a fingerstick BG came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BgSource {
    Meter,
    LinkedMeter,
    Manual,
    Calibration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BolusSubtype {
    Normal,
    Square,
    Dual,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrimeKind {
    Fixed,
    Manual,
}

/// A sensor reading that a device reported as text rather than a number
/// (Dexcom `Low`/`High`, Libre `LO`/`HI`): stored at the device's limit and
/// flagged, so that reports still count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutOfRange {
    Below,
    Above,
}

/// The typed part of a record; `type` is the tag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RecordKind {
    Cgm {
        value_mg_dl: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trend: Option<Trend>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        out_of_range: Option<OutOfRange>,
    },
    Bg {
        value_mg_dl: u16,
        source: BgSource,
    },
    /// A bolus. `programmed_u` / `delivered_u` are the whole bolus (both parts of a dual
    /// wave), `duration_min` the extended part's duration. Square and dual boluses also carry
    /// their parts, as Tidepool keeps them (`normal` / `expectedNormal`, `extended` /
    /// `expectedExtended`, `duration`): the part now (`normal_*`, 0 for a square bolus) and
    /// the extended part (`extended_*`) with the duration it actually ran; a part the source
    /// does not give is absent.
    Bolus {
        subtype: BolusSubtype,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        programmed_u: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivered_u: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_min: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        normal_programmed_u: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        normal_delivered_u: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        extended_programmed_u: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        extended_delivered_u: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        extended_duration_min: Option<u32>,
    },
    BolusWizard(Box<BolusWizard>),
    BasalProfileStart {
        rate_u_h: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        profile: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset_min: Option<u32>,
    },
    TempBasal {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rate_u_h: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        percent: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_min: Option<u32>,
    },
    Suspend,
    Resume,
    Carbs {
        grams: f64,
    },
    Prime {
        units: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<PrimeKind>,
    },
    Rewind,
    Alarm {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    SensorEvent {
        kind: String,
    },
    TimeChange {
        from: DeviceTime,
        to: DeviceTime,
    },
    DailyTotal {
        date: String,
        units: f64,
    },
    /// A settings snapshot; its fields are the device's own (basal profiles,
    /// carb ratios, sensitivities, targets, active insulin time, …).
    Settings {
        #[serde(flatten)]
        values: serde_json::Map<String, serde_json::Value>,
    },
    Note {
        text: String,
    },
    /// What a pump-page decoder cannot type yet: kept, not dropped.
    Unknown {
        op: u16,
        raw_hex: String,
    },
}

/// Bolus Wizard (bolus calculator) inputs and result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BolusWizard {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carbs_g: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bg_mg_dl: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carb_ratio_g_per_u: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity_mg_dl_per_u: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_low_mg_dl: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_high_mg_dl: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub food_estimate_u: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction_estimate_u: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_insulin_u: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_estimate_u: Option<f64>,
}

impl RecordKind {
    /// A bolus without parts (a normal bolus, or a source that gives only the sums).
    pub fn bolus(
        subtype: BolusSubtype,
        programmed_u: Option<f64>,
        delivered_u: Option<f64>,
        duration_min: Option<u32>,
    ) -> RecordKind {
        RecordKind::Bolus {
            subtype,
            programmed_u,
            delivered_u,
            duration_min,
            normal_programmed_u: None,
            normal_delivered_u: None,
            extended_programmed_u: None,
            extended_delivered_u: None,
            extended_duration_min: None,
        }
    }

    /// The same record without the bolus parts (the `normal_*` / `extended_*` fields): the
    /// form bolus records had before they carried parts. Other kinds are returned unchanged.
    pub fn without_bolus_parts(&self) -> RecordKind {
        match self {
            RecordKind::Bolus { subtype, programmed_u, delivered_u, duration_min, .. } => {
                RecordKind::bolus(*subtype, *programmed_u, *delivered_u, *duration_min)
            }
            other => other.clone(),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            RecordKind::Cgm { .. } => "cgm",
            RecordKind::Bg { .. } => "bg",
            RecordKind::Bolus { .. } => "bolus",
            RecordKind::BolusWizard(_) => "bolus_wizard",
            RecordKind::BasalProfileStart { .. } => "basal_profile_start",
            RecordKind::TempBasal { .. } => "temp_basal",
            RecordKind::Suspend => "suspend",
            RecordKind::Resume => "resume",
            RecordKind::Carbs { .. } => "carbs",
            RecordKind::Prime { .. } => "prime",
            RecordKind::Rewind => "rewind",
            RecordKind::Alarm { .. } => "alarm",
            RecordKind::SensorEvent { .. } => "sensor_event",
            RecordKind::TimeChange { .. } => "time_change",
            RecordKind::DailyTotal { .. } => "daily_total",
            RecordKind::Settings { .. } => "settings",
            RecordKind::Note { .. } => "note",
            RecordKind::Unknown { .. } => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serialises_to_the_contract_shape() {
        let r = Record::new(
            "2015-04-29T18:05:00".parse().unwrap(),
            RecordKind::bolus(BolusSubtype::Normal, Some(1.5), Some(1.5), None),
        );
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"type": "bolus", "subtype": "normal", "programmed_u": 1.5,
                   "delivered_u": 1.5, "device_time": "2015-04-29T18:05:00"})
        );
        let w = Record::new(
            "2015-04-29T18:05:00".parse().unwrap(),
            RecordKind::BolusWizard(Box::new(BolusWizard { carbs_g: Some(30.0), ..Default::default() })),
        );
        let v = serde_json::to_value(&w).unwrap();
        assert_eq!(v["type"], "bolus_wizard");
        assert_eq!(v["carbs_g"], 30.0);
        let back: Record = serde_json::from_value(v).unwrap();
        assert_eq!(back, w);
    }

    #[test]
    fn a_dual_bolus_keeps_both_parts() {
        let r = Record::new(
            "2015-04-29T11:44:45".parse().unwrap(),
            RecordKind::Bolus {
                subtype: BolusSubtype::Dual,
                programmed_u: Some(6.0),
                delivered_u: Some(5.0),
                duration_min: Some(80),
                normal_programmed_u: Some(4.0),
                normal_delivered_u: Some(4.0),
                extended_programmed_u: Some(2.0),
                extended_delivered_u: Some(1.0),
                extended_duration_min: Some(80),
            },
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            json!({"type": "bolus", "subtype": "dual", "programmed_u": 6.0, "delivered_u": 5.0,
                   "duration_min": 80, "normal_programmed_u": 4.0, "normal_delivered_u": 4.0,
                   "extended_programmed_u": 2.0, "extended_delivered_u": 1.0,
                   "extended_duration_min": 80, "device_time": "2015-04-29T11:44:45"})
        );
        let back: Record = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        assert_eq!(r.kind.without_bolus_parts(), RecordKind::bolus(BolusSubtype::Dual, Some(6.0), Some(5.0), Some(80)));
    }

    #[test]
    fn a_wizard_keeps_zero_carbs() {
        let w = Record::new(
            "2015-04-29T18:05:00".parse().unwrap(),
            RecordKind::BolusWizard(Box::new(BolusWizard { carbs_g: Some(0.0), ..Default::default() })),
        );
        let v = serde_json::to_value(&w).unwrap();
        assert_eq!(v["carbs_g"], 0.0);
        assert_eq!(serde_json::from_value::<Record>(v).unwrap(), w);
    }

    #[test]
    fn suspend_has_only_type_and_time() {
        let r = Record::new("2020-01-01T00:00:00".parse().unwrap(), RecordKind::Suspend);
        assert_eq!(serde_json::to_value(&r).unwrap(), json!({"type": "suspend", "device_time": "2020-01-01T00:00:00"}));
    }
}
