//! File importers: export files in, normalised [`therapy::Record`]s out.
//!
//! Formats (auto-detected by [`detect`]):
//!
//! | [`Format`] | file |
//! |---|---|
//! | `CarelinkCsv` | Medtronic CareLink Personal CSV export: the v1.0.1 layout (comma separated, `M/D/YY`, `Raw-Type`/`Raw-Values` columns, also the older x22 variant) and the newer layout (semicolon separated, `YYYY/MM/DD`, decimal commas, one block per device section) |
//! | `DexcomClarityCsv` | Dexcom Clarity CSV export |
//! | `LibreViewCsv` | FreeStyle Libre "Glucose Data" export from LibreView (EU `DD-MM-YYYY` and US `MM-DD-YYYY` dates) |
//! | `NightscoutJson` | Nightscout `entries`, `treatments` or `profile` JSON, as an array, as newline-delimited JSON, or wrapped in `{"result": [...]}` |
//! | `NightscoutEntriesCsv` | Nightscout's headerless entries CSV (`dateString,date,sgv,direction,…`) |
//!
//! Everything is sans-IO and streaming: [`import`] takes any [`std::io::Read`] and returns an
//! [`Importer`], an iterator of [`Item`]s (a device section begins, a record, a rejected row).
//! CSV files are read row by row into one reused `csv::ByteRecord`; JSON is split into top-level
//! elements and each element is parsed on its own, so memory stays bounded by the largest element
//! (one Nightscout profile document, say), not by the file. A few bounded look-aheads exist: the
//! CareLink importer holds bolus / Bolus Wizard rows for up to 15 minutes of device time (at most
//! 64 rows) to pair the parts of a dual-wave bolus and to link the wizard to its bolus, and holds
//! fingerstick BGs until the row time moves on (to merge the copies CareLink writes of one
//! reading); the LibreView importer holds rows (at most 20,000) until the file's day/month order
//! is known. Records therefore come out in file order except for those held.
//!
//! Bad rows never stop an import: they come out as [`Rejected`] `{line, field, reason}` and the
//! importer moves on. Nothing here panics on any input (property-tested).
//!
//! ## Validation limits
//! A value outside its limit rejects the row (the record is not emitted):
//!
//! | value | accepted |
//! |---|---|
//! | sensor glucose (CGM) | 20–600 mg/dL; text readings `Low`/`High` (Dexcom) and `LO`/`HI` (Libre) are stored at the device's limit (39/401, 39/501) with `out_of_range` |
//! | fingerstick / calibration BG, wizard BG and targets | 20–600 mg/dL (a wizard BG of 0 means "no BG entered" and is left out) |
//! | bolus, prime, wizard estimates, active insulin | 0–100 U (wizard food / correction estimates −100–100 U: a correction can be negative) |
//! | basal rate, temp basal rate | 0–35 U/h |
//! | temp basal percent | 0–200 % of the scheduled rate |
//! | durations (temp basal, square bolus) | 0–24 h |
//! | carbohydrates | 0–500 g |
//! | daily insulin total | 0–500 U |
//! | carb ratio | 0.1–500 g/U · sensitivity 1–1000 mg/dL/U |
//!
//! ## Time
//! `device_time` is the device's own wall clock as written in the file. CSV exports carry no zone,
//! so `time` (UTC) is left for the caller. Nightscout documents carry UTC instants: there `time` is
//! set, and `device_time` is that instant shifted by the document's `utcOffset` (minutes) when
//! present — a profile without `utcOffset` uses its own `timezone` — and is the UTC wall time
//! otherwise.

mod carelink;
mod clarity;
mod libre;
mod nightscout;
mod source;
pub mod synth;
mod text;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Read;
use therapy::Record;

pub use source::HEAD_LEN;

