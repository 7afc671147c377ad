//! Pump history pages (`ReadHistoryData`): records read forward from byte 0 of the 1022 data
//! bytes, zero bytes between records skipped (the unused tail of a page is zeros).
//!
//! Each record starts with its opcode; its length comes from the table in [`spec`] (per pump
//! model where it differs) and most carry a 5-byte timestamp ([`super::timestamp::pump_datetime`])
//! at a fixed offset. Records are decoded into [`EventData`]; settings records are decoded for
//! their length only (their fields are kept as raw bytes). An `UnabsorbedInsulin` record (0x5c,
//! no timestamp) describes the insulin on board when the next bolus was given and is attached to
//! that bolus, as MinimedKit does; one left over at the end of a page stays an event of its own.
//!
//! Lengths, where the references differ (all others agree):
//! - 0x17 `ChangeTime` is 7 bytes, followed by a 7-byte 0x18 `NewTime` (decocare, and the
//!   MinimedKit test counts; an older MinimedKit read 0x17 as one 14-byte record).
//! - 0x4f `ChangeBolusWizardSetup`: 47 bytes before x23 (decocare; validated on the decocare
//!   522 pages), 39 from x23 (Tidepool, which reads x23+ only).
//! - 0x50 `ChangeSensorSetup2`: see [`PumpModel`]'s sensor-setup note.
//! - 0x55: 7 + 3 × (byte 1 − 1) bytes (decocare, Tidepool; MinimedKit's fixed 64 is the case
//!   byte 1 = 20). A zero byte 1 gives no length: decoding stops there.
//! - 0x6c `DailyTotal515`: 38 bytes (MinimedKit, Tidepool; validated on the 515 fixture page);
//!   decocare's 37 for x15 misreads it.
//! - 0x39 on x12/x15 is the meter BG that later models write as 0x3f (MinimedKit
//!   `UnknownPumpEvent57` length, and its `testMeterBGx15` reads it as `BGReceived`).
//! - Opcodes only one reference lists (0x1c, 0x25, 0x29, 0x3a, 0x7e, 0x7f: Tidepool; 0x2e,
//!   0x2f, 0x30, 0xa8: decocare) are read with that reference's length.

use super::timestamp::{pump_date, pump_datetime};
use super::{DecodeStop, PageError, PumpModel, StopReason, page_data};
use chrono::{Duration, NaiveDate, NaiveDateTime};

/// One decoded history record.
#[derive(Clone, Debug, PartialEq)]
pub struct PumpEvent {
    /// Byte offset of the record in its page.
    pub offset: usize,
    pub op: u8,
    /// The record's bytes, opcode first.
    pub raw: Vec<u8>,
    /// Pump-local time of the record; `None` when the record has none (0x5c) or its bytes are
    /// not a calendar date. Daily totals are stamped at the midnight that ends their day (when
    /// the pump writes them, as decocare reports them); their own day is in [`EventData`].
    pub timestamp: Option<NaiveDateTime>,
    pub data: EventData,
}

impl PumpEvent {
    /// The record type's name ("BolusNormal", "TempBasal", …).
    pub fn name(&self) -> &'static str {
        name(self.op)
    }
}

/// How a bolus was delivered: the top three bits of the timestamp's hour byte (Tidepool's
/// reading; CareLink exports agree on the decocare 522 pages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BolusType {
    Normal,
    Square,
    /// The immediate part of a dual-wave bolus.
    DualNormal,
    /// The extended part of a dual-wave bolus.
    DualSquare,
}

/// One dose still on board when a bolus was given (from the 0x5c record before it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UnabsorbedDose {
    pub amount_u: f64,
    pub age_min: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Bolus {
    pub bolus_type: BolusType,
    pub programmed_u: f64,
    pub delivered_u: f64,
    /// Square / dual-square duration; 0 for a normal bolus.
    pub duration_min: u32,
    /// Insulin on board the pump counted (x23 and later only).
    pub unabsorbed_total_u: Option<f64>,
    /// Delivered through the remote / a connected device (x23 and later only).
    pub remote: Option<bool>,
    /// The 0x5c record written before this bolus, when there was one.
    pub unabsorbed: Option<UnabsorbedInsulin>,
}

/// An unabsorbed-insulin record (0x5c; 0x30 on x12) as attached to its bolus.
#[derive(Clone, Debug, PartialEq)]
pub struct UnabsorbedInsulin {
    /// Byte offset of the 0x5c record in its page.
    pub offset: usize,
    pub raw: Vec<u8>,
    pub doses: Vec<UnabsorbedDose>,
}

