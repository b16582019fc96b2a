// Self-test of provider.mjs: drives it exactly the way the Rust integration tests will,
// with a plain HTTP client that keeps cookies and never follows a redirect to the client.
//
//   node crates/latchkey/tests/it/oidc/selftest.mjs          (OIDC_FIXTURE_VERBOSE=1 for its logs)
//
// Exits non-zero on any failure; its last line is "N passed, N failed".

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { once } from 'node:events';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

import * as jose from 'jose';

const here = path.dirname(fileURLToPath(import.meta.url));
const PROVIDER = path.join(here, 'provider.mjs');
const VERBOSE = !!process.env.OIDC_FIXTURE_VERBOSE;

const REDIRECT_URI = 'http://127.0.0.1:1234/v1/oauth_callback';
const CLIENT = { client_id: 'latchkey-test', client_secret: 'sekrit-0123456789', redirect_uris: [REDIRECT_URI] };
const ACCOUNTS = [
  { sub: 'g-1', email: 'a@example.com', email_verified: true, given_name: 'Ada', family_name: 'Lovelace', picture: 'http://127.0.0.1/x.png' },
  { sub: 'g-2', email: 'b@example.com', email_verified: false, given_name: 'Bob', family_name: 'Builder' },
];
const CONFIG = { clients: [CLIENT], accounts: ACCOUNTS };

// ---------------------------------------------------------------------------------------
// Child process
// ---------------------------------------------------------------------------------------

