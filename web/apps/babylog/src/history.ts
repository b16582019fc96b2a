// Years of history, read a window at a time: every entry table is indexed by baby and time
// (latchkey-js's `indexes`), the timeline shows one day, and "Earlier"/"Later" step through the
// days. Nothing reads a baby's whole history except a move.

import type { SyncEngine } from 'latchkey-js';
import { KINDS, startOfToday, type Entry, type Item, type Kind } from './dom.js';

/** The field an entry's time is in: feeds and sleeps start, diapers and notes happen at. */
export const TIME_FIELD: Record<Kind, 'started_at' | 'at'> = { feeds: 'started_at', sleeps: 'started_at', diapers: 'at', notes: 'at' };
const indexOf = (table: Kind) => `[baby_id+${TIME_FIELD[table]}]`;
/** The local indexes BabyLog declares (SyncOptions.indexes); raise INDEX_VERSION on a change. */
export const INDEXES: Record<string, string[]> = Object.fromEntries(KINDS.map((k) => [k, [indexOf(k)]]));
export const INDEX_VERSION = 1;

/** A baby's entries with a time in [from, to), newest first, read through the indexes. */
export async function entriesBetween(sync: SyncEngine, baby: string, from: number, to: number): Promise<Item[]> {
  const items: Item[] = [];
  for (const table of KINDS) {
    const field = TIME_FIELD[table];
    const rows = await sync.table<Entry>(table).where(indexOf(table)).between([baby, from], [baby, to], true, false).toArray();
    for (const entry of rows) items.push({ table, entry, at: entry[field] ?? 0 });
  }
  return items.sort((a, b) => b.at - a.at);
}

/** Every entry of a baby (a move takes them all). */
export const allEntries = (sync: SyncEngine, baby: string) => entriesBetween(sync, baby, -Infinity, Infinity);

// The day the timeline shows: its local midnight.
let shown = startOfToday();

const dayAfter = (day: number, n = 1) => {
  const d = new Date(day);
  d.setDate(d.getDate() + n);
  return d.setHours(0, 0, 0, 0);
};

/** The shown day as [from, to), and whether it is today. */
export function shownDay(): { from: number; to: number; today: boolean } {
  const today = startOfToday();
  if (shown > today) shown = today;
  return { from: shown, to: dayAfter(shown), today: shown === today };
}

/** Steps the shown day (-1 earlier, +1 later, never past today); `0` goes back to today. */
export function stepDay(n: number): void {
  shown = n === 0 ? startOfToday() : Math.min(dayAfter(shown, n), startOfToday());
}

export const dayLabel = (day: number) => new Date(day).toLocaleDateString([], { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
