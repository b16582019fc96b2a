// The day's view: totals, the timeline of one day (history.ts picks the day), and the running
// timers with their stopwatches.

import type { SyncEngine } from 'latchkey-js';
import { $, clock, duration, el, stopwatch, type Baby, type Entry, type Item, type Kind } from './dom.js';
import { edit } from './edit.js';
import { dayLabel, entriesBetween, shownDay } from './history.js';

// A timer left running longer than this is not offered as running (it was forgotten).
const TIMER_HORIZON_MS = 2 * 86_400_000;

/** The running timers (sleeps, breast feeds) of the chosen baby. */
export async function runningTimers(sync: SyncEngine, babyId: string | null): Promise<{ which: string; table: Kind; entry: Entry }[]> {
  if (!babyId) return [];
  return (await entriesBetween(sync, babyId, Date.now() - TIMER_HORIZON_MS, Infinity))
    .filter(({ table, entry }) => (table === 'sleeps' || entry.kind === 'breast') && entry.started_at && !entry.ended_at)
    .map(({ table, entry }) => ({ which: table === 'sleeps' ? 'sleep' : `breast-${entry.side}`, table, entry }));
}

function describeEntry({ table, entry }: Item): string {
  const until = entry.ended_at ? ` · ${duration(entry.ended_at - (entry.started_at ?? 0))}` : entry.started_at ? ' · running' : '';
  if (table === 'feeds' && entry.kind === 'bottle') return `Bottle · ${entry.amount_ml} ml`;
  if (table === 'feeds' && entry.kind === 'solids') return `Solids · ${entry.food}`;
  if (table === 'feeds') return `Breast (${entry.side})${until}`;
  if (table === 'sleeps') return `Sleep${until}`;
  if (table === 'diapers') return `Diaper · ${entry.kind}`;
  return `Note · ${entry.text}`;
}

/** The shown day's totals and timeline of `baby`; an entry opens the edit dialog. */
export async function renderToday(sync: SyncEngine, baby: Baby | null, render: () => Promise<void>): Promise<void> {
  $('log').hidden = baby === null;
  $('today').hidden = baby === null;
  if (!baby) {
    // Nothing of a baby no longer here stays in the page (an account deleted, another user).
    $('timeline').replaceChildren();
    $('totals').replaceChildren();
    return;
  }
  const day = shownDay();
  $('today-title').textContent = `${day.today ? 'Today' : dayLabel(day.from)} · ${baby.name}`;
  $<HTMLButtonElement>('day-next').disabled = day.today;
  $<HTMLButtonElement>('day-today').hidden = day.today;
  const today = await entriesBetween(sync, baby.id, day.from, day.to);
  const feeds = today.filter((i) => i.table === 'feeds');
  const ml = feeds.reduce((sum, i) => sum + (i.entry.kind === 'bottle' ? Number(i.entry.amount_ml ?? 0) : 0), 0);
  const slept = today
    .filter((i) => i.table === 'sleeps')
    .reduce((sum, i) => sum + ((i.entry.ended_at ?? Date.now()) - (i.entry.started_at ?? 0)), 0);
  const totals: [string, string, string][] = [
    ['feeds', 'Feeds', String(feeds.length)],
    ['bottle', 'Bottle', `${ml} ml`],
    ['sleep', 'Sleep', duration(slept)],
    ['diapers', 'Diapers', String(today.filter((i) => i.table === 'diapers').length)],
  ];
  $('totals').replaceChildren(
    ...totals.map(([key, label, value]) => {
      const dd = el('dd', {}, value);
      dd.dataset.total = key;
      return el('div', {}, el('dt', {}, label), dd);
    }),
  );
  const timeline = $('timeline');
  if (today.length === 0) {
    timeline.replaceChildren(el('li', { className: 'empty' }, day.today ? 'Nothing logged today yet.' : 'Nothing logged that day.'));
    return;
  }
  timeline.replaceChildren(
    ...today.map((item) => {
      const button = el('button', { type: 'button' }, el('span', {}, describeEntry(item)), el('time', { dateTime: new Date(item.at).toISOString() }, clock(item.at)));
      button.dataset.id = item.entry.id;
      button.dataset.table = item.table;
      button.setAttribute('aria-label', `Edit ${describeEntry(item)} at ${clock(item.at)}`);
      button.addEventListener('click', () => edit(sync, item, render));
      const note = item.table !== 'notes' && item.entry.note ? el('p', { className: 'empty' }, item.entry.note) : '';
      return el('li', {}, button, note);
    }),
  );
}

export async function renderTimers(sync: SyncEngine, babyId: string | null): Promise<void> {
  const timers = await runningTimers(sync, babyId);
  $('timers').replaceChildren(
    ...timers.map((t) =>
      el('div', { className: 'timer' }, el('span', {}, t.which === 'sleep' ? 'Sleeping' : `Feeding (${t.entry.side})`), el('strong', {}, stopwatch(Date.now() - (t.entry.started_at ?? 0)))),
    ),
  );
  document.querySelectorAll<HTMLButtonElement>('[data-timer]').forEach((b) => {
    const on = timers.some((t) => t.which === b.dataset.timer);
    const label = b.dataset.timer === 'sleep' ? 'Sleep' : `Breast · ${b.dataset.timer === 'breast-left' ? 'left' : 'right'}`;
    b.textContent = on ? `Stop ${label.toLowerCase()}` : label;
    b.setAttribute('aria-pressed', String(on));
  });
}
