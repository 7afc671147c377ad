//! The MiniMed driver against the simulated CareLink stick and pump, end to end: a full 90-day
//! upload whose pages decode to exactly what the scenario encoded and whose settings come back
//! as the scenario's; each injected fault retried or reported; cancellation; an incremental
//! second upload; monotonic progress; and random bytes that never make the driver panic.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use devices::minimed::PumpModel;
use devices::minimed::driver::{
    Action, Driver, DriverConfig, DriverError, Reply, Stage, run_blocking, run_blocking_with_clock,
};
use devices::minimed::dump::PumpDump;
use devices::minimed::encode::HistoryEvent;
use devices::minimed::glucose::{GlucoseData, decode_glucose_page};
use devices::minimed::history::{EventData, TempBasalRate, decode_history_page};
use devices::minimed::pump::{BasalEntry, TherapySettings, code, settings_values};
use devices::minimed::records::{glucose_records, history_records};
use devices::minimed::simulator::{Fault, Scenario, Simulator};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const SERIAL: &str = "578398";

fn end() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 12, 2).unwrap().and_hms_opt(10, 0, 5).unwrap()
}

fn utc() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-02T09:00:00Z").unwrap().with_timezone(&Utc)
}

fn model(n: u16) -> PumpModel {
    PumpModel::new(n).unwrap()
}

/// The transport: the simulator answers writes and reads; waits are skipped.
fn io(sim: &mut Simulator) -> impl FnMut(&Action) -> Reply + '_ {
    move |a| sim.transport(a)
}

fn upload(sim: &mut Simulator, cfg: DriverConfig) -> Result<PumpDump, DriverError> {
    let mut d = Driver::new(cfg)?;
    let r = run_blocking_with_clock(&mut d, io(sim), || Some(utc()));
    if r.is_ok() {
        assert_eq!(d.progress().fraction, 1.0);
        assert_eq!(d.progress().stage, Stage::Finished);
    }
    r
}

fn scenario(m: u16, faults: Vec<Fault>) -> Scenario {
    let mut s = Scenario::ninety_days(model(m), SERIAL, end(), 42);
    s.faults = faults;
    s
}

fn expected_settings(s: &TherapySettings) -> Value {
    let sched = |v: &[BasalEntry]| {
        Value::Array(v.iter().map(|e| json!({"start_min": e.start_min, "rate_u_h": e.rate_u_h})).collect())
    };
    let mut basal = Map::new();
    basal.insert("standard".into(), sched(&s.basal_standard));
    if !s.basal_a.is_empty() {
        basal.insert("pattern a".into(), sched(&s.basal_a));
    }
    if !s.basal_b.is_empty() {
        basal.insert("pattern b".into(), sched(&s.basal_b));
    }
    json!({
        "basal_schedules": basal,
        "active_schedule": "standard",
        "max_basal_u_h": s.settings.max_basal_u_h,
        "max_bolus_u": s.settings.max_bolus_u,
        "insulin_action_min": u32::from(s.settings.insulin_action_hours) * 60,
        "temp_basal_type": "rate",
        "carb_ratios": s.carb_ratios.entries.iter().map(|&(t, r)| json!({"start_min": t, "g_per_u": r})).collect::<Vec<_>>(),
        "sensitivities": s.sensitivities.entries.iter().map(|&(t, v)| json!({"start_min": t, "mg_dl_per_u": v as i64})).collect::<Vec<_>>(),
        "bg_targets": s.bg_targets.entries.iter().zip(&s.bg_targets.high)
            .map(|(&(t, lo), &hi)| json!({"start_min": t, "low_mg_dl": lo as i64, "high_mg_dl": hi as i64})).collect::<Vec<_>>(),
        "units": {"bg": "mg/dL", "carb": "g"},
    })
}

