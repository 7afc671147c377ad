//! Data shapes shared by the server and the browser (DTOs).

use serde::{Deserialize, Serialize};

/// The signed-in user, as `GET /api/v1/me` returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub glucose_unit: String,
    pub time_zone: String,
    pub patient_id: Option<String>,
}

impl Me {
    pub fn is_clinician(&self) -> bool {
        self.role == "clinician"
    }
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
    pub fn unit(&self) -> therapy::GlucoseUnit {
        self.glucose_unit.parse().unwrap_or_default()
    }
}

/// A change to the signed-in user's settings (`PATCH /api/v1/me`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MePatch {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub glucose_unit: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// One active session of the signed-in user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub created_at: String,
    pub last_seen_at: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub current: bool,
}

/// A personal access token, without its secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// The patient dashboard's figures (last 14 days in the patient's zone).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DashboardData {
    pub patient_name: String,
    pub time_zone: String,
    pub latest: Option<LatestReading>,
    pub from: String,
    pub to: String,
    pub readings: u64,
    pub mean_mg_dl: Option<f64>,
    pub gmi_percent: Option<f64>,
    pub cv_percent: Option<f64>,
    pub cgm_active_percent: Option<f64>,
    pub very_low_percent: Option<f64>,
    pub low_percent: Option<f64>,
    pub in_range_percent: Option<f64>,
    pub high_percent: Option<f64>,
    pub very_high_percent: Option<f64>,
    pub last_upload_at: Option<String>,
    pub uploads: u64,
    /// The last 24 hours of CGM: (minutes since the window start, mg/dL).
    pub last_day: Vec<(u32, u16)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatestReading {
    pub value_mg_dl: u16,
    pub trend_arrow: String,
    /// Local time of day in the patient's zone, e.g. "14:35".
    pub local_time: String,
    pub minutes_ago: i64,
}

/// A clinic the signed-in clinician belongs to, with its patient roster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClinicSummary {
    pub id: String,
    pub name: String,
    pub role: String,
    pub patients: Vec<ClinicPatientRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClinicPatientRow {
    pub record_id: String,
    pub name: String,
    pub linked: bool,
}

/// A row an importer could not use: where and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RejectedRow {
    pub line: u64,
    #[serde(rename = "where")]
    pub location: String,
    pub reason: String,
}

/// The answer to an import: `POST /api/v1/uploads` and `diabase import`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportSummary {
    pub upload_id: String,
    pub file: String,
    pub format: String,
    /// New records by kind.
    pub records: std::collections::BTreeMap<String, u64>,
    /// Records already stored (same device, time and value).
    pub duplicates: u64,
    pub rejected: Vec<RejectedRow>,
    /// First and last record time (UTC, RFC 3339).
    pub first: Option<String>,
    pub last: Option<String>,
}

/// One row of the uploads history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UploadRow {
    pub id: String,
    pub created_at: String,
    pub source: String,
    pub format: String,
    pub file_name: Option<String>,
    pub records: std::collections::BTreeMap<String, u64>,
    pub duplicates: i64,
    pub rejected: i64,
    pub first: Option<String>,
    pub last: Option<String>,
}
