//! Medtronic CareLink Personal CSV export.
//!
//! Two layouts occur, and both are read by column name, so column order and optional columns
//! do not matter:
//! - **v1.0.1** (comma separated, `M/D/YY` dates): a preamble (`Pump:,Paradigm 522,#578398,` …),
//!   then one `Index,Date,Time,Timestamp,New Device Time,BG Reading (mg/dL),…,Raw-Type,Raw-Values,
//!   Raw-ID,Raw-Upload ID,Raw-Seq Num,Raw-Device Type` table for all devices. `Raw-Type` /
//!   `Raw-Values` carry CareLink's own decode of each pump record; rows whose `Raw-Type` we know
//!   are read from it (values from the named columns first, `Raw-Values` as the fallback), the
//!   rest from the named columns. The `Timestamp` column wins over `Date` + `Time` (they disagree
//!   in some exports; Tidepool reads `Timestamp` too). A change of `Raw-Device Type` starts a new
//!   device section; its serial comes from the preamble's device lines.
//! - **newer** (semicolon separated, `YYYY/MM/DD`, decimal commas, `(mmol/L)` column variants):
//!   one block per device section, introduced by `-------;<device>;<Pump|Sensor>;<serial>;-------`
//!   and its own `Index;Date;Time;New Device Time;…` header.
//!
//! Mapping (column or `Raw-Type` → record):
//! - `Sensor Glucose` / `GlucoseSensorData*` → `cgm` (`GlucoseSensorDataLow`/`High`, the
//!   sensor's 40/400 limits, are flagged `out_of_range`).
//! - `BG Reading` / `BGReceived` → `bg` `linked_meter` (or `manual` without a linked meter);
//!   `BGCapturedOnPump` → `bg`, `linked_meter` when it came over the meter link, else `manual`
//!   (as Tidepool); `Sensor Calibration BG` / `CalBGForPH` → `bg` `calibration`. One fingerstick is
//!   often written two or three times (received, captured, used to calibrate) with the same
//!   second and value: it is one record, `linked_meter` over `manual` over `calibration`.
//!   `CalBGForGH` (the same BG at minute resolution in the glucose history) is skipped.
//! - `Bolus Type` `Normal`/`Square`/`Dual/Normal`/`Dual/Square`/`Dual (normal part)`/`Dual (square
//!   part)` → `bolus`. The two parts of a dual-wave bolus are separate rows (possibly minutes and
//!   rows apart) and are combined into one `dual` bolus at the normal part's time: programmed and
//!   delivered are the sums of the parts, `duration_min` the square part's. Parts are paired by
//!   `Raw-Seq Num` adjacency (±3) within one `Raw-Upload ID` when present, else by nearest time
//!   (≤ 15 min; x22 pumps write other history records between the parts, where Tidepool leaves
//!   the two parts unpaired). A dual square part without a normal part (a 0 % normal dual) is a
//!   `square` bolus, as in Tidepool; a dual normal part whose square part never comes is a
//!   `dual` bolus without `duration_min`. An interrupted square part's `duration_min` is scaled
//!   by delivered / programmed (Tidepool's convention: the time it actually ran). Square and
//!   dual boluses also keep their parts: `normal_programmed_u` / `normal_delivered_u` (0 for a
//!   square bolus), `extended_programmed_u` / `extended_delivered_u` and
//!   `extended_duration_min` (the duration it ran), each absent when its row is.
//! - `BWZ …` / `BolusWizardBolusEstimate` → `bolus_wizard`, plus a `carbs` record when carbs
//!   were entered. As in Tidepool, an estimate is kept only when a bolus followed it within
//!   5 minutes (the latest estimate before the bolus wins; estimates the user backed out of are
//!   dropped); an estimate of 0 U with carbs entered is kept anyway (a logged meal).
//! - `Basal Rate` / `BasalProfileStart` → `basal_profile_start` (pattern name and offset from
//!   `Raw-Values`); `Temp Basal …` / `ChangeTempBasal` / `ChangeTempBasalPercent` → `temp_basal`
//!   (a duration of 0 is the cancellation of a running temp basal and is kept, with
//!   `duration_min: 0`; Tidepool drops those); `Suspend` / `ChangeSuspendEnable` → `suspend` /
//!   `resume`; `Prime …` → `prime`; `Rewind` → `rewind`; `Alarm` → `alarm` (code from the text's
//!   trailing `(n)` or `Raw-Values`); `JournalEntryPumpLowReservoir`/`LowBattery` → `alarm`;
//!   `Daily Insulin Total` → `daily_total` (`date` = the row's date); `New Device Time` (on
//!   `ChangeTime` rows: the new clock reading) → `time_change` (from = the row's time);
//!   `Event Marker` `Meal: 45,00grams` → `carbs`, other markers (`Insulin: 27,00` — a logged
//!   injection of unknown kind) → `note`.
//! - Sensor status rows → `sensor_event`: `SensorPacket` init → `sensor_start`, `SensorError`
//!   end → `sensor_end` (other errors `sensor_error`), `SensorStatus` lost → `signal_lost`,
//!   `SensorWeakSignal` → `weak_signal`.
//! - Settings (`Current*` rows: the pump's settings at upload; `Change*` rows: a change on the
//!   pump) → one `settings` record per group of rows with the same timestamp:
//!   `{kind: snapshot|change, active_schedule, basal_schedules: {name: [{start_min, rate_u_h}]},
//!   carb_ratios: [{start_min, g_per_u}], sensitivities: [{start_min, mg_dl_per_u}],
//!   bg_targets: [{start_min, low_mg_dl, high_mg_dl}], units: {bg, carb}, max_basal_u_h,
//!   max_bolus_u, insulin_action_min, …}` (a change record holds only what changed; `…Pre` rows,
//!   the values before the change, are not emitted). Tidepool instead propagates the snapshot
//!   backwards through the changes; the values are the same, the times differ.
//! - Everything else (`UnabsorbedInsulin`, `SensorCal`, `ClearAlarm`, …) is not a record.

use super::text::{self, DateOrder, trim};
use super::{DeviceInfo, ImportError, Item, Rejected};
use chrono::NaiveDateTime;
use csv::ByteRecord;
use serde_json::{Map, Value, json};
use std::collections::VecDeque;
use std::io::Read;
use therapy::record::{BolusWizard, OutOfRange};
use therapy::{BgSource, BolusSubtype, DeviceTime, PrimeKind, Record, RecordKind};

const MEDTRONIC: &str = "Medtronic";
/// Dual-wave parts further apart than this are not paired.
const PAIR_WINDOW_S: i64 = 15 * 60;
/// A Bolus Wizard estimate belongs to a bolus delivered at most this long after it.
const WIZARD_WINDOW_S: i64 = 5 * 60;
/// Tolerance for a bolus row timestamped a few seconds before its estimate.
const WIZARD_SLACK_S: i64 = 5;
const MAX_PENDING: usize = 64;

pub(crate) struct Parser<R: Read> {
    rdr: csv::Reader<super::source::Lines<R>>,
    rec: ByteRecord,
    st: State,
}

impl<R: Read> Parser<R> {
    pub(crate) fn new(src: R, sniff: &str) -> Result<Self, ImportError> {
        let delim = sniff_delimiter(sniff);
        let has_header = sniff.lines().take(256).any(|l| {
            let first = l.trim_start_matches('\u{feff}').split([',', ';']).next().unwrap_or("");
            first.trim().trim_matches('"').eq_ignore_ascii_case("index")
        });
        if !has_header {
            return Err(ImportError::Malformed {
                format: super::Format::CarelinkCsv,
                what: "no `Index,Date,Time,…` header row in the first 256 lines".into(),
            });
        }
        let rdr = super::source::csv_reader(src, delim);
        Ok(Parser { rdr, rec: ByteRecord::new(), st: State::default() })
    }

    pub(crate) fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(it) = self.st.out.pop_front() {
                return Some(it);
            }
            if self.st.eof {
                return None;
            }
            match self.rdr.read_byte_record(&mut self.rec) {
                Ok(true) => {
                    let line = self.rec.position().map_or(0, |p| p.line());
                    self.st.row(&self.rec, line);
                }
                Ok(false) => {
                    self.st.eof = true;
                    self.st.flush_all();
                }
                Err(e) => {
                    let line = e.position().map_or(self.st.last_line + 1, |p| p.line());
                    let fatal = matches!(e.kind(), csv::ErrorKind::Io(_));
                    self.st.out.push_back(Item::Rejected(Rejected::new(line, None, format!("unreadable CSV: {e}"))));
                    if fatal {
                        self.st.eof = true;
                        self.st.flush_all();
                    }
                }
            }
        }
    }
}

