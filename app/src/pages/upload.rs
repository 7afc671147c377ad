//! Upload: import an export file (drop or pick, with progress and a
//! summary), and the history of uploads with delete.

use crate::api_uploads::list_uploads;
use crate::components::{ErrorCard, RequireUser};
use crate::i18n::{lang, t, tf, tp};
use crate::model::ImportSummary;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn UploadPage() -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    // `?patient=…`: a clinic uploading to one of its custodial records.
    let target = leptos_router::hooks::use_query_map()
        .with_untracked(|q| q.get("patient"))
        .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    view! {
        <Title text=t("Upload")/>
        <h1 class="page-title">{t("Upload")}</h1>
        <RequireUser>
            {target.clone().map(|_| view! {
                <div class="alert alert-info" role="status" data-testid="upload-for-record">{t("You are uploading to a clinic record, for a patient without an account. The data moves to the patient's own account when they link it.")}</div>
            })}
            <FileImport refresh=refresh target=target.clone()/>
            <UploadHistory refresh=refresh target=target.clone()/>
        </RequireUser>
    }
}

#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum Status {
    Idle,
    Sending { file: String, percent: f64 },
    Processing { file: String },
    Done(ImportSummary),
    Failed(String),
}

#[component]
fn FileImport(refresh: RwSignal<u32>, target: Option<String>) -> impl IntoView {
    let status = RwSignal::new(Status::Idle);
    let dragging = RwSignal::new(false);
    let target = StoredValue::new(target);
    let start = move |file: FileHandle| {
        start_upload(file, status, refresh, target.get_value());
    };
    let on_pick = move |ev: leptos::ev::Event| {
        if let Some(f) = picked_file(&ev) {
            start(f);
        }
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        if let Some(f) = dropped_file(&ev) {
            start(f);
        }
    };
    view! {
        <section class="card" aria-labelledby="import-h">
            <h2 id="import-h">{t("Import an export file")}</h2>
            <p class="muted">{t("CareLink Personal CSV, Dexcom Clarity CSV, FreeStyle LibreView CSV or Nightscout JSON. The format is detected; importing the same file twice adds nothing twice.")}</p>
            <label
                class=move || if dragging.get() { "dropzone dragging" } else { "dropzone" }
                on:dragover=move |ev: leptos::ev::DragEvent| { ev.prevent_default(); dragging.set(true); }
                on:dragleave=move |_| dragging.set(false)
                on:drop=on_drop
            >
                <span class="dropzone-title">{t("Drop a file here, or choose one")}</span>
                <input type="file" name="file" data-testid="file-input" accept=".csv,.json,.txt,text/csv,application/json" on:change=on_pick/>
            </label>
            {move || match status.get() {
                Status::Idle => ().into_any(),
                Status::Sending { file, percent } => view! {
                    <div class="upload-progress" role="status">
                        <p>{tf("Sending {file}…", &[("file", &file)])}</p>
                        <progress max="100" value=format!("{percent:.0}") data-testid="upload-progress"></progress>
                    </div>
                }.into_any(),
                Status::Processing { file } => view! {
                    <div class="upload-progress" role="status">
                        <p>{tf("Reading {file}: checking every row…", &[("file", &file)])}</p>
                        <progress data-testid="upload-progress"></progress>
                    </div>
                }.into_any(),
                Status::Done(s) => view! { <Summary s=s/> }.into_any(),
                Status::Failed(m) => view! { <div class="alert alert-error" role="alert" data-testid="upload-error">{m}</div> }.into_any(),
            }}
        </section>
    }
}

#[component]
fn Summary(s: ImportSummary) -> impl IntoView {
    let total: u64 = s.records.values().sum();
    let records = tp(total as i64, "{n} new record", "{n} new records");
    let headline = match (&s.first, &s.last) {
        (Some(a), Some(b)) => tf(
            "{file}: {records} from {first} to {last}; {duplicates} already stored.",
            &[
                ("file", &s.file),
                ("records", &records),
                ("first", &lang().date_of_rfc3339(a)),
                ("last", &lang().date_of_rfc3339(b)),
                ("duplicates", &s.duplicates),
            ],
        ),
        _ => tf(
            "{file}: {records}; {duplicates} already stored.",
            &[("file", &s.file), ("records", &records), ("duplicates", &s.duplicates)],
        ),
    };
    let rejected = s.rejected.clone();
    view! {
        <div class="upload-summary" data-testid="upload-summary">
            <div class="alert alert-ok" role="status">
                {headline}
            </div>
            <table class="table">
                <thead><tr><th scope="col">{t("Kind")}</th><th scope="col">{t("New records")}</th></tr></thead>
                <tbody>
                    {s.records.into_iter().map(|(k, v)| view! { <tr><td>{kind_label(&k)}</td><td data-testid=format!("count-{k}")>{v}</td></tr> }).collect_view()}
                </tbody>
            </table>
            {(!rejected.is_empty()).then(|| view! {
                <details class="rejected" open=true>
                    <summary>{tp(rejected.len() as i64, "{n} row skipped", "{n} rows skipped")}</summary>
                    <ul>
                        {rejected.into_iter().take(200).map(|r| view! { <li><code>{r.location}</code>" "{r.reason}</li> }).collect_view()}
                    </ul>
                </details>
            })}
            <p class="actions"><a class="btn btn-primary" href="/reports">{t("See the reports")}</a></p>
        </div>
    }
}

