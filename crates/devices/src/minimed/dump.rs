//! A pump dump: what an upload from a MiniMed pump sends to the server. The browser's driver (or
//! the CLI's, or the simulator's) reads the pump and fills one [`PumpDump`]: the pump's identity,
//! its clock against the uploader's UTC clock, the raw responses of the settings commands and
//! the raw 1024-byte history and CGM pages. Nothing in it is decoded: the server decodes it with
//! the same crate (the client's decode is a preview), and keeps the bytes so that a better
//! decoder can re-derive the data later.
//!
//! On the wire it is JSON (`POST /api/v1/uploads` with `Content-Type: application/json`, or a
//! `.json` file for `diabase inspect`):
//!
//! ```json
//! {"format": "minimed_pages",
//!  "device": {"manufacturer": "Medtronic", "model": "522", "serial": "578398", "firmware": "VER 2.4A1.1"},
//!  "clock": {"pump": "2026-12-02T10:00:05", "utc": "2026-12-02T09:00:00Z"},
//!  "responses": {"settings": "…hex…", "basal_standard": "…hex…"},
//!  "history_pages": [{"number": 0, "hex": "…2048 hex digits…"}],
//!  "glucose_pages": [{"number": 31, "hex": "…"}]}
//! ```
//!
//! Pages are listed as read (newest first); `number` is the pump's page number (history page 0
//! is the newest; CGM pages count up, the newest being `ReadCurGlucosePageNumber`'s answer).

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The value of [`PumpDump::format`].
pub const FORMAT: &str = "minimed_pages";

/// Keys of [`PumpDump::responses`]: the pump command whose raw response (the pump's reply
/// payload, without the stick's framing) is stored under that key.
pub mod response {
    /// ReadPumpModel (0x8D).
    pub const MODEL: &str = "model";
    /// ReadFirmwareVersion (0x74).
    pub const FIRMWARE: &str = "firmware";
    /// ReadRTC (0x70).
    pub const CLOCK: &str = "clock";
    /// ReadBatteryStatus (0x72).
    pub const BATTERY: &str = "battery";
    /// ReadRemainingInsulin (0x73).
    pub const RESERVOIR: &str = "reservoir";
    /// ReadSettings (0xC0; 0x91 on 511/512).
    pub const SETTINGS: &str = "settings";
    /// ReadProfile_STD (0x92), pattern A (0x93), pattern B (0x94).
    pub const BASAL_STANDARD: &str = "basal_standard";
    pub const BASAL_A: &str = "basal_a";
    pub const BASAL_B: &str = "basal_b";
    /// ReadCarbRatios (0x8A).
    pub const CARB_RATIOS: &str = "carb_ratios";
    /// ReadInsulinSensitivities (0x8B).
    pub const SENSITIVITIES: &str = "sensitivities";
    /// ReadBGTargets (0x9F; 0x8C on x12 and earlier, as decocare).
    pub const BG_TARGETS: &str = "bg_targets";
}

/// Who the pump is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpDevice {
    #[serde(default = "medtronic")]
    pub manufacturer: String,
    /// The model number as the pump reports it ("522", "754").
    pub model: String,
    /// The 6-digit serial the patient entered (the radio address).
    pub serial: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
}

fn medtronic() -> String {
    "Medtronic".into()
}

/// The pump's clock read at upload, and the uploader's UTC clock at the same moment. Their
/// difference, against the patient's zone, is the clock offset the server applies to every
/// pump-local time of the upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockReading {
    /// The pump's own wall clock (`YYYY-MM-DDTHH:MM:SS`, no zone).
    pub pump: NaiveDateTime,
    /// The uploader's UTC at that moment (RFC 3339).
    pub utc: DateTime<Utc>,
}

/// One raw page as read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpPage {
    pub number: u32,
    /// The page's 1024 bytes in hex (2048 digits, either case).
    pub hex: String,
}

impl DumpPage {
    pub fn new(number: u32, bytes: &[u8]) -> DumpPage {
        DumpPage { number, hex: super::hex(bytes) }
    }

    /// The page's bytes, or what is wrong with its hex.
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        parse_hex(&self.hex)
    }
}

/// Everything one upload read from a pump. See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PumpDump {
    /// Always [`FORMAT`].
    pub format: String,
    pub device: DumpDevice,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockReading>,
    /// Raw command responses in hex, keyed by the names in [`response`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub responses: BTreeMap<String, String>,
    #[serde(default)]
    pub history_pages: Vec<DumpPage>,
    #[serde(default)]
    pub glucose_pages: Vec<DumpPage>,
}

