// Years of BabyLog history reaching a fresh browser (issue 25): a family's 30,000 entries over
// three years, seeded through the sync API, then BabyLog (the PWA the binary serves at /) in
// Debian's Chromium: the time from signing in to a fully synced local database, the timeline's
// first render after it (a reload, and "Earlier" for the previous day), and, as the floor those
// are compared with, the browser's own IndexedDB write rate for the same records in the same
// page sizes (500 a transaction, as the engine applies pulls).
//
// Usage: LATCHKEY_BIN=target/release/latchkey node bench/node/babylog-history.mjs [entries] [days]
import { launchBrowser } from '../../sdk/clerk-js/browser.mjs';
import { startLatchkey } from '../../sdk/clerk-backend/latchkey.mjs';
import { localRecordCount, seedHistory } from '../../web/tests/history.mjs';

const entries = Number(process.argv[2] ?? 30_000);
const days = Number(process.argv[3] ?? 3 * 365);
const EMAIL = 'history@example.com';
const PASSWORD = 'correct horse battery staple';

const lk = await startLatchkey();
const browser = await launchBrowser();
try {
  const seeded = Date.now();
  const { total } = await seedHistory(lk, { email: EMAIL, password: PASSWORD, entries, days });
  const seedMs = Date.now() - seeded;
  const page = await browser.context.newPage();
  await page.goto(`${lk.url}/sign-in?redirect_url=%2F`);
  await page.fill('#identifier', EMAIL);
  await page.fill('#password', PASSWORD);
  const submitted = Date.now();
  await page.click('button.primary[type=submit]');
  await page.waitForURL(`${lk.url}/`);
  while ((await localRecordCount(page)) < total) await new Promise((r) => setTimeout(r, 100));
  await page.waitForSelector('#banner[hidden]', { state: 'attached', timeout: 120_000 });
  const syncMs = Date.now() - submitted;

  // The timeline after it: a reload to the first render of today, then the previous day.
  const reloaded = Date.now();
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
  await page.waitForSelector('#timeline li');
  const firstRenderMs = Date.now() - reloaded;
  const todayNodes = await page.$$eval('#timeline li', (l) => l.length);
  const stepped = Date.now();
  const title = await page.textContent('#today-title');
  await page.click('#day-prev');
  await page.waitForFunction((t) => document.getElementById('today-title').textContent !== t, title);
  const earlierMs = Date.now() - stepped;
  const allNodes = await page.evaluate(() => document.getElementsByTagName('*').length);

  // The floor: IndexedDB itself, the same records, 500 per transaction.
  const floor = await page.evaluate(async (n) => {
    const db = await new Promise((ok, fail) => {
      const open = indexedDB.open(`floor-${Math.random()}`, 1);
      open.onupgradeneeded = () => {
        const s = open.result.createObjectStore('feeds', { keyPath: 'id' });
        s.createIndex('space', 'space');
        s.createIndex('by_time', ['baby_id', 'started_at']);
      };
      open.onsuccess = () => ok(open.result);
      open.onerror = () => fail(open.error);
    });
    const t = performance.now();
    for (let from = 0; from < n; from += 500) {
      await new Promise((ok, fail) => {
        const tx = db.transaction('feeds', 'readwrite');
        const s = tx.objectStore('feeds');
        for (let i = from; i < Math.min(n, from + 500); i++) s.put({ id: `f${i}`, space: 'org_x', baby_id: 'b', kind: 'bottle', started_at: i, amount_ml: 90 });
        tx.oncomplete = ok;
        tx.onerror = () => fail(tx.error);
      });
    }
    return n / ((performance.now() - t) / 1000);
  }, total);

  console.log(JSON.stringify({
    entries: total,
    days,
    seed_ms: seedMs,
    sign_in_to_synced_ms: syncMs,
    synced_records_per_sec: Math.round(total / (syncMs / 1000)),
    indexeddb_floor_records_per_sec: Math.round(floor),
    timeline_first_render_after_reload_ms: firstRenderMs,
    earlier_day_render_ms: earlierMs,
    timeline_items_today: todayNodes,
    dom_elements: allNodes,
    chromium: browser.context.browser()?.version() ?? 'persistent context',
  }));
} finally {
  await browser.close();
  await lk.stop();
}
