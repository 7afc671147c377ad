// Browser tests of the report pages: every page draws its charts after
// hydration, reads without JavaScript, shows tooltips, zooms the daily
// chart, follows the viewer's unit, and links its PDF.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, launch, hydrated, SHOTS } from './helpers.mjs';

const EMAIL = 'demo.patient@diabase.example';
const PASSWORD = 'glucose-demo-patient-2026';
const PAGES = [
  { path: '/reports', name: 'overview', charts: ['chart-tir', 'chart-agp'] },
  { path: '/reports/daily', name: 'daily', charts: ['chart-daily-'] },
  { path: '/reports/trends', name: 'trends', charts: ['chart-trends-ranges', 'chart-trends-insulin'] },
  { path: '/reports/logbook', name: 'logbook', charts: ['chart-logbook'] },
  { path: '/reports/settings', name: 'settings', charts: ['chart-basal-0'] },
];

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

async function loggedIn(options = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  const r = await ctx.request.post(`${server.base}/api/v1/auth/login`, { data: { email: EMAIL, password: PASSWORD } });
  assert.equal(r.status(), 200);
  return ctx;
}

/** Waits until every chart box on the page is drawn; returns, per box, the count of painted canvas pixels. */
async function drawnCharts(page) {
  await page.waitForFunction(() => {
    const boxes = [...document.querySelectorAll('.chart')];
    return boxes.length > 0 && boxes.every((b) => b.dataset.drawn === 'true' && b.querySelector('canvas'));
  }, null, { timeout: 30_000 });
  // Let the (short) entry animations finish.
  await page.waitForTimeout(1200);
  return page.evaluate(() => [...document.querySelectorAll('.chart')].map((box) => {
    let painted = 0;
    for (const canvas of box.querySelectorAll('canvas')) {
      const ctx = canvas.getContext('2d');
      if (!ctx || canvas.width === 0 || canvas.height === 0) continue;
      const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      for (let i = 0; i < data.length; i += 4) {
        const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
        if (a > 0 && !(r > 245 && g > 245 && b > 245)) painted += 1;
      }
    }
    return { id: box.id, painted, width: box.clientWidth };
  }));
}

test('every report page draws its charts with painted pixels', async () => {
  const ctx = await loggedIn();
  const page = await ctx.newPage();
  for (const p of PAGES) {
    await page.goto(`${server.base}${p.path}`);
    await hydrated(page);
    const charts = await drawnCharts(page);
    for (const prefix of p.charts) {
      const c = charts.find((x) => x.id.startsWith(prefix));
      assert.ok(c, `${p.path}: chart ${prefix} present (${JSON.stringify(charts)})`);
      assert.ok(c.painted > 2000, `${p.path}: chart ${c.id} has drawn pixels (${c.painted})`);
      assert.ok(c.width > 100, `${p.path}: chart ${c.id} has a width`);
    }
    await page.screenshot({ path: join(SHOTS, `reports-${p.name}.png`), fullPage: true });
  }
  await ctx.close();
});

test('the overview reads without JavaScript: figures and the AGP table are server-rendered', async () => {
  const ctx = await loggedIn({ javaScriptEnabled: false });
  const page = await ctx.newPage();
  await page.goto(`${server.base}/reports`);
  assert.match(await page.textContent('[data-testid=tir-in-range]'), /^\d+\.\d\s%$/);
  assert.match(await page.textContent('[data-testid=fig-mean]'), /\d+ mg\/dL/);
  assert.equal(await page.locator('[data-testid=agp-table] tbody tr').count(), 24);
  assert.match(await page.textContent('[data-testid=insulin-summary]'), /Total daily dose/);
  assert.match(await page.textContent('[data-testid=report-window]'), /14 days/);
  await page.goto(`${server.base}/reports/logbook`);
  assert.equal(await page.locator('[data-testid=logbook-table] tbody tr').count(), 14);
  await ctx.close();
});

