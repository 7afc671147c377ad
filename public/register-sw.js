/* Registers the Diabase service worker (/sw.js).
 * Loaded as an external script (strict CSP: no inline scripts).
 *
 * When an updated worker takes over a page that was already controlled, the
 * page reloads once so it runs matching code. The first install (no previous
 * controller) never reloads, and a short sessionStorage guard stops any loop.
 */
(function () {
  'use strict';
  if (!('serviceWorker' in navigator)) return;

  var RELOAD_KEY = 'diabase-sw-reloaded-at';
  var hadController = !!navigator.serviceWorker.controller;
  var refreshing = false;

  function recentlyReloaded() {
    try {
      var at = Number(sessionStorage.getItem(RELOAD_KEY) || 0);
      return Date.now() - at < 10000;
    } catch (_) {
      return false;
    }
  }

  navigator.serviceWorker.addEventListener('controllerchange', function () {
    if (refreshing || !hadController || recentlyReloaded()) return;
    refreshing = true;
    try { sessionStorage.setItem(RELOAD_KEY, String(Date.now())); } catch (_) { /* private mode */ }
    window.location.reload();
  });

  function register() {
    navigator.serviceWorker
      .register('/sw.js', { scope: '/' })
      .then(function (registration) {
        window.__diabaseSwRegistered = true;
        registration.onupdatefound = function () {
          var worker = registration.installing;
          if (!worker) return;
          worker.onstatechange = function () {
            if (worker.state === 'installed' && navigator.serviceWorker.controller) {
              // The new worker calls skipWaiting(); controllerchange reloads.
              console.info('[diabase] update installed, activating');
            }
          };
        };
        // Look for a new version when the tab comes back into view.
        document.addEventListener('visibilitychange', function () {
          if (document.visibilityState === 'visible') {
            registration.update().catch(function () { /* offline */ });
          }
        });
      })
      .catch(function (err) {
        console.warn('[diabase] service worker registration failed', err);
      });
  }

  if (document.readyState === 'complete') {
    register();
  } else {
    window.addEventListener('load', register, { once: true });
  }
})();
