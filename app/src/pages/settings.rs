//! Settings: name, glucose unit, time zone; Nightscout; two-factor
//! authentication and passkeys; sessions and the login history; personal
//! access tokens; downloading all one's data and deleting the account.

use crate::api::{list_sessions, time_zones, EndSession};
use crate::api_account::{
    get_two_factor_status, list_passkeys, list_tokens, login_history, BeginTotp, ConfirmTotp, CreateToken, DeleteAccount,
    DisableTwoFactor, NewRecoveryCodes, RemovePasskey, RenamePasskey, ResendVerification, RevokeToken,
};
use crate::api_uploads::{nightscout_site, RotateNightscout};
use crate::components::{ErrorCard, RequireUser, UserResource};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <Title text="Settings"/>
        <h1 class="page-title">"Settings"</h1>
        <RequireUser>
            <VerifyEmailNotice/>
            <ProfileForm/>
            <NightscoutCard/>
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
    let end = ServerAction::<EndSession>::new();
    let sessions = Resource::new(move || end.version().get(), |_| list_sessions());
    view! {
        <section class="card" aria-labelledby="sessions-h">
            <h2 id="sessions-h">"Where you are logged in"</h2>
            <p class="muted">"Think someone else used your account? Follow the "<a href="/security" data-testid="security-link">"security checklist"</a>"."</p>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match sessions.await {
                        Ok(list) => view! {
                            <table class="table">
                                <thead><tr><th scope="col">"Browser"</th><th scope="col">"Address"</th><th scope="col">"Signed in"</th><th scope="col">"Last used"</th><th scope="col"><span class="sr-only">"End"</span></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|s| view! {
                                        <tr>
                                            <td>{s.user_agent.unwrap_or_else(|| "unknown".into())}{s.current.then(|| view! { <span class="badge">"this browser"</span> })}</td>
                                            <td>{s.ip.unwrap_or_default()}</td>
                                            <td>{s.created_at}</td>
                                            <td>{s.last_seen_at}</td>
                                            <td>
                                                {(!s.current).then(|| view! {
                                                    <ActionForm action=end attr:class="inline-form">
                                                        <input type="hidden" name="id" value=s.id.clone()/>
                                                        <button type="submit" class="btn btn-small" data-testid="end-session">"Log out"</button>
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
                <button type="submit" class="btn btn-danger" data-testid="logout-all">"Log out of all sessions"</button>
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
                        <h2 id="ns-h">"Phone uploaders and followers (Nightscout)"</h2>
                        <p class="muted">"xDrip+, Loop, Trio, AndroidAPS and Nightscout followers can send to and read from Diabase as if it were a Nightscout site."</p>
                        {match current {
                            Ok(Some(s)) => view! {
                                <dl class="facts" data-testid="nightscout-site">
                                    <dt>"Nightscout URL"</dt><dd><code>{s.root_url.clone()}</code><small class="hint">" (Loop, Trio, AndroidAPS, followers)"</small></dd>
                                    <dt>"URL with path"</dt><dd><code>{s.url.clone()}</code><small class="hint">" (xDrip+ uploader: https://SECRET@host/ns/…/api/v1/)"</small></dd>
                                    <dt>"Secret last set"</dt><dd>{s.rotated_at.clone()}</dd>
                                </dl>
                            }.into_any(),
                            Ok(None) => view! { <p data-testid="nightscout-none">"No site yet."</p> }.into_any(),
                            Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                        }}
                        {move || rotate.value().get().map(|r| match r {
                            Ok(n) => view! {
                                <div class="alert alert-warn" role="status" data-testid="nightscout-secrets">
                                    <p><strong>"Copy these now: they are shown only once."</strong></p>
                                    <dl class="facts">
                                        <dt>"API secret"</dt><dd><code data-testid="ns-secret">{n.secret.clone()}</code></dd>
                                        <dt>"Access token (AndroidAPS)"</dt><dd><code>{n.token.clone()}</code></dd>
                                        <dt>"Read-only token (followers)"</dt><dd><code data-testid="ns-read-token">{n.read_token.clone()}</code></dd>
                                    </dl>
                                </div>
                            }.into_any(),
                            Err(e) => view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> }.into_any(),
                        })}
                        <ActionForm action=rotate attr:class="inline-form">
                            <button type="submit" class="btn" data-testid="ns-rotate">"Create a new secret and tokens"</button>
                        </ActionForm>
                        <small class="hint">"A new secret stops the old one at once: update every uploader and follower."</small>
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
            <p><strong>"Save these recovery codes now: they are shown only once."</strong></p>
            <p>"Each one logs you in once if you lose your phone. Keep them somewhere safe, away from your password."</p>
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
    let status = Resource::new(
        move || (confirm.version().get(), disable.version().get(), renew.version().get()),
        |_| get_two_factor_status(),
    );
    let err = |e: &ServerFnError| view! { <div class="alert alert-error" role="alert" data-testid="2fa-error">{crate::api::error_message(e)}</div> };
    view! {
        <section class="card" aria-labelledby="tfa-h" data-testid="two-factor-card">
            <h2 id="tfa-h">"Two-factor authentication"</h2>
            <p class="muted">"With it on, logging in also needs a 6-digit code from an authenticator app on your phone (Google Authenticator, Microsoft Authenticator, 1Password, Aegis…), so a stolen password alone is not enough."</p>
            {move || confirm.value().get().map(|r| match r {
                Ok(codes) => view! { <div class="alert alert-ok" role="status" data-testid="2fa-on">"Two-factor authentication is on."</div><RecoveryCodes codes/> }.into_any(),
                Err(e) => err(&e).into_any(),
            })}
            {move || renew.value().get().map(|r| match r {
                Ok(codes) => view! { <RecoveryCodes codes/> }.into_any(),
                Err(e) => err(&e).into_any(),
            })}
            {move || disable.value().get().map(|r| match r {
                Ok(()) => view! { <div class="alert alert-info" role="status" data-testid="2fa-off">"Two-factor authentication is off."</div> }.into_any(),
                Err(e) => err(&e).into_any(),
            })}
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match status.await {
                        Ok(s) if s.enabled => view! {
                            <p data-testid="2fa-status"><strong>"On."</strong>{format!(" {} recovery code(s) left.", s.recovery_codes_left)}</p>
                            <details class="details">
                                <summary>"New recovery codes"</summary>
                                <ActionForm action=renew attr:class="inline-form">
                                    <label class="field"><span>"Code from your app"</span>
                                        <input type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required=true/></label>
                                    <button type="submit" class="btn">"Make new codes (the old ones stop working)"</button>
                                </ActionForm>
                            </details>
                            <details class="details">
                                <summary>"Turn off"</summary>
                                <ActionForm action=disable attr:class="form">
                                    <label class="field"><span>"Password"</span>
                                        <input type="password" name="password" autocomplete="current-password" required=true/></label>
                                    <label class="field"><span>"Code from your app, or a recovery code"</span>
                                        <input type="text" name="code" autocomplete="one-time-code" required=true data-testid="2fa-off-code"/></label>
                                    <button type="submit" class="btn btn-danger" data-testid="2fa-disable">"Turn off two-factor authentication"</button>
                                </ActionForm>
                            </details>
                        }.into_any(),
                        Ok(_) => view! {
                            <p data-testid="2fa-status"><strong>"Off."</strong></p>
                            {move || begin.value().get().map(|r| match r {
                                Ok(setup) => view! {
                                    <div class="totp-setup" data-testid="totp-setup">
                                        <p>"1. Scan this code with your authenticator app:"</p>
                                        <div class="qr" inner_html=setup.qr_svg.clone()></div>
                                        <p class="small">"Cannot scan? Enter this key by hand: "<code data-testid="totp-secret">{setup.secret.clone()}</code></p>
                                        <p>"2. Enter the 6-digit code the app shows:"</p>
                                        <ActionForm action=confirm attr:class="inline-form">
                                            <input type="text" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}"
                                                required=true aria-label="Code from your app" data-testid="totp-code"/>
                                            <button type="submit" class="btn btn-primary" data-testid="totp-confirm">"Turn on"</button>
                                        </ActionForm>
                                    </div>
                                }.into_any(),
                                Err(e) => err(&e).into_any(),
                            })}
                            <ActionForm action=begin attr:class="inline-form">
                                <button type="submit" class="btn" data-testid="totp-begin">"Set up two-factor authentication"</button>
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
    view! {
        <section class="card" aria-labelledby="data-h" data-testid="your-data-card">
            <h2 id="data-h">"Your data"</h2>
            <p class="muted">"Download everything Diabase holds about you: your account, devices, uploads, every reading and therapy record, who you share with and who looked."</p>
            <p class="actions">
                <a class="btn" href="/api/v1/me/export?format=json" download="" data-testid="export-json">"Download (Diabase JSON)"</a>
                " "
                <a class="btn" href="/api/v1/me/export?format=fhir" download="" data-testid="export-fhir">"Download (FHIR R4, for other health apps)"</a>
            </p>
            <details class="details" data-testid="delete-account">
                <summary>"Delete my account"</summary>
                <p>"This deletes your account and all your data for good: readings, therapy records, uploads, devices, sharing. Clinics you shared with keep only their own record of your name, without any data. Download your data first if you want to keep it."</p>
                {move || delete.value().get().and_then(|r| r.err()).map(|e| view! {
                    <div class="alert alert-error" role="alert" data-testid="delete-error">{crate::api::error_message(&e)}</div>
                })}
                <ActionForm action=delete attr:class="form">
                    <label class="field"><span>"Password"</span>
                        <input type="password" name="password" autocomplete="current-password" required=true data-testid="delete-password"/></label>
                    <label class="field"><span>"Code from your authenticator app (if two-factor authentication is on)"</span>
                        <input type="text" name="code" autocomplete="one-time-code" data-testid="delete-code"/></label>
                    <label class="check"><input type="checkbox" name="confirm" required=true data-testid="delete-confirm"/>
                        " I understand that everything is deleted and cannot be restored."</label>
                    <button type="submit" class="btn btn-danger" data-testid="delete-submit">"Delete my account and all my data"</button>
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
    let failed = move || {
        rename.value().get().and_then(|r| r.err()).or_else(|| remove.value().get().and_then(|r| r.err()))
    };
    view! {
        <section class="card" aria-labelledby="pk-h" data-testid="passkeys-card">
            <h2 id="pk-h">"Passkeys"</h2>
            <p class="muted">"A passkey signs you in with your phone's or computer's screen lock (fingerprint, face or PIN) instead of a password. It cannot be phished or guessed, and it counts as two-factor authentication."</p>
            <Show when=added>
                <div class="alert alert-ok" role="status" data-testid="passkey-added">"Passkey added."</div>
            </Show>
            {move || failed().map(|e| view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> })}
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match keys.await {
                        Ok(list) if list.is_empty() => view! { <p data-testid="passkey-none">"No passkeys yet."</p> }.into_any(),
                        Ok(list) => view! {
                            <ul class="list" data-testid="passkey-list">
                                {list.into_iter().map(|k| {
                                    let used = k.last_used_at.clone().map(|t| format!("last used {}", t.replace('T', " ").trim_end_matches('Z'))).unwrap_or_else(|| "not used yet".into());
                                    let added = format!("added {}", k.created_at.replace('T', " ").trim_end_matches('Z'));
                                    let (id1, id2) = (k.id.clone(), k.id.clone());
                                    view! {
                                        <li class="list-row" data-testid="passkey-row">
                                            <div>
                                                <strong data-testid="passkey-name">{k.name.clone()}</strong>
                                                <span class="muted small">{format!(" · {added} (UTC) · {used}")}</span>
                                            </div>
                                            <details class="details">
                                                <summary>"Rename"</summary>
                                                <ActionForm action=rename attr:class="inline-form">
                                                    <input type="hidden" name="id" value=id1/>
                                                    <input type="text" name="name" value=k.name.clone() maxlength="60" required=true aria-label="New name" data-testid="passkey-rename-input"/>
                                                    <button type="submit" class="btn" data-testid="passkey-rename">"Save"</button>
                                                </ActionForm>
                                            </details>
                                            <ActionForm action=remove attr:class="inline-form">
                                                <input type="hidden" name="id" value=id2/>
                                                <button type="submit" class="btn btn-danger" data-testid="passkey-remove">"Remove"</button>
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
                <input type="text" id="passkey-name" name="passkey_name" maxlength="60" placeholder="Name, e.g. Laptop" aria-label="Passkey name" data-testid="passkey-new-name"/>
                <button type="button" class="btn btn-primary" data-passkey="register" data-passkey-name="#passkey-name" data-testid="passkey-add">"Add a passkey"</button>
                <div class="alert alert-error" role="alert" data-passkey-error="" data-testid="passkey-error" hidden=true></div>
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
                    {format!("Please confirm your email address: we sent a link to {}. ", m.email)}
                    {move || match resend.value().get() {
                        Some(Ok(_)) => view! { <strong data-testid="verify-sent">"A new link is on its way."</strong> }.into_any(),
                        Some(Err(e)) => view! { <strong>{crate::api::error_message(&e)}</strong> }.into_any(),
                        None => view! {
                            <ActionForm action=resend attr:class="inline-form">
                                <button type="submit" class="btn btn-small" data-testid="verify-resend">"Send the link again"</button>
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
            <h2 id="logins-h">"Login history"</h2>
            <p class="muted">"Each sign-in to your account. A sign-in you do not recognise? Follow the "<a href="/security">"security checklist"</a>"."</p>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match rows.await {
                        Ok(list) if list.is_empty() => view! { <p class="muted">"No sign-ins recorded yet."</p> }.into_any(),
                        Ok(list) => view! {
                            <div class="table-wrap">
                            <table class="table" data-testid="login-history">
                                <thead><tr><th scope="col">"When"</th><th scope="col">"Result"</th><th scope="col">"With"</th><th scope="col">"Browser"</th><th scope="col">"Address"</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|e| view! {
                                        <tr data-testid="login-row" data-success=e.success.to_string()>
                                            <td>{e.at.clone()}</td>
                                            <td>{if e.success { view! { <span class="badge badge-active">"signed in"</span> }.into_any() } else { view! { <span class="badge badge-revoked">"failed"</span> }.into_any() }}
                                                {e.new_device.then(|| view! { <span class="badge">"new browser"</span> })}</td>
                                            <td>{e.method.clone()}</td>
                                            <td class="wrap">{e.user_agent.clone().unwrap_or_else(|| "unknown".into())}</td>
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
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = Resource::new(move || (create.version().get(), revoke.version().get()), |_| list_tokens());
    view! {
        <section class="card" aria-labelledby="tokens-h" data-testid="tokens-card">
            <h2 id="tokens-h">"Apps and scripts (access tokens)"</h2>
            <p class="muted">"A token lets an app or a script use the Diabase API as you. Give each one only what it needs, and an end date; revoke it when you stop using it."</p>
            {move || create.value().get().map(|r| match r {
                Ok(t) => view! {
                    <div class="alert alert-warn" role="status" data-testid="new-token">
                        <p><strong>"Copy this token now: it is shown only once."</strong></p>
                        <p><code data-testid="new-token-value">{t.token.clone()}</code></p>
                        <p class="small">{format!("{} · {}{}", t.name, t.scopes.join(", "), t.expires_at.as_deref().map(|e| format!(" · until {e}")).unwrap_or_default())}</p>
                    </div>
                }.into_any(),
                Err(e) => view! { <div class="alert alert-error" role="alert">{crate::api::error_message(&e)}</div> }.into_any(),
            })}
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match tokens.await {
                        Ok(list) if list.is_empty() => view! { <p class="muted" data-testid="no-tokens">"No tokens."</p> }.into_any(),
                        Ok(list) => view! {
                            <div class="table-wrap">
                            <table class="table" data-testid="tokens-table">
                                <thead><tr><th scope="col">"Name"</th><th scope="col">"May"</th><th scope="col">"Made"</th><th scope="col">"Last used"</th><th scope="col">"Until"</th><th scope="col"><span class="sr-only">"Revoke"</span></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|t| view! {
                                        <tr data-testid="token-row">
                                            <td>{t.name.clone()}</td>
                                            <td>{t.scopes.join(", ")}</td>
                                            <td>{t.created_at.clone()}</td>
                                            <td>{t.last_used_at.clone().unwrap_or_else(|| "never".into())}</td>
                                            <td>{t.expires_at.clone().unwrap_or_else(|| "until revoked".into())}</td>
                                            <td>
                                                <ActionForm action=revoke attr:class="inline-form">
                                                    <input type="hidden" name="id" value=t.id.clone()/>
                                                    <button type="submit" class="btn btn-small btn-danger" data-testid="revoke-token">"Revoke"</button>
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
                <summary>"New token"</summary>
                <ActionForm action=create attr:class="form">
                    <label class="field"><span>"Name"</span>
                        <input type="text" name="name" required=true maxlength="100" placeholder="xDrip+ on my phone" data-testid="token-name"/></label>
                    <label class="field"><span>"It may"</span>
                        <select name="access" data-testid="token-access">
                            <option value="read:glucose" selected=true>"Read glucose only"</option>
                            <option value="read:all">"Read all my data"</option>
                            <option value="upload">"Upload only (phone uploaders)"</option>
                            <option value="read:all+upload">"Read all and upload"</option>
                            <option value="full">"Everything my account can do"</option>
                        </select>
                        <small class="hint">"No token can make other tokens, change how you sign in, or delete your account."</small>
                    </label>
                    <label class="field"><span>"Works for"</span>
                        <select name="days" data-testid="token-days">
                            <option value="30">"30 days"</option>
                            <option value="90" selected=true>"90 days"</option>
                            <option value="365">"1 year"</option>
                            <option value="">"Until I revoke it"</option>
                        </select>
                    </label>
                    <button type="submit" class="btn btn-primary" data-testid="token-create">"Make token"</button>
                </ActionForm>
            </details>
        </section>
    }
}
