// Passkeys in the browser: the WebAuthn calls between Diabase's API and the
// authenticator. Buttons opt in with data attributes (no inline script, so
// the page's CSP holds):
//   <button data-passkey="login">          sign in with a passkey, then go to
//                                          the page's ?next= (or the dashboard)
//   <button data-passkey="register" data-passkey-name="#input-id">
//                                          add a passkey named by that input
// Errors go to the element [data-passkey-error] nearest the button's form or
// section. When the server asks for the password again (reauth_required:
// adding a passkey needs it checked within the last minutes), the nearest
// [data-passkey-reauth] box shows; its [data-passkey-reauth-submit] button
// sends [data-passkey-reauth-password] to /api/v1/me/reauth and tries again. The server sends binary fields as base64url; they become
// ArrayBuffers here and back.
(() => {
  'use strict';

  // Where to go after signing in: `next` when it is a path on this site,
  // else the dashboard. The rule of `app::api::is_local_path` (issue 19):
  // browsers drop tabs and line breaks and read `\` as `/`, so
  // `/\t/evil.example` would leave the site. One leading `/`, no control
  // character, whitespace or backslash (nor their %-encoded forms in the
  // path), and the URL it resolves to keeps this page's origin.
  const safeNext = (next) => {
    const plain = (s) => s.startsWith('/') && !s.startsWith('//') && !/[\u0000-\u0020\u007f-\u009f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff\\]/.test(s);
    if (typeof next !== 'string' || next.length > 2048 || !plain(next)) return '/';
    let path = next.split(/[?#]/, 1)[0];
    for (let i = 0; i < 3; i++) {
      let decoded;
      try { decoded = decodeURIComponent(path); } catch (_) { return '/'; }
      if (decoded === path) break;
      if (!plain(decoded)) return '/';
      path = decoded;
    }
    try {
      const url = new URL(next, window.location.origin);
      if (url.origin !== window.location.origin) return '/';
    } catch (_) {
      return '/';
    }
    return next;
  };

  const b64urlToBuf = (s) => {
    const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i += 1) out[i] = bin.charCodeAt(i);
    return out.buffer;
  };
  const bufToB64url = (buf) => {
    const bytes = new Uint8Array(buf);
    let bin = '';
    for (let i = 0; i < bytes.length; i += 1) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };
  // JSON nulls are not valid WebAuthn option values: drop them.
  const dropNulls = (v) => {
    if (Array.isArray(v)) return v.map(dropNulls);
    if (v && typeof v === 'object') {
      const o = {};
      for (const [k, x] of Object.entries(v)) if (x !== null && x !== undefined) o[k] = dropNulls(x);
      return o;
    }
    return v;
  };

  async function api(path, body) {
    const r = await fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body ?? {}),
    });
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!r.ok) {
      const e = new Error(data?.error?.message || `The server answered ${r.status}.`);
      e.code = data?.error?.code;
      throw e;
    }
    return data;
  }

  function explain(e) {
    if (e && e.name === 'NotAllowedError') return 'The passkey request was cancelled or timed out.';
    if (e && e.name === 'InvalidStateError') return 'This device already holds a passkey for your account.';
    if (e && e.name === 'SecurityError') return 'Passkeys need this site to be opened at its own address (see the operator\'s DIABASE_PUBLIC_URL).';
    return (e && e.message) || String(e);
  }

  async function register(name) {
    const { challenge_id, options } = await api('/api/v1/me/passkeys/start');
    const pk = dropNulls(options.publicKey);
    pk.challenge = b64urlToBuf(pk.challenge);
    pk.user.id = b64urlToBuf(pk.user.id);
    for (const c of pk.excludeCredentials || []) c.id = b64urlToBuf(c.id);
    const cred = await navigator.credentials.create({ publicKey: pk });
    const credential = {
      id: cred.id,
      rawId: bufToB64url(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: bufToB64url(cred.response.attestationObject),
        clientDataJSON: bufToB64url(cred.response.clientDataJSON),
        transports: typeof cred.response.getTransports === 'function' ? cred.response.getTransports() : undefined,
      },
      extensions: cred.getClientExtensionResults(),
    };
    return api('/api/v1/me/passkeys', { challenge_id, name, credential });
  }

  async function login() {
    const { challenge_id, options } = await api('/api/v1/auth/passkey/start');
    const pk = dropNulls(options.publicKey);
    pk.challenge = b64urlToBuf(pk.challenge);
    for (const c of pk.allowCredentials || []) c.id = b64urlToBuf(c.id);
    // A button press: the browser's passkey chooser (not conditional autofill).
    const cred = await navigator.credentials.get({ publicKey: pk });
    const r = cred.response;
    const credential = {
      id: cred.id,
      rawId: bufToB64url(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: bufToB64url(r.authenticatorData),
        clientDataJSON: bufToB64url(r.clientDataJSON),
        signature: bufToB64url(r.signature),
        userHandle: r.userHandle ? bufToB64url(r.userHandle) : null,
      },
      extensions: cred.getClientExtensionResults(),
    };
    return api('/api/v1/auth/passkey/finish', { challenge_id, credential });
  }

  function errorBox(button) {
    const scope = button.closest('form, section, main') || document.body;
    return scope.querySelector('[data-passkey-error]');
  }

  function show(button, message) {
    const box = errorBox(button);
    if (box) {
      box.textContent = message;
      box.hidden = !message;
    }
  }

  function reauthBox(button) {
    const scope = button.closest('form, section, main') || document.body;
    return scope.querySelector('[data-passkey-reauth]');
  }

  // The registration waiting for the password, if any.
  let waiting = null;

  document.addEventListener('click', async (event) => {
    const submit = event.target.closest('[data-passkey-reauth-submit]');
    if (submit) {
      event.preventDefault();
      const box = submit.closest('[data-passkey-reauth]');
      const input = box?.querySelector('[data-passkey-reauth-password]');
      submit.disabled = true;
      try {
        await api('/api/v1/me/reauth', { password: input?.value || '' });
        if (input) input.value = '';
        if (box) box.hidden = true;
        const again = waiting;
        waiting = null;
        if (again) again.click();
      } catch (e) {
        show(submit, explain(e));
      } finally {
        submit.disabled = false;
      }
      return;
    }
    const button = event.target.closest('[data-passkey]');
    if (!button) return;
    event.preventDefault();
    if (!window.PublicKeyCredential || !navigator.credentials) {
      show(button, 'This browser cannot use passkeys. Use your password, or a current Chrome, Edge, Safari or Firefox.');
      return;
    }
    show(button, '');
    button.disabled = true;
    try {
      if (button.dataset.passkey === 'register') {
        const input = document.querySelector(button.dataset.passkeyName || '[name=passkey_name]');
        const name = (input?.value || '').trim() || 'Passkey';
        await register(name);
        const url = new URL(window.location.href);
        url.searchParams.set('passkey', 'added');
        window.location.assign(url.toString());
      } else if (button.dataset.passkey === 'login') {
        await login();
        const next = new URLSearchParams(window.location.search).get('next');
        window.location.assign(safeNext(next));
      }
    } catch (e) {
      const box = e && e.code === 'reauth_required' ? reauthBox(button) : null;
      if (box) {
        waiting = button;
        box.hidden = false;
        box.querySelector('[data-passkey-reauth-password]')?.focus();
      }
      show(button, explain(e));
    } finally {
      button.disabled = false;
    }
  });
})();
