//! Settings: name, glucose unit, time zone; Nightscout; two-factor
//! authentication and passkeys; sessions and the login history; personal
//! access tokens; downloading all one's data and deleting the account.

use crate::api::{EndSession, list_sessions, time_zones};
use crate::api_account::{
    BeginTotp, ChangePassword, ConfirmTotp, CreateToken, DeleteAccount, DisableTwoFactor, NewRecoveryCodes,
    Reauthenticate, RemovePasskey, RenamePasskey, ResendVerification, RevokeToken, get_two_factor_status,
    list_passkeys, list_tokens, login_history, recently_authenticated,
};
use crate::api_uploads::{RotateNightscout, nightscout_site};
use crate::components::{ErrorCard, RequireUser, UserResource};
use crate::i18n::{Lang, lang, t, tf, tp};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <Title text=t("Settings")/>
        <h1 class="page-title">{t("Settings")}</h1>
        <RequireUser>
            <VerifyEmailNotice/>
            <ProfileForm/>
            <NightscoutCard/>
            <PasswordCard/>
            <PasskeysCard/>
            <TwoFactorCard/>
            <Sessions/>
            <LoginHistory/>
            <TokensCard/>
            <YourDataCard/>
        </RequireUser>
    }
}

#[component]
fn ProfileForm() -> impl IntoView {
    let user = UserResource::use_();
    let zones = Resource::new(|| (), |_| time_zones());
    let saved = move || user.settings.value().get();
    // A new language takes effect on a fresh page load (the page's
    // language is chosen once per load, from the cookie the save sets).
    Effect::new(move |_| {
        let Some(Ok(me)) = user.settings.value().get() else { return };
        let chosen = me.language.as_deref().and_then(Lang::parse);
        if chosen.is_some_and(|l| l != lang()) {
            #[cfg(feature = "hydrate")]
            if let Some(w) = web_sys::window() {
                let _ = w.location().reload();
            }
        }
    });
    view! {
        <section class="card" aria-labelledby="profile-h">
            <h2 id="profile-h">{t("Profile and display")}</h2>
            {move || saved().map(|r| match r {
                Ok(_) => view! { <div class="alert alert-ok" role="status" data-testid="settings-saved">{t("Saved.")}</div> }.into_any(),
                Err(e) => view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> }.into_any(),
            })}
            <Transition fallback=|| view! { <p class="loading">{t("Loading…")}</p> }>
                {move || Suspend::new(async move {
                    let me = match user.me.await {
                        Ok(Some(me)) => me,
                        Ok(None) => return ().into_any(),
                        Err(e) => return view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                    };
                    let zones = zones.await.unwrap_or_default();
                    let unit = me.glucose_unit.clone();
                    let current = me.language.as_deref().and_then(Lang::parse).unwrap_or_else(lang);
                    view! {
                        <ActionForm action=user.settings attr:class="form">
                            <label class="field">
                                <span>{t("Display name")}</span>
                                <input type="text" name="display_name" value=me.display_name.clone() required=true maxlength="100"/>
                            </label>
                            <label class="field">
                                <span>{t("Email")}</span>
                                <input type="email" value=me.email.clone() disabled=true/>
                            </label>
                            <fieldset class="field">
                                <legend>{t("Glucose unit")}</legend>
                                <label class="radio"><input type="radio" name="glucose_unit" value="mg/dL" checked=unit == "mg/dL"/>" mg/dL"</label>
                                <label class="radio"><input type="radio" name="glucose_unit" value="mmol/L" checked=unit == "mmol/L"/>" mmol/L"</label>
                            </fieldset>
                            <label class="field">
                                <span>{t("Time zone")}</span>
                                <select name="time_zone" data-testid="time-zone">
                                    {zones.into_iter().map(|z| {
                                        let selected = z == me.time_zone;
                                        view! { <option value=z.clone() selected=selected>{z.clone()}</option> }
                                    }).collect_view()}
                                </select>
                                <small class="hint">{t("Reports are drawn in this zone's local time of day.")}</small>
                            </label>
                            <label class="field">
                                <span>{t("Language")}</span>
                                <select name="language" data-testid="settings-language">
                                    {Lang::ALL.into_iter().map(|l| view! {
                                        <option value=l.code() lang=l.code() selected=l == current>{l.native_name()}</option>
                                    }).collect_view()}
                                </select>
                            </label>
                            <button type="submit" class="btn btn-primary">{t("Save settings")}</button>
                        </ActionForm>
                    }.into_any()
                })}
            </Transition>
        </section>
    }
}

