//! Hand-computed cases for [`glucose_report`].

use super::*;
use chrono::{NaiveDateTime, TimeZone};

fn tz(name: &str) -> Tz {
    name.parse().unwrap()
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// `count` readings every `step_s` seconds from the UTC instant `start`.
fn series(start: DateTime<Utc>, step_s: i64, values: impl IntoIterator<Item = u16>) -> Vec<Reading> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| Reading { time: start + Duration::seconds(step_s * i as i64), value_mg_dl: v })
        .collect()
}

/// Local midnight of `d` in `z`, as UTC.
fn midnight(z: Tz, d: &str) -> DateTime<Utc> {
    let naive: NaiveDateTime = date(d).and_hms_opt(0, 0, 0).unwrap();
    z.from_local_datetime(&naive).earliest().unwrap().with_timezone(&Utc)
}

fn report(readings: &[Reading], z: Tz, from: &str, to: &str) -> GlucoseReport {
    glucose_report(&ReportInput::new(readings, z, date(from), date(to)))
}

fn close(a: Option<f64>, b: f64) {
    let a = a.expect("value present");
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

#[test]
fn empty_window_is_all_none() {
    let z = tz("Europe/Berlin");
    let r = report(&[], z, "2024-05-01", "2024-05-14");
    assert_eq!(r.readings, 0);
    assert_eq!(r.days, 14);
    for v in [
        r.mean_mg_dl,
        r.sd_mg_dl,
        r.cv_percent,
        r.gmi_percent,
        r.cgm_active_percent,
        r.very_low_percent,
        r.low_percent,
        r.in_range_percent,
        r.high_percent,
        r.very_high_percent,
        r.gri,
        r.gri_hypo,
        r.gri_hyper,
    ] {
        assert_eq!(v, None);
    }
    assert!(r.agp.is_empty());
    assert!(r.hypo_episodes.is_empty());
    assert!(!r.sufficient);

    // Readings only outside the window count as none.
    let outside = series(utc("2024-04-30T21:00:00Z"), 300, [100; 12]);
    let r = report(&outside, z, "2024-05-01", "2024-05-01");
    assert_eq!(r.readings, 0);
    assert_eq!(r.mean_mg_dl, None);

    // to < from: an empty window of zero days.
    let r = report(&outside, z, "2024-05-02", "2024-05-01");
    assert_eq!((r.readings, r.days), (0, 0));
}

#[test]
fn one_reading() {
    let z = tz("Europe/Berlin");
    // 08:07 local (summer time, UTC+2).
    let rs = [Reading { time: utc("2024-07-01T06:07:00Z"), value_mg_dl: 150 }];
    let r = report(&rs, z, "2024-07-01", "2024-07-01");
    assert_eq!(r.readings, 1);
    assert_eq!(r.days, 1);
    close(r.mean_mg_dl, 150.0);
    close(r.sd_mg_dl, 0.0);
    close(r.cv_percent, 0.0);
    close(r.gmi_percent, 3.31 + 0.02392 * 150.0);
    close(r.cgm_active_percent, 100.0 / 288.0);
    close(r.in_range_percent, 100.0);
    close(r.very_low_percent, 0.0);
    close(r.gri, 0.0);
    assert_eq!(r.agp.len(), 1);
    let b = r.agp[0];
    assert_eq!(b.minute, 8 * 60);
    assert_eq!((b.p5, b.p25, b.p50, b.p75, b.p95, b.n), (150.0, 150.0, 150.0, 150.0, 150.0, 1));
}

#[test]
fn mean_sd_cv_gmi_by_hand() {
    let z = tz("UTC");
    let rs = series(utc("2024-01-01T00:00:00Z"), 300, [100, 200, 100, 200]);
    let r = report(&rs, z, "2024-01-01", "2024-01-01");
    close(r.mean_mg_dl, 150.0);
    close(r.sd_mg_dl, 50.0); // population SD (the sample SD would be 57.735)
    close(r.cv_percent, 100.0 / 3.0);
    close(r.gmi_percent, 6.898);
}

#[test]
fn range_boundaries_on_integers() {
    let z = tz("UTC");
    let rs = series(utc("2024-01-01T00:00:00Z"), 300, [53, 54, 69, 70, 180, 181, 250, 251]);
    let r = report(&rs, z, "2024-01-01", "2024-01-01");
    close(r.very_low_percent, 12.5); // 53
    close(r.low_percent, 25.0); // 54, 69
    close(r.in_range_percent, 25.0); // 70, 180
    close(r.high_percent, 25.0); // 181, 250
    close(r.very_high_percent, 12.5); // 251
    // 3·12.5 + 2.4·25 + 1.6·12.5 + 0.8·25 = 137.5, capped at 100.
    close(r.gri, 100.0);
    close(r.gri_hypo, 12.5 + 0.8 * 25.0);
    close(r.gri_hyper, 12.5 + 0.5 * 25.0);

    // Uncapped GRI: 10 readings, 1 low (54), 2 high (200), 1 very high (300), 6 in range.
    let rs = series(utc("2024-01-01T00:00:00Z"), 300, [54, 200, 200, 300, 100, 100, 100, 100, 100, 100]);
    let r = report(&rs, z, "2024-01-01", "2024-01-01");
    // 2.4·10 + 1.6·10 + 0.8·20 = 56
    close(r.gri, 56.0);
    // Extremes of u16 land in the outer ranges.
    let rs = series(utc("2024-01-01T00:00:00Z"), 300, [0, u16::MAX]);
    let r = report(&rs, z, "2024-01-01", "2024-01-01");
    close(r.very_low_percent, 50.0);
    close(r.very_high_percent, 50.0);
}

#[test]
fn cgm_active_counts_gaps_duplicates_and_jitter() {
    let z = tz("UTC");
    let day = utc("2024-01-01T00:00:00Z");
    // Twelve hours of a one-day window.
    let half = series(day, 300, vec![120; 144]);
    let r = report(&half, z, "2024-01-01", "2024-01-01");
    close(r.cgm_active_percent, 50.0);
    // The same readings twice (two sources): still 50 %, though 288 readings count in the stats.
    let mut twice = half.clone();
    twice.extend(half.iter().map(|r| Reading { time: r.time + Duration::seconds(20), ..*r }));
    let r = report(&twice, z, "2024-01-01", "2024-01-01");
    assert_eq!(r.readings, 288);
    close(r.cgm_active_percent, 50.0);
    // A full day, every reading duplicated: 100 %, not 200 %.
    let full = series(day, 300, vec![120; 288]);
    let mut dup = full.clone();
    dup.extend_from_slice(&full);
    let r = report(&dup, z, "2024-01-01", "2024-01-01");
    close(r.cgm_active_percent, 100.0);
    // Clock jitter around the 5-minute grid (±50 s) loses nothing.
    let jitter: Vec<Reading> = full
        .iter()
        .enumerate()
        .map(|(i, r)| Reading {
            time: r.time + Duration::seconds(if i % 2 == 0 { 50 } else { -50 }).max(Duration::zero()),
            ..*r
        })
        .collect();
    let r = report(&jitter, z, "2024-01-01", "2024-01-01");
    close(r.cgm_active_percent, 100.0);
    // A faster cadence (every minute) is capped at 100.
    let fast = series(day, 60, vec![120; 1440]);
    close(report(&fast, z, "2024-01-01", "2024-01-01").cgm_active_percent, 100.0);
    // Two days of window, one day of data.
    close(report(&full, z, "2024-01-01", "2024-01-02").cgm_active_percent, 50.0);
    // A 15-minute sensor: 96 readings expected per day.
    let libre = series(day, 900, vec![120; 48]);
    let mut input = ReportInput::new(&libre, z, date("2024-01-01"), date("2024-01-01"));
    input.sensor_interval_min = 15;
    close(glucose_report(&input).cgm_active_percent, 50.0);
}

#[test]
fn dst_days_in_berlin() {
    let z = tz("Europe/Berlin");
    // Spring forward, 2024-03-31: 23 h, 23 × 12 = 276 readings expected.
    let start = midnight(z, "2024-03-31");
    let spring = series(start, 300, vec![100; 276]);
    let r = report(&spring, z, "2024-03-31", "2024-03-31");
    assert_eq!(r.readings, 276);
    close(r.cgm_active_percent, 100.0);
    close(report(&spring[..138], z, "2024-03-31", "2024-03-31").cgm_active_percent, 50.0);
    // Local 02:00–02:59 does not exist: four 15-minute AGP bins are empty.
    assert_eq!(r.agp.len(), 92);
    assert!(r.agp.iter().all(|b| !(120..180).contains(&b.minute)));
    assert!(r.agp.iter().all(|b| b.n == 3));
    // Readings beyond the 23 h belong to the next day.
    let more = series(start, 300, vec![100; 288]);
    assert_eq!(report(&more, z, "2024-03-31", "2024-03-31").readings, 276);

    // Fall back, 2024-10-27: 25 h, 25 × 12 = 300 readings expected.
    let start = midnight(z, "2024-10-27");
    let fall = series(start, 300, vec![100; 300]);
    let r = report(&fall, z, "2024-10-27", "2024-10-27");
    assert_eq!(r.readings, 300);
    close(r.cgm_active_percent, 100.0);
    close(report(&fall[..150], z, "2024-10-27", "2024-10-27").cgm_active_percent, 50.0);
    // Local 02:00–02:59 happened twice: those bins hold six readings.
    assert_eq!(r.agp.len(), 96);
    for b in &r.agp {
        let want = if (120..180).contains(&b.minute) { 6 } else { 3 };
        assert_eq!(b.n, want, "bin {}", b.minute);
    }

    // A week spanning the change: 7 × 288 − 12 expected.
    let start = midnight(z, "2024-03-28");
    let week = series(start, 300, vec![100; 7 * 288 - 12]);
    let r = report(&week, z, "2024-03-28", "2024-04-03");
    close(r.cgm_active_percent, 100.0);
    assert_eq!(r.days, 7);
}

#[test]
fn agp_percentiles_interpolate_like_numpy() {
    let z = tz("Europe/Berlin");
    // 08:00 local on four days (UTC+2 in July) with values 100, 110, 130, 170,
    // in scrambled order; numpy.percentile(x, [5, 25, 50, 75, 95]) =
    // 101.5, 107.5, 120, 140, 164.
    let rs: Vec<Reading> = [(1, 170), (2, 100), (3, 130), (4, 110)]
        .iter()
        .map(|&(d, v)| Reading { time: utc(&format!("2024-07-0{d}T06:00:00Z")), value_mg_dl: v })
        .collect();
    let r = report(&rs, z, "2024-07-01", "2024-07-04");
    assert_eq!(r.agp.len(), 1);
    let b = r.agp[0];
    assert_eq!(b.minute, 480);
    assert_eq!(b.n, 4);
    for (got, want) in [b.p5, b.p25, b.p50, b.p75, b.p95].iter().zip([101.5, 107.5, 120.0, 140.0, 164.0]) {
        assert!((got - want).abs() < 1e-9, "{b:?}");
    }
}

#[test]
fn agp_bins_follow_the_bin_width() {
    let z = tz("UTC");
    let full = series(utc("2024-01-01T00:00:00Z"), 300, (0..288).map(|i| 100 + i as u16));
    let mut input = ReportInput::new(&full, z, date("2024-01-01"), date("2024-01-01"));
    let r = glucose_report(&input);
    assert_eq!(r.agp.len(), 96);
    assert_eq!(r.agp[1].minute, 15);
    assert_eq!(r.agp[1].n, 3);
    // bin 00:15: readings 103, 104, 105
    assert_eq!((r.agp[1].p5, r.agp[1].p50, r.agp[1].p95), (103.1, 104.0, 104.9));
    input.agp_bin_min = 60;
    let r = glucose_report(&input);
    assert_eq!(r.agp.len(), 24);
    assert_eq!(r.agp[23].minute, 23 * 60);
    assert_eq!(r.agp_bin_min, 60);
    // A width that does not divide the day: the last bin is short.
    input.agp_bin_min = 7;
    let r = glucose_report(&input);
    assert_eq!(r.agp.last().unwrap().minute, 1435);
    assert_eq!(r.agp.iter().map(|b| b.n).sum::<u32>(), 288);
    // Zero is clamped to one minute; more than a day to one bin.
    input.agp_bin_min = 0;
    assert_eq!(glucose_report(&input).agp.len(), 288);
    input.agp_bin_min = 10_000;
    let r = glucose_report(&input);
    assert_eq!(r.agp.len(), 1);
    assert_eq!(r.agp_bin_min, 1440);
    // numpy.percentile(range(100, 388), 5) = 114.35
    assert!((r.agp[0].p5 - 114.35).abs() < 1e-9);
}

#[test]
fn unsorted_input_gives_the_same_report() {
    let z = tz("America/New_York");
    let mut rs = series(utc("2024-03-09T05:00:00Z"), 300, (0..900).map(|i| (40 + (i * 37) % 300) as u16));
    let sorted = report(&rs, z, "2024-03-09", "2024-03-11");
    // Out of order only inside the window (found by the time pass)…
    let mut inside = rs.clone();
    inside.swap(400, 401);
    assert_eq!(report(&inside, z, "2024-03-09", "2024-03-11"), sorted);
    // …only before it, or only after it (found by the check around the window).
    let mut before = rs.clone();
    before.insert(0, Reading { time: utc("2024-03-20T00:00:00Z"), value_mg_dl: 100 });
    assert_eq!(report(&before, z, "2024-03-09", "2024-03-11"), sorted);
    let mut after = rs.clone();
    after.push(Reading { time: utc("2024-03-09T12:00:00Z"), value_mg_dl: 400 });
    let with_extra = report(&after, z, "2024-03-09", "2024-03-11");
    assert_eq!(with_extra.readings, sorted.readings + 1);
    rs.reverse();
    rs.swap(3, 500);
    let unsorted = report(&rs, z, "2024-03-09", "2024-03-11");
    assert_eq!(sorted, unsorted);
}

#[test]
fn hypo_episodes() {
    let z = tz("UTC");
    let t0 = utc("2024-01-01T10:00:00Z");
    let ep = |values: Vec<u16>| report(&series(t0, 300, values), z, "2024-01-01", "2024-01-01");

    // Three lows then a reading ≥ 54: 15 minutes, counted.
    let r = ep(vec![100, 50, 45, 52, 54, 100]);
    assert_eq!(r.hypo_episode_count, 1);
    let e = r.hypo_episodes[0];
    assert_eq!(e.start, t0 + Duration::minutes(5));
    assert_eq!(e.end, t0 + Duration::minutes(20));
    assert_eq!(e.min_mg_dl, 45);
    assert_eq!(e.duration_min(), 15);

    // Two lows: 10 minutes, not counted.
    assert_eq!(ep(vec![100, 50, 45, 60, 100]).hypo_episode_count, 0);
    // 54 is not < 54.
    assert_eq!(ep(vec![54, 54, 54, 54, 54]).hypo_episode_count, 0);
    // Two separate episodes.
    let r = ep(vec![50, 50, 50, 80, 40, 40, 40, 40, 90]);
    assert_eq!(r.hypo_episode_count, 2);
    assert_eq!(r.hypo_episodes[1].duration_min(), 20);
    assert_eq!(r.hypo_episodes[1].min_mg_dl, 40);
    // Lows up to the end of the data: the last low stands for one interval.
    let r = ep(vec![100, 50, 50, 50]);
    assert_eq!(r.hypo_episode_count, 1);
    assert_eq!(r.hypo_episodes[0].end, t0 + Duration::minutes(20));
    assert_eq!(ep(vec![100, 50, 50]).hypo_episode_count, 0);

    // A gap of 2 × interval keeps the episode; a longer one breaks it.
    let at = |m: i64, v: u16| Reading { time: t0 + Duration::minutes(m), value_mg_dl: v };
    let kept = [at(0, 50), at(10, 50), at(20, 60)];
    let r = report(&kept, z, "2024-01-01", "2024-01-01");
    assert_eq!(r.hypo_episode_count, 1);
    assert_eq!(r.hypo_episodes[0].duration_min(), 20);
    let broken = [at(0, 50), at(5, 50), at(16, 50), at(21, 60)];
    // 0–5 then gap (11 min > 10): ends at 10 → 10 min, dropped; 16 → 21: 5 min, dropped.
    assert_eq!(report(&broken, z, "2024-01-01", "2024-01-01").hypo_episode_count, 0);
    let broken_long = [at(0, 50), at(5, 50), at(10, 50), at(60, 50), at(65, 100)];
    // 0–15 counted (gap after 10); 60–65 not.
    let r = report(&broken_long, z, "2024-01-01", "2024-01-01");
    assert_eq!(r.hypo_episode_count, 1);
    assert_eq!(r.hypo_episodes[0].end, t0 + Duration::minutes(15));
}

#[test]
fn sufficiency_needs_14_days_at_70_percent() {
    let z = tz("UTC");
    let start = utc("2024-01-01T00:00:00Z");
    let days14 = series(start, 300, vec![120; 14 * 288]);
    assert!(report(&days14, z, "2024-01-01", "2024-01-14").sufficient);
    assert!(!report(&days14, z, "2024-01-01", "2024-01-13").sufficient);
    // 70 % or more is enough (2823 of 4032 = 70.01 %); just under is not (2822 = 69.99 %).
    let n70 = (14 * 288 * 7usize).div_ceil(10);
    assert!(report(&days14[..n70], z, "2024-01-01", "2024-01-14").sufficient);
    assert!(!report(&days14[..n70 - 1], z, "2024-01-01", "2024-01-14").sufficient);
}

#[test]
fn json_keys_are_the_contract() {
    let z = tz("UTC");
    let rs = series(utc("2024-01-01T00:00:00Z"), 300, [50, 50, 50, 50, 120]);
    let r = report(&rs, z, "2024-01-01", "2024-01-01");
    let v = serde_json::to_value(&r).unwrap();
    let obj = v.as_object().unwrap();
    for key in [
        "readings",
        "days",
        "mean_mg_dl",
        "sd_mg_dl",
        "cv_percent",
        "gmi_percent",
        "cgm_active_percent",
        "very_low_percent",
        "low_percent",
        "in_range_percent",
        "high_percent",
        "very_high_percent",
        "gri",
        "agp",
    ] {
        assert!(obj.contains_key(key), "missing {key}");
    }
    let bin = v["agp"][0].as_object().unwrap();
    for key in ["minute", "p5", "p25", "p50", "p75", "p95"] {
        assert!(bin.contains_key(key), "agp entry missing {key}");
    }
    assert_eq!(v["readings"], 5);
    assert_eq!(v["hypo_episodes"][0]["start"], "2024-01-01T00:00:00Z");
    // Round trip.
    let back: GlucoseReport = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
    // None serializes as null.
    let empty = serde_json::to_value(report(&[], z, "2024-01-01", "2024-01-01")).unwrap();
    assert!(empty["mean_mg_dl"].is_null());
}

#[test]
fn local_time_of_day_uses_the_zone() {
    // 06:00 UTC is 08:00 in Berlin in July, 01:00 in New York, 15:00 in Tokyo.
    let rs = [Reading { time: utc("2024-07-01T06:00:00Z"), value_mg_dl: 100 }];
    for (zone, minute) in
        [("Europe/Berlin", 480), ("America/New_York", 120), ("Asia/Tokyo", 900), ("Asia/Kolkata", 690)]
    {
        let r = report(&rs, tz(zone), "2024-07-01", "2024-07-01");
        assert_eq!(r.agp[0].minute, minute, "{zone}");
    }
    // The same instant is outside the local day of 2024-07-01 in Pacific/Kiritimati (UTC+14 → 20:00 on the 1st: inside),
    // and in Pacific/Pago_Pago (UTC−11 → 19:00 on 2024-06-30: outside).
    assert_eq!(report(&rs, tz("Pacific/Kiritimati"), "2024-07-01", "2024-07-01").readings, 1);
    assert_eq!(report(&rs, tz("Pacific/Pago_Pago"), "2024-07-01", "2024-07-01").readings, 0);
}

#[test]
fn extreme_inputs_do_not_panic() {
    let z = tz("Pacific/Kiritimati");
    let rs = [
        Reading { time: DateTime::<Utc>::MIN_UTC, value_mg_dl: 10 },
        Reading { time: DateTime::<Utc>::MAX_UTC, value_mg_dl: 10 },
        Reading { time: DateTime::<Utc>::MAX_UTC, value_mg_dl: u16::MAX },
    ];
    let mut input = ReportInput::new(&rs, z, NaiveDate::MIN, NaiveDate::MAX);
    input.sensor_interval_min = u32::MAX;
    input.agp_bin_min = u32::MAX;
    let r = glucose_report(&input);
    assert!(r.readings <= 3);
    input.sensor_interval_min = 0;
    input.agp_bin_min = 0;
    let _ = glucose_report(&input);
}
