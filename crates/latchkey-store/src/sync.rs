//! Storage of offline-first sync: spaces, records with their field clocks, and per-client
//! progress. The push is one transaction that takes the client's and the spaces' rows first
//! (on PostgreSQL, row locks), so sequence numbers of a space are handed out in commit order
//! and a pull by `seq > cursor` can never skip a change that commits late.

use async_trait::async_trait;
use latchkey_core::sync::Rejection;
use serde_json::{Map, Value};

use crate::error::Result;

/// A validated write, ready to merge.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncWrite {
    /// The space's storage key: a user id or an organization id.
    pub space: String,
    pub table: String,
    pub id: String,
    /// `None` deletes the record.
    pub fields: Option<Map<String, Value>>,
    /// Canonical HLC stamp, already bounded by the server's clock.
    pub stamp: String,
    /// Fields a new record must have (shared by every write to the table).
    pub required: std::sync::Arc<[String]>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SyncOpBody {
    Write(SyncWrite),
    /// Refused before storage (validation, permission); still counted as processed.
    Rejected(Rejection),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncOpIn {
    pub seq: i64,
    pub op_id: String,
    pub body: SyncOpBody,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncPush {
    pub user_id: String,
    pub client_id: String,
    pub ops: Vec<SyncOpIn>,
    pub now: i64,
    /// The epoch given to a space this push creates.
    pub new_epoch: String,
    /// Spaces at their quota: a delete there of a record they do not hold is rejected.
    pub full_spaces: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SyncPushOutcome {
    Done(SyncPushDone),
    /// The first unseen operation does not follow the last applied `seq`; nothing applied.
    Gap {
        expected_seq: i64,
    },
    /// The client is unknown (never seen, or expired) and did not start at `seq` 1.
    UnknownClient,
    /// The pushing user no longer exists (their account was deleted after the session was
    /// checked): nothing applied, and nothing of theirs recreated.
    UserGone,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncPushDone {
    /// One result per operation, in order.
    pub results: Vec<Value>,
    pub last_seq: i64,
    /// Spaces that changed, with their new sequence number.
    pub changed: Vec<(String, i64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpaceState {
    pub space: String,
    pub seq: i64,
    pub epoch: String,
    /// The largest sequence number of a tombstone compacted away (0: none): a cursor below it
    /// may have missed a delete.
    pub compacted_seq: i64,
    /// Bytes its records take as stored (fields and clocks), kept by every push.
    pub bytes: i64,
}

/// A record as a pull serves it: its latest state and the sequence number of that change.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncChange {
    pub table: String,
    pub id: String,
    /// The fields, as JSON object text.
    pub data: String,
    pub deleted: bool,
    pub seq: i64,
    pub updated_at: i64,
}

/// One space's part of a pull page, assembled by the database.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncPage {
    /// The changes as comma-separated JSON objects `{"space","table","id","deleted","fields"}`.
    pub json: String,
    pub count: i64,
    /// The sequence number of the last change in the page.
    pub last_seq: Option<i64>,
    /// Whether changes remain after the page.
    pub more: bool,
}

/// What a pull reads of one space.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncPageQuery<'a> {
    pub space: &'a str,
    /// The space's name as the client knows it, JSON-quoted (`"me"`, `"org_…"`).
    pub name_json: &'a str,
    pub after: i64,
    pub limit: i64,
    /// Leave tombstones out (a client starting from zero has nothing to delete).
    pub live_only: bool,
    /// Only these tables (the ones the caller may read).
    pub tables: &'a [String],
}

#[async_trait]
pub trait SyncStore: Send + Sync {
    async fn sync_push(&self, push: &SyncPush) -> Result<SyncPushOutcome>;
    /// The spaces of `spaces` that have a row (a space gets one at its first write).
    async fn sync_spaces(&self, spaces: &[String]) -> Result<Vec<SpaceState>>;
    /// Records of `space` changed after `after`, by sequence number; tombstones left out when
    /// `live_only` (a client starting from zero has nothing to delete).
    async fn sync_changes(&self, space: &str, after: i64, limit: i64, live_only: bool) -> Result<Vec<SyncChange>>;
    /// A page of changes of one space, as JSON text built by the database (a pull's hot path:
    /// one row crosses the driver instead of one per record). Record ids and table names are
    /// validated at push to a charset that needs no JSON escaping.
    async fn sync_page(&self, query: &SyncPageQuery<'_>) -> Result<SyncPage>;
    async fn sync_client_last_seq(&self, user_id: &str, client_id: &str) -> Result<Option<i64>>;
    /// Whether pushes announce changed spaces to every instance (see [`SyncStore::sync_listen`]).
    fn sync_fans_out(&self) -> bool;
    /// `(space, seq)` of every push of every instance sharing the database, when the backend
    /// fans changes out (PostgreSQL `LISTEN/NOTIFY`).
    async fn sync_listen(&self) -> Result<Option<tokio::sync::mpsc::Receiver<(String, i64)>>>;
    /// Forgets clients idle since before `idle_before`, with their operation results.
    async fn sync_expire_clients(&self, idle_before: i64) -> Result<u64>;
    /// Removes tombstones written before `deleted_before`, raising each space's
    /// `compacted_seq` to the largest removed; returns how many were removed.
    async fn sync_compact_tombstones(&self, deleted_before: i64) -> Result<u64>;
}
