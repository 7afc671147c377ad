//! The inverse of [`super::history`] and [`super::glucose`]: typed events → record bytes →
//! 1024-byte pages with a valid CRC16, as a pump writes them. The simulator builds its pages
//! with these; the property tests hold that decoding what was encoded gives back exactly the
//! same events.
//!
//! Field layouts are the decoders' (which cite decocare, MinimedKit and Tidepool); each encoder
//! below writes the bits its decoder reads and zeros elsewhere. An event whose values the
//! record cannot carry (a bolus over 25.5 U on a 522, a BG over 1023, a date before 2000) is
//! an [`EncodeError`], never silently clipped.
//!
//! History pages: records from byte 0 in the order they happened, zeros after the last, the
//! CRC16 of the 1022 data bytes in the last two (big-endian).
//!
//! CGM pages: the pump writes a record with its opcode last, so the decoder reads the page
//! backward; in reading order the zero padding after the newest record comes first. Readings
//! carry no time: [`encode_glucose`] wraps each run of readings 5 minutes apart in sensor
//! timestamps (one 5 minutes before the first reading, one at the last) so that the decoder
//! places every reading at its minute, and starts each page with its own anchors (each page
//! is decoded alone).

use super::PumpModel;
use super::crc::{PAGE_DATA_LEN, PAGE_LEN, crc16_ccitt};
use super::glucose::{GlucoseData, SensorStatusKind, SensorSyncKind, SensorTimestampKind};
use super::history::{BgUnits, Bolus, BolusType, EventData, TempBasalRate, WizardEstimate};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};

/// Why an event cannot be written as a record.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EncodeError {
    #[error("{0} records are not written by this encoder")]
    Unsupported(&'static str),
    #[error("{field} = {value} does not fit the record (allowed: {allowed})")]
    OutOfRange { field: &'static str, value: f64, allowed: &'static str },
    #[error("{0} cannot be written: pump dates run from 2000 to 2127")]
    Date(NaiveDateTime),
    #[error("{0}: CGM records have minute resolution; the seconds must be 0")]
    Seconds(NaiveDateTime),
    #[error("{what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    #[error("a record of {0} bytes does not fit in a page")]
    TooLong(usize),
}

fn range(field: &'static str, value: f64, allowed: &'static str) -> EncodeError {
    EncodeError::OutOfRange { field, value, allowed }
}

/// `units × per_unit` as a whole number of strokes no larger than `max`.
fn strokes(
    field: &'static str,
    units: f64,
    per_unit: f64,
    max: u32,
    allowed: &'static str,
) -> Result<u32, EncodeError> {
    let s = (units * per_unit).round();
    if !units.is_finite() || s < 0.0 || s > f64::from(max) || ((s / per_unit) - units).abs() > 1e-6 {
        return Err(range(field, units, allowed));
    }
    Ok(s as u32)
}

fn byte(field: &'static str, v: u32, allowed: &'static str) -> Result<u8, EncodeError> {
    u8::try_from(v).map_err(|_| range(field, f64::from(v), allowed))
}

/// The 5-byte pump timestamp (inverse of [`super::timestamp::pump_datetime`]); the record's
/// own bits in the top of bytes 2–4 are left 0 for the caller to set.
pub fn pump_timestamp(t: NaiveDateTime) -> Result<[u8; 5], EncodeError> {
    let year = t.year() - 2000;
    if !(0..=127).contains(&year) {
        return Err(EncodeError::Date(t));
    }
    let month = t.month() as u8;
    Ok([
        ((month >> 2) << 6) | t.second().min(59) as u8,
        ((month & 3) << 6) | t.minute() as u8,
        t.hour() as u8,
        t.day() as u8,
        year as u8,
    ])
}

/// The 2-byte daily-total date (inverse of [`super::timestamp::pump_date`]).
pub fn pump_date(d: NaiveDate) -> Result<[u8; 2], EncodeError> {
    let year = d.year() - 2000;
    if !(0..=127).contains(&year) {
        return Err(EncodeError::Date(d.and_time(chrono::NaiveTime::MIN)));
    }
    let month = d.month() as u8;
    Ok([((month >> 1) << 5) | d.day() as u8, ((month & 1) << 7) | year as u8])
}

/// The 4-byte CGM timestamp in reading order (inverse of
/// [`super::timestamp::glucose_datetime`]); `subtype` goes in bits 5–6 of the day byte.
pub fn glucose_timestamp(t: NaiveDateTime, subtype: u8) -> Result<[u8; 4], EncodeError> {
    let year = t.year() - 2000;
    if !(0..=127).contains(&year) {
        return Err(EncodeError::Date(t));
    }
    if t.second() != 0 {
        return Err(EncodeError::Seconds(t));
    }
    let month = t.month() as u8;
    Ok([
        ((month >> 2) << 6) | t.hour() as u8,
        ((month & 3) << 6) | t.minute() as u8,
        ((subtype & 0x03) << 5) | t.day() as u8,
        year as u8,
    ])
}

/// One pump-history event to write: its time and what the decoder should give back.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEvent {
    /// When it happened. For [`EventData::ResultDailyTotal`] the record holds only its day;
    /// the decoder stamps it at the midnight that ends the day ([`Self::decoded_timestamp`]).
    pub timestamp: NaiveDateTime,
    pub data: EventData,
}

