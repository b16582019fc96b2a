// What the suites running latchkey-js against a freshly started latchkey share: one latchkey
// per suite, devices (an Auth with its own client token, as a native app keeps it, and a
// SyncEngine on its own fake-indexeddb database), sign-up with the mailed code, and the
// Backend API. Not a test itself (node --test runs it and finds none).
import 'fake-indexeddb/auto';
import { after, before } from 'node:test';
import { Auth, SyncEngine } from '../dist/index.js';
import { mailbox, startLatchkey } from '../../../../sdk/clerk-backend/latchkey.mjs';

export const PASSWORD = 'correct horse battery staple';
export const TABLES = ['babies', 'feeds', 'sleeps', 'diapers', 'notes'];

const memoryStore = () => ({ token: null, get() { return this.token; }, set(t) { this.token = t; } });

/** Starts latchkey before the suite's tests and stops it (and closes every device) after. */
export function suite(name) {
  const opened = [];
  const s = {
    lk: null,
    device(device) {
      const auth = new Auth({ baseUrl: s.lk.url, tokenStore: memoryStore(), channelName: `test:${name}:${device}` });
      const sync = new SyncEngine({ auth, tables: TABLES, dbName: `db-${name}-${device}-${Math.random()}`, writeDelayMs: 0 });
      opened.push({ close: () => { sync.close(); auth.close(); sync.db.close(); } });
      return { auth, sync };
    },
    async signUp(auth, email) {
      const inbox = await mailbox(s.lk.url, email);
      await auth.signUp({ emailAddress: email, password: PASSWORD });
      await auth.verifyEmailCode(await inbox.code());
    },
    /** A Backend API call with the secret key. */
    backend(path, body, method = 'POST') {
      return fetch(`${s.lk.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${s.lk.secretKey}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    },
  };
  // Every request of a suite comes from 127.0.0.1 within seconds: more than the default per-IP budget.
  before(async () => {
    s.lk = await startLatchkey({ config: '[rate_limits]\nper_ip_per_minute = 300\n' });
  });
  after(async () => {
    for (const o of opened) o.close();
    await s.lk?.stop();
  });
  return s;
}
