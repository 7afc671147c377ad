//! Any bytes forced through the LibreViewCsv importer: an error or records, never a panic.
#![no_main]
use devices::import::{Format, Item, import};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(it) = import(data, Format::LibreViewCsv) {
        for item in it {
            if let Item::Record(r) = item {
                let _ = serde_json_len(&r);
            }
        }
    }
});

fn serde_json_len(r: &therapy::Record) -> usize {
    r.type_name().len()
}
