// Browser tests of the foundation: accounts, settings, log-out, PWA.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request as httpGet } from 'node:http';
import { startServer, launch, hydrated, SHOTS, STRONG, ROOT } from './helpers.mjs';

let server;
let browser;

before(async () => {
  server = await startServer({ demo: true });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('sign up, log in, change unit and time zone, log out; the old cookie is refused', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await ctx.newPage();
  await page.goto(`${server.base}/signup`);
  await hydrated(page);
  await page.screenshot({ path: join(SHOTS, 'signup.png'), fullPage: true });

  // A weak password is refused with a reason.
  await page.fill('input[name=display_name]', 'Robin Tester');
  await page.fill('input[name=email]', 'robin@example.org');
  await page.fill('input[name=password]', 'password12');
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=signup-error]');
  assert.match(await page.textContent('[data-testid=signup-error]'), /stronger|characters/);

  await page.fill('input[name=password]', STRONG);
  await page.click('button[type=submit]');
  await page.waitForURL(/\/login\?created=1/);
  await hydrated(page);

  await page.fill('input[name=email]', 'robin@example.org');
  await page.fill('input[name=password]', STRONG);
  await page.click('form button[type=submit]');
  await page.waitForSelector('[data-testid=empty-dashboard]');
  assert.equal(await page.textContent('[data-testid=nav-name]'), 'Robin Tester');
  await page.screenshot({ path: join(SHOTS, 'dashboard-empty.png'), fullPage: true });

  // Client-side navigation after hydration: no full reload.
  await hydrated(page);
  await page.evaluate(() => { window.__marker = 'still-here'; });
  await page.click('nav a[href="/settings"]');
  await page.waitForSelector('select[name=time_zone]');
  assert.equal(await page.evaluate(() => window.__marker), 'still-here');

  await page.check('input[name=glucose_unit][value="mmol/L"]');
  await page.selectOption('select[name=time_zone]', 'Europe/Paris');
  await page.click('form.form button[type=submit]');
  await page.waitForSelector('[data-testid=settings-saved]');
  const me = await (await page.request.get(`${server.base}/api/v1/me`)).json();
  assert.equal(me.glucose_unit, 'mmol/L');
  assert.equal(me.time_zone, 'Europe/Paris');
  await page.reload();
  await hydrated(page);
  assert.equal(await page.inputValue('select[name=time_zone]'), 'Europe/Paris');
  assert.equal(await page.isChecked('input[name=glucose_unit][value="mmol/L"]'), true);
  await page.screenshot({ path: join(SHOTS, 'settings.png'), fullPage: true });

  const cookies = await ctx.cookies();
  const session = cookies.find((c) => c.name === 'diabase_session');
  assert.ok(session, 'session cookie set');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Lax');

  await page.click('.nav-user button[type=submit]');
  await page.waitForURL(/\/login\?signed_out=1/);

  // The same cookie, replayed after log-out, is refused.
  const replay = await browser.newContext();
  await replay.addCookies([{ ...session }]);
  const p2 = await replay.newPage();
  await p2.goto(`${server.base}/settings`);
  await p2.waitForSelector('[data-testid=login-required]');
  const r = await p2.request.get(`${server.base}/api/v1/me`);
  assert.equal(r.status(), 401);
  await replay.close();
  await ctx.close();
});

test('the demo patient sees a dashboard with figures; phone width works', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(`${server.base}/login`);
  await hydrated(page);
  await page.fill('input[name=email]', 'demo.patient@diabase.example');
  await page.fill('input[name=password]', 'glucose-demo-patient-2026');
  await page.click('form button[type=submit]');
  await page.waitForSelector('[data-testid=latest-reading]');
  const tir = await page.textContent('[data-testid=tir-in-range]');
  assert.match(tir, /\d+\.\d\s%/);
  await page.screenshot({ path: join(SHOTS, 'dashboard-demo.png'), fullPage: true });
  for (const path of ['/upload', '/reports', '/sharing']) {
    await page.goto(`${server.base}${path}`);
    await page.waitForSelector('h1.page-title');
    await page.screenshot({ path: join(SHOTS, `page${path.replace('/', '-')}.png`), fullPage: true });
  }
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await phone.addCookies(await ctx.cookies());
  const pp = await phone.newPage();
  await pp.goto(`${server.base}/`);
  await pp.waitForSelector('[data-testid=latest-reading]');
  const overflow = await pp.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 1, `no horizontal page overflow at phone width (${overflow}px)`);
  await pp.screenshot({ path: join(SHOTS, 'dashboard-phone.png'), fullPage: true });
  await phone.close();
  await ctx.close();
});

test('the demo clinician sees the clinic roster', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const r = await page.request.post(`${server.base}/api/v1/auth/login`, {
    data: { email: 'demo.clinician@diabase.example', password: 'glucose-demo-clinician-2026' },
  });
  assert.equal(r.status(), 200);
  await page.goto(`${server.base}/clinic`);
  await page.waitForSelector('text=Diabase Demo Clinic');
  assert.ok(await page.isVisible('nav a[href="/clinic"]'));
  await page.screenshot({ path: join(SHOTS, 'clinic.png'), fullPage: true });
  await ctx.close();
});

