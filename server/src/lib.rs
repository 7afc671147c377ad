//! The `diabase` server: configuration, the axum router (Leptos pages and
//! server functions, the REST API v1), security middleware and the CLI.

pub mod config;
pub mod nightscout;
pub mod pdf;
pub mod rest;
pub mod rest_account;
pub mod rest_sharing;
pub mod security;

use app::service::{AppState, Config};
use axum::Router;
use leptos::config::LeptosOptions;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::net::SocketAddr;
use std::sync::Arc;

/// Builds the whole application router on a migrated database.
pub fn router(state: AppState, trust_proxy: bool) -> Router {
    let leptos_options = state.leptos_options.clone();
    let routes = generate_route_list(app::App);
    let shell_opts = leptos_options.clone();
    let pages = Router::new()
        .leptos_routes_with_context(&state, routes, || {}, move || app::shell(shell_opts.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(app::shell))
        .with_state(state.clone());
    Router::new()
        .nest("/api/v1", rest::routes(state.clone()))
        .merge(nightscout::routes(state.clone()))
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(state.clone(), security::origin_check))
        .layer(axum::middleware::from_fn_with_state(
            security::HeadersConfig { hsts: state.config.secure_cookies, trust_proxy },
            security::headers,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024 * 1024))
}

/// Connects, migrates and assembles the state.
pub async fn build_state(database_url: &str, config: Config, leptos_options: LeptosOptions) -> anyhow_like::Result<AppState> {
    let db = store::connect(database_url).await?;
    store::migrate(&db).await?;
    Ok(AppState { db, config: Arc::new(config), leptos_options })
}

/// Serves until Ctrl-C / SIGTERM.
pub async fn serve(state: AppState, addr: SocketAddr, trust_proxy: bool) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_on(listener, state, trust_proxy).await
}

pub async fn serve_on(listener: tokio::net::TcpListener, state: AppState, trust_proxy: bool) -> std::io::Result<()> {
    let app = router(state, trust_proxy);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// A small boxed-error result for the binary's plumbing.
pub mod anyhow_like {
    pub type Error = Box<dyn std::error::Error + Send + Sync>;
    pub type Result<T> = std::result::Result<T, Error>;
}
