//! Integration tests: the real server, over HTTP, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)] // a test fails by panicking

mod common;

use common::{Backend, STRONG, TestApp, body};
use serde_json::json;

both_backends!(signup_login_me_logout);
async fn signup_login_me_logout(app: &TestApp) {
    let c = app.client();
    // Sign-up: weak passwords and bad emails are refused with a field.
    let r = c
        .post(app.url("/api/v1/auth/signup"))
        .json(&json!({"email": "ann@example.org", "password": "password1", "display_name": "Ann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b = body(r).await;
    assert_eq!(b["error"]["code"], "bad_request");
    assert_eq!(b["error"]["field"], "password");
    let r = c
        .post(app.url("/api/v1/auth/signup"))
        .json(&json!({"email": "not-an-email", "password": STRONG, "display_name": "Ann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .post(app.url("/api/v1/auth/signup"))
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(body(r).await["error"]["message"].as_str().unwrap().contains("JSON"));

    let ok = c
        .post(app.url("/api/v1/auth/signup"))
        .json(&json!({"email": "Ann@Example.org", "password": STRONG, "display_name": "Ann Patient"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);
    let first = body(ok).await;
    // Signing up again with a taken email answers exactly the same.
    let again = c
        .post(app.url("/api/v1/auth/signup"))
        .json(&json!({"email": "ann@example.org", "password": "another-Long-passphrase-77", "display_name": "Mallory"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(body(again).await, first);

    // Wrong password and unknown account: the same 401 and message.
    let wrong = c
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "ann@example.org", "password": "nope-nope-nope"}))
        .send()
        .await
        .unwrap();
    let unknown = c
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "nobody@example.org", "password": "nope-nope-nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    assert_eq!(body(wrong).await, body(unknown).await);
    // The second sign-up did not replace the password.
    let r = c
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "ann@example.org", "password": "another-Long-passphrase-77"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = c
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "ANN@example.org", "password": STRONG}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.starts_with("diabase_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    let token = cookie.split(';').next().unwrap().trim_start_matches("diabase_session=").to_string();
    assert!(token.len() >= 43, "256-bit session id");
    // Only the hash of the session id is stored.
    use sea_orm::EntityTrait;
    let rows = store::entity::sessions::Entity::find().all(&app.state.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0].id_hash, token);
    assert_eq!(rows[0].id_hash, store::sha256_hex(token.as_bytes()));

    let me = body(c.get(app.url("/api/v1/me")).send().await.unwrap()).await;
    assert_eq!(me["email"], "ann@example.org");
    assert_eq!(me["display_name"], "Ann Patient");
    assert_eq!(me["role"], "patient");
    assert_eq!(me["glucose_unit"], "mg/dL");
    assert_eq!(me["time_zone"], "UTC");
    assert!(me["patient_id"].is_string());
    for k in ["id", "email", "display_name", "role", "glucose_unit", "time_zone", "patient_id"] {
        assert!(me.get(k).is_some(), "{k}");
    }

    // Settings.
    let r = c
        .patch(app.url("/api/v1/me"))
        .json(&json!({"glucose_unit": "mmol/L", "time_zone": "Europe/Berlin", "display_name": "Ann B."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me2 = body(r).await;
    assert_eq!(me2["glucose_unit"], "mmol/L");
    assert_eq!(me2["time_zone"], "Europe/Berlin");
    assert_eq!(me2["display_name"], "Ann B.");
    let r = c.patch(app.url("/api/v1/me")).json(&json!({"time_zone": "Mars/Olympus"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"]["field"], "time_zone");
    let r = c.patch(app.url("/api/v1/me")).json(&json!({"glucose_unit": "furlongs"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // Nothing changed by the refused patches.
    let me3 = body(c.get(app.url("/api/v1/me")).send().await.unwrap()).await;
    assert_eq!(me3["time_zone"], "Europe/Berlin");
    assert_eq!(me3["glucose_unit"], "mmol/L");

    // Log out: the same cookie no longer works.
    let r = c.post(app.url("/api/v1/auth/logout")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let stale = app.client();
    let r = stale.get(app.url("/api/v1/me")).header("cookie", format!("diabase_session={token}")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(body(r).await["error"]["code"], "unauthorized");
    assert!(store::entity::sessions::Entity::find().all(&app.state.db).await.unwrap().is_empty());
}

both_backends!(logout_everywhere);
async fn logout_everywhere(app: &TestApp) {
    let a = app.user("bob@example.org", "patient").await;
    let b = app.client();
    let r = b
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "bob@example.org", "password": STRONG}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let sessions = body(a.get(app.url("/api/v1/me/sessions")).send().await.unwrap()).await;
    assert_eq!(sessions.as_array().unwrap().len(), 2);
    assert_eq!(sessions.as_array().unwrap().iter().filter(|s| s["current"] == true).count(), 1);
    let r = a.post(app.url("/api/v1/auth/logout-all")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(a.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401);
    assert_eq!(b.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401);
}

both_backends!(personal_access_tokens);
async fn personal_access_tokens(app: &TestApp) {
    let a = app.user("carol@example.org", "patient").await;
    let r = a.post(app.url("/api/v1/tokens")).json(&json!({"name": "xDrip"})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let t = body(r).await;
    let token = t["token"].as_str().unwrap().to_string();
    let id = t["id"].as_str().unwrap().to_string();
    let anon = app.client();
    let me = anon.get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(body(me).await["email"], "carol@example.org");
    // Listing never shows secrets.
    let list = body(a.get(app.url("/api/v1/tokens")).send().await.unwrap()).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("token").is_none());
    // Another user cannot revoke it (404, not 403).
    let d = app.user("dave@example.org", "patient").await;
    assert_eq!(d.delete(app.url(&format!("/api/v1/tokens/{id}"))).send().await.unwrap().status(), 404);
    assert_eq!(a.delete(app.url(&format!("/api/v1/tokens/{id}"))).send().await.unwrap().status(), 204);
    assert_eq!(anon.get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap().status(), 401);
    assert_eq!(anon.get(app.url("/api/v1/me")).bearer_auth("dbs_forged").send().await.unwrap().status(), 401);
    // A bad bearer token is refused even beside a valid cookie.
    assert_eq!(a.get(app.url("/api/v1/me")).bearer_auth("dbs_forged").send().await.unwrap().status(), 401);
}

both_backends!(origin_checked_on_state_changes);
async fn origin_checked_on_state_changes(app: &TestApp) {
    let a = app.user("erin@example.org", "patient").await;
    let r = a
        .patch(app.url("/api/v1/me"))
        .header("origin", "https://evil.example")
        .json(&json!({"display_name": "pwned"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(body(r).await["error"]["code"], "bad_origin");
    let r = a
        .patch(app.url("/api/v1/me"))
        .header("referer", "https://evil.example/page")
        .json(&json!({"display_name": "pwned"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = a.post(app.url("/_fn/logout_all")).header("origin", "null").send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = a
        .patch(app.url("/api/v1/me"))
        .header("origin", app.base.clone())
        .json(&json!({"display_name": "Erin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(body(a.get(app.url("/api/v1/me")).send().await.unwrap()).await["display_name"], "Erin");
}

both_backends!(pages_and_security_headers);
async fn pages_and_security_headers(app: &TestApp) {
    let c = app.client();
    let r = c.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    let csp = h.get("content-security-policy").unwrap().to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("'nonce-"), "{csp}");
    assert_eq!(h.get("x-frame-options").unwrap(), "DENY");
    assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
    assert!(h.get("referrer-policy").is_some());
    assert_eq!(h.get("cache-control").unwrap(), "no-store");
    assert!(h.get("strict-transport-security").is_none(), "no HSTS without TLS");
    let html = r.text().await.unwrap();
    assert!(html.contains("Diabase"));
    let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap();
    assert!(html.contains(&format!("nonce=\"{nonce}\"")), "hydration script carries the nonce");
    assert!(html.contains("/manifest.webmanifest"));
    // A protected page without a session asks to log in.
    let html = c.get(app.url("/settings")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Please log in"), "settings page shows the log-in prompt");
    let r = c.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c.get(app.url("/api/v1/nothing-here")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(body(r).await["error"]["code"], "not_found");
    // Signed in, the settings page shows the user's settings.
    let a = app.user("fay@example.org", "patient").await;
    let html = a.get(app.url("/settings")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Europe/Berlin") && html.contains("Log out of all sessions"));
}

// Leptos suspends resource loading process-wide while it generates a route
// list (leptos#4773): a page rendered at that moment by another server in the
// same process never finished. The route list is made once per process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_while_another_router_is_built() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let builder = {
        let (state, stop) = (app.state.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                drop(server::router(state.clone(), false));
                n += 1;
            }
            n
        })
    };
    // The builder stops however this test ends.
    struct Stop(std::sync::Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let guard = Stop(stop);
    let c = app.client();
    for _ in 0..60 {
        let html = common::page(&c, &app.url("/settings")).await;
        assert!(html.contains("Please log in"));
    }
    drop(guard);
    assert!(builder.await.unwrap() > 0, "routers were built meanwhile");
    app.finish().await;
}

both_backends!(openapi_lists_the_routes);
async fn openapi_lists_the_routes(app: &TestApp) {
    let c = app.client();
    let doc = body(c.get(app.url("/api/v1/openapi.json")).send().await.unwrap()).await;
    assert_eq!(doc["openapi"], "3.1.0");
    for p in [
        "/auth/signup",
        "/auth/login",
        "/auth/logout",
        "/me",
        "/tokens",
        "/tokens/{id}",
        "/uploads",
        "/patients/{patient_id}/report",
        "/clinics",
        "/clinics/{clinic_id}/patients",
        "/clinics/{clinic_id}/patients/{record_id}/link-code",
        "/sharing/accept",
        "/sharing/invites",
        "/sharing/grants/{grant_id}",
        "/sharing/access-log",
        "/auth/password-reset",
        "/auth/password-reset/confirm",
        "/me/2fa",
        "/me/2fa/totp",
        "/me/2fa/totp/confirm",
        "/me/2fa/disable",
        "/clinics/{clinic_id}",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} documented");
    }
    assert_eq!(body(c.get(app.url("/api/v1/health")).send().await.unwrap()).await["status"], "ok");
}

both_backends!(demo_seed_is_complete_and_idempotent);
async fn demo_seed_is_complete_and_idempotent(app: &TestApp) {
    use app::service::seed;
    let now = app::service::now_ms();
    let first = seed::seed_demo(&app.state, now).await.unwrap();
    assert!(first.created);
    assert!(first.records > 25_000, "{} records", first.records);
    let second = seed::seed_demo(&app.state, now).await.unwrap();
    assert!(!second.created);
    let c = app.client();
    let r = c
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": seed::DEMO_PATIENT_EMAIL, "password": seed::DEMO_PATIENT_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = common::page(&c, &app.url("/")).await;
    assert!(html.contains("Time in ranges"), "dashboard shows figures");
    assert!(html.contains("data-testid=\"latest-reading\""));
    let clin = app.client();
    let r = clin
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": seed::DEMO_CLINICIAN_EMAIL, "password": seed::DEMO_CLINICIAN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["role"], "clinician");
    let html = clin.get(app.url("/clinic")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Diabase Demo Clinic"));
    let clinics = body(clin.get(app.url("/api/v1/clinics")).send().await.unwrap()).await;
    let cid = clinics[0]["id"].as_str().unwrap().to_string();
    let html = clin.get(app.url(&format!("/clinic/{cid}"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Alex Demo") && html.contains("DEMO-0001"), "the clinic dashboard lists the demo patient");
    let rows = body(clin.get(app.url(&format!("/api/v1/clinics/{cid}/patients"))).send().await.unwrap()).await;
    assert_eq!(rows[0]["link_status"], "linked");
    assert!(rows[0]["readings"].as_u64().unwrap() > 3000, "13 days of demo CGM: {}", rows[0]);
}

both_backends!(an_interrupted_demo_seed_is_completed);
async fn an_interrupted_demo_seed_is_completed(app: &TestApp) {
    use app::service::{auth, seed};
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    // A seed stopped after its first step: the patient account, nothing else.
    let now = app::service::now_ms();
    let hash = auth::hash_password(seed::DEMO_PATIENT_PASSWORD.into()).await.unwrap();
    let email = auth::Email::parse(seed::DEMO_PATIENT_EMAIL).unwrap();
    let user = auth::create_user(&app.state.db, &email, &hash, "Alex Demo", "patient", seed::DEMO_ZONE, true, now)
        .await
        .unwrap()
        .unwrap();
    let resumed = seed::seed_demo(&app.state, now).await.unwrap();
    assert!(resumed.created, "the missing steps ran");
    assert!(resumed.records > 25_000, "{} records", resumed.records);
    let patient = store::entity::patients::Entity::find()
        .filter(store::entity::patients::Column::UserId.eq(&user.id))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let records = store::entity::patient_records::Entity::find()
        .filter(store::entity::patient_records::Column::PatientId.eq(&patient.id))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(records, 1, "linked to the demo clinic once");
    let again = seed::seed_demo(&app.state, now).await.unwrap();
    assert!(!again.created && again.records == 0, "{again:?}");
    let uploads = store::entity::uploads::Entity::find()
        .filter(store::entity::uploads::Column::PatientId.eq(&patient.id))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(uploads, 1, "one pump upload");
}

both_backends!(record_inserts_are_idempotent);
async fn record_inserts_are_idempotent(app: &TestApp) {
    use store::records::{Batch, SourceRank, insert_records};
    let c = app.user("gil@example.org", "patient").await;
    let me = body(c.get(app.url("/api/v1/me")).send().await.unwrap()).await;
    let pid = me["patient_id"].as_str().unwrap().to_string();
    let data = devices::demo::generate(&devices::demo::DemoConfig::new(
        7,
        10,
        chrono::NaiveDate::from_ymd_opt(2025, 3, 31).unwrap(),
    ));
    let batch = Batch {
        patient_id: &pid,
        device_id: None,
        upload_id: None,
        rank: SourceRank::File,
        zone: chrono_tz::Europe::Berlin,
        clock_offset_s: 0,
    };
    let a = insert_records(&app.state.db, &batch, &data.records).await.unwrap();
    assert_eq!(a.total() as usize, data.records.len() - a.duplicates as usize);
    assert!(a.by_kind["cgm"] > 2500);
    let b = insert_records(&app.state.db, &batch, &data.records).await.unwrap();
    assert_eq!(b.total(), 0, "re-import adds nothing");
    assert_eq!(b.duplicates as usize, data.records.len());
    // An overlapping half adds nothing either.
    let half = &data.records[data.records.len() / 2..];
    assert_eq!(insert_records(&app.state.db, &batch, half).await.unwrap().total(), 0);
}

both_backends!(login_is_rate_limited);
async fn login_is_rate_limited(app: &TestApp) {
    let _ = app.user("hal@example.org", "patient").await;
    let c = app.client();
    let limit = app.state.config.login_limit_per_email;
    let mut last = 0;
    for _ in 0..limit + 1 {
        let r = c
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": "hal@example.org", "password": "wrong-wrong-wrong"}))
            .send()
            .await
            .unwrap();
        last = r.status().as_u16();
        if last == 429 {
            assert!(r.headers().get("retry-after").is_some());
            break;
        }
    }
    assert_eq!(last, 429);
    // Even the right password is refused until the window passes.
    let r = c
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "hal@example.org", "password": STRONG}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // An unknown email is limited the same way (no enumeration).
    let mut unknown_last = 0;
    for _ in 0..limit + 1 {
        unknown_last = c
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": "ghost@example.org", "password": "wrong-wrong-wrong"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
    }
    assert_eq!(unknown_last, 429);
}

both_backends!(idle_sessions_expire);
async fn idle_sessions_expire(app: &TestApp) {
    use sea_orm::{EntityTrait, sea_query::Expr};
    let a = app.user("ida@example.org", "patient").await;
    assert_eq!(a.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);
    let idle = app.state.config.session_idle_ms;
    store::entity::sessions::Entity::update_many()
        .col_expr(store::entity::sessions::Column::LastSeenMs, Expr::value(app::service::now_ms() - idle - 1000))
        .exec(&app.state.db)
        .await
        .unwrap();
    assert_eq!(a.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401);
}

both_backends!(audit_chain_detects_tampering);
async fn audit_chain_detects_tampering(app: &TestApp) {
    use sea_orm::ConnectionTrait;
    let _ = app.user("joe@example.org", "patient").await;
    let _ = app
        .client()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "joe@example.org", "password": "bad-bad-bad-bad"}))
        .send()
        .await
        .unwrap();
    match store::audit::verify(&app.state.db, &app.state.config.cipher.audit_key()).await.unwrap() {
        store::audit::Verdict::Intact { entries } => assert!(entries >= 2),
        other => panic!("{other:?}"),
    }
    app.state.db.execute_unprepared("UPDATE audit_log SET detail = 'edited' WHERE seq = 1").await.unwrap();
    assert!(matches!(
        store::audit::verify(&app.state.db, &app.state.config.cipher.audit_key()).await.unwrap(),
        store::audit::Verdict::Broken { seq: 1, .. }
    ));
}

#[tokio::test]
async fn unreachable_database_is_a_clear_error() {
    let r = server::build_state(
        "postgres://postgres@127.0.0.1:1/none",
        Default::default(),
        server::config::leptos_options("127.0.0.1:0".parse().unwrap(), std::path::Path::new(".")),
    )
    .await;
    assert!(r.is_err());
    let e = store::connect("mysql://x").await.unwrap_err().to_string();
    assert!(e.contains("sqlite://") && e.contains("postgres://"), "{e}");
    let _ = Backend::Sqlite;
}

/// The site's files (issue 21): hashed addresses kept a year, the build's
/// brotli and gzip copies sent as they are (never a copy older than its
/// file), fixed addresses revalidated, and every other answer compressed on
/// the fly for a client that accepts it.
mod site_files {
    use super::*;
    use common::TempDir;
    use std::io::Read;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(Backend::Postgres).await;
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        out
    }

    /// The first `{prefix}<16 hex digits>{ext}` in the page.
    fn hashed<'a>(html: &'a str, prefix: &str, ext: &str) -> &'a str {
        let len = prefix.len() + 16 + ext.len();
        html.match_indices(prefix)
            .filter_map(|(at, _)| html.get(at..at + len))
            .find(|n| n[prefix.len()..prefix.len() + 16].bytes().all(|b| b.is_ascii_hexdigit()) && n.ends_with(ext))
            .unwrap_or_else(|| panic!("{prefix}<hash>{ext} in the page:\n{html}"))
    }

    async fn run(backend: Backend) {
        let site = TempDir::new("site");
        let root = &site.0;
        std::fs::create_dir_all(root.join("pkg")).unwrap();
        let css = "body { color: #123456; margin: 0 auto; }\n".repeat(80);
        let wasm: Vec<u8> = b"\0asm\x01\0\0\0".iter().copied().chain((0..4000u32).map(|i| (i % 7) as u8)).collect();
        std::fs::write(root.join("pkg/diabase.css"), &css).unwrap();
        std::fs::write(root.join("pkg/diabase.js"), "export default function init() {}\n").unwrap();
        std::fs::write(root.join("pkg/diabase.wasm"), &wasm).unwrap();
        for f in ["echarts.min.js", "register-sw.js", "passkeys.js", "protected-pdf.js", "sw.js"] {
            std::fs::write(root.join(f), format!("/* {f} */\n")).unwrap();
        }
        // The build's copies: the server must send these bytes as they are.
        std::fs::write(root.join("pkg/diabase.css.br"), b"BROTLI-COPY").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &wasm).unwrap();
        let wasm_gz = gz.finish().unwrap();
        std::fs::write(root.join("pkg/diabase.wasm.gz"), &wasm_gz).unwrap();

        let Some(app) = TestApp::spawn_on_site(backend, app::service::Config::default(), root).await else { return };
        let c = app.client();
        let html = c.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
        let css_url = hashed(&html, "/pkg/diabase.", ".css").to_string();
        let js_url = hashed(&html, "/pkg/diabase.", ".js").to_string();
        // `_bg.wasm` when the server was not built by cargo-leptos (as here).
        let stem = js_url.trim_end_matches(".js");
        let wasm_url = [format!("{stem}.wasm"), format!("{stem}_bg.wasm")]
            .into_iter()
            .find(|u| html.contains(&format!("\"{u}\"")))
            .unwrap_or_else(|| panic!("the glue and the wasm share a hash ({stem}):\n{html}"));
        hashed(&html, "/echarts.min.", ".js");
        hashed(&html, "/register-sw.", ".js");
        assert!(!html.contains("\"/pkg/diabase.css\"") && !html.contains("\"/echarts.min.js\""), "no plain names");

        // A hashed file: kept a year; the build's brotli copy as it is.
        let r = c.get(app.url(&css_url)).header("accept-encoding", "br, gzip").send().await.unwrap();
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(h["content-encoding"], "br");
        assert_eq!(h["content-type"], "text/css");
        assert!(h["vary"].to_str().unwrap().to_ascii_lowercase().contains("accept-encoding"));
        assert_eq!(r.bytes().await.unwrap().as_ref(), b"BROTLI-COPY");
        // Without Accept-Encoding: the file itself.
        let r = c.get(app.url(&css_url)).send().await.unwrap();
        assert!(r.headers().get("content-encoding").is_none());
        assert_eq!(r.text().await.unwrap(), css);
        // The wasm's gzip copy, and its type for streaming compilation.
        let r = c.get(app.url(&wasm_url)).header("accept-encoding", "gzip").send().await.unwrap();
        assert_eq!(r.headers()["content-type"], "application/wasm");
        assert_eq!(r.headers()["content-encoding"], "gzip");
        assert_eq!(r.headers()["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(r.bytes().await.unwrap().as_ref(), &wasm_gz[..]);

        // A fixed address is revalidated; an unknown build is not found and not kept.
        let r = c.get(app.url("/sw.js")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-cache");
        let r = c.get(app.url("/pkg/diabase.0123456789abcdef.wasm")).send().await.unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let r = c.get(app.url("/pkg/diabase.css.br")).send().await.unwrap();
        assert_eq!(r.status(), 404, "a compressed copy has no address of its own");

        // A copy older than its file (rebuilt without compressing again) is
        // never sent: the file is compressed on the fly instead.
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options().write(true).open(root.join("pkg/diabase.css.br")).unwrap().set_modified(old).unwrap();
        let r = c.get(app.url(&css_url)).header("accept-encoding", "gzip").send().await.unwrap();
        assert_eq!(r.headers()["content-encoding"], "gzip");
        assert_eq!(gunzip(&r.bytes().await.unwrap()), css.as_bytes());
        let r = c.get(app.url(&css_url)).header("accept-encoding", "br").send().await.unwrap();
        assert_eq!(r.headers()["content-encoding"], "br");
        assert_ne!(r.bytes().await.unwrap().as_ref(), b"BROTLI-COPY", "the stale copy is not sent");

        // Pages and JSON are compressed on the fly and still never stored.
        let r = c.get(app.url("/login")).header("accept-encoding", "gzip").send().await.unwrap();
        assert_eq!(r.headers()["content-encoding"], "gzip");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert!(String::from_utf8(gunzip(&r.bytes().await.unwrap())).unwrap().contains("Diabase"));
        let r = c.get(app.url("/api/v1/openapi.json")).header("accept-encoding", "gzip").send().await.unwrap();
        assert_eq!(r.headers()["content-encoding"], "gzip");
        let doc: serde_json::Value = serde_json::from_slice(&gunzip(&r.bytes().await.unwrap())).unwrap();
        assert!(doc["paths"].is_object());
        app.finish().await;
    }
}
