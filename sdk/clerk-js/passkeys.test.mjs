// Passkeys (docs/passkeys.md) through Clerk's own browser SDK, unmodified: the pinned
// @clerk/clerk-js and @clerk/ui bundles in Debian's Chromium, reaching latchkey through Clerk's
// same-origin proxy, with Chromium's virtual authenticator (the DevTools protocol's WebAuthn
// domain) as the person's device. UserProfile adds a passkey (Security → "Add a passkey"),
// lists it under the browser's name and renames it; SignIn's "Use passkey instead" signs in
// with it, and so does the browser's autofill (conditional mediation) without a click; an
// authenticator without it, and a copy of it whose signature counter went back, are refused;
// once removed in UserProfile, the authenticator's credential no longer signs in.
//
// WebAuthn refuses an IP address as a relying-party id, so the app is loaded at
// http://localhost:PORT (latchkey: `rp_id = "localhost"`, that origin in allowed_origins).
// clerk-js offers no passkeys when `navigator.webdriver` is true, as it is under a driven
// browser: an init script makes it read false. Another init script only watches
// navigator.credentials (each create/get, its mediation and how it ended) and reports it here;
// the calls themselves go to Chromium unchanged.
// Screenshots of the prebuilt components are kept under target/artifacts/clerk-js/.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, mailbox, startLatchkey } from '../clerk-backend/latchkey.mjs';
import { readPage, startAppServer } from './app-server.mjs';
import { launchBrowser, mount, recordWire, reloadsAfter, settled, until } from './browser.mjs';

const artifacts = resolve(import.meta.dirname, '../../target/artifacts/clerk-js');
mkdirSync(artifacts, { recursive: true });

const EMAIL = 'grace@example.com';
const PASSWORD = 'compiler of the first order';
const RENAMED = 'Grace’s laptop';
let latchkey, app, browser, userId, passkeyId, createdAt;
let main; // the tab whose authenticator holds the passkey
const problems = [];

const bapi = (path, init = {}) => fetch(`${latchkey.url}/v1${path}`, {
  ...init,
  headers: { authorization: `Bearer ${latchkey.secretKey}`, 'content-type': 'application/json' },
});
const sessionsOfUser = async () => {
  const res = await bapi(`/sessions?user_id=${userId}`);
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()).map((s) => s.id).sort();
};

// A CTAP 2.1 authenticator built into the device ("internal"), keeping discoverable
// credentials, verifying the user (the fingerprint or PIN) and, while presence simulation is
// on, touched at once for every request.
const AUTHENTICATOR = {
  protocol: 'ctap2', ctap2Version: 'ctap2_1', transport: 'internal',
  hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
};

// Runs in every page before its scripts: reports each navigator.credentials.create/get (its
// mediation, then how it ended: "credential" or the DOMException's name) to `__webauthnSeen`.
function watchCredentials() {
  const container = navigator.credentials;
  let n = 0;
  for (const op of ['create', 'get']) {
    const call = container[op].bind(container);
    container[op] = (options) => {
      const id = `${performance.timeOrigin}:${++n}`;
      const answer = call(options);
      window.__webauthnSeen?.({ id, op, mediation: options?.mediation ?? 'optional', rpId: options?.publicKey?.rpId ?? options?.publicKey?.rp?.id ?? null });
      answer.then((c) => window.__webauthnSeen?.({ id, outcome: c ? 'credential' : 'null' }), (e) => window.__webauthnSeen?.({ id, outcome: e?.name ?? String(e) }));
      return answer;
    };
  }
}