/// Checks a dump against the scenario it was read from: every page byte for byte, every page
/// decoding to exactly the events the scenario encoded, the settings, the identity.
fn check_dump(dump: &PumpDump, sc: &Scenario) {
    let m = sc.model;
    assert_eq!(dump.device.model, m.number().to_string());
    assert_eq!(dump.device.serial, SERIAL);
    assert_eq!(dump.device.firmware.as_deref(), Some("VER 2.4A1.1"));
    let clock = dump.clock.as_ref().unwrap();
    assert_eq!((clock.pump, clock.utc), (sc.clock, utc()));

    assert_eq!(dump.history_pages.len(), sc.history_pages.len());
    let mut history = Vec::new();
    for (i, p) in dump.history_pages.iter().enumerate() {
        assert_eq!(p.number as usize, i, "history pages are read newest first");
        let bytes = p.bytes().unwrap();
        assert_eq!(bytes, sc.history_pages[i], "history page {i}");
        let decoded = decode_history_page(&bytes, m).unwrap();
        assert_eq!(decoded.stop, None, "page {i}");
        let got: Vec<(Option<NaiveDateTime>, EventData)> =
            decoded.events.iter().map(|e| (e.timestamp, e.data.clone())).collect();
        let want: Vec<(Option<NaiveDateTime>, EventData)> =
            sc.history_events[i].iter().map(|e| (e.decoded_timestamp(), e.data.clone())).collect();
        assert_eq!(got, want, "history page {i}");
        history.push(decoded);
    }
    let events = history.iter().rev().flat_map(|p| &p.events);
    let conv = history_records(events, m);
    assert!(conv.records.len() > 1000, "{} records", conv.records.len());

    assert_eq!(dump.glucose_pages.len(), sc.glucose_pages.len());
    let newest = sc.glucose_first_page + sc.glucose_pages.len() as u32 - 1;
    let mut readings = 0;
    for (k, p) in dump.glucose_pages.iter().enumerate() {
        assert_eq!(p.number, newest - k as u32, "CGM pages are read newest first");
        let idx = (p.number - sc.glucose_first_page) as usize;
        let bytes = p.bytes().unwrap();
        assert_eq!(bytes, sc.glucose_pages[idx]);
        let decoded = decode_glucose_page(&bytes).unwrap();
        let got: Vec<(Option<NaiveDateTime>, GlucoseData)> =
            decoded.events.iter().map(|e| (e.timestamp, e.data.clone())).collect();
        let want: Vec<(Option<NaiveDateTime>, GlucoseData)> =
            sc.glucose_events[idx].iter().map(|(t, d)| (Some(*t), d.clone())).collect();
        assert_eq!(got, want, "CGM page {}", p.number);
        readings += glucose_records(&decoded.events, m).records.len();
    }
    assert!(readings > 20 * 288, "{readings} CGM records");

    let (values, problems) = settings_values(dump, m);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(Value::Object(values), expected_settings(&sc.settings));
}

/// (a) A full 90-day upload of a 522, a 523 and a 754.
#[test]
fn full_upload_of_ninety_days() {
    for m in [522, 523, 754] {
        let sc = scenario(m, vec![]);
        let mut sim = Simulator::new(sc.clone());
        let dump = upload(&mut sim, DriverConfig::new(SERIAL)).unwrap();
        check_dump(&dump, &sc);
        assert!(dump.history_pages.len() >= 20, "{m}: {}", dump.history_pages.len());
        assert!(dump.glucose_pages.len() >= 25, "{m}: {}", dump.glucose_pages.len());
        // The dump survives JSON.
        let json = serde_json::to_string(&dump).unwrap();
        assert_eq!(serde_json::from_str::<PumpDump>(&json).unwrap(), dump);
        // Each page was asked for once.
        assert_eq!(sim.commands_seen(code::READ_HISTORY_DATA), sc.history_pages.len());
        assert_eq!(sim.commands_seen(code::READ_GLUCOSE_HISTORY), sc.glucose_pages.len());
        assert_eq!(sim.commands_seen(code::POWER_CONTROL), 1);
    }
}

fn baseline() -> (Scenario, PumpDump) {
    let sc = scenario(522, vec![]);
    let dump = upload(&mut Simulator::new(sc.clone()), DriverConfig::new(SERIAL)).unwrap();
    (sc, dump)
}