impl PumpDump {
    /// An empty dump for a pump.
    pub fn new(model: &str, serial: &str) -> PumpDump {
        PumpDump {
            format: FORMAT.into(),
            device: DumpDevice {
                manufacturer: medtronic(),
                model: model.into(),
                serial: serial.into(),
                firmware: None,
            },
            clock: None,
            responses: BTreeMap::new(),
            history_pages: Vec::new(),
            glucose_pages: Vec::new(),
        }
    }

    /// Stores a raw command response under one of the [`response`] keys.
    pub fn set_response(&mut self, key: &str, bytes: &[u8]) {
        self.responses.insert(key.into(), super::hex(bytes));
    }

    /// A raw command response, when it was read and its hex is valid.
    pub fn response(&self, key: &str) -> Option<Vec<u8>> {
        self.responses.get(key).and_then(|h| parse_hex(h).ok())
    }
}

/// Hex digits (either case; whitespace between bytes is ignored) to bytes.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    let val = |c: u8, at: usize| -> Result<u8, String> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(format!("not a hex digit at position {at}: {:?}", char::from(c))),
        }
    };
    digits.chunks_exact(2).enumerate().map(|(i, p)| Ok(val(p[0], 2 * i)? << 4 | val(p[1], 2 * i + 1)?)).collect()
}

// ---------------------------------------------------------------------------------------------
// Decoding: a dump (or bare pages) → normalised records.

use super::glucose::decode_glucose;
use super::history::{self, HistoryPage, PumpEvent, TimelineEnd, decode_history};
use super::records::{glucose_records, history_records};
use super::{PAGE_LEN, PumpModel, page_data};
use crate::import::{DeviceInfo, Rejected};
use therapy::Record;

/// Which command read a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageKind {
    /// ReadHistoryData (0x80).
    History,
    /// ReadGlucoseHistory (0x9A).
    Glucose,
}

impl PageKind {
    fn label(self) -> &'static str {
        match self {
            PageKind::History => "history page",
            PageKind::Glucose => "CGM page",
        }
    }
}

/// What a dump decodes to.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    pub model: PumpModel,
    /// Medtronic, the model's CareLink name and the serial (when known).
    pub device: DeviceInfo,
    /// Records in pump-local time, history first then CGM, each oldest first.
    pub records: Vec<Record>,
    /// What could not be used, and where: a page that fails its CRC, a record whose length is
    /// unknown, records older than a pump clock reset, a reading without a time. `line` is the
    /// page number; `field` names the page (and the byte offset).
    pub rejected: Vec<Rejected>,
}

/// Why a dump could not be decoded at all (a problem with one page is a [`Rejected`] instead).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DumpError {
    #[error("not a MiniMed page dump: its \"format\" is {0:?}, expected \"minimed_pages\"")]
    WrongFormat(String),
    #[error("device.model: {0}")]
    Model(String),
    #[error("device.serial: {0:?} is not a MiniMed serial number (6 digits)")]
    Serial(String),
    #[error("the dump holds no pages")]
    NoPages,
    #[error("the dump holds more than {max} pages ({n}); a pump keeps at most 36 history and 32 CGM pages")]
    TooManyPages { n: usize, max: usize },
    #[error("not a page dump: {0}")]
    Malformed(String),
}

/// A clock change larger than this (a day) is a clock being set after a reset: records written
/// before it are moved by it.
const SET_CLOCK_S: i64 = 86_400;

/// Most pages a dump may hold (a 7xx keeps 36 history pages and 32 CGM pages; the rest is slack
/// for a pump whose CGM pages wrapped).
pub const MAX_PAGES: usize = 128;

impl PumpDump {
    /// Parses the JSON document.
    pub fn from_json(bytes: &[u8]) -> Result<PumpDump, DumpError> {
        let dump: PumpDump = serde_json::from_slice(bytes).map_err(|e| DumpError::Malformed(e.to_string()))?;
        if dump.format != FORMAT {
            return Err(DumpError::WrongFormat(dump.format));
        }
        Ok(dump)
    }

    /// The pump model the dump names.
    pub fn model(&self) -> Result<PumpModel, DumpError> {
        self.device.model.parse().map_err(|e: super::UnknownModel| DumpError::Model(e.to_string()))
    }

