// Browser tests of the foundation: accounts, settings, log-out, PWA.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, launch, hydrated, SHOTS, STRONG } from './helpers.mjs';

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
