// Moving records between spaces (`SyncEngine.move`: a baby and its entries from the personal
// space to a family and back) and deleting with undo, against a freshly started latchkey, seen
// from the mover's other device and from the partner's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PASSWORD, suite } from './harness.mjs';

const s = suite('move');
const device = (name) => s.device(name);
const signUp = (auth, email) => s.signUp(auth, email);
const backend = (path, body) => s.backend(path, body);

/** Where each record is on a device: `table/id` → space, absent records left out. */
async function places(sync, keys) {
  const out = {};
  for (const k of keys) {
    const [table, id] = k.split('/');
    const row = await sync.table(table).get(id);
    if (row) out[k] = row.space;
  }
  return out;
}

const KEYS = ['babies/baby-m', 'feeds/feed-m', 'notes/note-m'];
const everywhere = (space) => Object.fromEntries(KEYS.map((k) => [k, space]));

test('a baby moves with its entries to the family and back; every device follows, nothing is duplicated', async () => {
  const phone = device('phone');
  await signUp(phone.auth, 'mover@example.com');
  const partner = device('partner');
  await signUp(partner.auth, 'partner-m@example.com');
  const family = await phone.auth.createOrganization('Mover family');
  const added = await backend(`/v1/organizations/${family.id}/memberships`, { user_id: partner.auth.user.id, role: 'org:member' });
  assert.equal(added.status, 200, await added.text());

  await phone.sync.put('babies', 'baby-m', { name: 'Robin', created_at: 1 });
  await phone.sync.put('feeds', 'feed-m', { baby_id: 'baby-m', kind: 'bottle', started_at: 10, amount_ml: 90 });
  await phone.sync.put('notes', 'note-m', { baby_id: 'baby-m', at: 20, text: 'first smile' });
  await phone.sync.sync();
  const tablet = device('tablet');
  await tablet.auth.signIn({ identifier: 'mover@example.com', password: PASSWORD });
  await tablet.sync.sync();
  await partner.sync.sync();
  assert.deepEqual(await places(tablet.sync, KEYS), everywhere('me'));
  assert.deepEqual(await places(partner.sync, KEYS), {}, 'the personal space is not the partner’s');

  // Refusals change nothing: a space the device has not synced, an unknown table.
  await assert.rejects(phone.sync.move([{ table: 'babies', id: 'baby-m' }], 'org_not_mine'), /not a space this device has synced/);
  await assert.rejects(phone.sync.move([{ table: 'pets', id: 'x' }], family.id), /not a synced table/);
  assert.equal(await phone.sync.pendingCount(), 0);

  const records = KEYS.map((k) => ({ table: k.split('/')[0], id: k.split('/')[1] }));
  assert.equal(await phone.sync.move(records, family.id), 3);
  assert.deepEqual(await places(phone.sync, KEYS), everywhere(family.id), 'moved locally at once');
  assert.equal(await phone.sync.pendingCount(), 3, 'a put in the new space per record; the deletes wait for them');
  assert.equal(await phone.sync.move(records, family.id), 0, 'already there');
  await phone.sync.sync();
  assert.equal(await phone.sync.pendingCount(), 0);
  assert.deepEqual(await places(phone.sync, KEYS), everywhere(family.id), 'the old space’s deletes leave the moved rows alone');

  await partner.sync.sync();
  await tablet.sync.sync();
  assert.deepEqual(await places(partner.sync, KEYS), everywhere(family.id));
  assert.deepEqual(await places(tablet.sync, KEYS), everywhere(family.id));
  assert.equal((await partner.sync.table('feeds').get('feed-m')).amount_ml, 90, 'with all its fields');
  assert.equal((await partner.sync.table('notes').get('note-m')).text, 'first smile');
  // A device that starts from nothing gets each record once, in the family.
  const laptop = device('laptop');
  await laptop.auth.signIn({ identifier: 'mover@example.com', password: PASSWORD });
  await laptop.sync.sync();
  assert.deepEqual(await places(laptop.sync, KEYS), everywhere(family.id));
  assert.equal((await laptop.sync.table('babies').toArray()).length, 1);

  // The partner edits in the family; then the baby goes back to the personal space.
  await partner.sync.put('feeds', 'feed-m', { amount_ml: 120 });
  await partner.sync.sync();
  await phone.sync.sync();
  assert.equal(await phone.sync.move(records, 'me'), 3);
  await phone.sync.sync();
  await partner.sync.sync();
  await tablet.sync.sync();
  assert.deepEqual(await places(partner.sync, KEYS), {}, 'gone from the family');
  assert.deepEqual(await places(tablet.sync, KEYS), everywhere('me'));
  assert.equal((await tablet.sync.table('feeds').get('feed-m')).amount_ml, 120, 'the partner’s edit moved with it');
});

