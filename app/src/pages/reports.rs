//! Report pages: Overview / AGP, Daily, Trends, Logbook and Device settings.
//!
//! Every page renders its figures and data tables on the server, so it reads
//! before the wasm loads and without JavaScript; after hydration the charts
//! (ECharts through charming, see [`super::report_charts`]) are drawn into
//! their boxes. Glucose is shown in the viewer's unit.

use crate::api_reports::{
    DailyData, DeviceData, LogbookData, OverviewData, ReportMeta, TrendsData, report_daily, report_device,
    report_logbook, report_overview, report_trends,
};
use crate::components::{ErrorCard, Figure, RequireUser, UserResource, pct};
use crate::i18n::{lang, num, t, tf, tp};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use therapy::GlucoseUnit;
use therapy::metrics::{AgpBin, GlucoseReport};
use therapy::report_data::{BasalKind, BasalProfile, DayView, LogbookDay, Trends};

/// The report pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Daily,
    Trends,
    Logbook,
    Device,
}

impl Tab {
    const ALL: [Tab; 5] = [Tab::Overview, Tab::Daily, Tab::Trends, Tab::Logbook, Tab::Device];

    fn path(self) -> &'static str {
        match self {
            Tab::Overview => "/reports",
            Tab::Daily => "/reports/daily",
            Tab::Trends => "/reports/trends",
            Tab::Logbook => "/reports/logbook",
            Tab::Device => "/reports/settings",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Tab::Overview => t("Overview"),
            Tab::Daily => t("Daily"),
            Tab::Trends => t("Trends"),
            Tab::Logbook => t("Logbook"),
            Tab::Device => t("Device settings"),
        }
    }
}

/// What a chart box draws (the data it needs, cloned in).
#[derive(Clone, Debug, PartialEq)]
pub enum ChartSpec {
    Tir(Box<GlucoseReport>),
    Agp(Vec<AgpBin>, u32),
    Daily(Box<DayView>, bool),
    HourlyRanges(Trends),
    HourlyInsulin(Trends),
    LogbookTotals(Vec<LogbookDay>),
    BasalProfile(BasalProfile),
}