/// Whether a server function's error asks for the password again.
fn is_reauth(e: &ServerFnError) -> bool {
    const MSG: &str = "For your security, enter your password again to continue.";
    let m = crate::api::error_message(e);
    m == MSG || m == t("For your security, enter your password again to continue.")
}

/// For an action that may answer "enter your password again": whether it
/// just did, and a callback that dispatches its last input once more.
fn reauth_retry<S>(action: ServerAction<S>) -> (Signal<bool>, Callback<()>)
where
    S: leptos::server_fn::ServerFn<Error = ServerFnError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    let last = StoredValue::new(None::<S>);
    Effect::new(move |_| {
        if let Some(input) = action.input().get() {
            last.set_value(Some(input));
        }
    });
    let needed = Signal::derive(move || action.value().get().is_some_and(|r| r.as_ref().err().is_some_and(is_reauth)));
    let retry = Callback::new(move |_: ()| {
        if let Some(input) = last.get_value() {
            action.dispatch(input);
        }
    });
    (needed, retry)
}

/// The password prompt of a sensitive change: shown while `show`; once the
/// password is accepted, `on_done` runs (the change is tried again).
#[component]
fn ReauthPrompt(#[prop(into)] show: Signal<bool>, on_done: Callback<()>) -> impl IntoView {
    let reauth = ServerAction::<Reauthenticate>::new();
    Effect::new(move |prev: Option<usize>| {
        let v = reauth.version().get();
        if prev.is_some_and(|p| p != v) && matches!(reauth.value().get_untracked(), Some(Ok(()))) {
            on_done.run(());
        }
        v
    });
    view! {
        <Show when=move || show.get()>
            <div class="alert alert-info" role="status" data-testid="reauth-prompt">
                <p>{t("For your security, enter your password again to continue.")}</p>
                {move || reauth.value().get().and_then(|r| r.err()).map(|e| view! {
                    <p role="alert" data-testid="reauth-error"><strong>{crate::api::error_message(&e)}</strong></p>
                })}
                <ActionForm action=reauth attr:class="inline-form">
                    <input type="password" name="password" autocomplete="current-password" required=true aria-label=t("Password") data-testid="reauth-password"/>
                    <button type="submit" class="btn btn-primary" data-testid="reauth-submit" disabled=move || reauth.pending().get()>{t("Continue")}</button>
                </ActionForm>
            </div>
        </Show>
    }
}

/// Changing the password: the current one first; every other session ends.
#[component]
fn PasswordCard() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    view! {
        <section class="card" aria-labelledby="pw-h" id="password" data-testid="password-card">
            <h2 id="pw-h">{t("Password")}</h2>
            {move || change.value().get().map(|r| match r {
                Ok(n) => view! {
                    <div class="alert alert-ok" role="status" data-testid="password-changed">
                        {t("Your password is changed.")}
                        {format!(" {}", tp(n as i64, "{n} other session was signed out.", "{n} other sessions were signed out."))}
                    </div>
                }.into_any(),
                Err(e) => view! { <div class="alert alert-error" role="alert" data-testid="password-error">{crate::api::error_message(&e)}</div> }.into_any(),
            })}
            <details class="details">
                <summary>{t("Change my password")}</summary>
                <ActionForm action=change attr:class="form">
                    <label class="field"><span>{t("Current password")}</span>
                        <input type="password" name="current_password" autocomplete="current-password" required=true data-testid="current-password"/></label>
                    <label class="field"><span>{t("New password")}</span>
                        <input type="password" name="new_password" autocomplete="new-password" required=true minlength="10" data-testid="new-password"/>
                        <small class="hint">{t("At least 10 characters and hard to guess. Every other session of your account is signed out.")}</small></label>
                    <button type="submit" class="btn btn-primary" data-testid="change-password" disabled=move || change.pending().get()>{t("Change my password")}</button>
                </ActionForm>
            </details>
        </section>
    }
}