// A tab of the shared browser with its own virtual authenticator (one per page: another tab's
// authenticator is not this tab's), its wire, and the WebAuthn calls of its pages.
async function newTab({ presence = true } = {}) {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && !/Failed to load resource/.test(m.text()) && problems.push(`console: ${m.text()}`));
  const calls = [];
  const waiters = new Set();
  const check = () => {
    for (const w of waiters) {
      const found = calls.slice(w.from).find(w.match);
      if (found) {
        waiters.delete(w);
        clearTimeout(w.timer);
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
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', { options: { ...AUTHENTICATOR, automaticPresenceSimulation: presence } });
  const wire = recordWire(page);
  // Each POST /v1/client/sign_ins passes `beforeSignIn` (once armed) on its way to latchkey.
  // Routed for the tab's whole life: removing a route while requests are under way may lose
  // their `response` events (and so calls on the wire).
  let beforeSignIn = null;
  await page.route((url) => url.pathname === '/__clerk/v1/client/sign_ins', async (route) => {
    if (route.request().method() === 'POST' && beforeSignIn) {
      const hook = beforeSignIn;
      beforeSignIn = null;
      await hook();
    }
    await route.continue();
  });
  await page.goto(`${app.origin}/`);
  await page.evaluate(() => window.clerkLoaded);
  const tab = {
    page,
    cdp,
    authenticatorId,
    wire,
    calls,
    // The first WebAuthn call since `from` that `match`es, waiting for it.
    nextCall(from, match, what, ms = 30_000) {
      return new Promise((ok, fail) => {
        const w = { from, match, ok };
        w.timer = setTimeout(() => {
          waiters.delete(w);
          fail(new Error(`no WebAuthn call: ${what} within ${ms / 1000} s; seen: ${JSON.stringify(calls.slice(from))}`));
        }, ms);
        waiters.add(w);
        check();
      });
    },
    credentials: async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials,
    presence: (enabled) => cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled }),
    // Runs `fn` before the next POST /v1/client/sign_ins goes on.
    beforeNextSignIn(fn) {
      beforeSignIn = fn;
    },
    shot: (name) => page.screenshot({ path: `${artifacts}/${name}.png` }),
    async close() {
      await cdp.detach().catch(() => {});
      await page.close();
    },
  };
  return tab;
}

// The Frontend API calls since `from`, as "METHOD /v1/path status" with ids replaced by {id};
// fails if any answered 4xx/5xx other than the `expected` ones.
const shape = (w) => `${w.method} ${w.path.replace(/\/(sia|sua|sess|user|idn)_[A-Za-z0-9]+/g, '/{id}')} ${w.status}`;
function assertWire(tab, from, expected = []) {
  const calls = tab.wire.slice(from).map(shape);
  const failed = calls.filter((c) => Number(c.split(' ').at(-1)) >= 400);
  assert.deepEqual(failed, expected, `Frontend API failures other than expected:\n${calls.join('\n')}`);
  return calls;
}

async function signOut(tab) {
  // Not awaited in the page: the navigation that ends signOut() may tear down this evaluation.
  await reloadsAfter(tab.page, 'the sign-out', () => tab.page.evaluate(() => {
    window.Clerk.signOut().catch((e) => console.error(`signOut: ${e}`));
  }));
  await until(tab.page, 'signed out', () => window.Clerk.user == null);
}

// SignIn with the email address and the password. The authenticator is not touched meanwhile
// (presence simulation off): the autofill request SignIn starts at once must not sign in.
async function signInWithPassword(tab) {
  await tab.presence(false);
  await mount(tab.page, 'SignIn');
  await tab.page.waitForSelector('input[name=identifier]');
  await tab.page.fill('input[name=identifier]', EMAIL);
  await tab.page.click('button:has-text("Continue")');
  await tab.page.waitForSelector('input[name=password]');
  await tab.page.fill('input[name=password]', PASSWORD);
  await reloadsAfter(tab.page, 'the password sign-in', () => tab.page.click('button:has-text("Continue")'));
  await until(tab.page, 'signed in with the password', () => window.Clerk.user != null);
  await tab.presence(true);
}

// SignIn → "Use passkey instead". A mounted SignIn asks the browser at once for a passkey in
// its autofill (a `get` with conditional mediation); an authenticator touched automatically
// would answer that request before any click. So the authenticator is not touched (presence
// simulation off) while SignIn mounts and makes that request, which then waits in it; it is
// touched again only once the click is under way: the click's POST /v1/client/sign_ins is held
// until presence is back on. clerk-js aborts the autofill request (AbortError) before it asks
// again; the authenticator answers the button's request (mediation "optional"). Returns that
// request, once it ended.
async function clickUsePasskey(tab) {
  const from = tab.calls.length;
  await tab.presence(false);
  await mount(tab.page, 'SignIn');
  await tab.page.waitForSelector('input[name=identifier]');
  const autofill = await tab.nextCall(from, (c) => c.op === 'get' && c.mediation === 'conditional', 'the autofill request of SignIn');
  assert.equal(autofill.outcome, 'pending', `the autofill request waits: ${JSON.stringify(autofill)}`);
  let held = 0;
  tab.beforeNextSignIn(() => {
    held += 1;
    return tab.presence(true);
  });
  try {
    const button = tab.page.locator('.cl-footerAction__usePasskey .cl-footerActionLink');
    assert.equal((await button.textContent()).trim(), 'Use passkey instead');
    await button.click();
    const asked = await tab.nextCall(from, (c) => c.op === 'get' && c.mediation === 'optional' && c.outcome !== 'pending', 'the button\'s request, answered');
    assert.equal(held, 1, 'one sign-in started by the click');
    assert.equal(autofill.outcome, 'AbortError', `clerk-js ended the autofill request: ${JSON.stringify(autofill)}`);
    return asked;
  } finally {
    tab.beforeNextSignIn(null);
    await tab.presence(true);
  }
}

