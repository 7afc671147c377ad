//! The clinic workspace: clinics, the patient dashboard (sortable, searchable,
//! paginated, with triage filters), patient records with link codes and
//! upload requests, and the members of a clinic.

use crate::api::my_clinics;
use crate::api_account::SetClinicRequire2fa;
use crate::api_sharing::{
    AcknowledgePatient, AddMember, CreateClinic, CreateLinkCode, CreateRecord, RequestUpload, RotateShareCode,
    clinic_dashboard, clinic_members, clinic_record, sms_enabled,
};
use crate::components::{ErrorCard, RequireUser, UserResource, pct};
use crate::i18n::{lang, num, t, tf, tp};
use crate::model::{ClinicPatientPage, ClinicPatientRow};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use therapy::GlucoseUnit;

fn status_label(s: &str) -> &'static str {
    match s {
        "linked" => t("linked"),
        "code_pending" => t("code sent"),
        "custodial" => t("clinic record"),
        "revoked" => t("sharing revoked"),
        "expired" => t("sharing expired"),
        "declined" => t("declined"),
        "paused" => t("sharing paused"),
        _ => t("unknown"),
    }
}

fn flag_label(f: &str) -> &'static str {
    match f {
        "below_54" => t("below 54 > 1 %"),
        "below_70" => t("below 70 > 4 %"),
        "low_tir" => t("in range < 70 %"),
        "low_active" => t("CGM worn < 70 %"),
        "no_upload" => t("no upload in 14 days"),
        _ => t("flag"),
    }
}

/// A clinic member's role (`clinician`, `admin`), in words.
fn role_label(role: &str) -> String {
    match role {
        "clinician" => t("clinician").to_string(),
        "admin" => t("admin").to_string(),
        other => other.to_string(),
    }
}

/// The day of an RFC 3339 time (in its own offset), or a dash.
fn day_of(at: &Option<String>) -> String {
    at.as_deref()
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .map(|at| lang().date(at.date_naive()))
        .unwrap_or_else(|| "–".into())
}

/// An ISO date (`2026-12-02`) in the page's language, or the text itself.
fn iso_date(d: &str) -> String {
    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map(|d| lang().date(d)).unwrap_or_else(|_| d.to_string())
}

/// A glucose value given in mg/dL, in the viewer's unit and language.
fn glucose(unit: GlucoseUnit, mg_dl: f64) -> String {
    let decimals = match unit {
        GlucoseUnit::MgDl => 0,
        GlucoseUnit::MmolL => 1,
    };
    format!("{} {}", num(unit.convert(mg_dl), decimals), unit.label())
}

#[component]
pub fn ClinicsPage() -> impl IntoView {
    let create = ServerAction::<CreateClinic>::new();
    let clinics = Resource::new(move || create.version().get(), |_| my_clinics());
    view! {
        <Title text=t("Clinic")/>
        <h1 class="page-title">{t("Clinic workspace")}</h1>
        <RequireUser>
            <Transition fallback=|| view! { <p class="loading">{t("Loading…")}</p> }>
                {move || Suspend::new(async move {
                    match clinics.await {
                        Ok(list) if list.is_empty() => view! {
                            <section class="card empty-state" data-testid="no-clinic">
                                <h2>{t("No clinic yet")}</h2>
                                <p>{t("Create your clinic below, or ask a colleague who is its admin to add you by email.")}</p>
                            </section>
                        }.into_any(),
                        Ok(list) => view! {
                            <section class="card">
                                <h2>{t("Your clinics")}</h2>
                                <ul class="list" data-testid="clinic-list">
                                    {list.into_iter().map(|c| view! {
                                        <li><a href=format!("/clinic/{}", c.id) data-testid="clinic-link">{c.name.clone()}</a>
                                            <span class="muted">{format!(" · {} · {} · {}", tp(c.patients as i64, "{n} patient", "{n} patients"), tp(c.members as i64, "{n} member", "{n} members"), tf("you are {role}", &[("role", &role_label(&c.role))]))}</span></li>
                                    }).collect_view()}
                                </ul>
                            </section>
                        }.into_any(),
                        Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                    }
                })}
            </Transition>
            <section class="card">
                <h2>{t("Create a clinic")}</h2>
                <p class="muted">{t("You become its admin and can add colleagues.")}</p>
                {move || create.value().get().map(|r| match r {
                    Ok(c) => view! { <div class="alert alert-ok" role="status">{t("Created. ")}<a href=format!("/clinic/{}", c.id)>{tf("Open {name}", &[("name", &c.name)])}</a></div> }.into_any(),
                    Err(e) => view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> }.into_any(),
                })}
                <ActionForm action=create attr:class="inline-form">
                    <label class="field"><span>{t("Clinic name")}</span><input type="text" name="name" required=true maxlength="200" data-testid="clinic-name"/></label>
                    <button type="submit" class="btn btn-primary" data-testid="create-clinic">{t("Create clinic")}</button>
                </ActionForm>
            </section>
        </RequireUser>
    }
}

