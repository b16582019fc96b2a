// BabyLog end to end: the app latchkey embeds and serves at /, in Debian's Chromium (driven by
// playwright-core), against a fresh latchkey (the binary cargo built). A screenshot of every
// banner state lands in target/artifacts/babylog/.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser } from '../../sdk/clerk-js/browser.mjs';
import { startLatchkey, mailbox } from '../../sdk/clerk-backend/latchkey.mjs';
import { localRecordCount, seedHistory } from './history.mjs';

const PASSWORD = 'correct horse battery staple';
const ARTIFACTS = resolve(import.meta.dirname, '../../target/artifacts/babylog');
const BANNER = {
  offline: 'Offline mode — changes saved locally',
  signedOut: 'Sign in to sync',
  syncing: 'Syncing…',
  failed: 'Sync failed — retry',
};
mkdirSync(ARTIFACTS, { recursive: true });

let lk;
const browsers = [];
const pageErrors = [];

before(async () => {
  lk = await startLatchkey();
});
after(async () => {
  for (const b of browsers) await b.close().catch(() => undefined);
  await lk?.stop();
});

let emails = 0;
const freshEmail = (who) => `${who}-${Date.now()}-${++emails}@example.com`;

/** A new browser profile with BabyLog open and its service worker in control. */
async function openApp({ syncDelayMs } = {}) {
  const browser = await launchBrowser();
  browsers.push(browser);
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  // The paths of the answers the page got, in order (see `listening`).
  const answered = [];
  page.on('response', (r) => answered.push(new URL(r.url()).pathname));
  if (process.env.BABYLOG_DEBUG) {
    page.on('console', (m) => console.log(`[console] ${m.text()}`));
    page.on('response', (r) => console.log(`[http] ${r.status()} ${r.request().method()} ${r.url()}`));
  }
  if (syncDelayMs) await browser.context.addInitScript((ms) => localStorage.setItem('babylog:syncDelayMs', String(ms)), syncDelayMs);
  await page.goto(`${lk.url}/`);
  await ready(page);
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 30_000 });
  return { browser, context: browser.context, page, answered };
}