// The body of the next answer to an attempt of the sign-in's first factor (through the proxy).
// A failure shows where it is awaited (a step before it may fail first).
function nextAttempt(tab) {
  const answer = tab.page.waitForResponse((r) => /\/v1\/client\/sign_ins\/sia_[A-Za-z0-9]+\/attempt_first_factor$/.test(new URL(r.url()).pathname), { timeout: 30_000 })
    .then(async (r) => ({ status: r.status(), body: await r.json() }));
  answer.catch(() => {});
  return answer;
}

// Every refusal of a passkey is latchkey's one 422 verification_failed (docs/passkeys.md), and
// SignIn shows its message on the card.
function assertRefused(attempt, shown) {
  assert.equal(attempt.status, 422, JSON.stringify(attempt.body));
  assert.equal(attempt.body.errors?.length, 1, JSON.stringify(attempt.body));
  const [e] = attempt.body.errors;
  assert.equal(e.code, 'verification_failed', JSON.stringify(e));
  assert.equal(shown, e.long_message ?? e.message, JSON.stringify(e));
}

// The card's error, as SignIn shows it after a refused passkey.
async function cardError(tab) {
  const alert = tab.page.locator('.cl-cardBox .cl-alert');
  await alert.waitFor({ timeout: 30_000 });
  await settled(tab.page);
  return (await alert.textContent()).trim();
}

async function openPasskeys(tab) {
  await mount(tab.page, 'UserProfile');
  await tab.page.click('.cl-navbarButton__security');
  await tab.page.waitForSelector('.cl-profileSection__passkeys');
}
const listed = (tab) => tab.page.locator('.cl-profileSectionItem__passkeys').evaluateAll((els) => els.map((e) => e.querySelector('p')?.textContent));

before(async () => {
  // The app's origin is named in latchkey's configuration: its port is chosen first.
  const port = await freePort();
  latchkey = await startLatchkey({
    config: [
      `allowed_origins = ["http://localhost:${port}"]`,
      '[passkeys]',
      'enabled = true',
      'rp_id = "localhost"',
      'allow_autofill = true',
      'show_sign_in_button = true',
      '',
    ].join('\n'),
  });
  app = await startAppServer({
    latchkey,
    port,
    hostname: 'localhost',
    pages: { '/': (c) => readPage('page.html').replace('{{PUBLISHABLE_KEY}}', c.publishableKey) },
  });
  assert.equal(app.origin, `http://localhost:${port}`);
  const created = await bapi('/users', { method: 'POST', body: JSON.stringify({ email_address: [EMAIL], password: PASSWORD }) });
  assert.equal(created.status, 200, await created.clone().text());
  userId = (await created.json()).id;
  browser = await launchBrowser();
  await browser.context.addInitScript(() => Object.defineProperty(Object.getPrototypeOf(navigator), 'webdriver', { get: () => false }));
  main = await newTab();
});

after(async () => {
  await browser?.close();
  await app?.close();
  await latchkey?.stop();
});

test('the environment offers passkeys, and clerk-js finds WebAuthn in this browser', async () => {
  const env = await main.page.evaluate(async () => {
    const s = window.Clerk.__internal_environment.userSettings;
    return {
      passkey: s.attributes.passkey?.enabled,
      firstFactors: s.attributes.passkey?.first_factors,
      settings: s.passkeySettings,
      webdriver: navigator.webdriver,
      conditional: await PublicKeyCredential.isConditionalMediationAvailable(),
    };
  });
  assert.deepEqual(env, {
    passkey: true,
    firstFactors: ['passkey'],
    settings: { allow_autofill: true, show_sign_in_button: true, satisfies_second_factor: true },
    webdriver: false,
    conditional: true,
  });
});

