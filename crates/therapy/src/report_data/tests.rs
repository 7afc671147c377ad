//! Hand-computed cases for the report data.

use super::*;
use crate::metrics::{Reading, insulin_summary};
use chrono::{Duration, NaiveDateTime, TimeZone, Utc};
use serde_json::json;

const H: i64 = 3_600_000;
const M: i64 = 60_000;

fn tz(name: &str) -> Tz {
    name.parse().unwrap()
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// UTC ms of a local wall time in `z`.
fn local_ms(z: Tz, s: &str) -> i64 {
    let n: NaiveDateTime = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    z.from_local_datetime(&n).earliest().unwrap().timestamp_millis()
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

#[test]
fn basal_schedule_temp_percent_suspend_and_resume() {
    let t0 = 0i64;
    let ev = [
        BasalEvent::Scheduled { time_ms: t0 - 2 * H, rate_u_h: 1.0 }, // before the window: holds at its start
        BasalEvent::Scheduled { time_ms: t0 + 3 * H, rate_u_h: 2.0 },
        // 50 % for 2 h across the schedule change at 3 h.
        BasalEvent::Temp { time_ms: t0 + 2 * H, rate: TempRate::Percent(50.0), duration_min: 120 },
        // Suspended 5–6 h; an absolute temp at 4.5 h is cancelled by it.
        BasalEvent::Temp { time_ms: t0 + 4 * H + 30 * M, rate: TempRate::UPerH(0.3), duration_min: 600 },
        BasalEvent::Suspend { time_ms: t0 + 5 * H },
        BasalEvent::Resume { time_ms: t0 + 6 * H },
        BasalEvent::Resume { time_ms: t0 + 7 * H }, // without a suspend: nothing
        // A cancelled temp (duration 0) ends the running one.
        BasalEvent::Temp { time_ms: t0 + 8 * H, rate: TempRate::UPerH(0.0), duration_min: 60 },
        BasalEvent::Temp { time_ms: t0 + 8 * H + 30 * M, rate: TempRate::UPerH(5.0), duration_min: 0 },
        BasalEvent::Scheduled { time_ms: t0 + 9 * H, rate_u_h: f64::NAN }, // ignored
    ];
    let p = basal_timeline(&ev, t0, t0 + 10 * H);
    let shape: Vec<(i64, i64, BasalKind, f64)> =
        p.iter().map(|x| ((x.start_ms - t0) / M, (x.end_ms - t0) / M, x.kind, x.rate_u_h)).collect();
    assert_eq!(
        shape,
        vec![
            (0, 120, BasalKind::Scheduled, 1.0),
            (120, 180, BasalKind::Temp, 0.5),
            (180, 240, BasalKind::Temp, 1.0),
            (240, 270, BasalKind::Scheduled, 2.0),
            (270, 300, BasalKind::Temp, 0.3),
            (300, 360, BasalKind::Suspended, 0.0),
            (360, 480, BasalKind::Scheduled, 2.0),
            (480, 510, BasalKind::Temp, 0.0),
            (510, 600, BasalKind::Scheduled, 2.0),
        ]
    );
    assert_eq!(p[1].percent, Some(50.0));
    assert_eq!(p[2].scheduled_u_h, Some(2.0));
    assert_eq!(p[5].scheduled_u_h, Some(2.0));
    let units: f64 = p.iter().map(BasalPiece::units).sum();
    close(units, 2.0 + 0.5 + 1.0 + 1.0 + 0.15 + 0.0 + 4.0 + 0.0 + 3.0);

    // The same through the summary of the metrics module.
    let z = tz("UTC");
    let day = date("1970-01-01");
    let s = insulin_summary(&[], &basal_segments(&p), &[], z, day, day);
    close(s.basal_u_per_day.unwrap(), units);
}

#[test]
fn basal_without_events_for_a_day_is_a_gap() {
    let ev = [BasalEvent::Scheduled { time_ms: 0, rate_u_h: 1.0 }, BasalEvent::Suspend { time_ms: 30 * H }];
    let p = basal_timeline(&ev, 0, 72 * H);
    let shape: Vec<(i64, i64, BasalKind)> = p.iter().map(|x| (x.start_ms / H, x.end_ms / H, x.kind)).collect();
    // The rate holds 24 h; the suspension (with no resume) at most 24 h.
    assert_eq!(shape, vec![(0, 24, BasalKind::Scheduled), (30, 54, BasalKind::Suspended)]);
    assert!(basal_timeline(&ev, 10, 10).is_empty());
    // A percentage temp basal with no schedule known has no rate.
    let only_temp = [BasalEvent::Temp { time_ms: 0, rate: TempRate::Percent(80.0), duration_min: 60 }];
    assert!(basal_timeline(&only_temp, 0, H).is_empty());
}

fn sample_data(z: Tz) -> TherapyData {
    let mut d = TherapyData::default();
    // Every 5 minutes over 2024-03-30 .. 2024-04-01 (Berlin springs forward on the 31st).
    let start = local_ms(z, "2024-03-30 00:00");
    let end = local_ms(z, "2024-04-01 00:00");
    let mut t = start;
    while t < end {
        d.cgm.push(Reading { time: Utc.timestamp_millis_opt(t).unwrap(), value_mg_dl: 120 });
        t += 5 * M;
    }
    d.bg.push(BgPoint { time_ms: local_ms(z, "2024-03-30 07:10"), mg_dl: 95, source: Some("meter".into()) });
    d.bg.push(BgPoint { time_ms: local_ms(z, "2024-03-30 12:00"), mg_dl: 200, source: None });
    d.carbs.push(CarbPoint { time_ms: local_ms(z, "2024-03-30 07:15"), grams: 50.0 });
    d.carbs.push(CarbPoint { time_ms: local_ms(z, "2024-03-31 19:00"), grams: 70.0 });
    d.boluses.push(BolusPoint {
        time_ms: local_ms(z, "2024-03-30 07:16"),
        units: 5.0,
        subtype: Some("normal".into()),
        duration_min: None,
        extended_u: None,
    });
    d.boluses.push(BolusPoint {
        time_ms: local_ms(z, "2024-03-31 19:01"),
        units: 7.0,
        subtype: None,
        duration_min: None,
        extended_u: None,
    });
    d.boluses.push(BolusPoint {
        time_ms: local_ms(z, "2024-03-31 23:30"),
        units: -1.0,
        subtype: None,
        duration_min: None,
        extended_u: None,
    });
    d.alarms.push(AlarmPoint {
        time_ms: local_ms(z, "2024-03-31 03:30"),
        code: Some(4),
        description: Some("Occlusion".into()),
    });
    d.basal = basal_timeline(
        &[
            BasalEvent::Scheduled { time_ms: start - H, rate_u_h: 1.0 },
            BasalEvent::Scheduled { time_ms: start + 23 * H, rate_u_h: 1.0 },
        ],
        start,
        end,
    );
    d.sort();
    d
}

#[test]
fn day_views_split_by_local_day_and_handle_dst() {
    let z = tz("Europe/Berlin");
    let d = sample_data(z);
    let v = day_views(&d, z, date("2024-03-30"), date("2024-03-31"));
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].minutes, 1440);
    assert_eq!(v[1].minutes, 1380);
    assert_eq!(v[0].offset_change, None);
    assert_eq!(v[1].offset_change, Some((120, 60)));
    assert_eq!(v[1].clock(119), "01:59");
    assert_eq!(v[1].clock(120), "03:00");
    assert_eq!(v[0].clock_sec(7 * 3600 + 600), "07:10");
    assert_eq!(v[0].cgm.len(), 288);
    assert_eq!(v[1].cgm.len(), 276);
    assert_eq!(v[0].stats.readings, 288);
    close(v[0].stats.in_range_percent.unwrap(), 100.0);
    assert_eq!(v[0].bg.len(), 2);
    assert_eq!(v[0].bg[0].sec, 7 * 3600 + 600);
    assert_eq!(v[0].stats.carbs_g, 50.0);
    assert_eq!(v[0].stats.bolus_u, 5.0);
    assert_eq!(v[1].stats.bolus_u, 7.0, "negative amounts are ignored");
    assert_eq!(v[1].stats.boluses, 1);
    assert_eq!(v[1].alarms.len(), 1);
    assert_eq!(v[1].clock_sec(v[1].alarms[0].sec), "03:30");
    close(v[0].stats.basal_u.unwrap(), 24.0);
    close(v[1].stats.basal_u.unwrap(), 23.0);
    close(v[1].stats.total_u.unwrap(), 30.0);
    assert_eq!(v[1].basal.first().map(|b| (b.start_sec, b.end_sec)), Some((0, 23 * 3600)));
    assert!(v[1].basal_at(3600).is_some());
    // A day without data.
    let empty = day_views(&TherapyData::default(), z, date("2024-05-01"), date("2024-05-01"));
    assert_eq!(empty[0].stats.readings, 0);
    assert_eq!(empty[0].stats.mean_mg_dl, None);
    assert_eq!(empty[0].stats.basal_u, None);
}

