// Browser tests of languages: switching to Spanish in Settings changes the
// interface text and the date format (and the account keeps the choice); a
// browser that asks for French gets French before anyone signs in, the
// footer switches to German, and the sign-up form stores the language.
// Expected texts come from the message catalogs, so the test checks that
// the page really renders them, not one particular wording.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, launch, hydrated, account, postCgm, ROOT, SHOTS, STRONG } from './helpers.mjs';

let server;
let browser;

/** One language's catalog: every area file merged. */
function catalog(lang) {
  const dir = join(ROOT, 'app', 'locales', lang);
  const all = {};
  for (const f of readdirSync(dir)) Object.assign(all, JSON.parse(readFileSync(join(dir, f), 'utf8')));
  return all;
}

const EN_DAY = /^(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (January|February|March|April|May|June|July|August|September|October|November|December) (\d{1,2}), (\d{4})$/;
const ES_DAY = /^(lunes|martes|miércoles|jueves|viernes|sábado|domingo), (\d{1,2}) de (enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|diciembre) de (\d{4})$/;

before(async () => {
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function lang(page) {
  return page.evaluate(() => document.documentElement.lang);
}

test('switching to Spanish in Settings changes the interface text and the date format', async () => {
  const es = catalog('es');
  const ctx = await browser.newContext({ locale: 'en-US' });
  await account(ctx, server.base, 'ana.ruiz@example.org', 'Ana Ruiz', 'patient');
  await postCgm(ctx, server.base, 288);
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));

  // English first: the daily report's heading is an English long date.
  await page.goto(`${server.base}/reports/daily`);
  await hydrated(page);
  assert.equal(await lang(page), 'en');
  const enTitle = (await page.textContent('[data-testid=day-title]')).trim();
  const en = enTitle.match(EN_DAY);
  assert.ok(en, `English date heading: ${enTitle}`);
  assert.ok(await page.locator('nav.nav >> text=Reports').count() > 0);

  // Settings → Español → Save: the page comes back in Spanish.
  await page.goto(`${server.base}/settings`);
  await hydrated(page);
  assert.equal(await page.inputValue('[data-testid=settings-language]'), 'en');
  await page.selectOption('[data-testid=settings-language]', 'es');
  await page.click('form:has([data-testid=settings-language]) button[type=submit]');
  await page.waitForFunction(() => document.documentElement.lang === 'es', null, { timeout: 30_000 });
  await hydrated(page);
  assert.equal(await page.inputValue('[data-testid=settings-language]'), 'es');
  const nav = await page.textContent('nav.nav');
  for (const k of ['Dashboard', 'Upload', 'Reports', 'Sharing', 'Settings']) {
    assert.ok(es[k] && es[k] !== k, `Spanish catalog has ${k}`);
    assert.ok(nav.includes(es[k]), `nav shows ${es[k]}: ${nav}`);
  }
  assert.ok(!nav.includes('Reports'), nav);
  await page.screenshot({ path: join(SHOTS, 'i18n-1-settings-es.png'), fullPage: true });

  // The same day, now as a Spanish date.
  await page.goto(`${server.base}/reports/daily`);
  await hydrated(page);
  const esTitle = (await page.textContent('[data-testid=day-title]')).trim();
  const m = esTitle.match(ES_DAY);
  assert.ok(m, `Spanish date heading: ${esTitle}`);
  assert.equal(m[2], en[3], 'same day of the month');
  assert.equal(m[4], en[4], 'same year');
  await page.screenshot({ path: join(SHOTS, 'i18n-2-daily-es.png'), fullPage: true });

  // The account keeps the choice; it follows the user to a new browser.
  const me = await (await ctx.request.get(`${server.base}/api/v1/me`)).json();
  assert.equal(me.language, 'es');
  const other = await browser.newContext({ locale: 'en-GB' });
  const p2 = await other.newPage();
  await p2.goto(`${server.base}/login`);
  await hydrated(p2);
  assert.equal(await lang(p2), 'en', 'a new browser that asks for English');
  await p2.fill('input[name=email]', 'ana.ruiz@example.org');
  await p2.fill('input[name=password]', STRONG);
  await p2.click('button[type=submit]');
  await p2.waitForFunction(() => document.documentElement.lang === 'es', null, { timeout: 30_000 });
  await other.close();
  assert.deepEqual(errors, [], 'no script errors (hydration matched the server render)');
  await ctx.close();
});

test('a French browser gets French; the footer switches to German; sign-up stores the language', async () => {
  const fr = catalog('fr');
  const de = catalog('de');
  const ctx = await browser.newContext({ locale: 'fr-FR' });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${server.base}/signup`);
  await hydrated(page);
  assert.equal(await lang(page), 'fr');
  assert.equal((await page.textContent('h1')).trim(), fr['Create your account']);
  assert.equal(await page.inputValue('[data-testid=signup-language]'), 'fr', 'the browser language is the default');
  await page.screenshot({ path: join(SHOTS, 'i18n-3-signup-fr.png'), fullPage: true });

  // The footer's Deutsch link: the same page in German.
  await page.click('footer [data-lang=de]');
  await page.waitForFunction(() => document.documentElement.lang === 'de', null, { timeout: 30_000 });
  await hydrated(page);
  assert.equal((await page.textContent('h1')).trim(), de['Create your account']);
  assert.ok(page.url().endsWith('/signup'), page.url());
  assert.equal(await page.inputValue('[data-testid=signup-language]'), 'de');

  // Sign up in German: the account stores it.
  await page.fill('input[name=display_name]', 'Jonas Weber');
  await page.fill('input[name=email]', 'jonas.weber@example.org');
  await page.fill('input[name=password]', STRONG);
  await page.click('button[type=submit]');
  await page.waitForURL(/\/login\?created=1/);
  await hydrated(page);
  assert.equal(await lang(page), 'de');
  assert.equal((await page.textContent('h1')).trim(), de['Log in']);
  assert.equal((await ctx.request.post(`${server.base}/api/v1/auth/login`, {
    data: { email: 'jonas.weber@example.org', password: STRONG },
  })).status(), 200);
  const me = await (await ctx.request.get(`${server.base}/api/v1/me`)).json();
  assert.equal(me.language, 'de');
  assert.deepEqual(errors, [], 'no script errors (hydration matched the server render)');
  await ctx.close();
});
