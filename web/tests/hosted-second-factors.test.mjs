// Two-step verification on latchkey's hosted pages, in Debian's Chromium (driven by
// playwright-core) against a fresh binary: sign up on /sign-up, add an authenticator app on
// /user (the key read from the page, the codes computed here with node:crypto as an app does,
// RFC 6238), the backup codes shown once (copy, download), signing in with the app's code and
// with a backup code (which works once), and "Confirm it's you" before removing the app once
// the session is older than ten minutes. Then, on a second instance that requires a second
// factor, a new account is sent to the setup-mfa task and adds its app before going on. The session is aged by rewriting its times in the
// instance's SQLite database. What the pages show is checked against the Backend API.
// Screenshots land in target/artifacts/hosted-second-factors/.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser } from '../../sdk/clerk-js/browser.mjs';
import { mailbox, startLatchkey } from '../../sdk/clerk-backend/latchkey.mjs';

const PASSWORD = 'correct horse battery staple';
const EMAIL = 'ada@example.com';
const ARTIFACTS = resolve(import.meta.dirname, '../../target/artifacts/hosted-second-factors');
mkdirSync(ARTIFACTS, { recursive: true });

// ---- the authenticator app (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits) ----------------

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
function base32Decode(text) {
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of text.replace(/[\s=]/g, '').toUpperCase()) {
    const i = BASE32.indexOf(c);
    if (i < 0) throw new Error(`not base32: ${c}`);
    value = ((value << 5) | i) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The code of 30-second step `step` (unix seconds / 30) for a base32 key. */
function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const at = mac[mac.length - 1] & 0x0f;
  const n = ((mac[at] & 0x7f) << 24) | (mac[at + 1] << 16) | (mac[at + 2] << 8) | mac[at + 3];
  return String(n % 1_000_000).padStart(6, '0');
}

const stepNow = () => Math.floor(Date.now() / 30_000);
// The server takes each step once (and none before it), within one step either way of now.
let lastStep = -1;
/** A code the server has not seen: the current step's, or the next one's (one step of drift). */
async function freshCode(secret) {
  let step = Math.max(stepNow(), lastStep + 1);
  if (step > stepNow() + 1) {
    // Both usable steps are spent: the app shows a new code when the next step begins.
    await new Promise((r) => setTimeout(r, (stepNow() + 1) * 30_000 - Date.now() + 50));
    step = Math.max(stepNow(), lastStep + 1);
  }
  lastStep = step;
  return totp(secret, step);
}

// ---- the instance and the browser ----------------------------------------------------------

let lk, browser, page, dbDir;
const pageErrors = [];

before(async () => {
  // The database where the test can reach it (to age a session).
  dbDir = mkdtempSync(join(tmpdir(), 'latchkey-2fa-db-'));
  lk = await startLatchkey({ config: `database_url = "sqlite://${join(dbDir, 'latchkey.db')}"\n` });
  browser = await launchBrowser();
  const { context } = browser;
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: lk.url });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  // Console errors fail the run (a script or style the pages' CSP refused says so there),
  // except Chromium's note on each 4xx answer: the pages answer refusals with their status,
  // which the tests check, and /favicon.ico is not served.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource: the server responded with a status of 4')) {
      pageErrors.push(`console: ${m.text()}`);
    }
  });
});
after(async () => {
  await browser?.close().catch(() => undefined);
  await lk?.stop();
  if (dbDir) rmSync(dbDir, { recursive: true, force: true });
});

const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
const path = () => {
  const u = new URL(page.url());
  return `${u.pathname}${u.search}`;
};
const h1 = () => page.locator('h1').innerText();
const alert = () => page.locator('.alert.error[role=alert]');
const notice = () => page.locator('.alert.ok[role=status]');
const security = () => page.locator('section[aria-labelledby="mfa-h"]');

/** Clicks `target` (a form's button or a link) and waits for the page it leads to. */
async function go(target) {
  const from = page.url();
  const loaded = page.waitForEvent('load', { timeout: 30_000 });
  await target.click();
  await loaded.catch((e) => {
    throw new Error(`no page after clicking on ${from}: ${e.message}`);
  });
}

