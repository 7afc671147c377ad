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
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0);
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
        let (state, actor, _, meta) = full_actor().await?;
        Ok((state, actor, meta))
    }

    /// [`actor`] with the request's parts (for the public origin of links).
    pub async fn actor_with_parts() -> Result<(AppState, Actor, http::request::Parts), ServerFnError> {
        let (state, actor, parts, _) = full_actor().await?;
        Ok((state, actor, parts))
    }

    /// The one gate of every authenticated server function: a session, or a
    /// token with `full` scope (issue 19: a function that authenticated by
    /// itself let an `upload` token rotate the Nightscout secret).
    async fn full_actor() -> Result<(AppState, Actor, http::request::Parts, ClientMeta), ServerFnError> {
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
        Ok((state, actor, parts, meta))
    }

    pub fn set_cookie(value: &str) {
        if let Some(opts) = use_context::<leptos_axum::ResponseOptions>()
            && let Ok(v) = http::HeaderValue::from_str(value)
        {
            opts.append_header(http::header::SET_COOKIE, v);
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

/// Where to go after log-in, passkey sign-in or a language change: `next`
/// when it is a path on this site ([`is_local_path`]), else `/`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if is_local_path(n) => n.to_string(),
        _ => "/".to_string(),
    }
}

/// Whether `next` is a path that stays on this site however a browser reads
/// it (issue 19). Browsers drop tabs and line breaks from a `Location` and
/// read `\\` as `/`, so `/\t/evil.example` goes to `//evil.example`, another
/// host. Accepted: one leading `/`, no control character, whitespace or
/// backslash (also not percent-encoded: `%09`, `%0a`, `%5c`, `%2f%2f`), and
/// the path resolved against a base URL keeps the base's scheme and host.
/// The same rule is `safeNext` in public/passkeys.js.
pub fn is_local_path(next: &str) -> bool {
    fn plain(s: &str) -> bool {
        s.starts_with('/')
            && !s.starts_with("//")
            && !s.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    }
    if next.len() > 2048 || !plain(next) {
        return false;
    }
    // Each percent-decoded form of the path must pass too (a proxy or a
    // later redirect may decode once more); the query and fragment cannot
    // change the host, so `?q=John%20Smith` stays.
    let path_end = next.find(['?', '#']).unwrap_or(next.len());
    let mut s = next[..path_end].to_string();
    for _ in 0..3 {
        let d = percent_decode(&s);
        if d == s {
            break;
        }
        if !plain(&d) {
            return false;
        }
        s = d;
    }
    let Ok(base) = url::Url::parse("http://x.invalid/") else { return false };
    match base.join(next) {
        Ok(u) => {
            u.scheme() == "http"
                && u.host_str() == Some("x.invalid")
                && u.port().is_none()
                && u.username().is_empty()
                && u.password().is_none()
        }
        Err(_) => false,
    }
}

/// `%XX` sequences decoded (bytes read as UTF-8, lossily); other text kept.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod next_tests {
    use super::{is_local_path, safe_next};

    #[test]
    fn attacks_go_home() {
        for bad in [
            "/\t/evil.example",
            "/%09/evil.example",
            "/%0a/evil.example",
            "/%0D%0A/evil.example",
            "/%5cevil.example",
            "/%5C%5Cevil.example",
            "/%2F%2Fevil",
            "/%2f/evil",
            "/%252F%252Fevil",
            "/\t/evil",
            "/\n/evil",
            "/\r/evil",
            "/\\evil",
            "/\\/evil",
            "\\\\evil",
            "//evil",
            "///evil",
            "/ /evil",
            " /evil",
            "/\u{a0}/evil",
            "/\u{3000}/evil",
            "/\u{7f}/evil",
            "https://evil",
            "http:evil",
            "//evil.example/path",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,hi",
            "evil",
            "",
        ] {
            assert!(!is_local_path(bad), "{bad:?} was accepted");
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn own_paths_are_kept() {
        for good in [
            "/",
            "/reports?from=2024-01-01",
            "/reports?from=2024-01-01&to=2024-01-31#daily",
            "/clinic/abc",
            "/clinic/abc/patients/7f0c?q=M%C3%BCller",
            "/settings/security",
            "/sharing?code=ABCD-1234",
            "/%",
            "/clinic/abc?q=John%20Smith",
        ] {
            assert!(is_local_path(good), "{good:?} was refused");
            assert_eq!(safe_next(Some(good)), good);
        }
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
    // Like every other server function: a token without `full` scope
    // calls the REST API (`GET /api/v1/me`), not the browser's functions.
    if !actor.full_access() {
        return Err(ssr::to_sfn(service::ServiceError::Forbidden));
    }
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
    if let Some(token) = service::auth::session_token_from_cookies(&parts.headers, state.config.secure_cookies) {
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
