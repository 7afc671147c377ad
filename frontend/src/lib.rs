//! The hydrate entry: the browser half of the isomorphic app.

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // A marker the browser tests wait for: the wasm app has taken over.
    if let Some(w) = web_sys::window() {
        let _ = js_sys::Reflect::set(&w, &JsValue::from_str("__diabase_hydrated"), &JsValue::TRUE);
    }
}

/// Times the glucose metrics (every consensus figure plus the AGP) in wasm,
/// for the browser test and anyone curious: `n` five-minute readings in
/// Europe/Berlin (90 days ≈ 25,920), computed `runs` times; returns the
/// mean milliseconds of one run. Reads no page data.
#[wasm_bindgen]
pub fn bench_metrics(n: u32, runs: u32) -> f64 {
    use therapy::metrics::{Reading, ReportInput, glucose_report};
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").map(|t| t.to_utc()).unwrap_or_default();
    let readings: Vec<Reading> = (0..n)
        .map(|i| Reading {
            time: start + chrono::Duration::minutes(5 * i64::from(i)),
            value_mg_dl: (150.0 + 80.0 * (f64::from(i) / 30.0).sin() + 20.0 * (f64::from(i) / 7.0).cos()) as u16,
        })
        .collect();
    let zone = chrono_tz::Europe::Berlin;
    let from = start.date_naive();
    let to = from + chrono::Duration::days(i64::from(n) / 288);
    let perf = web_sys::window().and_then(|w| w.performance());
    let now = || perf.as_ref().map(|p| p.now()).unwrap_or_else(js_sys::Date::now);
    // One interval over all runs: the browser's clock is coarse (0.1 ms or
    // worse), a single run is near that.
    let mut sink = 0usize;
    let runs = runs.max(1);
    let t0 = now();
    for _ in 0..runs {
        let r = glucose_report(&ReportInput::new(&readings, zone, from, to));
        sink += r.readings + r.agp.len();
    }
    let per_run = (now() - t0) / f64::from(runs);
    // Keep the work observable.
    if sink == usize::MAX {
        return -1.0;
    }
    per_run
}