impl HistoryEvent {
    pub fn new(timestamp: NaiveDateTime, data: EventData) -> Self {
        HistoryEvent { timestamp, data }
    }

    /// The timestamp [`super::history::decode_history`] gives the encoded record.
    pub fn decoded_timestamp(&self) -> Option<NaiveDateTime> {
        match &self.data {
            EventData::ResultDailyTotal { date, .. } => {
                date.and_then(|d| d.succ_opt()).and_then(|d| d.and_hms_opt(0, 0, 0))
            }
            _ => Some(self.timestamp),
        }
    }
}

/// A record with `op`, one head byte and the timestamp at byte 2 (the common 7-byte shape).
fn simple(op: u8, head: u8, ts: [u8; 5]) -> Vec<u8> {
    let mut v = vec![op, head];
    v.extend_from_slice(&ts);
    v
}

fn bolus_bits(t: BolusType) -> u8 {
    // Top three bits of the hour byte (history.rs: 1|2 normal, 3 square, 4 dual normal,
    // 5 dual square). 2 is what the MinimedKit 523 sample carries for a normal bolus.
    match t {
        BolusType::Normal => 2,
        BolusType::Square => 3,
        BolusType::DualNormal => 4,
        BolusType::DualSquare => 5,
    }
}

fn encode_bolus(ts: [u8; 5], b: &Bolus, model: PumpModel) -> Result<Vec<u8>, EncodeError> {
    if b.unabsorbed.is_some() {
        return Err(EncodeError::Invalid {
            what: "bolus",
            detail: "the unabsorbed-insulin (0x5c) record is written as its own event".into(),
        });
    }
    if !b.duration_min.is_multiple_of(30) || b.duration_min > 255 * 30 {
        return Err(range("duration_min", f64::from(b.duration_min), "multiples of 30 up to 7650"));
    }
    let dur = (b.duration_min / 30) as u8;
    let mut ts = ts;
    ts[2] |= bolus_bits(b.bolus_type) << 5;
    if model.larger() {
        let p = strokes("programmed_u", b.programmed_u, 40.0, 0xFFFF, "0-1638.375 U in 0.025 U")?;
        let d = strokes("delivered_u", b.delivered_u, 40.0, 0xFFFF, "0-1638.375 U in 0.025 U")?;
        let iob = b.unabsorbed_total_u.ok_or(EncodeError::Invalid {
            what: "bolus",
            detail: "x23 and later boluses carry the insulin on board".into(),
        })?;
        let i = strokes("unabsorbed_total_u", iob, 40.0, 0xFFFF, "0-1638.375 U in 0.025 U")?;
        if b.remote.unwrap_or(false) {
            ts[3] |= 0x40;
        }
        let mut v = vec![0x01];
        for x in [p, d, i] {
            v.extend_from_slice(&(x as u16).to_be_bytes());
        }
        v.push(dur);
        v.extend_from_slice(&ts);
        Ok(v)
    } else {
        if b.unabsorbed_total_u.is_some() || b.remote.is_some() {
            return Err(EncodeError::Invalid {
                what: "bolus",
                detail: "before x23 a bolus record has no insulin-on-board or remote field".into(),
            });
        }
        let p = strokes("programmed_u", b.programmed_u, 10.0, 255, "0-25.5 U in 0.1 U")?;
        let d = strokes("delivered_u", b.delivered_u, 10.0, 255, "0-25.5 U in 0.1 U")?;
        let mut v = vec![0x01, p as u8, d as u8, dur];
        v.extend_from_slice(&ts);
        Ok(v)
    }
}

fn units_bits(u: BgUnits) -> u8 {
    match u {
        BgUnits::MgDl => 0x40,
        BgUnits::MmolL => 0x80,
        BgUnits::Unknown(b) => b & 0xC0,
    }
}

