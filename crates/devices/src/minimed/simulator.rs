//! A simulated CareLink USB stick with a MiniMed pump in radio range: it answers the bytes a
//! driver writes with the bytes the real stick would put on its bulk IN endpoint (see
//! [`super::stick`] for the layouts), serving a [`Scenario`]'s pump: its identity, clock,
//! settings answers, history and CGM pages, and injected [`Fault`]s.
//!
//! Pure and deterministic (no clock, no threads, no files), so that it compiles to wasm and can
//! stand behind a browser shim of WebUSB.
//!
//! The model of the stick, and where it is a guess:
//! - Every stick command and every TransmitPacket is answered at once with one 64-byte USB
//!   packet; ReadRadio replies of more than 64 bytes come as several packets.
//! - The pump answers a TransmitPacket only when the serial is its own and it is awake (after
//!   a PowerControl); its answer waits in the stick's radio buffer, which LinkStatus reports
//!   and ReadRadio downloads in chunks of one or more 64-byte frames (the decocare logs show
//!   chunks of 64, 128 and 192 data bytes; here: 1 frame, then 3, then 2 at a time). A new
//!   TransmitPacket replaces whatever was still buffered.
//! - A pump that refuses a command (busy) answers with a 1-byte error and status 2 in the
//!   ReadRadio header (decocare: `raw[2] == 2 # NAK`); the error code 0x0c
//!   ("bolus in progress" in MinimedKit's `PumpErrorCode`) is a guess at what a busy pump sends.
//! - Basal profile answers are 192 bytes (3 frames, MinimedKit's full 48-entry table); decocare
//!   asks for 2 frames and reads until end of data, which works with either.

use super::encode::{EncodeError, GlucosePages, HistoryEvent, HistoryPages, encode_glucose};
use super::glucose::{GlucoseData, SensorStatusKind};
use super::history::{
    BgUnits as WizardUnits, Bolus, BolusType, EventData, TempBasalRate, WizardEstimate, decode_history_page,
};
use super::pump::{
    self, BasalEntry, Battery, BatteryStatus, BgSchedule, BgUnits, CarbRatios, CarbUnits, GlucosePageInfo, Settings,
    TherapySettings, code,
};
use super::stick::{
    self, InterfaceStats, LinkStatus, PumpSerial, RADIO_OVERHEAD, RADIO_STATUS_NAK, RADIO_STATUS_TIMEOUT,
    TransmitPacket, USB_PACKET, op,
};
use super::{PAGE_DATA_LEN, PumpModel};
use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use std::collections::VecDeque;

/// A fault to inject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The stick NAKs the TransmitPacket of pump command `at_command` the first `times` times.
    Nak { at_command: u8, times: u32 },
    /// The `nth_read` bulk IN transfer (counting from 1) is lost: `read` returns `None` and the
    /// packet is gone.
    LostFrame { nth_read: u32 },
    /// The `nth_frame` ReadRadio chunk (counting from 1) arrives with a wrong CRC8.
    BadCrc { nth_frame: u32 },
    /// After answering this many ReadHistoryData commands the pump answers nothing more.
    PumpStopsAnswering { after_history_pages: u32 },
    /// The first `times` pump commands after the wake-up are refused as busy.
    Busy { times: u32 },
}

/// The pump the simulator serves.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub model: PumpModel,
    /// The 6-digit serial (the radio address).
    pub serial: String,
    pub firmware: String,
    /// The pump's clock now.
    pub clock: NaiveDateTime,
    pub battery: Battery,
    pub reservoir_u: f64,
    pub settings: TherapySettings,
    /// History pages as served, page 0 the newest (1024 bytes each, CRC16 valid).
    pub history_pages: Vec<Vec<u8>>,
    /// The events encoded on each history page (same index), in page order.
    pub history_events: Vec<Vec<HistoryEvent>>,
    /// CGM pages, oldest first; the first is number `glucose_first_page`.
    pub glucose_pages: Vec<Vec<u8>>,
    pub glucose_first_page: u32,
    /// The events on each CGM page (same index), anchors included, as the decoder returns them.
    pub glucose_events: Vec<Vec<(NaiveDateTime, GlucoseData)>>,
    pub faults: Vec<Fault>,
}

/// Pages a Paradigm pump keeps.
pub const HISTORY_PAGES_KEPT: usize = 36;
/// CGM pages the simulator keeps (the driver reads 32 by default).
pub const GLUCOSE_PAGES_KEPT: usize = 32;

/// A small deterministic generator (xorshift64*), so that scenarios need no `rand`.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift((seed ^ 0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo + 1) as u64;
        lo + (self.next_u64() % span) as i64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

fn entry(start_min: u32, rate_u_h: f64) -> BasalEntry {
    BasalEntry { start_min, rate_u_h }
}

