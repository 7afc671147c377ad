//! The patient's Data Sharing page: enter a clinic's link code (or follow
//! its link) or a clinic's share code, see who asks and for what, choose
//! scopes and an end date, accept or decline; pause all sharing in one click
//! and resume it; every current grant with edit and revoke; care-partner
//! invitations; the data others share with you; and the access log.
//!
//! Every form is a plain HTML form posting to a server function, so the page
//! works before the wasm loads and without JavaScript.

use crate::api_sharing::{
    AcceptInvite, AcceptLink, DeclineLink, InvitePartner, RevokeGrant, SetSharingPaused, UpdateGrant, access_log,
    incoming_invites, list_shared_with_me, my_grants, preview_link_code, sharing_paused, sms_enabled,
};
use crate::components::{ErrorCard, RequireUser};
use crate::i18n::{lang, t, tf};
use crate::model::{GrantInfo, LinkPreview, SharedWithMe};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// The four scopes: the form field name (sent as is), its label and its hint.
fn scopes() -> [(&'static str, &'static str, &'static str); 4] {
    [
        ("glucose", t("Glucose"), t("CGM and meter readings, and the reports built from them")),
        ("insulin", t("Insulin"), t("Boluses, basal rates, temp basals, suspends, carbs")),
        ("settings", t("Device settings"), t("Basal profiles, carb ratios, sensitivity, targets")),
        ("events", t("Events and notes"), t("Alarms, site changes, exercise, notes")),
    ]
}

/// Scope names as shown in lists (the stored values stay as they are).
fn scope_names(scopes: &[String]) -> String {
    scopes.iter().map(|s| crate::components::scope_label(s)).collect::<Vec<_>>().join(", ")
}

/// A grant's status as shown in its badge (the value stays in the class and `data-status`).
fn status_label(status: &str) -> String {
    match status {
        "active" => t("active").to_string(),
        "pending" => t("pending").to_string(),
        "expired" => t("expired").to_string(),
        "paused" => t("paused").to_string(),
        "revoked" => t("revoked").to_string(),
        other => other.to_string(),
    }
}

/// An RFC 3339 time from the API, shown as a date and time in UTC.
fn when(rfc3339: &str) -> String {
    lang().datetime_utc(rfc3339)
}

fn date_of(rfc3339: &Option<String>) -> String {
    rfc3339
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| (t.with_timezone(&chrono::Utc) - chrono::Duration::seconds(1)).format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The four scope checkboxes; `checked` names those ticked at first.
#[component]
fn ScopeBoxes(checked: Vec<String>, prefix: String) -> impl IntoView {
    view! {
        <fieldset class="field scopes">
            <legend>{t("What to share")}</legend>
            {scopes().into_iter().map(|(key, label, hint)| {
                let on = checked.iter().any(|c| c == key);
                view! {
                    <label class="check">
                        <input type="checkbox" name=key value="on" checked=on data-testid=format!("{prefix}-scope-{key}")/>
                        <span>{label}</span>
                        <small class="hint">{hint}</small>
                    </label>
                }
            }).collect_view()}
        </fieldset>
    }
}

#[component]
pub fn SharingPage() -> impl IntoView {
    view! {
        <Title text=t("Data sharing")/>
        <h1 class="page-title">{t("Data sharing")}</h1>
        <RequireUser>
            <SharingBody/>
        </RequireUser>
    }
}

#[component]
fn SharingBody() -> impl IntoView {
    let query = use_query_map();
    let code = move || query.with(|q| q.get("code")).filter(|s| !s.trim().is_empty());
    let invite_token = move || query.with(|q| q.get("invite")).filter(|s| !s.trim().is_empty());
    let accept = ServerAction::<AcceptLink>::new();
    let decline = ServerAction::<DeclineLink>::new();
    let revoke = ServerAction::<RevokeGrant>::new();
    let update = ServerAction::<UpdateGrant>::new();
    let invite = ServerAction::<InvitePartner>::new();
    let accept_invite = ServerAction::<AcceptInvite>::new();
    let pause = ServerAction::<SetSharingPaused>::new();
    let changed = move || {
        (
            accept.version().get(),
            decline.version().get(),
            revoke.version().get(),
            update.version().get(),
            invite.version().get(),
            accept_invite.version().get(),
            pause.version().get(),
        )
    };
    let paused = Resource::new(changed, |_| sharing_paused());
    let sms = Resource::new(|| (), |_| sms_enabled());
    let grants = Resource::new(changed, |_| my_grants());
    let log = Resource::new(changed, |_| access_log());
    let shared = Resource::new(changed, |_| list_shared_with_me());
    let incoming = Resource::new(changed, |_| incoming_invites());
    #[allow(clippy::redundant_closure)] // `code` itself would be borrowed past its life
    let preview = Resource::new(
        move || code(),
        |c| async move {
            match c {
                Some(c) => Some(preview_link_code(c).await),
                None => None,
            }
        },
    );
    view! {
        // 1. Link with a clinic.
        <section class="card" aria-labelledby="link-h" data-testid="link-card">
            <h2 id="link-h">{t("Link with your clinic")}</h2>
            {move || accept.value().get().map(|r| match r {
                Ok(_) => view! { <div class="alert alert-ok" role="status" data-testid="link-accepted">{t("Done. Your clinic can now see the data you chose. You can change or end this below at any time.")}</div> }.into_any(),
                Err(e) => view! { <div class="alert alert-error" role="alert" data-testid="link-error">{crate::api::error_message(&e)}</div> }.into_any(),
            })}
            {move || decline.value().get().map(|r| match r {
                Ok(_) => view! { <div class="alert alert-ok" role="status" data-testid="link-declined">{t("Declined. Nothing is shared.")}</div> }.into_any(),
                Err(e) => view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> }.into_any(),
            })}
            <Transition fallback=|| view! { <p class="loading">{t("Checking the code…")}</p> }>
                {move || Suspend::new(async move {
                    let done = accept.value().get().is_some_and(|r| r.is_ok()) || decline.value().get().is_some_and(|r| r.is_ok());
                    match (preview.await, code()) {
                        (Some(Ok(p)), Some(c)) if !done => view! { <LinkOffer p=p code=c accept=accept decline=decline/> }.into_any(),
                        (Some(Err(e)), _) => view! {
                            <div class="alert alert-error" role="alert" data-testid="code-invalid">{crate::api::error_message(&e)}{t(" Check the code, or ask your clinic for a new one (codes work once and expire after 48 hours).")}</div>
                            <CodeEntry/>
                        }.into_any(),
                        _ => view! { <CodeEntry/> }.into_any(),
                    }
                })}
            </Transition>
        </section>

        // 2. A care-partner invitation followed from the email.
        {move || invite_token().map(|token| view! {
            <section class="card" data-testid="invite-token-card">
                <h2>{t("An invitation to follow someone's data")}</h2>
                {move || accept_invite.value().get().map(|r| match r {
                    Ok(_) => view! { <div class="alert alert-ok" role="status">{t("Accepted. Their data is listed under “Shared with you”.")}</div> }.into_any(),
                    Err(e) => view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> }.into_any(),
                })}
                <ActionForm action=accept_invite attr:class="inline-form">
                    <input type="hidden" name="token" value=token.clone()/>
                    <button type="submit" class="btn btn-primary">{t("Accept the invitation")}</button>
                </ActionForm>
            </section>
        })}

        // 3. Invitations waiting for this account.
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match incoming.await {
                    Ok(list) if !list.is_empty() => view! {
                        <section class="card" data-testid="incoming-invites">
                            <h2>{t("Invitations for you")}</h2>
                            <ul class="list">
                                {list.into_iter().map(|i| view! {
                                    <li>
                                        <strong>{i.patient_name.clone()}</strong>
                                        {tf(" invites you to follow: {scopes}", &[("scopes", &scope_names(&i.scopes))])}
                                        <ActionForm action=accept_invite attr:class="inline-form">
                                            <input type="hidden" name="grant_id" value=i.grant_id.clone()/>
                                            <button type="submit" class="btn btn-primary" data-testid="accept-invite">{t("Accept")}</button>
                                        </ActionForm>
                                    </li>
                                }).collect_view()}
                            </ul>
                        </section>
                    }.into_any(),
                    _ => ().into_any(),
                }
            })}
        </Transition>

        // 4. Who can see my data.
        <section class="card" aria-labelledby="grants-h" data-testid="grants-card">
            <h2 id="grants-h">{t("Who can see your data")}</h2>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match paused.await {
                        Ok(true) => view! {
                            <div class="alert alert-warn" role="status" data-testid="sharing-paused">
                                <p><strong>{t("All sharing is paused.")}</strong>{t(" Nobody you share with can see anything until you resume. Your choices are kept.")}</p>
                                <ActionForm action=pause attr:class="inline-form">
                                    <input type="hidden" name="pause" value="off"/>
                                    <button type="submit" class="btn btn-primary" data-testid="resume-sharing">{t("Resume sharing")}</button>
                                </ActionForm>
                            </div>
                        }.into_any(),
                        Ok(false) => view! {
                            <ActionForm action=pause attr:class="inline-form pause-form">
                                <input type="hidden" name="pause" value="on"/>
                                <button type="submit" class="btn btn-danger" data-testid="pause-sharing">{t("Pause all sharing")}</button>
                                <small class="hint">{t(" Stops every clinic and care partner at once (for example if you think your account was misused); resume later with one click.")}</small>
                            </ActionForm>
                        }.into_any(),
                        Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                    }
                })}
            </Transition>
            {move || revoke.value().get().map(|r| match r {
                Ok(_) => view! { <div class="alert alert-ok" role="status" data-testid="revoked">{t("Access ended. It stops with their next request.")}</div> }.into_any(),
                Err(e) => view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> }.into_any(),
            })}
            {move || update.value().get().map(|r| match r {
                Ok(_) => view! { <div class="alert alert-ok" role="status" data-testid="grant-updated">{t("Saved.")}</div> }.into_any(),
                Err(e) => view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> }.into_any(),
            })}
            <Transition fallback=|| view! { <p class="loading">{t("Loading…")}</p> }>
                {move || Suspend::new(async move {
                    match grants.await {
                        Ok(list) if list.iter().all(|g| g.status != "active" && g.status != "pending" && g.status != "paused") => view! {
                            <p class="empty-state" data-testid="sharing-empty">{t("Nobody but you can see your data.")}</p>
                            {(!list.is_empty()).then(|| view! { <GrantTable list=list revoke=revoke update=update/> })}
                        }.into_any(),
                        Ok(list) => view! { <GrantTable list=list revoke=revoke update=update/> }.into_any(),
                        Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                    }
                })}
            </Transition>
        </section>

        // 5. Invite a care partner.
        <section class="card" aria-labelledby="invite-h">
            <h2 id="invite-h">{t("Invite a care partner")}</h2>
            <p class="muted">{t("A family member or friend can follow your data, read only, within what you choose. They never need your password.")}</p>
            {move || invite.value().get().map(|r| match r {
                Ok(g) => view! { <div class="alert alert-ok" role="status" data-testid="invite-sent">{tf("Invitation sent to {name}. It can be accepted for 7 days.", &[("name", &g.grantee_name)])}</div> }.into_any(),
                Err(e) => view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> }.into_any(),
            })}
            <ActionForm action=invite attr:class="form">
                <label class="field"><span>{t("Their email")}</span><input type="email" name="email" required=true data-testid="invite-email"/></label>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        sms.await.unwrap_or(false).then(|| view! {
                            <label class="field"><span>{t("Their mobile (optional)")}</span><input type="tel" name="phone" placeholder="+44 7700 900123" data-testid="invite-phone"/>
                                <small class="hint">{t("Also send the invitation by text message (international form, with the country code).")}</small></label>
                        })
                    })}
                </Transition>
                <ScopeBoxes checked=vec!["glucose".to_string()] prefix="invite".to_string()/>
                <label class="field"><span>{t("Share until (optional)")}</span><input type="date" name="expires_at"/></label>
                <button type="submit" class="btn" data-testid="invite-submit">{t("Send invitation")}</button>
            </ActionForm>
        </section>

        // 6. Share with a provider by their email.
        <section class="card" aria-labelledby="provider-h">
            <h2 id="provider-h">{t("Share with a doctor or nurse by email")}</h2>
            <p class="muted">{t("For a provider whose clinic has no share code: enter their name, their clinic and the email address they use at work. Only an account with that confirmed address can see your data, within what you choose; they are told by email.")}</p>
            <ActionForm action=invite attr:class="form">
                <label class="field"><span>{t("Provider's name")}</span><input type="text" name="provider_name" required=true maxlength="200" data-testid="provider-name"/></label>
                <label class="field"><span>{t("Clinic")}</span><input type="text" name="provider_clinic" required=true maxlength="200" data-testid="provider-clinic"/></label>
                <label class="field"><span>{t("Their work email")}</span><input type="email" name="email" required=true data-testid="provider-email"/></label>
                <ScopeBoxes checked=vec!["glucose".to_string(), "insulin".to_string()] prefix="provider".to_string()/>
                <label class="field"><span>{t("Share until")}</span><input type="date" name="expires_at" data-testid="provider-expiry"/>
                    <small class="hint">{t("A date is wise for a one-off appointment; empty: until you revoke.")}</small></label>
                <button type="submit" class="btn" data-testid="provider-submit">{t("Share with this provider")}</button>
            </ActionForm>
        </section>

        // 6. Shared with me.
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match shared.await {
                    Ok(list) => view! { <SharedWithMeCard list testid="shared-with-me"/> }.into_any(),
                    Err(_) => ().into_any(),
                }
            })}
        </Transition>

        // 7. The access log.
        <section class="card" aria-labelledby="log-h" data-testid="access-log" id="access-log">
            <h2 id="log-h">{t("Who looked at your data")}</h2>
            <Transition fallback=|| view! { <p class="loading">{t("Loading…")}</p> }>
                {move || Suspend::new(async move {
                    match log.await {
                        Ok(list) if list.is_empty() => view! { <p class="empty-state" data-testid="access-log-empty">{t("Nobody else has looked at your data.")}</p> }.into_any(),
                        Ok(list) => view! {
                            <div class="table-wrap">
                            <table class="table">
                                <thead><tr><th scope="col">{t("When")}</th><th scope="col">{t("Who")}</th><th scope="col">{t("Through")}</th><th scope="col">{t("What")}</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|e| view! {
                                        <tr data-testid="access-row">
                                            <td>{when(&e.at)}</td>
                                            <td>{e.actor_name.clone()}{e.actor_email.clone().map(|m| view! { <small class="muted">{format!(" {m}")}</small> })}</td>
                                            <td>{e.clinic_name.clone().unwrap_or_else(|| t("care partner").into())}</td>
                                            <td>{e.what.clone()}</td>
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

/// Enter a code (a GET form: the code lands in the URL, the page previews it).
#[component]
fn CodeEntry() -> impl IntoView {
    view! {
        <p>{t("Enter a one-time link code your clinic gave you (on screen, printed, by email or text message), or your clinic's share code (it is shown in their office or on their website) to share with them yourself. You see who it is before anything is shared.")}</p>
        <form method="get" action="/sharing" class="inline-form">
            <label class="field"><span>{t("Link or share code")}</span>
                <input type="text" name="code" required=true autocomplete="off" placeholder="ABCD-EFGH-JKMN" maxlength="20" data-testid="code-input"/>
            </label>
            <button type="submit" class="btn btn-primary" data-testid="code-submit">{t("Continue")}</button>
        </form>
    }
}

#[component]
fn LinkOffer(
    p: LinkPreview,
    code: String,
    accept: ServerAction<AcceptLink>,
    decline: ServerAction<DeclineLink>,
) -> impl IntoView {
    let code2 = code.clone();
    let share = p.kind == "share";
    view! {
        <div class="offer" data-testid="link-offer" data-kind=p.kind.clone()>
            {if p.kind == "share" {
                view! {
                    <p class="lead">{t("Share your diabetes data with ")}<strong data-testid="offer-clinic">{p.clinic_name.clone()}</strong>"?"</p>
                    <p class="muted">{t("Check that this is your clinic's name. They will find you in their list of new patients.")}</p>
                }.into_any()
            } else {
                view! {
                    <p class="lead"><strong data-testid="offer-clinic">{p.clinic_name.clone()}</strong>{t(" asks to see your diabetes data.")}</p>
                    <p class="muted">{tf("This code is valid until {date}.", &[("date", &p.code_expires_at.as_deref().map(when).unwrap_or_default())])}</p>
                }.into_any()
            }}
            <ActionForm action=accept attr:class="form">
                <input type="hidden" name="code" value=code.clone()/>
                <ScopeBoxes checked=p.scopes.clone() prefix="accept".to_string()/>
                <label class="field"><span>{t("Share until (optional)")}</span>
                    <input type="date" name="expires_at" data-testid="accept-expiry"/>
                    <small class="hint">{t("Leave empty to share until you revoke it. You can revoke at any time.")}</small>
                </label>
                <button type="submit" class="btn btn-primary" data-testid="accept-link">{if share { t("Share") } else { t("Accept and share") }}</button>
            </ActionForm>
            {if share {
                view! { <a class="btn btn-quiet" href="/sharing" data-testid="cancel-share">{t("Cancel")}</a> }.into_any()
            } else {
                view! {
                    <ActionForm action=decline attr:class="inline-form">
                        <input type="hidden" name="code" value=code2/>
                        <button type="submit" class="btn btn-quiet" data-testid="decline-link">{t("Decline")}</button>
                    </ActionForm>
                }.into_any()
            }}
        </div>
    }
}

#[component]
fn GrantTable(
    list: Vec<GrantInfo>,
    revoke: ServerAction<RevokeGrant>,
    update: ServerAction<UpdateGrant>,
) -> impl IntoView {
    view! {
        <div class="table-wrap">
        <table class="table" data-testid="grants-table">
            <thead><tr><th scope="col">{t("With")}</th><th scope="col">{t("Shares")}</th><th scope="col">{t("Status")}</th><th scope="col">{t("Until")}</th><th scope="col">{t("Change")}</th></tr></thead>
            <tbody>
                {list.into_iter().map(|g| {
                    let live = g.status == "active" || g.status == "pending" || g.status == "paused";
                    let (gid, gid2, gstatus, gscopes, gexp) = (g.id.clone(), g.id.clone(), g.status.clone(), g.scopes.clone(), g.expires_at.clone());
                    let who = match g.grantee_type.as_str() { "clinic" => t("clinic"), "provider" => t("provider"), _ => t("care partner") };
                    view! {
                        <tr data-testid="grant-row" data-status=g.status.clone()>
                            <td><strong>{g.grantee_name.clone()}</strong><small class="muted">{format!(" {who}")}</small></td>
                            <td>{scope_names(&g.scopes)}</td>
                            <td><span class=format!("badge badge-{}", g.status)>{status_label(&g.status)}</span></td>
                            <td>{g.expires_at.as_deref().map(when).unwrap_or_else(|| t("until revoked").into())}</td>
                            <td>
                                {live.then(move || view! {
                                    <details>
                                        <summary>{t("Edit")}</summary>
                                        <ActionForm action=update attr:class="form">
                                            <input type="hidden" name="id" value=gid/>
                                            <ScopeBoxes checked=gscopes prefix="edit".to_string()/>
                                            <label class="field"><span>{t("Share until")}</span><input type="date" name="expires_at" value=date_of(&gexp)/></label>
                                            <button type="submit" class="btn">{t("Save")}</button>
                                        </ActionForm>
                                    </details>
                                    <ActionForm action=revoke attr:class="inline-form">
                                        <input type="hidden" name="id" value=gid2/>
                                        <button type="submit" class="btn btn-danger" data-testid="revoke-grant">{if gstatus == "pending" { t("Withdraw") } else { t("Revoke") }}</button>
                                    </ActionForm>
                                }.into_any())}
                            </td>
                        </tr>
                    }.into_any()
                }).collect_view()}
            </tbody>
        </table>
        </div>
    }
}

/// The patients who share their data with the viewer, each linking to their
/// reports; nothing at all when there are none.
#[component]
pub fn SharedWithMeCard(list: Vec<SharedWithMe>, testid: &'static str) -> impl IntoView {
    if list.is_empty() {
        return ().into_any();
    }
    view! {
        <section class="card" data-testid=testid>
            <h2>{t("Shared with you")}</h2>
            <ul class="list">
                {list.into_iter().map(|s| view! {
                    <li>
                        <a href=format!("/reports?patient={}", s.patient_id)>{s.patient_name.clone()}</a>
                        <span class="muted">{format!(" · {}{}", scope_names(&s.scopes), s.expires_at.as_deref().map(|e| format!(" · {}", tf("until {date}", &[("date", &when(e))]))).unwrap_or_default())}</span>
                    </li>
                }).collect_view()}
            </ul>
        </section>
    }
    .into_any()
}
