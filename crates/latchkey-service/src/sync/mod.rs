//! Offline-first sync (docs/sync-protocol.md): who the caller is (from the session token only),
//! which spaces they may read and write, the push and the pull. Validation and permission
//! failures become per-operation results; the merge itself runs inside the store's
//! transaction with the rules of `latchkey_core::sync`.

mod directory;
pub mod events;
mod own_export;
mod pull;
mod push;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use latchkey_core::authz::{has, AuthState, Check};
use latchkey_core::sync::migration::{check_migrations, Migration};
use latchkey_core::sync::schema::{check_tables, TableSpec};
use latchkey_core::{Clock, Random};
use latchkey_store::SyncStore;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

pub use pull::PullQuery;
pub use push::PushResponse;

use crate::authority::Operator;
use crate::{ErrorKind, Result, ServiceError};

const BABYLOG_TABLES: &str = include_str!("babylog.toml");

/// `[sync]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    pub enabled: bool,
    /// Serve the BabyLog reference app's tables alongside `tables`.
    pub include_babylog: bool,
    /// The schema version clients write now, and the oldest one still accepted.
    pub schema_version: i64,
    pub min_schema_version: i64,
    pub max_ops_per_push: usize,
    /// Bytes of one push request body.
    pub max_push_bytes: usize,
    /// Pushes one user may make per minute (429 with `Retry-After` beyond; 0: no limit).
    pub pushes_per_minute: u32,
    /// Bytes the records of one space may take (fields and clocks as stored). Once a space
    /// holds this much, puts to it are rejected (`space_quota_exceeded`) until deletes free
    /// room; deletes are always taken. 0: no quota.
    pub max_space_bytes: i64,
    pub default_pull_limit: i64,
    pub max_pull_limit: i64,
    /// How far a clock stamp may run ahead of the server's clock.
    pub max_clock_ahead_secs: i64,
    /// Clients idle this long are forgotten (a returning one re-pushes under a new id).
    pub client_ttl_days: i64,
    /// Seconds between keep-alives of a live stream, at each of which the stream's session and
    /// spaces are checked again.
    pub events_recheck_secs: u64,
    /// Tombstones older than this are removed; a client whose cursor predates a removed one
    /// has that space reset (it pulls the space again from the start).
    pub tombstone_ttl_days: i64,
    pub tables: BTreeMap<String, TableSpec>,
    /// How operations of older schema versions are brought forward, step by step.
    pub migrations: Vec<Migration>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            include_babylog: true,
            schema_version: 1,
            min_schema_version: 1,
            max_ops_per_push: 1000,
            max_push_bytes: 1024 * 1024,
            pushes_per_minute: 600,
            max_space_bytes: 256 * 1024 * 1024,
            default_pull_limit: 1000,
            max_pull_limit: 10_000,
            max_clock_ahead_secs: 60,
            client_ttl_days: 90,
            tombstone_ttl_days: 90,
            events_recheck_secs: 15,
            tables: BTreeMap::new(),
            migrations: Vec::new(),
        }
    }
}

impl SyncConfig {
    /// Every table served: the configured ones, plus BabyLog's when included.
    pub fn all_tables(&self) -> std::result::Result<BTreeMap<String, TableSpec>, String> {
        let mut tables = if self.include_babylog {
            toml::from_str::<BTreeMap<String, TableSpec>>(BABYLOG_TABLES)
                .map_err(|e| format!("the BabyLog tables do not parse: {e}"))?
        } else {
            BTreeMap::new()
        };
        for (name, table) in &self.tables {
            if tables.insert(name.clone(), table.clone()).is_some() {
                return Err(format!(
                    "sync table `{name}` is one of BabyLog's; rename it or set sync.include_babylog = false"
                ));
            }
        }
        check_tables(&tables)?;
        check_migrations(&self.migrations, &tables, self.schema_version)?;
        if self.min_schema_version < 1 || self.min_schema_version > self.schema_version {
            return Err("sync.min_schema_version must be between 1 and sync.schema_version".into());
        }
        if self.max_ops_per_push == 0 || self.max_push_bytes < 1024 || self.max_pull_limit < 1 {
            return Err("sync limits must be positive (max_push_bytes at least 1024)".into());
        }
        if !(1..=self.max_pull_limit).contains(&self.default_pull_limit) {
            return Err("sync.default_pull_limit must be between 1 and sync.max_pull_limit".into());
        }
        if self.max_clock_ahead_secs < 0 || self.client_ttl_days < 1 || self.tombstone_ttl_days < 1 {
            return Err(
                "sync.max_clock_ahead_secs must be >= 0, sync.client_ttl_days and sync.tombstone_ttl_days >= 1".into(),
            );
        }
        Ok(tables)
    }
}

