//! Log-in, sign-up and password reset.

use crate::api_account::{RequestPasswordReset, ResetPassword};
use crate::components::UserResource;
use crate::i18n::{Lang, lang, t, tf, tp};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let user = UserResource::use_();
    let query = use_query_map();
    let next = move || query.with(|q| q.get("next")).unwrap_or_default();
    let notice = move || {
        query.with(|q| {
            if q.get("created").is_some() {
                Some(t("If that address could be used, your account is ready. Log in to continue."))
            } else if q.get("reset").is_some() {
                Some(t("Your new password is set, and every session was logged out. Log in with it."))
            } else if q.get("deleted").is_some() {
                Some(t("Your account and all its data are deleted."))
            } else if q.get("signed_out").as_deref() == Some("all") {
                Some(t("You are logged out on every device."))
            } else if q.get("signed_out").is_some() {
                Some(t("You are logged out."))
            } else {
                None
            }
        })
    };
    let error = move || user.login.value().get().and_then(|r| r.err()).map(|e| crate::api::error_message(&e));
    // The code field appears once the server asks for a second factor (or
    // rejects one). The messages may be translated, so compare with both
    // their English text and their translation.
    let wants_code = move || {
        error().is_some_and(|e| {
            e.contains("authenticator app")
                || e == t("Enter the 6-digit code from your authenticator app, or one of your recovery codes.")
                || e == t(
                    "That code is not right. Enter the code your authenticator app shows now, or a recovery code.",
                )
        })
    };
    // After a log-in, load the next page afresh rather than through the
    // router: the account's language (its cookie was just set) applies
    // from the page's first render on.
    Effect::new(move |_| {
        if let Some(Ok(())) = user.login.value().get() {
            #[cfg(feature = "hydrate")]
            if let Some(w) = web_sys::window() {
                let _ = w.location().replace(&crate::api::safe_next(Some(&next())));
            }
        }
    });
    view! {
        <Title text=t("Log in")/>
        <section class="card narrow auth-card">
            <h1>{t("Log in")}</h1>
            {move || notice().map(|n| view! { <div class="alert alert-info" role="status">{n}</div> })}
            {move || error().map(|e| view! { <div class="alert alert-error" role="alert" data-testid="login-error">{e}</div> })}
            <ActionForm action=user.login attr:class="form">
                <input type="hidden" name="next" prop:value=next/>
                <label class="field">
                    <span>{t("Email")}</span>
                    <input type="email" name="email" autocomplete="username" required=true/>
                </label>
                <label class="field">
                    <span>{t("Password")}</span>
                    <input type="password" name="password" autocomplete="current-password" required=true/>
                </label>
                <Show when=wants_code>
                    <label class="field">
                        <span>{t("Authentication code")}</span>
                        <input type="text" name="totp" inputmode="numeric" autocomplete="one-time-code" data-testid="login-totp"
                            placeholder=t("123456 or a recovery code") autofocus=true required=true/>
                    </label>
                </Show>
                <button type="submit" class="btn btn-primary" disabled=move || user.login.pending().get()>
                    {move || if user.login.pending().get() { t("Logging in…") } else { t("Log in") }}
                </button>
            </ActionForm>
            <div class="passkey-login">
                <p class="muted">{t("or")}</p>
                <button type="button" class="btn" data-passkey="login" data-testid="passkey-login">{t("Sign in with a passkey")}</button>
                <div class="alert alert-error" role="alert" data-passkey-error="" data-testid="passkey-error" hidden=true></div>
            </div>
            <p class="muted">
                <a href="/forgot-password" data-testid="forgot-link">{t("Forgot your password?")}</a>
                {t(" · New to Diabase? ")}<a href="/signup">{t("Create an account")}</a>
            </p>
        </section>
    }
}

#[component]
pub fn SignupPage() -> impl IntoView {
    let user = UserResource::use_();
    let error = move || user.signup.value().get().and_then(|r| r.err()).map(|e| crate::api::error_message(&e));
    view! {
        <Title text=t("Sign up")/>
        <section class="card narrow auth-card">
            <h1>{t("Create your account")}</h1>
            <p class="muted">{t("Your data stays on this Diabase server. You decide who sees it.")}</p>
            {move || error().map(|e| view! { <div class="alert alert-error" role="alert" data-testid="signup-error">{e}</div> })}
            <ActionForm action=user.signup attr:class="form">
                <label class="field">
                    <span>{t("Your name")}</span>
                    <input type="text" name="display_name" autocomplete="name" required=true maxlength="100"/>
                </label>
                <label class="field">
                    <span>{t("Email")}</span>
                    <input type="email" name="email" autocomplete="email" required=true/>
                </label>
                <label class="field">
                    <span>{t("Password")}</span>
                    <input type="password" name="password" autocomplete="new-password" required=true minlength="10" aria-describedby="pw-hint"/>
                    <small id="pw-hint" class="hint">{t("At least 10 characters and hard to guess: a few unrelated words work well.")}</small>
                </label>
                <fieldset class="field">
                    <legend>{t("I am")}</legend>
                    <label class="radio"><input type="radio" name="role" value="patient" checked=true/>{t(" a person with diabetes (or caring for one)")}</label>
                    <label class="radio"><input type="radio" name="role" value="clinician"/>{t(" a clinician")}</label>
                </fieldset>
                <label class="field">
                    <span>{t("Language")}</span>
                    <select name="language" data-testid="signup-language">
                        {Lang::ALL
                            .into_iter()
                            .map(|l| {
                                let selected = l == lang();
                                view! { <option value=l.code() selected=selected>{l.native_name()}</option> }
                            })
                            .collect_view()}
                    </select>
                </label>
                <button type="submit" class="btn btn-primary" disabled=move || user.signup.pending().get()>{t("Create account")}</button>
            </ActionForm>
            <p class="muted">{t("Already have an account? ")}<a href="/login">{t("Log in")}</a></p>
        </section>
    }
}

