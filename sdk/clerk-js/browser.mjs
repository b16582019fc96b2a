// Debian's Chromium (/usr/bin/chromium), driven by playwright-core, with the flags this
// machine needs and an empty profile per launch.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'latchkey-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
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