#[test]
fn a_dual_bolus_shows_its_extended_part_over_its_duration() {
    let z = tz("Europe/Berlin");
    let mut d = TherapyData::default();
    let dual = |time: &str, extended_u: Option<f64>, duration_min: Option<u32>| BolusPoint {
        time_ms: local_ms(z, time),
        units: 6.0,
        subtype: Some("dual".into()),
        duration_min,
        extended_u,
    };
    d.boluses.push(dual("2024-05-01 12:00", Some(2.0), Some(120)));
    d.boluses.push(dual("2024-05-01 23:00", Some(3.0), Some(90)));
    d.boluses.push(dual("2024-05-01 18:00", None, Some(60)));
    d.sort();
    let v = day_views(&d, z, date("2024-05-01"), date("2024-05-01"));
    let b = &v[0].boluses;
    assert_eq!(v[0].stats.bolus_u, 18.0, "the day's insulin counts both parts");
    close(b[0].now_u(), 4.0);
    assert_eq!(b[0].extended(), Some((1.0, 14 * 3600)));
    // Past midnight: the end lies beyond the day (the chart clips it).
    assert_eq!(b[2].extended(), Some((2.0, 24 * 3600 + 1800)));
    // An older record without its parts: all at once, as before.
    close(b[1].now_u(), 6.0);
    assert_eq!(b[1].extended(), None);
    let j = serde_json::to_value(&b[0]).unwrap();
    assert_eq!(j["extended_u"], 2.0);
    assert!(serde_json::to_value(&b[1]).unwrap().get("extended_u").is_none());
}

