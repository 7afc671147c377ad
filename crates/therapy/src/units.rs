//! Glucose units. Readings are integers in mg/dL (the unit every device we read
//! stores); mmol/L is a display unit: mg/dL / 18.0182, one decimal.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Conversion factor mg/dL per mmol/L (glucose, molar mass 180.182 g/mol).
pub const MG_DL_PER_MMOL_L: f64 = 18.0182;

/// A glucose concentration in whole mg/dL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MgDl(pub u16);

impl MgDl {
    /// Converts mmol/L to the nearest whole mg/dL. `None` for values that are
    /// not finite, negative, or beyond any physiological or device range.
    pub fn from_mmol_l(mmol: f64) -> Option<Self> {
        if !mmol.is_finite() || mmol < 0.0 {
            return None;
        }
        let mg = (mmol * MG_DL_PER_MMOL_L).round();
        if mg > 2000.0 { None } else { Some(MgDl(mg as u16)) }
    }

    pub fn as_mmol_l(self) -> f64 {
        f64::from(self.0) / MG_DL_PER_MMOL_L
    }
}

impl fmt::Display for MgDl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} mg/dL", self.0)
    }
}

/// The unit a person reads glucose in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GlucoseUnit {
    #[default]
    #[serde(rename = "mg/dL")]
    MgDl,
    #[serde(rename = "mmol/L")]
    MmolL,
}

impl GlucoseUnit {
    pub fn label(self) -> &'static str {
        match self {
            GlucoseUnit::MgDl => "mg/dL",
            GlucoseUnit::MmolL => "mmol/L",
        }
    }

    /// Formats a value given in mg/dL (possibly fractional, e.g. a mean) in
    /// this unit: mg/dL as a whole number, mmol/L with one decimal.
    pub fn format(self, mg_dl: f64) -> String {
        match self {
            GlucoseUnit::MgDl => format!("{:.0}", mg_dl),
            GlucoseUnit::MmolL => format!("{:.1}", mg_dl / MG_DL_PER_MMOL_L),
        }
    }

    /// The value in this unit, rounded as shown (mg/dL whole, mmol/L one decimal).
    pub fn convert(self, mg_dl: f64) -> f64 {
        match self {
            GlucoseUnit::MgDl => mg_dl.round(),
            GlucoseUnit::MmolL => (mg_dl / MG_DL_PER_MMOL_L * 10.0).round() / 10.0,
        }
    }
}

impl fmt::Display for GlucoseUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown glucose unit {0:?}: expected \"mg/dL\" or \"mmol/L\"")]
pub struct UnknownUnit(pub String);

impl FromStr for GlucoseUnit {
    type Err = UnknownUnit;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace(' ', "").as_str() {
            "mg/dl" | "mgdl" | "mg" => Ok(GlucoseUnit::MgDl),
            "mmol/l" | "mmoll" | "mmol" => Ok(GlucoseUnit::MmolL),
            _ => Err(UnknownUnit(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmol_formatting_rounds_to_one_decimal() {
        assert_eq!(GlucoseUnit::MmolL.format(180.0), "10.0");
        assert_eq!(GlucoseUnit::MmolL.format(70.0), "3.9");
        assert_eq!(GlucoseUnit::MmolL.format(54.0), "3.0");
        assert_eq!(GlucoseUnit::MgDl.format(154.4), "154");
        assert_eq!(GlucoseUnit::MmolL.convert(250.0), 13.9);
    }

    #[test]
    fn mmol_round_trip() {
        assert_eq!(MgDl::from_mmol_l(5.5), Some(MgDl(99)));
        assert_eq!(MgDl::from_mmol_l(-1.0), None);
        assert_eq!(MgDl::from_mmol_l(f64::NAN), None);
    }

    #[test]
    fn unit_parsing() {
        assert_eq!("mmol/L".parse(), Ok(GlucoseUnit::MmolL));
        assert_eq!("mg/dL".parse(), Ok(GlucoseUnit::MgDl));
        assert!("furlongs".parse::<GlucoseUnit>().is_err());
    }
}