/// An export format this module reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Format {
    /// Medtronic CareLink Personal CSV export (both layouts).
    #[serde(rename = "carelink_csv")]
    CarelinkCsv,
    /// Dexcom Clarity CSV export.
    #[serde(rename = "dexcom_clarity_csv")]
    DexcomClarityCsv,
    /// FreeStyle Libre CSV export from LibreView.
    #[serde(rename = "libreview_csv")]
    LibreViewCsv,
    /// Nightscout entries / treatments / profile JSON (array, NDJSON or `{"result": [...]}`).
    #[serde(rename = "nightscout_json")]
    NightscoutJson,
    /// Nightscout's headerless entries CSV.
    #[serde(rename = "nightscout_entries_csv")]
    NightscoutEntriesCsv,
    /// MiniMed pump pages: a [`crate::minimed::dump::PumpDump`] JSON document, or bare
    /// 1024-byte history / CGM pages (binary or hex).
    #[serde(rename = "minimed_pages")]
    MinimedPages,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::CarelinkCsv,
        Format::DexcomClarityCsv,
        Format::LibreViewCsv,
        Format::NightscoutJson,
        Format::NightscoutEntriesCsv,
        Format::MinimedPages,
    ];

    /// The stable machine name (`"carelink_csv"`, …), as serialised.
    pub fn name(self) -> &'static str {
        match self {
            Format::CarelinkCsv => "carelink_csv",
            Format::DexcomClarityCsv => "dexcom_clarity_csv",
            Format::LibreViewCsv => "libreview_csv",
            Format::NightscoutJson => "nightscout_json",
            Format::NightscoutEntriesCsv => "nightscout_entries_csv",
            Format::MinimedPages => "minimed_pages",
        }
    }

    /// A human label ("CareLink CSV export", …).
    pub fn label(self) -> &'static str {
        match self {
            Format::CarelinkCsv => "Medtronic CareLink CSV export",
            Format::DexcomClarityCsv => "Dexcom Clarity CSV export",
            Format::LibreViewCsv => "FreeStyle Libre (LibreView) CSV export",
            Format::NightscoutJson => "Nightscout JSON",
            Format::NightscoutEntriesCsv => "Nightscout entries CSV",
            Format::MinimedPages => "Medtronic MiniMed pump pages",
        }
    }

    /// Parses a machine name as produced by [`Format::name`].
    pub fn from_name(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == s)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Who made the data: announced by [`Item::Device`] when a device section begins.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
}

impl DeviceInfo {
    pub(crate) fn new(manufacturer: &str, model: Option<String>, serial: Option<String>) -> Self {
        DeviceInfo { manufacturer: Some(manufacturer.to_string()), model, serial }
    }
}

/// A row (or JSON element) that could not be turned into a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// 1-based line where the row starts.
    pub line: u64,
    /// The column or field at fault, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub reason: String,
}

impl Rejected {
    pub(crate) fn new(line: u64, field: Option<&str>, reason: impl Into<String>) -> Self {
        Rejected { line, field: field.map(str::to_string), reason: reason.into() }
    }

    /// `"<field>: <reason>"`, or the reason alone.
    pub fn describe(&self) -> String {
        match &self.field {
            Some(f) => format!("{f}: {}", self.reason),
            None => self.reason.clone(),
        }
    }

    /// `"<file>:<line>"`.
    pub fn location(&self, file_name: &str) -> String {
        format!("{file_name}:{}", self.line)
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.describe())
    }
}

/// One thing an [`Importer`] yields.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// A new device section begins; the records that follow come from this device.
    Device(DeviceInfo),
    Record(Record),
    Rejected(Rejected),
}

/// Why an import could not start. Problems inside the data are [`Rejected`] items instead.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file is empty")]
    Empty,
    #[error("unrecognised format: not a CareLink, Dexcom Clarity, LibreView or Nightscout export (it begins {0:?})")]
    UnrecognisedFormat(String),
    #[error("not a valid {format}: {what}")]
    Malformed { format: Format, what: String },
    #[error("reading the file failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Sniffs the format from the first bytes of a file (a few KB are enough; [`HEAD_LEN`] is what
