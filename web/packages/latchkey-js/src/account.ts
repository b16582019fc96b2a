// A person's own data (docs/account-data.md): "Download my data" (`GET /v1/me/data_export`,
// one JSON document) and "Delete account" (`DELETE /v1/me`, Clerk's endpoint). Deleting needs
// a recent check of the session's factors: with the password, `deleteAccount` makes that check
// first through Clerk's reverification endpoints (`/v1/client/sessions/{id}/verify`).
// `Auth` exposes these as `downloadMyData`, `confirmPassword` and `deleteAccount`.

import type { Wire, WireClient } from './fapi.js';

/** What `Auth` lends the account calls: its wire and its client bookkeeping. */
export interface AccountHost {
  wire: Wire;
  adopt(client: WireClient | null): void;
  sessionId(): string;
}

/** latchkey's export: the profile, live sessions and the readable synced records. */
export interface DataExport {
  object: 'data_export';
  exported_at: number;
  user: Record<string, unknown> & { id: string };
  sessions: Record<string, unknown>[];
  sync_records: { space: string; table: string; id: string; fields: Record<string, unknown>; updated_at: number }[];
}

/** The export as latchkey sent it (a `Blob` to save as a file), and its parsed content. */
export async function downloadMyData(host: AccountHost): Promise<{ blob: Blob; data: DataExport }> {
  const res = await host.wire.fetchRaw('GET', `/v1/me/data_export?_clerk_session_id=${host.sessionId()}`);
  const blob = await res.blob();
  return { blob, data: JSON.parse(await blob.text()) as DataExport };
}

/**
 * Confirms the signed-in person with their password (Clerk's reverification, first factor):
 * for ten minutes afterwards the session may delete the account or change the password.
 */
export async function confirmPassword(host: AccountHost, password: string): Promise<void> {
  const path = `/v1/client/sessions/${host.sessionId()}/verify`;
  await host.wire.call('POST', path, { level: 'first_factor' });
  const { client } = await host.wire.call('POST', `${path}/attempt_first_factor`, { strategy: 'password', password });
  if (client) host.adopt(client);
}

/**
 * Deletes the signed-in person's account. latchkey refuses with 403
 * `session_reverification_required` without a recent check (give `password`, or sign in
 * again), 422 `organization_minimum_permissions_needed` for the last admin of an organization
 * with other members, and 403 `delete_self_not_enabled` when the operator turned it off.
 */
export async function deleteAccount(host: AccountHost, options: { password?: string }): Promise<void> {
  if (options.password !== undefined) await confirmPassword(host, options.password);
  await host.wire.call('DELETE', `/v1/me?_clerk_session_id=${host.sessionId()}`);
  host.adopt(null);
}
