// examples/nextjs-clerk5 — the seeds' SDK generation: @clerk/nextjs 5.7 with
// `authMiddleware({ publicRoutes })`, synchronous `auth()` and `auth().protect()`, on Next.js 14
// with its clerk-js 5 bundle self-hosted (pinned in the example's own package.json) — built,
// started against a fresh latchkey and used in Debian's Chromium: sign-up in <SignUp/>, the
// protected routes signed out (401 from the middleware, redirect to sign-in for a page) and
// signed in (403 from the handlers, 404 from auth().protect()), and a server-rendered page after
// the legacy handshake (docs/frontend-api.md §8, "The legacy form").
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, startLatchkey, mailbox } from '../clerk-backend/latchkey.mjs';
import { launchBrowser, recordWire } from '../clerk-js/browser.mjs';
import { callApi, root, runNext } from '../clerk-nextjs/next-app.mjs';

const appDir = resolve(root, 'examples/nextjs-clerk5');
const artifacts = resolve(root, 'target/artifacts/clerk-nextjs5');
mkdirSync(artifacts, { recursive: true });
const EMAIL = 'ada@example.com';
const PASSWORD = 'correct horse battery staple';

// @clerk/backend 1.x reads the organization from Clerk's v1 claims only.
const CONFIG = `
[organizations]
v1_token_claims = true
`;

let latchkey, next, tls, browser, page, wire, origin;
const problems = [];
const refusals = [];
const call = (method, path, options) => callApi(page, method, path, options);

