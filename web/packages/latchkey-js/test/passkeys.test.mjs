// Passkeys in latchkey-js (docs/passkeys.md), in Node against a fresh latchkey (the binary cargo
// built) with a software authenticator standing in for navigator.credentials
// (testing/soft-authenticator.mjs): addPasskey, passkeys, renamePasskey, removePasskey, and
// signInWithPasskey with the button and with autofill (conditional mediation), cancelled by its
// signal; a device holding no passkey, and a removed passkey, do not sign in. BabyLog and the
// hosted pages do the same in Chromium (web/tests/passkeys.test.mjs).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Auth, LatchkeyError } from '../dist/index.js';
import { startLatchkey, mailbox } from '../../../../sdk/clerk-backend/latchkey.mjs';
import { SoftAuthenticator } from '../testing/soft-authenticator.mjs';

const PASSWORD = 'correct horse battery staple';
// The app's page, where the "browser" runs latchkey-js: an origin latchkey accepts answers from.
const APP = 'http://localhost:3000';
let lk, off;
const opened = [];

before(async () => {
  lk = await startLatchkey({
    config: [`allowed_origins = ["${APP}"]`, '[rate_limits]', 'per_ip_per_minute = 300', '[passkeys]', 'enabled = true', 'rp_id = "localhost"', ''].join('\n'),
  });
  off = await startLatchkey();
});
after(async () => {
  for (const a of opened) a.close();
  await lk?.stop();
  await off?.stop();
});

const memoryStore = () => ({ token: null, get() { return this.token; }, set(t) { this.token = t; } });

/** A device: its own client (a bearer client token) and its own authenticator. */
function device(name, { url = lk.url, authenticator = new SoftAuthenticator(APP, 'localhost') } = {}) {
  const auth = new Auth({ baseUrl: url, tokenStore: memoryStore(), credentials: authenticator, channelName: `test:passkey:${name}` });
  opened.push(auth);
  return { auth, authenticator };
}

async function signUp(email) {
  const d = device(`sign-up-${email}`);
  const inbox = await mailbox(lk.url, email);
  await d.auth.signUp({ emailAddress: email, password: PASSWORD });
  await d.auth.verifyEmailCode(await inbox.code());
  return d;
}

test('passkeys: signInMethods says whether latchkey offers them', async () => {
  assert.equal((await device('methods').auth.signInMethods()).passkey, true);
  assert.equal((await device('methods-off', { url: off.url }).auth.signInMethods()).passkey, false);
});

test('passkeys: added, listed, renamed; another device signs in with it (button and autofill); removed, it signs in no more', async () => {
  const laptop = await signUp('ada@example.com');
  const userId = laptop.auth.user.id;
  assert.deepEqual(await laptop.auth.passkeys(), []);

  const added = await laptop.auth.addPasskey();
  assert.match(added.id, /^idn_/);
  assert.equal(typeof added.name, 'string');
  assert.equal(laptop.authenticator.credentials.length, 1, 'the authenticator holds the new credential');
  assert.deepEqual((await laptop.auth.passkeys()).map((p) => p.id), [added.id]);
  const renamed = await laptop.auth.renamePasskey(added.id, 'Ada’s laptop');
  assert.equal(renamed.name, 'Ada’s laptop');
  assert.deepEqual((await laptop.auth.passkeys()).map((p) => p.name), ['Ada’s laptop']);
  // The same authenticator cannot hold a second passkey of the account (excludeCredentials).
  await assert.rejects(laptop.auth.addPasskey(), (e) => e.name === 'InvalidStateError');

  // The button: a new client, no identifier; the authenticator's credential signs it in.
  const phone = device('phone', { authenticator: laptop.authenticator });
  assert.deepEqual(await phone.auth.signInWithPasskey(), { status: 'signed-in' });
  assert.equal(phone.auth.user.id, userId);
  assert.ok(await phone.auth.getToken(), 'a session token');
  assert.deepEqual(laptop.authenticator.requests.at(-1), { op: 'get', mediation: 'optional' });
  const [used] = await phone.auth.passkeys();
  assert.ok(used.lastUsedAt > 0, `last used: ${used.lastUsedAt}`);

  // Autofill: the request waits in the identifier field's autofill (conditional mediation).
  const tablet = device('tablet', { authenticator: laptop.authenticator });
  assert.deepEqual(await tablet.auth.signInWithPasskey({ autofill: true }), { status: 'signed-in' });
  assert.deepEqual(laptop.authenticator.requests.at(-1), { op: 'get', mediation: 'conditional' });
  assert.equal(tablet.auth.user.id, userId);

  // Removed (the session is fresh: no recent check needed), it is refused.
  await laptop.auth.removePasskey(added.id);
  assert.deepEqual(await laptop.auth.passkeys(), []);
  const later = device('later', { authenticator: laptop.authenticator });
  await assert.rejects(later.auth.signInWithPasskey(), (e) => e instanceof LatchkeyError && e.code === 'verification_failed');
  assert.equal(later.auth.isSignedIn, false);
});

test('passkeys: a device without one is cancelled, an autofill request stops with its signal, a closed dialog adds nothing', async () => {
  const stranger = device('stranger');
  assert.deepEqual(await stranger.auth.signInWithPasskey(), { status: 'cancelled' });
  assert.equal(stranger.auth.isSignedIn, false);

  const waiting = device('waiting');
  waiting.authenticator.hold = true;
  const controller = new AbortController();
  const result = waiting.auth.signInWithPasskey({ autofill: true, signal: controller.signal });
  // Aborted once the request is in the authenticator (the person never picked a passkey).
  while (waiting.authenticator.requests.length === 0) await new Promise((r) => setImmediate(r));
  controller.abort();
  assert.deepEqual(await result, { status: 'cancelled' });
  assert.deepEqual(await waiting.auth.signInWithPasskey({ signal: controller.signal }), { status: 'cancelled' }, 'an aborted signal: nothing starts');

  const grace = await signUp('grace@example.com');
  grace.authenticator.refuseCreate = true;
  await assert.rejects(grace.auth.addPasskey(), (e) => e instanceof LatchkeyError && e.code === 'passkey_registration_cancelled');
  assert.deepEqual(await grace.auth.passkeys(), []);
  assert.deepEqual(await device('nothing', { authenticator: null }).auth.signInWithPasskey(), { status: 'unsupported' });
});
