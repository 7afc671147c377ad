//! Server functions: the browser's entry points into the service layer.
//! Each one authenticates, calls exactly one service operation and maps its
//! error; no logic lives here that the REST API would need too.

use crate::model::{ClinicSummary, DashboardData, Me, SessionInfo};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

#[cfg(feature = "ssr")]
pub mod ssr {
    use crate::service::{self, Actor, AppState, ClientMeta, ServiceError};
    use leptos::prelude::*;

    pub fn to_sfn(e: ServiceError) -> ServerFnError {
        if let ServiceError::Internal(cause) = &e {
            tracing::error!(%cause, "server function failed");
        }
        if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
            opts.set_status(http::StatusCode::from_u16(e.status()).unwrap_or(http::StatusCode::BAD_REQUEST));
        }
        ServerFnError::ServerError(e.message_in(crate::i18n::detect()))
    }

    pub async fn context() -> Result<(AppState, http::request::Parts, ClientMeta), ServerFnError> {
        let state = use_context::<AppState>().ok_or_else(|| ServerFnError::new("no application state"))?;
        let parts: http::request::Parts = leptos_axum::extract().await?;
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0);
        let trust = parts.extensions.get::<TrustProxy>().map(|t| t.0);
        let meta = service::client_meta(&parts.headers, peer, trust);
        Ok((state, parts, meta))
    }

    /// Present in request extensions when the operator trusts X-Forwarded-For:
    /// how many trusted proxies append to it (`DIABASE_TRUSTED_PROXY_HOPS`).
    #[derive(Clone, Copy, Debug)]
    pub struct TrustProxy(pub usize);

    pub async fn actor() -> Result<(AppState, Actor), ServerFnError> {
        let (state, actor, _) = actor_with_meta().await?;
        Ok((state, actor))
    }

    /// [`actor`] with the client's address and browser, for calls that
    /// rate-limit or audit by them.
    pub async fn actor_with_meta() -> Result<(AppState, Actor, ClientMeta), ServerFnError> {
        let (state, parts, meta) = context().await?;
        let actor = service::authenticate(&state, &parts.headers, service::now_ms())
            .await
            .map_err(to_sfn)?
            .ok_or_else(|| to_sfn(ServiceError::Unauthorized))?;
        // The browser's functions are not an API: a token limited to some
        // scopes calls the REST API only, where each endpoint is checked.
        if !actor.full_access() {
            return Err(to_sfn(ServiceError::Forbidden));
        }
        Ok((state, actor, meta))
    }

    pub fn set_cookie(value: &str) {
        if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
            if let Ok(v) = http::HeaderValue::from_str(value) {
                opts.append_header(http::header::SET_COOKIE, v);
            }
        }
    }
}

/// A message fit to show a person from a server-function error.
pub fn error_message(e: &ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(m) => m.clone(),
        ServerFnError::Request(_) | ServerFnError::Response(_) => {
            use crate::i18n::t;
            t("Could not reach Diabase. Check your connection and try again.").into()
        }
        other => other.to_string(),
    }
}

/// Only same-site relative paths are followed after log-in.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

#[server(prefix = "/_fn", endpoint = "me", input = GetUrl)]
pub async fn get_me() -> Result<Option<Me>, ServerFnError> {
    use crate::service;
    let (state, parts, _) = ssr::context().await?;
    let Some(actor) = service::authenticate(&state, &parts.headers, service::now_ms()).await.map_err(ssr::to_sfn)?
    else {
        return Ok(None);
    };
    service::me::get(&state, &actor).await.map(Some).map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "login")]
