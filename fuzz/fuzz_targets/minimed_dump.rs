//! Any bytes as what a device upload hands the server or the browser: a pump dump (JSON), bare
//! pages (binary or hex) with the model and kind guessed, and the stick's USB answers fed to
//! the driver — a decode, a rejection or a driver error, never a panic.
#![no_main]
use devices::import::{Format, import_named};
use devices::minimed::driver::{Action, Driver, DriverConfig};
use devices::minimed::dump::{PumpDump, RawHints, decode_raw};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = PumpDump::from_json(data) {
        let _ = d.decode();
    }
    let _ = decode_raw(data, RawHints::default());
    if let Ok(items) = import_named(data, Format::MinimedPages, Some("fuzz.data")) {
        let _ = items.count();
    }
    // The driver, with the bytes as the stick's answers (64 bytes per USB read).
    let Ok(mut driver) = Driver::new(DriverConfig::new("123456")) else {
        return;
    };
    let mut chunks = data.chunks(64);
    let mut action = driver.start();
    for _ in 0..10_000 {
        action = match action {
            Action::Done(_) | Action::Failed(_) => break,
            Action::Write(_) => driver.on_written(),
            Action::Wait { .. } => driver.on_waited(),
            Action::Read => match chunks.next() {
                Some(c) => driver.on_read(c),
                None => driver.on_timeout(),
            },
        };
    }
});
