// latchkey-js in Node against a freshly started latchkey (the binary cargo built), with
// fake-indexeddb standing in for the browser's IndexedDB. The browser itself is exercised by
// the BabyLog end-to-end tests in Chromium.
import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Auth, LatchkeyError, SyncEngine, bannerText } from '../dist/index.js';
import { startLatchkey, mailbox } from '../../../../sdk/clerk-backend/latchkey.mjs';

const PASSWORD = 'correct horse battery staple';
const TABLES = ['babies', 'feeds', 'sleeps', 'diapers', 'notes'];
let lk;
const opened = [];

before(async () => {
  // Every request of the suite comes from 127.0.0.1 within seconds: the per-IP budgets (30 a
  // minute per action by default) would be nearly spent by the sign-ins alone.
  lk = await startLatchkey({ config: '[rate_limits]\nper_ip_per_minute = 300\n' });
});
after(async () => {
  for (const o of opened) o.close();
  await lk?.stop();
});

const memoryStore = () => ({ token: null, get() { return this.token; }, set(t) { this.token = t; } });

// A device: its own client token (as a native app keeps it) and its own local database.
function device(name, { now, fetchCounter, writeDelayMs } = {}) {
  const doFetch = fetchCounter
    ? (input, init) => {
        fetchCounter.push(String(input));
        return fetch(input, init);
      }
    : undefined;
  const auth = new Auth({ baseUrl: lk.url, tokenStore: memoryStore(), now, fetch: doFetch, channelName: `test:${name}` });
  const sync = new SyncEngine({ auth, tables: TABLES, dbName: `db-${name}-${Math.random()}`, now, writeDelayMs });
  opened.push({ close: () => { sync.close(); auth.close(); sync.db.close(); } });
  return { auth, sync };
}

async function signUp(auth, email) {
  const inbox = await mailbox(lk.url, email);
  await auth.signUp({ emailAddress: email, password: PASSWORD });
  await auth.verifyEmailCode(await inbox.code());
}

