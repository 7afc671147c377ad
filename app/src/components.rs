//! Shared components: the navigation, the signed-in user, figures.

use crate::api::{get_me, Login, Logout, LogoutAll, Signup, UpdateSettings};
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
                (
                    login.version().get(),
                    logout.version().get(),
                    logout_all.version().get(),
                    settings.version().get(),
                )
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
                                    <nav class="nav" aria-label="Main">
                                        <A href="/" exact=true attr:class="nav-link">"Dashboard"</A>
                                        <A href="/upload" attr:class="nav-link">"Upload"</A>
                                        <A href="/reports" attr:class="nav-link">"Reports"</A>
                                        <A href="/sharing" attr:class="nav-link">"Sharing"</A>
                                        {clinic.then(|| view! { <A href="/clinic" attr:class="nav-link">"Clinic"</A> })}
                                        <A href="/settings" attr:class="nav-link">"Settings"</A>
                                    </nav>
                                    <div class="nav-user">
                                        <span class="nav-name" data-testid="nav-name">{me.display_name.clone()}</span>
                                        <ActionForm action=user.logout attr:class="inline-form">
                                            <button type="submit" class="btn btn-quiet">"Log out"</button>
                                        </ActionForm>
                                    </div>
                                }
                                    .into_any()
                            }
                            _ => {
                                view! {
                                    <nav class="nav" aria-label="Main">
                                        <A href="/login" attr:class="nav-link">"Log in"</A>
                                        <A href="/signup" attr:class="nav-link nav-cta">"Sign up"</A>
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
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
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
            <h1>"Please log in"</h1>
            <p>"You need to be signed in to see this page. Your session may have ended."</p>
            <p class="actions">
                <a class="btn btn-primary" href="/login">"Log in"</a>
                <a class="btn" href="/signup">"Create an account"</a>
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

/// Formats an optional percentage with one decimal.
pub fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1} %")).unwrap_or_else(|| "–".into())
}
