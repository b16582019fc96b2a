// Email links (docs/email-links.md) through Clerk's own browser SDK, unmodified: the pinned
// @clerk/clerk-js and @clerk/ui in Debian's Chromium, reaching latchkey through Clerk's
// same-origin proxy. SignIn → "Use another method" → "Email link": the link is read from the
// development mail sink; opened on another device (an HTTP client with no cookies of this
// browser) it asks that device to confirm (a GET alone, as a mail scanner makes, does nothing),
// then leaves it on a "verified" page, and the waiting tab signs in by itself;
// the same link again is refused, and Clerk's verify page says so; opened in a second tab of
// the same browser, that tab signs in at once. SignUp proves its address with a link too.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort, mailbox, startLatchkey } from '../clerk-backend/latchkey.mjs';
import { readPage, startAppServer } from './app-server.mjs';
import { launchBrowser, mount as mountIn, recordWire, reloadsAfter, until as untilIn } from './browser.mjs';

const EMAIL = 'rosalind@example.com';
const PASSWORD = 'photograph fifty-one';
let latchkey, app, browser, page, wire;
const problems = [];
const until = (p, what, fn, ms) => untilIn(p, what, fn, ms);

const bapi = (path, init = {}) => fetch(`${latchkey.url}/v1${path}`, {
  ...init,
  headers: { authorization: `Bearer ${latchkey.secretKey}`, 'content-type': 'application/json' },
});

async function newTab() {
  const p = await browser.context.newPage();
  p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return p;
}

// SignIn: the address, then "Use another method" → "Email link to …": the card that waits.
// Returns the link mailed for it (through the app's proxy, where this browser's client is).
async function askForLink(p) {
  const inbox = await mailbox(latchkey.url, EMAIL);
  await mountIn(p, 'SignIn');
  await p.waitForSelector('input[name=identifier]');
  await p.fill('input[name=identifier]', EMAIL);
  await p.click('button:has-text("Continue")');
  await p.waitForSelector('input[name=password]');
  await p.click('.cl-cardBox :text("Use another method")');
  await p.click(`.cl-alternativeMethodsBlockButton:has-text("Email link to ${EMAIL}")`);
  await p.waitForSelector('.cl-headerTitle:has-text("Check your email")');
  const mail = await inbox.next((m) => m.text.includes('/v1/verify?token='), 'link mail');
  const link = mail.text.split(/\s+/).find((w) => w.includes('/v1/verify?token='));
  assert.ok(link.startsWith(`${app.origin}/__clerk/v1/verify?token=`), `the link goes through the app's proxy: ${link}`);
  return link;
}

// Another device: the link's page asks to confirm (a GET alone changes nothing), and the
// confirmation (a POST to the same URL) sends it on to the app with Clerk's status.
async function openElsewhere(link) {
  const first = await fetch(link, { redirect: 'manual' });
  assert.equal(first.status, 200);
  assert.match(await first.text(), /<form method="post">/);
  const confirmed = await fetch(link, { method: 'POST', redirect: 'manual', headers: { origin: new URL(link).origin } });
  assert.equal(confirmed.status, 303, await confirmed.clone().text());
  return new URL(confirmed.headers.get('location'));
}

// A completed sign-in, and a sign-out, end with clerk-js loading its after-URL: each waits for
// that page load, so no later evaluation runs in a page being torn down.
const signedIn = (p, what) => reloadsAfter(p, what, () =>
  until(p, what, () => window.Clerk.user?.primaryEmailAddress?.emailAddress === 'rosalind@example.com', 30_000));

async function signOut(p) {
  // Not awaited in the page: the navigation that ends signOut() may tear down this evaluation.
  await reloadsAfter(p, 'the sign-out', () => p.evaluate(() => {
    window.Clerk.signOut().catch((e) => console.error(`signOut: ${e}`));
  }));
  await until(p, 'signed out', () => window.Clerk.user == null);
}

