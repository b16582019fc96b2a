// latchkey sync in a Clerk app: latchkey-js's SyncEngine driven by Clerk's own browser SDK
// (the pinned @clerk/clerk-js, unmodified, in Debian's Chromium) through
// `clerkTokenSource(Clerk)`, with the sync API reached on the app's own origin through Clerk's
// Frontend API proxy (`clerkFrontendApiProxy` at /__clerk). A record written before sign-in is
// claimed at sign-in and pushed; another device's write arrives by the live event stream
// through the proxy; switching organization in Clerk moves new writes to the family's space;
// `session.getToken({ template })` returns a JWT template's token (docs/frontend-api.md §7).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort, signInThroughFrontendApi, startLatchkey, tokenForOrganization } from '../clerk-backend/latchkey.mjs';
import { readPage, startAppServer } from './app-server.mjs';
import { launchBrowser, recordWire, until as untilIn } from './browser.mjs';

const EMAIL = 'sync-ada@example.com';
const PASSWORD = 'correct horse battery staple';
let latchkey, app, browser, page, wire, userId;
const problems = [];

const until = (what, fn, ms) => untilIn(page, what, fn, ms);
// Waits for a condition of this process (the page's recorded wire), up to a generous deadline.
async function eventually(what, check, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
// Waits for an (async) condition of the page, polled, up to a generous deadline.
async function inPage(what, fn, ms = 30_000) {
  const deadline = Date.now() + ms;
  while ((await page.evaluate(fn)) !== true) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const decode = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
const bapi = async (method, path, body) => {
  const res = await fetch(`${latchkey.url}/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${latchkey.secretKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  assert.equal(res.status, 200, JSON.stringify(json));
  return json;
};
// Another device of the same person, speaking the sync protocol directly to latchkey.
const pull = async (jwt) => {
  const res = await fetch(`${latchkey.url}/v1/sync/pull?client_id=cl_node_${Date.now()}`, { headers: { authorization: `Bearer ${jwt}` } });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()).changes;
};

before(async () => {
  // The app's origin is allowed, so the engine may also reach latchkey directly (CORS).
  const port = await freePort();
  latchkey = await startLatchkey({ config: `allowed_origins = ["http://127.0.0.1:${port}"]\n` });
  app = await startAppServer({ latchkey, port, pages: { '/': (c) => readPage('sync-page.html').replace('{{PUBLISHABLE_KEY}}', c.publishableKey) } });
  browser = await launchBrowser();
  page = await browser.context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && !/Failed to load resource/.test(m.text()) && problems.push(`console: ${m.text()}`));
  wire = recordWire(page);
  userId = (await bapi('POST', '/users', { email_address: [EMAIL], password: PASSWORD })).id;
  await bapi('POST', '/jwt_templates', { name: 'supabase', lifetime: 300, claims: { aud: 'authenticated', email: '{{user.primary_email_address}}' } });
  await page.goto(`${app.origin}/`);
  await until('clerk-js loaded', () => window.clerkLoaded === true);
});

after(async () => {
  await browser?.close();
  await app?.close();
  await latchkey?.stop();
});

test('a record written before sign-in is claimed when Clerk signs in, and pushed through the proxy', async () => {
  await page.evaluate(async () => {
    const { SyncEngine, clerkTokenSource } = window.latchkey;
    window.engine = new SyncEngine({ auth: clerkTokenSource(window.Clerk), url: '/__clerk', tables: ['babies', 'feeds'], dbName: 'clerk-sync', writeDelayMs: 0 });
    window.engine.onStatus((s) => (window.syncState = s.state));
    window.engine.start();
    await window.engine.put('feeds', 'feed-before', { baby_id: 'baby-0', kind: 'bottle', started_at: Date.now(), amount_ml: 90 });
  });
  await until('signed out until Clerk signs in', () => window.syncState === 'signed-out');
  assert.equal(await page.evaluate(async () => (await window.engine.table('feeds').get('feed-before')).space), null);

  await page.evaluate(async ({ email, password }) => {
    const signIn = await window.Clerk.client.signIn.create({ strategy: 'password', identifier: email, password });
    await window.Clerk.setActive({ session: signIn.createdSessionId });
  }, { email: EMAIL, password: PASSWORD });
  // No poke from the test: Clerk's change of user is the engine's signal.
  await until('synced after sign-in', () => window.syncState === 'up-to-date' && window.engine.currentStatus.pending === 0);
  assert.equal(await page.evaluate(async () => (await window.engine.table('feeds').get('feed-before')).space), 'me');
  const calls = wire.map((w) => `${w.method} ${w.path.split('?')[0]} ${w.status}`);
  assert.ok(calls.includes('POST /v1/sync/push 200'), calls.join('\n'));
  assert.ok(calls.includes('GET /v1/sync/pull 200'), calls.join('\n'));

  const { jwt } = await signInThroughFrontendApi(latchkey.url, EMAIL, PASSWORD);
  const changes = await pull(jwt);
  assert.deepEqual(await page.evaluate(() => window.engine.rejected()), [], 'nothing refused');
  assert.deepEqual(changes.map((c) => [c.table, c.id, c.fields.amount_ml]), [['feeds', 'feed-before', 90]]);
});

test("another device's write arrives by the live events through the proxy", async () => {
  await eventually('the event stream open through the proxy', () => wire.some((w) => w.method === 'GET' && w.path === '/v1/sync/events' && w.status === 200));
  const { jwt } = await signInThroughFrontendApi(latchkey.url, EMAIL, PASSWORD);
  const res = await fetch(`${latchkey.url}/v1/sync/push`, {
    method: 'POST',
    headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: 'cl_node_phone', schema_version: 1, ops: [{ op_id: 'phone-1', seq: 1, space: 'me', table: 'feeds', id: 'feed-phone', action: 'put', fields: { baby_id: 'baby-0', kind: 'bottle', started_at: Date.now(), amount_ml: 150 }, hlc: `${Date.now()}-0-cl_node_phone` }] }),
  });
  const pushed = await res.json();
  assert.equal(pushed.results[0].status, 'applied', JSON.stringify(pushed));
  // Nothing in the page is poked: only the event can bring it.
  await inPage('the phone\'s write in the page', async () => (await window.engine.table('feeds').get('feed-phone'))?.amount_ml === 150);
});

test("switching organization in Clerk moves new writes to the family's space", async () => {
  const org = await page.evaluate(async () => {
    const created = await window.Clerk.createOrganization({ name: 'Ada Family' });
    await window.Clerk.setActive({ organization: created.id });
    window.engine.setSpace(created.id);
    return created.id;
  });
  await page.evaluate(async () => {
    await window.engine.put('babies', 'baby-1', { name: 'Lin' });
    await window.engine.sync();
  });
  await until('the family write pushed', () => window.syncState === 'up-to-date' && window.engine.currentStatus.pending === 0);
  const { jwt } = await tokenForOrganization(latchkey.url, EMAIL, PASSWORD, org);
  const changes = await pull(jwt);
  assert.ok(changes.some((c) => c.space === org && c.id === 'baby-1'), JSON.stringify(changes));
});

test('session.getToken({ template }) returns the JWT template token', async () => {
  const jwt = await page.evaluate(() => window.Clerk.session.getToken({ template: 'supabase' }));
  const claims = decode(jwt);
  assert.deepEqual([claims.sub, claims.aud, claims.email, claims.exp - claims.iat], [userId, 'authenticated', EMAIL, 300]);
  assert.ok(wire.some((w) => w.method === 'POST' && /^\/v1\/client\/sessions\/[^/]+\/tokens\/supabase$/.test(w.path) && w.status === 200));
  const unknown = await page.evaluate(() => window.Clerk.session.getToken({ template: 'nope' }).then(() => 'no error', (e) => e.errors?.[0]?.code ?? String(e)));
  assert.equal(unknown, 'resource_not_found');
});

// The other way to reach sync from an app's page: latchkey's own origin, the app's origin in
// `allowed_origins` (preflights for the bearer header, the live events' stream included).
test('from the app\'s origin straight to latchkey (CORS for an allowed origin): pull, push and live events', async () => {
  const direct = [];
  page.on('response', (r) => r.url().startsWith(`${latchkey.url}/v1/sync/`) && direct.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`));
  await page.evaluate(async (url) => {
    const { SyncEngine, clerkTokenSource } = window.latchkey;
    window.direct = new SyncEngine({ auth: clerkTokenSource(window.Clerk), url, tables: ['babies', 'feeds'], dbName: 'clerk-sync-direct', writeDelayMs: 0 });
    window.direct.start();
    await window.direct.put('feeds', 'feed-direct', { baby_id: 'baby-0', kind: 'bottle', started_at: Date.now(), amount_ml: 60 }, { space: 'me' });
    await window.direct.sync();
  }, latchkey.url);
  await inPage('the direct engine up to date with the phone\'s write', async () => window.direct.currentStatus.state === 'up-to-date' && (await window.direct.table('feeds').get('feed-phone'))?.amount_ml === 150);
  const { jwt } = await signInThroughFrontendApi(latchkey.url, EMAIL, PASSWORD);
  assert.ok((await pull(jwt)).some((c) => c.id === 'feed-direct' && c.fields.amount_ml === 60), 'pushed across origins');
  await eventually('the live events open across origins', () => direct.includes('GET /v1/sync/events 200'));
  assert.ok(direct.includes('POST /v1/sync/push 200') && direct.includes('GET /v1/sync/pull 200'), direct.join('\n'));
  // Another device's write: only the cross-origin event stream can bring it to this engine.
  const res = await fetch(`${latchkey.url}/v1/sync/push`, {
    method: 'POST',
    headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: 'cl_node_tablet', schema_version: 1, ops: [{ op_id: 'tablet-1', seq: 1, space: 'me', table: 'feeds', id: 'feed-tablet', action: 'put', fields: { baby_id: 'baby-0', kind: 'bottle', started_at: Date.now(), amount_ml: 30 }, hlc: `${Date.now()}-0-cl_node_tablet` }] }),
  });
  assert.equal((await res.json()).results[0].status, 'applied');
  await inPage('the tablet\'s write by the cross-origin stream', async () => (await window.direct.table('feeds').get('feed-tablet'))?.amount_ml === 30);
  await page.evaluate(() => window.direct.close());
});

test('no page errors', () => {
  assert.deepEqual(problems, []);
});