async function startProvider(config = CONFIG) {
  const child = spawn(process.execPath, [PROVIDER, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const logs = [];
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    logs.push(d);
    if (VERBOSE) process.stderr.write(d);
  });
  const lines = readline.createInterface({ input: child.stdout });
  const stdoutLines = [];
  const first = await Promise.race([
    new Promise((resolve) => {
      lines.on('line', (l) => {
        stdoutLines.push(l);
        if (stdoutLines.length === 1) resolve(l);
      });
    }),
    once(child, 'exit').then(([code]) => { throw new Error(`provider exited (${code}) before printing the issuer:\n${logs.join('')}`); }),
    new Promise((_, reject) => setTimeout(() => reject(new Error(`provider did not print its issuer in 20s:\n${logs.join('')}`)), 20000).unref()),
  ]);
  const { issuer } = JSON.parse(first);
  assert.match(issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.deepEqual(Object.keys(JSON.parse(first)), ['issuer'], 'the stdout line has only the issuer');
  return { child, issuer, logs, stdoutLines };
}

// ---------------------------------------------------------------------------------------
// A minimal cookie-keeping HTTP client (RFC 6265 path matching, no domain games: loopback)
// ---------------------------------------------------------------------------------------

class CookieJar {
  #cookies = new Map(); // `${name}\0${path}` -> { name, value, path }

  store(setCookies, requestUrl) {
    for (const sc of setCookies) {
      const [pair, ...attrs] = sc.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let cpath = new URL(requestUrl).pathname.replace(/\/[^/]*$/, '') || '/';
      let expired = false;
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        const key = k.toLowerCase();
        if (key === 'path') cpath = v || '/';
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      const id = `${name}\0${cpath}`;
      if (expired) this.#cookies.delete(id);
      else this.#cookies.set(id, { name, value, path: cpath });
    }
  }

  header(url) {
    const p = new URL(url).pathname;
    const matching = [...this.#cookies.values()]
      .filter((c) => p === c.path || p.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .sort((a, b) => b.path.length - a.path.length);
    return matching.map((c) => `${c.name}=${c.value}`).join('; ');
  }
}

async function get(url, jar) {
  const headers = {};
  const cookie = jar.header(url);
  if (cookie) headers.cookie = cookie;
  const res = await fetch(url, { redirect: 'manual', headers });
  jar.store(res.headers.getSetCookie(), url);
  await res.arrayBuffer();
  return res;
}

// Follows redirects from /auth (keeping cookies) until one points at the redirect_uri.
async function authorize(issuer, params, jar = new CookieJar()) {
  let url = `${issuer}/auth?${new URLSearchParams(params)}`;
  const chain = [];
  for (let i = 0; i < 10; i += 1) {
    const res = await get(url, jar);
    const location = res.headers.get('location');
    chain.push({ status: res.status, path: new URL(url).pathname.replace(/\/[A-Za-z0-9_-]{20,}$/, '/:uid'), location });
    if (!location) throw new Error(`no redirect from ${url}: ${res.status}; chain ${JSON.stringify(chain)}`);
    const next = new URL(location, url);
    if (next.href.startsWith(params.redirect_uri)) {
      return { callback: next, chain, jar };
    }
    url = next.href;
  }
  throw new Error(`too many redirects: ${JSON.stringify(chain)}`);
}

function pkcePair() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

function authParams(extra = {}) {
  return {
    client_id: CLIENT.client_id,
    response_type: 'code',
    scope: 'openid email profile',
    redirect_uri: REDIRECT_URI,
    state: crypto.randomBytes(8).toString('hex'),
    nonce: crypto.randomBytes(8).toString('hex'),
    ...extra,
  };
}

async function tokenRequest(disco, form, { auth = 'post', secret = CLIENT.client_secret } = {}) {
  const body = new URLSearchParams(form);
  const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (auth === 'post') {
    body.set('client_id', CLIENT.client_id);
    body.set('client_secret', secret);
  } else {
    const enc = (s) => encodeURIComponent(s);
    headers.authorization = `Basic ${Buffer.from(`${enc(CLIENT.client_id)}:${enc(secret)}`).toString('base64')}`;
  }
  const res = await fetch(disco.token_endpoint, { method: 'POST', headers, body });
  return { status: res.status, headers: res.headers, json: await res.json() };
}

async function control(issuer, body) {
  const res = await fetch(`${issuer}/__control`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200, `control ${JSON.stringify(body)}`);
  return res.json();
}

// Full flow: /auth -> code -> token. Returns everything a test might look at.
async function codeFlow(ctx, { hint, pkce = true, auth = 'post', jar } = {}) {
  const p = pkcePair();
  const params = authParams({
    ...(pkce ? { code_challenge: p.challenge, code_challenge_method: 'S256' } : {}),
    ...(hint ? { login_hint: hint } : {}),
  });
  const { callback, chain } = await authorize(ctx.issuer, params, jar);
  assert.equal(callback.searchParams.get('state'), params.state);
  const code = callback.searchParams.get('code');
  assert.ok(code, `no code in ${callback}`);
  const tok = await tokenRequest(ctx.disco, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: REDIRECT_URI,
    ...(pkce ? { code_verifier: p.verifier } : {}),
  }, { auth });
  return { params, callback, chain, code, tok, verifier: p.verifier };
}

async function verifyIdToken(ctx, idToken, nonce) {
  const { payload, protectedHeader } = await jose.jwtVerify(idToken, ctx.jwks, {
    issuer: ctx.issuer,
    audience: CLIENT.client_id,
    algorithms: ['RS256'],
  });
  if (payload.nonce !== nonce) {
    const err = new Error(`nonce mismatch: ${payload.nonce} !== ${nonce}`);
    err.code = 'NONCE_MISMATCH';
    throw err;
  }
  return { payload, protectedHeader };
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test('prints exactly one stdout line: the issuer', async (ctx) => {
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(ctx.stdoutLines.length, 1, `stdout lines: ${JSON.stringify(ctx.stdoutLines)}`);
});

test('discovery document and JWKS', async (ctx) => {
  const d = ctx.disco;
  assert.equal(d.issuer, ctx.issuer);
  assert.equal(d.authorization_endpoint, `${ctx.issuer}/auth`);
  assert.equal(d.token_endpoint, `${ctx.issuer}/token`);
  assert.equal(d.userinfo_endpoint, `${ctx.issuer}/me`);
  assert.equal(d.jwks_uri, `${ctx.issuer}/jwks`);
  assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
  for (const m of ['client_secret_post', 'client_secret_basic']) assert.ok(d.token_endpoint_auth_methods_supported.includes(m), m);
  assert.deepEqual(d.scopes_supported, ['openid', 'email', 'profile']);
  for (const c of ['email', 'email_verified', 'given_name', 'family_name', 'name', 'picture']) assert.ok(d.claims_supported.includes(c), c);
  assert.deepEqual(d.id_token_signing_alg_values_supported, ['RS256']);
  const jwks = await (await fetch(d.jwks_uri)).json();
  assert.equal(jwks.keys.length, 1);
  const [k] = jwks.keys;
  assert.equal(k.kty, 'RSA');
  assert.equal(k.alg, 'RS256');
  assert.equal(k.use, 'sig');
  assert.ok(k.kid);
  assert.equal(k.d, undefined, 'private part must not be published');
});

test('GET /__accounts returns the configured accounts', async (ctx) => {
  const res = await fetch(`${ctx.issuer}/__accounts`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), ACCOUNTS);
});

test('auth code + PKCE + client_secret_post: redirect chain, verified ID token, userinfo', async (ctx) => {
  const { params, callback, chain, tok } = await codeFlow(ctx);
  ctx.report.chain = chain;
  ctx.report.callback = callback.href.replace(/code=[^&]+/, 'code=…');
  assert.deepEqual(chain.map((c) => [c.status, c.path]), [[303, '/auth'], [303, '/interaction/:uid'], [303, '/auth/:uid']]);
  assert.equal(callback.origin + callback.pathname, REDIRECT_URI);
  assert.equal(callback.searchParams.get('iss'), ctx.issuer, 'RFC 9207 iss in the callback');
  assert.equal(tok.status, 200, JSON.stringify(tok.json));
  assert.equal(tok.json.token_type, 'Bearer');
  assert.ok(tok.json.access_token);
  assert.equal(tok.json.scope, 'openid email profile');
  const { payload, protectedHeader } = await verifyIdToken(ctx, tok.json.id_token, params.nonce);
  assert.equal(protectedHeader.alg, 'RS256');
  assert.equal(protectedHeader.kid, ctx.kid);
  assert.equal(payload.sub, 'g-1');
  assert.equal(payload.email, 'a@example.com');
  assert.equal(payload.email_verified, true);
  assert.equal(payload.given_name, 'Ada');
  assert.equal(payload.family_name, 'Lovelace');
  assert.equal(payload.name, 'Ada Lovelace');
  assert.equal(payload.picture, 'http://127.0.0.1/x.png');
  ctx.report.idTokenClaims = Object.keys(payload).sort().join(' ');
  const ui = await fetch(ctx.disco.userinfo_endpoint, { headers: { authorization: `Bearer ${tok.json.access_token}` } });
  assert.equal(ui.status, 200);
  assert.deepEqual(await ui.json(), {
    sub: 'g-1', email: 'a@example.com', email_verified: true, given_name: 'Ada', family_name: 'Lovelace', name: 'Ada Lovelace', picture: 'http://127.0.0.1/x.png',
  });
});

test('client_secret_basic without PKCE, login_hint picks the second account', async (ctx) => {
  const { params, tok } = await codeFlow(ctx, { hint: 'g-2', pkce: false, auth: 'basic' });
  assert.equal(tok.status, 200, JSON.stringify(tok.json));
  const { payload } = await verifyIdToken(ctx, tok.json.id_token, params.nonce);
  assert.equal(payload.sub, 'g-2');
  assert.equal(payload.email_verified, false);
  assert.equal(payload.picture, undefined);
});

test('login_hint may be an email', async (ctx) => {
  const { params, tok } = await codeFlow(ctx, { hint: 'b@example.com' });
  const { payload } = await verifyIdToken(ctx, tok.json.id_token, params.nonce);
  assert.equal(payload.sub, 'g-2');
});

test('a kept cookie jar does not short-circuit: each /auth logs in afresh by login_hint', async (ctx) => {
  const jar = new CookieJar();
  const flows = [['g-1', 'g-1'], [undefined, 'g-1'], ['g-2', 'g-2'], ['g-1', 'g-1'], [undefined, 'g-1']];
  for (const [hint, sub] of flows) {
    const f = await codeFlow(ctx, { hint, jar });
    assert.deepEqual(f.chain.map((c) => [c.status, c.path]), [[303, '/auth'], [303, '/interaction/:uid'], [303, '/auth/:uid']]);
    assert.equal(f.tok.status, 200, JSON.stringify(f.tok.json));
    assert.equal((await verifyIdToken(ctx, f.tok.json.id_token, f.params.nonce)).payload.sub, sub, `hint ${hint}`);
  }
  const deny = await authorize(ctx.issuer, authParams({ login_hint: 'deny' }), jar);
  assert.equal(deny.callback.searchParams.get('error'), 'access_denied');
  const none = await authorize(ctx.issuer, authParams({ prompt: 'none' }), jar);
  assert.equal(none.callback.searchParams.get('error'), 'login_required', 'prompt=none never has a session');
});

test('login_hint=deny ends in error=access_denied with state', async (ctx) => {
  const params = authParams({ login_hint: 'deny' });
  const { callback, chain } = await authorize(ctx.issuer, params);
  ctx.report.denyChain = chain;
  ctx.report.denyCallback = callback.href;
  assert.deepEqual(chain.map((c) => [c.status, c.path]), [[303, '/auth'], [303, '/interaction/:uid'], [303, '/auth/:uid']]);
  assert.equal(callback.searchParams.get('error'), 'access_denied');
  assert.equal(callback.searchParams.get('state'), params.state);
  assert.equal(callback.searchParams.get('code'), null);
});

test('unknown login_hint ends in access_denied', async (ctx) => {
  const { callback } = await authorize(ctx.issuer, authParams({ login_hint: 'nobody' }));
  assert.equal(callback.searchParams.get('error'), 'access_denied');
});

test('wrong PKCE verifier, replayed code, wrong secret and wrong redirect_uri are refused', async (ctx) => {
  const p = pkcePair();
  const params = authParams({ code_challenge: p.challenge, code_challenge_method: 'S256' });
  let { callback } = await authorize(ctx.issuer, params);
  let r = await tokenRequest(ctx.disco, { grant_type: 'authorization_code', code: callback.searchParams.get('code'), redirect_uri: REDIRECT_URI, code_verifier: pkcePair().verifier });
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'invalid_grant');

  const ok = await codeFlow(ctx);
  assert.equal(ok.tok.status, 200);
  r = await tokenRequest(ctx.disco, { grant_type: 'authorization_code', code: ok.code, redirect_uri: REDIRECT_URI, code_verifier: ok.verifier });
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'invalid_grant', 'code replay');

  ({ callback } = await authorize(ctx.issuer, params));
  r = await tokenRequest(ctx.disco, { grant_type: 'authorization_code', code: callback.searchParams.get('code'), redirect_uri: REDIRECT_URI, code_verifier: p.verifier }, { secret: 'wrong' });
  assert.equal(r.status, 401);
  assert.equal(r.json.error, 'invalid_client');

  const res = await fetch(`${ctx.issuer}/auth?${new URLSearchParams(authParams({ redirect_uri: 'http://127.0.0.1:9/evil' }))}`, { redirect: 'manual' });
  assert.equal(res.status, 400, 'unregistered redirect_uri is not redirected to');
  assert.equal((await res.json()).error, 'invalid_redirect_uri');

  // a code_challenge with the plain method is refused (S256 only)
  const plain = await authorize(ctx.issuer, authParams({ code_challenge: p.verifier, code_challenge_method: 'plain' }));
  assert.equal(plain.callback.searchParams.get('error'), 'invalid_request');
});

