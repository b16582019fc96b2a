// BabyLog's "Continue with Google" (latchkey-js signInWith / handleRedirectCallback) in Debian's
// Chromium, against a fresh latchkey whose [oauth.google] preset has its issuer replaced by the
// loopback OpenID Provider of latchkey's Rust tests (npm oidc-provider, started by
// sdk/clerk-js/oidc-provider.mjs). The provider logs in whoever `loginHint` names: the test adds
// it to the authorization request on its way there ("deny" makes the provider answer
// access_denied). Screenshots land in target/artifacts/babylog/.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser } from '../../sdk/clerk-js/browser.mjs';
import { mailbox, startLatchkey } from '../../sdk/clerk-backend/latchkey.mjs';
import { loopbackClient, startOpenIdProvider } from '../../sdk/clerk-js/oidc-provider.mjs';

const PASSWORD = 'correct horse battery staple';
const ARTIFACTS = resolve(import.meta.dirname, '../../target/artifacts/babylog');
mkdirSync(ARTIFACTS, { recursive: true });

// The provider's people. It vouches for the first two addresses (the first has an account here
// already), not for the third's.
const EXISTING = { sub: 'g-grace', email: 'grace@example.com', email_verified: true, given_name: 'Grace', family_name: 'Hopper' };
const NEWCOMER = { sub: 'g-nell', email: 'nell@example.com', email_verified: true, given_name: 'Nell', family_name: 'Noether' };
const UNVOUCHED = { sub: 'g-hedy', email: 'hedy@example.com', email_verified: false, given_name: 'Hedy' };

let provider, lk, plain;
let loginHint;
const browsers = [];
const pageErrors = [];

before(async () => {
  provider = await startOpenIdProvider({ clients: [loopbackClient('google-client', 'google-secret')], accounts: [EXISTING, NEWCOMER, UNVOUCHED] });
  lk = await startLatchkey({
    config: ['[oauth.google]', 'client_id = "google-client"', 'client_secret = "google-secret"', `issuer = "${provider.issuer}"`, ''].join('\n'),
  });
});
after(async () => {
  for (const b of browsers) await b.close().catch(() => undefined);
  await lk?.stop();
  await plain?.stop();
  await provider?.stop();
});

/** A new browser profile with BabyLog of `instance` open; the provider logs in `loginHint`. */
async function openApp(instance = lk) {
  const browser = await launchBrowser();
  browsers.push(browser);
  const { context } = browser;
  await context.route(
    (url) => url.origin === provider.issuer && url.pathname === '/auth' && !url.searchParams.has('login_hint'),
    (route) => {
      const to = new URL(route.request().url());
      to.searchParams.set('login_hint', loginHint);
      return route.fulfill({ status: 303, headers: { location: to.href } });
    },
  );
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  if (process.env.BABYLOG_DEBUG) {
    page.on('console', (m) => console.log(`[console] ${m.text()}`));
    page.on('response', (r) => console.log(`[http] ${r.status()} ${r.request().method()} ${r.url()}`));
  }
  await page.goto(`${instance.url}/`);
  await ready(page);
  return { browser, context, page };
}

const ready = (page) => page.waitForSelector('body[data-ready="true"]', { state: 'attached', timeout: 30_000 });
const upToDate = (page) => page.waitForSelector('#banner[hidden]', { state: 'attached', timeout: 30_000 });

const backend = async (path, init = {}) => {
  const res = await fetch(`${lk.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${lk.secretKey}`, 'content-type': 'application/json' },
  });
  const body = await res.json();
  assert.equal(res.status, 200, `${path}: ${res.status} ${JSON.stringify(body)}`);
  return body;
};

/** What the server holds for a user (the Backend API's export of the personal space). */
async function serverRecords(email) {
  const [user] = await backend(`/v1/users?email_address=${encodeURIComponent(email)}`);
  assert.ok(user, `no user ${email}`);
  return (await backend(`/v1/users/${user.id}/sync_export`)).tables;
}

/** The sessions of the browser's client, as latchkey's Frontend API tells the page. */
const sessionsOf = (page) =>
  page.evaluate(async () => {
    const body = await (await fetch('/v1/client', { credentials: 'include' })).json();
    return body.response?.sessions?.length ?? 0;
  });

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

