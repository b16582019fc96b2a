// BabyLog's tables as latchkey's [sync.tables] declare them (crates/latchkey-service/src/sync/
// babylog.toml): what one quick entry writes, and what the list shows of it.
export const TABLES = ['babies', 'feeds', 'sleeps', 'diapers', 'notes'];
export const KINDS = { feeds: 'Bottle', sleeps: 'Sleep', diapers: 'Diaper', notes: 'Note' };

export const newId = (prefix) => `${prefix}_${crypto.randomUUID().replace(/-/g, '')}`;

/** The fields of a new entry of `table` for `babyId`, from the form's text and millilitres. */
export function fieldsFor(table, babyId, text, ml, now = Date.now()) {
  const note = text || undefined;
  switch (table) {
    case 'feeds':
      return { baby_id: babyId, kind: 'bottle', started_at: now, amount_ml: Number.isFinite(ml) ? ml : undefined, note };
    case 'sleeps':
      return { baby_id: babyId, started_at: now, note };
    case 'diapers':
      return { baby_id: babyId, at: now, kind: 'wet', note };
    default:
      return { baby_id: babyId, at: now, text: text || '…' };
  }
}

/** The free-text field of an entry: notes keep it in `text`, the others in `note`. */
export const textField = (table) => (table === 'notes' ? 'text' : 'note');
export const when = (r) => r.started_at ?? r.at ?? 0;

/** The field an entry's time is in, and the local index that reads a baby's entries by it. */
const TIME_FIELD = { feeds: 'started_at', sleeps: 'started_at', diapers: 'at', notes: 'at' };
const indexOf = (table) => `[baby_id+${TIME_FIELD[table]}]`;
export const INDEXES = Object.fromEntries(Object.keys(KINDS).map((t) => [t, [indexOf(t)]]));

const ofBaby = (sync, table, babyId) => sync.table(table).where(indexOf(table)).between([babyId, -Infinity], [babyId, Infinity]);

/** Every entry of a baby, as `{ table, id }`, across the entry tables (a move takes them all). */
export async function entriesOf(sync, babyId) {
  const out = [];
  for (const table of Object.keys(KINDS)) for (const id of await ofBaby(sync, table, babyId).primaryKeys()) out.push({ table, id });
  return out;
}

/**
 * A baby's `limit` newest entries, newest first, each with its table: a page of a history of
 * any length, read through the indexes (at most `limit` records from each table).
 */
export async function latestEntries(sync, babyId, limit) {
  const rows = [];
  for (const table of Object.keys(KINDS)) {
    for (const r of await ofBaby(sync, table, babyId).reverse().limit(limit).toArray()) rows.push({ ...r, table });
  }
  return rows.sort((a, b) => when(b) - when(a)).slice(0, limit);
}