fn encode_wizard(ts: [u8; 5], w: &WizardEstimate, model: PumpModel) -> Result<Vec<u8>, EncodeError> {
    if w.bg > 0x3FF {
        return Err(range("bg", f64::from(w.bg), "0-1023"));
    }
    let sens = byte("sensitivity", u32::from(w.sensitivity), "0-255")?;
    let tlo = byte("target_low", u32::from(w.target_low), "0-255")?;
    let thi = byte("target_high", u32::from(w.target_high), "0-255")?;
    let mut v = vec![0u8; if model.larger() { 22 } else { 20 }];
    v[0] = 0x5b;
    v[1] = (w.bg & 0xFF) as u8;
    v[2..7].copy_from_slice(&ts);
    v[8] = units_bits(w.units) | ((w.bg >> 8) as u8 & 0x03);
    v[10] = sens;
    if model.larger() {
        if w.carbs_g > 0x3FF {
            return Err(range("carbs_g", f64::from(w.carbs_g), "0-1023"));
        }
        v[7] = (w.carbs_g & 0xFF) as u8;
        v[8] |= ((w.carbs_g >> 8) as u8 & 0x03) << 2;
        let cr = strokes("carb_ratio_g_per_u", w.carb_ratio_g_per_u, 10.0, 0x7FF, "0-204.7 in 0.1")?;
        v[9] = (cr >> 8) as u8 & 0x07;
        v[10] = (cr & 0xFF) as u8;
        v[11] = sens;
        v[12] = tlo;
        let food = strokes("food_estimate_u", w.food_estimate_u, 40.0, 0xFFFF, "0.025 U steps")?;
        v[14..16].copy_from_slice(&(food as u16).to_be_bytes());
        let c = (w.correction_estimate_u * 40.0).round();
        if !(-1024.0..=1023.0).contains(&c) || (c / 40.0 - w.correction_estimate_u).abs() > 1e-6 {
            return Err(range("correction_estimate_u", w.correction_estimate_u, "-25.6 to 25.575 U in 0.025 U"));
        }
        let c = (c as i32 as u16) & 0x7FF;
        v[13] = (c & 0xFF) as u8;
        v[16] = ((c >> 8) as u8 & 0x07) << 3;
        let iob = strokes("unabsorbed_insulin_u", w.unabsorbed_insulin_u, 40.0, 0xFFFF, "0.025 U steps")?;
        v[17..19].copy_from_slice(&(iob as u16).to_be_bytes());
        let est = strokes("bolus_estimate_u", w.bolus_estimate_u, 40.0, 0xFFFF, "0.025 U steps")?;
        v[19..21].copy_from_slice(&(est as u16).to_be_bytes());
        v[21] = thi;
    } else {
        v[7] = byte("carbs_g", u32::from(w.carbs_g), "0-255")?;
        let cr = strokes("carb_ratio_g_per_u", w.carb_ratio_g_per_u, 1.0, 255, "0-255 g/U, whole")?;
        v[9] = cr as u8;
        v[11] = tlo;
        v[13] = strokes("food_estimate_u", w.food_estimate_u, 10.0, 255, "0-25.5 U in 0.1 U")? as u8;
        let c = (w.correction_estimate_u * 10.0).round();
        if !(-32768.0..=32767.0).contains(&c) || (c / 10.0 - w.correction_estimate_u).abs() > 1e-6 {
            return Err(range("correction_estimate_u", w.correction_estimate_u, "0.1 U steps"));
        }
        let [hi, lo] = (c as i16).to_be_bytes();
        v[14] = hi;
        v[12] = lo;
        v[16] = strokes("unabsorbed_insulin_u", w.unabsorbed_insulin_u, 10.0, 255, "0-25.5 U in 0.1 U")? as u8;
        v[18] = strokes("bolus_estimate_u", w.bolus_estimate_u, 10.0, 255, "0-25.5 U in 0.1 U")? as u8;
        v[19] = thi;
    }
    Ok(v)
}