/**
 * Clicks "Continue with Google" as the provider's person `who` and follows the browser there and
 * back: the URL of the BabyLog page latchkey's callback sent the browser to (the first page of
 * latchkey's origin the tab commits after the provider; BabyLog may then drop its callback
 * parameter), once BabyLog has loaded there and finished. (Once BabyLog's service worker controls
 * the tab, Chromium follows the callback's 303 inside the worker's fetch and reports the callback
 * as a 200, so the redirect is read from where the tab landed, not from the callback's answer.)
 */
async function continueWithGoogle(page, who) {
  loginHint = who;
  const button = page.locator('#providers button', { hasText: 'Continue with Google' });
  await button.waitFor();
  const committed = [];
  const onNavigated = (frame) => frame === page.mainFrame() && committed.push(frame.url());
  page.on('framenavigated', onNavigated);
  const callback = page.waitForRequest((r) => r.url().startsWith(`${lk.url}/v1/oauth_callback?`), { timeout: 30_000 });
  const loaded = page.waitForEvent('load', { timeout: 30_000 });
  callback.catch(() => {});
  loaded.catch(() => {});
  await button.click();
  await callback;
  await loaded;
  await ready(page);
  page.off('framenavigated', onNavigated);
  const landed = committed.map((u) => new URL(u)).find((u) => u.origin === lk.url);
  assert.ok(landed, `the tab never came back to latchkey's origin: ${committed.join(', ')}`);
  return landed;
}

test('without a provider configured, BabyLog offers none (only the email link, on by default)', async () => {
  plain = await startLatchkey();
  const { page } = await openApp(plain);
  await page.locator('#sign-in').waitFor();
  await page.locator('#email-link').waitFor();
  assert.equal(await page.locator('#providers button').count(), 0);
});

test('a newcomer: "Continue with Google", back at the callback, the transfer signs them up; entries from before and after reach the server', async () => {
  const { page } = await openApp();
  await page.locator('#sign-in-with').waitFor();
  assert.deepEqual(await page.locator('#providers button').allTextContents(), ['Continue with Google']);
  await page.screenshot({ path: join(ARTIFACTS, 'continue-with-google.png'), fullPage: true });
  // Written before signing in: the app works signed out.
  await addBaby(page, 'Nora');

  const transfer = page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === '/v1/client/sign_ups', { timeout: 30_000 });
  transfer.catch(() => {});
  const sentTo = await continueWithGoogle(page, NEWCOMER.sub);
  // Nobody to sign in at the callback: back to BabyLog's callback page, which takes it over.
  assert.equal(sentTo.href, `${lk.url}/?sso-callback`);
  assert.match((await transfer).postData(), /(^|&)transfer=true(&|$)/);
  await page.locator('#who', { hasText: NEWCOMER.email }).waitFor();
  assert.equal(new URL(page.url()).search, '', 'the callback parameter is gone from the address');
  assert.equal(await page.isHidden('#sign-in-with'), true);
  assert.equal(await page.locator('#sign-in').count(), 0);

  await page.locator('#babies [role=radio]', { hasText: 'Nora' }).waitFor();
  await logBottle(page, 90);
  await upToDate(page);
  const server = await serverRecords(NEWCOMER.email);
  assert.deepEqual(server.babies.map((b) => b.fields.name), ['Nora']);
  assert.deepEqual(server.feeds.map((f) => f.fields.amount_ml), [90]);

  // The account: the address the provider vouched for, verified, and the provider's names.
  const [user] = await backend(`/v1/users?email_address=${encodeURIComponent(NEWCOMER.email)}`);
  assert.equal(user.email_addresses[0].verification.status, 'verified');
  assert.deepEqual([user.first_name, user.last_name], [NEWCOMER.given_name, NEWCOMER.family_name]);
});

