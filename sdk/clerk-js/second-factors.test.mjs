// Second factors (docs/second-factors.md) through Clerk's own browser SDK, unmodified: the
// pinned @clerk/clerk-js and @clerk/ui bundles, self-hosted by a plain page that reaches latchkey
// through Clerk's own same-origin proxy, in Debian's Chromium. UserProfile adds an authenticator
// app (its secret read as text, its codes computed here, RFC 6238) and shows the backup codes;
// SignIn asks for the app's code after the password, or a backup code ("Use another method"),
// which works once; removing the app in UserProfile opens Clerk's reverification modal
// (useReverification on `session_reverification_required`) once the session's check is old.
// Screenshots of the prebuilt components are kept under target/artifacts/clerk-js/.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { startLatchkey } from '../clerk-backend/latchkey.mjs';
import { readPage, startAppServer } from './app-server.mjs';
import { launchBrowser, mount as mountIn, recordWire, reloadsAfter as reloadsAfterIn, settled as settledIn, until as untilIn } from './browser.mjs';

const artifacts = resolve(import.meta.dirname, '../../target/artifacts/clerk-js');
mkdirSync(artifacts, { recursive: true });

const EMAIL = 'hedy@example.com';
const PASSWORD = 'frequency hopping since 1942';
let latchkey, app, browser, page, wire, userId;
const problems = [];

const decode = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
const shot = (name) => page.screenshot({ path: `${artifacts}/${name}.png` });
const state = () => page.textContent('#state');
const until = (what, fn, ms) => untilIn(page, what, fn, ms);
const reloadsAfter = (what, action) => reloadsAfterIn(page, what, action);
const mount = (component) => mountIn(page, component);
const settled = () => settledIn(page);
const bapi = (path, init = {}) => fetch(`${latchkey.url}/v1${path}`, {
  ...init,
  headers: { authorization: `Bearer ${latchkey.secretKey}`, 'content-type': 'application/json' },
});

// ---- RFC 6238 (TOTP) over RFC 4226 (HOTP), as an authenticator app computes it ----

// RFC 4648 base32 (the alphabet A–Z 2–7), case, spaces and padding ignored.
function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const out = [];
  let bits = 0;
  let value = 0;
  for (const ch of text.toUpperCase().replace(/[\s=]/g, '')) {
    const i = alphabet.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${JSON.stringify(ch)} in ${JSON.stringify(text)}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
      value &= (1 << bits) - 1;
    }
  }
  return Buffer.from(out);
}

// The code of one 30-second step: HMAC-SHA1 over the step as 8 bytes big-endian, dynamic
// truncation, `digits` decimal digits.
function hotp(key, counter, digits = 6) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const h = createHmac('sha1', key).update(msg).digest();
  const o = h[h.length - 1] & 0x0f;
  const bin = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
  return String(bin % 10 ** digits).padStart(digits, '0');
}

const STEP_MS = 30_000;
const stepAt = (ms) => Math.floor(ms / STEP_MS);

// latchkey accepts each step's code once (a code of a step already used, or an earlier one, is
// refused). `lastStep` is the step of the last code typed; a fresh code waits for the clock to
// reach a later step: the time left is computed, and the loop checks the clock until then.
let lastStep = -Infinity;
async function freshCode(secret) {
  for (;;) {
    const now = Date.now();
    if (stepAt(now) > lastStep) break;
    const left = (lastStep + 1) * STEP_MS - now;
    await new Promise((r) => setTimeout(r, Math.min(left, 250)));
  }
  lastStep = stepAt(Date.now());
  return hotp(base32Decode(secret), lastStep);
}

// ---- the wire: every Frontend API call of the page, and the failures a test expects ----

// Fails with the calls if the Frontend API answered any call since `from` with 4xx/5xx other
// than the `expected` ones ("METHOD /v1/path status", ids replaced by {id}), or if one of them
// did not happen.
const shape = (w) => `${w.method} ${w.path.replace(/\/(sia|sua|sess|totp|user|idn)_[A-Za-z0-9]+/g, '/{id}')} ${w.status}`;
function assertWire(from, expected = []) {
  const calls = wire.slice(from).map(shape);
  const failed = calls.filter((c) => Number(c.split(' ').at(-1)) >= 400);
  assert.deepEqual(failed, expected, `Frontend API failures other than expected:\n${calls.join('\n')}`);
  return calls;
}