/// A query-string value, trimmed; `None` when absent or empty.
fn q(key: &'static str) -> impl Fn() -> Option<String> + Copy + Send + Sync + 'static {
    let query = use_query_map();
    move || query.with(|m| m.get(key)).filter(|s| !s.trim().is_empty())
}

#[component]
pub fn ClinicDashboardPage() -> impl IntoView {
    let params = use_params_map();
    let clinic_id = move || params.with(|p| p.get("clinic_id")).unwrap_or_default();
    let (search, sort, order, filter, page) = (q("q"), q("sort"), q("order"), q("filter"), q("page"));
    let create = ServerAction::<CreateRecord>::new();
    let data = Resource::new(
        move || {
            (
                clinic_id(),
                search(),
                sort(),
                order(),
                filter(),
                page().and_then(|p| p.parse::<u32>().ok()),
                create.version().get(),
            )
        },
        |(c, s, so, o, f, p, _)| clinic_dashboard(c, s, so, o, f, p),
    );
    let user = UserResource::use_();
    view! {
        <Title text=t("Clinic patients")/>
        <RequireUser>
            <Transition fallback=|| view! { <p class="loading">{t("Loading the patients…")}</p> }>
                {move || Suspend::new(async move {
                    let unit = user.me.await.ok().flatten().map(|m| m.unit()).unwrap_or_default();
                    match data.await {
                        Ok(d) => view! { <Dashboard d=d unit=unit/> }.into_any(),
                        Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                    }
                })}
            </Transition>
            <section class="card">
                <h2>{t("Add a patient")}</h2>
                <p class="muted">{t("A clinic record holds data you upload in clinic until the patient links their own account with a one-time code.")}</p>
                {move || create.value().get().map(|r| match r {
                    Ok(id) => view! { <div class="alert alert-ok" role="status" data-testid="record-created">{t("Added. ")}<a href=format!("/clinic/{}/patients/{id}", clinic_id()) data-testid="record-created-link">{t("Open the record")}</a></div> }.into_any(),
                    Err(e) => view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> }.into_any(),
                })}
                <ActionForm action=create attr:class="form form-row">
                    <input type="hidden" name="clinic_id" value=clinic_id/>
                    <label class="field"><span>{t("Name")}</span><input type="text" name="name" required=true maxlength="200" data-testid="record-name"/></label>
                    <label class="field"><span>{t("Date of birth")}</span><input type="date" name="birth_date" data-testid="record-dob"/></label>
                    <label class="field"><span>{t("MRN")}</span><input type="text" name="mrn" maxlength="64" data-testid="record-mrn"/></label>
                    <button type="submit" class="btn btn-primary" data-testid="create-record">{t("Add patient")}</button>
                </ActionForm>
            </section>
            <ShareCodeCard clinic_id=clinic_id()/>
            <Members clinic_id=clinic_id()/>
        </RequireUser>
    }
}