/// [`import`] looks at). `file_name` only breaks ties (a `.json` name for a JSON file without
/// Nightscout keys in its head). `None` when the content is not a format this module reads.
pub fn detect(head: &[u8], file_name: Option<&str>) -> Option<Format> {
    if looks_like_binary_pages(head) {
        return Some(Format::MinimedPages);
    }
    let text = source::sniff_text(head);
    detect_text(&text, file_name)
}

/// Binary MiniMed pages, checked before any text or JSON guess. First by size and CRC: the
/// first 1024 bytes are a page with its CRC16 right (see
/// [`crate::minimed::dump::starts_with_page`]) and the head is whole pages (or is cut at
/// [`HEAD_LEN`], the rest unseen). Else by the old sign: NUL bytes (pages are zero-padded) in
/// a file with no UTF-16 byte-order mark (a UTF-16 text file has NULs too).
fn looks_like_binary_pages(head: &[u8]) -> bool {
    use crate::minimed::{PAGE_LEN, dump};
    if dump::starts_with_page(head) && (head.len() >= HEAD_LEN || head.len().is_multiple_of(PAGE_LEN)) {
        return true;
    }
    !head.starts_with(&[0xFF, 0xFE])
        && !head.starts_with(&[0xFE, 0xFF])
        && head.len() >= 16
        && head.iter().take(PAGE_LEN).any(|&b| b == 0)
}

fn detect_text(text: &str, file_name: Option<&str>) -> Option<Format> {
    let t = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if t.is_empty() {
        return None;
    }
    let name_lower = file_name.map(|n| n.to_ascii_lowercase()).unwrap_or_default();
    // Pages as hex text, before any JSON guess (a page starting with a basal profile start or
    // a Bolus Wizard estimate is `7b…` / `5b…`): nothing but hex digits, at least one page's
    // worth.
    let digits = t.bytes().filter(u8::is_ascii_hexdigit).count();
    if digits >= 2 * crate::minimed::PAGE_LEN && t.bytes().all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace()) {
        return Some(Format::MinimedPages);
    }
    if t.starts_with('{') && t.contains("\"minimed_pages\"") {
        return Some(Format::MinimedPages);
    }
    if t.starts_with('[') || t.starts_with('{') {
        let lower = t.to_ascii_lowercase();
        const KEYS: [&str; 10] = [
            "\"sgv\"",
            "\"eventtype\"",
            "\"defaultprofile\"",
            "\"store\"",
            "\"datestring\"",
            "\"mbg\"",
            "\"created_at\"",
            "\"sysTime\"",
            "\"direction\"",
            "\"utcoffset\"",
        ];
        if KEYS.iter().any(|k| lower.contains(&k.to_ascii_lowercase())) {
            return Some(Format::NightscoutJson);
        }
        let rest = t[1..].trim_start();
        if (t.starts_with('[') && rest.starts_with(']')) || name_lower.ends_with(".json") {
            return Some(Format::NightscoutJson);
        }
        return None;
    }
    let lower: String = t.chars().take(16 * 1024).collect::<String>().to_ascii_lowercase();
    let first_line = lower.lines().next().unwrap_or("");
    if lower.contains("timestamp (yyyy-mm-ddthh:mm:ss)")
        || (lower.contains("event type") && lower.contains("glucose value") && lower.contains("transmitter"))
    {
        return Some(Format::DexcomClarityCsv);
    }
    if (lower.contains("device timestamp") && lower.contains("record type"))
        || first_line.starts_with("glucose data,generated on")
        || first_line.starts_with("glucose data;generated on")
    {
        return Some(Format::LibreViewCsv);
    }
    let carelink_header = lower.lines().take(64).any(|l| {
        (l.starts_with("index,") || l.starts_with("index;") || l.starts_with("\"index\""))
            && (l.contains("sensor glucose")
                || l.contains("bwz ")
                || l.contains("bolus volume")
                || l.contains("raw-type"))
    });
    if carelink_header
        || first_line.contains("carelink")
        || lower.lines().take(64).any(|l| l.starts_with("-------;") || l.starts_with("-------,"))
        || first_line.starts_with("last name;first name;patient id")
        || first_line.starts_with("last name,first name,patient id")
    {
        return Some(Format::CarelinkCsv);
    }
    if nightscout::looks_like_entries_csv(first_line) {
        return Some(Format::NightscoutEntriesCsv);
    }
    None
}

