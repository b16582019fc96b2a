// Custom flows (issue 36, a first part): the pinned clerk-js driven through the resource methods
// Clerk's hooks call (`useSignIn`, `useUser`, `useSessionList`), not its prebuilt components, in
// Debian's Chromium through Clerk's own same-origin proxy. Each answer is checked as clerk-js
// reads it (its resource fields), not only by status.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startLatchkey, mailbox, signInThroughFrontendApi } from '../clerk-backend/latchkey.mjs';
import { readPage, startAppServer } from './app-server.mjs';
import { launchBrowser, recordWire } from './browser.mjs';

const EMAIL = 'grace@example.com';
const PASSWORD = 'correct horse battery staple';
let latchkey, app, browser, page, wire;
const problems = [];

before(async () => {
  latchkey = await startLatchkey();
  app = await startAppServer({
    latchkey,
    pages: { '/': (c) => readPage('page.html').replace('{{PUBLISHABLE_KEY}}', c.publishableKey) },
  });
  const created = await fetch(`${latchkey.url}/v1/users`, {
    method: 'POST',
    headers: { authorization: `Bearer ${latchkey.secretKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ email_address: [EMAIL], password: PASSWORD }),
  });
  assert.equal(created.status, 200, await created.text());
  browser = await launchBrowser();
  page = await browser.context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  wire = recordWire(page);
  await page.goto(`${app.origin}/`);
  await page.evaluate(() => window.clerkLoaded);
});

after(async () => {
  await browser?.close();
  await app?.close();
  await latchkey?.stop();
});

test('useSignIn: signIn.create with a password, then setActive', async () => {
  const result = await page.evaluate(async ([identifier, password]) => {
    const signIn = await window.Clerk.client.signIn.create({ identifier, password });
    await window.Clerk.setActive({ session: signIn.createdSessionId });
    return { status: signIn.status, sessionId: signIn.createdSessionId, active: window.Clerk.session?.id, email: window.Clerk.user?.primaryEmailAddress?.emailAddress };
  }, [EMAIL, PASSWORD]);
  assert.equal(result.status, 'complete');
  assert.match(result.sessionId, /^sess_/);
  assert.equal(result.active, result.sessionId);
  assert.equal(result.email, EMAIL);
});

test('useUser: user.update of the names', async () => {
  const names = await page.evaluate(async () => {
    const user = await window.Clerk.user.update({ firstName: 'Grace', lastName: 'Hopper' });
    return [user.firstName, user.lastName, user.fullName, window.Clerk.user.fullName];
  });
  assert.deepEqual(names, ['Grace', 'Hopper', 'Grace Hopper', 'Grace Hopper']);
});

test('useUser: add an address (its trailing-slash path), verify it with the mailed code, make it primary, remove the old one', async () => {
  const inbox = await mailbox(latchkey.url, 'grace.h@example.com');
  const added = await page.evaluate(async () => {
    const email = await window.Clerk.user.createEmailAddress({ email: 'grace.h@example.com' });
    const prepared = await email.prepareVerification({ strategy: 'email_code' });
    return { id: email.id, address: email.emailAddress, status: prepared.verification.status, strategy: prepared.verification.strategy };
  });
  assert.ok(wire.some((w) => w.method === 'POST' && w.path === '/v1/me/email_addresses/' && w.status === 200), 'clerk-js posts with a trailing slash');
  assert.match(added.id, /^idn_/);
  assert.deepEqual([added.address, added.status, added.strategy], ['grace.h@example.com', 'unverified', 'email_code']);
  const code = await inbox.code();
  const verified = await page.evaluate(async ([id, code]) => {
    const email = window.Clerk.user.emailAddresses.find((e) => e.id === id);
    const done = await email.attemptVerification({ code });
    return done.verification.status;
  }, [added.id, code]);
  assert.equal(verified, 'verified', 'the one code mailed works: asking for one right after adding sends no second');
  const after = await page.evaluate(async (id) => {
    const old = window.Clerk.user.primaryEmailAddress;
    await window.Clerk.user.update({ primaryEmailAddressId: id });
    await old.destroy();
    await window.Clerk.user.reload();
    return { primary: window.Clerk.user.primaryEmailAddress?.emailAddress, all: window.Clerk.user.emailAddresses.map((e) => e.emailAddress) };
  }, added.id);
  assert.deepEqual(after, { primary: 'grace.h@example.com', all: ['grace.h@example.com'] });
});

test('useSessionList: user.getSessions lists this device and another, and revoking the other ends it', async () => {
  const other = await signInThroughFrontendApi(latchkey.url, 'grace.h@example.com', PASSWORD);
  const listed = await page.evaluate(async () => (await window.Clerk.user.getSessions()).map((s) => ({ id: s.id, status: s.status, activityId: s.latestActivity?.id })));
  const current = await page.evaluate(() => window.Clerk.session.id);
  assert.deepEqual(listed.map((s) => s.id).sort(), [current, other.sessionId].sort());
  assert.ok(listed.every((s) => s.status === 'active' && s.activityId), JSON.stringify(listed));
  const revoked = await page.evaluate(async (id) => {
    const session = (await window.Clerk.user.getSessions()).find((s) => s.id === id);
    const r = await session.revoke();
    return { status: r.status, left: (await window.Clerk.user.getSessions()).map((s) => s.id) };
  }, other.sessionId);
  assert.equal(revoked.status, 'revoked');
  assert.deepEqual(revoked.left, [current]);
  const verify = await fetch(`${latchkey.url}/v1/sessions/${other.sessionId}`, { headers: { authorization: `Bearer ${latchkey.secretKey}` } });
  assert.equal((await verify.json()).status, 'revoked');
});

test('useUser: updatePassword, and the new password signs in', async () => {
  const NEW = 'plum anchor quietly 47';
  const ok = await page.evaluate(async ([currentPassword, newPassword]) => {
    await window.Clerk.user.updatePassword({ currentPassword, newPassword });
    return window.Clerk.user.passwordEnabled;
  }, [PASSWORD, NEW]);
  assert.equal(ok, true);
  const again = await signInThroughFrontendApi(latchkey.url, 'grace.h@example.com', NEW);
  assert.match(again.sessionId, /^sess_/);
  await assert.rejects(signInThroughFrontendApi(latchkey.url, 'grace.h@example.com', PASSWORD), /sign-in failed: 422/);
});

test('no page errors', () => assert.deepEqual(problems, []));
