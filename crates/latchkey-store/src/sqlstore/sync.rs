//! [`SyncStore`] in portable SQL. A push is a handful of statements whatever its size: the
//! client row, the space rows, the stored results of replays, the records it touches, then
//! one multi-row upsert of records and one multi-row insert of results.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use latchkey_core::sync::merge::{merge, Change, RecordState};
use latchkey_core::sync::{duplicate_result, op_result, OpStatus, Rejection};
use serde_json::{Map, Value};

use super::base::SqlStore;
use super::shared::{lock_user, placeholders};
use crate::error::{Result, StoreError};
use crate::sql::{Row, SqlDriver, SqlTx, SqlValue};
use crate::sync::*;

record!(SpaceState in "sync_spaces" { space, seq, epoch, compacted_seq, bytes });

/// Rows per multi-row statement: far below both backends' parameter limits.
const ROWS_PER_STATEMENT: usize = 200;

type RecordKey = (String, String, String);

fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Other(format!("stored sync JSON is invalid: {e}")))
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(e.to_string()))
}

fn record_state(row: &Row, from: usize) -> Result<RecordState> {
    let fields = parse_json::<Map<String, Value>>(&row.text(from)?)?;
    let clocks = parse_clocks(&row.text(from + 1)?, &fields)?;
    Ok(RecordState { fields, clocks, floor: row.opt_text(from + 2)? })
}

/// Field clocks as stored: one JSON string when every field has the same stamp (a record
/// written by one put, the usual case: it halves the row), else an object field → stamp.
fn clocks_text(state: &RecordState) -> Result<String> {
    let mut stamps = state.clocks.values();
    if let Some(first) = stamps.next() {
        let same_keys =
            state.clocks.len() == state.fields.len() && state.fields.keys().all(|k| state.clocks.contains_key(k));
        if same_keys && stamps.all(|s| s == first) {
            return to_json(first);
        }
    }
    to_json(&state.clocks)
}

fn parse_clocks(text: &str, fields: &Map<String, Value>) -> Result<BTreeMap<String, String>> {
    if text.starts_with('"') {
        let stamp: String = parse_json(text)?;
        return Ok(fields.keys().map(|k| (k.clone(), stamp.clone())).collect());
    }
    parse_json(text)
}

/// `INSERT INTO … VALUES (…), (…)` with `width` columns per row.
fn multi_row_values(rows: usize, width: usize) -> String {
    (0..rows).map(|r| format!("({})", placeholders(width, r * width + 1))).collect::<Vec<_>>().join(", ")
}

/// Takes the client's row (creating it): `(new, last applied seq)`. A row created by this
/// statement has `created_at` = now and `last_seq` 0.
async fn lock_client(tx: &mut Box<dyn SqlTx>, p: &SyncPush) -> Result<(bool, i64)> {
    let rows = tx
        .query(
            "INSERT INTO sync_clients (user_id, client_id, last_seq, created_at, last_seen_at) \
             VALUES ($1, $2, 0, $3, $3) ON CONFLICT (user_id, client_id) \
             DO UPDATE SET last_seen_at = excluded.last_seen_at RETURNING last_seq, created_at",
            &[p.user_id.clone().into(), p.client_id.clone().into(), p.now.into()],
        )
        .await?;
    let row = rows.first().ok_or(StoreError::NotFound)?;
    let last = row.int(0)?;
    Ok((last == 0 && row.int(1)? == p.now, last))
}

/// Takes each space's row (creating it) and reserves `n` sequence numbers in it, in a fixed
/// order so pushers never deadlock; returns the number just before the reserved range.
/// Numbers reserved for operations that change nothing are skipped: cursors only need order.
async fn reserve_seqs(
    tx: &mut Box<dyn SqlTx>,
    spaces: &BTreeMap<String, i64>,
    p: &SyncPush,
) -> Result<HashMap<String, i64>> {
    let mut start = HashMap::new();
    for (space, n) in spaces {
        let rows = tx
            .query(
                "INSERT INTO sync_spaces (space, seq, epoch, created_at) VALUES ($1, $4, $2, $3) \
                 ON CONFLICT (space) DO UPDATE SET seq = sync_spaces.seq + $4 RETURNING seq",
                &[space.clone().into(), p.new_epoch.clone().into(), p.now.into(), (*n).into()],
            )
            .await?;
        start.insert(space.clone(), rows.first().ok_or(StoreError::NotFound)?.int(0)? - n);
    }
    Ok(start)
}