#[component]
fn Sessions() -> impl IntoView {
    let user = UserResource::use_();
    let end = ServerAction::<EndSession>::new();
    let sessions = Resource::new(move || end.version().get(), |_| list_sessions());
    view! {
        <section class="card" aria-labelledby="sessions-h">
            <h2 id="sessions-h">{t("Where you are logged in")}</h2>
            <p class="muted">{t("Think someone else used your account? Follow the ")}<a href="/security" data-testid="security-link">{t("security checklist")}</a>"."</p>
            <Transition fallback=|| view! { <p class="loading">{t("Loading…")}</p> }>
                {move || Suspend::new(async move {
                    match sessions.await {
                        Ok(list) => view! {
                            <table class="table">
                                <thead><tr><th scope="col">{t("Browser")}</th><th scope="col">{t("Address")}</th><th scope="col">{t("Signed in")}</th><th scope="col">{t("Last used")}</th><th scope="col"><span class="sr-only">{t("End")}</span></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|s| view! {
                                        <tr>
                                            <td>{s.user_agent.unwrap_or_else(|| t("unknown").into())}{s.current.then(|| view! { <span class="badge">{t("this browser")}</span> })}</td>
                                            <td>{s.ip.unwrap_or_default()}</td>
                                            <td>{lang().datetime_utc(&s.created_at)}</td>
                                            <td>{lang().datetime_utc(&s.last_seen_at)}</td>
                                            <td>
                                                {(!s.current).then(|| view! {
                                                    <ActionForm action=end attr:class="inline-form">
                                                        <input type="hidden" name="id" value=s.id.clone()/>
                                                        <button type="submit" class="btn btn-small" data-testid="end-session">{t("Log out")}</button>
                                                    </ActionForm>
                                                })}
                                            </td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                    }
                })}
            </Transition>
            <ActionForm action=user.logout_all attr:class="inline-form">
                <button type="submit" class="btn btn-danger" data-testid="logout-all">{t("Log out of all sessions")}</button>
            </ActionForm>
        </section>
    }
}

/// The Nightscout site for phone uploaders and followers: the URLs to paste,
/// and the secret and tokens (shown once, after creating or rotating).
#[component]
fn NightscoutCard() -> impl IntoView {
    let user = UserResource::use_();
    let rotate = ServerAction::<RotateNightscout>::new();
    let (rotate_reauth, rotate_retry) = reauth_retry(rotate);
    let site = Resource::new(move || rotate.version().get(), |_| nightscout_site());
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                // Only a patient's own data has a Nightscout site.
                let is_patient = user.me.await.ok().flatten().is_some_and(|m| m.patient_id.is_some());
                if !is_patient {
                    return ().into_any();
                }
                let current = site.await;
                view! {
                    <section class="card" aria-labelledby="ns-h" data-testid="nightscout-card">
                        <h2 id="ns-h">{t("Phone uploaders and followers (Nightscout)")}</h2>
                        <p class="muted">{t("xDrip+, Loop, Trio, AndroidAPS and Nightscout followers can send to and read from Diabase as if it were a Nightscout site.")}</p>
                        {match current {
                            Ok(Some(s)) => view! {
                                <dl class="facts" data-testid="nightscout-site">
                                    <dt>{t("Nightscout URL")}</dt><dd><code>{s.root_url.clone()}</code><small class="hint">{t(" (Loop, Trio, AndroidAPS, followers)")}</small></dd>
                                    <dt>{t("URL with path")}</dt><dd><code>{s.url.clone()}</code><small class="hint">{t(" (xDrip+ uploader: https://SECRET@host/ns/…/api/v1/)")}</small></dd>
                                    <dt>{t("Secret last set")}</dt><dd>{lang().datetime_utc(&s.rotated_at)}</dd>
                                </dl>
                            }.into_any(),
                            Ok(None) => view! { <p data-testid="nightscout-none">{t("No site yet.")}</p> }.into_any(),
                            Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                        }}
                        {move || rotate.value().get().map(|r| match r {
                            Ok(n) => view! {
                                <div class="alert alert-warn" role="status" data-testid="nightscout-secrets">
                                    <p><strong>{t("Copy these now: they are shown only once.")}</strong></p>
                                    <dl class="facts">
                                        <dt>{t("API secret")}</dt><dd><code data-testid="ns-secret">{n.secret.clone()}</code></dd>
                                        <dt>{t("Access token (AndroidAPS)")}</dt><dd><code>{n.token.clone()}</code></dd>
                                        <dt>{t("Read-only token (followers)")}</dt><dd><code data-testid="ns-read-token">{n.read_token.clone()}</code></dd>
                                    </dl>
                                </div>
                            }.into_any(),
                            Err(e) => view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> }.into_any(),
                        })}
                        <ReauthPrompt show=rotate_reauth on_done=rotate_retry/>
                        <ActionForm action=rotate attr:class="inline-form">
                            <button type="submit" class="btn" data-testid="ns-rotate">{t("Create a new secret and tokens")}</button>
                        </ActionForm>
                        <small class="hint">{t("A new secret stops the old one at once: update every uploader and follower.")}</small>
                    </section>
                }.into_any()
            })}
        </Transition>
    }
}