test('an existing account (made with the Backend API) signs in with Google and sees its data', async () => {
  await backend('/v1/users', { method: 'POST', body: JSON.stringify({ email_address: [EXISTING.email], password: PASSWORD }) });
  // Its data, written in another browser signed in with the password.
  const first = await openApp();
  await first.page.goto(`${lk.url}/sign-in?redirect_url=%2F`);
  await first.page.fill('#identifier', EXISTING.email);
  await first.page.fill('#password', PASSWORD);
  await first.page.click('button.primary[type=submit]');
  await first.page.waitForURL(`${lk.url}/`);
  await ready(first.page);
  await first.page.locator('#who', { hasText: EXISTING.email }).waitFor();
  await addBaby(first.page, 'Grace junior');
  await logBottle(first.page, 150);
  await upToDate(first.page);
  assert.equal((await serverRecords(EXISTING.email)).feeds.length, 1);

  const { page } = await openApp();
  const sentTo = await continueWithGoogle(page, EXISTING.sub);
  // Signed in at the callback: straight back to the app.
  assert.equal(sentTo.href, `${lk.url}/`);
  await page.locator('#who', { hasText: EXISTING.email }).waitFor();
  await page.locator('#babies [role=radio]', { hasText: 'Grace junior' }).waitFor({ timeout: 30_000 });
  await page.locator('#timeline button', { hasText: 'Bottle · 150 ml' }).waitFor({ timeout: 30_000 });
  await upToDate(page);
  // One account for the address: the provider's joined it.
  assert.equal((await backend(`/v1/users?email_address=${encodeURIComponent(EXISTING.email)}`)).length, 1);
});

test('a newcomer whose address the provider does not vouch for: BabyLog asks for the emailed code, then signs them in', async () => {
  const { page } = await openApp();
  const inbox = await mailbox(lk.url, UNVOUCHED.email);
  const sentTo = await continueWithGoogle(page, UNVOUCHED.sub);
  assert.equal(sentTo.href, `${lk.url}/?sso-callback`);
  await page.locator('#provider-code-input').waitFor();
  assert.match(await page.textContent('#sign-in-message'), new RegExp(`emailed a code to ${UNVOUCHED.email.replace('.', '\\.')}`));
  assert.equal(await page.locator('#providers button').count(), 0, 'the buttons give way to the code');
  assert.equal(await page.locator('#who').count(), 0, 'not signed in before the address is proven');
  await page.screenshot({ path: join(ARTIFACTS, 'google-email-code.png'), fullPage: true });
  const code = await inbox.code();
  await page.fill('#provider-code-input', code === '000000' ? '111111' : '000000');
  await page.click('#provider-code button[type=submit]');
  await page.locator('#sign-in-message[data-kind="error"]').waitFor();
  await page.fill('#provider-code-input', code);
  await page.click('#provider-code button[type=submit]');
  await page.locator('#who', { hasText: UNVOUCHED.email }).waitFor();
  assert.equal(await page.isHidden('#sign-in-with'), true);
  await addBaby(page, 'Hedda');
  await upToDate(page);
  assert.deepEqual((await serverRecords(UNVOUCHED.email)).babies.map((b) => b.fields.name), ['Hedda']);
});

test('the provider answers access_denied: BabyLog says so and nobody is signed in', async () => {
  const { page } = await openApp();
  const sentTo = await continueWithGoogle(page, 'deny');
  assert.equal(sentTo.href, `${lk.url}/?sso-callback`);
  const note = page.locator('#sign-in-message', { hasText: 'Sign-in with Google was cancelled' });
  await note.waitFor();
  assert.equal(
    (await note.textContent()).trim(),
    'Sign-in with Google was cancelled: access was not granted at Google. You are not signed in.',
  );
  await page.screenshot({ path: join(ARTIFACTS, 'google-access-denied.png'), fullPage: true });
  await page.locator('#sign-in').waitFor();
  assert.equal(await page.locator('#who').count(), 0);
  assert.equal(await sessionsOf(page), 0);
  await page.locator('#banner', { hasText: 'Sign in to sync' }).waitFor();
  // The way in is still offered.
  assert.equal(await page.locator('#providers button', { hasText: 'Continue with Google' }).count(), 1);
});

test('no page errors in any of the above', () => {
  assert.deepEqual(pageErrors, []);
});
