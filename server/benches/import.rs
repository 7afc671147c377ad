//! Import of a 90-day CareLink export (25,920 rows, every one a distinct
//! 5-minute slot) into a fresh SQLite database, and its re-import (0 rows
//! added). Targets: < 300 ms and < 100 ms.
//!
//! Run: `cargo bench -p diabase --bench import`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::time::{Duration, Instant};

struct Fixture {
    state: app::service::AppState,
    patient_id: String,
    _dir: std::path::PathBuf,
}

async fn fresh() -> Fixture {
    let dir = std::env::temp_dir().join(format!("diabase-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}/b.sqlite?mode=rwc", dir.display());
    let opts = server::config::leptos_options("127.0.0.1:0".parse().expect("addr"), std::path::Path::new("."));
    let state = server::build_state(&url, Default::default(), opts).await.expect("state");
    let email = app::service::auth::Email::parse("bench@example.org").expect("email");
    let user = app::service::auth::create_user(&state.db, &email, "x", "Bench", "patient", "Europe/Berlin", true, 0)
        .await
        .expect("user")
        .expect("new user");
    let patient_id = app::service::policy::own_patient(&state, &user.id).await.expect("patient").expect("space").id;
    Fixture { state, patient_id, _dir: dir }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let csv = devices::import::synth::carelink_csv(90 * 288);
    let mut g = c.benchmark_group("import_carelink_90d_sqlite");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("fresh", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let f = rt.block_on(fresh());
                let start = Instant::now();
                let s = rt
                    .block_on(app::service::import::import_file(&f.state, None, &f.patient_id, "bench.csv", &csv, 1))
                    .expect("import");
                total += start.elapsed();
                assert!(s.records.values().sum::<u64>() > 20_000);
                let _ = std::fs::remove_dir_all(&f._dir);
            }
            total
        })
    });
    let f = rt.block_on(fresh());
    rt.block_on(app::service::import::import_file(&f.state, None, &f.patient_id, "bench.csv", &csv, 1))
        .expect("import");
    g.bench_function("reimport_adds_nothing", |b| {
        b.iter(|| {
            let s = rt
                .block_on(app::service::import::import_file(&f.state, None, &f.patient_id, "bench.csv", &csv, 2))
                .expect("import");
            assert_eq!(s.records.values().sum::<u64>(), 0);
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&f._dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
