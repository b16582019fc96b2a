// examples/babylog-nextjs — BabyLog as a Next.js App Router app on unmodified @clerk/nextjs —
// built and started against a fresh latchkey, then used in Debian's Chromium (one browser, a
// context per device): signed-out use that survives going offline, the claim of pre-sign-in
// entries at the first <SignIn/>, a partner in the family organization with live sync through
// the /__clerk proxy, and the seed route handlers.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { freePort, mailbox, startLatchkey } from '../clerk-backend/latchkey.mjs';
import { CHROMIUM, recordWire } from '../clerk-js/browser.mjs';
import { callApi as call, copyClerkBundles, nextEnvironment, root, runNext } from './next-app.mjs';
import { localRecordCount, seedHistory } from '../../web/tests/history.mjs';

const appDir = resolve(root, 'examples/babylog-nextjs');
const artifacts = resolve(root, 'target/artifacts/babylog-nextjs');
mkdirSync(artifacts, { recursive: true });
const PASSWORD = 'correct horse battery staple';
const GRACE = 'grace@example.com';
const ALAN = 'alan@example.com';
const ALAN_WORK = 'alan.work@example.com';

let latchkey, next, browser, origin, family;
const users = {};
const problems = [];
const devices = {};

// Latchkey's Backend API with the secret key, as the app's server would call it.
async function bapi(method, path, body) {
  const res = await fetch(`${latchkey.url}/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${latchkey.secretKey}`, 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function device(name) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  // Every text the banner shows, as it changes (the five states are asserted at the end).
  await context.addInitScript(() => {
    const seen = JSON.parse(sessionStorage.getItem('banners') ?? '[]'); // kept across reloads
    new MutationObserver(() => {
      const b = document.getElementById('banner');
      const text = b && !b.hidden ? b.textContent : null;
      if (text && seen[seen.length - 1] !== text) {
        seen.push(text);
        sessionStorage.setItem('banners', JSON.stringify(seen));
      }
    }).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  devices[name] = { context, page, wire: recordWire(page) };
  return { context, page };
}

const ready = (page) => page.waitForSelector('body[data-ready=true]', { timeout: 60_000 });
const entry = (page, text) => page.waitForSelector(`#entries li:has(.text:text-is("${text}"))`, { timeout: 30_000 });
const bannerIs = (page, text, timeout = 30_000) =>
  page.waitForFunction((t) => { const b = document.getElementById('banner'); return t === null ? b.hidden : !b.hidden && b.textContent === t; }, text, { timeout });
const banners = new Set();
const collectBanners = async () => { for (const { page } of Object.values(devices)) for (const t of await page.evaluate(() => JSON.parse(sessionStorage.getItem('banners') ?? '[]'))) banners.add(t); };

async function addBaby(page, name) {
  await page.fill('#add-baby input[name=name]', name);
  await page.click('#add-baby button[type=submit]');
  await page.waitForFunction((n) => document.querySelector('#baby option:checked')?.textContent === n, name);
}

async function addEntry(page, text, { kind = 'notes', ml } = {}) {
  await page.selectOption('#add select[name=kind]', kind);
  await page.fill('#add input[name=ml]', ml === undefined ? '' : String(ml));
  await page.fill('#add input[name=text]', text);
  await page.click('#add button[type=submit]');
  await entry(page, text);
}

// Signs in through the app's <SignIn/> page (clerk-js through /__clerk), back on the log.
async function signIn(page, email) {
  await page.goto(`${origin}/sign-in`);
  await page.waitForSelector('input[name=identifier]', { timeout: 60_000 });
  await page.fill('input[name=identifier]', email);
  await page.click('button:has-text("Continue")');
  await page.waitForSelector('input[name=password]');
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button:has-text("Continue")');
  await page.waitForURL(`${origin}/`, { timeout: 30_000 });
  await page.waitForFunction((e) => window.Clerk?.user?.primaryEmailAddress?.emailAddress === e, email, { timeout: 30_000 });
  await ready(page);
}

// The records of one table as IndexedDB holds them (not through the engine).
const stored = (page, table) =>
  page.evaluate(
    (table) =>
      new Promise((ok, fail) => {
        const open = indexedDB.open('babylog-nextjs');
        open.onerror = () => fail(open.error);
        open.onsuccess = () => {
          const req = open.result.transaction(table).objectStore(table).getAll();
          req.onsuccess = () => ok(req.result);
          req.onerror = () => fail(req.error);
        };
      }),
    table,
  );

before(async () => {
  latchkey = await startLatchkey();
  copyClerkBundles(appDir);
  const port = await freePort();
  origin = `http://localhost:${port}`; // see nextjs.test.mjs: Next needs `localhost`
  const env = nextEnvironment(latchkey, port);
  await runNext(appDir, ['build'], env, { timeoutMs: 600_000 });
  next = (await runNext(appDir, ['start', '-H', 'localhost', '-p', String(port)], env, { until: /Ready|started server/i, timeoutMs: 60_000 })).child;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  for (const [email, first] of [[GRACE, 'Grace'], [ALAN, 'Alan']]) {
    users[email] = await bapi('POST', '/users', { email_address: [email], password: PASSWORD, first_name: first });
  }
});

after(async () => {
  await browser?.close();
  next?.kill('SIGTERM');
  await latchkey?.stop();
});

test('1. signed out: entries are kept in IndexedDB, one written offline, and the app installs and opens offline with them', async () => {
  const { context, page } = await device('grace-phone');
  await page.goto(`${origin}/`);
  await ready(page);
  await bannerIs(page, 'Sign in to sync');
  await addBaby(page, 'Ada');
  await addEntry(page, 'first bottle');
  const notes = await stored(page, 'notes');
  assert.equal(notes.length, 1);
  assert.equal(notes[0].text, 'first bottle');
  assert.equal(notes[0].space ?? null, null, 'not claimed yet: no space');
  assert.equal((await stored(page, 'babies'))[0].name, 'Ada');
  // The service worker is installed (its install cached the shell) and controls the page.
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 30_000 });
  // ...and has cached what the page loaded before it took control (Clerk's UI chunks).
  await page.waitForSelector('body[data-offline-ready=true]', { state: 'attached', timeout: 30_000 });
  // Installable as an app: Chromium's own verdict on the manifest, icons and service worker.
  const cdp = await context.newCDPSession(page);
  const manifest = await cdp.send('Page.getAppManifest');
  assert.deepEqual(manifest.errors, [], JSON.stringify(manifest.errors));
  assert.equal(JSON.parse(manifest.data).name, 'BabyLog');
  const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
  // A context of browser.newContext() is off the record, where Chromium installs nothing; every
  // other criterion (manifest, icons, service worker, start URL in scope) must hold.
  const blocking = installabilityErrors.filter((e) => e.errorId !== 'in-incognito');
  assert.deepEqual(blocking, [], JSON.stringify(installabilityErrors));
  await cdp.detach();
  await context.setOffline(true);
  try {
    const probe = await page.evaluate(() => fetch('/api/items').then(() => 'online', () => 'offline'));
    assert.equal(probe, 'offline', 'the context really is offline');
    await addEntry(page, 'written offline');
    await bannerIs(page, 'Offline mode — changes saved locally');
    const res = await page.reload();
    assert.ok(res.fromServiceWorker(), 'the page came from the service worker');
    await ready(page);
    await entry(page, 'first bottle');
    await entry(page, 'written offline');
    await page.screenshot({ path: `${artifacts}/offline.png` });
  } finally {
    await context.setOffline(false);
  }
});

test('2. sign-in through <SignIn/> claims the pre-sign-in entry, and it syncs to another device', async () => {
  const { page } = devices['grace-phone'];
  await signIn(page, GRACE);
  // Claimed into the personal space and pushed: the banner disappears (up to date).
  await page.waitForFunction(() => document.getElementById('banner').hidden && document.querySelector('#entries li')?.dataset.space, null, { timeout: 30_000 });
  assert.equal(await page.isHidden('#rejected'), true, 'nothing refused');
  const claimed = await stored(page, 'notes');
  assert.deepEqual(claimed.map((n) => n.text).sort(), ['first bottle', 'written offline']);
  for (const note of claimed) assert.ok(note.space, `claimed into a space: ${JSON.stringify(note)}`);
  const { page: tablet } = await device('grace-tablet');
  await signIn(tablet, GRACE);
  await entry(tablet, 'first bottle');
  await entry(tablet, 'written offline');
});

test('3. the partner, signed in under another address, proves the invited one and accepts, picks the family in <OrganizationSwitcher/>, sees its entries, and both get each other\'s live', async () => {
  const grace = devices['grace-phone'].page;
  const org = await bapi('POST', '/organizations', { name: 'Hopper family', created_by: users[GRACE].id });
  await grace.evaluate((id) => window.Clerk.setActive({ organization: id }), org.id);
  await grace.waitForFunction((id) => window.Clerk.organization?.id === id, org.id);
  // Grace invites Alan with Clerk's SDK (what <OrganizationProfile/>'s "Invite" does).
  // Grace has Alan's work address; Alan uses BabyLog under his own.
  const invited = await grace.evaluate((email) => window.Clerk.organization.inviteMember({ emailAddress: email, role: 'org:member' }).then((i) => i.status), ALAN_WORK);
  assert.equal(invited, 'pending');
  await bannerIs(grace, null);
  // New babies go to the active family; their entries follow them.
  await addBaby(grace, 'Ben');
  await addEntry(grace, 'family bath');
  await bannerIs(grace, null);
  const bath = (await stored(grace, 'notes')).find((n) => n.text === 'family bath');
  assert.equal(bath.space, org.id, 'written in the family space');
  assert.equal((await stored(grace, 'babies')).find((b) => b.name === 'Ben').space, org.id);

  const { page: alan } = await device('alan-phone');
  await signIn(alan, ALAN);
  // Signed in with another address, Alan adds and proves the invited one (what <UserProfile/>'s
  // "Add email address" does); the invitation is then his to accept.
  const inbox = await mailbox(latchkey.url, ALAN_WORK);
  await alan.evaluate(async (email) => {
    const added = await window.Clerk.user.createEmailAddress({ email });
    await added.prepareVerification({ strategy: 'email_code' });
    window.__added = added;
  }, ALAN_WORK);
  // latchkey mails a code when the address is added; prepareVerification (which <UserProfile/>
  // also calls) right after keeps that code instead of mailing a second.
  const code = await inbox.code();
  assert.equal(await alan.evaluate(async (code) => (await window.__added.attemptVerification({ code })).verification.status, code), 'verified');
  // The user's pending invitations and their accept, as clerk-js offers them (the calls the
  // switcher's "Join" makes: GET /v1/me/organization_invitations, POST …/{id}/accept).
  const joined = await alan.evaluate(async (id) => {
    await window.Clerk.user.reload();
    const { data } = await window.Clerk.user.getOrganizationInvitations({ status: 'pending' });
    const invitation = data.find((i) => i.publicOrganizationData.id === id);
    await invitation.accept();
    await window.Clerk.user.reload();
    return window.Clerk.user.organizationMemberships.some((m) => m.organization.id === id);
  }, org.id);
  assert.equal(joined, true, 'a member of the family');
  // The switcher lists what it fetched when the page loaded: a reload shows the new family.
  await alan.reload();
  await ready(alan);
  await alan.click('.cl-organizationSwitcherTrigger');
  await alan.click(`.cl-organizationSwitcherPopoverCard :text("Hopper family")`);
  await alan.waitForFunction((id) => window.Clerk.organization?.id === id, org.id, { timeout: 30_000 });
  await entry(alan, 'family bath');
  await bannerIs(alan, null);
  assert.deepEqual((await stored(alan, 'babies')).map((b) => b.name), ['Ben'], 'Grace\'s personal baby stays hers');

  // Server-sent events through Next's proxy: the `ready` event arrives while the stream is open.
  const sse = await alan.evaluate(async () => {
    const token = await window.Clerk.session.getToken();
    const res = await fetch('/__clerk/v1/sync/events', { headers: { authorization: `Bearer ${token}` } });
    const reader = res.body.getReader();
    const { value } = await reader.read();
    await reader.cancel();
    return { status: res.status, type: res.headers.get('content-type'), first: new TextDecoder().decode(value) };
  });
  assert.equal(sse.status, 200);
  assert.match(sse.type, /text\/event-stream/);
  assert.match(sse.first, /event: ready/);

  // The engine's own stream, push and pull went through the same-origin proxy too.
  const wire = devices['alan-phone'].wire;
  for (const path of ['/v1/sync/events', '/v1/sync/pull']) assert.ok(wire.some((w) => w.path === path && w.status === 200), `${path} via /__clerk`);

  // Live both ways: no reload, no button; the other side's stream pokes a pull.
  await addEntry(alan, 'alan: nappy');
  await entry(grace, 'alan: nappy');
  await addEntry(grace, 'grace: nap');
  await entry(alan, 'grace: nap');
  assert.ok(devices['grace-phone'].wire.some((w) => w.path === '/v1/sync/push' && w.status === 200), 'push via /__clerk');
  await grace.screenshot({ path: `${artifacts}/family.png` });
  family = org;
});

test('4. /api/items: 401 signed out, 200 scoped to the caller, DELETE only for the org:admin', async () => {
  const grace = devices['grace-phone'].page;
  const alan = devices['alan-phone'].page;
  const tablet = devices['grace-tablet'].page;
  const org = family;
  for (const [method, body] of [['GET'], ['POST', { name: 'x' }], ['DELETE']]) {
    assert.deepEqual(await call(grace, method, '/api/items', { body, signedOut: true }), { status: 401, json: { error: 'Unauthorized' } }, method);
  }
  assert.deepEqual(await call(grace, 'GET', '/api/items'), { status: 200, json: { items: [] } });
  const created = await call(grace, 'POST', '/api/items', { body: { name: 'bottles' } });
  assert.equal(created.status, 201);
  assert.equal(created.json.userId, users[GRACE].id);
  assert.equal(created.json.orgId, org.id);
  assert.deepEqual((await call(alan, 'GET', '/api/items')).json.items.map((i) => i.name), ['bottles'], 'the family shares it');
  assert.deepEqual(await call(tablet, 'GET', '/api/items'), { status: 200, json: { items: [] } }, 'Grace without the family active: her own items');
  assert.deepEqual(await call(alan, 'DELETE', '/api/items'), { status: 403, json: { error: 'Forbidden' } });
  assert.deepEqual(await call(grace, 'DELETE', '/api/items'), { status: 200, json: { success: true } });
  assert.deepEqual((await call(alan, 'GET', '/api/items')).json.items, []);
});

test('5. a field edited on each side while both are offline merges per field', async () => {
  const grace = devices['grace-phone'];
  const alan = devices['alan-phone'];
  await addEntry(grace.page, 'evening bottle', { kind: 'feeds', ml: 60 });
  const row = await entry(alan.page, 'evening bottle');
  const id = await row.getAttribute('data-id');
  await bannerIs(grace.page, null);
  await Promise.all([grace.context.setOffline(true), alan.context.setOffline(true)]);
  try {
    await grace.page.fill(`li[data-id="${id}"] .amount`, '90');
    await grace.page.press(`li[data-id="${id}"] .amount`, 'Tab');
    await alan.page.fill(`li[data-id="${id}"] .edit`, 'evening bottle, warm');
    await alan.page.press(`li[data-id="${id}"] .edit`, 'Tab');
    await bannerIs(grace.page, 'Offline mode — changes saved locally');
    await bannerIs(alan.page, 'Offline mode — changes saved locally');
  } finally {
    await Promise.all([grace.context.setOffline(false), alan.context.setOffline(false)]);
  }
  for (const { page } of [grace, alan]) {
    await page.waitForFunction((id) => {
      const li = document.querySelector(`li[data-id="${id}"]`);
      return li?.querySelector('.text').textContent === 'evening bottle, warm' && li.querySelector('.amount').value === '90';
    }, id, { timeout: 60_000 });
    await bannerIs(page, null, 60_000);
  }
  const [merged] = (await stored(grace.page, 'feeds')).filter((f) => f.id === id);
  assert.equal(merged.amount_ml, 90);
  assert.equal(merged.note, 'evening bottle, warm');
});

test('6. latchkey killed during a push, after applying it: nothing is lost, nothing twice, it syncs once latchkey is back', async () => {
  const grace = devices['grace-phone'].page;
  const alan = devices['alan-phone'].page;
  // The server applies the first push, then dies before its answer reaches the browser: the
  // engine must send it again, and latchkey must apply it once (op ids).
  let crashed = false;
  await grace.route('**/__clerk/v1/sync/push', async (route) => {
    if (crashed) return route.continue();
    crashed = true;
    await route.fetch().catch(() => undefined);
    await latchkey.kill('SIGKILL');
    await route.abort('connectionreset');
  });
  await addEntry(grace, 'during the outage');
  await grace.waitForFunction(() => ['Sync failed — retry', 'Offline mode — changes saved locally'].includes(document.getElementById('banner').textContent), null, { timeout: 60_000 });
  assert.ok(crashed, 'the push reached the server');
  await latchkey.restart();
  await grace.click('#banner').catch(() => undefined); // "retry" (it may have retried already)
  await bannerIs(grace, null, 90_000);
  await grace.unroute('**/__clerk/v1/sync/push');
  assert.equal(await grace.evaluate(() => window.babylog.pendingCount()), 0, 'the outbox is empty');
  const onServer = [];
  for (const path of [`/users/${users[GRACE].id}/sync_export`, `/organizations/${family.id}/sync_export`]) {
    onServer.push(...((await bapi('GET', path)).tables.notes ?? []).filter((n) => n.fields.text === 'during the outage'));
  }
  assert.equal(onServer.length, 1, `once on the server: ${JSON.stringify(onServer)}`);
  assert.equal((await stored(grace, 'notes')).filter((n) => n.text === 'during the outage').length, 1, 'once on the device');
  // The partner's live stream reconnects by itself (with backoff) and pulls.
  await alan.waitForSelector(`#entries li:has(.text:text-is("during the outage"))`, { timeout: 90_000 });
  assert.equal(await alan.locator('#entries li:has(.text:text-is("during the outage"))').count(), 1, 'once on the partner\'s list');
});

test('7. an entry\'s times edited, a delete undone, a baby moved out of the family and back: the partner follows each', async () => {
  const grace = devices['grace-phone'].page;
  const alan = devices['alan-phone'].page;
  const tablet = devices['grace-tablet'].page;
  const li = (text) => `#entries li:has(.text:text-is("${text}"))`;

  // Start and end of a bottle, in the browser's local time; an end before the start is refused.
  const feed = await grace.locator(li('evening bottle, warm')).getAttribute('data-id');
  // Each saved edit draws the line anew (it is keyed by its values): wait for that before the next.
  const saveTime = async (name, value) => {
    const line = await grace.$(`li[data-id="${feed}"]`);
    await grace.fill(`li[data-id="${feed}"] input.${name}`, value);
    await grace.locator(`li[data-id="${feed}"] input.${name}`).blur(); // Tab walks the input's own parts
    await grace.waitForFunction((el) => !el.isConnected, line, { timeout: 30_000 });
  };
  await saveTime('started_at', '2026-01-02T03:04');
  await saveTime('ended_at', '2026-01-02T03:30');
  await alan.waitForFunction((id) => document.querySelector(`li[data-id="${id}"] input.ended_at`)?.value === '2026-01-02T03:30', feed, { timeout: 30_000 });
  assert.equal(await alan.inputValue(`li[data-id="${feed}"] input.started_at`), '2026-01-02T03:04');
  const expected = await grace.evaluate(() => [new Date('2026-01-02T03:04').getTime(), new Date('2026-01-02T03:30').getTime()]);
  const timed = (await stored(alan, 'feeds')).find((f) => f.id === feed);
  assert.deepEqual([timed.started_at, timed.ended_at], expected);
  await grace.fill(`li[data-id="${feed}"] input.ended_at`, '2026-01-01T00:00');
  await grace.locator(`li[data-id="${feed}"] input.ended_at`).blur();
  assert.equal(await grace.inputValue(`li[data-id="${feed}"] input.ended_at`), '2026-01-02T03:30', 'put back');
  assert.equal((await stored(grace, 'feeds')).find((f) => f.id === feed).ended_at, expected[1]);

  // Delete, then undo: the partner sees it go and come back whole.
  const nap = (await stored(grace, 'notes')).find((n) => n.text === 'grace: nap');
  await grace.click(`${li('grace: nap')} button.delete`);
  await alan.waitForSelector(li('grace: nap'), { state: 'detached', timeout: 30_000 });
  await grace.click('#undo button');
  await entry(alan, 'grace: nap');
  await bannerIs(alan, null);
  assert.deepEqual((await stored(alan, 'notes')).find((n) => n.id === nap.id), nap);
  assert.equal(await grace.isHidden('#undo'), true);

  // Ben and every entry of his leave the family for Grace's own log, then come back.
  const entriesOfBen = (await stored(grace, 'notes')).filter((n) => n.space === family.id).length;
  assert.ok(entriesOfBen >= 3, `${entriesOfBen}`);
  await grace.click('#move:has-text("Move to my own log")');
  await grace.waitForFunction(() => document.querySelector('#move')?.textContent === 'Move to family', null, { timeout: 30_000 }).catch(async (e) => {
    throw new Error(`${e.message}; move error: ${await grace.textContent('#move-error')}; rejected: ${await grace.textContent('#rejected')}`);
  });
  await bannerIs(grace, null);
  assert.equal(await grace.isHidden('#rejected'), true, await grace.textContent('#rejected'));
  await alan.waitForFunction(() => document.querySelectorAll('#entries li').length === 0, null, { timeout: 30_000 });
  assert.deepEqual(await stored(alan, 'babies'), [], 'gone from the family');
  // Grace's tablet (no family active) follows live: Ben is in her personal space there too.
  await tablet.waitForFunction(() => new Promise((ok) => {
    indexedDB.open('babylog-nextjs').onsuccess = (e) => {
      const req = e.target.result.transaction('babies').objectStore('babies').getAll();
      req.onsuccess = () => ok(req.result.some((b) => b.name === 'Ben' && b.space === 'me'));
    };
  }), null, { timeout: 30_000, polling: 200 });
  const mine = (await stored(grace, 'notes')).filter((n) => n.baby_id === nap.baby_id);
  assert.ok(mine.length >= entriesOfBen && mine.every((n) => n.space === 'me'), JSON.stringify(mine));
  await grace.click('#move:has-text("Move to family")');
  await entry(alan, 'family bath');
  await bannerIs(grace, null);
  assert.deepEqual((await stored(alan, 'babies')).map((b) => [b.name, b.space]), [['Ben', family.id]]);
  assert.equal((await stored(alan, 'feeds')).find((f) => f.id === feed).ended_at, expected[1], 'the edited times moved too');
  assert.equal(await grace.isHidden('#move-error'), true);
});

test('8. a session token that expired while offline: the entry written meanwhile syncs once back online', async () => {
  const grace = devices['grace-phone'];
  const alan = devices['alan-phone'].page;
  await bannerIs(grace.page, null);
  await grace.context.setOffline(true);
  try {
    await addEntry(grace.page, 'written offline, synced later');
    await bannerIs(grace.page, 'Offline mode — changes saved locally');
    // Session tokens live 60 s: wait until the one Clerk holds has expired (the scenario
    // itself, read from the token, not a guess at the machine).
    const exp = await grace.page.evaluate(() => {
      const payload = window.Clerk.session.lastActiveToken.getRawString().split('.')[1];
      return JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))).exp;
    });
    assert.ok(exp > Date.now() / 1000, 'a live token when going offline');
    await grace.page.waitForFunction((exp) => Date.now() / 1000 > exp + 1, exp, { timeout: 90_000, polling: 500 });
  } finally {
    await grace.context.setOffline(false);
  }
  await bannerIs(grace.page, null, 60_000);
  await entry(alan, 'written offline, synced later');
  assert.equal(await grace.page.evaluate(() => window.babylog.pendingCount()), 0);
});