/// The signed-in caller of the sync API, from a verified session token.
#[derive(Debug, Clone)]
pub struct SyncCaller {
    pub(crate) user_id: String,
    pub(crate) session_id: String,
    /// When the token stops being valid (seconds since the epoch).
    pub(crate) expires_at: i64,
}

/// Made only by [`SyncDirectory::caller`] (answered by [`crate::Services`]) from a verified
/// session token of a live session, so ownership always comes from the token
/// (docs/sync-protocol.md).
impl SyncCaller {
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// When the token stops being valid (seconds since the epoch).
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

/// A space the caller can see, with what they may do there.
#[derive(Debug, Clone)]
pub struct SpaceAccess {
    /// The storage key: the user's id, or the organization's.
    pub key: String,
    /// What clients call it: `me`, or the organization's id.
    pub name: String,
    /// `None` in the personal space (the owner may do everything).
    permissions: Option<AuthState>,
}

impl SpaceAccess {
    /// The caller's own space, where they may do everything.
    pub fn personal(user_id: &str) -> Self {
        Self { key: user_id.to_owned(), name: PERSONAL_SPACE.to_owned(), permissions: None }
    }
    /// An organization's space, where the member may do what `permissions` grant.
    pub(crate) fn organization(org_id: String, permissions: AuthState) -> Self {
        Self { key: org_id.clone(), name: org_id, permissions: Some(permissions) }
    }
    fn allows(&self, permission: Option<&String>) -> bool {
        match (&self.permissions, permission) {
            (None, _) | (Some(_), None) => true,
            (Some(state), Some(p)) => has(state, &[Check::Permission(p.clone())]),
        }
    }
    pub fn can_read(&self, table: &TableSpec) -> bool {
        self.allows(table.read_permission.as_ref())
    }
    pub fn can_write(&self, table: &TableSpec) -> bool {
        self.allows(table.write_permission.as_ref())
    }
}

/// A space changed: `seq` is its latest sequence number. Sent to live listeners.
#[derive(Debug, Clone, PartialEq)]
pub struct SpaceChanged {
    pub space: String,
    pub seq: i64,
}

/// Fans out space changes to the live-update streams of this instance.
#[derive(Clone)]
pub struct SyncHub {
    sender: broadcast::Sender<SpaceChanged>,
}

impl Default for SyncHub {
    fn default() -> Self {
        Self { sender: broadcast::channel(1024).0 }
    }
}

impl SyncHub {
    pub fn subscribe(&self) -> broadcast::Receiver<SpaceChanged> {
        self.sender.subscribe()
    }
    pub fn publish(&self, change: SpaceChanged) {
        // No listener is not an error.
        let _ = self.sender.send(change);
    }
}

pub use own_export::{ExportCursor, ExportedRecord};

pub const PERSONAL_SPACE: &str = "me";

fn sync_disabled() -> ServiceError {
    ServiceError::not_found("Sync").long("Sync is disabled on this instance.")
}

/// What sync asks of the identity and organization services, and nothing more: who holds a
/// session token, whether that session is still live, and which spaces a user may reach.
/// [`crate::Services`] answers it (`sync/directory.rs`); sync itself never reads users,
/// sessions or memberships.
#[async_trait::async_trait]
pub trait SyncDirectory: Send + Sync {
    /// The caller a bearer token names: a valid session token of an active session, or 401.
    async fn caller(&self, bearer: Option<&str>) -> Result<SyncCaller>;
    /// `Ok` while the caller's session is still active (not signed out, revoked, banned, idle).
    async fn still_live(&self, caller: &SyncCaller) -> Result<()>;
    /// The personal space, then every organization the user is a member of.
    async fn spaces_of(&self, user_id: &str) -> Result<Vec<SpaceAccess>>;
}

/// Offline-first sync: push, pull, live events, exports and housekeeping, over the sync
/// tables alone. The binary composes it from the store's sync area and a [`SyncDirectory`].
pub struct SyncService {
    store: Arc<dyn SyncStore>,
    directory: Arc<dyn SyncDirectory>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Random>,
    config: SyncConfig,
    tables: Tables,
    /// Pushes per user per minute (`None`: no limit).
    pushes: Option<crate::limits::RateLimit>,
    hub: SyncHub,
    /// Pushed operations by result, for `/metrics`.
    pub(crate) telemetry: Arc<crate::telemetry::Telemetry>,
    streams: events::StreamSlots,
}

impl SyncService {
    /// `limits`: where the instance's request limits live (off with `[rate_limits] enabled =
    /// false`), which the push limit follows.
    pub fn new(
        store: Arc<dyn SyncStore>,
        directory: Arc<dyn SyncDirectory>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Random>,
        config: SyncConfig,
        limits: &crate::limits::LimitCells,
    ) -> Self {
        // The binary refuses invalid tables before it gets here; should some slip through,
        // serving none is the safe choice.
        let tables = served_tables(&config);
        let pushes = (config.pushes_per_minute > 0)
            .then(|| crate::limits::RateLimit::new("sync_pushes", config.pushes_per_minute, 60_000, limits));
        Self {
            store,
            directory,
            clock,
            rng,
            config,
            tables,
            pushes,
            hub: SyncHub::default(),
            telemetry: Default::default(),
            streams: Default::default(),
        }
    }

