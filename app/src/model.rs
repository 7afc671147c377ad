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
    /// Whether the email address was confirmed (the emailed link).
    #[serde(default)]
    pub email_verified: bool,
    /// The interface language chosen (`en`, `es`, `fr`, `de`), or `null`
    /// when the user has not chosen and the browser's language is used.
    #[serde(default)]
    pub language: Option<String>,
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
    /// `en`, `es`, `fr` or `de`.
    #[serde(default)]
    pub language: Option<String>,
}

/// One active session of the signed-in user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// A public handle of the session (not its secret), to end it by.
    #[serde(default)]
    pub id: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub current: bool,
}

/// One sign-in (or failed sign-in) of the account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoginEventInfo {
    pub at: String,
    /// `password` or `passkey`.
    pub method: String,
    pub success: bool,
    /// The first sign-in of the account from this browser.
    pub new_device: bool,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A personal access token, without its secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    /// `full`, or `read:glucose` / `read:all` and/or `upload`.
    pub scopes: Vec<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
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

/// A clinic the signed-in user belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClinicSummary {
    pub id: String,
    pub name: String,
    /// The caller's role there: clinician or admin.
    pub role: String,
    pub patients: u64,
    pub members: u64,
    /// Members must have two-factor authentication on to open the clinic.
    #[serde(default)]
    pub require_2fa: bool,
    /// The code patients enter to share with the clinic (`XXXX-XXXX-XXXX`).
    #[serde(default)]
    pub share_code: Option<String>,
    /// Patients who shared on their own initiative and no one has seen yet.
    #[serde(default)]
    pub new_patients: u64,
}

/// A member (or invited colleague) of a clinic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClinicMember {
    /// `None` while the invitation waits for an account with that email.
    pub user_id: Option<String>,
    pub email: String,
    pub display_name: Option<String>,
    pub role: String,
    /// "active" or "invited".
    pub status: String,
}

/// One row of the clinic dashboard. Figures cover `from..=to` (the 14 local
/// days ending today in the patient's zone) and are `None` without access
/// to glucose (not linked, revoked, expired, out of scope) or without data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClinicPatientRow {
    pub record_id: String,
    /// The patient data space, when the clinic may open it (linked with an
    /// active grant, or a custodial record).
    pub patient_id: Option<String>,
    pub name: String,
    pub birth_date: Option<String>,
    pub mrn: Option<String>,
    /// custodial · code_pending · linked · paused · revoked · expired · declined
    pub link_status: String,
    /// The patient shared on their own initiative (the clinic's share code
    /// or its address) and no one at the clinic has acknowledged it yet.
    #[serde(default)]
    pub new_patient: bool,
    /// The scopes the patient granted (empty when not linked).
    pub scopes: Vec<String>,
    pub grant_expires_at: Option<String>,
    pub last_upload_at: Option<String>,
    pub from: String,
    pub to: String,
    pub readings: u64,
    pub mean_mg_dl: Option<f64>,
    pub in_range_percent: Option<f64>,
    pub very_low_percent: Option<f64>,
    pub low_percent: Option<f64>,
    /// very low + low: readings below 70 mg/dL.
    pub below_70_percent: Option<f64>,
    pub high_percent: Option<f64>,
    pub very_high_percent: Option<f64>,
    pub gmi_percent: Option<f64>,
    pub cv_percent: Option<f64>,
    pub cgm_active_percent: Option<f64>,
    /// Triage flags: below_54, below_70, low_tir, low_active, no_upload.
    pub flags: Vec<String>,
    /// When the clinic's latest unanswered upload request was sent.
    pub upload_requested_at: Option<String>,
}

/// One page of the clinic dashboard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClinicPatientPage {
    pub clinic_id: String,
    pub clinic_name: String,
    pub role: String,
    pub rows: Vec<ClinicPatientRow>,
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
}

/// A new link code: shown once (the clinic prints, shows or emails it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkCode {
    pub code: String,
    pub expires_at: String,
    /// The patient's Data Sharing page with the code filled in.
    pub url: String,
    /// Whether the code was emailed to the patient.
    pub emailed_to: Option<String>,
    /// The number the code was texted to (E.164), if it was.
    #[serde(default)]
    pub texted_to: Option<String>,
}