test('9. years of history: a fresh browser gets it all and the list shows a page at a time', async () => {
  const email = 'years@example.com';
  const { total } = await seedHistory(latchkey, { email, password: PASSWORD, entries: 3000, days: 100 });
  const { page } = await device('years');
  await signIn(page, email);
  const deadline = Date.now() + 120_000;
  while ((await localRecordCount(page, 'babylog-nextjs')) !== total) {
    assert.ok(Date.now() < deadline, 'the whole history in IndexedDB within 120 s');
    await new Promise((r) => setTimeout(r, 250));
  }
  await page.waitForFunction(() => document.querySelectorAll('#entries li').length === 50, null, { timeout: 30_000 });
  await page.click('#more');
  await page.waitForFunction(() => document.querySelectorAll('#entries li').length === 100, null, { timeout: 30_000 });
  const elements = await page.evaluate(() => document.getElementsByTagName('*').length);
  assert.ok(elements < 2_000, `${elements} elements for a history of ${total} records`);
  const shown = await page.$$eval('#entries li .text', (t) => t.map((x) => x.textContent));
  assert.ok(shown.includes('note 2999'), 'the newest first');
});

test('10. an invitation link opened by a partner who uses the app under another address: latchkey\'s page joins that account, and the switcher lists the family', async () => {
  const alan = devices['alan-phone'];
  const grandparents = await bapi('POST', '/organizations', { name: 'Hopper grandparents', created_by: users[GRACE].id });
  const invited = 'alan.home@example.com';
  const inbox = await mailbox(latchkey.url, invited);
  await bapi('POST', `/organizations/${grandparents.id}/invitations`, { email_address: invited, role: 'org:member', inviter_user_id: users[GRACE].id });
  const mail = await inbox.next((m) => /invited/.test(m.subject), 'the invitation');
  const link = mail.text.match(/\/sign-up\?__clerk_ticket=\S+/)[0];
  // The link is latchkey's page: signed out there, it offers to sign in with another account
  // first, then names both addresses and joins only on the click.
  const page = await alan.context.newPage();
  page.on('pageerror', (e) => problems.push(`alan link: page error: ${e.message}`));
  await page.goto(`${latchkey.url}${link}`);
  await page.click('p:has-text("Invited, and already have an account") a:has-text("Sign in")');
  await page.fill('#identifier', ALAN);
  await page.fill('#password', PASSWORD);
  await page.click('button.primary[type=submit]');
  await page.locator('main', { hasText: `The invitation went to ${invited}` }).waitFor({ timeout: 30_000 });
  await page.click(`button:has-text("Join as ${ALAN}")`);
  await page.waitForURL(/\/user\?notice=invitation_accepted$/, { timeout: 30_000 });
  await page.close();
  const members = await bapi('GET', `/organizations/${grandparents.id}/memberships`);
  assert.deepEqual(members.data.map((m) => m.public_user_data.user_id).sort(), [users[ALAN].id, users[GRACE].id].sort());
  // Back in the app: the switcher lists the new family (joining switched nothing).
  await alan.page.reload();
  await ready(alan.page);
  assert.notEqual(await alan.page.evaluate(() => window.Clerk.organization?.id), grandparents.id);
  await alan.page.click('.cl-organizationSwitcherTrigger');
  await alan.page.locator('.cl-organizationSwitcherPopoverCard :text("Hopper grandparents")').waitFor({ timeout: 30_000 });
  await alan.page.keyboard.press('Escape');
});

