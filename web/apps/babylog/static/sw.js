// BabyLog's service worker: the app loads offline after the first visit. Network first (a new
// latchkey binary's app shows up at once), the cache when the network fails. Only the app's own
// files are cached; the APIs (/v1/...) always go to the network.
const CACHE = 'babylog-v1';
const SHELL = ['/', '/babylog/app.js', '/babylog/styles.css', '/babylog/manifest.webmanifest', '/babylog/icon.svg'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  const path = url.pathname === '/index.html' ? '/' : url.pathname;
  if (!SHELL.includes(path)) return;
  event.respondWith(
    fetch(event.request)
      .then((res) => {
        if (res.ok) {
          const copy = res.clone();
          event.waitUntil(caches.open(CACHE).then((c) => c.put(path, copy)));
        }
        return res;
      })
      .catch(() => caches.match(path, { ignoreSearch: true, ignoreVary: true }).then((hit) => hit ?? Response.error())),
  );
});
