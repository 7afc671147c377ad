// Shared helpers for the browser tests: start the real server on a free port
// against a fresh SQLite database, and launch Debian's Chromium.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import net from 'node:net';
import { chromium } from 'playwright-core';

export const ROOT = resolve(import.meta.dirname, '..');
export const SHOTS = join(ROOT, 'end2end', 'screenshots');

async function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
    s.on('error', rej);
  });
}

// The data folder of each running server, by its address (for the outbox).
const dirs = new Map();

/**
 * Starts the release server on a fresh SQLite database. `port`, `dir` (the
 * data folder of an earlier run, kept by `stop({ keep: true })`) and `site`
 * restart a server as a deploy would: same address, same data, new files.
 */
export async function startServer({ demo = false, port = undefined, dir = undefined, site = undefined } = {}) {
  const bin = process.env.DIABASE_BIN;
  if (!bin) throw new Error('DIABASE_BIN is not set: run the browser tests through `make e2e`');
  dir = dir || mkdtempSync(join(tmpdir(), 'diabase-e2e-'));
  port = port || await freePort();
  const args = ['serve', '--addr', `127.0.0.1:${port}`];
  if (demo) args.push('--demo');
  const proc = spawn(bin, args, {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: `sqlite://${dir}/e2e.sqlite?mode=rwc`,
      DIABASE_KEY_FILE: join(dir, 'field.key'),
      DIABASE_MAIL_OUTBOX: join(dir, 'outbox'),
      LEPTOS_SITE_ROOT: site || process.env.LEPTOS_SITE_ROOT || join(ROOT, 'target', 'site'),
      RUST_LOG: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`server exited early:\n${output}`);
    try {
      const r = await fetch(`${base}/api/v1/health`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`server did not start in 60 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  dirs.set(base, dir);
  dirs.set(base.replace('127.0.0.1', 'localhost'), dir);
  return {
    base,
    dir,
    port,
    output: () => output,
    async stop({ keep = false } = {}) {
      proc.kill('SIGTERM');
      await new Promise((r) => { if (proc.exitCode !== null) r(); else proc.on('exit', r); });
      if (!keep) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function launch() {
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Waits until the page is hydrated (the wasm app took over). */
export async function hydrated(page) {
  await page.waitForFunction(() => document.body && window.__diabase_hydrated === true, null, { timeout: 30_000 });
}

export const STRONG = 'violet-harbour-lantern-92';

/**
 * Confirms `email` with the link of its newest confirmation mail in the
 * outbox of the server at `base` (waiting up to 10 s for the mail). Until
 * then the account gets no passkeys, tokens, Nightscout site or sharing.
 */
export async function confirmEmail(ctx, base, email) {
  const outbox = join(dirs.get(base), 'outbox');
  const deadline = Date.now() + 10_000;
  let token = null;
  while (!token) {
    if (existsSync(outbox)) {
      const mail = readdirSync(outbox).sort().reverse().map((f) => readFileSync(join(outbox, f), 'utf8'))
        .find((m) => m.includes(`To: <${email}>`) && m.includes('/verify-email?token='));
      token = mail && /verify-email\?token=([A-Za-z0-9_-]+)/.exec(mail)[1];
    }
    if (!token) {
      if (Date.now() > deadline) throw new Error(`no confirmation mail to ${email}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const r = await ctx.request.post(`${base}/api/v1/auth/verify-email`, { data: { token }, headers: { Origin: base } });
  assert.equal(r.status(), 204);
}

/** Signs up, confirms the address and logs in through the API, in the browser context `ctx`. */
export async function account(ctx, base, email, name, role) {
  assert.equal((await ctx.request.post(`${base}/api/v1/auth/signup`, {
    data: { email, password: STRONG, display_name: name, role },
  })).status(), 201);
  await confirmEmail(ctx, base, email);
  assert.equal((await ctx.request.post(`${base}/api/v1/auth/login`, {
    data: { email, password: STRONG },
  })).status(), 200);
}

/** `n` 5-minute CGM readings ending now, posted as xDrip+ would. */
export async function postCgm(ctx, base, n = 576) {
  const site = await (await ctx.request.post(`${base}/api/v1/me/nightscout`)).json();
  const secret = createHash('sha1').update(site.secret).digest('hex');
  const now = Math.floor(Date.now() / 300_000) * 300_000;
  const entries = [];
  for (let i = 0; i < n; i++) {
    entries.push({ type: 'sgv', sgv: Math.round(150 + 70 * Math.sin(i / 20)), date: now - (n - i) * 300_000, device: 'xDrip-DexcomG6', direction: 'Flat' });
  }
  const r = await ctx.request.post(`${base}/api/v1/entries`, { data: entries, headers: { 'api-secret': secret } });
  assert.equal(r.status(), 200);
}
