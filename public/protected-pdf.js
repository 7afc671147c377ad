// A password-protected report PDF: the button asks the server for a PDF
// encrypted with AES-256 under a password the server generated, shows that
// password once, and saves the file. Buttons opt in with a data attribute
// (no inline script, so the page's CSP holds):
//   <button data-protected-pdf="/api/v1/patients/ID/protected-report?from=…&to=…">
// The password goes to the nearest [data-protected-pdf-result] element.
(() => {
  'use strict';

  function b64ToBytes(s) {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i += 1) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function protectedPdf(button) {
    const box = button.closest('section, div')?.querySelector('[data-protected-pdf-result]') || document.querySelector('[data-protected-pdf-result]');
    const show = (html, cls) => {
      if (!box) return;
      box.className = `alert ${cls}`;
      box.hidden = false;
      box.replaceChildren(...html);
    };
    button.disabled = true;
    try {
      const r = await fetch(button.dataset.protectedPdf, { method: 'POST', credentials: 'same-origin', headers: { accept: 'application/json' } });
      const body = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(body?.error?.message || `The server answered ${r.status}.`);
      const blob = new Blob([b64ToBytes(body.pdf_base64)], { type: 'application/pdf' });
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = body.file_name || 'diabase-report-protected.pdf';
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
      const p1 = document.createElement('p');
      const strong = document.createElement('strong');
      strong.textContent = 'The PDF is protected with this password, shown only now: ';
      const code = document.createElement('code');
      code.dataset.testid = 'pdf-password';
      code.textContent = body.password;
      p1.append(strong, code);
      const p2 = document.createElement('p');
      p2.textContent = 'Send the file and the password by different channels: for example the file by email and the password by phone or text message. Anyone with both can read the report.';
      show([p1, p2], 'alert-warn');
    } catch (e) {
      const p = document.createElement('p');
      p.textContent = e.message;
      show([p], 'alert-error');
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener('click', (ev) => {
    const button = ev.target.closest('[data-protected-pdf]');
    if (!button) return;
    ev.preventDefault();
    protectedPdf(button);
  });
})();
