//! Deterministic demo data: a simulated person with type 1 diabetes on a
//! MiniMed 7xx-like pump with a Guardian-like CGM.
//!
//! [`generate`] turns a [`DemoConfig`] (seed, number of days, last day) into
//! normalised [`therapy::Record`]s, sorted by `device_time` (the pump's own
//! wall clock; `time` is left `None`, as for a real upload before the zone and
//! clock offset are known).
//!
//! The output is a pure function of the configuration: the random numbers
//! come from a xoshiro256** generator seeded by SplitMix64, written out below,
//! and the model uses only IEEE-754 `+ − × ÷` and rounding (no `exp`, `ln`,
//! `sin`, whose last bit may differ between platforms' maths libraries). So the
//! same seed gives byte-identical records on every platform and every version
//! of every dependency, for ever; a change to this file that changes the output
//! is a change of the demo data set and must say so.
//!
//! # The model
//! One-minute steps. Insulin (basal as delivered, boluses, the square part of
//! dual boluses) passes through two first-order compartments (peak action
//! ≈ 70 min, tail ≈ 5 h); each meal through two gut compartments of its own,
//! with a time constant drawn for fast (hypo treatment), normal or slow (fatty
//! dinner) carbohydrate. Glucose moves by the carbohydrate appearance × (ISF /
//! carb ratio) − insulin action × ISF, plus the endogenous need for insulin
//! (the basal schedule one hour ahead, scaled by a day-to-day resistance
//! factor, plus a dawn phenomenon), exercise, a slow random walk, a weak pull
//! towards 146 mg/dL and a blunted counter-regulation below 55. The
//! interstitial glucose seen by the sensor lags blood glucose by about 8
//! minutes; the sensor adds a per-sensor gain and offset and autocorrelated
//! noise (SD ≈ 6 mg/dL). Readings are whole mg/dL, clamped to the Guardian's
//! 40–400 (flagged `out_of_range` when clamped), on the sensor-interval grid,
//! with a trend arrow from the 15-minute rate of change.
//!
//! The patient eats three meals a day (± 45 min, later at weekends) and
//! sometimes a snack, mostly bolusing through the Bolus Wizard with a
//! pre-bolus, sometimes late (≈ 8 %) or not at all (≈ 6 %); miscounts
//! carbohydrate by ≈ 20 %; checks a fingerstick 2–4 times a day (plus some
//! before corrections and after lows); treats lows with fast carbs, after a
//! delay (longer at night, and the alarm is sometimes snoozed); corrects highs
//! over 250 mg/dL when awake, half the times it notices; exercises a few times a
//! week with a temporary basal of 50–70 %. The pump suspends before a low at
//! most once in five days (30–120 min); the infusion set is changed every
//! three days (low reservoir alarm, rewind, tubing prime, cannula prime) and
//! occasionally after an occlusion at night; the sensor is changed every seven
//! days (two-hour warm-up without readings), and the signal drops out now and
//! then (20 min – 3 h).
//!
//! The simulation starts a day before the window (so insulin on board and
//! glucose are settled at its start) and keeps only records inside it:
//! `[start 00:00, end + 1 day 00:00)`. A `daily_total` is written at each
//! midnight for the day that ended, so the last day has none yet (as in a real
//! upload that evening). The `settings` snapshot is the first record.
//!
//! With seed 42 and 90 days the CGM statistics are those of a typical adult on
//! a pump with a CGM: 25 289 readings (97.6 % of the slots), time in range
//! 66.9 %, below 70 2.9 %, below 54 0.70 %, mean 155 mg/dL, CV 35.3 % (the
//! tests pin the ranges, for this and other seeds).

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Weekday};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use therapy::DeviceTime;
use therapy::record::{BgSource, BolusSubtype, BolusWizard, OutOfRange, PrimeKind, Record, RecordKind, Trend};

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoConfig {
    /// Same seed and configuration → byte-identical records.
    pub seed: u64,
    /// Number of whole days, ending with `end`.
    pub days: u32,
    /// The last day generated, inclusive (pump-local calendar date).
    pub end: NaiveDate,
    /// Minutes between CGM readings (5 for Guardian / Dexcom). 0 is taken as 5.
    pub sensor_interval_min: u32,
}

impl DemoConfig {
    /// The seed used by the shipped demo account.
    pub const DEFAULT_SEED: u64 = 42;
    /// The default length, in days.
    pub const DEFAULT_DAYS: u32 = 90;

    /// `days` whole days ending with `end` (inclusive), CGM every 5 minutes.
    pub fn new(seed: u64, days: u32, end: NaiveDate) -> Self {
        DemoConfig { seed, days, end, sensor_interval_min: 5 }
    }

    /// The first day generated.
    pub fn start(&self) -> NaiveDate {
        let back = u64::from(self.days.saturating_sub(1));
        self.end.checked_sub_days(chrono::Days::new(back)).unwrap_or(self.end)
    }
}

/// A simulated device's identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DemoDevice {
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
}

/// The generated data set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DemoData {
    /// The insulin pump; every record comes from its history (the CGM readings
    /// included, as on a MiniMed with a linked sensor).
    pub pump: DemoDevice,
    /// The CGM sensor/transmitter linked to the pump.
    pub cgm: DemoDevice,
    /// All records, sorted by `device_time` (stable: records of the same
    /// second keep their causal order, e.g. wizard → carbs → bolus).
    pub records: Vec<Record>,
}

