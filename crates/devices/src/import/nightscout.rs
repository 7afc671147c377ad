//! Nightscout JSON (entries, treatments, profiles) and Nightscout's entries CSV.
//!
//! JSON input may be an array, newline-delimited JSON, concatenated arrays, or an API wrapper
//! `{"result": [...]}` (also `entries` / `treatments` / `profiles` keys). It is split into
//! top-level elements by a small scanner and each element is parsed on its own, so a large
//! file streams. Each object is classified by its keys: `store` → profile, `eventType` →
//! treatment, `type`/`sgv`/`mbg` → entry.
//!
//! Times: Nightscout stores UTC instants (`date` / `mills` epoch ms, `dateString` /
//! `created_at` / `sysTime` / `timestamp` ISO 8601). `record.time` is that instant;
//! `device_time` is the instant shifted by the document's `utcOffset` (minutes) when it has one,
//! a profile without `utcOffset` uses its `timezone`, and otherwise `device_time` is the UTC
//! wall time.
//!
//! A document with `isValid: false` (how AndroidAPS marks a treatment it removed) is skipped.
//!
//! Entries: `sgv` → `cgm` (`direction` → trend; `NONE` and unknown directions → no trend; values
//! below 20 are Nightscout's sensor status codes and are rejected), `mbg` → `bg` `meter`,
//! `cal` and other types → not records.
//!
//! Treatments: `insulin` > 0 → `bolus` (`Combo Bolus` → `dual` with `duration`, its parts: now =
//! `insulin`, extended = `enteredinsulin` − `insulin`, or `relative` U/h × `duration`; others
//! `normal`, delivered = `insulin`, programmed = `enteredinsulin` when given); `carbs` > 0 → `carbs` (any
//! event type: `Meal Bolus`, `Carb Correction`, …); `Temp Basal` → `temp_basal` (`absolute` /
//! `rate` in U/h, else `percent`, which Nightscout gives relative to the scheduled rate, −50 =
//! half: stored as percent of the rate, 50; `duration` 0 = cancellation); `BG Check` (and any
//! treatment with a `Finger` `glucose`) → `bg` `manual` (`units` mg/dl or mmol); `Sensor Start` /
//! `Sensor Change` / `Sensor Stop` → `sensor_event` (`sensor_start`, …); `Suspend Pump` /
//! `Resume Pump` → `suspend` / `resume`; `Note`, `Announcement`, `Question`, `Exercise`,
//! `Site Change`, `Insulin Change`, `Pump Battery Change`, `Temporary Target`, `Profile Switch` and
//! other event types without insulin or carbs → `note` (event type, details and `notes`).
//!
//! Profiles → one `settings` record each, at `startDate`: `{kind: "profile", active_schedule,
//! basal_schedules: {name: [{start_min, rate_u_h}]}, carb_ratios: [{start_min, g_per_u}],
//! sensitivities: [{start_min, mg_dl_per_u}], bg_targets: [{start_min, low_mg_dl, high_mg_dl}],
//! insulin_action_min, timezone, units: {bg}}` for the default profile (glucose converted to
//! mg/dL), plus `profiles: {name: {…}}` when the store holds more than one.
//!
//! Entries CSV (`"2026-04-05T20:30:29.000Z",1775421029000,162,"Flat",…`, no header) → `cgm`.

use super::text::{self, trim};
use super::{Item, Rejected};
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Value, json};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use therapy::{BgSource, BolusSubtype, DeviceTime, Record, RecordKind, Trend};

/// Largest single JSON element accepted (one profile document is a few KB).
const MAX_ELEMENT: usize = 32 * 1024 * 1024;

pub(crate) fn looks_like_entries_csv(first_line: &str) -> bool {
    let mut it = first_line.split([',', '\t']);
    let (Some(a), Some(b), Some(c)) = (it.next(), it.next(), it.next()) else {
        return false;
    };
    let a = a.trim().trim_matches('"');
    let b = b.trim().trim_matches('"');
    let c = c.trim().trim_matches('"');
    a.len() >= 19
        && a.as_bytes()[4] == b'-'
        && a.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && (10..=14).contains(&b.len())
        && b.bytes().all(|c| c.is_ascii_digit())
        && !c.is_empty()
        && c.bytes().all(|c| c.is_ascii_digit() || c == b'.')
}

// ---------------------------------------------------------------------------------------------
// JSON

