// Passkeys on latchkey's own surfaces, in Debian's Chromium (driven by playwright-core) with
// Chromium's virtual authenticator (the DevTools protocol's WebAuthn domain) as each browser's
// device, against a fresh binary (docs/passkeys.md, "Hosted pages, latchkey-js and BabyLog"):
// - hosted /user adds a passkey ("Add a passkey", the pages' script); signed out, hosted
//   /sign-in signs in with "Sign in with a passkey", and with the browser's autofill alone;
// - BabyLog (latchkey-js) signs in with its passkey button, and adds a passkey in a second
//   browser, which then signs in with it;
// - a browser whose authenticator holds no credential is refused, in words, on both.
// WebAuthn refuses an IP address as a relying party, so latchkey runs with its public URL on
// http://localhost:PORT ([passkeys] rp_id defaults to its host). Nothing waits a fixed time.
// Screenshots land in target/artifacts/passkeys/.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser } from '../../sdk/clerk-js/browser.mjs';
import { freePort } from '../../sdk/clerk-backend/latchkey.mjs';

const ROOT = resolve(import.meta.dirname, '../..');
const ARTIFACTS = join(ROOT, 'target/artifacts/passkeys');
mkdirSync(ARTIFACTS, { recursive: true });
const EMAIL = 'ada@example.com';
const PASSWORD = 'correct horse battery staple';

// A CTAP 2.1 authenticator built into the device, keeping discoverable credentials and
// verifying the user; touched at once while presence simulation is on.
const AUTHENTICATOR = {
  protocol: 'ctap2', ctap2Version: 'ctap2_1', transport: 'internal',
  hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
};

let lk;
const browsers = [];
const pageErrors = [];