/// The touched records as stored, with the bytes each takes (its fields and clocks).
async fn load_records(
    tx: &mut Box<dyn SqlTx>,
    writes: &[&SyncWrite],
) -> Result<HashMap<RecordKey, (RecordState, i64)>> {
    let mut groups: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    for w in writes {
        groups.entry((&w.space, &w.table)).or_default().insert(&w.id);
    }
    let mut found = HashMap::new();
    for ((space, table), ids) in groups {
        let ids: Vec<&str> = ids.into_iter().collect();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let mut params: Vec<SqlValue> = vec![space.into(), table.into()];
            params.extend(chunk.iter().map(|id| SqlValue::from(*id)));
            let sql = format!(
                "SELECT id, data, clocks, floor FROM sync_records WHERE space = $1 AND tbl = $2 AND id IN ({})",
                placeholders(chunk.len(), 3)
            );
            for row in tx.query(&sql, &params).await? {
                let id = row.text(0)?;
                let floor = row.opt_text(3)?.unwrap_or_default();
                let stored = row_bytes(table, &id, &row.text(1)?, &row.text(2)?, &floor);
                found.insert((space.to_owned(), table.to_owned(), id), (record_state(&row, 1)?, stored));
            }
        }
    }
    Ok(found)
}

/// The first result of each of `op_ids` this user has pushed (from any of its clients).
async fn stored_results(tx: &mut Box<dyn SqlTx>, p: &SyncPush, op_ids: &[&str]) -> Result<HashMap<String, Value>> {
    let mut by_op = HashMap::new();
    for chunk in op_ids.chunks(ROWS_PER_STATEMENT) {
        let mut params: Vec<SqlValue> = vec![p.user_id.as_str().into()];
        params.extend(chunk.iter().map(|s| SqlValue::from(*s)));
        let sql = format!(
            "SELECT seq, result, op_id FROM sync_ops WHERE user_id = $1 AND op_id IN ({})",
            placeholders(chunk.len(), 2)
        );
        for row in tx.query(&sql, &params).await? {
            let seq = row.int(0)?;
            by_op.insert(row.text(2)?, stored_result(&row, seq, 2)?);
        }
    }
    Ok(by_op)
}

/// A stored result; `applied` ones are not stored but rebuilt.
fn stored_result(row: &Row, seq: i64, op_id_col: usize) -> Result<Value> {
    match row.opt_text(1)? {
        Some(text) => parse_json(&text),
        None => Ok(op_result(seq, &row.opt_text(op_id_col)?.unwrap_or_default(), &OpStatus::Applied)),
    }
}

/// A record being merged: its state, and the sequence number of its change if it changed.
/// The bytes a record's row takes, as the per-space quota counts them: its table, id, fields,
/// clocks and delete stamp (the same sum as `ROW_BYTES_SQL`).
fn row_bytes(table: &str, id: &str, data: &str, clocks: &str, floor: &str) -> i64 {
    i64::try_from(table.len() + id.len() + data.len() + clocks.len() + floor.len()).unwrap_or(i64::MAX)
}

/// [`row_bytes`] in SQL, for rows deleted without being read.
const ROW_BYTES_SQL: &str =
    "octet_length(tbl) + octet_length(id) + octet_length(data) + octet_length(clocks) + COALESCE(octet_length(floor), 0)";

struct Work {
    state: RecordState,
    seq: Option<i64>,
    /// Bytes the record took before this push (0 for a new one).
    stored_len: i64,
}

