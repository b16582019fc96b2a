// "Continue with <provider>" in latchkey-js: socialProviders(), signInWith() and
// handleRedirectCallback(), in Node against a fresh latchkey whose [oauth.google] preset (and a
// custom provider) point at the loopback OpenID Provider of latchkey's Rust tests (npm
// oidc-provider, started by sdk/clerk-js/oidc-provider.mjs). The browser's part — following the
// redirects with its cookies — is played by a cookie jar shared by both loopback servers (a
// browser's cookies belong to the host, whatever the port). BabyLog does the same in Chromium.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Auth, LatchkeyError } from '../dist/index.js';
import { startLatchkey, mailbox } from '../../../../sdk/clerk-backend/latchkey.mjs';
import { loopbackClient, startOpenIdProvider } from '../../../../sdk/clerk-js/oidc-provider.mjs';

// The provider's people. It vouches for the first three addresses, not for the fourth's.
const EXISTING = { sub: 'g-grace', email: 'js-grace@example.com', email_verified: true, given_name: 'Grace', family_name: 'Hopper' };
const NEWCOMER = { sub: 'g-ada', email: 'js-ada-g@example.com', email_verified: true, given_name: 'Ada', family_name: 'Lovelace' };
const CLOSED = { sub: 'g-barbara', email: 'js-barbara@example.com', email_verified: true, given_name: 'Barbara' };
const UNVOUCHED = { sub: 'g-hedy', email: 'js-hedy@example.com', email_verified: false, given_name: 'Hedy' };

let provider, lk, plain;
const opened = [];

before(async () => {
  provider = await startOpenIdProvider({
    clients: [loopbackClient('google-client', 'google-secret'), loopbackClient('acme-client', 'acme-secret')],
    accounts: [EXISTING, NEWCOMER, CLOSED, UNVOUCHED],
  });
  lk = await startLatchkey({
    config: [
      '[rate_limits]',
      'per_ip_per_minute = 300',
      '',
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
      'sign_up = false',
      '',
    ].join('\n'),
  });
  plain = await startLatchkey();
});
after(async () => {
  for (const a of opened) a.close();
  await lk?.stop();
  await plain?.stop();
  await provider?.stop();
});

/**
 * A browser: one cookie jar for both loopback servers, an `Auth` whose requests carry it (with
 * the page's Origin), and `follow(url, who)`, which walks the redirects from the provider's
 * authorization URL (logging in `who`: the provider's `login_hint`) back to latchkey's callback
 * and on, until a page of the app (the URL it returns).
 */
function browser(url = lk.url) {
  const jar = new Map();
  const keep = (res) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const at = pair.indexOf('=');
      const name = pair.slice(0, at).trim();
      const value = pair.slice(at + 1);
      if (value === '' || /max-age=0\b/i.test(c)) jar.delete(name);
      else jar.set(name, value);
    }
  };
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const jarFetch = async (input, init = {}) => {
    const res = await fetch(input, { ...init, headers: { ...init.headers, origin: url, cookie: cookie() } });
    keep(res);
    return res;
  };
  const sentTo = [];
  const open = () => {
    const auth = new Auth({ baseUrl: url, fetch: jarFetch, navigate: (to) => sentTo.push(to), channelName: `test:${Math.random()}` });
    opened.push(auth);
    return auth;
  };
  async function follow(start, who) {
    const first = new URL(start);
    first.searchParams.set('login_hint', who);
    let at = first.href;
    for (let hops = 0; hops < 10; hops++) {
      const res = await fetch(at, { redirect: 'manual', headers: { cookie: cookie() } });
      keep(res);
      const location = res.headers.get('location');
      if (res.status !== 303 && res.status !== 302) {
        throw new Error(`${at} answered ${res.status} without a redirect: ${await res.text()}`);
      }
      at = new URL(location, at).href;
      const next = new URL(at);
      if (next.origin === url && next.pathname !== '/v1/oauth_callback') return next;
    }
    throw new Error(`still redirecting at ${at}`);
  }
  return { auth: open(), open, follow, sentTo };
}

const APP = () => ({ redirectUrl: `${lk.url}/?sso-callback`, redirectUrlComplete: `${lk.url}/` });

const backend = async (path, init = {}) => {
  const res = await fetch(`${lk.url}/v1${path}`, {
    ...init,
    headers: { authorization: `Bearer ${lk.secretKey}`, 'content-type': 'application/json' },
  });
  const body = await res.json();
  assert.equal(res.status, 200, `${path}: ${JSON.stringify(body)}`);
  return body;
};

/** Starts "Continue with <strategy>" as `who` and comes back: the page the browser landed on. */
async function continueWith(b, strategy, who) {
  const url = await b.auth.signInWith(strategy, APP());
  assert.deepEqual(b.sentTo, [url], 'the browser was sent to the provider');
  assert.ok(url.startsWith(`${provider.issuer}/auth?`), url);
  return b.follow(url, who);
}

