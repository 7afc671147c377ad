// Browser tests of account security: turning on two-factor authentication
// in Settings, logging in with a code, and "Forgot your password?" through
// the emailed link (read from the server's mail outbox).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, launch, hydrated, confirmEmail, SHOTS, STRONG } from './helpers.mjs';

let server;
let browser;

// Mail leaves through the server's queue just after the request that queued
// it answered: poll the outbox (newest file first) until a matching `.eml`
// appears, for up to 10 seconds.
async function waitForMail(matches, timeoutMs = 10_000) {
  const outbox = join(server.dir, 'outbox');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (existsSync(outbox)) {
      const found = readdirSync(outbox)
        .filter((f) => f.endsWith('.eml'))
        .sort()
        .reverse()
        .map((f) => readFileSync(join(outbox, f), 'utf8'))
        .find(matches);
      if (found) return found;
    }
    if (Date.now() >= deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

before(async () => {
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

function base32(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of s.replace(/=+$/, '')) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s) at a Unix time. */
function totp(secret, t = Date.now() / 1000) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(t / 30)));
  const h = createHmac('sha1', base32(secret)).update(counter).digest();
  const off = h[19] & 0x0f;
  const bin = ((h[off] & 0x7f) << 24) | (h[off + 1] << 16) | (h[off + 2] << 8) | h[off + 3];
  return String(bin % 1_000_000).padStart(6, '0');
}

async function logIn(page, email, password, code) {
  await page.goto(`${server.base}/login`);
  await hydrated(page);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  await page.click('form button[type=submit]');
  if (code) {
    // The server asks for the second factor; the field appears.
    await page.waitForSelector('[data-testid=login-totp]');
    await page.fill('[data-testid=login-totp]', code);
    await page.click('form button[type=submit]');
  }
  await page.waitForSelector('[data-testid=nav-name]');
}

test('two-factor authentication: set up in Settings, then log in with a code; forgot password by email', async () => {
  const email = 'two.factor@example.org';
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const r = await page.request.post(`${server.base}/api/v1/auth/signup`, {
    data: { email, password: STRONG, display_name: 'Tove Factor' }, headers: { Origin: server.base },
  });
  assert.equal(r.status(), 201);
  await logIn(page, email, STRONG);

  // Settings: set up, confirm with the app's code, see the recovery codes once.
  await page.goto(`${server.base}/settings`);
  await hydrated(page);
  await page.click('[data-testid=totp-begin]');
  await page.waitForSelector('[data-testid=totp-setup] svg');
  const secret = (await page.textContent('[data-testid=totp-secret]')).trim();
  assert.match(secret, /^[A-Z2-7]{32}$/);
  await page.fill('[data-testid=totp-code]', totp(secret));
  await page.click('[data-testid=totp-confirm]');
  await page.waitForSelector('[data-testid=recovery-codes]');
  const codes = await page.$$eval('[data-testid=recovery-codes] code', (els) => els.map((e) => e.textContent));
  assert.equal(codes.length, 10);
  await page.waitForFunction(() => /On\./.test(document.querySelector('[data-testid="2fa-status"]')?.textContent || ''));
  await page.screenshot({ path: join(SHOTS, 'two-factor-on.png'), fullPage: true });

  // Log out, log in again: the password alone is not enough.
  const out = await page.request.post(`${server.base}/api/v1/auth/logout`, { headers: { Origin: server.base } });
  assert.ok(out.ok());
  await logIn(page, email, STRONG, totp(secret, Date.now() / 1000 + 30));
  await page.screenshot({ path: join(SHOTS, 'two-factor-login.png') });

  // Forgot password: the emailed link sets a new one; then log in with it (and a recovery code).
  await page.request.post(`${server.base}/api/v1/auth/logout`, { headers: { Origin: server.base } });
  await page.goto(`${server.base}/login`);
  await hydrated(page);
  await page.click('[data-testid=forgot-link]');
  await page.waitForURL(/\/forgot-password/);
  await hydrated(page);
  await page.fill('input[name=email]', email);
  await page.click('form button[type=submit]');
  await page.waitForSelector('[data-testid=reset-sent]');
  const mail = await waitForMail((m) => m.includes('Reset your Diabase password'));
  assert.ok(mail, 'a reset mail in the outbox within 10 s');
  const token = /reset-password\?token=([A-Za-z0-9_-]+)/.exec(mail)[1];
  await page.goto(`${server.base}/reset-password?token=${token}`);
  await hydrated(page);
  await page.fill('input[name=password]', 'new-lantern-harbour-77');
  await page.click('form button[type=submit]');
  // The page says what the reset ended and revoked.
  await page.waitForSelector('[data-testid=reset-done]');
  assert.match(await page.textContent('[data-testid=reset-done]'), /API token/);
  await logIn(page, email, 'new-lantern-harbour-77', codes[0]);
  await ctx.close();
});

