// examples/nextjs-clerk — a Next.js App Router app on unmodified @clerk/nextjs (pinned in the
// root package.json) — built and started against a fresh latchkey, then used in Debian's
// Chromium: sign-up in <SignUp/>, every seed route handler signed in and signed out, the
// middleware's auth.protect(), a server-rendered page after a handshake, and a route that needs
// a recent check of the factors (has({ reverification }), reverificationErrorResponse, the
// check through clerk-js). Only environment variables point it at latchkey, plus
// `frontendApiProxy: { enabled: true }`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, startLatchkey, mailbox } from '../clerk-backend/latchkey.mjs';
import { launchBrowser, recordWire } from '../clerk-js/browser.mjs';
import { callApi, copyClerkBundles, nextEnvironment, root, runNext } from './next-app.mjs';

const appDir = resolve(root, 'examples/nextjs-clerk');
const artifacts = resolve(root, 'target/artifacts/clerk-nextjs');
mkdirSync(artifacts, { recursive: true });
const EMAIL = 'grace@example.com';
const PASSWORD = 'correct horse battery staple';
const CONFIG = `
[[organizations.roles]]
key = "billing"
name = "Billing"
permissions = ["org:invoices:create"]
`;

let latchkey, next, browser, page, wire, origin;
const problems = [];

const decode = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
// A call of the app's API from the page, with the browser's cookies or without any.
const call = (method, path, options) => callApi(page, method, path, options);

before(async () => {
  latchkey = await startLatchkey({ config: CONFIG });
  copyClerkBundles(appDir);
  const port = await freePort();
  // `next start -H 127.0.0.1` makes Next's own internal requests to localhost fail; /etc/hosts
  // maps localhost to 127.0.0.1 only, so the app listens on loopback either way.
  origin = `http://localhost:${port}`;
  const env = nextEnvironment(latchkey, port);
  await runNext(appDir, ['build'], env, { timeoutMs: 600_000 });
  next = (await runNext(appDir, ['start', '-H', 'localhost', '-p', String(port)], env, { until: /Ready|started server/i, timeoutMs: 60_000 })).child;
  browser = await launchBrowser();
  page = await browser.context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  wire = recordWire(page);
});

after(async () => {
  await browser?.close();
  next?.kill('SIGTERM');
  await latchkey?.stop();
});

test('signed out: public routes answer, route handlers say 401, auth.protect() sends to sign-in', async () => {
  await page.goto(`${origin}/`);
  assert.equal(await page.textContent('#home-user'), 'signed out');
  assert.deepEqual(await call('GET', '/api/public/health'), { status: 200, json: { ok: true } });
  for (const [method, path] of [['GET', '/api/items'], ['POST', '/api/items'], ['DELETE', '/api/items'], ['GET', '/api/orgs/org_x/data'], ['POST', '/api/invoices'], ['POST', '/api/sensitive']]) {
    const res = await call(method, path, { body: method === 'POST' ? { name: 'x' } : undefined });
    assert.equal(res.status, 401, `${method} ${path}`);
    assert.deepEqual(res.json, { error: 'Unauthorized' });
  }
  // clerkMiddleware's auth.protect() with nobody signed in: @clerk/nextjs 7.9 on Next 16
  // treats the request as a page request and redirects it to sign-in (Clerk's code decides
  // this, not latchkey); a signed-in caller without the role gets 404 (next test).
  const plain = await fetch(`${origin}/api/admin/stats`, { redirect: 'manual' });
  assert.equal(plain.status, 307);
  assert.equal(new URL(plain.headers.get('location'), origin).pathname, '/sign-in');
  const res = await page.goto(`${origin}/dashboard`);
  assert.match(new URL(page.url()).pathname, /^\/sign-in/, `redirected to sign-in, got ${page.url()} (${res.status()})`);
});