// Waits for a condition of the engine or the server, up to a deadline far beyond what it needs.
async function until(what, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const backend = (path, init = {}) =>
  fetch(`${lk.url}${path}`, { ...init, headers: { authorization: `Bearer ${lk.secretKey}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });

const strip = (rows) => rows.map(({ space, ...r }) => r).sort((a, b) => a.id.localeCompare(b.id));

test('auth: sign-up with the mailed code, the user, a token, an organization made active, sign-out', async () => {
  const { auth } = device('auth');
  await auth.load();
  assert.equal(auth.isSignedIn, false);
  assert.equal(await auth.getToken(), null);
  await signUp(auth, 'js-ada@example.com');
  assert.equal(auth.user.emailAddress, 'js-ada@example.com');
  const jwt = await auth.getToken();
  const claims = JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url'));
  assert.equal(claims.sub, auth.user.id);
  const org = await auth.createOrganization('Ada Family');
  assert.equal(org.role, 'org:admin');
  await auth.setActiveOrganization(org.id);
  assert.equal(auth.organizationId, org.id);
  const orgClaims = JSON.parse(Buffer.from((await auth.getToken()).split('.')[1], 'base64url'));
  assert.equal(orgClaims.o.id, org.id);
  await auth.setActiveOrganization(null);
  assert.equal(auth.organizationId, null);
  assert.equal((await auth.activeSessions()).length, 1);
  await auth.signOut();
  assert.equal(auth.isSignedIn, false);
  assert.equal(await auth.getToken(), null);
  await assert.rejects(auth.signIn({ identifier: 'js-ada@example.com', password: 'wrong password here' }), (e) => e.status === 422 && e.code === 'form_password_incorrect');
  await auth.signIn({ identifier: 'js-ada@example.com', password: PASSWORD });
  assert.equal(auth.user.emailAddress, 'js-ada@example.com');
});

// "Forgot password?": the reset mail is told from the sign-in and sign-up code mails by its subject.
const NEW_PASSWORD = 'a brand new sturdy passphrase';
const RESET_SUBJECT = /^(\d{6}) is your .+ password reset code$/;

async function resetCode(inbox) {
  const m = await inbox.next((m) => RESET_SUBJECT.test(m.subject), 'password reset mail');
  return m.subject.match(RESET_SUBJECT)[1];
}

// A signed-out device with a reset started for `email` (a user signed up on another device).
async function startedReset(name, email) {
  const d = device(name);
  const inbox = await mailbox(lk.url, email);
  await d.auth.resetPassword({ emailAddress: email });
  return { ...d, code: await resetCode(inbox) };
}

test('password reset: the mailed code and a new password sign in; the old password is gone', async () => {
  const email = 'js-pw-reset@example.com';
  const { auth } = device('pw-reset');
  await signUp(auth, email);
  const userId = auth.user.id;
  // latchkey is single-session: a signed-in client signs out before a reset, as before a sign-in.
  await assert.rejects(auth.resetPassword({ emailAddress: email }), (e) => e.code === 'session_exists');
  await auth.signOut();
  await assert.rejects(
    auth.completePasswordReset({ code: '000000', password: NEW_PASSWORD }),
    (e) => e instanceof LatchkeyError && e.code === 'password_reset_missing',
  );

  const inbox = await mailbox(lk.url, email);
  await auth.resetPassword({ emailAddress: email });
  assert.equal(auth.isSignedIn, false);
  const code = await resetCode(inbox);
  const seen = [];
  auth.onChange(() => seen.push(auth.isSignedIn));
  await auth.completePasswordReset({ code, password: NEW_PASSWORD });
  assert.deepEqual(seen, [true], 'listeners heard the sign-in once');
  assert.equal(auth.isSignedIn, true);
  assert.equal(auth.user.id, userId);
  assert.equal(auth.user.emailAddress, email);
  const claims = JSON.parse(Buffer.from((await auth.getToken()).split('.')[1], 'base64url'));
  assert.equal(claims.sub, userId);
  // The reset is spent: completing it again is refused by the SDK.
  await assert.rejects(auth.completePasswordReset({ code, password: 'yet another sturdy passphrase' }), (e) => e.code === 'password_reset_missing');

  const other = device('pw-reset-other');
  await assert.rejects(other.auth.signIn({ identifier: email, password: PASSWORD }), (e) => e.status === 422 && e.code === 'form_password_incorrect');
  await other.auth.signIn({ identifier: email, password: NEW_PASSWORD });
  assert.equal(other.auth.user.id, userId);
});

test('password reset: a wrong code is refused and the right one still completes it, after a reload too', async () => {
  const email = 'js-pw-wrong-code@example.com';
  await signUp(device('pw-wrong-code-laptop').auth, email);
  const store = memoryStore();
  const open = (name) => {
    const auth = new Auth({ baseUrl: lk.url, tokenStore: store, channelName: `test:${name}` });
    opened.push({ close: () => auth.close() });
    return auth;
  };
  const first = open('pw-wrong-code');
  const inbox = await mailbox(lk.url, email);
  await first.resetPassword({ emailAddress: email });
  const code = await resetCode(inbox);
  const wrong = code === '000000' ? '111111' : '000000';
  await assert.rejects(
    first.completePasswordReset({ code: wrong, password: NEW_PASSWORD }),
    (e) => e instanceof LatchkeyError && e.status === 422 && e.code === 'form_code_incorrect' && e.paramName === 'code',
  );
  assert.equal(first.isSignedIn, false);
  // The app starts again on the same client: the open reset is found on the client.
  const auth = open('pw-wrong-code-reloaded');
  await auth.load();
  await auth.completePasswordReset({ code, password: NEW_PASSWORD });
  assert.equal(auth.isSignedIn, true);
  assert.ok(await auth.getToken());
});

test('password reset: a weak, pwned or unchanged new password is refused with its code; another one completes it', async () => {
  const email = 'js-pw-weak@example.com';
  await signUp(device('pw-weak-laptop').auth, email);
  const { auth, code } = await startedReset('pw-weak', email);
  for (const [password, expected] of [
    ['short', 'form_password_length_too_short'],
    ['password1', 'form_password_pwned'],
    [PASSWORD, 'form_new_password_matches_current'],
  ]) {
    await assert.rejects(
      auth.completePasswordReset({ code, password }),
      (e) => e instanceof LatchkeyError && e.status === 422 && e.code === expected && e.paramName === 'password',
      password,
    );
    assert.equal(auth.isSignedIn, false);
  }
  // The accepted code is not sent again (latchkey would refuse a spent code): the reset goes on.
  await auth.completePasswordReset({ code, password: NEW_PASSWORD });
  assert.equal(auth.isSignedIn, true);
  await device('pw-weak-check').auth.signIn({ identifier: email, password: NEW_PASSWORD });
});

test('password reset: signOutOfOtherSessions ends the sessions of other devices; without it they stay', async () => {
  const email = 'js-pw-others@example.com';
  const laptop = device('pw-others-laptop');
  await signUp(laptop.auth, email);
  const tablet = device('pw-others-tablet');
  await tablet.auth.signIn({ identifier: email, password: PASSWORD });

  // A reset without the flag leaves both signed in.
  const phone = await startedReset('pw-others-phone', email);
  await phone.auth.completePasswordReset({ code: phone.code, password: NEW_PASSWORD });
  assert.ok(await laptop.auth.getToken({ force: true }), 'the laptop stays signed in');
  assert.ok(await tablet.auth.getToken({ force: true }), 'the tablet stays signed in');

  // With it, every session but the new one ends.
  const again = await startedReset('pw-others-phone-2', email);
  await again.auth.completePasswordReset({ code: again.code, password: 'a third sturdy passphrase', signOutOfOtherSessions: true });
  assert.ok(await again.auth.getToken());
  for (const [name, d] of [['laptop', laptop], ['tablet', tablet], ['first phone', phone]]) {
    assert.equal(await d.auth.getToken({ force: true }), null, `the ${name} was signed out`);
    assert.equal(d.auth.isSignedIn, false, name);
  }
  assert.deepEqual((await again.auth.activeSessions()).map((s) => s.id), [again.auth.session.id]);
});

test('password reset: an unknown address is answered as a known one', async () => {
  const known = 'js-pw-known@example.com';
  await signUp(device('pw-known-laptop').auth, known);
  // Each reset's requests and their statuses (the sign-in's id masked).
  const run = async (name, email) => {
    const answers = [];
    const doFetch = async (input, init) => {
      const res = await fetch(input, init);
      answers.push(`${new URL(String(input)).pathname.replace(/(sign_ins\/)[^/]+/, '$1{id}')} ${res.status}`);
      return res;
    };
    const auth = new Auth({ baseUrl: lk.url, tokenStore: memoryStore(), fetch: doFetch, channelName: `test:${name}` });
    opened.push({ close: () => auth.close() });
    const started = await auth.resetPassword({ emailAddress: email });
    const state = { started, signedIn: auth.isSignedIn, user: auth.user };
    const error = await auth.completePasswordReset({ code: '000000', password: NEW_PASSWORD }).then(
      () => null,
      (e) => ({ status: e.status, code: e.code, message: e.message, paramName: e.paramName }),
    );
    return { answers, state, error };
  };
  const inbox = await mailbox(lk.url, known);
  const forKnown = await run('pw-known', known);
  await resetCode(inbox); // the known address did get its code
  const forUnknown = await run('pw-unknown', 'js-pw-nobody@example.com');
  assert.deepEqual(forUnknown, forKnown);
  assert.deepEqual(forKnown.state, { started: undefined, signedIn: false, user: null });
  assert.equal(forKnown.error.code, 'form_code_incorrect');
});

test('getToken: cached while fresh, refreshed ahead of expiry, one request for many callers', async () => {
  let offset = 0;
  const calls = [];
  const { auth } = device('tokens', { now: () => Date.now() + offset, fetchCounter: calls });
  await signUp(auth, 'js-tokens@example.com');
  const first = await auth.getToken();
  const tokenCalls = () => calls.filter((u) => u.includes('/tokens')).length;
  const before = tokenCalls();
  assert.equal(await auth.getToken(), first, 'fresh: no request');
  assert.equal(tokenCalls(), before);
  offset = 45_000; // 15 s left of 60: inside the refresh window
  const tokens = await Promise.all(Array.from({ length: 10 }, () => auth.getToken()));
  assert.equal(tokenCalls(), before + 1, 'ten callers, one refresh');
  assert.ok(tokens.every((t) => t === tokens[0]), 'every caller got the same token');
  assert.ok(first);
});

test('sync: written before sign-in, claimed into the personal space at sign-up, seen by a second device', async () => {
  const phone = device('phone');
  await phone.auth.load();
  const statuses = [];
  phone.sync.onStatus((s) => statuses.push(bannerText(s)));
  await phone.sync.put('babies', 'baby-ivy', { name: 'Ivy', created_at: 1_700_000_000_000 });
  await phone.sync.put('feeds', 'feed-1', { baby_id: 'baby-ivy', kind: 'bottle', started_at: 1_700_000_100_000, amount_ml: 120 });
  await phone.sync.sync();
  assert.deepEqual(phone.sync.currentStatus, { state: 'signed-out', pending: 2 });
  assert.equal(bannerText(phone.sync.currentStatus), 'Sign in to sync');
  assert.equal((await phone.sync.table('babies').get('baby-ivy')).space, null, 'not anyone\'s yet');

  await signUp(phone.auth, 'js-parent@example.com');
  await phone.sync.sync();
  assert.deepEqual(phone.sync.currentStatus, { state: 'up-to-date', pending: 0 });
  assert.equal((await phone.sync.table('babies').get('baby-ivy')).space, 'me');
  assert.ok(statuses.includes('Syncing…'));

  const tablet = device('tablet');
  await tablet.auth.signIn({ identifier: 'js-parent@example.com', password: PASSWORD });
  await tablet.sync.sync();
  assert.deepEqual(strip(await tablet.sync.table('feeds').toArray()), [
    { id: 'feed-1', baby_id: 'baby-ivy', kind: 'bottle', started_at: 1_700_000_100_000, amount_ml: 120 },
  ]);
  assert.deepEqual(strip(await tablet.sync.table('babies').toArray()), [{ id: 'baby-ivy', name: 'Ivy', created_at: 1_700_000_000_000 }]);

  // A delete travels as a tombstone.
  await tablet.sync.delete('feeds', 'feed-1');
  await tablet.sync.sync();
  await phone.sync.sync();
  assert.equal(await phone.sync.table('feeds').get('feed-1'), undefined);
});

test('field-level last write wins: both devices end with the later value of each field', async () => {
  let t = 1_800_000_000_000;
  const a = device('lww-a', { now: () => t });
  const b = device('lww-b', { now: () => t });
  await signUp(a.auth, 'js-lww@example.com');
  await b.auth.signIn({ identifier: 'js-lww@example.com', password: PASSWORD });
  await a.sync.put('babies', 'baby-lww', { name: 'First', color: 'green' });
  await a.sync.sync();
  await b.sync.sync();
  // Offline edits: B changes the colour, then A (later) the name and B (later still) nothing more.
  t += 1000;
  await b.sync.put('babies', 'baby-lww', { color: 'blue' });
  t += 1000;
  await a.sync.put('babies', 'baby-lww', { name: 'Second' });
  await b.sync.sync();
  await a.sync.sync();
  await b.sync.sync();
  const expected = [{ id: 'baby-lww', name: 'Second', color: 'blue' }];
  assert.deepEqual(strip(await a.sync.table('babies').toArray()), expected);
  assert.deepEqual(strip(await b.sync.table('babies').toArray()), expected);
});

test('a rejected op stays visible with its reason and does not block the ops after it', async () => {
  const { auth, sync } = device('rejects');
  await signUp(auth, 'js-rejects@example.com');
  await sync.put('babies', 'baby-r', { name: 'Rae' });
  await sync.put('feeds', 'feed-bad', { baby_id: 'baby-r', kind: 'juice', started_at: 1 });
  await sync.put('feeds', 'feed-good', { baby_id: 'baby-r', kind: 'solids', started_at: 2, food: 'pear' });
  await sync.sync();
  assert.deepEqual(sync.currentStatus, { state: 'up-to-date', pending: 0 });
  const rejected = await sync.rejected();
  assert.equal(rejected.length, 1);
  assert.equal(rejected[0].id, 'feed-bad');
  assert.ok(rejected[0].reason.code && rejected[0].reason.message, JSON.stringify(rejected[0].reason));
  const other = device('rejects-2');
  await other.auth.signIn({ identifier: 'js-rejects@example.com', password: PASSWORD });
  await other.sync.sync();
  assert.deepEqual((await other.sync.table('feeds').toArray()).map((f) => f.id), ['feed-good']);
});

test('a revoked session: sync stops as signed out with the outbox intact, and resumes after signing in', async () => {
  const { auth, sync } = device('revoked');
  await signUp(auth, 'js-revoked@example.com');
  await sync.put('notes', 'note-1', { at: 1, text: 'first night' });
  await sync.sync();
  const sessionId = auth.session.id;
  assert.equal((await backend(`/v1/sessions/${sessionId}/revoke`, { method: 'POST' })).status, 200);
  await sync.put('notes', 'note-2', { at: 2, text: 'second night' });
  await sync.sync();
  assert.deepEqual(sync.currentStatus, { state: 'signed-out', pending: 1 });
  await auth.signIn({ identifier: 'js-revoked@example.com', password: PASSWORD });
  await sync.sync();
  assert.deepEqual(sync.currentStatus, { state: 'up-to-date', pending: 0 });
  const other = device('revoked-2');
  await other.auth.signIn({ identifier: 'js-revoked@example.com', password: PASSWORD });
  await other.sync.sync();
  assert.deepEqual((await other.sync.table('notes').toArray()).map((n) => n.id).sort(), ['note-1', 'note-2']);
});

test('server down: the attempt fails as an error with nothing lost; the status names it', async () => {
  const auth = new Auth({ baseUrl: 'http://127.0.0.1:9', tokenStore: memoryStore(), channelName: 'test:down' });
  const sync = new SyncEngine({ auth, tables: TABLES, dbName: `db-down-${Math.random()}` });
  opened.push({ close: () => { sync.close(); auth.close(); sync.db.close(); } });
  await sync.put('notes', 'note-x', { at: 1, text: 'offline' });
  await assert.rejects(auth.load());
  assert.equal(await sync.pendingCount(), 1);
  assert.equal(bannerText({ state: 'error', pending: 1 }), 'Sync failed — retry');
  assert.equal(bannerText({ state: 'pending', pending: 3 }), 'Sync (3 changes)');
  assert.equal(bannerText({ state: 'offline', pending: 3 }), 'Offline mode — changes saved locally');
});

test('a running engine: a burst of writes is pending, then goes in one push; a new organization gets live events', async () => {
  const requests = [];
  // The burst window: the three writes below must all land inside it for "one push" to hold,
  // so it is generous (local writes take milliseconds); the test waits it out once.
  const phone = device('burst', { fetchCounter: requests, writeDelayMs: 3000 });
  await signUp(phone.auth, 'js-burst@example.com');
  phone.sync.start();
  // The first sync ends by opening the event stream; the stream's first event ("ready") asks
  // for a pull. Wait for that pull and the end of its sync, so the writes below meet an idle
  // engine (the status is "syncing" from before the pull is sent until the sync ends).
  await until('the event stream', () => requests.some((u) => u.includes('/v1/sync/events')));
  const afterStream = () => requests.slice(requests.findIndex((u) => u.includes('/v1/sync/events')) + 1);
  await until('the pull the stream asks for', () => afterStream().some((u) => u.includes('/v1/sync/pull')));
  await until('the end of that sync', () => phone.sync.currentStatus.state === 'up-to-date');
  const pushesBefore = requests.filter((u) => u.includes('/v1/sync/push')).length;

  await phone.sync.put('babies', 'baby-burst', { name: 'Burst' });
  await phone.sync.put('notes', 'note-b1', { baby_id: 'baby-burst', at: 1, text: 'one' });
  await phone.sync.put('notes', 'note-b2', { baby_id: 'baby-burst', at: 2, text: 'two' });
  assert.deepEqual(phone.sync.currentStatus, { state: 'pending', pending: 3 });
  assert.equal(bannerText(phone.sync.currentStatus), 'Sync (3 changes)');
  await until('the delayed push', () => phone.sync.currentStatus.state === 'up-to-date');
  assert.equal(requests.filter((u) => u.includes('/v1/sync/push')).length - pushesBefore, 1, 'one push for the burst');

  // An organization created after the event stream opened: its changes still arrive live.
  const org = await phone.auth.createOrganization('Burst family');
  await until('the stream for the new space', async () => requests.filter((u) => u.includes('/v1/sync/events')).length >= 2);
  const tablet = device('burst-tablet');
  await tablet.auth.signIn({ identifier: 'js-burst@example.com', password: PASSWORD });
  await tablet.sync.put('babies', 'baby-family', { name: 'Family baby' }, { space: org.id });
  await tablet.sync.sync();
  await until('the live update', async () => (await phone.sync.table('babies').get('baby-family'))?.space === org.id);
});

test('a space the user no longer belongs to is dropped from the device; the personal space stays', async () => {
  const phone = device('removed');
  await signUp(phone.auth, 'js-removed@example.com');
  const org = await phone.auth.createOrganization('Short-lived family');
  await phone.sync.put('babies', 'baby-org', { name: 'Shared' }, { space: org.id });
  await phone.sync.put('babies', 'baby-own', { name: 'Own' });
  await phone.sync.sync();
  assert.equal((await phone.sync.table('babies').get('baby-org')).space, org.id);

  const res = await backend(`/v1/organizations/${org.id}`, { method: 'DELETE' });
  assert.equal(res.status, 200);
  await phone.sync.sync();
  assert.equal(await phone.sync.table('babies').get('baby-org'), undefined);
  assert.deepEqual(strip(await phone.sync.table('babies').toArray()), [{ id: 'baby-own', name: 'Own' }]);
  assert.deepEqual(phone.sync.currentStatus, { state: 'up-to-date', pending: 0 });
});

test('a space reset (a cursor the server cannot serve) is read again; a write made meanwhile is kept and pushed', async () => {
  let holdPull = null;
  const pulled = [];
  const doFetch = async (input, init) => {
    const res = await fetch(input, init);
    if (holdPull && String(input).includes('/v1/sync/pull')) {
      pulled.push(String(input));
      await holdPull;
    }
    return res;
  };
  const auth = new Auth({ baseUrl: lk.url, tokenStore: memoryStore(), fetch: doFetch, channelName: 'test:reset' });
  const sync = new SyncEngine({ auth, tables: TABLES, dbName: `db-reset-${Math.random()}` });
  opened.push({ close: () => { sync.close(); auth.close(); sync.db.close(); } });
  await signUp(auth, 'js-reset@example.com');
  const feed = (n) => ({ baby_id: 'baby_reset', kind: 'bottle', started_at: 1_700_000_000_000, amount_ml: n });
  await sync.put('feeds', 'feed_1', feed(1));
  await sync.put('feeds', 'feed_2', feed(2));
  await sync.sync();
  // A cursor of another epoch (the database was restored, the space recreated): reset.
  const bogus = Buffer.from(JSON.stringify({ v: 1, s: { [auth.user.id]: [999999, 'another-epoch', '00000000'] } })).toString('base64url');
  await sync.db.table('_meta').put({ key: 'cursor', value: bogus });
  await sync.db.table('feeds').put({ id: 'ghost', space: 'me', ...feed(9) });
  let release;
  holdPull = new Promise((r) => { release = r; });
  const running = sync.sync();
  await until('the pull to be held', () => pulled.length > 0);
  await sync.put('feeds', 'feed_3', feed(3));
  release();
  holdPull = null;
  await running;
  const ids = (await sync.db.table('feeds').toArray()).map((r) => r.id).sort();
  assert.deepEqual(ids, ['feed_1', 'feed_2', 'feed_3'], 'the ghost is gone, the pending write stays');
  await sync.sync();
  const exported = await (await backend(`/v1/users/${auth.user.id}/sync_export`)).json();
  const onServer = JSON.stringify(exported);
  for (const id of ['feed_1', 'feed_2', 'feed_3']) assert.ok(onServer.includes(`"${id}"`), `${id} on the server: ${onServer}`);
  assert.ok(!onServer.includes('ghost'));
});

// A device whose pushes are recorded with their status and error code (the recovery tests
// must see the 409 they recover from, not merely end well).
function recordingDevice(name, engineOptions = {}) {
  const pushes = [];
  const doFetch = async (input, init) => {
    const res = await fetch(input, init);
    if (String(input).includes('/v1/sync/push')) {
      const body = await res.clone().json().catch(() => null);
      const sent = JSON.parse(init.body);
      pushes.push({
        status: res.status,
        code: body?.errors?.[0]?.code ?? null,
        client: sent.client_id,
        seqs: sent.ops.map((o) => o.seq),
        results: body?.results?.map((r) => r.status) ?? null,
      });
    }
    return res;
  };
  const auth = new Auth({ baseUrl: lk.url, tokenStore: memoryStore(), fetch: doFetch, channelName: `test:${name}` });
  const dbName = `db-${name}-${Math.random()}`;
  const engine = () => {
    const sync = new SyncEngine({ auth, tables: TABLES, dbName, ...engineOptions });
    opened.push({ close: () => { sync.close(); sync.db.close(); } });
    return sync;
  };
  opened.push({ close: () => auth.close() });
  // `reopen`: the app starts again on the same local database (the engine reads its client id anew).
  return { auth, sync: engine(), pushes, reopen: engine };
}

const feedOf = (n) => ({ baby_id: 'baby_rec', kind: 'bottle', started_at: 1_700_000_000_000 + n, amount_ml: n });

async function serverFeeds(userId) {
  const exported = await (await backend(`/v1/users/${userId}/sync_export`)).json();
  return (exported.tables.feeds ?? []).map((r) => [r.id, r.fields.amount_ml]).sort();
}

test('a client the server forgot starts over under a new id: the outbox is pushed again from seq 1, nothing lost or doubled', async () => {
  const { auth, sync: before, pushes, reopen } = recordingDevice('forgotten');
  await signUp(auth, 'js-forgotten@example.com');
  await before.put('feeds', 'feed_1', feedOf(1));
  const [applied] = await before.db.table('_outbox').toArray();
  await before.put('feeds', 'feed_2', feedOf(2));
  await before.sync();
  assert.deepEqual(await serverFeeds(auth.user.id), [['feed_1', 1], ['feed_2', 2]]);
  before.close();
  // Meanwhile another device deletes feed_2.
  const other = device('forgotten-other');
  await other.auth.signIn({ identifier: 'js-forgotten@example.com', password: PASSWORD });
  await other.sync.sync();
  await other.sync.delete('feeds', 'feed_2');
  await other.sync.sync();

  // The app starts again, and the server no longer knows its client (as after
  // client_ttl_days offline); the outbox holds an op the server already applied (its answer
  // was lost) and a new one.
  const sync = reopen();
  await sync.db.table('_meta').put({ key: 'client_id', value: 'cl_forgotten_by_the_server' });
  const { key: _key, ...again } = applied;
  await sync.db.table('_outbox').add({ ...again, seq: null });
  await sync.put('feeds', 'feed_3', feedOf(3));
  pushes.length = 0;
  await sync.sync();

  assert.deepEqual(pushes.map((p) => [p.status, p.code]), [[409, 'sync_client_unknown'], [200, null]]);
  assert.deepEqual(pushes[1].seqs, [1, 2], 'numbered again from 1');
  // The op the server had applied is recognised by its op id; only the new one applies.
  assert.deepEqual(pushes[1].results, ['duplicate', 'applied']);
  const clientId = (await sync.db.table('_meta').get('client_id')).value;
  assert.notEqual(clientId, 'cl_forgotten_by_the_server');
  assert.equal(pushes[1].client, clientId);
  assert.deepEqual(await serverFeeds(auth.user.id), [['feed_1', 1], ['feed_3', 3]]);
  assert.equal(await sync.db.table('_rejected').count(), 0);
  assert.deepEqual(sync.currentStatus, { state: 'up-to-date', pending: 0 });
  // The pull went on from the kept cursor, so the delete made while away reached this device.
  assert.deepEqual((await sync.db.table('feeds').toArray()).map((r) => r.id).sort(), ['feed_1', 'feed_3']);

  // The new client goes on from there.
  await sync.put('feeds', 'feed_4', feedOf(4));
  await sync.sync();
  assert.deepEqual(pushes.at(-1), { status: 200, code: null, client: clientId, seqs: [3], results: ['applied'] });
});

test('a sequence gap: the outbox is numbered again from the seq the server expects, and pushed', async () => {
  const { auth, sync, pushes } = recordingDevice('gap');
  await signUp(auth, 'js-gap@example.com');
  await sync.put('feeds', 'feed_1', feedOf(1));
  await sync.sync();
  // The device's counter ran ahead of what the server holds (a server restored from an older backup, say).
  await sync.db.table('_meta').put({ key: 'next_seq', value: 40 });
  await sync.put('feeds', 'feed_2', feedOf(2));
  await sync.put('feeds', 'feed_3', feedOf(3));
  pushes.length = 0;
  await sync.sync();
  assert.deepEqual(
    pushes.map(({ status, code, seqs, results }) => ({ status, code, seqs, results })),
    [
      { status: 409, code: 'sync_seq_gap', seqs: [40, 41], results: null },
      { status: 200, code: null, seqs: [2, 3], results: ['applied', 'applied'] },
    ],
  );
  assert.deepEqual(await serverFeeds(auth.user.id), [['feed_1', 1], ['feed_2', 2], ['feed_3', 3]]);
  assert.deepEqual(sync.currentStatus, { state: 'up-to-date', pending: 0 });
});

test('a 409 the engine cannot recover from is reported as an error with the outbox kept', async () => {
  const { auth, sync, pushes } = recordingDevice('schema', { schemaVersion: 99 });
  await signUp(auth, 'js-schema@example.com');
  await sync.put('feeds', 'feed_1', feedOf(1));
  await sync.sync();
  assert.deepEqual(pushes.map((p) => [p.status, p.code]), [[409, 'sync_schema_version_unsupported']]);
  assert.equal(sync.currentStatus.state, 'error');
  assert.equal(sync.currentStatus.pending, 1);
  assert.equal(await sync.db.table('_outbox').count(), 1);
});

test('two engines on one database (two tabs): after one starts a new client, the other pushes under it, with no op lost', async () => {
  const { auth, sync: tabA, pushes, reopen } = recordingDevice('two-tabs');
  await signUp(auth, 'js-two-tabs@example.com');
  const tabB = reopen();
  await tabA.put('feeds', 'feed_1', feedOf(1));
  await tabA.sync();
  await tabB.put('feeds', 'feed_2', feedOf(2));
  await tabB.sync();
  const first = pushes[0].client;
  assert.deepEqual(pushes.map((p) => [p.client, p.seqs]), [[first, [1]], [first, [2]]], 'both tabs are one client');

  // The server forgets the device's client; tab A meets it first and starts a new one.
  await tabA.db.table('_meta').put({ key: 'client_id', value: 'cl_forgotten_two_tabs' });
  await tabA.put('feeds', 'feed_3', feedOf(3));
  await tabA.sync();
  const renewed = (await tabA.db.table('_meta').get('client_id')).value;
  assert.deepEqual(pushes.slice(2).map((p) => [p.status, p.code, p.client]), [
    [409, 'sync_client_unknown', 'cl_forgotten_two_tabs'],
    [200, null, renewed],
  ]);
  // Tab B, which knew the device by its first id, pushes under the new one and goes on numbering.
  await tabB.put('feeds', 'feed_4', feedOf(4));
  await tabB.sync();
  await tabA.put('feeds', 'feed_5', feedOf(5));
  await tabA.sync();
  assert.deepEqual(pushes.slice(4).map((p) => [p.status, p.client, p.seqs, p.results]), [
    [200, renewed, [2], ['applied']],
    [200, renewed, [3], ['applied']],
  ]);
  assert.deepEqual(await serverFeeds(auth.user.id), [1, 2, 3, 4, 5].map((n) => [`feed_${n}`, n]));
});

test('an outbox larger than one push is renumbered whole after a gap, in order', async () => {
  const { auth, sync, pushes } = recordingDevice('gap-batches', { batchSize: 2 });
  await signUp(auth, 'js-gap-batches@example.com');
  await sync.put('feeds', 'feed_1', feedOf(1));
  await sync.sync();
  await sync.db.table('_meta').put({ key: 'next_seq', value: 70 });
  for (const n of [2, 3, 4, 5, 6]) await sync.put('feeds', `feed_${n}`, feedOf(n));
  pushes.length = 0;
  await sync.sync();
  assert.deepEqual(pushes.map((p) => [p.status, p.seqs]), [
    [409, [70, 71]],
    [200, [2, 3]],
    [200, [4, 5]],
    [200, [6]],
  ]);
  assert.deepEqual(await serverFeeds(auth.user.id), [1, 2, 3, 4, 5, 6].map((n) => [`feed_${n}`, n]));
  assert.deepEqual(sync.currentStatus, { state: 'up-to-date', pending: 0 });
});

test('an op refused as seq_reused (two tabs numbering alike) is numbered again and applied, not dropped or rejected', async () => {
  const { auth, sync, pushes } = recordingDevice('reused');
  await signUp(auth, 'js-reused@example.com');
  await sync.put('feeds', 'feed_1', feedOf(1));
  await sync.put('feeds', 'feed_2', feedOf(2));
  await sync.sync();
  // As if another tab had taken seq 2 for its own op: this one gets a number the server holds.
  await sync.db.table('_meta').put({ key: 'next_seq', value: 2 });
  await sync.put('feeds', 'feed_3', feedOf(3));
  pushes.length = 0;
  await sync.sync();
  assert.deepEqual(pushes.map((p) => [p.status, p.seqs, p.results]), [
    [200, [2], ['rejected']],
    [200, [3], ['applied']],
  ]);
  assert.equal(await sync.db.table('_rejected').count(), 0);
  assert.deepEqual(await serverFeeds(auth.user.id), [1, 2, 3].map((n) => [`feed_${n}`, n]));
  assert.deepEqual(sync.currentStatus, { state: 'up-to-date', pending: 0 });
});
