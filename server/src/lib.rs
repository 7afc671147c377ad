//! The `diabase` server: configuration, the axum router (Leptos pages and
//! server functions, the REST API v1), security middleware and the CLI.

pub mod assets;
pub mod config;
pub mod nightscout;
pub mod ops;
pub mod pdf;
pub mod pdf_protect;
pub mod rest;
pub mod rest_account;
pub mod rest_sharing;
pub mod security;

use app::service::{AppState, Config};
use axum::Router;
use leptos::config::LeptosOptions;
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// The page routes, generated once per process. Generating them runs the app
/// with resource loading suspended process-wide (Leptos' `SuppressResourceLoad`
/// is one global flag, leptos#4773): a page that another server in the same
/// process rendered at that moment would wait for its data forever. A process
/// that builds several routers (the integration tests build one per test)
/// must not generate the list again.
pub fn page_routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(app::App)).clone()
}

/// Builds the whole application router on a migrated database.
pub fn router(mut state: AppState, trust_proxy: bool) -> Router {
    // The site's files; the pages name their hashed addresses (issue 21).
    let assets = assets::Assets::load(std::path::Path::new(&*state.leptos_options.site_root));
    if let Some(name) = assets.output_name() {
        state.leptos_options.output_name = name.into();
    }
    let urls = assets.urls();
    let leptos_options = state.leptos_options.clone();
    let routes = page_routes();
    let shell_opts = leptos_options.clone();
    let page_urls = urls.clone();
    // Anything else is the app's "not found" page (status 404). Not
    // leptos_axum's `file_and_error_handler`: it would serve any file under
    // the site folder, stale compressed copies included.
    let not_found = {
        let (st, urls, opts) = (state.clone(), urls.clone(), leptos_options.clone());
        leptos_axum::render_app_to_stream_in_order_with_context(
            move || {
                leptos::context::provide_context(st.clone());
                leptos::context::provide_context(urls.clone());
            },
            move || app::shell(opts.clone()),
        )
    };
    let files = move |req: axum::extract::Request| {
        let assets = assets.clone();
        let not_found = not_found.clone();
        async move {
            if assets.publishes(&req) {
                return assets.serve(req).await;
            }
            let mut res = not_found(req).await;
            if res.status() == http::StatusCode::OK {
                *res.status_mut() = http::StatusCode::NOT_FOUND;
            }
            res
        }
    };
    // Pages and server functions read at most `rest::JSON_BODY_LIMIT`.
    let pages = Router::new()
        .leptos_routes_with_context(
            &state,
            routes,
            move || leptos::context::provide_context(page_urls.clone()),
            move || app::shell(shell_opts.clone()),
        )
        .fallback(files)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(rest::JSON_BODY_LIMIT))
        .with_state(state.clone());
    Router::new()
        .nest("/api/v1", rest::routes(state.clone()))
        .route("/lang/{code}", axum::routing::get(set_language).with_state(state.clone()))
        .merge(nightscout::routes(state.clone()))
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(state.clone(), security::origin_check))
        .layer(axum::middleware::from_fn_with_state(
            security::HeadersConfig {
                hsts: state.config.secure_cookies,
                trust_proxy,
                proxy_hops: state.config.trusted_proxy_hops,
            },
            security::headers,
        ))
        // A ceiling for every route: no body is read past the largest
        // upload; the routes set their own, smaller limits (`rest`,
        // `nightscout`, the pages above).
        .layer(tower_http::limit::RequestBodyLimitLayer::new(rest::UPLOAD_BODY_LIMIT))
        // The access log and the request metrics (route templates only).
        .layer(axum::middleware::from_fn_with_state(
            ops::AccessConfig { trust_proxy, proxy_hops: state.config.trusted_proxy_hops },
            ops::observe,
        ))
        // Brotli or gzip, as the client accepts, for every answer that is
        // not compressed already (the site's files carry build-time copies):
        // pages, JSON, CSV, FHIR. Not images and PDFs (compressed inside)
        // or event streams. Pages hold no secret a cross-site request could
        // have reflected beside it (see docs/DECISIONS.md, BREACH).
        .layer(compression())
}

/// The response compression of [`router`]: brotli at quality 4 (what NGINX
/// uses on the fly) or gzip.
pub fn compression() -> tower_http::compression::CompressionLayer<impl tower_http::compression::Predicate> {
    use tower_http::compression::predicate::{NotForContentType, Predicate};
    let predicate = tower_http::compression::DefaultPredicate::new()
        .and(NotForContentType::const_new("application/pdf"))
        .and(NotForContentType::const_new("application/zip"));
    tower_http::compression::CompressionLayer::new().compress_when(predicate)
}