#[component]
fn Dashboard(d: ClinicPatientPage, unit: GlucoseUnit) -> impl IntoView {
    let (search, sort, order, filter) = (q("q"), q("sort"), q("order"), q("filter"));
    let base = format!("/clinic/{}", d.clinic_id);
    let link = {
        let base = base.clone();
        move |sort_key: Option<&str>, order_v: Option<&str>, filter_v: Option<String>, page: u32| {
            let mut parts = Vec::new();
            if let Some(s) = search() {
                parts.push(format!("q={}", urlencode(&s)));
            }
            if let Some(s) = sort_key {
                parts.push(format!("sort={s}"));
            }
            if let Some(o) = order_v {
                parts.push(format!("order={o}"));
            }
            if let Some(f) = filter_v {
                parts.push(format!("filter={f}"));
            }
            if page > 1 {
                parts.push(format!("page={page}"));
            }
            if parts.is_empty() { base.clone() } else { format!("{base}?{}", parts.join("&")) }
        }
    };
    let header = {
        let link = link.clone();
        move |key: &'static str, label: &'static str| {
            let current = sort().as_deref() == Some(key) || (sort().is_none() && key == "name");
            let desc = order().as_deref() == Some("desc");
            let next = if current && !desc { "desc" } else { "asc" };
            let aria = current.then_some(if desc { "descending" } else { "ascending" });
            let arrow = if current { if desc { " ▼" } else { " ▲" } } else { "" };
            view! {
                <th scope="col" aria-sort=aria><a href=link(Some(key), Some(next), filter(), 1) data-testid=format!("sort-{key}")>{label}{arrow}</a></th>
            }
        }
    };
    let pages = d.total.div_ceil(u64::from(d.per_page)).max(1) as u32;
    let filters = ["flagged", "new", "below_54", "below_70", "low_tir", "low_active", "no_upload"];
    let glu = move |v: Option<f64>| v.map(|x| glucose(unit, x)).unwrap_or_else(|| "–".into());
    let count = tp(d.total as i64, "{n} patient.", "{n} patients.");
    let figures = match d.rows.first() {
        Some(r) => tf(
            "Figures over the last 14 days ({from} to {to}).",
            &[("from", &iso_date(&r.from)), ("to", &iso_date(&r.to))],
        ),
        None => t("Figures over the last 14 days.").to_string(),
    };
    view! {
        <h1 class="page-title" data-testid="clinic-title">{d.clinic_name.clone()}</h1>
        <section class="card" data-testid="clinic-dashboard">
            <form method="get" action=base.clone() class="inline-form toolbar">
                <label class="field"><span>{t("Search")}</span><input type="search" name="q" value=search placeholder=t("Name or MRN") data-testid="search"/></label>
                <label class="field"><span>{t("Show")}</span>
                    <select name="filter" data-testid="filter">
                        <option value="" selected=filter().is_none()>{t("All patients")}</option>
                        {filters.into_iter().map(|f| view! {
                            <option value=f selected=filter().as_deref() == Some(f)>{match f { "flagged" => t("Any flag"), "new" => t("New patients"), f => flag_label(f) }}</option>
                        }).collect_view()}
                    </select>
                </label>
                {sort().map(|s| view! { <input type="hidden" name="sort" value=s/> })}
                {order().map(|o| view! { <input type="hidden" name="order" value=o/> })}
                <button type="submit" class="btn">{t("Apply")}</button>
            </form>
            <p class="muted" data-testid="clinic-count">{format!("{count} {figures}")}</p>
            {if d.rows.is_empty() {
                view! { <p class="empty-state" data-testid="clinic-empty">{t("No patients match.")}</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                    <table class="table table-dense" data-testid="patients-table">
                        <thead><tr>
                            {header("name", t("Patient"))}
                            {header("mrn", t("MRN"))}
                            {header("status", t("Link"))}
                            {header("last_upload", t("Last upload"))}
                            {header("in_range", t("In range"))}
                            {header("below_54", "< 54")}
                            {header("below_70", "< 70")}
                            {header("gmi", "GMI")}
                            {header("cv", "CV")}
                            {header("cgm_active", t("CGM worn"))}
                            <th scope="col">{t("Mean")}</th>
                            <th scope="col">{t("Flags")}</th>
                        </tr></thead>
                        <tbody>
                            {d.rows.into_iter().map(|r| view! { <Row r=r glu=glu base=base.clone() clinic_id=d.clinic_id.clone()/> }).collect_view()}
                        </tbody>
                    </table>
                    </div>
                    <nav class="pager" aria-label=t("Pages")>
                        {(d.page > 1).then(|| view! { <a class="btn btn-quiet" href=link(sort().as_deref(), order().as_deref(), filter(), d.page - 1)>{t("← Previous")}</a> })}
                        <span class="muted">{format!(" {} ", tf("Page {page} of {pages}", &[("page", &d.page), ("pages", &pages)]))}</span>
                        {(d.page < pages).then(|| view! { <a class="btn btn-quiet" href=link(sort().as_deref(), order().as_deref(), filter(), d.page + 1) data-testid="next-page">{t("Next →")}</a> })}
                    </nav>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn Row<G: Fn(Option<f64>) -> String + 'static>(
    r: ClinicPatientRow,
    glu: G,
    base: String,
    clinic_id: String,
) -> impl IntoView {
    let href = format!("{base}/patients/{}", r.record_id);
    let flagged = !r.flags.is_empty();
    view! {
        <tr data-testid="patient-row" data-record=r.record_id.clone() class:row-flagged=flagged>
            <th scope="row"><a href=href>{r.name.clone()}</a>{r.birth_date.clone().map(|b| view! { <small class="muted">{format!(" {}", iso_date(&b))}</small> })}</th>
            <td>{r.mrn.clone().unwrap_or_default()}</td>
            <td><span class=format!("badge badge-{}", r.link_status)>{status_label(&r.link_status)}</span></td>
            <td>{day_of(&r.last_upload_at)}</td>
            <td>{pct(r.in_range_percent)}</td>
            <td>{pct(r.very_low_percent)}</td>
            <td>{pct(r.below_70_percent)}</td>
            <td>{r.gmi_percent.map(|v| lang().percent(v, 1)).unwrap_or_else(|| "–".into())}</td>
            <td>{r.cv_percent.map(|v| lang().percent(v, 1)).unwrap_or_else(|| "–".into())}</td>
            <td>{pct(r.cgm_active_percent)}</td>
            <td>{glu(r.mean_mg_dl)}</td>
            <td>{r.flags.iter().map(|f| view! { <span class="badge badge-flag">{flag_label(f)}</span>" " }).collect_view()}
                {r.upload_requested_at.clone().map(|_| view! { <span class="badge">{t("upload requested")}</span> })}
                {r.new_patient.then(|| view! { <NewPatientMark clinic_id=clinic_id.clone() record_id=r.record_id.clone()/> })}</td>
        </tr>
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[component]
fn Members(clinic_id: String) -> impl IntoView {
    let add = ServerAction::<AddMember>::new();
    let cid = clinic_id.clone();
    let members = Resource::new(move || add.version().get(), move |_| clinic_members(cid.clone()));
    let strict_id = clinic_id.clone();
    view! {
        <section class="card">
            <details>
                <summary><h2 class="inline">{t("Members")}</h2></summary>
                <Transition fallback=|| view! { <p class="loading">{t("Loading…")}</p> }>
                    {move || Suspend::new(async move {
                        match members.await {
                            Ok(list) => view! {
                                <ul class="list" data-testid="members">
                                    {list.into_iter().map(|m| view! {
                                        <li>{m.display_name.clone().unwrap_or_else(|| m.email.clone())}
                                            <span class="muted">{format!(" · {} · {}{}", m.email, role_label(&m.role), if m.status == "invited" { t(" · invited") } else { "" })}</span></li>
                                    }).collect_view()}
                                </ul>
                            }.into_any(),
                            Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                        }
                    })}
                </Transition>
                {move || add.value().get().map(|r| match r {
                    Ok(m) => view! { <div class="alert alert-ok" role="status">{if m.status == "invited" {
                        tf("{email} added (invited).", &[("email", &m.email)])
                    } else {
                        tf("{email} added (active).", &[("email", &m.email)])
                    }}</div> }.into_any(),
                    Err(e) => view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> }.into_any(),
                })}
                <ActionForm action=add attr:class="inline-form">
                    <input type="hidden" name="clinic_id" value=clinic_id.clone()/>
                    <label class="field"><span>{t("Colleague's email")}</span><input type="email" name="email" required=true/></label>
                    <label class="field"><span>{t("Role")}</span>
                        <select name="role"><option value="clinician">{t("clinician")}</option><option value="admin">{t("admin")}</option></select>
                    </label>
                    <button type="submit" class="btn">{t("Add (admins only)")}</button>
                </ActionForm>
                <Require2fa clinic_id=strict_id/>
            </details>
        </section>
    }
}

/// An admin's switch: members need two-factor authentication to open the clinic.
#[component]
fn Require2fa(clinic_id: String) -> impl IntoView {
    let set = ServerAction::<SetClinicRequire2fa>::new();
    let cid = clinic_id.clone();
    let clinics = Resource::new(move || set.version().get(), |_| my_clinics());
    view! {
        <Transition fallback=|| ()>
            {move || {
                let cid = cid.clone();
                Suspend::new(async move {
                    let Some(c) = clinics.await.ok().and_then(|l| l.into_iter().find(|c| c.id == cid)) else { return ().into_any() };
                    if c.role != "admin" {
                        return ().into_any();
                    }
                    view! {
                        <ActionForm action=set attr:class="inline-form" attr:data-testid="require-2fa-form">
                            <input type="hidden" name="clinic_id" value=c.id.clone()/>
                            <label class="checkbox"><input type="checkbox" name="on" value="on" checked=c.require_2fa data-testid="require-2fa"/>
                                {t(" Members must use two-factor authentication")}</label>
                            <button type="submit" class="btn">{t("Save")}</button>
                        </ActionForm>
                    }.into_any()
                })
            }}
        </Transition>
        {move || set.value().get().map(|r| match r {
            Ok(on) => view! { <div class="alert alert-ok" role="status">{if on { t("Members now need two-factor authentication.") } else { t("Two-factor authentication is optional for members.") }}</div> }.into_any(),
            Err(e) => view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> }.into_any(),
        })}
    }
}

#[component]
pub fn ClinicRecordPage() -> impl IntoView {
    let params = use_params_map();
    let clinic_id = move || params.with(|p| p.get("clinic_id")).unwrap_or_default();
    let record_id = move || params.with(|p| p.get("record_id")).unwrap_or_default();
    let code = ServerAction::<CreateLinkCode>::new();
    let request = ServerAction::<RequestUpload>::new();
    let data = Resource::new(
        move || (clinic_id(), record_id(), code.version().get(), request.version().get()),
        |(c, r, _, _)| clinic_record(c, r),
    );
    let user = UserResource::use_();
    view! {
        <Title text=t("Patient record")/>
        <RequireUser>
            <p><a href=move || format!("/clinic/{}", clinic_id())>{t("← All patients")}</a></p>
            <Transition fallback=|| view! { <p class="loading">{t("Loading…")}</p> }>
                {move || Suspend::new(async move {
                    let unit = user.me.await.ok().flatten().map(|m| m.unit()).unwrap_or_default();
                    match data.await {
                        Ok(r) => view! { <RecordView r=r unit=unit clinic_id=clinic_id() code=code request=request/> }.into_any(),
                        Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                    }
                })}
            </Transition>
        </RequireUser>
    }
}

#[component]
fn RecordView(
    r: ClinicPatientRow,
    unit: GlucoseUnit,
    clinic_id: String,
    code: ServerAction<CreateLinkCode>,
    request: ServerAction<RequestUpload>,
) -> impl IntoView {
    let linked = r.link_status == "linked";
    let sms = Resource::new(|| (), |_| sms_enabled());
    let reports = r.patient_id.clone().map(|p| {
        view! {
            <p class="actions">
                <a class="btn btn-primary" href=format!("/reports?patient={p}") data-testid="open-reports">{t("Open reports")}</a>
                <a class="btn" href=format!("/api/v1/patients/{p}/report.pdf") rel="external" download="" data-testid="record-pdf">{t("Download PDF (14 days)")}</a>
            </p>
        }
    });
    let custodial_upload = (r.link_status != "linked").then(|| r.patient_id.clone()).flatten().map(|p| view! {
        <p><a class="btn" href=format!("/upload?patient={p}") data-testid="upload-for-patient">{t("Upload for this patient")}</a></p>
    });
    let rid = r.record_id.clone();
    let cid = clinic_id.clone();
    view! {
        <h1 class="page-title" data-testid="record-name-title">{r.name.clone()}</h1>
        <section class="card">
            <dl class="facts">
                <dt>{t("Date of birth")}</dt><dd>{r.birth_date.as_deref().map(iso_date).unwrap_or_else(|| "–".into())}</dd>
                <dt>{t("MRN")}</dt><dd>{r.mrn.clone().unwrap_or_else(|| "–".into())}</dd>
                <dt>{t("Link")}</dt><dd data-testid="record-status">{status_label(&r.link_status)}</dd>
                <dt>{t("Shared")}</dt><dd>{if r.scopes.is_empty() { "–".to_string() } else { r.scopes.iter().map(|s| crate::components::scope_label(s)).collect::<Vec<_>>().join(", ") }}</dd>
                <dt>{t("Last upload")}</dt><dd>{day_of(&r.last_upload_at)}</dd>
            </dl>
            {(r.readings > 0).then(|| view! {
                <div class="figures figures-tight" data-testid="record-figures">
                    <crate::components::Figure label=t("In range (14 d)") value=pct(r.in_range_percent)/>
                    <crate::components::Figure label=t("Below 70") value=pct(r.below_70_percent)/>
                    <crate::components::Figure label=t("Below 54") value=pct(r.very_low_percent)/>
                    <crate::components::Figure label="GMI" value=r.gmi_percent.map(|v| lang().percent(v, 1)).unwrap_or_else(|| "–".into())/>
                    <crate::components::Figure label=t("Mean") value=r.mean_mg_dl.map(|x| glucose(unit, x)).unwrap_or_else(|| "–".into())/>
                    <crate::components::Figure label=t("CGM worn") value=pct(r.cgm_active_percent)/>
                </div>
            })}
            {reports}
            {custodial_upload}
        </section>
        {(!linked).then(|| {
            let (cid, rid) = (cid.clone(), rid.clone());
            view! {
                <section class="card link-code-card" data-testid="link-section">
                    <h2>{t("Link to the patient's personal account")}</h2>
                    <p class="muted">{t("A one-time code lets the patient connect their own Diabase account to this record. They choose what to share and for how long; you never need their password. The code works once and expires in 48 hours; a new code replaces the old one.")}</p>
                    {move || code.value().get().map(|res| match res {
                        Ok(c) => view! {
                            <div class="code-box" data-testid="code-box">
                                <p class="code" data-testid="link-code">{c.code.clone()}</p>
                                <div class="qr" inner_html=c.qr_svg.clone()></div>
                                <p>{t("Enter it on the Data Sharing page: ")}<a href=c.url.clone()>{c.url.clone()}</a></p>
                                <p class="muted">{tf("Valid until {when}.", &[("when", &lang().datetime_utc(&c.expires_at))])}{c.emailed_to.clone().map(|e| format!(" {}", tf("Emailed to {email}.", &[("email", &e)])))}{c.texted_to.clone().map(|p| format!(" {}", tf("Texted to {phone}.", &[("phone", &p)])))}</p>
                                <button type="button" class="btn no-print" onclick="window.print()">{t("Print")}</button>
                            </div>
                        }.into_any(),
                        Err(e) => view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> }.into_any(),
                    })}
                    <ActionForm action=code attr:class="inline-form no-print">
                        <input type="hidden" name="clinic_id" value=cid.clone()/>
                        <input type="hidden" name="record_id" value=rid.clone()/>
                        <label class="field"><span>{t("Also email it to (optional)")}</span><input type="email" name="email" data-testid="code-email"/></label>
                        <Transition fallback=|| ()>
                            {move || Suspend::new(async move {
                                sms.await.unwrap_or(false).then(|| view! {
                                    <label class="field"><span>{t("Also text it to (optional)")}</span><input type="tel" name="phone" placeholder="+44 7700 900123" autocomplete="off" data-testid="code-phone"/>
                                        <small class="hint">{t("International form, with the country code. The message holds the clinic's name and the code only.")}</small></label>
                                })
                            })}
                        </Transition>
                        <button type="submit" class="btn btn-primary" data-testid="make-code">{t("Make a link code")}</button>
                    </ActionForm>
                </section>
            }
        })}
        {linked.then(|| view! {
            <section class="card no-print">
                <h2>{t("Ask for an upload")}</h2>
                <p class="muted">{t("The patient sees a notice on their dashboard and gets an email.")}</p>
                {r.upload_requested_at.clone().map(|at| view! { <p data-testid="upload-requested">{tf("Requested on {date}; waiting for an upload.", &[("date", &day_of(&Some(at)))])}</p> })}
                {move || request.value().get().map(|res| match res {
                    Ok(_) => view! { <div class="alert alert-ok" role="status" data-testid="request-sent">{t("Request sent.")}</div> }.into_any(),
                    Err(e) => view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> }.into_any(),
                })}
                <ActionForm action=request attr:class="inline-form">
                    <input type="hidden" name="clinic_id" value=cid.clone()/>
                    <input type="hidden" name="record_id" value=rid.clone()/>
                    <button type="submit" class="btn" data-testid="request-upload">{t("Request upload")}</button>
                </ActionForm>
            </section>
        })}
    }
}

/// A patient who shared on their own initiative: a "new" badge and the
/// button that takes them off the new-patients list.
#[component]
fn NewPatientMark(clinic_id: String, record_id: String) -> impl IntoView {
    let ack = ServerAction::<AcknowledgePatient>::new();
    view! {
        {move || if ack.value().get().is_some_and(|r| r.is_ok()) {
            ().into_any()
        } else {
            let (cid, rid) = (clinic_id.clone(), record_id.clone());
            view! {
                <span class="badge badge-new" data-testid="new-patient">{t("new patient")}</span>
                <ActionForm action=ack attr:class="inline-form">
                    <input type="hidden" name="clinic_id" value=cid.clone()/>
                    <input type="hidden" name="record_id" value=rid.clone()/>
                    <button type="submit" class="btn btn-small" data-testid="acknowledge-patient">{t("Seen")}</button>
                </ActionForm>
            }.into_any()
        }}
    }
}

/// The clinic's share code, for patients to share with the clinic on their
/// own initiative; an admin can replace it.
#[component]
fn ShareCodeCard(clinic_id: String) -> impl IntoView {
    let rotate = ServerAction::<RotateShareCode>::new();
    let cid = clinic_id.clone();
    let clinics = Resource::new(move || rotate.version().get(), |_| my_clinics());
    view! {
        <Transition fallback=|| ()>
            {move || {
                let cid = cid.clone();
                Suspend::new(async move {
                    let Some(c) = clinics.await.ok().and_then(|l| l.into_iter().find(|c| c.id == cid)) else { return ().into_any() };
                    let new_link = format!("/clinic/{}?filter=new", c.id);
                    view! {
                        <section class="card" aria-labelledby="share-code-h" data-testid="share-code-card">
                            <h2 id="share-code-h">{t("Your clinic's share code")}</h2>
                            <p class="lead"><code class="share-code" data-testid="share-code">{c.share_code.clone().unwrap_or_default()}</code></p>
                            <p class="muted">{t("Patients with a Diabase account enter this code on their Data Sharing page to share their data with you themselves; they choose what and for how long. Put it on your website, a poster or your letters.")}</p>
                            {(c.new_patients > 0).then(|| view! {
                                <p data-testid="new-patients-count"><a href=new_link.clone()>{tp(c.new_patients as i64, "{n} new patient shared with you", "{n} new patients shared with you")}</a></p>
                            })}
                            {(c.role == "admin").then(|| view! {
                                <ActionForm action=rotate attr:class="inline-form">
                                    <input type="hidden" name="clinic_id" value=c.id.clone()/>
                                    <button type="submit" class="btn btn-quiet" data-testid="rotate-share-code">{t("Replace the code")}</button>
                                    <small class="hint">{t(" The old code stops working; patients already sharing keep sharing.")}</small>
                                </ActionForm>
                            })}
                        </section>
                    }.into_any()
                })
            }}
        </Transition>
    }
}
