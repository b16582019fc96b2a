// Clerk's own browser SDK, unmodified: the pinned @clerk/clerk-js and @clerk/ui bundles,
// self-hosted by a plain page that reaches latchkey through Clerk's own same-origin proxy,
// drive sign-up with the emailed code, a token refresh, a profile update, organizations,
// sign-out, a password sign-in, a "Forgot password?" reset, "Continue with Google" (against
// a loopback OpenID Provider standing in for Google) and connecting and removing another
// provider's account in UserProfile, in Debian's Chromium.
// Screenshots of the prebuilt components are kept under target/artifacts/clerk-js/.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startLatchkey, mailbox, signInThroughFrontendApi } from '../clerk-backend/latchkey.mjs';
import { readPage, startAppServer } from './app-server.mjs';
import { launchBrowser, mount as mountIn, recordWire, reloadsAfter as reloadsAfterIn, settled as settledIn, until as untilIn } from './browser.mjs';
import { loopbackClient, startOpenIdProvider } from './oidc-provider.mjs';

const artifacts = resolve(import.meta.dirname, '../../target/artifacts/clerk-js');
mkdirSync(artifacts, { recursive: true });

const EMAIL = 'ada@example.com';
const PASSWORD = 'correct horse battery staple';
let latchkey, app, browser, page, wire;
const problems = [];

const decode = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
const shot = (name) => page.screenshot({ path: `${artifacts}/${name}.png` });
const state = () => page.textContent('#state');
// The page's helpers (./browser.mjs), on this suite's one page.
const until = (what, fn, ms) => untilIn(page, what, fn, ms);
const reloadsAfter = (what, action) => reloadsAfterIn(page, what, action);
const mount = (component) => mountIn(page, component);
const settled = () => settledIn(page);

before(async () => {
  latchkey = await startLatchkey();
  app = await startAppServer({
    latchkey,
    pages: { '/': (c) => readPage('page.html').replace('{{PUBLISHABLE_KEY}}', c.publishableKey) },
  });
  browser = await launchBrowser();
  page = await browser.context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && !/Failed to load resource/.test(m.text()) && problems.push(`console: ${m.text()}`));
  wire = recordWire(page);
  await page.goto(`${app.origin}/`);
  await page.evaluate(() => window.clerkLoaded);
});

after(async () => {
  await browser?.close();
  await app?.close();
  await latchkey?.stop();
});

test('clerk-js loads against latchkey: environment and client through the proxy', async () => {
  assert.equal(await state(), 'signed out');
  assert.deepEqual(wire.slice(0, 2).map((w) => `${w.method} ${w.path} ${w.status}`).sort(), ['GET /v1/client 200', 'GET /v1/environment 200']);
});

test('sign-up with the email code in the prebuilt SignUp', async () => {
  await mount('SignUp');
  await page.waitForSelector('input[name=emailAddress]');
  await shot('SignUp');
  await page.fill('input[name=emailAddress]', EMAIL);
  await page.fill('input[name=password]', PASSWORD);
  const inbox = await mailbox(latchkey.url, EMAIL);
  await page.click('button:has-text("Continue")');
  await page.waitForSelector('input[autocomplete=one-time-code]');
  await shot('SignUp-verify');
  const code = await inbox.code();
  // The sixth digit submits the code.
  await reloadsAfter('the sign-up', () => page.fill('input[autocomplete=one-time-code]', code));
  await until('signed in after the code', () => window.Clerk.user?.primaryEmailAddress?.emailAddress === 'ada@example.com');
  assert.equal(await state(), `signed in as ${EMAIL}`);
  const calls = wire.map((w) => `${w.method} ${w.path.replace(/\/(sua|sess)_[A-Za-z0-9]+/, '/{id}')} ${w.status}`);
  assert.ok(calls.includes('POST /v1/client/sign_ups 200'), calls.join('\n'));
  assert.ok(calls.includes('POST /v1/client/sign_ups/{id}/attempt_verification 200'), calls.join('\n'));
  const cookies = await browser.context.cookies(app.origin);
  assert.ok(cookies.some((c) => c.name === '__client' && c.httpOnly), 'HttpOnly __client on the app origin');
  assert.ok(cookies.some((c) => c.name === '__client_uat' && Number(c.value) > 0));
  assert.ok(cookies.some((c) => c.name === '__session'));
});