/// The BG unit the Bolus Wizard worked in (bits 6–7 of the record's byte 8, as Tidepool reads
/// them; every fixture has mg/dL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BgUnits {
    MgDl,
    /// BG, targets and sensitivity are in tenths of mmol/L.
    MmolL,
    Unknown(u8),
}

#[derive(Clone, Debug, PartialEq)]
pub struct WizardEstimate {
    pub units: BgUnits,
    pub carbs_g: u16,
    /// 0 when no BG was entered. In the wizard's unit (tenths of mmol/L for [`BgUnits::MmolL`]).
    pub bg: u16,
    pub carb_ratio_g_per_u: f64,
    pub sensitivity: u16,
    pub target_low: u16,
    pub target_high: u16,
    pub food_estimate_u: f64,
    /// Can be negative (BG below target).
    pub correction_estimate_u: f64,
    pub unabsorbed_insulin_u: f64,
    pub bolus_estimate_u: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TempBasalRate {
    /// U/h.
    Absolute(f64),
    Percent(u8),
    /// A rate-type bit pattern no reference describes (byte 7 = `.0`).
    Unknown(u8),
}

#[derive(Clone, Debug, PartialEq)]
pub enum EventData {
    Bolus(Bolus),
    Prime {
        amount_u: f64,
        /// 0 for a manual (tubing) prime; the fixed cannula amount otherwise.
        programmed_u: f64,
    },
    /// Pump alarm (`code`: 3 battery out limit, 4 no delivery, 5 battery depleted, 6 auto-off,
    /// 16 device reset, 17 / 21 device reset after a battery problem (the clock was lost),
    /// 59 button error, 61 reprogram error, 62 empty reservoir).
    PumpAlarm {
        code: u8,
    },
    /// Sensor alarm (101 high, 102 low, 104 meter BG now, 105 calibration reminder,
    /// 106 calibration error, 107 sensor end, 112 weak signal, 113 lost sensor, 115 low
    /// predicted); high/low alarms carry the sensor glucose.
    SensorAlarm {
        code: u8,
        glucose_mg_dl: Option<u16>,
    },
    ClearAlarm {
        code: u8,
    },
    /// 0x07: the insulin total of `date` (`None` when the bytes are not a date).
    ResultDailyTotal {
        date: Option<NaiveDate>,
        total_u: f64,
    },
    /// 0x6c / 0x6d / 0x6e: the detailed totals of `date`; fields not mapped.
    DailyTotalDetail {
        date: Option<NaiveDate>,
    },
    /// Fingerstick BG the pump used (sent to the sensor as a calibration when one is running).
    CalBgForPh {
        bg_mg_dl: u16,
    },
    /// BG received from a linked meter (0x3f; 0x39 on x12/x15).
    BgReceived {
        bg_mg_dl: u16,
        meter: String,
    },
    TempBasal {
        rate: TempBasalRate,
        remote: bool,
    },
    TempBasalDuration {
        duration_min: u32,
    },
    BasalProfileStart {
        rate_u_h: f64,
        offset_min: u32,
        /// Index of the schedule entry.
        index: u8,
        /// 0 standard, 1 pattern A, 2 pattern B.
        pattern: u8,
    },
    Suspend,
    Resume {
        remote: bool,
    },
    Rewind,
    /// The clock before a time change (the timestamp); a 0x18 [`EventData::NewTime`] follows.
    ChangeTime,
    /// The clock after a time change (the timestamp).
    NewTime,
    LowReservoir {
        amount_u: f64,
    },
    LowBattery,
    BolusWizard(WizardEstimate),
    UnabsorbedInsulin(Vec<UnabsorbedDose>),
    MealMarker {
        carbs: f64,
        exchanges: bool,
    },
    ExerciseMarker,
    InsulinMarker {
        amount_u: f64,
    },
    OtherMarker,
    /// A settings record (basal profiles, wizard setup, max bolus, …), decoded for its length.
    Settings,
    /// A known record without fields of interest (self test, battery change, …).
    Other,
}

/// What [`decode_history`] returns: the events in page order (oldest first) and, when decoding
/// stopped before the end of the data, why and where.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistoryPage {
    pub events: Vec<PumpEvent>,
    pub stop: Option<DecodeStop>,
}

