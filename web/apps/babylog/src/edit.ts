// The edit dialog: an entry's fields and times, saved as only the fields the user changed
// (so a partner's edit of another field survives), and delete with undo: the deleted row is
// kept until the next deletion, and "Undo" puts it back whole (a put after a delete brings
// the record back, docs/sync-protocol.md §4).

import type { SyncEngine } from 'latchkey-js';
import { $, el, fromLocalInput, toLocalInput, type Entry, type Item, type Kind } from './dom.js';

interface Field { name: string; label: string; type: 'text' | 'number' | 'select' | 'datetime-local'; values?: string[] }

const STARTS_AND_ENDS: Field[] = [
  { name: 'started_at', label: 'Started', type: 'datetime-local' },
  { name: 'ended_at', label: 'Ended', type: 'datetime-local' },
];
const HAPPENED: Field[] = [{ name: 'at', label: 'Time', type: 'datetime-local' }];

const EDITABLE: Record<Kind, Field[]> = {
  feeds: [
    ...STARTS_AND_ENDS,
    { name: 'amount_ml', label: 'Amount (ml)', type: 'number' },
    { name: 'side', label: 'Side', type: 'select', values: ['left', 'right', 'both'] },
    { name: 'food', label: 'Food', type: 'text' },
    { name: 'note', label: 'Note', type: 'text' },
  ],
  sleeps: [...STARTS_AND_ENDS, { name: 'note', label: 'Note', type: 'text' }],
  diapers: [
    ...HAPPENED,
    { name: 'kind', label: 'Kind', type: 'select', values: ['wet', 'dirty', 'mixed', 'dry'] },
    { name: 'note', label: 'Note', type: 'text' },
  ],
  notes: [...HAPPENED, { name: 'text', label: 'Text', type: 'text' }],
};

function fieldsOf(item: Item): Field[] {
  return EDITABLE[item.table].filter((f) => {
    if (item.table !== 'feeds') return true;
    if (f.name === 'amount_ml') return item.entry.kind === 'bottle';
    if (f.name === 'side') return item.entry.kind === 'breast';
    if (f.name === 'food') return item.entry.kind === 'solids';
    // A bottle or solids is a moment: it has a start, no end.
    if (f.name === 'ended_at') return item.entry.kind === 'breast';
    return true;
  });
}

function inputFor(f: Field, value: unknown): HTMLInputElement | HTMLSelectElement {
  if (f.type === 'select') {
    const select = document.createElement('select');
    for (const v of f.values ?? []) select.append(new Option(v, v, false, v === value));
    return select;
  }
  const input = document.createElement('input');
  input.type = f.type;
  input.value = f.type === 'datetime-local' ? toLocalInput(value as number | undefined) : value === undefined || value === null ? '' : String(value);
  // A start or a moment is required by the tables; only an end may be cleared.
  if (f.type === 'datetime-local' && f.name !== 'ended_at') input.required = true;
  return input;
}

/** The value a field's input holds, as the table stores it; `undefined` for "leave it". */
function valueOf(f: Field, raw: string): unknown {
  if (f.type === 'number') return raw === '' ? undefined : Math.round(Number(raw));
  if (f.type === 'datetime-local') return fromLocalInput(raw) ?? (f.name === 'ended_at' ? null : undefined);
  return raw;
}

let lastDeleted: { table: Kind; id: string; space: string | null; fields: Record<string, unknown> } | null = null;

/** Opens the dialog for `item`; `render` redraws the app once the dialog has done its work. */
export function edit(sync: SyncEngine, item: Item, render: () => Promise<void>): void {
  const dialog = $<HTMLDialogElement>('edit');
  const fields = fieldsOf(item);
  $('edit-fields').replaceChildren(
    ...fields.map((f) => {
      const input = inputFor(f, item.entry[f.name as keyof Entry]);
      input.id = `edit-${f.name}`;
      input.setAttribute('name', f.name);
      return el('p', { className: 'inline' }, el('label', { htmlFor: input.id }, f.label), input);
    }),
  );
  // The browser refuses to save an end before the start (the form's own validation).
  const start = document.getElementById('edit-started_at') as HTMLInputElement | null;
  const end = document.getElementById('edit-ended_at') as HTMLInputElement | null;
  if (start && end) {
    const bound = () => (end.min = start.value);
    bound();
    start.addEventListener('input', bound);
  }
  dialog.onclose = async () => {
    if (dialog.returnValue === 'delete') await remove(sync, item);
    if (dialog.returnValue === 'save') {
      const changed: Record<string, unknown> = {};
      for (const f of fields) {
        const input = document.getElementById(`edit-${f.name}`) as HTMLInputElement | HTMLSelectElement;
        const before = item.entry[f.name as keyof Entry] ?? (f.type === 'datetime-local' ? null : '');
        const after = valueOf(f, input.value.trim());
        // Times are shown to the minute: an untouched time keeps its seconds.
        const same = f.type === 'datetime-local' ? input.value === toLocalInput(before as number | null) : after === before;
        if (after !== undefined && !same) changed[f.name] = after;
      }
      if (Object.keys(changed).length > 0) await sync.put(item.table, item.entry.id, changed);
    }
    await render();
  };
  dialog.returnValue = '';
  dialog.showModal();
}

async function remove(sync: SyncEngine, item: Item): Promise<void> {
  const { id, space, ...fields } = item.entry;
  await sync.delete(item.table, id);
  lastDeleted = { table: item.table, id, space, fields };
  $('undo-text').textContent = 'Entry deleted.';
  $('undo').hidden = false;
}

/** Wires the "Undo" button of the last deletion. */
export function wireUndo(sync: SyncEngine, render: () => Promise<void>): void {
  $('undo-button').addEventListener('click', async () => {
    const d = lastDeleted;
    if (!d) return;
    lastDeleted = null;
    $('undo').hidden = true;
    await sync.put(d.table, d.id, d.fields, { space: d.space ?? undefined });
    await render();
  });
}
