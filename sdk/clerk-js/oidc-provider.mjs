// The loopback OpenID Provider of latchkey's Rust tests (crates/latchkey/tests/it/oidc/
// provider.mjs, npm oidc-provider; its README.md beside it): it logs in the account its
// `login_hint` names (sub or email), or the first account without one, and exits when its
// stdin closes, so it is spawned with a piped stdin kept open until `stop()`.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const script = resolve(import.meta.dirname, '../../crates/latchkey/tests/it/oidc/provider.mjs');

// `clients` and `accounts` as the fixture's README describes them. Resolves once it listens:
// `{ issuer, stop() }`.
export function startOpenIdProvider({ clients, accounts }) {
  const child = spawn(process.execPath, [script, JSON.stringify({ clients, accounts })], { stdio: ['pipe', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  const exited = new Promise((r) => child.once('exit', r));
  return new Promise((ok, fail) => {
    let out = '';
    const early = (code) => fail(new Error(`the OpenID Provider exited (${code}) before it listened:\n${log}`));
    child.once('exit', early);
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n')[0];
      if (!out.includes('\n')) return;
      child.off('exit', early);
      let issuer;
      try {
        ({ issuer } = JSON.parse(line));
      } catch {
        return fail(new Error(`not the issuer line: ${line}\n${log}`));
      }
      ok({
        issuer,
        log: () => log,
        async stop() {
          child.stdin.end();
          await exited;
        },
      });
    });
  });
}

// A client of the provider registered the way the Rust tests register theirs: a native
// application may come back to any port of the loopback address (RFC 8252), so the provider
// can start before the latchkey whose port its redirect URI names.
export const loopbackClient = (clientId, clientSecret) => ({
  client_id: clientId,
  client_secret: clientSecret,
  application_type: 'native',
  redirect_uris: ['http://127.0.0.1/v1/oauth_callback'],
});
