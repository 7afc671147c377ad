//! Settings: name, glucose unit, time zone; sessions.

use crate::api::{list_sessions, time_zones};
use crate::components::{ErrorCard, RequireUser, UserResource};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <Title text="Settings"/>
        <h1 class="page-title">"Settings"</h1>
        <RequireUser>
            <ProfileForm/>
            <Sessions/>
        </RequireUser>
    }
}

#[component]
fn ProfileForm() -> impl IntoView {
    let user = UserResource::use_();
    let zones = Resource::new(|| (), |_| time_zones());
    let saved = move || user.settings.value().get();
    view! {
        <section class="card" aria-labelledby="profile-h">
            <h2 id="profile-h">"Profile and display"</h2>
            {move || saved().map(|r| match r {
                Ok(_) => view! { <div class="alert alert-ok" role="status" data-testid="settings-saved">"Saved."</div> }.into_any(),
                Err(e) => view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> }.into_any(),
            })}
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let me = match user.me.await {
                        Ok(Some(me)) => me,
                        Ok(None) => return ().into_any(),
                        Err(e) => return view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                    };
                    let zones = zones.await.unwrap_or_default();
                    let unit = me.glucose_unit.clone();
                    view! {
                        <ActionForm action=user.settings attr:class="form">
                            <label class="field">
                                <span>"Display name"</span>
                                <input type="text" name="display_name" value=me.display_name.clone() required=true maxlength="100"/>
                            </label>
                            <label class="field">
                                <span>"Email"</span>
                                <input type="email" value=me.email.clone() disabled=true/>
                            </label>
                            <fieldset class="field">
                                <legend>"Glucose unit"</legend>
                                <label class="radio"><input type="radio" name="glucose_unit" value="mg/dL" checked=unit == "mg/dL"/>" mg/dL"</label>
                                <label class="radio"><input type="radio" name="glucose_unit" value="mmol/L" checked=unit == "mmol/L"/>" mmol/L"</label>
                            </fieldset>
                            <label class="field">
                                <span>"Time zone"</span>
                                <select name="time_zone" data-testid="time-zone">
                                    {zones.into_iter().map(|z| {
                                        let selected = z == me.time_zone;
                                        view! { <option value=z.clone() selected=selected>{z.clone()}</option> }
                                    }).collect_view()}
                                </select>
                                <small class="hint">"Reports are drawn in this zone's local time of day."</small>
                            </label>
                            <button type="submit" class="btn btn-primary">"Save settings"</button>
                        </ActionForm>
                    }.into_any()
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Sessions() -> impl IntoView {
    let user = UserResource::use_();
    let sessions = Resource::new(|| (), |_| list_sessions());
    view! {
        <section class="card" aria-labelledby="sessions-h">
            <h2 id="sessions-h">"Where you are logged in"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match sessions.await {
                        Ok(list) => view! {
                            <table class="table">
                                <thead><tr><th scope="col">"Browser"</th><th scope="col">"Address"</th><th scope="col">"Signed in"</th><th scope="col">"Last used"</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|s| view! {
                                        <tr>
                                            <td>{s.user_agent.unwrap_or_else(|| "unknown".into())}{s.current.then(|| view! { <span class="badge">"this browser"</span> })}</td>
                                            <td>{s.ip.unwrap_or_default()}</td>
                                            <td>{s.created_at}</td>
                                            <td>{s.last_seen_at}</td>
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
                <button type="submit" class="btn btn-danger" data-testid="logout-all">"Log out of all sessions"</button>
            </ActionForm>
        </section>
    }
}