/** latchkey with passkeys on, its public URL on localhost (a relying party can't be an IP). */
async function startLatchkey() {
  const bin = process.env.LATCHKEY_BIN ?? join(ROOT, 'target/debug/latchkey');
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-passkeys-'));
  writeFileSync(join(dir, 'latchkey.toml'), '[passkeys]\nenabled = true\n');
  const port = await freePort();
  const url = `http://localhost:${port}`;
  const child = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--public-url', url, '--data-dir', join(dir, 'data')], {
    cwd: dir,
    env: { ...process.env, LATCHKEY_LOG: 'warn', RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const ready = new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`latchkey did not start in 30 s:\n${out}`)), 30_000);
    const read = (d) => {
      out += d;
      if (/development mode|next steps/.test(out) && /sk_live_[A-Za-z0-9_-]+/.test(out)) {
        clearTimeout(timer);
        ok();
      }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.once('exit', () => fail(new Error(`latchkey exited early:\n${out}`)));
  });
  await ready;
  return {
    url,
    secretKey: out.match(/sk_live_[A-Za-z0-9_-]+/)[0],
    async stop() {
      const exited = new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

before(async () => {
  lk = await startLatchkey();
  const res = await fetch(`${lk.url}/v1/users`, {
    method: 'POST',
    headers: { authorization: `Bearer ${lk.secretKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ email_address: [EMAIL], password: PASSWORD }),
  });
  assert.equal(res.status, 200, await res.text());
});
after(async () => {
  for (const b of browsers) await b.close().catch(() => undefined);
  await lk?.stop();
  assert.deepEqual(pageErrors, []);
});

// Runs in every page before its scripts: reports each navigator.credentials.create/get (its
// mediation, then how it ended: "credential" or the DOMException's name) to `__webauthnSeen`.
function watchCredentials() {
  const container = navigator.credentials;
  if (!container) return; // about:blank
  let n = 0;
  for (const op of ['create', 'get']) {
    const call = container[op].bind(container);
    container[op] = (options) => {
      const id = `${performance.timeOrigin}:${++n}`;
      const answer = call(options);
      window.__webauthnSeen?.({ id, op, mediation: options?.mediation ?? 'optional' });
      answer.then((c) => window.__webauthnSeen?.({ id, outcome: c ? 'credential' : 'null' }), (e) => window.__webauthnSeen?.({ id, outcome: e?.name ?? String(e) }));
      return answer;
    };
  }
}

/** A new browser profile with its own virtual authenticator: its page and handles. */
async function device() {
  const browser = await launchBrowser();
  browsers.push(browser);
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4/.test(m.text())) {
      pageErrors.push(`console: ${m.text()}`);
    }
  });
  const calls = [];
  const waiters = new Set();
  const check = () => {
    for (const w of waiters) {
      const found = calls.slice(w.from).find(w.match);
      if (found) {
        waiters.delete(w);
        w.ok(found);
      }
    }
  };
  await page.exposeFunction('__webauthnSeen', (e) => {
    const known = calls.find((c) => c.id === e.id);
    if (known) Object.assign(known, e);
    else calls.push({ outcome: 'pending', ...e });
    check();
  });
  await page.addInitScript(watchCredentials);
  const cdp = await browser.context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', { options: AUTHENTICATOR });
  // Each POST /v1/client/sign_ins passes `beforeSignIn` (once armed) on its way to latchkey.
  let beforeSignIn = null;
  await page.route((url) => url.pathname === '/v1/client/sign_ins', async (route) => {
    if (route.request().method() === 'POST' && beforeSignIn) {
      const hook = beforeSignIn;
      beforeSignIn = null;
      await hook();
    }
    await route.continue();
  });
  return {
    page,
    calls,
    /** The first WebAuthn call since `from` that `match`es, waiting for it (Playwright's timeout ends the test otherwise). */
    nextCall: (from, match) => new Promise((ok) => {
      waiters.add({ from, match, ok });
      check();
    }),
    credentials: async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials,
    presence: (enabled) => cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled }),
    beforeNextSignIn: (fn) => (beforeSignIn = fn),
  };
}

const pathOf = (page) => {
  const u = new URL(page.url());
  return `${u.pathname}${u.search}`;
};
const shot = (page, name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

/** Does `action` and waits for the page it leads to (at `path`). */
async function leadsTo(page, path, action) {
  const arrived = page.waitForURL((u) => `${u.pathname}${u.search}` === path, { timeout: 30_000 });
  await action();
  await arrived;
}

/** The hosted password sign-in, on to `redirect`. */
async function passwordSignIn(page, redirect) {
  await page.goto(`${lk.url}/sign-in?redirect_url=${encodeURIComponent(redirect)}`);
  await page.fill('#identifier', EMAIL);
  await page.fill('#password', PASSWORD);
  await leadsTo(page, redirect, () => page.getByRole('button', { name: 'Continue' }).click());
}

const passkeyNames = (page) => page.locator('.passkey-name').allInnerTexts();

/**
 * Hosted /sign-in → "Sign in with a passkey". The page's autofill request starts at once; the
 * authenticator is not touched (presence off) while it waits, so the button's request is the one
 * answered: presence is back only once the click's POST /v1/client/sign_ins is under way, after
 * the script ended the autofill request (AbortError). Returns the button's request.
 */
async function clickPasskeyButton(d, path) {
  const from = d.calls.length;
  await d.presence(false);
  await d.page.goto(`${lk.url}${path}`);
  const autofill = await d.nextCall(from, (c) => c.op === 'get' && c.mediation === 'conditional');
  assert.equal(autofill.outcome, 'pending');
  d.beforeNextSignIn(() => d.presence(true));
  await d.page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  const asked = await d.nextCall(from, (c) => c.op === 'get' && c.mediation === 'optional' && c.outcome !== 'pending');
  assert.equal(autofill.outcome, 'AbortError', 'the script ended the autofill request first');
  return asked;
}

let ada; // the browser whose authenticator holds Ada's first passkey

test('hosted /user adds a passkey; hosted /sign-in signs in with the button, and with autofill alone', async () => {
  ada = await device();
  const { page } = ada;
  await passwordSignIn(page, '/user');
  const section = page.locator('section[aria-labelledby="passkeys-h"]');
  assert.match(await section.innerText(), /No passkeys yet\./);
  assert.deepEqual(await ada.credentials(), []);
  await leadsTo(page, '/user?notice=passkey_added', () => section.getByRole('button', { name: 'Add a passkey' }).click());
  assert.match(await page.locator('.alert.ok').innerText(), /Passkey added\./);
  assert.deepEqual(await passkeyNames(page), ['Chrome on Linux']);
  assert.match(await section.innerText(), /not used yet/);
  assert.equal((await ada.credentials()).length, 1, 'the authenticator holds it');
  assert.deepEqual(ada.calls.filter((c) => c.op === 'create').map((c) => c.outcome), ['credential']);
  await shot(page, 'hosted-user-passkey-added');

  // Signed out, the button signs in (presence off while the autofill request waits).
  await ada.presence(false);
  await leadsTo(page, '/sign-in?notice=signed_out', () => page.locator('.top').getByRole('button', { name: 'Sign out' }).click());
  assert.equal(await page.locator('#identifier').getAttribute('autocomplete'), 'username webauthn');
  const arrived = page.waitForURL(`${lk.url}/user`, { timeout: 30_000 });
  const asked = await clickPasskeyButton(ada, '/sign-in?redirect_url=%2Fuser');
  assert.equal(asked.outcome, 'credential');
  await arrived;
  assert.match(await page.locator('section[aria-labelledby="passkeys-h"]').innerText(), /last used just now/);
  await shot(page, 'hosted-signed-in-with-passkey');

  // The browser's autofill: the authenticator, touched, answers the page's conditional request
  // at once with the one credential it holds, as a person picking it in the field would.
  await ada.presence(false);
  await leadsTo(page, '/sign-in?notice=signed_out', () => page.locator('.top').getByRole('button', { name: 'Sign out' }).click());
  // Away from the page whose autofill request waits, before the authenticator is touched again.
  await page.goto('about:blank');
  const from = ada.calls.length;
  await ada.presence(true);
  await leadsTo(page, '/user', () => page.goto(`${lk.url}/sign-in?redirect_url=%2Fuser`));
  assert.deepEqual(ada.calls.slice(from).filter((c) => c.op === 'get').map((c) => [c.mediation, c.outcome]), [['conditional', 'credential']]);
  assert.equal(await page.locator('h1').innerText(), 'Your account');
});

test('a browser whose authenticator holds no passkey is refused in words (hosted /sign-in and BabyLog); BabyLog adds one there, then signs in with it', async () => {
  const other = await device();
  const { page } = other;
  const asked = await clickPasskeyButton(other, '/sign-in?redirect_url=%2Fuser');
  assert.equal(asked.outcome, 'NotAllowedError');
  const alert = page.locator('[data-passkey-error]').first();
  await alert.waitFor();
  assert.match(await alert.innerText(), /^No passkey was used: .*this device holds no passkey for this site\.$/);
  assert.equal(pathOf(page), '/sign-in?redirect_url=%2Fuser', 'still on the sign-in page');
  await shot(page, 'hosted-no-passkey-refused');

  // BabyLog's button: the same refusal, on its card.
  await page.goto(`${lk.url}/`);
  await page.waitForSelector('body[data-ready="true"]');
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await page.waitForFunction(() => document.getElementById('sign-in-message').textContent !== '');
  assert.equal(await page.locator('#sign-in-message').innerText(), 'No passkey was used: the request was cancelled, or this device holds no passkey for BabyLog.');
  assert.equal(await page.locator('#who').count(), 0, 'not signed in');
  await shot(page, 'babylog-no-passkey-refused');

  // Signed in with the password, BabyLog adds a passkey to this browser's authenticator.
  await passwordSignIn(page, '/');
  await page.waitForSelector('#who');
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await page.waitForFunction(() => document.getElementById('account-message').textContent !== '');
  assert.equal(await page.locator('#account-message').innerText(), 'Passkey added (Chrome on Linux). Next time, sign in with it.');
  assert.equal((await other.credentials()).length, 1);
  await shot(page, 'babylog-passkey-added');

  // Signed out, BabyLog's button signs in with it.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in with a passkey' }).waitFor();
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await page.waitForSelector('#who');
  assert.equal(await page.locator('#who').innerText(), EMAIL);
  await shot(page, 'babylog-signed-in-with-passkey');
});

test('BabyLog signs in with the passkey hosted /user added; adding it again on that device is refused in words', async () => {
  const { page } = ada;
  await page.goto(`${lk.url}/`);
  await page.waitForSelector('#who');
  await page.getByRole('button', { name: 'Sign out' }).click();
  const from = ada.calls.length;
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await page.waitForSelector('#who');
  assert.deepEqual(ada.calls.slice(from).map((c) => [c.op, c.mediation, c.outcome]), [['get', 'optional', 'credential']]);
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await page.waitForFunction(() => document.getElementById('account-message').textContent !== '');
  assert.equal(await page.locator('#account-message').innerText(), 'This device already holds a passkey for your account.');
  assert.equal((await ada.credentials()).length, 1);
});
