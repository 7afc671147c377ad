//! Shared components: the navigation, the signed-in user, figures.

use crate::api::{Login, Logout, LogoutAll, Signup, UpdateSettings, get_me};
use crate::i18n::{lang, t};
use crate::model::Me;
use leptos::prelude::*;
use leptos_router::components::A;

/// The signed-in user (or `None`), refetched after log-in, log-out and
/// settings changes.
#[derive(Clone, Copy)]
pub struct UserResource {
    pub me: Resource<Result<Option<Me>, ServerFnError>>,
    pub login: ServerAction<Login>,
    pub signup: ServerAction<Signup>,
    pub logout: ServerAction<Logout>,
    pub logout_all: ServerAction<LogoutAll>,
    pub settings: ServerAction<UpdateSettings>,
}

impl UserResource {
    pub fn provide() -> Self {
        let login = ServerAction::<Login>::new();
        let signup = ServerAction::<Signup>::new();
        let logout = ServerAction::<Logout>::new();
        let logout_all = ServerAction::<LogoutAll>::new();
        let settings = ServerAction::<UpdateSettings>::new();
        let me = Resource::new(
            move || {
                (login.version().get(), logout.version().get(), logout_all.version().get(), settings.version().get())
            },
            |_| get_me(),
        );
        let r = UserResource { me, login, signup, logout, logout_all, settings };
        provide_context(r);
        r
    }

    pub fn use_() -> Self {
        expect_context::<UserResource>()
    }
}

#[component]
pub fn Nav(user: UserResource) -> impl IntoView {
    view! {
        <header class="topbar">
            <div class="topbar-inner">
                <A href="/" attr:class="brand">
                    <span class="brand-mark" aria-hidden="true">"◆"</span>
                    <span>"Diabase"</span>
                </A>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match user.me.await {
                            Ok(Some(me)) => {
                                let clinic = me.is_clinician() || me.is_admin();
                                view! {
                                    <nav class="nav" aria-label=t("Main")>
                                        <A href="/" exact=true attr:class="nav-link">{t("Dashboard")}</A>
                                        <A href="/upload" attr:class="nav-link">{t("Upload")}</A>
                                        <A href="/reports" attr:class="nav-link">{t("Reports")}</A>
                                        <A href="/sharing" attr:class="nav-link">{t("Sharing")}</A>
                                        {clinic.then(|| view! { <A href="/clinic" attr:class="nav-link">{t("Clinic")}</A> })}
                                        <A href="/settings" attr:class="nav-link">{t("Settings")}</A>
                                    </nav>
                                    <div class="nav-user">
                                        <span class="nav-name" data-testid="nav-name">{me.display_name.clone()}</span>
                                        <ActionForm action=user.logout attr:class="inline-form">
                                            <button type="submit" class="btn btn-quiet">{t("Log out")}</button>
                                        </ActionForm>
                                    </div>
                                }
                                    .into_any()
                            }
                            _ => {
                                view! {
                                    <nav class="nav" aria-label=t("Main")>
                                        <A href="/login" attr:class="nav-link">{t("Log in")}</A>
                                        <A href="/signup" attr:class="nav-link nav-cta">{t("Sign up")}</A>
                                    </nav>
                                }
                                    .into_any()
                            }
                        }
                    })}
                </Transition>
            </div>
        </header>
    }
}

/// Shows `children` to a signed-in user, else a prompt to log in.
#[component]
pub fn RequireUser(children: ChildrenFn) -> impl IntoView {
    let user = UserResource::use_();
    let children = StoredValue::new(children);
    view! {
        <Transition fallback=|| view! { <p class="loading">{t("Loading…")}</p> }>
            {move || Suspend::new(async move {
                match user.me.await {
                    Ok(Some(_)) => children.read_value()().into_any(),
                    Ok(None) => view! { <LoginPrompt/> }.into_any(),
                    Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
pub fn LoginPrompt() -> impl IntoView {
    view! {
        <section class="card narrow" data-testid="login-required">
            <h1>{t("Please log in")}</h1>
            <p>{t("You need to be signed in to see this page. Your session may have ended.")}</p>
            <p class="actions">
                <a class="btn btn-primary" href="/login">{t("Log in")}</a>
                <a class="btn" href="/signup">{t("Create an account")}</a>
            </p>
        </section>
    }
}

#[component]
pub fn ErrorCard(message: String) -> impl IntoView {
    view! {
        <div class="alert alert-error" role="alert">{message}</div>
    }
}

/// A labelled figure: "Time in range  72 %".
#[component]
pub fn Figure(label: &'static str, value: String, #[prop(optional)] hint: &'static str) -> impl IntoView {
    view! {
        <div class="figure">
            <div class="figure-label">{label}</div>
            <div class="figure-value">{value}</div>
            {(!hint.is_empty()).then(|| view! { <div class="figure-hint">{hint}</div> })}
        </div>
    }
}

/// What a patient shares (a scope: `glucose`, `insulin`…), in words of the
/// page's language; an unknown scope as it is.
pub fn scope_label(scope: &str) -> String {
    match scope {
        "glucose" => t("glucose").to_string(),
        "insulin" => t("insulin").to_string(),
        "settings" => t("settings").to_string(),
        "events" => t("events").to_string(),
        other => other.to_string(),
    }
}

/// Formats an optional percentage with one decimal.
pub fn pct(v: Option<f64>) -> String {
    v.map(|x| lang().percent(x, 1)).unwrap_or_else(|| "–".into())
}

/// The footer's language links: each sets this browser's language (a
/// cookie) and comes back to the page. Settings stores the choice in the
/// account as well. `rel="external"`: the router must not handle them in
/// the page; the server answers them, and the page reloads in the language.
#[component]
pub fn LanguageLinks() -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    let current = crate::i18n::lang();
    let links = move || {
        let here = location.pathname.get();
        let next: String = here
            .chars()
            .map(|c| match c {
                '?' => "%3F".to_string(),
                '&' => "%26".to_string(),
                '#' => "%23".to_string(),
                '%' => "%25".to_string(),
                '+' => "%2B".to_string(),
                ' ' => "%20".to_string(),
                c => c.to_string(),
            })
            .collect();
        crate::i18n::Lang::ALL
            .into_iter()
            .map(|l| {
                let href = format!("/lang/{}?next={next}", l.code());
                let cur = (l == current).then_some("true");
                view! { <a href=href hreflang=l.code() lang=l.code() rel="external" aria-current=cur data-lang=l.code()>{l.native_name()}</a> }
            })
            .collect_view()
    };
    view! { <nav class="lang-links" aria-label=crate::i18n::t("Language")>{links}</nav> }
}