/// Encodes one history event as the record `model` writes (its opcode first).
///
/// Written: boluses (normal, square, dual parts; 9 bytes before x23, 13 after), Bolus Wizard
/// estimates (20 / 22 bytes), prime, pump alarm, clear alarm, daily total (0x07), CalBGForPH,
/// BG received (0x3f), temp basal and its duration, basal profile start, suspend, resume,
/// rewind, low reservoir, low battery, meal marker. Anything else is [`EncodeError::Unsupported`].
pub fn encode_history_event(ev: &HistoryEvent, model: PumpModel) -> Result<Vec<u8>, EncodeError> {
    let mut ts = pump_timestamp(ev.timestamp)?;
    let v = match &ev.data {
        EventData::Bolus(b) => encode_bolus(ts, b, model)?,
        EventData::BolusWizard(w) => encode_wizard(ts, w, model)?,
        EventData::Prime { amount_u, programmed_u } => {
            let a = strokes("amount_u", *amount_u, 10.0, 255, "0-25.5 U in 0.1 U")?;
            let p = strokes("programmed_u", *programmed_u, 10.0, 255, "0-25.5 U in 0.1 U")?;
            let mut v = vec![0x03, 0, p as u8, 0, a as u8];
            v.extend_from_slice(&ts);
            v
        }
        EventData::PumpAlarm { code } => {
            let mut v = vec![0x06, *code, 0, 0];
            v.extend_from_slice(&ts);
            v
        }
        EventData::ClearAlarm { code } => simple(0x0c, *code, ts),
        EventData::ResultDailyTotal { date, total_u } => {
            let d =
                date.ok_or(EncodeError::Invalid { what: "daily total", detail: "the record needs its date".into() })?;
            let t = strokes("total_u", *total_u, 40.0, 0xFFFF, "0-1638.375 U in 0.025 U")?;
            let mut v = vec![0x07, 0, 0];
            v.extend_from_slice(&(t as u16).to_be_bytes());
            v.extend_from_slice(&pump_date(d)?);
            if model.larger() {
                v.extend_from_slice(&[0, 0, 0]);
            }
            v
        }
        EventData::CalBgForPh { bg_mg_dl } => {
            if *bg_mg_dl > 0x3FF {
                return Err(range("bg_mg_dl", f64::from(*bg_mg_dl), "0-1023"));
            }
            ts[2] |= ((bg_mg_dl >> 9) as u8 & 1) << 7;
            ts[4] |= ((bg_mg_dl >> 8) as u8 & 1) << 7;
            simple(0x0a, (bg_mg_dl & 0xFF) as u8, ts)
        }
        EventData::BgReceived { bg_mg_dl, meter } => {
            if *bg_mg_dl > 0x7FF {
                return Err(range("bg_mg_dl", f64::from(*bg_mg_dl), "0-2047"));
            }
            let m =
                super::dump::parse_hex(meter).ok().filter(|m| m.len() == 3).ok_or_else(|| EncodeError::Invalid {
                    what: "BG received",
                    detail: format!("the meter id is 6 hex digits, not {meter:?}"),
                })?;
            ts[2] |= ((bg_mg_dl & 0x07) as u8) << 5;
            let mut v = simple(0x3f, (bg_mg_dl >> 3) as u8, ts);
            v.extend_from_slice(&m);
            v
        }
        EventData::TempBasal { rate, remote } => {
            if *remote {
                ts[3] |= 0x40;
            }
            let (b1, t) = match *rate {
                TempBasalRate::Absolute(r) => {
                    let s = strokes("rate", r, 40.0, 0x7FF, "0-51.175 U/h in 0.025 U/h")?;
                    ((s & 0xFF) as u8, (s >> 8) as u8)
                }
                TempBasalRate::Percent(p) => (p, 0x08),
                TempBasalRate::Unknown(t) if t >> 3 >= 2 => (0, t),
                TempBasalRate::Unknown(t) => {
                    return Err(range("rate type", f64::from(t), "bits 3-7 at least 2"));
                }
            };
            let mut v = simple(0x33, b1, ts);
            v.push(t);
            v
        }
        EventData::TempBasalDuration { duration_min } => {
            if !duration_min.is_multiple_of(30) || *duration_min > 255 * 30 {
                return Err(range("duration_min", f64::from(*duration_min), "multiples of 30 up to 7650"));
            }
            simple(0x16, (duration_min / 30) as u8, ts)
        }
        EventData::BasalProfileStart { rate_u_h, offset_min, index, pattern } => {
            if !offset_min.is_multiple_of(30) || *offset_min >= 1440 {
                return Err(range("offset_min", f64::from(*offset_min), "multiples of 30 below 1440"));
            }
            if *pattern > 7 {
                return Err(range("pattern", f64::from(*pattern), "0-7"));
            }
            let r = strokes("rate_u_h", *rate_u_h, 40.0, 255, "0-6.375 U/h in 0.025 U/h")?;
            ts[2] |= pattern << 5;
            let mut v = simple(0x7b, *index, ts);
            v.extend_from_slice(&[(offset_min / 30) as u8, r as u8, 0]);
            v
        }
        EventData::Suspend => simple(0x1e, 0, ts),
        EventData::Resume { remote } => {
            if *remote {
                ts[3] |= 0x40;
            }
            simple(0x1f, 0, ts)
        }
        EventData::Rewind => simple(0x21, 0, ts),
        EventData::LowReservoir { amount_u } => {
            let a = strokes("amount_u", *amount_u, 10.0, 255, "0-25.5 U in 0.1 U")?;
            simple(0x34, a as u8, ts)
        }
        EventData::LowBattery => simple(0x19, 0, ts),
        EventData::DailyTotalDetail { .. } => {
            return Err(EncodeError::Unsupported("daily total detail"));
        }
        EventData::SensorAlarm { .. } => return Err(EncodeError::Unsupported("sensor alarm")),
        EventData::ChangeTime | EventData::NewTime => {
            return Err(EncodeError::Unsupported("time change"));
        }
        EventData::UnabsorbedInsulin(_) => {
            return Err(EncodeError::Unsupported("unabsorbed insulin"));
        }
        // JournalEntryMealMarker: carbs in grams (9 bits: byte 7, bit 0 of byte 1) or
        // exchanges in tenths (byte 7), bit 1 of byte 8 telling which.
        EventData::MealMarker { carbs, exchanges } => {
            let v = if *exchanges {
                strokes("carbs", *carbs, 10.0, 0xFF, "0-25.5 exchanges in 0.1")?
            } else {
                strokes("carbs", *carbs, 1.0, 0x1FF, "0-511 g in whole grams")?
            };
            let mut r = simple(0x40, ((v >> 8) & 1) as u8, ts);
            r.extend_from_slice(&[(v & 0xFF) as u8, if *exchanges { 0x02 } else { 0 }]);
            r
        }
        EventData::ExerciseMarker | EventData::InsulinMarker { .. } | EventData::OtherMarker => {
            return Err(EncodeError::Unsupported("journal marker"));
        }
        EventData::Settings | EventData::Other => {
            return Err(EncodeError::Unsupported("settings and other"));
        }
    };
    Ok(v)
}

/// A page from its data bytes: zeros to 1022, then the CRC16 big-endian.
pub fn finish_page(data: &[u8]) -> Result<Vec<u8>, EncodeError> {
    if data.len() > PAGE_DATA_LEN {
        return Err(EncodeError::TooLong(data.len()));
    }
    let mut p = Vec::with_capacity(PAGE_LEN);
    p.extend_from_slice(data);
    p.resize(PAGE_DATA_LEN, 0);
    let c = crc16_ccitt(&p);
    p.extend_from_slice(&c.to_be_bytes());
    Ok(p)
}