/// "Forgot your password?": asks for a reset link by email.
#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    let action = ServerAction::<RequestPasswordReset>::new();
    view! {
        <Title text=t("Reset your password")/>
        <section class="card narrow auth-card">
            <h1>{t("Reset your password")}</h1>
            {move || action.value().get().map(|r| match r {
                Ok(()) => view! {
                    <div class="alert alert-ok" role="status" data-testid="reset-sent">
                        {t("If that address has a Diabase account, a reset link is on its way. It works once, for 24 hours.")}
                    </div>
                }.into_any(),
                Err(e) => view! { <div class="alert alert-error" role="alert" data-testid="reset-error">{crate::api::error_message(&e)}</div> }.into_any(),
            })}
            <p class="muted">{t("Enter the email address of your account. We send a link to choose a new password.")}</p>
            <ActionForm action=action attr:class="form">
                <label class="field">
                    <span>{t("Email")}</span>
                    <input type="email" name="email" autocomplete="email" required=true/>
                </label>
                <button type="submit" class="btn btn-primary" disabled=move || action.pending().get()>{t("Send the link")}</button>
            </ActionForm>
            <p class="muted"><a href="/login">{t("Back to log in")}</a></p>
        </section>
    }
}

/// The page the emailed link opens: choose a new password. Afterwards it
/// says what the reset ended and revoked, and lists what stays (passkeys, a
/// Nightscout site) for the owner to look over.
#[component]
pub fn ResetPasswordPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.with(|q| q.get("token")).unwrap_or_default();
    let action = ServerAction::<ResetPassword>::new();
    let error = move || action.value().get().and_then(|r| r.err()).map(|e| crate::api::error_message(&e));
    let done = move || action.value().get().and_then(|r| r.ok());
    view! {
        <Title text=t("Choose a new password")/>
        <section class="card narrow auth-card">
            <h1>{t("Choose a new password")}</h1>
            {move || match done() {
                Some(o) => view! {
                    <div class="alert alert-ok" role="status" data-testid="reset-done">
                        {t("Your new password is set. You are signed out everywhere, and every API token is revoked.")}
                        {format!(" ({} · {})",
                            tp(o.sessions_ended as i64, "{n} session ended", "{n} sessions ended"),
                            tp(o.tokens_revoked as i64, "{n} token revoked", "{n} tokens revoked"))}
                    </div>
                    {(!o.passkeys.is_empty() || o.nightscout_site).then(|| view! {
                        <div class="alert alert-warn" data-testid="reset-review">
                            <p><strong>{t("Look these over: they still work.")}</strong></p>
                            <ul class="list">
                                {o.passkeys.iter().map(|p| view! {
                                    <li data-testid="reset-passkey">{tf("Passkey {name}, added {when}", &[("name", &p.name), ("when", &lang().datetime_utc(&p.created_at))])}</li>
                                }).collect_view()}
                                {o.nightscout_site.then(|| view! { <li data-testid="reset-nightscout">{t("A Nightscout site for phone uploaders and followers")}</li> })}
                            </ul>
                            <p>{t("After you log in, remove in Settings any passkey you do not recognise, and make a new Nightscout secret if you are not sure who has it.")}</p>
                        </div>
                    })}
                    <p><a class="btn btn-primary" href="/login?next=/settings" data-testid="reset-login">{t("Log in")}</a></p>
                }.into_any(),
                None => view! {
                    {move || error().map(|e| view! { <div class="alert alert-error" role="alert" data-testid="reset-error">{e}</div> })}
                    <ActionForm action=action attr:class="form">
                        <input type="hidden" name="token" prop:value=token/>
                        <label class="field">
                            <span>{t("New password")}</span>
                            <input type="password" name="password" autocomplete="new-password" required=true minlength="10" aria-describedby="npw-hint"/>
                            <small id="npw-hint" class="hint">{t("At least 10 characters and hard to guess. Setting a new password signs you out everywhere and revokes every API token.")}</small>
                        </label>
                        <button type="submit" class="btn btn-primary" disabled=move || action.pending().get()>{t("Set the new password")}</button>
                    </ActionForm>
                }.into_any(),
            }}
        </section>
    }
}

/// The emailed confirmation link lands here; a button confirms (so a mail
/// scanner fetching the link does not).
#[component]
pub fn VerifyEmailPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.with(|q| q.get("token")).unwrap_or_default();
    let action = ServerAction::<crate::api_account::VerifyEmail>::new();
    view! {
        <Title text=t("Confirm your email address")/>
        <section class="card narrow auth-card">
            <h1>{t("Confirm your email address")}</h1>
            {move || match action.value().get() {
                Some(Ok(())) => view! {
                    <div class="alert alert-ok" role="status" data-testid="email-verified">{t("Thank you: your email address is confirmed.")}</div>
                    <p><a class="btn btn-primary" href="/">{t("Continue")}</a></p>
                }.into_any(),
                other => view! {
                    {other.and_then(|r| r.err()).map(|e| view! {
                        <div class="alert alert-error" role="alert" data-testid="verify-error">{crate::api::error_message(&e)}</div>
                    })}
                    <ActionForm action=action attr:class="form">
                        <input type="hidden" name="token" prop:value=token/>
                        <button type="submit" class="btn btn-primary" data-testid="verify-email" disabled=move || action.pending().get()>{t("Confirm my email address")}</button>
                    </ActionForm>
                }.into_any(),
            }}
        </section>
    }
}