/// A box the browser draws a chart into after hydration; on the server (and
/// without JavaScript) it is an empty, labelled figure beside its data table.
#[component]
fn ChartBox(id: String, height: u32, label: String, spec: ChartSpec, unit: GlucoseUnit) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    {
        let id = id.clone();
        Effect::new(move |_| {
            let (id, spec) = (id.clone(), spec.clone());
            request_animation_frame(move || super::report_charts::draw(&id, height, &spec, unit, 0));
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (&spec, unit);
    view! {
        <div class="chart" id=id.clone() role="img" aria-label=label data-chart=id style=format!("height:{height}px")></div>
    }
}

fn qv(key: &'static str) -> impl Fn() -> Option<String> + Copy + Send + Sync + 'static {
    let query = use_query_map();
    move || query.with(|q| q.get(key)).filter(|s| !s.trim().is_empty())
}

/// A number formatted with a `.` decimal point, with the page language's separator.
fn dec(s: String) -> String {
    match lang().decimal_sep() {
        '.' => s,
        sep => s.replace('.', &sep.to_string()),
    }
}

/// A glucose value given in mg/dL, in `unit` and the page's language ("138" / "7,7").
fn gv(unit: GlucoseUnit, mg_dl: f64) -> String {
    dec(unit.format(mg_dl))
}

/// "138 mg/dL" / "7.7 mmol/L", or "–".
fn glu(unit: GlucoseUnit, v: Option<f64>) -> String {
    v.map(|x| format!("{} {}", gv(unit, x), unit.label())).unwrap_or_else(|| "–".into())
}

fn opt_num(v: Option<f64>, decimals: usize, suffix: &str) -> String {
    v.map(|x| format!("{}{suffix}", num(x, decimals))).unwrap_or_else(|| "–".into())
}

fn range_label(unit: GlucoseUnit, lo: f64, hi: f64) -> String {
    format!("{}–{} {}", gv(unit, lo), gv(unit, hi), unit.label())
}

/// The separator of a list of numbers: "; " where the decimal separator is a comma.
fn list_sep() -> &'static str {
    if lang().decimal_sep() == ',' { "; " } else { ", " }
}

/// An ISO date (`YYYY-MM-DD`) shown in the page's language, or the text itself.
fn date_text(iso: &str) -> String {
    iso.parse::<chrono::NaiveDate>().map(|d| lang().date(d)).unwrap_or_else(|_| iso.to_string())
}

/// A local `YYYY-MM-DD HH:MM` shown in the page's language, or the text itself.
fn local_time_text(s: &str) -> String {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
        .map(|d| lang().datetime(d))
        .unwrap_or_else(|_| s.to_string())
}

fn hhmm(minute: u32) -> String {
    format!("{:02}:{:02}", (minute / 60) % 24, minute % 60)
}

/// `&patient=…` when the page shows another patient's data (a clinician's
/// or care partner's view), so every link stays on that patient.
fn patient_param() -> String {
    use_query_map()
        .with_untracked(|q| q.get("patient"))
        .filter(|p| !p.trim().is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(|p| format!("&patient={p}"))
        .unwrap_or_default()
}

/// Appends [`patient_param`] to a URL (with or without a query already).
fn with_patient(url: String, pp: &str) -> String {
    if pp.is_empty() {
        url
    } else if url.contains('?') {
        format!("{url}{pp}")
    } else {
        format!("{url}?{}", &pp[1..])
    }
}

fn query_string(from: Option<String>, to: Option<String>) -> String {
    let mut parts = Vec::new();
    if let Some(f) = from {
        parts.push(format!("from={f}"));
    }
    if let Some(t) = to {
        parts.push(format!("to={t}"));
    }
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

/// The sub-navigation between report pages, keeping the window.
#[component]
fn ReportNav(tab: Tab) -> impl IntoView {
    let (from, to, date) = (qv("from"), qv("to"), qv("date"));
    let pp = patient_param();
    let href = move |t: Tab| {
        if t == Tab::Daily {
            // The day: on the daily page its own; elsewhere the window's last.
            let d = if tab == Tab::Daily { date() } else { to() };
            return with_patient(format!("{}{}", t.path(), d.map(|d| format!("?date={d}")).unwrap_or_default()), &pp);
        }
        // From the daily page, the other pages show the 14 days ending on its day.
        let (f, e) = if tab == Tab::Daily { (None, date()) } else { (from(), to()) };
        with_patient(format!("{}{}", t.path(), query_string(f, e)), &pp)
    };
    view! {
        <nav class="subnav" aria-label=t("Reports")>
            {Tab::ALL.into_iter().map(|t| {
                let current = (t == tab).then_some("page");
                let href = href.clone();
                view! { <a class="subnav-link" href=move || href(t) aria-current=current>{t.label()}</a> }
            }).collect_view()}
        </nav>
    }
}

/// Patient, window, range presets, a custom range and the PDF link.
#[component]
fn RangeBar(meta: ReportMeta, tab: Tab) -> impl IntoView {
    let pp = patient_param();
    let to = meta.to.parse::<chrono::NaiveDate>().ok();
    let presets = [7i64, 14, 30, 90]
        .into_iter()
        .filter_map(|n| {
            let end = to?;
            let f = end - chrono::Duration::days(n - 1);
            let active = u32::try_from(n).ok() == Some(meta.days) && meta.from == f.to_string();
            Some(view! {
                <a class="chip" href=format!("{}?from={f}&to={end}{pp}", tab.path()) aria-current=active.then_some("true")
                    data-testid=format!("preset-{n}")>{tp(n, "{n} day", "{n} days")}</a>
            })
        })
        .collect_view();
    let pdf = format!("/api/v1/patients/{}/report.pdf?from={}&to={}", meta.patient_id, meta.from, meta.to);
    let protected = format!("/api/v1/patients/{}/protected-report?from={}&to={}", meta.patient_id, meta.from, meta.to);
    let newest = meta.newest.clone();
    view! {
        <div class="report-head">
            <div>
                <p class="report-patient" data-testid="report-patient">{meta.patient_name.clone()}</p>
                <p class="muted small" data-testid="report-window">
                    {tf("{from} to {to} · {days} · times in {zone}", &[
                        ("from", &date_text(&meta.from)),
                        ("to", &date_text(&meta.to)),
                        ("days", &tp(i64::from(meta.days), "{n} day", "{n} days")),
                        ("zone", &meta.time_zone),
                    ])}
                    {newest.map(|n| tf(" · newest data {date}", &[("date", &date_text(&n))]))}
                </p>
            </div>
            <div class="pdf-actions">
                <a class="btn" href=pdf rel="external" download="" data-testid="pdf-link">{t("Download PDF")}</a>
                <button type="button" class="btn btn-quiet" data-protected-pdf=protected data-testid="protected-pdf"
                    title=t("For sending outside Diabase: the PDF opens only with a password shown once")>{t("PDF with password")}</button>
                <div data-protected-pdf-result="" hidden=true role="status"></div>
            </div>
        </div>
        <div class="range-bar">
            <div class="chips" role="group" aria-label=t("Date range")>{presets}</div>
            <form class="range-form" method="get" action=tab.path()>
                {(!meta.is_own).then(|| view! { <input type="hidden" name="patient" value=meta.patient_id.clone()/> })}
                <label>{t("From ")}<input type="date" name="from" value=meta.from.clone() required=true/></label>
                <label>{t("to ")}<input type="date" name="to" value=meta.to.clone() required=true/></label>
                <button type="submit" class="btn btn-quiet">{t("Show")}</button>
            </form>
        </div>
    }
}

fn loading() -> impl IntoView {
    view! { <p class="loading">{t("Loading the report…")}</p> }
}

fn no_patient() -> AnyView {
    view! {
        <section class="card empty-state" data-testid="no-patient">
            <h2>{t("No patient data here")}</h2>
            <p>{t("This account has no diabetes data of its own. Reports of patients who share their data with you will open from the clinic workspace.")}</p>
        </section>
    }
    .into_any()
}

fn unit_of(me: Result<Option<crate::model::Me>, ServerFnError>) -> GlucoseUnit {
    me.ok().flatten().map(|m| m.unit()).unwrap_or_default()
}

/// The frame of every report page.
#[component]
fn ReportFrame(tab: Tab, children: ChildrenFn) -> impl IntoView {
    view! {
        <Title text=tf("Reports: {page}", &[("page", &tab.label())])/>
        <h1 class="page-title">{t("Reports")}</h1>
        <RequireUser>
            <ReportNav tab=tab/>
            {children()}
        </RequireUser>
    }
}

// ---------------------------------------------------------------------------
// Overview / AGP

#[component]
pub fn ReportsOverviewPage() -> impl IntoView {
    view! { <ReportFrame tab=Tab::Overview><OverviewBody/></ReportFrame> }
}

#[component]
fn OverviewBody() -> impl IntoView {
    let user = UserResource::use_();
    let (from, to) = (qv("from"), qv("to"));
    let patient = qv("patient");
    let data = Resource::new(move || (from(), to(), patient()), |(f, t, p)| report_overview(f, t, p));
    view! {
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                let unit = unit_of(user.me.await);
                match data.await {
                    Ok(Some(d)) => view! { <Overview d=d unit=unit/> }.into_any(),
                    Ok(None) => no_patient(),
                    Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Overview(d: OverviewData, unit: GlucoseUnit) -> impl IntoView {
    let g = d.glucose.clone();
    let tir = [
        ("very-high", t("Very high"), g.very_high_percent, format!("> {} {}", gv(unit, 250.0), unit.label()), "< 5 %"),
        ("high", t("High"), g.high_percent, range_label(unit, 181.0, 250.0), t("< 25 % above range")),
        ("in-range", t("In range"), g.in_range_percent, range_label(unit, 70.0, 180.0), "> 70 %"),
        ("low", t("Low"), g.low_percent, range_label(unit, 54.0, 69.0), t("< 4 % below range")),
        ("very-low", t("Very low"), g.very_low_percent, format!("< {} {}", gv(unit, 54.0), unit.label()), "< 1 %"),
    ];
    let empty = g.readings == 0;
    let episodes = d.episodes.clone();
    view! {
        <RangeBar meta=d.meta.clone() tab=Tab::Overview/>
        {(!g.sufficient && !empty).then(|| view! {
            <div class="alert alert-warn" role="status" data-testid="insufficient">
                {tf("Sensor data covers {percent} of the expected readings over {days} day(s). The consensus asks for at least 70 % over 14 days before these figures represent usual glucose.",
                    &[("percent", &pct(g.cgm_active_percent)), ("days", &g.days)])}
            </div>
        })}
        {empty.then(|| view! {
            <section class="card empty-state" data-testid="report-empty">
                <h2>{t("No CGM readings in these days")}</h2>
                <p>{t("Choose another range, or upload your sensor data.")}</p>
            </section>
        })}
        <div class="grid-2">
            <section class="card" aria-labelledby="tir-h">
                <h2 id="tir-h">{t("Time in ranges")}</h2>
                <div class="tir-chart-row">
                    <ChartBox id="chart-tir".into() height=260 label=t("Time in ranges, stacked").into() spec=ChartSpec::Tir(Box::new(g.clone())) unit=unit/>
                    <ul class="tir-legend">
                        {tir.iter().map(|(cls, label, v, range, target)| view! {
                            <li>
                                <span class=format!("swatch tir-{cls}")></span>
                                <span class="tir-label">{*label}</span>
                                <span class="tir-range">{tf("{range} · target {target}", &[("range", range), ("target", target)])}</span>
                                <strong data-testid=format!("tir-{cls}")>{pct(*v)}</strong>
                            </li>
                        }).collect_view()}
                    </ul>
                </div>
            </section>
            <section class="card" aria-labelledby="fig-h">
                <h2 id="fig-h">{t("Key figures")}</h2>
                <div class="figures figures-tight">
                    <div data-testid="fig-mean"><Figure label=t("Mean glucose") value=glu(unit, g.mean_mg_dl)/></div>
                    <Figure label="GMI" value=g.gmi_percent.map(|v| lang().percent(v, 1)).unwrap_or_else(|| "–".into()) hint=t("glucose management indicator")/>
                    <Figure label=t("Variability (CV)") value=pct(g.cv_percent) hint=t("target ≤ 36 %")/>
                    <div data-testid="fig-sd"><Figure label=t("SD") value=glu(unit, g.sd_mg_dl)/></div>
                    <Figure label=t("Sensor active") value=pct(g.cgm_active_percent)/>
                    <Figure label=t("Readings") value=g.readings.to_string()/>
                    <Figure label="GRI" value=opt_num(g.gri, 1, "") hint=t("glycemia risk index, 0–100")/>
                    <Figure label=t("Hypo episodes") value=g.hypo_episode_count.to_string() hint=t("≥ 15 min below 54 mg/dL")/>
                </div>
            </section>
        </div>
        <section class="card" aria-labelledby="agp-h">
            <h2 id="agp-h">{t("Ambulatory glucose profile")}</h2>
            <p class="muted small">{tf("All days overlaid by time of day: the median, the 25–75 % and 5–95 % bands, in {bin}-minute bins. Target range {range}.", &[("bin", &g.agp_bin_min), ("range", &range_label(unit, 70.0, 180.0))])}</p>
            <ChartBox id="chart-agp".into() height=340 label=t("Ambulatory glucose profile").into() spec=ChartSpec::Agp(g.agp.clone(), g.agp_bin_min) unit=unit/>
            <details class="data-table" open=true>
                <summary>{tf("Percentiles by hour ({unit})", &[("unit", &unit.label())])}</summary>
                <div class="table-scroll">
                    <table class="table table-compact" data-testid="agp-table">
                        <thead><tr><th scope="col">{t("Hour")}</th><th scope="col">"5 %"</th><th scope="col">"25 %"</th><th scope="col">{t("Median")}</th><th scope="col">"75 %"</th><th scope="col">"95 %"</th><th scope="col">{t("Readings")}</th></tr></thead>
                        <tbody>
                            {d.agp_hourly.iter().map(|b| view! {
                                <tr>
                                    <td>{hhmm(b.minute)}</td>
                                    <td>{gv(unit, b.p5)}</td>
                                    <td>{gv(unit, b.p25)}</td>
                                    <td>{gv(unit, b.p50)}</td>
                                    <td>{gv(unit, b.p75)}</td>
                                    <td>{gv(unit, b.p95)}</td>
                                    <td>{b.n}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            </details>
        </section>
        <div class="grid-2">
            <section class="card" aria-labelledby="ins-h">
                <h2 id="ins-h">{t("Insulin and carbohydrate")}</h2>
                {match (&d.insulin, d.pump_data) {
                    (None, _) => view! { <p class="muted">{t("Insulin data is not shared with you.")}</p> }.into_any(),
                    (Some(_), false) => view! { <p class="muted" data-testid="no-pump">{t("No pump data in these days.")}</p> }.into_any(),
                    (Some(s), true) if d.basal_data => view! {
                        <div class="figures figures-tight" data-testid="insulin-summary">
                            <Figure label=t("Total daily dose") value=opt_num(s.total_daily_dose_u, 1, " U")/>
                            <Figure label=t("Basal per day") value=format!("{} ({})", opt_num(s.basal_u_per_day, 1, " U"), pct(s.basal_percent))/>
                            <Figure label=t("Bolus per day") value=format!("{} ({})", opt_num(s.bolus_u_per_day, 1, " U"), pct(s.bolus_percent))/>
                            <Figure label=t("Boluses per day") value=opt_num(s.boluses_per_day, 1, "")/>
                            <Figure label=t("Carbs per day") value=opt_num(s.carbs_g_per_day, 0, " g")/>
                        </div>
                    }.into_any(),
                    (Some(s), true) => view! {
                        <div class="figures figures-tight" data-testid="insulin-summary">
                            <Figure label=t("Bolus per day") value=opt_num(s.bolus_u_per_day, 1, " U")/>
                            <Figure label=t("Boluses per day") value=opt_num(s.boluses_per_day, 1, "")/>
                            <Figure label=t("Carbs per day") value=opt_num(s.carbs_g_per_day, 0, " g")/>
                        </div>
                        <p class="muted small" data-testid="no-basal">{t("No basal data in these days (pump basal, or long-acting insulin logged as a dose), so no total daily dose.")}</p>
                    }.into_any(),
                }}
            </section>
            <section class="card" aria-labelledby="hypo-h">
                <h2 id="hypo-h">{t("Hypoglycaemia episodes")}</h2>
                {if episodes.is_empty() {
                    view! { <p class="muted">{t("No episode of 15 minutes or more below 54 mg/dL.")}</p> }.into_any()
                } else {
                    let more = episodes.len().saturating_sub(10);
                    view! {
                        <table class="table table-compact">
                            <thead><tr><th scope="col">{t("Start")}</th><th scope="col">{t("Duration")}</th><th scope="col">{t("Lowest")}</th></tr></thead>
                            <tbody>
                                {episodes.iter().rev().take(10).map(|e| view! {
                                    <tr><td>{local_time_text(&e.start_local)}</td><td>{tf("{n} min", &[("n", &e.minutes)])}</td><td>{glu(unit, Some(f64::from(e.min_mg_dl)))}</td></tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                        {(more > 0).then(|| view! { <p class="muted small">{tf("and {n} earlier", &[("n", &more)])}</p> })}
                    }.into_any()
                }}
            </section>
        </div>
    }
}

// ---------------------------------------------------------------------------
// Daily

#[component]
pub fn ReportsDailyPage() -> impl IntoView {
    view! { <ReportFrame tab=Tab::Daily><DailyBody/></ReportFrame> }
}

#[component]
fn DailyBody() -> impl IntoView {
    let user = UserResource::use_();
    let date = qv("date");
    let patient = qv("patient");
    let data = Resource::new(move || (date(), patient()), |(d, p)| report_daily(d, p));
    view! {
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                let unit = unit_of(user.me.await);
                match data.await {
                    Ok(Some(d)) => view! { <Daily d=d unit=unit/> }.into_any(),
                    Ok(None) => no_patient(),
                    Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// One row of the day's event table.
struct EventRow {
    sec: u32,
    what: &'static str,
    value: String,
    class: &'static str,
}

fn day_events(day: &DayView, unit: GlucoseUnit) -> Vec<EventRow> {
    let mut rows = Vec::new();
    for b in &day.bg {
        rows.push(EventRow {
            sec: b.sec,
            what: t("Fingerstick"),
            value: glu(unit, Some(f64::from(b.mg_dl))),
            class: "ev-bg",
        });
    }
    for b in &day.boluses {
        let kind = match (b.subtype.as_deref(), b.duration_min) {
            (Some("dual"), Some(m)) if b.extended().is_some() => tf(
                " (dual wave: {now} U now, {ext} U over {min} min)",
                &[("now", &num(b.now_u(), 2)), ("ext", &num(b.extended_u.unwrap_or(0.0), 2)), ("min", &m)],
            ),
            (Some("dual"), Some(m)) => tf(" (dual wave, {min} min)", &[("min", &m)]),
            (Some("square"), Some(m)) => tf(" (square wave, {min} min)", &[("min", &m)]),
            _ => String::new(),
        };
        rows.push(EventRow {
            sec: b.sec,
            what: t("Bolus"),
            value: format!("{} U{kind}", num(b.units, 2)),
            class: "ev-bolus",
        });
    }
    for c in &day.carbs {
        rows.push(EventRow {
            sec: c.sec,
            what: t("Carbs"),
            value: format!("{} g", num(c.grams, 0)),
            class: "ev-carbs",
        });
    }
    for b in &day.basal {
        let until = day.clock_sec(b.end_sec);
        let (what, value) = match b.kind {
            BasalKind::Temp => (
                t("Temp basal"),
                match b.percent {
                    Some(p) => tf(
                        "{percent} → {rate} U/h until {time}",
                        &[("percent", &lang().percent(p, 0)), ("rate", &num(b.rate_u_h, 3)), ("time", &until)],
                    ),
                    None => tf("{rate} U/h until {time}", &[("rate", &num(b.rate_u_h, 3)), ("time", &until)]),
                },
            ),
            BasalKind::Suspended => (t("Suspended"), tf("until {time}", &[("time", &until)])),
            BasalKind::Scheduled => continue,
        };
        rows.push(EventRow { sec: b.start_sec, what, value, class: "ev-basal" });
    }
    for a in &day.alarms {
        let text = match (&a.description, a.code) {
            (Some(d), _) => d.clone(),
            (None, Some(c)) => tf("code {code}", &[("code", &c)]),
            (None, None) => t("alarm").into(),
        };
        rows.push(EventRow { sec: a.sec, what: t("Alarm"), value: text, class: "ev-alarm" });
    }
    rows.sort_by_key(|r| r.sec);
    rows
}

#[component]
fn Daily(d: DailyData, unit: GlucoseUnit) -> impl IntoView {
    let day = d.day.clone();
    let s = day.stats.clone();
    let events = day_events(&day, unit);
    let weekday = lang().date_long(day.date);
    let cgm_hours: Vec<(u32, Option<f64>, usize)> = (0..day.minutes.div_ceil(60))
        .map(|h| {
            let v: Vec<u16> = day.cgm.iter().filter(|(sec, _)| sec / 3600 == h).map(|(_, v)| *v).collect();
            let mean = (!v.is_empty()).then(|| v.iter().map(|x| f64::from(*x)).sum::<f64>() / v.len() as f64);
            (h, mean, v.len())
        })
        .collect();
    let scheduled: Vec<(String, String, String, String)> = day
        .basal
        .iter()
        .map(|b| {
            let kind = match b.kind {
                BasalKind::Scheduled => t("scheduled"),
                BasalKind::Temp => t("temp"),
                BasalKind::Suspended => t("suspended"),
            };
            (
                day.clock_sec(b.start_sec),
                day.clock_sec(b.end_sec.min(day.minutes * 60)),
                kind.to_string(),
                num(b.rate_u_h, 3),
            )
        })
        .collect();
    let meta = d.meta.clone();
    view! {
        <div class="report-head">
            <div>
                <p class="report-patient" data-testid="report-patient">{meta.patient_name.clone()}</p>
                <p class="muted small">{tf("Times in {zone}", &[("zone", &meta.time_zone)])}</p>
            </div>
            <a class="btn" rel="external" download="" data-testid="pdf-link"
                href=format!("/api/v1/patients/{}/report.pdf?from={}&to={}", meta.patient_id, meta.to, meta.to)>{t("Download PDF")}</a>
        </div>
        <div class="day-nav">
            <a class="btn btn-quiet" href=with_patient(format!("/reports/daily?date={}", d.prev), &patient_param()) data-testid="prev-day">{t("← Previous day")}</a>
            <h2 class="day-title" data-testid="day-title">{weekday}</h2>
            <a class="btn btn-quiet" href=with_patient(format!("/reports/daily?date={}", d.next), &patient_param()) data-testid="next-day">{t("Next day →")}</a>
            <form class="range-form" method="get" action="/reports/daily">
                {(!d.meta.is_own).then(|| view! { <input type="hidden" name="patient" value=d.meta.patient_id.clone()/> })}
                <label>{t("Day ")}<input type="date" name="date" value=day.date.to_string()/></label>
                <button type="submit" class="btn btn-quiet">{t("Show")}</button>
            </form>
        </div>
        <section class="card">
            <div class="figures figures-tight">
                <Figure label=t("Mean glucose") value=glu(unit, s.mean_mg_dl)/>
                <Figure label=t("In range") value=pct(s.in_range_percent)/>
                <Figure label=t("Below 70") value=pct(s.low_percent.zip(s.very_low_percent).map(|(a, b)| a + b))/>
                <Figure label=t("Above 180") value=pct(s.high_percent.zip(s.very_high_percent).map(|(a, b)| a + b))/>
                <Figure label=t("Carbs") value=format!("{} g", num(s.carbs_g, 0))/>
                <Figure label=t("Bolus") value=format!("{} U", num(s.bolus_u, 1))/>
                <Figure label=t("Basal") value=opt_num(s.basal_u, 1, " U")/>
                <Figure label=t("Total insulin") value=opt_num(s.total_u, 1, " U")/>
            </div>
            {(s.readings == 0).then(|| view! { <p class="muted" data-testid="day-empty">{t("No CGM readings on this day.")}</p> })}
            <ChartBox id=format!("chart-daily-{}", day.date) height=520 label=tf("Glucose, insulin and carbs on {date}", &[("date", &lang().date(day.date))])
                spec=ChartSpec::Daily(Box::new(day.clone()), d.insulin_visible) unit=unit/>
            <p class="muted small">{tf("Target range {range} shaded. Drag or scroll on the chart to zoom.", &[("range", &range_label(unit, 70.0, 180.0))])}</p>
        </section>
        <div class="grid-2">
            <section class="card">
                <h2>{t("Events")}</h2>
                {if events.is_empty() {
                    view! { <p class="muted">{t("No boluses, carbs, fingersticks, temp basals or alarms on this day.")}</p> }.into_any()
                } else {
                    view! {
                        <table class="table table-compact" data-testid="day-events">
                            <thead><tr><th scope="col">{t("Time")}</th><th scope="col">{t("Event")}</th><th scope="col">{t("Value")}</th></tr></thead>
                            <tbody>
                                {events.into_iter().map(|e| view! {
                                    <tr class=e.class><td>{day.clock_sec(e.sec)}</td><td>{e.what}</td><td>{e.value}</td></tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }}
            </section>
            <section class="card">
                <h2>{tf("CGM by hour ({unit})", &[("unit", &unit.label())])}</h2>
                <table class="table table-compact" data-testid="day-hours">
                    <thead><tr><th scope="col">{t("From")}</th><th scope="col">{t("Mean")}</th><th scope="col">{t("Readings")}</th></tr></thead>
                    <tbody>
                        {cgm_hours.into_iter().map(|(h, mean, n)| view! {
                            <tr><td>{day.clock(h * 60)}</td><td>{mean.map(|m| gv(unit, m)).unwrap_or_else(|| "–".into())}</td><td>{n}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
                {(!scheduled.is_empty()).then(|| view! {
                    <h3>{t("Basal delivered")}</h3>
                    <table class="table table-compact" data-testid="day-basal">
                        <thead><tr><th scope="col">{t("From")}</th><th scope="col">{t("To")}</th><th scope="col">{t("Kind")}</th><th scope="col">"U/h"</th></tr></thead>
                        <tbody>
                            {scheduled.into_iter().map(|(a, b, k, r)| view! { <tr><td>{a}</td><td>{b}</td><td>{k}</td><td>{r}</td></tr> }).collect_view()}
                        </tbody>
                    </table>
                })}
            </section>
        </div>
    }
}

// ---------------------------------------------------------------------------
// Trends

#[component]
pub fn ReportsTrendsPage() -> impl IntoView {
    view! { <ReportFrame tab=Tab::Trends><TrendsBody/></ReportFrame> }
}

#[component]
fn TrendsBody() -> impl IntoView {
    let user = UserResource::use_();
    let (from, to) = (qv("from"), qv("to"));
    let patient = qv("patient");
    let data = Resource::new(move || (from(), to(), patient()), |(f, t, p)| report_trends(f, t, p));
    view! {
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                let unit = unit_of(user.me.await);
                match data.await {
                    Ok(Some(d)) => view! { <TrendsView d=d unit=unit/> }.into_any(),
                    Ok(None) => no_patient(),
                    Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn TrendsView(d: TrendsData, unit: GlucoseUnit) -> impl IntoView {
    let trends = d.trends.clone();
    view! {
        <RangeBar meta=d.meta.clone() tab=Tab::Trends/>
        <section class="card">
            <h2>{t("Glucose by time of day")}</h2>
            <p class="muted small">{tf("Share of readings below, in and above {range} in each hour, and the hourly mean.", &[("range", &range_label(unit, 70.0, 180.0))])}</p>
            <ChartBox id="chart-trends-ranges".into() height=320 label=t("Time in ranges by hour of day").into() spec=ChartSpec::HourlyRanges(trends.clone()) unit=unit/>
        </section>
        {d.pump_data.then(|| view! {
            <section class="card">
                <h2>{t("Insulin and carbs by time of day")}</h2>
                <p class="muted small">{t("Bolus and carbohydrate per day in each hour; the average basal rate delivered.")}</p>
                <ChartBox id="chart-trends-insulin".into() height=300 label=t("Insulin and carbs by hour of day").into() spec=ChartSpec::HourlyInsulin(trends.clone()) unit=unit/>
            </section>
        })}
        <section class="card">
            <h2>{t("By hour")}</h2>
            <div class="table-scroll">
                <table class="table table-compact" data-testid="trends-table">
                    <thead><tr>
                        <th scope="col">{t("Hour")}</th><th scope="col">{tf("Mean ({unit})", &[("unit", &unit.label())])}</th><th scope="col">{t("SD")}</th>
                        <th scope="col">"10 %"</th><th scope="col">{t("Median")}</th><th scope="col">"90 %"</th>
                        <th scope="col">{t("Below")}</th><th scope="col">{t("In range")}</th><th scope="col">{t("Above")}</th>
                        <th scope="col">{t("BG checks")}</th><th scope="col">{t("Carbs g/day")}</th><th scope="col">{t("Bolus U/day")}</th><th scope="col">{t("Basal U/h")}</th>
                    </tr></thead>
                    <tbody>
                        {trends.hours.iter().map(|h| view! {
                            <tr>
                                <td>{hhmm(h.hour * 60)}</td>
                                <td>{h.mean_mg_dl.map(|v| gv(unit, v)).unwrap_or_else(|| "–".into())}</td>
                                <td>{h.sd_mg_dl.map(|v| gv(unit, v)).unwrap_or_else(|| "–".into())}</td>
                                <td>{h.p10_mg_dl.map(|v| gv(unit, v)).unwrap_or_else(|| "–".into())}</td>
                                <td>{h.p50_mg_dl.map(|v| gv(unit, v)).unwrap_or_else(|| "–".into())}</td>
                                <td>{h.p90_mg_dl.map(|v| gv(unit, v)).unwrap_or_else(|| "–".into())}</td>
                                <td>{pct(h.below_percent)}</td>
                                <td>{pct(h.in_range_percent)}</td>
                                <td>{pct(h.above_percent)}</td>
                                <td>{h.bg_count}</td>
                                <td>{num(h.carbs_g_per_day, 1)}</td>
                                <td>{num(h.bolus_u_per_day, 2)}</td>
                                <td>{opt_num(h.basal_u_h, 3, "")}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
        <section class="card">
            <h2>{t("By day of the week")}</h2>
            <table class="table table-compact" data-testid="weekday-table">
                <thead><tr><th scope="col">{t("Day")}</th><th scope="col">{t("Readings")}</th><th scope="col">{tf("Mean ({unit})", &[("unit", &unit.label())])}</th><th scope="col">{t("Below")}</th><th scope="col">{t("In range")}</th><th scope="col">{t("Above")}</th></tr></thead>
                <tbody>
                    {trends.weekdays.iter().map(|w| view! {
                        <tr>
                            <td>{weekday_name(w.weekday, &w.name)}</td>
                            <td>{w.readings}</td>
                            <td>{w.mean_mg_dl.map(|v| gv(unit, v)).unwrap_or_else(|| "–".into())}</td>
                            <td>{pct(w.below_percent)}</td>
                            <td>{pct(w.in_range_percent)}</td>
                            <td>{pct(w.above_percent)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

// ---------------------------------------------------------------------------
// Logbook

#[component]
pub fn ReportsLogbookPage() -> impl IntoView {
    view! { <ReportFrame tab=Tab::Logbook><LogbookBody/></ReportFrame> }
}

#[component]
fn LogbookBody() -> impl IntoView {
    let user = UserResource::use_();
    let (from, to) = (qv("from"), qv("to"));
    let patient = qv("patient");
    let data = Resource::new(move || (from(), to(), patient()), |(f, t, p)| report_logbook(f, t, p));
    view! {
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                let unit = unit_of(user.me.await);
                match data.await {
                    Ok(Some(d)) => view! { <Logbook d=d unit=unit/> }.into_any(),
                    Ok(None) => no_patient(),
                    Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

/// A logbook period's name (`night`, `breakfast`, …) in the page's language.
fn period_name(name: &str) -> String {
    match name {
        "night" => t("Night").into(),
        "breakfast" => t("Breakfast").into(),
        "lunch" => t("Lunch").into(),
        "dinner" => t("Dinner").into(),
        "evening" => t("Evening").into(),
        other => capitalize(other),
    }
}

/// A day of the week (Monday = 0) in the page's language; `fallback` when out of range.
fn weekday_name(weekday: u32, fallback: &str) -> String {
    match weekday {
        0 => t("Monday").into(),
        1 => t("Tuesday").into(),
        2 => t("Wednesday").into(),
        3 => t("Thursday").into(),
        4 => t("Friday").into(),
        5 => t("Saturday").into(),
        6 => t("Sunday").into(),
        _ => fallback.to_string(),
    }
}

#[component]
fn Logbook(d: LogbookData, unit: GlucoseUnit) -> impl IntoView {
    let mut chrono_days = d.days.clone();
    chrono_days.reverse();
    view! {
        <RangeBar meta=d.meta.clone() tab=Tab::Logbook/>
        <section class="card">
            <h2>{t("Daily totals")}</h2>
            <ChartBox id="chart-logbook".into() height=280 label=t("Insulin and carbohydrate per day").into() spec=ChartSpec::LogbookTotals(chrono_days) unit=unit/>
        </section>
        <section class="card">
            <h2>{t("Logbook")}</h2>
            <p class="muted small">{tf("Per period of the day: CGM mean ({unit}), fingersticks, carbohydrate and bolus insulin. Newest day first.", &[("unit", &unit.label())])}</p>
            <div class="table-scroll">
                <table class="table table-compact logbook" data-testid="logbook-table">
                    <thead><tr>
                        <th scope="col">{t("Day")}</th>
                        {d.periods.iter().map(|p| view! {
                            <th scope="col">{period_name(&p.name)}<br/><span class="muted small">{format!("{}–{}", hhmm(p.start_min), hhmm(p.end_min))}</span></th>
                        }).collect_view()}
                        <th scope="col">{t("Day totals")}</th>
                    </tr></thead>
                    <tbody>
                        {d.days.iter().map(|day| view! {
                            <tr>
                                <th scope="row"><a href=with_patient(format!("/reports/daily?date={}", day.date), &patient_param())>{lang().date_weekday(day.date)}</a></th>
                                {day.cells.iter().map(|c| view! {
                                    <td>
                                        <div class="lb-cgm">{c.cgm_mean_mg_dl.map(|m| tf("CGM {value}", &[("value", &gv(unit, m))])).unwrap_or_default()}</div>
                                        {(!c.bg_mg_dl.is_empty()).then(|| view! {
                                            <div class="lb-bg">{tf("BG {values}", &[("values", &c.bg_mg_dl.iter().map(|v| gv(unit, f64::from(*v))).collect::<Vec<_>>().join(list_sep()))])}</div>
                                        })}
                                        {(c.carbs_g > 0.0).then(|| view! { <div class="lb-carbs">{format!("{} g", num(c.carbs_g, 0))}</div> })}
                                        {(c.bolus_u > 0.0).then(|| view! { <div class="lb-bolus">{format!("{} U", num(c.bolus_u, 1))}</div> })}
                                    </td>
                                }).collect_view()}
                                <td class="lb-total">
                                    <div>{day.cgm_mean_mg_dl.map(|m| tf("mean {value}", &[("value", &gv(unit, m))])).unwrap_or_else(|| t("no CGM").into())}</div>
                                    <div>{tf("{carbs} g · bolus {bolus} U", &[("carbs", &num(day.carbs_g, 0)), ("bolus", &num(day.bolus_u, 1))])}</div>
                                    {day.basal_u.map(|b| view! { <div>{tf("basal {units} U", &[("units", &num(b, 1))])}</div> })}
                                </td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

// ---------------------------------------------------------------------------
// Device settings and alarms

#[component]
pub fn ReportsDevicePage() -> impl IntoView {
    view! { <ReportFrame tab=Tab::Device><DeviceBody/></ReportFrame> }
}

#[component]
fn DeviceBody() -> impl IntoView {
    let user = UserResource::use_();
    let (from, to) = (qv("from"), qv("to"));
    let patient = qv("patient");
    let data = Resource::new(move || (from(), to(), patient()), |(f, t, p)| report_device(f, t, p));
    view! {
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                let unit = unit_of(user.me.await);
                match data.await {
                    Ok(Some(d)) => view! { <Device d=d unit=unit/> }.into_any(),
                    Ok(None) => no_patient(),
                    Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn per_unit(unit: GlucoseUnit, mg_per_u: f64) -> String {
    format!("{} {}/U", gv(unit, mg_per_u), unit.label())
}

fn setting_name(key: &str) -> String {
    match key {
        "max_bolus_u" => t("Maximum bolus (U)").into(),
        "max_basal_u_h" => t("Maximum basal rate (U/h)").into(),
        "glucose_unit" => t("Glucose unit on the device").into(),
        "sensor_high_limit_mg_dl" => t("Sensor high alert (mg/dL)").into(),
        "sensor_low_limit_mg_dl" => t("Sensor low alert (mg/dL)").into(),
        "pump_model" => t("Pump model").into(),
        "temp_basal_type" => t("Temp basal type").into(),
        "bolus_wizard_enabled" => t("Bolus Wizard").into(),
        other => capitalize(&other.replace('_', " ")),
    }
}

#[component]
fn Device(d: DeviceData, unit: GlucoseUnit) -> impl IntoView {
    let many = d.settings.len() > 1;
    view! {
        <RangeBar meta=d.meta.clone() tab=Tab::Device/>
        {if !d.settings_visible {
            view! { <section class="card"><p class="muted">{t("Device settings are not shared with you.")}</p></section> }.into_any()
        } else if d.settings.is_empty() {
            view! {
                <section class="card empty-state" data-testid="no-settings">
                    <h2>{t("No device settings seen")}</h2>
                    <p>{t("Settings come with pump uploads and CareLink or Nightscout exports.")}</p>
                </section>
            }.into_any()
        } else {
            d.settings.iter().enumerate().map(|(i, seen)| {
                let s = seen.settings.clone();
                let from = d.meta.from.parse::<chrono::NaiveDate>().ok();
                let title = if from.is_some_and(|f| seen.last_seen < f) {
                    tf("In effect at the start of these days: last seen on {date}", &[("date", &lang().date(seen.last_seen))])
                } else if seen.first_seen == seen.last_seen {
                    tf("Seen on {date}", &[("date", &lang().date(seen.first_seen))])
                } else {
                    tf("Seen from {from} to {to} ({n} times)", &[
                        ("from", &lang().date(seen.first_seen)),
                        ("to", &lang().date(seen.last_seen)),
                        ("n", &seen.times_seen),
                    ])
                };
                let active = s.basal_profiles.first().cloned();
                view! {
                    <section class="card settings-card" data-testid="settings-snapshot">
                        <h2>{if i == 0 { t("Device settings") } else { t("Earlier settings") }}</h2>
                        <p class="muted small">{title}{(many && i == 0).then(|| t(" · newest first"))}</p>
                        {active.map(|p| view! {
                            <ChartBox id=format!("chart-basal-{i}") height=220 label=tf("Basal profile {name}", &[("name", &p.name)]) spec=ChartSpec::BasalProfile(p.clone()) unit=unit/>
                        })}
                        <div class="settings-grid">
                            {s.basal_profiles.iter().map(|p| view! {
                                <div>
                                    <h3>{if p.active {
                                        tf("Basal profile “{name}” (active)", &[("name", &p.name)])
                                    } else {
                                        tf("Basal profile “{name}”", &[("name", &p.name)])
                                    }}</h3>
                                    <table class="table table-compact">
                                        <thead><tr><th scope="col">{t("From")}</th><th scope="col">"U/h"</th></tr></thead>
                                        <tbody>{p.entries.iter().map(|e| view! { <tr><td>{hhmm(e.start_min)}</td><td>{num(e.value, 3)}</td></tr> }).collect_view()}</tbody>
                                    </table>
                                    <p class="muted small">{tf("{units} U per day", &[("units", &num(p.total_u, 2))])}</p>
                                </div>
                            }).collect_view()}
                            {(!s.carb_ratios.is_empty()).then(|| view! {
                                <div>
                                    <h3>{t("Carb ratios")}</h3>
                                    <table class="table table-compact">
                                        <thead><tr><th scope="col">{t("From")}</th><th scope="col">{if s.carb_ratio_exchanges { t("U/exchange") } else { "g/U" }}</th></tr></thead>
                                        <tbody>{s.carb_ratios.iter().map(|e| view! { <tr><td>{hhmm(e.start_min)}</td><td>{dec(e.value.to_string())}</td></tr> }).collect_view()}</tbody>
                                    </table>
                                </div>
                            })}
                            {(!s.sensitivities.is_empty()).then(|| view! {
                                <div>
                                    <h3>{t("Insulin sensitivity")}</h3>
                                    <table class="table table-compact">
                                        <thead><tr><th scope="col">{t("From")}</th><th scope="col">{format!("{}/U", unit.label())}</th></tr></thead>
                                        <tbody>{s.sensitivities.iter().map(|e| view! { <tr><td>{hhmm(e.start_min)}</td><td>{per_unit(unit, e.value)}</td></tr> }).collect_view()}</tbody>
                                    </table>
                                </div>
                            })}
                            {(!s.targets.is_empty()).then(|| view! {
                                <div>
                                    <h3>{t("Glucose targets")}</h3>
                                    <table class="table table-compact">
                                        <thead><tr><th scope="col">{t("From")}</th><th scope="col">{tf("Target ({unit})", &[("unit", &unit.label())])}</th></tr></thead>
                                        <tbody>{s.targets.iter().map(|e| view! { <tr><td>{hhmm(e.start_min)}</td><td>{format!("{}–{}", gv(unit, e.low_mg_dl), gv(unit, e.high_mg_dl))}</td></tr> }).collect_view()}</tbody>
                                    </table>
                                </div>
                            })}
                            <div>
                                <h3>{t("Other settings")}</h3>
                                <table class="table table-compact">
                                    <tbody>
                                        <tr><th scope="row">{t("Active insulin time")}</th><td>{s.active_insulin_min.map(|m| format!("{}:{:02} h", m / 60, m % 60)).unwrap_or_else(|| "–".into())}</td></tr>
                                        {s.other.iter().map(|(k, v)| view! { <tr><th scope="row">{setting_name(k)}</th><td>{v.clone()}</td></tr> }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        </div>
                    </section>
                }
            }).collect_view().into_any()
        }}
        <section class="card">
            <h2>{t("Alarms")}</h2>
            {if !d.events_visible {
                view! { <p class="muted">{t("Device events are not shared with you.")}</p> }.into_any()
            } else if d.alarms.is_empty() {
                view! { <p class="muted" data-testid="no-alarms">{t("No alarms in these days.")}</p> }.into_any()
            } else {
                view! {
                    <table class="table table-compact" data-testid="alarms-table">
                        <thead><tr><th scope="col">{t("When")}</th><th scope="col">{t("Alarm")}</th><th scope="col">{t("Code")}</th></tr></thead>
                        <tbody>
                            {d.alarms.iter().map(|a| view! {
                                <tr><td>{local_time_text(&a.local_time)}</td><td>{a.description.clone().unwrap_or_else(|| t("alarm").into())}</td><td>{a.code.map(|c| c.to_string()).unwrap_or_default()}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}