/// History pages being filled, oldest first: records go on the last page until one does not
/// fit, then a new page starts (a record never straddles two pages).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistoryPages {
    /// Each page's data bytes (records only, no padding), oldest page first.
    pub data: Vec<Vec<u8>>,
    /// The events on each page, in page order.
    pub events: Vec<Vec<HistoryEvent>>,
}

impl HistoryPages {
    /// Encodes and appends one event.
    pub fn push(&mut self, ev: HistoryEvent, model: PumpModel) -> Result<(), EncodeError> {
        let rec = encode_history_event(&ev, model)?;
        if rec.len() > PAGE_DATA_LEN {
            return Err(EncodeError::TooLong(rec.len()));
        }
        let fits = self.data.last().is_some_and(|d| d.len() + rec.len() <= PAGE_DATA_LEN);
        if !fits {
            self.data.push(Vec::new());
            self.events.push(Vec::new());
        }
        if let (Some(d), Some(e)) = (self.data.last_mut(), self.events.last_mut()) {
            d.extend_from_slice(&rec);
            e.push(ev);
        }
        Ok(())
    }

    /// The finished 1024-byte pages, oldest first.
    pub fn pages(&self) -> Vec<Vec<u8>> {
        self.data.iter().filter_map(|d| finish_page(d).ok()).collect()
    }

    /// Keeps only the newest `n` pages (a pump holds 36).
    pub fn keep_newest(&mut self, n: usize) {
        let drop = self.data.len().saturating_sub(n);
        self.data.drain(..drop);
        self.events.drain(..drop);
    }
}

/// One CGM record in reading order (opcode first; the page holds it reversed). Readings,
/// sensor timestamps, sensor status, calibration factors, CalBGForGH and battery changes are
/// written; anything else is [`EncodeError::Unsupported`].
pub fn encode_glucose_record(t: NaiveDateTime, data: &GlucoseData) -> Result<Vec<u8>, EncodeError> {
    let with_ts = |op: u8, sub: u8| -> Result<Vec<u8>, EncodeError> {
        let mut v = vec![op];
        v.extend_from_slice(&glucose_timestamp(t, sub)?);
        Ok(v)
    };
    match data {
        GlucoseData::SensorGlucose { mg_dl } => {
            if !mg_dl.is_multiple_of(2) || !(40..=510).contains(mg_dl) {
                return Err(range("mg_dl", f64::from(*mg_dl), "even values 40-510"));
            }
            Ok(vec![(mg_dl / 2) as u8])
        }
        GlucoseData::SensorTimestamp(k) => with_ts(
            0x08,
            match k {
                SensorTimestampKind::LastRf => 0,
                SensorTimestampKind::PageEnd => 1,
                SensorTimestampKind::Gap => 2,
                SensorTimestampKind::Unknown => 3,
            },
        ),
        GlucoseData::SensorStatus(k) => with_ts(
            0x0b,
            match k {
                SensorStatusKind::Off => 0,
                SensorStatusKind::On => 1,
                SensorStatusKind::Lost => 2,
                SensorStatusKind::Unknown => 3,
            },
        ),
        // Below 40 / above 400 mg/dL: relative records in a run, like a reading.
        GlucoseData::SensorDataLow => Ok(vec![0x06]),
        GlucoseData::SensorDataHigh => Ok(vec![0x07, 0]),
        GlucoseData::SensorSync(k) => with_ts(
            0x0d,
            match k {
                SensorSyncKind::New => 1,
                SensorSyncKind::Old => 2,
                SensorSyncKind::Find => 3,
                SensorSyncKind::Unknown => 0,
            },
        ),
        GlucoseData::BatteryChange => with_ts(0x0a, 0),
        GlucoseData::SensorCalFactor { factor } => {
            let f = strokes("factor", *factor, 1000.0, 0xFFFF, "0-65.535 in 0.001")?;
            let mut v = with_ts(0x0f, 0)?;
            v.extend_from_slice(&(f as u16).to_be_bytes());
            Ok(v)
        }
        GlucoseData::CalBgForGh { bg_mg_dl } => {
            if *bg_mg_dl > 0x1FF {
                return Err(range("bg_mg_dl", f64::from(*bg_mg_dl), "0-511"));
            }
            let mut v = with_ts(0x0e, 0)?;
            // Bit 8 of the BG is bit 5 of the day byte (glucose.rs).
            v[3] |= ((bg_mg_dl >> 8) as u8 & 1) << 5;
            v.push((bg_mg_dl & 0xFF) as u8);
            Ok(v)
        }
        _ => Err(EncodeError::Unsupported("this CGM")),
    }
}

/// CGM pages and the events the decoder will read from each.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GlucosePages {
    /// Finished 1024-byte pages, oldest first.
    pub pages: Vec<Vec<u8>>,
    /// Each page's events in page order (oldest first), anchors included: what
    /// [`super::glucose::decode_glucose_page`] returns as `(timestamp, data)`.
    pub events: Vec<Vec<(NaiveDateTime, GlucoseData)>>,
}

impl GlucosePages {
    /// Keeps only the newest `n` pages.
    pub fn keep_newest(&mut self, n: usize) {
        let drop = self.pages.len().saturating_sub(n);
        self.pages.drain(..drop);
        self.events.drain(..drop);
    }
}

