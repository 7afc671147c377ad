//! Dexcom Clarity CSV export.
//!
//! One header row (`Index,Timestamp (YYYY-MM-DDThh:mm:ss),Event Type,Event Subtype,Patient Info,
//! Device Info,Source Device ID,Glucose Value (mg/dL),Insulin Value (u),Carb Value (grams),
//! Duration (hh:mm:ss),Glucose Rate of Change (mg/dL/min),Transmitter Time (Long Integer),
//! Transmitter ID`), read by column name; the first cell is often mangled by a doubled BOM and
//! quoting, which does not matter. Rows without a timestamp are the account's metadata
//! (`FirstName`, `LastName`, `Device`, alert settings): the `Device` row announces the device
//! (model = Device Info; the serial is not in the export — transmitter IDs change every sensor
//! generation, so they are not used as one), the others are skipped.
//!
//! - `EGV` → `cgm`; the text `Low` / `High` is stored at 39 / 401 mg/dL with `out_of_range`
//!   (the G6/G7 range is 40–400). The trend comes from `Glucose Rate of Change` when present,
//!   with Dexcom's arrow thresholds (±1, ±2, ±3 mg/dL/min).
//! - `Calibration` → `bg` `calibration`.
//! - `Insulin` `Fast-Acting` → `bolus` `normal` (delivered = the logged dose); other insulin
//!   (`Long-Acting`, unspecified) → `note` ("Long-Acting insulin: 27 U"), since the record
//!   types have no injected basal.
//! - `Carbs` → `carbs`; `Exercise`, `Health`, `Notes` → `note`; `Alert` rows with a timestamp →
//!   `alarm`.

use super::text::{self, DateOrder, trim};
use super::{DeviceInfo, ImportError, Item, Rejected};
use chrono::NaiveDateTime;
use csv::ByteRecord;
use std::collections::VecDeque;
use std::io::Read;
use therapy::record::OutOfRange;
use therapy::{BgSource, BolusSubtype, DeviceTime, Record, RecordKind, Trend};

#[derive(Default, Debug)]
struct Cols {
    timestamp: Option<usize>,
    event_type: Option<usize>,
    subtype: Option<usize>,
    device_info: Option<usize>,
    source_device: Option<usize>,
    glucose: Option<usize>,
    glucose_mmol: bool,
    insulin: Option<usize>,
    carbs: Option<usize>,
    duration: Option<usize>,
    rate: Option<usize>,
    rate_mmol: bool,
}

impl Cols {
    fn from_header(rec: &ByteRecord) -> Option<Cols> {
        let mut c = Cols::default();
        for (i, h) in rec.iter().enumerate() {
            let l = text::text(trim(h)).to_ascii_lowercase();
            let mmol = l.contains("mmol");
            match () {
                _ if l.starts_with("timestamp") => c.timestamp = Some(i),
                _ if l == "event type" => c.event_type = Some(i),
                _ if l == "event subtype" => c.subtype = Some(i),
                _ if l == "device info" => c.device_info = Some(i),
                _ if l == "source device id" => c.source_device = Some(i),
                _ if l.starts_with("glucose value") => (c.glucose, c.glucose_mmol) = (Some(i), mmol),
                _ if l.starts_with("insulin value") => c.insulin = Some(i),
                _ if l.starts_with("carb value") => c.carbs = Some(i),
                _ if l.starts_with("duration") => c.duration = Some(i),
                _ if l.starts_with("glucose rate of change") => (c.rate, c.rate_mmol) = (Some(i), mmol),
                _ => {}
            }
        }
        (c.timestamp.is_some() && c.event_type.is_some()).then_some(c)
    }
}

pub(crate) struct Parser<R: Read> {
    rdr: csv::Reader<super::source::Lines<R>>,
    rec: ByteRecord,
    cols: Option<Cols>,
    out: VecDeque<Item>,
    eof: bool,
    device_announced: bool,
}

fn field(rec: &ByteRecord, i: Option<usize>) -> &[u8] {
    i.and_then(|i| rec.get(i)).map_or(b"", trim)
}

impl<R: Read> Parser<R> {
    pub(crate) fn new(src: R, sniff: &str) -> Result<Self, ImportError> {
        let lower = sniff.to_ascii_lowercase();
        if !lower.lines().take(16).any(|l| l.contains("timestamp") && l.contains("event type")) {
            return Err(ImportError::Malformed {
                format: super::Format::DexcomClarityCsv,
                what: "no header row with `Timestamp (YYYY-MM-DDThh:mm:ss)` and `Event Type` columns".into(),
            });
        }
        let delim = super::carelink::sniff_delimiter(sniff);
        let rdr = super::source::csv_reader(src, delim);
        Ok(Parser {
            rdr,
            rec: ByteRecord::new(),
            cols: None,
            out: VecDeque::new(),
            eof: false,
            device_announced: false,
        })
    }

