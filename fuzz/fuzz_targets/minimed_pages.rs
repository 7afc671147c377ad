//! Any bytes as a MiniMed history page (under every model family) and as a CGM page: the
//! raw decoders, the CRC-checked page decoders (a valid CRC is appended to the first 1022
//! bytes too, so the page path is reached), the one-clock timeline and the conversion to
//! records — events or a reported stop, never a panic.
#![no_main]
use devices::minimed::glucose::{decode_glucose, decode_glucose_page};
use devices::minimed::history::{decode_history, decode_history_page, timeline};
use devices::minimed::records::{glucose_records, history_records};
use devices::minimed::{PAGE_DATA_LEN, PumpModel, crc};
use libfuzzer_sys::fuzz_target;

const MODELS: [u16; 6] = [515, 522, 523, 551, 723, 754];

fuzz_target!(|data: &[u8]| {
    let mut page = data[..data.len().min(PAGE_DATA_LEN)].to_vec();
    page.resize(PAGE_DATA_LEN, 0);
    let c = crc::crc16_ccitt(&page).to_be_bytes();
    page.extend_from_slice(&c);
    for n in MODELS {
        let Ok(model) = PumpModel::new(n) else {
            continue;
        };
        let h = decode_history(data, model);
        let _ = timeline(std::slice::from_ref(&h), model, None);
        let conv = history_records(&h.events, model);
        let _ = conv.records.iter().map(|r| r.type_name().len()).sum::<usize>();
        let _ = decode_history_page(data, model);
        if let Ok(p) = decode_history_page(&page, model) {
            let _ = history_records(&p.events, model);
        }
    }
    let g = decode_glucose(data);
    if let Ok(model) = PumpModel::new(522) {
        let _ = glucose_records(&g.events, model);
    }
    let _ = decode_glucose_page(data);
    let _ = decode_glucose_page(&page);
});
