//! Any bytes through format detection and whichever importer it picks:
//! an error or records, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ins) = devices::import::inspect_bytes(data, Some("fuzz.csv")) {
        let _ = ins.to_json("fuzz.csv");
    }
    let _ = devices::import::detect(data, None);
});
