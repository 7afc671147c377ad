//! Decoded pump and CGM events → normalised [`therapy::Record`]s, with pump-local
//! `device_time` (the UTC `time` is left for the caller, who knows the zone and the clock
//! offset). The shapes follow the CareLink CSV importer, so that the same therapy read from the
//! pump or from a CareLink export gives the same records:
//!
//! | event | record |
//! |---|---|
//! | bolus normal / square | `bolus` `normal` / `square` (an interrupted square's `duration_min` scaled by delivered / programmed) |
//! | dual-wave parts (normal + square within 15 min) | one `bolus` `dual` at the normal part's time, amounts summed, the square part's duration, and the parts: `normal_programmed_u` / `normal_delivered_u` (the normal part), `extended_programmed_u` / `extended_delivered_u` / `extended_duration_min` (the square part, its duration scaled as above); a lone square part is `square` (`normal_*` 0), a lone normal part `dual` with only its `normal_*` and no duration |
//! | Bolus Wizard estimate | `bolus_wizard` at its own time, `carbs_g` as entered (0 included), + `carbs` when carbs were entered; kept when a bolus followed within 5 min (the latest estimate before it wins), when it logged carbs with a 0 U estimate, or when the events given end less than 5 min after it (its bolus may be on the next page); estimates the user backed out of are dropped |
//! | temp basal (+ its duration record, same second) | `temp_basal` `rate_u_h` or `percent`, `duration_min` |
//! | basal profile start | `basal_profile_start` (`standard` / `pattern a` / `pattern b`) |
//! | suspend / resume / rewind | `suspend` / `resume` / `rewind` |
//! | prime | `prime` `fixed` (cannula) or `manual` (tubing) |
//! | BG received from a linked meter / `CalBGForPH` | `bg` `linked_meter` / `calibration`; the two copies of one fingerstick (same second and value) are one record, the meter link winning |
//! | pump / sensor alarm, low reservoir, low battery | `alarm` `{code, description}` |
//! | `ResultDailyTotal` | `daily_total` at 00:00 of its day |
//! | `ChangeTime` + `NewTime` | `time_change` at the old clock time |
//! | meal marker / other markers | `carbs` / `note` |
//! | CGM reading, below 40, above 400 | `cgm` (40 / 400 flagged `out_of_range`) |
//! | sensor packet `init`, error `end`, status, weak signal, sync, calibration request | `sensor_event` |
//!
//! Everything else that has a time (settings changes, clear alarm, daily-total details, CGM
//! calibration factors, …) becomes `unknown` `{op, raw_hex}` — kept, not dropped — except
//! `CalBGForGH` (the CGM page's minute-resolution copy of a fingerstick the history holds to the
//! second; the CareLink importer skips it too) and the CGM page's filler records (`DataEnd`,
//! `19-something`). What has no time (an unabsorbed-insulin record no bolus claimed, a CGM
//! reading without an anchor) is listed in [`Conversion::skipped`] with the reason.

use super::glucose::{GlucoseData, GlucoseEvent, SensorCalKind, SensorStatusKind, SensorSyncKind};
use super::history::{BgUnits, BolusType, EventData, PumpEvent, TempBasalRate, WizardEstimate};
use super::{PumpModel, hex};
use crate::import::DeviceInfo;
use chrono::{Duration, NaiveDateTime};
use therapy::record::{BolusWizard, OutOfRange};
use therapy::units::MG_DL_PER_MMOL_L;
use therapy::{BgSource, BolusSubtype, DeviceTime, PrimeKind, Record, RecordKind};

/// Dual-wave parts further apart than this are not paired (as the CareLink importer).
const PAIR_WINDOW_S: i64 = 15 * 60;
/// A Bolus Wizard estimate belongs to a bolus delivered at most this long after it.
const WIZARD_WINDOW_S: i64 = 5 * 60;
/// Tolerance for a bolus timestamped a few seconds before its estimate.
const WIZARD_SLACK_S: i64 = 5;

/// The records made from a list of events.
#[derive(Clone, Debug, PartialEq)]
pub struct Conversion {
    /// Medtronic and the pump model (the serial is not in the pages).
    pub device: DeviceInfo,
    pub records: Vec<Record>,
    pub skipped: Vec<Skipped>,
}

/// An event that made no record, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Byte offset of the record in its page.
    pub offset: usize,
    pub op: u8,
    pub reason: String,
}

fn device(model: PumpModel) -> DeviceInfo {
    DeviceInfo::new("Medtronic", Some(model.display_name()), None)
}

