//! The report charts: ECharts options built with charming and drawn in the
//! browser after hydration (`charming::WasmRenderer`, the global `echarts`
//! loaded by the shell). Browser only (feature `hydrate`).
//!
//! Times of day are category axes of local wall-clock labels ("07:35"), so
//! the tooltips show local times without a time-zone database in the wasm.
//! Tooltip and axis texts are string templates: the CSP allows no `eval`,
//! so no JavaScript formatter functions.

use super::reports::ChartSpec;
use crate::i18n::{t, tf};
use charming::component::{Axis, DataZoom, DataZoomType, Grid, Legend, LegendType};
use charming::datatype::{CompositeValue, DataPoint};
use charming::element::{
    AreaStyle, AxisLabel, AxisPointer, AxisPointerLink, AxisPointerType, AxisType, ItemStyle, Label, LabelPosition,
    LineStyle, LineStyleType, MarkArea, MarkAreaData, MarkLine, MarkLineData, MarkLineVariant, SplitLine, Step, Symbol,
    Tooltip, Trigger,
};
use charming::series::{Bar, Line, Scatter};
use charming::{Chart, Echarts, WasmRenderer};
use leptos::prelude::*;
use std::cell::RefCell;
use std::time::Duration;
use therapy::GlucoseUnit;
use therapy::metrics::{AgpBin, GlucoseReport};
use therapy::report_data::{BasalKind, BasalProfile, DayView, LogbookDay, Trends};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::js_sys;

const TEAL: &str = "#0f766e";
const VERY_HIGH: &str = "#e4572e";
const HIGH: &str = "#f4a259";
const IN_RANGE: &str = "#2a9d8f";
const LOW: &str = "#e63946";
const VERY_LOW: &str = "#9b1d20";
const BOLUS: &str = "#2563eb";
const CARBS: &str = "#d97706";
const BASAL: &str = "#7c3aed";
const MUTED: &str = "#6b7280";
const BG: &str = "#b42318";

