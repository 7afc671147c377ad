//! Normalised records written into a simulated MiniMed pump, so that the demo data of
//! `make run` reaches the database the way a patient's does: the [`crate::demo`] data set is
//! encoded into history and CGM pages ([`scenario_from_records`]), served by the
//! [`super::simulator::Simulator`], read by the real [`super::driver::Driver`] and decoded by
//! the server from the pump dump.
//!
//! A pump holds less than the normalised model, so some records change on the way, as they
//! would on a real pump:
//! - CGM readings are stored as even mg/dL (the page holds value ÷ 2); readings flagged below
//!   40 / above 400 become the sensor's "low" / "high" records; trend arrows are not stored.
//! - Insulin amounts are whole pump strokes (0.025 U from the x23 models, 0.1 U before);
//!   square and dual-wave durations and temp basal durations are whole half hours.
//! - A dual-wave bolus is written as its two parts (60 % now, the rest over the duration).
//! - Carbs entered through the Bolus Wizard come back from the wizard record; carbs logged
//!   without a bolus become a meal marker.
//! - An alarm is written as the pump's own record: low reservoir, low battery, or a pump
//!   alarm ("no delivery" for an occlusion).
//! - A new sensor is a "sync new" CGM record; the settings snapshot comes from the pump's
//!   settings answers at the time of the read, not from a history record; notes, time changes
//!   and unknown records are left out (and counted).
//! - Nothing after the pump's clock is written, and a pump keeps 36 history and 32 CGM pages.

use super::PumpModel;
use super::encode::{EncodeError, HistoryEvent, HistoryPages, encode_glucose};
use super::glucose::{GlucoseData, SensorSyncKind};
use super::history::{BgUnits, Bolus, BolusType, EventData, TempBasalRate, WizardEstimate};
use super::pump::{BasalEntry, BgSchedule, CarbRatios, CarbUnits, Settings, TherapySettings};
use super::simulator::Scenario;
use chrono::{NaiveDate, NaiveDateTime, Timelike};
use std::collections::BTreeMap;
use therapy::record::{BgSource, BolusSubtype, OutOfRange, PrimeKind, Record, RecordKind};

/// The pump of the demo data set: a MiniMed 754 (an x23-generation pump with a linked CGM).
pub const DEMO_MODEL: u16 = 754;
/// The demo pump's serial number (its radio address).
pub const DEMO_SERIAL: &str = "754201";
/// The linked meter's id in the demo's BG records.
const DEMO_METER: &str = "c0ffee";

/// What [`scenario_from_records`] built, and what it could not write.
#[derive(Clone, Debug)]
pub struct Encoded {
    pub scenario: Scenario,
    /// Records not written, by record type (and "after the clock").
    pub left_out: BTreeMap<&'static str, usize>,
}

/// The demo patient's pump settings ([`crate::demo`]'s schedules) as the pump answers them.
pub fn demo_settings() -> TherapySettings {
    use crate::demo::schedules as s;
    TherapySettings {
        basal_standard: s::BASAL.iter().map(|&(start_min, rate_u_h)| BasalEntry { start_min, rate_u_h }).collect(),
        basal_a: Vec::new(),
        basal_b: Vec::new(),
        settings: Settings {
            auto_off_hours: 0,
            max_bolus_u: 15.0,
            max_basal_u_h: 3.0,
            insulin_concentration: 0,
            selected_pattern: 0,
            rf_enabled: true,
            temp_basal_percent: true,
            insulin_action_hours: s::ACTIVE_INSULIN_TIME_H as u8,
        },
        carb_ratios: CarbRatios { units: CarbUnits::Grams, entries: s::CARB_RATIOS.to_vec() },
        sensitivities: BgSchedule {
            units: super::pump::BgUnits::MgDl,
            entries: s::SENSITIVITIES.to_vec(),
            high: Vec::new(),
        },
        bg_targets: BgSchedule {
            units: super::pump::BgUnits::MgDl,
            entries: s::BG_TARGETS.iter().map(|&(o, lo, _)| (o, f64::from(lo))).collect(),
            high: s::BG_TARGETS.iter().map(|&(_, _, hi)| f64::from(hi)).collect(),
        },
    }
}

/// The demo data set of `cfg` in the demo pump, whose clock reads `clock`.
pub fn demo_scenario(cfg: &crate::demo::DemoConfig, clock: NaiveDateTime) -> Result<Encoded, EncodeError> {
    let data = crate::demo::generate(cfg);
    let model = PumpModel::new(DEMO_MODEL).map_err(|_| EncodeError::Unsupported("model"))?;
    scenario_from_records(model, DEMO_SERIAL, clock, demo_settings(), &data.records)
}

fn quantize(v: f64, step: f64) -> f64 {
    ((v / step).round() * step * 1e6).round() / 1e6
}

/// A duration in whole half hours (at least one).
fn half_hours(min: u32) -> u32 {
    (min.saturating_add(15) / 30).max(1) * 30
}

fn minute(t: NaiveDateTime) -> NaiveDateTime {
    t.with_second(0).unwrap_or(t).with_nanosecond(0).unwrap_or(t)
}

