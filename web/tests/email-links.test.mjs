// Email links on latchkey's own surfaces, in Debian's Chromium (driven by playwright-core)
// against a fresh binary (docs/email-links.md, "Hosted pages, latchkey-js and BabyLog"):
// - the hosted /sign-in: "Email me a sign-in link", the tab that asked waits ("Check your
//   email", a page without JavaScript that loads itself again), the link read from the
//   development mail sink opened in a second tab signs both in, the same link again is refused
//   in words; and the link confirmed in another browser completes the tab that asked;
// - BabyLog (latchkey-js's signInWithEmailLink): the same button on its sign-in card, the
//   waiting state and its Cancel, the link opened in a second tab completes the first, and the
//   spent link, opened again, is refused with a message.
// Nothing waits a fixed time: every step waits for the page or the event it expects.
// Screenshots land in target/artifacts/email-links/.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser } from '../../sdk/clerk-js/browser.mjs';
import { mailbox, startLatchkey } from '../../sdk/clerk-backend/latchkey.mjs';

const PASSWORD = 'correct horse battery staple';
const ARTIFACTS = resolve(import.meta.dirname, '../../target/artifacts/email-links');
mkdirSync(ARTIFACTS, { recursive: true });

let lk;
const browsers = [];
const pageErrors = [];

before(async () => {
  lk = await startLatchkey();
});
after(async () => {
  for (const b of browsers) await b.close().catch(() => undefined);
  await lk?.stop();
});