#[derive(Clone, Copy)]
enum Len {
    Fixed(usize),
    /// Byte 1 is the length (at least 2).
    HeadByte,
    /// 7 + 3 × (byte 1 − 1).
    Triples,
}

#[derive(Clone, Copy)]
enum Ts {
    /// A 5-byte timestamp at this offset.
    At(usize),
    /// A 2-byte date at this offset (daily totals).
    Date(usize),
    None,
}

#[derive(Clone, Copy)]
struct Spec {
    len: Len,
    ts: Ts,
}

/// The name of a history opcode (`"Unknown"` for one no reference knows).
pub fn name(op: u8) -> &'static str {
    match op {
        0x01 => "BolusNormal",
        0x03 => "Prime",
        0x06 => "PumpAlarm",
        0x07 => "ResultDailyTotal",
        0x08 => "ChangeBasalProfilePattern",
        0x09 => "ChangeBasalProfile",
        0x0a => "CalBGForPH",
        0x0b => "AlarmSensor",
        0x0c => "ClearAlarm",
        0x14 => "SelectBasalProfile",
        0x16 => "TempBasalDuration",
        0x17 => "ChangeTime",
        0x18 => "NewTime",
        0x19 => "JournalEntryPumpLowBattery",
        0x1a => "Battery",
        0x1b => "SetAutoOff",
        0x1c => "ChangeConcentration",
        0x1e => "Suspend",
        0x1f => "Resume",
        0x20 => "SelfTest",
        0x21 => "Rewind",
        0x22 => "ClearSettings",
        0x23 => "ChangeChildBlockEnable",
        0x24 => "ChangeMaxBolus",
        0x25 => "ChangeMaxBasal25",
        0x26 => "EnableDisableRemote",
        0x27 => "ChangeRemoteID",
        0x29 => "CodeUpdate",
        0x2c => "ChangeMaxBasal",
        0x2d => "EnableBolusWizard",
        0x2e => "ChangeBolusWizard2E",
        0x2f => "BolusWizard512",
        0x30 => "UnabsorbedInsulin512",
        0x31 => "ChangeBGReminderOffset",
        0x32 => "ChangeAlarmClockTime",
        0x33 => "TempBasal",
        0x34 => "JournalEntryPumpLowReservoir",
        0x35 => "AlarmClockReminder",
        0x36 => "ChangeMeterID",
        0x39 => "BGReceived512",
        0x3a => "ChangeInsulinActionType",
        0x3b => "Questionable3B",
        0x3c => "ChangeParadigmLinkID",
        0x3f => "BGReceived",
        0x40 => "JournalEntryMealMarker",
        0x41 => "JournalEntryExerciseMarker",
        0x42 => "JournalEntryInsulinMarker",
        0x43 => "JournalEntryOtherMarker",
        0x44 => "ChangeSensorAutoCalEnable",
        0x4f => "ChangeBolusWizardSetup",
        0x50 => "ChangeSensorSetup2",
        0x51 => "RestoreMystery51",
        0x52 => "RestoreMystery52",
        0x53 => "ChangeSensorAlarmSilenceConfig",
        0x54 => "RestoreMystery54",
        0x55 => "RestoreMystery55",
        0x56 => "ChangeSensorRateOfChangeAlertSetup",
        0x57 => "ChangeBolusScrollStepSize",
        0x5a => "BolusWizardSetup",
        0x5b => "BolusWizardBolusEstimate",
        0x5c => "UnabsorbedInsulin",
        0x5d => "SaveSettings",
        0x5e => "ChangeVariableBolus",
        0x5f => "ChangeAudioBolus",
        0x60 => "ChangeBGReminderEnable",
        0x61 => "ChangeAlarmClockEnable",
        0x62 => "ChangeTempBasalType",
        0x63 => "ChangeAlarmNotifyMode",
        0x64 => "ChangeTimeFormat",
        0x65 => "ChangeReservoirWarningTime",
        0x66 => "ChangeBolusReminderEnable",
        0x67 => "ChangeBolusReminderTime",
        0x68 => "DeleteBolusReminderTime",
        0x69 => "BolusReminder",
        0x6a => "DeleteAlarmClockTime",
        0x6c => "DailyTotal515",
        0x6d => "DailyTotal522",
        0x6e => "DailyTotal523",
        0x6f => "ChangeCarbUnits",
        0x7b => "BasalProfileStart",
        0x7c => "ChangeWatchdogEnable",
        0x7d => "ChangeOtherDeviceID",
        0x7e => "ChangeLowSuspendLimit",
        0x7f => "ChangeLowSuspendParameters",
        0x81 => "ChangeWatchdogMarriageProfile",
        0x82 => "DeleteOtherDeviceID",
        0x83 => "ChangeCaptureEventEnable",
        0xa8 => "MysteryA8",
        _ => "Unknown",
    }
}