pub(crate) fn sniff_delimiter(sniff: &str) -> u8 {
    let (mut semi, mut comma) = (0usize, 0usize);
    for l in sniff.lines().take(40) {
        semi += l.bytes().filter(|&c| c == b';').count();
        comma += l.bytes().filter(|&c| c == b',').count();
    }
    if semi > comma / 2 { b';' } else { b',' }
}

// ---------------------------------------------------------------------------------------------

/// Column positions of one header row.
#[derive(Default, Clone, Debug)]
struct Cols {
    date: Option<usize>,
    time: Option<usize>,
    timestamp: Option<usize>,
    new_device_time: Option<usize>,
    bg: Option<usize>,
    bg_mmol: bool,
    linked_meter: Option<usize>,
    basal_rate: Option<usize>,
    temp_amount: Option<usize>,
    temp_type: Option<usize>,
    temp_duration: Option<usize>,
    bolus_type: Option<usize>,
    bolus_selected: Option<usize>,
    bolus_delivered: Option<usize>,
    bolus_duration: Option<usize>,
    prime_type: Option<usize>,
    prime_volume: Option<usize>,
    alarm: Option<usize>,
    suspend: Option<usize>,
    rewind: Option<usize>,
    bwz_estimate: Option<usize>,
    bwz_target_high: Option<usize>,
    bwz_target_low: Option<usize>,
    bwz_target_mmol: bool,
    bwz_carb_ratio: Option<usize>,
    bwz_isf: Option<usize>,
    bwz_isf_mmol: bool,
    bwz_carb_input: Option<usize>,
    bwz_bg_input: Option<usize>,
    bwz_bg_mmol: bool,
    bwz_correction: Option<usize>,
    bwz_food: Option<usize>,
    bwz_active: Option<usize>,
    cal_bg: Option<usize>,
    cal_mmol: bool,
    sg: Option<usize>,
    sg_mmol: bool,
    daily_total: Option<usize>,
    event_marker: Option<usize>,
    raw_type: Option<usize>,
    raw_values: Option<usize>,
    raw_id: Option<usize>,
    raw_upload: Option<usize>,
    raw_seq: Option<usize>,
    raw_device: Option<usize>,
    /// Columns that can carry an event (for telling empty rows from bad ones).
    content: Vec<usize>,
}

impl Cols {
    fn from_header(rec: &ByteRecord) -> Cols {
        let mut c = Cols::default();
        for (i, h) in rec.iter().enumerate() {
            let l = text::text(trim(h)).trim_matches('"').to_ascii_lowercase();
            let mmol = l.contains("mmol");
            let mut content = true;
            match l.as_str() {
                "index" | "isig value" | "bolus number" | "bwz status" => content = false,
                "date" => (c.date, content) = (Some(i), false),
                "time" => (c.time, content) = (Some(i), false),
                "timestamp" => (c.timestamp, content) = (Some(i), false),
                "new device time" => c.new_device_time = Some(i),
                "linked bg meter id" => (c.linked_meter, content) = (Some(i), false),
                "bolus type" => c.bolus_type = Some(i),
                "prime type" => c.prime_type = Some(i),
                "alarm" => c.alarm = Some(i),
                "suspend" => c.suspend = Some(i),
                "rewind" => c.rewind = Some(i),
                "event marker" => c.event_marker = Some(i),
                "raw-type" => c.raw_type = Some(i),
                "raw-values" => (c.raw_values, content) = (Some(i), false),
                "raw-id" => (c.raw_id, content) = (Some(i), false),
                "raw-upload id" => (c.raw_upload, content) = (Some(i), false),
                "raw-seq num" => (c.raw_seq, content) = (Some(i), false),
                "raw-device type" => (c.raw_device, content) = (Some(i), false),
                _ if l.starts_with("bg reading") => (c.bg, c.bg_mmol) = (Some(i), mmol),
                _ if l.starts_with("basal rate") => c.basal_rate = Some(i),
                _ if l.starts_with("temp basal amount") => c.temp_amount = Some(i),
                _ if l.starts_with("temp basal type") => c.temp_type = Some(i),
                _ if l.starts_with("temp basal duration") => c.temp_duration = Some(i),
                _ if l.starts_with("bolus volume selected") => c.bolus_selected = Some(i),
                _ if l.starts_with("bolus volume delivered") => c.bolus_delivered = Some(i),
                _ if l.starts_with("programmed bolus duration") || l.starts_with("bolus duration") => {
                    c.bolus_duration = Some(i)
                }
                _ if l.starts_with("prime volume delivered") => c.prime_volume = Some(i),
                _ if l.starts_with("bwz estimate") => c.bwz_estimate = Some(i),
                _ if l.starts_with("bwz target high bg") => (c.bwz_target_high, c.bwz_target_mmol) = (Some(i), mmol),
                _ if l.starts_with("bwz target low bg") => (c.bwz_target_low, c.bwz_target_mmol) = (Some(i), mmol),
                // Carb ratios in exchanges (U/Ex) are not grams: not read.
                _ if l.starts_with("bwz carb ratio") => {
                    if !l.contains("ex") {
                        c.bwz_carb_ratio = Some(i)
                    }
                }
                _ if l.starts_with("bwz insulin sensitivity") => (c.bwz_isf, c.bwz_isf_mmol) = (Some(i), mmol),
                _ if l.starts_with("bwz carb input") => {
                    if !l.contains("ex") {
                        c.bwz_carb_input = Some(i)
                    }
                }
                _ if l.starts_with("bwz bg input") => (c.bwz_bg_input, c.bwz_bg_mmol) = (Some(i), mmol),
                _ if l.starts_with("bwz correction estimate") => c.bwz_correction = Some(i),
                _ if l.starts_with("bwz food estimate") => c.bwz_food = Some(i),
                _ if l.starts_with("bwz active insulin") => c.bwz_active = Some(i),
                _ if l.starts_with("sensor calibration bg") => (c.cal_bg, c.cal_mmol) = (Some(i), mmol),
                _ if l.starts_with("sensor glucose") => (c.sg, c.sg_mmol) = (Some(i), mmol),
                _ if l.starts_with("daily insulin total") => c.daily_total = Some(i),
                _ => content = false,
            }
            if content {
                c.content.push(i);
            }
        }
        c
    }

    fn has_time(&self) -> bool {
        self.timestamp.is_some() || (self.date.is_some() && self.time.is_some())
    }
}

#[inline]
fn field(rec: &ByteRecord, i: Option<usize>) -> &[u8] {
    match i.and_then(|i| rec.get(i)) {
        Some(f) => trim(f),
        None => b"",
    }
}

/// A value from `Raw-Values` (`KEY=value, KEY=value`); `null` counts as absent.
fn raw_get<'a>(raw: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    for part in raw.split(|&c| c == b',') {
        let part = trim(part);
        if part.len() > key.len() && part.starts_with(key) && part[key.len()] == b'=' {
            let v = trim(&part[key.len() + 1..]);
            return if v.is_empty() || v == b"null" { None } else { Some(v) };
        }
    }
    None
}

fn raw_num(raw: &[u8], key: &[u8]) -> Option<f64> {
    raw_get(raw, key).and_then(text::num)
}

type Reject = (&'static str, String);

// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct State {
    out: VecDeque<Item>,
    cols: Option<Cols>,
    order: Option<DateOrder>,
    /// Devices named in the preamble (v1.0.1 `Pump:`/`Meter:` lines, newer `Device`/`Serial Number`).
    preamble: Vec<DeviceInfo>,
    /// The current `Raw-Device Type`.
    device_key: Option<Vec<u8>>,
    announced: bool,
    bolus: Assembler,
    settings: Settings,
    recent_bg: VecDeque<(NaiveDateTime, u16)>,
    pending_bg: Vec<(NaiveDateTime, u16, BgSource)>,
    last_line: u64,
    eof: bool,
}

impl State {
    fn emit(&mut self, t: NaiveDateTime, kind: RecordKind) {
        self.out.push_back(Item::Record(Record::new(DeviceTime(t), kind)));
    }

    fn reject(&mut self, line: u64, field: &str, reason: String) {
        self.out.push_back(Item::Rejected(Rejected::new(line, Some(field), reason)));
    }

    fn flush_all(&mut self) {
        self.flush_bg();
        self.bolus.flush(&mut self.out);
        self.settings.flush(&mut self.out);
    }

