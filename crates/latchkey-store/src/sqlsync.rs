//! [`SyncStore`] in portable SQL. A push is a handful of statements whatever its size: the
//! client row, the space rows, the stored results of replays, the records it touches, then
//! one multi-row upsert of records and one multi-row insert of results.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use latchkey_core::sync::merge::{merge, Change, RecordState};
use latchkey_core::sync::{duplicate_result, op_result, OpStatus};
use serde_json::{Map, Value};

use crate::error::{Result, StoreError};
use crate::sql::{Row, SqlDriver, SqlTx, SqlValue};
use crate::sqlstore::{placeholders, SqlStore};
use crate::sync::*;

/// Rows per multi-row statement: far below both backends' parameter limits.
const ROWS_PER_STATEMENT: usize = 200;

type RecordKey = (String, String, String);

fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Other(format!("stored sync JSON is invalid: {e}")))
}

fn record_state(row: &Row, from: usize) -> Result<RecordState> {
    Ok(RecordState {
        fields: parse_json::<Map<String, Value>>(&row.text(from)?)?,
        clocks: parse_json::<BTreeMap<String, String>>(&row.text(from + 1)?)?,
        floor: row.opt_text(from + 2)?,
    })
}

/// `INSERT INTO … VALUES (…), (…)` with `width` columns per row.
fn multi_row_values(rows: usize, width: usize) -> String {
    (0..rows).map(|r| format!("({})", placeholders(width, r * width + 1))).collect::<Vec<_>>().join(", ")
}

async fn lock_client(tx: &mut Box<dyn SqlTx>, p: &SyncPush) -> Result<(bool, i64)> {
    let key: [SqlValue; 3] = [p.user_id.clone().into(), p.client_id.clone().into(), p.now.into()];
    let inserted = tx
        .execute(
            "INSERT INTO sync_clients (user_id, client_id, last_seq, created_at, last_seen_at) \
             VALUES ($1, $2, 0, $3, $3) ON CONFLICT (user_id, client_id) DO NOTHING",
            &key,
        )
        .await?;
    let rows = tx
        .query(
            "UPDATE sync_clients SET last_seen_at = $3 WHERE user_id = $1 AND client_id = $2 RETURNING last_seq",
            &key,
        )
        .await?;
    let last = rows.first().ok_or(StoreError::NotFound)?.int(0)?;
    Ok((inserted == 1, last))
}

/// Takes each space's row (creating it at zero), in a fixed order so pushers never deadlock.
async fn lock_spaces(tx: &mut Box<dyn SqlTx>, spaces: &BTreeSet<String>, p: &SyncPush) -> Result<HashMap<String, i64>> {
    let mut seqs = HashMap::new();
    for space in spaces {
        let rows = tx
            .query(
                "INSERT INTO sync_spaces (space, seq, epoch, created_at) VALUES ($1, 0, $2, $3) \
                 ON CONFLICT (space) DO UPDATE SET seq = sync_spaces.seq RETURNING seq",
                &[space.clone().into(), p.new_epoch.clone().into(), p.now.into()],
            )
            .await?;
        seqs.insert(space.clone(), rows.first().ok_or(StoreError::NotFound)?.int(0)?);
    }
    Ok(seqs)
}

async fn load_records(tx: &mut Box<dyn SqlTx>, writes: &[&SyncWrite]) -> Result<HashMap<RecordKey, RecordState>> {
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
                found.insert((space.to_owned(), table.to_owned(), row.text(0)?), record_state(&row, 1)?);
            }
        }
    }
    Ok(found)
}

/// Stored first results, by `seq` for this client and by `op_id` for any client of the user.
async fn stored_results(
    tx: &mut Box<dyn SqlTx>,
    p: &SyncPush,
    seen: &[i64],
    op_ids: &[&str],
) -> Result<(HashMap<i64, Value>, HashMap<String, Value>)> {
    let mut by_seq = HashMap::new();
    for chunk in seen.chunks(ROWS_PER_STATEMENT) {
        let mut params: Vec<SqlValue> = vec![p.user_id.clone().into(), p.client_id.clone().into()];
        params.extend(chunk.iter().map(|s| SqlValue::from(*s)));
        let sql = format!(
            "SELECT seq, result FROM sync_ops WHERE user_id = $1 AND client_id = $2 AND seq IN ({})",
            placeholders(chunk.len(), 3)
        );
        for row in tx.query(&sql, &params).await? {
            by_seq.insert(row.int(0)?, parse_json(&row.text(1)?)?);
        }
    }
    let mut by_op = HashMap::new();
    for chunk in op_ids.chunks(ROWS_PER_STATEMENT) {
        let mut params: Vec<SqlValue> = vec![p.user_id.clone().into()];
        params.extend(chunk.iter().map(|s| SqlValue::from(*s)));
        let sql = format!(
            "SELECT op_id, result FROM sync_ops WHERE user_id = $1 AND op_id IN ({})",
            placeholders(chunk.len(), 2)
        );
        for row in tx.query(&sql, &params).await? {
            by_op.insert(row.text(0)?, parse_json(&row.text(1)?)?);
        }
    }
    Ok((by_seq, by_op))
}