test('11. "Your data": the download holds what was written; deleting the account empties this browser\'s database', async () => {
  const email = 'leaving@example.com';
  const user = await bapi('POST', '/users', { email_address: [email], password: PASSWORD, first_name: 'Lee' });
  const { page } = await device('leaver');
  await page.goto(`${origin}/`);
  await ready(page);
  await signIn(page, email);
  await addBaby(page, 'Noor');
  await addEntry(page, 'take this with me', { kind: 'feeds', ml: 90 });
  await bannerIs(page, null);

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-data')]);
  const exported = JSON.parse(await readFile(await download.path(), 'utf8'));
  assert.equal(exported.user.id, user.id);
  const written = (await Promise.all(['babies', 'feeds'].map(async (table) =>
    (await stored(page, table)).map(({ id, space, ...fields }) => ({ space, table, id, fields })),
  ))).flat();
  assert.equal(written.length, 2);
  const byKey = (a, b) => `${a.table}/${a.id}`.localeCompare(`${b.table}/${b.id}`);
  const got = exported.sync_records.map(({ space, table, id, fields }) => ({ space, table, id, fields }));
  assert.deepEqual(got.sort(byKey), written.sort(byKey));

  await page.fill('#delete-confirm', 'delete');
  await page.click('#delete-account button[type=submit]');
  await page.waitForSelector('#data-message:text-is("Type DELETE to confirm.")');
  assert.equal((await fetch(`${latchkey.url}/v1/users/${user.id}`, { headers: { authorization: `Bearer ${latchkey.secretKey}` } })).status, 200);
  await page.fill('#delete-confirm', 'DELETE');
  await page.click('#delete-account button[type=submit]');
  const deadline = Date.now() + 30_000;
  while ((await fetch(`${latchkey.url}/v1/users/${user.id}`, { headers: { authorization: `Bearer ${latchkey.secretKey}` } })).status !== 404) {
    assert.ok(Date.now() < deadline, 'the user is still there');
    await new Promise((r) => setTimeout(r, 50));
  }
  await page.waitForSelector('#sign-in', { timeout: 30_000 });
  await ready(page);
  for (const table of ['babies', 'feeds', 'sleeps', 'diapers', 'notes', '_outbox', '_rejected']) {
    assert.deepEqual(await stored(page, table), [], `${table} is empty`);
  }
  assert.deepEqual(await stored(page, '_meta'), [{ key: 'user_id', value: '(forgotten)' }]);
});

test('the five banners were shown', async () => {
  await collectBanners();
  for (const t of ['Sign in to sync', 'Offline mode — changes saved locally', 'Sync (1 change)', 'Syncing…', 'Sync failed — retry']) {
    assert.ok(banners.has(t), `${t} in ${[...banners].join(' | ')}`);
  }
});

test('no page errors', () => assert.deepEqual(problems, []));
