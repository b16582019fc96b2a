// The sync engine on a token source other than latchkey-js's own Auth: `createTokenSource()`
// fed the way a React app feeds it from `useAuth()` (here the values come from an Auth signed
// in against a fresh latchkey, standing in for Clerk's hook), with the sync API named by `url`.
// Clerk's real browser SDK drives `clerkTokenSource` in sdk/clerk-js/sync.test.mjs.
import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Auth, SyncEngine, createTokenSource } from '../dist/index.js';
import { mailbox, startLatchkey } from '../../../../sdk/clerk-backend/latchkey.mjs';

const PASSWORD = 'correct horse battery staple';
let lk;
const closers = [];

before(async () => {
  lk = await startLatchkey({ config: '[rate_limits]\nper_ip_per_minute = 300\n' });
});
after(async () => {
  for (const c of closers) c();
  await lk?.stop();
});

const memoryStore = () => ({ token: null, get() { return this.token; }, set(t) { this.token = t; } });

async function until(what, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('createTokenSource: pre-sign-in data is claimed at the first set, refreshes are forced, sign-out stops sync', async () => {
  const auth = new Auth({ baseUrl: lk.url, tokenStore: memoryStore(), channelName: 'test:source' });
  const source = createTokenSource();
  // Every fetch of the engine, to show it goes to `url`, not through an Auth.
  const seen = [];
  const engine = new SyncEngine({
    auth: source,
    url: `${lk.url}/`,
    fetch: (input, init) => {
      seen.push(String(input));
      return fetch(input, init);
    },
    tables: ['feeds'],
    dbName: `db-source-${Math.random()}`,
    writeDelayMs: 0,
  });
  closers.push(() => { engine.close(); auth.close(); engine.db.close(); });
  const states = [];
  engine.onStatus((s) => states.push(s.state));
  let changes = 0;
  source.onChange(() => changes++);

  engine.start();
  await engine.put('feeds', 'f-before', { baby_id: 'b', kind: 'bottle', started_at: 1, amount_ml: 60 });
  await until('signed out before any set', () => engine.currentStatus.state === 'signed-out');
  assert.equal((await engine.table('feeds').get('f-before')).space, null, 'unclaimed while nobody is signed in');

  const inbox = await mailbox(lk.url, 'source@example.com');
  await auth.signUp({ emailAddress: 'source@example.com', password: PASSWORD });
  await auth.verifyEmailCode(await inbox.code());
  // What `useAuth()` hands over; `skipCache` is Clerk's name for a forced refresh.
  const asked = [];
  const getToken = async (options) => {
    asked.push(options?.skipCache === true ? 'fresh' : 'cached');
    return auth.getToken({ force: options?.skipCache === true });
  };
  source.set({ userId: auth.user.id, orgId: null, getToken });
  assert.equal(changes, 1, 'a sign-in is a change');
  source.set({ userId: auth.user.id, orgId: null, getToken });
  assert.equal(changes, 1, 'the same user and organization again is not');
  await until('synced after the first set', () => engine.currentStatus.state === 'up-to-date' && engine.currentStatus.pending === 0);
  assert.equal((await engine.table('feeds').get('f-before')).space, 'me', 'claimed into the personal space');
  assert.ok(seen.some((u) => u === `${lk.url}/v1/sync/push`), seen.join('\n'));

  // A rejected token makes the engine ask for a fresh one, once.
  const real = auth.getToken.bind(auth);
  let stale = true;
  auth.getToken = async (o) => (stale && !o?.force ? 'not-a-token' : ((stale = false), real(o)));
  asked.length = 0;
  await engine.put('feeds', 'f-after', { baby_id: 'b', kind: 'bottle', started_at: 2, amount_ml: 80 });
  await engine.sync();
  assert.deepEqual(asked.slice(0, 2), ['cached', 'fresh'], 'a 401 is followed by a forced refresh');
  assert.equal(engine.currentStatus.state, 'up-to-date');
  assert.deepEqual(await engine.rejected(), [], 'both writes taken by the server');
  auth.getToken = real;

  // Organization changes are changes; signing out stops sync and keeps the data.
  source.set({ userId: auth.user.id, orgId: 'org_other', getToken });
  assert.equal(changes, 2);
  source.set({ userId: null, orgId: null, getToken });
  assert.equal(changes, 3);
  await engine.sync();
  assert.equal(engine.currentStatus.state, 'signed-out');
  assert.equal(await engine.table('feeds').count(), 2, 'signing out deletes nothing local');
  assert.ok(states.includes('syncing'));
});
