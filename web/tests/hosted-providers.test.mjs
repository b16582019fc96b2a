// latchkey's hosted pages with identity providers, in Debian's Chromium (driven by playwright-core),
// without a line of JavaScript on the pages: "Continue with <name>" on /sign-in and /sign-up, and
// "Connected accounts" on /user (docs/identity-providers.md, "The hosted pages", "On the user",
// "Connecting an account"). A fresh latchkey has two providers on the same loopback OpenID
// Provider (npm oidc-provider, started by sdk/clerk-js/oidc-provider.mjs) with two clients: the
// [oauth.google] preset with its issuer replaced, and [oauth.acme], a custom OpenID Connect
// issuer named "Acme". The provider logs in whoever `loginHint` names: the test adds it to the
// authorization request on its way there ("deny" makes the provider answer access_denied).
//
// One browser for the file: the scenarios follow one another in it, as one person and then
// another at the same computer. What the page shows is checked against what the server holds
// (the Backend API). Screenshots land in target/artifacts/hosted/.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser } from '../../sdk/clerk-js/browser.mjs';
import { startLatchkey } from '../../sdk/clerk-backend/latchkey.mjs';
import { loopbackClient, startOpenIdProvider } from '../../sdk/clerk-js/oidc-provider.mjs';

const PASSWORD = 'correct horse battery staple';
const ARTIFACTS = resolve(import.meta.dirname, '../../target/artifacts/hosted');
mkdirSync(ARTIFACTS, { recursive: true });

// The provider's people, both vouched for. The first has an account here already (made with
// the Backend API); the second is new.
const EXISTING = { sub: 'p-grace', email: 'grace@example.com', email_verified: true, given_name: 'Grace', family_name: 'Hopper' };
const NEWCOMER = { sub: 'p-nell', email: 'nell@example.com', email_verified: true, given_name: 'Nell', family_name: 'Noether' };

const GOOGLE = 'oauth_google';
const ACME = 'oauth_custom_acme';
const DENIED = 'You did not grant access to your account at the provider.';

let provider, lk, browser, page;
let loginHint;
let existingId;
const pageErrors = [];

before(async () => {
  provider = await startOpenIdProvider({
    clients: [loopbackClient('google-client', 'google-secret'), loopbackClient('acme-client', 'acme-secret')],
    accounts: [EXISTING, NEWCOMER],
  });
  lk = await startLatchkey({
    config: [
      '[oauth.google]',
      'client_id = "google-client"',
      'client_secret = "google-secret"',
      `issuer = "${provider.issuer}"`,
      '',
      '[oauth.acme]',
      `issuer = "${provider.issuer}"`,
      'client_id = "acme-client"',
      'client_secret = "acme-secret"',
      'name = "Acme"',
      '',
    ].join('\n'),
  });
  browser = await launchBrowser();
  const { context } = browser;
  page = context.pages()[0] ?? (await context.newPage());
  // The provider logs in whoever the test names. The hosted pages' forms answer with a 303 to
  // the provider, and Playwright's `route` sees only the first request of a redirect chain, so
  // the hint is added with Chromium's own interception (the DevTools protocol's Fetch domain),
  // which pauses every request of the chain: an authorization request without a hint is
  // answered with a 303 to the same URL with it.
  const cdp = await context.newCDPSession(page);
  cdp.on('Fetch.requestPaused', async ({ requestId, request }) => {
    const url = new URL(request.url);
    try {
      if (url.pathname === '/auth' && !url.searchParams.has('login_hint')) {
        url.searchParams.set('login_hint', loginHint);
        await cdp.send('Fetch.fulfillRequest', { requestId, responseCode: 303, responseHeaders: [{ name: 'Location', value: url.href }] });
      } else {
        await cdp.send('Fetch.continueRequest', { requestId });
      }
    } catch (e) {
      pageErrors.push(`interception of ${request.url}: ${e}`);
    }
  });
  await cdp.send('Fetch.enable', { patterns: [{ urlPattern: `${provider.issuer}/auth*`, requestStage: 'Request' }] });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  if (process.env.HOSTED_DEBUG) {
    page.on('response', (r) => console.log(`[http] ${r.status()} ${r.request().method()} ${r.url()}`));
  }
});
after(async () => {
  if (process.env.HOSTED_DEBUG) console.log(provider?.log());
  await browser?.close().catch(() => undefined);
  await lk?.stop();
  await provider?.stop();
});

