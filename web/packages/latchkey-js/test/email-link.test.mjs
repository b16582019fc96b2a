// signInWithEmailLink() in latchkey-js, in Node against a fresh latchkey (the binary cargo
// built): the link read from the development mail sink and opened "in another browser" (a
// plain fetch, which confirms on latchkey's page), the waiting device signed in by its poll,
// the link refused when used again, an expired wait, cancellation, an address with no account,
// and links turned off. BabyLog does the same in Chromium (web/tests/email-links.test.mjs).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Auth, LatchkeyError, emailLinkStatus } from '../dist/index.js';
import { startLatchkey, mailbox } from '../../../../sdk/clerk-backend/latchkey.mjs';

const PASSWORD = 'correct horse battery staple';
// Polls quickly: the tests wait for events, and a poll is one.
const POLL_MS = 50;
let lk, off;
const opened = [];

before(async () => {
  lk = await startLatchkey({ config: '[rate_limits]\nper_ip_per_minute = 300\n' });
  off = await startLatchkey({ config: '[email_links]\nsign_in = false\n' });
});
after(async () => {
  for (const a of opened) a.close();
  await lk?.stop();
  await off?.stop();
});

const memoryStore = () => ({ token: null, get() { return this.token; }, set(t) { this.token = t; } });

/** A device (a native app's bearer client token), counting its polls. */
function device(name, { url = lk.url, now } = {}) {
  const polls = [];
  const counting = (input, init) => {
    if (/\/v1\/client\/sign_ins\/[^/?]+(\?|$)/.test(String(input)) && init?.method === 'GET') polls.push(Date.now());
    return fetch(input, init);
  };
  const auth = new Auth({ baseUrl: url, tokenStore: memoryStore(), fetch: counting, now, channelName: `test:link:${name}` });
  opened.push(auth);
  return { auth, polls };
}

async function signUp(email) {
  const { auth } = device(`sign-up-${email}`);
  const inbox = await mailbox(lk.url, email);
  await auth.signUp({ emailAddress: email, password: PASSWORD });
  await auth.verifyEmailCode(await inbox.code());
  return auth.user.id;
}

/** The link in the next link mail to `inbox`'s address. */
async function nextLink(inbox) {
  const m = await inbox.next((m) => m.text.includes('/v1/verify?token='), 'sign-in link mail');
  return m.text.split(/\s+/).find((w) => w.includes('/v1/verify?token='));
}

/** Opens the link as another browser does: the page to confirm on, then the confirmation. Where it leads. */
async function openElsewhere(link) {
  const page = await fetch(link, { headers: { accept: 'text/html' }, redirect: 'manual' });
  assert.equal(page.status, 200);
  assert.match(await page.text(), /Sign in on your other device\?/);
  const confirmed = await fetch(link, { method: 'POST', redirect: 'manual' });
  assert.equal(confirmed.status, 303);
  return confirmed.headers.get('location');
}

/** Resolves once `onEmailSent` was called (the promise `signInWithEmailLink` returns runs on). */
function sentSignal() {
  let resolve;
  const sent = new Promise((r) => (resolve = r));
  return { sent, onEmailSent: (info) => resolve(info) };
}

test('email link: opened and confirmed elsewhere, the waiting device signs in; the link works once', async () => {
  const email = 'js-link@example.com';
  const userId = await signUp(email);
  const { auth } = device('link');
  const inbox = await mailbox(lk.url, email);
  const { sent, onEmailSent } = sentSignal();
  const seen = [];
  auth.onChange(() => seen.push(auth.isSignedIn));
  const done = auth.signInWithEmailLink({ emailAddress: email, redirectUrl: `${lk.url}/after`, onEmailSent, pollIntervalMs: POLL_MS });
  const info = await sent;
  assert.equal(info.emailAddress, email);
  assert.ok(info.expiresAt > Date.now() + 9 * 60_000 && info.expiresAt <= Date.now() + 10 * 60_000, `expires in 10 minutes: ${info.expiresAt}`);
  assert.equal(auth.isSignedIn, false, 'not before the link is opened');

  const link = await nextLink(inbox);
  assert.ok(link.startsWith(`${lk.url}/v1/verify?token=`), link);
  const onward = await openElsewhere(link);
  assert.ok(onward.startsWith(`${lk.url}/after?`), onward);
  assert.deepEqual(emailLinkStatus(onward), { status: 'verified', createdSessionId: null });

  assert.deepEqual(await done, { status: 'signed-in' });
  assert.equal(auth.isSignedIn, true);
  assert.equal(auth.user.id, userId);
  assert.equal(auth.user.emailAddress, email);
  assert.equal(seen.at(-1), true, 'listeners heard the sign-in');
  const claims = JSON.parse(Buffer.from((await auth.getToken()).split('.')[1], 'base64url'));
  assert.equal(claims.sub, userId);

  // The same link again: refused, and nothing more is signed in.
  const again = await fetch(link, { method: 'POST', redirect: 'manual' });
  assert.equal(emailLinkStatus(again.headers.get('location')).status, 'failed');
  // A signed-in client cannot ask for another link (latchkey is single-session).
  await assert.rejects(
    auth.signInWithEmailLink({ emailAddress: email, redirectUrl: `${lk.url}/after` }),
    (e) => e instanceof LatchkeyError && e.code === 'session_exists',
  );
});