/** Waits for a condition the test checks itself, up to a deadline far beyond what it needs. */
async function until(what, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Signed in, synced and listening: the first sync ends by opening the live-event stream, whose
 * first event asks for a pull. Waits for that pull and the end of its sync, so writes made next
 * meet an idle engine (and stay pending).
 */
async function listening({ page, answered }) {
  await until('the live-event stream and the pull it asks for', () => {
    const opened = answered.indexOf('/v1/sync/events');
    return opened >= 0 && answered.slice(opened + 1).includes('/v1/sync/pull');
  });
  await upToDate(page);
}

const ready = (page) => page.waitForSelector('body[data-ready="true"]', { state: 'attached', timeout: 30_000 });

async function bannerIs(page, text, shot) {
  await page.locator('#banner', { hasText: text }).waitFor({ state: 'visible', timeout: 30_000 });
  assert.equal((await page.textContent('#banner')).trim(), text);
  if (shot) await page.screenshot({ path: join(ARTIFACTS, `${shot}.png`), fullPage: true });
}

async function upToDate(page, shot) {
  await page.waitForSelector('#banner[hidden]', { state: 'attached', timeout: 30_000 });
  if (shot) await page.screenshot({ path: join(ARTIFACTS, `${shot}.png`), fullPage: true });
}

/** Signs up through the hosted pages from the app's "Create account" link, and comes back. */
async function signUp(page, email) {
  await page.click('#sign-up');
  await page.fill('#email_address', email);
  await page.fill('#password', PASSWORD);
  const inbox = await mailbox(lk.url, email);
  await page.click('button.primary[type=submit]');
  await page.waitForSelector('#code');
  await page.fill('#code', await inbox.code());
  await page.click('button.primary[type=submit]');
  await page.waitForURL(`${lk.url}/`);
  await ready(page);
  await page.locator('#who', { hasText: email }).waitFor();
}

async function signIn(page, email, password = PASSWORD) {
  await page.goto(`${lk.url}/sign-in?redirect_url=%2F`);
  await page.fill('#identifier', email);
  await page.fill('#password', password);
  await page.click('button.primary[type=submit]');
  await page.waitForURL(`${lk.url}/`);
  await ready(page);
  await page.locator('#who', { hasText: email }).waitFor();
}

const backend = async (path) => {
  const res = await fetch(`${lk.url}${path}`, { headers: { authorization: `Bearer ${lk.secretKey}` } });
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  return res.json();
};

/** What the server holds for a user (the Backend API's export of the personal space). */
async function serverRecords(email) {
  const [user] = await backend(`/v1/users?email_address=${encodeURIComponent(email)}`);
  assert.ok(user, `no user ${email}`);
  return (await backend(`/v1/users/${user.id}/sync_export`)).tables;
}

async function addBaby(page, name) {
  await page.fill('#baby-name', name);
  await page.click('#add-baby button[type=submit]');
  await page.locator('#babies [role=radio]', { hasText: name }).waitFor();
}

async function logBottle(page, ml) {
  await page.fill('#bottle-ml', String(ml));
  await page.click('#bottle button[type=submit]');
  await page.locator('#timeline button', { hasText: `Bottle · ${ml} ml` }).first().waitFor();
}

async function logNote(page, text) {
  await page.fill('#note-text', text);
  await page.click('#note button[type=submit]');
  try {
    await page.locator('#timeline button', { hasText: `Note · ${text}` }).waitFor();
  } catch (e) {
    await page.screenshot({ path: join(ARTIFACTS, 'failed-note.png'), fullPage: true });
    throw e;
  }
}

/**
 * Makes the next "Sync failed — retry" click the thing that syncs. With the server back, the
 * app's own backoff would retry on its own and could sync before the test clicks (the banner
 * gone, the click timing out). So until the banner is clicked every push fails as if the server
 * were still down; the click is seen in the page itself (a capture listener runs before the
 * app's), so no push the app sends before the click reaches the server, and any after it does.
 * `first`, if given, answers the first push instead.
 */
async function pushesWaitForRetryClick(page, first) {
  await page.evaluate(() => {
    window.__retryClicked = false;
    window.addEventListener('click', (e) => e.target.closest?.('#banner') && (window.__retryClicked = true), { capture: true });
  });
  let firstDone = !first;
  await page.route('**/v1/sync/push', async (route) => {
    if (!firstDone) {
      firstDone = true;
      return first(route);
    }
    if (await page.evaluate(() => window.__retryClicked)) return route.continue();
    return route.abort('connectionrefused');
  });
}

const timeline = (page) => page.$$eval('#timeline button', (bs) => bs.map((b) => b.firstChild.textContent).sort());

test('first use offline, entries survive a reload, sign-up with the mailed code syncs them, a second browser sees them', async () => {
  const { context, page } = await openApp();
  await bannerIs(page, BANNER.signedOut);

  await context.setOffline(true);
  await page.reload();
  await ready(page);
  await bannerIs(page, BANNER.offline, 'offline');
  await addBaby(page, 'Mia');
  await logBottle(page, 120);
  await page.click('[data-diaper="wet"]');
  await page.locator('#timeline button', { hasText: 'Diaper · wet' }).waitFor();
  await logNote(page, 'first day home');
  await page.click('[data-timer="sleep"]');
  await page.locator('#timers', { hasText: 'Sleeping' }).waitFor();
  await page.click('[data-timer="sleep"]');
  await page.locator('#timeline button', { hasText: /^Sleep · \d+ min/ }).waitFor();

  await page.reload();
  await ready(page);
  const offlineEntries = await timeline(page);
  assert.equal(offlineEntries.length, 4, offlineEntries.join());
  assert.equal(await page.textContent('[data-total="bottle"]'), '120 ml');
  assert.equal(await page.textContent('[data-total="diapers"]'), '1');

  await context.setOffline(false);
  await bannerIs(page, BANNER.signedOut, 'signed-out');
  const email = freshEmail('mia-parent');
  await signUp(page, email);
  await upToDate(page, 'up-to-date');
  assert.deepEqual(await timeline(page), offlineEntries);

  // Mobile first and labelled: a phone-sized screenshot, and every control has a name.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(ARTIFACTS, 'phone.png'), fullPage: true });
  const unnamed = await page.$$eval('input, select, button', (els) =>
    els.filter((e) => e.offsetParent !== null && !(e.labels?.length || e.getAttribute('aria-label') || e.textContent.trim() || e.placeholder)).map((e) => e.outerHTML),
  );
  assert.deepEqual(unnamed, []);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px on a phone`);

  const server = await serverRecords(email);
  assert.equal(server.babies.length, 1);
  assert.equal(server.babies[0].fields.name, 'Mia');
  assert.equal(server.feeds.length, 1);
  assert.equal(server.feeds[0].fields.amount_ml, 120);
  assert.equal(server.diapers.length, 1);
  assert.equal(server.sleeps.length, 1);
  assert.ok(server.sleeps[0].fields.ended_at >= server.sleeps[0].fields.started_at);
  assert.equal(server.notes[0].fields.text, 'first day home');

  const second = await openApp();
  await signIn(second.page, email);
  await second.page.locator('#babies [role=radio]', { hasText: 'Mia' }).waitFor();
  await second.page.locator('#timeline button', { hasText: 'Note · first day home' }).waitFor();
  assert.deepEqual(await timeline(second.page), offlineEntries);
  await upToDate(second.page);
});

test('the same entry edited in two browsers, one offline: both end with the field-level last write', async () => {
  const a = await openApp();
  const email = freshEmail('lww');
  await signUp(a.page, email);
  await addBaby(a.page, 'Leo');
  await logBottle(a.page, 100);
  await upToDate(a.page);

  const b = await openApp();
  await signIn(b.page, email);
  await b.page.locator('#timeline button', { hasText: 'Bottle · 100 ml' }).waitFor();
  await upToDate(b.page);

  // B, offline, changes the amount and the note; then A, online, changes only the note.
  await b.context.setOffline(true);
  await bannerIs(b.page, BANNER.offline);
  await edit(b.page, 'Bottle · 100 ml', { amount_ml: '150', note: 'from B' });
  await b.page.locator('#timeline button', { hasText: 'Bottle · 150 ml' }).waitFor();
  // A's note must be the later write: B's edit is stamped (ms) by now, so let the clock pass it.
  const bEdited = Date.now();
  while (Date.now() <= bEdited) await new Promise((r) => setImmediate(r));
  await edit(a.page, 'Bottle · 100 ml', { note: 'from A' });
  await upToDate(a.page);

  await b.context.setOffline(false);
  for (const { page } of [b, a]) {
    await page.locator('#timeline button', { hasText: 'Bottle · 150 ml' }).waitFor({ timeout: 30_000 });
    await page.locator('#timeline li', { hasText: 'from A' }).waitFor({ timeout: 30_000 });
    await upToDate(page);
    assert.equal(await page.locator('#timeline li', { hasText: 'from B' }).count(), 0);
  }
  const [feed] = (await serverRecords(email)).feeds;
  assert.equal(feed.fields.amount_ml, 150);
  assert.equal(feed.fields.note, 'from A');
});

async function edit(page, entryText, fields) {
  await page.locator('#timeline button', { hasText: entryText }).click();
  for (const [name, value] of Object.entries(fields)) await page.fill(`#edit-${name}`, value);
  await page.click('#edit button[value=save]');
  await page.waitForSelector('#edit', { state: 'hidden' });
}

test('"Sync (3 changes)", then "Syncing…" while the push is in flight, then up to date', async () => {
  const app = await openApp({ syncDelayMs: 600_000 });
  const { page } = app;
  const email = freshEmail('banner');
  await signUp(page, email);
  await listening(app);
  await addBaby(page, 'Ava');
  await logBottle(page, 60);
  await logNote(page, 'hiccups');
  await bannerIs(page, 'Sync (3 changes)', 'pending');

  let release;
  const held = new Promise((r) => (release = r));
  await page.route('**/v1/sync/push', async (route) => {
    await held;
    await route.continue();
  });
  await page.click('#banner');
  await bannerIs(page, BANNER.syncing, 'syncing');
  release();
  await upToDate(page);
  await page.unroute('**/v1/sync/push');
  const server = await serverRecords(email);
  assert.equal(server.babies.length + server.feeds.length + server.notes.length, 3);
});

test('server down: "Sync failed — retry"; server back: the retry succeeds', async () => {
  const { page } = await openApp();
  const email = freshEmail('down');
  await signUp(page, email);
  await addBaby(page, 'Noah');
  await upToDate(page);

  await lk.kill('SIGKILL');
  await logNote(page, 'written while the server is down');
  await bannerIs(page, BANNER.failed, 'sync-failed');
  await pushesWaitForRetryClick(page);
  await lk.restart();
  await page.click('#banner');
  await upToDate(page);
  await page.unroute('**/v1/sync/push');
  const server = await serverRecords(email);
  assert.deepEqual(server.notes.map((n) => n.fields.text), ['written while the server is down']);
});

test('token expired while offline and the server killed in the middle of a push: nothing lost, nothing twice', async () => {
  const { context, page } = await openApp();
  const email = freshEmail('crash');
  await signUp(page, email);
  await addBaby(page, 'Ivy');
  await upToDate(page);

  await context.setOffline(true);
  await bannerIs(page, BANNER.offline);
  // Opened offline, the app still knows whose it is (and offers no sign-in it cannot do).
  await page.reload();
  await ready(page);
  await page.locator('#who-offline', { hasText: email }).waitFor();
  assert.equal(await page.locator('#sign-in').count(), 0);
  for (let i = 1; i <= 5; i++) await logNote(page, `night note ${i}`);
  // latchkey's session tokens live 60 s: the one the app holds is dead when it comes back. A
  // wait that is the scenario (the token's lifetime plus 2 s), not a guess at the machine.
  await new Promise((r) => setTimeout(r, 62_000));

  // The server applies the push, then dies before the answer reaches the browser.
  let crashed = false;
  await pushesWaitForRetryClick(page, async (route) => {
    crashed = true;
    await route.fetch().catch(() => undefined);
    await lk.kill('SIGKILL');
    await route.abort('connectionreset');
  });
  await context.setOffline(false);
  await bannerIs(page, BANNER.failed);
  assert.ok(crashed, 'the push reached the server');
  await lk.restart();
  await page.click('#banner');
  await upToDate(page);
  await page.unroute('**/v1/sync/push');

  const notes = (await serverRecords(email)).notes.map((n) => n.fields.text).sort();
  assert.deepEqual(notes, [1, 2, 3, 4, 5].map((i) => `night note ${i}`));
  await page.reload();
  await ready(page);
  await upToDate(page);
  const shown = (await timeline(page)).filter((t) => t.startsWith('Note · night note'));
  assert.equal(shown.length, 5, shown.join());
});

test('sharing with a partner: a family, an emailed invitation, and both parents log the same baby', async () => {
  const a = await openApp();
  const emailA = freshEmail('parent-a');
  const emailB = freshEmail('parent-b');
  await signUp(a.page, emailA);
  await a.page.fill('#family-name', 'The Smiths');
  await a.page.click('#create-family button[type=submit]');
  await a.page.locator('#family-status', { hasText: 'The Smiths' }).waitFor();
  await a.page.fill('#invite-email', emailB);
  await a.page.click('#invite button[type=submit]');
  await a.page.locator('#family-message', { hasText: `Invitation sent to ${emailB}` }).waitFor();
  await addBaby(a.page, 'Zoe');
  await logBottle(a.page, 90);
  await upToDate(a.page);

  // The partner signs up with the invited address and joins the family.
  const b = await openApp();
  await signUp(b.page, emailB);
  await b.page.locator('#family-status', { hasText: 'The Smiths' }).waitFor();
  await b.page.locator('#babies [role=radio]', { hasText: 'Zoe' }).waitFor({ timeout: 30_000 });
  await b.page.locator('#timeline button', { hasText: 'Bottle · 90 ml' }).waitFor();
  await logNote(b.page, 'from the partner');
  await upToDate(b.page);
  // The first parent's app hears of it over the live events and pulls.
  await a.page.locator('#timeline button', { hasText: 'Note · from the partner' }).waitFor({ timeout: 30_000 });

  const orgs = await backend(`/v1/organizations?query=${encodeURIComponent('The Smiths')}`);
  const org = orgs.data.find((o) => o.name === 'The Smiths');
  const shared = (await backend(`/v1/organizations/${org.id}/sync_export`)).tables;
  assert.deepEqual(shared.babies.map((x) => x.fields.name), ['Zoe']);
  assert.equal(shared.feeds[0].fields.amount_ml, 90);
  assert.deepEqual(shared.notes.map((x) => x.fields.text), ['from the partner']);
  // Nothing of the family landed in either parent's personal space.
  for (const email of [emailA, emailB]) {
    const own = await serverRecords(email);
    assert.equal(Object.values(own).flat().length, 0, JSON.stringify(own));
  }
});

/** A time today, as the edit dialog's `datetime-local` inputs take it (the browser's own zone). */
const todayAt = (page, hh, mm) =>
  page.evaluate(([hh, mm]) => {
    const d = new Date();
    const pad = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(hh)}:${pad(mm)}`;
  }, [hh, mm]);

/** How many spaces the app's sync engine has pulled (its `_meta` record of them). */
const syncedSpaces = (page) =>
  page.evaluate(() => new Promise((ok) => {
    indexedDB.open('babylog').onsuccess = (e) => {
      const req = e.target.result.transaction('_meta').objectStore('_meta').get('spaces');
      req.onsuccess = () => ok(req.result?.value?.length ?? 0);
    };
  }));

test('a partner signed in with another address joins by the invitation link; a baby moves into the family and back with its entries; times edited; a delete undone', async () => {
  const a = await openApp();
  const emailA = freshEmail('mover-a');
  const emailB = freshEmail('mover-b');
  await signUp(a.page, emailA);
  await addBaby(a.page, 'Mia');
  await logBottle(a.page, 70);
  await logNote(a.page, 'mia note');
  await a.page.click('[data-timer=sleep]');
  await a.page.click('[data-timer=sleep]');
  await a.page.locator('#timeline button', { hasText: 'Sleep · 0 min' }).waitFor();
  await upToDate(a.page);
  assert.equal(await a.page.isHidden('#move-baby'), true, 'no family to move to yet');
  await a.page.fill('#family-name', 'The Movers');
  await a.page.click('#create-family button[type=submit]');
  await a.page.locator('#family-status', { hasText: 'The Movers' }).waitFor();
  const invitationMail = await mailbox(lk.url, emailB);
  await a.page.fill('#invite-email', emailB);
  await a.page.click('#invite button[type=submit]');
  await a.page.locator('#family-message', { hasText: `Invitation sent to ${emailB}` }).waitFor();
  await until('the family pulled', async () => (await syncedSpaces(a.page)) === 2);

  await a.page.click('#move-baby:has-text("Move Mia to “The Movers”")');
  await a.page.locator('#move-message', { hasText: 'Mia moved, with 3 entries.' }).waitFor();
  await upToDate(a.page);
  // The partner already uses BabyLog under another address: the invitation's link, opened
  // while signed in, joins the family with that account.
  const b = await openApp();
  const ownB = freshEmail('mover-b-own');
  await signUp(b.page, ownB);
  const mail = await invitationMail.next((m) => /invited/.test(m.subject), 'the invitation');
  const link = mail.text.match(/\/sign-up\?__clerk_ticket=\S+/)[0];
  await b.page.goto(`${lk.url}${link}`);
  await b.page.locator('main', { hasText: `The invitation went to ${emailB}` }).waitFor();
  await b.page.click(`button:has-text("Join as ${ownB}")`);
  await b.page.waitForURL(/\/user\?notice=invitation_accepted$/);
  await b.page.goto(`${lk.url}/`);
  await ready(b.page);
  await b.page.locator('#family-status', { hasText: 'The Movers' }).waitFor({ timeout: 30_000 });
  await b.page.locator('#babies [role=radio]', { hasText: 'Mia' }).waitFor({ timeout: 30_000 });
  await b.page.locator('#timeline button', { hasText: 'Note · mia note' }).waitFor();
  assert.deepEqual(await timeline(b.page), await timeline(a.page));
  const orgs = await backend(`/v1/organizations?query=${encodeURIComponent('The Movers')}`);
  const org = orgs.data.find((o) => o.name === 'The Movers');
  const shared = (await backend(`/v1/organizations/${org.id}/sync_export`)).tables;
  assert.deepEqual([shared.babies.length, shared.feeds.length, shared.notes.length, shared.sleeps.length], [1, 1, 1, 1]);
  assert.equal(Object.values(await serverRecords(emailA)).flat().length, 0, 'nothing left in the personal space');

  // The partner sets the sleep's start and end; an end before the start is refused by the form.
  await b.page.click('#timeline button:has-text("Sleep")');
  await b.page.fill('#edit-started_at', await todayAt(b.page, 1, 0));
  await b.page.fill('#edit-ended_at', await todayAt(b.page, 0, 30));
  await b.page.click('#edit button[value=save]');
  assert.equal(await b.page.isVisible('#edit'), true, 'still open: the end is before the start');
  assert.equal(await b.page.$eval('#edit-ended_at', (i) => i.validity.rangeUnderflow), true);
  await b.page.fill('#edit-ended_at', await todayAt(b.page, 2, 30));
  await b.page.click('#edit button[value=save]');
  await b.page.waitForSelector('#edit', { state: 'hidden' });
  await a.page.locator('#timeline button', { hasText: 'Sleep · 1 h 30 min' }).waitFor({ timeout: 30_000 });
  assert.equal(await a.page.textContent('#timeline button:has-text("Sleep") time'), await b.page.textContent('#timeline button:has-text("Sleep") time'));

  // Deleted, then undone: the partner sees the bottle go and come back.
  await a.page.click('#timeline button:has-text("Bottle · 70 ml")');
  await a.page.click('#edit button[value=delete]');
  await a.page.locator('#undo', { hasText: 'Entry deleted.' }).waitFor();
  await b.page.locator('#timeline button', { hasText: 'Bottle · 70 ml' }).waitFor({ state: 'detached', timeout: 30_000 });
  await a.page.click('#undo-button');
  await b.page.locator('#timeline button', { hasText: 'Bottle · 70 ml' }).waitFor({ timeout: 30_000 });
  assert.equal(await a.page.isHidden('#undo'), true);

  // And back to the first parent's own log: gone from the partner's app and from the family.
  await a.page.click('#move-baby:has-text("Move Mia to my own log")');
  await a.page.locator('#move-message', { hasText: 'Mia moved, with 3 entries.' }).waitFor();
  await upToDate(a.page);
  await b.page.locator('#babies [role=radio]', { hasText: 'Mia' }).waitFor({ state: 'detached', timeout: 30_000 });
  const own = await serverRecords(emailA);
  assert.deepEqual([own.babies.length, own.feeds.length, own.notes.length, own.sleeps.length], [1, 1, 1, 1]);
  assert.equal(own.sleeps[0].fields.ended_at - own.sleeps[0].fields.started_at, 90 * 60_000, 'the edited times moved too');
  const left = (await backend(`/v1/organizations/${org.id}/sync_export`)).tables;
  assert.equal(Object.values(left).flat().length, 0, JSON.stringify(left));
});

test('three years of a family\'s history (30,000 entries) reach a fresh browser; the timeline shows a day at a time', async () => {
  const email = freshEmail('years');
  const { total, perDayOf } = await seedHistory(lk, { email, password: PASSWORD, entries: 30_000, days: 3 * 365 });
  const { page } = await openApp();
  await signIn(page, email);
  await until('the whole history in IndexedDB', async () => (await localRecordCount(page)) === total, 120_000);
  await upToDate(page);
  await page.locator('#family-status', { hasText: 'Years family' }).waitFor();
  await page.locator('#today-title', { hasText: 'Today · Ada' }).waitFor();
  const items = () => page.$$eval('#timeline li', (l) => l.length);
  // The title and the list are drawn in turn: wait for the list itself.
  await until('today\'s entries, not the history', async () => (await items()) === perDayOf(0));
  assert.ok(perDayOf(0) > 20 && perDayOf(0) < 40, `${perDayOf(0)}`);
  assert.equal(await page.isDisabled('#day-next'), true, 'no later day than today');

  // "Earlier" steps one day back; "Today" comes home.
  await page.click('#day-prev');
  await page.waitForFunction(() => !document.getElementById('today-title').textContent.startsWith('Today'));
  await until('the previous day drawn', async () => (await items()) === perDayOf(1));
  await page.click('#day-prev');
  await until('the day before drawn', async () => (await items()) === perDayOf(2));
  assert.equal(await page.isDisabled('#day-next'), false);
  await page.click('#day-today');
  await page.locator('#today-title', { hasText: 'Today · Ada' }).waitFor();
  await until('today drawn again', async () => (await items()) === perDayOf(0));
  const elements = await page.evaluate(() => document.getElementsByTagName('*').length);
  assert.ok(elements < 1_000, `the page holds ${elements} elements, not one per entry`);
  await page.screenshot({ path: join(ARTIFACTS, 'history.png'), fullPage: true });
});

test('two tabs of one browser: one outbox, each entry on the server once, each tab shows the other\'s entries', async () => {
  const { context, page } = await openApp();
  const email = freshEmail('tabs');
  await signUp(page, email);
  await addBaby(page, 'Tom');
  await upToDate(page);
  const other = await context.newPage();
  other.on('pageerror', (e) => pageErrors.push(String(e)));
  await other.goto(`${lk.url}/`);
  await ready(other);
  await other.locator('#who', { hasText: email }).waitFor();

  for (let i = 1; i <= 3; i++) {
    await logNote(page, `tab one ${i}`);
    await logNote(other, `tab two ${i}`);
  }
  for (const p of [page, other]) await upToDate(p);
  const notes = (await serverRecords(email)).notes.map((n) => n.fields.text).sort();
  assert.deepEqual(notes, ['tab one 1', 'tab one 2', 'tab one 3', 'tab two 1', 'tab two 2', 'tab two 3']);
  // Each tab shows the other's entries without a reload (the engine tells its other tabs).
  for (const p of [page, other]) {
    await p.locator('#timeline button', { hasText: 'Note · tab one 3' }).waitFor();
    await p.locator('#timeline button', { hasText: 'Note · tab two 3' }).waitFor();
    assert.equal((await timeline(p)).filter((t) => t.startsWith('Note · tab')).length, 6);
  }
  // Offline there are no live events: the other tab hears of a write from the engine itself.
  await context.setOffline(true);
  await logNote(page, 'tab one offline');
  await other.locator('#timeline button', { hasText: 'Note · tab one offline' }).waitFor({ timeout: 30_000 });
  await context.setOffline(false);
  for (const p of [page, other]) await upToDate(p);
  await other.close();
});

test('a forgotten password: "Sign in", "Forgot password?", the mailed code, a new password, and back in the app with the log; the other browser is signed out', async () => {
  const first = await openApp();
  const email = freshEmail('forgetful');
  await signUp(first.page, email);
  await addBaby(first.page, 'Ivy');
  await upToDate(first.page);

  const { page } = await openApp();
  await page.click('#sign-in');
  await page.waitForSelector('#identifier');
  await page.click('a:text("Forgot password?")');
  await page.waitForURL((u) => u.pathname === '/sign-in/forgot' && u.searchParams.get('redirect_url') === '/');
  await page.fill('#email_address', email);
  const inbox = await mailbox(lk.url, email);
  await page.click('button.primary[type=submit]');
  await page.waitForSelector('#code');
  assert.match(await page.textContent('main'), new RegExp(email.replace(/[.+]/g, '\\$&')));
  const reset = await inbox.next((m) => /password reset code$/.test(m.subject), 'reset code mail');
  await page.fill('#code', reset.subject.slice(0, 6));
  await page.click('button.primary[type=submit]');
  await page.waitForSelector('#confirm_password');
  assert.equal(await page.isChecked('input[name=sign_out_of_other_sessions]'), true);
  const fresh = 'a new passphrase for night feeds';
  await page.fill('#password', fresh);
  await page.fill('#confirm_password', fresh);
  await page.screenshot({ path: join(ARTIFACTS, 'reset-password.png'), fullPage: true });
  await page.click('button.primary[type=submit]');
  await page.waitForURL(`${lk.url}/`);
  await ready(page);
  await page.locator('#who', { hasText: email }).waitFor();
  await page.locator('#babies [role=radio]', { hasText: 'Ivy' }).waitFor();
  const notice = await inbox.next((m) => /password was changed$/.test(m.subject), 'notice of the change');
  assert.match(notice.text, /Chrom(e|ium) on Linux/);

  // Every other device was signed out: the first browser's app asks to sign in again.
  await first.page.reload();
  await ready(first.page);
  await bannerIs(first.page, BANNER.signedOut);
  // The old password is refused on the hosted page; the new one signs in.
  await first.page.goto(`${lk.url}/sign-in?redirect_url=%2F`);
  await first.page.fill('#identifier', email);
  await first.page.fill('#password', PASSWORD);
  await first.page.click('button.primary[type=submit]');
  await first.page.locator('[role=alert]', { hasText: /password/i }).waitFor();
  assert.equal(new URL(first.page.url()).pathname, '/sign-in');
  await signIn(first.page, email, fresh);
  await first.page.locator('#babies [role=radio]', { hasText: 'Ivy' }).waitFor();
});

/** Every object store of BabyLog's IndexedDB with its rows (the engine's bookkeeping included). */
const localDatabase = (page) =>
  page.evaluate(() => new Promise((ok, fail) => {
    const open = indexedDB.open('babylog');
    open.onerror = () => fail(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const names = [...db.objectStoreNames];
      const tx = db.transaction(names);
      const out = {};
      for (const n of names) tx.objectStore(n).getAll().onsuccess = (e) => (out[n] = e.target.result);
      tx.oncomplete = () => {
        db.close();
        ok(out);
      };
    };
  }));

test('"Your data": the download holds what was written; a wrong password deletes nothing; then the account goes and this browser keeps nothing of it', async () => {
  const { page } = await openApp();
  const email = freshEmail('leaving-parent');
  await signUp(page, email);
  await addBaby(page, 'Noor');
  await logBottle(page, 90);
  await logNote(page, 'take this with me');
  await upToDate(page);
  await page.locator('#your-data').waitFor();

  // The download, parsed, against what the app wrote into its own database.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-data')]);
  assert.match(download.suggestedFilename(), /^babylog-data-\d{4}-\d{2}-\d{2}\.json$/);
  const exported = JSON.parse(await readFile(await download.path(), 'utf8'));
  const [user] = await backend(`/v1/users?email_address=${encodeURIComponent(email)}`);
  assert.equal(exported.user.id, user.id);
  assert.equal(exported.user.email_addresses[0].email_address, email);
  const local = await localDatabase(page);
  const written = ['babies', 'feeds', 'notes'].flatMap((table) =>
    local[table].map(({ id, space, ...fields }) => ({ space, table, id, fields })),
  );
  assert.equal(written.length, 3);
  const mine = exported.sync_records.map(({ space, table, id, fields }) => ({ space, table, id, fields }));
  const byKey = (a, b) => `${a.table}/${a.id}`.localeCompare(`${b.table}/${b.id}`);
  assert.deepEqual(mine.sort(byKey), written.sort(byKey));
  await page.locator('#data-message', { hasText: 'Your data was downloaded.' }).waitFor();

  // A wrong password: refused in words, nothing deleted here or on the server.
  await page.fill('#delete-password', 'not my password');
  await page.fill('#delete-confirm', 'DELETE');
  await page.click('#delete-account button[type=submit]');
  await page.locator('#data-message', { hasText: 'That password is not right. Nothing was deleted.' }).waitFor();
  assert.deepEqual(await localDatabase(page), local);
  assert.equal((await backend(`/v1/users?email_address=${encodeURIComponent(email)}`)).length, 1);

  await page.fill('#delete-password', PASSWORD);
  await page.fill('#delete-confirm', 'DELETE');
  await page.click('#delete-account button[type=submit]');
  await page.locator('#account-message', { hasText: 'Your account and everything on this device are deleted.' }).waitFor();
  await bannerIs(page, BANNER.signedOut);
  await page.locator('#sign-in').waitFor();
  assert.equal(await page.isHidden('#your-data'), true);
  const left = await localDatabase(page);
  const { _meta: marker, ...stores } = left;
  for (const [store, rows] of Object.entries(stores)) assert.deepEqual(rows, [], `${store} still holds rows`);
  assert.deepEqual(marker, [{ key: 'user_id', value: '(forgotten)' }], 'only the marker that the data was someone\'s');
  assert.deepEqual(await timeline(page), []);
  assert.equal(await page.isHidden('#today'), true);
  assert.equal(await page.locator('#babies [role=radio]').count(), 0);
  assert.deepEqual(await backend(`/v1/users?email_address=${encodeURIComponent(email)}`), []);
  // A reload finds nothing either (no baby, no cached account name).
  await page.reload();
  await ready(page);
  assert.equal(await page.locator('#babies [role=radio]').count(), 0);
  await page.locator('#sign-in').waitFor();
});

test('no page errors in any of the above', () => {
  assert.deepEqual(pageErrors, []);
});