const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

const backend = async (path, init = {}) => {
  const res = await fetch(`${lk.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${lk.secretKey}`, 'content-type': 'application/json' },
  });
  const body = await res.json();
  assert.equal(res.status, 200, `${init.method ?? 'GET'} ${path}: ${res.status} ${JSON.stringify(body)}`);
  return body;
};

/** The users the Backend API finds with `email`. */
const usersWith = (email) => backend(`/v1/users?email_address=${encodeURIComponent(email)}`);

/** The user's external accounts as the Backend API shows them: [strategy, provider's id, address], sorted. */
async function externalAccounts(userId) {
  const user = await backend(`/v1/users/${userId}`);
  return user.external_accounts.map((a) => [a.provider, a.provider_user_id, a.email_address]).sort();
}

/**
 * Clicks `button` and waits for the tab to land on another page of latchkey's origin (the
 * provider's hops are all redirects, so only the last page commits). Returns the navigation's
 * answers in order, each `{ status, method, url, location }`; a tab that never comes back fails
 * with that trail.
 */
async function click(button, { who } = {}) {
  if (who !== undefined) loginHint = who;
  const trail = [];
  const onResponse = (r) => {
    if (r.frame() !== page.mainFrame() || !r.request().isNavigationRequest()) return;
    trail.push({ status: r.status(), method: r.request().method(), url: r.url(), location: r.headers().location });
  };
  page.on('response', onResponse);
  const from = page.url();
  try {
    await Promise.all([
      page.waitForURL((u) => u.origin === lk.url && u.href !== from, { waitUntil: 'load', timeout: 30_000 }),
      button.click(),
    ]);
  } catch (e) {
    const said = trail.map((t) => `  ${t.status} ${t.method} ${t.url}${t.location ? ` -> ${t.location}` : ''}`).join('\n');
    throw new Error(`${e.message}\nthe navigation's answers:\n${said}`);
  } finally {
    page.off('response', onResponse);
  }
  if (who !== undefined) {
    // The provider was asked to log in the person named (the interception above worked).
    const hints = trail
      .map((t) => new URL(t.url))
      .filter((u) => u.origin === provider.issuer && u.pathname === '/auth' && u.searchParams.has('login_hint'))
      .map((u) => u.searchParams.get('login_hint'));
    assert.deepEqual(hints, [who], `the authorization request names ${who}: ${JSON.stringify(trail, null, 1)}`);
  }
  return trail;
}

/** The answer of latchkey's `/v1/oauth_callback` in a trail (exactly one). */
function callbackOf(trail) {
  const hits = trail.filter((t) => new URL(t.url).origin === lk.url && new URL(t.url).pathname === '/v1/oauth_callback');
  assert.equal(hits.length, 1, `one callback in ${JSON.stringify(trail, null, 1)}`);
  return hits[0];
}

/** Where the browser was sent to first (the answer of the form post): the provider's /auth. */
function sentToProvider(trail) {
  const [post] = trail;
  assert.equal(post.method, 'POST');
  assert.equal(post.status, 303);
  const to = new URL(post.location);
  assert.equal(`${to.origin}${to.pathname}`, `${provider.issuer}/auth`);
  return to.searchParams;
}

const path = () => {
  const u = new URL(page.url());
  return `${u.pathname}${u.search}`;
};

const accountsSection = () => page.locator('section[aria-labelledby="accounts-h"]');
/** "Connected accounts" as the page lists them: "<provider name> <address>", sorted. */
async function listedAccounts() {
  await accountsSection().waitFor();
  const names = await accountsSection().locator('ul.items > li > span:first-child').allInnerTexts();
  return names.map((n) => n.replace(/\s+/g, ' ').trim()).sort();
}
const connectButtons = () => accountsSection().locator('form.provider button').allInnerTexts();
const notice = () => page.locator('.alert.ok[role=status]');
const alert = () => page.locator('.alert.error[role=alert]');