    /// Counts into the instance's telemetry (`Services::telemetry`) instead of its own.
    pub fn with_telemetry(mut self, telemetry: Arc<crate::telemetry::Telemetry>) -> Self {
        self.telemetry = telemetry;
        self
    }

    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn table(&self, name: &str) -> Option<&TableSpec> {
        self.tables.get(name).map(|(t, _)| t)
    }

    /// This instance's live-update fan-out.
    pub fn hub(&self) -> &SyncHub {
        &self.hub
    }

    /// The caller of a sync request: the bearer must be a valid session token of an active
    /// session. Anything else is a 401 that changes nothing; 404 when sync is off.
    pub async fn caller(&self, bearer: Option<&str>) -> Result<SyncCaller> {
        if !self.config.enabled {
            return Err(sync_disabled());
        }
        self.directory.caller(bearer).await
    }

    /// Applies the per-user limit of pushes.
    async fn limit_pushes(&self, user_id: &str) -> Result<()> {
        match &self.pushes {
            Some(limit) => limit.check(user_id, self.now()).await.map_err(|e| {
                if matches!(e.kind, crate::error::ErrorKind::TooManyRequests { .. }) {
                    e.long("Too many pushes: wait, then push the outbox again.")
                } else {
                    e
                }
            }),
            None => Ok(()),
        }
    }

    /// Every live record of a space, by table (Backend API: backups and data requests).
    pub async fn export(&self, _operator: &Operator, space_key: &str) -> Result<serde_json::Value> {
        let records = self.store.sync_changes(space_key, 0, i64::MAX, true).await?;
        let mut tables: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        for r in records {
            let fields: serde_json::Value = serde_json::from_str(&r.data)
                .map_err(|e| ServiceError::new(ErrorKind::Internal, "internal_error", e.to_string()))?;
            tables.entry(r.table).or_default().push(serde_json::json!({
                "id": r.id, "fields": fields, "updated_at": r.updated_at,
            }));
        }
        for list in tables.values_mut() {
            list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        }
        let count: usize = tables.values().map(Vec::len).sum();
        Ok(serde_json::json!({
            "object": "sync_export",
            "space": space_key,
            "exported_at": self.now(),
            "total_count": count,
            "tables": tables,
        }))
    }

    /// Forwards the changes that every instance sharing the database announces (PostgreSQL
    /// `LISTEN/NOTIFY`) to this instance's live streams. Without it (SQLite), pushes publish to
    /// this instance's streams directly.
    pub async fn start_fanout(&self) -> Result<()> {
        if let Some(mut changes) = self.store.sync_listen().await? {
            let hub = self.hub.clone();
            tokio::spawn(async move {
                while let Some((space, seq)) = changes.recv().await {
                    hub.publish(SpaceChanged { space, seq });
                }
            });
        }
        Ok(())
    }

    /// Removes tombstones older than the configured limit.
    pub async fn compact_tombstones(&self) -> Result<u64> {
        let cutoff = self.now() - self.config.tombstone_ttl_days * 86_400_000;
        Ok(self.store.sync_compact_tombstones(cutoff).await?)
    }

    /// Forgets sync clients idle past the configured limit.
    pub async fn expire_clients(&self) -> Result<u64> {
        let cutoff = self.now() - self.config.client_ttl_days * 86_400_000;
        Ok(self.store.sync_expire_clients(cutoff).await?)
    }
}

/// Each served table with the fields a new record needs (computed once, shared by writes).
pub(crate) type Tables = BTreeMap<String, (TableSpec, std::sync::Arc<[String]>)>;

pub(crate) fn served_tables(config: &SyncConfig) -> Tables {
    config
        .all_tables()
        .unwrap_or_default()
        .into_iter()
        .map(|(name, t)| {
            let required: std::sync::Arc<[String]> = t.required().map(str::to_owned).collect();
            (name, (t, required))
        })
        .collect()
}

pub(crate) fn space_index(spaces: &[SpaceAccess]) -> HashMap<&str, &SpaceAccess> {
    spaces.iter().map(|s| (s.name.as_str(), s)).collect()
}
