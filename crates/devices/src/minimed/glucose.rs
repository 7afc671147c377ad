//! CGM pages (`ReadGlucoseHistory`): the pump writes each record with its opcode last, so a
//! page is read backward from its end (newest record first), zero bytes skipped.
//!
//! A data byte of 0x14 (20) or more is one sensor reading of 2 × byte mg/dL; lower bytes are
//! opcodes (lengths in [`record_len`]). Readings and a few status records carry no time: they
//! are 5 minutes apart. Their times are rebuilt as MinimedKit's `GlucosePage` does:
//! - from the newest record back, count those relative records until the first sensor
//!   timestamp (0x08); if it is a `last_rf` or `page_end` timestamp (or nothing relative came
//!   after it), the newest relative record is that time + 5 min × the count;
//! - walking back, each relative record takes the running time, which then steps back 5
//!   minutes; a sensor timestamp resets the running time to its own (so the reading just before
//!   it shares its minute);
//! - records with a timestamp of their own (calibration, calibration factor, sensor status,
//!   sync, battery, date change, `10-something`) keep it and do not move the running time;
//!   `19-something` (a filler) takes the running time without stepping.
//!
//! On the decocare 522 page this reproduces the CareLink export of the same pump (163
//! readings, value and minute); decocare's own 2015 decoder anchored readings forward from
//! calibration-factor and `10-something` records and is off by a few minutes there.
//!
//! When the newest records have no usable anchor (they end in a `gap` timestamp or in a record
//! that is not relative), [`GlucosePage::needs_timestamp`] is set: MinimedKit then asks the pump
//! to write a timestamp and returns nothing; here the events are still returned, those newer
//! than the first sensor timestamp without a time.
//!
//! An opcode below 0x14 that no reference knows (0x09, 0x11, 0x12) is returned as
//! [`GlucoseData::Unknown`] (one byte, as MinimedKit does) and decoding stops there: older
//! records cannot be found without knowing its length.