test('your data: download JSON and FHIR from Settings, then delete the account', async () => {
  const email = 'leaves.soon@example.org';
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await ctx.newPage();
  const r = await page.request.post(`${server.base}/api/v1/auth/signup`, {
    data: { email, password: STRONG, display_name: 'Dana Leaves' }, headers: { Origin: server.base },
  });
  assert.equal(r.status(), 201);
  await logIn(page, email, STRONG);
  await page.goto(`${server.base}/settings`);
  await hydrated(page);
  await page.waitForSelector('[data-testid=your-data-card]');

  // Both downloads arrive as files with the account in them.
  for (const [id, check] of [
    ['export-json', (v) => { assert.equal(v.format, 'diabase-export'); assert.equal(v.account.email, email); }],
    ['export-fhir', (v) => { assert.equal(v.resourceType, 'Bundle'); assert.equal(v.entry[0].resource.name[0].text, 'Dana Leaves'); }],
  ]) {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click(`[data-testid=${id}]`)]);
    assert.match(download.suggestedFilename(), /^diabase-export-\d{4}-\d{2}-\d{2}(\.fhir)?\.json$/);
    check(JSON.parse(readFileSync(await download.path(), 'utf8')));
  }

  // Delete: the wrong password is refused and nothing happens; the right one ends everything.
  await page.click('[data-testid=delete-account] summary');
  await page.fill('[data-testid=delete-password]', 'not-the-password-1');
  await page.check('[data-testid=delete-confirm]');
  await page.click('[data-testid=delete-submit]');
  await page.waitForSelector('[data-testid=delete-error]');
  assert.match(await page.textContent('[data-testid=delete-error]'), /password/i);
  await page.screenshot({ path: join(SHOTS, 'delete-account.png'), fullPage: true });
  await page.fill('[data-testid=delete-password]', STRONG);
  await page.click('[data-testid=delete-submit]');
  await page.waitForURL(/\/login\?deleted=1/);
  await page.waitForFunction(() => /account and all its data are deleted/.test(document.body.textContent));
  const me = await page.request.get(`${server.base}/api/v1/me`);
  assert.equal(me.status(), 401);
  const again = await page.request.post(`${server.base}/api/v1/auth/login`, {
    data: { email, password: STRONG }, headers: { Origin: server.base },
  });
  assert.equal(again.status(), 401);
  await ctx.close();
});