/// Starts an import. Reads the head of the input (up to [`HEAD_LEN`] bytes) to settle the
/// encoding (UTF-8 with or without BOM, UTF-16 with BOM; fields that are not UTF-8 are read as
/// Windows-1252), the delimiter and, for CSV formats, that a header row is present; the rest is
/// read lazily as the returned [`Importer`] is iterated.
pub fn import<R: Read>(reader: R, format: Format) -> Result<Importer<R>, ImportError> {
    import_named(reader, format, None)
}

/// As [`import`], with the file's name, which hints at what bare MiniMed pages are (see
/// [`crate::minimed::dump::RawHints::from_file_name`]).
pub fn import_named<R: Read>(
    mut reader: R,
    format: Format,
    file_name: Option<&str>,
) -> Result<Importer<R>, ImportError> {
    if format == Format::MinimedPages {
        // Pages are decoded whole: a dump is at most 128 pages (about 260 KB of JSON).
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes)?;
        let items = minimed_items(&bytes, file_name)?;
        return Ok(Importer { format, inner: Inner::Items(items.into_iter(), std::marker::PhantomData) });
    }
    let head = source::read_head(&mut reader)?;
    let src = source::Source::new(head, reader);
    let sniff = src.sniff();
    if sniff.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}').is_empty() {
        return Err(ImportError::Empty);
    }
    let inner = match format {
        Format::CarelinkCsv => Inner::Carelink(Box::new(carelink::Parser::new(src, &sniff)?)),
        Format::DexcomClarityCsv => Inner::Clarity(Box::new(clarity::Parser::new(src, &sniff)?)),
        Format::LibreViewCsv => Inner::Libre(Box::new(libre::Parser::new(src, &sniff)?)),
        Format::NightscoutJson => Inner::NsJson(Box::new(nightscout::JsonParser::new(src))),
        Format::NightscoutEntriesCsv => Inner::NsCsv(Box::new(nightscout::CsvParser::new(src))),
        // Read whole above; never reached.
        Format::MinimedPages => return Err(ImportError::Empty),
    };
    Ok(Importer { format, inner })
}

/// A streaming import: an iterator of [`Item`]s. See [`import`].
pub struct Importer<R: Read> {
    format: Format,
    inner: Inner<R>,
}

enum Inner<R: Read> {
    Carelink(Box<carelink::Parser<source::Source<R>>>),
    Clarity(Box<clarity::Parser<source::Source<R>>>),
    Libre(Box<libre::Parser<source::Source<R>>>),
    NsJson(Box<nightscout::JsonParser<source::Source<R>>>),
    NsCsv(Box<nightscout::CsvParser<source::Source<R>>>),
    Items(std::vec::IntoIter<Item>, std::marker::PhantomData<R>),
}

/// A MiniMed dump (JSON) or bare pages, decoded into items.
fn minimed_items(bytes: &[u8], file_name: Option<&str>) -> Result<Vec<Item>, ImportError> {
    use crate::minimed::dump::{self, PumpDump, RawHints};
    let malformed = |e: dump::DumpError| ImportError::Malformed { format: Format::MinimedPages, what: e.to_string() };
    let trimmed = bytes.trim_ascii_start();
    if trimmed.is_empty() {
        return Err(ImportError::Empty);
    }
    // Bare pages first (by size and CRC): a binary page may begin with `{` (a basal profile
    // start record, 0x7B).
    let decoded = if !dump::is_bare_pages(bytes) && trimmed.starts_with(b"{") {
        PumpDump::from_json(bytes).and_then(|d| d.decode())
    } else {
        dump::decode_raw(bytes, file_name.map(RawHints::from_file_name).unwrap_or_default())
    }
    .map_err(malformed)?;
    let mut items = Vec::with_capacity(decoded.records.len() + decoded.rejected.len() + 1);
    items.push(Item::Device(decoded.device));
    items.extend(decoded.records.into_iter().map(Item::Record));
    items.extend(decoded.rejected.into_iter().map(Item::Rejected));
    Ok(items)
}