/** The /user page, signed in as `email`. */
async function signedInAs(email) {
  assert.equal(await page.locator('h1').innerText(), 'Your account');
  await page.locator('section[aria-labelledby="email-h"] li', { hasText: email }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Sign out', exact: true }).first().isVisible(), true);
}

test('an existing user (made with the Backend API) clicks "Continue with Google" on /sign-in and lands signed in on /user', async () => {
  const created = await backend('/v1/users', {
    method: 'POST',
    body: JSON.stringify({ email_address: [EXISTING.email], password: PASSWORD }),
  });
  existingId = created.id;
  assert.equal(created.email_addresses[0].verification.status, 'verified');
  assert.deepEqual(await externalAccounts(existingId), []);

  await page.goto(`${lk.url}/sign-in`);
  const buttons = page.locator('form.provider button');
  assert.deepEqual((await buttons.allInnerTexts()).sort(), ['Continue with Acme', 'Continue with Google']);
  await shot('sign-in');

  const trail = await click(page.getByRole('button', { name: 'Continue with Google' }), { who: EXISTING.sub });
  const asked = sentToProvider(trail);
  assert.equal(asked.get('client_id'), 'google-client');
  // Signed in at the callback: straight to /user (no redirect_url given), not the SSO callback page.
  assert.deepEqual([callbackOf(trail).status, callbackOf(trail).location], [303, '/user']);
  assert.equal(path(), '/user');
  await signedInAs(EXISTING.email);
  assert.deepEqual(await listedAccounts(), [`Google ${EXISTING.email}`]);
  await shot('signed-in-with-google');

  // The server: one user for the address, the provider's account joined to it.
  assert.deepEqual((await usersWith(EXISTING.email)).map((u) => u.id), [existingId]);
  assert.deepEqual(await externalAccounts(existingId), [[GOOGLE, EXISTING.sub, EXISTING.email]]);
});

test('on /user: Google is listed; "Connect Acme" connects a second account, "Remove" takes it away; a refusal at the provider adds nothing', async () => {
  await page.goto(`${lk.url}/user`);
  assert.equal(path(), '/user');
  await page.getByRole('heading', { name: 'Connected accounts' }).waitFor();
  assert.deepEqual(await listedAccounts(), [`Google ${EXISTING.email}`]);
  assert.deepEqual(await connectButtons(), ['Connect Acme']);

  // Connecting Acme: to the provider (Acme's client) and back to /user.
  let trail = await click(page.getByRole('button', { name: 'Connect Acme' }), { who: EXISTING.sub });
  assert.equal(sentToProvider(trail).get('client_id'), 'acme-client');
  assert.deepEqual([callbackOf(trail).status, callbackOf(trail).location], [303, '/user?notice=account_connected']);
  assert.equal(path(), '/user?notice=account_connected');
  assert.equal(await notice().innerText(), 'Account connected.');
  assert.deepEqual(await listedAccounts(), [`Acme ${EXISTING.email}`, `Google ${EXISTING.email}`]);
  assert.deepEqual(await connectButtons(), [], 'every provider is connected');
  await shot('user-acme-connected');
  assert.deepEqual(await externalAccounts(existingId), [
    [ACME, EXISTING.sub, EXISTING.email],
    [GOOGLE, EXISTING.sub, EXISTING.email],
  ]);

  // Removing Acme.
  const acme = accountsSection().locator('ul.items > li').filter({ hasText: /^\s*Acme\b/ });
  assert.equal(await acme.count(), 1);
  trail = await click(acme.getByRole('button', { name: 'Remove' }));
  assert.deepEqual(
    trail.map((t) => [t.method, new URL(t.url).pathname.replace(/\/eac_[^/]+\//, '/eac_…/'), t.status, t.location]),
    [
      ['POST', '/user/accounts/eac_…/delete', 303, '/user?notice=account_removed'],
      ['GET', '/user', 200, undefined],
    ],
  );
  assert.equal(path(), '/user?notice=account_removed');
  assert.equal(await notice().innerText(), 'Account disconnected.');
  assert.deepEqual(await listedAccounts(), [`Google ${EXISTING.email}`]);
  assert.deepEqual(await connectButtons(), ['Connect Acme']);
  await shot('user-acme-removed');
  assert.deepEqual(await externalAccounts(existingId), [[GOOGLE, EXISTING.sub, EXISTING.email]]);

  // Refused at the provider: back to /user saying so, nothing added.
  trail = await click(page.getByRole('button', { name: 'Connect Acme' }), { who: 'deny' });
  assert.equal(sentToProvider(trail).get('client_id'), 'acme-client');
  const back = callbackOf(trail);
  assert.equal(new URL(back.url).searchParams.get('error'), 'access_denied');
  assert.deepEqual([back.status, back.location], [303, '/user?connect_error=oauth_access_denied']);
  assert.equal(path(), '/user?connect_error=oauth_access_denied');
  assert.equal(await alert().innerText(), DENIED);
  assert.equal(await notice().count(), 0);
  assert.deepEqual(await listedAccounts(), [`Google ${EXISTING.email}`]);
  assert.deepEqual(await connectButtons(), ['Connect Acme']);
  await shot('user-connect-denied');
  assert.deepEqual(await externalAccounts(existingId), [[GOOGLE, EXISTING.sub, EXISTING.email]]);
  // Still signed in.
  await signedInAs(EXISTING.email);
});

test('a newcomer clicks "Continue with Google" on /sign-up: the SSO callback takes the attempt over, the account is made and /user shows them signed in with Google connected', async () => {
  // The previous person signs out of this browser.
  await page.goto(`${lk.url}/user`);
  await click(page.getByRole('button', { name: 'Sign out', exact: true }));
  assert.equal(path(), '/sign-in?notice=signed_out');
  assert.equal(await notice().innerText(), 'You have been signed out.');
  assert.deepEqual(await usersWith(NEWCOMER.email), []);

  const target = '/user?from=sign-up';
  await page.goto(`${lk.url}/sign-up?redirect_url=${encodeURIComponent(target)}`);
  assert.deepEqual((await page.locator('form.provider button').allInnerTexts()).sort(), ['Continue with Acme', 'Continue with Google']);
  await shot('sign-up');

  const trail = await click(page.getByRole('button', { name: 'Continue with Google' }), { who: NEWCOMER.sub });
  assert.equal(sentToProvider(trail).get('client_id'), 'google-client');
  // Nobody to sign in at the callback: to the hosted SSO callback page (redirect_url kept),
  // which makes the account and sends the browser on to redirect_url.
  const sso = `/sign-in/sso-callback?redirect_url=${encodeURIComponent(target)}`;
  assert.deepEqual([callbackOf(trail).status, callbackOf(trail).location], [303, sso]);
  const afterCallback = trail.slice(trail.indexOf(callbackOf(trail)) + 1).map((t) => {
    const u = new URL(t.url);
    return [t.status, `${u.pathname}${u.search}`, t.location];
  });
  assert.deepEqual(afterCallback, [
    [303, sso, target],
    [200, target, undefined],
  ]);
  assert.equal(path(), target);
  await signedInAs(NEWCOMER.email);
  assert.deepEqual(await listedAccounts(), [`Google ${NEWCOMER.email}`]);
  assert.deepEqual(await connectButtons(), ['Connect Acme']);
  assert.equal(await page.inputValue('#first_name'), NEWCOMER.given_name);
  assert.equal(await page.inputValue('#last_name'), NEWCOMER.family_name);
  await shot('signed-up-with-google');

  // The server: a new user with the address the provider vouched for, verified, its names, and
  // the provider's account; the other person is untouched.
  const [user, ...others] = await usersWith(NEWCOMER.email);
  assert.deepEqual(others, []);
  assert.notEqual(user.id, existingId);
  assert.equal(user.email_addresses[0].email_address, NEWCOMER.email);
  assert.equal(user.email_addresses[0].verification.status, 'verified');
  assert.deepEqual([user.first_name, user.last_name], [NEWCOMER.given_name, NEWCOMER.family_name]);
  assert.deepEqual(await externalAccounts(user.id), [[GOOGLE, NEWCOMER.sub, NEWCOMER.email]]);
  assert.deepEqual(await externalAccounts(existingId), [[GOOGLE, EXISTING.sub, EXISTING.email]]);
});

test('no page errors, nor failed interceptions, in any of the above', () => {
  assert.deepEqual(pageErrors, []);
});