test('a profile update in the prebuilt UserProfile', async () => {
  await mount('UserProfile');
  await page.click('button:has-text("Update profile")');
  await page.fill('input[name=firstName]', 'Ada');
  await page.fill('input[name=lastName]', 'Lovelace');
  await page.click('button:has-text("Save")');
  await until('the new name shown', () => window.Clerk.user?.fullName === 'Ada Lovelace');
  await page.waitForSelector('button:has-text("Update profile")');
  await shot('UserProfile');
  assert.ok(wire.some((w) => w.method === 'PATCH' && w.path === '/v1/me' && w.status === 200));
  const users = await (await fetch(`${latchkey.url}/v1/users?email_address=${EMAIL}`, { headers: { authorization: `Bearer ${latchkey.secretKey}` } })).json();
  assert.equal(users[0].first_name, 'Ada', 'stored by latchkey');
});

test('creating an organization and switching to it: the next token carries its o claim', async () => {
  await mount('CreateOrganization');
  await page.waitForSelector('input[name=name]');
  await shot('CreateOrganization');
  await page.fill('input[name=name]', 'Night Shift');
  await page.click('button:has-text("Create organization")');
  await until('the new organization active', () => window.Clerk.organization?.name === 'Night Shift');
  const org = await page.evaluate(() => ({ id: window.Clerk.organization.id, slug: window.Clerk.organization.slug }));
  const claims = decode(await page.evaluate(() => window.Clerk.session.getToken({ skipCache: true })));
  assert.equal(claims.o?.id, org.id);
  assert.equal(claims.o?.rol, 'admin');
  await mount('OrganizationSwitcher');
  await page.click('.cl-organizationSwitcherTrigger');
  await page.waitForSelector('text=Personal account');
  await shot('OrganizationSwitcher');
  await page.click('text=Personal account');
  await until('personal account active', () => window.Clerk.organization === null);
  const personal = decode(await page.evaluate(() => window.Clerk.session.getToken({ skipCache: true })));
  assert.equal(personal.o, undefined, 'no organization in the personal token');
  const touches = wire.filter((w) => w.path.endsWith('/touch'));
  assert.ok(touches.length >= 2, 'switching goes through touch');
});

test('sign-out, then a password sign-in in the prebuilt SignIn', async () => {
  // Not awaited in the page: the navigation that ends signOut() may tear down this very
  // evaluation. A failure of signOut() still shows, as a console error in `problems`.
  await reloadsAfter('the sign-out', () => page.evaluate(() => {
    window.Clerk.signOut().catch((e) => console.error(`signOut: ${e}`));
  }));
  await until('signed out', () => window.Clerk.user == null);
  assert.equal(await state(), 'signed out');
  assert.ok(wire.some((w) => w.method === 'DELETE' && w.path === '/v1/client/sessions' && w.status === 200), 'sign-out on the wire');
  const cookies = await browser.context.cookies(app.origin);
  assert.equal(cookies.find((c) => c.name === '__client_uat')?.value, '0');
  await mount('SignIn');
  await page.waitForSelector('input[name=identifier]');
  await shot('SignIn');
  await page.fill('input[name=identifier]', EMAIL);
  await page.click('button:has-text("Continue")');
  await page.waitForSelector('input[name=password]');
  await page.fill('input[name=password]', 'not the password');
  await page.click('button:has-text("Continue")');
  await page.waitForSelector('text=/Password is incorrect/i');
  await settled(); // the message fades in
  await shot('SignIn-wrong-password');
  await page.fill('input[name=password]', PASSWORD);
  await reloadsAfter('the sign-in', () => page.click('button:has-text("Continue")'));
  await until('signed in with the password', () => window.Clerk.user?.fullName === 'Ada Lovelace');
  assert.equal(await state(), `signed in as ${EMAIL}`);
});

test('clerk-js refreshes the session token on its own before it expires', async () => {
  const jwt = await page.evaluate(() => window.Clerk.session.getToken({ skipCache: true }));
  const issued = Date.now();
  const before = decode(jwt);
  assert.equal(before.exp - before.iat, 60, 'latchkey issues 60 s tokens');
  // clerk-js arms a timer at exp - 17 s (≈43 s for a 60 s token) and polls: nothing here asks.
  // Only a request clerk-js starts after this token was issued counts.
  const refresh = await page.waitForResponse(
    (r) => /\/v1\/client\/sessions\/[^/]+\/tokens/.test(r.url()) && r.request().timing().startTime > issued,
    { timeout: 70_000 },
  );
  const after = Date.now() - issued;
  assert.ok(after > 30_000 && after < 62_000, `refreshed ${after} ms after issue`);
  assert.equal(refresh.status(), 200);
  const fresh = decode((await refresh.json()).jwt);
  assert.ok(fresh.iat > before.iat && fresh.sid === before.sid);
});