fn rec(t: NaiveDateTime, kind: RecordKind) -> Record {
    Record::new(DeviceTime(t), kind)
}

fn secs(a: NaiveDateTime, b: NaiveDateTime) -> i64 {
    (a - b).num_seconds()
}

/// Records from pump-history events in time order (one page's events, or several pages'
/// concatenated oldest page first: `pages.iter().rev().flat_map(|p| &p.events)` for pages
/// read newest first).
pub fn history_records<'a>(events: impl IntoIterator<Item = &'a PumpEvent>, model: PumpModel) -> Conversion {
    let events: Vec<&PumpEvent> = events.into_iter().collect();
    let n = events.len();
    let ts = |i: usize| events[i].timestamp;
    let bolus = |i: usize| match &events[i].data {
        EventData::Bolus(b) => Some(b),
        _ => None,
    };
    // (time, index) of the events of one kind, sorted by time, for window look-ups.
    let sorted = |keep: &dyn Fn(&PumpEvent) -> bool| -> Vec<(NaiveDateTime, usize)> {
        let mut v: Vec<_> = (0..n).filter(|&i| keep(events[i])).filter_map(|i| ts(i).map(|t| (t, i))).collect();
        v.sort_unstable();
        v
    };
    let window = |v: &[(NaiveDateTime, usize)], from: NaiveDateTime, to: NaiveDateTime| -> std::ops::Range<usize> {
        v.partition_point(|p| p.0 < from)..v.partition_point(|p| p.0 <= to)
    };
    let is_type = |e: &PumpEvent, ty: BolusType| matches!(&e.data, EventData::Bolus(b) if b.bolus_type == ty);

    // Dual-wave pairing: each normal part takes the nearest free square part within the window.
    let squares = sorted(&|e| is_type(e, BolusType::DualSquare));
    let mut partner: Vec<Option<usize>> = vec![None; n];
    let mut paired_square = vec![false; n];
    for i in 0..n {
        let Some(t) = ts(i).filter(|_| is_type(events[i], BolusType::DualNormal)) else {
            continue;
        };
        let pair = Duration::seconds(PAIR_WINDOW_S);
        let best = squares[window(&squares, t - pair, t + pair)]
            .iter()
            .filter(|(_, j)| !paired_square[*j])
            .map(|&(tj, j)| (secs(tj, t).abs(), j))
            .min();
        if let Some((_, j)) = best {
            partner[i] = Some(j);
            paired_square[j] = true;
        }
    }

    // Bolus Wizard estimates a bolus claimed: the latest one in the window before it. An
    // estimate whose window runs past the last event given is kept too: its bolus may be in
    // the next page, not given (pages decoded one at a time, or an upload that stopped there).
    let wizards = sorted(&|e| matches!(e.data, EventData::BolusWizard(_)));
    let last_time = (0..n).filter_map(ts).max();
    let mut wizard_kept = vec![false; n];
    for &(t, j) in &wizards {
        if last_time.is_some_and(|last| last < t + Duration::seconds(WIZARD_WINDOW_S)) {
            wizard_kept[j] = true;
        }
    }
    for i in 0..n {
        let (Some(_), Some(tb)) = (bolus(i), ts(i)) else {
            continue;
        };
        let r = window(&wizards, tb - Duration::seconds(WIZARD_WINDOW_S), tb + Duration::seconds(WIZARD_SLACK_S));
        if let Some(&(_, j)) = wizards[r].last() {
            wizard_kept[j] = true;
        }
    }

    // Temp basal ↔ its duration record (written next to it, same second).
    let mut duration_of: Vec<Option<usize>> = vec![None; n];
    let mut duration_used = vec![false; n];
    for i in 0..n {
        if !matches!(events[i].data, EventData::TempBasal { .. }) || ts(i).is_none() {
            continue;
        }
        let near = [i + 1, i.wrapping_sub(1)];
        if let Some(&j) = near.iter().find(|&&j| {
            j < n
                && !duration_used[j]
                && matches!(events[j].data, EventData::TempBasalDuration { .. })
                && ts(j) == ts(i)
        }) {
            duration_of[i] = Some(j);
            duration_used[j] = true;
        }
    }

    let mut out = Conversion { device: device(model), records: Vec::new(), skipped: Vec::new() };
    // Fingersticks waiting for their twin: (time, mg/dL, source, index in out.records).
    let mut bgs: Vec<(NaiveDateTime, u16, BgSource, usize)> = Vec::new();
    let mut i = 0;
    while i < n {
        let e = events[i];
        let idx = i;
        i += 1;
        let Some(t) = e.timestamp else {
            let reason = match e.data {
                EventData::UnabsorbedInsulin(_) => "unabsorbed-insulin record with no bolus after it on the page",
                EventData::ResultDailyTotal { .. } | EventData::DailyTotalDetail { .. } => {
                    "the daily total's date bytes are not a calendar date"
                }
                _ => "the record's timestamp bytes are not a calendar date",
            };
            out.skipped.push(Skipped { offset: e.offset, op: e.op, reason: reason.into() });
            continue;
        };
        let unknown = || RecordKind::Unknown { op: u16::from(e.op), raw_hex: hex(&e.raw) };
        let kind = match &e.data {
            EventData::Bolus(b) => {
                let scaled = |d: u32, p: f64, v: f64| -> u32 {
                    if p > 0.0 && v < p { (f64::from(d) * v / p).round() as u32 } else { d }
                };
                match b.bolus_type {
                    BolusType::Normal => {
                        RecordKind::bolus(BolusSubtype::Normal, Some(b.programmed_u), Some(b.delivered_u), None)
                    }
                    BolusType::Square | BolusType::DualSquare => {
                        if paired_square[idx] {
                            continue;
                        }
                        let d = scaled(b.duration_min, b.programmed_u, b.delivered_u);
                        RecordKind::Bolus {
                            subtype: BolusSubtype::Square,
                            programmed_u: Some(b.programmed_u),
                            delivered_u: Some(b.delivered_u),
                            duration_min: Some(d),
                            normal_programmed_u: Some(0.0),
                            normal_delivered_u: Some(0.0),
                            extended_programmed_u: Some(b.programmed_u),
                            extended_delivered_u: Some(b.delivered_u),
                            extended_duration_min: Some(d),
                        }
                    }
                    BolusType::DualNormal => {
                        let sq = partner[idx].and_then(bolus);
                        let round = |x: f64| (x * 1000.0).round() / 1000.0;
                        let d = sq.map(|s| scaled(s.duration_min, s.programmed_u, s.delivered_u));
                        RecordKind::Bolus {
                            subtype: BolusSubtype::Dual,
                            programmed_u: Some(round(b.programmed_u + sq.map_or(0.0, |s| s.programmed_u))),
                            delivered_u: Some(round(b.delivered_u + sq.map_or(0.0, |s| s.delivered_u))),
                            duration_min: d,
                            normal_programmed_u: Some(b.programmed_u),
                            normal_delivered_u: Some(b.delivered_u),
                            extended_programmed_u: sq.map(|s| s.programmed_u),
                            extended_delivered_u: sq.map(|s| s.delivered_u),
                            extended_duration_min: d,
                        }
                    }
                }
            }
            EventData::BolusWizard(w) => {
                let logged_meal = w.carbs_g > 0 && w.bolus_estimate_u == 0.0;
                if !(wizard_kept[idx] || logged_meal) {
                    continue;
                }
                let bw = wizard_record(w);
                let carbs = bw.carbs_g.filter(|&g| g > 0.0);
                out.records.push(rec(t, RecordKind::BolusWizard(Box::new(bw))));
                if let Some(g) = carbs {
                    out.records.push(rec(t, RecordKind::Carbs { grams: g }));
                }
                continue;
            }
            EventData::TempBasal { rate, .. } => {
                let duration_min = duration_of[idx].and_then(|j| match events[j].data {
                    EventData::TempBasalDuration { duration_min } => Some(duration_min),
                    _ => None,
                });
                match *rate {
                    TempBasalRate::Absolute(r) => {
                        RecordKind::TempBasal { rate_u_h: Some(r), percent: None, duration_min }
                    }
                    TempBasalRate::Percent(p) => {
                        RecordKind::TempBasal { rate_u_h: None, percent: Some(u32::from(p)), duration_min }
                    }
                    TempBasalRate::Unknown(_) => unknown(),
                }
            }
            EventData::TempBasalDuration { .. } if duration_used[idx] => continue,
            EventData::BasalProfileStart { rate_u_h, offset_min, pattern, .. } => RecordKind::BasalProfileStart {
                rate_u_h: *rate_u_h,
                profile: match pattern {
                    0 => Some("standard".to_string()),
                    1 => Some("pattern a".to_string()),
                    2 => Some("pattern b".to_string()),
                    _ => None,
                },
                offset_min: Some(*offset_min),
            },
            EventData::Suspend => RecordKind::Suspend,
            EventData::Resume { .. } => RecordKind::Resume,
            EventData::Rewind => RecordKind::Rewind,
            EventData::Prime { amount_u, programmed_u } => RecordKind::Prime {
                units: *amount_u,
                kind: Some(if *programmed_u == 0.0 { PrimeKind::Manual } else { PrimeKind::Fixed }),
            },
            EventData::CalBgForPh { bg_mg_dl } | EventData::BgReceived { bg_mg_dl, .. } => {
                let source = if matches!(e.data, EventData::BgReceived { .. }) {
                    BgSource::LinkedMeter
                } else {
                    BgSource::Calibration
                };
                if let Some(p) = bgs.iter_mut().find(|p| p.0 == t && p.1 == *bg_mg_dl) {
                    if source == BgSource::LinkedMeter && p.2 != BgSource::LinkedMeter {
                        p.2 = source;
                        if let Some(RecordKind::Bg { source: s, .. }) = out.records.get_mut(p.3).map(|r| &mut r.kind) {
                            *s = source;
                        }
                    }
                    continue;
                }
                bgs.retain(|p| secs(t, p.0).abs() <= 60);
                bgs.push((t, *bg_mg_dl, source, out.records.len()));
                RecordKind::Bg { value_mg_dl: *bg_mg_dl, source }
            }
            EventData::PumpAlarm { code } => RecordKind::Alarm {
                code: Some(u32::from(*code)),
                description: pump_alarm_name(*code).map(str::to_string),
            },
            EventData::SensorAlarm { code, glucose_mg_dl } => RecordKind::Alarm {
                code: Some(u32::from(*code)),
                description: Some(match (sensor_alarm_name(*code), glucose_mg_dl) {
                    (Some(n), Some(g)) => format!("{n} ({g} mg/dL)"),
                    (Some(n), None) => n.to_string(),
                    (None, _) => format!("Sensor alarm {code}"),
                }),
            },
            EventData::LowReservoir { amount_u } => {
                RecordKind::Alarm { code: None, description: Some(format!("Low reservoir ({amount_u} U left)")) }
            }
            EventData::LowBattery => RecordKind::Alarm { code: None, description: Some("Low battery".into()) },
            EventData::ResultDailyTotal { date: Some(d), total_u } => {
                out.records.push(Record::new(
                    DeviceTime(d.and_time(chrono::NaiveTime::MIN)),
                    RecordKind::DailyTotal { date: d.to_string(), units: *total_u },
                ));
                continue;
            }
            EventData::ChangeTime => match events.get(idx + 1) {
                Some(next) if next.data == EventData::NewTime && next.timestamp.is_some() => {
                    let to = next.timestamp.unwrap_or(t);
                    i += 1;
                    RecordKind::TimeChange { from: DeviceTime(t), to: DeviceTime(to) }
                }
                _ => unknown(),
            },
            EventData::MealMarker { carbs, exchanges: false } => RecordKind::Carbs { grams: *carbs },
            EventData::MealMarker { carbs, exchanges: true } => {
                RecordKind::Note { text: format!("Meal: {carbs} exchanges") }
            }
            EventData::InsulinMarker { amount_u } => RecordKind::Note { text: format!("Insulin: {amount_u} U") },
            EventData::ExerciseMarker => RecordKind::Note { text: "Exercise".into() },
            EventData::OtherMarker => RecordKind::Note { text: "Marker".into() },
            _ => unknown(),
        };
        out.records.push(rec(t, kind));
    }
    out
}