    fn row(&mut self, rec: &ByteRecord, line: u64) {
        self.last_line = line;
        let f0 = trim(rec.get(0).unwrap_or(b""));
        let f0 = f0.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(f0);
        if f0.starts_with(b"-------") {
            self.section(rec);
            return;
        }
        if f0.eq_ignore_ascii_case(b"index") && rec.len() > 3 {
            self.header(rec, line);
            return;
        }
        if self.cols.is_none() {
            self.preamble_line(rec);
            return;
        }
        self.data_row(rec, line);
    }

    fn section(&mut self, rec: &ByteRecord) {
        self.flush_all();
        let model = rec.get(1).map(|f| text::owned(f, 80)).filter(|s| !s.is_empty());
        let serial = rec.get(3).map(|f| text::owned(f, 80)).filter(|s| !s.is_empty() && !s.starts_with('-'));
        self.out.push_back(Item::Device(DeviceInfo::new(MEDTRONIC, model, serial)));
        self.announced = true;
        self.device_key = None;
        self.cols = None;
    }

    fn header(&mut self, rec: &ByteRecord, line: u64) {
        self.flush_all();
        let cols = Cols::from_header(rec);
        if !cols.has_time() {
            self.out.push_back(Item::Rejected(Rejected::new(
                line,
                None,
                "header row has no Date and Time (or Timestamp) columns; the table that follows is skipped",
            )));
            self.cols = None;
            return;
        }
        if cols.raw_device.is_none() && !self.announced {
            let d = self.preamble.first().cloned().unwrap_or_else(|| DeviceInfo::new(MEDTRONIC, None, None));
            self.out.push_back(Item::Device(d));
            self.announced = true;
        }
        self.cols = Some(cols);
    }

    fn preamble_line(&mut self, rec: &ByteRecord) {
        let f0 = text::text(trim(rec.get(0).unwrap_or(b""))).to_ascii_lowercase();
        // v1.0.1: `Pump:,Paradigm 522,#578398,` / `Meter:,…` / `Sensor:,In use," ",`
        if f0 == "pump:" || f0 == "meter:" || f0 == "sensor:" || f0 == "cgm:" {
            let model = rec.get(1).map(|f| text::owned(f, 80)).filter(|s| !s.is_empty() && s != "In use");
            let serial = rec
                .get(2)
                .map(|f| text::owned(f, 80).trim_start_matches('#').trim().to_string())
                .filter(|s| !s.is_empty());
            if model.is_some() && f0 != "meter:" {
                self.preamble.push(DeviceInfo::new(MEDTRONIC, model, serial));
            }
            return;
        }
        // newer: `…;Device;Guardian Connect` then `…;"Serial Number";GCZ7PA-…`
        for i in 0..rec.len().saturating_sub(1) {
            let k = text::text(trim(&rec[i])).to_ascii_lowercase();
            if k == "device" {
                let model = text::owned(&rec[i + 1], 80);
                if !model.is_empty() {
                    match self.preamble.first_mut() {
                        Some(d) if d.model.is_none() => d.model = Some(model),
                        _ => self.preamble.push(DeviceInfo::new(MEDTRONIC, Some(model), None)),
                    }
                }
            } else if k == "serial number" {
                let serial = text::owned(&rec[i + 1], 80);
                if !serial.is_empty() {
                    match self.preamble.last_mut() {
                        Some(d) if d.serial.is_none() => d.serial = Some(serial),
                        _ => self.preamble.push(DeviceInfo::new(MEDTRONIC, None, Some(serial))),
                    }
                }
            }
        }
    }

    fn row_time(&mut self, rec: &ByteRecord, cols: &Cols) -> Option<NaiveDateTime> {
        let order = self.order.unwrap_or(DateOrder::Mdy);
        if let Some(t) = cols.timestamp.and_then(|i| text::datetime(field(rec, Some(i)), order)) {
            return Some(t);
        }
        let d = field(rec, cols.date);
        let d = text::date(d, order).or_else(|| {
            // `DD.MM.YYYY` is a day-first locale.
            if d.contains(&b'.') {
                self.order = Some(DateOrder::Dmy);
                text::date(d, DateOrder::Dmy)
            } else {
                None
            }
        })?;
        let t = text::time(field(rec, cols.time))?;
        Some(NaiveDateTime::new(d, t))
    }

    fn data_row(&mut self, rec: &ByteRecord, line: u64) {
        let Some(cols) = self.cols.take() else { return };
        self.data_row_with(rec, line, &cols);
        self.cols = Some(cols);
    }

    fn data_row_with(&mut self, rec: &ByteRecord, line: u64, cols: &Cols) {
        let Some(t) = self.row_time(rec, cols) else {
            if cols.content.iter().any(|&i| !field(rec, Some(i)).is_empty()) || !field(rec, cols.raw_type).is_empty() {
                let (name, v) = if cols.timestamp.is_some() {
                    ("Timestamp", text::show(field(rec, cols.timestamp)))
                } else {
                    ("Date", format!("{} {}", text::show(field(rec, cols.date)), text::show(field(rec, cols.time))))
                };
                self.reject(line, name, format!("{v} is not a date and time"));
            }
            return;
        };
        // Device sections of the v1.0.1 layout.
        if cols.raw_device.is_some() {
            let d = field(rec, cols.raw_device);
            if !d.is_empty() && self.device_key.as_deref() != Some(d) {
                self.flush_all();
                self.device_key = Some(d.to_vec());
                let model = text::owned(d, 80);
                let info = self
                    .preamble
                    .iter()
                    .find(|p| p.model.as_deref() == Some(model.as_str()))
                    .cloned()
                    .unwrap_or_else(|| DeviceInfo::new(MEDTRONIC, Some(model), None));
                self.out.push_back(Item::Device(info));
                self.announced = true;
            }
        }
        if self.pending_bg.first().is_some_and(|p| p.0 != t) {
            self.flush_bg();
        }
        self.bolus.advance(t, &mut self.out);
        self.settings.advance(t, &mut self.out);

        let raw_type = field(rec, cols.raw_type);
        let handled = if raw_type.is_empty() {
            false
        } else {
            match self.raw_row(rec, t, raw_type, cols) {
                Ok(h) => h,
                Err((f, reason)) => {
                    self.reject(line, f, reason);
                    true
                }
            }
        };
        if !handled {
            self.column_row(rec, line, t, cols);
        }
    }

