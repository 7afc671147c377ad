//! The report service and the PDF on SQLite, with the demo patient's 90 days
//! of pump and CGM data (seeded into a fresh database file).
//!
//! Run: `cargo bench -p diabase --bench report`.

use app::service::{Config, report, seed};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = std::env::temp_dir().join(format!("diabase-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}/bench.sqlite?mode=rwc", dir.display());
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let opts = server::config::leptos_options(addr, &dir);
    let state = rt.block_on(server::build_state(&url, Config::default(), opts)).expect("state");
    let now = app::service::now_ms();
    rt.block_on(seed::seed_demo(&state, now)).expect("seed");
    let pid = rt
        .block_on(async {
            use sea_orm::EntityTrait;
            store::entity::patients::Entity::find().one(&state.db).await
        })
        .expect("query")
        .expect("the demo patient")
        .id;
    let newest = rt.block_on(report::overview(&state, None, &pid, None, None, now)).expect("overview").meta.to;
    let to: chrono::NaiveDate = newest.parse().expect("date");
    let days = |n: i64| Some(to - chrono::Duration::days(n - 1));

    let mut g = c.benchmark_group("report_sqlite");
    g.sample_size(20);
    g.bench_function("overview_14d", |b| {
        b.iter(|| rt.block_on(report::overview(&state, None, &pid, days(14), Some(to), now)).expect("ok"))
    });
    g.bench_function("overview_90d", |b| {
        b.iter(|| rt.block_on(report::overview(&state, None, &pid, days(90), Some(to), now)).expect("ok"))
    });
    g.bench_function("daily", |b| {
        b.iter(|| rt.block_on(report::daily(&state, None, &pid, Some(to), now)).expect("ok"))
    });
    g.bench_function("trends_14d", |b| {
        b.iter(|| rt.block_on(report::trends(&state, None, &pid, days(14), Some(to), now)).expect("ok"))
    });
    g.bench_function("logbook_14d", |b| {
        b.iter(|| rt.block_on(report::logbook(&state, None, &pid, days(14), Some(to), now)).expect("ok"))
    });
    g.bench_function("pdf_bundle_14d", |b| {
        b.iter(|| rt.block_on(report::bundle(&state, None, &pid, days(14), Some(to), now)).expect("ok"))
    });
    let b14 = rt.block_on(report::bundle(&state, None, &pid, days(14), Some(to), now)).expect("bundle");
    let b90 = rt.block_on(report::bundle(&state, None, &pid, days(90), Some(to), now)).expect("bundle");
    g.bench_function("pdf_render_14d", |b| b.iter(|| server::pdf::render_report_pdf(black_box(&b14))));
    g.bench_function("pdf_render_90d_31_pages", |b| b.iter(|| server::pdf::render_report_pdf(black_box(&b90))));
    g.bench_function("pdf_total_14d", |b| {
        b.iter(|| {
            let bundle = rt.block_on(report::bundle(&state, None, &pid, days(14), Some(to), now)).expect("ok");
            server::pdf::render_report_pdf(&bundle)
        })
    });
    g.finish();
    eprintln!(
        "PDF sizes: 14 days {} bytes, 90 days (31 daily pages) {} bytes",
        server::pdf::render_report_pdf(&b14).len(),
        server::pdf::render_report_pdf(&b90).len()
    );
    drop(state);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