fn wizard_record(w: &WizardEstimate) -> BolusWizard {
    // BG, targets and sensitivity in the wizard's unit → mg/dL; `None` when the unit is unknown.
    let mg = |v: u16| -> Option<f64> {
        match w.units {
            BgUnits::MgDl => Some(f64::from(v)),
            BgUnits::MmolL => Some((f64::from(v) / 10.0 * MG_DL_PER_MMOL_L).round()),
            BgUnits::Unknown(_) => None,
        }
    };
    let mg16 = |v: u16| mg(v).filter(|&x| x > 0.0).map(|x| x as u16);
    BolusWizard {
        // What was entered, 0 g included (a correction-only estimate).
        carbs_g: Some(f64::from(w.carbs_g)),
        bg_mg_dl: mg16(w.bg),
        carb_ratio_g_per_u: (w.carb_ratio_g_per_u > 0.0).then_some(w.carb_ratio_g_per_u),
        sensitivity_mg_dl_per_u: mg(w.sensitivity).filter(|&x| x > 0.0),
        target_low_mg_dl: mg16(w.target_low),
        target_high_mg_dl: mg16(w.target_high),
        food_estimate_u: Some(w.food_estimate_u),
        correction_estimate_u: Some(w.correction_estimate_u),
        active_insulin_u: Some(w.unabsorbed_insulin_u),
        total_estimate_u: Some(w.bolus_estimate_u),
    }
}