    /// Rows read by `Raw-Type`. `Ok(false)`: not a type we know, read the columns instead.
    fn raw_row(&mut self, rec: &ByteRecord, t: NaiveDateTime, raw_type: &[u8], cols: &Cols) -> Result<bool, Reject> {
        let raw = field(rec, cols.raw_values);
        match raw_type {
            b"GlucoseSensorData" | b"GlucoseSensorDataHigh" | b"GlucoseSensorDataLow" => {
                let v = field(rec, cols.sg);
                let mg = if v.is_empty() {
                    let a = raw_num(raw, b"AMOUNT").ok_or(("Raw-Values", "no AMOUNT".to_string()))?;
                    text::glucose_value(a, false, &text::CGM_MG_DL).map_err(|e| ("Raw-Values", e))?
                } else {
                    text::glucose_in(v, cols.sg_mmol, &text::CGM_MG_DL).map_err(|e| ("Sensor Glucose", e))?
                };
                let out_of_range = match raw_type {
                    b"GlucoseSensorDataHigh" => Some(OutOfRange::Above),
                    b"GlucoseSensorDataLow" => Some(OutOfRange::Below),
                    _ => None,
                };
                self.emit(t, RecordKind::Cgm { value_mg_dl: mg, trend: None, out_of_range });
            }
            b"BGReceived" | b"BGCapturedOnPump" | b"CalBGForPH" => {
                let (col, mmol, name) = if raw_type == b"CalBGForPH" {
                    (cols.cal_bg, cols.cal_mmol, "Sensor Calibration BG")
                } else {
                    (cols.bg, cols.bg_mmol, "BG Reading")
                };
                let v = field(rec, col);
                let mg = if v.is_empty() {
                    let a = raw_num(raw, b"AMOUNT").ok_or(("Raw-Values", "no AMOUNT".to_string()))?;
                    text::glucose_value(a, false, &text::BG_MG_DL).map_err(|e| ("Raw-Values", e))?
                } else {
                    text::glucose_in(v, mmol, &text::BG_MG_DL).map_err(|e| (name, e))?
                };
                let source = match raw_type {
                    b"BGReceived" => BgSource::LinkedMeter,
                    b"CalBGForPH" => BgSource::Calibration,
                    _ => match raw_get(raw, b"ACTION_REQUESTOR") {
                        Some(b"paradigm link or b key") => BgSource::LinkedMeter,
                        _ => BgSource::Manual,
                    },
                };
                self.bg(t, mg, source);
            }
            b"CalBGForGH" => {}
            b"BolusNormal" | b"BolusSquare" => self.bolus_row(rec, t, cols, Some(raw_type == b"BolusSquare"))?,
            b"BolusWizardBolusEstimate" => self.wizard_row(rec, t, cols)?,
            b"BasalProfileStart" => {
                let v = field(rec, cols.basal_rate);
                let rate = if v.is_empty() {
                    let r = raw_num(raw, b"RATE").ok_or(("Raw-Values", "no RATE".to_string()))?;
                    text::within(r, &text::RATE_U_H, "U/h").map_err(|e| ("Raw-Values", e))?
                } else {
                    text::number_in(v, &text::RATE_U_H, "U/h").map_err(|e| ("Basal Rate", e))?
                };
                let profile = raw_get(raw, b"PATTERN_NAME").map(|p| text::owned(p, 80));
                let offset_min = raw_num(raw, b"START_TIME")
                    .filter(|ms| (0.0..=86_400_000.0).contains(ms))
                    .map(|ms| (ms / 60_000.0).round() as u32);
                self.emit(t, RecordKind::BasalProfileStart { rate_u_h: rate, profile, offset_min });
            }
            b"ChangeTempBasalPercent" => {
                let p = match raw_num(raw, b"PERCENT_OF_RATE") {
                    Some(p) => p,
                    None => text::num(field(rec, cols.temp_amount))
                        .ok_or(("Raw-Values", "no PERCENT_OF_RATE".to_string()))?,
                };
                let p = text::within(p, &text::PERCENT, "%").map_err(|e| ("Temp Basal Amount", e))?;
                let dur = self.temp_duration(rec, cols, raw)?;
                self.emit(
                    t,
                    RecordKind::TempBasal { rate_u_h: None, percent: Some(p.round() as u32), duration_min: dur },
                );
            }
            b"ChangeTempBasal" => self.temp_basal_row(rec, t, cols, raw)?,
            b"ChangeTempBasalType" => {}
            b"ChangeSuspendEnable" => {
                let kind = match raw_get(raw, b"ENABLE") {
                    Some(
                        b"normal_pumping" | b"user_restart_basal" | b"auto_resume_complete" | b"auto_resume_reduced",
                    ) => Some(RecordKind::Resume),
                    Some(e) if e.ends_with(b"suspend") || e.starts_with(b"low_suspend") || e.starts_with(b"alarm") => {
                        Some(RecordKind::Suspend)
                    }
                    _ => suspend_kind(field(rec, cols.suspend)),
                };
                if let Some(k) = kind {
                    self.emit(t, k);
                }
            }
            b"Prime" => self.prime_row(rec, t, cols, raw)?,
            b"Rewind" => self.emit(t, RecordKind::Rewind),
            b"AlarmPump" | b"AlarmSensor" => {
                let txt = text::owned(field(rec, cols.alarm), 200);
                let code = text::alarm_code(&txt)
                    .or_else(|| raw_num(raw, b"ALARM_TYPE").or_else(|| raw_num(raw, b"RAW_TYPE")).map(|c| c as u32));
                let description = strip_code(&txt);
                self.emit(t, RecordKind::Alarm { code, description });
            }
            b"JournalEntryPumpLowReservoir" => {
                let d = match raw_num(raw, b"AMOUNT") {
                    Some(a) => format!("Low reservoir ({a} U left)"),
                    None => "Low reservoir".to_string(),
                };
                self.emit(t, RecordKind::Alarm { code: None, description: Some(d) });
            }
            b"JournalEntryPumpLowBattery" => {
                self.emit(t, RecordKind::Alarm { code: None, description: Some("Low battery".into()) })
            }
            b"ResultDailyTotal" => {
                let v = field(rec, cols.daily_total);
                // Raw AMOUNT has more digits than the column (43.325 vs 43.3).
                let units = match raw_num(raw, b"AMOUNT") {
                    Some(a) => text::within(a, &text::DAILY_TOTAL_U, "U").map_err(|e| ("Raw-Values", e))?,
                    None => text::number_in(v, &text::DAILY_TOTAL_U, "U").map_err(|e| ("Daily Insulin Total", e))?,
                };
                self.emit(t, RecordKind::DailyTotal { date: t.date().to_string(), units });
            }
            // The pump's own clock change: `New Device Time` holds the new clock reading.
            // (`ChangeTimeGH` mirrors it in the glucose history with only the new time: skipped.)
            b"ChangeTime" => {
                let v = field(rec, cols.new_device_time);
                if !v.is_empty() {
                    let to = text::datetime(v, self.order.unwrap_or(DateOrder::Mdy))
                        .ok_or_else(|| ("New Device Time", format!("{} is not a date and time", text::show(v))))?;
                    self.emit(t, RecordKind::TimeChange { from: DeviceTime(t), to: DeviceTime(to) });
                }
            }
            b"ChangeTimeGH" => {}
            b"SensorPacket" => {
                if raw_get(raw, b"PACKET_TYPE") == Some(b"init") {
                    self.emit(t, RecordKind::SensorEvent { kind: "sensor_start".into() });
                }
            }
            b"SensorError" => {
                let kind = if raw_get(raw, b"ERROR_TYPE") == Some(b"end") { "sensor_end" } else { "sensor_error" };
                self.emit(t, RecordKind::SensorEvent { kind: kind.into() });
            }
            b"SensorStatus" => {
                let kind = match raw_get(raw, b"STATUS_TYPE") {
                    Some(b"lost") => "signal_lost".to_string(),
                    Some(s) => format!("status_{}", text::owned(s, 40).to_ascii_lowercase().replace(' ', "_")),
                    None => "status".to_string(),
                };
                self.emit(t, RecordKind::SensorEvent { kind });
            }
            b"SensorWeakSignal" => self.emit(t, RecordKind::SensorEvent { kind: "weak_signal".into() }),
            b"UnabsorbedInsulin"
            | b"SensorCal"
            | b"SensorCalFactor"
            | b"SensorSync"
            | b"SensorTimestamp"
            | b"ClearAlarm"
            | b"AlarmResetTimeChangeGH" => {}
            other if other.starts_with(b"Current") || other.starts_with(b"Change") => {
                let id = field(rec, cols.raw_id);
                self.settings.add(t, other, raw, id, &mut self.out);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Rows without a known `Raw-Type`: every populated event column is read.
    fn column_row(&mut self, rec: &ByteRecord, line: u64, t: NaiveDateTime, cols: &Cols) {
        let go = |st: &mut State, r: Result<(), Reject>| {
            if let Err((f, reason)) = r {
                st.reject(line, f, reason);
            }
        };
        let sg = field(rec, cols.sg);
        if !sg.is_empty() {
            let r = text::glucose_in(sg, cols.sg_mmol, &text::CGM_MG_DL)
                .map(|mg| self.emit(t, RecordKind::Cgm { value_mg_dl: mg, trend: None, out_of_range: None }))
                .map_err(|e| ("Sensor Glucose", e));
            go(self, r);
        }
        let bg = field(rec, cols.bg);
        if !bg.is_empty() {
            let source =
                if field(rec, cols.linked_meter).is_empty() { BgSource::Manual } else { BgSource::LinkedMeter };
            let r = text::glucose_in(bg, cols.bg_mmol, &text::BG_MG_DL)
                .map(|mg| self.bg(t, mg, source))
                .map_err(|e| ("BG Reading", e));
            go(self, r);
        }
        let cal = field(rec, cols.cal_bg);
        if !cal.is_empty() {
            let r = text::glucose_in(cal, cols.cal_mmol, &text::BG_MG_DL)
                .map(|mg| self.bg(t, mg, BgSource::Calibration))
                .map_err(|e| ("Sensor Calibration BG", e));
            go(self, r);
        }
        if !field(rec, cols.bolus_type).is_empty() {
            let r = self.bolus_row(rec, t, cols, None);
            go(self, r);
        }
        if !field(rec, cols.bwz_estimate).is_empty() || !field(rec, cols.bwz_carb_input).is_empty() {
            let r = self.wizard_row(rec, t, cols);
            go(self, r);
        }
        if !field(rec, cols.temp_amount).is_empty() || !field(rec, cols.temp_type).is_empty() {
            let r = self.temp_basal_row(rec, t, cols, b"");
            go(self, r);
        }
        let basal = field(rec, cols.basal_rate);
        if !basal.is_empty() {
            let r = text::number_in(basal, &text::RATE_U_H, "U/h")
                .map(|rate| {
                    self.emit(t, RecordKind::BasalProfileStart { rate_u_h: rate, profile: None, offset_min: None })
                })
                .map_err(|e| ("Basal Rate", e));
            go(self, r);
        }
        if !field(rec, cols.prime_type).is_empty() || !field(rec, cols.prime_volume).is_empty() {
            let r = self.prime_row(rec, t, cols, b"");
            go(self, r);
        }
        let sus = field(rec, cols.suspend);
        if !sus.is_empty() {
            match suspend_kind(sus) {
                Some(k) => self.emit(t, k),
                None => self.reject(line, "Suspend", format!("unknown suspend state {}", text::show(sus))),
            }
        }
        if !field(rec, cols.rewind).is_empty() {
            self.emit(t, RecordKind::Rewind);
        }
        let alarm = field(rec, cols.alarm);
        if !alarm.is_empty() {
            let txt = text::owned(alarm, 200);
            let code = text::alarm_code(&txt);
            let description = strip_code(&txt);
            self.emit(t, RecordKind::Alarm { code, description });
        }
        let total = field(rec, cols.daily_total);
        if !total.is_empty() {
            let r = text::number_in(total, &text::DAILY_TOTAL_U, "U")
                .map(|units| self.emit(t, RecordKind::DailyTotal { date: t.date().to_string(), units }))
                .map_err(|e| ("Daily Insulin Total", e));
            go(self, r);
        }
        let marker = field(rec, cols.event_marker);
        if !marker.is_empty() {
            let r = self.event_marker(t, marker);
            go(self, r);
        }
        let ndt = field(rec, cols.new_device_time);
        if !ndt.is_empty() {
            match text::datetime(ndt, self.order.unwrap_or(DateOrder::Mdy)) {
                Some(to) => self.emit(t, RecordKind::TimeChange { from: DeviceTime(t), to: DeviceTime(to) }),
                None => self.reject(line, "New Device Time", format!("{} is not a date and time", text::show(ndt))),
            }
        }
    }

    /// One fingerstick is often written two or three times with the same second and value
    /// (received from the meter, captured on the pump, used to calibrate), in either order:
    /// readings are held until the row time moves on and merged, the meter link winning over a
    /// manual entry over a calibration.
    fn bg(&mut self, t: NaiveDateTime, mg: u16, source: BgSource) {
        if self.recent_bg.iter().any(|&(bt, bv)| bt == t && bv == mg) {
            return;
        }
        let rank = |s: BgSource| match s {
            BgSource::LinkedMeter => 3,
            BgSource::Meter => 2,
            BgSource::Manual => 1,
            BgSource::Calibration => 0,
        };
        if let Some(p) = self.pending_bg.iter_mut().find(|p| p.0 == t && p.1 == mg) {
            if rank(source) > rank(p.2) {
                p.2 = source;
            }
            return;
        }
        self.pending_bg.push((t, mg, source));
    }

    fn flush_bg(&mut self) {
        for (t, mg, source) in std::mem::take(&mut self.pending_bg) {
            if self.recent_bg.len() == 8 {
                self.recent_bg.pop_front();
            }
            self.recent_bg.push_back((t, mg));
            self.out.push_back(Item::Record(Record::new(DeviceTime(t), RecordKind::Bg { value_mg_dl: mg, source })));
        }
    }

    /// `square`: `Some` when the raw type says which part this is.
    fn bolus_row(
        &mut self,
        rec: &ByteRecord,
        t: NaiveDateTime,
        cols: &Cols,
        square: Option<bool>,
    ) -> Result<(), Reject> {
        let raw = field(rec, cols.raw_values);
        let btype = text::text(field(rec, cols.bolus_type)).to_ascii_lowercase();
        let is_square = match square {
            Some(s) => s,
            None if btype.contains("square") => true,
            None if btype.contains("normal") => false,
            None => {
                return Err(("Bolus Type", format!("unknown bolus type {}", text::show(field(rec, cols.bolus_type)))));
            }
        };
        let dual = match raw_get(raw, b"IS_DUAL_COMPONENT") {
            Some(b"true") => true,
            Some(b"false") => false,
            _ => btype.contains("dual"),
        };
        let amount = |col: Option<usize>, key: &[u8], name: &'static str| -> Result<Option<f64>, Reject> {
            let v = field(rec, col);
            if v.is_empty() {
                match raw_num(raw, key) {
                    Some(a) => text::within(a, &text::INSULIN_U, "U").map(Some).map_err(|e| ("Raw-Values", e)),
                    None => Ok(None),
                }
            } else {
                text::number_in(v, &text::INSULIN_U, "U").map(Some).map_err(|e| (name, e))
            }
        };
        let programmed = amount(cols.bolus_selected, b"PROGRAMMED_AMOUNT", "Bolus Volume Selected")?;
        let delivered = amount(cols.bolus_delivered, b"AMOUNT", "Bolus Volume Delivered")?;
        let (upload, seq) = self.raw_ids(rec, cols);
        let ev = if is_square {
            let d = field(rec, cols.bolus_duration);
            let dur = if d.is_empty() {
                raw_num(raw, b"DURATION").map(|ms| ms / 60_000.0)
            } else {
                Some(text::hms_minutes(d).ok_or(("Bolus Duration", format!("{} is not h:mm:ss", text::show(d))))?)
            };
            if let Some(m) = dur {
                text::within(m, &text::DURATION_MIN, "min").map_err(|e| ("Bolus Duration", e))?;
            }
            Ev::Square { programmed, delivered, duration_min: dur, dual }
        } else {
            Ev::Normal { programmed, delivered, dual }
        };
        self.bolus.push(Pending { time: t, upload, seq, ev, done: false }, &mut self.out);
        Ok(())
    }

    fn raw_ids(&self, rec: &ByteRecord, cols: &Cols) -> (Option<u64>, Option<i64>) {
        let upload = field(rec, cols.raw_upload);
        let upload = if upload.is_empty() {
            None
        } else {
            Some(std::str::from_utf8(upload).ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
                // Not numeric: any stable fingerprint will do.
                upload.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
            }))
        };
        let seq = std::str::from_utf8(field(rec, cols.raw_seq)).ok().and_then(|s| s.parse().ok());
        (upload, seq)
    }

