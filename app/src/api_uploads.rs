//! Server functions for the uploads history.

use crate::model::UploadRow;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

#[server(prefix = "/_fn", endpoint = "uploads", input = GetUrl)]
pub async fn list_uploads() -> Result<Vec<UploadRow>, ServerFnError> {
    use crate::api::ssr;
    use crate::service::{self, ServiceError};
    let (state, actor) = ssr::actor().await?;
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