test('sign-up in <SignUp/> through the /__clerk proxy, then every route handler signed in', async () => {
  await page.goto(`${origin}/sign-up`);
  await page.waitForSelector('input[name=emailAddress]', { timeout: 30_000 });
  await page.screenshot({ path: `${artifacts}/SignUp.png` });
  await page.fill('input[name=emailAddress]', EMAIL);
  await page.fill('input[name=password]', PASSWORD);
  const inbox = await mailbox(latchkey.url, EMAIL);
  await page.click('button:has-text("Continue")');
  await page.waitForSelector('input[autocomplete=one-time-code]');
  await page.fill('input[autocomplete=one-time-code]', await inbox.code());
  await page.waitForFunction(() => window.Clerk?.user?.primaryEmailAddress?.emailAddress === 'grace@example.com', null, { timeout: 30_000 });
  assert.ok(wire.some((w) => w.path === '/v1/client/sign_ups' && w.status === 200), 'the Frontend API went through /__clerk');
  const userId = await page.evaluate(() => window.Clerk.user.id);

  assert.deepEqual(await call('GET', '/api/items'), { status: 200, json: { items: [] } });
  const created = await call('POST', '/api/items', { body: { name: 'bottle' } });
  assert.equal(created.status, 201);
  assert.equal(created.json.userId, userId, 'scoped by the caller');
  assert.equal((await call('GET', '/api/items')).json.items.length, 1);
  assert.deepEqual(await call('GET', '/api/items', { signedOut: true }), { status: 401, json: { error: 'Unauthorized' } });
  // Signed in without the right: 403.
  assert.deepEqual(await call('DELETE', '/api/items'), { status: 403, json: { error: 'Forbidden' } });
  assert.equal((await call('POST', '/api/invoices', { body: { amount: 5 } })).status, 403);
  assert.equal((await call('GET', '/api/orgs/org_someone_else/data')).status, 403);
  assert.equal((await call('GET', '/api/admin/stats')).status, 404, 'auth.protect({role}) hides it from a non-admin');
});

test('with an organization active: has({role}), has({permission}), the org-scoped route, auth.protect({role})', async () => {
  const org = await page.evaluate(async () => {
    const o = await window.Clerk.createOrganization({ name: 'Grace Family' });
    await window.Clerk.setActive({ organization: o.id });
    return { id: o.id };
  });
  const jwt = await page.evaluate(() => window.Clerk.session.getToken());
  assert.equal(decode(jwt).o?.id, org.id);
  assert.deepEqual(await call('GET', `/api/orgs/${org.id}/data`), { status: 200, json: { organizationId: org.id, data: [] } });
  assert.equal((await call('GET', '/api/orgs/org_someone_else/data')).status, 403);
  const invoice = await call('POST', '/api/invoices', { body: { amount: 5 } });
  assert.equal(invoice.status, 201, 'org:admin holds every permission, org:invoices:create included');
  assert.deepEqual(await call('GET', '/api/admin/stats'), { status: 200, json: { orgId: org.id, orgRole: 'org:admin' } });
  assert.deepEqual(await call('DELETE', '/api/items'), { status: 200, json: { success: true } });
  await page.evaluate(() => window.Clerk.setActive({ organization: null }));
});

test('a server-rendered page shows the user after the handshake', async () => {
  const userId = await page.evaluate(() => window.Clerk.user.id);
  // Lose the session cookie (as when it expires): the middleware must ask latchkey. Off the
  // app first, so no clerk-js still running there (a token refresh, the tail of the last
  // setActive) can write the cookie again before the request.
  await page.goto('about:blank');
  await browser.context.clearCookies({ name: /^__session/ });
  const navigations = [];
  page.on('request', (r) => r.isNavigationRequest() && navigations.push(r.url()));
  await page.goto(`${origin}/dashboard`);
  await page.waitForSelector('#server-user');
  assert.equal(await page.textContent('#server-user'), `${userId} ${EMAIL}`);
  assert.ok(navigations.some((u) => new URL(u).pathname === '/__clerk/v1/client/handshake'), navigations.join('\n'));
  assert.ok(navigations.length <= 4, `no redirect loop: ${navigations.join('\n')}`);
  const cookies = await browser.context.cookies(origin);
  assert.ok(cookies.some((c) => c.name === '__session' && c.value), 'the handshake set __session again');
  await page.screenshot({ path: `${artifacts}/dashboard.png` });
});

