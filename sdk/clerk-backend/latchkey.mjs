// Starts a fresh latchkey (the binary cargo built) on a free loopback port with an empty data
// directory, and reads the keys it prints on first start.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');

/** A loopback port nothing listens on right now. */
export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

// `config` is the text of a latchkey.toml for this instance (read from its working directory).
// `kill(signal)` stops the process without cleaning up (a crash with SIGKILL) and `restart()`
// starts it again on the same port and data, as an operator would after a crash.
export async function startLatchkey({ config } = {}) {
  const bin = process.env.LATCHKEY_BIN ?? join(root, 'target', 'debug', 'latchkey');
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-sdk-'));
  if (config) writeFileSync(join(dir, 'latchkey.toml'), config);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let child;
  let out = '';
  const launch = async (ready) => {
    out = '';
    child = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--public-url', url, '--data-dir', join(dir, 'data')], {
      cwd: dir,
      env: { ...process.env, LATCHKEY_LOG: 'warn', RUST_LOG: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const deadline = Date.now() + 30_000;
    while (!(await ready())) {
      if (child.exitCode !== null) throw new Error(`latchkey exited early:\n${out}`);
      if (Date.now() > deadline) throw new Error(`latchkey did not start in 30 s:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const exited = () => new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
  await launch(async () => /development mode|next steps/.test(out));
  const secretKey = out.match(/sk_live_[A-Za-z0-9_-]+/)?.[0];
  const publishableKey = out.match(/pk_live_[A-Za-z0-9+/=_-]+/)?.[0];
  if (!secretKey || !publishableKey) throw new Error(`keys not printed:\n${out}`);
  return {
    url,
    secretKey,
    publishableKey,
    // The instance's data directory (its SQLite database is latchkey.db there).
    dataDir: join(dir, 'data'),
    async kill(signal = 'SIGKILL') {
      child.kill(signal);
      await exited();
    },
    async restart() {
      // A restarted instance prints no new keys: it is ready when it answers.
      await launch(() => fetch(`${url}/healthz`).then((r) => r.ok, () => false));
    },
    async stop() {
      child.kill('SIGTERM');
      await exited();
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

// Signs in through the Frontend API, makes `organizationId` the session's active organization
// (`touch`, as clerk-js does when switching) and returns the session token that carries it.
export async function tokenForOrganization(url, identifier, password, organizationId) {
  const form = (fields) => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url, ...(cookie ? { cookie } : {}) },
    body: new URLSearchParams(fields),
  });
  let cookie = '';
  const signIn = await fetch(`${url}/v1/client/sign_ins`, form({ identifier, password, strategy: 'password' }));
  const signedIn = await signIn.json();
  if (signIn.status !== 200) throw new Error(`sign-in failed: ${signIn.status} ${JSON.stringify(signedIn)}`);
  const client = signIn.headers.getSetCookie().find((c) => c.startsWith('__client='));
  cookie = client.split(';')[0];
  const sessionId = signedIn.response.created_session_id;
  const touch = await fetch(
    `${url}/v1/client/sessions/${sessionId}/touch`,
    form({ active_organization_id: organizationId, intent: 'select_org' }),
  );
  const touched = await touch.json();
  if (touch.status !== 200) throw new Error(`touch failed: ${touch.status} ${JSON.stringify(touched)}`);
  return { sessionId, jwt: touched.response.last_active_token.jwt };
}

// latchkey sends mail in the background (docs/SECURITY.md, "Mail"): a message may reach its
// development sink at /dev/mail just after the response of the request that asked for it. So a
// test opens the mailbox *before* that request, and afterwards waits for a message that was not
// in it (by id), instead of taking whatever came last.
//
//   const inbox = await mailbox(url, email);
//   await somethingThatMailsACode();
//   const code = await inbox.code();
const CODE_SUBJECT = /^(\d{6}) is your .+ code$/;
const MAIL_DEADLINE_MS = 30_000;

export async function mailbox(url, to) {
  const list = async () => {
    const res = await fetch(`${url}/dev/mail?to=${encodeURIComponent(to)}`);
    if (!res.ok) throw new Error(`GET /dev/mail: ${res.status}`);
    return (await res.json()).messages;
  };
  const seen = new Set((await list()).map((m) => m.id));
  return {
    /** The next message to `to` that `match`es and was not there before, waiting for it. */
    async next(match = () => true, what = 'a message') {
      const deadline = Date.now() + MAIL_DEADLINE_MS;
      for (;;) {
        const found = (await list()).find((m) => !seen.has(m.id) && match(m));
        if (found) {
          seen.add(found.id);
          return found;
        }
        if (Date.now() > deadline) throw new Error(`no new ${what} for ${to} within ${MAIL_DEADLINE_MS / 1000} s`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    /** The six-digit code of the next code mail (sign-up, sign-in or address verification). */
    async code() {
      const m = await this.next((m) => CODE_SUBJECT.test(m.subject), 'code mail');
      return m.subject.match(CODE_SUBJECT)[1];
    },
  };
}
