// A `navigator.usb` for the browser tests only: a CareLink USB stick whose transfers go to the
// MiniMed simulator compiled to wasm (crates/minimed-sim-wasm, built by `make sim-wasm`). The
// page's real WebUSB transport and driver run unchanged against it. Nothing here is served by
// Diabase: Playwright routes /__sim__/ to the built files and injects the shim before the page's
// own scripts run.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers.mjs';

export const SIM_DIR = join(ROOT, process.env.SIM_WASM_DIR || 'target/sim-wasm');
export const haveSim = existsSync(join(SIM_DIR, 'minimed_sim_wasm_bg.wasm'));

/** Installs the shim in a browser context: a 90-day pump of `model` with `serial`. */
export async function installUsbShim(ctx, { model = 522, serial = '123456', seed = 7 } = {}) {
  const js = readFileSync(join(SIM_DIR, 'minimed_sim_wasm.js'));
  const wasm = readFileSync(join(SIM_DIR, 'minimed_sim_wasm_bg.wasm'));
  await ctx.route('**/__sim__/minimed_sim_wasm.js', (r) => r.fulfill({ body: js, contentType: 'text/javascript' }));
  await ctx.route('**/__sim__/minimed_sim_wasm_bg.wasm', (r) => r.fulfill({ body: wasm, contentType: 'application/wasm' }));
  await ctx.addInitScript(({ model, serial, seed }) => {
    let simPromise = null;
    const sim = () => {
      simPromise ??= (async () => {
        const m = await import('/__sim__/minimed_sim_wasm.js');
        await m.default({ module_or_path: '/__sim__/minimed_sim_wasm_bg.wasm' });
        const s = new m.SimStick(model, serial, Date.now(), seed);
        window.__sim = s;
        return s;
      })();
      return simPromise;
    };
    // A bulk IN transfer waits until the stick has something to say, as on real hardware.
    let waiting = null;
    const deliver = (s) => {
      if (!waiting) return;
      const b = s.read();
      if (b === undefined) return;
      const w = waiting;
      waiting = null;
      w({ status: 'ok', data: new DataView(b.buffer, b.byteOffset, b.byteLength) });
    };
    const ep = (n, direction) => ({ endpointNumber: n, direction, type: 'bulk', packetSize: 64 });
    const iface = { interfaceNumber: 0, claimed: false, alternate: { alternateSetting: 0, interfaceClass: 255, endpoints: [ep(1, 'in'), ep(2, 'out')] } };
    iface.alternates = [iface.alternate];
    const conf = { configurationValue: 1, interfaces: [iface] };
    const device = {
      vendorId: 0x0a21, productId: 0x8001, productName: 'CareLink USB (simulated)', manufacturerName: 'Medtronic',
      opened: false, configuration: null, configurations: [conf],
      async open() { await sim(); this.opened = true; },
      async close() { this.opened = false; waiting = null; (await sim()).reset(); },
      async selectConfiguration() { this.configuration = conf; },
      async claimInterface() { iface.claimed = true; },
      async releaseInterface() { iface.claimed = false; },
      async transferOut(_n, data) {
        const bytes = new Uint8Array(data.buffer ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data);
        const s = await sim();
        s.write(bytes);
        deliver(s);
        return { status: 'ok', bytesWritten: bytes.length };
      },
      async transferIn() {
        const s = await sim();
        const b = s.read();
        if (b !== undefined) return { status: 'ok', data: new DataView(b.buffer, b.byteOffset, b.byteLength) };
        return new Promise((resolve) => { waiting = resolve; });
      },
    };
    const usb = {
      async requestDevice(opts) {
        const ok = (opts?.filters || []).some((f) => f.vendorId === 0x0a21 && f.productId === 0x8001);
        if (!ok) throw new DOMException('No device selected.', 'NotFoundError');
        return device;
      },
      async getDevices() { return [device]; },
      addEventListener() {}, removeEventListener() {},
    };
    Object.defineProperty(Navigator.prototype, 'usb', { get: () => usb, configurable: true });
    window.__simReady = () => sim();
  }, { model, serial, seed });
}