/// (b) NAKs, lost USB packets, bad radio CRCs and a busy pump are retried: same dump.
#[test]
fn faults_are_retried() {
    let (_, clean) = baseline();
    let cases: Vec<Vec<Fault>> = vec![
        vec![Fault::Nak { at_command: code::READ_PUMP_MODEL, times: 2 }],
        vec![Fault::Nak { at_command: code::READ_HISTORY_DATA, times: 3 }],
        vec![Fault::LostFrame { nth_read: 1 }],
        vec![Fault::LostFrame { nth_read: 12 }],
        vec![Fault::LostFrame { nth_read: 40 }],
        vec![Fault::LostFrame { nth_read: 333 }],
        vec![Fault::LostFrame { nth_read: 700 }, Fault::LostFrame { nth_read: 701 }],
        vec![Fault::BadCrc { nth_frame: 2 }],
        vec![Fault::BadCrc { nth_frame: 31 }],
        vec![Fault::BadCrc { nth_frame: 100 }, Fault::BadCrc { nth_frame: 101 }, Fault::BadCrc { nth_frame: 102 }],
        vec![Fault::Busy { times: 2 }],
        vec![
            Fault::Nak { at_command: code::READ_GLUCOSE_HISTORY, times: 1 },
            Fault::LostFrame { nth_read: 500 },
            Fault::BadCrc { nth_frame: 60 },
            Fault::Busy { times: 1 },
        ],
    ];
    let base = scenario(522, vec![]);
    for faults in cases {
        let mut sc = base.clone();
        sc.faults = faults.clone();
        let mut sim = Simulator::new(sc);
        let dump = upload(&mut sim, DriverConfig::new(SERIAL)).unwrap_or_else(|e| panic!("{faults:?}: {e}"));
        assert_eq!(dump, clean, "{faults:?}");
    }
    // A NAKed transmit never reaches the pump.
    let mut sim = Simulator::new(scenario(522, vec![Fault::Nak { at_command: code::READ_PUMP_MODEL, times: 2 }]));
    upload(&mut sim, DriverConfig::new(SERIAL)).unwrap();
    assert_eq!(sim.commands_seen(code::READ_PUMP_MODEL), 1);
}

/// (b) Faults that outlast the retries end in the error a person can act on, never in Done.
#[test]
fn persistent_faults_are_reported() {
    let run = |faults: Vec<Fault>, serial: &str| {
        let mut sim = Simulator::new(scenario(522, faults));
        let mut cfg = DriverConfig::new(serial);
        cfg.retries = 3;
        let mut d = Driver::new(cfg).unwrap();
        let mut done = false;
        let mut io = io(&mut sim);
        let r = run_blocking(&mut d, |a| {
            done |= matches!(a, Action::Done(_));
            io(a)
        });
        assert!(!done);
        r
    };
    assert_eq!(
        run(vec![Fault::PumpStopsAnswering { after_history_pages: 3 }], SERIAL),
        Err(DriverError::PumpNotResponding { after_retries: 3 })
    );
    let e = run(vec![], "123456").unwrap_err();
    assert_eq!(e, DriverError::PumpNotResponding { after_retries: 3 });
    assert!(e.to_string().contains("check the serial number"), "{e}");
    assert_eq!(
        run(vec![Fault::Nak { at_command: code::READ_RTC, times: 10 }], SERIAL),
        Err(DriverError::StickNotResponding)
    );
    // Chunk 1 is the wake-up ack; the model answer then arrives damaged four times.
    assert_eq!(
        run((2..=5).map(|n| Fault::BadCrc { nth_frame: n }).collect(), SERIAL),
        Err(DriverError::RadioNoise { bad_crcs: 4 })
    );
    assert_eq!(run(vec![Fault::Busy { times: 10 }], SERIAL), Err(DriverError::PumpBusy));
    assert!(matches!(Driver::new(DriverConfig::new("57839")), Err(DriverError::BadSerial(_))));
}

