//! The home page: a landing page when signed out, the patient's dashboard or
//! the clinician's overview when signed in.

use crate::api::{dashboard, my_clinics};
use crate::api_sharing::{list_shared_with_me, my_upload_requests, DismissUploadRequest};
use crate::components::{pct, ErrorCard, Figure, UserResource};
use crate::model::{DashboardData, Me};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn DashboardPage() -> impl IntoView {
    let user = UserResource::use_();
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
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
        <Title text="Your diabetes data"/>
        <section class="hero">
            <h1>"Your pump, sensor and meter data, in one place you control."</h1>
            <p class="lead">"Upload from the browser, read clear standard reports (time in range, AGP, daily views) and share with your clinic on your terms: scopes, an expiry, and a log of who looked."</p>
            <p class="actions">
                <a class="btn btn-primary" href="/signup">"Create an account"</a>
                <a class="btn" href="/login">"Log in"</a>
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
        <Title text="Dashboard"/>
        <h1 class="page-title">"Hello, " {first_name}</h1>
        <UploadPrompts/>
        <Transition fallback=|| view! { <p class="loading">"Loading your data…"</p> }>
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
            <h2>"No data yet"</h2>
            <p>"Upload your pump or CGM, or import an export file from CareLink, Dexcom Clarity, LibreView or Nightscout. Your figures appear here as soon as there is data."</p>
            <p class="actions"><a class="btn btn-primary" href="/upload">"Upload data"</a></p>
        </section>
    }
}

#[component]
fn Figures(d: DashboardData, unit: therapy::GlucoseUnit) -> impl IntoView {
    let fmt = move |v: Option<f64>| v.map(|x| format!("{} {}", unit.format(x), unit.label())).unwrap_or_else(|| "–".into());
    let latest = d.latest.clone();
    let tir = [
        ("very-high", "Very high", d.very_high_percent, "> 250 mg/dL"),
        ("high", "High", d.high_percent, "181–250"),
        ("in-range", "In range", d.in_range_percent, "70–180"),
        ("low", "Low", d.low_percent, "54–69"),
        ("very-low", "Very low", d.very_low_percent, "< 54"),
    ];
    let sufficient = d.cgm_active_percent.unwrap_or(0.0) >= 70.0;
    view! {
        <div class="grid-2">
            <section class="card" aria-labelledby="latest-h">
                <h2 id="latest-h">"Latest reading"</h2>
                {match latest {
                    Some(l) => view! {
                        <p class="latest" data-testid="latest-reading">
                            <span class="latest-value">{unit.format(f64::from(l.value_mg_dl))}</span>
                            <span class="latest-unit">{unit.label()}</span>
                            <span class="latest-trend" aria-label="trend">{l.trend_arrow}</span>
                        </p>
                        <p class="muted">{format!("at {} ({})", l.local_time, ago(l.minutes_ago))}</p>
                    }.into_any(),
                    None => view! { <p class="muted">"No CGM readings yet."</p> }.into_any(),
                }}
                <Sparkline points=d.last_day.clone()/>
            </section>
            <section class="card" aria-labelledby="tir-h">
                <h2 id="tir-h">"Time in ranges"</h2>
                <p class="muted">{format!("{} to {}, {} readings", d.from, d.to, d.readings)}</p>
                <div class="tir">
                    <div class="tir-bar" role="img" aria-label=format!("In range {}", pct(d.in_range_percent))>
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
                <p class="muted small">"Targets for most adults: in range > 70 %, below 70 < 4 %, below 54 < 1 %."</p>
            </section>
        </div>
        {(!sufficient).then(|| view! {
            <div class="alert alert-warn" role="status">"Less than 70 % of the expected sensor readings in these 14 days: the figures may not represent your usual glucose."</div>
        })}
        <section class="card">
            <h2>"Last 14 days"</h2>
            <div class="figures">
                <Figure label="Average glucose" value=fmt(d.mean_mg_dl)/>
                <Figure label="GMI" value=d.gmi_percent.map(|x| format!("{x:.1} %")).unwrap_or_else(|| "–".into()) hint="glucose management indicator"/>
                <Figure label="Variability (CV)" value=pct(d.cv_percent) hint="target ≤ 36 %"/>
                <Figure label="Sensor active" value=pct(d.cgm_active_percent)/>
            </div>
            <p class="actions"><a class="btn" href="/reports">"Open reports"</a><a class="btn btn-quiet" href="/upload">"Upload new data"</a></p>
        </section>
        <p class="muted small">{format!("Times in {}. {} upload(s){}.", d.time_zone, d.uploads,
            d.last_upload_at.map(|t| format!(", the last on {}", t.replace('T', " at ").replace('Z', " UTC"))).unwrap_or_default())}</p>
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
        let cmd = match prev { Some(p) if m.saturating_sub(p) <= 15 => 'L', _ => 'M' };
        path.push_str(&format!("{cmd}{} {:.1} ", m, y(f64::from(*v))));
        prev = Some(*m);
    }
    let band_top = y(180.0);
    let band_h = y(70.0) - band_top;
    view! {
        <svg class="sparkline" viewBox="0 0 1440 200" preserveAspectRatio="none" role="img" aria-label="Sensor glucose over the last 24 hours">
            <rect class="band" x="0" y=format!("{band_top:.1}") width="1440" height=format!("{band_h:.1}")></rect>
            <path class="trace" d=path></path>
        </svg>
        <p class="muted small">"The last 24 hours; the band is 70–180 mg/dL."</p>
    }
    .into_any()
}

fn ago(minutes: i64) -> String {
    match minutes {
        m if m < 1 => "just now".into(),
        m if m < 60 => format!("{m} min ago"),
        m if m < 48 * 60 => format!("{} h ago", m / 60),
        m => format!("{} days ago", m / (24 * 60)),
    }
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
                                <p><strong>{r.clinic_name.clone()}</strong>" asks you to upload your device data."</p>
                                <p class="actions">
                                    <a class="btn btn-primary" href="/upload" data-testid="upload-now">"Upload now"</a>
                                    <ActionForm action=dismiss attr:class="inline-form">
                                        <input type="hidden" name="id" value=r.id.clone()/>
                                        <button type="submit" class="btn btn-quiet">"Dismiss"</button>
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
        <Title text="Dashboard"/>
        <h1 class="page-title">{format!("Welcome, {}", me.display_name)}</h1>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match clinics.await {
                    Ok(list) if !list.is_empty() => view! {
                        <section class="card">
                            <h2>"Your clinics"</h2>
                            <ul class="list">
                                {list.into_iter().map(|c| view! {
                                    <li><a href=format!("/clinic/{}", c.id)>{c.name}</a>
                                        <span class="muted">{format!(" · {} patient(s) · you are {}", c.patients, c.role)}</span></li>
                                }).collect_view()}
                            </ul>
                        </section>
                    }.into_any(),
                    Ok(_) => view! {
                        <section class="card empty-state">
                            <h2>"No clinic yet"</h2>
                            <p>"You are not a member of a clinic. "<a href="/clinic">"Create one"</a>", or ask a clinic admin to add you by email."</p>
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