// ---------------------------------------------------------------------------
// Pump settings (the "settings" record and the Bolus Wizard use these).

/// Basal profile "standard": (offset from midnight in minutes, U/h).
const BASAL: [(u32, f64); 5] = [(0, 0.80), (180, 1.00), (480, 0.85), (840, 0.80), (1200, 0.90)];
/// Carb ratios: (offset, g/U).
const CARB_RATIOS: [(u32, f64); 3] = [(0, 10.0), (660, 12.0), (1020, 11.0)];
/// Insulin sensitivities: (offset, mg/dL per U).
const SENSITIVITIES: [(u32, f64); 3] = [(0, 50.0), (360, 40.0), (660, 45.0)];
/// BG targets: (offset, low, high) in mg/dL.
const BG_TARGETS: [(u32, u16, u16); 1] = [(0, 100, 120)];
/// Active insulin time used by the Bolus Wizard, hours.
const ACTIVE_INSULIN_TIME_H: u32 = 3;
const PROFILE: &str = "standard";

/// The demo pump's programmed schedules, as the `settings` record states them (the demo
/// pump in [`crate::minimed::demo_pump`] answers them).
pub mod schedules {
    /// Basal profile "standard": (minutes after midnight, U/h).
    pub const BASAL: [(u32, f64); 5] = super::BASAL;
    /// Carb ratios: (minutes after midnight, g/U).
    pub const CARB_RATIOS: [(u32, f64); 3] = super::CARB_RATIOS;
    /// Insulin sensitivities: (minutes after midnight, mg/dL per U).
    pub const SENSITIVITIES: [(u32, f64); 3] = super::SENSITIVITIES;
    /// BG targets: (minutes after midnight, low, high), mg/dL.
    pub const BG_TARGETS: [(u32, u16, u16); 1] = super::BG_TARGETS;
    /// Active insulin time of the Bolus Wizard, hours.
    pub const ACTIVE_INSULIN_TIME_H: u32 = super::ACTIVE_INSULIN_TIME_H;
}

// ---------------------------------------------------------------------------
// Model constants.

const DAY: u32 = 1440;
/// Insulin compartment time constant (min): peak action ≈ 70 min.
const TM_INSULIN: f64 = 70.0;
/// Gut time constants (min) for fast (hypo treatment), normal and slow carbs.
/// Each meal draws its own time constant from its class's range.
const TM_CARBS: [(f64, f64); 3] = [(12.0, 18.0), (28.0, 50.0), (60.0, 90.0)];
const FAST: usize = 0;
const NORMAL: usize = 1;
const SLOW: usize = 2;
/// The patient's true mean insulin sensitivity (mg/dL per U).
const ISF_TRUE: f64 = 46.0;
/// Weak pull towards this level (mg/dL) with this time constant (min).
const SET_POINT: f64 = 146.0;
const TAU_PULL: f64 = 600.0;
/// Random walk on the glucose rate: OU process, time constant (min) and step SD.
const TAU_DRIFT: f64 = 120.0;
const SIGMA_DRIFT: f64 = 0.025;
/// Relative SD of the patient's carbohydrate counting.
const CARB_COUNT_ERROR: f64 = 0.20;
/// Sensor lag (min).
const TAU_SENSOR: f64 = 8.0;
const SQRT_3: f64 = 1.732_050_807_568_877_2;

/// xoshiro256** seeded by SplitMix64 (Blackman & Vigna), written out so that
/// the stream never changes with a crate version.
#[derive(Clone, Debug)]
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng { s: [next(), next(), next(), next()] }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1), 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in `lo..=hi`.
    fn int(&mut self, lo: u32, hi: u32) -> u32 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % u64::from(hi - lo + 1)) as u32
    }

    /// Uniform integer in `-half..=half`.
    fn jitter(&mut self, half: u32) -> i64 {
        i64::from(self.int(0, 2 * half)) - i64::from(half)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Approximately standard normal (Irwin–Hall of four uniforms, scaled):
    /// arithmetic only, so it is bit-stable across platforms.
    fn normal(&mut self) -> f64 {
        let s = self.unit() + self.unit() + self.unit() + self.unit();
        (s - 2.0) * SQRT_3
    }
}

fn tm_for(class: usize, rng: &mut Rng) -> f64 {
    let (lo, hi) = TM_CARBS[class];
    rng.uniform(lo, hi)
}

fn round_to(x: f64, step: f64) -> f64 {
    let n = (x / step).round();
    // Divide by the reciprocal count so that e.g. 17 × 0.05 prints as 0.85;
    // `+ 0.0` turns −0 into 0.
    n / (1.0 / step).round() + 0.0
}

fn round05(x: f64) -> f64 {
    round_to(x, 0.05)
}

fn sched<T: Copy>(table: &[(u32, T)], minute_of_day: u32) -> T {
    let mut v = table[0].1;
    for &(off, x) in table {
        if off <= minute_of_day {
            v = x;
        }
    }
    v
}