/// Writes the changed records and returns how many bytes each space grew (or shrank) by.
async fn write_records(
    tx: &mut Box<dyn SqlTx>,
    work: &HashMap<RecordKey, Work>,
    now: i64,
) -> Result<BTreeMap<String, i64>> {
    let mut growth: BTreeMap<String, i64> = BTreeMap::new();
    let mut rows: Vec<(&RecordKey, &Work, i64)> =
        work.iter().filter_map(|(k, w)| w.seq.map(|seq| (k, w, seq))).collect();
    rows.sort_by_key(|(_, _, seq)| *seq);
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut params = Vec::with_capacity(chunk.len() * 9);
        for ((space, table, id), p, seq) in chunk {
            let data = to_json(&p.state.fields)?;
            let clocks = clocks_text(&p.state)?;
            let len = row_bytes(table, id, &data, &clocks, p.state.floor.as_deref().unwrap_or(""));
            *growth.entry(space.clone()).or_default() += len - p.stored_len;
            params.extend([
                space.clone().into(),
                table.clone().into(),
                id.clone().into(),
                data.into(),
                clocks.into(),
                p.state.floor.clone().into(),
                (!p.state.is_live()).into(),
                (*seq).into(),
                now.into(),
            ]);
        }
        let sql = format!(
            "INSERT INTO sync_records (space, tbl, id, data, clocks, floor, deleted, seq, updated_at) VALUES {} \
             ON CONFLICT (space, tbl, id) DO UPDATE SET data = excluded.data, clocks = excluded.clocks, \
             floor = excluded.floor, deleted = excluded.deleted, seq = excluded.seq, updated_at = excluded.updated_at",
            multi_row_values(chunk.len(), 9)
        );
        tx.execute(&sql, &params).await?;
    }
    Ok(growth)
}

/// Stores the first result of each op id (`None`: applied, rebuilt when asked for).
async fn write_results(tx: &mut Box<dyn SqlTx>, p: &SyncPush, rows: &[(i64, &str, Option<String>)]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut params = Vec::with_capacity(chunk.len() * 6);
        for (seq, op_id, result) in chunk {
            params.extend([
                p.user_id.as_str().into(),
                (*op_id).into(),
                p.client_id.as_str().into(),
                (*seq).into(),
                result.clone().into(),
                p.now.into(),
            ]);
        }
        let sql = format!(
            "INSERT INTO sync_ops (user_id, op_id, client_id, seq, result, created_at) VALUES {}",
            multi_row_values(chunk.len(), 6)
        );
        tx.execute(&sql, &params).await?;
    }
    Ok(())
}

