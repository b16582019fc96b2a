// Custom flows (issue 36): the pinned clerk-js driven through the resource methods Clerk's hooks
// call (`useSignUp`, `useSignIn`, `useUser`, `useSessionList`, `useReverification`), not its
// prebuilt components, in Debian's Chromium through Clerk's own same-origin proxy. Two devices:
// the app at 127.0.0.1 as a desktop Chrome and at localhost (a cookie jar of its own) as an
// iPhone's Safari, their user agents set over CDP. Each answer is checked as clerk-js reads it
// (its resource fields), not only by status. Organizations are in custom-flows-orgs.test.mjs.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort, startLatchkey, mailbox, signInThroughFrontendApi } from '../clerk-backend/latchkey.mjs';
import { readPage, startAppServer } from './app-server.mjs';
import { launchBrowser, recordWire, reloadsAfter, until } from './browser.mjs';

const EMAIL = 'grace@example.com';
const PASSWORD = 'correct horse battery staple';
const DESKTOP = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';
let latchkey, app, browser, page, phone, wire;
const problems = [];

// A page of the app at `origin` whose every request says `userAgent`.
async function openDevice(origin, userAgent) {
  const p = await browser.context.newPage();
  const cdp = await browser.context.newCDPSession(p);
  await cdp.send('Emulation.setUserAgentOverride', { userAgent });
  p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await p.goto(`${origin}/`);
  await p.evaluate(() => window.clerkLoaded);
  return p;
}

// clerk-js ends a sign-out by loading its after-URL: wait for that load, then for signed out.
async function signOut(p) {
  await reloadsAfter(p, 'the sign-out', () => p.evaluate(() => {
    window.Clerk.signOut().catch((e) => console.error(`signOut: ${e}`));
  }));
  await until(p, 'signed out', () => window.Clerk.user == null);
}