fn basal_at(minute_of_day: u32) -> f64 {
    sched(&BASAL, minute_of_day % DAY)
}

fn target_at(minute_of_day: u32) -> (u16, u16) {
    let mut t = (BG_TARGETS[0].1, BG_TARGETS[0].2);
    for &(off, lo, hi) in &BG_TARGETS {
        if off <= minute_of_day {
            t = (lo, hi);
        }
    }
    t
}

/// Fraction of a bolus still active `age` minutes after it, for the Bolus
/// Wizard's 3-hour active insulin curve (a smooth curvilinear decay, as the
/// MiniMed's): 1 − the cumulative of t·(T − t)³ over [0, T].
fn iob_table() -> Vec<f64> {
    let t_end = ACTIVE_INSULIN_TIME_H * 60;
    let tf = f64::from(t_end);
    let w: Vec<f64> = (0..t_end)
        .map(|i| {
            let t = f64::from(i) + 0.5;
            let r = tf - t;
            t * r * r * r
        })
        .collect();
    let total: f64 = w.iter().sum();
    let mut out = Vec::with_capacity(t_end as usize + 1);
    let mut cum = 0.0;
    out.push(1.0);
    for x in w {
        cum += x;
        out.push((1.0 - cum / total).max(0.0));
    }
    out
}

fn settings_values() -> Map<String, Value> {
    let mut m = Map::new();
    let basal: Vec<Value> = BASAL.iter().map(|&(o, r)| json!({"offset_min": o, "rate_u_h": r})).collect();
    m.insert("basal_profiles".into(), json!({ PROFILE: basal }));
    m.insert("active_basal_profile".into(), json!(PROFILE));
    m.insert(
        "carb_ratios".into(),
        Value::Array(CARB_RATIOS.iter().map(|&(o, g)| json!({"offset_min": o, "g_per_u": g})).collect()),
    );
    m.insert(
        "sensitivities".into(),
        Value::Array(SENSITIVITIES.iter().map(|&(o, s)| json!({"offset_min": o, "mg_dl_per_u": s})).collect()),
    );
    m.insert(
        "bg_targets".into(),
        Value::Array(
            BG_TARGETS.iter().map(|&(o, lo, hi)| json!({"offset_min": o, "low_mg_dl": lo, "high_mg_dl": hi})).collect(),
        ),
    );
    m.insert("active_insulin_time_h".into(), json!(ACTIVE_INSULIN_TIME_H));
    m.insert("max_bolus_u".into(), json!(10.0));
    m.insert("max_basal_u_h".into(), json!(2.0));
    m.insert("glucose_unit".into(), json!("mg/dL"));
    m
}

// ---------------------------------------------------------------------------
// The simulation.

#[derive(Clone, Copy, Debug)]
enum Action {
    /// Carbohydrate actually eaten (enters the gut).
    Eat {
        grams: f64,
        tm: f64,
    },
    /// Bolus Wizard + bolus for an estimated meal (carbs record logged too).
    MealBolus {
        est_g: f64,
        dual: Option<(f64, u32)>,
    },
    /// Fingerstick on the linked meter.
    Fingerstick,
    TempBasal {
        percent: u32,
        duration: u32,
    },
    Exercise {
        duration: u32,
        intensity: f64,
    },
    LowReservoir,
    SiteChange,
    OcclusionStart,
    OcclusionAlarm,
    SensorStart,
    SensorGap {
        len: u32,
    },
    Resume,
    /// Hypo treatment: fast carbs, logged on the pump or not.
    Rescue {
        grams: f64,
        log: bool,
    },
}

struct Sim {
    plan: Rng,
    rng: Rng,
    interval: u32,
    start_date: NaiveDate,
    /// Simulated days, including one burn-in day before the window.
    total_days: u32,
    recs: Vec<(i64, RecordKind)>,
    queue: BinaryHeap<Reverse<(u32, usize)>>,
    actions: Vec<Action>,
    iob: Vec<f64>,

    // Physiology.
    bg: f64,
    isg: f64,
    s1: f64,
    s2: f64,
    /// Meals being absorbed: (stomach g, gut g, time constant min).
    gut: Vec<[f64; 3]>,
    drift: f64,
    res_x: f64,
    res_day: f64,
    isf_true: f64,
    cr_mult: f64,
    dawn: f64,
    exercise_until: u32,
    exercise_intensity: f64,
    post_exercise_until: u32,

    // Pump.
    temp: Option<(u32, u32)>,
    suspended: bool,
    last_suspend: Option<u32>,
    occluded: bool,
    impulse: f64,
    square: Vec<(u32, f64)>,
    boluses: VecDeque<(u32, f64)>,
    delivered_today: f64,
    site_phase: u32,
    sensor_phase: u32,

    // Patient behaviour.
    wake: u32,
    bed: u32,
    last_bolus: Option<u32>,
    next_correction_check: u32,
    rescue_block_until: u32,
    last_fingerstick: Option<(u32, u16)>,
    fingersticks_today: u32,

    // Sensor.
    gap_until: u32,
    gain: f64,
    bias: f64,
    noise: f64,
    recent: VecDeque<(u32, f64)>,
}

