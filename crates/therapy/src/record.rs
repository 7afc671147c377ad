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
    Bolus {
        subtype: BolusSubtype,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        programmed_u: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivered_u: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_min: Option<u32>,
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
            RecordKind::Bolus {
                subtype: BolusSubtype::Normal,
                programmed_u: Some(1.5),
                delivered_u: Some(1.5),
                duration_min: None,
            },
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
    fn suspend_has_only_type_and_time() {
        let r = Record::new("2020-01-01T00:00:00".parse().unwrap(), RecordKind::Suspend);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"type": "suspend", "device_time": "2020-01-01T00:00:00"})
        );
    }
}
