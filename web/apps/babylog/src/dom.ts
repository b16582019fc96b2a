// What BabyLog's modules share: the records' shapes, two DOM helpers and the time formats.

import type { SyncRecord } from 'latchkey-js';

export const TABLES = ['babies', 'feeds', 'sleeps', 'diapers', 'notes'] as const;
export type Kind = 'feeds' | 'sleeps' | 'diapers' | 'notes';
export const KINDS: readonly Kind[] = ['feeds', 'sleeps', 'diapers', 'notes'];

export interface Baby extends SyncRecord { name: string; created_at?: number }
export interface Entry extends SyncRecord {
  baby_id?: string;
  kind?: string;
  side?: string;
  started_at?: number;
  ended_at?: number | null;
  amount_ml?: number;
  food?: string;
  note?: string;
  at?: number;
  text?: string;
}
/** An entry of one of the entry tables, with the time it is shown at. */
export interface Item { table: Kind; entry: Entry; at: number }

export const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
export const el = <K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...kids: (Node | string)[]) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...kids);
  return node;
};
export const newId = (prefix: string) => `${prefix}_${crypto.randomUUID().replace(/-/g, '')}`;
export const startOfToday = () => new Date(new Date().setHours(0, 0, 0, 0)).getTime();
export const clock = (ms: number) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
export const duration = (ms: number) => {
  const mins = Math.max(0, Math.round(ms / 60_000));
  return mins < 60 ? `${mins} min` : `${Math.floor(mins / 60)} h ${mins % 60} min`;
};
export const stopwatch = (ms: number) => {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};

/** A `<input type="datetime-local">` value (local time, to the minute) for epoch milliseconds. */
export function toLocalInput(ms: number | null | undefined): string {
  if (typeof ms !== 'number') return '';
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The epoch milliseconds of a `datetime-local` value; `null` when empty or not a date. */
export function fromLocalInput(value: string): number | null {
  if (!value) return null;
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? ms : null;
}