impl Sim {
    fn new(cfg: &DemoConfig) -> Self {
        let mut plan = Rng::new(cfg.seed);
        let rng = Rng::new(cfg.seed ^ 0xD1B5_4A32_D192_ED03);
        let site_phase = plan.int(0, 2);
        let sensor_phase = plan.int(0, 6);
        let start_date = cfg.start().pred_opt().unwrap_or(cfg.start());
        Sim {
            plan,
            rng,
            interval: if cfg.sensor_interval_min == 0 { 5 } else { cfg.sensor_interval_min },
            start_date,
            total_days: cfg.days + 1,
            recs: Vec::with_capacity(cfg.days as usize * 340),
            queue: BinaryHeap::new(),
            actions: Vec::new(),
            iob: iob_table(),
            bg: 130.0,
            isg: 130.0,
            s1: basal_at(0) / 60.0 * TM_INSULIN,
            s2: basal_at(0) / 60.0 * TM_INSULIN,
            gut: Vec::new(),
            drift: 0.0,
            res_x: 0.0,
            res_day: 1.0,
            isf_true: ISF_TRUE,
            cr_mult: 1.0,
            dawn: 0.15,
            exercise_until: 0,
            exercise_intensity: 0.0,
            post_exercise_until: 0,
            temp: None,
            suspended: false,
            last_suspend: None,
            occluded: false,
            impulse: 0.0,
            square: Vec::new(),
            boluses: VecDeque::new(),
            delivered_today: 0.0,
            site_phase,
            sensor_phase,
            wake: 7 * 60,
            bed: 23 * 60,
            last_bolus: None,
            next_correction_check: 0,
            rescue_block_until: 0,
            last_fingerstick: None,
            fingersticks_today: 0,
            gap_until: 0,
            gain: 1.0,
            bias: 0.0,
            noise: 0.0,
            recent: VecDeque::new(),
        }
    }

    fn emit(&mut self, sec: i64, kind: RecordKind) {
        self.recs.push((sec, kind));
    }

    fn push(&mut self, minute: u32, action: Action) {
        self.queue.push(Reverse((minute, self.actions.len())));
        self.actions.push(action);
    }

    fn at(minute: u32, sec: u32) -> i64 {
        i64::from(minute) * 60 + i64::from(sec)
    }

    /// Plans day `d` (0 = burn-in) at its midnight.
    fn plan_day(&mut self, d: u32) {
        let base = d * DAY;
        let date = self.start_date + Duration::days(i64::from(d));
        let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);

        // Day-to-day physiology.
        let p = &mut self.plan;
        self.res_x = 0.6 * self.res_x + 0.07 * p.normal();
        self.res_day = 1.0 + self.res_x;
        self.isf_true = ISF_TRUE * (1.0 + 0.05 * p.normal());
        self.cr_mult = 1.0 + 0.06 * p.normal();
        self.dawn = p.uniform(0.0, 0.15);
        self.fingersticks_today = 0;

        let at = |m: i64| -> u32 { (i64::from(base) + m.clamp(0, i64::from(DAY) - 1)) as u32 };
        let late = if weekend { i64::from(p.int(30, 75)) } else { 0 };
        let breakfast = 7 * 60 + 15 + late + p.jitter(45);
        let lunch = 12 * 60 + 30 + p.jitter(45);
        let dinner = 19 * 60 + p.jitter(45);
        self.wake = (breakfast - i64::from(p.int(15, 45))) as u32;
        self.bed = (22 * 60 + 30 + late / 2 + i64::from(p.int(0, 60))) as u32;

        // Fingersticks: 2–4 a day, mostly before breakfast and dinner.
        let count = match p.unit() {
            u if u < 0.30 => 2,
            u if u < 0.75 => 3,
            _ => 4,
        };
        let mut slots = [0usize, 2, 1, 3]; // breakfast, dinner, lunch, bedtime
        if p.chance(0.25) {
            for i in (1..slots.len()).rev() {
                let j = p.int(0, i as u32) as usize;
                slots.swap(i, j);
            }
        }
        let mut fs = [false; 4];
        for &s in slots.iter().take(count) {
            fs[s] = true;
        }

        let b_g = f64::from(p.int(30, 60));
        let l_g = f64::from(p.int(40, 80));
        let d_g = f64::from(p.int(50, 90));
        let dinner_slow = p.chance(0.14);
        self.push_meal(at(breakfast), b_g, NORMAL, fs[0], false);
        self.push_meal(at(lunch), l_g, NORMAL, fs[1], false);
        self.push_meal(at(dinner), d_g, if dinner_slow { SLOW } else { NORMAL }, fs[2], dinner_slow);

        let p = &mut self.plan;
        if p.chance(0.4) {
            let (t, g) = if p.chance(0.6) {
                (15 * 60 + 30 + p.jitter(45), f64::from(p.int(10, 30)))
            } else {
                (21 * 60 + 30 + p.jitter(30), f64::from(p.int(10, 25)))
            };
            if p.chance(0.7) {
                self.push_meal(at(t), g, NORMAL, false, false);
            } else {
                let tm = tm_for(NORMAL, &mut self.plan);
                self.push(at(t), Action::Eat { grams: g, tm });
            }
        }
        let p = &mut self.plan;
        if fs[3] {
            let t = i64::from(self.bed) - i64::from(p.int(5, 40));
            self.push(at(t), Action::Fingerstick);
        }