/// Rounds to a multiple of `step` (steps are 0.1, 0.05, 0.025: exact in the pump's strokes).
fn quantize(v: f64, step: f64) -> f64 {
    let n = (v / step).round().max(0.0);
    // Express as strokes / per-unit so the value is the one the decoder computes.
    let per = (1.0 / step).round();
    n / per
}

fn value_at(schedule: &[(u32, f64)], minute: u32) -> f64 {
    schedule.iter().rev().find(|e| e.0 <= minute).or(schedule.first()).map_or(0.0, |e| e.1)
}

impl Scenario {
    /// A pump with the default settings of [`Scenario::ninety_days`], no history (one empty
    /// page) and no CGM data.
    pub fn empty(model: PumpModel, serial: &str, clock: NaiveDateTime) -> Scenario {
        let mut s = Scenario {
            model,
            serial: serial.into(),
            firmware: "VER 2.4A1.1".into(),
            clock,
            battery: Battery { status: BatteryStatus::Normal, voltage: 1.42 },
            reservoir_u: 123.4,
            settings: Self::default_settings(model),
            history_pages: Vec::new(),
            history_events: Vec::new(),
            glucose_pages: Vec::new(),
            glucose_first_page: 0,
            glucose_events: Vec::new(),
            faults: Vec::new(),
        };
        s.set_history(&HistoryPages::default());
        s
    }

    /// The settings the generated scenarios use: six basal rates, pattern A programmed,
    /// pattern B not; grams and mg/dL.
    pub fn default_settings(model: PumpModel) -> TherapySettings {
        TherapySettings {
            basal_standard: vec![
                entry(0, 0.8),
                entry(180, 0.95),
                entry(420, 1.1),
                entry(660, 0.9),
                entry(960, 1.0),
                entry(1260, 0.85),
            ],
            basal_a: vec![entry(0, 0.6), entry(480, 0.7), entry(1200, 0.6)],
            basal_b: Vec::new(),
            settings: Settings {
                auto_off_hours: 0,
                max_bolus_u: 15.0,
                max_basal_u_h: 3.5,
                insulin_concentration: 0,
                selected_pattern: 0,
                rf_enabled: true,
                temp_basal_percent: false,
                insulin_action_hours: 4,
            },
            carb_ratios: CarbRatios {
                units: CarbUnits::Grams,
                entries: vec![(0, if model.larger() { 12.5 } else { 12.0 }), (660, 10.0), (1020, 11.0)],
            },
            sensitivities: BgSchedule {
                units: BgUnits::MgDl,
                entries: vec![(0, 45.0), (360, 40.0), (1320, 50.0)],
                high: Vec::new(),
            },
            bg_targets: BgSchedule {
                units: BgUnits::MgDl,
                entries: vec![(0, 100.0), (420, 90.0)],
                high: vec![120.0, 110.0],
            },
        }
    }

    /// Replaces the history with these pages (oldest first, as built); keeps the newest
    /// [`HISTORY_PAGES_KEPT`]. An empty book gives one empty page 0.
    pub fn set_history(&mut self, book: &HistoryPages) {
        let mut book = book.clone();
        book.keep_newest(HISTORY_PAGES_KEPT);
        if book.data.is_empty() {
            book.data.push(Vec::new());
            book.events.push(Vec::new());
        }
        let mut pages = book.pages();
        pages.reverse();
        let mut events = book.events;
        events.reverse();
        self.history_pages = pages;
        self.history_events = events;
    }

    /// Replaces the CGM pages; keeps the newest [`GLUCOSE_PAGES_KEPT`] and numbers them so that
    /// the newest is page `newest_number`.
    pub fn set_glucose(&mut self, pages: &GlucosePages, newest_number: u32) {
        let mut g = pages.clone();
        g.keep_newest(GLUCOSE_PAGES_KEPT);
        let n = u32::try_from(g.pages.len()).unwrap_or(0);
        self.glucose_first_page = (newest_number + 1).saturating_sub(n);
        self.glucose_pages = g.pages;
        self.glucose_events = g.events;
    }

    /// Every history event, oldest first.
    pub fn all_history_events(&self) -> Vec<HistoryEvent> {
        self.history_events.iter().rev().flatten().cloned().collect()
    }

    /// 90 days of plausible therapy ending at `end` (the pump's clock), deterministic for a
    /// seed: CGM every 5 minutes on a daily curve with meal rises and sensor changes every 6
    /// days; 3–5 Bolus Wizard boluses a day (some dual or square wave); 2–4 meter BGs a day
    /// sent to the sensor as calibrations; a few temp basals; occasional suspends; a rewind
    /// and two primes every 3 days; basal profile starts and daily totals. Encoded into pages
    /// with [`super::encode`]; the pump keeps the newest 36 history and 32 CGM pages.
    pub fn ninety_days(model: PumpModel, serial: &str, end: NaiveDateTime, seed: u64) -> Scenario {
        let mut s = Scenario::empty(model, serial, end);
        let mut rng = XorShift::new(seed);
        let first_day = end.date() - Duration::days(89);
        let (events, cgm) = generate(model, &s.settings, first_day, end, &mut rng);
        let mut book = HistoryPages::default();
        for e in events {
            // Every generated value is representable: an error is a generator bug. Release
            // builds leave such an event out (the expectations follow the pages).
            let r = book.push(e, model);
            debug_assert!(r.is_ok(), "scenario generator: {r:?}");
        }
        s.set_history(&book);
        if let Ok(g) = encode_glucose(&cgm) {
            let newest = 100 + rng.range(0, 50) as u32;
            s.set_glucose(&g, newest);
        }
        s
    }
}

