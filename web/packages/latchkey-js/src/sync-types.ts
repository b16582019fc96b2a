// The shapes the sync engine (./sync.ts) stores and exchanges: its status, local records,
// outbox entries, refusals, options, and the sync API's push results and pull pages
// (docs/sync-protocol.md).

import type { TokenSource } from './token-source.js';

export type SyncState = 'offline' | 'signed-out' | 'pending' | 'syncing' | 'error' | 'up-to-date';

export interface SyncStatus {
  state: SyncState;
  /** Local changes not yet acknowledged by the server. */
  pending: number;
  /** Why the last attempt failed (state `error`). */
  error?: string;
}

export interface SyncRecord {
  id: string;
  /** `me`, an organization id, or `null` before the first sign-in. */
  space: string | null;
  [field: string]: unknown;
}

export interface OutboxOp {
  key?: number;
  op_id: string;
  seq: number | null;
  space: string | null;
  table: string;
  id: string;
  action: 'put' | 'delete';
  fields?: Record<string, unknown>;
  hlc: string;
  /**
   * A move's put (`SyncEngine.move`): the space the record leaves. Local only, never sent:
   * the delete there is queued once the server has taken the put.
   */
  moveFrom?: string;
}

export interface RejectedOp extends OutboxOp {
  reason: { code: string; message: string };
  rejectedAt: number;
}

export interface Meta {
  key: string;
  value: unknown;
}

export interface SyncOptions {
  /**
   * Where session tokens come from: latchkey-js's `Auth`, `clerkTokenSource(Clerk)`, or
   * `createTokenSource()` fed by a hook such as `useAuth()` (./token-source.ts).
   */
  auth: TokenSource;
  /**
   * Where latchkey's sync API is (`/v1/sync/…` is appended). Default: the `Auth`'s latchkey
   * URL, or else the page's origin. A Clerk app behind Clerk's Frontend API proxy gives
   * `'/__clerk'`, so sync stays on the app's origin.
   */
  url?: string;
  /** The `fetch` for sync calls when `url` is given or `auth` is not an `Auth`. */
  fetch?: typeof fetch;
  /** The synced tables (as configured in latchkey's `[sync.tables]`). */
  tables: string[];
  /** The local database's name (one per app and user profile). */
  dbName?: string;
  /**
   * Local indexes beyond `id` and `space`, per table, in Dexie's notation (`'started_at'`,
   * `'[baby_id+started_at]'`), so an app reads a window of a long history (one day, one page)
   * instead of every record. Give `indexVersion` too, and raise it whenever the indexes change:
   * IndexedDB adds and drops indexes only in an upgrade.
   */
  indexes?: Record<string, string[]>;
  /** The version of `indexes` (default 1 when there are any); see `indexes`. */
  indexVersion?: number;
  schemaVersion?: number;
  /** Ops per push (latchkey accepts up to 1,000 by default: `[sync] max_ops_per_push`). */
  batchSize?: number;
  /**
   * How long a local write waits before it is pushed, so a burst of edits goes in one push
   * (the status says `pending` meanwhile; `sync()` or `poke()` push at once).
   */
  writeDelayMs?: number;
  now?: () => number;
  random?: () => number;
}

export interface PushResult {
  seq: number;
  op_id: string;
  status: 'applied' | 'duplicate' | 'superseded' | 'rejected';
  /** What beat the op: the record deleted, or the current values of the fields it lost. */
  winning?: { deleted: boolean; fields?: Record<string, unknown> };
  reason?: { code: string; message: string };
}

export interface PullPage {
  changes: { space: string; table: string; id: string; deleted: boolean; fields?: Record<string, unknown> }[];
  cursor: string;
  has_more: boolean;
  last_seq: number;
  spaces: { added: string[]; removed: string[]; reset: string[] };
}