#[async_trait]
impl<D: SqlDriver> SyncStore for SqlStore<D> {
    async fn sync_push(&self, p: &SyncPush) -> Result<SyncPushOutcome> {
        let mut tx = self.db.begin().await?;
        // The user's row, locked for the transaction: a deletion that commits first leaves
        // nothing to push for, and one that comes later waits (docs/account-data.md).
        if !lock_user(&mut tx, &p.user_id).await? {
            return Ok(SyncPushOutcome::UserGone);
        }
        let (new_client, last) = lock_client(&mut tx, p).await?;
        let fresh: Vec<&SyncOpIn> = p.ops.iter().filter(|op| op.seq > last).collect();
        for (i, op) in fresh.iter().enumerate() {
            if op.seq != last + 1 + i as i64 {
                // Dropping the transaction rolls back, the new client row included.
                return Ok(if new_client && fresh.first().is_some_and(|f| f.seq != 1) {
                    SyncPushOutcome::UnknownClient
                } else {
                    // Nothing is applied, so the server still expects what follows `last`.
                    SyncPushOutcome::Gap { expected_seq: last + 1 }
                });
            }
        }
        let op_ids: BTreeSet<&str> = p.ops.iter().map(|op| op.op_id.as_str()).collect();
        let by_op = stored_results(&mut tx, p, &op_ids.into_iter().collect::<Vec<_>>()).await?;

        let writes: Vec<&SyncWrite> = fresh
            .iter()
            .filter(|op| !by_op.contains_key(&op.op_id))
            .filter_map(|op| match &op.body {
                SyncOpBody::Write(w) => Some(w),
                SyncOpBody::Rejected(_) => None,
            })
            .collect();
        let mut per_space: BTreeMap<String, i64> = BTreeMap::new();
        for w in &writes {
            *per_space.entry(w.space.clone()).or_default() += 1;
        }
        let mut next_seq = reserve_seqs(&mut tx, &per_space, p).await?;
        let mut work: HashMap<RecordKey, Work> = load_records(&mut tx, &writes)
            .await?
            .into_iter()
            .map(|(k, (state, stored_len))| (k, Work { state, seq: None, stored_len }))
            .collect();

        let mut results = Vec::with_capacity(p.ops.len());
        let mut result_rows = Vec::with_capacity(fresh.len());
        // Op ids first seen in this batch, with the index of their result.
        let mut batch_ops: HashMap<&str, usize> = HashMap::new();
        for op in &p.ops {
            // A replay of an acknowledged op, or an op id pushed before (by any client of the
            // user): answered with the first result of that op id.
            let first = by_op.get(&op.op_id).or_else(|| batch_ops.get(op.op_id.as_str()).map(|i| &results[*i]));
            if let Some(first) = first {
                results.push(duplicate_result(op.seq, &op.op_id, Some(first.clone())));
                continue;
            }
            if op.seq <= last {
                // A seq this client has used, with an op id never seen: the client numbered two
                // different ops alike. Refused where the app sees it, not taken for a replay and
                // dropped (docs/sync-protocol.md §5).
                let reused = Rejection::new(
                    "seq_reused",
                    format!("This client already used seq {} for another operation.", op.seq),
                );
                results.push(op_result(op.seq, &op.op_id, &OpStatus::Rejected(reused)));
                continue;
            }
            let status = match &op.body {
                SyncOpBody::Rejected(r) => OpStatus::Rejected(r.clone()),
                SyncOpBody::Write(w) => {
                    let key = (w.space.clone(), w.table.clone(), w.id.clone());
                    if w.fields.is_none() && !work.contains_key(&key) && p.full_spaces.contains(&w.space) {
                        // A delete of a record a full space has never held would only add a
                        // tombstone to it.
                        let full =
                            Rejection::new("space_quota_exceeded", "This space is full: delete records it holds.");
                        let result = op_result(op.seq, &op.op_id, &OpStatus::Rejected(full.clone()));
                        batch_ops.insert(&op.op_id, results.len());
                        result_rows.push((op.seq, op.op_id.as_str(), Some(result.to_string())));
                        results.push(result);
                        continue;
                    }
                    let entry = work.entry(key).or_insert_with(|| Work {
                        state: RecordState::default(),
                        seq: None,
                        stored_len: 0,
                    });
                    let change = w.fields.as_ref().map_or(Change::Delete, Change::Put);
                    match merge(&mut entry.state, change, &w.stamp, &w.required) {
                        Err(r) => OpStatus::Rejected(r),
                        Ok(merged) => {
                            if merged.changed {
                                let seq = next_seq.entry(w.space.clone()).or_insert(0);
                                *seq += 1;
                                entry.seq = Some(*seq);
                            }
                            match merged.winning(&entry.state, change) {
                                None => OpStatus::Applied,
                                Some(winning) => OpStatus::Superseded { winning },
                            }
                        }
                    }
                }
            };
            let result = op_result(op.seq, &op.op_id, &status);
            let stored = (status != OpStatus::Applied).then(|| result.to_string());
            batch_ops.insert(&op.op_id, results.len());
            result_rows.push((op.seq, op.op_id.as_str(), stored));
            results.push(result);
        }

        let growth = write_records(&mut tx, &work, p.now).await?;
        for (space, bytes) in growth.iter().filter(|(_, bytes)| **bytes != 0) {
            tx.execute(
                "UPDATE sync_spaces SET bytes = bytes + $2 WHERE space = $1",
                &[space.clone().into(), (*bytes).into()],
            )
            .await?;
        }
        write_results(&mut tx, p, &result_rows).await?;
        let last_seq = last + fresh.len() as i64;
        if !fresh.is_empty() {
            tx.execute(
                "UPDATE sync_clients SET last_seq = $3 WHERE user_id = $1 AND client_id = $2",
                &[p.user_id.clone().into(), p.client_id.clone().into(), last_seq.into()],
            )
            .await?;
        }
        let changed: Vec<(String, i64)> = per_space
            .iter()
            .filter(|(space, _)| work.iter().any(|((s, _, _), w)| s == *space && w.seq.is_some()))
            .map(|(space, _)| (space.clone(), next_seq.get(space).copied().unwrap_or(0)))
            .collect();
        if let Some(notify) = self.db.notify_sql() {
            for (space, seq) in &changed {
                tx.query(notify, &[format!("{space} {seq}").into()]).await?;
            }
        }
        tx.commit().await?;
        Ok(SyncPushOutcome::Done(SyncPushDone { results, last_seq, changed }))
    }