/// Pump alarm names (MinimedKit `PumpAlarmType`, Tidepool `ALARM_TYPES`).
pub fn pump_alarm_name(code: u8) -> Option<&'static str> {
    Some(match code {
        3 => "Battery out limit exceeded",
        4 => "No delivery",
        5 => "Battery depleted",
        6 => "Auto off",
        16 => "Device reset",
        17 | 21 => "Device reset (battery issue, clock lost)",
        59 => "Button error",
        61 => "Reprogram error",
        62 => "Empty reservoir",
        _ => return None,
    })
}

/// Sensor alarm names (decocare `AlarmSensor.alarm_types`).
pub fn sensor_alarm_name(code: u8) -> Option<&'static str> {
    Some(match code {
        101 => "High Glucose",
        102 => "Low Glucose",
        104 => "Meter BG Now",
        105 => "Cal Reminder",
        106 => "Calibration Error",
        107 => "Sensor End",
        112 => "Weak Signal",
        113 => "Lost Sensor",
        115 => "Low Glucose Predicted",
        _ => return None,
    })
}

/// Records from CGM-page events (oldest first, as [`super::glucose::decode_glucose`] returns them).
pub fn glucose_records(events: &[GlucoseEvent], model: PumpModel) -> Conversion {
    let mut out = Conversion { device: device(model), records: Vec::new(), skipped: Vec::new() };
    for e in events {
        let sensor = |k: &str| Some(RecordKind::SensorEvent { kind: k.to_string() });
        let kind = match &e.data {
            GlucoseData::SensorGlucose { mg_dl } => {
                Some(RecordKind::Cgm { value_mg_dl: *mg_dl, trend: None, out_of_range: None })
            }
            GlucoseData::SensorDataLow => {
                Some(RecordKind::Cgm { value_mg_dl: 40, trend: None, out_of_range: Some(OutOfRange::Below) })
            }
            GlucoseData::SensorDataHigh => {
                Some(RecordKind::Cgm { value_mg_dl: 400, trend: None, out_of_range: Some(OutOfRange::Above) })
            }
            GlucoseData::SensorPacket { init: true, .. } => sensor("sensor_start"),
            GlucoseData::SensorPacket { code, .. } => sensor(&format!("sensor_packet_{code}")),
            GlucoseData::SensorError { end: true, .. } => sensor("sensor_end"),
            GlucoseData::SensorError { .. } => sensor("sensor_error"),
            GlucoseData::SensorWeakSignal => sensor("weak_signal"),
            GlucoseData::SensorStatus(k) => sensor(match k {
                SensorStatusKind::Lost => "signal_lost",
                SensorStatusKind::On => "status_on",
                SensorStatusKind::Off => "status_off",
                SensorStatusKind::Unknown => "status",
            }),
            GlucoseData::SensorSync(k) => sensor(match k {
                SensorSyncKind::New => "sync_new",
                SensorSyncKind::Old => "sync_old",
                SensorSyncKind::Find => "sync_find",
                SensorSyncKind::Unknown => "sync",
            }),
            GlucoseData::SensorCal(k) => sensor(match k {
                SensorCalKind::MeterBgNow => "calibration_request",
                SensorCalKind::Waiting => "calibration_waiting",
                SensorCalKind::CalError => "calibration_error",
                SensorCalKind::Other(_) => "calibration",
            }),
            GlucoseData::BatteryChange => sensor("battery_change"),
            GlucoseData::CalBgForGh { .. } | GlucoseData::DataEnd | GlucoseData::NineteenSomething => None,
            GlucoseData::SensorTimestamp(_)
            | GlucoseData::DateTimeChange
            | GlucoseData::SensorCalFactor { .. }
            | GlucoseData::TenSomething
            | GlucoseData::Unknown => Some(RecordKind::Unknown { op: u16::from(e.op), raw_hex: hex(&e.raw) }),
        };
        let Some(kind) = kind else { continue };
        match e.timestamp {
            Some(t) => out.records.push(rec(t, kind)),
            None => out.skipped.push(Skipped {
                offset: e.offset,
                op: e.op,
                reason: if e.is_relative() {
                    "no sensor timestamp on the page to place this record in time".into()
                } else {
                    "the record's timestamp bytes are not a calendar date".into()
                },
            }),
        }
    }
    out
}
