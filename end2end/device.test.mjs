// Browser test of Upload → Device: a MiniMed pump through the CareLink USB stick over WebUSB.
// `navigator.usb` is replaced (in this test only) by a shim backed by the simulator compiled to
// wasm, so the page's real WebUSB transport and driver run: connect, cancel mid-way, a full
// 90-day upload with the progress bar moving, an incremental second upload, the data in reports.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, launch, hydrated, account, SHOTS } from './helpers.mjs';
import { installUsbShim, haveSim, SIM_DIR } from './usb-shim.mjs';

if (!haveSim && process.env.CI === 'true') {
  throw new Error(`the simulator wasm is missing under CI=true: ${SIM_DIR} (run make sim-wasm)`);
}

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const SERIAL = '123456';
const summarySel = '[data-testid=device-upload] [data-testid=upload-summary]';

test('a patient uploads 90 days from a MiniMed pump over WebUSB, cancels, retries and uploads again incrementally', { skip: haveSim ? false : `SKIP: simulator wasm not built (${SIM_DIR})`, timeout: 600_000 }, async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await installUsbShim(ctx, { model: 522, serial: SERIAL });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await account(ctx, server.base, 'mina@example.org', 'Mina Pump', 'patient');

  await page.goto(`${server.base}/upload`);
  await hydrated(page);
  await page.waitForSelector('[data-testid=pump-serial]');
  assert.equal(await page.locator('[data-testid=no-webusb]').count(), 0);

  // A wrong serial is refused before anything is sent.
  await page.fill('[data-testid=pump-serial]', '12ab');
  assert.equal(await page.locator('[data-testid=pump-serial]').evaluate((e) => e.checkValidity()), false);

  // Connect, and cancel while the history pages are being read: nothing is stored.
  await page.fill('[data-testid=pump-serial]', SERIAL);
  await page.click('[data-testid=connect-device]');
  await page.waitForFunction(() => /history/i.test(document.querySelector('[data-testid=device-stage]')?.textContent || ''), null, { timeout: 120_000 });
  await page.screenshot({ path: join(SHOTS, 'device-upload-progress.png'), fullPage: true });
  await page.click('[data-testid=cancel-device]');
  await page.waitForSelector('[data-testid=device-cancelled]', { timeout: 30_000 });
  const uploads0 = await (await ctx.request.get(`${server.base}/api/v1/uploads`)).json();
  assert.equal(uploads0.length, 0, 'a cancelled upload stores nothing');

  // Try again: the whole pump is read; the progress bar moves forward.
  await page.click('[data-testid=connect-device]');
  const seen = [];
  for (let i = 0; i < 600 && !(await page.locator(summarySel).count()); i++) {
    const v = await page.locator('[data-testid=device-progress]').getAttribute('value').catch(() => null);
    if (v !== null && v !== undefined) seen.push(Number(v));
    await page.waitForTimeout(250);
  }
  await page.waitForSelector(summarySel, { timeout: 60_000 });
  const distinct = [...new Set(seen)];
  assert.ok(distinct.length >= 5, `the progress bar moved: ${distinct.join(',')}`);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1], `progress never goes back: ${seen.join(',')}`);
  const cgm = Number(await page.textContent(`${summarySel} [data-testid=count-cgm]`));
  assert.ok(cgm > 20_000, `90 days of CGM readings: ${cgm}`);
  assert.ok(Number(await page.textContent(`${summarySel} [data-testid=count-bolus]`)) > 100);
  await page.screenshot({ path: join(SHOTS, 'device-upload-summary.png'), fullPage: true });

  // The pump is used for two more hours; the second upload reads only the newest page(s).
  const readsBefore = await page.evaluate(() => { window.__sim.live(120); return window.__sim.history_page_reads(); });
  await page.click('[data-testid=connect-device]');
  await page.waitForFunction(() => /Sending|history|sensor/i.test(document.querySelector('[data-testid=device-upload]')?.textContent || ''), null, { timeout: 60_000 });
  await page.waitForFunction((sel) => {
    const s = document.querySelector(sel);
    return s && /Suspends/.test(s.textContent);
  }, summarySel, { timeout: 180_000 });
  const reads = await page.evaluate(() => window.__sim.history_page_reads()) - readsBefore;
  assert.ok(reads >= 1 && reads <= 2, `an incremental upload reads 1–2 history pages, not ${reads}`);
  assert.equal(Number(await page.textContent(`${summarySel} [data-testid=count-suspend]`)), 1);
  await page.screenshot({ path: join(SHOTS, 'device-upload-incremental.png'), fullPage: true });

  // Stored once, as a device upload of this pump; the reports show it.
  const uploads = await (await ctx.request.get(`${server.base}/api/v1/uploads`)).json();
  assert.equal(uploads.length, 2);
  assert.ok(uploads.every((u) => u.source === 'device' && u.format === 'minimed_pages'));
  const devices = await (await ctx.request.get(`${server.base}/api/v1/devices`)).json();
  assert.ok(devices.some((d) => d.serial === SERIAL && d.model === 'Paradigm 522'), JSON.stringify(devices));
  const me = await (await ctx.request.get(`${server.base}/api/v1/me`)).json();
  const day = (d) => new Date(Date.now() - d * 86_400_000).toISOString().slice(0, 10);
  const rep = await (await ctx.request.get(`${server.base}/api/v1/patients/${me.patient_id}/report?from=${day(13)}&to=${day(0)}`)).json();
  assert.ok(rep.readings > 3000, `the 14-day report counts the pump's CGM: ${rep.readings}`);
  await page.goto(`${server.base}/reports`);
  await hydrated(page);
  await page.waitForSelector('[data-testid=fig-mean]', { timeout: 30_000 });
  assert.equal(await page.locator('[data-testid=report-empty]').count(), 0);
  await page.screenshot({ path: join(SHOTS, 'device-upload-reports.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a browser without WebUSB gets an explanation and the file import', async () => {
  const ctx = await browser.newContext();
  await ctx.addInitScript(() => { delete Navigator.prototype.usb; });
  const page = await ctx.newPage();
  await account(ctx, server.base, 'fox@example.org', 'Fox Firefox', 'patient');
  await page.goto(`${server.base}/upload`);
  await hydrated(page);
  await page.waitForSelector('[data-testid=no-webusb]');
  assert.match(await page.textContent('[data-testid=no-webusb]'), /Chrome or Edge/);
  assert.equal(await page.locator('[data-testid=connect-device]').count(), 0);
  assert.equal(await page.locator('[data-testid=file-input]').count(), 1);
  await ctx.close();
});
