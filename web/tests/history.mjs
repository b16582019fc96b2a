// A family's long BabyLog history, written straight into latchkey through the sync API (as a
// phone that logged for years would have pushed it): a user, a family organization, one baby
// and `entries` entries spread over `days` days ending today, in the browser's time zone (this
// machine's). Shared by the end-to-end test (web/tests/babylog.test.mjs) and the benchmark
// (bench/node/babylog-history.mjs).
import { signInThroughFrontendApi } from '../../sdk/clerk-backend/latchkey.mjs';

const DAY = 86_400_000;
const PUSH = 1000; // latchkey's default [sync] max_ops_per_push

async function bapi(lk, method, path, body) {
  const res = await fetch(`${lk.url}/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${lk.secretKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Local midnight `n` days before today. */
export function dayStart(n) {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  d.setDate(d.getDate() - n);
  return d.getTime();
}

const dayOf = (i, entries, days) => Math.floor((i * days) / entries);

/** The entry number `i` of a history: which table, and its fields (times in its day). */
function entry(i, entries, days, babyId) {
  // Spread evenly: entry i falls on day ⌊i·days/entries⌋, at its fraction of that day.
  const day = dayOf(i, entries, days);
  const at = dayStart(days - 1 - day) + Math.floor(((i * days) / entries - day) * DAY);
  switch (i % 4) {
    case 0:
      return ['feeds', { baby_id: babyId, kind: 'bottle', started_at: at, amount_ml: 60 + (i % 9) * 10 }];
    case 1:
      return ['sleeps', { baby_id: babyId, started_at: at, ended_at: at + 40 * 60_000 }];
    case 2:
      return ['diapers', { baby_id: babyId, at, kind: ['wet', 'dirty', 'mixed'][i % 3] }];
    default:
      return ['notes', { baby_id: babyId, at, text: `note ${i}` }];
  }
}

/**
 * Seeds the history; returns the family, the baby, and how many entries each of the last
 * days holds (`perDayOf(n)`: entries of the day `n` days before today).
 */
export async function seedHistory(lk, { email, password, entries, days }) {
  const user = await bapi(lk, 'POST', '/users', { email_address: [email], password });
  const family = await bapi(lk, 'POST', '/organizations', { name: 'Years family', created_by: user.id });
  const { jwt } = await signInThroughFrontendApi(lk.url, email, password);
  const babyId = 'baby_history';
  const now = Date.now();
  const ops = [{ table: 'babies', id: babyId, fields: { name: 'Ada', created_at: dayStart(days) } }];
  for (let i = 0; i < entries; i++) {
    const [table, fields] = entry(i, entries, days, babyId);
    ops.push({ table, id: `h_${table}_${i}`, fields });
  }
  const clientId = `cl_history_${now}`;
  for (let from = 0; from < ops.length; from += PUSH) {
    const batch = ops.slice(from, from + PUSH).map((op, k) => {
      const n = from + k;
      return { op_id: `${clientId}-${n}`, seq: n + 1, space: family.id, action: 'put', hlc: `${now}-${n}`, ...op };
    });
    const res = await fetch(`${lk.url}/v1/sync/push`, {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: clientId, schema_version: 1, ops: batch }),
    });
    const body = await res.json();
    if (!res.ok) throw new Error(`push: ${res.status} ${JSON.stringify(body)}`);
    const refused = body.results.filter((r) => r.status !== 'applied');
    if (refused.length) throw new Error(`push refused: ${JSON.stringify(refused.slice(0, 3))}`);
  }
  const perDayOf = (n) => {
    let count = 0;
    for (let i = 0; i < entries; i++) if (dayOf(i, entries, days) === days - 1 - n) count++;
    return count;
  };
  return { family, babyId, total: ops.length, perDayOf };
}

/** How many records a BabyLog local database holds (all synced tables), read in the page. */
export const localRecordCount = (page, dbName = 'babylog') =>
  page.evaluate((dbName) => new Promise((ok) => {
    indexedDB.open(dbName).onsuccess = (e) => {
      const db = e.target.result;
      const names = ['babies', 'feeds', 'sleeps', 'diapers', 'notes'].filter((n) => db.objectStoreNames.contains(n));
      if (names.length < 5) return ok(0);
      const tx = db.transaction(names);
      let sum = 0;
      let left = names.length;
      for (const n of names) {
        tx.objectStore(n).count().onsuccess = (c) => {
          sum += c.target.result;
          if (--left === 0) {
            db.close();
            ok(sum);
          }
        };
      }
    };
  }), dbName);