        // Exercise a few times a week, with a reduced temp basal before it.
        let p = &mut self.plan;
        if p.chance(0.33) {
            let start = if weekend && p.chance(0.5) { 10 * 60 + p.jitter(60) } else { 17 * 60 + 30 + p.jitter(30) };
            let duration = p.int(30, 75);
            let intensity = p.uniform(0.5, 1.0);
            let percent = 50 + 5 * p.int(0, 4);
            let tb_len = 30 * p.int(2, 4);
            let lead = i64::from(p.int(30, 60));
            let snack = p.chance(0.45).then(|| (f64::from(p.int(10, 20)), tm_for(FAST, p)));
            self.push(at(start - lead), Action::TempBasal { percent, duration: tb_len });
            if let Some((grams, tm)) = snack {
                self.push(at(start - 10), Action::Eat { grams, tm });
            }
            self.push(at(start), Action::Exercise { duration, intensity });
        } else if self.res_day > 1.08 && self.plan.chance(0.3) {
            // A stubborn afternoon: a raised temp basal.
            let p = &mut self.plan;
            let t = 14 * 60 + p.jitter(60);
            let percent = 120 + 10 * p.int(0, 3);
            let duration = 30 * p.int(1, 4);
            self.push(at(t), Action::TempBasal { percent, duration });
        }

        // Infusion set every 3 days (evening), low reservoir alarm before it.
        let p = &mut self.plan;
        if (d + self.site_phase).is_multiple_of(3) {
            let t = 19 * 60 + 45 + p.jitter(60);
            let warn = i64::from(p.int(120, 360));
            self.push(at(t - warn), Action::LowReservoir);
            self.push(at(t), Action::SiteChange);
        } else if p.chance(1.0 / 35.0) {
            // A night occlusion: no delivery until the alarm, then a new set.
            let t = 60 + i64::from(p.int(0, 180));
            let alarm = t + i64::from(p.int(90, 180));
            let change = alarm + i64::from(p.int(10, 30));
            self.push(at(t), Action::OcclusionStart);
            self.push(at(alarm), Action::OcclusionAlarm);
            self.push(at(change), Action::SiteChange);
        }