// ---- the flows of the prebuilt components ----

async function signOut() {
  // Not awaited in the page: the navigation that ends signOut() may tear down this very
  // evaluation. A failure of signOut() still shows, as a console error in `problems`.
  await reloadsAfter('the sign-out', () => page.evaluate(() => {
    window.Clerk.signOut().catch((e) => console.error(`signOut: ${e}`));
  }));
  await until('signed out', () => window.Clerk.user == null);
}

// The SignIn's first steps: the address, then the password. Returns once the card that asks for
// the second factor (SignIn's factor-two route) shows the authenticator app's code.
async function passwordThenFactorTwo() {
  await mount('SignIn');
  await page.waitForSelector('input[name=identifier]');
  await page.fill('input[name=identifier]', EMAIL);
  await page.click('button:has-text("Continue")');
  await page.waitForSelector('input[name=password]');
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button:has-text("Continue")');
  await page.waitForSelector('.cl-headerTitle:has-text("Two-step verification")');
  await page.waitForSelector('input[autocomplete=one-time-code]');
  assert.match(page.url(), /factor-two/);
  const s = await page.evaluate(() => {
    const s = window.Clerk.client.signIn;
    return { status: s.status, second: s.supportedSecondFactors?.map((f) => f.strategy) };
  });
  assert.deepEqual(s, { status: 'needs_second_factor', second: ['totp', 'backup_code'] });
}

// The SignIn's factor-two card → "Use another method" → "Use a backup code": the backup code card.
async function toBackupCodeCard() {
  await page.click('.cl-cardBox :text("Use another method")');
  await page.waitForSelector('.cl-headerTitle:has-text("Use another method")');
  const methods = await page.locator('.cl-alternativeMethodsBlockButton').allTextContents();
  // clerk-ui lists every factor of the sign-in's supported_second_factors.
  assert.deepEqual(methods.map((m) => m.trim()).sort(), ['Use a backup code', 'Use your authenticator app']);
  await settled();
  await shot('SignIn-second-factor-methods');
  await page.click('.cl-alternativeMethodsBlockButton:has-text("Use a backup code")');
  await page.waitForSelector('.cl-headerTitle:has-text("Enter a backup code")');
  await page.waitForSelector('input[name=code]');
}

async function openSecurity() {
  await mount('UserProfile');
  await page.click('.cl-navbarButton__security');
  await page.waitForSelector('.cl-profileSection__mfa');
}

before(async () => {
  latchkey = await startLatchkey();
  app = await startAppServer({
    latchkey,
    pages: { '/': (c) => readPage('page.html').replace('{{PUBLISHABLE_KEY}}', c.publishableKey) },
  });
  // The user, made with the secret key (its address verified), signs in with the password.
  const created = await bapi('/users', { method: 'POST', body: JSON.stringify({ email_address: [EMAIL], password: PASSWORD }) });
  assert.equal(created.status, 200, await created.clone().text());
  userId = (await created.json()).id;
  browser = await launchBrowser();
  page = await browser.context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && !/Failed to load resource/.test(m.text()) && problems.push(`console: ${m.text()}`));
  wire = recordWire(page);
  await page.goto(`${app.origin}/`);
  await page.evaluate(() => window.clerkLoaded);
});

after(async () => {
  await browser?.close();
  await app?.close();
  await latchkey?.stop();
});

test('the TOTP of this file is RFC 6238 (its SHA-1 test vectors, six digits)', () => {
  // RFC 6238 Appendix B: the ASCII key "12345678901234567890"; at T = 59 s the eight-digit code
  // is 94287082, at 1111111109 s 07081804, at 2000000000 s 69279037.
  const key = base32Decode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
  assert.equal(key.toString(), '12345678901234567890');
  assert.equal(hotp(key, stepAt(59_000), 8), '94287082');
  assert.equal(hotp(key, stepAt(1111111109_000), 8), '07081804');
  assert.equal(hotp(key, stepAt(2000000000_000), 8), '69279037');
  assert.equal(hotp(key, stepAt(59_000)), '287082');
});

let secret, backupCodes;