#[test]
fn autumn_day_repeats_an_hour_on_the_clock() {
    let z = tz("Europe/Berlin");
    let v = day_views(&TherapyData::default(), z, date("2024-10-27"), date("2024-10-27"));
    assert_eq!(v[0].minutes, 1500);
    assert_eq!(v[0].offset_change, Some((180, -60)));
    assert_eq!(v[0].clock(150), "02:30");
    assert_eq!(v[0].clock(210), "02:30");
    assert_eq!(v[0].clock(1499), "23:59");
}

#[test]
fn logbook_buckets_by_local_period() {
    let z = tz("Europe/Berlin");
    let d = sample_data(z);
    let l = logbook(&d, z, date("2024-03-30"), date("2024-03-31"));
    assert_eq!(l.len(), 2);
    let names: Vec<String> = logbook_periods().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["night", "breakfast", "lunch", "dinner", "evening"]);
    // Breakfast of the 30th: the 07:10 BG, 50 g, 5 U; lunch: the 12:00 BG.
    let b = &l[0].cells[1];
    assert_eq!(b.bg_mg_dl, vec![95]);
    assert_eq!(b.carbs_g, 50.0);
    assert_eq!(b.bolus_u, 5.0);
    assert_eq!(b.boluses, 1);
    assert_eq!(b.cgm_readings, 60, "06:00–11:00 every 5 minutes");
    assert_eq!(b.cgm_mean_mg_dl, Some(120.0));
    assert_eq!(l[0].cells[2].bg_mg_dl, vec![200]);
    assert_eq!(l[0].cells[2].bg_mean_mg_dl, Some(200.0));
    // The 31st: dinner 70 g / 7 U; the night is an hour short (DST).
    assert_eq!(l[1].cells[3].carbs_g, 70.0);
    assert_eq!(l[1].cells[0].cgm_readings, 60);
    assert_eq!(l[1].carbs_g, 70.0);
    assert_eq!(l[1].bolus_u, 7.0);
    close(l[1].basal_u.unwrap(), 23.0);
}

#[test]
fn trends_by_local_hour_and_weekday() {
    let z = tz("Europe/Berlin");
    let mut d = sample_data(z);
    // Two readings at 07:xx local on the 30th that are low.
    d.cgm.push(Reading { time: Utc.timestamp_millis_opt(local_ms(z, "2024-03-30 07:02")).unwrap(), value_mg_dl: 60 });
    d.cgm.push(Reading { time: Utc.timestamp_millis_opt(local_ms(z, "2024-03-30 07:03")).unwrap(), value_mg_dl: 50 });
    d.sort();
    let t = trends(&d, z, date("2024-03-30"), date("2024-03-31"));
    assert_eq!(t.days, 2);
    assert_eq!(t.hours.len(), 24);
    let h7 = &t.hours[7];
    assert_eq!(h7.readings, 26);
    close(h7.below_percent.unwrap(), 2.0 / 26.0 * 100.0);
    close(h7.carbs_g_per_day, 25.0);
    close(h7.bolus_u_per_day, 2.5);
    assert_eq!(h7.bg_count, 1);
    close(h7.basal_u_h.unwrap(), 1.0);
    // 02:00–03:00 did not exist on the 31st: only the 30th's readings.
    assert_eq!(t.hours[2].readings, 12);
    close(t.hours[19].carbs_g_per_day, 35.0);
    assert_eq!(t.weekdays.len(), 7);
    assert_eq!(t.weekdays[5].name, "Saturday");
    assert_eq!(t.weekdays[5].readings, 290);
    assert_eq!(t.weekdays[6].readings, 276);
    assert_eq!(t.weekdays[0].readings, 0);
    assert_eq!(t.weekdays[0].mean_mg_dl, None);
}