    fn wizard_row(&mut self, rec: &ByteRecord, t: NaiveDateTime, cols: &Cols) -> Result<(), Reject> {
        let raw = field(rec, cols.raw_values);
        let opt = |col: Option<usize>, key: &[u8]| -> Option<Vec<u8>> {
            let v = field(rec, col);
            if v.is_empty() { raw_get(raw, key).map(<[u8]>::to_vec) } else { Some(v.to_vec()) }
        };
        let num_in = |v: Option<Vec<u8>>, range: &std::ops::RangeInclusive<f64>, unit: &str, name: &'static str| {
            v.map(|v| text::number_in(&v, range, unit).map(text::round6)).transpose().map_err(|e| (name, e))
        };
        let gl = |v: Option<Vec<u8>>, mmol: bool, name: &'static str| -> Result<Option<u16>, Reject> {
            match v {
                None => Ok(None),
                Some(v) if text::num(&v) == Some(0.0) => Ok(None),
                Some(v) => text::glucose_in(&v, mmol, &text::BG_MG_DL).map(Some).map_err(|e| (name, e)),
            }
        };
        let isf = opt(cols.bwz_isf, b"INSULIN_SENSITIVITY")
            .map(|v| {
                let n = text::num(&v).ok_or_else(|| format!("{} is not a number", text::show(&v)))?;
                let mg = if cols.bwz_isf_mmol { n * therapy::units::MG_DL_PER_MMOL_L } else { n };
                text::within(text::round6(mg), &text::ISF_MG_DL_U, "mg/dL/U")
            })
            .transpose()
            .map_err(|e| ("BWZ Insulin Sensitivity", e))?;
        let w = BolusWizard {
            carbs_g: num_in(opt(cols.bwz_carb_input, b"CARB_INPUT"), &text::CARBS_G, "g", "BWZ Carb Input")?,
            bg_mg_dl: gl(opt(cols.bwz_bg_input, b"BG_INPUT"), cols.bwz_bg_mmol, "BWZ BG Input")?,
            carb_ratio_g_per_u: match opt(cols.bwz_carb_ratio, b"CARB_RATIO") {
                Some(v) if text::num(&v) == Some(0.0) => None,
                v => num_in(v, &text::CARB_RATIO_G_U, "g/U", "BWZ Carb Ratio")?,
            },
            sensitivity_mg_dl_per_u: isf,
            target_low_mg_dl: gl(
                opt(cols.bwz_target_low, b"BG_TARGET_LOW"),
                cols.bwz_target_mmol,
                "BWZ Target Low BG",
            )?,
            target_high_mg_dl: gl(
                opt(cols.bwz_target_high, b"BG_TARGET_HIGH"),
                cols.bwz_target_mmol,
                "BWZ Target High BG",
            )?,
            food_estimate_u: num_in(opt(cols.bwz_food, b"FOOD_ESTIMATE"), &text::ESTIMATE_U, "U", "BWZ Food Estimate")?,
            correction_estimate_u: num_in(
                opt(cols.bwz_correction, b"CORRECTION_ESTIMATE"),
                &text::ESTIMATE_U,
                "U",
                "BWZ Correction Estimate",
            )?,
            active_insulin_u: num_in(
                opt(cols.bwz_active, b"UNABSORBED_INSULIN_TOTAL"),
                &text::INSULIN_U,
                "U",
                "BWZ Active Insulin",
            )?,
            total_estimate_u: num_in(
                opt(cols.bwz_estimate, b"BOLUS_ESTIMATE"),
                &text::ESTIMATE_U,
                "U",
                "BWZ Estimate",
            )?,
        };
        let (upload, seq) = self.raw_ids(rec, cols);
        self.bolus.push(Pending { time: t, upload, seq, ev: Ev::Wizard(Box::new(w)), done: false }, &mut self.out);
        Ok(())
    }

    fn temp_duration(&self, rec: &ByteRecord, cols: &Cols, raw: &[u8]) -> Result<Option<u32>, Reject> {
        let d = field(rec, cols.temp_duration);
        let m = if d.is_empty() {
            raw_num(raw, b"DURATION").map(|ms| ms / 60_000.0)
        } else {
            Some(text::hms_minutes(d).ok_or(("Temp Basal Duration", format!("{} is not h:mm:ss", text::show(d))))?)
        };
        m.map(|m| text::within(m, &text::DURATION_MIN, "min").map(|m| m.round() as u32))
            .transpose()
            .map_err(|e| ("Temp Basal Duration", e))
    }

    fn temp_basal_row(&mut self, rec: &ByteRecord, t: NaiveDateTime, cols: &Cols, raw: &[u8]) -> Result<(), Reject> {
        let ttype = text::text(field(rec, cols.temp_type)).to_ascii_lowercase();
        let amount = field(rec, cols.temp_amount);
        let percent = ttype.contains("percent") || raw_get(raw, b"PERCENT_OF_RATE").is_some();
        let dur = self.temp_duration(rec, cols, raw)?;
        let value = if amount.is_empty() {
            raw_num(raw, if percent { b"PERCENT_OF_RATE".as_slice() } else { b"RATE".as_slice() })
        } else {
            Some(text::num(amount).ok_or(("Temp Basal Amount", format!("{} is not a number", text::show(amount))))?)
        };
        let kind = if percent {
            let p = value
                .map(|p| text::within(p, &text::PERCENT, "%").map(|p| p.round() as u32))
                .transpose()
                .map_err(|e| ("Temp Basal Amount", e))?;
            RecordKind::TempBasal { rate_u_h: None, percent: p, duration_min: dur }
        } else {
            let r = value
                .map(|r| text::within(r, &text::RATE_U_H, "U/h"))
                .transpose()
                .map_err(|e| ("Temp Basal Amount", e))?;
            RecordKind::TempBasal { rate_u_h: r, percent: None, duration_min: dur }
        };
        if let RecordKind::TempBasal { rate_u_h: None, percent: None, duration_min: None } = kind {
            return Err(("Temp Basal Amount", "no amount and no duration".into()));
        }
        self.emit(t, kind);
        Ok(())
    }

    fn prime_row(&mut self, rec: &ByteRecord, t: NaiveDateTime, cols: &Cols, raw: &[u8]) -> Result<(), Reject> {
        let v = field(rec, cols.prime_volume);
        let units = if v.is_empty() {
            raw_num(raw, b"AMOUNT").ok_or(("Prime Volume Delivered", "no volume".to_string()))?
        } else {
            text::num(v).ok_or(("Prime Volume Delivered", format!("{} is not a number", text::show(v))))?
        };
        let units = text::within(units, &text::INSULIN_U, "U").map_err(|e| ("Prime Volume Delivered", e))?;
        let kt = field(rec, cols.prime_type);
        let kt = if kt.is_empty() { raw_get(raw, b"PRIME_TYPE").unwrap_or(b"") } else { kt };
        let k = text::text(kt).to_ascii_lowercase();
        let kind = if k.contains("manual") || k.contains("tubing") {
            Some(PrimeKind::Manual)
        } else if k.contains("fixed") || k.contains("cannula") {
            Some(PrimeKind::Fixed)
        } else {
            None
        };
        self.emit(t, RecordKind::Prime { units, kind });
        Ok(())
    }

    fn event_marker(&mut self, t: NaiveDateTime, marker: &[u8]) -> Result<(), Reject> {
        let txt = text::owned(marker, 500);
        let lower = txt.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("meal:") {
            let n = rest.trim().trim_end_matches("grams").trim_end_matches('g').trim();
            if let Some(g) = text::num(n.as_bytes()) {
                let grams = text::within(g, &text::CARBS_G, "g").map_err(|e| ("Event Marker", e))?;
                self.emit(t, RecordKind::Carbs { grams });
                return Ok(());
            }
        }
        self.emit(t, RecordKind::Note { text: txt });
        Ok(())
    }
}