/// Length and timestamp position of an opcode on a model; `None` for an unknown opcode.
fn spec(op: u8, model: PumpModel) -> Option<Spec> {
    let big = model.larger();
    let f = |n: usize| Some(Spec { len: Len::Fixed(n), ts: Ts::At(2) });
    match op {
        0x01 => Some(Spec { len: Len::Fixed(if big { 13 } else { 9 }), ts: Ts::At(if big { 8 } else { 4 }) }),
        0x03 => Some(Spec { len: Len::Fixed(10), ts: Ts::At(5) }),
        0x06 => Some(Spec { len: Len::Fixed(9), ts: Ts::At(4) }),
        0x07 => Some(Spec { len: Len::Fixed(if big { 10 } else { 7 }), ts: Ts::Date(5) }),
        0x08 | 0x09 => f(152),
        0x0b => Some(Spec { len: Len::Fixed(8), ts: Ts::At(3) }),
        0x0a | 0x0c | 0x14 | 0x16..=0x1c | 0x1e..=0x25 | 0x27 | 0x2c | 0x2d => f(7),
        0x26 | 0x29 | 0x36 | 0x3c => f(21),
        0x2e => f(107),
        0x2f => f(19),
        0x30 | 0x5c => Some(Spec { len: Len::HeadByte, ts: Ts::None }),
        0x31 | 0x32 | 0x34 | 0x35 | 0x3a | 0x3b | 0x43 | 0x44 | 0x51 | 0x52 | 0x57 => f(7),
        0x33 | 0x41 | 0x42 | 0x53 | 0x7f => f(8),
        0x39 | 0x3f => f(10),
        0x40 | 0x67..=0x69 => f(9),
        0x4f => f(if big { 39 } else { 47 }),
        0x50 => f(if model.long_sensor_setup() { 41 } else { 37 }),
        0x54 => f(64),
        0x55 => Some(Spec { len: Len::Triples, ts: Ts::At(2) }),
        0x56 | 0x81 | 0x82 => f(12),
        0x5a => f(if big { 144 } else { 124 }),
        0x5b => f(if big { 22 } else { 20 }),
        0x5d..=0x66 | 0x6a | 0x6f | 0x7c | 0x7e | 0x83 => f(7),
        0x6c => Some(Spec { len: Len::Fixed(38), ts: Ts::Date(1) }),
        0x6d => Some(Spec { len: Len::Fixed(44), ts: Ts::Date(1) }),
        0x6e => Some(Spec { len: Len::Fixed(52), ts: Ts::Date(1) }),
        0x7b => f(10),
        0x7d => f(37),
        0xa8 => f(15),
        _ => None,
    }
}

/// Decodes a 1024-byte history page after checking its length and CRC.
pub fn decode_history_page(page: &[u8], model: PumpModel) -> Result<HistoryPage, PageError> {
    Ok(decode_history(page_data(page)?, model))
}