#[test]
fn settings_from_demo_and_carelink_shapes() {
    let demo = json!({
        "basal_profiles": {"standard": [{"offset_min": 0, "rate_u_h": 0.8}, {"offset_min": 360, "rate_u_h": 1.0}]},
        "active_basal_profile": "standard",
        "carb_ratios": [{"offset_min": 0, "g_per_u": 10.0}],
        "sensitivities": [{"offset_min": 0, "mg_dl_per_u": 50.0}],
        "bg_targets": [{"offset_min": 0, "low_mg_dl": 100, "high_mg_dl": 120}],
        "active_insulin_time_h": 3,
        "max_bolus_u": 10.0,
        "glucose_unit": "mg/dL"
    });
    let s = parse_settings(demo.as_object().unwrap());
    assert_eq!(s.basal_profiles.len(), 1);
    assert!(s.basal_profiles[0].active);
    close(s.basal_profiles[0].total_u, 0.8 * 6.0 + 1.0 * 18.0);
    assert_eq!(s.carb_ratios, vec![ScheduleEntry { start_min: 0, value: 10.0 }]);
    assert_eq!(s.sensitivities[0].value, 50.0);
    assert_eq!(s.targets[0], TargetEntry { start_min: 0, low_mg_dl: 100.0, high_mg_dl: 120.0 });
    assert_eq!(s.active_insulin_min, Some(180));
    assert_eq!(s.other, vec![("glucose_unit".into(), "mg/dL".into()), ("max_bolus_u".into(), "10.0".into())]);

    let carelink = json!({
        "kind": "snapshot",
        "active_schedule": "Pattern A",
        "basal_schedules": {"Pattern A": [{"start_min": 0, "rate_u_h": 1.0}], "Pattern B": [{"start_min": 120, "rate_u_h": 2.0}]},
        "carb_ratios": [{"start_min": 0, "u_per_exchange": 1.5}],
        "insulin_action_min": 240
    });
    let c = parse_settings(carelink.as_object().unwrap());
    assert_eq!(
        c.basal_profiles.iter().map(|p| (p.name.as_str(), p.active)).collect::<Vec<_>>(),
        vec![("Pattern A", true), ("Pattern B", false)]
    );
    close(c.basal_profiles[1].total_u, 48.0);
    assert!(c.carb_ratio_exchanges);
    assert_eq!(c.active_insulin_min, Some(240));
    assert!(c.other.is_empty());

    // History: the snapshot twice, then a change of the ratios only.
    let change = json!({"kind": "change", "carb_ratios": [{"start_min": 0, "g_per_u": 12.0}]});
    let z = tz("UTC");
    let (a, b, ch) = (carelink.as_object().unwrap(), carelink.as_object().unwrap(), change.as_object().unwrap());
    let h = settings_history(&[(86_400_000 * 2, b), (0, a), (86_400_000 * 5, ch)], z);
    assert_eq!(h.len(), 2);
    assert_eq!((h[0].first_seen, h[0].last_seen, h[0].times_seen), (date("1970-01-01"), date("1970-01-03"), 2));
    assert_eq!(h[1].settings.basal_profiles.len(), 2, "the change keeps the rest");
    assert_eq!(h[1].settings.carb_ratios[0].value, 12.0);
    assert!(!h[1].settings.carb_ratio_exchanges);
    assert!(settings_history(&[], z).is_empty());
}

#[test]
fn local_clock_matches_chrono() {
    let z = tz("America/New_York");
    let mut c = LocalClock::new(z);
    let start = local_ms(z, "2024-03-09 00:00");
    for i in 0..(3 * 96) {
        let ms = start + i * 15 * M + 7;
        let l = Utc.timestamp_millis_opt(ms).unwrap().with_timezone(&z);
        assert_eq!(c.date(ms), Some(l.date_naive()));
        assert_eq!(c.minute_of_day(ms), chrono::Timelike::hour(&l) * 60 + chrono::Timelike::minute(&l));
    }
    let _ = Duration::minutes(1);
}