const backend = async (p) => {
  const res = await fetch(`${lk.url}${p}`, { headers: { authorization: `Bearer ${lk.secretKey}` } });
  const body = await res.json();
  assert.equal(res.status, 200, `GET ${p}: ${res.status} ${JSON.stringify(body)}`);
  return body;
};
const serverUser = async () => {
  const [user, ...others] = await backend(`/v1/users?email_address=${encodeURIComponent(EMAIL)}`);
  assert.deepEqual(others, []);
  return user;
};

/** Signs out on /user and signs in with the password, up to the second step. */
async function passwordStep() {
  await page.goto(`${lk.url}/user`);
  await go(page.getByRole('button', { name: 'Sign out', exact: true }));
  assert.equal(path(), '/sign-in?notice=signed_out');
  await page.fill('#identifier', EMAIL);
  await page.fill('#password', PASSWORD);
  await go(page.getByRole('button', { name: 'Continue' }));
  assert.equal(path(), '/sign-in/factor-two');
  assert.equal(await h1(), 'Two-step verification');
}

async function signedIn() {
  assert.equal(path(), '/user');
  assert.equal(await h1(), 'Your account');
  await page.locator('section[aria-labelledby="email-h"] li', { hasText: EMAIL }).waitFor();
}

let secret;
let backupCodes;

test('the app computes RFC 6238 codes (Appendix B, SHA-1)', () => {
  const rfc = base32Decode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ').toString();
  assert.equal(rfc, '12345678901234567890');
  assert.equal(totp('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', Math.floor(59 / 30)), '287082');
  assert.equal(totp('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', Math.floor(1111111109 / 30)), '081804');
  assert.equal(totp('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', Math.floor(2000000000 / 30)), '279037');
});

test('sign up, then add an authenticator app on /user: QR code, key, a wrong code refused, ten backup codes shown once', async () => {
  await page.goto(`${lk.url}/sign-up`);
  await page.fill('#email_address', EMAIL);
  await page.fill('#password', PASSWORD);
  const inbox = await mailbox(lk.url, EMAIL);
  await go(page.getByRole('button', { name: 'Create account' }));
  await page.fill('#code', await inbox.code());
  await go(page.getByRole('button', { name: 'Verify' }));
  await signedIn();

  await security().waitFor();
  assert.match(await security().innerText(), /Authenticator app: off/);
  await go(security().getByRole('button', { name: 'Add an authenticator app' }));
  assert.equal(await h1(), 'Add an authenticator app');
  const qr = page.locator('svg.qr[role=img]');
  assert.equal(await qr.isVisible(), true);
  const box = await qr.boundingBox();
  assert.ok(box.width >= 150 && Math.abs(box.width - box.height) < 1, `a square QR code: ${JSON.stringify(box)}`);
  secret = (await page.locator('#totp-secret').innerText()).replace(/\s+/g, '');
  assert.match(secret, /^[A-Z2-7]{32}$/);
  assert.equal(page.url().includes(secret), false, 'the key is never in a URL');
  await shot('enrol');
  assert.equal((await serverUser()).totp_enabled, false);

  // A wrong code: refused, and the page asks again.
  const wrong = totp(secret, stepNow() + 5);
  await page.fill('#code', wrong);
  await go(page.getByRole('button', { name: 'Verify and turn on' }));
  assert.equal(await alert().innerText(), 'Incorrect code');
  assert.equal(await h1(), 'Add an authenticator app');
  await shot('enrol-wrong-code');
  assert.equal((await serverUser()).totp_enabled, false);

  await page.fill('#code', await freshCode(secret));
  await go(page.getByRole('button', { name: 'Verify and turn on' }));
  assert.equal(await h1(), 'Save your backup codes');
  assert.equal(await notice().innerText(), 'Two-step verification is on.');
  backupCodes = await page.locator('ol.codes li').allInnerTexts();
  assert.equal(backupCodes.length, 10);
  assert.equal(new Set(backupCodes).size, 10);

  // The copy button (shown by the page's script) puts the codes on the clipboard.
  const copy = page.getByRole('button', { name: 'Copy codes' });
  assert.equal(await copy.isVisible(), true);
  await copy.click();
  await page.getByRole('button', { name: 'Copied' }).waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.deepEqual(copied.trim().split('\n'), backupCodes);

  // The download is a text file of the same codes.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download codes' }).click()]);
  assert.equal(download.suggestedFilename(), 'backup-codes.txt');
  const file = readFileSync(await download.path(), 'utf8');
  for (const c of backupCodes) assert.ok(file.includes(`\n${c}\n`), `${c} in the file`);
  await shot('backup-codes');

  await go(page.getByRole('link', { name: 'I saved them: back to my account' }));
  assert.equal(path(), '/user?notice=totp_added');
  assert.match(await security().innerText(), /Authenticator app: on/);
  assert.match(await security().innerText(), /Backup codes: 10 left/);
  const user = await serverUser();
  assert.deepEqual([user.totp_enabled, user.backup_code_enabled, user.two_factor_enabled], [true, true, true]);
  await shot('user-two-step-on');
});

