//! Server functions for the uploads history.

use crate::model::{NightscoutSecrets, NightscoutSiteView, UploadRow};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

#[server(prefix = "/_fn", endpoint = "uploads", input = GetUrl)]
pub async fn list_uploads(patient: Option<String>) -> Result<Vec<UploadRow>, ServerFnError> {
    use crate::api::ssr;
    use crate::service::{self, ServiceError};
    let (state, actor) = ssr::actor().await?;
    // Another data space (a clinic's custodial record): the policy decides.
    if let Some(p) = patient.filter(|p| !p.trim().is_empty()) {
        return service::import::list_uploads(&state, &actor, &p).await.map_err(ssr::to_sfn);
    }
    let Some(patient) = service::policy::own_patient(&state, &actor.user.id).await.map_err(ssr::to_sfn)? else {
        return Err(ssr::to_sfn(ServiceError::Forbidden));
    };
    service::import::list_uploads(&state, &actor, &patient.id).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "delete_upload")]
pub async fn delete_upload(id: String) -> Result<(), ServerFnError> {
    use crate::api::ssr;
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::import::delete_upload(&state, &actor, &id, service::now_ms()).await.map_err(ssr::to_sfn)
}

/// The caller's Nightscout site (no secrets), if they made one.
#[server(prefix = "/_fn", endpoint = "nightscout_site", input = GetUrl)]
pub async fn nightscout_site() -> Result<Option<NightscoutSiteView>, ServerFnError> {
    use crate::api::ssr;
    use crate::service::{self, ServiceError};
    let (state, actor, parts) = ssr::actor_with_parts().await?;
    let origin = service::public_origin(&state, &parts.headers);
    match service::nightscout::site_info(&state, &actor, &origin).await {
        Ok(s) => Ok(Some(NightscoutSiteView {
            site: s.site,
            url: s.url,
            root_url: origin,
            created_at: s.created_at,
            rotated_at: s.rotated_at,
        })),
        Err(ServiceError::NotFound) => Ok(None),
        Err(e) => Err(ssr::to_sfn(e)),
    }
}

/// Creates the caller's Nightscout site or rotates its secret and tokens
/// (the old ones stop working at once); the new ones are shown once.
#[server(prefix = "/_fn", endpoint = "rotate_nightscout")]
pub async fn rotate_nightscout() -> Result<NightscoutSecrets, ServerFnError> {
    use crate::api::ssr;
    use crate::service;
    let (state, actor, parts) = ssr::actor_with_parts().await?;
    let origin = service::public_origin(&state, &parts.headers);
    let s =
        service::nightscout::create_or_rotate(&state, &actor, &origin, service::now_ms()).await.map_err(ssr::to_sfn)?;
    Ok(NightscoutSecrets {
        site: s.site,
        url: s.url,
        root_url: origin,
        secret: s.secret,
        token: s.token,
        read_token: s.read_token,
    })
}

/// The devices that uploaded into the caller's data space (or a custodial record the caller
/// may upload to), with the newest times stored from each: the device upload reads only what
/// is newer.
#[server(prefix = "/_fn", endpoint = "devices", input = GetUrl)]
pub async fn list_devices(patient: Option<String>) -> Result<Vec<crate::model::DeviceRow>, ServerFnError> {
    use crate::api::ssr;
    use crate::service::{self, ServiceError};
    let (state, actor) = ssr::actor().await?;
    if let Some(p) = patient.filter(|p| !p.trim().is_empty()) {
        return service::import::list_devices(&state, &actor, &p).await.map_err(ssr::to_sfn);
    }
    let Some(patient) = service::policy::own_patient(&state, &actor.user.id).await.map_err(ssr::to_sfn)? else {
        return Err(ssr::to_sfn(ServiceError::Forbidden));
    };
    service::import::list_devices(&state, &actor, &patient.id).await.map_err(ssr::to_sfn)
}
