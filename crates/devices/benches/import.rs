//! Importer throughput in rows per second (target: ≥ 500,000 rows/s on a CareLink CSV).
//!
//! Inputs: a generated CareLink v1.0.1 export of 100,000 rows (always available), and the shared
//! fixtures when `../shared/fixtures` is present (the decocare and Guardian Connect CareLink
//! exports, the Clarity, LibreView and Nightscout files).
//!
//! Run: `cargo bench -p devices --bench import`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use devices::import::{Format, import};
use std::hint::black_box;

use devices::import::synth::carelink_csv as generated_carelink;

fn rows_of(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

fn bench(c: &mut Criterion) {
    let mut inputs: Vec<(String, Format, Vec<u8>)> =
        vec![("carelink_generated_100k".into(), Format::CarelinkCsv, generated_carelink(100_000))];
    if let Some(dir) = therapy::fixtures::fixtures_dir() {
        for (name, format, rel) in [
            (
                "carelink_decocare",
                Format::CarelinkCsv,
                "carelink-csv/decocare-578398-mm522/CareLink-Export-1430357806982.csv",
            ),
            (
                "carelink_guardian",
                Format::CarelinkCsv,
                "carelink-csv/glucosedao-guardian-connect/medtronics_test_livia.csv",
            ),
            (
                "clarity",
                Format::DexcomClarityCsv,
                "dexcom-clarity-csv/glucosedao-synthetic/Clarity_Export_synthetic.csv",
            ),
            ("libreview", Format::LibreViewCsv, "libre-csv/glucosedao-synthetic/FreeStyle_Libre_3_synthetic.csv"),
            ("nightscout_entries_json", Format::NightscoutJson, "nightscout/glucosedao/nightscout_entries.json"),
            ("nightscout_treatments_json", Format::NightscoutJson, "nightscout/glucosedao/nightscout_treatments.json"),
        ] {
            if let Ok(b) = std::fs::read(dir.join(rel)) {
                inputs.push((name.to_string(), format, b));
            }
        }
    }
    let mut g = c.benchmark_group("import");
    for (name, format, bytes) in &inputs {
        // Elements are input lines (for JSON: lines of the pretty-printed file).
        g.throughput(Throughput::Elements(rows_of(bytes)));
        g.bench_function(name.as_str(), |b| {
            b.iter(|| {
                let n = import(black_box(&bytes[..]), *format).map(|i| i.count()).unwrap_or(0);
                black_box(n)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