/// Decodes history records from raw data bytes (normally a page's 1022 data bytes; any byte
/// string is accepted and never panics). Stops at the first record whose opcode is unknown or
/// that runs past the end of the data.
pub fn decode_history(data: &[u8], model: PumpModel) -> HistoryPage {
    let mut page = HistoryPage::default();
    // A 0x5c record waiting for its bolus, and where it stands in page order.
    let mut pending_unabsorbed: Option<(usize, PumpEvent)> = None;
    let mut i = 0;
    while i < data.len() {
        let op = data[i];
        if op == 0 {
            i += 1;
            continue;
        }
        let stop = |reason| DecodeStop { offset: i, op, reason };
        let Some(spec) = spec(op, model) else {
            page.stop = Some(stop(StopReason::UnknownOpcode));
            break;
        };
        let available = data.len() - i;
        let len = match spec.len {
            Len::Fixed(n) => Some(n),
            Len::HeadByte => data.get(i + 1).map(|&b| usize::from(b).max(2)),
            Len::Triples => data.get(i + 1).and_then(|&b| (b > 0).then(|| 7 + 3 * (usize::from(b) - 1))),
        };
        let Some(len) = len else {
            let reason =
                if available < 2 { StopReason::Truncated { needed: 2, available } } else { StopReason::UnknownOpcode };
            page.stop = Some(stop(reason));
            break;
        };
        if len > available {
            page.stop = Some(stop(StopReason::Truncated { needed: len, available }));
            break;
        }
        let raw = &data[i..i + len];
        let timestamp = match spec.ts {
            Ts::At(o) => five(raw, o).and_then(pump_datetime),
            Ts::Date(o) => {
                two(raw, o).and_then(pump_date).and_then(|d| d.succ_opt()).and_then(|d| d.and_hms_opt(0, 0, 0))
            }
            Ts::None => None,
        };
        let data_ = event_data(op, raw, model);
        let mut ev = PumpEvent { offset: i, op, raw: raw.to_vec(), timestamp, data: data_ };
        i += len;
        if matches!(ev.data, EventData::UnabsorbedInsulin(_)) {
            let at = page.events.len();
            if let Some((prev_at, prev)) = pending_unabsorbed.replace((at, ev)) {
                // Another before any bolus: the first belonged to none; keep it in its place.
                page.events.insert(prev_at, prev);
                if let Some(p) = pending_unabsorbed.as_mut() {
                    p.0 += 1;
                }
            }
            continue;
        }
        if let EventData::Bolus(b) = &mut ev.data
            && let Some((_, p)) = pending_unabsorbed.take()
            && let EventData::UnabsorbedInsulin(doses) = p.data
        {
            b.unabsorbed = Some(UnabsorbedInsulin { offset: p.offset, raw: p.raw, doses });
        }
        page.events.push(ev);
    }
    if let Some((at, p)) = pending_unabsorbed {
        page.events.insert(at, p);
    }
    page
}

fn five(raw: &[u8], o: usize) -> Option<[u8; 5]> {
    raw.get(o..o + 5).and_then(|s| s.try_into().ok())
}

fn two(raw: &[u8], o: usize) -> Option<[u8; 2]> {
    raw.get(o..o + 2).and_then(|s| s.try_into().ok())
}

/// Byte `i` of a record (0 past its end: every caller has checked the length already).
fn b(raw: &[u8], i: usize) -> u8 {
    raw.get(i).copied().unwrap_or(0)
}

fn be16(raw: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b(raw, i), b(raw, i + 1)])
}

/// Rounds to 1/1000 so that 0.1 × 3 prints as 0.3 (all pump amounts are multiples of 1/40 U
/// or 1/10 U).
fn units(strokes: f64, per_unit: f64) -> f64 {
    (strokes / per_unit * 1000.0).round() / 1000.0
}