test('the AGP shows a tooltip on hover; the daily chart zooms and pages between days', async () => {
  const ctx = await loggedIn();
  const page = await ctx.newPage();
  await page.goto(`${server.base}/reports`);
  await hydrated(page);
  await drawnCharts(page);
  await page.locator('#chart-agp').scrollIntoViewIfNeeded();
  const box = await page.locator('#chart-agp').boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.55);
  await page.mouse.move(box.x + box.width * 0.52, box.y + box.height * 0.5);
  const tip = page.locator('#chart-agp div', { hasText: 'Median:' }).last();
  await tip.waitFor({ state: 'visible', timeout: 10_000 });
  assert.match(await tip.textContent(), /95 %: [\d.]+ mg\/dL.*Median: [\d.]+ mg\/dL/s);
  await page.screenshot({ path: join(SHOTS, 'reports-agp-tooltip.png') });

  // Presets change the window.
  await page.click('[data-testid=preset-7]');
  await page.waitForFunction(() => /7 days/.test(document.querySelector('[data-testid=report-window]')?.textContent || ''));

  await page.goto(`${server.base}/reports/daily`);
  await hydrated(page);
  await drawnCharts(page);
  // The newest day is today, uploaded from the pump a moment ago: step back to a whole day.
  const today = await page.textContent('[data-testid=day-title]');
  await page.click('[data-testid=prev-day]');
  await page.waitForFunction((t) => document.querySelector('[data-testid=day-title]')?.textContent !== t, today);
  await drawnCharts(page);
  const title = await page.textContent('[data-testid=day-title]');
  const zoom = await page.evaluate(() => {
    const el = document.querySelector('.chart');
    const opt = window.echarts.getInstanceByDom(el).getOption();
    return { zooms: opt.dataZoom.length, series: opt.series.map((s) => s.name), every: opt.xAxis[0].axisLabel.interval };
  });
  assert.equal(zoom.zooms, 2, 'inside and slider zoom');
  assert.equal(zoom.every, 35, 'a wide daily chart labels every 3 hours (36 five-minute slots)');
  for (const s of ['CGM', 'Fingerstick', 'Basal', 'Scheduled basal', 'Temp basal', 'Bolus', 'Carbs']) {
    assert.ok(zoom.series.includes(s), `daily series ${s} in ${zoom.series}`);
  }
  await page.locator('.chart').scrollIntoViewIfNeeded();
  const daily = await page.locator('.chart').boundingBox();
  await page.mouse.move(daily.x + daily.width * 0.5, daily.y + daily.height * 0.3);
  await page.locator('.chart div', { hasText: 'CGM' }).last().waitFor({ state: 'visible', timeout: 10_000 });
  await page.click('[data-testid=prev-day]');
  await page.waitForFunction((t) => document.querySelector('[data-testid=day-title]')?.textContent !== t, title);
  await drawnCharts(page);
  assert.notEqual(await page.textContent('[data-testid=day-title]'), title);
  await page.screenshot({ path: join(SHOTS, 'reports-daily-previous.png'), fullPage: true });

  // The PDF link serves a PDF.
  const href = await page.getAttribute('[data-testid=pdf-link]', 'href');
  const pdf = await page.request.get(`${server.base}${href}`);
  assert.equal(pdf.status(), 200);
  assert.equal(pdf.headers()['content-type'], 'application/pdf');
  assert.equal((await pdf.body()).subarray(0, 5).toString(), '%PDF-');
  await ctx.close();
});

test('switching the unit to mmol/L relabels figures and axes', async () => {
  const ctx = await loggedIn();
  const page = await ctx.newPage();
  await page.goto(`${server.base}/settings`);
  await hydrated(page);
  await page.check('input[name=glucose_unit][value="mmol/L"]');
  await page.click('form.form button[type=submit]');
  await page.waitForSelector('[data-testid=settings-saved]');

  await page.goto(`${server.base}/reports`);
  await hydrated(page);
  await drawnCharts(page);
  assert.match(await page.textContent('[data-testid=fig-mean]'), /\d+\.\d mmol\/L/);
  assert.match(await page.textContent('details.data-table summary'), /mmol\/L/);
  const axis = await page.evaluate(() => {
    const opt = window.echarts.getInstanceByDom(document.getElementById('chart-agp')).getOption();
    return { name: opt.yAxis[0].name, max: opt.yAxis[0].max, median: opt.series.find((s) => s.name === 'Median').data.filter((v) => v !== '-') };
  });
  assert.equal(axis.name, 'mmol/L');
  assert.ok(axis.max < 40, `the axis is in mmol/L (max ${axis.max})`);
  assert.ok(axis.median.every((v) => v > 2 && v < 25), 'median values in mmol/L');
  await page.screenshot({ path: join(SHOTS, 'reports-overview-mmol.png'), fullPage: true });

  await page.goto(`${server.base}/reports/daily`);
  await hydrated(page);
  await drawnCharts(page);
  const yName = await page.evaluate(() => window.echarts.getInstanceByDom(document.querySelector('.chart')).getOption().yAxis[0].name);
  assert.equal(yName, 'mmol/L');
  assert.match(await page.textContent('h2:has-text("CGM by hour")'), /mmol\/L/);

  // Back to mg/dL for whoever runs next.
  const r = await page.request.patch(`${server.base}/api/v1/me`, { data: { glucose_unit: 'mg/dL' }, headers: { Origin: server.base } });
  assert.equal(r.status(), 200);
  await ctx.close();
});