/// Drives a driver step by step, calling `hook` after every step with the driver.
fn drive(sim: &mut Simulator, d: &mut Driver, mut hook: impl FnMut(&mut Driver) -> Option<Action>) -> Action {
    d.set_utc_now(utc());
    let mut a = d.start();
    for _ in 0..2_000_000 {
        if let Some(x) = hook(d) {
            a = x;
        }
        a = match a {
            Action::Write(b) => {
                sim.write(&b);
                d.on_written()
            }
            Action::Read => match sim.read() {
                Some(b) => d.on_read(&b),
                None => d.on_timeout(),
            },
            Action::Wait { .. } => d.on_waited(),
            done => return done,
        };
    }
    panic!("the driver did not finish");
}

/// (c) Cancelling in the middle of the history gives Cancelled, now and after.
#[test]
fn cancel_mid_history() {
    let mut sim = Simulator::new(scenario(522, vec![]));
    let mut d = Driver::new(DriverConfig::new(SERIAL)).unwrap();
    let mut cancelled = false;
    let end = drive(&mut sim, &mut d, |d| {
        let p = d.progress();
        (!cancelled && p.stage == Stage::ReadingHistory && p.done >= 3).then(|| {
            cancelled = true;
            d.cancel()
        })
    });
    assert!(cancelled);
    assert_eq!(end, Action::Failed(DriverError::Cancelled));
    assert_eq!(d.on_read(&[1, 2, 3]), Action::Failed(DriverError::Cancelled));
    assert_eq!(d.on_waited(), Action::Failed(DriverError::Cancelled));
    let seen = sim.commands_seen(code::READ_HISTORY_DATA);
    assert!((3..6).contains(&seen), "{seen} pages read");
}

/// (d) A second upload with `since` = the newest record of the first reads only the new pages.
#[test]
fn incremental_upload_reads_only_new_pages() {
    let sc = scenario(523, vec![]);
    let mut sim = Simulator::new(sc.clone());
    let first = upload(&mut sim, DriverConfig::new(SERIAL)).unwrap();
    let m = sc.model;
    let newest = first
        .history_pages
        .iter()
        .flat_map(|p| decode_history_page(&p.bytes().unwrap(), m).unwrap().events)
        .filter_map(|e| e.timestamp)
        .max()
        .unwrap();

    // A few records: they fit on page 0.
    let later = |min: i64| end() + Duration::minutes(min);
    let few = vec![
        HistoryEvent::new(later(10), EventData::TempBasal { rate: TempBasalRate::Absolute(0.5), remote: false }),
        HistoryEvent::new(later(10), EventData::TempBasalDuration { duration_min: 60 }),
        HistoryEvent::new(later(40), EventData::Suspend),
        HistoryEvent::new(later(55), EventData::Resume { remote: false }),
    ];
    sim.add_history(&few).unwrap();
    sim.set_clock(later(60));
    sim.reset_session();
    let before = sim.commands_seen(code::READ_HISTORY_DATA);
    let mut cfg = DriverConfig::new(SERIAL);
    cfg.since = Some(newest);
    let second = upload(&mut sim, cfg.clone()).unwrap();
    let reads = sim.commands_seen(code::READ_HISTORY_DATA) - before;
    assert_eq!(reads, expected_reads(sim.scenario(), newest));
    assert!(reads <= 2, "{reads} pages read for 4 new records");
    let new: Vec<_> = second
        .history_pages
        .iter()
        .rev()
        .flat_map(|p| decode_history_page(&p.bytes().unwrap(), m).unwrap().events)
        .filter(|e| e.timestamp.is_some_and(|t| t > newest))
        .map(|e| e.data)
        .collect();
    assert_eq!(new, few.iter().map(|e| e.data.clone()).collect::<Vec<_>>());
    assert!(second.glucose_pages.len() <= 2, "CGM: only the newest page(s)");

    // Many records: page 0 fills up and a new page starts.
    let many: Vec<HistoryEvent> = (0..120).map(|i| HistoryEvent::new(later(120 + i), EventData::Rewind)).collect();
    let pages = sim.add_history(&many).unwrap();
    assert!(pages >= 1);
    sim.reset_session();
    let before = sim.commands_seen(code::READ_HISTORY_DATA);
    cfg.since = Some(later(55));
    let third = upload(&mut sim, cfg).unwrap();
    let reads = sim.commands_seen(code::READ_HISTORY_DATA) - before;
    assert_eq!(reads, expected_reads(sim.scenario(), later(55)));
    assert!((2..=3).contains(&reads), "{reads}");
    assert_eq!(third.history_pages.len(), reads);
    assert!(reads < sim.scenario().history_pages.len());
}