before(async () => {
  // Links lead to, and point at, only origins the operator configured: the app's is named.
  const port = await freePort();
  latchkey = await startLatchkey({ config: `allowed_origins = ["http://127.0.0.1:${port}"]\n[email_links]\nsign_up = true\n` });
  app = await startAppServer({
    latchkey,
    port,
    pages: { '/': (c) => readPage('page.html').replace('{{PUBLISHABLE_KEY}}', c.publishableKey) },
  });
  const created = await bapi('/users', { method: 'POST', body: JSON.stringify({ email_address: [EMAIL], password: PASSWORD }) });
  assert.equal(created.status, 200, await created.clone().text());
  browser = await launchBrowser();
  page = await newTab();
  wire = recordWire(page);
  await page.goto(`${app.origin}/`);
  await page.evaluate(() => window.clerkLoaded);
});

after(async () => {
  await browser?.close();
  await app?.close();
  await latchkey?.stop();
});

let usedLink;

test('a link opened on another device: that device is told, the waiting SignIn signs in by itself', async () => {
  const link = await askForLink(page);
  const onward = await openElsewhere(link);
  assert.equal(onward.searchParams.get('__clerk_status'), 'verified');
  assert.equal(onward.searchParams.get('__clerk_created_session'), null, 'no session on the other device');
  // The waiting card polls the sign-in; its next answer completes it with a session.
  await signedIn(page, 'signed in by the waiting tab');
  const polls = wire.filter((w) => w.method === 'GET' && /^\/v1\/client\/sign_ins\/sia_/.test(w.path));
  assert.ok(polls.length >= 1 && polls.every((w) => w.status === 200), JSON.stringify(polls));
  usedLink = link;
  await signOut(page);
});

test('the same link again is refused, and Clerk\'s verify page says so', async () => {
  const again = await fetch(usedLink, { method: 'POST', redirect: 'manual', headers: { origin: new URL(usedLink).origin } });
  assert.equal(again.status, 303);
  const onward = new URL(again.headers.get('location'));
  assert.equal(onward.searchParams.get('__clerk_status'), 'failed');
  const tab = await newTab();
  await tab.goto(onward.href);
  await tab.evaluate(() => window.clerkLoaded);
  await mountIn(tab, 'SignIn');
  await tab.waitForSelector('text=This verification link is invalid', { timeout: 30_000 });
  assert.equal(await tab.evaluate(() => window.Clerk.user), null);
  await tab.close();
});

test('a link opened in a second tab of the same browser signs that tab in at once', async () => {
  const link = await askForLink(page);
  const tab = await newTab();
  await tab.goto(link);
  await tab.evaluate(() => window.clerkLoaded);
  const here = new URL(tab.url());
  assert.equal(here.searchParams.get('__clerk_status'), 'verified');
  assert.match(here.searchParams.get('__clerk_created_session') ?? '', /^sess_/);
  await mountIn(tab, 'SignIn');
  await signedIn(tab, 'the second tab signed in');
  // The first tab learns it too: its card says the sign-in happened in the other tab.
  await page.waitForSelector('text=Signed in on other tab', { timeout: 30_000 });
  await signOut(tab);
  await tab.close();
});

test('SignUp proves the address with a link opened on another device', async () => {
  // A fresh page: SignIn's hash route (#/factor-one…) must not steer SignUp.
  await page.goto(`${app.origin}/`);
  await page.evaluate(() => window.clerkLoaded);
  await until(page, 'signed out here too', () => window.Clerk.user == null);
  const email = 'maurice@example.com';
  const inbox = await mailbox(latchkey.url, email);
  await mountIn(page, 'SignUp');
  await page.waitForSelector('input[name=emailAddress]');
  await page.fill('input[name=emailAddress]', email);
  await page.fill('input[name=password]', 'double helix nineteen');
  await page.click('button:has-text("Continue")');
  const mail = await inbox.next((m) => m.text.includes('/v1/verify?token='), 'sign-up link mail');
  const link = mail.text.split(/\s+/).find((w) => w.includes('/v1/verify?token='));
  assert.equal((await openElsewhere(link)).searchParams.get('__clerk_status'), 'verified');
  await until(page, 'signed up by the waiting tab', () => window.Clerk.user?.primaryEmailAddress?.emailAddress === 'maurice@example.com', 30_000);
});

test('no page errors', () => {
  assert.deepEqual(problems, []);
});