struct Meal {
    at: NaiveDateTime,
    carbs: u32,
}

/// Generates the history events and CGM items of the days from `first_day` to `end`.
fn generate(
    model: PumpModel,
    st: &TherapySettings,
    first_day: NaiveDate,
    end: NaiveDateTime,
    rng: &mut XorShift,
) -> (Vec<HistoryEvent>, Vec<(NaiveDateTime, GlucoseData)>) {
    let larger = model.larger();
    let step = if larger { 0.05 } else { 0.1 };
    let ratios = &st.carb_ratios.entries;
    let isf = &st.sensitivities.entries;
    let lows = &st.bg_targets.entries;
    let highs: Vec<(u32, f64)> = lows.iter().zip(&st.bg_targets.high).map(|(l, h)| (l.0, *h)).collect();
    let at =
        |d: NaiveDate, min: i64, sec: i64| d.and_time(NaiveTime::MIN) + Duration::minutes(min) + Duration::seconds(sec);
    let mut events: Vec<HistoryEvent> = Vec::new();
    let mut meals: Vec<Meal> = Vec::new();
    let mut bgs: Vec<(NaiveDateTime, u16)> = Vec::new();
    let mut sensor_changes: Vec<NaiveDateTime> = Vec::new();
    // The glucose curve without meals, for BGs entered before the CGM items exist.
    let base = |t: NaiveDateTime, noise: f64| {
        let h = f64::from(t.hour()) + f64::from(t.minute()) / 60.0;
        115.0 + 25.0 * ((h - 5.0) / 24.0 * std::f64::consts::TAU).sin() + noise
    };
    let days = (end.date() - first_day).num_days() + 1;
    for di in 0..days {
        let d = first_day + Duration::days(di);
        let mut day: Vec<HistoryEvent> = Vec::new();
        let ev = |t: NaiveDateTime, data: EventData| HistoryEvent::new(t, data);
        // Basal profile starts at each scheduled rate change.
        for (i, e) in st.basal_standard.iter().enumerate() {
            day.push(ev(
                at(d, i64::from(e.start_min), 0),
                EventData::BasalProfileStart {
                    rate_u_h: e.rate_u_h,
                    offset_min: e.start_min,
                    index: i as u8,
                    pattern: 0,
                },
            ));
        }
        let mut bolus_total = 0.0;
        // Meals.
        let n_meals = rng.range(3, 5);
        let mut slots = vec![(420, 510), (720, 810), (1110, 1200)];
        let snacks = [(600, 640), (930, 960), (1290, 1320)];
        for s in snacks.iter().take((n_meals - 3) as usize) {
            slots.push(*s);
        }
        for (lo, hi) in slots {
            let m = rng.range(lo, hi);
            let t = at(d, m, rng.range(0, 59));
            let carbs = (rng.range(3, 18) * 5) as u32;
            let minute = (m as u32) % 1440;
            let ratio = value_at(ratios, minute);
            let sens = value_at(isf, minute);
            let (low, high) = (value_at(lows, minute), value_at(&highs, minute));
            // Half the meals start with a fingerstick.
            let bg = if rng.chance(0.5) {
                let v = (base(t, rng.range(-30, 60) as f64)).clamp(45.0, 380.0).round() as u16;
                let tb = t - Duration::minutes(2);
                day.push(ev(tb, EventData::BgReceived { bg_mg_dl: v, meter: "a1b2c3".into() }));
                day.push(ev(tb, EventData::CalBgForPh { bg_mg_dl: v }));
                bgs.push((tb, v));
                v
            } else {
                0
            };
            let food = quantize(f64::from(carbs) / ratio, step);
            let corr = if bg == 0 {
                0.0
            } else if f64::from(bg) > high {
                quantize((f64::from(bg) - high) / sens, step)
            } else if f64::from(bg) < low {
                -quantize((low - f64::from(bg)) / sens, step)
            } else {
                0.0
            };
            let iob = if larger { quantize(rng.unit() * 1.5, 0.025) } else { 0.0 };
            let estimate = quantize((food + corr - iob).max(0.0), step);
            day.push(ev(
                t,
                EventData::BolusWizard(WizardEstimate {
                    units: WizardUnits::MgDl,
                    carbs_g: carbs as u16,
                    bg,
                    carb_ratio_g_per_u: ratio,
                    sensitivity: sens as u16,
                    target_low: low as u16,
                    target_high: high as u16,
                    food_estimate_u: food,
                    correction_estimate_u: corr,
                    unabsorbed_insulin_u: iob,
                    bolus_estimate_u: estimate,
                }),
            ));
            let tb = t + Duration::seconds(rng.range(3, 20));
            let bolus = |bolus_type, amount: f64, duration_min| Bolus {
                bolus_type,
                programmed_u: amount,
                delivered_u: amount,
                duration_min,
                unabsorbed_total_u: larger.then_some(iob),
                remote: larger.then_some(false),
                unabsorbed: None,
            };
            let kind = rng.range(0, 19);
            if estimate > 1.0 && kind == 0 {
                day.push(ev(tb, EventData::Bolus(bolus(BolusType::Square, estimate, 90))));
            } else if estimate > 1.0 && kind <= 2 {
                let now = quantize(estimate * 0.6, step);
                let later = quantize(estimate - now, step);
                let dur = (rng.range(2, 4) * 30) as u32;
                day.push(ev(tb, EventData::Bolus(bolus(BolusType::DualNormal, now, 0))));
                day.push(ev(tb, EventData::Bolus(bolus(BolusType::DualSquare, later, dur))));
            } else {
                day.push(ev(tb, EventData::Bolus(bolus(BolusType::Normal, estimate, 0))));
            }
            bolus_total += estimate;
            meals.push(Meal { at: t, carbs });
        }
        // A bedtime fingerstick, most days.
        if rng.chance(0.8) {
            let t = at(d, rng.range(1305, 1380), rng.range(0, 59));
            let v = base(t, rng.range(-25, 40) as f64).clamp(45.0, 380.0).round() as u16;
            day.push(ev(t, EventData::BgReceived { bg_mg_dl: v, meter: "a1b2c3".into() }));
            day.push(ev(t, EventData::CalBgForPh { bg_mg_dl: v }));
            bgs.push((t, v));
        }
        // Temp basals.
        for (lo, hi) in [(180, 400), (840, 1080)] {
            if rng.chance(0.4) {
                let t = at(d, rng.range(lo, hi), rng.range(0, 59));
                let rate = quantize(0.2 + rng.unit() * 1.8, 0.05);
                day.push(ev(t, EventData::TempBasal { rate: TempBasalRate::Absolute(rate), remote: false }));
                day.push(ev(t, EventData::TempBasalDuration { duration_min: (rng.range(1, 4) * 30) as u32 }));
            }
        }
        // A suspend now and then.
        if rng.chance(0.25) {
            let t = at(d, rng.range(540, 1000), rng.range(0, 59));
            day.push(ev(t, EventData::Suspend));
            day.push(ev(
                t + Duration::minutes(rng.range(10, 60)) + Duration::seconds(rng.range(0, 59)),
                EventData::Resume { remote: false },
            ));
        }
        // Reservoir and set change every three days.
        if di % 3 == 1 {
            let t = at(d, rng.range(1140, 1230), rng.range(0, 59));
            day.push(ev(t, EventData::Suspend));
            day.push(ev(t + Duration::seconds(40), EventData::Rewind));
            day.push(ev(
                t + Duration::minutes(3),
                EventData::Prime { amount_u: quantize(8.0 + rng.unit() * 8.0, 0.1), programmed_u: 0.0 },
            ));
            day.push(ev(t + Duration::minutes(5), EventData::Prime { amount_u: 0.5, programmed_u: 0.5 }));
            day.push(ev(t + Duration::minutes(6), EventData::Resume { remote: false }));
        }
        // Sensor change every six days.
        if di % 6 == 2 {
            sensor_changes.push(at(d, 600, 0));
        }
        // Yesterday's total, written just after midnight.
        if di > 0 {
            let basal: f64 = 22.0 + rng.unit() * 2.0;
            day.push(ev(
                at(d, 0, 30),
                EventData::ResultDailyTotal { date: d.pred_opt(), total_u: quantize(basal + bolus_total, 0.025) },
            ));
        }
        day.sort_by_key(|e| e.timestamp);
        events.extend(day.into_iter().filter(|e| e.timestamp <= end));
    }
    events.sort_by_key(|e| e.timestamp);

    // CGM: a reading every 5 minutes on the daily curve plus meal rises.
    meals.sort_by_key(|m| m.at);
    let mut cgm: Vec<(NaiveDateTime, GlucoseData)> = Vec::new();
    let start = first_day.and_time(NaiveTime::MIN);
    let mut t = start;
    let mut walk = 0.0f64;
    let mut changes = sensor_changes.iter().peekable();
    let mut warmup_until: Option<NaiveDateTime> = None;
    let mut first_meal = 0;
    while t <= end {
        if let Some(&&c) = changes.peek()
            && t >= c
        {
            changes.next();
            cgm.push((t, GlucoseData::SensorStatus(SensorStatusKind::Off)));
            warmup_until = Some(t + Duration::hours(2));
        }
        if let Some(w) = warmup_until {
            if t < w {
                t += Duration::minutes(5);
                continue;
            }
            warmup_until = None;
            cgm.push((t, GlucoseData::SensorStatus(SensorStatusKind::On)));
            t += Duration::minutes(5);
            continue;
        }
        walk = (walk * 0.9 + (rng.unit() - 0.5) * 8.0).clamp(-25.0, 25.0);
        let mut v = base(t, walk);
        // Meals are in time order: skip those more than 6 hours old for good.
        while meals.get(first_meal).is_some_and(|m| t - m.at >= Duration::hours(6)) {
            first_meal += 1;
        }
        for m in meals.iter().skip(first_meal) {
            let x = (t - m.at).num_minutes() as f64;
            if x < 0.0 {
                break;
            }
            v += f64::from(m.carbs) * 1.1 * (x / 60.0) * (1.0 - x / 60.0).exp();
        }
        let mg = ((v.clamp(40.0, 400.0) / 2.0).round() * 2.0) as u16;
        cgm.push((t, GlucoseData::SensorGlucose { mg_dl: mg }));
        t += Duration::minutes(5);
    }
    // Calibrations at the minute of each fingerstick.
    for (tb, v) in bgs {
        if tb > end {
            continue;
        }
        let m = tb.with_second(0).unwrap_or(tb);
        cgm.push((m, GlucoseData::CalBgForGh { bg_mg_dl: v }));
        cgm.push((m, GlucoseData::SensorCalFactor { factor: f64::from(rng.range(4500, 6500) as u32) / 1000.0 }));
    }
    cgm.sort_by_key(|e| e.0);
    (events, cgm)
}

