// Debian's Chromium (/usr/bin/chromium), driven by playwright-core, with the flags this
// machine needs and an empty profile per launch.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

// `ignoreHTTPSErrors` for an app served over https with a certificate the test made.
export async function launchBrowser({ ignoreHTTPSErrors = false } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'latchkey-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    ignoreHTTPSErrors,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1100, height: 900 },
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// Every request the page makes to the Frontend API, as "METHOD /v1/path" plus its status.
export function recordWire(page, prefix = '/__clerk') {
  const wire = [];
  page.on('response', (res) => {
    const url = new URL(res.url());
    if (!url.pathname.startsWith(prefix)) return;
    const tunnelled = url.searchParams.get('_method');
    wire.push({ method: tunnelled ?? res.request().method(), path: url.pathname.slice(prefix.length), status: res.status(), at: Date.now() });
  });
  return wire;
}

// Waits for `fn` to hold in the page, failing with `what` in the message.
export const until = (page, what, fn, ms = 30_000) => page.waitForFunction(fn, null, { timeout: ms }).catch((e) => {
  throw new Error(`${what}: ${e.message}`);
});

// clerk-js ends a completed sign-up or sign-in, and a sign-out, by navigating to its after-URL
// ('/' here) with a full page load: until the new page has loaded clerk-js, `window.Clerk` is
// undefined and the state reads "loading". Runs `action`, then waits for that load and for
// clerk-js loaded on the new page (page.html's `window.clerkLoaded`).
export async function reloadsAfter(page, what, action) {
  const loaded = page.waitForEvent('load', { timeout: 30_000 }).catch((e) => {
    throw new Error(`no page load after ${what}: ${e.message}`);
  });
  await action();
  await loaded;
  await page.evaluate(() => window.clerkLoaded);
}

// Mounts one prebuilt component in a fresh element, unmounting the one before it. Unmounting
// goes through clerk-ui's promises: the old element is removed once the component has left it.
export async function mount(page, component, props = {}) {
  const unmounting = await page.evaluate(() => {
    const prev = window.__mounted;
    if (prev) window.Clerk[`unmount${prev.c}`](prev.el);
    return Boolean(prev);
  });
  if (unmounting) await until(page, 'the previous component unmounted', () => window.__mounted.el.childElementCount === 0);
  await page.evaluate(([c, p]) => {
    window.__mounted?.el.remove();
    const el = document.createElement('div');
    document.getElementById('component').append(el);
    window.__mounted = { c, el };
    window.Clerk[`mount${c}`](el, p);
  }, [component, props]);
}

// Waits until no transition or animation of the page runs (the prebuilt components fade
// messages in), so a screenshot shows the settled UI.
export const settled = (page) => until(page, 'animations finished', () =>
  document.getAnimations().every((a) => a.playState !== 'running' || a.effect?.getComputedTiming().iterations === Infinity));
