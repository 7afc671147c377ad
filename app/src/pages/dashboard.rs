//! The home page: a landing page when signed out, the patient's dashboard or
//! the clinician's overview when signed in.

use crate::api::{dashboard, my_clinics};
use crate::api_sharing::{DismissUploadRequest, list_shared_with_me, my_upload_requests};
use crate::components::{ErrorCard, Figure, UserResource, pct};
use crate::i18n::{lang, t, tf, tp};
use crate::model::{DashboardData, Me};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn DashboardPage() -> impl IntoView {
    let user = UserResource::use_();
    view! {
        <Transition fallback=|| view! { <p class="loading">{t("Loading…")}</p> }>
            {move || Suspend::new(async move {
                match user.me.await {
                    Ok(Some(me)) if me.patient_id.is_some() => view! { <PatientDashboard me=me/> }.into_any(),
                    Ok(Some(me)) => view! { <ClinicianHome me=me/> }.into_any(),
                    Ok(None) => view! { <Landing/> }.into_any(),
                    Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Landing() -> impl IntoView {
    view! {
        <Title text=t("Your diabetes data")/>
        <section class="hero">
            <h1>{t("Your pump, sensor and meter data, in one place you control.")}</h1>
            <p class="lead">{t("Upload from the browser, read clear standard reports (time in range, AGP, daily views) and share with your clinic on your terms: scopes, an expiry, and a log of who looked.")}</p>
            <p class="actions">
                <a class="btn btn-primary" href="/signup">{t("Create an account")}</a>
                <a class="btn" href="/login">{t("Log in")}</a>
            </p>
        </section>
    }
}

#[component]
fn PatientDashboard(me: Me) -> impl IntoView {
    let data = Resource::new(|| (), |_| dashboard());
    let unit = me.unit();
    let first_name = me.display_name.split_whitespace().next().unwrap_or("").to_string();
    view! {
        <Title text=t("Dashboard")/>
        <h1 class="page-title">{tf("Hello, {name}", &[("name", &first_name)])}</h1>
        <UploadPrompts/>
        <Transition fallback=|| view! { <p class="loading">{t("Loading your data…")}</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(Some(d)) if d.readings > 0 || d.latest.is_some() => view! { <Figures d=d unit=unit/> }.into_any(),
                    Ok(_) => view! { <EmptyDashboard/> }.into_any(),
                    Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn EmptyDashboard() -> impl IntoView {
    view! {
        <section class="card empty-state" data-testid="empty-dashboard">
            <h2>{t("No data yet")}</h2>
            <p>{t("Upload your pump or CGM, or import an export file from CareLink, Dexcom Clarity, LibreView or Nightscout. Your figures appear here as soon as there is data.")}</p>
            <p class="actions"><a class="btn btn-primary" href="/upload">{t("Upload data")}</a></p>
        </section>
    }
}

#[component]
fn Figures(d: DashboardData, unit: therapy::GlucoseUnit) -> impl IntoView {
    let fmt =
        move |v: Option<f64>| v.map(|x| format!("{} {}", glucose(unit, x), unit.label())).unwrap_or_else(|| "–".into());
    let latest = d.latest.clone();
    let tir = [
        ("very-high", t("Very high"), d.very_high_percent, "> 250 mg/dL"),
        ("high", t("High"), d.high_percent, "181–250"),
        ("in-range", t("In range"), d.in_range_percent, "70–180"),
        ("low", t("Low"), d.low_percent, "54–69"),
        ("very-low", t("Very low"), d.very_low_percent, "< 54"),
    ];
    let sufficient = d.cgm_active_percent.unwrap_or(0.0) >= 70.0;
    view! {
        <div class="grid-2">
            <section class="card" aria-labelledby="latest-h">
                <h2 id="latest-h">{t("Latest reading")}</h2>
                {match latest {
                    Some(l) => view! {
                        <p class="latest" data-testid="latest-reading">
                            <span class="latest-value">{glucose(unit, f64::from(l.value_mg_dl))}</span>
                            <span class="latest-unit">{unit.label()}</span>
                            <span class="latest-trend" aria-label=t("trend")>{l.trend_arrow}</span>
                        </p>
                        <p class="muted">{tf("at {time} ({ago})", &[("time", &l.local_time), ("ago", &ago(l.minutes_ago))])}</p>
                    }.into_any(),
                    None => view! { <p class="muted">{t("No CGM readings yet.")}</p> }.into_any(),
                }}
                <Sparkline points=d.last_day.clone()/>
            </section>
            <section class="card" aria-labelledby="tir-h">
                <h2 id="tir-h">{t("Time in ranges")}</h2>
                <p class="muted">{tf("{from} to {to}, {readings}", &[
                    ("from", &day(&d.from)),
                    ("to", &day(&d.to)),
                    ("readings", &tp(d.readings as i64, "{n} reading", "{n} readings")),
                ])}</p>
                <div class="tir">
                    <div class="tir-bar" role="img" aria-label=format!("{} {}", t("In range"), pct(d.in_range_percent))>
                        {tir.iter().map(|(cls, _, v, _)| {
                            let h = v.unwrap_or(0.0);
                            view! { <div class=format!("tir-seg tir-{cls}") style=format!("height:{h:.1}%")></div> }
                        }).collect_view()}
                    </div>
                    <ul class="tir-legend">
                        {tir.iter().map(|(cls, label, v, range)| view! {
                            <li><span class=format!("swatch tir-{cls}")></span>
                                <span class="tir-label">{*label}</span>
                                <span class="tir-range">{*range}</span>
                                <strong data-testid=format!("tir-{cls}")>{pct(*v)}</strong></li>
                        }).collect_view()}
                    </ul>
                </div>
                <p class="muted small">{t("Targets for most adults: in range > 70 %, below 70 < 4 %, below 54 < 1 %.")}</p>
            </section>
        </div>
        {(!sufficient).then(|| view! {
            <div class="alert alert-warn" role="status">{t("Less than 70 % of the expected sensor readings in these 14 days: the figures may not represent your usual glucose.")}</div>
        })}
        <section class="card">
            <h2>{t("Last 14 days")}</h2>
            <div class="figures">
                <Figure label=t("Average glucose") value=fmt(d.mean_mg_dl)/>
                <Figure label="GMI" value=d.gmi_percent.map(|x| lang().percent(x, 1)).unwrap_or_else(|| "–".into()) hint=t("glucose management indicator")/>
                <Figure label=t("Variability (CV)") value=pct(d.cv_percent) hint=t("target ≤ 36 %")/>
                <Figure label=t("Sensor active") value=pct(d.cgm_active_percent)/>
            </div>
            <p class="actions"><a class="btn" href="/reports">{t("Open reports")}</a><a class="btn btn-quiet" href="/upload">{t("Upload new data")}</a></p>
        </section>
        <p class="muted small">{
            let uploads = tp(d.uploads as i64, "{n} upload", "{n} uploads");
            let uploads = match &d.last_upload_at {
                Some(at) => tf("{uploads}, the last on {when}.", &[("uploads", &uploads), ("when", &lang().datetime_utc(at))]),
                None => format!("{uploads}."),
            };
            format!("{} {uploads}", tf("Times in {zone}.", &[("zone", &d.time_zone)]))
        }</p>
    }
}

/// The last 24 hours of CGM as an inline SVG (drawn on the server, so it
/// shows without JavaScript), with the 70–180 mg/dL target band.
#[component]
fn Sparkline(points: Vec<(u32, u16)>) -> impl IntoView {
    if points.len() < 2 {
        return ().into_any();
    }
    let y = |v: f64| (400.0 - v.clamp(40.0, 400.0)) / 360.0 * 200.0;
    let mut path = String::new();
    let mut prev: Option<u32> = None;
    for (m, v) in &points {
        // Break the line across gaps longer than 15 minutes.
        let cmd = match prev {
            Some(p) if m.saturating_sub(p) <= 15 => 'L',
            _ => 'M',
        };
        path.push_str(&format!("{cmd}{} {:.1} ", m, y(f64::from(*v))));
        prev = Some(*m);
    }
    let band_top = y(180.0);
    let band_h = y(70.0) - band_top;
    view! {
        <svg class="sparkline" viewBox="0 0 1440 200" preserveAspectRatio="none" role="img" aria-label=t("Sensor glucose over the last 24 hours")>
            <rect class="band" x="0" y=format!("{band_top:.1}") width="1440" height=format!("{band_h:.1}")></rect>
            <path class="trace" d=path></path>
        </svg>
        <p class="muted small">{t("The last 24 hours; the band is 70–180 mg/dL.")}</p>
    }
    .into_any()
}

fn ago(minutes: i64) -> String {
    match minutes {
        m if m < 1 => t("just now").into(),
        m if m < 60 => tf("{n} min ago", &[("n", &m)]),
        m if m < 48 * 60 => tf("{n} h ago", &[("n", &(m / 60))]),
        m => tp(m / (24 * 60), "{n} day ago", "{n} days ago"),
    }
}

/// A glucose value given in mg/dL, in the unit, with the page's decimal separator.
fn glucose(unit: therapy::GlucoseUnit, mg_dl: f64) -> String {
    let s = unit.format(mg_dl);
    match lang().decimal_sep() {
        '.' => s,
        sep => s.replace('.', &sep.to_string()),
    }
}

/// An ISO date (`2026-12-02`) from the API in the page's language (or the text itself).
fn day(iso: &str) -> String {
    iso.parse::<chrono::NaiveDate>().map(|d| lang().date(d)).unwrap_or_else(|_| iso.to_string())
}

/// Clinics' "please upload" requests, with an "Upload now" prompt.
#[component]
fn UploadPrompts() -> impl IntoView {
    let dismiss = ServerAction::<DismissUploadRequest>::new();
    let requests = Resource::new(move || dismiss.version().get(), |_| my_upload_requests());
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match requests.await {
                    Ok(list) if !list.is_empty() => view! {
                        <section class="card notice" data-testid="upload-prompt" role="status">
                            {list.into_iter().map(|r| view! {
                                <p><strong>{r.clinic_name.clone()}</strong>{t(" asks you to upload your device data.")}</p>
                                <p class="actions">
                                    <a class="btn btn-primary" href="/upload" data-testid="upload-now">{t("Upload now")}</a>
                                    <ActionForm action=dismiss attr:class="inline-form">
                                        <input type="hidden" name="id" value=r.id.clone()/>
                                        <button type="submit" class="btn btn-quiet">{t("Dismiss")}</button>
                                    </ActionForm>
                                </p>
                            }).collect_view()}
                        </section>
                    }.into_any(),
                    _ => ().into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ClinicianHome(me: Me) -> impl IntoView {
    let shared = Resource::new(|| (), |_| list_shared_with_me());
    let clinics = Resource::new(|| (), |_| my_clinics());
    view! {
        <Title text=t("Dashboard")/>
        <h1 class="page-title">{tf("Welcome, {name}", &[("name", &me.display_name)])}</h1>
        <Transition fallback=|| view! { <p class="loading">{t("Loading…")}</p> }>
            {move || Suspend::new(async move {
                match clinics.await {
                    Ok(list) if !list.is_empty() => view! {
                        <section class="card">
                            <h2>{t("Your clinics")}</h2>
                            <ul class="list">
                                {list.into_iter().map(|c| view! {
                                    <li><a href=format!("/clinic/{}", c.id)>{c.name}</a>
                                        <span class="muted">{format!(" · {} · {}", tp(c.patients as i64, "{n} patient", "{n} patients"), tf("you are {role}", &[("role", &role_name(&c.role))]))}</span></li>
                                }).collect_view()}
                            </ul>
                        </section>
                    }.into_any(),
                    Ok(_) => view! {
                        <section class="card empty-state">
                            <h2>{t("No clinic yet")}</h2>
                            <p>{t("You are not a member of a clinic. ")}<a href="/clinic">{t("Create one")}</a>{t(", or ask a clinic admin to add you by email.")}</p>
                        </section>
                    }.into_any(),
                    Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                }
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match shared.await {
                    Ok(list) => view! { <super::sharing::SharedWithMeCard list testid="shared-with-me-home"/> }.into_any(),
                    Err(_) => ().into_any(),
                }
            })}
        </Transition>
    }
}

/// A clinic role (`clinician`, `admin`) in words.
fn role_name(role: &str) -> String {
    match role {
        "clinician" => t("clinician").to_string(),
        "admin" => t("admin").to_string(),
        other => other.to_string(),
    }
}
