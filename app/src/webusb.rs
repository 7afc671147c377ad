//! The WebUSB transport for the MiniMed driver (browser only): it opens the CareLink USB stick
//! (USB 0a21:8001) and performs the sans-IO driver's actions with `transferOut` /
//! `transferIn(64)` and `setTimeout`. The driver (`devices::minimed::driver`) decides every
//! byte; this file only moves them.
//!
//! WebUSB's `transferIn` has no timeout: it waits until the device sends something. A read the
//! driver expects to time out (a stick with nothing to say) is raced against a timer; the
//! transfer that lost the race stays pending and is reused by the next read, so no answer is
//! ever lost or read twice.

use crate::i18n::{t, tf};
use devices::minimed::driver::{Action, Driver, DriverError, Progress};
use devices::minimed::dump::PumpDump;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{UsbDevice, UsbDirection, UsbEndpointType, UsbInTransferResult};

/// The CareLink USB stick's USB ids.
pub const VENDOR_ID: u16 = 0x0a21;
pub const PRODUCT_ID: u16 = 0x8001;
/// How long a read may take before the driver hears "nothing came" (decocare's serial timeout
/// is 0.5 s; a browser adds its own latency).
const READ_TIMEOUT_MS: i32 = 1500;

/// Whether this browser has WebUSB (Chrome and Edge on desktop and Android).
pub fn supported() -> bool {
    web_sys::window()
        .map(|w| js_sys::Reflect::has(&w.navigator(), &JsValue::from_str("usb")).unwrap_or(false))
        .unwrap_or(false)
}

/// An opened, claimed stick.
pub struct Stick {
    device: UsbDevice,
    ep_in: u8,
    ep_out: u8,
    pending_in: Option<js_sys::Promise<UsbInTransferResult>>,
}

fn dom_error_name(e: &JsValue) -> String {
    js_sys::Reflect::get(e, &JsValue::from_str("name")).ok().and_then(|v| v.as_string()).unwrap_or_default()
}