/// `GET /lang/{code}?next=/path`: shows this browser the interface in that
/// language (a cookie) and goes back to the page. It changes only how this
/// browser displays pages; the account's stored language is set in Settings.
async fn set_language(
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::extract::Path(code): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    // The one same-site rule of log-in and passkey sign-in (issue 19).
    let next = app::api::safe_next(q.get("next").map(String::as_str));
    let Some(lang) = app::i18n::Lang::parse(&code).filter(|l| l.code() == code) else {
        return (http::StatusCode::NOT_FOUND, "Unknown language: use en, es, fr or de.").into_response();
    };
    (
        http::StatusCode::SEE_OTHER,
        [(http::header::LOCATION, next), (http::header::SET_COOKIE, lang.cookie(state.config.secure_cookies))],
    )
        .into_response()
}

/// Connects, migrates and assembles the state.
pub async fn build_state(
    database_url: &str,
    config: Config,
    leptos_options: LeptosOptions,
) -> anyhow_like::Result<AppState> {
    let db = store::connect(database_url).await?;
    store::migrate_sealed(&db, &config.cipher.audit_key()).await?;
    let checkpointer = store::checkpoint::spawn(&db).await.map(Arc::new);
    let config = Arc::new(config);
    let mailer = Some(Arc::new(app::service::mail::Mailer::spawn(db.clone(), config.clone())));
    Ok(AppState { db, config, leptos_options, checkpointer, mailer })
}

/// Serves until Ctrl-C / SIGTERM.
pub async fn serve(state: AppState, addr: SocketAddr, trust_proxy: bool) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_on(listener, state, trust_proxy).await
}

pub async fn serve_on(listener: tokio::net::TcpListener, state: AppState, trust_proxy: bool) -> std::io::Result<()> {
    let app = router(state, trust_proxy);
    // SIGHUP (`systemctl reload`) has nothing to reload without TLS; it must
    // not end the process, as its default action would.
    #[cfg(unix)]
    let _hangup = {
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        AbortOnDrop(tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                tracing::info!("SIGHUP: nothing to reload (no TLS certificate configured)");
            }
        }))
    };
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
}

/// The TLS settings of a certificate chain and private key, both PEM files
/// (as Let's Encrypt / certbot writes them). TLS 1.2 and 1.3 (rustls' safe
/// defaults, ring provider), ALPN http/1.1.
pub fn tls_config(cert: &std::path::Path, key: &std::path::Path) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("TLS certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("TLS certificate {}: no PEM certificate in the file", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("TLS key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate {} and key do not go together: {e}", cert.display()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Serves HTTPS on `listener` until Ctrl-C / SIGTERM: each connection's TLS
/// handshake (10 s at most), then HTTP/1.1 over it. Cookies are `Secure` and
/// every answer carries HSTS (the state's config says so; see `config`).
///
/// With `files` (the certificate chain and key), SIGHUP reads them again:
/// new connections get the new certificate (certbot's deploy hook can
/// renew without a restart); a pair that does not load is logged and the
/// one in use stays. On shutdown, no connection is accepted any more, and
/// those open finish their request in progress (30 s at most).
pub async fn serve_tls_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    trust_proxy: bool,
    tls: Arc<rustls::ServerConfig>,
    files: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> std::io::Result<()> {
    use tower::Service;
    let app = router(state, trust_proxy);
    let current = Arc::new(std::sync::RwLock::new(tls));
    #[cfg(unix)]
    let _reloader = match files {
        Some((cert, key)) => {
            let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
            let current = current.clone();
            Some(AbortOnDrop(tokio::spawn(async move {
                while hangup.recv().await.is_some() {
                    match tls_config(&cert, &key) {
                        Ok(cfg) => {
                            if let Ok(mut c) = current.write() {
                                *c = cfg;
                            }
                            tracing::info!(cert = %cert.display(), "TLS certificate reloaded (SIGHUP)");
                        }
                        Err(e) => tracing::error!(error = %e, "TLS certificate not reloaded; the one in use stays"),
                    }
                }
            })))
        }
        None => None,
    };
    #[cfg(not(unix))]
    let _ = files;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let config = current.read().map(|c| c.clone()).unwrap_or_else(|p| p.into_inner().clone());
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let app = app.clone();
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            let stream = match tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let svc = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                let mut app = app.clone();
                async move { app.call(req).await }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .with_upgrades();
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(30), drain).await.is_err() {
        tracing::warn!("connections still open 30 s after shutdown began: closed");
    }
    Ok(())
}

/// A task aborted when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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