    async fn sync_spaces(&self, spaces: &[String]) -> Result<Vec<SpaceState>> {
        if spaces.is_empty() {
            return Ok(Vec::new());
        }
        let params: Vec<SqlValue> = spaces.iter().map(SqlValue::from).collect();
        self.find_all(&format!("space IN ({})", placeholders(spaces.len(), 1)), &params).await
    }

    async fn sync_changes(&self, space: &str, after: i64, limit: i64, live_only: bool) -> Result<Vec<SyncChange>> {
        let live = if live_only { " AND deleted = $4" } else { "" };
        let sql = format!(
            "SELECT tbl, id, data, deleted, seq, updated_at FROM sync_records \
             WHERE space = $1 AND seq > $2{live} ORDER BY seq LIMIT $3"
        );
        let mut params: Vec<SqlValue> = vec![space.into(), after.into(), limit.into()];
        if live_only {
            params.push(false.into());
        }
        self.db
            .read(&sql, &params)
            .await?
            .into_iter()
            .map(|mut r| {
                Ok(SyncChange {
                    table: r.take_text(0)?,
                    id: r.take_text(1)?,
                    data: r.take_text(2)?,
                    deleted: r.bool(3)?,
                    seq: r.int(4)?,
                    updated_at: r.int(5)?,
                })
            })
            .collect()
    }

    async fn sync_page(&self, q: &SyncPageQuery<'_>) -> Result<SyncPage> {
        if q.tables.is_empty() || q.limit < 1 {
            return Ok(SyncPage::default());
        }
        let (filter, mut params) = changes_after(q, q.after);
        params.push(q.limit.into());
        params.push(q.name_json.into());
        let (limit, name) = (params.len() - 1, params.len());
        // Order inside the page does not matter (each record appears once, the cursor takes
        // the largest seq); the inner ORDER BY … LIMIT picks the oldest changes.
        let sql = format!(
            "SELECT string_agg('{{\"space\":' || ${name} || ',\"table\":\"' || tbl || '\",\"id\":\"' || id || '\",' || \
               CASE WHEN deleted THEN '\"deleted\":true}}' ELSE '\"deleted\":false,\"fields\":' || data || '}}' END, \
               ','), count(*), max(seq) \
             FROM (SELECT tbl, id, data, deleted, seq FROM sync_records WHERE {filter} ORDER BY seq LIMIT ${limit}) page"
        );
        let rows = self.db.read(&sql, &params).await?;
        let row = rows.first().ok_or(StoreError::NotFound)?;
        let (count, last_seq) = (row.int(1)?, row.opt_int(2)?);
        let more = match last_seq {
            // A full page: is there anything after it?
            Some(last) if count == q.limit => {
                let (filter, params) = changes_after(q, last);
                let sql = format!("SELECT 1 FROM sync_records WHERE {filter} LIMIT 1");
                !self.db.read(&sql, &params).await?.is_empty()
            }
            _ => false,
        };
        Ok(SyncPage { json: row.opt_text(0)?.unwrap_or_default(), count, last_seq, more })
    }

    async fn sync_client_last_seq(&self, user_id: &str, client_id: &str) -> Result<Option<i64>> {
        let rows = self
            .db
            .read(
                "SELECT last_seq FROM sync_clients WHERE user_id = $1 AND client_id = $2",
                &[user_id.into(), client_id.into()],
            )
            .await?;
        rows.first().map(|r| r.int(0)).transpose()
    }

    fn sync_fans_out(&self) -> bool {
        self.db.notify_sql().is_some()
    }