/// Pages an incremental read must fetch: those holding only records newer than `since`, and
/// the first one that holds an older record.
fn expected_reads(sc: &Scenario, since: NaiveDateTime) -> usize {
    sc.history_events.iter().take_while(|evs| evs.iter().all(|e| e.decoded_timestamp() > Some(since))).count() + 1
}

/// (e) Progress never goes back, passes through the stages in order and ends at 1.0.
#[test]
fn progress_is_monotonic() {
    let mut sim = Simulator::new(scenario(522, vec![Fault::LostFrame { nth_read: 90 }]));
    let mut d = Driver::new(DriverConfig::new(SERIAL)).unwrap();
    let mut seen: Vec<(Stage, f32)> = Vec::new();
    let end = drive(&mut sim, &mut d, |d| {
        let p = d.progress();
        assert!((0.0..=1.0).contains(&p.fraction));
        assert!(p.done <= p.total || p.total == 0, "{p:?}");
        seen.push((p.stage, p.fraction));
        None
    });
    assert!(matches!(end, Action::Done(_)));
    assert_eq!(d.progress().fraction, 1.0);
    for w in seen.windows(2) {
        assert!(w[1].1 >= w[0].1, "fraction went back: {w:?}");
        assert!(w[1].0 >= w[0].0, "stage went back: {w:?}");
    }
    let stages: Vec<Stage> = seen.iter().map(|s| s.0).collect();
    for s in [
        Stage::Connecting,
        Stage::WakingPump,
        Stage::ReadingIdentity,
        Stage::ReadingSettings,
        Stage::ReadingHistory,
        Stage::ReadingGlucose,
    ] {
        assert!(stages.contains(&s), "{s:?} never seen");
    }
    // History progress counts pages against the pump's page count.
    let h = seen.iter().filter(|s| s.0 == Stage::ReadingHistory).count();
    assert!(h > 100);
}

/// Bytes that often look like stick replies, so that random input reaches deep states.
fn arb_packet() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(Some(0x01u8)), Just(Some(0x02)), Just(None)],
        prop_oneof![Just(Some(0x55u8)), Just(Some(0x66)), Just(None)],
        prop::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(|(a, b, mut rest)| {
            if let Some(b) = b
                && !rest.is_empty()
            {
                rest[0] = b;
            }
            if let Some(a) = a {
                rest.insert(0, a);
            }
            rest
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (f) Whatever the stick sends, the driver never panics and always ends.
    #[test]
    fn random_bytes_never_panic(packets in prop::collection::vec(arb_packet(), 0..400), timeouts in any::<u64>()) {
        let mut d = Driver::new(DriverConfig::new(SERIAL)).unwrap();
        let mut a = d.start();
        let mut it = packets.into_iter();
        let mut n = 0u32;
        loop {
            n += 1;
            a = match a {
                Action::Write(_) => d.on_written(),
                Action::Read if (timeouts >> (n % 64)) & 1 == 1 && n.is_multiple_of(3) => d.on_timeout(),
                Action::Read => match it.next() {
                    Some(p) => d.on_read(&p),
                    None => d.on_timeout(),
                },
                Action::Wait { .. } => d.on_waited(),
                Action::Done(_) | Action::Failed(_) => break,
            };
            prop_assert!(n < 200_000, "the driver did not end");
        }
        let p = d.progress();
        prop_assert!((0.0..=1.0).contains(&p.fraction));
    }

    /// Random bytes handed over at any moment (whatever the driver expects) never panic.
    #[test]
    fn random_callbacks_never_panic(calls in prop::collection::vec((0u8..4, arb_packet()), 0..200)) {
        let mut d = Driver::new(DriverConfig::new(SERIAL)).unwrap();
        let _ = d.start();
        for (k, p) in calls {
            let _ = match k {
                0 => d.on_written(),
                1 => d.on_read(&p),
                2 => d.on_timeout(),
                _ => d.on_waited(),
            };
        }
    }
}
