//! Server functions of sharing and the clinic workspace (the same service
//! operations as the REST API's `/sharing/…` and `/clinics/…`).
//!
//! Forms send scopes as four checkboxes (`glucose`, `insulin`, `settings`,
//! `events`: present when ticked) so that they work without JavaScript.
// A server function takes its form's fields as arguments, and the client stub
// the #[server] macro writes for it carries no attribute of ours.
#![allow(clippy::too_many_arguments)]

use crate::model::{
    AccessLogEntry, ClinicMember, ClinicPatientPage, ClinicPatientRow, ClinicSummary, GrantInfo, IncomingInvite,
    LinkPreview, SharedWithMe, UploadRequestInfo,
};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::api::ssr;

/// A new link code with its QR code (an SVG of the Data Sharing page's URL).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkCodeView {
    pub code: String,
    pub expires_at: String,
    pub url: String,
    pub qr_svg: String,
    pub emailed_to: Option<String>,
    pub texted_to: Option<String>,
}

#[cfg(feature = "ssr")]
fn checked(
    glucose: &Option<String>,
    insulin: &Option<String>,
    settings: &Option<String>,
    events: &Option<String>,
) -> Vec<String> {
    [("glucose", glucose), ("insulin", insulin), ("settings", settings), ("events", events)]
        .into_iter()
        .filter(|(_, v)| v.as_deref().is_some_and(|v| !v.is_empty() && v != "false"))
        .map(|(k, _)| k.to_string())
        .collect()
}

// --- the patient's side ---------------------------------------------------

#[server(prefix = "/_fn", endpoint = "preview_link_code")]
pub async fn preview_link_code(code: String) -> Result<LinkPreview, ServerFnError> {
    use crate::service;
    let (state, actor, meta) = ssr::actor_with_meta().await?;
    service::sharing::preview(&state, &actor, &meta, &code, service::now_ms()).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "accept_link")]
pub async fn accept_link(
    code: String,
    glucose: Option<String>,
    insulin: Option<String>,
    settings: Option<String>,
    events: Option<String>,
    expires_at: Option<String>,
) -> Result<String, ServerFnError> {
    use crate::service;
    let (state, actor, meta) = ssr::actor_with_meta().await?;
    let scopes = checked(&glucose, &insulin, &settings, &events);
    service::sharing::accept(&state, &actor, &meta, &code, &scopes, expires_at.as_deref(), service::now_ms())
        .await
        .map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "decline_link")]
pub async fn decline_link(code: String) -> Result<(), ServerFnError> {
    use crate::service;
    let (state, actor, meta) = ssr::actor_with_meta().await?;
    service::sharing::decline(&state, &actor, &meta, &code, service::now_ms()).await.map_err(ssr::to_sfn)
}

/// Pauses (`pause` = "on") or resumes all sharing.
#[server(prefix = "/_fn", endpoint = "set_sharing_paused")]
pub async fn set_sharing_paused(pause: String) -> Result<bool, ServerFnError> {
    use crate::service;
    let (state, actor, meta) = ssr::actor_with_meta().await?;
    let now = service::now_ms();
    if pause == "on" {
        service::sharing::pause_all(&state, &actor, &meta, now).await.map_err(ssr::to_sfn)?;
        Ok(true)
    } else {
        service::sharing::resume_all(&state, &actor, &meta, now).await.map_err(ssr::to_sfn)?;
        Ok(false)
    }
}

#[server(prefix = "/_fn", endpoint = "sharing_paused", input = GetUrl)]
pub async fn sharing_paused() -> Result<bool, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::sharing::sharing_paused(&state, &actor).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "my_grants", input = GetUrl)]
pub async fn my_grants() -> Result<Vec<GrantInfo>, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::sharing::list_grants(&state, &actor, service::now_ms()).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "revoke_grant")]
pub async fn revoke_grant(id: String) -> Result<(), ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::sharing::revoke_grant(&state, &actor, &id, service::now_ms()).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "update_grant")]
pub async fn update_grant(
    id: String,
    glucose: Option<String>,
    insulin: Option<String>,
    settings: Option<String>,
    events: Option<String>,
    expires_at: Option<String>,
) -> Result<GrantInfo, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    let patch = service::sharing::GrantPatch {
        scopes: Some(checked(&glucose, &insulin, &settings, &events)),
        // An empty date field means "no end date".
        expires_at: Some(expires_at.filter(|s| !s.trim().is_empty())),
    };
    service::sharing::update_grant(&state, &actor, &id, patch, service::now_ms()).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "invite_partner")]
pub async fn invite_partner(
    email: String,
    glucose: Option<String>,
    insulin: Option<String>,
    settings: Option<String>,
    events: Option<String>,
    expires_at: Option<String>,
    phone: Option<String>,
    provider_name: Option<String>,
    provider_clinic: Option<String>,
) -> Result<GrantInfo, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    let scopes = checked(&glucose, &insulin, &settings, &events);
    let blank = |s: &Option<String>| s.as_deref().is_none_or(|x| x.trim().is_empty());
    let provider = (!blank(&provider_name) || !blank(&provider_clinic)).then(|| service::sharing::Provider {
        name: provider_name.unwrap_or_default(),
        clinic: provider_clinic.unwrap_or_default(),
    });
    service::sharing::invite_with(
        &state,
        &actor,
        &email,
        &scopes,
        expires_at.as_deref(),
        phone.as_deref(),
        provider,
        service::now_ms(),
    )
    .await
    .map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "incoming_invites", input = GetUrl)]