/// A pump of `model` with this `serial`, `settings` and `records` (sorted by device time)
/// written into its history and CGM pages as the pump would have written them (see the
/// module for what changes on the way).
pub fn scenario_from_records(
    model: PumpModel,
    serial: &str,
    clock: NaiveDateTime,
    settings: TherapySettings,
    records: &[Record],
) -> Result<Encoded, EncodeError> {
    let larger = model.larger();
    let stroke = if larger { 0.025 } else { 0.1 };
    let mut events: Vec<HistoryEvent> = Vec::new();
    let mut cgm: Vec<(NaiveDateTime, GlucoseData)> = Vec::new();
    let mut left_out: BTreeMap<&'static str, usize> = BTreeMap::new();
    // The last wizard: its time, carbs and the insulin on board it counted.
    let mut wizard: Option<(NaiveDateTime, f64, f64)> = None;
    for r in records {
        let t = r.device_time.0;
        if t > clock {
            *left_out.entry("after the clock").or_default() += 1;
            continue;
        }
        let mut push = |data: EventData| events.push(HistoryEvent::new(t, data));
        match &r.kind {
            RecordKind::Cgm { value_mg_dl, out_of_range, .. } => {
                let data = match out_of_range {
                    Some(OutOfRange::Below) => GlucoseData::SensorDataLow,
                    Some(OutOfRange::Above) => GlucoseData::SensorDataHigh,
                    None if *value_mg_dl < 40 => GlucoseData::SensorDataLow,
                    None if *value_mg_dl > 400 => GlucoseData::SensorDataHigh,
                    None => GlucoseData::SensorGlucose { mg_dl: (value_mg_dl.div_ceil(2) * 2).min(400) },
                };
                cgm.push((minute(t), data));
            }
            RecordKind::Bg { value_mg_dl, source } => {
                let bg = (*value_mg_dl).min(1023);
                if matches!(source, BgSource::LinkedMeter) {
                    push(EventData::BgReceived { bg_mg_dl: bg, meter: DEMO_METER.into() });
                }
                push(EventData::CalBgForPh { bg_mg_dl: bg });
                // The pump sends the BG on to the sensor as a calibration.
                if bg <= 0x1FF {
                    cgm.push((minute(t), GlucoseData::CalBgForGh { bg_mg_dl: bg }));
                }
            }
            RecordKind::BolusWizard(w) => {
                let carbs = w.carbs_g.unwrap_or(0.0).round().clamp(0.0, 1023.0);
                let ratio_step = if larger { 0.1 } else { 1.0 };
                let iob = quantize(w.active_insulin_u.unwrap_or(0.0), stroke);
                let byte = |v: Option<f64>| v.unwrap_or(0.0).round().clamp(0.0, 255.0) as u16;
                push(EventData::BolusWizard(WizardEstimate {
                    units: BgUnits::MgDl,
                    carbs_g: carbs as u16,
                    bg: w.bg_mg_dl.unwrap_or(0).min(1023),
                    carb_ratio_g_per_u: quantize(w.carb_ratio_g_per_u.unwrap_or(0.0), ratio_step),
                    sensitivity: byte(w.sensitivity_mg_dl_per_u),
                    target_low: byte(w.target_low_mg_dl.map(f64::from)),
                    target_high: byte(w.target_high_mg_dl.map(f64::from)),
                    food_estimate_u: quantize(w.food_estimate_u.unwrap_or(0.0), stroke),
                    correction_estimate_u: quantize(w.correction_estimate_u.unwrap_or(0.0), stroke),
                    unabsorbed_insulin_u: iob,
                    bolus_estimate_u: quantize(w.total_estimate_u.unwrap_or(0.0), stroke),
                }));
                wizard = Some((t, carbs, iob));
            }
            RecordKind::Carbs { grams } => {
                // The wizard just before, at the same second, holds these carbs already.
                let from_wizard = wizard.is_some_and(|(wt, g, _)| wt == t && (g - grams.round()).abs() < 0.5);
                if !from_wizard {
                    push(EventData::MealMarker { carbs: grams.round().clamp(0.0, 511.0), exchanges: false });
                }
            }
            RecordKind::Bolus { subtype, programmed_u, delivered_u, duration_min, normal_programmed_u, .. } => {
                let programmed = quantize(programmed_u.or(*delivered_u).unwrap_or(0.0), stroke);
                let delivered = quantize(delivered_u.unwrap_or(programmed), stroke);
                // Boluses within a minute of a wizard count its insulin on board.
                let iob = wizard.filter(|(wt, _, _)| (t - *wt).num_seconds().abs() <= 90).map_or(0.0, |w| w.2);
                let bolus = |bolus_type, programmed_u, delivered_u, duration_min| Bolus {
                    bolus_type,
                    programmed_u,
                    delivered_u,
                    duration_min,
                    unabsorbed_total_u: larger.then_some(iob),
                    remote: larger.then_some(false),
                    unabsorbed: None,
                };
                let dur = half_hours(duration_min.unwrap_or(30));
                match subtype {
                    BolusSubtype::Normal => {
                        push(EventData::Bolus(bolus(BolusType::Normal, programmed, delivered, 0)));
                    }
                    BolusSubtype::Square => {
                        push(EventData::Bolus(bolus(BolusType::Square, programmed, delivered, dur)));
                    }
                    BolusSubtype::Dual => {
                        // The part now as the record gives it, else 60 %.
                        let now = quantize(normal_programmed_u.unwrap_or(programmed * 0.6), stroke).min(programmed);
                        let later = quantize(programmed - now, stroke);
                        let d_now = now.min(delivered);
                        let d_later = quantize((delivered - d_now).max(0.0), stroke);
                        if later <= 0.0 {
                            push(EventData::Bolus(bolus(BolusType::Normal, programmed, delivered, 0)));
                        } else {
                            push(EventData::Bolus(bolus(BolusType::DualNormal, now, d_now, 0)));
                            push(EventData::Bolus(bolus(BolusType::DualSquare, later, d_later, dur)));
                        }
                    }
                }
            }
            RecordKind::BasalProfileStart { rate_u_h, offset_min, .. } => {
                let offset = offset_min.unwrap_or((t.hour() * 60 + t.minute()) / 30 * 30);
                let index = settings.basal_standard.iter().position(|e| e.start_min == offset).unwrap_or(0);
                push(EventData::BasalProfileStart {
                    rate_u_h: quantize(*rate_u_h, 0.025),
                    offset_min: offset / 30 * 30,
                    index: index as u8,
                    pattern: 0,
                });
            }
            RecordKind::TempBasal { rate_u_h, percent, duration_min } => {
                let rate = match (percent, rate_u_h) {
                    (Some(p), _) => TempBasalRate::Percent((*p).min(200) as u8),
                    (None, Some(r)) => TempBasalRate::Absolute(quantize(*r, 0.025)),
                    (None, None) => TempBasalRate::Percent(100),
                };
                push(EventData::TempBasal { rate, remote: false });
                push(EventData::TempBasalDuration { duration_min: half_hours(duration_min.unwrap_or(30)) });
            }
            RecordKind::Suspend => push(EventData::Suspend),
            RecordKind::Resume => push(EventData::Resume { remote: false }),
            RecordKind::Rewind => push(EventData::Rewind),
            RecordKind::Prime { units, kind } => {
                let amount = quantize(*units, 0.1).min(25.5);
                push(EventData::Prime {
                    amount_u: amount,
                    programmed_u: if *kind == Some(PrimeKind::Fixed) { amount } else { 0.0 },
                });
            }
            RecordKind::Alarm { code, description } => {
                let d = description.as_deref().unwrap_or("").to_ascii_lowercase();
                if d.contains("reservoir") {
                    push(EventData::LowReservoir { amount_u: 20.0 });
                } else if d.contains("battery") {
                    push(EventData::LowBattery);
                } else if d.contains("occlusion") {
                    push(EventData::PumpAlarm { code: 4 });
                } else if let Some(c) = code.and_then(|c| u8::try_from(c).ok()) {
                    push(EventData::PumpAlarm { code: c });
                } else {
                    *left_out.entry("alarm").or_default() += 1;
                }
            }
            RecordKind::SensorEvent { kind } if kind == "sensor_start" => {
                cgm.push((minute(t), GlucoseData::SensorSync(SensorSyncKind::New)));
            }
            RecordKind::DailyTotal { date, units } => match NaiveDate::parse_from_str(date, "%Y-%m-%d") {
                Ok(d) => push(EventData::ResultDailyTotal { date: Some(d), total_u: quantize(*units, 0.025) }),
                Err(_) => *left_out.entry("daily_total").or_default() += 1,
            },
            other => *left_out.entry(other.type_name()).or_default() += 1,
        }
    }
    let mut book = HistoryPages::default();
    for e in events {
        book.push(e, model)?;
    }
    let mut scenario = Scenario::empty(model, serial, clock);
    scenario.settings = settings;
    scenario.set_history(&book);
    let pages = encode_glucose(&cgm)?;
    scenario.set_glucose(&pages, 140);
    Ok(Encoded { scenario, left_out })
}

/// Reads the demo pump with the real driver over the simulated stick (radio waits skipped),
/// as the browser does, at `utc`: the instant the pump's clock reads `clock`. The dump is
/// what the browser would post.
pub fn read_demo_pump(
    cfg: &crate::demo::DemoConfig,
    clock: NaiveDateTime,
    utc: chrono::DateTime<chrono::Utc>,
) -> Result<super::dump::PumpDump, String> {
    use super::driver::{Driver, DriverConfig, run_blocking_with_clock};
    let encoded = demo_scenario(cfg, clock).map_err(|e| format!("demo pump: {e}"))?;
    let mut sim = super::simulator::Simulator::new(encoded.scenario);
    let mut driver = Driver::new(DriverConfig::new(DEMO_SERIAL)).map_err(|e| e.to_string())?;
    run_blocking_with_clock(&mut driver, |a| sim.transport(a), || Some(utc))
        .map_err(|e| format!("reading the demo pump: {e}"))
}
