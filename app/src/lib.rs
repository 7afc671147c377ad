//! The Diabase Leptos app: routes, components and server functions, rendered
//! on the server (feature `ssr`) and hydrated in the browser (`hydrate`).
#![recursion_limit = "256"]

pub mod api;
pub mod api_account;
pub mod api_reports;
pub mod api_sharing;
pub mod api_uploads;
pub mod components;
pub mod i18n;
pub mod model;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "hydrate")]
pub mod webusb;

use crate::components::{LanguageLinks, Nav, UserResource};
use crate::i18n::t;
use leptos::prelude::*;
use leptos_meta::{Meta, MetaTags, Title, provide_meta_context};
use leptos_router::{
    components::{Route, Router, Routes},
    path,
};

/// The addresses under which the server publishes the site's static files:
/// a content-hashed name (`/pkg/diabase.3f9a0c1d2b4e5f60.css`) for every
/// file it could hash, so browsers may keep them for a year and a new build
/// is a new address. The server provides it as context; without it (no site
/// built) the plain names are used.
#[derive(Clone, Debug, Default)]
pub struct AssetUrls(pub std::sync::Arc<std::collections::HashMap<String, String>>);

impl AssetUrls {
    /// The published address of the site file at `path` (`/echarts.min.js`).
    pub fn url(&self, path: &str) -> String {
        self.0.get(path).cloned().unwrap_or_else(|| path.to_string())
    }
}

/// The HTML document around the app (server only).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    provide_request_nonce();
    let nonce = leptos::nonce::use_nonce();
    let lang = i18n::detect();
    let assets = use_context::<AssetUrls>().unwrap_or_default();
    // ECharts (the largest script) only where charts are drawn: the report
    // pages load it with the page; elsewhere the first chart loads it from
    // the address in `diabase-echarts` (see `pages::report_charts`).
    let echarts = assets.url("/echarts.min.js");
    #[cfg(feature = "ssr")]
    let charts = use_context::<http::request::Parts>().is_some_and(|p| draws_charts(p.uri.path()));
    #[cfg(not(feature = "ssr"))]
    let charts = false;
    view! {
        <!DOCTYPE html>
        <html lang=lang.code()>
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="theme-color" content="#0f766e"/>
                <link rel="manifest" href="/manifest.webmanifest"/>
                <link rel="icon" href="/icons/icon-192.png" type="image/png"/>
                <link rel="apple-touch-icon" href="/icons/icon-192.png"/>
                <link rel="stylesheet" id="leptos" href=assets.url("/pkg/diabase.css")/>
                <meta name="diabase-echarts" content=echarts.clone()/>
                {charts.then(|| view! { <script id="diabase-echarts-script" src=echarts defer=true></script> })}
                <script src=assets.url("/register-sw.js") defer=true nonce=nonce.clone()></script>
                <script src=assets.url("/passkeys.js") defer=true nonce=nonce.clone()></script>
                <script src=assets.url("/protected-pdf.js") defer=true nonce=nonce></script>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// Whether the page at `path` draws charts (the reports, also as a clinic
/// sees them).
pub fn draws_charts(path: &str) -> bool {
    path == "/reports" || path.starts_with("/reports/") || (path.starts_with("/clinic/") && path.contains("/patients/"))
}

/// The per-request CSP nonce minted by the server's security-headers layer.
#[cfg(feature = "ssr")]
#[derive(Clone, Debug)]
pub struct CspNonce(pub String);

#[cfg(feature = "ssr")]
fn provide_request_nonce() {
    if let Some(parts) = use_context::<http::request::Parts>()
        && let Some(n) = parts.extensions.get::<CspNonce>()
    {
        provide_context(leptos::nonce::Nonce::from_value(n.0.clone()));
    }
}

#[component]
pub fn App() -> impl IntoView {
    i18n::provide(i18n::detect());
    provide_meta_context();
    let user = UserResource::provide();
    view! {
        <Title formatter=|t: String| if t.is_empty() { "Diabase".to_string() } else { format!("{t} · Diabase") }/>
        <Meta name="description" content=t("Diabase: your diabetes device data, your reports, your sharing.")/>
        <Router>
            <a class="skip-link" href="#main">{t("Skip to content")}</a>
            <Nav user=user/>
            <main id="main" class="page">
                <Routes fallback=pages::NotFound>
                    <Route path=path!("/") view=pages::dashboard::DashboardPage/>
                    <Route path=path!("/login") view=pages::auth::LoginPage/>
                    <Route path=path!("/signup") view=pages::auth::SignupPage/>
                    <Route path=path!("/forgot-password") view=pages::auth::ForgotPasswordPage/>
                    <Route path=path!("/reset-password") view=pages::auth::ResetPasswordPage/>
                    <Route path=path!("/verify-email") view=pages::auth::VerifyEmailPage/>
                    <Route path=path!("/upload") view=pages::upload::UploadPage/>
                    <Route path=path!("/reports") view=pages::reports::ReportsOverviewPage ssr=leptos_router::SsrMode::Async/>
                    <Route path=path!("/reports/daily") view=pages::reports::ReportsDailyPage ssr=leptos_router::SsrMode::Async/>
                    <Route path=path!("/reports/trends") view=pages::reports::ReportsTrendsPage ssr=leptos_router::SsrMode::Async/>
                    <Route path=path!("/reports/logbook") view=pages::reports::ReportsLogbookPage ssr=leptos_router::SsrMode::Async/>
                    <Route path=path!("/reports/settings") view=pages::reports::ReportsDevicePage ssr=leptos_router::SsrMode::Async/>
                    <Route path=path!("/sharing") view=pages::sharing::SharingPage/>
                    <Route path=path!("/settings") view=pages::settings::SettingsPage/>
                    <Route path=path!("/security") view=pages::security::SecurityPage/>
                    <Route path=path!("/clinic") view=pages::clinic::ClinicsPage/>
                    <Route path=path!("/clinic/:clinic_id") view=pages::clinic::ClinicDashboardPage/>
                    <Route path=path!("/clinic/:clinic_id/patients/:record_id") view=pages::clinic::ClinicRecordPage/>
                    <Route path=path!("/offline") view=pages::OfflinePage/>
                </Routes>
            </main>
            <footer class="footer">
                <p>{t("Diabase is open source and self-hosted. It shows device data; it does not give treatment advice.")}</p>
                <LanguageLinks/>
            </footer>
        </Router>
    }
}