    /// (pump clock − true local time) in seconds, the pump's clock error at upload against the
    /// uploader's UTC clock seen in `zone`; `None` when the dump has no clock reading.
    pub fn clock_offset_s(&self, zone: chrono_tz::Tz) -> Option<i64> {
        let c = self.clock.as_ref()?;
        let local = c.utc.with_timezone(&zone).naive_local();
        Some((c.pump - local).num_seconds())
    }

    /// Decodes every page (and checks the device's identity). Problems with single pages are
    /// in [`Decoded::rejected`]; the records of the good pages are kept.
    pub fn decode(&self) -> Result<Decoded, DumpError> {
        let model = self.model()?;
        let serial = self.device.serial.trim();
        if serial.len() != 6 || !serial.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DumpError::Serial(self.device.serial.clone()));
        }
        let n = self.history_pages.len() + self.glucose_pages.len();
        if n == 0 {
            return Err(DumpError::NoPages);
        }
        if n > MAX_PAGES {
            return Err(DumpError::TooManyPages { n, max: MAX_PAGES });
        }
        let mut rejected = Vec::new();
        let mut load = |kind: PageKind, pages: &[DumpPage]| -> Vec<(u32, Vec<u8>)> {
            pages
                .iter()
                .filter_map(|p| match p.bytes() {
                    Ok(b) => Some((p.number, b)),
                    Err(e) => {
                        rejected.push(page_rejected(kind, p.number, None, format!("hex: {e}")));
                        None
                    }
                })
                .collect()
        };
        let history = load(PageKind::History, &self.history_pages);
        let mut glucose = load(PageKind::Glucose, &self.glucose_pages);
        // CGM pages count up: the lowest number is the oldest.
        glucose.sort_by_key(|p| p.0);
        let mut d = decode_pages(model, &history, &glucose);
        // The settings as read at upload: one snapshot at the pump's clock.
        if !self.responses.is_empty() {
            let (values, problems) = super::pump::settings_values(self, model);
            for p in problems {
                rejected.push(Rejected::new(0, Some("settings"), p));
            }
            if !values.is_empty() {
                match &self.clock {
                    Some(c) => d
                        .records
                        .push(Record::new(therapy::DeviceTime(c.pump), therapy::RecordKind::Settings { values })),
                    None => rejected.push(Rejected::new(
                        0,
                        Some("settings"),
                        "the dump has no clock reading, so the settings cannot be dated",
                    )),
                }
            }
        }
        rejected.append(&mut d.rejected);
        d.rejected = rejected;
        d.device.serial = Some(serial.to_string());
        Ok(d)
    }
}

fn page_rejected(kind: PageKind, number: u32, offset: Option<usize>, reason: String) -> Rejected {
    let place = match offset {
        Some(o) => format!("{} {number}, byte {o}", kind.label()),
        None => format!("{} {number}", kind.label()),
    };
    Rejected::new(u64::from(number), Some(&place), reason)
}