    pub(crate) fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(it) = self.out.pop_front() {
                return Some(it);
            }
            if self.eof {
                return None;
            }
            match self.rdr.read_byte_record(&mut self.rec) {
                Ok(true) => {
                    let line = self.rec.position().map_or(0, |p| p.line());
                    match &self.cols {
                        None => match Cols::from_header(&self.rec) {
                            Some(c) => self.cols = Some(c),
                            None => self.out.push_back(Item::Rejected(Rejected::new(
                                line,
                                None,
                                "expected the header row (`Index,Timestamp (YYYY-MM-DDThh:mm:ss),Event Type,…`)",
                            ))),
                        },
                        Some(cols) => {
                            if let Err((f, reason)) = row(&self.rec, cols, &mut self.out, &mut self.device_announced) {
                                self.out.push_back(Item::Rejected(Rejected::new(line, Some(f), reason)));
                            }
                        }
                    }
                }
                Ok(false) => self.eof = true,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    self.eof = matches!(e.kind(), csv::ErrorKind::Io(_));
                    self.out.push_back(Item::Rejected(Rejected::new(line, None, format!("unreadable CSV: {e}"))));
                }
            }
        }
    }
}

type Reject = (&'static str, String);

fn row(rec: &ByteRecord, cols: &Cols, out: &mut VecDeque<Item>, announced: &mut bool) -> Result<(), Reject> {
    let et = field(rec, cols.event_type);
    let ts = field(rec, cols.timestamp);
    if ts.is_empty() {
        if et.eq_ignore_ascii_case(b"Device") {
            let model = Some(text::owned(field(rec, cols.device_info), 80)).filter(|s| !s.is_empty());
            let src = text::owned(field(rec, cols.source_device), 80);
            let serial = (!src.is_empty() && !src.contains(' ')).then_some(src);
            out.push_back(Item::Device(DeviceInfo::new("Dexcom", model, serial)));
            *announced = true;
        }
        // Patient names, alert settings: not records.
        return Ok(());
    }
    let t = text::datetime(ts, DateOrder::Mdy)
        .ok_or_else(|| ("Timestamp", format!("{} is not a date and time", text::show(ts))))?;
    if !*announced {
        out.push_back(Item::Device(DeviceInfo::new("Dexcom", None, None)));
        *announced = true;
    }
    let sub = text::text(field(rec, cols.subtype)).into_owned();
    let emit = |out: &mut VecDeque<Item>, t: NaiveDateTime, kind| {
        out.push_back(Item::Record(Record::new(DeviceTime(t), kind)));
    };
    match &text::text(et).to_ascii_lowercase()[..] {
        "egv" => {
            let g = field(rec, cols.glucose);
            let (value, oor) = if g.eq_ignore_ascii_case(b"low") {
                (39, Some(OutOfRange::Below))
            } else if g.eq_ignore_ascii_case(b"high") {
                (401, Some(OutOfRange::Above))
            } else {
                (text::glucose_in(g, cols.glucose_mmol, &text::CGM_MG_DL).map_err(|e| ("Glucose Value", e))?, None)
            };
            let trend = text::num(field(rec, cols.rate)).map(|r| {
                let r = if cols.rate_mmol { r * therapy::units::MG_DL_PER_MMOL_L } else { r };
                trend_of(r)
            });
            emit(out, t, RecordKind::Cgm { value_mg_dl: value, trend, out_of_range: oor });
        }
        "calibration" => {
            let g = field(rec, cols.glucose);
            let mg = text::glucose_in(g, cols.glucose_mmol, &text::BG_MG_DL).map_err(|e| ("Glucose Value", e))?;
            emit(out, t, RecordKind::Bg { value_mg_dl: mg, source: BgSource::Calibration });
        }
        "insulin" => {
            let v = field(rec, cols.insulin);
            let u = text::number_in(v, &text::INSULIN_U, "U").map_err(|e| ("Insulin Value", e))?;
            if sub.to_ascii_lowercase().contains("fast") {
                emit(out, t, RecordKind::bolus(BolusSubtype::Normal, None, Some(u), None));
            } else {
                let kind = if sub.is_empty() { "Insulin".to_string() } else { format!("{sub} insulin") };
                emit(out, t, RecordKind::Note { text: format!("{kind}: {u} U") });
            }
        }
        "carbs" => {
            let v = field(rec, cols.carbs);
            let g = text::number_in(v, &text::CARBS_G, "g").map_err(|e| ("Carb Value", e))?;
            emit(out, t, RecordKind::Carbs { grams: g });
        }
        "alert" => {
            let d = if sub.is_empty() { "Alert".to_string() } else { format!("{sub} alert") };
            emit(out, t, RecordKind::Alarm { code: None, description: Some(d) });
        }
        "exercise" | "health" | "notes" | "note" => {
            let mut s = text::text(et).into_owned();
            if !sub.is_empty() {
                s = format!("{s}: {sub}");
            }
            let d = field(rec, cols.duration);
            if !d.is_empty() {
                s = format!("{s} ({})", text::owned(d, 20));
            }
            emit(out, t, RecordKind::Note { text: s });
        }
        _ => {}
    }
    Ok(())
}

/// Dexcom's arrows from the rate of change in mg/dL/min.
fn trend_of(r: f64) -> Trend {
    match r {
        r if r > 3.0 => Trend::DoubleUp,
        r if r > 2.0 => Trend::SingleUp,
        r if r > 1.0 => Trend::FortyFiveUp,
        r if r >= -1.0 => Trend::Flat,
        r if r >= -2.0 => Trend::FortyFiveDown,
        r if r >= -3.0 => Trend::SingleDown,
        _ => Trend::DoubleDown,
    }
}