test('UserProfile → Security → "Add a passkey": listed under the browser\'s name, renamed; the Backend API and the authenticator have it', async () => {
  await signInWithPassword(main);
  assert.deepEqual(await main.credentials(), [], 'the authenticator holds nothing yet');
  const inbox = await mailbox(latchkey.url, EMAIL);
  const from = main.wire.length;
  const callsFrom = main.calls.length;
  await openPasskeys(main);
  assert.deepEqual(await listed(main), []);
  await settled(main.page);
  await main.shot('UserProfile-passkeys-empty');
  await main.page.click('.cl-profileSection__passkeys button:has-text("Add a passkey")');
  const created = await main.nextCall(callsFrom, (c) => c.op === 'create' && c.outcome !== 'pending', 'navigator.credentials.create, answered');
  assert.deepEqual([created.outcome, created.rpId], ['credential', 'localhost']);

  await until(main.page, 'the passkey listed', () => document.querySelectorAll('.cl-profileSectionItem__passkeys').length === 1);
  assert.deepEqual(await listed(main), ['Chrome on Linux']);
  await settled(main.page);
  await main.shot('UserProfile-passkey-added');
  let calls = assertWire(main, from);
  for (const call of ['POST /v1/me/passkeys 200', 'POST /v1/me/passkeys/{id}/attempt_verification 200']) assert.ok(calls.includes(call), `${call}:\n${calls.join('\n')}`);
  const mine = await main.page.evaluate(() => window.Clerk.user.passkeys.map((p) => ({ id: p.id, name: p.name, status: p.verification?.status })));
  assert.equal(mine.length, 1);
  passkeyId = mine[0].id;
  assert.match(passkeyId, /^idn_/);
  assert.deepEqual(mine[0], { id: passkeyId, name: 'Chrome on Linux', status: 'verified' });
  const mail = await inbox.next((m) => /passkey/i.test(`${m.subject}\n${m.text}`), '"a passkey was added" mail');
  assert.match(mail.text, /Chrome on Linux/, mail.text);

  // The item's menu → "Rename": Clerk's form saves the new name (PATCH /v1/me/passkeys/{id}).
  const renameFrom = main.wire.length;
  await main.page.click('.cl-profileSectionItem__passkeys .cl-menuButtonEllipsis');
  await main.page.click('.cl-menuItem:has-text("Rename")');
  await main.page.waitForSelector('.cl-headerTitle:has-text("Rename Passkey")');
  const name = main.page.locator('.cl-profileSection__passkeys input[name=passkeyName]');
  assert.equal(await name.inputValue(), 'Chrome on Linux');
  await name.fill(RENAMED);
  await settled(main.page);
  await main.shot('UserProfile-passkey-rename');
  await main.page.click('.cl-profileSection__passkeys .cl-formButtonPrimary:has-text("Save")');
  await until(main.page, 'the new name listed', () => [...document.querySelectorAll('.cl-profileSectionItem__passkeys p')].some((p) => p.textContent === 'Grace’s laptop'));
  assert.deepEqual(await listed(main), [RENAMED]);
  calls = assertWire(main, renameFrom);
  assert.ok(calls.includes('PATCH /v1/me/passkeys/{id} 200'), calls.join('\n'));
  await settled(main.page);
  await main.shot('UserProfile-passkeys');

  // The Backend API's user lists it (its Passkey object: no creation times, no nonce).
  const user = await (await bapi(`/users/${userId}`)).json();
  assert.equal(user.passkeys.length, 1, JSON.stringify(user.passkeys));
  const [pk] = user.passkeys;
  createdAt = pk.last_used_at; // the creation time until its first use
  assert.deepEqual(Object.keys(pk).sort(), ['id', 'last_used_at', 'name', 'object', 'verification']);
  assert.deepEqual({ ...pk, last_used_at: typeof pk.last_used_at }, {
    id: passkeyId,
    object: 'passkey',
    name: RENAMED,
    last_used_at: 'number',
    verification: { object: 'verification_passkey', status: 'verified', strategy: 'passkey', attempts: null, expire_at: null },
  });

  // The authenticator holds one discoverable credential for the relying party "localhost",
  // under the user's WebAuthn handle (a random 16 bytes, not the user id).
  const held = await main.credentials();
  assert.equal(held.length, 1, JSON.stringify(held));
  const [c] = held;
  assert.deepEqual([c.isResidentCredential, c.rpId, c.signCount, c.userName], [true, 'localhost', 1, EMAIL]);
  const handle = Buffer.from(c.userHandle, 'base64');
  assert.equal(handle.length, 16, c.userHandle);
  assert.ok(!handle.toString('latin1').includes(userId));
});