/// Decodes pages: `history` newest first (page 0 first, as read), `glucose` oldest first.
pub fn decode_pages(model: PumpModel, history: &[(u32, Vec<u8>)], glucose: &[(u32, Vec<u8>)]) -> Decoded {
    let mut rejected = Vec::new();
    let mut records = Vec::new();

    // History: check every page, decode, then walk the pages on one clock to find where the
    // times stop being trustworthy (a clock-reset alarm or an unexplained jump).
    let mut pages: Vec<(u32, HistoryPage)> = Vec::new();
    for (number, bytes) in history {
        match page_data(bytes) {
            Ok(data) => {
                let page = decode_history(data, model);
                if let Some(stop) = &page.stop {
                    rejected.push(page_rejected(PageKind::History, *number, Some(stop.offset), stop.to_string()));
                }
                pages.push((*number, page));
            }
            Err(e) => rejected.push(page_rejected(PageKind::History, *number, None, e.to_string())),
        }
    }
    let decoded: Vec<HistoryPage> = pages.iter().map(|p| p.1.clone()).collect();
    let (timed, end) = history::timeline(&decoded, model, None);
    // (page index, offset): this event and everything older is dropped.
    let cut = match end {
        TimelineEnd::ClockReset { page, offset } => {
            let number = pages.get(page).map_or(0, |p| p.0);
            rejected.push(page_rejected(
                PageKind::History,
                number,
                Some(offset),
                "the pump lost its clock here (a reset alarm): this record and the older ones carry times from the lost clock and were not used".into(),
            ));
            Some((page, offset))
        }
        TimelineEnd::OutOfOrder { page, offset } => {
            let number = pages.get(page).map_or(0, |p| p.0);
            rejected.push(page_rejected(
                PageKind::History,
                number,
                Some(offset),
                "the pump's clock jumped by more than an hour with no time change recorded: this record and the older ones were not used".into(),
            ));
            Some((page, offset))
        }
        TimelineEnd::Exhausted | TimelineEnd::ReachedSince => None,
    };
    // A pump whose clock was reset (to 2000 or 2005 after a battery fault) writes records on
    // the wrong clock until the patient sets it; the `ChangeTime`/`NewTime` pair then tells by
    // how much. Those records are moved by the change. Small changes (a DST change, a few
    // minutes of drift corrected) are left alone: the patient's zone handles DST, and moving
    // old records by a later small change would store them twice once another change comes.
    let shift_of: std::collections::HashMap<*const PumpEvent, chrono::Duration> =
        timed.iter().filter_map(|t| Some((std::ptr::from_ref(t.event), t.time - t.event.timestamp?))).collect();
    let mut shifts: Vec<Vec<chrono::Duration>> = Vec::with_capacity(decoded.len());
    let mut current = chrono::Duration::zero();
    for page in &decoded {
        let mut v = vec![chrono::Duration::zero(); page.events.len()];
        for (j, ev) in page.events.iter().enumerate().rev() {
            if let Some(s) = shift_of.get(&std::ptr::from_ref(ev)) {
                current = *s;
            }
            if current.num_seconds().abs() > SET_CLOCK_S {
                v[j] = current;
            }
        }
        shifts.push(v);
    }
    let floor = timed.iter().map(|t| t.time).min().map(|t| t - chrono::Duration::days(1));
    let mut seen = std::collections::HashSet::new();
    let mut events: Vec<PumpEvent> = Vec::new();
    for (i, page) in decoded.iter().enumerate().rev() {
        for (j, ev) in page.events.iter().enumerate() {
            let dropped = match cut {
                Some((p, o)) => i > p || (i == p && ev.offset <= o),
                None => false,
            };
            // A record repeated byte for byte (pages overlap after a pump rewrites its current
            // page) is one record.
            if !dropped && seen.insert(ev.raw.as_slice()) {
                let mut ev = ev.clone();
                let shift = shifts[i][j];
                if !shift.is_zero() {
                    ev.timestamp = ev.timestamp.map(|t| t + shift);
                }
                // What is still older than the walk's oldest trusted time by more than a day
                // (a daily total of a day on the lost clock) was written on a wrong clock.
                if let (Some(t), Some(floor)) = (ev.timestamp, floor)
                    && t < floor
                {
                    rejected.push(page_rejected(
                        PageKind::History,
                        pages[i].0,
                        Some(ev.offset),
                        format!(
                            "{} at {t} is older than the rest of the pump's history on its current clock: written on a lost clock, not used",
                            ev.name()
                        ),
                    ));
                    continue;
                }
                events.push(ev);
            }
        }
    }
    let conv = history_records(events.iter(), model);
    records.extend(conv.records);
    for s in conv.skipped {
        rejected.push(Rejected::new(0, Some(&format!("history, byte {} (record {:#04x})", s.offset, s.op)), s.reason));
    }

    // CGM: each page decodes on its own (its readings are placed from its own timestamps).
    for (number, bytes) in glucose {
        match page_data(bytes) {
            Ok(data) => {
                let page = decode_glucose(data);
                if let Some(stop) = &page.stop {
                    rejected.push(page_rejected(PageKind::Glucose, *number, Some(stop.offset), stop.to_string()));
                }
                let conv = glucose_records(&page.events, model);
                let unplaced = conv.skipped.len();
                if unplaced > 0 {
                    rejected.push(page_rejected(
                        PageKind::Glucose,
                        *number,
                        None,
                        format!("{unplaced} record(s) could not be placed in time: {}", conv.skipped[0].reason),
                    ));
                }
                records.extend(conv.records);
            }
            Err(e) => rejected.push(page_rejected(PageKind::Glucose, *number, None, e.to_string())),
        }
    }
    Decoded { model, device: DeviceInfo::new("Medtronic", Some(model.display_name()), None), records, rejected }
}

/// Hints for bare pages (a `.data` or `.hex` file), usually from the file's name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawHints {
    pub model: Option<PumpModel>,
    pub kind: Option<PageKind>,
}