thread_local! {
    /// The charts drawn, to resize them with the window and dispose them
    /// when their element is gone.
    static CHARTS: RefCell<Vec<(web_sys::Element, Echarts)>> = const { RefCell::new(Vec::new()) };
    static LISTENING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn call(obj: &JsValue, method: &str) {
    if let Ok(f) = js_sys::Reflect::get(obj, &JsValue::from_str(method))
        && let Some(f) = f.dyn_ref::<js_sys::Function>()
    {
        let _ = f.call0(obj);
    }
}

/// Draws `spec` into the element `id`; retries for a few seconds while the
/// element or the `echarts` global is not there yet.
pub fn draw(id: &str, height: u32, spec: &ChartSpec, unit: GlucoseUnit, attempt: u32) {
    let Some(window) = web_sys::window() else { return };
    let ready = js_sys::Reflect::has(&window, &JsValue::from_str("echarts")).unwrap_or(false);
    if !ready {
        load_echarts(&window);
    }
    let el = window.document().and_then(|d| d.get_element_by_id(id));
    let Some(el) = el.filter(|_| ready) else {
        // 20 s: ECharts may still be on its way over a slow phone link.
        if attempt < 200 {
            let (id, spec) = (id.to_string(), spec.clone());
            set_timeout(move || draw(&id, height, &spec, unit, attempt + 1), Duration::from_millis(100));
        }
        return;
    };
    // A chart already drawn here (or on elements since removed) is disposed first.
    CHARTS.with(|c| {
        c.borrow_mut().retain(|(e, inst)| {
            let keep = e.is_connected() && *e != el;
            if !keep {
                call(inst, "dispose");
            }
            keep
        })
    });
    let chart = build_at(spec, unit, u32::try_from(el.client_width()).ok());
    if let Ok(inst) = WasmRenderer::new_opt(None, Some(height)).render(id, &chart) {
        let _ = el.set_attribute("data-drawn", "true");
        CHARTS.with(|c| c.borrow_mut().push((el, inst)));
    }
    if !LISTENING.with(|l| l.replace(true)) {
        let _ = window_event_listener(leptos::ev::resize, |_| {
            CHARTS.with(|c| {
                for (e, inst) in c.borrow().iter() {
                    if e.is_connected() {
                        inst.resize(JsValue::UNDEFINED);
                    }
                }
            })
        });
    }
}

/// Loads ECharts once, for the first chart of a page that did not load it
/// with the page (a chart page reached by a link in the app): pages without
/// charts never fetch it. Its content-hashed address is in the page's
/// `<meta name="diabase-echarts">` (the shell, `crate::shell`).
fn load_echarts(window: &web_sys::Window) {
    const ID: &str = "diabase-echarts-script";
    let Some(doc) = window.document() else { return };
    if doc.get_element_by_id(ID).is_some() {
        return;
    }
    let src = doc
        .query_selector("meta[name=diabase-echarts]")
        .ok()
        .flatten()
        .and_then(|m| m.get_attribute("content"))
        .unwrap_or_else(|| "/echarts.min.js".to_string());
    if let (Ok(script), Some(head)) = (doc.create_element("script"), doc.head()) {
        script.set_id(ID);
        let _ = script.set_attribute("src", &src);
        let _ = head.append_child(&script);
    }
}

/// The ECharts option of `spec`, with glucose in `unit`.
pub fn build(spec: &ChartSpec, unit: GlucoseUnit) -> Chart {
    build_at(spec, unit, None)
}

/// Below this chart width (CSS pixels: a phone held upright) the time-of-day
/// axes label every 6 hours instead of every 3, so that the labels never
/// touch ("00:00" is about 32 px wide at ECharts' 12 px).
pub const NARROW_CHART_PX: u32 = 600;

/// Hours between two time-of-day axis labels for a chart `width_px` wide.
pub fn label_hours(width_px: Option<u32>) -> u32 {
    match width_px {
        Some(w) if w < NARROW_CHART_PX => 6,
        _ => 3,
    }
}

/// [`build`] for a chart `width_px` wide (`None`: the desktop layout).
pub fn build_at(spec: &ChartSpec, unit: GlucoseUnit, width_px: Option<u32>) -> Chart {
    let hours = label_hours(width_px);
    match spec {
        ChartSpec::Tir(g) => tir(g),
        ChartSpec::Agp(bins, bin_min) => agp(bins, *bin_min, unit, hours),
        ChartSpec::Daily(day, insulin) => daily(day, *insulin, unit, hours),
        ChartSpec::HourlyRanges(trends) => hourly_ranges(trends, unit),
        ChartSpec::HourlyInsulin(trends) => hourly_insulin(trends),
        ChartSpec::LogbookTotals(days) => logbook_totals(days),
        ChartSpec::BasalProfile(p) => basal_profile(p, hours),
    }
}

// ---------------------------------------------------------------------------
// Helpers

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

fn val(x: Option<f64>) -> CompositeValue {
    match x {
        Some(v) if v.is_finite() => CompositeValue::from(v),
        _ => CompositeValue::from("-"),
    }
}

fn pair(x: usize, y: CompositeValue) -> DataPoint {
    DataPoint::from(CompositeValue::Array(vec![CompositeValue::from(x as i64), y]))
}

fn hhmm(minute: u32) -> String {
    format!("{:02}:{:02}", (minute / 60) % 24, minute % 60)
}

fn glucose(unit: GlucoseUnit, mg: f64) -> f64 {
    unit.convert(mg)
}

fn category(labels: Vec<String>) -> Axis {
    Axis::new().type_(AxisType::Category).data(labels).boundary_gap(false)
}

fn value_axis(name: &str) -> Axis {
    Axis::new()
        .type_(AxisType::Value)
        .name(name)
        .split_line(SplitLine::new().line_style(LineStyle::new().color("#eef0f3")))
}

fn quiet_line(name: &str) -> Line {
    Line::new().name(name).show_symbol(false).symbol(Symbol::None)
}

fn target_band(unit: GlucoseUnit) -> MarkArea {
    MarkArea::new()
        .silent(true)
        .item_style(ItemStyle::new().color("rgba(42, 157, 143, 0.10)"))
        .data(vec![(MarkAreaData::new().y_axis(unit.format(70.0)), MarkAreaData::new().y_axis(unit.format(180.0)))])
}

// ---------------------------------------------------------------------------
// Charts

fn tir(g: &GlucoseReport) -> Chart {
    let parts = [
        (t("Very low"), g.very_low_percent, VERY_LOW),
        (t("Low"), g.low_percent, LOW),
        (t("In range"), g.in_range_percent, IN_RANGE),
        (t("High"), g.high_percent, HIGH),
        (t("Very high"), g.very_high_percent, VERY_HIGH),
    ];
    let mut c = Chart::new()
        .tooltip(Tooltip::new().trigger(Trigger::Item).formatter("{a}: {c} %"))
        .grid(Grid::new().left(44).right(8).top(12).bottom(12))
        .x_axis(Axis::new().type_(AxisType::Category).data(vec![t("Time in ranges")]).show(false))
        .y_axis(Axis::new().type_(AxisType::Value).min(0).max(100).axis_label(AxisLabel::new().formatter("{value} %")));
    for (name, v, color) in parts {
        let v = round(v.unwrap_or(0.0), 1);
        c = c.series(
            Bar::new()
                .name(name)
                .stack("tir")
                .bar_width("70%")
                .item_style(ItemStyle::new().color(color))
                .label(Label::new().show(v >= 4.0).position(LabelPosition::Inside).color("#fff").formatter("{c} %"))
                .data(vec![v]),
        );
    }
    c
}

fn agp(bins: &[AgpBin], bin_min: u32, unit: GlucoseUnit, label_hours: u32) -> Chart {
    let bin = bin_min.clamp(1, 1440);
    let n = 1440u32.div_ceil(bin) as usize;
    let labels: Vec<String> = (0..n).map(|i| hhmm(i as u32 * bin)).collect();
    let mut p: [Vec<Option<f64>>; 5] = std::array::from_fn(|_| vec![None; n]);
    for b in bins {
        let i = (b.minute / bin) as usize;
        if i < n {
            for (k, v) in [b.p5, b.p25, b.p50, b.p75, b.p95].into_iter().enumerate() {
                p[k][i] = Some(glucose(unit, v));
            }
        }
    }
    let diff = |hi: usize, lo: usize| -> Vec<CompositeValue> {
        (0..n).map(|i| val(p[hi][i].zip(p[lo][i]).map(|(a, b)| round(a - b, 1)))).collect()
    };
    let plain = |k: usize| -> Vec<CompositeValue> { p[k].iter().map(|v| val(*v)).collect() };
    let hidden = LineStyle::new().opacity(0.0);
    let step = match unit {
        GlucoseUnit::MgDl => 50.0,
        GlucoseUnit::MmolL => 2.5,
    };
    let ymax = (p[4].iter().flatten().fold(glucose(unit, 250.0), |m, v| m.max(*v)) / step).ceil() * step;
    let l = unit.label();
    let median = t("Median");
    let tip = format!(
        "{{b0}}<br/>95 %: {{c8}} {l}<br/>75 %: {{c7}} {l}<br/><b>{median}: {{c4}} {l}</b><br/>25 %: {{c6}} {l}<br/>5 %: {{c5}} {l}"
    );
    Chart::new()
        .tooltip(Tooltip::new().trigger(Trigger::Axis).formatter(tip.as_str()))
        .legend(Legend::new().data(vec![median, "25–75 %", "5–95 %"]).top(0))
        .grid(Grid::new().left(48).right(16).top(36).bottom(28))
        .x_axis(
            category(labels).axis_label(AxisLabel::new().interval(f64::from((label_hours * 60 / bin).max(1)) - 1.0)),
        )
        .y_axis(value_axis(l).min(0).max(ymax))
        .series(quiet_line("base").stack("band").line_style(hidden.clone()).data(plain(0)))
        .series(
            quiet_line("5–95 %")
                .stack("band")
                .line_style(hidden.clone())
                .item_style(ItemStyle::new().color("rgba(15, 118, 110, 0.30)"))
                .area_style(AreaStyle::new().color("rgba(15, 118, 110, 0.16)"))
                .data(diff(1, 0)),
        )
        .series(
            quiet_line("25–75 %")
                .stack("band")
                .line_style(hidden.clone())
                .item_style(ItemStyle::new().color("rgba(15, 118, 110, 0.55)"))
                .area_style(AreaStyle::new().color("rgba(15, 118, 110, 0.38)"))
                .data(diff(3, 1)),
        )
        .series(
            quiet_line("5–95 %")
                .stack("band")
                .line_style(hidden.clone())
                .item_style(ItemStyle::new().color("rgba(15, 118, 110, 0.30)"))
                .area_style(AreaStyle::new().color("rgba(15, 118, 110, 0.16)"))
                .data(diff(4, 3)),
        )
        .series(
            quiet_line(median)
                .line_style(LineStyle::new().color(TEAL).width(2.5))
                .item_style(ItemStyle::new().color(TEAL))
                .mark_area(target_band(unit))
                .data(plain(2)),
        )
        .series(quiet_line("5 %").line_style(hidden.clone()).data(plain(0)))
        .series(quiet_line("25 %").line_style(hidden.clone()).data(plain(1)))
        .series(quiet_line("75 %").line_style(hidden.clone()).data(plain(3)))
        .series(quiet_line("95 %").line_style(hidden).data(plain(4)))
}

fn daily(day: &DayView, insulin: bool, unit: GlucoseUnit, label_hours: u32) -> Chart {
    let n = (day.minutes / 5).max(1) as usize;
    // One label every `label_hours` (slots are 5 minutes).
    let every = f64::from(label_hours * 12) - 1.0;
    let labels: Vec<String> = (0..n).map(|i| day.clock(i as u32 * 5)).collect();
    let slot = |sec: u32| (((sec + 150) / 300) as usize).min(n - 1);
    // CGM as (slot, value) pairs, broken where readings are more than 15 minutes apart.
    let mut cgm: Vec<DataPoint> = Vec::with_capacity(day.cgm.len() + 8);
    let mut prev: Option<u32> = None;
    for &(sec, v) in &day.cgm {
        if let Some(p) = prev
            && sec.saturating_sub(p) > 15 * 60
        {
            cgm.push(pair(slot(p) + 1, CompositeValue::from("-")));
        }
        cgm.push(pair(slot(sec), CompositeValue::from(glucose(unit, f64::from(v)))));
        prev = Some(sec);
    }
    let bg: Vec<DataPoint> =
        day.bg.iter().map(|b| pair(slot(b.sec), CompositeValue::from(glucose(unit, f64::from(b.mg_dl))))).collect();
    let ymax = day.cgm.iter().map(|c| c.1).chain(day.bg.iter().map(|b| b.mg_dl)).max().unwrap_or(0).max(400);
    let alarms: Vec<MarkLineVariant> = day
        .alarms
        .iter()
        .map(|a| {
            MarkLineVariant::Simple(
                MarkLineData::new()
                    .x_axis(slot(a.sec) as i64)
                    .name(a.description.clone().unwrap_or_else(|| t("Alarm").into())),
            )
        })
        .collect();
    let l = unit.label();
    let mut c = Chart::new()
        .tooltip(Tooltip::new().trigger(Trigger::Axis).axis_pointer(AxisPointer::new().type_(AxisPointerType::Cross)))
        .axis_pointer(AxisPointer::new().link(vec![AxisPointerLink::new().x_axis_index("all")]))
        .legend(Legend::new().type_(LegendType::Scroll).top(0))
        .grid(Grid::new().left(56).right(56).top(40).height(if insulin { "46%" } else { "70%" }))
        .x_axis(category(labels.clone()).grid_index(0.0).axis_label(AxisLabel::new().interval(every)))
        .y_axis(value_axis(l).grid_index(0.0).min(0).max(round(glucose(unit, f64::from(ymax)), 0)));
    let mut cgm_line = Line::new()
        .name(t("CGM"))
        .show_symbol(false)
        .symbol(Symbol::Circle)
        .line_style(LineStyle::new().color(TEAL).width(2.0))
        .item_style(ItemStyle::new().color(TEAL))
        .mark_area(target_band(unit))
        .data(cgm);
    if !alarms.is_empty() {
        cgm_line = cgm_line.mark_line(
            MarkLine::new()
                .silent(true)
                .symbol(vec![Symbol::None, Symbol::Triangle])
                .line_style(LineStyle::new().color(VERY_HIGH).type_(LineStyleType::Dashed))
                .label(Label::new().formatter("{b}").color(VERY_HIGH))
                .data(alarms),
        );
    }
    c = c.series(cgm_line).series(
        Scatter::new()
            .name(t("Fingerstick"))
            .symbol(Symbol::Diamond)
            .symbol_size(11)
            .item_style(ItemStyle::new().color(BG).border_color("#fff").border_width(1.0))
            .data(bg),
    );
    let zoom_axes = if insulin { CompositeValue::from(vec![0i64, 1]) } else { CompositeValue::from(vec![0i64]) };
    if insulin {
        let basal_at = |i: usize| day.basal_at(i as u32 * 300 + 1);
        let delivered: Vec<CompositeValue> = (0..n).map(|i| val(basal_at(i).map(|b| round(b.rate_u_h, 3)))).collect();
        let scheduled: Vec<CompositeValue> = (0..n)
            .map(|i| {
                val(basal_at(i).and_then(|b| match b.kind {
                    BasalKind::Scheduled => Some(b.rate_u_h),
                    _ => b.scheduled_u_h,
                }))
            })
            .collect();
        let temp: Vec<CompositeValue> = (0..n)
            .map(|i| val(basal_at(i).filter(|b| b.kind == BasalKind::Temp).map(|b| round(b.rate_u_h, 3))))
            .collect();
        let suspended: Vec<(MarkAreaData, MarkAreaData)> = day
            .basal
            .iter()
            .filter(|b| b.kind == BasalKind::Suspended)
            .map(|b| {
                (
                    MarkAreaData::new().name(t("Suspended")).x_axis(labels[slot(b.start_sec)].clone()),
                    MarkAreaData::new().x_axis(labels[slot(b.end_sec)].clone()),
                )
            })
            .collect();
        // A bar for what was given at once; the extended part of a square or dual bolus is a
        // step line at its rate (U/h, on the basal axis) from the bolus to the end of its
        // duration (clipped at the day's end), added up where two overlap.
        let boluses: Vec<DataPoint> = day
            .boluses
            .iter()
            .filter(|b| b.now_u() > 0.0 || b.extended().is_none())
            .map(|b| pair(slot(b.sec), CompositeValue::from(round(b.now_u(), 2))))
            .collect();
        let extended: Vec<CompositeValue> = (0..n)
            .map(|i| {
                let at = i as u32 * 300 + 1;
                let rate: f64 = day
                    .boluses
                    .iter()
                    .filter_map(|b| b.extended().filter(|&(_, end)| b.sec <= at && at < end).map(|x| x.0))
                    .sum();
                val((rate > 0.0).then(|| round(rate, 3)))
            })
            .collect();
        let has_extended = day.boluses.iter().any(|b| b.extended().is_some());
        let carbs: Vec<DataPoint> =
            day.carbs.iter().map(|x| pair(slot(x.sec), CompositeValue::from(round(x.grams, 0)))).collect();
        let mut basal_line = Line::new()
            .name(t("Basal"))
            .x_axis_index(1.0)
            .y_axis_index(1.0)
            .show_symbol(false)
            .symbol(Symbol::None)
            .step(Step::End)
            .line_style(LineStyle::new().color(BASAL).width(1.5))
            .item_style(ItemStyle::new().color(BASAL))
            .area_style(AreaStyle::new().color("rgba(124, 58, 237, 0.12)"))
            .data(delivered);
        if !suspended.is_empty() {
            basal_line = basal_line.mark_area(
                MarkArea::new()
                    .silent(true)
                    .item_style(ItemStyle::new().color("rgba(107, 114, 128, 0.25)"))
                    .label(Label::new().show(true).color(MUTED).formatter("{b}"))
                    .data(suspended),
            );
        }
        c = c
            .grid(Grid::new().left(56).right(56).top("62%").bottom(64))
            .x_axis(category(labels).grid_index(1.0).axis_label(AxisLabel::new().interval(every)))
            .y_axis(value_axis("U · U/h").grid_index(1.0).min(0))
            .y_axis(value_axis("g").grid_index(1.0).min(0).split_line(SplitLine::new().show(false)))
            .series(basal_line)
            .series(
                quiet_line(t("Scheduled basal"))
                    .x_axis_index(1.0)
                    .y_axis_index(1.0)
                    .step(Step::End)
                    .line_style(LineStyle::new().color(MUTED).type_(LineStyleType::Dashed).width(1.0))
                    .item_style(ItemStyle::new().color(MUTED))
                    .data(scheduled),
            )
            .series(
                quiet_line(t("Temp basal"))
                    .x_axis_index(1.0)
                    .y_axis_index(1.0)
                    .step(Step::End)
                    .line_style(LineStyle::new().color("#c026d3").width(2.0))
                    .item_style(ItemStyle::new().color("#c026d3"))
                    .data(temp),
            )
            .series(
                Bar::new()
                    .name(t("Bolus"))
                    .x_axis_index(1.0)
                    .y_axis_index(1.0)
                    .bar_width(4)
                    .item_style(ItemStyle::new().color(BOLUS))
                    .data(boluses),
            )
            .series(
                Bar::new()
                    .name(t("Carbs"))
                    .x_axis_index(1.0)
                    .y_axis_index(2.0)
                    .bar_width(4)
                    .item_style(ItemStyle::new().color(CARBS))
                    .data(carbs),
            );
        if has_extended {
            c = c.series(
                quiet_line(t("Extended bolus (U/h)"))
                    .x_axis_index(1.0)
                    .y_axis_index(1.0)
                    .step(Step::End)
                    .line_style(LineStyle::new().color(BOLUS).width(2.0))
                    .item_style(ItemStyle::new().color(BOLUS))
                    .area_style(AreaStyle::new().color("rgba(37, 99, 235, 0.15)"))
                    .data(extended),
            );
        }
    }
    c.data_zoom(DataZoom::new().type_(DataZoomType::Inside).x_axis_index(zoom_axes.clone()))
        .data_zoom(DataZoom::new().type_(DataZoomType::Slider).x_axis_index(zoom_axes).bottom(8))
}

fn hour_labels() -> Vec<String> {
    (0..24).map(|h| format!("{h:02}:00")).collect()
}

fn hourly_ranges(trends: &Trends, unit: GlucoseUnit) -> Chart {
    let get = |f: fn(&therapy::report_data::HourTrend) -> Option<f64>| -> Vec<CompositeValue> {
        trends.hours.iter().map(|h| val(f(h).map(|v| round(v, 1)))).collect()
    };
    let mean: Vec<CompositeValue> = trends.hours.iter().map(|h| val(h.mean_mg_dl.map(|m| glucose(unit, m)))).collect();
    let l = unit.label();
    Chart::new()
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .legend(Legend::new().type_(LegendType::Scroll).top(0))
        .grid(Grid::new().left(48).right(56).top(36).bottom(28))
        .x_axis(Axis::new().type_(AxisType::Category).data(hour_labels()))
        .y_axis(value_axis("%").min(0).max(100))
        .y_axis(value_axis(l).min(0).split_line(SplitLine::new().show(false)))
        .series(
            Bar::new()
                .name(t("Below range"))
                .stack("r")
                .item_style(ItemStyle::new().color(LOW))
                .data(get(|h| h.below_percent)),
        )
        .series(
            Bar::new()
                .name(t("In range"))
                .stack("r")
                .item_style(ItemStyle::new().color(IN_RANGE))
                .data(get(|h| h.in_range_percent)),
        )
        .series(
            Bar::new()
                .name(t("Above range"))
                .stack("r")
                .item_style(ItemStyle::new().color(HIGH))
                .data(get(|h| h.above_percent)),
        )
        .series(
            Line::new()
                .name(tf("Mean ({unit})", &[("unit", &l)]))
                .y_axis_index(1.0)
                .symbol(Symbol::Circle)
                .symbol_size(5)
                .line_style(LineStyle::new().color("#111827").width(2.0))
                .item_style(ItemStyle::new().color("#111827"))
                .data(mean),
        )
}

fn hourly_insulin(trends: &Trends) -> Chart {
    let bolus: Vec<CompositeValue> = trends.hours.iter().map(|h| val(Some(round(h.bolus_u_per_day, 2)))).collect();
    let carbs: Vec<CompositeValue> = trends.hours.iter().map(|h| val(Some(round(h.carbs_g_per_day, 1)))).collect();
    let basal: Vec<CompositeValue> = trends.hours.iter().map(|h| val(h.basal_u_h.map(|b| round(b, 3)))).collect();
    Chart::new()
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .legend(Legend::new().type_(LegendType::Scroll).top(0))
        .grid(Grid::new().left(48).right(56).top(36).bottom(28))
        .x_axis(Axis::new().type_(AxisType::Category).data(hour_labels()))
        .y_axis(value_axis("U · U/h").min(0))
        .y_axis(value_axis("g").min(0).split_line(SplitLine::new().show(false)))
        .series(Bar::new().name(t("Bolus U/day")).item_style(ItemStyle::new().color(BOLUS)).data(bolus))
        .series(
            Bar::new().name(t("Carbs g/day")).y_axis_index(1.0).item_style(ItemStyle::new().color(CARBS)).data(carbs),
        )
        .series(
            Line::new()
                .name(t("Basal U/h"))
                .step(Step::End)
                .symbol(Symbol::None)
                .line_style(LineStyle::new().color(BASAL).width(2.0))
                .item_style(ItemStyle::new().color(BASAL))
                .data(basal),
        )
}

fn logbook_totals(days: &[LogbookDay]) -> Chart {
    let labels: Vec<String> = days.iter().map(|d| d.date.format("%m-%d").to_string()).collect();
    let basal: Vec<CompositeValue> = days.iter().map(|d| val(d.basal_u.map(|b| round(b, 1)))).collect();
    let bolus: Vec<CompositeValue> = days.iter().map(|d| val(Some(round(d.bolus_u, 1)))).collect();
    let carbs: Vec<CompositeValue> = days.iter().map(|d| val(Some(round(d.carbs_g, 0)))).collect();
    let mut c = Chart::new()
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .legend(Legend::new().type_(LegendType::Scroll).top(0))
        .grid(Grid::new().left(48).right(56).top(36).bottom(if days.len() > 31 { 56 } else { 28 }))
        .x_axis(Axis::new().type_(AxisType::Category).data(labels))
        .y_axis(value_axis("U").min(0))
        .y_axis(value_axis("g").min(0).split_line(SplitLine::new().show(false)))
        .series(Bar::new().name(t("Basal U")).stack("u").item_style(ItemStyle::new().color(BASAL)).data(basal))
        .series(Bar::new().name(t("Bolus U")).stack("u").item_style(ItemStyle::new().color(BOLUS)).data(bolus))
        .series(
            Line::new()
                .name(t("Carbs g"))
                .y_axis_index(1.0)
                .symbol(Symbol::Circle)
                .symbol_size(6)
                .line_style(LineStyle::new().color(CARBS).width(2.0))
                .item_style(ItemStyle::new().color(CARBS))
                .data(carbs),
        );
    if days.len() > 31 {
        c = c
            .data_zoom(DataZoom::new().type_(DataZoomType::Inside))
            .data_zoom(DataZoom::new().type_(DataZoomType::Slider).bottom(6));
    }
    c
}

fn basal_profile(p: &BasalProfile, label_hours: u32) -> Chart {
    let n = 96usize;
    let labels: Vec<String> = (0..n).map(|i| hhmm(i as u32 * 15)).collect();
    let rate_at =
        |m: u32| p.entries.iter().rev().find(|e| e.start_min <= m).or(p.entries.last()).map(|e| round(e.value, 3));
    let data: Vec<CompositeValue> = (0..n).map(|i| val(rate_at(i as u32 * 15))).collect();
    Chart::new()
        .tooltip(Tooltip::new().trigger(Trigger::Axis).formatter("{b0}: {c0} U/h"))
        .grid(Grid::new().left(48).right(16).top(24).bottom(28))
        .x_axis(
            Axis::new()
                .type_(AxisType::Category)
                .data(labels)
                .axis_label(AxisLabel::new().interval(f64::from(label_hours * 4) - 1.0)),
        )
        .y_axis(value_axis("U/h").min(0))
        .series(
            Line::new()
                .name(p.name.clone())
                .step(Step::End)
                .symbol(Symbol::None)
                .line_style(LineStyle::new().color(BASAL).width(2.0))
                .item_style(ItemStyle::new().color(BASAL))
                .area_style(AreaStyle::new().color("rgba(124, 58, 237, 0.15)"))
                .data(data),
        )
}