fn suspend_kind(v: &[u8]) -> Option<RecordKind> {
    let s = text::text(v).to_ascii_lowercase();
    if s.is_empty() {
        None
    } else if s.contains("resum")
        || s.contains("normal pumping")
        || s.contains("normal_pumping")
        || s.contains("restart")
    {
        Some(RecordKind::Resume)
    } else if s.contains("suspend") {
        Some(RecordKind::Suspend)
    } else {
        None
    }
}

/// `"No Delivery (4)"` → `"No Delivery"`.
fn strip_code(s: &str) -> Option<String> {
    let s = s.trim();
    let d = match s.strip_suffix(')').and_then(|x| x.rsplit_once('(')) {
        Some((d, c)) if c.trim().parse::<u32>().is_ok() => d.trim(),
        _ => s,
    };
    if d.is_empty() { None } else { Some(d.to_string()) }
}

// ---------------------------------------------------------------------------------------------
// Bolus assembly: dual-wave parts and Bolus Wizard estimates, held for a bounded window.

enum Ev {
    Normal { programmed: Option<f64>, delivered: Option<f64>, dual: bool },
    Square { programmed: Option<f64>, delivered: Option<f64>, duration_min: Option<f64>, dual: bool },
    Wizard(Box<BolusWizard>),
}

struct Pending {
    time: NaiveDateTime,
    upload: Option<u64>,
    seq: Option<i64>,
    ev: Ev,
    done: bool,
}

#[derive(Default)]
struct Assembler {
    pending: VecDeque<Pending>,
}

fn secs(a: NaiveDateTime, b: NaiveDateTime) -> i64 {
    (a - b).num_seconds()
}

impl Assembler {
    fn push(&mut self, p: Pending, out: &mut VecDeque<Item>) {
        self.pending.push_back(p);
        while self.pending.len() > MAX_PENDING {
            self.resolve(0, out);
            self.compact();
        }
    }

    fn compact(&mut self) {
        while self.pending.front().is_some_and(|p| p.done) {
            self.pending.pop_front();
        }
    }

    fn advance(&mut self, now: NaiveDateTime, out: &mut VecDeque<Item>) {
        loop {
            self.compact();
            match self.pending.front() {
                Some(p) if secs(now, p.time).abs() > PAIR_WINDOW_S => self.resolve(0, out),
                _ => break,
            }
        }
    }

    fn flush(&mut self, out: &mut VecDeque<Item>) {
        loop {
            self.compact();
            if self.pending.is_empty() {
                break;
            }
            self.resolve(0, out);
        }
    }