test('email link: cancelled, it stops polling and nobody is signed in', async () => {
  const email = 'js-link-cancel@example.com';
  await signUp(email);
  const { auth, polls } = device('link-cancel');
  const inbox = await mailbox(lk.url, email);
  const controller = new AbortController();
  const { sent, onEmailSent } = sentSignal();
  const done = auth.signInWithEmailLink({ emailAddress: email, redirectUrl: '/after', signal: controller.signal, onEmailSent, pollIntervalMs: POLL_MS });
  await sent;
  await nextLink(inbox);
  // At least one poll, then the cancellation.
  while (polls.length === 0) await new Promise((r) => setTimeout(r, 5));
  controller.abort();
  assert.deepEqual(await done, { status: 'cancelled' });
  const count = polls.length;
  await new Promise((r) => setTimeout(r, POLL_MS * 4));
  assert.equal(polls.length, count, 'no poll after the cancellation');
  assert.equal(auth.isSignedIn, false);
  // Already cancelled: nothing is asked.
  assert.deepEqual(await auth.signInWithEmailLink({ emailAddress: email, redirectUrl: '/after', signal: controller.signal }), { status: 'cancelled' });
});

test("email link: unopened past its expiry (by this device's clock) the wait ends as expired, and nobody is signed in", async () => {
  const email = 'js-link-expired@example.com';
  await signUp(email);
  // This device's clock runs 11 minutes ahead: the link's 10 minutes are over at the first poll.
  const { auth } = device('link-expired', { now: () => Date.now() + 11 * 60_000 });
  const inbox = await mailbox(lk.url, email);
  const result = await auth.signInWithEmailLink({ emailAddress: email, redirectUrl: `${lk.url}/after`, pollIntervalMs: POLL_MS });
  assert.deepEqual(result, { status: 'expired' });
  assert.equal(auth.isSignedIn, false);
  assert.ok(await nextLink(inbox));
});

test('email link: an address with no account waits the same way, and no mail is sent', async () => {
  const email = 'js-link-nobody@example.com';
  const { auth, polls } = device('link-nobody');
  const controller = new AbortController();
  const { sent, onEmailSent } = sentSignal();
  const done = auth.signInWithEmailLink({ emailAddress: email, redirectUrl: '/after', signal: controller.signal, onEmailSent, pollIntervalMs: POLL_MS });
  assert.equal((await sent).emailAddress, email);
  while (polls.length < 3) await new Promise((r) => setTimeout(r, 5));
  controller.abort();
  assert.deepEqual(await done, { status: 'cancelled' });
  const res = await fetch(`${lk.url}/dev/mail?to=${encodeURIComponent(email)}`);
  assert.deepEqual((await res.json()).messages, []);
});

test('email link: where latchkey has links off, signInMethods says so and asking throws', async () => {
  const { auth } = device('link-off', { url: off.url });
  assert.deepEqual(await auth.signInMethods(), { providers: [], emailLink: false, passkey: false });
  assert.deepEqual(await device('link-on').auth.signInMethods(), { providers: [], emailLink: true, passkey: false });
  await assert.rejects(
    auth.signInWithEmailLink({ emailAddress: 'anyone@example.com', redirectUrl: '/after' }),
    (e) => e instanceof LatchkeyError && e.code === 'strategy_for_user_invalid',
  );
  assert.equal(emailLinkStatus('http://app.test/?x=1'), null);
  assert.deepEqual(emailLinkStatus('http://app.test/?__clerk_status=expired'), { status: 'expired', createdSessionId: null });
});
