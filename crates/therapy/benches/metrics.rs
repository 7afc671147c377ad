//! `glucose_report` on 90 days of 5-minute CGM data (25,920 readings),
//! generated deterministically: a daily curve plus pseudo-random noise and a
//! few seconds of clock jitter, in Europe/Berlin across the March DST change.
//!
//! Run: `cargo bench -p therapy --bench metrics`.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use therapy::metrics::{Reading, ReportInput, glucose_report};

const DAYS: i64 = 90;

/// xorshift64*: a small deterministic generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

fn synthetic(zone: Tz, from: NaiveDate) -> Vec<Reading> {
    let start: DateTime<Utc> = zone
        .from_local_datetime(&from.and_hms_opt(0, 0, 0).expect("midnight"))
        .earliest()
        .expect("local midnight")
        .with_timezone(&Utc);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut level = 0.0f64;
    (0..DAYS * 288)
        .map(|i| {
            let hour = (i % 288) as f64 / 12.0;
            let daily = 140.0 + 45.0 * (std::f64::consts::TAU * (hour - 9.0) / 24.0).sin();
            level = 0.9 * level + 18.0 * rng.unit(); // slowly wandering noise
            let value = (daily + level).clamp(40.0, 400.0).round() as u16;
            let jitter = (rng.next() % 7) as i64 - 3;
            Reading { time: start + Duration::seconds(i * 300 + jitter), value_mg_dl: value }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let zone: Tz = "Europe/Berlin".parse().expect("zone");
    let from = NaiveDate::from_ymd_opt(2024, 2, 15).expect("date");
    let to = from + Duration::days(DAYS - 1);
    let readings = synthetic(zone, from);
    let input = ReportInput::new(&readings, zone, from, to);
    let r = glucose_report(&input);
    assert_eq!(r.readings, readings.len() - 12, "the DST day drops one hour of the 90×288");

    let mut g = c.benchmark_group("glucose_report");
    g.throughput(Throughput::Elements(readings.len() as u64));
    g.bench_function("90d_5min_sorted", |b| b.iter(|| glucose_report(black_box(&input))));
    let mut shuffled = readings.clone();
    shuffled.reverse();
    let unsorted = ReportInput::new(&shuffled, zone, from, to);
    g.bench_function("90d_5min_reversed", |b| b.iter(|| glucose_report(black_box(&unsorted))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
