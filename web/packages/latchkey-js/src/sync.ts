// The offline-first sync engine (docs/sync-protocol.md §12): every local write and its outbox
// entry go into one Dexie transaction; a loop pushes the outbox and pulls changes with backoff
// and jitter, wakes on `online`, on local writes and on the server's live events, and runs in
// one tab at a time (a Web Lock). Ownership comes from the session token on the server, never
// from here: the engine names a space only as `me` or an organization id.

import { Dexie, type Table } from 'dexie';
import { Auth } from './auth.js';
import { LatchkeyError } from './fapi.js';
import { applyPage, spacesOfRecords } from './pull.js';
import type { TokenSource } from './token-source.js';
import type { Meta, OutboxOp, PullPage, PushResult, RejectedOp, SyncOptions, SyncRecord, SyncState, SyncStatus } from './sync-types.js';

export type { OutboxOp, RejectedOp, SyncOptions, SyncRecord, SyncState, SyncStatus } from './sync-types.js';

const MAX_BACKOFF_MS = 30_000;
/** Records asked for per pull page (latchkey allows up to 10,000). */
const PULL_PAGE = 1000;

/** The owner `clearLocalData` leaves behind: no user's id, and equal to none. */
const FORGOTTEN = '(forgotten)';

/** Thrown by a sync attempt that should be retried later (network, 5xx, 429). */
class RetryLater extends Error {}

export class SyncEngine {
  readonly db: Dexie;
  private readonly auth: TokenSource;
  private readonly send: (path: string, init: RequestInit) => Promise<Response>;
  private readonly tables: string[];
  private readonly schemaVersion: number;
  private batchSize: number;
  private readonly writeDelayMs: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private status: SyncStatus = { state: 'up-to-date', pending: 0 };
  private readonly listeners = new Set<(s: SyncStatus) => void>();
  private lastWall = 0;
  private counter = 0;
  private clientId: string | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private failures = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = true;
  private events: AbortController | null = null;
  private readonly cleanups: (() => void)[] = [];
  private writeSpace: string | null = 'me';
  private statusTicket = 0;
  /** Tells this database's other tabs that its records changed (they share IndexedDB). */
  private readonly tabs: BroadcastChannel | null;

  constructor(options: SyncOptions) {
    this.auth = options.auth;
    this.send = sender(options);
    this.tables = options.tables;
    this.schemaVersion = options.schemaVersion ?? 1;
    this.batchSize = options.batchSize ?? 200;
    this.writeDelayMs = options.writeDelayMs ?? 1500;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.db = new Dexie(options.dbName ?? 'latchkey');
    const stores: Record<string, string> = { _outbox: '++key, [table+id]', _meta: 'key', _rejected: '++key' };
    for (const t of this.tables) stores[t] = ['id', 'space', ...(options.indexes?.[t] ?? [])].join(', ');
    // Dexie upgrades an older database to the latest declared schema by itself (no data moves).
    const indexVersion = options.indexVersion ?? (options.indexes ? 1 : 0);
    this.db.version(1 + indexVersion).stores(stores);
    this.tabs = typeof BroadcastChannel !== 'undefined' ? new BroadcastChannel(`latchkey:sync:${this.db.name}`) : null;
    // Another tab wrote or synced: re-read the pending count and let the app re-render.
    this.tabs?.addEventListener('message', () => {
      if (!this.running) void this.refreshStatus();
    });
  }

  table<T extends SyncRecord = SyncRecord>(name: string): Table<T, string> {
    return this.db.table(name);
  }

  /** Where new records go once signed in: `me` (the default) or an organization id. */
  setSpace(space: string): void {
    this.writeSpace = space;
  }

  onStatus(listener: (s: SyncStatus) => void): () => void {
    this.listeners.add(listener);
    listener(this.status);
    return () => this.listeners.delete(listener);
  }

  get currentStatus(): SyncStatus {
    return this.status;
  }

  /** Creates or updates a record: the local row and its outbox entry in one transaction. */
  async put(table: string, id: string, fields: Record<string, unknown>, options: { space?: string } = {}): Promise<void> {
    await this.write({ table, id, action: 'put', fields }, options.space);
  }

