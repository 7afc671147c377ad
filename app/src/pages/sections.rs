//! Sharing and Clinic.

use crate::api::my_clinics;
use crate::components::{ErrorCard, RequireUser};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SharingPage() -> impl IntoView {
    view! {
        <Title text="Sharing"/>
        <h1 class="page-title">"Sharing"</h1>
        <RequireUser>
            <section class="card empty-state" data-testid="sharing-empty">
                <h2>"You are not sharing your data"</h2>
                <p>"Nobody but you can see your data. When your clinic gives you a one-time code, you will enter it here, choose what to share and for how long, and see every time someone looks."</p>
            </section>
        </RequireUser>
    }
}

#[component]
pub fn ClinicPage() -> impl IntoView {
    let clinics = Resource::new(|| (), |_| my_clinics());
    view! {
        <Title text="Clinic"/>
        <h1 class="page-title">"Clinic"</h1>
        <RequireUser>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match clinics.await {
                        Ok(list) if list.is_empty() => view! {
                            <section class="card empty-state">
                                <h2>"No clinic yet"</h2>
                                <p>"You are not a member of any clinic."</p>
                            </section>
                        }.into_any(),
                        Ok(list) => list.into_iter().map(|c| view! {
                            <section class="card">
                                <h2>{c.name}</h2>
                                <p class="muted">{format!("Your role: {}", c.role)}</p>
                                {if c.patients.is_empty() {
                                    view! { <p class="empty-state">"No patient records yet."</p> }.into_any()
                                } else {
                                    view! {
                                        <table class="table">
                                            <thead><tr><th scope="col">"Patient"</th><th scope="col">"Link"</th></tr></thead>
                                            <tbody>
                                                {c.patients.into_iter().map(|p| view! {
                                                    <tr><td>{p.name}</td><td>{if p.linked { "linked to a personal account" } else { "custodial record" }}</td></tr>
                                                }).collect_view()}
                                            </tbody>
                                        </table>
                                    }.into_any()
                                }}
                            </section>
                        }).collect_view().into_any(),
                        Err(e) => view! { <ErrorCard message=crate::api::error_message(&e)/> }.into_any(),
                    }
                })}
            </Transition>
        </RequireUser>
    }
}
