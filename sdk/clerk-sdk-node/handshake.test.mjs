// The legacy handshake (docs/frontend-api.md §8, "The legacy form"), judged by the 1.x-generation
// @clerk/backend that @clerk/clerk-sdk-node 5.1.6 brings: its `authenticateRequest` sends a
// navigation with stale cookies to /v1/client/handshake with no `format`, through the app's
// /__clerk path forwarded the way Clerk's v5 documentation has apps do it (Clerk-Proxy-Url and
// Clerk-Secret-Key added). latchkey answers with a signed `__clerk_handshake` token in a cookie
// of the app's origin; the SDK verifies it with latchkey's keys and signs the request in, and the
// directives delete the cookie.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startLatchkey } from '../clerk-backend/latchkey.mjs';

const APP = 'http://127.0.0.1:3998'; // the app's origin; nothing listens there, requests are built by hand
const PROXY = `${APP}/__clerk`;
const password = 'correct horse battery staple';
let lk, clerk;

before(async () => {
  lk = await startLatchkey();
  const sdk = await import('@clerk/clerk-sdk-node');
  clerk = sdk.createClerkClient({ secretKey: lk.secretKey, publishableKey: lk.publishableKey, apiUrl: lk.url });
});
after(() => lk?.stop());

// The app's /__clerk route: the path after /__clerk goes to latchkey with the proxy's headers.
async function viaProxy(url, init = {}) {
  const u = new URL(url);
  assert.ok(u.pathname.startsWith('/__clerk/'), `${u.pathname} is not the proxy path`);
  const headers = new Headers(init.headers);
  headers.set('clerk-proxy-url', PROXY);
  headers.set('clerk-secret-key', lk.secretKey);
  headers.set('x-forwarded-for', '127.0.0.1');
  return fetch(`${lk.url}${u.pathname.slice('/__clerk'.length)}${u.search}`, { ...init, headers, redirect: 'manual' });
}

const cookieHeader = (setCookies) => setCookies.map((c) => c.split(';')[0]).filter((c) => !c.endsWith('=')).join('; ');
const named = (setCookies, name) => setCookies.map((c) => c.split(';')[0]).find((c) => c.startsWith(`${name}=`))?.slice(name.length + 1);

const navigation = (url, cookie) =>
  new Request(url, { headers: { 'sec-fetch-dest': 'document', accept: 'text/html', ...(cookie ? { cookie } : {}) } });

const authenticate = (request) => clerk.authenticateRequest(request, { proxyUrl: PROXY, authorizedParties: [APP] });

