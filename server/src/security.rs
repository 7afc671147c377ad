//! Security middleware: response headers (CSP with a per-request nonce,
//! framing, referrer, HSTS under TLS, no caching of personal pages) and the
//! Origin check on every state-changing request.

use app::service::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::{HeaderValue, Method, StatusCode, header};
use rand::RngCore;

#[derive(Clone, Copy, Debug)]
pub struct HeadersConfig {
    pub hsts: bool,
    pub trust_proxy: bool,
    /// Trusted proxies in front (see `app::service::forwarded_client`).
    pub proxy_hops: usize,
}

pub async fn headers(State(cfg): State<HeadersConfig>, mut req: Request, next: Next) -> Response {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    req.extensions_mut().insert(app::CspNonce(nonce.clone()));
    if cfg.trust_proxy {
        req.extensions_mut().insert(app::api::ssr::TrustProxy(cfg.proxy_hops));
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self'; \
         connect-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none'; \
         base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("usb=(self), hid=(self), camera=(), microphone=(), geolocation=(), payment=()"),
    );
    if cfg.hsts {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=63072000; includeSubDomains"));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages and API answers carry health data: never cache them. The
        // site's files say how long they keep (`assets`).
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Refuses a state-changing request whose `Origin` (or, lacking it,
/// `Referer`) names another site. Requests with neither header come from
/// non-browser clients (browsers always send Origin on cross-site POST,
/// PUT, PATCH and DELETE), and bearer-token requests carry no ambient
/// credentials, so both pass.
pub async fn origin_check(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    // Nightscout clients authenticate with an API secret header: no ambient
    // credential a cross-site page could ride on.
    if headers.contains_key("api-secret") {
        return next.run(req).await;
    }
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("bearer "))
    {
        return next.run(req).await;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let claimed = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| headers.get(header::REFERER).and_then(|v| v.to_str().ok()).map(str::to_string));
    match claimed {
        None => next.run(req).await,
        Some(o) if origin_allowed(&o, host, &state.config.extra_origins) => next.run(req).await,
        Some(_) => (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({"error": {"code": "bad_origin",
                "message": "This request came from another site and was refused."}})),
        )
            .into_response(),
    }
}

/// Whether `origin` (an Origin or Referer value) is this site.
pub fn origin_allowed(origin: &str, host: &str, extra: &[String]) -> bool {
    if origin == "null" {
        return false;
    }
    let Some(rest) = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://")) else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    if !host.is_empty() && authority.eq_ignore_ascii_case(host) {
        return true;
    }
    let base = origin.trim_end_matches('/');
    extra.iter().any(|e| {
        let e = e.trim_end_matches('/');
        base.eq_ignore_ascii_case(e) || origin.to_ascii_lowercase().starts_with(&format!("{}/", e.to_ascii_lowercase()))
    })
}

#[cfg(test)]
mod tests {
    use super::origin_allowed;

    #[test]
    fn origins() {
        assert!(origin_allowed("http://127.0.0.1:3000", "127.0.0.1:3000", &[]));
        assert!(origin_allowed("http://127.0.0.1:3000/login", "127.0.0.1:3000", &[]));
        assert!(!origin_allowed("http://evil.example", "127.0.0.1:3000", &[]));
        assert!(!origin_allowed("http://127.0.0.1:3000.evil.example", "127.0.0.1:3000", &[]));
        assert!(!origin_allowed("null", "127.0.0.1:3000", &[]));
        assert!(origin_allowed(
            "https://diabase.example.org",
            "internal:3000",
            &["https://diabase.example.org".into()]
        ));
    }
}