test('an authenticator app added in the prebuilt UserProfile, its secret read as text; the backup codes shown', async () => {
  const from = wire.length;
  await mount('SignIn');
  await page.waitForSelector('input[name=identifier]');
  await page.fill('input[name=identifier]', EMAIL);
  await page.click('button:has-text("Continue")');
  await page.waitForSelector('input[name=password]');
  await page.fill('input[name=password]', PASSWORD);
  await reloadsAfter('the sign-in', () => page.click('button:has-text("Continue")'));
  await until('signed in with the password', () => window.Clerk.user != null);
  assert.equal(await state(), `signed in as ${EMAIL}`);
  assert.deepEqual(await page.evaluate(() => window.Clerk.session.factorVerificationAge), [0, -1], 'no second factor yet');

  // Security → Two-step verification: the one button adds the factors the environment offers
  // (backup codes come with the app, so only the app is offered).
  await openSecurity();
  const section = page.locator('.cl-profileSection__mfa');
  assert.match(await section.textContent(), /Two-step verification/);
  await page.click('.cl-profileSection__mfa button:has-text("Add two-step verification")');
  const items = page.locator('.cl-profileSection__mfa .cl-menuItem');
  await items.first().waitFor();
  assert.deepEqual((await items.allTextContents()).map((t) => t.trim()), ['Authenticator application']);
  await settled();
  await shot('UserProfile-add-second-factor');
  await items.first().click();

  // The card shows the QR code of the key latchkey made (POST /v1/me/totp); "Can't scan QR
  // code?" shows the secret and the otpauth URI as text.
  await page.waitForSelector('.cl-headerTitle:has-text("Add authenticator application")');
  const unableToScan = page.locator('button:has-text("Can’t scan QR code?")');
  await unableToScan.waitFor();
  await unableToScan.click();
  const copyable = page.locator('.cl-profileSection__mfa input[readonly]');
  await until('the secret shown as text', () => document.querySelectorAll('.cl-profileSection__mfa input[readonly]').length === 2);
  const [shownSecret, uri] = await copyable.evaluateAll((els) => els.map((e) => e.value));
  assert.match(shownSecret, /^[A-Z2-7]{16,}=*$/, 'a base32 secret');
  const parsed = new URL(uri);
  assert.equal(parsed.protocol, 'otpauth:');
  assert.equal(parsed.host, 'totp');
  assert.equal(parsed.searchParams.get('secret'), shownSecret, uri);
  assert.ok(decodeURIComponent(parsed.pathname).endsWith(EMAIL), uri);
  for (const [k, v] of [['digits', '6'], ['period', '30'], ['algorithm', 'SHA1']]) {
    const given = parsed.searchParams.get(k);
    assert.ok(given === null || given === v, `${k}=${given} in ${uri}`);
  }
  secret = shownSecret;
  await settled();
  await shot('UserProfile-totp-secret');

  // Continue → the code of the app (computed here); the sixth digit submits it.
  await page.click('.cl-profileSection__mfa .cl-formButtonPrimary:has-text("Continue")');
  await page.waitForSelector('.cl-profileSection__mfa input[autocomplete=one-time-code]');
  await settled();
  await shot('UserProfile-totp-verify');
  await page.fill('.cl-profileSection__mfa input[autocomplete=one-time-code]', await freshCode(secret));

  // The success card lists the ten backup codes the verification brought.
  await page.waitForSelector('text=Two-step verification is now enabled');
  await page.waitForSelector('.cl-profileSection__mfa :text("Backup codes")');
  backupCodes = await page.evaluate(() => {
    const root = document.querySelector('.cl-profileSection__mfa');
    const texts = [...root.querySelectorAll('p, span')].map((e) => e.textContent.trim());
    return [...new Set(texts.filter((t) => /^[a-z0-9]{10}$/.test(t)))];
  });
  assert.equal(backupCodes.length, 10, `ten backup codes shown: ${JSON.stringify(backupCodes)}`);
  await settled();
  await shot('UserProfile-backup-codes');
  await page.click('.cl-profileSection__mfa button:has-text("Finish")');

  // The section lists the app (the default factor) and the backup codes.
  await until('the app listed', () => [...document.querySelectorAll('.cl-profileSectionItem__mfa')].some((e) => /Authenticator application/.test(e.textContent)));
  const rows = (await page.locator('.cl-profileSectionItem__mfa').allTextContents()).map((t) => t.trim());
  assert.deepEqual(rows, ['Authenticator applicationDefault', 'Backup codes']);
  await settled();
  await shot('UserProfile-second-factors');
  const me = await page.evaluate(() => ({ totp: window.Clerk.user.totpEnabled, backup: window.Clerk.user.backupCodeEnabled, two: window.Clerk.user.twoFactorEnabled }));
  assert.deepEqual(me, { totp: true, backup: true, two: true });
  assert.deepEqual(await page.evaluate(() => window.Clerk.session.factorVerificationAge), [0, 0], 'the enrolling session proved the app');
  const calls = assertWire(from);
  assert.ok(calls.includes('POST /v1/me/totp 200'), calls.join('\n'));
  assert.ok(calls.includes('POST /v1/me/totp/attempt_verification 200'), calls.join('\n'));
  const user = await (await bapi(`/users/${userId}`)).json();
  assert.deepEqual([user.totp_enabled, user.backup_code_enabled, user.two_factor_enabled], [true, true, true]);
});

