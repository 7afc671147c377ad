// Browser test of the whole sharing flow: a clinic makes a link code, the
// patient accepts it with chosen scopes, the clinician sees the data and the
// patient sees the access in the log, the patient revokes, the clinician is
// refused.
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

test('link code → patient accepts with scopes → clinician sees data → access log → revoke → refused', async () => {
  const clinic = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const cpage = await clinic.newPage();
  await signUp(clinic, server.base, 'dr.north@clinic.example', 'Dr. Nora North', 'clinician');

  // The clinician creates a clinic and a patient record.
  await cpage.goto(`${server.base}/clinic`);
  await hydrated(cpage);
  await cpage.fill('[data-testid=clinic-name]', 'North Street Clinic');
  await cpage.click('[data-testid=create-clinic]');
  await cpage.waitForSelector('[data-testid=clinic-link]');
  await cpage.click('[data-testid=clinic-link]');
  await cpage.waitForSelector('[data-testid=clinic-title]');
  await hydrated(cpage);
  const clinicUrl = cpage.url();
  await cpage.fill('[data-testid=record-name]', 'Pat Jones');
  await cpage.fill('[data-testid=record-mrn]', 'NS-1001');
  await cpage.click('[data-testid=create-record]');
  await cpage.waitForSelector('[data-testid=record-created-link]');
  await cpage.waitForSelector('[data-testid=patient-row]');
  await cpage.click('[data-testid=record-created-link]');
  await cpage.waitForSelector('[data-testid=record-name-title]');
  await hydrated(cpage);
  await cpage.click('[data-testid=make-code]');
  await cpage.waitForSelector('[data-testid=link-code]');
  const code = (await cpage.textContent('[data-testid=link-code]')).trim();
  assert.match(code, /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
  assert.ok(await cpage.locator('[data-testid=code-box] svg').count() > 0, 'a QR code is shown');
  await cpage.screenshot({ path: join(SHOTS, 'sharing-1-link-code.png'), fullPage: true });

  // The patient enters the code, keeps glucose only, and accepts.
  const patient = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const ppage = await patient.newPage();
  await signUp(patient, server.base, 'pat.jones@example.org', 'Pat Jones', 'patient');
  await postReadings(patient, server.base);
  await ppage.goto(`${server.base}/sharing`);
  await hydrated(ppage);
  await ppage.waitForSelector('[data-testid=access-log-empty]');
  await ppage.fill('[data-testid=code-input]', code.toLowerCase());
  await ppage.click('[data-testid=code-submit]');
  await ppage.waitForSelector('[data-testid=link-offer]');
  await hydrated(ppage);
  assert.equal((await ppage.textContent('[data-testid=offer-clinic]')).trim(), 'North Street Clinic');
  for (const s of ['insulin', 'settings', 'events']) await ppage.uncheck(`[data-testid=accept-scope-${s}]`);
  await ppage.screenshot({ path: join(SHOTS, 'sharing-2-offer.png'), fullPage: true });
  await ppage.click('[data-testid=accept-link]');
  await ppage.waitForSelector('[data-testid=link-accepted]');
  await ppage.waitForSelector('[data-testid=grant-row][data-status=active]');
  assert.match(await ppage.textContent('[data-testid=grants-table]'), /North Street Clinic[\s\S]*glucose/);

  // The clinician sees the patient linked, with figures, and opens the reports.
  await cpage.goto(clinicUrl);
  await cpage.waitForSelector('[data-testid=patient-row]');
  const row = await cpage.textContent('[data-testid=patient-row]');
  assert.match(row, /linked/);
  assert.match(row, /\d+\.\d\s%/);
  await cpage.screenshot({ path: join(SHOTS, 'sharing-3-clinic-dashboard.png'), fullPage: true });
  await cpage.click('[data-testid=patient-row] a');
  await cpage.waitForSelector('[data-testid=open-reports]');
  await cpage.click('[data-testid=open-reports]');
  await cpage.waitForSelector('[data-testid=report-patient]');
  assert.equal((await cpage.textContent('[data-testid=report-patient]')).trim(), 'Pat Jones');
  const reportUrl = cpage.url();
  assert.match(reportUrl, /patient=/);
  await hydrated(cpage);
  await cpage.waitForFunction(() => {
    const c = document.querySelector('.chart canvas');
    return c && c.width > 0;
  }, null, { timeout: 30_000 });
  await cpage.screenshot({ path: join(SHOTS, 'sharing-4-clinician-report.png'), fullPage: true });

  // The patient sees who looked.
  await ppage.goto(`${server.base}/sharing`);
  await ppage.waitForSelector('[data-testid=access-row]');
  const log = await ppage.textContent('[data-testid=access-log]');
  assert.match(log, /Dr\. Nora North/);
  assert.match(log, /North Street Clinic/);
  await hydrated(ppage);
  await ppage.screenshot({ path: join(SHOTS, 'sharing-5-access-log.png'), fullPage: true });

  // The patient revokes; the clinician's next request is refused.
  await ppage.click('[data-testid=revoke-grant]');
  await ppage.waitForSelector('[data-testid=revoked]');
  await ppage.waitForSelector('[data-testid=grant-row][data-status=revoked]');
  await cpage.goto(reportUrl);
  await cpage.waitForSelector('.card.error, [role=alert], [data-testid=error]', { timeout: 30_000 });
  assert.equal(await cpage.locator('[data-testid=report-patient]').count(), 0, 'no report after revocation');
  const api = await clinic.request.get(`${server.base}/api/v1/clinics/${clinicUrl.split('/').pop()}/patients`);
  const rows = await api.json();
  assert.equal(rows[0].link_status, 'revoked');
  await cpage.screenshot({ path: join(SHOTS, 'sharing-6-refused.png'), fullPage: true });
  await clinic.close();
  await patient.close();
});
