// Browser test of file import: a CareLink CSV through the Upload page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, launch, hydrated, SHOTS, ROOT, STRONG } from './helpers.mjs';

const FIXTURE = join(ROOT, '..', 'shared', 'fixtures', 'carelink-csv', 'decocare-578398-mm522', 'CareLink-Export-1430357806982.csv');
const haveFixture = existsSync(FIXTURE);
if (!haveFixture && process.env.CI === 'true') {
  throw new Error(`fixture missing under CI=true: ${FIXTURE}`);
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

test('a patient imports a CareLink CSV and sees the summary and the uploads history', { skip: haveFixture ? false : 'SKIP: ../shared/fixtures not found' }, async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const api = page.request;
  assert.equal((await api.post(`${server.base}/api/v1/auth/signup`, {
    data: { email: 'uma@example.org', password: STRONG, display_name: 'Uma Upload' },
  })).status(), 201);
  assert.equal((await api.post(`${server.base}/api/v1/auth/login`, {
    data: { email: 'uma@example.org', password: STRONG },
  })).status(), 200);

  await page.goto(`${server.base}/upload`);
  await hydrated(page);
  await page.waitForSelector('[data-testid=uploads-empty]');
  await page.setInputFiles('[data-testid=file-input]', FIXTURE);
  await page.waitForSelector('[data-testid=upload-summary]', { timeout: 60_000 });
  const summary = await page.textContent('[data-testid=upload-summary]');
  assert.match(summary, /new record/);
  assert.match(summary, /Boluses/);
  await page.waitForSelector('[data-testid=uploads-table]');
  await page.screenshot({ path: join(SHOTS, 'upload-summary.png'), fullPage: true });

  // The same file again adds nothing.
  await page.setInputFiles('[data-testid=file-input]', FIXTURE);
  await page.waitForFunction(() => {
    const s = document.querySelector('[data-testid=upload-summary]');
    return s && / 0 new record/.test(s.textContent);
  }, null, { timeout: 60_000 });
  // The history refetches after the summary shows: wait for the second row.
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=uploads-table] tbody tr').length === 2, null, { timeout: 30_000 });

  // Delete one upload (accepting the confirmation).
  page.on('dialog', (d) => d.accept());
  await page.locator('[data-testid=delete-upload]').first().click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=uploads-table] tbody tr').length === 1, null, { timeout: 30_000 });
  await ctx.close();
});

test('an unrecognised file gets a clear error', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.request.post(`${server.base}/api/v1/auth/signup`, { data: { email: 'vic@example.org', password: STRONG, display_name: 'Vic' } });
  await page.request.post(`${server.base}/api/v1/auth/login`, { data: { email: 'vic@example.org', password: STRONG } });
  await page.goto(`${server.base}/upload`);
  await hydrated(page);
  await page.setInputFiles('[data-testid=file-input]', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('just some notes\n') });
  await page.waitForSelector('[data-testid=upload-error]');
  assert.match(await page.textContent('[data-testid=upload-error]'), /unrecognised format/);
  await ctx.close();
});
