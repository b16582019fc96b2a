// Building and starting a Next.js example app against a latchkey started by
// ../clerk-backend/latchkey.mjs: the environment a developer would set, `next build`/`next start`
// from the root node_modules, and the self-hosted Clerk bundles copied from the pinned packages.
import { spawn } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';

export const root = resolve(import.meta.dirname, '../..');

/** Runs `next <args>` in appDir; resolves when `until` matches its output, or it exits 0. The
 * root's Next unless `nextRoot` names another node_modules' owner (an app with its own). */
export function runNext(appDir, args, env, { until, timeoutMs, nextRoot = root }) {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [resolve(nextRoot, 'node_modules/next/dist/bin/next'), ...args], {
      cwd: appDir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`next ${args[0]} took over ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (d) => {
      out += d;
      if (until && until.test(out)) {
        clearTimeout(timer);
        ok({ child, out: () => out });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!until && code === 0) ok({ child, out: () => out });
      else if (code !== 0 || until) fail(new Error(`next ${args[0]} exited with ${code}:\n${out}`));
    });
  });
}

/** The app as a developer would configure it for latchkey: environment variables only. */
export function nextEnvironment(latchkey, port) {
  return {
    NEXT_TELEMETRY_DISABLED: '1',
    NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY: latchkey.publishableKey,
    CLERK_SECRET_KEY: latchkey.secretKey,
    CLERK_API_URL: latchkey.url,
    CLERK_FAPI_URL: latchkey.url,
    NEXT_PUBLIC_CLERK_PROXY_URL: '/__clerk',
    NEXT_PUBLIC_CLERK_JS_URL: '/clerk-js/clerk.browser.js',
    NEXT_PUBLIC_CLERK_UI_URL: '/clerk-ui/ui.browser.js',
    NEXT_PUBLIC_CLERK_TELEMETRY_DISABLED: '1',
    NEXT_PUBLIC_CLERK_SIGN_IN_URL: '/sign-in',
    NEXT_PUBLIC_CLERK_SIGN_UP_URL: '/sign-up',
    PORT: String(port),
  };
}

/** Self-hosted bundles (NEXT_PUBLIC_CLERK_JS_URL / _UI_URL), copied from the pinned packages. */
export function copyClerkBundles(appDir) {
  for (const [pkg, dir] of [['@clerk/clerk-js', 'clerk-js'], ['@clerk/ui', 'clerk-ui']]) {
    rmSync(resolve(appDir, 'public', dir), { recursive: true, force: true });
    cpSync(resolve(root, 'node_modules', pkg, 'dist'), resolve(appDir, 'public', dir), { recursive: true });
  }
}

/** A call of the app's API from `page`, with the browser's cookies or without any. */
export const callApi = (page, method, path, { body, signedOut = false } = {}) =>
  page.evaluate(
    async ({ method, path, body, signedOut }) => {
      const res = await fetch(path, {
        method,
        credentials: signedOut ? 'omit' : 'same-origin',
        headers: body ? { 'content-type': 'application/json' } : {},
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      let json = null;
      try { json = JSON.parse(text); } catch {}
      return { status: res.status, json };
    },
    { method, path, body, signedOut },
  );
