// Starts a fresh latchkey (the binary cargo built) on a free loopback port with an empty data
// directory, and reads the keys it prints on first start.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

export async function startLatchkey() {
  const bin = process.env.LATCHKEY_BIN ?? join(root, 'target', 'debug', 'latchkey');
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-sdk-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--public-url', url, '--data-dir', join(dir, 'data')], {
    cwd: dir,
    env: { ...process.env, LATCHKEY_LOG: 'warn', RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const deadline = Date.now() + 30_000;
  while (!/development mode|next steps/.test(out)) {
    if (child.exitCode !== null) throw new Error(`latchkey exited early:\n${out}`);
    if (Date.now() > deadline) throw new Error(`latchkey did not start in 30 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const secretKey = out.match(/sk_live_[A-Za-z0-9_-]+/)?.[0];
  const publishableKey = out.match(/pk_live_[A-Za-z0-9+/=_-]+/)?.[0];
  if (!secretKey || !publishableKey) throw new Error(`keys not printed:\n${out}`);
  return {
    url,
    secretKey,
    publishableKey,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// Signs in through latchkey's Frontend API the way a browser would, and returns the session
// token it issues (`client.sessions[0].last_active_token.jwt`).
export async function signInThroughFrontendApi(url, identifier, password) {
  const res = await fetch(`${url}/v1/client/sign_ins`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url },
    body: new URLSearchParams({ identifier, password, strategy: 'password' }),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`sign-in failed: ${res.status} ${JSON.stringify(body)}`);
  const session = body.client.sessions.find((s) => s.id === body.response.created_session_id);
  return { sessionId: session.id, jwt: session.last_active_token.jwt };
}