/** An account made with the Backend API. */
async function account(email) {
  const res = await fetch(`${lk.url}/v1/users`, {
    method: 'POST',
    headers: { authorization: `Bearer ${lk.secretKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ email_address: [email], password: PASSWORD }),
  });
  assert.equal(res.status, 200, await res.text());
}

/** A new browser profile; its first tab. Console errors fail the run, except Chromium's note on 4xx answers (refused links are answered 400, which the tests check). */
async function newBrowser() {
  const browser = await launchBrowser();
  browsers.push(browser);
  const watch = (page) => {
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4/.test(m.text())) {
        pageErrors.push(`console: ${m.text()}`);
      }
    });
  };
  const existing = browser.context.pages()[0];
  if (existing) watch(existing);
  browser.context.on('page', watch);
  const page = existing ?? (await browser.context.newPage());
  return { context: browser.context, page };
}

const pathOf = (page) => {
  const u = new URL(page.url());
  return `${u.pathname}${u.search}`;
};
const h1 = (page) => page.locator('h1').innerText();
const shot = (page, name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

/** Clicks `target` and waits for the page it leads to. */
async function go(page, target) {
  const loaded = page.waitForEvent('load', { timeout: 30_000 });
  await target.click();
  await loaded;
}

/** The link in the next link mail of `inbox`. */
async function nextLink(inbox) {
  const m = await inbox.next((m) => m.text.includes('/v1/verify?token='), 'sign-in link mail');
  const link = m.text.split(/\s+/).find((w) => w.includes('/v1/verify?token='));
  assert.ok(link.startsWith(`${lk.url}/v1/verify?token=`), link);
  return link;
}

/** The hosted /sign-in, up to "Check your email": the tab that asked. */
async function askOnHostedPage(page, email) {
  await page.goto(`${lk.url}/sign-in?redirect_url=%2Fuser`);
  await page.fill('#identifier', email);
  const inbox = await mailbox(lk.url, email);
  await go(page, page.getByRole('button', { name: 'Email me a sign-in link' }));
  assert.equal(pathOf(page), '/sign-in/email-link/wait?redirect_url=%2Fuser');
  assert.equal(await h1(page), 'Check your email');
  assert.match(await page.locator('p.sub').innerText(), new RegExp(`We sent a link to ${email.replace('.', '\\.')}`));
  // No script: the page loads itself again every 3 seconds until the link is opened.
  assert.equal(await page.locator('meta[http-equiv="refresh"]').getAttribute('content'), '3');
  assert.equal(await page.locator('script').count(), 0);
  return nextLink(inbox);
}

/** Waits until `page` shows /user signed in as `email` (loads of its own, as the refresh makes them). */
async function signedInOnUserPage(page, email) {
  await page.waitForURL(`${lk.url}/user`, { timeout: 30_000 });
  assert.equal(await h1(page), 'Your account');
  await page.locator('section[aria-labelledby="email-h"] li', { hasText: email }).waitFor();
}

test('hosted /sign-in: the link opened in a second tab signs in there, and the tab that asked goes on by itself; used again, it is refused', async () => {
  const email = 'hosted-link@example.com';
  await account(email);
  const { context, page: first } = await newBrowser();
  const link = await askOnHostedPage(first, email);
  await shot(first, 'hosted-check-your-email');

  const second = await context.newPage();
  await second.goto(link);
  await signedInOnUserPage(second, email);
  // The first tab's next refresh finds the session and goes on to the app's page.
  await signedInOnUserPage(first, email);
  await shot(first, 'hosted-first-tab-signed-in');

  // The same link again: a page that says so (and, signed in, the way on).
  const res = await second.goto(link);
  assert.equal(res.status(), 400);
  assert.match(pathOf(second), /^\/sign-in\/email-link\/done\?/);
  assert.equal(await h1(second), "This link can't be used");
  assert.match(await second.locator('p.sub').innerText(), /It was used already, or it is not valid\. Each link works once\./);
  assert.match(await second.locator('p.foot').innerText(), /You are signed in already\. Continue/);
  await shot(second, 'hosted-link-used-twice');
});

test('hosted /sign-in: the link confirmed in another browser completes the tab that asked; that browser stays signed out', async () => {
  const email = 'hosted-phone@example.com';
  await account(email);
  const { page: laptop } = await newBrowser();
  const link = await askOnHostedPage(laptop, email);

  const { page: phone } = await newBrowser();
  await phone.goto(link);
  assert.equal(await h1(phone), 'Sign in on your other device?');
  await go(phone, phone.getByRole('button', { name: 'Yes, sign me in there' }));
  assert.equal(await h1(phone), 'Sign-in confirmed');
  assert.match(await phone.locator('p.sub').innerText(), /Go back to the tab where you asked for the link/);
  await shot(phone, 'hosted-confirmed-on-phone');

  await signedInOnUserPage(laptop, email);
  const res = await phone.request.get(`${lk.url}/user`, { maxRedirects: 0 });
  assert.equal(res.status(), 303, 'the phone is not signed in');
});

// ---- BabyLog -------------------------------------------------------------------------------

const ready = (page) => page.waitForSelector('body[data-ready="true"]', { state: 'attached', timeout: 30_000 });

test('BabyLog: "Email me a sign-in link", the waiting state (cancellable), the link opened in a second tab signs in the first; the spent link is refused', async () => {
  const email = 'babylog-link@example.com';
  await account(email);
  const { context, page } = await newBrowser();
  await page.goto(`${lk.url}/`);
  await ready(page);
  await page.locator('#email-link').waitFor();
  await page.fill('#email-link-address', email);
  const inbox = await mailbox(lk.url, email);

  // Asked, then cancelled: the card says so and offers the button again.
  await page.click('#email-link button[type=submit]');
  await page.locator('#email-link-waiting').waitFor();
  await nextLink(inbox);
  await page.click('#email-link-cancel');
  await page.locator('#sign-in-message', { hasText: 'Stopped waiting for the sign-in link.' }).waitFor();
  await page.locator('#email-link').waitFor();

  // Asked again: the waiting state names the address.
  await page.click('#email-link button[type=submit]');
  const waiting = page.locator('#email-link-sent');
  await waiting.waitFor();
  assert.match(await waiting.innerText(), new RegExp(`Check your email: we sent a sign-in link to ${email.replace('.', '\\.')}\\.`));
  assert.equal(await page.isHidden('#email-link'), true);
  await shot(page, 'babylog-check-your-email');
  const link = await nextLink(inbox);

  // Opened in a second tab: BabyLog opens there signed in, and the first tab's wait ends.
  const second = await context.newPage();
  await second.goto(link);
  await ready(second);
  await second.locator('#who', { hasText: email }).waitFor();
  assert.equal(new URL(second.url()).search, '', "the link's parameters are gone from the address");
  await page.locator('#who', { hasText: email }).waitFor();
  assert.equal(await page.isHidden('#sign-in-with'), true);
  await shot(page, 'babylog-first-tab-signed-in');

  // The spent link, opened in another browser: BabyLog says it can't be used; nobody signs in.
  const { page: other } = await newBrowser();
  await other.goto(link);
  await ready(other);
  const note = other.locator('#sign-in-message[data-kind="error"]');
  await note.waitFor();
  assert.equal(
    (await note.innerText()).trim(),
    'This sign-in link can’t be used: it was used already, or it is not valid. Ask for a new one.',
  );
  assert.equal(await other.locator('#who').count(), 0);
  await shot(other, 'babylog-link-used-twice');
});

test('no page errors in any of the above', () => {
  assert.deepEqual(pageErrors, []);
});