impl<R: Read> Importer<R> {
    pub fn format(&self) -> Format {
        self.format
    }
}

impl<R: Read> Iterator for Importer<R> {
    type Item = Item;
    fn next(&mut self) -> Option<Item> {
        match &mut self.inner {
            Inner::Carelink(p) => p.next(),
            Inner::Clarity(p) => p.next(),
            Inner::Libre(p) => p.next(),
            Inner::NsJson(p) => p.next(),
            Inner::NsCsv(p) => p.next(),
            Inner::Items(it, _) => it.next(),
        }
    }
}

impl<R: Read> fmt::Debug for Importer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Importer").field("format", &self.format).finish_non_exhaustive()
    }
}

/// A whole file, decoded: what `diabase inspect FILE` prints.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    pub format: Format,
    /// The first device announced (all-`None` when the file names none).
    pub device: DeviceInfo,
    /// Every device section announced, in order (the same device may appear more than once,
    /// e.g. a CareLink export's `Pump` and `Sensor` sections).
    pub devices: Vec<DeviceInfo>,
    pub records: Vec<Record>,
    pub rejected: Vec<Rejected>,
}

impl Inspection {
    /// Collects a whole import.
    pub fn collect<R: Read>(importer: Importer<R>) -> Inspection {
        let mut ins = Inspection {
            format: importer.format(),
            device: DeviceInfo::default(),
            devices: Vec::new(),
            records: Vec::new(),
            rejected: Vec::new(),
        };
        for item in importer {
            match item {
                Item::Device(d) => {
                    if ins.devices.is_empty() {
                        ins.device = d.clone();
                    }
                    ins.devices.push(d);
                }
                Item::Record(r) => ins.records.push(r),
                Item::Rejected(r) => ins.rejected.push(r),
            }
        }
        ins
    }

    /// The `diabase inspect` JSON: `{"source": {"format", "device": {"manufacturer", "model",
    /// "serial"}}, "records": [...], "rejected": [{"where": "<file>:<line>", "reason"}]}`.
    pub fn to_json(&self, file_name: &str) -> serde_json::Value {
        serde_json::json!({
            "source": {"format": self.format, "device": self.device},
            "records": self.records,
            "rejected": self.rejected.iter().map(|r| serde_json::json!({
                "where": r.location(file_name),
                "reason": r.describe(),
            })).collect::<Vec<_>>(),
        })
    }
}

impl Serialize for Inspection {
    /// As [`Inspection::to_json`] with the file name `input`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json("input").serialize(s)
    }
}

/// Detects the format of a whole file held in memory and imports it.
pub fn inspect_bytes(bytes: &[u8], file_name: Option<&str>) -> Result<Inspection, ImportError> {
    let head = &bytes[..bytes.len().min(HEAD_LEN)];
    if looks_like_binary_pages(head) {
        return Ok(Inspection::collect(import_named(bytes, Format::MinimedPages, file_name)?));
    }
    let text = source::sniff_text(head);
    if text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}').is_empty() {
        return Err(ImportError::Empty);
    }
    let format = detect_text(&text, file_name).ok_or_else(|| {
        let t = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        ImportError::UnrecognisedFormat(t.chars().take(60).collect())
    })?;
    Ok(Inspection::collect(import_named(bytes, format, file_name)?))
}