test('passkeys: add one in Settings with a virtual authenticator, log out, sign in with it alone', async () => {
  const email = 'passkey.person@example.org';
  // Passkeys need a domain name: the site's default public address on loopback is localhost.
  const base = server.base.replace('127.0.0.1', 'localhost');
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  // Chromium's virtual authenticator (DevTools WebAuthn domain): a platform
  // authenticator with resident keys and user verification, always consenting.
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
      isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  const r = await page.request.post(`${base}/api/v1/auth/signup`, {
    data: { email, password: STRONG, display_name: 'Pat Key' }, headers: { Origin: base },
  });
  assert.equal(r.status(), 201);
  // Passkeys only for a confirmed address.
  await confirmEmail(page, base, email);
  await page.goto(`${base}/login`);
  await hydrated(page);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', STRONG);
  await page.click('form button[type=submit]');
  await page.waitForSelector('[data-testid=nav-name]');

  await page.goto(`${base}/settings`);
  await hydrated(page);
  await page.waitForSelector('[data-testid=passkey-none]');
  await page.fill('[data-testid=passkey-new-name]', 'Test laptop');
  await page.click('[data-testid=passkey-add]');
  await page.waitForSelector('[data-testid=passkey-added]');
  await page.waitForSelector('[data-testid=passkey-row]');
  assert.equal((await page.textContent('[data-testid=passkey-name]')).trim(), 'Test laptop');
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1);
  assert.equal(credentials[0].isResidentCredential, true, 'a discoverable credential');
  await page.screenshot({ path: join(SHOTS, 'passkey-added.png'), fullPage: true });

  // Log out; sign in with the passkey alone (no email, no password).
  const out = await page.request.post(`${base}/api/v1/auth/logout`, { headers: { Origin: base } });
  assert.ok(out.ok());
  await page.goto(`${base}/login?next=/settings`);
  await hydrated(page);
  await page.click('[data-testid=passkey-login]');
  await page.waitForURL((u) => u.pathname === '/settings');
  await page.waitForSelector('[data-testid=nav-name]');
  const me = await page.request.get(`${base}/api/v1/me`);
  assert.equal(me.status(), 200);
  assert.equal((await me.json()).email, email);
  await page.waitForFunction(() => /last used/.test(document.querySelector('[data-testid=passkey-row]')?.textContent || ''));

  // Remove it: the list is empty again and the authenticator's passkey no longer signs in.
  await page.click('[data-testid=passkey-remove]');
  await page.waitForSelector('[data-testid=passkey-none]');
  await page.request.post(`${base}/api/v1/auth/logout`, { headers: { Origin: base } });
  await page.goto(`${base}/login`);
  await hydrated(page);
  await page.click('[data-testid=passkey-login]');
  await page.waitForFunction(() => {
    const e = document.querySelector('[data-testid=passkey-error]');
    return e && !e.hidden && e.textContent.length > 0;
  });
  assert.equal((await page.request.get(`${base}/api/v1/me`)).status(), 401);
  await ctx.close();
});

test('email confirmation: the reminder in Settings, the emailed link, the confirm button', async () => {
  const email = 'confirm.me@example.org';
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const r = await page.request.post(`${server.base}/api/v1/auth/signup`, {
    data: { email, password: STRONG, display_name: 'Cora Firm' }, headers: { Origin: server.base },
  });
  assert.equal(r.status(), 201);
  await logIn(page, email, STRONG);
  await page.goto(`${server.base}/settings`);
  await hydrated(page);
  await page.waitForSelector('[data-testid=verify-notice]');
  assert.match(await page.textContent('[data-testid=verify-notice]'), /confirm.me@example.org/);

  const mail = await waitForMail((m) => m.includes(`To: <${email}>`) && m.includes('/verify-email?token='));
  assert.ok(mail, 'a confirmation mail in the outbox within 10 s');
  const token = /verify-email\?token=([A-Za-z0-9_-]+)/.exec(mail)[1];
  await page.goto(`${server.base}/verify-email?token=${token}`);
  await hydrated(page);
  await page.click('[data-testid=verify-email]');
  await page.waitForSelector('[data-testid=email-verified]');
  await page.goto(`${server.base}/settings`);
  await hydrated(page);
  await page.waitForSelector('[data-testid=passkeys-card]');
  assert.equal(await page.$('[data-testid=verify-notice]'), null, 'no reminder once confirmed');
  // The same link again: refused with an explanation.
  await page.goto(`${server.base}/verify-email?token=${token}`);
  await hydrated(page);
  await page.click('[data-testid=verify-email]');
  await page.waitForSelector('[data-testid=verify-error]');
  await ctx.close();
});