        // Sensor every 7 days (evening), and the odd signal loss.
        let p = &mut self.plan;
        if (d + self.sensor_phase).is_multiple_of(7) {
            let t = 21 * 60 + p.jitter(60);
            self.push(at(t), Action::SensorStart);
        }
        let p = &mut self.plan;
        if p.chance(0.12) {
            let t = i64::from(p.int(0, DAY - 1));
            let u = p.unit();
            let len = 20 + 5 * ((u * u * 160.0) / 5.0).round() as u32;
            self.push(at(t), Action::SensorGap { len });
        }
    }

    /// A meal at `t`: eaten, and usually bolused through the wizard.
    fn push_meal(&mut self, t: u32, grams: f64, class: usize, fingerstick: bool, dual: bool) {
        let p = &mut self.plan;
        let est_g = (5.0 * ((grams * (1.0 + CARB_COUNT_ERROR * p.normal())) / 5.0).round()).max(5.0);
        let tm = tm_for(class, p);
        let dual = dual.then(|| (p.uniform(0.5, 0.7), 15 * p.int(4, 8)));
        let u = p.unit();
        let bolus_t = if u < 0.06 {
            None // forgotten
        } else if u < 0.14 {
            Some(t + p.int(20, 60)) // late
        } else {
            Some(t.saturating_sub(p.int(0, 15))) // pre-bolus
        };
        let fs_lead = p.int(1, 4);
        self.push(t, Action::Eat { grams, tm });
        if let Some(bt) = bolus_t {
            if fingerstick {
                self.push(bt.saturating_sub(fs_lead), Action::Fingerstick);
            }
            self.push(bt, Action::MealBolus { est_g, dual });
        } else if fingerstick {
            self.push(t.saturating_sub(fs_lead), Action::Fingerstick);
        }
    }

    fn fingerstick(&mut self, m: u32, sec: u32) -> u16 {
        let v = (self.bg * (1.0 + self.rng.uniform(-0.05, 0.05))).round().clamp(20.0, 600.0) as u16;
        self.emit(Self::at(m, sec), RecordKind::Bg { value_mg_dl: v, source: BgSource::LinkedMeter });
        self.last_fingerstick = Some((m, v));
        self.fingersticks_today += 1;
        v
    }

    fn active_insulin(&self, m: u32) -> f64 {
        self.boluses
            .iter()
            .map(|&(t, u)| {
                let age = m.saturating_sub(t) as usize;
                u * self.iob.get(age).copied().unwrap_or(0.0)
            })
            .sum()
    }

    /// The Bolus Wizard: logs its record and returns the suggested total (U).
    fn wizard(&mut self, m: u32, sec: u32, carbs: f64, bg: Option<u16>) -> f64 {
        let mod_ = m % DAY;
        let cr = sched(&CARB_RATIOS, mod_);
        let isf = sched(&SENSITIVITIES, mod_);
        let (lo, hi) = target_at(mod_);
        let food = carbs / cr;
        let active = round05(self.active_insulin(m));
        let (correction, total) = match bg {
            Some(b) if b > hi => {
                let c = (f64::from(b) - f64::from(hi)) / isf;
                (c, food + (c - active).max(0.0))
            }
            Some(b) if b < lo => {
                let c = (f64::from(b) - f64::from(lo)) / isf;
                (c, (food + c).max(0.0))
            }
            _ => (0.0, food),
        };
        let total = round05(total);
        let w = BolusWizard {
            carbs_g: Some(carbs),
            bg_mg_dl: bg,
            carb_ratio_g_per_u: Some(cr),
            sensitivity_mg_dl_per_u: Some(isf),
            target_low_mg_dl: Some(lo),
            target_high_mg_dl: Some(hi),
            food_estimate_u: Some(round05(food)),
            correction_estimate_u: Some(round05(correction)),
            active_insulin_u: Some(active),
            total_estimate_u: Some(total),
        };
        self.emit(Self::at(m, sec), RecordKind::BolusWizard(Box::new(w)));
        total
    }

    fn bolus(&mut self, m: u32, sec: u32, units: f64, dual: Option<(f64, u32)>) {
        let units = round05(units);
        if units <= 0.0 {
            return;
        }
        let kind = match dual {
            Some((frac, dur)) => {
                let now = round05(units * frac);
                let later = round05(units - now);
                self.impulse += now;
                self.square.push((m + dur, (units - now) / f64::from(dur)));
                RecordKind::Bolus {
                    subtype: BolusSubtype::Dual,
                    programmed_u: Some(units),
                    delivered_u: Some(units),
                    duration_min: Some(dur),
                    normal_programmed_u: Some(now),
                    normal_delivered_u: Some(now),
                    extended_programmed_u: Some(later),
                    extended_delivered_u: Some(later),
                    extended_duration_min: Some(dur),
                }
            }
            None => {
                self.impulse += units;
                RecordKind::bolus(BolusSubtype::Normal, Some(units), Some(units), None)
            }
        };
        self.emit(Self::at(m, sec), kind);
        self.boluses.push_back((m, units));
        self.delivered_today += units;
        self.last_bolus = Some(m);
    }

    fn run_action(&mut self, m: u32, action: Action) {
        let sec = self.rng.int(0, 59);
        match action {
            Action::Eat { grams, tm } => self.gut.push([grams, 0.0, tm]),
            Action::MealBolus { est_g, dual } => {
                let bg = self.last_fingerstick.filter(|&(t, _)| m.saturating_sub(t) <= 10).map(|(_, v)| v);
                let total = self.wizard(m, sec, est_g, bg);
                self.emit(Self::at(m, sec), RecordKind::Carbs { grams: est_g });
                let s2 = sec + self.rng.int(3, 20);
                self.bolus(m, s2, total, dual);
            }
            Action::Fingerstick => {
                self.fingerstick(m, sec);
            }
            Action::TempBasal { percent, duration } => {
                self.temp = Some((m + duration, percent));
                self.emit(
                    Self::at(m, sec),
                    RecordKind::TempBasal { rate_u_h: None, percent: Some(percent), duration_min: Some(duration) },
                );
            }
            Action::Exercise { duration, intensity } => {
                self.exercise_until = m + duration;
                self.exercise_intensity = intensity;
                self.post_exercise_until = m + duration + self.rng.int(240, 480);
            }
            Action::LowReservoir => self
                .emit(Self::at(m, sec), RecordKind::Alarm { code: Some(3), description: Some("Low reservoir".into()) }),
            Action::OcclusionStart => self.occluded = true,
            Action::OcclusionAlarm => {
                self.emit(Self::at(m, sec), RecordKind::Alarm { code: Some(4), description: Some("Occlusion".into()) })
            }
            Action::SiteChange => {
                self.occluded = false;
                let t = Self::at(m, sec);
                self.emit(t, RecordKind::Rewind);
                let fill = round_to(self.rng.uniform(8.0, 15.0), 0.1);
                let cannula = [0.3, 0.4, 0.5][self.rng.int(0, 2) as usize];
                let t1 = t + i64::from(self.rng.int(60, 150));
                let t2 = t1 + i64::from(self.rng.int(60, 240));
                self.emit(t1, RecordKind::Prime { units: fill, kind: Some(PrimeKind::Manual) });
                self.emit(t2, RecordKind::Prime { units: cannula, kind: Some(PrimeKind::Fixed) });
            }
            Action::SensorStart => {
                self.emit(Self::at(m, sec), RecordKind::SensorEvent { kind: "sensor_start".into() });
                self.gap_until = self.gap_until.max(m + 120);
                self.gain = 1.0 + 0.03 * self.rng.normal();
                self.bias = 3.0 * self.rng.normal();
                self.recent.clear();
            }
            Action::SensorGap { len } => self.gap_until = self.gap_until.max(m + len),
            Action::Resume => {
                if self.suspended {
                    self.suspended = false;
                    self.emit(Self::at(m, sec), RecordKind::Resume);
                }
            }
            Action::Rescue { grams, log } => {
                let tm = tm_for(FAST, &mut self.rng);
                self.gut.push([grams, 0.0, tm]);
                if log {
                    self.emit(Self::at(m, sec), RecordKind::Carbs { grams });
                }
            }
        }
    }

    /// One minute of physiology and pump delivery.
    fn step(&mut self, m: u32) {
        let mod_ = m % DAY;
        let sched_rate = basal_at(mod_);
        let mut rate = sched_rate;
        if let Some((end, pct)) = self.temp {
            if m < end {
                rate = round_to(sched_rate * f64::from(pct) / 100.0, 0.025);
            } else {
                self.temp = None;
            }
        }
        if self.suspended {
            rate = 0.0;
        }
        let basal = rate / 60.0;
        self.delivered_today += basal;
        let mut square = 0.0;
        self.square.retain(|&(end, r)| {
            if m < end {
                square += r;
                true
            } else {
                false
            }
        });
        let input = if self.occluded { 0.0 } else { basal + square + self.impulse };
        self.impulse = 0.0;

        // Insulin: two compartments.
        let s1 = self.s1 + input - self.s1 / TM_INSULIN;
        let s2 = self.s2 + (self.s1 - self.s2) / TM_INSULIN;
        self.s1 = s1;
        self.s2 = s2;
        let activity = s2 / TM_INSULIN; // U/min acting now

        // Carbohydrate: two compartments per meal.
        let mut ra = 0.0;
        self.gut.retain_mut(|q| {
            let out1 = q[0] / q[2];
            let out2 = q[1] / q[2];
            ra += out2;
            q[0] -= out1;
            q[1] += out1 - out2;
            q[0] + q[1] > 0.01
        });

        // Need for insulin: the schedule an hour ahead, scaled, plus dawn.
        let ahead = basal_at((mod_ + 60) % DAY);
        let post_ex = if m < self.post_exercise_until { 0.8 } else { 1.0 };
        let dawn = {
            let h = f64::from(mod_) / 60.0;
            let shape = if (4.0..5.0).contains(&h) {
                h - 4.0
            } else if (5.0..8.0).contains(&h) {
                1.0
            } else if (8.0..9.5).contains(&h) {
                (9.5 - h) / 1.5
            } else {
                0.0
            };
            self.dawn * shape
        };
        let need = (ahead * self.res_day * post_ex + dawn) / 60.0;

        let cr_true = sched(&CARB_RATIOS, mod_) * self.cr_mult;
        let mut dg = ra * self.isf_true / cr_true - self.isf_true * (activity - need);
        if m < self.exercise_until {
            dg -= self.exercise_intensity * (self.bg / 140.0).clamp(0.3, 1.0);
        }
        dg += self.drift + (SET_POINT - self.bg) / TAU_PULL;
        if self.bg < 55.0 {
            dg += (55.0 - self.bg) * 0.01;
        }
        self.bg = (self.bg + dg).max(20.0);
        self.drift = self.drift * (1.0 - 1.0 / TAU_DRIFT) + SIGMA_DRIFT * self.rng.normal();
        self.isg += (self.bg - self.isg) / TAU_SENSOR;
    }

    /// A CGM sample at `m` (None in a gap), then the patient's and the pump's
    /// reactions to it.
    fn sample(&mut self, m: u32, in_window: bool) {
        self.noise = 0.7 * self.noise + 4.3 * self.rng.normal();
        let dropout = self.rng.chance(0.004);
        let mut reading = None;
        if m >= self.gap_until && !dropout {
            let raw = self.isg * self.gain + self.bias + self.noise;
            let (v, oor) = if raw < 40.0 {
                (40u16, Some(OutOfRange::Below))
            } else if raw > 400.0 {
                (400u16, Some(OutOfRange::Above))
            } else {
                (raw.round() as u16, None)
            };
            while self.recent.front().is_some_and(|&(t, _)| m - t > 20) {
                self.recent.pop_front();
            }
            // The 15-minute rate of change: the reading closest to 15 min ago
            // (10–20 min back), per minute.
            let past = self
                .recent
                .iter()
                .filter(|&&(t, _)| (10..=20).contains(&(m - t)))
                .min_by_key(|&&(t, _)| (i64::from(m - t) - 15).abs())
                .copied();
            let rate = past.map(|(t, pv)| (f64::from(v) - pv) / f64::from(m - t));
            let trend = match rate {
                None => Trend::NotComputable,
                Some(r) if r >= 3.0 => Trend::DoubleUp,
                Some(r) if r >= 2.0 => Trend::SingleUp,
                Some(r) if r >= 1.0 => Trend::FortyFiveUp,
                Some(r) if r > -1.0 => Trend::Flat,
                Some(r) if r > -2.0 => Trend::FortyFiveDown,
                Some(r) if r > -3.0 => Trend::SingleDown,
                Some(_) => Trend::DoubleDown,
            };
            self.recent.push_back((m, f64::from(v)));
            if in_window {
                self.emit(Self::at(m, 0), RecordKind::Cgm { value_mg_dl: v, trend: Some(trend), out_of_range: oor });
            }
            reading = Some((f64::from(v), rate));
        }
        self.react(m, reading);
    }

    fn react(&mut self, m: u32, reading: Option<(f64, Option<f64>)>) {
        let mod_ = m % DAY;
        let awake = mod_ >= self.wake && mod_ < self.bed;

        // The pump suspends before a low (at most every few days).
        if let Some((v, Some(rate))) = reading {
            let rested = self.last_suspend.is_none_or(|t| m - t >= 5 * DAY);
            if !self.suspended && rested && v <= 72.0 && rate <= -0.5 {
                let len = self.rng.int(30, 120);
                // Not across the start of the window: no resume without its suspend.
                if m >= DAY || m + len < DAY {
                    self.suspended = true;
                    self.last_suspend = Some(m);
                    self.emit(Self::at(m, 2), RecordKind::Suspend);
                    self.push(m + len, Action::Resume);
                }
            }
        }

        // Hypo treatment: seen on the CGM, or felt when there is none.
        let low = match reading {
            Some((v, _)) => v < 70.0,
            None => self.bg < 60.0,
        };
        if low && m >= self.rescue_block_until && self.rng.chance(0.4) {
            // Alarm snoozed or not noticed: looked at again in a few minutes.
            self.rescue_block_until = m + 10;
        } else if low && m >= self.rescue_block_until {
            let delay = if awake { self.rng.int(3, 15) } else { self.rng.int(25, 75) };
            let grams = f64::from(self.rng.int(12, 25));
            let log = self.rng.chance(0.4);
            if awake && self.fingersticks_today < 4 && self.rng.chance(0.3) {
                self.push(m + delay, Action::Fingerstick);
            }
            self.push(m + delay, Action::Rescue { grams, log });
            self.rescue_block_until = m + delay + 25;
        }

        // Correction of a high, when awake and nothing is on board.
        if let Some((v, _)) = reading {
            let since_bolus = self.last_bolus.map_or(u32::MAX, |t| m.saturating_sub(t));
            if awake && v > 250.0 && since_bolus >= 150 && m >= self.next_correction_check {
                self.next_correction_check = m + 90;
                if self.rng.chance(0.5) {
                    let sec = self.rng.int(0, 59);
                    let bg = if self.fingersticks_today < 4 { self.fingerstick(m, sec) } else { v as u16 };
                    // Seconds past the minute may run over 59: the records
                    // then fall a minute or two later, as on the pump.
                    let s = sec + self.rng.int(30, 90);
                    let total = self.wizard(m, s, 0.0, Some(bg));
                    if total >= 0.1 {
                        let s2 = s + self.rng.int(3, 20);
                        self.bolus(m, s2, total, None);
                    }
                }
            }
        }
    }

    fn run(&mut self) {
        let window_start = DAY; // day 0 is burn-in
        for m in 0..self.total_days * DAY {
            let mod_ = m % DAY;
            let in_window = m >= window_start;
            if mod_ == 0 {
                let d = m / DAY;
                if d >= 2 {
                    let date = self.start_date + Duration::days(i64::from(d - 1));
                    let units = round05(self.delivered_today);
                    self.emit(
                        Self::at(m, 0),
                        RecordKind::DailyTotal { date: date.format("%Y-%m-%d").to_string(), units },
                    );
                }
                self.delivered_today = 0.0;
                if m == window_start {
                    self.emit(Self::at(m, 0), RecordKind::Settings { values: settings_values() });
                }
                self.plan_day(d);
            }
            if in_window && BASAL.iter().any(|&(o, _)| o == mod_) {
                self.emit(
                    Self::at(m, 0),
                    RecordKind::BasalProfileStart {
                        rate_u_h: basal_at(mod_),
                        profile: Some(PROFILE.into()),
                        offset_min: Some(mod_),
                    },
                );
            }
            while let Some(&Reverse((t, idx))) = self.queue.peek() {
                if t > m {
                    break;
                }
                self.queue.pop();
                let action = self.actions[idx];
                self.run_action(m, action);
            }
            while self.boluses.front().is_some_and(|&(t, _)| m - t > ACTIVE_INSULIN_TIME_H * 60) {
                self.boluses.pop_front();
            }
            self.step(m);
            if m % self.interval == 0 {
                self.sample(m, in_window);
            }
        }
    }
}

/// Generates the demo data set for `cfg`. Deterministic: the same
/// configuration always gives the same records, byte for byte.
pub fn generate(cfg: &DemoConfig) -> DemoData {
    let pump = DemoDevice { manufacturer: "Medtronic".into(), model: "MiniMed 754".into(), serial: "DEMO01".into() };
    let cgm = DemoDevice { manufacturer: "Medtronic".into(), model: "Guardian 4".into(), serial: "DEMO01-GT".into() };
    if cfg.days == 0 {
        return DemoData { pump, cgm, records: Vec::new() };
    }
    let mut sim = Sim::new(cfg);
    sim.run();
    let origin: NaiveDateTime = sim.start_date.and_time(chrono::NaiveTime::MIN);
    let lo = i64::from(DAY) * 60;
    let hi = i64::from(sim.total_days * DAY) * 60;
    let mut recs = std::mem::take(&mut sim.recs);
    recs.retain(|&(s, _)| (lo..hi).contains(&s));
    recs.sort_by_key(|&(s, _)| s);
    let records =
        recs.into_iter().map(|(s, kind)| Record::new(DeviceTime(origin + Duration::seconds(s)), kind)).collect();
    DemoData { pump, cgm, records }
}