struct CgmWriter {
    out: GlucosePages,
    /// Current page's bytes in page order.
    page: Vec<u8>,
    events: Vec<(NaiveDateTime, GlucoseData)>,
    /// Time of the last reading of the open run.
    run: Option<NaiveDateTime>,
}

const TS_LEN: usize = 5;

impl CgmWriter {
    fn put(&mut self, t: NaiveDateTime, data: GlucoseData) -> Result<(), EncodeError> {
        let mut rec = encode_glucose_record(t, &data)?;
        rec.reverse();
        self.page.extend_from_slice(&rec);
        self.events.push((t, data));
        Ok(())
    }

    fn close_run(&mut self) -> Result<(), EncodeError> {
        if let Some(last) = self.run.take() {
            self.put(last, GlucoseData::SensorTimestamp(SensorTimestampKind::PageEnd))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), EncodeError> {
        self.close_run()?;
        if !self.page.is_empty() {
            self.out.pages.push(finish_page(&self.page)?);
            self.out.events.push(std::mem::take(&mut self.events));
            self.page.clear();
        }
        Ok(())
    }

    fn reading(&mut self, t: NaiveDateTime, data: GlucoseData) -> Result<(), EncodeError> {
        let continues = self.run.is_some_and(|l| t - l == Duration::minutes(5));
        let len = encode_glucose_record(t, &data)?.len();
        // Room for the reading and the closing anchor.
        if continues && self.page.len() + len + TS_LEN <= PAGE_DATA_LEN {
            self.put(t, data)?;
            self.run = Some(t);
            return Ok(());
        }
        self.close_run()?;
        if self.page.len() + TS_LEN + len + TS_LEN > PAGE_DATA_LEN {
            self.flush()?;
        }
        let anchor = t.checked_sub_signed(Duration::minutes(5)).ok_or(EncodeError::Date(t))?;
        self.put(anchor, GlucoseData::SensorTimestamp(SensorTimestampKind::LastRf))?;
        self.put(t, data)?;
        self.run = Some(t);
        Ok(())
    }

    fn own_time(&mut self, t: NaiveDateTime, data: GlucoseData, len: usize) -> Result<(), EncodeError> {
        self.close_run()?;
        if self.page.len() + len > PAGE_DATA_LEN {
            self.flush()?;
        }
        self.put(t, data)
    }
}

/// Writes CGM events (oldest first, minute resolution) into pages. Readings 5 minutes apart
/// form a run; every run gets a sensor timestamp 5 minutes before its first reading and one
/// at its last, and a run that crosses a page boundary is closed and reopened, so that each
/// page decodes alone to exactly `events` (see [`GlucosePages::events`]). Sensor timestamps in
/// the input are refused (the encoder places its own).
pub fn encode_glucose(items: &[(NaiveDateTime, GlucoseData)]) -> Result<GlucosePages, EncodeError> {
    let mut w = CgmWriter { out: GlucosePages::default(), page: Vec::new(), events: Vec::new(), run: None };
    let mut last: Option<NaiveDateTime> = None;
    for (t, data) in items {
        if last.is_some_and(|l| *t < l) {
            return Err(EncodeError::Invalid {
                what: "CGM events",
                detail: format!("{t} comes before the event before it"),
            });
        }
        last = Some(*t);
        match data {
            GlucoseData::SensorGlucose { .. } | GlucoseData::SensorDataLow | GlucoseData::SensorDataHigh => {
                w.reading(*t, data.clone())?
            }
            GlucoseData::SensorTimestamp(_) => {
                return Err(EncodeError::Invalid {
                    what: "CGM events",
                    detail: "sensor timestamps are placed by the encoder".into(),
                });
            }
            _ => {
                let len = encode_glucose_record(*t, data)?.len();
                w.own_time(*t, data.clone(), len)?;
            }
        }
    }
    w.flush()?;
    Ok(w.out)
}

#[cfg(test)]
mod tests {
    use super::super::glucose::decode_glucose_page;
    use super::super::history::{decode_history, decode_history_page};
    use super::*;
    use proptest::prelude::*;

    fn model(n: u16) -> PumpModel {
        PumpModel::new(n).unwrap_or_else(|e| panic!("{e}"))
    }

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap_or_default()
    }

    /// MinimedKit BolusNormalPumpEventTests' 523 record re-encoded byte for byte.
    #[test]
    fn bolus_523_matches_minimedkit_bytes() {
        let p =
            decode_history(&[0x01, 0x00, 0x90, 0x00, 0x90, 0x00, 0x58, 0x00, 0x8a, 0x34, 0x4b, 0x10, 0x10], model(523));
        let e = &p.events[0];
        let ev = HistoryEvent::new(e.timestamp.unwrap_or_default(), e.data.clone());
        assert_eq!(encode_history_event(&ev, model(523)), Ok(e.raw.clone()));
    }