// "Forgot password?" in the prebuilt SignIn, for an account of its own (made with the secret
// key, so this test needs no earlier one's user): the password card's action, clerk-ui's
// 'forgot' alternative-methods card, the reset code mailed to the address, the new-password
// card with "Sign out of all other devices", and the success card that activates the session.
test('a forgotten password reset in the prebuilt SignIn', async () => {
  const email = 'grace@example.com';
  const oldPassword = 'a gate older than the house';
  const newPassword = 'the new gate opens inward';
  const fapi = (path, fields) => fetch(`${latchkey.url}/v1${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: latchkey.url },
    body: new URLSearchParams(fields),
  });
  const bapi = (path, init = {}) => fetch(`${latchkey.url}/v1${path}`, {
    ...init,
    headers: { authorization: `Bearer ${latchkey.secretKey}`, 'content-type': 'application/json' },
  });
  const created = await bapi('/users', { method: 'POST', body: JSON.stringify({ email_address: [email], password: oldPassword }) });
  assert.equal(created.status, 200, await created.clone().text());
  const userId = (await created.json()).id;
  // A session elsewhere, signed in with the old password: the reset is to end it.
  const elsewhere = await signInThroughFrontendApi(latchkey.url, email, oldPassword);

  if (await page.evaluate(() => window.Clerk.user != null)) {
    await reloadsAfter('the sign-out', () => page.evaluate(() => {
      window.Clerk.signOut().catch((e) => console.error(`signOut: ${e}`));
    }));
  }
  await until('signed out', () => window.Clerk.user == null);
  const from = wire.length;
  await mount('SignIn');
  await page.waitForSelector('input[name=identifier]');
  await page.fill('input[name=identifier]', email);
  await page.click('button:has-text("Continue")');
  await page.waitForSelector('input[name=password]');
  await page.waitForSelector('.cl-headerTitle:has-text("Enter your password")');
  assert.match(page.url(), /factor-one/);

  // The password card offers "Forgot password?" because the sign-in lists the reset factor.
  const factors = await page.evaluate(() => window.Clerk.client.signIn.supportedFirstFactors.map((f) => f.strategy));
  assert.ok(factors.includes('reset_password_email_code'), factors.join(', '));
  await page.click('.cl-formFieldAction:has-text("Forgot password?")');
  await page.waitForSelector('.cl-headerTitle:has-text("Forgot Password?")');
  await settled();
  await shot('SignIn-forgot-password');

  const inbox = await mailbox(latchkey.url, email);
  await page.click('button:has-text("Reset your password")');
  await page.waitForSelector('.cl-headerTitle:has-text("Reset password")');
  await page.waitForSelector('text=First, enter the code sent to your email address');
  const mail = await inbox.next((m) => /password reset code$/.test(m.subject), 'password reset code mail');
  const code = mail.subject.match(/^(\d{6}) /)?.[1];
  assert.ok(code, mail.subject);
  assert.match(mail.text, new RegExp(`reset code is ${code}`));
  await settled();
  await shot('SignIn-reset-password-code');

  // The sixth digit submits the code; the attempt then waits for the new password.
  await page.fill('input[autocomplete=one-time-code]', code);
  await page.waitForSelector('.cl-headerTitle:has-text("Set new password")');
  assert.match(page.url(), /reset-password/);
  assert.equal(await page.evaluate(() => window.Clerk.client.signIn.status), 'needs_new_password');
  await page.fill('input[name=password]', newPassword);
  await page.fill('input[name=confirmPassword]', newPassword);
  const others = page.locator('input[name=signOutOfOtherSessions]');
  if (!(await others.isChecked())) await others.check();
  assert.ok(await others.isChecked(), 'Sign out of all other devices');
  await settled();
  await shot('SignIn-reset-password-new');

  // clerk-ui shows its success card, then (after its own 2 s) activates the new session and
  // goes to the after-sign-in URL with a full page load.
  await reloadsAfter('the reset', async () => {
    await page.click('button:has-text("Reset Password")');
    await page.waitForSelector('text=Your password was successfully changed');
    assert.match(page.url(), /reset-password-success\?createdSessionId=sess_/);
    await shot('SignIn-reset-password-success');
  });
  await until('signed in after the reset', () => window.Clerk.user?.primaryEmailAddress?.emailAddress === 'grace@example.com');
  assert.equal(await state(), `signed in as ${email}`);
  assert.equal(await page.evaluate(() => window.Clerk.user.id), userId);

  // This sign-in's calls: no password was tried, the code went through prepare and attempt.
  const calls = wire.slice(from).map((w) => `${w.method} ${w.path.replace(/\/sia_[A-Za-z0-9]+/, '/{id}')} ${w.status}`);
  for (const call of ['prepare_first_factor', 'attempt_first_factor', 'reset_password']) {
    assert.equal(calls.filter((c) => c === `POST /v1/client/sign_ins/{id}/${call} 200`).length, 1, `${call}:\n${calls.join('\n')}`);
  }
  const notice = await inbox.next((m) => /password was changed$/.test(m.subject), 'password changed notice');
  assert.match(notice.text, /Every other device signed in to your account was signed out/);
  const ended = await (await bapi(`/sessions/${elsewhere.sessionId}`)).json();
  assert.equal(ended.status, 'revoked', 'the session signed in elsewhere ended');

  // The old password no longer signs in; the new one does.
  const refused = await fapi('/client/sign_ins', { identifier: email, password: oldPassword, strategy: 'password' });
  const refusal = await refused.json();
  assert.equal(refused.status, 422, JSON.stringify(refusal));
  assert.equal(refusal.errors?.[0]?.code, 'form_password_incorrect');
  const again = await fapi('/client/sign_ins', { identifier: email, password: newPassword, strategy: 'password' });
  const signedIn = await again.json();
  assert.equal(again.status, 200, JSON.stringify(signedIn));
  assert.equal(signedIn.response.status, 'complete');
  assert.ok(signedIn.response.created_session_id);
});

// "Continue with Google" in the prebuilt SignIn (docs/identity-providers.md), against a second
// latchkey whose [oauth.google] preset has its issuer replaced by a loopback OpenID Provider (the
// Rust tests' fixture, started by ./oidc-provider.mjs). The provider knows two people, and
// vouches for both addresses: one already has an account here (made with the secret key), the
// other has none. The same page moves to this instance's app; the provider logs in whoever
// `loginHint` names (it is added to the authorization request on its way to the provider).
// The SignUp shows the same button, and the UserProfile lists the account; the last test adds a
// custom OpenID Connect provider, Acme, to this instance and connects it in the UserProfile.
describe('Continue with Google in the prebuilt SignIn, SignUp and UserProfile', () => {
  const EXISTING = { sub: 'g-margaret', email: 'margaret@example.com', email_verified: true, given_name: 'Margaret', family_name: 'Hamilton' };
  const NEWCOMER = { sub: 'g-nell', email: 'nell@example.com', email_verified: true, given_name: 'Nell', family_name: 'Noether' };
  let provider, google, googleApp, existingUserId, loginHint, toProvider, acmeConfigDir;

  const bapi = (path, init = {}) => fetch(`${google.url}/v1${path}`, {
    ...init,
    headers: { authorization: `Bearer ${google.secretKey}`, 'content-type': 'application/json' },
  });
  // This instance's latchkey.toml: Google's preset on the loopback provider; the UserProfile
  // test adds a custom OpenID Connect provider, Acme, on the same provider with its own client.
  const googleConfig = ({ acme = false } = {}) => [
    '[oauth.google]', 'client_id = "google-client"', 'client_secret = "google-secret"', `issuer = "${provider.issuer}"`, '',
    ...(acme ? ['[oauth.acme]', `issuer = "${provider.issuer}"`, 'client_id = "acme-client"', 'client_secret = "acme-secret"', 'name = "Acme"', ''] : []),
  ].join('\n');
  const isFapi = (r, method, path) => r.request().method() === method && new URL(r.url()).pathname === `/__clerk/v1${path}`;

  before(async () => {
    provider = await startOpenIdProvider({
      clients: [loopbackClient('google-client', 'google-secret'), loopbackClient('acme-client', 'acme-secret')],
      accounts: [EXISTING, NEWCOMER],
    });
    google = await startLatchkey({ config: googleConfig() });
    const created = await bapi('/users', { method: 'POST', body: JSON.stringify({ email_address: [EXISTING.email], first_name: 'Margaret' }) });
    const user = await created.json();
    assert.equal(created.status, 200, JSON.stringify(user));
    assert.equal(user.email_addresses[0].verification?.status, 'verified', 'an address made with the secret key is verified');
    existingUserId = user.id;
    googleApp = await startAppServer({
      latchkey: google,
      pages: { '/': (c) => readPage('page.html').replace('{{PUBLISHABLE_KEY}}', c.publishableKey) },
    });
    await page.route(
      (url) => url.origin === provider.issuer && url.pathname === '/auth' && !url.searchParams.has('login_hint'),
      (route) => {
        toProvider = new URL(route.request().url());
        const to = new URL(route.request().url());
        to.searchParams.set('login_hint', loginHint);
        return route.fulfill({ status: 303, headers: { location: to.href } });
      },
    );
    // Cookies belong to the host, whatever the port: the first instance's go before this one's
    // app is opened, and its app is left first, so nothing of it runs meanwhile.
    await page.goto('about:blank');
    await browser.context.clearCookies();
    await page.goto(`${googleApp.origin}/`);
    await page.evaluate(() => window.clerkLoaded);
    assert.equal(await state(), 'signed out');
  });

  after(async () => {
    await page?.goto('about:blank');
    await googleApp?.close();
    await google?.stop();
    await provider?.stop();
    if (acmeConfigDir) rmSync(acmeConfigDir, { recursive: true, force: true });
  });

  // Clicks `button` as the provider's person `who` and follows the browser to the provider and
  // back: the Frontend API call (`method` `path`) that started the trip (its form), the URL the
  // browser was sent to at the provider (the answer's external_verification_redirect_url, which
  // clerk-js follows as it is), where latchkey's callback sent the browser, once that page has
  // loaded. The answer's body is not read when it succeeds: the page navigates away right after
  // it, and the browser then no longer has it (reading it raced that navigation).
  async function providerTrip(who, button, method, path) {
    loginHint = who;
    toProvider = undefined;
    const start = page.waitForResponse((r) => isFapi(r, method, path));
    const callback = page.waitForResponse((r) => r.url().startsWith(`${google.url}/v1/oauth_callback?`), { timeout: 30_000 });
    // Redirects commit no page: the next load is the page the callback sends the browser to.
    const loaded = page.waitForEvent('load', { timeout: 30_000 });
    callback.catch(() => {});
    loaded.catch(() => {});
    await page.click(button);
    const started = await start;
    const form = started.request().postData();
    if (started.status() !== 200) assert.fail(`${method} /v1${path} ${form}: ${started.status()} ${await started.text().catch((e) => e.message)}`);
    const back = await callback;
    const answer = back.status() === 303 ? '' : await back.text().catch(() => '');
    assert.equal(back.status(), 303, `GET /v1/oauth_callback: ${back.status()} ${answer}`);
    await loaded;
    assert.ok(toProvider, 'the browser went to the provider');
    return { form: new URLSearchParams(form), toProvider, sentTo: new URL(back.headers().location, google.url) };
  }

  // Clicks "Continue with Google" in the mounted SignIn as the provider's person `who`: where
  // latchkey's callback sent the browser.
  async function continueWithGoogle(who) {
    const { form, toProvider, sentTo } = await providerTrip(who, '.cl-socialButtonsBlockButton__google', 'POST', '/client/sign_ins');
    assert.equal(form.get('strategy'), 'oauth_google');
    assert.equal(`${toProvider.origin}${toProvider.pathname}`, `${provider.issuer}/auth`);
    assert.equal(toProvider.searchParams.get('client_id'), 'google-client');
    return { sentTo };
  }

  // Signed out, as the suite starts: the SignUp shows the provider's button as the SignIn does
  // (both read the environment's authenticatable social strategies).
  test('the prebuilt SignUp shows "Continue with Google" too', async () => {
    await mount('SignUp');
    const button = page.locator('.cl-socialButtonsBlockButton__google');
    await button.waitFor();
    assert.equal((await button.textContent()).trim(), 'Continue with Google');
    await page.waitForSelector('input[name=emailAddress]');
    await settled();
    await page.locator('.cl-cardBox').screenshot({ path: `${artifacts}/SignUp-google.png` });
  });

  test('an account whose verified address the provider vouches for is signed in', async () => {
    await mount('SignIn');
    const button = page.locator('.cl-socialButtonsBlockButton__google');
    await button.waitFor();
    assert.equal((await button.textContent()).trim(), 'Continue with Google');
    await page.waitForSelector('input[name=identifier]');
    await settled();
    await page.locator('.cl-cardBox').screenshot({ path: `${artifacts}/SignIn-google.png` });

    const { sentTo } = await continueWithGoogle(EXISTING.sub);
    // Signed in at the callback: it sends the browser to the after-sign-in URL clerk-js gave
    // (`action_complete_redirect_url`, '/' of the app, where the SignIn was).
    assert.equal(sentTo.origin, googleApp.origin, `the callback sent the browser to ${sentTo.href}, not back to the app`);
    await page.evaluate(() => window.clerkLoaded);
    await until('signed in with Google', () => window.Clerk.user != null);
    const me = await page.evaluate(() => ({ id: window.Clerk.user.id, email: window.Clerk.user.primaryEmailAddress?.emailAddress }));
    assert.deepEqual(me, { id: existingUserId, email: EXISTING.email });
    assert.equal(await state(), `signed in as ${EXISTING.email}`);
  });

  test('a newcomer: the sso-callback route of SignIn takes the attempt over as a new account', async () => {
    // From the app's page (whatever the test before left), signed out.
    await page.goto(`${googleApp.origin}/`);
    await page.evaluate(() => window.clerkLoaded);
    if (await page.evaluate(() => window.Clerk.user != null)) {
      await reloadsAfter('the sign-out', () => page.evaluate(() => {
        window.Clerk.signOut().catch((e) => console.error(`signOut: ${e}`));
      }));
    }
    await until('signed out', () => window.Clerk.user == null);
    const from = wire.length;
    await mount('SignIn');
    await page.waitForSelector('.cl-socialButtonsBlockButton__google');

    const { sentTo } = await continueWithGoogle(NEWCOMER.sub);
    // Nobody to sign in: the browser goes back to the redirect_url clerk-js gave, the SignIn's
    // sso-callback route (hash routing: '/#/sso-callback'), with the attempt transferable.
    assert.equal(sentTo.origin, googleApp.origin, sentTo.href);
    assert.match(sentTo.hash, /^#\/sso-callback/, sentTo.href);
    await page.evaluate(() => window.clerkLoaded);
    const attempt = await page.evaluate(() => {
      const s = window.Clerk.client.signIn;
      return { status: s.status, supportedFirstFactors: s.supportedFirstFactors, verification: s.firstFactorVerification.status, error: s.firstFactorVerification.error?.code };
    });
    assert.equal(attempt.verification, 'transferable', JSON.stringify(attempt));
    assert.equal(attempt.error, 'external_account_not_found', JSON.stringify(attempt));

    // The page mounts nothing by itself: the SignIn mounted now reads its route from the hash,
    // and its sso-callback card runs handleRedirectCallback, which creates the sign-up with
    // transfer=true and, once complete, activates the session and loads the after-sign-up URL.
    const transfer = page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === '/__clerk/v1/client/sign_ups', { timeout: 30_000 });
    transfer.catch(() => {});
    await mount('SignIn');
    await page.waitForURL((u) => !u.hash.startsWith('#/sso-callback'), { timeout: 30_000 });
    assert.equal(new URL(page.url()).hash, '', `handleRedirectCallback went to ${page.url()}, the attempt was ${JSON.stringify(attempt)}`);
    assert.match((await transfer).postData(), /(^|&)transfer=true(&|$)/);
    await page.evaluate(() => window.clerkLoaded);
    await until('signed in as the newcomer', () => window.Clerk.user?.primaryEmailAddress?.emailAddress === 'nell@example.com');
    assert.equal(await state(), `signed in as ${NEWCOMER.email}`);
    const userId = await page.evaluate(() => window.Clerk.user.id);
    assert.notEqual(userId, existingUserId);
    const calls = wire.slice(from).map((w) => `${w.method} ${w.path} ${w.status}`);
    assert.ok(calls.includes('POST /v1/client/sign_ups 200'), calls.join('\n'));

    // The Backend API knows the new user, with the address the provider vouched for verified,
    // the provider's names, and no password; no code was mailed to prove the address.
    const users = await (await bapi(`/users?email_address=${encodeURIComponent(NEWCOMER.email)}`)).json();
    assert.equal(users.length, 1, JSON.stringify(users));
    const [user] = users;
    assert.equal(user.id, userId);
    const address = user.email_addresses.find((e) => e.email_address === NEWCOMER.email);
    assert.equal(address?.verification?.status, 'verified', JSON.stringify(user.email_addresses));
    assert.equal(user.primary_email_address_id, address.id);
    assert.deepEqual([user.first_name, user.last_name], [NEWCOMER.given_name, NEWCOMER.family_name]);
    assert.equal(user.password_enabled, false);
    const mail = await (await fetch(`${google.url}/dev/mail?to=${encodeURIComponent(NEWCOMER.email)}`)).json();
    assert.deepEqual(mail.messages.map((m) => m.subject), []);
  });

  // UserProfile's "Connected accounts" (docs/identity-providers.md, "Connecting an account"), for
  // the newcomer the test before signed up: the Google account, and nothing to connect. Then the
  // operator adds Acme, a custom OpenID Connect provider (the same loopback provider, its own
  // client), and restarts latchkey on the same data: the section's "Connect account" menu offers
  // Acme, the browser goes to the provider and back to the page (clerk-js's redirect_url), and
  // both accounts are listed and known to the Backend API. Removing Acme (its menu → Remove →
  // the confirmation) leaves Google.
  test('UserProfile lists the Google account, connects Acme and removes it', async () => {
    await page.evaluate(() => window.clerkLoaded);
    const userId = await page.evaluate(() => window.Clerk.user?.id);
    assert.ok(userId, 'signed in as the newcomer');
    await mount('UserProfile');
    const accounts = page.locator('.cl-profileSectionItem__connectedAccounts');
    const connect = page.locator('.cl-menuButton__connectedAccounts');
    await accounts.first().waitFor();
    assert.deepEqual(await accounts.allTextContents(), [`Google• ${NEWCOMER.email}`]);
    assert.equal(await connect.count(), 0, 'every configured provider is connected');
    await settled();
    await shot('UserProfile-google');

    // The operator adds [oauth.acme] and restarts latchkey (same port, same data). restart()
    // starts the binary with this process's environment: LATCHKEY_CONFIG names the new file.
    acmeConfigDir = mkdtempSync(join(tmpdir(), 'latchkey-acme-'));
    writeFileSync(join(acmeConfigDir, 'latchkey.toml'), googleConfig({ acme: true }));
    await google.kill('SIGTERM');
    process.env.LATCHKEY_CONFIG = join(acmeConfigDir, 'latchkey.toml');
    try {
      await google.restart();
    } finally {
      delete process.env.LATCHKEY_CONFIG;
    }
    const { user_settings: { social } } = await (await fetch(`${google.url}/v1/environment`)).json();
    assert.deepEqual(Object.keys(social).sort(), ['oauth_custom_acme', 'oauth_google']);
    assert.equal(social.oauth_custom_acme.name, 'Acme');

    // A new page load reads the new environment; the session lived through the restart.
    await page.goto(`${googleApp.origin}/`);
    await page.evaluate(() => window.clerkLoaded);
    assert.equal(await state(), `signed in as ${NEWCOMER.email}`);
    await mount('UserProfile');
    await connect.waitFor();
    await connect.click();
    const acmeItem = '.cl-menuItem__connectedAccounts:has(.cl-providerIcon__custom_acme)';
    await page.waitForSelector(acmeItem);
    assert.deepEqual(await page.locator('.cl-menuItem__connectedAccounts').allTextContents(), ['AAcme'], 'Acme, after its initial');
    await settled();
    await shot('UserProfile-connect-account');

    const from = wire.length;
    const pageUrl = page.url();
    const trip = await providerTrip(NEWCOMER.sub, acmeItem, 'POST', '/me/external_accounts');
    assert.equal(trip.form.get('strategy'), 'oauth_custom_acme', String(trip.form));
    assert.equal(trip.form.get('redirect_url'), pageUrl, String(trip.form));
    assert.equal(`${trip.toProvider.origin}${trip.toProvider.pathname}`, `${provider.issuer}/auth`);
    assert.equal(trip.toProvider.searchParams.get('client_id'), 'acme-client');
    // Joined: the callback sends the browser to the redirect_url, the page it left.
    assert.equal(trip.sentTo.href, pageUrl);

    await page.evaluate(() => window.clerkLoaded);
    assert.deepEqual(await page.evaluate(() => window.Clerk.user.externalAccounts.map((a) => [a.provider, a.verification?.status])),
      [['google', 'verified'], ['custom_acme', 'verified']]);
    await mount('UserProfile');
    await until('both accounts listed', () => document.querySelectorAll('.cl-profileSectionItem__connectedAccounts').length === 2);
    assert.deepEqual(await accounts.allTextContents(), [`Google• ${NEWCOMER.email}`, `AAcme• ${NEWCOMER.email}`]);
    assert.equal(await connect.count(), 0, 'nothing left to connect');
    await settled();
    await shot('UserProfile-connected-accounts');
    const both = (await (await bapi(`/users/${userId}`)).json()).external_accounts;
    assert.deepEqual(both.map((a) => [a.provider, a.provider_user_id, a.email_address]).sort(),
      [['oauth_custom_acme', NEWCOMER.sub, NEWCOMER.email], ['oauth_google', NEWCOMER.sub, NEWCOMER.email]]);
    const acmeId = both.find((a) => a.provider === 'oauth_custom_acme').id;

    // Remove Acme: its row's menu, "Remove", then the confirmation card's "Remove".
    await accounts.filter({ has: page.locator('.cl-providerIcon__custom_acme') }).locator('.cl-menuButtonEllipsis').click();
    await page.click('.cl-menuItem:has-text("Remove")');
    const card = page.locator('.cl-actionCard');
    await card.waitFor();
    assert.match(await card.textContent(), /^Remove connected accountAcme will be removed from this account\./);
    await settled();
    await shot('UserProfile-remove-connected-account');
    await card.locator('.cl-formButtonPrimary:has-text("Remove")').click();
    await until('Acme no longer listed', () => document.querySelectorAll('.cl-profileSectionItem__connectedAccounts').length === 1);
    assert.deepEqual(await accounts.allTextContents(), [`Google• ${NEWCOMER.email}`]);
    await connect.waitFor(); // Acme may be connected again
    const calls = wire.slice(from).map((w) => `${w.method} ${w.path} ${w.status}`);
    assert.ok(calls.includes(`DELETE /v1/me/external_accounts/${acmeId} 200`), calls.join('\n'));
    const left = (await (await bapi(`/users/${userId}`)).json()).external_accounts;
    assert.deepEqual(left.map((a) => a.provider), ['oauth_google']);
  });
});

// Clerk's "Delete account" (the Security page's danger section, shown because latchkey's
// environment allows deleting and the user's delete_self_enabled is on): typed confirmation,
// then user.delete() (DELETE /v1/me) and a sign-out; latchkey no longer knows the person.
test('UserProfile: "Delete account" on the Security page deletes the account and signs the device out', async () => {
  const email = 'leaving@example.com';
  const created = await fetch(`${latchkey.url}/v1/users`, {
    method: 'POST',
    headers: { authorization: `Bearer ${latchkey.secretKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ email_address: [email], password: PASSWORD }),
  });
  assert.equal(created.status, 200, await created.clone().text());
  const userId = (await created.json()).id;
  await page.goto(`${app.origin}/`);
  await page.evaluate(() => window.clerkLoaded);
  if (await page.evaluate(() => Boolean(window.Clerk.user))) {
    await reloadsAfter('the sign-out', () => page.evaluate(() => {
      window.Clerk.signOut().catch((e) => console.error(`signOut: ${e}`));
    }));
  }
  // Signed in with the password just now: the recent check deleting needs.
  await page.evaluate(async ([identifier, password]) => {
    const attempt = await window.Clerk.client.signIn.create({ identifier, password });
    await window.Clerk.setActive({ session: attempt.createdSessionId });
  }, [email, PASSWORD]);
  await until('signed in as the leaver', () => window.Clerk.user?.primaryEmailAddress?.emailAddress === 'leaving@example.com');

  await mount('UserProfile');
  await page.getByRole('button', { name: 'Security' }).click();
  await page.getByRole('button', { name: 'Delete account' }).click();
  const confirm = page.locator('input[name=deleteConfirmation]');
  await confirm.waitFor();
  await settled();
  await shot('UserProfile-delete-account');
  const submit = page.locator('.cl-formButtonPrimary:has-text("Delete account")');
  await confirm.fill('Delete');
  assert.equal(await submit.isDisabled(), true, 'not until the words are typed');
  await confirm.fill('Delete account');
  const from = wire.length;
  await submit.click();
  const deadline = Date.now() + 30_000;
  while ((await fetch(`${latchkey.url}/v1/users/${userId}`, { headers: { authorization: `Bearer ${latchkey.secretKey}` } })).status !== 404) {
    assert.ok(Date.now() < deadline, 'the user is still there');
    await new Promise((r) => setTimeout(r, 50));
  }
  await until('the device signed out', () => window.Clerk?.user == null);
  assert.ok(wire.slice(from).some((w) => w.method === 'DELETE' && w.path === '/v1/me' && w.status === 200), 'DELETE /v1/me on the wire');
  await page.goto(`${app.origin}/`);
  await page.evaluate(() => window.clerkLoaded);
  assert.equal(await state(), 'signed out');
  await assert.rejects(signInThroughFrontendApi(latchkey.url, email, PASSWORD), /sign-in failed: 422/);
});

test('problems', () => assert.deepEqual(problems, []));