    fn resolve(&mut self, i: usize, out: &mut VecDeque<Item>) {
        if self.pending[i].done {
            return;
        }
        match self.pending[i].ev {
            Ev::Wizard(_) => {
                if let Some(b) = self.bolus_claiming(i) {
                    self.resolve(b, out);
                }
                if !self.pending[i].done {
                    // Not followed by a bolus: kept only as a logged meal with nothing to deliver.
                    self.pending[i].done = true;
                    if let Ev::Wizard(w) = &self.pending[i].ev
                        && w.total_estimate_u == Some(0.0)
                        && w.carbs_g.is_some_and(|c| c > 0.0)
                    {
                        emit_wizard(self.pending[i].time, w, out);
                    }
                }
            }
            Ev::Normal { dual: true, .. } => {
                let s = self.partner(i, true);
                self.emit_bolus(Some(i), s, out);
            }
            Ev::Normal { dual: false, .. } => self.emit_bolus(Some(i), None, out),
            Ev::Square { dual: true, .. } => {
                let n = self.partner(i, false);
                self.emit_bolus(n, Some(i), out);
            }
            Ev::Square { dual: false, .. } => self.emit_bolus(None, Some(i), out),
        }
    }

    /// The other part of a dual-wave bolus: a dual square part for a normal part
    /// (`want_square`), or a dual normal part for a square part.
    fn partner(&self, i: usize, want_square: bool) -> Option<usize> {
        let me = &self.pending[i];
        let mut best: Option<(i64, usize)> = None;
        for (j, p) in self.pending.iter().enumerate() {
            if j == i || p.done {
                continue;
            }
            let fits = match p.ev {
                Ev::Square { dual, .. } => want_square && dual,
                Ev::Normal { dual, .. } => !want_square && dual,
                Ev::Wizard(_) => false,
            };
            if !fits {
                continue;
            }
            // Adjacent sequence numbers within one upload pair first (Tidepool's rule); failing
            // that (x22 pumps write other history records between the parts), the nearest in time.
            let dt = secs(me.time, p.time).abs();
            let score = match (me.upload, me.seq, p.upload, p.seq) {
                (Some(u1), Some(s1), Some(u2), Some(s2)) if u1 == u2 && (s1 - s2).abs() <= 3 => (s1 - s2).abs(),
                _ if dt <= PAIR_WINDOW_S => 100 + dt,
                _ => continue,
            };
            if best.is_none_or(|(s, _)| score < s) {
                best = Some((score, j));
            }
        }
        best.map(|(_, j)| j)
    }

    /// The estimate that belongs to a bolus starting at `t`: the latest one at most
    /// [`WIZARD_WINDOW_S`] before it.
    fn best_wizard(&self, t: NaiveDateTime) -> Option<usize> {
        let mut best: Option<(NaiveDateTime, usize)> = None;
        for (j, p) in self.pending.iter().enumerate() {
            if p.done || !matches!(p.ev, Ev::Wizard(_)) {
                continue;
            }
            let ahead = secs(t, p.time);
            if !(-WIZARD_SLACK_S..=WIZARD_WINDOW_S).contains(&ahead) {
                continue;
            }
            if best.is_none_or(|(bt, _)| p.time > bt) {
                best = Some((p.time, j));
            }
        }
        best.map(|(_, j)| j)
    }

    /// A pending bolus part whose estimate would be wizard `w`.
    fn bolus_claiming(&self, w: usize) -> Option<usize> {
        self.pending.iter().enumerate().find_map(|(j, p)| {
            let is_bolus = matches!(p.ev, Ev::Normal { .. } | Ev::Square { .. });
            (is_bolus && !p.done && self.best_wizard(p.time) == Some(w)).then_some(j)
        })
    }

    fn emit_bolus(&mut self, normal: Option<usize>, square: Option<usize>, out: &mut VecDeque<Item>) {
        let times: Vec<NaiveDateTime> = normal.iter().chain(square.iter()).map(|&k| self.pending[k].time).collect();
        let Some(&first) = times.iter().min() else {
            return;
        };
        let time = normal.map_or(first, |n| self.pending[n].time);
        for k in normal.iter().chain(square.iter()) {
            self.pending[*k].done = true;
        }
        if let Some(w) = self.best_wizard(first) {
            self.pending[w].done = true;
            if let Ev::Wizard(wz) = &self.pending[w].ev {
                emit_wizard(self.pending[w].time, wz, out);
            }
        }
        let (mut prog, mut deliv, mut dual_normal) = (None::<f64>, None::<f64>, false);
        let add = |acc: &mut Option<f64>, v: Option<f64>| {
            if let Some(v) = v {
                *acc = Some(acc.unwrap_or(0.0) + v);
            }
        };
        // The parts: (programmed, delivered) now, and extended.
        let mut now_part: Option<(Option<f64>, Option<f64>)> = None;
        let mut extended: Option<(Option<f64>, Option<f64>)> = None;
        if let Some(n) = normal
            && let Ev::Normal { programmed, delivered, dual } = self.pending[n].ev
        {
            add(&mut prog, programmed);
            add(&mut deliv, delivered);
            dual_normal = dual;
            now_part = Some((programmed, delivered));
        }
        let mut duration_min = None;
        if let Some(s) = square
            && let Ev::Square { programmed, delivered, duration_min: d, .. } = self.pending[s].ev
        {
            add(&mut prog, programmed);
            add(&mut deliv, delivered);
            duration_min = d.map(|d| match (programmed, delivered) {
                (Some(p), Some(v)) if p > 0.0 && v < p => d * v / p,
                _ => d,
            });
            extended = Some((programmed, delivered));
        }
        let subtype = match (normal, square) {
            (Some(_), Some(_)) => BolusSubtype::Dual,
            (Some(_), None) if dual_normal => BolusSubtype::Dual,
            (Some(_), None) => BolusSubtype::Normal,
            _ => BolusSubtype::Square,
        };
        let duration_min = duration_min.map(|d| d.round() as u32);
        if subtype == BolusSubtype::Square {
            now_part = Some((Some(0.0), Some(0.0)));
        }
        let kind = if subtype == BolusSubtype::Normal {
            RecordKind::bolus(subtype, prog.map(text::round6), deliv.map(text::round6), duration_min)
        } else {
            RecordKind::Bolus {
                subtype,
                programmed_u: prog.map(text::round6),
                delivered_u: deliv.map(text::round6),
                duration_min,
                normal_programmed_u: now_part.and_then(|p| p.0),
                normal_delivered_u: now_part.and_then(|p| p.1),
                extended_programmed_u: extended.and_then(|p| p.0),
                extended_delivered_u: extended.and_then(|p| p.1),
                extended_duration_min: extended.and(duration_min),
            }
        };
        out.push_back(Item::Record(Record::new(DeviceTime(time), kind)));
    }
}

fn emit_wizard(t: NaiveDateTime, w: &BolusWizard, out: &mut VecDeque<Item>) {
    out.push_back(Item::Record(Record::new(DeviceTime(t), RecordKind::BolusWizard(Box::new(w.clone())))));
    if let Some(g) = w.carbs_g.filter(|&g| g > 0.0) {
        out.push_back(Item::Record(Record::new(DeviceTime(t), RecordKind::Carbs { grams: g })));
    }
}

// ---------------------------------------------------------------------------------------------
// Settings: `Current*` snapshots and `Change*` groups, one record per timestamp.

#[derive(Default)]
struct Settings {
    time: Option<NaiveDateTime>,
    snapshot: bool,
    active: Option<String>,
    /// (raw id, name, pre)
    patterns: Vec<(Vec<u8>, String, bool)>,
    /// (pattern datum, start min, rate, pre)
    profiles: Vec<(Vec<u8>, u32, f64, bool)>,
    carb_ratios: Vec<(Vec<u8>, u32, f64, bool)>,
    isf: Vec<(Vec<u8>, u32, f64)>,
    /// Values in mg/dL (CareLink writes mg/dL even when the pattern's original units were
    /// mmol/L; see Tidepool's `convertBackToMmol` note).
    targets: Vec<(Vec<u8>, u32, f64, f64)>,
    scalars: Map<String, Value>,
    config_id: u64,
}

/// A positive value as a whole number (0 means "not set" in these records).
fn positive_int(v: Option<f64>) -> Option<Value> {
    v.filter(|v| *v > 0.0 && *v < 1e9).map(|v| json!(v.round() as i64))
}

fn datum(raw: &[u8]) -> Vec<u8> {
    raw_get(raw, b"PATTERN_DATUM_ID").or_else(|| raw_get(raw, b"PATTERN_DATUM")).unwrap_or(b"").to_vec()
}

fn start_min(raw: &[u8]) -> Option<u32> {
    raw_num(raw, b"START_TIME").filter(|ms| (0.0..86_400_000.0).contains(ms)).map(|ms| (ms / 60_000.0).round() as u32)
}

