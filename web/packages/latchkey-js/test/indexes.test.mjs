// Local indexes an app declares (`indexes`, `indexVersion`): a database made without them is
// upgraded in place, nothing written before is lost, and a window of a long history is read
// through the index. No server is needed: the engine is never started.
import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SyncEngine, createTokenSource } from '../dist/index.js';

const DAY = 86_400_000;
const engine = (dbName, extra = {}) => new SyncEngine({ auth: createTokenSource(), tables: ['feeds', 'notes'], dbName, ...extra });

test('indexes are added to an existing database in place, and a day of history is read through them', async () => {
  const dbName = `db-indexes-${Math.random()}`;
  const plain = engine(dbName);
  for (let i = 0; i < 300; i++) await plain.put('feeds', `f${i}`, { baby_id: i % 2 ? 'b1' : 'b2', kind: 'bottle', started_at: i * (DAY / 10) });
  assert.equal(plain.db.verno, 1);
  plain.close();
  plain.db.close();

  const indexed = engine(dbName, { indexes: { feeds: ['[baby_id+started_at]'], notes: ['[baby_id+at]'] } });
  await indexed.db.open();
  assert.equal(indexed.db.verno, 2, 'the indexes come with a new version');
  assert.deepEqual(indexed.db.table('feeds').schema.indexes.map((i) => i.name).sort(), ['[baby_id+started_at]', 'space']);
  assert.equal(await indexed.pendingCount(), 300, 'the outbox survived the upgrade');
  // Day 3 of baby b1: records 30..39, the odd ones.
  const day = await indexed.table('feeds').where('[baby_id+started_at]').between(['b1', 3 * DAY], ['b1', 4 * DAY], true, false).toArray();
  assert.deepEqual(day.map((r) => r.id), ['f31', 'f33', 'f35', 'f37', 'f39']);
  // Writes after the upgrade are indexed too.
  await indexed.put('notes', 'n1', { baby_id: 'b1', at: 5, text: 'hi' });
  assert.equal(await indexed.table('notes').where('[baby_id+at]').between(['b1', 0], ['b1', 10]).count(), 1);
  indexed.close();
  indexed.db.close();

});