const TAMPER_EXPECTATIONS = {
  wrong_aud: (e) => e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && e.claim === 'aud',
  wrong_iss: (e) => e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && e.claim === 'iss',
  expired: (e) => e.code === 'ERR_JWT_EXPIRED' && e.claim === 'exp',
  wrong_nonce: (e) => e.code === 'NONCE_MISMATCH',
  bad_signature: (e) => e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  alg_none: (e) => e.code === 'ERR_JOSE_ALG_NOT_ALLOWED',
};

for (const [mode, expected] of Object.entries(TAMPER_EXPECTATIONS)) {
  test(`tamper=${mode}: next ID token fails verification for that reason, the one after is clean`, async (ctx) => {
    await control(ctx.issuer, { tamper: mode });
    const { params, tok } = await codeFlow(ctx);
    assert.equal(tok.status, 200);
    const header = jose.decodeProtectedHeader(tok.json.id_token);
    if (mode !== 'alg_none') assert.equal(header.kid, ctx.kid, 'same kid');
    let err;
    try {
      await verifyIdToken(ctx, tok.json.id_token, params.nonce);
    } catch (e) {
      err = e;
    }
    assert.ok(err, 'tampered token verified');
    assert.ok(expected(err), `wrong failure: ${err.code} ${err.claim ?? ''} ${err.message}`);
    ctx.report.tamper[mode] = `${err.code}${err.claim ? ` (${err.claim})` : ''}: ${err.message}`;
    if (mode === 'expired') {
      const p = jose.decodeJwt(tok.json.id_token);
      const now = Math.floor(Date.now() / 1000);
      assert.ok(p.exp <= now - 3590 && p.iat < p.exp, JSON.stringify(p));
    }
    const next = await codeFlow(ctx);
    await verifyIdToken(ctx, next.tok.json.id_token, next.params.nonce);
  });
}