test('SignIn asks for the app\'s code after the password; the session token has both factors', async () => {
  await signOut();
  const from = wire.length;
  await passwordThenFactorTwo();
  await settled();
  await shot('SignIn-factor-two-totp');
  // The code of the step the enrolment used is spent: the next step's code, once it is due.
  const code = await freshCode(secret);
  await reloadsAfter('the second factor', () => page.fill('input[autocomplete=one-time-code]', code));
  await until('signed in with the app', () => window.Clerk.user != null);
  assert.equal(await state(), `signed in as ${EMAIL}`);
  const session = await page.evaluate(() => ({ status: window.Clerk.session.status, user: window.Clerk.user.id, fva: window.Clerk.session.factorVerificationAge }));
  assert.deepEqual(session, { status: 'active', user: userId, fva: [0, 0] });
  const claims = decode(await page.evaluate(() => window.Clerk.session.getToken({ skipCache: true })));
  assert.equal(claims.sub, userId);
  assert.ok(Array.isArray(claims.fva), JSON.stringify(claims));
  assert.equal(claims.fva[1], 0, `fva ${JSON.stringify(claims.fva)}: the second factor just proved`);
  const calls = assertWire(from);
  assert.ok(calls.includes('POST /v1/client/sign_ins/{id}/attempt_first_factor 200'), calls.join('\n'));
  assert.ok(calls.includes('POST /v1/client/sign_ins/{id}/attempt_second_factor 200'), calls.join('\n'));
});

test('"Use another method" → a backup code signs in once; the same code again is refused', async () => {
  const [code, other] = backupCodes;
  await signOut();
  let from = wire.length;
  await passwordThenFactorTwo();
  await toBackupCodeCard();
  await settled();
  await shot('SignIn-backup-code');
  await page.fill('input[name=code]', code);
  await reloadsAfter('the backup code', () => page.click('.cl-formButtonPrimary:has-text("Continue")'));
  await until('signed in with a backup code', () => window.Clerk.user != null);
  assert.equal(await state(), `signed in as ${EMAIL}`);
  const calls = assertWire(from);
  assert.ok(calls.includes('POST /v1/client/sign_ins/{id}/attempt_second_factor 200'), calls.join('\n'));

  // Again with the same code: refused, the card says so and the attempt waits.
  await signOut();
  from = wire.length;
  await passwordThenFactorTwo();
  await toBackupCodeCard();
  await page.fill('input[name=code]', code);
  await page.click('.cl-formButtonPrimary:has-text("Continue")');
  // latchkey's 422 form_code_incorrect (param `code`) shows under the field.
  const error = page.locator('.cl-formFieldErrorText__code');
  await error.waitFor();
  assert.equal((await error.textContent()).trim(), 'Incorrect code. 4 attempts remain.');
  await settled();
  await shot('SignIn-backup-code-used');
  assert.equal(await page.evaluate(() => window.Clerk.user), null, 'not signed in');
  assert.equal(await page.evaluate(() => window.Clerk.client.signIn.status), 'needs_second_factor');
  assertWire(from, ['POST /v1/client/sign_ins/{id}/attempt_second_factor 422']);

  // Another, unused code of the set signs in.
  from = wire.length;
  await page.fill('input[name=code]', other);
  await reloadsAfter('another backup code', () => page.click('.cl-formButtonPrimary:has-text("Continue")'));
  await until('signed in with another backup code', () => window.Clerk.user != null);
  assertWire(from);
});

