//! Times `glucose_report` on the CSV written by `gen_bench_data` and prints
//! the figures and the mean time as JSON, for `bench/metrics_peer.py`.
//!
//! `cargo run --release -p therapy --example metrics_timing -- FILE.csv [RUNS]`
//! The time covers the report only (the CSV is read once, before).

use chrono::{DateTime, NaiveDate};
use std::time::Instant;
use therapy::metrics::{Reading, ReportInput, glucose_report};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let file = args.next().unwrap_or_else(|| "target/bench/metrics_90d.csv".into());
    let runs: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(200);
    let text = std::fs::read_to_string(&file)?;
    let mut readings = Vec::new();
    for line in text.lines().skip(1) {
        let mut f = line.split(',');
        let (Some(ms), _, _, Some(v)) = (f.next(), f.next(), f.next(), f.next()) else { continue };
        let time = DateTime::from_timestamp_millis(ms.parse()?).ok_or("bad time")?;
        readings.push(Reading { time, value_mg_dl: v.trim().parse()? });
    }
    let zone = "Europe/Berlin".parse().map_err(|e| format!("{e}"))?;
    let from = NaiveDate::from_ymd_opt(2024, 2, 15).ok_or("date")?;
    let to = from + chrono::Duration::days(89);
    let input = ReportInput::new(&readings, zone, from, to);
    let report = glucose_report(&input);
    // Warm up, then time.
    for _ in 0..runs.min(20) {
        std::hint::black_box(glucose_report(std::hint::black_box(&input)));
    }
    let t0 = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(glucose_report(std::hint::black_box(&input)));
    }
    let mean_ms = t0.elapsed().as_secs_f64() * 1000.0 / f64::from(runs.max(1));
    let agp_noon = report.agp.iter().find(|b| b.minute == 720);
    println!(
        "{}",
        serde_json::json!({
            "impl": "diabase (Rust, therapy::metrics::glucose_report)",
            "runs": runs,
            "mean_ms": mean_ms,
            "readings": report.readings,
            "mean": report.mean_mg_dl,
            "sd": report.sd_mg_dl,
            "cv": report.cv_percent,
            "gmi": report.gmi_percent,
            "active": report.cgm_active_percent,
            "very_low": report.very_low_percent,
            "low": report.low_percent,
            "in_range": report.in_range_percent,
            "high": report.high_percent,
            "very_high": report.very_high_percent,
            "gri": report.gri,
            "agp_bins": report.agp.len(),
            "agp_noon": agp_noon.map(|b| [b.p5, b.p25, b.p50, b.p75, b.p95]),
        })
    );
    Ok(())
}
