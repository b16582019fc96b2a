// Moving a baby, with every entry of it, between the parent's own log and the family
// (latchkey-js's SyncEngine.move: a delete in the old space and a put in the new one, per
// record, in one local transaction). The partner sees the baby come or go at their next pull.

import type { Organization, SyncEngine } from 'latchkey-js';
import { $, type Baby } from './dom.js';
import { allEntries } from './history.js';

let target: { baby: Baby; space: string } | null = null;

/** Shows the move button for the chosen baby: into the family from `me`, or back to `me`. */
export function renderMove(baby: Baby | null, family: Organization | null): void {
  const button = $<HTMLButtonElement>('move-baby');
  target = null;
  if (baby && family && baby.space === 'me') target = { baby, space: family.id };
  if (baby && family && baby.space === family.id) target = { baby, space: 'me' };
  button.hidden = target === null;
  if (target) button.textContent = target.space === 'me' ? `Move ${baby!.name} to my own log` : `Move ${baby!.name} to “${family!.name}”`;
}

/** Wires the move button; `render` redraws the app after the move. */
export function wireMove(sync: SyncEngine, render: () => Promise<void>): void {
  $('move-baby').addEventListener('click', async () => {
    const t = target;
    if (!t) return;
    const records = [{ table: 'babies', id: t.baby.id }, ...(await allEntries(sync, t.baby.id)).map((i) => ({ table: i.table, id: i.entry.id }))];
    try {
      const moved = await sync.move(records, t.space);
      $('move-message').textContent = `${t.baby.name} moved, with ${moved - 1} ${moved === 2 ? 'entry' : 'entries'}.`;
    } catch (e) {
      $('move-message').textContent = e instanceof Error ? e.message : 'That did not work.';
    }
    await render();
  });
}
