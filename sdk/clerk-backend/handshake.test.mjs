// The handshake of server-rendered apps (docs/frontend-api.md §8), judged by the real
// @clerk/backend: `authenticateRequest` sends a navigation with stale cookies to latchkey's
// /v1/client/handshake (through Clerk's own Frontend API proxy, as @clerk/nextjs deploys it),
// latchkey answers with a single-use nonce, and the SDK trades it at
// /v1/clients/handshake_payload for cookie directives that sign the request in — once, with
// no second redirect. A browser without a client gets a signed handshake token instead (the
// signed-out directives, nothing stored).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClerkClient } from '@clerk/backend';
import { clerkFrontendApiProxy } from '@clerk/backend/proxy';
import { startLatchkey } from './latchkey.mjs';

const APP = 'http://127.0.0.1:3999'; // the app's origin; nothing listens there, requests are built by hand
const PROXY = `${APP}/__clerk`;
const password = 'correct horse battery staple';
let lk, clerk;

before(async () => {
  lk = await startLatchkey();
  clerk = createClerkClient({ secretKey: lk.secretKey, publishableKey: lk.publishableKey, apiUrl: lk.url });
});
after(() => lk?.stop());

// What the browser sends to the app's /__clerk path, forwarded by Clerk's own proxy code.
const viaProxy = (url, init = {}) =>
  clerkFrontendApiProxy(new Request(url, init), { publishableKey: lk.publishableKey, secretKey: lk.secretKey, fapiUrl: lk.url });

const cookieHeader = (setCookies) => setCookies.map((c) => c.split(';')[0]).filter((c) => !c.endsWith('=')).join('; ');
const named = (setCookies, name) => setCookies.map((c) => c.split(';')[0]).find((c) => c.startsWith(`${name}=`))?.slice(name.length + 1);

// A navigation of the app's page, as a browser makes it.
const navigation = (url, cookie) =>
  new Request(url, { headers: { 'sec-fetch-dest': 'document', accept: 'text/html', ...(cookie ? { cookie } : {}) } });

const authenticate = (request) => clerk.authenticateRequest(request, { proxyUrl: PROXY, authorizedParties: [APP] });

