// Browser test of sharing on the patient's initiative: a clinic shows its
// share code, a patient enters it on the Data Sharing page, sees the
// clinic's name, picks scopes and shares; the clinic finds the patient
// among its new patients. Then "Pause all sharing" stops the clinician's
// access and "Resume sharing" restores it; the security checklist and the
// login history show the patient's sign-ins.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, launch, hydrated, account as signUp, postCgm as postReadings, SHOTS } from './helpers.mjs';

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

test('share code → patient shares → new patient at the clinic → pause stops access → resume restores it', async () => {
  // The clinic and its share code.
  const clinic = await browser.newContext();
  await signUp(clinic, server.base, 'dr.south@clinic.example', 'Dr. Sam South', 'clinician');
  const cpage = await clinic.newPage();
  await cpage.goto(`${server.base}/clinic`);
  await hydrated(cpage);
  await cpage.fill('[data-testid=clinic-name]', 'South Road Practice');
  await cpage.click('[data-testid=create-clinic]');
  await cpage.waitForSelector('[data-testid=clinic-link]');
  await cpage.click('[data-testid=clinic-link]');
  await cpage.waitForSelector('[data-testid=share-code]');
  const clinicUrl = cpage.url();
  const code = (await cpage.textContent('[data-testid=share-code]')).trim();
  assert.match(code, /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
  await cpage.screenshot({ path: join(SHOTS, 'control-1-share-code.png'), fullPage: true });

  // The patient enters it, sees the clinic's name, shares glucose only.
  const patient = await browser.newContext();
  await signUp(patient, server.base, 'casey@example.org', 'Casey Quinn', 'patient');
  await postReadings(patient, server.base, 288);
  const ppage = await patient.newPage();
  await ppage.goto(`${server.base}/sharing`);
  await hydrated(ppage);
  await ppage.fill('[data-testid=code-input]', code);
  await ppage.click('[data-testid=code-submit]');
  await ppage.waitForSelector('[data-testid=link-offer][data-kind=share]');
  await hydrated(ppage);
  assert.equal((await ppage.textContent('[data-testid=offer-clinic]')).trim(), 'South Road Practice');
  for (const s of ['insulin', 'settings', 'events']) await ppage.uncheck(`[data-testid=accept-scope-${s}]`);
  await ppage.screenshot({ path: join(SHOTS, 'control-2-share-offer.png'), fullPage: true });
  await ppage.click('[data-testid=accept-link]');
  await ppage.waitForSelector('[data-testid=link-accepted]');
  await ppage.waitForSelector('[data-testid=grant-row][data-status=active]');

  // The clinic sees a new patient, with figures.
  await cpage.goto(`${clinicUrl}?filter=new`);
  await cpage.waitForSelector('[data-testid=new-patient]');
  const row = await cpage.textContent('[data-testid=patient-row]');
  assert.match(row, /Casey Quinn/);
  assert.match(row, /\d+\.\d\s%/);
  assert.match(await cpage.textContent('[data-testid=new-patients-count]'), /1 new patient/);
  await cpage.screenshot({ path: join(SHOTS, 'control-3-new-patient.png'), fullPage: true });
  const clinicId = clinicUrl.split('/').pop();
  const me = await (await patient.request.get(`${server.base}/api/v1/me`)).json();
  const today = new Date();
  const from = new Date(today.getTime() - 2 * 86400_000).toISOString().slice(0, 10);
  const to = new Date(today.getTime() + 86400_000).toISOString().slice(0, 10);
  const dataUrl = `${server.base}/api/v1/patients/${me.patient_id}/glucose?from=${from}&to=${to}`;
  assert.equal((await clinic.request.get(dataUrl)).status(), 200);

  // Pause all sharing: the clinician is refused at once.
  await ppage.goto(`${server.base}/sharing`);
  await hydrated(ppage);
  await ppage.click('[data-testid=pause-sharing]');
  await ppage.waitForSelector('[data-testid=sharing-paused]');
  await ppage.waitForSelector('[data-testid=grant-row][data-status=paused]');
  await ppage.screenshot({ path: join(SHOTS, 'control-4-paused.png'), fullPage: true });
  assert.equal((await clinic.request.get(dataUrl)).status(), 404);
  await cpage.goto(clinicUrl);
  await cpage.waitForSelector('[data-testid=patient-row]');
  assert.match(await cpage.textContent('[data-testid=patient-row]'), /sharing paused/);

  // Resume: access is back, with the same scopes.
  await ppage.click('[data-testid=resume-sharing]');
  await ppage.waitForSelector('[data-testid=pause-sharing]');
  await ppage.waitForSelector('[data-testid=grant-row][data-status=active]');
  assert.equal((await clinic.request.get(dataUrl)).status(), 200);
  const grants = await (await patient.request.get(`${server.base}/api/v1/sharing/grants`)).json();
  assert.deepEqual(grants[0].scopes, ['glucose']);

  // The clinician acknowledges the new patient.
  await cpage.goto(clinicUrl);
  await hydrated(cpage);
  await cpage.click('[data-testid=acknowledge-patient]');
  await cpage.waitForFunction(() => !document.querySelector('[data-testid=new-patient]'));
  const rows = await (await clinic.request.get(`${server.base}/api/v1/clinics/${clinicId}/patients`)).json();
  assert.equal(rows[0].new_patient, false);

  // The security checklist: the sign-in history, and pause in one click.
  await ppage.goto(`${server.base}/security`);
  await hydrated(ppage);
  await ppage.waitForSelector('[data-testid=recent-logins] li');
  await ppage.screenshot({ path: join(SHOTS, 'control-5-security-checklist.png'), fullPage: true });
  await ppage.click('[data-testid=checklist-pause]');
  await ppage.waitForSelector('[data-testid=checklist-paused]');
  assert.equal((await clinic.request.get(dataUrl)).status(), 404);
  await clinic.close();
  await patient.close();
});

test('a token limited to reading glucose is made in Settings, shown once, and refused elsewhere', async () => {
  const ctx = await browser.newContext();
  await signUp(ctx, server.base, 'tokens@example.org', 'Toby Token', 'patient');
  await postReadings(ctx, server.base, 288);
  const page = await ctx.newPage();
  await page.goto(`${server.base}/settings`);
  await hydrated(page);
  await page.waitForSelector('[data-testid=login-history] [data-testid=login-row]');
  await page.click('[data-testid=tokens-card] summary');
  await page.fill('[data-testid=token-name]', 'Follower app');
  await page.selectOption('[data-testid=token-access]', 'read:glucose');
  await page.selectOption('[data-testid=token-days]', '30');
  await page.click('[data-testid=token-create]');
  await page.waitForSelector('[data-testid=new-token-value]');
  const token = (await page.textContent('[data-testid=new-token-value]')).trim();
  assert.match(token, /^dbs_/);
  await page.waitForSelector('[data-testid=token-row]');
  assert.match(await page.textContent('[data-testid=tokens-table]'), /Follower app[\s\S]*read:glucose/);
  await page.screenshot({ path: join(SHOTS, 'control-6-token.png'), fullPage: true });
  const me = await (await ctx.request.get(`${server.base}/api/v1/me`)).json();
  const day = new Date().toISOString().slice(0, 10);
  const auth = { headers: { authorization: `Bearer ${token}` } };
  const anon = await browser.newContext();
  assert.equal((await anon.request.get(`${server.base}/api/v1/patients/${me.patient_id}/glucose?from=${day}&to=${day}`, auth)).status(), 200);
  assert.equal((await anon.request.get(`${server.base}/api/v1/sharing/grants`, auth)).status(), 403);
  // Revoked from Settings: refused.
  await page.click('[data-testid=revoke-token]');
  await page.waitForSelector('[data-testid=no-tokens]');
  assert.equal((await anon.request.get(`${server.base}/api/v1/patients/${me.patient_id}/glucose?from=${day}&to=${day}`, auth)).status(), 401);
  await anon.close();

  // A report PDF for sending outside Diabase: saved, with its password shown once.
  await page.goto(`${server.base}/reports`);
  await hydrated(page);
  const download = page.waitForEvent('download');
  await page.click('[data-testid=protected-pdf]');
  const file = await download;
  assert.match(file.suggestedFilename(), /-protected\.pdf$/);
  await page.waitForSelector('[data-testid=pdf-password]');
  const password = (await page.textContent('[data-testid=pdf-password]')).trim();
  assert.match(password, /^[2-9A-Z]{4}(-[2-9A-Z]{4}){4}$/);
  await page.screenshot({ path: join(SHOTS, 'control-7-protected-pdf.png'), fullPage: true });
  await ctx.close();
});