    #[test]
    fn timestamps_invert_the_decoders() {
        let x = t("2012-11-16T14:20:19");
        assert_eq!(pump_timestamp(x), Ok([0x93, 0xd4, 0x0e, 0x10, 0x0c]));
        assert_eq!(pump_date(NaiveDate::from_ymd_opt(2015, 4, 28).unwrap_or_default()), Ok([0x5c, 0x0f]));
        assert_eq!(glucose_timestamp(t("2016-02-08T20:54:00"), 1), Ok([0x14, 0xb6, 0x28, 0x10]));
        assert!(pump_timestamp(t("1999-12-31T00:00:00")).is_err());
        assert!(glucose_timestamp(t("2016-02-08T20:54:01"), 0).is_err());
    }

    #[test]
    fn out_of_range_values_are_errors() {
        let b = Bolus {
            bolus_type: BolusType::Normal,
            programmed_u: 30.0,
            delivered_u: 30.0,
            duration_min: 0,
            unabsorbed_total_u: None,
            remote: None,
            unabsorbed: None,
        };
        let ev = HistoryEvent::new(t("2020-01-01T00:00:00"), EventData::Bolus(b.clone()));
        assert!(matches!(
            encode_history_event(&ev, model(522)),
            Err(EncodeError::OutOfRange { field: "programmed_u", .. })
        ));
        let ev = HistoryEvent::new(
            t("2020-01-01T00:00:00"),
            EventData::Bolus(Bolus { programmed_u: 1.05, delivered_u: 1.0, ..b }),
        );
        assert!(encode_history_event(&ev, model(522)).is_err());
        assert_eq!(
            encode_history_event(&HistoryEvent::new(ev.timestamp, EventData::Other), model(522)),
            Err(EncodeError::Unsupported("settings and other"))
        );
        assert!(encode_glucose_record(ev.timestamp, &GlucoseData::SensorGlucose { mg_dl: 41 }).is_err());
    }

    // ---- property tests: encode → decode gives the same events ----

    fn arb_time() -> impl Strategy<Value = NaiveDateTime> {
        (0i64..(20 * 365 * 86400)).prop_map(|s| t("2005-01-01T00:00:00") + Duration::seconds(s))
    }

    fn arb_bolus(larger: bool) -> impl Strategy<Value = Bolus> {
        let amt = if larger { 0u32..4000 } else { 0u32..256 };
        let per = if larger { 40.0 } else { 10.0 };
        (
            prop_oneof![
                Just(BolusType::Normal),
                Just(BolusType::Square),
                Just(BolusType::DualNormal),
                Just(BolusType::DualSquare)
            ],
            amt.clone(),
            amt.clone(),
            amt,
            0u32..17,
            any::<bool>(),
        )
            .prop_map(move |(bolus_type, p, d, i, dur, remote)| Bolus {
                bolus_type,
                programmed_u: f64::from(p) / per,
                delivered_u: f64::from(d) / per,
                duration_min: dur * 30,
                unabsorbed_total_u: larger.then_some(f64::from(i) / per),
                remote: larger.then_some(remote),
                unabsorbed: None,
            })
    }

    fn arb_wizard(larger: bool) -> impl Strategy<Value = WizardEstimate> {
        (
            prop_oneof![Just(BgUnits::MgDl), Just(BgUnits::MmolL)],
            0u16..1024,
            if larger { 0u16..1024 } else { 0u16..256 },
            if larger { 0u32..2048 } else { 0u32..256 },
            (any::<u8>(), any::<u8>(), any::<u8>()),
            if larger { 0u32..4000 } else { 0u32..256 },
            if larger { -1024i32..1024 } else { -300i32..300 },
            if larger { 0u32..4000 } else { 0u32..256 },
            if larger { 0u32..4000 } else { 0u32..256 },
        )
            .prop_map(move |(units, bg, carbs, cr, (s, lo, hi), food, corr, iob, est)| {
                let per = if larger { 40.0 } else { 10.0 };
                WizardEstimate {
                    units,
                    carbs_g: carbs,
                    bg,
                    carb_ratio_g_per_u: if larger { f64::from(cr) / 10.0 } else { f64::from(cr) },
                    sensitivity: u16::from(s),
                    target_low: u16::from(lo),
                    target_high: u16::from(hi),
                    food_estimate_u: f64::from(food) / per,
                    correction_estimate_u: f64::from(corr) / per,
                    unabsorbed_insulin_u: f64::from(iob) / per,
                    bolus_estimate_u: f64::from(est) / per,
                }
            })
    }