    async fn sync_listen(&self) -> Result<Option<tokio::sync::mpsc::Receiver<(String, i64)>>> {
        let Some(mut payloads) = self.db.listen().await? else {
            return Ok(None);
        };
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            while let Some(payload) = payloads.recv().await {
                let parsed =
                    payload.split_once(' ').and_then(|(space, seq)| Some((space.to_owned(), seq.parse().ok()?)));
                if let Some(change) = parsed {
                    if tx.send(change).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Some(rx))
    }

    async fn sync_compact_tombstones(&self, deleted_before: i64) -> Result<u64> {
        let mut removed = 0;
        loop {
            let (n, more) = compact_some_spaces(self, deleted_before).await?;
            removed += n;
            if !more {
                return Ok(removed);
            }
        }
    }

    async fn sync_expire_clients(&self, idle_before: i64) -> Result<u64> {
        let mut tx = self.db.begin().await?;
        // The clients first, then the op ids of exactly those: a push that refreshes a client
        // meanwhile keeps its row (the DELETE re-checks `last_seen_at` on PostgreSQL) and so
        // keeps its op ids too, which its replays are answered from.
        let gone = tx
            .query(
                "DELETE FROM sync_clients WHERE last_seen_at < $1 RETURNING user_id, client_id",
                &[idle_before.into()],
            )
            .await?;
        let mut pairs: Vec<SqlValue> = Vec::with_capacity(gone.len() * 2);
        for row in &gone {
            pairs.push(row.text(0)?.into());
            pairs.push(row.text(1)?.into());
        }
        // A statement per chunk of clients, not per client: this runs inside the write transaction.
        for chunk in pairs.chunks(ROWS_PER_STATEMENT * 2) {
            let matches: Vec<String> = (0..chunk.len() / 2)
                .map(|i| format!("(user_id = ${} AND client_id = ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            tx.execute(&format!("DELETE FROM sync_ops WHERE {}", matches.join(" OR ")), chunk).await?;
        }
        tx.commit().await?;
        Ok(gone.len() as u64)
    }
}

/// Spaces compacted per transaction, so a large backlog never holds the writer for long.
const SPACES_PER_COMPACTION: i64 = 100;

/// One transaction of tombstone compaction: up to [`SPACES_PER_COMPACTION`] spaces. Returns
/// `(tombstones removed, whether spaces remain)`.
async fn compact_some_spaces<D: SqlDriver>(store: &SqlStore<D>, deleted_before: i64) -> Result<(u64, bool)> {
    let mut tx = store.db.begin().await?;
    let spaces = tx
        .query(
            "SELECT space, max(seq) FROM sync_records WHERE deleted AND updated_at < $1 \
             GROUP BY space ORDER BY space LIMIT $2",
            &[deleted_before.into(), SPACES_PER_COMPACTION.into()],
        )
        .await?;
    let mut removed = 0;
    for row in &spaces {
        let (space, last) = (row.text(0)?, row.int(1)?);
        // A record a push brought back to life since the SELECT is no longer `deleted`, and
        // the DELETE checks again (on PostgreSQL after waiting for that push's row lock).
        tx.execute(
            "UPDATE sync_spaces SET compacted_seq = $2 WHERE space = $1 AND compacted_seq < $2",
            &[space.as_str().into(), last.into()],
        )
        .await?;
        let gone = tx
            .query(
                &format!(
                    "DELETE FROM sync_records WHERE space = $1 AND deleted AND updated_at < $2 AND seq <= $3 \
                     RETURNING {ROW_BYTES_SQL}"
                ),
                &[space.as_str().into(), deleted_before.into(), last.into()],
            )
            .await?;
        let freed = gone.iter().map(|r| r.int(0)).sum::<Result<i64>>()?;
        tx.execute(
            "UPDATE sync_spaces SET bytes = bytes - $2 WHERE space = $1",
            &[space.as_str().into(), freed.into()],
        )
        .await?;
        removed += gone.len() as u64;
    }
    tx.commit().await?;
    Ok((removed, spaces.len() as i64 == SPACES_PER_COMPACTION))
}

/// The records of a page query's space changed after `after`, in its tables (and live only
/// when asked): the condition and its parameters, `$1…$n`.
fn changes_after(q: &SyncPageQuery<'_>, after: i64) -> (String, Vec<SqlValue>) {
    let mut params: Vec<SqlValue> = vec![q.space.into(), after.into()];
    let live = if q.live_only {
        params.push(false.into());
        " AND deleted = $3"
    } else {
        ""
    };
    let tables = placeholders(q.tables.len(), params.len() + 1);
    params.extend(q.tables.iter().map(SqlValue::from));
    (format!("space = $1 AND seq > $2{live} AND tbl IN ({tables})"), params)
}
