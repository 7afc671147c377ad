/* Diabase service worker.
 *
 * Caches only the static app shell so the site opens quickly and can show an
 * offline notice. Health data (/api/, /_fn/) and page HTML are never cached:
 * pages carry personal data and must not outlive a session on a shared device.
 *
 * VERSION: bump it (diabase-v2, v3, ...) whenever the shell list or the
 * caching logic below changes. The new worker installs, activates at once
 * (skipWaiting) and deletes every cache that does not carry the new name.
 * Files under /pkg/ refresh themselves (stale-while-revalidate), so a normal
 * release does not need a bump.
 */
const VERSION = 'diabase-v1';
const CACHE = `${VERSION}-shell`;

const OFFLINE_URL = '/offline';
const OFFLINE_FALLBACK = '/offline.html';

const SHELL = [
  OFFLINE_URL,
  OFFLINE_FALLBACK,
  '/manifest.webmanifest',
  '/icons/icon-192.png',
  '/pkg/diabase.css',
  '/pkg/diabase.js',
  '/pkg/diabase.wasm',
  '/echarts.min.js',
];

// Never served from or written to the cache.
const NEVER_CACHE = ['/api/', '/_fn/'];

function isStatic(pathname) {
  return (
    pathname.startsWith('/pkg/') ||
    pathname.startsWith('/icons/') ||
    pathname === '/echarts.min.js' ||
    pathname === '/manifest.webmanifest'
  );
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
  if (isStatic(url.pathname)) {
    staleWhileRevalidate(event);
  }
  // Everything else: default browser handling (network, HTTP cache).
});
