//! MiniMed page decoding: 90 days of a 522's pages (target: < 5 ms for all of them).
//!
//! 90 days is about 36 history pages and 32 CGM pages on a 522 with a sensor. They are built
//! by repeating the decocare 522 fixture pages (11 history pages, 1 CGM page, CRCs intact)
//! when `../shared/fixtures` is present, else from a generated page of temp basals and
//! readings. Each iteration checks every CRC, decodes every page, builds the one-clock
//! timeline and converts everything to normalised records.
//!
//! `simulated_upload_90_days`: the sans-IO driver reading a simulated 522 (90 days: about 27
//! history and 27 CGM pages) through the simulated CareLink stick, every USB transfer and radio
//! poll included, with zero delay (waits skipped): the protocol's CPU cost, not the radio's
//! time.
//!
//! Run: `cargo bench -p devices --bench minimed`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use devices::minimed::driver::{Action, Driver, DriverConfig, Reply, run_blocking};
use devices::minimed::glucose::decode_glucose_page;
use devices::minimed::history::{decode_history_page, timeline};
use devices::minimed::records::{glucose_records, history_records};
use devices::minimed::simulator::{Scenario, Simulator};
use devices::minimed::{PAGE_DATA_LEN, PumpModel, crc};
use std::hint::black_box;

const HISTORY_PAGES: usize = 36;
const CGM_PAGES: usize = 32;

fn with_crc(mut data: Vec<u8>) -> Vec<u8> {
    data.resize(PAGE_DATA_LEN, 0);
    let c = crc::crc16_ccitt(&data).to_be_bytes();
    data.extend_from_slice(&c);
    data
}

/// A history page of temp basal + duration pairs, and a CGM page of readings after a
/// sensor timestamp, when the fixtures are absent.
fn generated() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut h = Vec::new();
    while h.len() + 15 <= PAGE_DATA_LEN {
        h.extend_from_slice(&[0x33, 0x10, 0x4a, 0x2a, 0x0c, 0x12, 0x10, 0x00]);
        h.extend_from_slice(&[0x16, 0x01, 0x4a, 0x2a, 0x0c, 0x12, 0x10]);
    }
    let mut g = vec![0x10, 0x13, 0xb3, 0x94, 0x08];
    while g.len() < PAGE_DATA_LEN {
        g.push(0x40 + (g.len() % 40) as u8);
    }
    (vec![with_crc(h)], vec![with_crc(g)])
}

fn pages() -> (Vec<Vec<u8>>, Vec<Vec<u8>>, &'static str) {
    if let Some(dir) = therapy::fixtures::fixtures_dir() {
        let d = dir.join("minimed-pages/decocare-578398-mm522");
        let history: Option<Vec<Vec<u8>>> =
            (0..=10).map(|i| std::fs::read(d.join(format!("ReadHistoryData-page-{i}.data"))).ok()).collect();
        let cgm = std::fs::read(d.join("ReadGlucoseHistory-page-6.data")).ok();
        if let (Some(h), Some(g)) = (history, cgm) {
            return (h, vec![g], "decocare_522");
        }
    }
    let (h, g) = generated();
    (h, g, "generated")
}

fn bench(c: &mut Criterion) {
    let model: PumpModel = "522".parse().expect("522 is a known model");
    let (h, g, source) = pages();
    // Newest first, as read from the pump.
    let history: Vec<Vec<u8>> = (0..HISTORY_PAGES).map(|i| h[i % h.len()].clone()).collect();
    let cgm: Vec<Vec<u8>> = (0..CGM_PAGES).map(|i| g[i % g.len()].clone()).collect();
    let mut group = c.benchmark_group("minimed");
    group.throughput(Throughput::Elements((HISTORY_PAGES + CGM_PAGES) as u64));
    group.bench_function(format!("90_days_{source}_{HISTORY_PAGES}h_{CGM_PAGES}cgm"), |b| {
        b.iter(|| {
            let decoded: Vec<_> = history
                .iter()
                .map(|p| decode_history_page(black_box(p), model).expect("fixture pages are valid"))
                .collect();
            let (line, _) = timeline(&decoded, model, None);
            let events = decoded.iter().rev().flat_map(|p| &p.events);
            let mut n = line.len() + history_records(events, model).records.len();
            for p in &cgm {
                let page = decode_glucose_page(black_box(p)).expect("fixture pages are valid");
                n += glucose_records(&page.events, model).records.len();
            }
            black_box(n)
        })
    });
    group.finish();
}

fn simulated_upload(c: &mut Criterion) {
    let model: PumpModel = "522".parse().expect("522 is a known model");
    let end = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).and_then(|d| d.and_hms_opt(10, 0, 5)).expect("a valid date");
    let scenario = Scenario::ninety_days(model, "578398", end, 42);
    let pages = (scenario.history_pages.len() + scenario.glucose_pages.len()) as u64;
    let mut group = c.benchmark_group("minimed");
    group.throughput(Throughput::Elements(pages));
    group.bench_function("simulated_upload_90_days", |b| {
        b.iter(|| {
            let mut sim = Simulator::new(scenario.clone());
            let mut driver = Driver::new(DriverConfig::new("578398")).expect("a valid serial");
            let dump = run_blocking(&mut driver, |a| match a {
                Action::Write(bytes) => {
                    sim.write(bytes);
                    Reply::Written
                }
                Action::Read => sim.read().map_or(Reply::Timeout, Reply::Read),
                _ => Reply::Waited,
            })
            .expect("the simulated upload succeeds");
            black_box(dump.history_pages.len() + dump.glucose_pages.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench, simulated_upload);
criterion_main!(benches);