pub async fn login(
    email: String,
    password: String,
    totp: Option<String>,
    next: Option<String>,
) -> Result<(), ServerFnError> {
    use crate::service;
    let (state, _, meta) = ssr::context().await?;
    let session = service::auth::login(&state, &email, &password, totp.as_deref(), &meta, service::now_ms())
        .await
        .map_err(ssr::to_sfn)?;
    ssr::set_cookie(&service::auth::session_cookie(&state, &session.token));
    if let Some(c) = &session.device_cookie {
        ssr::set_cookie(c);
    }
    // The account's language follows it to this browser.
    if let Some(lang) = session.user.language.as_deref().and_then(crate::i18n::Lang::parse) {
        ssr::set_cookie(&lang.cookie(state.config.secure_cookies));
    }
    leptos_axum::redirect(&safe_next(next.as_deref()));
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "signup")]
pub async fn signup(
    email: String,
    password: String,
    display_name: String,
    role: Option<String>,
    language: Option<String>,
) -> Result<(), ServerFnError> {
    use crate::service;
    let (state, _, meta) = ssr::context().await?;
    let input = service::auth::SignupInput { email, password, display_name, role, language: language.clone() };
    service::auth::signup(&state, input, &meta, service::now_ms()).await.map_err(ssr::to_sfn)?;
    if let Some(lang) = language.as_deref().and_then(crate::i18n::Lang::parse) {
        ssr::set_cookie(&lang.cookie(state.config.secure_cookies));
    }
    leptos_axum::redirect("/login?created=1");
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "logout")]
pub async fn logout() -> Result<(), ServerFnError> {
    use crate::service;
    let (state, parts, _) = ssr::context().await?;
    if let Some(token) = service::auth::session_token_from_cookies(&parts.headers) {
        service::auth::logout(&state, &store::sha256_hex(token.as_bytes())).await.map_err(ssr::to_sfn)?;
    }
    ssr::set_cookie(&service::auth::clear_cookie(&state));
    leptos_axum::redirect("/login?signed_out=1");
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "logout_all")]
pub async fn logout_all() -> Result<(), ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::auth::logout_all(&state, &actor.user.id, service::now_ms()).await.map_err(ssr::to_sfn)?;
    ssr::set_cookie(&service::auth::clear_cookie(&state));
    leptos_axum::redirect("/login?signed_out=all");
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "update_settings")]
pub async fn update_settings(
    display_name: String,
    glucose_unit: String,
    time_zone: String,
    language: Option<String>,
) -> Result<Me, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    let patch = crate::model::MePatch {
        display_name: Some(display_name),
        glucose_unit: Some(glucose_unit),
        time_zone: Some(time_zone),
        language,
    };
    let me = service::me::update(&state, &actor, patch, service::now_ms()).await.map_err(ssr::to_sfn)?;
    if let Some(lang) = me.language.as_deref().and_then(crate::i18n::Lang::parse) {
        ssr::set_cookie(&lang.cookie(state.config.secure_cookies));
    }
    Ok(me)
}

/// Ends one session (another device, or this one).
#[server(prefix = "/_fn", endpoint = "end_session")]
pub async fn end_session(id: String) -> Result<(), ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::auth::end_session(&state, &actor.user.id, &id, service::now_ms()).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "sessions", input = GetUrl)]
pub async fn list_sessions() -> Result<Vec<SessionInfo>, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    let current = match &actor.via {
        service::AuthVia::Session(h) => Some(h.as_str()),
        service::AuthVia::Token { .. } => None,
    };
    service::auth::list_sessions(&state, &actor.user.id, current).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "dashboard", input = GetUrl)]
pub async fn dashboard() -> Result<Option<DashboardData>, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::dashboard::patient_dashboard(&state, &actor, service::now_ms()).await.map_err(ssr::to_sfn)
}

#[server(prefix = "/_fn", endpoint = "my_clinics", input = GetUrl)]
pub async fn my_clinics() -> Result<Vec<ClinicSummary>, ServerFnError> {
    use crate::service;
    let (state, actor) = ssr::actor().await?;
    service::clinic::my_clinics(&state, &actor).await.map_err(ssr::to_sfn)
}

/// IANA zone names for the settings picker.
#[server(prefix = "/_fn", endpoint = "time_zones", input = GetUrl)]
pub async fn time_zones() -> Result<Vec<String>, ServerFnError> {
    let mut v: Vec<String> = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name().to_string()).collect();
    v.sort();
    Ok(v)
}
