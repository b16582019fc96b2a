// Applying a pulled page to the local database (docs/sync-protocol.md §12, "Applying a pull"):
// the server's records with still-pending local writes on top, lost spaces dropped, and the
// user's spaces recorded for `SyncEngine.move`.

import type { Dexie } from 'dexie';
import type { Meta, OutboxOp, PullPage, SyncRecord } from './sync-types.js';

/**
 * The spaces a database's records are in, and `me`: what a database from before the spaces
 * were recorded knows of the user's spaces.
 */
export async function spacesOfRecords(db: Dexie, tables: string[]): Promise<string[]> {
  const seen = new Set<string>(['me']);
  for (const t of tables) for (const s of await db.table(t).orderBy('space').uniqueKeys()) seen.add(String(s));
  return [...seen];
}

/** The list under `key`, made empty on first use. */
function listIn<T>(map: Map<string, T[]>, key: string): T[] {
  let list = map.get(key);
  if (!list) map.set(key, (list = []));
  return list;
}

export async function applyPage(db: Dexie, names: string[], page: PullPage): Promise<void> {
  const outbox = db.table<OutboxOp, number>('_outbox');
  const meta = db.table<Meta, string>('_meta');
  const tables = names.map((t) => db.table<SyncRecord, string>(t));
  await db.transaction('rw', [outbox, meta, ...tables], async () => {
    // Spaces the caller lost (left the family) or must read again from the start.
    for (const space of [...page.spaces.removed, ...page.spaces.reset]) {
      const removed = page.spaces.removed.includes(space);
      // A space read again from the start keeps the records of local writes not yet pushed.
      const pending = removed ? [] : await outbox.filter((op) => op.space === space).toArray();
      for (const t of tables) {
        const keep = new Set(pending.filter((op) => op.table === t.name).map((op) => op.id));
        await t.where('space').equals(space).filter((r) => !keep.has(r.id)).delete();
      }
      if (removed) await outbox.filter((op) => op.space === space).delete();
    }
    // Local writes not yet acknowledged stay on top of what the server says. The outbox is
    // read once per page (it is small), and rows are written in bulk: a fresh device's
    // first pull of a long history is bounded by IndexedDB, not by a lookup per record.
    const pendingOf = new Map<string, OutboxOp[]>();
    for (const op of await outbox.orderBy('key').toArray()) listIn(pendingOf, `${op.table}/${op.id}`).push(op);
    const deletes = new Map<string, PullPage['changes']>();
    const puts = new Map<string, SyncRecord[]>();
    for (const c of page.changes) {
      if (!names.includes(c.table)) continue;
      const pending = pendingOf.get(`${c.table}/${c.id}`) ?? [];
      // A pending delete, or a move not yet finished (ops in another space), decides the row.
      if (pending.some((op) => op.action === 'delete' || op.space !== c.space)) continue;
      if (c.deleted) {
        if (pending.length === 0) listIn(deletes, c.table).push(c);
        continue;
      }
      const overlay = Object.assign({}, ...pending.map((op) => op.fields ?? {}));
      listIn(puts, c.table).push({ ...(c.fields ?? {}), ...overlay, id: c.id, space: c.space });
    }
    // Deletes first: a record moved to another space leaves a delete in the old one, which
    // removes the row only where the row still is; a put always lands (the record is live).
    for (const [table, changes] of deletes) {
      const rows = db.table<SyncRecord, string>(table);
      const current = await rows.bulkGet(changes.map((c) => c.id));
      await rows.bulkDelete(changes.filter((c, i) => current[i]?.space === c.space).map((c) => c.id));
    }
    for (const [table, records] of puts) await db.table<SyncRecord, string>(table).bulkPut(records);
    // The spaces this user belongs to, as the pulls named them: where `move` may take records.
    const recorded = (await meta.get('spaces'))?.value as string[] | undefined;
    const spaces = new Set(recorded ?? (await spacesOfRecords(db, names)));
    for (const s of page.spaces.added) spaces.add(s);
    for (const s of page.spaces.removed) spaces.delete(s);
    await meta.put({ key: 'spaces', value: [...spaces] });
    await meta.put({ key: 'cursor', value: page.cursor });
  });
}