use super::timestamp::glucose_datetime;
use super::{DecodeStop, PageError, StopReason, page_data};
use chrono::{Duration, NaiveDateTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SensorTimestampKind {
    LastRf,
    PageEnd,
    Gap,
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SensorStatusKind {
    Off,
    On,
    Lost,
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SensorSyncKind {
    New,
    Old,
    Find,
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SensorCalKind {
    MeterBgNow,
    Waiting,
    CalError,
    Other(u8),
}

#[derive(Clone, Debug, PartialEq)]
pub enum GlucoseData {
    /// A sensor reading (data byte ≥ 0x14).
    SensorGlucose { mg_dl: u16 },
    /// 0x06: a reading below the sensor's 40 mg/dL limit.
    SensorDataLow,
    /// 0x07: a reading above the sensor's 400 mg/dL limit.
    SensorDataHigh,
    /// 0x01.
    DataEnd,
    /// 0x02.
    SensorWeakSignal,
    /// 0x03: the sensor asked for a calibration, or one failed.
    SensorCal(SensorCalKind),
    /// 0x04: `init` (byte 1 = 2) when a new sensor was started.
    SensorPacket { init: bool, code: u8 },
    /// 0x05: `end` (byte 1 = 1) when the sensor's life ended.
    SensorError { end: bool, code: u8 },
    /// 0x08.
    SensorTimestamp(SensorTimestampKind),
    /// 0x0a.
    BatteryChange,
    /// 0x0b.
    SensorStatus(SensorStatusKind),
    /// 0x0c: the pump clock was changed (the new time).
    DateTimeChange,
    /// 0x0d.
    SensorSync(SensorSyncKind),
    /// 0x0e: the fingerstick BG a calibration used (minute resolution; the pump history holds
    /// the same BG to the second as `CalBGForPH`).
    CalBgForGh { bg_mg_dl: u16 },
    /// 0x0f.
    SensorCalFactor { factor: f64 },
    /// 0x10.
    TenSomething,
    /// 0x13: a filler.
    NineteenSomething,
    /// An opcode no reference knows; decoding stopped here.
    Unknown,
}

/// One decoded CGM-page record.
#[derive(Clone, Debug, PartialEq)]
pub struct GlucoseEvent {
    /// Byte offset in the page where the record starts (its first byte in page order).
    pub offset: usize,
    pub op: u8,
    /// The record's bytes in reading order: opcode first (the page's bytes reversed), as
    /// decocare and MinimedKit print them.
    pub raw: Vec<u8>,
    /// Pump-local time, minute resolution; `None` when it cannot be rebuilt (see the module).
    pub timestamp: Option<NaiveDateTime>,
    pub data: GlucoseData,
}

impl GlucoseEvent {
    /// Sensor readings and the status records that are placed 5 minutes apart.
    pub fn is_relative(&self) -> bool {
        is_relative(self.op)
    }
}

/// What [`decode_glucose`] returns: events oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GlucosePage {
    pub events: Vec<GlucoseEvent>,
    /// The newest records have no anchor for their times (see the module).
    pub needs_timestamp: bool,
    pub stop: Option<DecodeStop>,
}

fn is_relative(op: u8) -> bool {
    op >= 0x14 || matches!(op, 0x01..=0x07)
}

/// The length of a CGM record from its opcode (`None` for an unknown opcode).
pub fn record_len(op: u8) -> Option<usize> {
    match op {
        0x01 | 0x02 | 0x06 | 0x13 => Some(1),
        0x03 | 0x04 | 0x05 | 0x07 => Some(2),
        0x08 | 0x0a..=0x0d => Some(5),
        0x0e => Some(6),
        0x0f => Some(7),
        0x10 => Some(8),
        0x14.. => Some(1),
        _ => None,
    }
}

/// The name of a CGM record type, as MinimedKit names them.
pub fn name(op: u8) -> &'static str {
    match op {
        0x01 => "DataEnd",
        0x02 => "SensorWeakSignal",
        0x03 => "SensorCal",
        0x04 => "SensorPacket",
        0x05 => "SensorError",
        0x06 => "SensorDataLow",
        0x07 => "SensorDataHigh",
        0x08 => "SensorTimestamp",
        0x0a => "BatteryChange",
        0x0b => "SensorStatus",
        0x0c => "DateTimeChange",
        0x0d => "SensorSync",
        0x0e => "CalBGForGH",
        0x0f => "SensorCalFactor",
        0x10 => "TenSomething",
        0x13 => "NineteenSomething",
        0x14.. => "GlucoseSensorData",
        _ => "Unknown",
    }
}

/// Decodes a 1024-byte CGM page after checking its length and CRC.
pub fn decode_glucose_page(page: &[u8]) -> Result<GlucosePage, PageError> {
    Ok(decode_glucose(page_data(page)?))
}

/// Decodes CGM records from raw data bytes in page order (normally a page's 1022 data bytes;
/// any byte string is accepted and never panics).
pub fn decode_glucose(data: &[u8]) -> GlucosePage {
    let n = data.len();
    let rev: Vec<u8> = data.iter().rev().copied().collect();
    let mut page = GlucosePage::default();
    // Newest first while decoding.
    let mut events: Vec<GlucoseEvent> = Vec::new();
    let mut i = 0;
    while i < n {
        let op = rev[i];
        if op == 0 {
            i += 1;
            continue;
        }
        let Some(len) = record_len(op) else {
            events.push(GlucoseEvent {
                offset: n - i - 1,
                op,
                raw: vec![op],
                timestamp: None,
                data: GlucoseData::Unknown,
            });
            page.stop = Some(DecodeStop { offset: n - i - 1, op, reason: StopReason::UnknownOpcode });
            break;
        };
        let available = n - i;
        if len > available {
            page.stop =
                Some(DecodeStop { offset: n - i - 1, op, reason: StopReason::Truncated { needed: len, available } });
            break;
        }
        let raw = &rev[i..i + len];
        let own_time = (len >= 5)
            .then(|| raw.get(1..5).and_then(|s| <[u8; 4]>::try_from(s).ok()))
            .flatten()
            .and_then(glucose_datetime);
        events.push(GlucoseEvent {
            offset: n - i - len,
            op,
            raw: raw.to_vec(),
            timestamp: own_time,
            data: data_of(op, raw),
        });
        i += len;
    }
    let initial = initial_time(&events);
    page.needs_timestamp = initial.is_none();
    let mut cursor = initial;
    for e in &mut events {
        match e.data {
            GlucoseData::SensorTimestamp(_) => cursor = e.timestamp,
            GlucoseData::NineteenSomething => e.timestamp = cursor,
            GlucoseData::Unknown => {}
            _ if e.is_relative() => {
                e.timestamp = cursor;
                cursor = cursor.and_then(|c| c.checked_sub_signed(Duration::minutes(5)));
            }
            _ => {}
        }
    }
    events.reverse();
    page.events = events;
    page
}

/// The time of the newest relative record (see the module), from events newest first.
fn initial_time(events: &[GlucoseEvent]) -> Option<NaiveDateTime> {
    let mut count = 0i64;
    for e in events {
        match e.data {
            _ if e.is_relative() => count += 1,
            GlucoseData::SensorTimestamp(kind)
                if count == 0 || matches!(kind, SensorTimestampKind::LastRf | SensorTimestampKind::PageEnd) =>
            {
                return e.timestamp?.checked_add_signed(Duration::minutes(5 * count));
            }
            GlucoseData::NineteenSomething => {}
            _ => return None,
        }
    }
    None
}

fn data_of(op: u8, raw: &[u8]) -> GlucoseData {
    let d = |i: usize| raw.get(i).copied().unwrap_or(0);
    let sub = (d(3) >> 5) & 0x03;
    match op {
        0x01 => GlucoseData::DataEnd,
        0x02 => GlucoseData::SensorWeakSignal,
        0x03 => GlucoseData::SensorCal(match d(1) {
            0 => SensorCalKind::MeterBgNow,
            1 => SensorCalKind::Waiting,
            2 => SensorCalKind::CalError,
            c => SensorCalKind::Other(c),
        }),
        0x04 => GlucoseData::SensorPacket { init: d(1) == 2, code: d(1) },
        0x05 => GlucoseData::SensorError { end: d(1) == 1, code: d(1) },
        0x06 => GlucoseData::SensorDataLow,
        0x07 => GlucoseData::SensorDataHigh,
        0x08 => GlucoseData::SensorTimestamp(match sub {
            0 => SensorTimestampKind::LastRf,
            1 => SensorTimestampKind::PageEnd,
            2 => SensorTimestampKind::Gap,
            _ => SensorTimestampKind::Unknown,
        }),
        0x0a => GlucoseData::BatteryChange,
        0x0b => GlucoseData::SensorStatus(match sub {
            0 => SensorStatusKind::Off,
            1 => SensorStatusKind::On,
            2 => SensorStatusKind::Lost,
            _ => SensorStatusKind::Unknown,
        }),
        0x0c => GlucoseData::DateTimeChange,
        0x0d => GlucoseData::SensorSync(match sub {
            1 => SensorSyncKind::New,
            2 => SensorSyncKind::Old,
            3 => SensorSyncKind::Find,
            _ => SensorSyncKind::Unknown,
        }),
        0x0e => GlucoseData::CalBgForGh { bg_mg_dl: (u16::from(d(3) & 0x20) << 3) | u16::from(d(5)) },
        0x0f => GlucoseData::SensorCalFactor { factor: f64::from(u16::from_be_bytes([d(5), d(6)])) / 1000.0 },
        0x10 => GlucoseData::TenSomething,
        0x13 => GlucoseData::NineteenSomething,
        _ => GlucoseData::SensorGlucose { mg_dl: u16::from(op) * 2 },
    }
}

/// Decodes one record given in reading order (opcode first), without page context: no relative
/// time. For tests and tools; `None` for an unknown opcode or too few bytes.
pub fn decode_record(raw: &[u8]) -> Option<GlucoseEvent> {
    let op = *raw.first()?;
    let len = record_len(op)?;
    let raw = raw.get(..len)?;
    let timestamp = (len >= 5)
        .then(|| raw.get(1..5).and_then(|s| <[u8; 4]>::try_from(s).ok()))
        .flatten()
        .and_then(glucose_datetime);
    Some(GlucoseEvent { offset: 0, op, raw: raw.to_vec(), timestamp, data: data_of(op, raw) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_step_back_from_the_timestamp() {
        // Page order: SensorTimestamp (2016-10-19 20:51, last_rf), then a reading 0x53.
        let page = decode_glucose(&[0x10, 0x13, 0xb3, 0x94, 0x08, 0x53]);
        assert!(!page.needs_timestamp);
        assert_eq!(page.events.len(), 2);
        let ts = page.events[0].timestamp.map(|t| t.to_string());
        let sg = page.events[1].timestamp.map(|t| t.to_string());
        assert_eq!(ts.as_deref(), Some("2016-10-19 20:51:00"));
        assert_eq!(sg.as_deref(), Some("2016-10-19 20:56:00"));
        assert_eq!(page.events[1].data, GlucoseData::SensorGlucose { mg_dl: 166 });
        assert_eq!(page.events[0].offset, 0);
        assert_eq!(page.events[1].offset, 5);
    }

    #[test]
    fn unknown_opcode_is_kept_and_stops() {
        let page = decode_glucose(&[0x50, 0x11, 0x60]);
        assert_eq!(page.events.len(), 2);
        assert_eq!(page.events[0].data, GlucoseData::Unknown);
        assert_eq!(page.stop.as_ref().map(|s| s.offset), Some(1));
        assert!(page.needs_timestamp);
    }
}