pub(crate) struct JsonParser<R: Read> {
    rdr: BufReader<R>,
    elem: Vec<u8>,
    line: u64,
    out: VecDeque<Item>,
    eof: bool,
}

enum Scan {
    Element(u64),
    End,
}

impl<R: Read> JsonParser<R> {
    pub(crate) fn new(src: R) -> Self {
        JsonParser {
            rdr: BufReader::with_capacity(64 * 1024, src),
            elem: Vec::new(),
            line: 1,
            out: VecDeque::new(),
            eof: false,
        }
    }

    pub(crate) fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(it) = self.out.pop_front() {
                return Some(it);
            }
            if self.eof {
                return None;
            }
            match self.scan() {
                Ok(Scan::Element(line)) => match serde_json::from_slice::<Value>(&self.elem) {
                    Ok(v) => value(v, line, &mut self.out, 0),
                    Err(e) => {
                        self.out.push_back(Item::Rejected(Rejected::new(line, None, format!("invalid JSON: {e}"))))
                    }
                },
                Ok(Scan::End) => self.eof = true,
                Err((line, reason)) => {
                    self.eof = true;
                    self.out.push_back(Item::Rejected(Rejected::new(line, None, reason)));
                }
            }
        }
    }

    /// Finds the next top-level element (skipping `[`, `]`, `,` and whitespace between elements)
    /// and copies its bytes into `self.elem`.
    fn scan(&mut self) -> Result<Scan, (u64, String)> {
        self.elem.clear();
        // Skip separators.
        let start_line = loop {
            let buf = match self.rdr.fill_buf() {
                Ok(b) => b,
                Err(e) => return Err((self.line, format!("reading failed: {e}"))),
            };
            if buf.is_empty() {
                return Ok(Scan::End);
            }
            let mut consumed = 0;
            let mut found = false;
            for &c in buf {
                match c {
                    b'\n' => self.line += 1,
                    b' ' | b'\t' | b'\r' | b',' | b'[' | b']' => {}
                    _ => {
                        found = true;
                        break;
                    }
                }
                consumed += 1;
            }
            self.rdr.consume(consumed);
            if found {
                break self.line;
            }
        };
        // Copy one value: track nesting outside strings.
        let mut depth = 0usize;
        let mut in_str = false;
        let mut esc = false;
        let mut scalar = false;
        let mut first = true;
        loop {
            let buf = match self.rdr.fill_buf() {
                Ok(b) => b,
                Err(e) => return Err((self.line, format!("reading failed: {e}"))),
            };
            if buf.is_empty() {
                // End of input inside a value: let serde report it (scalars end here normally).
                return Ok(Scan::Element(start_line));
            }
            let mut consumed = 0;
            let mut done = false;
            for &c in buf {
                if first {
                    first = false;
                    scalar = c != b'{' && c != b'[';
                }
                if scalar
                    && !in_str
                    && matches!(c, b',' | b']' | b'\n' | b'\r' | b' ' | b'\t' | b'}' | b'{' | b'[')
                    && !self.elem.is_empty()
                {
                    done = true;
                    break;
                }
                consumed += 1;
                self.elem.push(c);
                if c == b'\n' {
                    self.line += 1;
                }
                if in_str {
                    if esc {
                        esc = false;
                    } else if c == b'\\' {
                        esc = true;
                    } else if c == b'"' {
                        in_str = false;
                    }
                    continue;
                }
                match c {
                    b'"' => in_str = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 && !scalar {
                            done = true;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            self.rdr.consume(consumed);
            if self.elem.len() > MAX_ELEMENT {
                return Err((start_line, format!("a JSON element larger than {} MB", MAX_ELEMENT >> 20)));
            }
            if done {
                return Ok(Scan::Element(start_line));
            }
        }
    }
}

fn value(v: Value, line: u64, out: &mut VecDeque<Item>, depth: u32) {
    match v {
        Value::Array(a) if depth < 4 => {
            for e in a {
                value(e, line, out, depth + 1);
            }
        }
        Value::Object(o) => object(o, line, out, depth),
        other => out.push_back(Item::Rejected(Rejected::new(
            line,
            None,
            format!("expected a Nightscout document (a JSON object), found {}", kind_of(&other)),
        ))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn object(mut o: Map<String, Value>, line: u64, out: &mut VecDeque<Item>, depth: u32) {
    if depth < 4 {
        for key in ["result", "entries", "treatments", "profiles", "data"] {
            if matches!(o.get(key), Some(Value::Array(_))) {
                if let Some(v) = o.remove(key) {
                    value(v, line, out, depth + 1);
                }
                return;
            }
        }
    }
    // AndroidAPS marks a treatment it removed with `isValid: false` rather
    // than deleting it: it is not therapy any more.
    if o.get("isValid") == Some(&Value::Bool(false)) {
        return;
    }
    let r = if o.contains_key("store") {
        profile(&o, out)
    } else if o.contains_key("eventType") {
        treatment(&o, out)
    } else if o.contains_key("sgv") || o.contains_key("mbg") || o.contains_key("type") {
        entry(&o, out)
    } else {
        Err((None, "not a Nightscout entry, treatment or profile".to_string()))
    };
    if let Err((field, reason)) = r {
        out.push_back(Item::Rejected(Rejected::new(line, field, reason)));
    }
}

type Reject = (Option<&'static str>, String);

fn num(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::String(s) => text::num(s.as_bytes()),
        _ => None,
    }
}

fn string<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// Epoch milliseconds within 1970..2200.
fn from_millis(ms: f64) -> Option<DateTime<Utc>> {
    if !(0.0..7.3e12).contains(&ms) {
        return None;
    }
    DateTime::from_timestamp_millis(ms as i64)
}

/// An ISO 8601 / RFC 3339 instant (or epoch ms as text), within the years 1900–2200.
pub(crate) fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    use chrono::Datelike;
    parse_instant_any(s).filter(|t| (1900..=2200).contains(&t.year()))
}

fn parse_instant_any(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%a %b %d %Y %H:%M:%S GMT%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), f) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    if s.bytes().all(|c| c.is_ascii_digit()) {
        return s.parse::<f64>().ok().and_then(from_millis);
    }
    None
}

/// The document's instant, from the first time field present.
fn instant(o: &Map<String, Value>, keys: &[&'static str]) -> Result<DateTime<Utc>, Reject> {
    for &k in keys {
        let Some(v) = o.get(k) else { continue };
        let t = match v {
            Value::Number(n) => n.as_f64().and_then(from_millis),
            Value::String(s) if s.trim().is_empty() => continue,
            Value::String(s) => parse_instant(s),
            Value::Null => continue,
            _ => None,
        };
        return t.ok_or_else(|| (Some(k), format!("{v} is not a time")));
    }
    Err((None, format!("no time ({})", keys.join(", "))))
}

fn utc_offset_min(o: &Map<String, Value>) -> Option<i64> {
    num(o.get("utcOffset")).filter(|m| (-16.0 * 60.0..=16.0 * 60.0).contains(m)).map(|m| m.round() as i64)
}

/// `time` keeps the instant as given (milliseconds included); `device_time` is whole seconds.
fn record(utc: DateTime<Utc>, offset_min: Option<i64>, kind: RecordKind) -> Record {
    let whole = DateTime::from_timestamp(utc.timestamp(), 0).unwrap_or(utc);
    let local = whole
        .naive_utc()
        .checked_add_signed(Duration::minutes(offset_min.unwrap_or(0)))
        .unwrap_or_else(|| whole.naive_utc());
    let mut r = Record::new(DeviceTime(local), kind);
    r.time = Some(utc);
    r
}

fn push(out: &mut VecDeque<Item>, r: Record) {
    out.push_back(Item::Record(r));
}

fn entry(o: &Map<String, Value>, out: &mut VecDeque<Item>) -> Result<(), Reject> {
    let ty = string(o, "type").unwrap_or(if o.contains_key("sgv") { "sgv" } else { "mbg" });
    let (key, source) = match ty {
        "sgv" => ("sgv", None),
        "mbg" => ("mbg", Some(BgSource::Meter)),
        _ => return Ok(()),
    };
    let t = instant(o, &["date", "dateString", "sysTime", "created_at", "mills"])?;
    let off = utc_offset_min(o);
    let v = o.get(key);
    let g = num(v).ok_or_else(|| {
        (Some(key), format!("{} is not a glucose value", v.map_or("nothing".into(), Value::to_string)))
    })?;
    if source.is_none() && (0.0..20.0).contains(&g) {
        return Err((Some(key), format!("{g} is a Nightscout sensor status code, not a reading")));
    }
    let range = if source.is_none() { &text::CGM_MG_DL } else { &text::BG_MG_DL };
    let mg = text::glucose_value(g, false, range).map_err(|e| (Some(key), e))?;
    let kind = match source {
        None => RecordKind::Cgm {
            value_mg_dl: mg,
            trend: string(o, "direction").and_then(Trend::from_direction),
            out_of_range: None,
        },
        Some(s) => RecordKind::Bg { value_mg_dl: mg, source: s },
    };
    push(out, record(t, off, kind));
    Ok(())
}

fn treatment(o: &Map<String, Value>, out: &mut VecDeque<Item>) -> Result<(), Reject> {
    let et = string(o, "eventType").unwrap_or("");
    let t = instant(o, &["created_at", "timestamp", "date", "mills"])?;
    let off = utc_offset_min(o);
    let lower = et.to_ascii_lowercase();
    let mut produced = false;
    let insulin = num(o.get("insulin"));
    let carbs = num(o.get("carbs"));
    let duration = num(o.get("duration")).or_else(|| num(o.get("durationInMilliseconds")).map(|ms| ms / 60_000.0));
    // Validate first, so that a bad row emits nothing.
    let insulin = insulin
        .filter(|&u| u > 0.0 || lower.contains("bolus"))
        .map(|u| text::within(u, &text::INSULIN_U, "U").map_err(|e| (Some("insulin"), e)))
        .transpose()?;
    let carbs = carbs
        .filter(|&g| g > 0.0)
        .map(|g| text::within(g, &text::CARBS_G, "g").map_err(|e| (Some("carbs"), e)))
        .transpose()?;
    let glucose_type = string(o, "glucoseType").unwrap_or("").to_ascii_lowercase();
    let bg = if lower == "bg check" || glucose_type == "finger" {
        let mmol = string(o, "units").is_some_and(|u| u.to_ascii_lowercase().starts_with("mmol"));
        num(o.get("glucose"))
            .map(|g| text::glucose_value(g, mmol, &text::BG_MG_DL).map_err(|e| (Some("glucose"), e)))
            .transpose()?
    } else {
        None
    };
    if lower == "temp basal" || lower == "temp basal start" {
        let dur = duration
            .map(|d| text::within(d, &text::DURATION_MIN, "min").map(|d| d.round() as u32))
            .transpose()
            .map_err(|e| (Some("duration"), e))?;
        let rate = num(o.get("absolute")).or_else(|| num(o.get("rate")));
        let kind = if let Some(r) = rate {
            let r = text::within(r, &text::RATE_U_H, "U/h").map_err(|e| (Some("absolute"), e))?;
            RecordKind::TempBasal { rate_u_h: Some(r), percent: None, duration_min: dur }
        } else if let Some(p) = num(o.get("percent")) {
            let p = text::within(100.0 + p, &text::PERCENT, "%").map_err(|e| (Some("percent"), e))?;
            RecordKind::TempBasal { rate_u_h: None, percent: Some(p.round() as u32), duration_min: dur }
        } else if dur == Some(0) {
            RecordKind::TempBasal { rate_u_h: None, percent: None, duration_min: Some(0) }
        } else {
            return Err((Some("absolute"), "temp basal without a rate or percent".into()));
        };
        push(out, record(t, off, kind));
        return Ok(());
    }
    if let Some(u) = insulin {
        let programmed = num(o.get("enteredinsulin")).filter(|p| text::INSULIN_U.contains(p));
        let kind = if lower == "combo bolus" {
            let duration_min = duration.filter(|d| text::DURATION_MIN.contains(d)).map(|d| d.round() as u32);
            // `insulin` is the part given now, `enteredinsulin` the whole bolus; the extended
            // part is the difference, else `relative` (its rate, U/h) over `duration`.
            let extended = match programmed {
                Some(p) if p >= u => Some(p - u),
                _ => num(o.get("relative"))
                    .zip(duration_min)
                    .map(|(rate, d)| rate * f64::from(d) / 60.0)
                    .filter(|e| text::INSULIN_U.contains(e)),
            }
            .map(text::round6);
            RecordKind::Bolus {
                subtype: BolusSubtype::Dual,
                programmed_u: programmed,
                delivered_u: Some(programmed.map_or(u, |p| p.max(u))),
                duration_min,
                normal_programmed_u: Some(u),
                normal_delivered_u: Some(u),
                extended_programmed_u: extended,
                extended_delivered_u: extended,
                extended_duration_min: extended.and(duration_min),
            }
        } else {
            RecordKind::bolus(BolusSubtype::Normal, programmed, Some(u), None)
        };
        push(out, record(t, off, kind));
        produced = true;
    }
    if let Some(g) = carbs {
        push(out, record(t, off, RecordKind::Carbs { grams: g }));
        produced = true;
    }
    if let Some(mg) = bg {
        push(out, record(t, off, RecordKind::Bg { value_mg_dl: mg, source: BgSource::Manual }));
        produced = true;
    }
    let simple = match lower.as_str() {
        "sensor start" => Some(RecordKind::SensorEvent { kind: "sensor_start".into() }),
        "sensor change" => Some(RecordKind::SensorEvent { kind: "sensor_change".into() }),
        "sensor stop" => Some(RecordKind::SensorEvent { kind: "sensor_stop".into() }),
        "suspend pump" | "pump suspend" => Some(RecordKind::Suspend),
        "resume pump" | "pump resume" => Some(RecordKind::Resume),
        _ => None,
    };
    if let Some(k) = simple {
        push(out, record(t, off, k));
        return Ok(());
    }
    if produced || lower == "bg check" {
        return Ok(());
    }
    // Everything else is a note, with what details it has.
    let mut txt = if et.is_empty() { "Note".to_string() } else { et.to_string() };
    let mut details = Vec::new();
    if lower == "temporary target" {
        if let (Some(lo), Some(hi)) = (num(o.get("targetBottom")), num(o.get("targetTop"))) {
            details.push(format!("{lo}–{hi} {}", string(o, "units").unwrap_or("mg/dL")));
        }
        if let Some(r) = string(o, "reason") {
            details.push(r.to_string());
        }
    }
    if lower == "profile switch"
        && let Some(p) = string(o, "profile")
    {
        details.push(p.to_string());
    }
    if let Some(d) = duration.filter(|d| *d > 0.0 && lower != "note") {
        details.push(format!("{d} min"));
    }
    if !details.is_empty() {
        txt = format!("{txt}: {}", details.join(", "));
    }
    if let Some(n) = string(o, "notes") {
        txt = format!("{txt} — {}", n.chars().take(2000).collect::<String>());
    }
    push(out, record(t, off, RecordKind::Note { text: txt }));
    Ok(())
}

/// `[{time: "HH:MM", timeAsSeconds, value}]` → `(start_min, value)` sorted.
fn schedule(v: Option<&Value>) -> Vec<(u32, f64)> {
    let mut s: Vec<(u32, f64)> = match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|e| {
                let secs = num(e.get("timeAsSeconds")).or_else(|| {
                    let t = e.get("time")?.as_str()?;
                    let (h, m) = t.split_once(':')?;
                    Some(h.trim().parse::<f64>().ok()? * 3600.0 + m.trim().parse::<f64>().ok()? * 60.0)
                })?;
                let v = num(e.get("value"))?;
                (0.0..86_400.0).contains(&secs).then_some(((secs / 60.0).round() as u32, v))
            })
            .collect(),
        Some(v) => num(Some(v)).map(|x| vec![(0, x)]).unwrap_or_default(),
        None => Vec::new(),
    };
    s.sort_by_key(|e| e.0);
    s
}

fn profile_block(p: &Map<String, Value>, doc_units: Option<&str>) -> Map<String, Value> {
    let units = string(p, "units").or(doc_units).unwrap_or("mg/dl").to_ascii_lowercase();
    let mmol = units.starts_with("mmol");
    let g = |v: f64| text::round6(if mmol { v * therapy::units::MG_DL_PER_MMOL_L } else { v });
    let gi = |v: f64| g(v).round();
    let mut m = Map::new();
    let basal: Vec<Value> =
        schedule(p.get("basal")).iter().map(|(s, r)| json!({"start_min": s, "rate_u_h": r})).collect();
    m.insert("basal".into(), Value::Array(basal));
    let cr: Vec<Value> =
        schedule(p.get("carbratio")).iter().map(|(s, r)| json!({"start_min": s, "g_per_u": r})).collect();
    m.insert("carb_ratios".into(), Value::Array(cr));
    let isf: Vec<Value> =
        schedule(p.get("sens")).iter().map(|(s, v)| json!({"start_min": s, "mg_dl_per_u": g(*v)})).collect();
    m.insert("sensitivities".into(), Value::Array(isf));
    let lo = schedule(p.get("target_low"));
    let hi = schedule(p.get("target_high"));
    let mut targets = Vec::new();
    for &(s, l) in &lo {
        let h = hi.iter().rev().find(|e| e.0 <= s).or(hi.first()).map_or(l, |e| e.1);
        targets.push(json!({"start_min": s, "low_mg_dl": gi(l) as i64, "high_mg_dl": gi(h) as i64}));
    }
    m.insert("bg_targets".into(), Value::Array(targets));
    if let Some(d) = num(p.get("dia")).filter(|d| (0.0..=24.0).contains(d)) {
        m.insert("insulin_action_min".into(), json!((d * 60.0).round() as i64));
    }
    if let Some(tz) = string(p, "timezone") {
        m.insert("timezone".into(), json!(tz));
    }
    m.insert("units".into(), json!({"bg": if mmol { "mmol/L" } else { "mg/dL" }}));
    m
}

fn profile(o: &Map<String, Value>, out: &mut VecDeque<Item>) -> Result<(), Reject> {
    let t = instant(o, &["startDate", "mills", "created_at", "date"])?;
    let Some(Value::Object(store)) = o.get("store") else {
        return Err((Some("store"), "profile store is not an object".into()));
    };
    let doc_units = string(o, "units");
    let default = string(o, "defaultProfile").map(str::to_string).or_else(|| store.keys().next().cloned());
    let mut values = Map::new();
    values.insert("kind".into(), json!("profile"));
    if let Some(d) = &default {
        values.insert("active_schedule".into(), json!(d));
    }
    let mut schedules = Map::new();
    let mut blocks = Map::new();
    for (name, p) in store {
        let Value::Object(p) = p else { continue };
        let mut b = profile_block(p, doc_units);
        if let Some(basal) = b.remove("basal") {
            schedules.insert(name.clone(), basal);
        }
        blocks.insert(name.clone(), Value::Object(b));
    }
    values.insert("basal_schedules".into(), Value::Object(schedules));
    let tz = default
        .as_ref()
        .and_then(|d| blocks.get(d))
        .and_then(|b| b.get("timezone"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(Value::Object(b)) = default.as_ref().and_then(|d| blocks.get(d)) {
        for (k, v) in b {
            values.insert(k.clone(), v.clone());
        }
    }
    if blocks.len() > 1 {
        values.insert("profiles".into(), Value::Object(blocks));
    }
    // Local time: utcOffset, else the profile's own zone, else UTC.
    let off = utc_offset_min(o).or_else(|| {
        let zone = therapy::time::parse_zone(tz.as_deref()?)?;
        let local = t.with_timezone(&zone);
        Some(i64::from(chrono::Offset::fix(local.offset()).local_minus_utc()) / 60)
    });
    push(out, record(t, off, RecordKind::Settings { values }));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Entries CSV

pub(crate) struct CsvParser<R: Read> {
    rdr: csv::Reader<super::source::Lines<R>>,
    rec: csv::ByteRecord,
    out: VecDeque<Item>,
    eof: bool,
}

impl<R: Read> CsvParser<R> {
    pub(crate) fn new(src: R) -> Self {
        let rdr = super::source::csv_reader(src, b',');
        CsvParser { rdr, rec: csv::ByteRecord::new(), out: VecDeque::new(), eof: false }
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
                    if let Err((f, reason)) = csv_row(&self.rec, &mut self.out) {
                        self.out.push_back(Item::Rejected(Rejected::new(line, f, reason)));
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

fn csv_row(rec: &csv::ByteRecord, out: &mut VecDeque<Item>) -> Result<(), Reject> {
    let f = |i: usize| rec.get(i).map_or(&b""[..], trim);
    if rec.len() == 1 && f(0).is_empty() {
        return Ok(());
    }
    let t = text::num(f(1))
        .and_then(from_millis)
        .or_else(|| parse_instant(&text::text(f(0))))
        .ok_or_else(|| (Some("date"), format!("{} is not a time", text::show(f(1)))))?;
    let g = text::num(f(2)).ok_or_else(|| (Some("sgv"), format!("{} is not a glucose value", text::show(f(2)))))?;
    if (0.0..20.0).contains(&g) {
        return Err((Some("sgv"), format!("{g} is a Nightscout sensor status code, not a reading")));
    }
    let mg = text::glucose_value(g, false, &text::CGM_MG_DL).map_err(|e| (Some("sgv"), e))?;
    let trend = Trend::from_direction(&text::text(f(3)));
    push(out, record(t, None, RecordKind::Cgm { value_mg_dl: mg, trend, out_of_range: None }));
    Ok(())
}
