// 网格通's service worker: the app shell (page, scripts, styles, icons) precached per build, the
// grids' vector tiles kept as they are fetched (stale while revalidate), so the app starts and shows
// the map with no network. The API is never cached here: the app keeps its data in IndexedDB.
// A module worker: it sends the outbox itself on Background Sync (the app may be closed), with the
// page's own modules (the Web Lock keeps page and worker from sending at once), shows Web Push
// messages and opens the right screen when one is tapped.
import * as api from '__ASSETS__/api.js';
import * as outbox from '__ASSETS__/outbox.js';

const ASSETS = '__ASSETS__';
const VERSION = '__VERSION__';
const SHELL = `shell-${VERSION}`;
const TILES = 'tiles-v1';
const PRECACHE = ['/app', '/app/manifest.webmanifest', ...__PRECACHE__];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(SHELL).then((c) => c.addAll(PRECACHE)).then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('shell-') && k !== SHELL).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === '/app' || url.pathname === '/app/manifest.webmanifest') {
    // Network first (a new build names new assets), the cached copy when offline.
    event.respondWith(
      fetch(req)
        .then((res) => {
          if (res.ok) {
            const copy = res.clone();
            caches.open(SHELL).then((c) => c.put(url.pathname, copy));
          }
          return res;
        })
        .catch(() => caches.match(url.pathname, { cacheName: SHELL }).then((r) => r || Response.error())),
    );
  } else if (url.pathname.startsWith('/app/assets/')) {
    event.respondWith(caches.match(req).then((r) => r || fetch(req)));
  } else if (url.pathname.startsWith('/tiles/grids/')) {
    event.respondWith(
      caches.open(TILES).then(async (c) => {
        const hit = await c.match(req);
        const net = fetch(req)
          .then((res) => {
            if (res.status === 200 || res.status === 204) c.put(req, res.clone());
            return res;
          })
          .catch(() => hit || Response.error());
        return hit || net;
      }),
    );
  }
});

// Background Sync: the browser wakes the worker when the network is back (Chromium: even with the
// app closed); it sends the queue, and fails the event while something is left so that the browser
// tries again later. Browsers without it send the queue when the app next starts (app.js).
self.addEventListener('sync', (event) => {
  if (event.tag !== 'outbox') return;
  event.waitUntil(drain());
});

async function drain() {
  await api.loadAuth();
  if (!api.signedIn()) return;
  const left = await outbox.drain();
  self.drained = (self.drained || 0) + 1;
  if (left.length) throw new Error(`${left.length} entries still to send`);
}
self.sent = outbox.log; // what this worker sent (read by the browser test)

// Web Push: the server's message (app/push: title, body, tag, task_id or case_id) as a notification.
self.addEventListener('push', (event) => {
  let m;
  try {
    m = event.data ? event.data.json() : {};
  } catch {
    m = { body: event.data.text() };
  }
  event.waitUntil(
    self.registration.showNotification(m.title || '网格通', {
      body: m.body || '',
      tag: m.tag || undefined,
      data: m,
      icon: `${ASSETS}/icon-192.png`,
      badge: `${ASSETS}/icon-192.png`,
      lang: 'zh-CN',
      requireInteraction: Boolean(m.urgent),
    }),
  );
});

/** The screen a message opens: its task, its case, else the home screen. */
function screenOf(m) {
  if (m.task_id) return `#task/${Number(m.task_id)}`;
  if (m.case_id) return `#case/${Number(m.case_id)}`;
  if (typeof m.url === 'string' && /^\/app#[a-z]+(\/\d+)?$/.test(m.url)) return m.url.slice(4);
  return '#home';
}

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const work = openScreen(screenOf(event.notification.data || {}));
  try {
    event.waitUntil(work);
  } catch {
    /* an event made by a script (not the browser) cannot extend its life */
  }
});

/** The open app goes to the screen (and comes to the front); with none open, a new window. */
async function openScreen(hash) {
  const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const app = wins.find((c) => new URL(c.url).pathname === '/app');
  if (app) {
    app.postMessage({ type: 'open', hash });
    try {
      await app.focus();
    } catch {
      /* focus needs the tap's user activation */
    }
    return app;
  }
  return self.clients.openWindow(`/app${hash}`);
}
