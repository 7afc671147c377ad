/* Diabase service worker.
 *
 * Caches only the static app shell so the site opens quickly and can show an
 * offline notice. Health data (/api/, /_fn/) and page HTML are never cached:
 * pages carry personal data and must not outlive a session on a shared device.
 *
 * Updates (issue 21): the pages name the app's code by content-hashed
 * addresses (/pkg/diabase.<hash>.wasm, /echarts.min.<hash>.js). Those are
 * answered from the cache first: an address never changes its bytes. HTML
 * always comes from the network, so after a deploy the new page names the
 * new files and an old wasm never runs against new server functions. When a
 * hashed file is stored, older builds of the same file are dropped.
 *
 * VERSION: bump it (diabase-v3, ...) whenever the shell list or the caching
 * logic below changes. The new worker installs, activates at once
 * (skipWaiting) and deletes every cache that does not carry the new name.
 */
const VERSION = 'diabase-v2';
const CACHE = `${VERSION}-shell`;

const OFFLINE_URL = '/offline';
const OFFLINE_FALLBACK = '/offline.html';

const SHELL = [
  OFFLINE_URL,
  OFFLINE_FALLBACK,
  '/manifest.webmanifest',
  '/icons/icon-192.png',
];

// Never served from or written to the cache.
const NEVER_CACHE = ['/api/', '/_fn/'];

// `/pkg/diabase.0123456789abcdef.wasm` → stem `/pkg/diabase`, kind `.wasm`.
const HASHED = /^(.*)\.[0-9a-f]{16}((?:_bg)?\.[a-z]+)$/;

function isHashed(pathname) {
  return HASHED.test(pathname);
}

// Files at fixed addresses that may be shown from the cache while a fresh
// copy is fetched (they hold no code).
function isStatic(pathname) {
  return pathname.startsWith('/icons/') || pathname === '/manifest.webmanifest';
}

// A response that followed a redirect cannot answer a navigation; copy it.
async function clean(response) {
  if (!response.redirected) return response;
  const body = await response.blob();
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

function cacheable(response) {
  return response && response.ok && response.type === 'basic';
}

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // One by one, so a missing file (e.g. no echarts in a dev build) does
      // not abort the whole install the way cache.addAll would. Fetched
      // without cookies so the cached /offline page is the anonymous one and
      // never holds a user's name.
      await Promise.all(
        SHELL.map(async (url) => {
          try {
            const response = await fetch(new Request(url, { cache: 'reload', credentials: 'omit' }));
            if (cacheable(response)) await cache.put(url, await clean(response));
          } catch (err) {
            console.warn('[sw] not pre-cached:', url, err);
          }
        }),
      );
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      const names = await caches.keys();
      await Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n)));
      if (self.registration.navigationPreload) {
        try { await self.registration.navigationPreload.enable(); } catch (_) { /* unsupported */ }
      }
      await self.clients.claim();
    })(),
  );
});

// Answer from the cache at once when possible; refresh the copy in the background.
function staleWhileRevalidate(event) {
  const request = event.request;
  const network = caches
    .open(CACHE)
    .then(async (cache) => {
      const response = await fetch(request);
      if (cacheable(response)) await cache.put(request, response.clone());
      return response;
    })
    .catch(() => undefined);
  event.waitUntil(network);
  event.respondWith(
    caches
      .match(request, { cacheName: CACHE })
      .then((cached) => cached || network.then((response) => response || Response.error())),
  );
}

// A hashed address never changes its bytes: the cache first, the network
// once. Storing a new build of a file drops the older builds of it.
async function cacheFirst(event) {
  const request = event.request;
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (cacheable(response)) {
    const url = new URL(request.url);
    const [, stem, kind] = HASHED.exec(url.pathname);
    const copy = response.clone();
    event.waitUntil(
      (async () => {
        for (const old of await cache.keys()) {
          const m = HASHED.exec(new URL(old.url).pathname);
          if (m && m[1] === stem && m[2] === kind && old.url !== request.url) await cache.delete(old);
        }
        await cache.put(request, copy);
      })(),
    );
  }
  return response;
}

async function offlinePage() {
  const cache = await caches.open(CACHE);
  const page = (await cache.match(OFFLINE_URL)) || (await cache.match(OFFLINE_FALLBACK));
  if (page) return page;
  return new Response(
    '<!doctype html><meta charset="utf-8"><title>Offline</title>' +
      '<p>Diabase needs an internet connection. Please reconnect and try again.</p>',
    { status: 503, headers: { 'Content-Type': 'text/html; charset=utf-8' } },
  );
}

// Network first; HTML is deliberately not cached (personal data).
async function navigate(event) {
  try {
    const preloaded = await event.preloadResponse;
    if (preloaded) return preloaded;
    return await fetch(event.request);
  } catch (_) {
    return offlinePage();
  }
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;

  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (NEVER_CACHE.some((prefix) => url.pathname.startsWith(prefix))) return;

  if (request.mode === 'navigate') {
    event.respondWith(navigate(event));
    return;
  }
  if (isHashed(url.pathname)) {
    event.respondWith(cacheFirst(event));
    return;
  }
  if (isStatic(url.pathname)) {
    staleWhileRevalidate(event);
  }
  // Everything else: default browser handling (network, HTTP cache).
});
