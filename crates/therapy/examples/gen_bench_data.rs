//! Writes the benchmark's 90 days of 5-minute CGM data (the same series as
//! `benches/metrics.rs`: a daily curve, wandering noise and a few seconds of
//! clock jitter, Europe/Berlin across the March DST change) to a CSV that
//! peer implementations read: `time_ms,time_utc,local_minute,glucose`.
//!
//! `cargo run --release -p therapy --example gen_bench_data -- [OUT.csv]`
//! (default `target/bench/metrics_90d.csv`). Prints the window as JSON.

use chrono::{DateTime, Duration, NaiveDate, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use std::io::Write;

const DAYS: i64 = 90;

/// xorshift64*: a small deterministic generator (as in the criterion bench).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

fn main() -> std::io::Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "target/bench/metrics_90d.csv".into());
    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir)?;
    }
    let zone: Tz = "Europe/Berlin".parse().map_err(std::io::Error::other)?;
    let from = NaiveDate::from_ymd_opt(2024, 2, 15).ok_or_else(|| std::io::Error::other("date"))?;
    let to = from + Duration::days(DAYS - 1);
    let start: DateTime<Utc> = zone
        .from_local_datetime(&from.and_hms_opt(0, 0, 0).ok_or_else(|| std::io::Error::other("midnight"))?)
        .earliest()
        .ok_or_else(|| std::io::Error::other("local midnight"))?
        .with_timezone(&Utc);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut level = 0.0f64;
    let mut w = std::io::BufWriter::new(std::fs::File::create(&out)?);
    writeln!(w, "time_ms,time_utc,local_minute,glucose")?;
    let mut n = 0;
    for i in 0..DAYS * 288 {
        let hour = (i % 288) as f64 / 12.0;
        let daily = 140.0 + 45.0 * (std::f64::consts::TAU * (hour - 9.0) / 24.0).sin();
        level = 0.9 * level + 18.0 * rng.unit();
        let value = (daily + level).clamp(40.0, 400.0).round() as u16;
        let jitter = (rng.next() % 7) as i64 - 3;
        let t = start + Duration::seconds(i * 300 + jitter);
        let local = t.with_timezone(&zone);
        let _ = local.offset().fix();
        let minute = local.hour() * 60 + local.minute();
        writeln!(w, "{},{},{minute},{value}", t.timestamp_millis(), t.format("%Y-%m-%dT%H:%M:%SZ"))?;
        n += 1;
    }
    w.flush()?;
    // The report window: local midnight of `from` to local midnight after `to`.
    let (ws, we) = therapy::metrics::window_utc(zone, from, to).ok_or_else(|| std::io::Error::other("window"))?;
    println!(
        "{{\"file\": \"{out}\", \"readings\": {n}, \"zone\": \"{}\", \"from\": \"{from}\", \"to\": \"{to}\", \"start_ms\": {}, \"end_ms\": {}}}",
        zone.name(),
        ws.timestamp_millis(),
        we.timestamp_millis()
    );
    Ok(())
}