describe('identity providers', () => {
  test('socialProviders: the enabled providers with their names; none when none is configured', async () => {
    const { auth } = browser();
    const providers = await auth.socialProviders();
    assert.deepEqual(
      providers.map((p) => [p.strategy, p.name]).sort(),
      [['oauth_custom_acme', 'Acme'], ['oauth_google', 'Google']],
    );
    assert.deepEqual(await browser(plain.url).auth.socialProviders(), []);
  });

  test('signInWith: a strategy latchkey does not offer is refused, and the browser stays', async () => {
    const b = browser();
    await assert.rejects(
      b.auth.signInWith('oauth_github', APP()),
      (e) => e instanceof LatchkeyError && e.status === 422 && e.code === 'strategy_for_user_invalid',
    );
    await assert.rejects(
      b.auth.signInWith('oauth_google', { redirectUrl: 'https://elsewhere.example/cb' }),
      (e) => e instanceof LatchkeyError && e.code === 'form_param_format_invalid' && e.paramName === 'redirect_url',
    );
    assert.deepEqual(b.sentTo, []);
  });

  test('handleRedirectCallback: nothing to finish on a fresh client', async () => {
    const { auth } = browser();
    assert.deepEqual(await auth.handleRedirectCallback(), { status: 'none' });
    assert.equal(auth.isSignedIn, false);
  });

  test('an account whose verified address the provider vouches for: signed in at the callback, back at redirectUrlComplete', async () => {
    const user = await backend('/users', { method: 'POST', body: JSON.stringify({ email_address: [EXISTING.email] }) });
    const b = browser();
    const landed = await continueWith(b, 'oauth_google', EXISTING.sub);
    assert.equal(landed.href, `${lk.url}/`);
    // The app's page loads the client as it always does; the callback page would say the same.
    await b.auth.load();
    assert.equal(b.auth.user?.id, user.id);
    assert.equal(b.auth.user?.emailAddress, EXISTING.email);
    assert.deepEqual(await b.auth.handleRedirectCallback(), { status: 'signed-in', strategy: 'oauth_google' });
    const claims = JSON.parse(Buffer.from((await b.auth.getToken()).split('.')[1], 'base64url'));
    assert.equal(claims.sub, user.id);
  });

  test('a newcomer the provider vouches for: back at redirectUrl, the transfer makes the account and signs in', async () => {
    const b = browser();
    const landed = await continueWith(b, 'oauth_google', NEWCOMER.sub);
    assert.equal(landed.href, `${lk.url}/?sso-callback`);
    const page = b.open(); // the callback page is a new page load
    const seen = [];
    page.onChange(() => seen.push(page.isSignedIn));
    const result = await page.handleRedirectCallback();
    assert.deepEqual(result, { status: 'signed-in', strategy: 'oauth_google' });
    assert.equal(seen.at(-1), true, 'listeners heard the sign-in');
    assert.equal(page.user.emailAddress, NEWCOMER.email);
    assert.deepEqual([page.user.firstName, page.user.lastName], [NEWCOMER.given_name, NEWCOMER.family_name]);
    const [user] = await backend(`/users?email_address=${encodeURIComponent(NEWCOMER.email)}`);
    assert.equal(user.id, page.user.id);
    assert.equal(user.email_addresses[0].verification.status, 'verified');
    // Handled once: a reload of the page finds the session.
    assert.deepEqual(await b.open().handleRedirectCallback(), { status: 'signed-in', strategy: 'oauth_google' });
  });

  test('a newcomer whose address the provider does not vouch for: the mailed code, then verifyEmailCode signs in (after a reload too)', async () => {
    const b = browser();
    const landed = await continueWith(b, 'oauth_google', UNVOUCHED.sub);
    assert.equal(landed.href, `${lk.url}/?sso-callback`);
    const inbox = await mailbox(lk.url, UNVOUCHED.email);
    const result = await b.open().handleRedirectCallback();
    assert.deepEqual(result, { status: 'needs-email-code', strategy: 'oauth_google', emailAddress: UNVOUCHED.email });
    const code = await inbox.code();
    // The page reloaded before the code was typed: the sign-up is found again.
    const reloaded = b.open();
    assert.deepEqual(await reloaded.handleRedirectCallback(), result);
    assert.equal(reloaded.isSignedIn, false);
    await assert.rejects(reloaded.verifyEmailCode(code === '000000' ? '111111' : '000000'), (e) => e.code === 'form_code_incorrect');
    await reloaded.verifyEmailCode(code);
    assert.equal(reloaded.isSignedIn, true);
    assert.equal(reloaded.user.emailAddress, UNVOUCHED.email);
  });

  test('the provider answers access_denied: failed with oauth_access_denied, nobody signed in', async () => {
    const b = browser();
    const landed = await continueWith(b, 'oauth_google', 'deny');
    assert.equal(landed.href, `${lk.url}/?sso-callback`);
    const page = b.open();
    const result = await page.handleRedirectCallback();
    assert.equal(result.status, 'failed', JSON.stringify(result));
    assert.equal(result.strategy, 'oauth_google');
    assert.equal(result.error.code, 'oauth_access_denied');
    assert.ok(result.error.message.length > 0);
    assert.equal(page.isSignedIn, false);
  });

  test('a provider with sign_up = false: a newcomer is refused as a result, and no account is made', async () => {
    const b = browser();
    const landed = await continueWith(b, 'oauth_custom_acme', CLOSED.sub);
    assert.equal(landed.href, `${lk.url}/?sso-callback`);
    const page = b.open();
    const result = await page.handleRedirectCallback();
    assert.equal(result.status, 'failed', JSON.stringify(result));
    assert.equal(result.strategy, 'oauth_custom_acme');
    assert.equal(result.error.code, 'oauth_sign_up_disabled');
    assert.equal(page.isSignedIn, false);
    assert.deepEqual(await backend(`/users?email_address=${encodeURIComponent(CLOSED.email)}`), []);
  });
});