impl RawHints {
    /// `…mm522…`, `…MMT-754…` or `…model-523…` name the model; `glucose` or `cgm` in the
    /// name makes the pages CGM pages.
    pub fn from_file_name(name: &str) -> RawHints {
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        let lower = name.to_ascii_lowercase();
        let mut model = None;
        for prefix in ["mmt-", "mmt", "mm", "model-", "model_", "model"] {
            let mut from = 0;
            while let Some(i) = lower[from..].find(prefix) {
                let at = from + i + prefix.len();
                let digits: String = lower[at..].chars().take_while(char::is_ascii_digit).collect();
                if digits.len() == 3
                    && let Some(m) = digits.parse().ok().and_then(|n| PumpModel::new(n).ok())
                {
                    model = Some(m);
                    break;
                }
                from = at;
            }
            if model.is_some() {
                break;
            }
        }
        let b = base.to_ascii_lowercase();
        let kind = if b.contains("glucose") || b.contains("cgm") {
            Some(PageKind::Glucose)
        } else if b.contains("history") || b.contains("pump") {
            Some(PageKind::History)
        } else {
            None
        };
        RawHints { model, kind }
    }
}

/// The models tried, in order of preference, when bare pages name none: one per record layout
/// (x22 and older, x23–x29, x30 and later, and x15 for its 0x39 meter record).
const TRIAL_MODELS: [u16; 4] = [522, 523, 554, 515];

/// How well a model's layout reads a history page: bytes read before a stop, then records with
/// a valid time.
fn history_fit(data: &[u8], model: PumpModel) -> (usize, usize) {
    let p = decode_history(data, model);
    let read = p.stop.as_ref().map_or(data.len(), |s| s.offset);
    let timed = p.events.iter().filter(|e| e.timestamp.is_some()).count();
    (read, timed)
}

/// Whether `head` (a file's first bytes) begins with a binary MiniMed page: 1024 bytes whose
/// last two are the CRC16 of the 1022 before them, and not all printable text (a page holds
/// zero padding and timestamp bytes below 0x20). This is checked before any guess at JSON or
/// text: a page whose first record is a basal profile start (0x7B, `{`) or a Bolus Wizard
/// estimate (0x5B, `[`) looks like the start of a JSON document.
pub fn starts_with_page(head: &[u8]) -> bool {
    head.get(..PAGE_LEN)
        .is_some_and(|p| page_data(p).is_ok() && !p.iter().all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace()))
}

/// Whether a whole file is bare MiniMed pages, by size and CRC: binary, a whole number of
/// 1024-byte pages (at most [`MAX_PAGES`]) of which at least one has its CRC right; or hex text
/// (whitespace between digits allowed) of 2048 digits a page. Hex needs no good CRC (nothing
/// else is only hex digits; a page with a bad CRC is reported when decoded).
pub fn is_bare_pages(bytes: &[u8]) -> bool {
    let n = bytes.len();
    if n > 0 && n.is_multiple_of(PAGE_LEN) && n / PAGE_LEN <= MAX_PAGES {
        let text = bytes.iter().all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace());
        if !text && bytes.chunks_exact(PAGE_LEN).any(|p| page_data(p).is_ok()) {
            return true;
        }
    }
    let mut digits = 0usize;
    for &b in bytes {
        if b.is_ascii_hexdigit() {
            digits += 1;
        } else if !b.is_ascii_whitespace() {
            return false;
        }
    }
    digits > 0 && digits.is_multiple_of(2 * PAGE_LEN) && digits / (2 * PAGE_LEN) <= MAX_PAGES
}

/// Bytes that are whole 1024-byte pages, as a `.data` file holds them or as hex text.
pub fn raw_pages(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let owned;
    let bytes = if bytes.iter().all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace()) {
        owned = parse_hex(std::str::from_utf8(bytes).ok()?).ok()?;
        &owned[..]
    } else {
        bytes
    };
    if bytes.is_empty() || bytes.len() % PAGE_LEN != 0 || bytes.len() / PAGE_LEN > MAX_PAGES {
        return None;
    }
    Some(bytes.chunks_exact(PAGE_LEN).map(<[u8]>::to_vec).collect())
}