test('removing the app in UserProfile needs a fresh second factor: Clerk\'s reverification modal', async () => {
  // The session proved its factors just now; make that 20 minutes ago in latchkey's database.
  const sessionId = await page.evaluate(() => window.Clerk.session.id);
  const db = join(latchkey.dataDir, 'latchkey.db');
  assert.ok(existsSync(db), `no database at ${db}`);
  const py = [
    'import sqlite3, sys',
    'c = sqlite3.connect(sys.argv[1], timeout=30)',
    'n = c.execute("UPDATE sessions SET created_at = created_at - 1200000, first_factor_verified_at = COALESCE(first_factor_verified_at, created_at) - 1200000, second_factor_verified_at = second_factor_verified_at - 1200000 WHERE id = ?", (sys.argv[2],)).rowcount',
    'c.commit()',
    'print(n)',
  ].join('\n');
  assert.equal(execFileSync('python3', ['-c', py, db, sessionId], { encoding: 'utf8' }).trim(), '1', 'one session aged');
  // A new page load: clerk-js reads the client again, with the session's new ages.
  await page.reload();
  await page.evaluate(() => window.clerkLoaded);
  const fva = await page.evaluate(() => window.Clerk.session.factorVerificationAge);
  assert.ok(fva[0] >= 20 && fva[1] >= 20, `the session's factors are 20 minutes old: ${JSON.stringify(fva)}`);

  const from = wire.length;
  await openSecurity();
  const app = page.locator('.cl-profileSectionItem__mfa').filter({ hasText: 'Authenticator application' });
  await app.locator('.cl-menuButtonEllipsis').click();
  await page.click('.cl-menuItem:has-text("Remove")');
  await page.waitForSelector('.cl-headerTitle:has-text("Remove two-step verification")');
  await settled();
  await shot('UserProfile-remove-totp');
  await page.click('.cl-profileSection__mfa .cl-formButtonPrimary:has-text("Remove")');

  // DELETE /v1/me/totp is refused (403 session_reverification_required): the modal asks for the
  // app's code (the check starts at the second factor, the user has one).
  const modal = page.locator('.cl-modalContent');
  await modal.waitFor({ timeout: 30_000 });
  await modal.locator('.cl-headerTitle:has-text("Verification required")').waitFor();
  await modal.locator('input[autocomplete=one-time-code]').waitFor();
  assert.match(await modal.textContent(), /Enter the code generated by your authenticator app to continue/);
  await settled();
  await shot('UserVerification-totp');
  await modal.locator('input[autocomplete=one-time-code]').fill(await freshCode(secret));

  // The modal closes, useReverification calls DELETE again, and the app is gone.
  await modal.waitFor({ state: 'detached', timeout: 30_000 });
  await until('the app no longer listed', () => ![...document.querySelectorAll('.cl-profileSectionItem__mfa')].some((e) => /Authenticator application/.test(e.textContent)));
  await until('the user has no app', () => window.Clerk.user.totpEnabled === false);
  await settled();
  await shot('UserProfile-totp-removed');
  assert.deepEqual((await page.locator('.cl-profileSectionItem__mfa').allTextContents()).map((t) => t.trim()), [], 'its backup codes went with it');
  await page.locator('.cl-profileSection__mfa button:has-text("Add two-step verification")').waitFor();
  const calls = assertWire(from, ['DELETE /v1/me/totp 403']);
  for (const call of ['POST /v1/client/sessions/{id}/verify 200', 'POST /v1/client/sessions/{id}/verify/attempt_second_factor 200', 'DELETE /v1/me/totp 200']) {
    assert.ok(calls.includes(call), `${call}:\n${calls.join('\n')}`);
  }
  assert.deepEqual(await page.evaluate(() => window.Clerk.session.factorVerificationAge.slice(1)), [0], 'the check just proved the app');
  const user = await (await bapi(`/users/${userId}`)).json();
  assert.deepEqual([user.totp_enabled, user.backup_code_enabled, user.two_factor_enabled], [false, false, false]);
});

test('problems', () => assert.deepEqual(problems, []));
