//! The clinic dashboard on SQLite: a clinic with 1,000 linked patients, each
//! with 14 days of 5-minute CGM data kept as per-day sums (as import keeps
//! them). Measures one dashboard request: every row's figures, decrypting
//! names and MRNs, sorting and filtering, one page, and the audit entries of
//! the rows shown.
//!
//! Run: `cargo bench -p diabase --bench clinic`.

use app::service::{Actor, AuthVia, Config, clinic};
use chrono::{Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use store::entity::{clinic_members, clinics, daily_glucose, grants, patient_records, patients, users};
use therapy::metrics::Reading;
use therapy::metrics::daily::day_sums;

const PATIENTS: usize = 1_000;

fn readings(seed: usize, now: chrono::DateTime<Utc>) -> Vec<Reading> {
    let start = now - Duration::days(14);
    (0..14 * 288)
        .map(|i| Reading {
            time: start + Duration::minutes(5 * i as i64),
            value_mg_dl: (150.0 + ((i as f64 + seed as f64 * 7.0) / 15.0).sin() * (60.0 + (seed % 50) as f64)) as u16,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = std::env::temp_dir().join(format!("diabase-bench-clinic-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}/bench.sqlite?mode=rwc", dir.display());
    let opts = server::config::leptos_options("127.0.0.1:0".parse().expect("addr"), &dir);
    let state = rt.block_on(server::build_state(&url, Config::default(), opts)).expect("state");
    let now_ms = app::service::now_ms();
    let now = Utc.timestamp_millis_opt(now_ms).single().expect("now");
    let (actor, clinic_id) = rt.block_on(async {
        let user = bench_user("clinician", "bench@clinic.example", "Bench", "clinician", now_ms)
            .insert(&state.db)
            .await
            .expect("user");
        clinics::ActiveModel {
            id: Set("clinic".into()),
            name: Set("Bench Clinic".into()),
            created_ms: Set(now_ms),
            require_2fa: Set(false),
            share_code: Set(None),
        }
        .insert(&state.db)
        .await
        .expect("clinic");
        clinic_members::ActiveModel {
            clinic_id: Set("clinic".into()),
            user_id: Set(user.id.clone()),
            role: Set("admin".into()),
            created_ms: Set(now_ms),
        }
        .insert(&state.db)
        .await
        .expect("member");
        let cipher = &state.config.cipher;
        for i in 0..PATIENTS {
            let pid = format!("patient-{i:04}");
            let uid = format!("user-{i:04}");
            bench_user(&uid, &format!("p{i}@bench.example"), &format!("Patient {i}"), "patient", now_ms)
                .insert(&state.db)
                .await
                .expect("patient user");
            patients::ActiveModel {
                id: Set(pid.clone()),
                user_id: Set(Some(uid)),
                display_name: Set(format!("Patient {i}")),
                time_zone: Set("UTC".into()),
                created_ms: Set(now_ms),
            }
            .insert(&state.db)
            .await
            .expect("patient");
            let gid = format!("grant-{i:04}");
            grants::ActiveModel {
                id: Set(gid.clone()),
                patient_id: Set(pid.clone()),
                grantee_clinic_id: Set(Some("clinic".into())),
                grantee_user_id: Set(None),
                record_id: Set(Some(format!("record-{i:04}"))),
                invite_email: Set(None),
                invite_token_hash: Set(None),
                invite_expires_ms: Set(None),
                scopes: Set("glucose,insulin,settings,events".into()),
                created_ms: Set(now_ms),
                updated_ms: Set(now_ms),
                accepted_ms: Set(Some(now_ms)),
                expires_ms: Set(None),
                revoked_ms: Set(None),
                paused_ms: Set(None),
                provider_name: Set(None),
                provider_clinic: Set(None),
            }
            .insert(&state.db)
            .await
            .expect("grant");
            patient_records::ActiveModel {
                id: Set(format!("record-{i:04}")),
                clinic_id: Set("clinic".into()),
                patient_id: Set(pid.clone()),
                name: Set(cipher.seal(&format!("Patient {i}"))),
                birth_date: Set(Some(cipher.seal("1980-01-01"))),
                mrn: Set(Some(cipher.seal(&format!("MRN-{i:05}")))),
                linked_user: Set(1),
                created_ms: Set(now_ms),
                mrn_index: Set(Some(cipher.index("clinic", &format!("MRN-{i:05}")))),
                grant_id: Set(Some(gid)),
                created_by: Set(None),
                link_state: Set("linked".into()),
            }
            .insert(&state.db)
            .await
            .expect("record");
            let today = now.date_naive();
            let sums = day_sums(&readings(i, now), chrono_tz::UTC, today - Duration::days(14), today, 5);
            let rows: Vec<daily_glucose::ActiveModel> = sums
                .iter()
                .map(|d| daily_glucose::ActiveModel {
                    patient_id: Set(pid.clone()),
                    day: Set(d.day.to_string()),
                    readings: Set(d.readings as i32),
                    slots: Set(d.slots as i32),
                    expected: Set(d.expected as i32),
                    sum_mg_dl: Set(d.sum_mg_dl as i64),
                    sum_sq_mg_dl: Set(d.sum_sq_mg_dl as i64),
                    very_low: Set(d.very_low as i32),
                    low: Set(d.low as i32),
                    in_range: Set(d.in_range as i32),
                    high: Set(d.high as i32),
                    very_high: Set(d.very_high as i32),
                })
                .collect();
            daily_glucose::Entity::insert_many(rows).exec_without_returning(&state.db).await.expect("days");
        }
        (Actor { user, via: AuthVia::Session(String::new()) }, "clinic".to_string())
    });
    let query = clinic::PatientQuery::default();
    let first = rt.block_on(clinic::dashboard(&state, &actor, &clinic_id, &query, now_ms)).expect("dashboard");
    assert_eq!(first.total as usize, PATIENTS);
    assert!(first.rows[0].readings > 3_000, "figures present");
    let triage = clinic::PatientQuery {
        sort: Some("below_54".into()),
        order: Some("desc".into()),
        filter: Some("flagged".into()),
        ..Default::default()
    };

    let mut g = c.benchmark_group("clinic_dashboard_sqlite_1000_patients");
    g.sample_size(20);
    g.bench_function("page_by_name", |b| {
        b.iter(|| rt.block_on(clinic::dashboard(&state, &actor, &clinic_id, &query, now_ms)).expect("ok"))
    });
    g.bench_function("triage_sorted_filtered", |b| {
        b.iter(|| rt.block_on(clinic::dashboard(&state, &actor, &clinic_id, &triage, now_ms)).expect("ok"))
    });
    g.finish();
    drop(state);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);

/// A user row with no password (the benchmark never logs in).
fn bench_user(id: &str, email: &str, name: &str, role: &str, now_ms: i64) -> users::ActiveModel {
    users::ActiveModel {
        id: Set(id.into()),
        email: Set(email.into()),
        password_hash: Set(String::new()),
        display_name: Set(name.into()),
        role: Set(role.into()),
        glucose_unit: Set("mg/dL".into()),
        time_zone: Set("UTC".into()),
        created_ms: Set(now_ms),
        updated_ms: Set(now_ms),
        password_changed_ms: Set(now_ms),
        email_verified_ms: Set(Some(now_ms)),
        language: Set(None),
    }
}