/// What a link code asks for, shown to the patient before they accept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkPreview {
    pub clinic_id: String,
    pub clinic_name: String,
    /// The scopes the clinic asks for (the patient may grant fewer).
    pub scopes: Vec<String>,
    /// When a one-time link code stops working (`None`: the clinic's share code).
    pub code_expires_at: Option<String>,
    /// `link` (a one-time code the clinic made for this patient) or `share`
    /// (the clinic's share code: the patient shares on their own initiative).
    pub kind: String,
}

/// A grant as its patient sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrantInfo {
    pub id: String,
    /// "clinic", "care_partner" or "provider" (invited by their verified email).
    pub grantee_type: String,
    pub grantee_name: String,
    pub grantee_email: Option<String>,
    pub clinic_id: Option<String>,
    pub scopes: Vec<String>,
    /// active · pending (an invitation not yet accepted) · expired · paused
    /// (the patient paused all sharing) · revoked
    pub status: String,
    pub created_at: String,
    pub accepted_at: Option<String>,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub paused_at: Option<String>,
}

/// A care-partner invitation as its invitee sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncomingInvite {
    pub grant_id: String,
    pub patient_name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
    pub invite_expires_at: Option<String>,
}

/// A patient whose data the caller may read through a care-partner grant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SharedWithMe {
    pub grant_id: String,
    pub patient_id: String,
    pub patient_name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
}

/// One read of the patient's data by someone else.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessLogEntry {
    pub at: String,
    pub actor_name: String,
    pub actor_email: Option<String>,
    /// The clinic the access went through, if any.
    pub clinic_name: Option<String>,
    /// e.g. read.glucose, read.insulin, read.summary, export.pdf
    pub action: String,
    /// What was looked at, in words.
    pub what: String,
}

/// A clinic's request that the patient upload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UploadRequestInfo {
    pub id: String,
    pub clinic_name: String,
    pub requested_at: String,
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

/// A device that uploaded into a data space (`GET /api/v1/devices`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceRow {
    pub id: String,
    pub manufacturer: String,
    pub model: String,
    pub serial: Option<String>,
    pub last_upload_at: Option<String>,
    /// The newest pump-local time (`YYYY-MM-DDTHH:MM:SS`) stored from the device's history
    /// records (therapy), and from its CGM readings: an incremental read stops there.
    pub newest_history_device_time: Option<String>,
    pub newest_cgm_device_time: Option<String>,
}

/// One upload, as the uploads history lists it.
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

/// The patient's Nightscout site, without secrets (Settings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NightscoutSiteView {
    pub site: String,
    /// For clients that keep a path (xDrip+ uploader): `<origin>/ns/<site>`.
    pub url: String,
    /// For clients that call the root (Loop, Trio, AndroidAPS, followers).
    pub root_url: String,
    pub created_at: String,
    pub rotated_at: String,
}

/// A new or rotated site's secrets, shown once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NightscoutSecrets {
    pub site: String,
    pub url: String,
    pub root_url: String,
    pub secret: String,
    pub token: String,
    pub read_token: String,
}

/// What the two-factor set-up screen shows (once).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TotpSetup {
    /// The secret in base32, to type into an app that cannot scan.
    pub secret: String,
    pub uri: String,
    /// The URI as a QR code (SVG).
    pub qr_svg: String,
}

/// Whether two-factor authentication is on, and how many recovery codes are left.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TwoFactorStatus {
    pub enabled: bool,
    pub recovery_codes_left: u32,
}

/// What a password reset did, and what the owner should look over: every
/// session ended, every API token revoked; the passkeys and the Nightscout
/// site stay, so the reset page lists them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ResetOutcome {
    pub sessions_ended: u64,
    pub tokens_revoked: u64,
    pub passkeys: Vec<PasskeyReview>,
    pub nightscout_site: bool,
}

/// A passkey listed for review after a reset.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PasskeyReview {
    pub name: String,
    pub created_at: String,
}

/// A registered passkey, as its owner sees it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PasskeyInfo {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}