/// The words for a kind of record (`cgm`, `bolus`…), in the page's language.
pub fn kind_label(k: &str) -> String {
    match k {
        "cgm" => t("Sensor glucose").into(),
        "bg" => t("Fingerstick BG").into(),
        "bolus" => t("Boluses").into(),
        "bolus_wizard" => t("Bolus Wizard").into(),
        "basal_profile_start" => t("Basal rate changes").into(),
        "temp_basal" => t("Temp basals").into(),
        "suspend" => t("Suspends").into(),
        "resume" => t("Resumes").into(),
        "carbs" => t("Carbs").into(),
        "prime" => t("Primes").into(),
        "rewind" => t("Rewinds").into(),
        "alarm" => t("Alarms").into(),
        "sensor_event" => t("Sensor events").into(),
        "time_change" => t("Clock changes").into(),
        "daily_total" => t("Daily totals").into(),
        "settings" => t("Settings").into(),
        "note" => t("Notes").into(),
        other => other.replace('_', " "),
    }
}

#[component]
fn UploadHistory(refresh: RwSignal<u32>, target: Option<String>) -> impl IntoView {
    let deleted = ServerAction::<crate::api_uploads::DeleteUpload>::new();
    let uploads = Resource::new(move || (refresh.get(), deleted.version().get(), target.clone()), |(_, _, t)| list_uploads(t));
    view! {
        <section class="card" aria-labelledby="history-h">
            <h2 id="history-h">{t("Your uploads")}</h2>
            {move || deleted.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorCard message=crate::api::error_message(&e)/> })}
            <Transition fallback=|| view! { <p class="loading">{t("Loading…")}</p> }>
                {move || Suspend::new(async move {
                    match uploads.await {
                        Ok(list) if list.is_empty() => view! {
                            <p class="empty-state" data-testid="uploads-empty">{t("No uploads yet. Import a file above; it will be listed here.")}</p>
                        }.into_any(),
                        Ok(list) => view! {
                            <table class="table" data-testid="uploads-table">
                                <thead><tr>
                                    <th scope="col">{t("When")}</th><th scope="col">{t("Source")}</th><th scope="col">{t("Covers")}</th>
                                    <th scope="col">{t("Records")}</th><th scope="col">{t("Skipped")}</th><th scope="col"><span class="sr-only">{t("Actions")}</span></th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|u| {
                                        let total: u64 = u.records.values().sum();
                                        let covers = match (&u.first, &u.last) {
                                            (Some(a), Some(b)) => format!("{} – {}", lang().date_of_rfc3339(a), lang().date_of_rfc3339(b)),
                                            _ => "–".into(),
                                        };
                                        let label = u.file_name.clone().unwrap_or_else(|| source_label(&u.source));
                                        let id = u.id.clone();
                                        view! {
                                            <tr>
                                                <td>{lang().datetime_utc(&u.created_at)}</td>
                                                <td>{label}<br/><small class="muted">{u.format.replace('_', " ")}</small></td>
                                                <td>{covers}</td>
                                                <td>{tf("{total} new, {duplicates} duplicate", &[("total", &total), ("duplicates", &u.duplicates)])}</td>
                                                <td>{u.rejected}</td>
                                                <td>
                                                    <ActionForm action=deleted attr:class="inline-form">
                                                        <input type="hidden" name="id" value=id/>
                                                        <button type="submit" class="btn btn-danger" data-testid="delete-upload"
                                                            on:click=move |ev| { if !confirm_delete() { ev.prevent_default(); } }>
                                                            {t("Delete")}
                                                        </button>
                                                    </ActionForm>
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                            <p class="muted small">{t("Deleting an upload removes exactly the records it added.")}</p>
                        }.into_any(),
                        Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// The words for where an upload without a file name came from.
fn source_label(source: &str) -> String {
    match source {
        "file" => t("file").into(),
        "demo" => t("demo").into(),
        other => other.to_string(),
    }
}

// ---- browser-only plumbing -------------------------------------------------

#[cfg(feature = "hydrate")]
type FileHandle = web_sys::File;
#[cfg(not(feature = "hydrate"))]
type FileHandle = ();

#[cfg(feature = "hydrate")]
fn picked_file(ev: &leptos::ev::Event) -> Option<FileHandle> {
    use wasm_bindgen::JsCast;
    let input: web_sys::HtmlInputElement = ev.target()?.dyn_into().ok()?;
    let file = input.files()?.get(0);
    // Clear the choice so that picking the same file again fires `change`.
    input.set_value("");
    file
}
#[cfg(not(feature = "hydrate"))]
fn picked_file(_: &leptos::ev::Event) -> Option<FileHandle> {
    None
}

#[cfg(feature = "hydrate")]
fn dropped_file(ev: &leptos::ev::DragEvent) -> Option<FileHandle> {
    ev.data_transfer()?.files()?.get(0)
}
#[cfg(not(feature = "hydrate"))]
fn dropped_file(_: &leptos::ev::DragEvent) -> Option<FileHandle> {
    None
}

#[cfg(feature = "hydrate")]
fn confirm_delete() -> bool {
    web_sys::window()
        .and_then(|w| w.confirm_with_message(t("Delete this upload and every record it added?")).ok())
        .unwrap_or(false)
}
#[cfg(not(feature = "hydrate"))]
fn confirm_delete() -> bool {
    true
}

/// Posts the file to `POST /api/v1/uploads` with XMLHttpRequest, for its
/// upload-progress events.
#[cfg(feature = "hydrate")]
fn start_upload(file: FileHandle, status: RwSignal<Status>, refresh: RwSignal<u32>, target: Option<String>) {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    let name = file.name();
    let fail = move |m: String| status.set(Status::Failed(m));
    let Ok(form) = web_sys::FormData::new() else { return fail(t("This browser cannot send files.").into()) };
    if form.append_with_blob_and_filename("file", &file, &name).is_err() {
        return fail(t("This browser cannot send files.").into());
    }
    let Ok(xhr) = web_sys::XmlHttpRequest::new() else { return fail(t("This browser cannot send files.").into()) };
    let url = match &target {
        Some(p) => format!("/api/v1/uploads?patient_id={p}"),
        None => "/api/v1/uploads".to_string(),
    };
    if xhr.open("POST", &url).is_err() {
        return fail(t("Could not start the upload.").into());
    }
    status.set(Status::Sending { file: name.clone(), percent: 0.0 });
    if let Ok(upload) = xhr.upload() {
        let n = name.clone();
        let on_progress = Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
            if e.length_computable() && e.total() > 0.0 {
                let percent = e.loaded() / e.total() * 100.0;
                if percent >= 100.0 {
                    status.set(Status::Processing { file: n.clone() });
                } else {
                    status.set(Status::Sending { file: n.clone(), percent });
                }
            }
        });
        upload.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
        on_progress.forget();
    }
    let x = xhr.clone();
    let on_load = Closure::<dyn FnMut()>::new(move || {
        let code = x.status().unwrap_or(0);
        let text = x.response_text().ok().flatten().unwrap_or_default();
        if code == 201 || code == 200 {
            match serde_json::from_str::<ImportSummary>(&text) {
                Ok(s) => {
                    status.set(Status::Done(s));
                    refresh.update(|r| *r += 1);
                }
                Err(_) => status.set(Status::Failed(t("The server's answer could not be read.").into())),
            }
        } else {
            let msg = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| tf("The upload failed (HTTP {code}).", &[("code", &code)]));
            status.set(Status::Failed(msg));
        }
    });
    xhr.set_onload(Some(on_load.as_ref().unchecked_ref()));
    on_load.forget();
    let on_error = Closure::<dyn FnMut()>::new(move || {
        status.set(Status::Failed(t("Could not reach Diabase. Check your connection and try again.").into()));
    });
    xhr.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    if xhr.send_with_opt_form_data(Some(&form)).is_err() {
        status.set(Status::Failed(t("Could not start the upload.").into()));
    }
}
#[cfg(not(feature = "hydrate"))]
fn start_upload(_file: FileHandle, _status: RwSignal<Status>, _refresh: RwSignal<u32>, _target: Option<String>) {}