async function signedInBrowser(email) {
  await clerk.users.createUser({ emailAddress: [email], password });
  const res = await viaProxy(`${PROXY}/v1/client/sign_ins`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: APP, 'sec-fetch-site': 'same-origin' },
    body: new URLSearchParams({ identifier: email, password, strategy: 'password' }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const set = res.headers.getSetCookie();
  const body = await res.json();
  return { set, client: named(set, '__client'), uat: named(set, '__client_uat'), userId: body.client.sessions[0].user.id };
}

describe('handshake', () => {
  test('stale cookies → handshake → nonce → signed in, and the next request needs no handshake', async () => {
    const browser = await signedInBrowser('hs-ada@example.com');
    assert.ok(Number(browser.uat) > 0);
    // The app sees __client_uat but no __session: it must ask the Frontend API.
    const first = await authenticate(navigation(`${APP}/dashboard?tab=1`, `__client_uat=${browser.uat}`));
    assert.equal(first.status, 'handshake', first.reason);
    const handshakeUrl = new URL(first.headers.get('location'));
    assert.equal(handshakeUrl.origin + handshakeUrl.pathname, `${PROXY}/v1/client/handshake`);
    assert.equal(handshakeUrl.searchParams.get('format'), 'nonce');

    const hs = await viaProxy(handshakeUrl, { headers: { cookie: `__client=${browser.client}`, 'sec-fetch-dest': 'document' } });
    assert.equal(hs.status, 307);
    assert.equal(hs.headers.get('cache-control'), 'no-store');
    const back = new URL(hs.headers.get('location'));
    assert.equal(back.origin + back.pathname, `${APP}/dashboard`);
    assert.equal(back.searchParams.get('tab'), '1', 'the original query is kept');
    const nonce = back.searchParams.get('__clerk_handshake_nonce');
    assert.ok(nonce && nonce.length >= 40, 'a nonce, not the token, travels in the URL');
    assert.ok(!back.search.includes('eyJ'), 'no JWT in the URL');

    const resolved = await authenticate(navigation(back, `__client_uat=${browser.uat}`));
    assert.equal(resolved.status, 'signed-in', resolved.reason);
    assert.equal(resolved.toAuth().userId, browser.userId);
    const directives = resolved.headers.getSetCookie();
    assert.ok(named(directives, '__session'), 'the session cookie is set for the app');
    assert.ok(directives.some((c) => /^__session_[A-Za-z0-9_-]{8}=/.test(c)), 'and its suffixed twin');
    assert.ok(Number(named(directives, '__client_uat')) >= Number(browser.uat));

    // With the directives applied the next navigation is signed in at once: no loop.
    const next = await authenticate(navigation(`${APP}/dashboard`, cookieHeader(directives)));
    assert.equal(next.status, 'signed-in', next.reason);
    assert.equal(next.headers.get('location'), null);

    // The nonce works once.
    const again = await fetch(`${lk.url}/v1/clients/handshake_payload?nonce=${nonce}`, { headers: { authorization: `Bearer ${lk.secretKey}` } });
    assert.equal(again.status, 404);
    assert.equal((await again.json()).errors[0].code, 'resource_not_found');
  });

  test('a signed-out client: the directives clear the app cookies and the app stops asking', async () => {
    const browser = await signedInBrowser('hs-out@example.com');
    const out = await viaProxy(`${PROXY}/v1/client/sessions?_method=DELETE`, {
      method: 'POST',
      headers: { cookie: `__client=${browser.client}`, origin: APP, 'sec-fetch-site': 'same-origin' },
    });
    assert.equal(out.status, 200);
    const stale = `__client_uat=${browser.uat}`;
    const first = await authenticate(navigation(`${APP}/`, stale));
    assert.equal(first.status, 'handshake');
    const hs = await viaProxy(first.headers.get('location'), { headers: { cookie: `__client=${browser.client}` } });
    assert.equal(hs.status, 307);
    const resolved = await authenticate(navigation(hs.headers.get('location'), stale));
    assert.equal(resolved.status, 'signed-out');
    const directives = resolved.headers.getSetCookie();
    assert.equal(named(directives, '__client_uat'), '0');
    assert.ok(directives.some((c) => c.startsWith('__session=;') && /Max-Age=0/i.test(c)));
    const next = await authenticate(navigation(`${APP}/`, '__client_uat=0'));
    assert.equal(next.status, 'signed-out');
    assert.equal(next.headers.get('location'), null, 'no further handshake');
  });

  test('a browser without a client: a signed handshake token, nothing stored, and @clerk/backend signs it out', async () => {
    // Stale app cookies, but no __client at the Frontend API (cleared, or another browser).
    const stale = '__client_uat=1700000000';
    const first = await authenticate(navigation(`${APP}/page`, stale));
    assert.equal(first.status, 'handshake', first.reason);
    const hs = await viaProxy(first.headers.get('location'), { headers: { 'sec-fetch-dest': 'document' } });
    assert.equal(hs.status, 307);
    const back = new URL(hs.headers.get('location'));
    assert.equal(back.searchParams.get('__clerk_handshake_nonce'), null, 'no nonce: nothing was stored');
    assert.ok(back.searchParams.get('__clerk_handshake')?.startsWith('eyJ'), 'a signed token instead');
    // The real SDK verifies the token with latchkey's keys and applies the directives.
    const resolved = await authenticate(navigation(back, stale));
    assert.equal(resolved.status, 'signed-out', resolved.reason);
    const directives = resolved.headers.getSetCookie();
    assert.equal(named(directives, '__client_uat'), '0');
    assert.ok(directives.some((c) => c.startsWith('__session=;') && /Max-Age=0/i.test(c)));
    const next = await authenticate(navigation(`${APP}/page`, cookieHeader(directives)));
    assert.equal(next.status, 'signed-out');
    assert.equal(next.headers.get('location'), null, 'no further handshake');
  });

  test('the loop guard: after three handshakes in a row the SDK stops redirecting', async () => {
    const browser = await signedInBrowser('hs-loop@example.com');
    const stale = `__client_uat=${browser.uat}`;
    const looping = await authenticate(navigation(`${APP}/`, `${stale}; __clerk_redirect_count=3`));
    assert.notEqual(looping.status, 'handshake');
    assert.equal(looping.headers.get('location'), null);
    const counted = await authenticate(navigation(`${APP}/`, `${stale}; __clerk_redirect_count=1`));
    assert.equal(counted.status, 'handshake');
    assert.ok(counted.headers.getSetCookie().some((c) => c.startsWith('__clerk_redirect_count=2')));
  });

  test('organization sync: organization_id on the handshake activates it in the directives\' token', async () => {
    const browser = await signedInBrowser('hs-org@example.com');
    const org = await clerk.organizations.createOrganization({ name: 'Handshake Family', createdBy: browser.userId });
    const url = new URL(`${PROXY}/v1/client/handshake`);
    url.search = new URLSearchParams({ redirect_url: `${APP}/orgs/${org.slug}`, format: 'nonce', organization_id: org.slug }).toString();
    const hs = await viaProxy(url, { headers: { cookie: `__client=${browser.client}` } });
    assert.equal(hs.status, 307);
    const nonce = new URL(hs.headers.get('location')).searchParams.get('__clerk_handshake_nonce');
    const { directives } = await clerk.clients.getHandshakePayload({ nonce });
    const jwt = named(directives, '__session');
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url'));
    assert.equal(claims.o?.id, org.id);
  });

  test('behind an https app, every cookie latchkey sets through the proxy is Secure, directives included', async () => {
    const httpsProxy = 'https://app.example/__clerk';
    await clerk.users.createUser({ emailAddress: ['hs-tls@example.com'], password });
    const res = await viaProxy(`${httpsProxy}/v1/client/sign_ins`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://app.example', 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams({ identifier: 'hs-tls@example.com', password, strategy: 'password' }),
    });
    assert.equal(res.status, 200);
    const set = res.headers.getSetCookie();
    assert.ok(set.length >= 5, set.join('\n'));
    for (const c of set) assert.match(c, /; Secure/, c);
    const url = new URL(`${httpsProxy}/v1/client/handshake`);
    url.search = new URLSearchParams({ redirect_url: 'https://app.example/', format: 'nonce' }).toString();
    const hs = await viaProxy(url, { headers: { cookie: `__client=${named(set, '__client')}` } });
    assert.equal(hs.status, 307);
    const nonce = new URL(hs.headers.get('location')).searchParams.get('__clerk_handshake_nonce');
    const { directives } = await clerk.clients.getHandshakePayload({ nonce });
    assert.ok(named(directives, '__session'));
    for (const c of directives) assert.match(c, /; Secure/, c);
  });

  test('refused: an untrusted redirect_url, a proxy without the secret key, a missing nonce', async () => {
    const evil = new URL(`${PROXY}/v1/client/handshake`);
    evil.search = new URLSearchParams({ redirect_url: 'https://evil.example/steal', format: 'nonce' }).toString();
    const res = await viaProxy(evil);
    assert.equal(res.status, 422);
    const body = await res.json();
    assert.equal(body.errors[0].code, 'form_param_value_invalid');
    assert.equal(body.errors[0].meta.param_name, 'redirect_url');

    const direct = await fetch(`${lk.url}/v1/client/handshake?redirect_url=${encodeURIComponent(`${APP}/`)}`, { redirect: 'manual' });
    assert.equal(direct.status, 422, 'without the proxy, the app origin is not trusted');

    const forged = await fetch(`${lk.url}/v1/client/handshake?redirect_url=${encodeURIComponent(`${APP}/`)}`, {
      redirect: 'manual',
      headers: { 'clerk-proxy-url': PROXY, 'clerk-secret-key': 'sk_live_forged' },
    });
    assert.equal(forged.status, 401);
    assert.equal((await forged.json()).errors[0].code, 'proxy_request_invalid');

    const missing = await fetch(`${lk.url}/v1/clients/handshake_payload`, { headers: { authorization: `Bearer ${lk.secretKey}` } });
    assert.equal(missing.status, 422);
    assert.equal((await missing.json()).errors[0].meta.param_name, 'nonce');
    const anonymous = await fetch(`${lk.url}/v1/clients/handshake_payload?nonce=x`);
    assert.equal(anonymous.status, 401);
  });
});