test('at phone width the report pages do not overflow', async () => {
  const ctx = await loggedIn({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await ctx.newPage();
  for (const p of ['/reports', '/reports/daily']) {
    await page.goto(`${server.base}${p}`);
    await hydrated(page);
    await drawnCharts(page);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 1, `${p}: no horizontal page overflow at phone width (${overflow}px)`);
    // Time-of-day labels thin out to every 6 hours so that they never touch.
    const axes = await page.evaluate(() => [...document.querySelectorAll('.chart[data-drawn]')]
      .map((el) => window.echarts.getInstanceByDom(el).getOption())
      .filter((o) => o.xAxis?.[0]?.data?.[0] === '00:00')
      .map((o) => ({ every: o.xAxis[0].axisLabel.interval, slots: o.xAxis[0].data.length })));
    assert.ok(axes.length >= 1, `${p}: a time-of-day chart is drawn`);
    for (const a of axes) {
      const labels = Math.ceil(a.slots / (a.every + 1));
      assert.ok(labels <= 5, `${p}: ${labels} time labels on a phone (every ${a.every + 1} of ${a.slots} slots)`);
    }
  }
  await page.screenshot({ path: join(SHOTS, 'reports-daily-phone.png'), fullPage: true });
  await ctx.close();
});

test('the metrics and AGP of 90 days run in the browser (wasm) in under 3 ms', async () => {
  const ctx = await loggedIn();
  const page = await ctx.newPage();
  await page.goto(`${server.base}/reports`);
  await hydrated(page);
  // The hydrated app's own wasm module: the same instance, already initialised.
  const ms = await page.evaluate(async () => {
    const src = [...document.querySelectorAll('script[type=module], link[rel=modulepreload]')]
      .map((e) => e.src || e.href).find((u) => u && /\/pkg\/[^/]+\.js$/.test(u));
    const m = await import(src || '/pkg/diabase.js');
    m.bench_metrics(25920, 3); // warm up
    return m.bench_metrics(25920, 50);
  });
  console.log(`wasm metrics, 90 days (25,920 readings), mean of 50 runs: ${ms.toFixed(3)} ms`);
  assert.ok(ms > 0, `a measurement (${ms})`);
  assert.ok(ms < 3, `metrics in wasm took ${ms} ms (target < 3 ms)`);
  await ctx.close();
});

test('ECharts loads only where charts are drawn: not on the dashboard, on the first chart after an in-app link', async () => {
  const ctx = await loggedIn();
  const page = await ctx.newPage();
  const echarts = () => page.evaluate(() => performance.getEntriesByType('resource')
    .map((e) => new URL(e.name).pathname).filter((p) => /^\/echarts\.min\.[0-9a-f]{16}\.js$/.test(p)));
  await page.goto(`${server.base}/`);
  await hydrated(page);
  assert.deepEqual(await echarts(), [], 'the dashboard does not fetch ECharts');
  assert.equal(await page.evaluate(() => typeof window.echarts), 'undefined');
  // A link inside the app: no page load, so the first chart fetches ECharts.
  await page.click('nav a[href="/reports"]');
  await page.waitForURL(/\/reports$/);
  await drawnCharts(page);
  assert.equal((await echarts()).length, 1, 'fetched once, by its hashed address');
  await ctx.close();
});
