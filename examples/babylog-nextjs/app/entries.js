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

/** Every entry of a baby, as `{ table, id }`, across the entry tables. */
export async function entriesOf(sync, babyId) {
  const out = [];
  for (const table of Object.keys(KINDS)) {
    for (const r of await sync.table(table).filter((r) => r.baby_id === babyId).toArray()) out.push({ table, id: r.id });
  }
  return out;
}