/// Recovery codes, shown once.
#[component]
fn RecoveryCodes(codes: Vec<String>) -> impl IntoView {
    view! {
        <div class="alert alert-warn" role="status" data-testid="recovery-codes">
            <p><strong>{t("Save these recovery codes now: they are shown only once.")}</strong></p>
            <p>{t("Each one logs you in once if you lose your phone. Keep them somewhere safe, away from your password.")}</p>
            <ul class="codes">{codes.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}</ul>
        </div>
    }
}

#[component]
fn TwoFactorCard() -> impl IntoView {
    let begin = ServerAction::<BeginTotp>::new();
    let confirm = ServerAction::<ConfirmTotp>::new();
    let renew = ServerAction::<NewRecoveryCodes>::new();
    let disable = ServerAction::<DisableTwoFactor>::new();
    let (begin_reauth, begin_retry) = reauth_retry(begin);
    let (confirm_reauth, confirm_retry) = reauth_retry(confirm);
    let status = Resource::new(
        move || (confirm.version().get(), disable.version().get(), renew.version().get()),
        |_| get_two_factor_status(),
    );
    let err = |e: &ServerFnError| view! { <div class="alert alert-error" role="alert" data-testid="2fa-error">{crate::api::error_message(e)}</div> };
    view! {
        <section class="card" aria-labelledby="tfa-h" data-testid="two-factor-card">
            <h2 id="tfa-h">{t("Two-factor authentication")}</h2>
            <p class="muted">{t("With it on, logging in also needs a 6-digit code from an authenticator app on your phone (Google Authenticator, Microsoft Authenticator, 1Password, Aegis…), so a stolen password alone is not enough.")}</p>
            {move || confirm.value().get().map(|r| match r {
                Ok(codes) => view! { <div class="alert alert-ok" role="status" data-testid="2fa-on">{t("Two-factor authentication is on.")}</div><RecoveryCodes codes/> }.into_any(),
                Err(e) => err(&e).into_any(),
            })}
            <ReauthPrompt show=begin_reauth on_done=begin_retry/>
            <ReauthPrompt show=confirm_reauth on_done=confirm_retry/>
            {move || renew.value().get().map(|r| match r {
                Ok(codes) => view! { <RecoveryCodes codes/> }.into_any(),
                Err(e) => err(&e).into_any(),
            })}
            {move || disable.value().get().map(|r| match r {
                Ok(()) => view! { <div class="alert alert-info" role="status" data-testid="2fa-off">{t("Two-factor authentication is off.")}</div> }.into_any(),
                Err(e) => err(&e).into_any(),
            })}
            <Transition fallback=|| view! { <p class="loading">{t("Loading…")}</p> }>
                {move || Suspend::new(async move {
                    match status.await {
                        Ok(s) if s.enabled => view! {
                            <p data-testid="2fa-status"><strong>{t("On.")}</strong>{format!(" {}", tp(i64::from(s.recovery_codes_left), "{n} recovery code left.", "{n} recovery codes left."))}</p>
                            <details class="details">
                                <summary>{t("New recovery codes")}</summary>
                                <ActionForm action=renew attr:class="inline-form">
                                    <label class="field"><span>{t("Code from your app")}</span>
                                        <input type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required=true/></label>
                                    <button type="submit" class="btn">{t("Make new codes (the old ones stop working)")}</button>
                                </ActionForm>
                            </details>
                            <details class="details">
                                <summary>{t("Turn off")}</summary>
                                <ActionForm action=disable attr:class="form">
                                    <label class="field"><span>{t("Password")}</span>
                                        <input type="password" name="password" autocomplete="current-password" required=true/></label>
                                    <label class="field"><span>{t("Code from your app, or a recovery code")}</span>
                                        <input type="text" name="code" autocomplete="one-time-code" required=true data-testid="2fa-off-code"/></label>
                                    <button type="submit" class="btn btn-danger" data-testid="2fa-disable">{t("Turn off two-factor authentication")}</button>
                                </ActionForm>
                            </details>
                        }.into_any(),
                        Ok(_) => view! {
                            <p data-testid="2fa-status"><strong>{t("Off.")}</strong></p>
                            {move || begin.value().get().map(|r| match r {
                                Ok(setup) => view! {
                                    <div class="totp-setup" data-testid="totp-setup">
                                        <p>{t("1. Scan this code with your authenticator app:")}</p>
                                        <div class="qr" inner_html=setup.qr_svg.clone()></div>
                                        <p class="small">{t("Cannot scan? Enter this key by hand: ")}<code data-testid="totp-secret">{setup.secret.clone()}</code></p>
                                        <p>{t("2. Enter the 6-digit code the app shows:")}</p>
                                        <ActionForm action=confirm attr:class="inline-form">
                                            <input type="text" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}"
                                                required=true aria-label=t("Code from your app") data-testid="totp-code"/>
                                            <button type="submit" class="btn btn-primary" data-testid="totp-confirm">{t("Turn on")}</button>
                                        </ActionForm>
                                    </div>
                                }.into_any(),
                                Err(e) => err(&e).into_any(),
                            })}
                            <ActionForm action=begin attr:class="inline-form">
                                <button type="submit" class="btn" data-testid="totp-begin">{t("Set up two-factor authentication")}</button>
                            </ActionForm>
                        }.into_any(),
                        Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// Data rights: download everything (Diabase JSON or FHIR R4), delete the account.
#[component]
fn YourDataCard() -> impl IntoView {
    let delete = ServerAction::<DeleteAccount>::new();
    // The downloads need the password checked within the last minutes.
    let checked = RwSignal::new(0u32);
    let recent = Resource::new(move || checked.get(), |_| recently_authenticated());
    let ask = Signal::derive(move || matches!(recent.get(), Some(Ok(false))));
    view! {
        <section class="card" aria-labelledby="data-h" data-testid="your-data-card">
            <h2 id="data-h">{t("Your data")}</h2>
            <p class="muted">{t("Download everything Diabase holds about you: your account, devices, uploads, every reading and therapy record, who you share with and who looked.")}</p>
            <Suspense fallback=|| ()>
                <ReauthPrompt show=ask on_done=Callback::new(move |_: ()| checked.update(|n| *n += 1))/>
                <Show when=move || !ask.get()>
                    <p class="actions">
                        <a class="btn" href="/api/v1/me/export?format=json" download="" data-testid="export-json">{t("Download (Diabase JSON)")}</a>
                        " "
                        <a class="btn" href="/api/v1/me/export?format=fhir" download="" data-testid="export-fhir">{t("Download (FHIR R4, for other health apps)")}</a>
                    </p>
                </Show>
            </Suspense>
            <details class="details" data-testid="delete-account">
                <summary>{t("Delete my account")}</summary>
                <p>{t("This deletes your account and all your data for good: readings, therapy records, uploads, devices, sharing. Clinics you shared with keep only their own record of your name, without any data. Download your data first if you want to keep it.")}</p>
                {move || delete.value().get().and_then(|r| r.err()).map(|e| view! {
                    <div class="alert alert-error" role="alert" data-testid="delete-error">{crate::api::error_message(&e)}</div>
                })}
                <ActionForm action=delete attr:class="form">
                    <label class="field"><span>{t("Password")}</span>
                        <input type="password" name="password" autocomplete="current-password" required=true data-testid="delete-password"/></label>
                    <label class="field"><span>{t("Code from your authenticator app (if two-factor authentication is on)")}</span>
                        <input type="text" name="code" autocomplete="one-time-code" data-testid="delete-code"/></label>
                    <label class="check"><input type="checkbox" name="confirm" required=true data-testid="delete-confirm"/>
                        {t(" I understand that everything is deleted and cannot be restored.")}</label>
                    <button type="submit" class="btn btn-danger" data-testid="delete-submit">{t("Delete my account and all my data")}</button>
                </ActionForm>
            </details>
        </section>
    }
}

/// Passkeys: sign in with the phone's or computer's screen lock instead of a
/// password. Adding one runs in `/passkeys.js` (the WebAuthn browser calls).
#[component]
fn PasskeysCard() -> impl IntoView {
    let rename = ServerAction::<RenamePasskey>::new();
    let remove = ServerAction::<RemovePasskey>::new();
    let keys = Resource::new(move || (rename.version().get(), remove.version().get()), |_| list_passkeys());
    let query = leptos_router::hooks::use_query_map();
    let added = move || query.with(|q| q.get("passkey").as_deref() == Some("added"));
    let failed =
        move || rename.value().get().and_then(|r| r.err()).or_else(|| remove.value().get().and_then(|r| r.err()));
    view! {
        <section class="card" aria-labelledby="pk-h" data-testid="passkeys-card">
            <h2 id="pk-h">{t("Passkeys")}</h2>
            <p class="muted">{t("A passkey signs you in with your phone's or computer's screen lock (fingerprint, face or PIN) instead of a password. It cannot be phished or guessed, and it counts as two-factor authentication.")}</p>
            <Show when=added>
                <div class="alert alert-ok" role="status" data-testid="passkey-added">{t("Passkey added.")}</div>
            </Show>
            {move || failed().map(|e| view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> })}
            <Transition fallback=|| view! { <p class="loading">{t("Loading…")}</p> }>
                {move || Suspend::new(async move {
                    match keys.await {
                        Ok(list) if list.is_empty() => view! { <p data-testid="passkey-none">{t("No passkeys yet.")}</p> }.into_any(),
                        Ok(list) => view! {
                            <ul class="list" data-testid="passkey-list">
                                {list.into_iter().map(|k| {
                                    let used = k.last_used_at.as_deref()
                                        .map(|at| tf("last used {when}", &[("when", &lang().datetime_utc(at))]))
                                        .unwrap_or_else(|| t("not used yet").to_string());
                                    let added = tf("added {when}", &[("when", &lang().datetime_utc(&k.created_at))]);
                                    let (id1, id2) = (k.id.clone(), k.id.clone());
                                    view! {
                                        <li class="list-row" data-testid="passkey-row">
                                            <div>
                                                <strong data-testid="passkey-name">{k.name.clone()}</strong>
                                                <span class="muted small">{format!(" · {added} · {used}")}</span>
                                            </div>
                                            <details class="details">
                                                <summary>{t("Rename")}</summary>
                                                <ActionForm action=rename attr:class="inline-form">
                                                    <input type="hidden" name="id" value=id1/>
                                                    <input type="text" name="name" value=k.name.clone() maxlength="60" required=true aria-label=t("New name") data-testid="passkey-rename-input"/>
                                                    <button type="submit" class="btn" data-testid="passkey-rename">{t("Save")}</button>
                                                </ActionForm>
                                            </details>
                                            <ActionForm action=remove attr:class="inline-form">
                                                <input type="hidden" name="id" value=id2/>
                                                <button type="submit" class="btn btn-danger" data-testid="passkey-remove">{t("Remove")}</button>
                                            </ActionForm>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                    }
                })}
            </Transition>
            <form class="inline-form" on:submit=|ev| ev.prevent_default()>
                <input type="text" id="passkey-name" name="passkey_name" maxlength="60" placeholder=t("Name, e.g. Laptop") aria-label=t("Passkey name") data-testid="passkey-new-name"/>
                <button type="button" class="btn btn-primary" data-passkey="register" data-passkey-name="#passkey-name" data-testid="passkey-add">{t("Add a passkey")}</button>
                <div class="alert alert-error" role="alert" data-passkey-error="" data-testid="passkey-error" hidden=true></div>
                <div class="alert alert-info" data-passkey-reauth="" data-testid="passkey-reauth" hidden=true>
                    <p>{t("For your security, enter your password again to continue.")}</p>
                    <input type="password" autocomplete="current-password" aria-label=t("Password") data-passkey-reauth-password="" data-testid="passkey-reauth-password"/>
                    " "
                    <button type="button" class="btn btn-primary" data-passkey-reauth-submit="" data-testid="passkey-reauth-submit">{t("Continue")}</button>
                </div>
            </form>
        </section>
    }
}

/// A reminder while the email address is not confirmed, with "send again".
#[component]
fn VerifyEmailNotice() -> impl IntoView {
    let user = UserResource::use_();
    let resend = ServerAction::<ResendVerification>::new();
    let unconfirmed = move || user.me.get().and_then(|r| r.ok()).flatten().filter(|m| !m.email_verified);
    view! {
        <Suspense fallback=|| ()>
            {move || unconfirmed().map(|m| view! {
                <div class="alert alert-info" role="status" data-testid="verify-notice">
                    {tf("Please confirm your email address: we sent a link to {email}. ", &[("email", &m.email)])}
                    {move || match resend.value().get() {
                        Some(Ok(_)) => view! { <strong data-testid="verify-sent">{t("A new link is on its way.")}</strong> }.into_any(),
                        Some(Err(e)) => view! { <strong>{crate::api::error_message(&e)}</strong> }.into_any(),
                        None => view! {
                            <ActionForm action=resend attr:class="inline-form">
                                <button type="submit" class="btn btn-small" data-testid="verify-resend">{t("Send the link again")}</button>
                            </ActionForm>
                        }.into_any(),
                    }}
                </div>
            })}
        </Suspense>
    }
}

/// Every sign-in and failed sign-in: when, how, from which browser and address.
#[component]
fn LoginHistory() -> impl IntoView {
    let rows = Resource::new(|| (), |_| login_history());
    view! {
        <section class="card" aria-labelledby="logins-h" id="logins">
            <h2 id="logins-h">{t("Login history")}</h2>
            <p class="muted">{t("Each sign-in to your account. A sign-in you do not recognise? Follow the ")}<a href="/security">{t("security checklist")}</a>"."</p>
            <Transition fallback=|| view! { <p class="loading">{t("Loading…")}</p> }>
                {move || Suspend::new(async move {
                    match rows.await {
                        Ok(list) if list.is_empty() => view! { <p class="muted">{t("No sign-ins recorded yet.")}</p> }.into_any(),
                        Ok(list) => view! {
                            <div class="table-wrap">
                            <table class="table" data-testid="login-history">
                                <thead><tr><th scope="col">{t("When")}</th><th scope="col">{t("Result")}</th><th scope="col">{t("With")}</th><th scope="col">{t("Browser")}</th><th scope="col">{t("Address")}</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|e| view! {
                                        <tr data-testid="login-row" data-success=e.success.to_string()>
                                            <td>{lang().datetime_utc(&e.at)}</td>
                                            <td>{if e.success { view! { <span class="badge badge-active">{t("signed in")}</span> }.into_any() } else { view! { <span class="badge badge-revoked">{t("failed")}</span> }.into_any() }}
                                                {e.new_device.then(|| view! { <span class="badge">{t("new browser")}</span> })}</td>
                                            <td>{method_label(&e.method)}</td>
                                            <td class="wrap">{e.user_agent.clone().unwrap_or_else(|| t("unknown").into())}</td>
                                            <td>{e.ip.clone().unwrap_or_default()}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            </div>
                        }.into_any(),
                        Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// Personal access tokens for scripts and phone apps, each limited to what
/// it needs.
#[component]
fn TokensCard() -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let (create_reauth, create_retry) = reauth_retry(create);
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = Resource::new(move || (create.version().get(), revoke.version().get()), |_| list_tokens());
    view! {
        <section class="card" aria-labelledby="tokens-h" data-testid="tokens-card">
            <h2 id="tokens-h">{t("Apps and scripts (access tokens)")}</h2>
            <p class="muted">{t("A token lets an app or a script use the Diabase API as you. Give each one only what it needs, and an end date; revoke it when you stop using it.")}</p>
            {move || create.value().get().map(|r| match r {
                Ok(tok) => view! {
                    <div class="alert alert-warn" role="status" data-testid="new-token">
                        <p><strong>{t("Copy this token now: it is shown only once.")}</strong></p>
                        <p><code data-testid="new-token-value">{tok.token.clone()}</code></p>
                        <p class="small">{format!("{} · {}{}", tok.name, tok.scopes.join(", "), tok.expires_at.as_deref().map(|e| format!(" · {}", tf("until {date}", &[("date", &lang().datetime_utc(e))]))).unwrap_or_default())}</p>
                    </div>
                }.into_any(),
                Err(e) => view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> }.into_any(),
            })}
            <ReauthPrompt show=create_reauth on_done=create_retry/>
            <Transition fallback=|| view! { <p class="loading">{t("Loading…")}</p> }>
                {move || Suspend::new(async move {
                    match tokens.await {
                        Ok(list) if list.is_empty() => view! { <p class="muted" data-testid="no-tokens">{t("No tokens.")}</p> }.into_any(),
                        Ok(list) => view! {
                            <div class="table-wrap">
                            <table class="table" data-testid="tokens-table">
                                <thead><tr><th scope="col">{t("Name")}</th><th scope="col">{t("May")}</th><th scope="col">{t("Made")}</th><th scope="col">{t("Last used")}</th><th scope="col">{t("Until")}</th><th scope="col"><span class="sr-only">{t("Revoke")}</span></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|tok| view! {
                                        <tr data-testid="token-row">
                                            <td>{tok.name.clone()}</td>
                                            <td>{tok.scopes.join(", ")}</td>
                                            <td>{lang().datetime_utc(&tok.created_at)}</td>
                                            <td>{tok.last_used_at.as_deref().map(|at| lang().datetime_utc(at)).unwrap_or_else(|| t("never").into())}</td>
                                            <td>{tok.expires_at.as_deref().map(|at| lang().datetime_utc(at)).unwrap_or_else(|| t("until revoked").into())}</td>
                                            <td>
                                                <ActionForm action=revoke attr:class="inline-form">
                                                    <input type="hidden" name="id" value=tok.id.clone()/>
                                                    <button type="submit" class="btn btn-small btn-danger" data-testid="revoke-token">{t("Revoke")}</button>
                                                </ActionForm>
                                            </td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            </div>
                        }.into_any(),
                        Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                    }
                })}
            </Transition>
            <details class="details">
                <summary>{t("New token")}</summary>
                <ActionForm action=create attr:class="form">
                    <label class="field"><span>{t("Name")}</span>
                        <input type="text" name="name" required=true maxlength="100" placeholder=t("xDrip+ on my phone") data-testid="token-name"/></label>
                    <label class="field"><span>{t("It may")}</span>
                        <select name="access" data-testid="token-access">
                            <option value="read:glucose" selected=true>{t("Read glucose only")}</option>
                            <option value="read:all">{t("Read all my data")}</option>
                            <option value="upload">{t("Upload only (phone uploaders)")}</option>
                            <option value="read:all+upload">{t("Read all and upload")}</option>
                            <option value="full">{t("Everything my account can do")}</option>
                        </select>
                        <small class="hint">{t("No token can make other tokens, change how you sign in, or delete your account.")}</small>
                    </label>
                    <label class="field"><span>{t("Works for")}</span>
                        <select name="days" data-testid="token-days">
                            <option value="30">{tp(30, "{n} day", "{n} days")}</option>
                            <option value="90" selected=true>{tp(90, "{n} day", "{n} days")}</option>
                            <option value="365">{t("1 year")}</option>
                            <option value="">{t("Until I revoke it")}</option>
                        </select>
                    </label>
                    <button type="submit" class="btn btn-primary" data-testid="token-create">{t("Make token")}</button>
                </ActionForm>
            </details>
        </section>
    }
}

/// How a sign-in was made (`password`, `passkey`), in words.
fn method_label(method: &str) -> String {
    match method {
        "password" => t("password").to_string(),
        "passkey" => t("passkey").to_string(),
        other => other.to_string(),
    }
}