async function signedInBrowser(email) {
  const user = await clerk.users.createUser({ emailAddress: [email], password });
  const res = await viaProxy(`${PROXY}/v1/client/sign_ins`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: APP, 'sec-fetch-site': 'same-origin' },
    body: new URLSearchParams({ identifier: email, password, strategy: 'password' }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const set = res.headers.getSetCookie();
  return { client: named(set, '__client'), uat: named(set, '__client_uat'), userId: user.id };
}

describe('legacy handshake (@clerk/backend 1.x)', () => {
  test('stale cookies → handshake without format → token cookie → signed in, cookie deleted, no loop', async () => {
    const browser = await signedInBrowser('legacy-ada@example.com');
    const stale = `__client_uat=${browser.uat}`;
    const first = await authenticate(navigation(`${APP}/dashboard?tab=1`, stale));
    assert.equal(first.status, 'handshake', first.reason);
    const handshakeUrl = new URL(first.headers.get('location'));
    assert.equal(handshakeUrl.pathname, '/__clerk/v1/client/handshake');
    assert.equal(handshakeUrl.searchParams.get('format'), null, 'the 1.x generation asks for no format');

    const hs = await viaProxy(handshakeUrl, { headers: { cookie: `__client=${browser.client}`, 'sec-fetch-dest': 'document' } });
    assert.equal(hs.status, 307, await hs.clone().text());
    const back = new URL(hs.headers.get('location'));
    assert.equal(`${back.origin}${back.pathname}${back.search}`, `${APP}/dashboard?tab=1`, 'nothing in the URL');
    const handshakeCookie = hs.headers.getSetCookie().find((c) => c.startsWith('__clerk_handshake='));
    assert.ok(handshakeCookie, `no handshake cookie: ${hs.headers.getSetCookie()}`);
    assert.match(handshakeCookie, /HttpOnly/);

    // The browser comes back with the cookie; the real SDK verifies the token and signs in.
    const resolved = await authenticate(navigation(back, `${stale}; ${handshakeCookie.split(';')[0]}`));
    assert.equal(resolved.status, 'signed-in', resolved.reason);
    assert.equal(resolved.toAuth().userId, browser.userId);
    const directives = resolved.headers.getSetCookie();
    assert.ok(named(directives, '__session'), 'the session cookie is set for the app');
    assert.ok(directives.some((c) => c.startsWith('__clerk_handshake=;') && /Max-Age=0/i.test(c)), 'and the handshake cookie deleted');

    const next = await authenticate(navigation(`${APP}/dashboard`, cookieHeader(directives)));
    assert.equal(next.status, 'signed-in', next.reason);
    assert.equal(next.headers.get('location'), null, 'no second handshake');
  });

  test('a forged handshake token is not applied by the SDK', async () => {
    const browser = await signedInBrowser('legacy-eve@example.com');
    const first = await authenticate(navigation(`${APP}/`, `__client_uat=${browser.uat}`));
    const hs = await viaProxy(first.headers.get('location'), { headers: { cookie: `__client=${browser.client}` } });
    const token = hs.headers.getSetCookie().find((c) => c.startsWith('__clerk_handshake=')).split(';')[0].split('=')[1];
    const [h, p, s] = token.split('.');
    const payload = JSON.parse(Buffer.from(p, 'base64url'));
    payload.handshake = payload.handshake.map((d) => d.replace(/^__client_uat=\d+/, '__client_uat=9999999999'));
    const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    // The SDK logs the bad signature and judges the request by its cookies alone: not signed in,
    // none of the forged directives applied, and it asks the Frontend API again.
    const r = await authenticate(navigation(`${APP}/`, `__client_uat=${browser.uat}; __clerk_handshake=${forged}`));
    assert.equal(r.status, 'handshake', r.reason);
    assert.ok(!r.headers.getSetCookie().some((c) => c.startsWith('__client_uat=9999999999')), r.headers.getSetCookie().join());
  });

  test('a browser without a client: the signed-out token in the URL, nothing stored', async () => {
    const stale = '__client_uat=1700000000';
    const first = await authenticate(navigation(`${APP}/page`, stale));
    assert.equal(first.status, 'handshake', first.reason);
    const hs = await viaProxy(first.headers.get('location'), { headers: { 'sec-fetch-dest': 'document' } });
    assert.equal(hs.status, 307);
    const back = new URL(hs.headers.get('location'));
    assert.ok(back.searchParams.get('__clerk_handshake')?.startsWith('eyJ'));
    const resolved = await authenticate(navigation(back, stale));
    assert.equal(resolved.status, 'signed-out', resolved.reason);
    assert.equal(named(resolved.headers.getSetCookie(), '__client_uat'), '0');
  });

  test('a handshake to an untrusted redirect_url is refused, with no cookie', async () => {
    const browser = await signedInBrowser('legacy-mallory@example.com');
    const hs = await viaProxy(`${PROXY}/v1/client/handshake?redirect_url=${encodeURIComponent('https://evil.example/x')}`, {
      headers: { cookie: `__client=${browser.client}` },
    });
    assert.equal(hs.status, 422);
    assert.equal((await hs.json()).errors[0].code, 'form_param_value_invalid');
    assert.deepEqual(hs.headers.getSetCookie(), []);
  });
});