test('signing in asks for the code of the app after the password, then lands signed in', async () => {
  await passwordStep();
  await page.locator('#code').waitFor();
  assert.equal(await page.getByRole('link', { name: 'Use a backup code' }).isVisible(), true);
  await shot('sign-in-code-step');
  // Not signed in before the code.
  const res = await page.request.get(`${lk.url}/user`, { maxRedirects: 0 });
  assert.equal(res.status(), 303);

  await page.fill('#code', '000000');
  await go(page.getByRole('button', { name: 'Continue' }));
  assert.equal(await alert().innerText(), 'Incorrect code. 4 attempts remain.');
  await page.fill('#code', await freshCode(secret));
  await go(page.getByRole('button', { name: 'Continue' }));
  await signedIn();
});

test('a backup code signs in once; used again, it is refused', async () => {
  await passwordStep();
  await go(page.getByRole('link', { name: 'Use a backup code' }));
  assert.equal(path(), '/sign-in/factor-two?strategy=backup_code');
  await page.fill('#code', backupCodes[0]);
  await go(page.getByRole('button', { name: 'Continue' }));
  await signedIn();
  assert.match(await security().innerText(), /Backup codes: 9 left/);

  await passwordStep();
  await go(page.getByRole('link', { name: 'Use a backup code' }));
  await page.fill('#code', backupCodes[0]);
  await go(page.getByRole('button', { name: 'Continue' }));
  assert.equal(await alert().innerText(), 'Incorrect code. 4 attempts remain.');
  assert.equal(path(), '/sign-in/factor-two');
  await shot('backup-code-used-twice');
  await page.fill('#code', backupCodes[1]);
  await go(page.getByRole('button', { name: 'Continue' }));
  await signedIn();
  assert.equal((await serverUser()).backup_code_enabled, true);
});

/** Ages every session by 20 minutes, as if signed in (and every factor proved) that long ago. */
function ageSessions() {
  const sql =
    'UPDATE sessions SET created_at = created_at - 1200000, ' +
    'first_factor_verified_at = COALESCE(first_factor_verified_at, created_at) - 1200000, ' +
    'second_factor_verified_at = second_factor_verified_at - 1200000';
  const script = 'import sqlite3, sys\nc = sqlite3.connect(sys.argv[1], timeout=10)\nn = c.execute(sys.argv[2]).rowcount\nc.commit()\nprint(n)';
  const changed = Number(execFileSync('python3', ['-c', script, join(dbDir, 'latchkey.db'), sql], { encoding: 'utf8' }).trim());
  assert.ok(changed >= 1, `sessions aged: ${changed}`);
}