fn event_data(op: u8, raw: &[u8], model: PumpModel) -> EventData {
    let spu = model.strokes_per_unit();
    match op {
        0x01 => {
            let (programmed, delivered, iob, dur, hour_byte, day_byte) = if model.larger() {
                (
                    f64::from(be16(raw, 1)),
                    f64::from(be16(raw, 3)),
                    Some(f64::from(be16(raw, 5))),
                    u32::from(b(raw, 7)),
                    b(raw, 10),
                    Some(b(raw, 11)),
                )
            } else {
                (f64::from(b(raw, 1)), f64::from(b(raw, 2)), None, u32::from(b(raw, 3)), b(raw, 6), None)
            };
            let duration_min = dur * 30;
            let bolus_type = match hour_byte >> 5 {
                1 | 2 => BolusType::Normal,
                3 => BolusType::Square,
                4 => BolusType::DualNormal,
                5 => BolusType::DualSquare,
                // Bits no reference describes: the duration says what it was.
                _ if duration_min > 0 => BolusType::Square,
                _ => BolusType::Normal,
            };
            EventData::Bolus(Bolus {
                bolus_type,
                programmed_u: units(programmed, spu),
                delivered_u: units(delivered, spu),
                duration_min,
                unabsorbed_total_u: iob.map(|v| units(v, spu)),
                remote: day_byte.map(|d| d & 0x40 != 0),
                unabsorbed: None,
            })
        }
        0x03 => EventData::Prime {
            amount_u: units(f64::from(b(raw, 4)), 10.0),
            programmed_u: units(f64::from(b(raw, 2)), 10.0),
        },
        0x06 => EventData::PumpAlarm { code: b(raw, 1) },
        0x07 => EventData::ResultDailyTotal {
            date: two(raw, 5).and_then(pump_date),
            total_u: units(f64::from(be16(raw, 3)), 40.0),
        },
        0x6c..=0x6e => EventData::DailyTotalDetail { date: two(raw, 1).and_then(pump_date) },
        0x0a => EventData::CalBgForPh {
            bg_mg_dl: (u16::from(b(raw, 4) & 0x80) << 2) | (u16::from(b(raw, 6) & 0x80) << 1) | u16::from(b(raw, 1)),
        },
        0x0b => {
            let code = b(raw, 1);
            let glucose_mg_dl =
                matches!(code, 101 | 102).then(|| (u16::from(b(raw, 7) & 0x80) << 1) | u16::from(b(raw, 2)));
            EventData::SensorAlarm { code, glucose_mg_dl }
        }
        0x0c => EventData::ClearAlarm { code: b(raw, 1) },
        0x39 | 0x3f => EventData::BgReceived {
            bg_mg_dl: (u16::from(b(raw, 1)) << 3) | u16::from(b(raw, 4) >> 5),
            meter: super::hex(raw.get(7..10).unwrap_or(&[])),
        },
        0x33 => {
            let t = b(raw, 7);
            let rate = match t >> 3 {
                0 => TempBasalRate::Absolute(units(f64::from((u16::from(t & 0x07) << 8) | u16::from(b(raw, 1))), 40.0)),
                1 => TempBasalRate::Percent(b(raw, 1)),
                _ => TempBasalRate::Unknown(t),
            };
            EventData::TempBasal { rate, remote: b(raw, 5) & 0x40 != 0 }
        }
        0x16 => EventData::TempBasalDuration { duration_min: u32::from(b(raw, 1)) * 30 },
        0x7b => EventData::BasalProfileStart {
            rate_u_h: units(f64::from(b(raw, 8)), 40.0),
            offset_min: u32::from(b(raw, 7)) * 30,
            index: b(raw, 1),
            pattern: b(raw, 4) >> 5,
        },
        0x1e => EventData::Suspend,
        0x1f => EventData::Resume { remote: b(raw, 5) & 0x40 != 0 },
        0x21 => EventData::Rewind,
        0x17 => EventData::ChangeTime,
        0x18 => EventData::NewTime,
        0x34 => EventData::LowReservoir { amount_u: units(f64::from(b(raw, 1)), 10.0) },
        0x19 => EventData::LowBattery,
        0x5b => EventData::BolusWizard(wizard(raw, model)),
        0x30 | 0x5c => EventData::UnabsorbedInsulin(
            raw.get(2..)
                .unwrap_or(&[])
                .chunks_exact(3)
                .map(|c| UnabsorbedDose {
                    amount_u: units(f64::from(c[0]), 40.0),
                    age_min: u32::from(c[1]) | (u32::from(c[2] & 0x30) << 4),
                })
                .collect(),
        ),
        0x40 => {
            let exchanges = (b(raw, 8) >> 1) & 1 == 1;
            let carbs = if exchanges {
                f64::from(b(raw, 7)) / 10.0
            } else {
                f64::from((u16::from(b(raw, 1) & 1) << 8) | u16::from(b(raw, 7)))
            };
            EventData::MealMarker { carbs, exchanges }
        }
        0x41 => EventData::ExerciseMarker,
        // decocare (after MinimedKit): low byte in byte 1, two high bits in the minute byte.
        0x42 => EventData::InsulinMarker {
            amount_u: units(f64::from((u16::from(b(raw, 4) & 0x60) << 3) | u16::from(b(raw, 1))), 10.0),
        },
        0x43 => EventData::OtherMarker,
        0x08
        | 0x09
        | 0x14
        | 0x1b
        | 0x1c
        | 0x22..=0x27
        | 0x2c
        | 0x2d
        | 0x2e
        | 0x31
        | 0x32
        | 0x36
        | 0x3a
        | 0x3c
        | 0x44
        | 0x4f..=0x57
        | 0x5a
        | 0x5d..=0x68
        | 0x6a
        | 0x6f
        | 0x7c
        | 0x7d
        | 0x7e
        | 0x7f
        | 0x81..=0x83 => EventData::Settings,
        _ => EventData::Other,
    }
}

