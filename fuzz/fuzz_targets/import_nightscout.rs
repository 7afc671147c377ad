//! Any bytes forced through the Nightscout JSON and entries-CSV importers.
#![no_main]
use devices::import::{Format, import};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for f in [Format::NightscoutJson, Format::NightscoutEntriesCsv] {
        if let Ok(it) = import(data, f) {
            for _ in it {}
        }
    }
});