  async delete(table: string, id: string): Promise<void> {
    await this.write({ table, id, action: 'delete' });
  }

  /**
   * Moves records to another space (a baby and all its entries from `me` to a family, or
   * back); the ids stay. Per record, a put of all its fields in the new space is queued, and
   * only once the server has taken it the delete in the old space (so a refused put, such as
   * a full or lost space, removes nothing: the row goes back to its space and the refusal is
   * kept in `rejected()`). Members of the old space see the records go, members of the new one
   * see them come. Refused at once (nothing changes): a space this device has not synced as
   * one of the user's, and records not yet claimed by a first sign-in. docs/sync-protocol.md §12.
   */
  async move(records: { table: string; id: string }[], space: string): Promise<number> {
    for (const r of records) if (!this.tables.includes(r.table)) throw new Error(`${r.table} is not a synced table`);
    if (!(await this.knownSpaces()).includes(space)) throw new Error(`${space} is not a space this device has synced for the user; sync first.`);
    const clientId = await this.ensureClientId();
    const outbox = this.db.table<OutboxOp, number>('_outbox');
    const tables = [...new Set(records.map((r) => r.table))].map((t) => this.db.table<SyncRecord, string>(t));
    let moved = 0;
    await this.db.transaction('rw', [outbox, ...tables], async () => {
      for (const { table, id } of records) {
        const rows = this.db.table<SyncRecord, string>(table);
        const row = await rows.get(id);
        if (!row || row.space === space) continue;
        if (row.space === null) throw new Error('A record written before the first sign-in has no space to move from yet.');
        const { id: _id, space: from, ...fields } = row;
        const op_id = `${clientId}-${crypto.randomUUID()}`;
        await outbox.add({ table, id, seq: null, action: 'put', fields, op_id, space, hlc: this.stamp(clientId), moveFrom: from });
        await rows.put({ ...row, space });
        moved++;
      }
    });
    if (moved > 0) await this.wrote();
    return moved;
  }

  /** The user's spaces as the pulls named them (./pull.ts). */
  private async knownSpaces(): Promise<string[]> {
    const recorded = (await this.db.table<Meta, string>('_meta').get('spaces'))?.value as string[] | undefined;
    return recorded ?? spacesOfRecords(this.db, this.tables);
  }

  /** Operations the server refused, with its reason; they stay until `dismissRejected`. */
  async rejected(): Promise<RejectedOp[]> {
    return this.db.table<RejectedOp, number>('_rejected').toArray();
  }

  async dismissRejected(key: number): Promise<void> {
    await this.db.table('_rejected').delete(key);
  }

  async pendingCount(): Promise<number> {
    return this.db.table('_outbox').count();
  }

  private async write(op: Pick<OutboxOp, 'table' | 'id' | 'action' | 'fields'>, space?: string): Promise<void> {
    if (!this.tables.includes(op.table)) throw new Error(`${op.table} is not a synced table`);
    const clientId = await this.ensureClientId();
    const outbox = this.db.table<OutboxOp, number>('_outbox');
    await this.db.transaction('rw', [this.db.table(op.table), outbox], async () => {
      const rows = this.db.table<SyncRecord, string>(op.table);
      const existing = await rows.get(op.id);
      const target = existing?.space ?? space ?? (this.auth.userId !== null ? this.writeSpace : null);
      if (op.action === 'put') await rows.put({ ...(existing ?? {}), ...op.fields, id: op.id, space: target });
      else await rows.delete(op.id);
      await outbox.add({ ...op, op_id: `${clientId}-${crypto.randomUUID()}`, seq: null, space: target, hlc: this.stamp(clientId) });
    });
    await this.wrote();
  }