    fn arb_event(larger: bool) -> impl Strategy<Value = EventData> {
        prop_oneof![
            arb_bolus(larger).prop_map(EventData::Bolus),
            arb_wizard(larger).prop_map(EventData::BolusWizard),
            (0u32..256, 0u32..256).prop_map(|(a, p)| EventData::Prime {
                amount_u: f64::from(a) / 10.0,
                programmed_u: f64::from(p) / 10.0
            }),
            (0u32..2048, any::<bool>()).prop_map(|(r, remote)| EventData::TempBasal {
                rate: TempBasalRate::Absolute(f64::from(r) / 40.0),
                remote
            }),
            (any::<u8>(), any::<bool>())
                .prop_map(|(p, remote)| EventData::TempBasal { rate: TempBasalRate::Percent(p), remote }),
            (0u32..256).prop_map(|d| EventData::TempBasalDuration { duration_min: d * 30 }),
            (0u32..256, 0u32..48, any::<u8>(), 0u8..8).prop_map(|(r, o, index, pattern)| {
                EventData::BasalProfileStart { rate_u_h: f64::from(r) / 40.0, offset_min: o * 30, index, pattern }
            }),
            Just(EventData::Suspend),
            any::<bool>().prop_map(|remote| EventData::Resume { remote }),
            Just(EventData::Rewind),
            (0u16..1024).prop_map(|bg_mg_dl| EventData::CalBgForPh { bg_mg_dl }),
            (0u16..2048, any::<[u8; 3]>())
                .prop_map(|(bg_mg_dl, m)| EventData::BgReceived { bg_mg_dl, meter: super::super::hex(&m) }),
            any::<u8>().prop_map(|code| EventData::PumpAlarm { code }),
            any::<u8>().prop_map(|code| EventData::ClearAlarm { code }),
            (0u32..256).prop_map(|a| EventData::LowReservoir { amount_u: f64::from(a) / 10.0 }),
            Just(EventData::LowBattery),
            (0u32..512).prop_map(|g| EventData::MealMarker { carbs: f64::from(g), exchanges: false }),
            (0u32..256).prop_map(|x| EventData::MealMarker { carbs: f64::from(x) / 10.0, exchanges: true }),
            (0i64..7000, 0u32..8000).prop_map(|(d, tot)| EventData::ResultDailyTotal {
                date: NaiveDate::from_ymd_opt(2005, 1, 1).and_then(|x| x.checked_add_signed(Duration::days(d))),
                total_u: f64::from(tot) / 40.0
            }),
        ]
    }

    fn arb_history() -> impl Strategy<Value = (u16, Vec<HistoryEvent>)> {
        prop_oneof![Just(522u16), Just(515), Just(523), Just(554), Just(722), Just(751)].prop_flat_map(|m| {
            let larger = model(m).larger();
            (
                Just(m),
                prop::collection::vec((arb_time(), arb_event(larger)), 1..120).prop_map(|v| {
                    let mut v: Vec<HistoryEvent> = v.into_iter().map(|(t, d)| HistoryEvent::new(t, d)).collect();
                    v.sort_by_key(|e| e.timestamp);
                    v
                }),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn history_roundtrip((m, events) in arb_history()) {
            let model = model(m);
            let mut pages = HistoryPages::default();
            for e in &events {
                pages.push(e.clone(), model).map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            let finished = pages.pages();
            prop_assert_eq!(finished.len(), pages.events.len());
            let mut seen = 0;
            for (page, expected) in finished.iter().zip(&pages.events) {
                prop_assert_eq!(page.len(), PAGE_LEN);
                let decoded = decode_history_page(page, model).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&decoded.stop, &None);
                let got: Vec<(Option<NaiveDateTime>, EventData)> =
                    decoded.events.iter().map(|e| (e.timestamp, e.data.clone())).collect();
                let want: Vec<(Option<NaiveDateTime>, EventData)> =
                    expected.iter().map(|e| (e.decoded_timestamp(), e.data.clone())).collect();
                prop_assert_eq!(got, want);
                seen += expected.len();
            }
            prop_assert_eq!(seen, events.len());
        }

        #[test]
        fn glucose_roundtrip(
            start in arb_time(),
            steps in prop::collection::vec((1i64..4, 20u16..256, 0u8..12, 1u16..512, 0u32..60000), 1..1500),
        ) {
            // Readings mostly 5 minutes apart (some out of the sensor's range), with gaps,
            // calibrations, status and sync records.
            let mut now = start.with_second(0).unwrap_or(start);
            let mut items = Vec::new();
            for (gap, v, kind, bg, factor) in steps {
                now += Duration::minutes(if kind == 0 { 5 * gap + 1 } else { 5 });
                match kind {
                    1 => items.push((now, GlucoseData::CalBgForGh { bg_mg_dl: bg })),
                    2 => items.push((now, GlucoseData::SensorCalFactor { factor: f64::from(factor) / 1000.0 })),
                    3 => items.push((now, GlucoseData::SensorStatus(SensorStatusKind::On))),
                    4 => items.push((now, GlucoseData::SensorDataLow)),
                    5 => items.push((now, GlucoseData::SensorDataHigh)),
                    6 => items.push((now, GlucoseData::SensorSync(SensorSyncKind::New))),
                    _ => items.push((now, GlucoseData::SensorGlucose { mg_dl: v * 2 })),
                }
            }
            let out = encode_glucose(&items).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut count = 0;
            for (page, expected) in out.pages.iter().zip(&out.events) {
                let decoded = decode_glucose_page(page).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&decoded.stop, &None);
                let got: Vec<(Option<NaiveDateTime>, GlucoseData)> =
                    decoded.events.iter().map(|e| (e.timestamp, e.data.clone())).collect();
                let want: Vec<(Option<NaiveDateTime>, GlucoseData)> =
                    expected.iter().map(|(t, d)| (Some(*t), d.clone())).collect();
                prop_assert_eq!(got, want);
                count += expected.iter().filter(|(_, d)| !matches!(d, GlucoseData::SensorTimestamp(_))).count();
            }
            prop_assert_eq!(count, items.len());
        }
    }
}