test('tamper=none cancels a pending tamper; unknown modes are refused', async (ctx) => {
  await control(ctx.issuer, { tamper: 'wrong_aud' });
  assert.deepEqual(await control(ctx.issuer, { tamper: 'none' }), { tamper: null, down: false });
  const { params, tok } = await codeFlow(ctx);
  await verifyIdToken(ctx, tok.json.id_token, params.nonce);
  const res = await fetch(`${ctx.issuer}/__control`, { method: 'POST', body: JSON.stringify({ tamper: 'bogus' }) });
  assert.equal(res.status, 400);
});

test('down=true makes the token endpoint answer 503 until down=false', async (ctx) => {
  const p = pkcePair();
  const params = authParams({ code_challenge: p.challenge, code_challenge_method: 'S256' });
  const { callback } = await authorize(ctx.issuer, params);
  const form = { grant_type: 'authorization_code', code: callback.searchParams.get('code'), redirect_uri: REDIRECT_URI, code_verifier: p.verifier };
  await control(ctx.issuer, { down: true });
  const r1 = await tokenRequest(ctx.disco, form);
  assert.equal(r1.status, 503);
  assert.equal(r1.json.error, 'temporarily_unavailable');
  const r2 = await tokenRequest(ctx.disco, form);
  assert.equal(r2.status, 503);
  await control(ctx.issuer, { down: false });
  const r3 = await tokenRequest(ctx.disco, form);
  assert.equal(r3.status, 200, 'the code survived the outage');
  await verifyIdToken(ctx, r3.json.id_token, params.nonce);
});