fn units_name(v: &[u8]) -> String {
    match v {
        b"mg dl" => "mg/dL".into(),
        b"mmol l" => "mmol/L".into(),
        other => text::owned(other, 20),
    }
}

impl Settings {
    fn advance(&mut self, now: NaiveDateTime, out: &mut VecDeque<Item>) {
        if self.time.is_some_and(|t| t != now) {
            self.flush(out);
        }
    }

    fn add(&mut self, t: NaiveDateTime, ty: &[u8], raw: &[u8], id: &[u8], out: &mut VecDeque<Item>) {
        let snapshot = ty.starts_with(b"Current");
        if self.time.is_some() && (self.time != Some(t) || self.snapshot != snapshot) {
            self.flush(out);
        }
        self.time = Some(t);
        self.snapshot = snapshot;
        let name = if snapshot { &ty[7..] } else { &ty[6..] };
        let (name, pre) = match name.strip_suffix(b"Pre") {
            Some(n) => (n, true),
            None => (name, false),
        };
        let scalar = |s: &mut Self, key: &str, v: Option<Value>| {
            if let Some(v) = v {
                s.scalars.insert(key.to_string(), v);
            }
        };
        match name {
            b"ActiveBasalProfilePattern" if !pre => {
                self.active = raw_get(raw, b"PATTERN_NAME").map(|p| text::owned(p, 80));
            }
            b"BasalProfilePattern" => {
                if let Some(p) = raw_get(raw, b"PATTERN_NAME") {
                    self.patterns.push((id.to_vec(), text::owned(p, 80), pre));
                }
            }
            b"BasalProfile" => {
                if let (Some(s), Some(r)) = (start_min(raw), raw_num(raw, b"RATE"))
                    && text::RATE_U_H.contains(&r)
                {
                    self.profiles.push((datum(raw), s, r, pre));
                }
            }
            b"CarbRatio" => {
                if let (Some(s), Some(a)) = (start_min(raw), raw_num(raw, b"AMOUNT")) {
                    let exchanges = raw_get(raw, b"UNITS").is_some_and(|u| u.starts_with(b"exch"));
                    self.carb_ratios.push((datum(raw), s, a, exchanges));
                }
            }
            b"InsulinSensitivity" => {
                if let (Some(s), Some(a)) = (start_min(raw), raw_num(raw, b"AMOUNT")) {
                    self.isf.push((datum(raw), s, a));
                }
            }
            b"BGTargetRange" => {
                if let (Some(s), Some(lo), Some(hi)) =
                    (start_min(raw), raw_num(raw, b"AMOUNT_LOW"), raw_num(raw, b"AMOUNT_HIGH"))
                {
                    self.targets.push((datum(raw), s, lo, hi));
                }
            }
            b"BolusWizardBGUnits" => scalar(self, "bg_units", raw_get(raw, b"UNITS").map(|u| json!(units_name(u)))),
            b"BolusWizardCarbUnits" => scalar(self, "carb_units", raw_get(raw, b"UNITS").map(|u| json!(units_name(u)))),
            b"BolusWizardSetupConfig" => {
                // Old and new configurations come together: the newest (highest Raw-ID) wins.
                let rid = std::str::from_utf8(id).ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
                if rid >= self.config_id {
                    self.config_id = rid;
                    scalar(self, "bg_units", raw_get(raw, b"BG_UNITS").map(|u| json!(units_name(u))));
                    scalar(self, "carb_units", raw_get(raw, b"CARB_UNITS").map(|u| json!(units_name(u))));
                    scalar(self, "insulin_action_min", positive_int(raw_num(raw, b"INSULIN_ACTION_CURVE")));
                }
            }
            b"MaxBasal" => scalar(
                self,
                "max_basal_u_h",
                raw_num(raw, b"RATE").or_else(|| raw_num(raw, b"AMOUNT")).map(|v| json!(v)),
            ),
            b"MaxBolus" => scalar(self, "max_bolus_u", raw_num(raw, b"AMOUNT").map(|v| json!(v))),
            b"InsulinActionCurve" => scalar(self, "insulin_action_min", positive_int(raw_num(raw, b"AMOUNT"))),
            b"BolusWizardEnable" => {
                scalar(self, "bolus_wizard_enabled", raw_get(raw, b"ENABLE").map(|v| json!(v == b"true")))
            }
            b"SensorHighGlucoseLimit" => scalar(self, "sensor_high_limit_mg_dl", positive_int(raw_num(raw, b"AMOUNT"))),
            b"SensorLowGlucoseLimit" => scalar(self, "sensor_low_limit_mg_dl", positive_int(raw_num(raw, b"AMOUNT"))),
            b"PumpModelNumber" => {
                scalar(self, "pump_model", raw_get(raw, b"MODEL_NUMBER").map(|v| json!(text::owned(v, 40))))
            }
            b"TempBasalType" => {
                scalar(self, "temp_basal_type", raw_get(raw, b"TEMP_BASAL_TYPE").map(|v| json!(text::owned(v, 40))))
            }
            _ => {}
        }
    }

    fn flush(&mut self, out: &mut VecDeque<Item>) {
        let Some(t) = self.time.take() else { return };
        let s = std::mem::take(self);
        let mut m = Map::new();
        m.insert("kind".into(), json!(if s.snapshot { "snapshot" } else { "change" }));
        if let Some(a) = &s.active {
            m.insert("active_schedule".into(), json!(a));
        }
        // Basal patterns: profiles belong to the pattern whose Raw-ID they name.
        let mut schedules = Map::new();
        for (id, name, pre) in &s.patterns {
            if *pre {
                continue;
            }
            let mut entries: Vec<(u32, f64)> =
                s.profiles.iter().filter(|p| !p.3 && &p.0 == id).map(|p| (p.1, p.2)).collect();
            entries.sort_by_key(|e| e.0);
            entries.dedup_by_key(|e| e.0);
            schedules.insert(
                name.clone(),
                Value::Array(entries.iter().map(|(s, r)| json!({"start_min": s, "rate_u_h": r})).collect()),
            );
        }
        if !schedules.is_empty() {
            m.insert("basal_schedules".into(), Value::Object(schedules));
        }
        // For ratios, sensitivities and targets the newest pattern datum (highest id) wins.
        fn newest<T>(v: &[T], key: impl Fn(&T) -> &[u8]) -> Vec<&T> {
            let id = |t: &T| std::str::from_utf8(key(t)).ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            let Some(max) = v.iter().map(&id).max() else {
                return Vec::new();
            };
            v.iter().filter(|t| id(t) == max).collect()
        }
        let mut cr = newest(&s.carb_ratios, |c| &c.0);
        cr.sort_by_key(|c| c.1);
        if !cr.is_empty() {
            let a: Vec<Value> = cr
                .iter()
                .map(|c| {
                    if c.3 {
                        json!({"start_min": c.1, "u_per_exchange": c.2})
                    } else {
                        json!({"start_min": c.1, "g_per_u": c.2})
                    }
                })
                .collect();
            m.insert("carb_ratios".into(), Value::Array(a));
        }
        let mut isf = newest(&s.isf, |c| &c.0);
        isf.sort_by_key(|c| c.1);
        if !isf.is_empty() {
            let a: Vec<Value> = isf.iter().map(|c| json!({"start_min": c.1, "mg_dl_per_u": c.2})).collect();
            m.insert("sensitivities".into(), Value::Array(a));
        }
        let mut tg = newest(&s.targets, |c| &c.0);
        tg.sort_by_key(|c| c.1);
        if !tg.is_empty() {
            let a: Vec<Value> = tg
                .iter()
                .map(|c| json!({"start_min": c.1, "low_mg_dl": c.2.round() as i64, "high_mg_dl": c.3.round() as i64}))
                .collect();
            m.insert("bg_targets".into(), Value::Array(a));
        }
        let mut sc = s.scalars;
        let bg_units = sc.remove("bg_units");
        let carb_units = sc.remove("carb_units");
        if bg_units.is_some() || carb_units.is_some() {
            let mut u = Map::new();
            if let Some(b) = bg_units {
                u.insert("bg".into(), b);
            }
            if let Some(c) = carb_units {
                u.insert("carb".into(), c);
            }
            m.insert("units".into(), Value::Object(u));
        }
        m.extend(sc);
        if m.len() > 1 {
            out.push_back(Item::Record(Record::new(DeviceTime(t), RecordKind::Settings { values: m })));
        }
    }
}