/// Bolus Wizard estimate (0x5b). Layouts as MinimedKit `BolusWizardEstimatePumpEvent`; the
/// correction estimate is signed (Tidepool: an 11-bit two's complement on x23+; before x23
/// bytes 14 and 12 form a 16-bit one). decocare keeps only the low nibble of byte 12 before
/// x23, which under-reports corrections above 1.5 U (its 522 decodes show 0.8 U for a
/// (216 − 120) / 40 = 2.4 U correction).
fn wizard(raw: &[u8], model: PumpModel) -> WizardEstimate {
    let d = |i| b(raw, i);
    let units_bits = d(8) & 0xC0;
    let units_ = match units_bits {
        0x40 => BgUnits::MgDl,
        0x80 => BgUnits::MmolL,
        other => BgUnits::Unknown(other),
    };
    let bg = (u16::from(d(8) & 0x03) << 8) | u16::from(d(1));
    if model.larger() {
        let corr_raw = (u16::from(d(16) & 0x38) << 5) | u16::from(d(13));
        let corr = if corr_raw & 0x400 != 0 { i32::from(corr_raw) - 0x800 } else { i32::from(corr_raw) };
        WizardEstimate {
            units: units_,
            carbs_g: (u16::from(d(8) & 0x0C) << 6) | u16::from(d(7)),
            bg,
            carb_ratio_g_per_u: f64::from((u16::from(d(9) & 0x07) << 8) | u16::from(d(10))) / 10.0,
            sensitivity: u16::from(d(11)),
            target_low: u16::from(d(12)),
            target_high: u16::from(d(21)),
            food_estimate_u: units(f64::from(be16(raw, 14)), 40.0),
            correction_estimate_u: units(f64::from(corr), 40.0),
            unabsorbed_insulin_u: units(f64::from(be16(raw, 17)), 40.0),
            bolus_estimate_u: units(f64::from(be16(raw, 19)), 40.0),
        }
    } else {
        let corr = i16::from_be_bytes([d(14), d(12)]);
        WizardEstimate {
            units: units_,
            carbs_g: u16::from(d(7)),
            bg,
            carb_ratio_g_per_u: f64::from(d(9)),
            sensitivity: u16::from(d(10)),
            target_low: u16::from(d(11)),
            target_high: u16::from(d(19)),
            food_estimate_u: units(f64::from(d(13)), 10.0),
            correction_estimate_u: units(f64::from(corr), 10.0),
            unabsorbed_insulin_u: units(f64::from(d(16)), 10.0),
            bolus_estimate_u: units(f64::from(d(18)), 10.0),
        }
    }
}

/// Pump alarm codes that mean the pump lost its clock (a reset after a battery problem): the
/// times of older records are not on the same clock (MinimedKit
/// `indicatesUnrecoverableClockIssue`).
pub fn alarm_resets_clock(code: u8) -> bool {
    matches!(code, 17 | 21)
}

/// An event placed on the pump's current clock by [`timeline`].
#[derive(Clone, Debug, PartialEq)]
pub struct TimedEvent<'a> {
    pub event: &'a PumpEvent,
    /// The event's timestamp shifted by every later clock change (so that times before and
    /// after a change are comparable); equal to the timestamp when the clock was not changed.
    pub time: NaiveDateTime,
}

/// Why [`timeline`] stopped walking back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimelineEnd {
    /// Every page was walked.
    Exhausted,
    /// An event at or before `since` was reached: older events are not wanted.
    ReachedSince,
    /// A pump alarm that resets the clock (see [`alarm_resets_clock`]) at this page / offset:
    /// older times are on a lost clock.
    ClockReset { page: usize, offset: usize },
    /// An event more than an hour newer than the one after it (walking back): the clock jumped
    /// without a recorded change; older times cannot be trusted.
    OutOfOrder { page: usize, offset: usize },
}

