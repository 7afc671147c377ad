//! The MiniMed simulator (`devices::minimed::simulator`) behind a wasm-bindgen class, so that
//! the browser tests can replace `navigator.usb` with a shim whose USB transfers go to a
//! simulated CareLink stick and pump (see `end2end/usb-shim.mjs`). The site never loads this:
//! only the tests' init script does.

use chrono::{DateTime, Duration, NaiveDateTime};
use devices::minimed::PumpModel;
use devices::minimed::encode::HistoryEvent;
use devices::minimed::history::{EventData, TempBasalRate};
use devices::minimed::pump::code;
use devices::minimed::simulator::{Scenario, Simulator};
use wasm_bindgen::prelude::*;

/// A simulated CareLink USB stick with a pump behind it.
#[wasm_bindgen]
pub struct SimStick {
    sim: Simulator,
}

fn local(ms: f64) -> Result<NaiveDateTime, JsValue> {
    DateTime::from_timestamp_millis(ms as i64).map(|t| t.naive_utc()).ok_or_else(|| JsValue::from_str("bad time"))
}

#[wasm_bindgen]
impl SimStick {
    /// A pump of `model` with `serial` whose clock reads `clock_ms` (epoch ms of the pump's
    /// wall time read as UTC), holding 90 days of history and CGM pages made from `seed`.
    #[wasm_bindgen(constructor)]
    pub fn new(model: u16, serial: &str, clock_ms: f64, seed: u32) -> Result<SimStick, JsValue> {
        let model = PumpModel::new(model).map_err(|e| JsValue::from_str(&e.to_string()))?;
        let scenario = Scenario::ninety_days(model, serial, local(clock_ms)?, u64::from(seed));
        Ok(SimStick { sim: Simulator::new(scenario) })
    }

    /// One bulk OUT transfer from the host.
    pub fn write(&mut self, bytes: &[u8]) {
        self.sim.write(bytes);
    }

    /// One bulk IN transfer to the host; `undefined` when the stick has nothing to say.
    pub fn read(&mut self) -> Option<Vec<u8>> {
        self.sim.read()
    }

    /// The stick is unplugged and plugged back in (a new session).
    pub fn reset(&mut self) {
        self.sim.reset_session();
    }

    /// The pump is used for `minutes` more: a temp basal, a suspend and a resume are written,
    /// and its clock moves on.
    pub fn live(&mut self, minutes: u32) -> Result<u32, JsValue> {
        let now = self.sim.scenario().clock;
        let m = i64::from(minutes.max(60));
        let at = |f: i64| now + Duration::minutes(m * f / 60);
        let events = vec![
            HistoryEvent::new(at(10), EventData::TempBasal { rate: TempBasalRate::Absolute(0.5), remote: false }),
            HistoryEvent::new(at(10), EventData::TempBasalDuration { duration_min: 30 }),
            HistoryEvent::new(at(40), EventData::Suspend),
            HistoryEvent::new(at(55), EventData::Resume { remote: false }),
        ];
        let pages = self.sim.add_history(&events).map_err(|e| JsValue::from_str(&e.to_string()))?;
        self.sim.set_clock(now + Duration::minutes(m));
        self.sim.reset_session();
        Ok(u32::try_from(pages).unwrap_or(u32::MAX))
    }

    /// How many history pages (ReadHistoryData) the pump has been asked for.
    pub fn history_page_reads(&self) -> u32 {
        u32::try_from(self.sim.commands_seen(code::READ_HISTORY_DATA)).unwrap_or(u32::MAX)
    }
}
