'use client';
// One line of the timeline: its text (and millilitres for a bottle), its times, and delete.
// Inputs are uncontrolled and saved on blur; the parent keys the line by the synced values so
// an edit pulled from the partner re-renders it.
import { KINDS, textField } from './entries';

/** A `<input type="datetime-local">` value (local time, minutes) for epoch milliseconds. */
export function toLocalInput(ms) {
  if (typeof ms !== 'number') return '';
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The epoch milliseconds of a `datetime-local` value; `null` when empty or not a date. */
export function fromLocalInput(value) {
  if (!value) return null;
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? ms : null;
}

/** The time fields an entry of `table` has: feeds and sleeps start and may end; others happen at. */
export const timeFields = (table) => (table === 'feeds' || table === 'sleeps' ? ['started_at', 'ended_at'] : ['at']);
const LABELS = { started_at: 'start', ended_at: 'end', at: 'time' };

export default function Entry({ row, onEdit, onDelete }) {
  const field = textField(row.table);
  const saveTime = (input, name) => {
    const ms = fromLocalInput(input.value);
    // A start (or `at`) is required by the table, and an end comes after the start: anything
    // else puts the saved time back.
    // The start as shown beside it (a start just edited may not have been drawn anew yet).
    const start = fromLocalInput(input.closest('li')?.querySelector('input.started_at')?.value ?? '') ?? row.started_at;
    const refused = (ms === null && name !== 'ended_at') || (name === 'ended_at' && ms !== null && ms < start);
    if (refused) input.value = toLocalInput(row[name]);
    else if (ms !== (row[name] ?? null)) onEdit(row, name, ms);
  };
  return (
    <li data-id={row.id} data-space={row.space ?? ''}>
      <strong>{KINDS[row.table]}</strong> <span className="text">{row[field] ?? ''}</span>{' '}
      <input aria-label="edit" className="edit" defaultValue={row[field] ?? ''}
        onBlur={(e) => e.target.value !== (row[field] ?? '') && onEdit(row, field, e.target.value)} />
      {row.table === 'feeds' && (
        <input aria-label="ml" className="amount" type="number" defaultValue={row.amount_ml ?? ''}
          onBlur={(e) => e.target.value !== String(row.amount_ml ?? '') && onEdit(row, 'amount_ml', Number(e.target.value))} />
      )}
      {timeFields(row.table).map((name) => (
        <input key={name} aria-label={LABELS[name]} className={name} type="datetime-local"
          defaultValue={toLocalInput(row[name])} onBlur={(e) => saveTime(e.target, name)} />
      ))}
      <button type="button" className="delete" onClick={() => onDelete(row)}>Delete</button>
    </li>
  );
}