/// Decodes bare pages (one or more 1024-byte pages, binary or hex, in the order a dump tool
/// wrote them: history pages newest first, CGM pages oldest first). The model and page kind come
/// from `hints`, else from which layout reads the pages best.
pub fn decode_raw(bytes: &[u8], hints: RawHints) -> Result<Decoded, DumpError> {
    let pages = raw_pages(bytes).ok_or_else(|| {
        DumpError::Malformed(format!(
            "{} bytes is not a whole number of {PAGE_LEN}-byte pages (at most {MAX_PAGES})",
            bytes.len()
        ))
    })?;
    let datas: Vec<&[u8]> = pages.iter().map(|p| &p[..super::PAGE_DATA_LEN]).collect();
    let fit = |m: PumpModel| {
        datas.iter().fold((0usize, 0usize), |acc, d| {
            let f = history_fit(d, m);
            (acc.0 + f.0, acc.1 + f.1)
        })
    };
    let model = match hints.model {
        Some(m) => m,
        None => {
            let mut best: Option<(PumpModel, (usize, usize))> = None;
            for n in TRIAL_MODELS {
                let Ok(m) = PumpModel::new(n) else { continue };
                let f = fit(m);
                if best.is_none_or(|b| f > b.1) {
                    best = Some((m, f));
                }
            }
            best.map(|b| b.0).ok_or_else(|| DumpError::Model("no model fits".into()))?
        }
    };
    let kind = hints.kind.unwrap_or_else(|| {
        // A CGM page read as history stops early at an opcode no history layout knows, while
        // its CGM decode reads through and finds sensor timestamps.
        let history_read = fit(model).0;
        let total: usize = datas.iter().map(|d| d.len()).sum();
        let glucose_ok = datas.iter().all(|d| {
            let g = decode_glucose(d);
            g.stop.is_none()
                && g.events.iter().any(|e| matches!(e.data, super::glucose::GlucoseData::SensorTimestamp(_)))
        });
        if history_read < total && glucose_ok { PageKind::Glucose } else { PageKind::History }
    });
    let numbered: Vec<(u32, Vec<u8>)> =
        pages.into_iter().enumerate().map(|(i, p)| (u32::try_from(i).unwrap_or(u32::MAX), p)).collect();
    Ok(match kind {
        PageKind::History => decode_pages(model, &numbered, &[]),
        PageKind::Glucose => decode_pages(model, &[], &numbered),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_parses_either_case_and_says_what_is_wrong() {
        assert_eq!(parse_hex("00ff Aa\n10"), Ok(vec![0x00, 0xff, 0xaa, 0x10]));
        assert!(parse_hex("abc").is_err_and(|e| e.contains("odd")));
        assert!(parse_hex("zz").is_err_and(|e| e.contains("position 0")));
    }

    #[test]
    fn file_names_hint_model_and_kind() {
        let h = RawHints::from_file_name("dumps/decocare-578398-mm522/ReadGlucoseHistory-page-6.data");
        assert_eq!(h.model.map(PumpModel::number), Some(522));
        assert_eq!(h.kind, Some(PageKind::Glucose));
        let h = RawHints::from_file_name("MMT-754NAS history.hex");
        assert_eq!(h.model.map(PumpModel::number), Some(754));
        assert_eq!(h.kind, Some(PageKind::History));
        // A serial that looks like digits is not a model.
        let h = RawHints::from_file_name("578398/page.bin");
        assert_eq!(h, RawHints::default());
    }

    #[test]
    fn dumps_are_checked_before_decoding() {
        let mut d = PumpDump::new("522", "12345");
        d.history_pages.push(DumpPage::new(0, &[0u8; PAGE_LEN]));
        assert!(matches!(d.decode(), Err(DumpError::Serial(_))));
        d.device.serial = "123456".into();
        d.device.model = "999".into();
        assert!(matches!(d.decode(), Err(DumpError::Model(_))));
        d.device.model = "522".into();
        // An all-zero page fails its CRC: reported, nothing decoded.
        let out = d.decode().unwrap_or_else(|e| panic!("{e}"));
        assert!(out.records.is_empty());
        assert!(out.rejected[0].describe().contains("CRC"), "{:?}", out.rejected);
        let json = serde_json::to_vec(&d).unwrap_or_default();
        assert_eq!(PumpDump::from_json(&json), Ok(d.clone()));
        d.format = "other".into();
        let json = serde_json::to_vec(&d).unwrap_or_default();
        assert!(matches!(PumpDump::from_json(&json), Err(DumpError::WrongFormat(_))));
    }

    #[test]
    fn the_clock_offset_is_pump_minus_true_local_time() {
        let mut d = PumpDump::new("522", "123456");
        d.clock = Some(ClockReading {
            pump: "2026-07-01T12:05:00".parse().unwrap_or_default(),
            utc: "2026-07-01T10:00:00Z".parse().unwrap_or_default(),
        });
        // Berlin is UTC+2 in July: true local time 12:00, the pump is 5 minutes fast.
        assert_eq!(d.clock_offset_s(chrono_tz::Europe::Berlin), Some(300));
    }
}