pub async fn incoming_invites() -> Result<Vec<IncomingInvite>, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::sharing::incoming(&state, &actor, service::now_ms()).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "accept_invite")]
pub async fn accept_invite(grant_id: Option<String>, token: Option<String>) -> Result<String, ServerFnError> {
    use crate::service;
    let (state, actor, meta) = ssr::actor_with_meta().await?;
    let g = grant_id.filter(|s| !s.is_empty());
    let t = token.filter(|s| !s.is_empty());
    service::sharing::accept_invite(&state, &actor, &meta, g.as_deref(), t.as_deref(), service::now_ms())
        .await
        .map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "access_log", input = GetUrl)]
pub async fn access_log() -> Result<Vec<AccessLogEntry>, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::sharing::access_log(&state, &actor, 200).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "list_shared_with_me", input = GetUrl)]
pub async fn list_shared_with_me() -> Result<Vec<SharedWithMe>, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::sharing::shared_with_me(&state, &actor, service::now_ms()).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "my_upload_requests", input = GetUrl)]
pub async fn my_upload_requests() -> Result<Vec<UploadRequestInfo>, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::sharing::my_upload_requests(&state, &actor).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "dismiss_upload_request")]
pub async fn dismiss_upload_request(id: String) -> Result<(), ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::sharing::dismiss_upload_request(&state, &actor, &id, service::now_ms()).await.map_err(ssr::to_sfn)
}

// --- the clinic's side ------------------------------------------------------

#[server(prefix = "/_fn", endpoint = "create_clinic")]
pub async fn create_clinic(name: String) -> Result<ClinicSummary, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::clinic::create_clinic(&state, &actor, &name, service::now_ms()).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "clinic_dashboard", input = GetUrl)]
pub async fn clinic_dashboard(
    clinic_id: String,
    q: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    filter: Option<String>,
    page: Option<u32>,
) -> Result<ClinicPatientPage, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    let query = service::clinic::PatientQuery { q, sort, order, filter, page, per_page: Some(25) };
    service::clinic::dashboard(&state, &actor, &clinic_id, &query, service::now_ms()).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "create_record")]
pub async fn create_record(
    clinic_id: String,
    name: String,
    birth_date: Option<String>,
    mrn: Option<String>,
) -> Result<String, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    let input = service::clinic::NewRecord { name, birth_date, mrn };
    service::clinic::create_record(&state, &actor, &clinic_id, input, service::now_ms()).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "clinic_record", input = GetUrl)]
pub async fn clinic_record(clinic_id: String, record_id: String) -> Result<ClinicPatientRow, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::clinic::record_row(&state, &actor, &clinic_id, &record_id, service::now_ms()).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "create_link_code")]
pub async fn create_link_code(
    clinic_id: String,
    record_id: String,
    email: Option<String>,
    phone: Option<String>,
) -> Result<LinkCodeView, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    let c = service::clinic::create_link_code(
        &state,
        &actor,
        &clinic_id,
        &record_id,
        email.as_deref(),
        phone.as_deref(),
        service::now_ms(),
    )
    .await
    .map_err(ssr::to_sfn)?;
    let qr_svg = qrcode::QrCode::new(c.url.as_bytes())
        .map(|q| {
            q.render::<qrcode::render::svg::Color>()
                .min_dimensions(180, 180)
                .dark_color(qrcode::render::svg::Color("#111111"))
                .light_color(qrcode::render::svg::Color("#ffffff"))
                .build()
        })
        .unwrap_or_default();
    Ok(LinkCodeView {
        code: c.code,
        expires_at: c.expires_at,
        url: c.url,
        qr_svg,
        emailed_to: c.emailed_to,
        texted_to: c.texted_to,
    })
}

#[server(prefix = "/_fn", endpoint = "request_upload")]
pub async fn request_upload(clinic_id: String, record_id: String) -> Result<String, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::clinic::request_upload(&state, &actor, &clinic_id, &record_id, service::now_ms())
        .await
        .map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "clinic_members", input = GetUrl)]
pub async fn clinic_members(clinic_id: String) -> Result<Vec<ClinicMember>, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::clinic::list_members(&state, &actor, &clinic_id).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "add_member")]
pub async fn add_member(clinic_id: String, email: String, role: String) -> Result<ClinicMember, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::clinic::add_member(&state, &actor, &clinic_id, &email, &role, service::now_ms()).await.map_err(ssr::to_sfn)
}

/// An admin replaces the clinic's share code.
#[server(prefix = "/_fn", endpoint = "rotate_share_code")]
pub async fn rotate_share_code(clinic_id: String) -> Result<String, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::clinic::rotate_share_code(&state, &actor, &clinic_id, service::now_ms()).await.map_err(ssr::to_sfn)
}

/// A clinician has seen a new patient (who shared on their own initiative).
#[server(prefix = "/_fn", endpoint = "acknowledge_patient")]
pub async fn acknowledge_patient(clinic_id: String, record_id: String) -> Result<(), ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::clinic::acknowledge_patient(&state, &actor, &clinic_id, &record_id, service::now_ms())
        .await
        .map_err(ssr::to_sfn)
}

/// Whether this server can send text messages (an SMS gateway is set up).
#[server(prefix = "/_fn", endpoint = "sms_enabled", input = GetUrl)]
pub async fn sms_enabled() -> Result<bool, ServerFnError> {
    use crate::service;
    let (state, _, _) = ssr::context().await?;
    Ok(service::sms::enabled(&state))
}
