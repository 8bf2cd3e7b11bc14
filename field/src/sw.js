// 网格通's service worker: the app shell (page, scripts, styles, icons) precached per build, the
// grids' vector tiles kept as they are fetched (stale while revalidate), so the app starts and shows
// the map with no network. The API is never cached here: the app keeps its data in IndexedDB.
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

// Background sync: wake the open app to send its queue (the queue itself lives in the page).
self.addEventListener('sync', (event) => {
  if (event.tag !== 'outbox') return;
  event.waitUntil(
    self.clients.matchAll({ type: 'window' }).then((cs) => cs.forEach((c) => c.postMessage({ type: 'outbox' }))),
  );
});
