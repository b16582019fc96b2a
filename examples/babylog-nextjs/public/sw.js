// BabyLog's service worker: the app shell opens offline after the first visit. Network first
// for the app's own GETs (a new build shows at once), the cache when the network fails. Auth,
// sync and API calls (/__clerk, /api) always go to the network.
const CACHE = 'babylog-next-v1';

// The page's own scripts and styles are named in its HTML: cache them with it at install.
async function cacheShell() {
  const cache = await caches.open(CACHE);
  const res = await fetch('/', { cache: 'reload' });
  const html = await res.clone().text();
  await cache.put('/', res);
  const assets = new Set(['/manifest.webmanifest', '/icon.svg', '/clerk-js/clerk.browser.js']);
  for (const m of html.matchAll(/(?:src|href)="(\/_next\/static\/[^"]+)"/g)) assets.add(m[1]);
  await Promise.all([...assets].map((a) => cache.add(a).catch(() => undefined)));
}

self.addEventListener('install', (event) => event.waitUntil(cacheShell().then(() => self.skipWaiting())));
self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// What the page loaded before this worker controlled it (Clerk's lazily loaded UI chunks among
// it): cached on the page's word, so a reload offline finds every file the page needs. The page
// is told when that is done (it shows it is ready to work offline).
self.addEventListener('message', (event) => {
  if (event.data?.type !== 'cache' || !Array.isArray(event.data.urls)) return;
  const keys = event.data.urls
    .map((u) => new URL(u, self.location.origin))
    .filter((u) => u.origin === self.location.origin && !/^\/(__clerk|api|sign-in)/.test(u.pathname))
    .map((u) => u.pathname + u.search);
  event.waitUntil(
    caches.open(CACHE).then(async (cache) => {
      await Promise.all(keys.map(async (k) => (await cache.match(k)) ?? cache.add(k).catch(() => undefined)));
      event.source?.postMessage({ type: 'cached' });
    }),
  );
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (/^\/(__clerk|api|sign-in)/.test(url.pathname)) return;
  const key = event.request.mode === 'navigate' ? '/' : url.pathname + url.search;
  event.respondWith(
    fetch(event.request)
      .then((res) => {
        if (res.ok && (event.request.mode === 'navigate' ? url.pathname === '/' : true)) {
          const copy = res.clone();
          event.waitUntil(caches.open(CACHE).then((c) => c.put(key, copy)));
        }
        return res;
      })
      .catch(() => caches.match(key, { ignoreVary: true }).then((hit) => hit ?? caches.match(url.pathname)).then((hit) => hit ?? Response.error())),
  );
});