struct Pending {
    state: RecordState,
    seq: i64,
}

async fn write_records(tx: &mut Box<dyn SqlTx>, pending: &BTreeMap<RecordKey, Pending>, now: i64) -> Result<()> {
    let rows: Vec<_> = pending.iter().collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut params = Vec::with_capacity(chunk.len() * 9);
        for ((space, table, id), p) in chunk {
            let data = Value::Object(p.state.fields.clone()).to_string();
            let clocks = serde_json::to_string(&p.state.clocks).map_err(|e| StoreError::Other(e.to_string()))?;
            params.extend([
                space.clone().into(),
                table.clone().into(),
                id.clone().into(),
                data.into(),
                clocks.into(),
                p.state.floor.clone().into(),
                (!p.state.is_live()).into(),
                p.seq.into(),
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
    Ok(())
}

async fn write_results(tx: &mut Box<dyn SqlTx>, p: &SyncPush, rows: &[(i64, Option<&str>, String)]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut params = Vec::with_capacity(chunk.len() * 6);
        for (seq, op_id, result) in chunk {
            params.extend([
                p.user_id.clone().into(),
                p.client_id.clone().into(),
                (*seq).into(),
                SqlValue::Text(op_id.map(str::to_owned)),
                result.clone().into(),
                p.now.into(),
            ]);
        }
        let sql = format!(
            "INSERT INTO sync_ops (user_id, client_id, seq, op_id, result, created_at) VALUES {}",
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
        let (new_client, last) = lock_client(&mut tx, p).await?;
        let (seen, fresh): (Vec<&SyncOpIn>, Vec<&SyncOpIn>) = p.ops.iter().partition(|op| op.seq <= last);
        for (i, op) in fresh.iter().enumerate() {
            if op.seq != last + 1 + i as i64 {
                // Dropping the transaction rolls back, the new client row included.
                return Ok(if new_client && fresh.first().is_some_and(|f| f.seq != 1) {
                    SyncPushOutcome::UnknownClient
                } else {
                    SyncPushOutcome::Gap { expected_seq: last + 1 + i as i64 }
                });
            }
        }
        let seen_seqs: Vec<i64> = seen.iter().map(|op| op.seq).collect();
        let fresh_ids: Vec<&str> = fresh.iter().map(|op| op.op_id.as_str()).collect();
        let (by_seq, mut by_op) = stored_results(&mut tx, p, &seen_seqs, &fresh_ids).await?;

        let writes: Vec<&SyncWrite> = fresh
            .iter()
            .filter(|op| !by_op.contains_key(&op.op_id))
            .filter_map(|op| match &op.body {
                SyncOpBody::Write(w) => Some(w),
                SyncOpBody::Rejected(_) => None,
            })
            .collect();
        let spaces: BTreeSet<String> = writes.iter().map(|w| w.space.clone()).collect();
        let mut space_seq = lock_spaces(&mut tx, &spaces, p).await?;
        let mut stored = load_records(&mut tx, &writes).await?;

        let mut pending: BTreeMap<RecordKey, Pending> = BTreeMap::new();
        let mut results = Vec::with_capacity(p.ops.len());
        let mut result_rows = Vec::with_capacity(fresh.len());
        for op in &p.ops {
            if op.seq <= last {
                results.push(duplicate_result(op.seq, &op.op_id, by_seq.get(&op.seq).cloned()));
                continue;
            }
            if let Some(first) = by_op.get(&op.op_id) {
                let result = duplicate_result(op.seq, &op.op_id, Some(first.clone()));
                result_rows.push((op.seq, None, result.to_string()));
                results.push(result);
                continue;
            }
            let status = match &op.body {
                SyncOpBody::Rejected(r) => OpStatus::Rejected(r.clone()),
                SyncOpBody::Write(w) => {
                    let key = (w.space.clone(), w.table.clone(), w.id.clone());
                    let current = pending.get(&key).map(|p| &p.state).or_else(|| stored.get(&key));
                    let change = w.fields.as_ref().map_or(Change::Delete, Change::Put);
                    let required: Vec<&str> = w.required.iter().map(String::as_str).collect();
                    match merge(current, change, &w.stamp, &required) {
                        Err(r) => OpStatus::Rejected(r),
                        Ok(merged) => {
                            let winning = merged.winning(change);
                            if merged.changed {
                                let seq = space_seq.entry(w.space.clone()).or_insert(0);
                                *seq += 1;
                                stored.remove(&key);
                                pending.insert(key, Pending { state: merged.state, seq: *seq });
                            }
                            winning.map_or(OpStatus::Applied, |winning| OpStatus::Superseded { winning })
                        }
                    }
                }
            };
            let result = op_result(op.seq, &op.op_id, &status);
            by_op.insert(op.op_id.clone(), result.clone());
            result_rows.push((op.seq, Some(op.op_id.as_str()), result.to_string()));
            results.push(result);
        }

        write_records(&mut tx, &pending, p.now).await?;
        write_results(&mut tx, p, &result_rows).await?;
        let mut changed = Vec::new();
        for space in &spaces {
            let seq = space_seq.get(space).copied().unwrap_or(0);
            if pending.keys().any(|(s, _, _)| s == space) {
                tx.execute("UPDATE sync_spaces SET seq = $2 WHERE space = $1", &[space.clone().into(), seq.into()])
                    .await?;
                changed.push((space.clone(), seq));
            }
        }
        let last_seq = last + fresh.len() as i64;
        if !fresh.is_empty() {
            tx.execute(
                "UPDATE sync_clients SET last_seq = $3 WHERE user_id = $1 AND client_id = $2",
                &[p.user_id.clone().into(), p.client_id.clone().into(), last_seq.into()],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(SyncPushOutcome::Done(SyncPushDone { results, last_seq, changed }))
    }

    async fn sync_spaces(&self, spaces: &[String]) -> Result<Vec<SpaceState>> {
        if spaces.is_empty() {
            return Ok(Vec::new());
        }
        let params: Vec<SqlValue> = spaces.iter().map(SqlValue::from).collect();
        let sql =
            format!("SELECT space, seq, epoch FROM sync_spaces WHERE space IN ({})", placeholders(spaces.len(), 1));
        self.db
            .read(&sql, &params)
            .await?
            .iter()
            .map(|r| Ok(SpaceState { space: r.text(0)?, seq: r.int(1)?, epoch: r.text(2)? }))
            .collect()
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
            .iter()
            .map(|r| {
                Ok(SyncChange {
                    table: r.text(0)?,
                    id: r.text(1)?,
                    data: r.text(2)?,
                    deleted: r.bool(3)?,
                    seq: r.int(4)?,
                    updated_at: r.int(5)?,
                })
            })
            .collect()
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

    async fn sync_expire_clients(&self, idle_before: i64) -> Result<u64> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            "DELETE FROM sync_ops WHERE EXISTS (SELECT 1 FROM sync_clients c WHERE c.user_id = sync_ops.user_id \
             AND c.client_id = sync_ops.client_id AND c.last_seen_at < $1)",
            &[idle_before.into()],
        )
        .await?;
        let n = tx.execute("DELETE FROM sync_clients WHERE last_seen_at < $1", &[idle_before.into()]).await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// Deletes a space and everything in it (part of deleting its user or organization).
pub(crate) async fn delete_space(tx: &mut Box<dyn SqlTx>, space: &str) -> Result<()> {
    tx.execute("DELETE FROM sync_records WHERE space = $1", &[space.into()]).await?;
    tx.execute("DELETE FROM sync_spaces WHERE space = $1", &[space.into()]).await?;
    Ok(())
}

/// Deletes a user's sync clients and their results.
pub(crate) async fn delete_user_clients(tx: &mut Box<dyn SqlTx>, user_id: &str) -> Result<()> {
    tx.execute("DELETE FROM sync_ops WHERE user_id = $1", &[user_id.into()]).await?;
    tx.execute("DELETE FROM sync_clients WHERE user_id = $1", &[user_id.into()]).await?;
    Ok(())
}
