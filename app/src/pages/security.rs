//! The breach-response checklist: what to do, in order, when a patient
//! thinks someone else used their account. Each step shows where the
//! account stands and acts in one click where it can.

use crate::api_account::{get_two_factor_status, list_tokens, login_history};
use crate::api_sharing::{SetSharingPaused, sharing_paused};
use crate::components::{ErrorCard, RequireUser, UserResource};
use crate::i18n::{lang, t, tf, tp};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SecurityPage() -> impl IntoView {
    view! {
        <Title text=t("Security checklist")/>
        <h1 class="page-title">{t("Security checklist")}</h1>
        <RequireUser>
            <Checklist/>
        </RequireUser>
    }
}

#[component]
fn Checklist() -> impl IntoView {
    let user = UserResource::use_();
    let pause = ServerAction::<SetSharingPaused>::new();
    let paused = Resource::new(move || pause.version().get(), |_| sharing_paused());
    let logins = Resource::new(|| (), |_| login_history());
    let tfa = Resource::new(|| (), |_| get_two_factor_status());
    let tokens = Resource::new(|| (), |_| list_tokens());
    view! {
        <section class="card" data-testid="security-checklist">
            <p class="lead">{t("Think someone else got into your account, or saw your data? Go through these steps now. Each one takes a minute.")}</p>
            <ol class="checklist">
                <li>
                    <h2>{t("1. Look at your recent sign-ins")}</h2>
                    <Transition fallback=|| view! { <p class="loading">{t("Loading…")}</p> }>
                        {move || Suspend::new(async move {
                            match logins.await {
                                Ok(list) => {
                                    let failed = list.iter().filter(|e| !e.success).count();
                                    let new = list.iter().filter(|e| e.success && e.new_device).count();
                                    view! {
                                        <ul class="list" data-testid="recent-logins">
                                            {list.into_iter().take(5).map(|e| view! {
                                                <li>{format!("{} · {} · {} · {}", lang().datetime_utc(&e.at), if e.success { t("signed in") } else { t("failed") },
                                                    e.user_agent.unwrap_or_else(|| t("unknown browser").into()), e.ip.unwrap_or_default())}</li>
                                            }).collect_view()}
                                        </ul>
                                        <p class="muted">{tf("{failed} and {new} in the history. ", &[
                                            ("failed", &tp(failed as i64, "{n} failed sign-in", "{n} failed sign-ins")),
                                            ("new", &tp(new as i64, "{n} sign-in from a new browser", "{n} sign-ins from a new browser")),
                                        ])}
                                            <a href="/settings#logins">{t("See the whole history")}</a></p>
                                    }.into_any()
                                }
                                Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                            }
                        })}
                    </Transition>
                </li>
                <li>
                    <h2>{t("2. Pause all sharing")}</h2>
                    <p>{t("Stops every clinic and care partner from seeing your data until you resume. Nothing is deleted.")}</p>
                    {move || pause.value().get().map(|r| match r {
                        Ok(true) => view! { <div class="alert alert-ok" role="status" data-testid="checklist-paused">{t("All sharing is paused.")}</div> }.into_any(),
                        Ok(false) => view! { <div class="alert alert-ok" role="status">{t("Sharing resumed.")}</div> }.into_any(),
                        Err(e) => view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> }.into_any(),
                    })}
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            let is_paused = paused.await.unwrap_or(false);
                            view! {
                                <ActionForm action=pause attr:class="inline-form">
                                    <input type="hidden" name="pause" value=if is_paused { "off" } else { "on" }/>
                                    {if is_paused {
                                        view! { <span class="badge badge-paused">{t("paused")}</span>" "<button type="submit" class="btn">{t("Resume sharing")}</button> }.into_any()
                                    } else {
                                        view! { <button type="submit" class="btn btn-danger" data-testid="checklist-pause">{t("Pause all sharing")}</button> }.into_any()
                                    }}
                                </ActionForm>
                            }
                        })}
                    </Transition>
                </li>
                <li>
                    <h2>{t("3. Sign out everywhere")}</h2>
                    <p>{t("Ends every session, on every device, this one included. You sign in again afterwards.")}</p>
                    <ActionForm action=user.logout_all attr:class="inline-form">
                        <button type="submit" class="btn btn-danger" data-testid="checklist-logout-all">{t("Sign out everywhere")}</button>
                    </ActionForm>
                </li>
                <li>
                    <h2>{t("4. Change your password")}</h2>
                    <p>{t("Choose a new password you use nowhere else. We email you a link to set it; setting it also signs out every other session.")}</p>
                    <a class="btn" href="/forgot-password">{t("Change my password")}</a>
                </li>
                <li>
                    <h2>{t("5. Check who looked at your data")}</h2>
                    <p>{t("Every look by a clinic or care partner is in your access log. Revoke anyone you do not expect.")}</p>
                    <a class="btn" href="/sharing#access-log">{t("Open the access log")}</a>
                </li>
                <li>
                    <h2>{t("6. Revoke apps you do not use")}</h2>
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            let n = tokens.await.map(|l| l.len()).unwrap_or(0);
                            view! { <p>{tp(n as i64, "{n} access token can use your account. ", "{n} access tokens can use your account. ")}{t("Revoke the ones you do not recognise, and make a new Nightscout secret if you use phone uploaders. ")}<a href="/settings">{t("Open Settings")}</a></p> }
                        })}
                    </Transition>
                </li>
                <li>
                    <h2>{t("7. Turn on two-factor authentication or add a passkey")}</h2>
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            match tfa.await {
                                Ok(s) if s.enabled => view! { <p><span class="badge badge-active">{t("on")}</span>{t(" Two-factor authentication is on.")}</p> }.into_any(),
                                _ => view! { <p>{t("A stolen password alone then no longer opens your account. ")}<a href="/settings">{t("Set it up in Settings")}</a></p> }.into_any(),
                            }
                        })}
                    </Transition>
                </li>
            </ol>
            <p class="muted">{t("Think your clinic's account was misused rather than yours? Pause sharing, then call your clinic.")}</p>
        </section>
    }
}