test('installable: the manifest is served and the service worker registers', async () => {
  const res = await fetch(`${server.base}/manifest.webmanifest`);
  assert.equal(res.status, 200);
  const m = await res.json();
  assert.equal(m.display, 'standalone');
  assert.equal(m.start_url, '/');
  const sizes = m.icons.map((i) => i.sizes);
  assert.ok(sizes.includes('192x192') && sizes.includes('512x512'));
  assert.ok(m.icons.some((i) => (i.purpose || '').includes('maskable')));
  for (const icon of m.icons) {
    const r = await fetch(`${server.base}${icon.src}`);
    assert.equal(r.status, 200, icon.src);
    assert.equal(r.headers.get('content-type'), 'image/png');
  }
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${server.base}/`);
  const scope = await page.evaluate(async () => {
    const reg = await navigator.serviceWorker.ready;
    return reg.scope;
  });
  assert.equal(scope, `${server.base}/`);
  // The offline page is pre-cached by the worker.
  const cached = await page.evaluate(async () => {
    const keys = await caches.keys();
    for (const k of keys) {
      const c = await caches.open(k);
      if (await c.match('/offline')) return true;
    }
    return false;
  });
  assert.equal(cached, true);
  await ctx.close();
});

// A wasm custom section (id 0): a valid module with one is still valid, so
// appending one makes a new build that runs exactly as the old one.
function customSection(name, text) {
  const leb = (n) => { const out = []; do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; out.push(b); } while (n); return Buffer.from(out); };
  const body = Buffer.concat([leb(Buffer.byteLength(name)), Buffer.from(name), Buffer.from(text)]);
  return Buffer.concat([Buffer.from([0]), leb(body.length), body]);
}

// The bytes on the wire (not decompressed) and the headers of a GET.
function raw(url, encoding) {
  return new Promise((res, rej) => {
    httpGet(url, { headers: { 'accept-encoding': encoding } }, (r) => {
      let n = 0;
      r.on('data', (d) => { n += d.length; });
      r.on('end', () => res({ status: r.statusCode, headers: r.headers, bytes: n }));
    }).on('error', rej).end();
  });
}

test('a deploy: hashed files come compressed and cached for a year, and after a new build the page runs the new wasm', async () => {
  const site = mkdtempSync(join(tmpdir(), 'diabase-site-'));
  cpSync(process.env.LEPTOS_SITE_ROOT || join(ROOT, 'target', 'site'), site, { recursive: true, preserveTimestamps: true });
  let srv = await startServer({ site });
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const wasmAddress = () => page.evaluate(() => document.querySelector('link[type="application/wasm"]').getAttribute('href'));
  const cachedWasm = () => page.evaluate(async () => {
    const out = [];
    for (const k of await caches.keys()) {
      for (const r of await (await caches.open(k)).keys()) if (r.url.endsWith('.wasm')) out.push(new URL(r.url).pathname);
    }
    return out;
  });
  const waitFor = async (what, ok) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const v = await what();
      if (ok(v)) return v;
      if (Date.now() > deadline) throw new Error(`timed out; last: ${JSON.stringify(v)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  try {
    await page.goto(`${srv.base}/login`);
    await hydrated(page);
    await page.evaluate(() => navigator.serviceWorker.ready);
    await page.reload();
    await hydrated(page);
    const first = await wasmAddress();
    assert.match(first, /^\/pkg\/diabase\.[0-9a-f]{16}\.wasm$/);

    // On the wire: the build's brotli copy, a year in the browser's cache.
    const wasmBytes = statSync(join(site, 'pkg', 'diabase.wasm')).size;
    const br = await raw(`${srv.base}${first}`, 'br');
    assert.equal(br.status, 200);
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(br.headers['content-type'], 'application/wasm');
    assert.equal(br.headers['cache-control'], 'public, max-age=31536000, immutable');
    const gz = await raw(`${srv.base}${first}`, 'gzip');
    assert.equal(gz.headers['content-encoding'], 'gzip');
    const html = await raw(`${srv.base}/login`, 'br');
    assert.equal(html.headers['content-encoding'], 'br');
    assert.equal(html.headers['cache-control'], 'no-store');
    console.log(`app wasm: ${(wasmBytes / 1024).toFixed(0)} KiB, ${(gz.bytes / 1024).toFixed(0)} KiB gzip, ${(br.bytes / 1024).toFixed(0)} KiB brotli on the wire`);
    assert.ok(br.bytes < wasmBytes * 0.4, `brotli sends ${br.bytes} of ${wasmBytes} bytes`);

    // The worker keeps the hashed build.
    await waitFor(cachedWasm, (v) => v.includes(first));

    // Deploy: a new build of the wasm (its brotli and gzip copies now older
    // than it), the same address and data.
    await srv.stop({ keep: true });
    const wasmFile = join(site, 'pkg', 'diabase.wasm');
    appendFileSync(wasmFile, customSection('diabase-e2e', `build ${Date.now()}`));
    srv = await startServer({ site, port: srv.port, dir: srv.dir });
    await page.reload();
    await hydrated(page);
    const second = await wasmAddress();
    assert.notEqual(second, first, 'a new build is a new address');
    const loaded = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname));
    assert.ok(loaded.includes(second), `the page loaded the new wasm: ${loaded.filter((n) => n.endsWith('.wasm'))}`);
    assert.ok(!loaded.includes(first), 'and not the old one');
    assert.ok(!loaded.some((p) => p.startsWith('/echarts')), 'the log-in page draws no chart and does not fetch ECharts');
    // The worker holds the new build only.
    await waitFor(cachedWasm, (v) => v.includes(second) && !v.includes(first));
    // The stale compressed copy is never sent: the bytes are the new file's.
    const now = Buffer.from(await (await fetch(`${srv.base}${second}`, { headers: { 'accept-encoding': 'br' } })).arrayBuffer());
    assert.ok(now.equals(readFileSync(wasmFile)), 'the new wasm, not the stale brotli copy');
    assert.equal((await fetch(`${srv.base}${first}`)).status, 404, 'the old build is gone');
  } finally {
    await ctx.close();
    await srv.stop();
    rmSync(site, { recursive: true, force: true });
  }
});