/// What waits in the stick's radio buffer: one ReadRadio chunk.
#[derive(Clone, Debug)]
struct Chunk {
    status: u8,
    eod: bool,
    data: Vec<u8>,
}

/// The simulated stick and pump. See the module documentation.
#[derive(Clone, Debug)]
pub struct Simulator {
    scenario: Scenario,
    serial: Option<PumpSerial>,
    usb: VecDeque<Vec<u8>>,
    radio: VecDeque<Chunk>,
    awake: bool,
    muted: bool,
    reads: u32,
    chunks_read: u32,
    naks: Vec<(u8, u32)>,
    busy_left: u32,
    history_answered: u32,
    log: Vec<(u8, Vec<u8>)>,
    usb_stats: InterfaceStats,
    radio_stats: InterfaceStats,
}

impl Simulator {
    pub fn new(scenario: Scenario) -> Self {
        let serial = scenario.serial.parse::<PumpSerial>().ok();
        let naks = scenario
            .faults
            .iter()
            .filter_map(|f| match f {
                Fault::Nak { at_command, times } => Some((*at_command, *times)),
                _ => None,
            })
            .collect();
        let busy_left = scenario
            .faults
            .iter()
            .map(|f| match f {
                Fault::Busy { times } => *times,
                _ => 0,
            })
            .sum();
        Simulator {
            scenario,
            serial,
            usb: VecDeque::new(),
            radio: VecDeque::new(),
            awake: false,
            muted: false,
            reads: 0,
            chunks_read: 0,
            naks,
            busy_left,
            history_answered: 0,
            log: Vec::new(),
            usb_stats: InterfaceStats::default(),
            radio_stats: InterfaceStats::default(),
        }
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Pump commands the pump received and processed (its serial, awake or being woken), in
    /// order: `(code, params)`.
    pub fn pump_log(&self) -> &[(u8, Vec<u8>)] {
        &self.log
    }

    /// How many times the pump received command `code`.
    pub fn commands_seen(&self, code: u8) -> usize {
        self.log.iter().filter(|(c, _)| *c == code).count()
    }

    /// Moves the pump's clock (for a second upload).
    pub fn set_clock(&mut self, t: NaiveDateTime) {
        self.scenario.clock = t;
    }

    /// Puts the pump back to sleep and forgets the fault counters' progress (a new session).
    pub fn reset_session(&mut self) {
        let sc = self.scenario.clone();
        let log = std::mem::take(&mut self.log);
        *self = Simulator::new(sc);
        self.log = log;
    }

    /// Writes new events after the existing history (as the pump would after a first upload):
    /// onto page 0 while they fit, then onto new pages, the older pages renumbered. Returns how
    /// many pages now hold new events.
    pub fn add_history(&mut self, events: &[HistoryEvent]) -> Result<usize, EncodeError> {
        let model = self.scenario.model;
        // Rebuild the book from the served pages: page data up to the end of its last record.
        let mut book = HistoryPages::default();
        for (i, page) in self.scenario.history_pages.iter().enumerate().rev() {
            let fill = decode_history_page(page, model)
                .ok()
                .map(|p| {
                    let end = p.events.last().map_or(0, |e| e.offset + e.raw.len());
                    match p.stop {
                        // An undecodable tail: keep the page as it is, start a new one.
                        Some(_) => PAGE_DATA_LEN,
                        None => end,
                    }
                })
                .unwrap_or(PAGE_DATA_LEN);
            book.data.push(page[..fill.min(PAGE_DATA_LEN)].to_vec());
            book.events.push(self.scenario.history_events.get(i).cloned().unwrap_or_default());
        }
        let before = book.data.len();
        let last_fill = book.data.last().map_or(0, Vec::len);
        for e in events {
            book.push(e.clone(), model)?;
        }
        let added = book.data.len() - before;
        let touched_last = book.data.get(before - 1).is_some_and(|d| d.len() != last_fill);
        self.scenario.set_history(&book);
        Ok(added + usize::from(touched_last))
    }

    fn queue_usb(&mut self, bytes: &[u8]) {
        for p in bytes.chunks(USB_PACKET) {
            self.usb.push_back(p.to_vec());
        }
        if bytes.is_empty() {
            self.usb.push_back(Vec::new());
        }
    }

    /// One bulk OUT transfer from the host.
    pub fn write(&mut self, bytes: &[u8]) {
        self.usb_stats.received = self.usb_stats.received.wrapping_add(1);
        let Some(&opcode) = bytes.first() else {
            return;
        };
        match opcode {
            op::TRANSMIT_PACKET => self.transmit(bytes),
            op::LINK_STATUS => {
                let ls = match self.radio.front() {
                    Some(c) => LinkStatus {
                        status: LinkStatus::READY,
                        size: u16::try_from(RADIO_OVERHEAD + c.data.len()).unwrap_or(u16::MAX),
                    },
                    None => LinkStatus { status: 0, size: 0 },
                };
                self.queue_usb(&stick::encode_stick_reply(&ls.encode()));
            }
            op::PRODUCT_INFO => {
                // The captured ComLink II (decocare logs): serial 0c1700, 916.5 MHz, v1.16.
                let body = [
                    0x0c, 0x17, 0x00, 0x00, 0x00, 0x00, b'C', b'o', b'm', b'L', b'i', b'n', b'k', b' ', b'I', b'I',
                    0x01, 0x10, 0x02, 0x00, 0x01, 0x01, 0x03,
                ];
                self.queue_usb(&stick::encode_stick_reply(&body));
            }
            op::INTERFACE_STATS => {
                let s = if bytes.get(1) == Some(&1) { self.usb_stats } else { self.radio_stats };
                self.queue_usb(&stick::encode_stick_reply(&s.encode()));
            }
            op::SIGNAL_STRENGTH => self.queue_usb(&stick::encode_stick_reply(&[0xBC])),
            op::READ_RADIO => self.read_radio(bytes),
            _ => self.queue_usb(&stick::encode_stick_nak()),
        }
    }

    fn read_radio(&mut self, bytes: &[u8]) {
        let serial = self.serial.unwrap_or(PumpSerial([0; 3]));
        if bytes.len() < 5 || super::crc::crc8(&bytes[..4]) != bytes[4] {
            self.queue_usb(&stick::encode_stick_nak());
            return;
        }
        let reply = match self.radio.pop_front() {
            Some(c) => {
                self.chunks_read += 1;
                let n = self.chunks_read;
                let corrupt =
                    self.scenario.faults.iter().any(|f| matches!(f, Fault::BadCrc { nth_frame } if *nth_frame == n));
                if corrupt {
                    self.radio_stats.crc_errors = self.radio_stats.crc_errors.wrapping_add(1);
                }
                self.radio_stats.received = self.radio_stats.received.wrapping_add(1);
                stick::encode_radio_reply(serial, c.status, c.eod, &c.data, corrupt)
            }
            None => stick::encode_radio_reply(serial, RADIO_STATUS_TIMEOUT, false, &[], false),
        };
        self.queue_usb(&reply);
    }

    fn transmit(&mut self, bytes: &[u8]) {
        let Ok(tp) = TransmitPacket::decode(bytes) else {
            self.queue_usb(&stick::encode_stick_nak());
            return;
        };
        if let Some(n) = self.naks.iter_mut().find(|n| n.0 == tp.code && n.1 > 0) {
            n.1 -= 1;
            self.queue_usb(&stick::encode_stick_nak());
            return;
        }
        self.queue_usb(&stick::encode_stick_reply(&[]));
        self.radio_stats.transmitted = self.radio_stats.transmitted.wrapping_add(1);
        self.radio.clear();
        if Some(tp.serial) != self.serial || self.muted {
            return;
        }
        if tp.code == code::POWER_CONTROL {
            self.log.push((tp.code, tp.params.clone()));
            self.awake = tp.params.first() == Some(&1);
            self.radio.push_back(Chunk { status: 1, eod: true, data: vec![0] });
            return;
        }
        if !self.awake {
            return;
        }
        self.log.push((tp.code, tp.params.clone()));
        if self.busy_left > 0 {
            self.busy_left -= 1;
            self.radio.push_back(Chunk { status: RADIO_STATUS_NAK, eod: true, data: vec![0x0c] });
            return;
        }
        if tp.code == code::READ_HISTORY_DATA {
            let stop = self.scenario.faults.iter().find_map(|f| match f {
                Fault::PumpStopsAnswering { after_history_pages } => Some(*after_history_pages),
                _ => None,
            });
            if stop.is_some_and(|n| self.history_answered >= n) {
                self.muted = true;
                return;
            }
        }
        let Some(payload) = self.answer(tp.code, &tp.params) else {
            return;
        };
        if tp.code == code::READ_HISTORY_DATA {
            self.history_answered += 1;
        }
        self.queue_answer(&payload);
    }

    /// Splits an answer into ReadRadio chunks: 1 frame, then 3, then 2 at a time.
    fn queue_answer(&mut self, payload: &[u8]) {
        if payload.len() <= 64 {
            self.radio.push_back(Chunk {
                status: if payload.len() >= 64 { 3 } else { 1 },
                eod: true,
                data: payload.to_vec(),
            });
            return;
        }
        let mut rest = payload;
        let mut i = 0;
        while !rest.is_empty() {
            let frames = match i {
                0 => 1,
                1 => 3,
                _ => 2,
            };
            let take = (frames * 64).min(rest.len());
            let (c, r) = rest.split_at(take);
            rest = r;
            self.radio.push_back(Chunk { status: 3, eod: rest.is_empty(), data: c.to_vec() });
            i += 1;
        }
    }

    fn answer(&self, c: u8, params: &[u8]) -> Option<Vec<u8>> {
        let s = &self.scenario;
        let m = s.model;
        let st = &s.settings;
        let generation = m.generation();
        Some(match c {
            code::READ_PUMP_MODEL => pump::encode_model(m),
            code::READ_FIRMWARE_VERSION => pump::encode_firmware(&s.firmware),
            code::READ_RTC => pump::encode_clock(s.clock),
            code::READ_BATTERY_STATUS => pump::encode_battery(s.battery),
            code::READ_REMAINING_INSULIN => pump::encode_reservoir(s.reservoir_u, m),
            code::READ_SETTINGS if generation >= 15 => pump::encode_settings(&st.settings, m),
            code::READ_SETTINGS_512 if generation == 12 => pump::encode_settings(&st.settings, m),
            code::READ_PROFILE_STD => pump::encode_basal_schedule(&st.basal_standard, 192),
            code::READ_PROFILE_A => pump::encode_basal_schedule(&st.basal_a, 192),
            code::READ_PROFILE_B => pump::encode_basal_schedule(&st.basal_b, 192),
            code::READ_CARB_RATIOS => pump::encode_carb_ratios(&st.carb_ratios, m),
            code::READ_INSULIN_SENSITIVITIES => pump::encode_sensitivities(&st.sensitivities),
            code::READ_BG_TARGETS if generation >= 15 => pump::encode_bg_targets(&st.bg_targets),
            code::READ_BG_TARGETS_512 if generation == 12 => pump::encode_bg_targets(&st.bg_targets),
            code::READ_CUR_PAGE_NUMBER => {
                pump::encode_history_page_count(u32::try_from(s.history_pages.len()).unwrap_or(36))
            }
            code::READ_HISTORY_DATA => {
                let page = usize::from(*params.first()?);
                s.history_pages.get(page)?.clone()
            }
            code::READ_CUR_GLUCOSE_PAGE_NUMBER if generation >= 22 => {
                let n = u32::try_from(s.glucose_pages.len()).unwrap_or(0);
                pump::encode_glucose_page_info(GlucosePageInfo {
                    page: (s.glucose_first_page + n).saturating_sub(1),
                    glucose_pages: u8::try_from(n).unwrap_or(u8::MAX),
                    isig_pages: u8::try_from(n).unwrap_or(u8::MAX),
                })
            }
            code::READ_GLUCOSE_HISTORY if generation >= 22 => {
                let p = u32::from_be_bytes(params.get(..4)?.try_into().ok()?);
                let i = p.checked_sub(s.glucose_first_page)?;
                s.glucose_pages.get(usize::try_from(i).ok()?)?.clone()
            }
            _ => return None,
        })
    }

    /// Performs a driver action as a blocking transport backed by this simulator would: a
    /// write goes to the stick, a read takes the next packet (a timeout when none waits), and
    /// waits are skipped (no radio delay). For [`super::driver::run_blocking`].
    pub fn transport(&mut self, action: &super::driver::Action) -> super::driver::Reply {
        use super::driver::{Action, Reply};
        match action {
            Action::Write(b) => {
                self.write(b);
                Reply::Written
            }
            Action::Read => self.read().map_or(Reply::Timeout, Reply::Read),
            _ => Reply::Waited,
        }
    }

    /// One bulk IN transfer to the host: the next USB packet, or `None` when nothing is waiting
    /// (the host's read times out) or when a [`Fault::LostFrame`] swallows it.
    pub fn read(&mut self) -> Option<Vec<u8>> {
        self.reads += 1;
        let n = self.reads;
        let lost = self.scenario.faults.iter().any(|f| matches!(f, Fault::LostFrame { nth_read } if *nth_read == n));
        let p = self.usb.pop_front();
        if lost {
            return None;
        }
        if p.is_some() {
            self.usb_stats.transmitted = self.usb_stats.transmitted.wrapping_add(1);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::super::glucose::decode_glucose_page;
    use super::super::history::decode_history_page;
    use super::*;

    fn model(n: u16) -> PumpModel {
        PumpModel::new(n).unwrap_or_else(|e| panic!("{e}"))
    }

    fn end() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 3, 14).and_then(|d| d.and_hms_opt(9, 26, 53)).unwrap_or_default()
    }

    #[test]
    fn ninety_days_is_deterministic_and_decodes() {
        for m in [522, 523, 754] {
            let a = Scenario::ninety_days(model(m), "123456", end(), 7);
            let b = Scenario::ninety_days(model(m), "123456", end(), 7);
            assert_eq!(a, b);
            assert!(a.history_pages.len() > 15, "{m}: {} pages", a.history_pages.len());
            assert!(a.history_pages.len() <= HISTORY_PAGES_KEPT);
            assert!(a.glucose_pages.len() >= 20, "{m}: {} CGM pages", a.glucose_pages.len());
            for (p, evs) in a.history_pages.iter().zip(&a.history_events) {
                let d = decode_history_page(p, a.model).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(d.stop, None);
                assert_eq!(d.events.len(), evs.len());
            }
            for p in &a.glucose_pages {
                let d = decode_glucose_page(p).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(d.stop, None);
            }
            // A newest page holding the last day's records.
            let newest = a.history_events[0].last().map(|e| e.timestamp);
            assert!(newest.is_some_and(|t| t <= end() && end() - t < Duration::hours(24)));
        }
        let c = Scenario::ninety_days(model(522), "123456", end(), 8);
        assert_ne!(c.history_pages, Scenario::ninety_days(model(522), "123456", end(), 7).history_pages);
    }

    #[test]
    fn the_stick_answers_like_the_captures() {
        let mut sim = Simulator::new(Scenario::empty(model(522), "208850", end()));
        sim.write(&stick::product_info());
        let r = sim.read().unwrap_or_default();
        let info =
            stick::ProductInfo::decode(stick::parse_stick_reply(&r).unwrap_or(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(info.description, "ComLink II");
        assert_eq!(sim.read(), None);
        // Asleep: the model command gets an ack from the stick but nothing from the pump.
        let serial: PumpSerial = "208850".parse().unwrap_or(PumpSerial([0; 3]));
        let model_cmd = TransmitPacket::new(serial, code::READ_PUMP_MODEL, vec![], 64).encode().unwrap_or_default();
        sim.write(&model_cmd);
        assert!(sim.read().is_some());
        sim.write(&stick::link_status());
        let ls = sim.read().unwrap_or_default();
        assert_eq!(LinkStatus::decode(stick::parse_stick_reply(&ls).unwrap_or(&[])).map(|l| l.size), Ok(0));
        // Awake: 78 bytes wait, the model answer.
        let power = TransmitPacket::new(serial, code::POWER_CONTROL, pump::power_control_params(10), 0)
            .encode()
            .unwrap_or_default();
        sim.write(&power);
        let _ = sim.read();
        sim.write(&model_cmd);
        let _ = sim.read();
        sim.write(&stick::link_status());
        let ls = sim.read().unwrap_or_default();
        assert_eq!(LinkStatus::decode(stick::parse_stick_reply(&ls).unwrap_or(&[])).map(|l| l.size), Ok(78));
        sim.write(&stick::read_radio(78));
        let mut raw = sim.read().unwrap_or_default();
        raw.extend(sim.read().unwrap_or_default());
        let r = stick::parse_radio_reply(&raw).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.eod && r.header_crc_ok);
        assert_eq!(pump::decode_model(&r.data).as_deref(), Ok("522"));
        assert_eq!(sim.commands_seen(code::READ_PUMP_MODEL), 1);
    }

    #[test]
    fn add_history_fills_page_zero_then_adds_pages() {
        let m = model(522);
        let mut sim = Simulator::new(Scenario::empty(m, "123456", end()));
        let ev = |i: i64| HistoryEvent::new(end() + Duration::minutes(i), EventData::Rewind);
        assert_eq!(sim.add_history(&[ev(1), ev(2)]), Ok(1));
        assert_eq!(sim.scenario().history_pages.len(), 1);
        let many: Vec<HistoryEvent> = (3..200).map(ev).collect();
        assert_eq!(sim.add_history(&many), Ok(2));
        assert_eq!(sim.scenario().history_pages.len(), 2);
        let all = sim.scenario().all_history_events();
        assert_eq!(all.len(), 199);
        assert_eq!(all.first().map(|e| e.timestamp), Some(end() + Duration::minutes(1)));
    }
}
