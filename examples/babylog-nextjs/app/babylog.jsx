'use client';
// The log itself: always local first (latchkey-js's SyncEngine on Dexie), synced when Clerk
// says someone is signed in. Pre-sign-in records carry no space; the engine claims them at the
// first signed-in sync (docs/sync-protocol.md §12).
import { useAuth } from '@clerk/nextjs';
import { useEffect, useRef, useState } from 'react';
import { SyncEngine, bannerText, createTokenSource } from 'latchkey-js';
import { INDEXES, KINDS, TABLES, entriesOf, fieldsFor, latestEntries, newId, textField, when } from './entries';
import Entry from './entry';
import YourData from './your-data';

const PAGE = 50;

export default function BabyLog() {
  const { isLoaded, userId, orgId, getToken } = useAuth();
  const engine = useRef(null);
  const source = useRef(null);
  const [status, setStatus] = useState(null);
  const [babies, setBabies] = useState([]);
  const [babyId, setBabyId] = useState(null);
  const [entries, setEntries] = useState([]);
  const [rejected, setRejected] = useState([]);
  const [deleted, setDeleted] = useState(null);
  const [moveError, setMoveError] = useState(null);
  const chosen = useRef(null);
  const shown = useRef(PAGE);
  const [more, setMore] = useState(false);

  const refresh = async () => {
    const sync = engine.current;
    if (!sync) return;
    const all = (await sync.table('babies').toArray()).sort((a, b) => (a.created_at ?? 0) - (b.created_at ?? 0));
    const pick = all.find((b) => b.id === chosen.current) ?? all[0] ?? null;
    // One page of the history (PAGE more per "Show more"), newest first.
    const rows = pick ? await latestEntries(sync, pick.id, shown.current + 1) : [];
    setBabies(all);
    setBabyId(pick?.id ?? null);
    setMore(rows.length > shown.current);
    setEntries(rows.slice(0, shown.current));
    setRejected(await sync.rejected());
  };

  // Browser only: IndexedDB does not exist during server rendering.
  useEffect(() => {
    chosen.current = localStorage.getItem('babylog:baby');
    source.current = createTokenSource();
    const sync = new SyncEngine({ auth: source.current, url: '/__clerk', tables: TABLES, dbName: 'babylog-nextjs', indexes: INDEXES, indexVersion: 1 });
    engine.current = sync;
    window.babylog = sync; // for the test and the curious
    const off = sync.onStatus((s) => {
      setStatus(s);
      void refresh(); // a pull may have brought the partner's entries
    });
    setStatus(sync.currentStatus);
    sync.start();
    void refresh().then(() => (document.body.dataset.ready = 'true'));
    if ('serviceWorker' in navigator) offlineReady();
    return () => off?.();
  }, []);

  // Clerk drives the engine: a new user or active organization makes it sync and reopen events.
  // New babies go to the active family (entries follow their baby).
  useEffect(() => {
    if (!isLoaded || !source.current) return;
    engine.current.setSpace(orgId ?? 'me');
    source.current.set({ userId, orgId, getToken });
  }, [isLoaded, userId, orgId, getToken]);

  const choose = (id) => {
    chosen.current = id;
    shown.current = PAGE;
    localStorage.setItem('babylog:baby', id);
    void refresh();
  };

  const addBaby = async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const id = newId('baby');
    await engine.current.put('babies', id, { name: form.name.value.trim(), created_at: Date.now() });
    form.reset();
    choose(id);
  };

  const add = async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const baby = babies.find((b) => b.id === babyId);
    if (!baby) return;
    const table = form.kind.value;
    const ml = form.ml.value === '' ? NaN : Number(form.ml.value);
    await engine.current.put(table, newId(table.slice(0, -1)), fieldsFor(table, baby.id, form.text.value.trim(), ml), { space: baby.space ?? undefined });
    form.text.value = '';
    await refresh();
  };

  const edit = async (row, field, value) => {
    await engine.current.put(row.table, row.id, { [field]: value });
    await refresh();
  };

  const remove = async (row) => {
    const { table, id, space, ...fields } = row;
    await engine.current.delete(table, id);
    setDeleted({ table, id, space, fields });
    await refresh();
  };

  // A put after a delete brings the record back (docs/sync-protocol.md §4), with every field.
  const undo = async () => {
    if (!deleted) return;
    await engine.current.put(deleted.table, deleted.id, deleted.fields, { space: deleted.space ?? undefined });
    setDeleted(null);
    await refresh();
  };

  // The baby and every entry of it go between the personal space and the active family.
  const move = async () => {
    const baby = babies.find((b) => b.id === babyId);
    if (!baby) return;
    const to = baby.space === 'me' ? orgId : 'me';
    const records = [{ table: 'babies', id: baby.id }, ...(await entriesOf(engine.current, baby.id))];
    try {
      await engine.current.move(records, to);
      setMoveError(null);
    } catch (e) {
      setMoveError(e.message);
    }
    await refresh();
  };

  const text = status ? bannerText(status) : null;
  const current = babies.find((b) => b.id === babyId);
  return (
    <main>
      <h1>BabyLog</h1>
      {/* The five states' words come from latchkey-js, as in web/apps/babylog. */}
      <button id="banner" type="button" data-state={status?.state ?? ''} hidden={text === null}
        title={status?.state === 'error' ? status.error ?? '' : ''}
        onClick={() => (status?.state === 'signed-out' ? location.assign('/sign-in') : engine.current?.poke())}>
        {text ?? ''}
      </button>
      <section style={{ display: 'flex', gap: '.5rem', margin: '1rem 0' }}>
        <select id="baby" value={babyId ?? ''} onChange={(e) => choose(e.target.value)} hidden={babies.length === 0}>
          {babies.map((b) => (
            <option key={b.id} value={b.id}>{b.name}</option>
          ))}
        </select>
        {/* Into the active family from the personal space, or back. */}
        <button id="move" type="button" onClick={move} hidden={!current || current.space === null || (current.space === 'me' && !orgId)}>
          {current?.space === 'me' ? 'Move to family' : 'Move to my own log'}
        </button>
        <form id="add-baby" onSubmit={addBaby}>
          <input name="name" placeholder="Baby's name" required maxLength={100} />
          <button type="submit">Add baby</button>
        </form>
      </section>
      <form id="add" onSubmit={add} hidden={!babyId} style={{ display: 'flex', gap: '.5rem' }}>
        <select name="kind" defaultValue="notes">
          {Object.entries(KINDS).map(([t, label]) => (
            <option key={t} value={t}>{label}</option>
          ))}
        </select>
        <input name="text" placeholder="What happened?" maxLength={2000} />
        <input name="ml" type="number" min={0} max={2000} placeholder="ml" style={{ width: '5rem' }} />
        <button type="submit">Add</button>
      </form>
      <ul id="entries">
        {entries.map((r) => (
          // Keyed by the synced values too, so a pulled edit re-renders the uncontrolled inputs.
          <Entry key={`${r.table}/${r.id}/${r[textField(r.table)] ?? ''}/${r.amount_ml ?? ''}/${when(r)}/${r.ended_at ?? ''}`}
            row={r} onEdit={edit} onDelete={remove} />
        ))}
      </ul>
      <button id="more" type="button" hidden={!more} onClick={() => { shown.current += PAGE; void refresh(); }}>Show more</button>
      {/* The last deletion, until undone or replaced: the row as it was, put back whole. */}
      <p id="undo" hidden={!deleted}>
        {deleted && `${KINDS[deleted.table]} deleted. `}
        <button type="button" onClick={undo}>Undo</button>
      </p>
      {/* Writes the server refused (a rule of the tables): kept to be seen, not lost silently. */}
      <p id="move-error" role="alert" hidden={!moveError}>{moveError}</p>
      <ul id="rejected" hidden={rejected.length === 0}>
        {rejected.map((op) => (
          <li key={op.key}>{op.table} {op.id}: {op.reason?.message ?? op.reason?.code}</li>
        ))}
      </ul>
      <YourData engine={engine} />
    </main>
  );
}

// Installs the service worker and, once it controls the page, hands it what the page loaded
// before that (public/sw.js caches it): then the app reloads offline. `data-offline-ready` says so.
function offlineReady() {
  const sw = navigator.serviceWorker;
  const handOver = () => sw.controller?.postMessage({ type: 'cache', urls: performance.getEntriesByType('resource').map((e) => e.name).concat(location.href) });
  sw.addEventListener('message', (e) => e.data?.type === 'cached' && (document.body.dataset.offlineReady = 'true'));
  sw.addEventListener('controllerchange', handOver);
  sw.register('/sw.js').then(() => sw.controller && handOver(), () => undefined);
}