// The app over https, as in production: @clerk/backend 1.x always sends the handshake to an
// https URL (`https://` + the proxy's host). A TLS front of its own certificate forwards to
// `next start`, telling it the scheme and host the browser used.
async function httpsFront(appPort) {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-tls-'));
  const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
  const server = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    const headers = { ...req.headers, 'x-forwarded-proto': 'https', 'x-forwarded-host': req.headers.host };
    const upstream = httpRequest({ host: 'localhost', port: appPort, path: req.url, method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode, r.rawHeaders);
      r.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise((ok) => server.listen(0, 'localhost', ok));
  rmSync(dir, { recursive: true, force: true });
  return server;
}

before(async () => {
  latchkey = await startLatchkey({ config: CONFIG });
  // The clerk-js 5 bundle @clerk/nextjs 5 loads (NEXT_PUBLIC_CLERK_JS_URL), self-hosted.
  rmSync(resolve(appDir, 'public/clerk-js'), { recursive: true, force: true });
  cpSync(resolve(appDir, 'node_modules/@clerk/clerk-js/dist'), resolve(appDir, 'public/clerk-js'), { recursive: true });
  const port = await freePort();
  tls = await httpsFront(port);
  origin = `https://localhost:${tls.address().port}`;
  const env = {
    NEXT_TELEMETRY_DISABLED: '1',
    NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY: latchkey.publishableKey,
    CLERK_SECRET_KEY: latchkey.secretKey,
    CLERK_API_URL: latchkey.url,
    CLERK_FAPI_URL: latchkey.url, // where the app's /__clerk route forwards (middleware.js)
    NEXT_PUBLIC_CLERK_PROXY_URL: `${origin}/__clerk`,
    NEXT_PUBLIC_CLERK_JS_URL: '/clerk-js/clerk.browser.js',
    NEXT_PUBLIC_CLERK_TELEMETRY_DISABLED: '1',
    NEXT_PUBLIC_CLERK_SIGN_IN_URL: '/sign-in',
    NEXT_PUBLIC_CLERK_SIGN_UP_URL: '/sign-up',
    PORT: String(port),
  };
  await runNext(appDir, ['build'], env, { timeoutMs: 600_000, nextRoot: appDir });
  next = (await runNext(appDir, ['start', '-H', 'localhost', '-p', String(port)], env, { until: /Ready|started server/i, timeoutMs: 60_000, nextRoot: appDir })).child;
  browser = await launchBrowser({ ignoreHTTPSErrors: true });
  page = await browser.context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  wire = recordWire(page);
  // Refusals of the Frontend API, with their bodies, for the failure messages.
  page.on('response', async (r) => {
    if (r.status() >= 400 && new URL(r.url()).pathname.startsWith('/__clerk/')) {
      refusals.push(`${r.status()} ${new URL(r.url()).pathname} (${r.request().postData() ?? ''}): ${await r.text().catch(() => '')}`);
    }
  });
});

after(async () => {
  await browser?.close();
  next?.kill('SIGTERM');
  tls?.close();
  await latchkey?.stop();
});

test('signed out: public routes answer, authMiddleware says 401 for the API and sends pages to sign-in', async () => {
  await page.goto(`${origin}/`);
  assert.equal(await page.textContent('#home-user'), 'signed out');
  assert.deepEqual(await call('GET', '/api/public/health'), { status: 200, json: { ok: true } });
  for (const [method, path] of [['GET', '/api/items'], ['POST', '/api/items'], ['DELETE', '/api/items'], ['GET', '/api/admin/stats']]) {
    const res = await call(method, path, { body: method === 'POST' ? { name: 'x' } : undefined });
    assert.equal(res.status, 401, `${method} ${path}`);
  }
  // A public route whose handler checks auth() itself.
  assert.deepEqual(await call('GET', '/api/orgs/org_x/data'), { status: 401, json: { error: 'Unauthorized' } });
  const res = await page.goto(`${origin}/dashboard`);
  assert.match(new URL(page.url()).pathname, /^\/sign-in/, `redirected to sign-in, got ${page.url()} (${res.status()})`);
});

test('sign-up in clerk-js 5’s <SignUp/> through the app’s /__clerk route, then the routes signed in', async () => {
  await page.goto(`${origin}/sign-up`);
  await page.waitForSelector('input[name=emailAddress]', { timeout: 30_000 });
  await page.fill('input[name=emailAddress]', EMAIL);
  await page.fill('input[name=password]', PASSWORD);
  const inbox = await mailbox(latchkey.url, EMAIL);
  await page.click('button:has-text("Continue")');
  // clerk-js 5 shows six one-digit inputs: the whole code goes into the first, which spreads it
  // over the others as a paste would.
  const codeInput = await page.waitForSelector('input[autocomplete=one-time-code], input[name^=codeInput]', { timeout: 30_000 });
  await page.screenshot({ path: `${artifacts}/SignUp-code.png` });
  await codeInput.fill(await inbox.code());
  await page
    .waitForFunction((email) => window.Clerk?.user?.primaryEmailAddress?.emailAddress === email, EMAIL, { timeout: 30_000 })
    .catch(async (e) => {
      await page.screenshot({ path: `${artifacts}/SignUp-stuck.png` });
      throw new Error(`${e.message}\nwire: ${JSON.stringify(wire.slice(-8))}\nrefused: ${refusals.join('\n')}`);
    });
  assert.ok(wire.some((w) => w.path === '/v1/client/sign_ups' && w.status === 200), 'the Frontend API went through /__clerk');
  const userId = await page.evaluate(() => window.Clerk.user.id);

  assert.deepEqual(await call('GET', '/api/items'), { status: 200, json: { items: [] } });
  const created = await call('POST', '/api/items', { body: { name: 'bottle' } });
  assert.equal(created.status, 201);
  assert.equal(created.json.userId, userId, 'scoped by the caller');
  assert.equal((await call('GET', '/api/items', { signedOut: true })).status, 401);
  // Signed in without the right: the handler's 403, auth().protect()'s 404.
  assert.deepEqual(await call('DELETE', '/api/items'), { status: 403, json: { error: 'Forbidden' } });
  assert.equal((await call('GET', '/api/orgs/org_someone_else/data')).status, 403);
  assert.equal((await call('GET', '/api/admin/stats')).status, 404, 'auth().protect({ role }) hides it from a non-admin');
});

test('with an organization active: has({ role }), the org-scoped route and auth().protect({ role }) pass', async () => {
  const orgId = await page.evaluate(async () => {
    const o = await window.Clerk.createOrganization({ name: 'Ada Family' });
    await window.Clerk.setActive({ organization: o.id });
    return o.id;
  });
  assert.deepEqual(await call('GET', `/api/orgs/${orgId}/data`), { status: 200, json: { organizationId: orgId, data: [] } });
  assert.deepEqual(await call('GET', '/api/admin/stats'), { status: 200, json: { orgId, orgRole: 'org:admin' } });
  assert.deepEqual(await call('DELETE', '/api/items'), { status: 200, json: { success: true } });
  await page.evaluate(() => window.Clerk.setActive({ organization: null }));
});

test('a server-rendered page shows the user after the legacy handshake, with no loop', async () => {
  const userId = await page.evaluate(() => window.Clerk.user.id);
  await page.goto('about:blank');
  await browser.context.clearCookies({ name: /^__session/ });
  const navigations = [];
  const handshakeCookies = [];
  const onResponse = async (r) => {
    if (new URL(r.url()).pathname !== '/__clerk/v1/client/handshake') return;
    const set = (await r.headersArray()).filter((h) => h.name.toLowerCase() === 'set-cookie').map((h) => h.value);
    handshakeCookies.push(...set.filter((c) => c.startsWith('__clerk_handshake=')));
  };
  page.on('request', (r) => r.isNavigationRequest() && navigations.push(r.url()));
  page.on('response', onResponse);
  await page.goto(`${origin}/dashboard`);
  await page.waitForSelector('#server-user');
  page.off('response', onResponse);
  assert.equal(await page.textContent('#server-user'), `${userId} ${EMAIL}`);
  const handshake = navigations.map((u) => new URL(u)).find((u) => u.pathname === '/__clerk/v1/client/handshake');
  assert.ok(handshake, navigations.join('\n'));
  assert.equal(handshake.searchParams.get('format'), null, '@clerk/nextjs 5 asks for the legacy form');
  assert.equal(handshakeCookies.length, 1, 'the token came in a cookie');
  assert.ok(navigations.every((u) => !u.includes('__clerk_handshake=')), 'and not in a URL');
  assert.ok(navigations.length <= 4, `no redirect loop: ${navigations.join('\n')}`);
  const cookies = await browser.context.cookies(origin);
  assert.ok(cookies.some((c) => c.name === '__session' && c.value), 'the handshake set __session again');
  assert.ok(!cookies.some((c) => c.name === '__clerk_handshake'), 'and the handshake cookie is gone');
  await page.screenshot({ path: `${artifacts}/dashboard.png` });
});

test('no page errors', () => assert.deepEqual(problems, []));