fn dom_error_message(e: &JsValue) -> String {
    js_sys::Reflect::get(e, &JsValue::from_str("message"))
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// What to do when the stick cannot be opened: another program has it, or the operating
/// system gives it to a driver first.
fn claimed_hint(e: &JsValue) -> String {
    tf(
        "The stick could not be opened ({reason}). Close CareLink and any other uploader that may be using it. On Linux, allow access with a udev rule (SUBSYSTEM==\"usb\", ATTR{idVendor}==\"0a21\", ATTR{idProduct}==\"8001\", MODE=\"0666\"); on Windows, the stick needs the WinUSB driver (Zadig installs it).",
        &[("reason", &dom_error_message(e))],
    )
}

impl Stick {
    /// Opens the browser's device chooser, filtered to the stick, then opens and claims it.
    pub async fn choose() -> Result<Stick, String> {
        let window = web_sys::window().ok_or_else(|| t("No browser window.").to_string())?;
        let usb = window.navigator().usb();
        let filter = web_sys::UsbDeviceFilter::new();
        filter.set_vendor_id(VENDOR_ID);
        filter.set_product_id(PRODUCT_ID);
        let options = web_sys::UsbDeviceRequestOptions::new(&[filter]);
        let device = usb.request_device(&options).await.map_err(|e| {
            if dom_error_name(&e) == "NotFoundError" {
                t("No CareLink USB stick was chosen. Plug the stick in, click Connect device and choose it in the list.").to_string()
            } else {
                claimed_hint(&e)
            }
        })?;
        Stick::open(device).await
    }

    async fn open(device: UsbDevice) -> Result<Stick, String> {
        if !device.opened() {
            device.open().await.map_err(|e| claimed_hint(&e))?;
        }
        if device.configuration().is_none() {
            device.select_configuration(1).await.map_err(|e| claimed_hint(&e))?;
        }
        let config = device.configuration().ok_or_else(|| t("The stick has no USB configuration.").to_string())?;
        let mut found: Option<(u8, u8, u8)> = None;
        for iface in config.interfaces().iter() {
            let (mut ep_in, mut ep_out) = (None, None);
            for ep in iface.alternate().endpoints().iter() {
                if ep.type_() != UsbEndpointType::Bulk {
                    continue;
                }
                match ep.direction() {
                    UsbDirection::In => ep_in = Some(ep.endpoint_number()),
                    UsbDirection::Out => ep_out = Some(ep.endpoint_number()),
                    _ => {}
                }
            }
            if let (Some(i), Some(o)) = (ep_in, ep_out) {
                found = Some((iface.interface_number(), i, o));
                break;
            }
        }
        let (iface, ep_in, ep_out) = found
            .ok_or_else(|| t("This USB device is not a CareLink USB stick (it has no bulk endpoints).").to_string())?;
        device.claim_interface(iface).await.map_err(|e| claimed_hint(&e))?;
        Ok(Stick { device, ep_in, ep_out, pending_in: None })
    }

    async fn write(&mut self, bytes: &[u8]) -> bool {
        match self.device.transfer_out_with_u8_slice(self.ep_out, bytes) {
            Ok(p) => p.await.is_ok(),
            Err(_) => false,
        }
    }

    /// One bulk IN transfer, or `None` after [`READ_TIMEOUT_MS`].
    async fn read(&mut self) -> Result<Option<Vec<u8>>, String> {
        let transfer = match self.pending_in.take() {
            Some(p) => p,
            None => self.device.transfer_in(self.ep_in, 64),
        };
        let timer = sleep_promise(READ_TIMEOUT_MS);
        let race = js_sys::Promise::race(&js_sys::Array::of2(&transfer, &timer));
        let won = race.await.map_err(|e| {
            tf(
                "The stick stopped answering ({reason}). Unplug it, plug it back in and try again.",
                &[("reason", &dom_error_message(&e))],
            )
            .to_string()
        })?;
        if won.is_undefined() || won.is_null() {
            // The timer won: keep the transfer for the next read.
            self.pending_in = Some(transfer);
            return Ok(None);
        }
        let result: UsbInTransferResult = won.unchecked_into();
        Ok(result.data().map(|view| {
            let bytes = js_sys::Uint8Array::new_with_byte_offset_and_length(
                &view.buffer(),
                view.byte_offset() as u32,
                view.byte_length() as u32,
            );
            bytes.to_vec()
        }))
    }

    /// Releases the stick (best effort).
    pub async fn close(self) {
        let _ = self.device.close().await;
    }
}

/// A promise that resolves with `undefined` after `ms`.
fn sleep_promise(ms: i32) -> js_sys::Promise {
    js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    })
}

/// Waits `ms` milliseconds.
pub async fn sleep(ms: i32) {
    let _ = sleep_promise(ms).await;
}

fn utc_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(js_sys::Date::now() as i64).unwrap_or_default()
}

/// Runs the driver over the stick to the end. `progress` is told after every step;
/// `cancelled` is asked before every step.
pub async fn run(
    stick: &mut Stick,
    mut driver: Driver,
    mut progress: impl FnMut(Progress),
    cancelled: impl Fn() -> bool,
) -> Result<PumpDump, DriverError> {
    driver.set_utc_now(utc_now());
    let mut action = driver.start();
    loop {
        progress(driver.progress());
        if cancelled() {
            action = driver.cancel();
        }
        action = match action {
            Action::Done(d) => return Ok(*d),
            Action::Failed(e) => return Err(e),
            Action::Write(bytes) => {
                if stick.write(&bytes).await {
                    driver.on_written()
                } else {
                    driver.on_timeout()
                }
            }
            Action::Read => match stick.read().await {
                Ok(Some(b)) => {
                    driver.set_utc_now(utc_now());
                    driver.on_read(&b)
                }
                Ok(None) => driver.on_timeout(),
                Err(e) => return Err(DriverError::Protocol(e)),
            },
            Action::Wait { ms } => {
                sleep(i32::try_from(ms).unwrap_or(i32::MAX)).await;
                driver.on_waited()
            }
        };
    }
}