before(async () => {
  // An email link may lead only to a configured origin: the app's is named.
  const port = await freePort();
  latchkey = await startLatchkey({ config: `allowed_origins = ["http://127.0.0.1:${port}"]\n` });
  app = await startAppServer({
    latchkey,
    port,
    pages: { '/': (c) => readPage('page.html').replace('{{PUBLISHABLE_KEY}}', c.publishableKey) },
  });
  const created = await fetch(`${latchkey.url}/v1/users`, {
    method: 'POST',
    headers: { authorization: `Bearer ${latchkey.secretKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ email_address: [EMAIL], password: PASSWORD }),
  });
  assert.equal(created.status, 200, await created.text());
  browser = await launchBrowser();
  page = await openDevice(app.origin, DESKTOP);
  wire = recordWire(page);
  phone = await openDevice(app.origin.replace('127.0.0.1', 'localhost'), IPHONE);
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

test('useSessionList: user.getSessions lists both devices with their activity; revoking the phone signs it out', async () => {
  const other = await phone.evaluate(async ([identifier, password]) => {
    const signIn = await window.Clerk.client.signIn.create({ identifier, password });
    await window.Clerk.setActive({ session: signIn.createdSessionId });
    return window.Clerk.session.id;
  }, ['grace.h@example.com', PASSWORD]);
  const current = await page.evaluate(() => window.Clerk.session.id);
  const listed = await page.evaluate(async () => (await window.Clerk.user.getSessions()).map((s) => ({ id: s.id, status: s.status, ...s.latestActivity })));
  assert.deepEqual(listed.map((s) => s.id).sort(), [current, other].sort());
  const mine = listed.find((s) => s.id === current);
  const theirs = listed.find((s) => s.id === other);
  assert.ok(listed.every((s) => s.status === 'active'), JSON.stringify(listed));
  assert.deepEqual(
    [mine.id, mine.browserName, mine.browserVersion, mine.deviceType, mine.isMobile],
    [current, 'Chrome', '131.0.0.0', 'Windows 10', false],
    JSON.stringify(mine),
  );
  assert.deepEqual([theirs.browserName, theirs.browserVersion, theirs.deviceType, theirs.isMobile], ['Safari', '17.4', 'iPhone', true], JSON.stringify(theirs));
  assert.match(mine.ipAddress, /^(127\.0\.0\.1|::1)$/, 'the browser\'s address, as the proxy forwards it');

  const revoked = await page.evaluate(async (id) => {
    const session = (await window.Clerk.user.getSessions()).find((s) => s.id === id);
    const r = await session.revoke();
    return r.status;
  }, other);
  assert.equal(revoked, 'revoked');
  // clerk-js caches the list: a fresh page load reads it anew.
  await page.reload();
  await page.evaluate(() => window.clerkLoaded);
  const left = await page.evaluate(async () => (await window.Clerk.user.getSessions()).map((s) => s.id));
  assert.deepEqual(left, [current]);
  // The phone hears it at its next request for a token: its session is gone, so it is signed out.
  await phone.evaluate(() => window.Clerk.session.getToken({ skipCache: true }).catch(() => null));
  await until(phone, 'the phone signed out', () => window.Clerk.user == null && window.Clerk.session == null);
  const verify = await fetch(`${latchkey.url}/v1/sessions/${other}`, { headers: { authorization: `Bearer ${latchkey.secretKey}` } });
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

test('useSignUp: signUp.create with a password, the mailed code, then setActive', async () => {
  const inbox = await mailbox(latchkey.url, 'hedy@example.com');
  const started = await phone.evaluate(async () => {
    const signUp = await window.Clerk.client.signUp.create({ emailAddress: 'hedy@example.com', password: 'frequency hopping since 1942', firstName: 'Hedy' });
    const prepared = await signUp.prepareEmailAddressVerification({ strategy: 'email_code' });
    return { status: prepared.status, unverified: prepared.unverifiedFields, verification: prepared.verifications.emailAddress.status, strategy: prepared.verifications.emailAddress.strategy };
  });
  assert.deepEqual(started, { status: 'missing_requirements', unverified: ['email_address'], verification: 'unverified', strategy: 'email_code' });
  const code = await inbox.code();
  const wrong = await phone.evaluate(async () => window.Clerk.client.signUp.attemptEmailAddressVerification({ code: '000000' }).then(() => null, (e) => e.errors?.[0]?.code));
  assert.equal(wrong, 'form_code_incorrect');
  const done = await phone.evaluate(async (code) => {
    const signUp = await window.Clerk.client.signUp.attemptEmailAddressVerification({ code });
    await window.Clerk.setActive({ session: signUp.createdSessionId });
    return { status: signUp.status, user: signUp.createdUserId, name: window.Clerk.user?.firstName, email: window.Clerk.user?.primaryEmailAddress?.emailAddress, verified: window.Clerk.user?.primaryEmailAddress?.verification.status };
  }, code);
  assert.equal(done.status, 'complete');
  assert.match(done.user, /^user_/);
  assert.deepEqual([done.name, done.email, done.verified], ['Hedy', 'hedy@example.com', 'verified']);
});

test('useReverification: session.startVerification, then the password, makes the check fresh', async () => {
  const result = await phone.evaluate(async (password) => {
    const session = window.Clerk.session;
    const started = await session.startVerification({ level: 'first_factor' });
    const done = await session.attemptFirstFactorVerification({ strategy: 'password', password });
    return { started: started.status, level: started.level, done: done.status, age: window.Clerk.session.factorVerificationAge };
  }, 'frequency hopping since 1942');
  assert.deepEqual([result.started, result.level, result.done], ['needs_first_factor', 'first_factor', 'complete']);
  assert.equal(result.age[0], 0, 'the first factor was just proved');
});

test('useUser: removePassword needs the current one, then the account signs in by email code only', async () => {
  const refused = await phone.evaluate(async () => window.Clerk.user.removePassword({ currentPassword: 'not it at all' }).then(() => null, (e) => e.errors?.[0]?.code));
  assert.equal(refused, 'form_password_incorrect');
  const enabled = await phone.evaluate(async (currentPassword) => {
    const user = await window.Clerk.user.removePassword({ currentPassword });
    return [user.passwordEnabled, window.Clerk.user.passwordEnabled];
  }, 'frequency hopping since 1942');
  assert.deepEqual(enabled, [false, false]);
  await signOut(phone);
  const byPassword = await phone.evaluate(async () => window.Clerk.client.signIn.create({ identifier: 'hedy@example.com', password: 'frequency hopping since 1942' }).then(() => null, (e) => e.errors?.[0]?.code));
  assert.ok(byPassword, 'no password signs in any more');

  const inbox = await mailbox(latchkey.url, 'hedy@example.com');
  const factors = await phone.evaluate(async () => {
    const signIn = await window.Clerk.client.signIn.create({ identifier: 'hedy@example.com' });
    const factor = signIn.supportedFirstFactors.find((f) => f.strategy === 'email_code');
    await signIn.prepareFirstFactor({ strategy: 'email_code', emailAddressId: factor.emailAddressId });
    return { status: signIn.status, strategies: signIn.supportedFirstFactors.map((f) => f.strategy), safe: factor.safeIdentifier };
  });
  // The factors offered are the same for every account (enumeration protection): "password"
  // stays listed, and is refused above.
  assert.equal(factors.status, 'needs_first_factor');
  assert.ok(factors.strategies.includes('email_code'), JSON.stringify(factors.strategies));
  assert.ok(factors.safe, 'the factor names the address (masked)');
  const code = await inbox.code();
  const signedIn = await phone.evaluate(async (code) => {
    const signIn = await window.Clerk.client.signIn.attemptFirstFactor({ strategy: 'email_code', code });
    await window.Clerk.setActive({ session: signIn.createdSessionId });
    return [signIn.status, window.Clerk.user?.primaryEmailAddress?.emailAddress];
  }, code);
  assert.deepEqual(signedIn, ['complete', 'hedy@example.com']);
});

test('useSignIn: the email-link flow (createEmailLinkFlow) completes when the link is opened on another device', async () => {
  await signOut(phone);
  const inbox = await mailbox(latchkey.url, 'hedy@example.com');
  // The test's proxy names the app at 127.0.0.1 as its origin (Clerk-Proxy-Url) for both
  // devices: that is the origin a redirect may go to.
  const offered = await phone.evaluate((appOrigin) => {
    window.__linkFlow = (async () => {
      const signIn = await window.Clerk.client.signIn.create({ identifier: 'hedy@example.com' });
      const factor = signIn.supportedFirstFactors.find((f) => f.strategy === 'email_link');
      const { startEmailLinkFlow } = signIn.createEmailLinkFlow();
      const done = await startEmailLinkFlow({ emailAddressId: factor.emailAddressId, redirectUrl: `${appOrigin}/` });
      await window.Clerk.setActive({ session: done.createdSessionId });
      return { status: done.status, verification: done.firstFactorVerification.status, email: window.Clerk.user?.primaryEmailAddress?.emailAddress };
    })();
    return true;
  }, app.origin);
  assert.equal(offered, true);
  const mail = await inbox.next((m) => m.text.includes('/v1/verify?token='), 'link mail');
  const link = mail.text.split(/\s+/).find((w) => w.includes('/v1/verify?token='));
  // Opened elsewhere: the page asks to confirm (a GET changes nothing), the POST confirms.
  const first = await fetch(link, { redirect: 'manual' });
  assert.equal(first.status, 200);
  const confirmed = await fetch(link, { method: 'POST', redirect: 'manual', headers: { origin: new URL(link).origin } });
  assert.equal(confirmed.status, 303, await confirmed.clone().text());
  const done = await phone.evaluate(() => window.__linkFlow);
  assert.deepEqual(done, { status: 'complete', verification: 'verified', email: 'hedy@example.com' });
});

test('useSignIn: "Forgot password?" (reset_password_email_code → attemptFirstFactor → resetPassword) signs in with the new one', async () => {
  await signOut(page);
  const inbox = await mailbox(latchkey.url, 'grace.h@example.com');
  const started = await page.evaluate(async () => {
    const signIn = await window.Clerk.client.signIn.create({ strategy: 'reset_password_email_code', identifier: 'grace.h@example.com' });
    return { status: signIn.status, strategy: signIn.firstFactorVerification.strategy, verification: signIn.firstFactorVerification.status };
  });
  assert.deepEqual(started, { status: 'needs_first_factor', strategy: 'reset_password_email_code', verification: 'unverified' });
  const code = await inbox.code();
  const NEWEST = 'seven lanterns over the harbour';
  const done = await page.evaluate(async ([code, password]) => {
    // clerk-js updates one SignIn resource in place: read each status before the next call.
    const proved = (await window.Clerk.client.signIn.attemptFirstFactor({ strategy: 'reset_password_email_code', code })).status;
    const reset = await window.Clerk.client.signIn.resetPassword({ password, signOutOfOtherSessions: true });
    await window.Clerk.setActive({ session: reset.createdSessionId });
    return { proved, status: reset.status, email: window.Clerk.user?.primaryEmailAddress?.emailAddress };
  }, [code, NEWEST]);
  assert.deepEqual(done, { proved: 'needs_new_password', status: 'complete', email: 'grace.h@example.com' });
  const again = await signInThroughFrontendApi(latchkey.url, 'grace.h@example.com', NEWEST);
  assert.match(again.sessionId, /^sess_/);
});

test('useUser: user.delete() erases the account (after its recent sign-in); the device is signed out', async () => {
  const userId = await page.evaluate(() => window.Clerk.user.id);
  // clerk-js resolves with nothing: the Backend API below says whether the user is gone.
  await page.evaluate(() => window.Clerk.user.delete());
  // clerk-js keeps the user it holds until the next load (Clerk's <UserProfile/> navigates away
  // after deleting); a load finds the device signed out.
  await page.reload();
  await page.evaluate(() => window.clerkLoaded);
  assert.equal(await page.evaluate(() => window.Clerk.user), null);
  const gone = await fetch(`${latchkey.url}/v1/users/${userId}`, { headers: { authorization: `Bearer ${latchkey.secretKey}` } });
  assert.equal(gone.status, 404);
  await assert.rejects(signInThroughFrontendApi(latchkey.url, 'grace.h@example.com', 'seven lanterns over the harbour'), /sign-in failed: 422/);
});

test('no page errors', () => assert.deepEqual(problems, []));
