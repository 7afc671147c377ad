//! Property tests: `glucose_report` never panics and its output is coherent
//! on arbitrary readings, windows, zones, intervals and bin widths.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use therapy::metrics::{GlucoseReport, Reading, ReportInput, glucose_report, window_utc};

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Sao_Paulo",
    "America/St_Johns",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "Pacific/Kiritimati",
    "Pacific/Chatham",
];

fn date_strategy() -> impl Strategy<Value = NaiveDate> {
    let min = NaiveDate::MIN.num_days_from_ce();
    let max = NaiveDate::MAX.num_days_from_ce();
    let lo = NaiveDate::from_ymd_opt(1900, 1, 1).expect("date").num_days_from_ce();
    let hi = NaiveDate::from_ymd_opt(2100, 1, 1).expect("date").num_days_from_ce();
    prop_oneof![
        8 => lo..hi,
        1 => min..=max,
        1 => prop_oneof![Just(min), Just(max)],
    ]
    .prop_map(|d| NaiveDate::from_num_days_from_ce_opt(d).expect("in range"))
}

/// Readings around the window: offsets in seconds from the window's start,
/// some at 5-minute steps (dense), some anywhere; values any u16 but mostly
/// physiological.
fn readings_strategy() -> impl Strategy<Value = Vec<(i64, u16)>> {
    let value = prop_oneof![8 => 30u16..450, 1 => any::<u16>()];
    let offset = prop_oneof![
        4 => (-300i64..3000).prop_map(|k| k * 300),
        2 => -200_000i64..5_000_000,
        1 => any::<i64>(),
    ];
    prop::collection::vec((offset, value), 0..1500)
}

fn build(zone: Tz, from: NaiveDate, raw: &[(i64, u16)]) -> Vec<Reading> {
    let base = window_utc(zone, from, from).map(|(s, _)| s).unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    raw.iter()
        .map(|&(off, v)| {
            let time = Duration::try_seconds(off).and_then(|d| base.checked_add_signed(d)).unwrap_or(if off < 0 {
                DateTime::<Utc>::MIN_UTC
            } else {
                DateTime::<Utc>::MAX_UTC
            });
            Reading { time, value_mg_dl: v }
        })
        .collect()
}

fn check_coherent(r: &GlucoseReport, total: usize) -> Result<(), TestCaseError> {
    prop_assert!(r.readings <= total);
    let fields = [
        r.mean_mg_dl,
        r.sd_mg_dl,
        r.gmi_percent,
        r.cgm_active_percent,
        r.very_low_percent,
        r.low_percent,
        r.in_range_percent,
        r.high_percent,
        r.very_high_percent,
        r.gri,
    ];
    if r.readings == 0 {
        prop_assert!(fields.iter().all(Option::is_none));
        prop_assert!(r.agp.is_empty() && r.hypo_episodes.is_empty() && !r.sufficient);
        return Ok(());
    }
    prop_assert!(fields.iter().all(|f| f.is_some_and(f64::is_finite)));
    let sum: f64 = [r.very_low_percent, r.low_percent, r.in_range_percent, r.high_percent, r.very_high_percent]
        .iter()
        .map(|p| p.unwrap_or(0.0))
        .sum();
    prop_assert!((sum - 100.0).abs() < 1e-6, "ranges sum to {}", sum);
    let active = r.cgm_active_percent.unwrap_or(-1.0);
    prop_assert!((0.0..=100.0).contains(&active));
    let gri = r.gri.unwrap_or(-1.0);
    prop_assert!((0.0..=100.0).contains(&gri));
    prop_assert!(r.sd_mg_dl.unwrap_or(-1.0) >= 0.0);
    prop_assert!(!r.sufficient || (r.days >= 14 && active >= 70.0));
    // AGP: bins ascending, inside the day, percentiles ordered, every reading once.
    prop_assert!(r.agp.windows(2).all(|w| w[0].minute < w[1].minute));
    prop_assert!(r.agp.iter().all(|b| b.minute < 1440 && b.minute % r.agp_bin_min == 0 && b.n > 0));
    prop_assert!(r.agp.iter().all(|b| b.p5 <= b.p25 && b.p25 <= b.p50 && b.p50 <= b.p75 && b.p75 <= b.p95));
    prop_assert_eq!(r.agp.iter().map(|b| b.n as usize).sum::<usize>(), r.readings);
    let mean = r.mean_mg_dl.unwrap_or(f64::NAN);
    let lo = r.agp.iter().map(|b| b.p5).fold(f64::INFINITY, f64::min);
    let hi = r.agp.iter().map(|b| b.p95).fold(f64::NEG_INFINITY, f64::max);
    prop_assert!(lo <= hi && (0.0..=65535.0).contains(&lo) && hi <= 65535.0 && (0.0..=65535.0).contains(&mean));
    // Episodes: in order, at least 15 minutes, minimum below 54.
    prop_assert_eq!(r.hypo_episode_count, r.hypo_episodes.len());
    prop_assert!(r.hypo_episodes.iter().all(|e| e.end - e.start >= Duration::minutes(15) && e.min_mg_dl < 54));
    prop_assert!(r.hypo_episodes.windows(2).all(|w| w[0].end <= w[1].start));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn never_panics_and_is_coherent(
        zone_i in 0..ZONES.len(),
        from in date_strategy(),
        span in -3i64..60,
        raw in readings_strategy(),
        interval in prop_oneof![4 => Just(5u32), 1 => any::<u32>(), 1 => 0u32..30],
        bin in prop_oneof![4 => Just(15u32), 1 => any::<u32>(), 1 => 0u32..200],
    ) {
        let zone: Tz = ZONES[zone_i].parse().expect("zone");
        let to = from.checked_add_signed(Duration::days(span)).unwrap_or(from);
        let readings = build(zone, from, &raw);
        let input = ReportInput { readings: &readings, zone, from, to, sensor_interval_min: interval, agp_bin_min: bin };
        let r = glucose_report(&input);
        check_coherent(&r, readings.len())?;
        // JSON round trip: no NaN or infinity anywhere (serde_json would write
        // null, which an f64 AGP field cannot read back). serde_json's default
        // float parsing may differ in the last bit, so compare approximately.
        let json = serde_json::to_string(&r).expect("serialize");
        let back: GlucoseReport = serde_json::from_str(&json).expect("deserialize");
        prop_assert_eq!((back.readings, back.agp.len(), back.hypo_episodes.len()), (r.readings, r.agp.len(), r.hypo_episodes.len()));
        let near = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
            (a, b) => a == b,
        };
        prop_assert!(near(back.cv_percent, r.cv_percent) && near(back.mean_mg_dl, r.mean_mg_dl) && near(back.gri, r.gri));
        // Sorting the input first changes nothing.
        let mut sorted = readings.clone();
        sorted.sort_by_key(|r| r.time);
        let r2 = glucose_report(&ReportInput { readings: &sorted, ..input });
        prop_assert_eq!(r2, r);
    }
}
