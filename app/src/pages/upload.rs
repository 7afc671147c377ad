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
            <DeviceUpload refresh=refresh target=target.clone()/>
            <FileImport refresh=refresh target=target.clone()/>
            <UploadHistory refresh=refresh target=target.clone()/>
        </RequireUser>
    }
}

/// Where a device upload is.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum DeviceStatus {
    Idle,
    Connecting,
    /// Stage label, fraction 0–1, seconds left (once it can be estimated).
    Reading {
        stage: String,
        fraction: f32,
        left_s: Option<u32>,
    },
    Sending,
    Done(ImportSummary),
    Cancelled,
    Failed(String),
}

/// Upload → Device: a MiniMed pump through the CareLink USB stick, over WebUSB.
#[component]
fn DeviceUpload(refresh: RwSignal<u32>, target: Option<String>) -> impl IntoView {
    let status = RwSignal::new(DeviceStatus::Idle);
    let serial = RwSignal::new(String::new());
    let cancel = RwSignal::new(false);
    // WebUSB is known only in the browser: the server renders the explanation's container
    // and hydration decides.
    let usb = RwSignal::new(true);
    let target = StoredValue::new(target);
    Effect::new(move |_| {
        usb.set(usb_supported());
        if let Some(s) = remembered_serial() {
            serial.set(s);
        }
    });
    let busy =
        move || matches!(status.get(), DeviceStatus::Connecting | DeviceStatus::Reading { .. } | DeviceStatus::Sending);
    let on_connect = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let s: String = serial.get_untracked().chars().filter(|c| !c.is_whitespace()).collect();
        if s.len() != 6 || !s.chars().all(|c| c.is_ascii_digit()) {
            status.set(DeviceStatus::Failed(
                t("Enter the pump's serial number: the 6 digits after SN on the back of the pump.").into(),
            ));
            return;
        }
        cancel.set(false);
        start_device_upload(s, status, cancel, refresh, target.get_value());
    };
    view! {
        <section class="card" aria-labelledby="device-h" data-testid="device-upload">
            <h2 id="device-h">{t("Upload from a MiniMed pump")}</h2>
            <Show when=move || usb.get() fallback=|| view! {
                <div class="alert alert-info" role="status" data-testid="no-webusb">
                    {t("This browser cannot talk to USB devices. Use Chrome or Edge on a computer or an Android phone to upload straight from the pump, or import a CareLink export file below.")}
                </div>
            }>
                <p class="muted">{t("Plug the CareLink USB stick in, keep the pump close to it, and make sure the pump is on its home screen. Diabase reads the pump's settings, history and sensor data; a second upload reads only what is new.")}</p>
                <form class="inline-form" on:submit=on_connect>
                    <label>
                        {t("Pump serial number")}
                        <input type="text" inputmode="numeric" autocomplete="off" maxlength="6" pattern="[0-9]{6}" required=true
                            data-testid="pump-serial" prop:value=move || serial.get()
                            on:input=move |ev| serial.set(event_target_value(&ev)) disabled=busy/>
                    </label>
                    <button type="submit" class="btn btn-primary" data-testid="connect-device" disabled=busy>{t("Connect device")}</button>
                    <Show when=busy>
                        <button type="button" class="btn" data-testid="cancel-device" on:click=move |_| cancel.set(true)>{t("Cancel")}</button>
                    </Show>
                </form>
                {move || match status.get() {
                    DeviceStatus::Idle => ().into_any(),
                    DeviceStatus::Connecting => view! {
                        <div class="upload-progress" role="status"><p>{t("Choose the CareLink USB stick in the browser's list…")}</p></div>
                    }.into_any(),
                    DeviceStatus::Reading { stage, fraction, left_s } => {
                        let pct = format!("{:.0}", f64::from(fraction) * 100.0);
                        view! {
                            <div class="upload-progress" role="status">
                                <p data-testid="device-stage">{stage}</p>
                                <progress max="100" value=pct.clone() data-testid="device-progress"></progress>
                                <p class="muted small">
                                    {lang().percent(f64::from(fraction) * 100.0, 0)}
                                    {left_s.map(|s| format!(" · {}", tf("about {n} s left", &[("n", &s)])))}
                                </p>
                            </div>
                        }.into_any()
                    }
                    DeviceStatus::Sending => view! {
                        <div class="upload-progress" role="status"><p>{t("Sending the pages to Diabase…")}</p><progress data-testid="device-progress"></progress></div>
                    }.into_any(),
                    DeviceStatus::Done(s) => view! { <Summary s=s/> }.into_any(),
                    DeviceStatus::Cancelled => view! {
                        <div class="alert alert-info" role="status" data-testid="device-cancelled">{t("Upload cancelled. Nothing was stored; connect again to start over.")}</div>
                    }.into_any(),
                    DeviceStatus::Failed(m) => view! { <div class="alert alert-error" role="alert" data-testid="device-error">{m}</div> }.into_any(),
                }}
            </Show>
        </section>
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
                <input type="file" name="file" data-testid="file-input" accept=".csv,.json,.txt,.data,.hex,.bin,text/csv,application/json" on:change=on_pick/>
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
    let uploads =
        Resource::new(move || (refresh.get(), deleted.version().get(), target.clone()), |(_, _, t)| list_uploads(t));
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
fn usb_supported() -> bool {
    crate::webusb::supported()
}
#[cfg(not(feature = "hydrate"))]
fn usb_supported() -> bool {
    false
}

#[cfg(feature = "hydrate")]
const SERIAL_KEY: &str = "diabase.minimed.serial";

#[cfg(feature = "hydrate")]
fn remembered_serial() -> Option<String> {
    web_sys::window()?.local_storage().ok()??.get_item(SERIAL_KEY).ok()?
}
#[cfg(not(feature = "hydrate"))]
fn remembered_serial() -> Option<String> {
    None
}

/// The words for a driver stage.
#[cfg(feature = "hydrate")]
fn stage_label(p: &::devices::minimed::driver::Progress) -> String {
    use ::devices::minimed::driver::Stage;
    match p.stage {
        Stage::Connecting => t("Talking to the USB stick…").into(),
        Stage::WakingPump => t("Waking the pump's radio (about 15 seconds)…").into(),
        Stage::ReadingIdentity => t("Reading the pump's model, clock, battery and reservoir…").into(),
        Stage::ReadingSettings => t("Reading basal profiles, carb ratios, sensitivities and targets…").into(),
        Stage::ReadingHistory => {
            tf("Reading pump history: page {done} of {total}", &[("done", &p.done), ("total", &p.total)])
        }
        Stage::ReadingGlucose => {
            tf("Reading sensor data: page {done} of {total}", &[("done", &p.done), ("total", &p.total)])
        }
        Stage::Finished => t("Finished reading the pump.").into(),
    }
}

/// Reads the pump over WebUSB and posts the raw pages to `POST /api/v1/uploads`.
#[cfg(feature = "hydrate")]
fn start_device_upload(
    serial: String,
    status: RwSignal<DeviceStatus>,
    cancel: RwSignal<bool>,
    refresh: RwSignal<u32>,
    target: Option<String>,
) {
    use ::devices::minimed::driver::{Driver, DriverConfig, DriverError};
    if let Some(store) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = store.set_item(SERIAL_KEY, &serial);
    }
    status.set(DeviceStatus::Connecting);
    leptos::task::spawn_local(async move {
        let mut stick = match crate::webusb::Stick::choose().await {
            Ok(s) => s,
            Err(m) => return status.set(DeviceStatus::Failed(m)),
        };
        // Incremental: read back only to the newest record already stored from this pump.
        let since = crate::api_uploads::list_devices(target.clone())
            .await
            .ok()
            .and_then(|devs| devs.into_iter().find(|d| d.serial.as_deref() == Some(serial.as_str())))
            .and_then(|d| {
                let parse = |s: Option<String>| {
                    s.and_then(|s| chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S").ok())
                };
                match (parse(d.newest_history_device_time), parse(d.newest_cgm_device_time)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            });
        let mut config = DriverConfig::new(serial.clone());
        config.since = since;
        let driver = match Driver::new(config) {
            Ok(d) => d,
            Err(e) => {
                stick.close().await;
                return status.set(DeviceStatus::Failed(driver_error(&e)));
            }
        };
        let started = js_sys::Date::now();
        let result = crate::webusb::run(
            &mut stick,
            driver,
            |p| {
                let elapsed_s = (js_sys::Date::now() - started) / 1000.0;
                let f = f64::from(p.fraction);
                let left_s = (f > 0.15 && elapsed_s > 5.0).then(|| (elapsed_s * (1.0 - f) / f).round() as u32);
                status.set(DeviceStatus::Reading { stage: stage_label(&p), fraction: p.fraction, left_s });
            },
            move || cancel.get_untracked(),
        )
        .await;
        stick.close().await;
        let dump = match result {
            Ok(d) => d,
            Err(DriverError::Cancelled) => return status.set(DeviceStatus::Cancelled),
            Err(e) => return status.set(DeviceStatus::Failed(driver_error(&e))),
        };
        status.set(DeviceStatus::Sending);
        let url = match &target {
            Some(p) => format!("/api/v1/uploads?patient_id={p}"),
            None => "/api/v1/uploads".to_string(),
        };
        let body = serde_json::to_string(&dump).unwrap_or_default();
        match post_json(&url, &body).await {
            Ok((201 | 200, text)) => match serde_json::from_str::<ImportSummary>(&text) {
                Ok(s) => {
                    status.set(DeviceStatus::Done(s));
                    refresh.update(|r| *r += 1);
                }
                Err(_) => status.set(DeviceStatus::Failed(t("The server's answer could not be read.").into())),
            },
            Ok((code, text)) => {
                let msg = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| tf("The upload failed (HTTP {code}).", &[("code", &code)]));
                status.set(DeviceStatus::Failed(msg));
            }
            Err(()) => status
                .set(DeviceStatus::Failed(t("Could not reach Diabase. Check your connection and try again.").into())),
        }
    });
}
#[cfg(not(feature = "hydrate"))]
fn start_device_upload(
    _serial: String,
    _status: RwSignal<DeviceStatus>,
    _cancel: RwSignal<bool>,
    _refresh: RwSignal<u32>,
    _target: Option<String>,
) {
}

/// A driver error in the page's language.
#[cfg(feature = "hydrate")]
fn driver_error(e: &::devices::minimed::driver::DriverError) -> String {
    use ::devices::minimed::driver::DriverError as E;
    match e {
        E::StickNotResponding => t("The CareLink USB stick did not answer properly: unplug it, plug it back in and try again.").into(),
        E::PumpNotResponding { .. } => t("The pump did not answer: move it closer to the stick, check the serial number and the pump's battery, and try again.").into(),
        E::RadioNoise { .. } => t("Too much radio noise: put the pump right next to the stick, away from Wi-Fi routers, microwave ovens and other USB devices, and try again.").into(),
        E::PumpBusy => t("The pump is busy (delivering a bolus, priming, or showing a menu): wait until it is back on its home screen and try again.").into(),
        E::BadSerial(_) => t("Enter the pump's serial number: the 6 digits after SN on the back of the pump.").into(),
        E::Cancelled => t("Upload cancelled. Nothing was stored; connect again to start over.").into(),
        E::Protocol(m) => tf("The pump's answer could not be understood ({reason}). Try again; if it keeps happening, the pump model may not be supported yet.", &[("reason", m)]),
    }
}

/// POSTs JSON with the session cookie; the status and the body, or `Err` when the network failed.
#[cfg(feature = "hydrate")]
async fn post_json(url: &str, body: &str) -> Result<(u16, String), ()> {
    use wasm_bindgen::JsCast;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&wasm_bindgen::JsValue::from_str(body));
    let headers = web_sys::Headers::new().map_err(|_| ())?;
    headers.set("Content-Type", "application/json").map_err(|_| ())?;
    init.set_headers(&headers);
    let window = web_sys::window().ok_or(())?;
    let resp = window.fetch_with_str_and_init(url, &init).await.map_err(|_| ())?;
    let resp: web_sys::Response = resp.dyn_into().map_err(|_| ())?;
    let text = resp.text().map_err(|_| ())?.await.map_err(|_| ())?;
    Ok((resp.status(), text.as_string().unwrap_or_default()))
}

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
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
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