  /** After a local write: push soon, tell the other tabs, show the pending count. */
  private async wrote(): Promise<void> {
    if (!this.stopped) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => this.poke(), this.writeDelayMs);
    }
    this.tabs?.postMessage('changed');
    // A sync in progress reports its own status when it ends.
    if (!this.running) await this.refreshStatus();
  }

  /** Starts syncing: now, on local writes, when back online, and on the server's events. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const wake = () => this.poke();
    if (typeof window !== 'undefined') {
      window.addEventListener('online', wake);
      window.addEventListener('offline', wake);
      this.cleanups.push(() => window.removeEventListener('online', wake), () => window.removeEventListener('offline', wake));
    }
    // A new session or membership changes the spaces the live events must cover.
    this.cleanups.push(this.auth.onChange(() => {
      this.resubscribe();
      wake();
    }));
    const gone = this.auth.onAccountDeleted?.(() => this.clearLocalData());
    if (gone) this.cleanups.push(gone);
    this.poke();
  }

  /**
   * Empties this device's database: every synced record (pre-sign-in ones included), the
   * outbox, refused operations, the sync client and cursor. For a person who deleted their
   * account (called by itself when the token source tells) or an app's "forget this device"
   * (after `stop()` or a sign-out: unsent writes go too). What remains is one marker that the
   * data belonged to someone: a record another tab writes before it hears of the deletion is
   * then dropped at the next sign-in, never claimed by whoever signs in next.
   */
  async clearLocalData(): Promise<void> {
    this.resubscribe();
    const all = ['_outbox', '_meta', '_rejected', ...this.tables].map((t) => this.db.table(t));
    const clear = () =>
      this.db.transaction('rw', all, async () => {
        for (const t of all) await t.clear();
        await this.db.table<Meta, string>('_meta').put({ key: 'user_id', value: FORGOTTEN });
      });
    // Under the sync lock: a pull already under way must not write its page after the clear.
    const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
    if (locks) await locks.request(`latchkey:sync:${this.db.name}`, clear);
    else {
      await this.running?.catch(() => undefined);
      await clear();
    }
    this.clientId = null;
    this.tabs?.postMessage('changed');
    await this.refreshStatus();
  }

  /** Stops syncing; `close()` also releases the tab channel. */
  close(): void {
    this.stop();
    this.tabs?.close();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.events?.abort();
    this.events = null;
    for (const c of this.cleanups.splice(0)) c();
  }

  /** Asks for a sync soon (coalesced with one already running). */
  poke(): void {
    if (this.stopped) {
      void this.refreshStatus();
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    void this.sync().catch(() => undefined);
  }

  /** One full sync (push, then pull until caught up); resolves when it is done. */
  async sync(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.runExclusive().finally(() => {
      this.running = null;
    });
    await this.running;
    if (this.again) {
      this.again = false;
      await this.sync();
    }
  }

  private async runExclusive(): Promise<void> {
    const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
    const name = `latchkey:sync:${this.db.name}`;
    // One tab syncs at a time; the others' writes are in the same IndexedDB outbox.
    if (locks) await locks.request(name, () => this.attempt());
    else await this.attempt();
  }

  private async attempt(): Promise<void> {
    if (browserOffline()) return this.setStatus('offline');
    let token = await this.auth.getToken().catch(() => undefined);
    if (token === undefined) return this.failed('network');
    if (token === null) return this.setStatus('signed-out');
    await this.setStatus('syncing');
    // Another tab may have started a new client since (a recovery, another user): the shared
    // database says which client this device is, not this tab's memory. Pushing under a
    // stale id would reuse sequence numbers the server already holds for the other one.
    this.clientId = null;
    try {
      await this.forgetOtherUser();
      await this.claim();
      token = await this.pushAll(token);
      if (token === null) return this.setStatus('signed-out');
      token = await this.pullAll(token);
      if (token === null) return this.setStatus('signed-out');
      this.failures = 0;
      this.listen(token);
      this.tabs?.postMessage('changed');
      await this.refreshStatus();
    } catch (e) {
      await this.failed(e instanceof Error ? e.message : String(e));
    }
  }

  private async failed(reason: string): Promise<void> {
    await this.setStatus(browserOffline() ? 'offline' : 'error', reason);
    this.failures += 1;
    if (this.stopped) return;
    const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (this.failures - 1));
    const delay = base / 2 + this.random() * (base / 2);
    this.timer = setTimeout(() => this.poke(), delay);
  }

  /**
   * When another user signs in on this device, the previous user's records and unsent
   * changes leave it, and the device starts a fresh sync client (sequence numbers and the
   * cursor belong to one user). Data written before any sign-in stays, to be claimed.
   */
  private async forgetOtherUser(): Promise<void> {
    const user = this.auth.userId;
    const meta = this.db.table<Meta, string>('_meta');
    const owner = (await meta.get('user_id'))?.value as string | undefined;
    if (!user || owner === user) return;
    const outbox = this.db.table<OutboxOp, number>('_outbox');
    await this.db.transaction('rw', [meta, outbox, ...this.tables.map((t) => this.db.table(t))], async () => {
      if (owner) {
        await outbox.filter((op) => op.space !== null).delete();
        for (const t of this.tables) await this.db.table(t).filter((r: SyncRecord) => r.space !== null).delete();
        await meta.bulkDelete(['client_id', 'next_seq', 'cursor', 'spaces']);
        this.clientId = null;
      }
      await meta.put({ key: 'user_id', value: user });
    });
  }

  /** Data written before the first sign-in joins the chosen space (`me` by default). */
  private async claim(): Promise<void> {
    const outbox = this.db.table<OutboxOp, number>('_outbox');
    const unclaimed = await outbox.filter((op) => op.space === null).count();
    if (unclaimed === 0) return;
    const space = this.writeSpace;
    await this.db.transaction('rw', [outbox, ...this.tables.map((t) => this.db.table(t))], async () => {
      await outbox.filter((op) => op.space === null).modify({ space });
      for (const t of this.tables) await this.db.table(t).filter((r: SyncRecord) => r.space === null).modify({ space });
    });
  }

  /** Pushes the outbox in batches; returns the token in use, or `null` if signed out. */
  private async pushAll(token: string): Promise<string | null> {
    const outbox = this.db.table<OutboxOp, number>('_outbox');
    // A 409 the engine recovers from is followed by one retry each, not a loop.
    let recoveries = 0;
    for (;;) {
      const batch = await outbox.orderBy('key').limit(this.batchSize).toArray();
      if (batch.length === 0) return token;
      await this.numberOps(batch);
      const clientId = await this.ensureClientId();
      const body = JSON.stringify({
        client_id: clientId,
        schema_version: this.schemaVersion,
        ops: batch.map(({ key: _key, moveFrom: _from, ...op }) => op),
      });
      const sent = await this.request('/v1/sync/push', token, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      if (sent === null) return null;
      token = sent.token;
      if (sent.res.status === 413 && this.batchSize > 1) {
        this.batchSize = Math.max(1, Math.floor(this.batchSize / 2));
        continue;
      }
      if (!sent.res.ok) {
        const e = await problem(sent.res);
        const code = e instanceof LatchkeyError && e.status === 409 && recoveries < 2 ? e.code : null;
        const expected = Number((e as LatchkeyError).meta?.expected_seq);
        if (code === 'sync_client_unknown') {
          // The server forgot this client (idle past `client_ttl_days`): a new client id,
          // numbered from 1 (docs/sync-protocol.md §8).
          recoveries++;
          await this.renumber(1, { newClient: true });
          continue;
        }
        if (code === 'sync_seq_gap' && Number.isInteger(expected) && expected >= 1) {
          recoveries++;
          await this.renumber(expected);
          continue;
        }
        throw e;
      }
      const { results, last_seq: lastSeq } = (await sent.res.json()) as { results: PushResult[]; last_seq: number };
      if (await this.settle(batch, results, recoveries < 2)) {
        // Ops refused as `seq_reused` were never applied: number them again after what the
        // server holds and push them again.
        recoveries++;
        await this.renumber(lastSeq + 1);
      }
    }
  }

  /**
   * Numbers the whole outbox again, in order, from `from`; with `newClient`, under a new
   * client id. Nothing local is lost, and the cursor stays: it belongs to the spaces, not the
   * client, so the next pull still brings the deletes made meanwhile (or a reset where they
   * were compacted). An op the server had applied is answered `duplicate` by its op id
   * (docs/sync-protocol.md §5, §8).
   */
  private async renumber(from: number, { newClient = false } = {}): Promise<void> {
    const meta = this.db.table<Meta, string>('_meta');
    const outbox = this.db.table<OutboxOp, number>('_outbox');
    await this.db.transaction('rw', [meta, outbox], async () => {
      await outbox.toCollection().modify({ seq: null });
      await meta.put({ key: 'next_seq', value: from });
      if (newClient) await meta.delete('client_id');
    });
    if (newClient) this.clientId = null;
  }

  /** Gives unsent ops the client's next sequence numbers, once (a resend keeps its number). */
  private async numberOps(batch: OutboxOp[]): Promise<void> {
    if (batch.every((op) => op.seq !== null)) return;
    const meta = this.db.table<Meta, string>('_meta');
    const outbox = this.db.table<OutboxOp, number>('_outbox');
    await this.db.transaction('rw', [meta, outbox], async () => {
      let next = Number((await meta.get('next_seq'))?.value ?? 1);
      for (const op of batch) {
        if (op.seq !== null) continue;
        op.seq = next++;
        await outbox.update(op.key!, { seq: op.seq });
      }
      await meta.put({ key: 'next_seq', value: next });
    });
  }

  /**
   * Applies a push's results to the outbox. With `requeueReused`, an op refused as
   * `seq_reused` (its number was taken by another op of this client: two tabs numbering
   * without a Web Lock) stays in the outbox; returns whether any did.
   */
  private async settle(batch: OutboxOp[], results: PushResult[], requeueReused: boolean): Promise<boolean> {
    const bySeq = new Map(results.map((r) => [r.seq, r]));
    const outbox = this.db.table<OutboxOp, number>('_outbox');
    const rejected = this.db.table<RejectedOp, number>('_rejected');
    let requeued = false;
    const clientId = await this.ensureClientId();
    await this.db.transaction('rw', [outbox, rejected, ...this.tables.map((t) => this.db.table(t))], async () => {
      for (const op of batch) {
        const r = bySeq.get(op.seq!);
        if (!r) continue;
        const first = r.status === 'duplicate' ? ((r as unknown as { original?: PushResult }).original ?? r) : r;
        if (first.status === 'rejected' && first.reason?.code === 'seq_reused' && requeueReused) {
          requeued = true;
          continue;
        }
        const rows = this.db.table<SyncRecord, string>(op.table);
        const row = (await rows.get(op.id)) ?? null;
        const here = row !== null && row.space === op.space;
        if (first.status === 'rejected') {
          const { key: _key, moveFrom: _from, ...rest } = op;
          await rejected.add({ ...rest, reason: first.reason ?? { code: 'rejected', message: 'Refused by the server' }, rejectedAt: this.now() });
        }
        const live = first.status === 'applied' || (first.status === 'superseded' && !first.winning?.deleted);
        if (first.status === 'superseded' && first.winning && op.action === 'put' && here) {
          if (first.winning.deleted && !op.moveFrom) await rows.delete(op.id);
          else if (live) await rows.put({ ...row, ...(first.winning.fields ?? {}) });
        }
        if (op.moveFrom && live) {
          // The new space has it: now it may leave the old one.
          const op_id = `${clientId}-${crypto.randomUUID()}`;
          await outbox.add({ table: op.table, id: op.id, seq: null, action: 'delete', op_id, space: op.moveFrom, hlc: this.stamp(clientId) });
        } else if (op.moveFrom && here) {
          // A move the new space did not take leaves the record where the server still has it.
          await rows.put({ ...row, space: op.moveFrom });
        }
        await outbox.delete(op.key!);
      }
    });
    return requeued;
  }

  /** Pulls until caught up; returns the token in use, or `null` if signed out. */
  private async pullAll(token: string): Promise<string | null> {
    const meta = this.db.table<Meta, string>('_meta');
    for (;;) {
      const cursor = (await meta.get('cursor'))?.value as string | undefined;
      const q = new URLSearchParams({ client_id: await this.ensureClientId(), limit: String(PULL_PAGE) });
      if (cursor) q.set('cursor', cursor);
      const got = await this.request(`/v1/sync/pull?${q}`, token, { method: 'GET' });
      if (got === null) return null;
      token = got.token;
      if (!got.res.ok) throw await problem(got.res);
      const page = (await got.res.json()) as PullPage;
      await applyPage(this.db, this.tables, page);
      if (page.spaces.added.length > 0 || page.spaces.removed.length > 0) this.resubscribe();
      if (!page.has_more) return token;
    }
  }

  /**
   * Sends a sync request with the session token; on 401 gets a fresh token and tries once
   * more (the outbox is untouched either way). `null` when the session is gone.
   */
  private async request(path: string, token: string, init: RequestInit): Promise<{ res: Response; token: string } | null> {
    const send = (t: string) =>
      this.send(path, { ...init, headers: { ...(init.headers ?? {}), authorization: `Bearer ${t}` } }).catch((e) => {
        throw new RetryLater(`network: ${e instanceof Error ? e.message : e}`);
      });
    let res = await send(token);
    if (res.status === 401) {
      const fresh = await this.auth.getToken({ force: true });
      if (!fresh) return null;
      token = fresh;
      res = await send(token);
      if (res.status === 401) return null;
    }
    if (res.status === 429 || res.status >= 500) throw new RetryLater(`${res.status} from the server`);
    return { res, token };
  }

  /** Drops the live-event stream; the next successful sync opens one for the current spaces. */
  private resubscribe(): void {
    this.events?.abort();
    this.events = null;
  }

  /** Listens to the server's "this space changed" events and pulls when one arrives. */
  private listen(token: string): void {
    if (this.events || this.stopped) return;
    const abort = new AbortController();
    this.events = abort;
    const run = async () => {
      const res = await this.send('/v1/sync/events', {
        headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
        signal: abort.signal,
      });
      if (!res.ok || !res.body) throw new Error(`events: ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (/^data:/m.test(event)) this.poke();
        }
      }
    };
    run()
      .catch(() => undefined)
      .finally(() => {
        // The stream ends when the token expires or the network drops: listen again on the
        // next successful sync.
        if (this.events === abort) this.events = null;
        if (!this.stopped && !abort.signal.aborted) this.timer ??= setTimeout(() => this.poke(), 1000);
      });
  }

  private async refreshStatus(): Promise<void> {
    if (browserOffline()) return this.setStatus('offline');
    if (this.auth.userId === null) return this.setStatus('signed-out');
    const pending = await this.pendingCount();
    return this.setStatus(pending > 0 ? 'pending' : 'up-to-date', undefined, pending);
  }

  /** Publishes a status; of two racing updates the one asked for last wins. */
  private async setStatus(state: SyncState, error?: string, pending?: number): Promise<void> {
    const ticket = ++this.statusTicket;
    const n = pending ?? (await this.pendingCount().catch(() => this.status.pending));
    if (ticket !== this.statusTicket) return;
    this.status = error ? { state, pending: n, error } : { state, pending: n };
    for (const l of this.listeners) l(this.status);
  }

  private async ensureClientId(): Promise<string> {
    if (this.clientId) return this.clientId;
    const meta = this.db.table<Meta, string>('_meta');
    const stored = (await meta.get('client_id'))?.value as string | undefined;
    const id = stored ?? `cl_${crypto.randomUUID().replace(/-/g, '')}`;
    if (!stored) await meta.put({ key: 'client_id', value: id });
    this.clientId = id;
    return id;
  }

  /** A hybrid logical clock stamp `<wall ms>-<counter>-<client>`, never going backwards. */
  private stamp(clientId: string): string {
    const wall = Math.max(this.now(), this.lastWall);
    this.counter = wall === this.lastWall ? this.counter + 1 : 0;
    this.lastWall = wall;
    return `${wall}-${this.counter}-${clientId}`;
  }
}

/** How the engine reaches the sync API: through the `Auth`'s wire, or `fetch` on `url`. */
function sender(options: SyncOptions): (path: string, init: RequestInit) => Promise<Response> {
  const auth = options.auth;
  if (options.url === undefined && auth instanceof Auth) return (path, init) => auth.wire.send(path, init);
  const base = (options.url ?? '').replace(/\/+$/, '');
  const doFetch = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));
  return (path, init) => doFetch(`${base}${path}`, init);
}

/** The browser says it has no network (outside a browser: never). */
function browserOffline(): boolean {
  return typeof navigator !== 'undefined' && navigator.onLine === false;
}

async function problem(res: Response): Promise<Error> {
  const body = await res.json().catch(() => null);
  const e = body?.errors?.[0];
  return e ? new LatchkeyError(res.status, e) : new Error(`${res.status} from the server`);
}
