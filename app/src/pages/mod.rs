//! Pages, one module per area.

pub mod auth;
pub mod clinic;
pub mod dashboard;
#[cfg(feature = "hydrate")]
pub mod report_charts;
pub mod reports;
pub mod security;
pub mod settings;
pub mod sharing;
pub mod upload;

use crate::i18n::t;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
        opts.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text=t("Not found")/>
        <section class="card narrow">
            <h1>{t("Page not found")}</h1>
            <p>{t("There is nothing at this address. ")}<a href="/">{t("Go to your dashboard")}</a>"."</p>
        </section>
    }
}

/// Shown by the service worker when the network is gone.
#[component]
pub fn OfflinePage() -> impl IntoView {
    view! {
        <Title text=t("Offline")/>
        <section class="card narrow">
            <h1>{t("You are offline")}</h1>
            <p>{t("Diabase needs a connection to show your latest data. Check your network; this page reloads when you are back online.")}</p>
        </section>
    }
}