/// The events of several history pages on one clock, oldest first, as MinimedKit's
/// `timestampedEvents(after:)` builds them: walking from the newest record back, a
/// `ChangeTime`/`NewTime` pair shifts everything older by the change, a clock-reset alarm or an
/// unexplained jump of more than an hour ends the walk, and events at or before `since` end it
/// too. Boluses written when they finish (see [`PumpModel::appends_square_wave_at_start`]) are
/// not held to the ordering. Records without a timestamp, daily-total markers and byte-identical
/// repeats are left out.
///
/// `pages` are newest first (page 0 = the pump's current page), each in page order.
pub fn timeline<'a>(
    pages: &'a [HistoryPage],
    model: PumpModel,
    since: Option<NaiveDateTime>,
) -> (Vec<TimedEvent<'a>>, TimelineEnd) {
    let mut out: Vec<TimedEvent<'a>> = Vec::new();
    let mut seen: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
    let mut shift = Duration::zero();
    let mut cursor: Option<NaiveDateTime> = None;
    let mut newer: Option<&PumpEvent> = None;
    let finish = |mut out: Vec<TimedEvent<'a>>, end| {
        out.reverse();
        (out, end)
    };
    for (p, page) in pages.iter().enumerate() {
        for ev in page.events.iter().rev() {
            let skip = matches!(
                ev.data,
                EventData::ResultDailyTotal { .. }
                    | EventData::DailyTotalDetail { .. }
                    | EventData::UnabsorbedInsulin(_)
            ) || !seen.insert(ev.raw.as_slice());
            if !skip {
                if let (EventData::ChangeTime, Some(n)) = (&ev.data, newer)
                    && let (EventData::NewTime, Some(to), Some(from)) = (&n.data, n.timestamp, ev.timestamp)
                {
                    shift += to - from;
                }
                if let EventData::PumpAlarm { code } = ev.data
                    && alarm_resets_clock(code)
                {
                    return finish(out, TimelineEnd::ClockReset { page: p, offset: ev.offset });
                }
                if let Some(ts) = ev.timestamp {
                    let time = ts + shift;
                    let delayed = match &ev.data {
                        EventData::Bolus(b) => !(b.duration_min > 0 && model.appends_square_wave_at_start()),
                        _ => false,
                    };
                    if !delayed {
                        if since.is_some_and(|s| time <= s) {
                            return finish(out, TimelineEnd::ReachedSince);
                        }
                        if cursor.is_some_and(|c| time - c > Duration::minutes(60)) {
                            return finish(out, TimelineEnd::OutOfOrder { page: p, offset: ev.offset });
                        }
                        cursor = Some(time);
                    }
                    out.push(TimedEvent { event: ev, time });
                }
            }
            newer = Some(ev);
        }
    }
    finish(out, TimelineEnd::Exhausted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(n: u16) -> PumpModel {
        PumpModel::new(n).unwrap_or_else(|e| panic!("{e}"))
    }

    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0)).collect()
    }

    #[test]
    fn bolus_523_matches_minimedkit() {
        // BolusNormalPumpEventTests: 3.6 U normal, 2.2 U on board, 2016-08.
        let p = decode_history(&bytes("01009000900058008a344b1010"), m(523));
        assert_eq!(p.stop, None);
        let e = &p.events[0];
        assert_eq!(e.raw.len(), 13);
        let EventData::Bolus(b) = &e.data else { panic!("{:?}", e.data) };
        assert_eq!((b.programmed_u, b.delivered_u, b.duration_min), (3.6, 3.6, 0));
        assert_eq!(b.unabsorbed_total_u, Some(2.2));
        assert_eq!(b.bolus_type, BolusType::Normal);
        let t = e.timestamp.map(|t| t.format("%Y-%m").to_string());
        assert_eq!(t.as_deref(), Some("2016-08"));
    }

    #[test]
    fn resume_remote_flag() {
        let local = decode_history(&bytes("1f20a4e30e0a13"), m(523));
        let remote = decode_history(&bytes("1f209de40e4a13"), m(523));
        assert_eq!(local.events[0].data, EventData::Resume { remote: false });
        assert_eq!(remote.events[0].data, EventData::Resume { remote: true });
    }

    #[test]
    fn unknown_opcode_and_truncation_stop_with_the_offset() {
        let p = decode_history(&bytes("000021000384141510ee00"), m(522));
        assert_eq!(p.events.len(), 1);
        assert_eq!(p.stop, Some(DecodeStop { offset: 9, op: 0xee, reason: StopReason::UnknownOpcode }));
        let msg = p.stop.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(msg.contains("opcode 0xee at byte 9"), "{msg}");
        let p = decode_history(&bytes("21000384"), m(522));
        assert!(p.events.is_empty());
        assert_eq!(p.stop.map(|s| s.reason), Some(StopReason::Truncated { needed: 7, available: 4 }));
        assert_eq!(decode_history(&[0x5c], m(522)).stop.map(|s| s.offset), Some(0));
        assert_eq!(decode_history(&[0x55, 0], m(522)).stop.map(|s| s.reason), Some(StopReason::UnknownOpcode));
    }
}