test('SignIn → "Use passkey instead" signs in with it: a session for the user, both factors proved', async () => {
  await signOut(main);
  const before = await sessionsOfUser();
  const from = main.wire.length;
  let asked;
  await reloadsAfter(main.page, 'the passkey sign-in', async () => {
    asked = await clickUsePasskey(main);
  });
  assert.equal(asked.outcome, 'credential');
  await until(main.page, 'signed in with the passkey', () => window.Clerk.user != null);
  const session = await main.page.evaluate(() => ({ user: window.Clerk.user.id, status: window.Clerk.session.status, fva: window.Clerk.session.factorVerificationAge }));
  assert.deepEqual(session, { user: userId, status: 'active', fva: [0, 0] });
  assert.equal(await main.page.textContent('#state'), `signed in as ${EMAIL}`);
  const calls = assertWire(main, from);
  assert.equal(calls.filter((c) => c === 'POST /v1/client/sign_ins 200').length, 2, `the autofill's sign-in and the button's:\n${calls.join('\n')}`);
  assert.ok(calls.includes('POST /v1/client/sign_ins/{id}/attempt_first_factor 200'), calls.join('\n'));
  const now = await sessionsOfUser();
  assert.equal(now.length, before.length + 1, 'one new session');
  assert.equal((await main.credentials())[0].signCount, 2);
  // Its use is recorded: UserProfile's "Last used", the Backend API's last_used_at.
  assert.equal(await main.page.evaluate(() => window.Clerk.user.passkeys[0].lastUsedAt instanceof Date), true);
  const user = await (await bapi(`/users/${userId}`)).json();
  assert.ok(user.passkeys[0].last_used_at > createdAt, `last_used_at ${user.passkeys[0].last_used_at}, created ${createdAt}`);
});

test('SignIn signs in through the browser\'s autofill (conditional mediation), without a click', async () => {
  await signOut(main);
  const from = main.wire.length;
  const callsFrom = main.calls.length;
  // Chromium's virtual authenticator, touched automatically, answers a conditional request at
  // once with the one credential it holds for this relying party: the passkey a person would
  // pick in the identifier field's autofill.
  await reloadsAfter(main.page, 'the autofill sign-in', () => mount(main.page, 'SignIn'));
  await until(main.page, 'signed in through autofill', () => window.Clerk.user != null);
  assert.equal(await main.page.evaluate(() => window.Clerk.user.id), userId);
  const asked = main.calls.slice(callsFrom).filter((c) => c.op === 'get');
  assert.deepEqual(asked.map((c) => [c.mediation, c.outcome]), [['conditional', 'credential']]);
  const calls = assertWire(main, from);
  assert.equal(calls.filter((c) => c === 'POST /v1/client/sign_ins 200').length, 1, calls.join('\n'));
  assert.ok(calls.includes('POST /v1/client/sign_ins/{id}/attempt_first_factor 200'), calls.join('\n'));
  assert.equal((await main.credentials())[0].signCount, 3);
});

test('a second device without the passkey: "Use passkey instead" is refused, no session', async () => {
  await signOut(main);
  const other = await newTab();
  try {
    assert.deepEqual(await other.credentials(), [], 'this tab\'s authenticator holds nothing');
    assert.equal(await other.page.evaluate(() => window.Clerk.user), null);
    const before = await sessionsOfUser();
    const from = other.wire.length;
    const asked = await clickUsePasskey(other);
    // The browser finds no credential for "localhost": clerk-js's passkey_retrieval_cancelled.
    assert.equal(asked.outcome, 'NotAllowedError');
    assert.equal(await cardError(other), 'Passkey verification was cancelled or timed out.');
    await other.shot('SignIn-passkey-none');
    assert.equal(await other.page.evaluate(() => window.Clerk.user), null, 'not signed in');
    const calls = assertWire(other, from);
    assert.ok(!calls.some((c) => c.includes('attempt_first_factor')), `nothing to attempt:\n${calls.join('\n')}`);
    assert.deepEqual(await sessionsOfUser(), before, 'no session made');
  } finally {
    await other.close();
  }
});