test('removing the app asks "Confirm it\'s you" once the session is older than ten minutes', async () => {
  await page.goto(`${lk.url}/user`);
  ageSessions();
  await go(security().getByRole('button', { name: 'Remove' }));
  assert.equal(await h1(), "Confirm it's you");
  assert.equal(path(), '/user/totp/delete');
  await page.locator('#code').waitFor();
  assert.match(await page.locator('p.sub').first().innerText(), /Removing your authenticator app needs a recent check/);
  await shot('confirm-it-is-you');
  assert.equal((await serverUser()).totp_enabled, true, 'nothing removed yet');

  await page.fill('#code', '000000');
  await go(page.getByRole('button', { name: 'Confirm', exact: true }));
  assert.equal(await alert().innerText(), 'Incorrect code');
  assert.equal((await serverUser()).totp_enabled, true);

  await page.fill('#code', await freshCode(secret));
  await go(page.getByRole('button', { name: 'Confirm', exact: true }));
  assert.equal(path(), '/user?notice=totp_removed');
  assert.equal(await notice().innerText(), 'Authenticator app removed. Two-step verification is off.');
  assert.match(await security().innerText(), /Authenticator app: off/);
  const user = await serverUser();
  assert.deepEqual([user.totp_enabled, user.backup_code_enabled, user.two_factor_enabled], [false, false, false]);
  await shot('app-removed');

  // A sign-in is one step again.
  await page.getByRole('button', { name: 'Sign out', exact: true }).waitFor();
  await go(page.getByRole('button', { name: 'Sign out', exact: true }));
  await page.fill('#identifier', EMAIL);
  await page.fill('#password', PASSWORD);
  await go(page.getByRole('button', { name: 'Continue' }));
  await signedIn();
});

test('under the required policy, a new account adds an app on the setup-mfa task, then goes on with an active session', async () => {
  // A second instance that requires a second factor; the browser starts with no cookies (they
  // are per host, not per port, so the first instance's would be sent along).
  const strict = await startLatchkey({ config: '[second_factors]\npolicy = "required"\n' });
  try {
    await browser.context.clearCookies();
    const email = 'required@example.com';
    const back = '/user?from=app';
    const status = async () => {
      const res = await page.request.get(`${strict.url}/v1/client`);
      const session = (await res.json()).response?.sessions?.[0];
      return [session?.status, session?.tasks ?? null];
    };
    await page.goto(`${strict.url}/sign-up?redirect_url=${encodeURIComponent(back)}`);
    await page.fill('#email_address', email);
    await page.fill('#password', PASSWORD);
    const inbox = await mailbox(strict.url, email);
    await go(page.getByRole('button', { name: 'Create account' }));
    await page.fill('#code', await inbox.code());
    await go(page.getByRole('button', { name: 'Verify' }));

    // Not on to redirect_url: the task, with redirect_url kept, and a pending session.
    const at = new URL(page.url());
    assert.equal(at.pathname, '/sign-in/tasks/setup-mfa');
    assert.equal(at.searchParams.get('redirect_url'), back);
    assert.equal(await h1(), 'Set up two-step verification');
    assert.match(await page.locator('p.sub').first().innerText(), /This application requires two-step verification/);
    assert.deepEqual(await status(), ['pending', [{ key: 'setup-mfa' }]]);
    await shot('required-task');
    // /user sends a pending session back to the task.
    await page.goto(`${strict.url}/user`);
    assert.equal(new URL(page.url()).pathname, '/sign-in/tasks/setup-mfa');
    await page.goto(at.href);

    await go(page.getByRole('button', { name: 'Add an authenticator app' }));
    assert.equal(await h1(), 'Add an authenticator app');
    assert.equal(await page.locator('svg.qr[role=img]').isVisible(), true);
    const key = (await page.locator('#totp-secret').innerText()).replace(/\s+/g, '');
    assert.match(key, /^[A-Z2-7]{32}$/);
    await shot('required-enrol');
    await page.fill('#code', totp(key, stepNow() + 5));
    await go(page.getByRole('button', { name: 'Verify and turn on' }));
    assert.equal(await alert().innerText(), 'Incorrect code');
    assert.deepEqual(await status(), ['pending', [{ key: 'setup-mfa' }]]);

    await page.fill('#code', totp(key, stepNow()));
    await go(page.getByRole('button', { name: 'Verify and turn on' }));
    assert.equal(await h1(), 'Save your backup codes');
    assert.equal((await page.locator('ol.codes li').allInnerTexts()).length, 10);
    assert.deepEqual(await status(), ['active', null]);
    await shot('required-backup-codes');
    await go(page.getByRole('link', { name: 'I saved them: continue' }));
    assert.equal(path(), back);
    assert.equal(await h1(), 'Your account');
    assert.match(await security().innerText(), /Authenticator app: on/);
    assert.match(await security().innerText(), /Required by this application/);
  } finally {
    await strict.stop();
  }
});

test('no page errors, console errors or refused scripts in any of the above', () => {
  assert.deepEqual(pageErrors, []);
});