// The SQLite database of the latchkey this test started: found through its process (its
// command line names its public URL; the database is `data/latchkey.db` in its working directory).
function latchkeyDatabase() {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let args;
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const at = args.indexOf('--public-url');
    if (at < 0 || args[at + 1] !== latchkey.url || !args.includes('serve')) continue;
    const dataDir = args[args.indexOf('--data-dir') + 1];
    const candidates = [resolve(readlinkSync(`/proc/${pid}/cwd`), 'data/latchkey.db'), resolve(dataDir ?? '.', 'latchkey.db')];
    const found = candidates.find((c) => existsSync(c));
    if (found) return found;
  }
  throw new Error(`no database found for the latchkey at ${latchkey.url}`);
}

// Moves a session's start and its factor checks 20 minutes into the past, as if that long had
// passed (the server's clock cannot be moved from here).
function ageSession(sessionId) {
  const script = `
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
n = db.execute('''UPDATE sessions SET created_at = created_at - 1200000,
  first_factor_verified_at = COALESCE(first_factor_verified_at, created_at) - 1200000,
  second_factor_verified_at = second_factor_verified_at - 1200000 WHERE id = ?''', (sys.argv[2],)).rowcount
db.commit()
print(n)`;
  return Number(execFileSync('python3', ['-c', script, latchkeyDatabase(), sessionId], { encoding: 'utf8' }).trim());
}

// A new session token from latchkey (clerk-js writes it to the __session cookie the app reads).
const freshToken = () => page.evaluate(() => window.Clerk.session.getToken({ skipCache: true }));

test('a route that needs a recent check: 200, 403 with Clerk\'s hint once the session aged, 200 after verifying again', async () => {
  if (new URL(page.url()).origin !== origin) await page.goto(`${origin}/dashboard`);
  await page.waitForFunction(() => window.Clerk?.session?.id, null, { timeout: 30_000 });
  const sessionId = await page.evaluate(() => window.Clerk.session.id);

  // Signed up minutes ago (no second factor): the password counts, `strict` is met.
  let fva = decode(await freshToken()).fva;
  assert.ok(fva[0] >= 0 && fva[0] < 10 && fva[1] === -1, `fva ${fva}`);
  assert.deepEqual(await call('POST', '/api/sensitive'), { status: 200, json: { ok: true } });

  // Twenty minutes later, a new token says so, and the route asks for a check.
  assert.equal(ageSession(sessionId), 1, 'the session was aged');
  fva = decode(await freshToken()).fva;
  assert.ok(fva[0] >= 20 && fva[1] === -1, `fva ${fva}`);
  const refused = await call('POST', '/api/sensitive');
  assert.equal(refused.status, 403);
  // What `isReverificationHint` (@clerk/shared) tests before `useReverification` prompts.
  assert.deepEqual(refused.json, {
    clerk_error: { type: 'forbidden', reason: 'reverification-error', metadata: { reverification: 'strict' } },
  });

  // The check, as Clerk's reverification flow makes it (clerk-js through /__clerk): level
  // second_factor, answered with the password since the user has no second factor.
  const statuses = await page.evaluate(async (password) => {
    const started = await window.Clerk.session.startVerification({ level: 'second_factor' });
    const done = await window.Clerk.session.attemptFirstFactorVerification({ strategy: 'password', password });
    return [started.status, done.status];
  }, PASSWORD);
  assert.deepEqual(statuses, ['needs_first_factor', 'complete']);
  assert.ok(wire.some((w) => w.path === `/v1/client/sessions/${sessionId}/verify/attempt_first_factor` && w.status === 200));
  fva = decode(await freshToken()).fva;
  assert.deepEqual(fva, [0, -1]);
  assert.deepEqual(await call('POST', '/api/sensitive'), { status: 200, json: { ok: true } });
});

test('no page errors', () => assert.deepEqual(problems, []));
