//! Device settings seen in `settings` records, normalised across sources.
//!
//! The importers write the device's own keys; these are read:
//! - basal schedules: `basal_profiles` (demo) or `basal_schedules` (CareLink,
//!   Nightscout): `{name: [{offset_min | start_min, rate_u_h}]}`; the active
//!   one in `active_basal_profile` or `active_schedule`;
//! - `carb_ratios`: `[{offset_min | start_min, g_per_u | u_per_exchange}]`;
//! - `sensitivities`: `[{…, mg_dl_per_u}]`; `bg_targets`: `[{…, low_mg_dl, high_mg_dl}]`;
//! - active insulin time: `active_insulin_time_h` or `insulin_action_min`;
//! - every other scalar value is kept as a (key, text) pair.
//!
//! A record of `"kind": "change"` (CareLink's `Change*` rows) carries only
//! what changed: it is applied over the settings seen before it. Any other
//! record is a complete snapshot.

use super::LocalClock;
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A time-of-day schedule entry: from `start_min` (local minutes after midnight) until the next.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ScheduleEntry {
    pub start_min: u32,
    pub value: f64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TargetEntry {
    pub start_min: u32,
    pub low_mg_dl: f64,
    pub high_mg_dl: f64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct BasalProfile {
    pub name: String,
    pub active: bool,
    /// Rates, U/h.
    pub entries: Vec<ScheduleEntry>,
    /// Units a day at these rates.
    pub total_u: f64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct DeviceSettings {
    pub basal_profiles: Vec<BasalProfile>,
    /// Grams per unit (or units per exchange when `carb_ratio_exchanges`).
    pub carb_ratios: Vec<ScheduleEntry>,
    pub carb_ratio_exchanges: bool,
    /// mg/dL per unit.
    pub sensitivities: Vec<ScheduleEntry>,
    pub targets: Vec<TargetEntry>,
    pub active_insulin_min: Option<u32>,
    /// Other scalar settings: (key, value as text), sorted by key.
    pub other: Vec<(String, String)>,
}

impl DeviceSettings {
    pub fn is_empty(&self) -> bool {
        *self == DeviceSettings::default()
    }

    /// `self` with every part that `change` has replaced by `change`'s.
    fn merged(&self, change: &DeviceSettings) -> DeviceSettings {
        let mut m = self.clone();
        if !change.basal_profiles.is_empty() {
            m.basal_profiles = change.basal_profiles.clone();
        }
        if !change.carb_ratios.is_empty() {
            m.carb_ratios = change.carb_ratios.clone();
            m.carb_ratio_exchanges = change.carb_ratio_exchanges;
        }
        if !change.sensitivities.is_empty() {
            m.sensitivities = change.sensitivities.clone();
        }
        if !change.targets.is_empty() {
            m.targets = change.targets.clone();
        }
        if change.active_insulin_min.is_some() {
            m.active_insulin_min = change.active_insulin_min;
        }
        for (k, v) in &change.other {
            match m.other.iter_mut().find(|(mk, _)| mk == k) {
                Some(slot) => slot.1 = v.clone(),
                None => m.other.push((k.clone(), v.clone())),
            }
        }
        m.other.sort();
        m
    }
}

/// Settings as seen on the dates `first_seen..=last_seen` (local), in
/// `times_seen` records.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SettingsSeen {
    pub first_seen: NaiveDate,
    pub last_seen: NaiveDate,
    pub times_seen: u32,
    pub settings: DeviceSettings,
}

const CONSUMED: [&str; 14] = [
    "kind",
    "basal_profiles",
    "basal_schedules",
    "active_basal_profile",
    "active_schedule",
    "carb_ratios",
    "sensitivities",
    "bg_targets",
    "active_insulin_time_h",
    "insulin_action_min",
    "profiles",
    "units",
    "timezone",
    "basal",
];

fn num(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64().filter(|x| x.is_finite()),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    }
}

fn start_min(e: &Value) -> Option<u32> {
    let m = num(e.get("start_min")).or_else(|| num(e.get("offset_min")))?;
    (0.0..1440.0).contains(&m).then_some(m.round() as u32)
}

fn schedule(v: Option<&Value>, key: &str) -> Vec<ScheduleEntry> {
    let Some(Value::Array(a)) = v else { return Vec::new() };
    let mut out: Vec<ScheduleEntry> =
        a.iter().filter_map(|e| Some(ScheduleEntry { start_min: start_min(e)?, value: num(e.get(key))? })).collect();
    out.sort_by_key(|e| e.start_min);
    out.dedup_by_key(|e| e.start_min);
    out
}

/// Units per day of a rate schedule.
fn daily_total(entries: &[ScheduleEntry]) -> f64 {
    let mut total = 0.0;
    for (i, e) in entries.iter().enumerate() {
        let end = entries.get(i + 1).map_or(1440, |n| n.start_min);
        total += e.value * f64::from(end.saturating_sub(e.start_min)) / 60.0;
    }
    if let Some(first) = entries.first() {
        // Before the first entry the last one still runs (from the previous day).
        let wrap = entries.last().map_or(0.0, |l| l.value);
        total += wrap * f64::from(first.start_min) / 60.0;
    }
    total
}

/// Normalises one `settings` record's values.
pub fn parse_settings(values: &Map<String, Value>) -> DeviceSettings {
    let mut s = DeviceSettings::default();
    let active = values
        .get("active_basal_profile")
        .or_else(|| values.get("active_schedule"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(Value::Object(p)) = values.get("basal_profiles").or_else(|| values.get("basal_schedules")) {
        for (name, entries) in p {
            let entries = schedule(Some(entries), "rate_u_h");
            if entries.is_empty() {
                continue;
            }
            s.basal_profiles.push(BasalProfile {
                name: name.clone(),
                active: active.as_deref() == Some(name.as_str()),
                total_u: daily_total(&entries),
                entries,
            });
        }
        // The active profile first.
        s.basal_profiles.sort_by_key(|p| !p.active);
    }
    s.carb_ratios = schedule(values.get("carb_ratios"), "g_per_u");
    if s.carb_ratios.is_empty() {
        s.carb_ratios = schedule(values.get("carb_ratios"), "u_per_exchange");
        s.carb_ratio_exchanges = !s.carb_ratios.is_empty();
    }
    s.sensitivities = schedule(values.get("sensitivities"), "mg_dl_per_u");
    if let Some(Value::Array(a)) = values.get("bg_targets") {
        s.targets = a
            .iter()
            .filter_map(|e| {
                Some(TargetEntry {
                    start_min: start_min(e)?,
                    low_mg_dl: num(e.get("low_mg_dl"))?,
                    high_mg_dl: num(e.get("high_mg_dl")).or_else(|| num(e.get("low_mg_dl")))?,
                })
            })
            .collect();
        s.targets.sort_by_key(|t| t.start_min);
    }
    s.active_insulin_min = num(values.get("active_insulin_time_h"))
        .map(|h| h * 60.0)
        .or_else(|| num(values.get("insulin_action_min")))
        .filter(|m| (0.0..=24.0 * 60.0).contains(m))
        .map(|m| m.round() as u32);
    for (k, v) in values {
        if CONSUMED.contains(&k.as_str()) {
            continue;
        }
        let text = match v {
            Value::String(t) => t.chars().take(80).collect(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => if *b { "on" } else { "off" }.to_string(),
            _ => continue,
        };
        s.other.push((k.chars().take(60).collect(), text));
    }
    s.other.sort();
    s
}

/// The settings seen in `records` (UTC ms, values), in time order, with
/// identical consecutive states merged. Each entry is the full state after
/// a record (changes applied over what was seen before).
pub fn settings_history(records: &[(i64, &Map<String, Value>)], zone: Tz) -> Vec<SettingsSeen> {
    let mut sorted: Vec<&(i64, &Map<String, Value>)> = records.iter().collect();
    sorted.sort_by_key(|r| r.0);
    let mut clock = LocalClock::new(zone);
    let mut out: Vec<SettingsSeen> = Vec::new();
    let mut state = DeviceSettings::default();
    for (t, values) in sorted {
        let parsed = parse_settings(values);
        let change = values.get("kind").and_then(Value::as_str) == Some("change");
        state = if change { state.merged(&parsed) } else { parsed };
        if state.is_empty() {
            continue;
        }
        let Some(date) = clock.date(*t) else { continue };
        match out.last_mut() {
            Some(last) if last.settings == state => {
                last.last_seen = date;
                last.times_seen += 1;
            }
            _ => out.push(SettingsSeen { first_seen: date, last_seen: date, times_seen: 1, settings: state.clone() }),
        }
    }
    out
}