test('a copy of the passkey whose signature counter went back is refused, no session; the original still signs in', async () => {
  const [original] = await main.credentials();
  assert.equal(original.signCount, 3, 'latchkey stored 3 at the last sign-in');
  const clone = await newTab({ presence: false });
  try {
    await clone.cdp.send('WebAuthn.addCredential', { authenticatorId: clone.authenticatorId, credential: { ...original, signCount: 0 } });
    const before = await sessionsOfUser();
    const from = clone.wire.length;
    const attempt = nextAttempt(clone);
    const asked = await clickUsePasskey(clone);
    assert.equal(asked.outcome, 'credential', 'the copy answers (its counter now 1)');
    assert.equal((await clone.credentials())[0].signCount, 1);
    const error = await cardError(clone);
    assertRefused(await attempt, error);
    await clone.shot('SignIn-passkey-counter-regression');
    assert.equal(await clone.page.evaluate(() => window.Clerk.user), null, 'not signed in');
    assertWire(clone, from, ['POST /v1/client/sign_ins/{id}/attempt_first_factor 422']);
    assert.deepEqual(await sessionsOfUser(), before, `no session made (the card says: ${error})`);
  } finally {
    await clone.close();
  }

  // The original's counter (4) is above the stored 3: it signs in.
  const from = main.wire.length;
  await reloadsAfter(main.page, 'the original\'s sign-in', async () => {
    assert.equal((await clickUsePasskey(main)).outcome, 'credential');
  });
  await until(main.page, 'signed in with the original', () => window.Clerk.user != null);
  assert.equal(await main.page.evaluate(() => window.Clerk.user.id), userId);
  assertWire(main, from);
  assert.equal((await main.credentials())[0].signCount, 4);
});

test('UserProfile removes the passkey (no reverification: the session is new); its credential then no longer signs in', async () => {
  assert.deepEqual(await main.page.evaluate(() => window.Clerk.session.factorVerificationAge), [0, 0]);
  const from = main.wire.length;
  await openPasskeys(main);
  assert.deepEqual(await listed(main), [RENAMED]);
  await main.page.click('.cl-profileSectionItem__passkeys .cl-menuButtonEllipsis');
  await main.page.click('.cl-menuItem:has-text("Remove")');
  await main.page.waitForSelector('.cl-headerTitle:has-text("Remove passkey")');
  assert.match(await main.page.textContent('.cl-profileSection__passkeys'), new RegExp(`${RENAMED} will be removed from this account`));
  await settled(main.page);
  await main.shot('UserProfile-passkey-remove');
  await main.page.click('.cl-profileSection__passkeys .cl-formButtonPrimary:has-text("Remove")');
  await until(main.page, 'the passkey no longer listed', () => document.querySelectorAll('.cl-profileSectionItem__passkeys').length === 0);
  assert.equal(await main.page.locator('.cl-modalContent').count(), 0, 'no reverification modal');
  assert.deepEqual(await main.page.evaluate(() => window.Clerk.user.passkeys), []);
  await settled(main.page);
  await main.shot('UserProfile-passkey-removed');
  const calls = assertWire(main, from);
  assert.ok(calls.includes('DELETE /v1/me/passkeys/{id} 200'), calls.join('\n'));
  assert.deepEqual((await (await bapi(`/users/${userId}`)).json()).passkeys, []);

  // The authenticator still holds the credential; latchkey no longer knows it.
  await signOut(main);
  assert.equal((await main.credentials()).length, 1);
  const before = await sessionsOfUser();
  const signInFrom = main.wire.length;
  const attempt = nextAttempt(main);
  const asked = await clickUsePasskey(main);
  assert.equal(asked.outcome, 'credential');
  const error = await cardError(main);
  assertRefused(await attempt, error);
  await main.shot('SignIn-passkey-removed');
  assert.equal(await main.page.evaluate(() => window.Clerk.user), null, 'not signed in');
  assertWire(main, signInFrom, ['POST /v1/client/sign_ins/{id}/attempt_first_factor 422']);
  assert.deepEqual(await sessionsOfUser(), before, `no session made (the card says: ${error})`);
});

test('no page errors', () => {
  assert.deepEqual(problems, []);
});
