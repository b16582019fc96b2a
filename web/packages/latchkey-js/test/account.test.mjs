// A person's own data from latchkey-js (docs/account-data.md): `downloadMyData` carries what the
// engine wrote, `deleteAccount` is refused without losing anything (a wrong password, the last
// admin of a family with a partner), and once it succeeds the device holds nothing of the
// person and their tokens open nothing, against a freshly started latchkey.
import 'fake-indexeddb/auto'; // before Dexie loads
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatchkeyError } from '../dist/index.js';
import { PASSWORD, TABLES, suite } from './harness.mjs';

const s = suite('account');
const device = (name) => s.device(name);
const signUp = (auth, email) => s.signUp(auth, email);
const backend = (method, path, body) => s.backend(path, body, method);

/** Every row of every table of the engine's database, local bookkeeping included. */
async function rowsOnDevice(sync) {
  const out = {};
  for (const t of ['_outbox', '_meta', '_rejected', ...TABLES]) out[t] = await sync.db.table(t).count();
  return out;
}

const WRITTEN = [
  { space: 'me', table: 'babies', id: 'baby-x', fields: { name: 'Robin', created_at: 1 } },
  { space: 'me', table: 'feeds', id: 'feed-x', fields: { baby_id: 'baby-x', kind: 'bottle', started_at: 10, amount_ml: 90 } },
  { space: 'me', table: 'notes', id: 'note-x', fields: { baby_id: 'baby-x', at: 20, text: 'first smile' } },
];

test('the export holds what was written; deleting is refused without loss, then clears the device', async () => {
  const phone = device('phone');
  await signUp(phone.auth, 'leaver@example.com');
  const userId = phone.auth.userId;
  phone.sync.start();
  for (const r of WRITTEN) await phone.sync.put(r.table, r.id, r.fields);
  const family = await phone.auth.createOrganization('Leaver family');
  phone.sync.setSpace(family.id);
  await phone.sync.put('notes', 'note-family', { baby_id: 'baby-x', at: 30, text: 'the family’s' });
  await phone.sync.sync();
  assert.equal(phone.sync.currentStatus.state, 'up-to-date');

  // The export: the profile, the session without secrets, every record as it was written.
  const { blob, data } = await phone.auth.downloadMyData();
  assert.equal(blob.type, 'application/json');
  assert.equal(data.object, 'data_export');
  assert.equal(data.user.id, userId);
  assert.equal(data.sessions.length, 1);
  assert.doesNotMatch(JSON.stringify(data.sessions), /eyJ|jwt|token/i, 'no token in the sessions');
  const exported = data.sync_records.map(({ space, table, id, fields }) => ({ space, table, id, fields }));
  const expected = [...WRITTEN, { space: family.id, table: 'notes', id: 'note-family', fields: { baby_id: 'baby-x', at: 30, text: 'the family’s' } }];
  const byKey = (a, b) => `${a.table}/${a.id}`.localeCompare(`${b.table}/${b.id}`);
  assert.deepEqual(exported.sort(byKey), expected.sort(byKey));

  // A wrong password: refused, nothing lost on the device or on the server.
  const before = await rowsOnDevice(phone.sync);
  const wrong = await phone.auth.deleteAccount({ password: 'not the password' }).catch((e) => e);
  assert.ok(wrong instanceof LatchkeyError, String(wrong));
  assert.equal(wrong.status, 422);
  assert.equal(wrong.code, 'form_password_incorrect');
  assert.deepEqual(await rowsOnDevice(phone.sync), before);
  assert.equal(phone.auth.userId, userId);

  // The family's only admin with a partner in it must hand over first.
  const partner = device('partner');
  await signUp(partner.auth, 'stays@example.com');
  const joined = await backend('POST', `/v1/organizations/${family.id}/memberships`, { user_id: partner.auth.userId, role: 'org:member' });
  assert.equal(joined.status, 200, await joined.text());
  const lastAdmin = await phone.auth.deleteAccount({ password: PASSWORD }).catch((e) => e);
  assert.ok(lastAdmin instanceof LatchkeyError, String(lastAdmin));
  assert.equal(lastAdmin.status, 422);
  assert.equal(lastAdmin.code, 'organization_minimum_permissions_needed');
  assert.deepEqual(await rowsOnDevice(phone.sync), before);
  assert.equal((await backend('GET', `/v1/users/${userId}`)).status, 200);

  // The partner becomes an admin; a second device of the leaver is signed in meanwhile.
  const promoted = await backend('PATCH', `/v1/organizations/${family.id}/memberships/${partner.auth.userId}`, { role: 'org:admin' });
  assert.equal(promoted.status, 200, await promoted.text());
  const tablet = device('tablet');
  await tablet.auth.signIn({ identifier: 'leaver@example.com', password: PASSWORD });
  await tablet.sync.sync();
  const oldToken = await phone.auth.getToken();

  await phone.auth.deleteAccount({ password: PASSWORD });
  assert.equal(phone.auth.userId, null);
  const emptied = Object.fromEntries(Object.keys(before).map((t) => [t, 0]));
  assert.deepEqual(await rowsOnDevice(phone.sync), { ...emptied, _meta: 1 });
  assert.deepEqual(await phone.sync.db.table('_meta').toArray(), [{ key: 'user_id', value: '(forgotten)' }], 'only the marker that it was someone\'s');
  assert.equal(phone.sync.currentStatus.state, 'signed-out');
  assert.equal((await backend('GET', `/v1/users/${userId}`)).status, 404);
  const pull = await fetch(`${s.lk.url}/v1/sync/pull?cursor=0`, { headers: { authorization: `Bearer ${oldToken}` } });
  assert.equal(pull.status, 401, 'the deleted person’s unexpired token opens nothing');

  // The other device: its token refresh fails, so it stops syncing, signed out.
  await tablet.sync.sync();
  assert.equal(tablet.sync.currentStatus.state, 'signed-out');
  assert.equal(tablet.auth.userId, null);

  // The family's record stays with the family.
  await partner.sync.sync();
  assert.equal((await partner.sync.table('notes').get('note-family'))?.text, 'the family’s');

  // Another tab of the phone that had not heard of the deletion yet wrote into `me`: whoever
  // signs in next on the phone does not get that row.
  await phone.sync.db.table('notes').put({ id: 'late-note', space: 'me', text: 'written by a stale tab' });
  await phone.sync.db.table('_outbox').add({ table: 'notes', id: 'late-note', seq: null, action: 'put', fields: { text: 'written by a stale tab' }, op_id: 'late-op', space: 'me', hlc: `${Date.now()}-0-x` });
  await phone.auth.signIn({ identifier: 'stays@example.com', password: PASSWORD });
  await phone.sync.sync();
  assert.equal(await phone.sync.table('notes').get('late-note'), undefined);
  assert.equal(await phone.sync.pendingCount(), 0);
  const partnerSpace = await (await backend('GET', `/v1/users/${partner.auth.userId}/sync_export`)).json();
  assert.equal(JSON.stringify(partnerSpace).includes('late-note'), false, 'never pushed into the next user\'s space');
});