test('with pkce_required, a request without code_challenge is refused', async () => {
  const other = await startProvider({ ...CONFIG, pkce_required: true });
  try {
    const { callback } = await authorize(other.issuer, authParams());
    assert.equal(callback.searchParams.get('error'), 'invalid_request');
    assert.match(callback.searchParams.get('error_description'), /PKCE/);
  } finally {
    other.child.kill('SIGTERM');
    await once(other.child, 'exit');
  }
});

test('exits 0 on SIGTERM', async () => {
  const other = await startProvider();
  const t0 = Date.now();
  other.child.kill('SIGTERM');
  const [code, signal] = await once(other.child, 'exit');
  assert.equal(signal, null);
  assert.equal(code, 0);
  assert.ok(Date.now() - t0 < 3000);
});

test('exits when stdin closes, even with a keep-alive connection open', async () => {
  const other = await startProvider();
  await fetch(`${other.issuer}/.well-known/openid-configuration`); // leaves a keep-alive socket
  const t0 = Date.now();
  other.child.stdin.end();
  const [code] = await once(other.child, 'exit');
  assert.equal(code, 0);
  assert.ok(Date.now() - t0 < 3000);
});

// ---------------------------------------------------------------------------------------

const ctx = { report: { tamper: {} } };
let passed = 0;
let failed = 0;
let main;
try {
  main = await startProvider();
  Object.assign(ctx, main);
  ctx.disco = await (await fetch(`${main.issuer}/.well-known/openid-configuration`)).json();
  ctx.jwks = jose.createRemoteJWKSet(new URL(ctx.disco.jwks_uri));
  ctx.kid = (await (await fetch(ctx.disco.jwks_uri)).json()).keys[0].kid;
  console.log(`provider at ${main.issuer}`);
  for (const { name, fn } of tests) {
    try {
      await fn(ctx);
      passed += 1;
      console.log(`ok - ${name}`);
    } catch (err) {
      failed += 1;
      console.log(`not ok - ${name}\n  ${String(err.stack ?? err).split('\n').join('\n  ')}`);
    }
  }
} catch (err) {
  failed += 1;
  console.log(`not ok - setup\n  ${err.stack ?? err}`);
}
if (main) {
  main.child.kill('SIGTERM');
  await once(main.child, 'exit');
}
if (failed && main && !VERBOSE) console.log(`--- provider stderr ---\n${main.logs.join('')}`);
if (ctx.report.chain) {
  console.log('\nredirect chain (login):', ctx.report.chain.map((c) => `${c.status} ${c.path}`).join(' -> '), '->', ctx.report.callback);
  console.log('redirect chain (deny): ', (ctx.report.denyChain ?? []).map((c) => `${c.status} ${c.path}`).join(' -> '), '->', ctx.report.denyCallback);
  console.log('ID token claims:', ctx.report.idTokenClaims);
  for (const [m, e] of Object.entries(ctx.report.tamper)) console.log(`tamper ${m}: ${e}`);
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