test('a move the new space refuses removes nothing: the record stays where the server has it', async () => {
  const phone = device('refused-phone');
  await signUp(phone.auth, 'refused@example.com');
  const owner = device('refused-owner');
  await signUp(owner.auth, 'refused-owner@example.com');
  const family = await owner.auth.createOrganization('Leaving family');
  const added = await backend(`/v1/organizations/${family.id}/memberships`, { user_id: phone.auth.user.id, role: 'org:member' });
  assert.equal(added.status, 200, await added.text());
  await phone.sync.put('babies', 'baby-r', { name: 'Kit', created_at: 1 });
  await phone.sync.put('notes', 'note-r', { baby_id: 'baby-r', at: 5, text: 'kept' });
  await phone.sync.sync();

  // Removed from the family while offline, the phone moves the baby there anyway.
  const removed = await fetch(`${s.lk.url}/v1/organizations/${family.id}/memberships/${phone.auth.user.id}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${s.lk.secretKey}` },
  });
  assert.equal(removed.status, 200, await removed.text());
  assert.equal(await phone.sync.move([{ table: 'babies', id: 'baby-r' }, { table: 'notes', id: 'note-r' }], family.id), 2);
  await phone.sync.sync();
  const rejected = await phone.sync.rejected();
  assert.deepEqual(rejected.map((op) => [op.table, op.action, op.space]), [['babies', 'put', family.id], ['notes', 'put', family.id]]);
  assert.deepEqual(await places(phone.sync, ['babies/baby-r', 'notes/note-r']), { 'babies/baby-r': 'me', 'notes/note-r': 'me' }, 'back where the server has them');
  assert.equal(await phone.sync.pendingCount(), 0, 'no delete was queued');
  const laptop = device('refused-laptop');
  await laptop.auth.signIn({ identifier: 'refused@example.com', password: PASSWORD });
  await laptop.sync.sync();
  assert.deepEqual(await places(laptop.sync, ['babies/baby-r', 'notes/note-r']), { 'babies/baby-r': 'me', 'notes/note-r': 'me' }, 'still on the server');
  assert.equal((await laptop.sync.table('notes').get('note-r')).text, 'kept');
});

test('a deleted entry comes back with all its fields on undo, for every member', async () => {
  const phone = device('undo-phone');
  await signUp(phone.auth, 'undo@example.com');
  const partner = device('undo-partner');
  await signUp(partner.auth, 'undo-partner@example.com');
  const family = await phone.auth.createOrganization('Undo family');
  const added = await backend(`/v1/organizations/${family.id}/memberships`, { user_id: partner.auth.user.id, role: 'org:member' });
  assert.equal(added.status, 200, await added.text());
  const fields = { baby_id: 'baby-u', started_at: 100, ended_at: 200, note: 'nap' };
  await phone.sync.put('sleeps', 'sleep-u', fields, { space: family.id });
  await phone.sync.sync();
  await partner.sync.sync();
  assert.equal((await partner.sync.table('sleeps').get('sleep-u')).note, 'nap');

  // What an app keeps for its undo: the row as it was.
  const { id: _id, space, ...kept } = await phone.sync.table('sleeps').get('sleep-u');
  await phone.sync.delete('sleeps', 'sleep-u');
  await phone.sync.sync();
  await partner.sync.sync();
  assert.equal(await partner.sync.table('sleeps').get('sleep-u'), undefined, 'deleted for the partner');

  await phone.sync.put('sleeps', 'sleep-u', kept, { space });
  await phone.sync.sync();
  await partner.sync.sync();
  const back = await partner.sync.table('sleeps').get('sleep-u');
  assert.deepEqual({ ...back }, { ...fields, id: 'sleep-u', space: family.id });

  // An undo before the delete was ever pushed: the server sees both, in order.
  await phone.sync.delete('sleeps', 'sleep-u');
  await phone.sync.put('sleeps', 'sleep-u', kept, { space });
  await phone.sync.sync();
  await partner.sync.sync();
  assert.equal((await partner.sync.table('sleeps').get('sleep-u')).ended_at, 200);
});
